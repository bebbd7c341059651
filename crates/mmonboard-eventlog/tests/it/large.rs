//! Streams and logs longer than one read chunk: reads and verify page across chunk boundaries
//! (and a long stream is fetched in parallel ranges) without losing or reordering events.

use mmonboard_eventlog::conformance::{append_ok, events, request, unique_stream};
use mmonboard_eventlog::{EventStore, ExpectedVersion, RecordedEvent};

use crate::support::{TempLog, execute};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_streams_and_logs_read_whole_and_in_order() {
    let log = TempLog::new();
    let store = log.open_fast().await;
    let long = unique_stream("long");
    let short = unique_stream("short");
    let mut long_events: Vec<RecordedEvent> = Vec::new();
    let mut all_events: Vec<RecordedEvent> = Vec::new();
    for round in 0..15_u64 {
        let expected = ExpectedVersion::Exact(round * 350);
        let appended = append_ok(&store, request(&long, expected, events(350))).await;
        long_events.extend(appended.iter().cloned());
        all_events.extend(appended);
        let expected = ExpectedVersion::Exact(round);
        all_events.extend(append_ok(&store, request(&short, expected, events(1))).await);
    }
    assert_eq!(long_events.len(), 5250);

    assert_eq!(
        store.read_stream(&long, 0).await.expect("read"),
        long_events
    );
    for from_version in [1, 255, 256, 257, 2304, 2305, 5000, 5249, 5250] {
        let read = store.read_stream(&long, from_version).await.expect("read");
        assert_eq!(
            read,
            long_events[from_version as usize..],
            "from {from_version}"
        );
    }
    assert_eq!(
        store.read_all(0, 100_000).await.expect("read_all"),
        all_events
    );
    assert_eq!(
        store.read_all(2047, 2050).await.expect("read_all"),
        all_events[2047..4097]
    );

    let report = store.verify().await.expect("verify");
    assert_eq!(report.first_break, None);
    assert_eq!(report.events_checked, 5265);
    assert_eq!(report.streams_checked, 2);
    let last = all_events.last().expect("events");
    assert_eq!(report.head, Some((last.global_position, last.hash)));

    let mut raw = log.raw_connection().await;
    execute(&mut raw, "DROP TRIGGER events_no_update").await;
    execute(
        &mut raw,
        "UPDATE events SET event_type = 'Forged' WHERE global_position = 4500",
    )
    .await;
    let chain_break = store
        .verify()
        .await
        .expect("verify")
        .first_break
        .expect("a break");
    assert_eq!(chain_break.global_position, 4500);
    store.close().await;
}
