//! Many writers on one stream, and two stores (as two processes would) on one database, on each backend:
//! no update is lost, versions stay contiguous, and the chain stays intact.

use std::collections::HashSet;
use std::sync::Arc;

use mmonboard_eventlog::conformance::{events, request, unique_stream};
use mmonboard_eventlog::testing::TestDatabase;
use mmonboard_eventlog::{
    AppendError, AppendOutcome, EventLog, EventStore, ExpectedVersion, StreamId, backend_tests,
};
use uuid::Uuid;

use crate::support::{close_shared, open_log};

backend_tests!(
    eight_writers_on_one_stream_lose_nothing,
    two_stores_on_one_database_lose_nothing,
    a_store_that_wrote_last_still_sees_what_another_wrote_since,
);

/// Enough for any fair interleaving; a livelock would exhaust it and fail the test.
const MAX_ATTEMPTS: usize = 100_000;

/// Appends one event decided on the version just read, retrying on conflict as a command
/// handler does; returns the event id.
async fn append_with_retry(store: &EventLog, stream: &StreamId) -> Uuid {
    for _ in 0..MAX_ATTEMPTS {
        let version = store.stream_version(stream).await.expect("stream_version");
        let request = request(stream, ExpectedVersion::Exact(version), events(1));
        let event_id = request.events[0].event_id;
        match store.append(request).await {
            Ok(AppendOutcome::Appended(recorded)) => {
                assert_eq!(recorded[0].stream_version, version + 1);
                return event_id;
            }
            Err(AppendError::Conflict { actual, .. }) => assert!(actual > version),
            other => panic!("unexpected append result {other:?}"),
        }
    }
    panic!("no append landed in {MAX_ATTEMPTS} attempts");
}

async fn assert_contiguous(store: &EventLog, stream: &StreamId, appended: &HashSet<Uuid>) {
    let read = store.read_stream(stream, 0).await.expect("read_stream");
    let versions: Vec<u64> = read.iter().map(|event| event.stream_version).collect();
    let expected: Vec<u64> = (1..=appended.len() as u64).collect();
    assert_eq!(versions, expected, "versions 1..=n, no gap, no duplicate");
    let read_ids: HashSet<Uuid> = read.iter().map(|event| event.event_id).collect();
    assert_eq!(
        &read_ids, appended,
        "every acknowledged event is there, once"
    );
}

async fn eight_writers_on_one_stream_lose_nothing(database: &TestDatabase) {
    let store = Arc::new(open_log(database).await);
    let stream = unique_stream("contended");
    let mut writers = Vec::new();
    for _ in 0..8 {
        let store = Arc::clone(&store);
        let stream = stream.clone();
        writers.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for _ in 0..200 {
                ids.push(append_with_retry(&store, &stream).await);
            }
            ids
        }));
    }
    let mut appended = HashSet::new();
    for writer in writers {
        for id in writer.await.expect("writer task") {
            assert!(appended.insert(id), "an event id acknowledged twice");
        }
    }
    assert_eq!(appended.len(), 1600);
    assert_contiguous(&store, &stream, &appended).await;
    assert_eq!(store.head_position().await.expect("head"), 1600);
    let report = store.verify().await.expect("verify");
    assert_eq!(report.first_break, None);
    assert_eq!(report.events_checked, 1600);
    close_shared(store).await;
}

async fn two_stores_on_one_database_lose_nothing(database: &TestDatabase) {
    let first = Arc::new(open_log(database).await);
    let second = Arc::new(open_log(database).await);
    let shared = unique_stream("shared");
    let mut writers = Vec::new();
    for writer in 0..8 {
        let store = Arc::clone(if writer % 2 == 0 { &first } else { &second });
        let shared = shared.clone();
        writers.push(tokio::spawn(async move {
            let own = unique_stream("own");
            let mut own_ids = HashSet::new();
            let mut shared_ids = Vec::new();
            for round in 0..40 {
                let request = request(&own, ExpectedVersion::Exact(round), events(1));
                own_ids.insert(request.events[0].event_id);
                match store.append(request).await {
                    Ok(AppendOutcome::Appended(_)) => {}
                    other => panic!("own stream append failed: {other:?}"),
                }
                shared_ids.push(append_with_retry(&store, &shared).await);
            }
            (own, own_ids, shared_ids)
        }));
    }
    let mut shared_appended = HashSet::new();
    for writer in writers {
        let (own, own_ids, shared_ids) = writer.await.expect("writer task");
        assert_contiguous(&first, &own, &own_ids).await;
        assert_contiguous(&second, &own, &own_ids).await;
        shared_appended.extend(shared_ids);
    }
    assert_eq!(shared_appended.len(), 320);
    assert_contiguous(&first, &shared, &shared_appended).await;
    for store in [&first, &second] {
        assert_eq!(store.head_position().await.expect("head"), 640);
        let report = store.verify().await.expect("verify");
        assert_eq!(report.first_break, None);
        assert_eq!(report.events_checked, 640);
    }
    close_shared(first).await;
    close_shared(second).await;
}

/// That the append was refused as a conflict with the stream at version `actual`; `why` says what it shows.
fn conflicts_with(outcome: Result<AppendOutcome, AppendError>, actual: u64, why: &str) {
    match outcome {
        Err(AppendError::Conflict { actual: found, .. }) if found == actual => {}
        other => panic!("{why}: expected a conflict with version {actual}, got {other:?}"),
    }
}

/// A writer remembers what it committed (the PostgreSQL one decides on it while no other writer has
/// moved the head); whatever another store writes in between must be seen by its next batch: a stream it
/// knows that moved, a stream created elsewhere, a command id the other store used, and the chain over the
/// other store's last hash; and a store opened on a log with history must not take a stream it has never
/// written for new.
async fn a_store_that_wrote_last_still_sees_what_another_wrote_since(database: &TestDatabase) {
    let first = open_log(database).await;
    let second = open_log(database).await;
    let known = unique_stream("known");
    let unseen = unique_stream("unseen");
    let appended = |outcome: Result<AppendOutcome, AppendError>| match outcome {
        Ok(AppendOutcome::Appended(recorded)) => recorded,
        other => panic!("expected an append, got {other:?}"),
    };
    // The first store writes twice in a row, so it has decided on what it remembers at least once.
    appended(
        first
            .append(request(&known, ExpectedVersion::NoStream, events(1)))
            .await,
    );
    appended(
        first
            .append(request(&known, ExpectedVersion::Exact(1), events(1)))
            .await,
    );

    // The second store moves the stream the first one knows, and creates one it has never seen.
    appended(
        second
            .append(request(&known, ExpectedVersion::Exact(2), events(1)))
            .await,
    );
    let reused = request(&unseen, ExpectedVersion::NoStream, events(1));
    let reused_command = reused.command_id;
    appended(second.append(reused).await);

    // The first store's view of both streams is stale: each request is refused with the log's version.
    // First a command without events, which writes only its command record: no key of the log would
    // refuse it, only the check that the head has not moved since this store last wrote.
    conflicts_with(
        first
            .append(request(&known, ExpectedVersion::Exact(2), Vec::new()))
            .await,
        3,
        "a stale version must conflict with version 3, even without events",
    );
    conflicts_with(
        first
            .append(request(&known, ExpectedVersion::Exact(2), events(1)))
            .await,
        3,
        "a stale version must conflict with version 3",
    );
    conflicts_with(
        first
            .append(request(&unseen, ExpectedVersion::NoStream, events(1)))
            .await,
        1,
        "a stream created elsewhere must conflict with version 1",
    );
    // The other store's command id is known to the first one too.
    let mut again = request(&unseen, ExpectedVersion::Exact(1), events(1));
    again.command_id = reused_command;
    again.metadata.command_id = reused_command;
    match first.append(again).await {
        Ok(AppendOutcome::AlreadyApplied(original)) => {
            assert_eq!(original.len(), 1);
            assert_eq!(original[0].global_position, 4);
        }
        other => panic!("a command applied elsewhere must be already applied, got {other:?}"),
    }
    // Writing on, alone again, the first store numbers and chains after the other store's events.
    let fifth = appended(
        first
            .append(request(&known, ExpectedVersion::Exact(3), events(2)))
            .await,
    );
    assert_eq!(
        fifth
            .iter()
            .map(|event| (event.global_position, event.stream_version))
            .collect::<Vec<_>>(),
        vec![(5, 4), (6, 5)]
    );
    let seventh = appended(
        first
            .append(request(&unseen, ExpectedVersion::Exact(1), events(1)))
            .await,
    );
    assert_eq!(
        (seventh[0].global_position, seventh[0].stream_version),
        (7, 2)
    );
    // And the second store, which last saw position 4, still sees everything after it.
    conflicts_with(
        second
            .append(request(&known, ExpectedVersion::Exact(3), events(1)))
            .await,
        5,
        "the second store must see version 5",
    );
    let eighth = appended(
        second
            .append(request(&known, ExpectedVersion::Exact(5), events(1)))
            .await,
    );
    assert_eq!(eighth[0].global_position, 8);
    // A store opened on a log that has history knows only the streams it has written: one it has never
    // written is looked up, not taken for new.
    let third = open_log(database).await;
    appended(
        third
            .append(request(&known, ExpectedVersion::Exact(6), events(1)))
            .await,
    );
    conflicts_with(
        third
            .append(request(&unseen, ExpectedVersion::NoStream, Vec::new()))
            .await,
        2,
        "an existing stream must conflict, even without events",
    );
    conflicts_with(
        third
            .append(request(&unseen, ExpectedVersion::NoStream, events(1)))
            .await,
        2,
        "an existing stream must conflict with version 2",
    );
    let tenth = appended(
        third
            .append(request(&unseen, ExpectedVersion::Exact(2), events(1)))
            .await,
    );
    assert_eq!((tenth[0].global_position, tenth[0].stream_version), (10, 3));
    let report = first.verify().await.expect("verify");
    assert_eq!((report.first_break, report.events_checked), (None, 10));
    for store in [first, second, third] {
        store.close().await;
    }
}
