//! Opening: files are created and migrated once, in-memory URLs are refused, closing waits for
//! the writer.

use mmonboard_eventlog::conformance::{append_ok, events, request, unique_stream};
use mmonboard_eventlog::{
    EventStore, ExpectedVersion, SqliteEventStore, SqliteOptions, StoreError, StreamId,
};

use crate::support::TempLog;

#[tokio::test]
async fn reopening_keeps_the_log() {
    let log = TempLog::new();
    assert!(!log.path.exists());
    let stream = unique_stream("reopen");
    let store = log.open().await;
    let appended = append_ok(
        &store,
        request(&stream, ExpectedVersion::NoStream, events(2)),
    )
    .await;
    store.close().await;

    let store = log.open().await;
    assert_eq!(store.read_stream(&stream, 0).await.expect("read"), appended);
    append_ok(
        &store,
        request(&stream, ExpectedVersion::Exact(2), events(1)),
    )
    .await;
    assert!(store.verify().await.expect("verify").is_intact());
    store.close().await;
}

#[tokio::test]
async fn in_memory_urls_are_refused() {
    for url in [
        "sqlite::memory:",
        "sqlite://file:log?mode=memory&cache=shared",
    ] {
        match SqliteEventStore::open(url, SqliteOptions::default()).await {
            Err(StoreError::Invalid(message)) => assert!(message.contains("in-memory")),
            Err(other) => panic!("{url}: expected Invalid, got {other}"),
            Ok(_) => panic!("{url}: expected Invalid, it opened"),
        }
    }
}

#[test]
fn stream_ids_are_checked() {
    assert!(StreamId::parse("portfolio-1").is_ok());
    assert!(StreamId::parse("ünïcode ✓").is_ok());
    assert!(StreamId::parse("x".repeat(200)).is_ok());
    assert!(StreamId::parse("").is_err());
    assert!(StreamId::parse("x".repeat(201)).is_err());
    assert!(StreamId::parse("line\nbreak").is_err());
    assert!(StreamId::parse("unit\u{1f}separator").is_err());
    let id = StreamId::parse("portfolio-1").expect("valid");
    assert_eq!(id.to_string(), "portfolio-1");
    assert_eq!(id.as_str(), "portfolio-1");
    let json = serde_json::to_string(&id).expect("serializes");
    assert_eq!(json, r#""portfolio-1""#);
    assert!(serde_json::from_str::<StreamId>(r#""""#).is_err());
}

/// Two processes starting at once on a fresh file: both migrate-or-see-migrated and work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_opens_of_a_fresh_file_both_work() {
    let log = TempLog::new();
    let (first, second) = tokio::join!(log.open(), log.open());
    let stream = unique_stream("both");
    append_ok(
        &first,
        request(&stream, ExpectedVersion::NoStream, events(1)),
    )
    .await;
    append_ok(
        &second,
        request(&stream, ExpectedVersion::Exact(1), events(1)),
    )
    .await;
    assert_eq!(first.stream_version(&stream).await.expect("version"), 2);
    first.close().await;
    second.close().await;
}
