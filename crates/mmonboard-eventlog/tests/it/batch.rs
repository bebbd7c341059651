//! Group commit, on each backend: concurrent appends share one transaction, yet each request succeeds
//! or fails on its own, as if the batch's requests had run one after another.

use mmonboard_eventlog::conformance::{append_ok, assert_conflict, events, request, unique_stream};
use mmonboard_eventlog::{AppendError, AppendOutcome, EventStore, ExpectedVersion, StoreError};

use mmonboard_eventlog::testing::{TestBackend, TestDatabase};

use crate::support::{current_thread_backend_tests, execute_raw, open_log_with};

/// Durable options: group commit is about sharing the durable commit.
async fn open(database: &TestDatabase) -> mmonboard_eventlog::EventLog {
    open_log_with(database, &mmonboard_eventlog::LogOptions::default()).await
}

current_thread_backend_tests!(
    one_batch_serializes_requests_on_the_same_stream,
    a_failing_request_is_rolled_back_alone,
    malformed_requests_are_refused,
    a_constraint_hit_by_the_insert_refuses_that_request_alone,
    the_observer_sees_each_group_commit,
);

/// On the current-thread runtime, `join!` sends every request before the writer task can
/// run, so they all land in one batch.
async fn one_batch_serializes_requests_on_the_same_stream(database: &TestDatabase) {
    let store = open(database).await;
    let stream = unique_stream("batched");
    let other = unique_stream("batched-other");
    let commits_before = store.committed_batches();
    let (first, second, third, elsewhere) = tokio::join!(
        store.append(request(&stream, ExpectedVersion::NoStream, events(2))),
        store.append(request(&stream, ExpectedVersion::Exact(2), events(1))),
        store.append(request(&stream, ExpectedVersion::Exact(2), events(1))),
        store.append(request(&other, ExpectedVersion::Any, events(3))),
    );
    assert_eq!(
        store.committed_batches() - commits_before,
        1,
        "one group commit"
    );
    let first = first.expect("first lands").into_events();
    let second = second.expect("second sees the first").into_events();
    assert_eq!(first[1].stream_version, 2);
    assert_eq!(second[0].stream_version, 3);
    assert_eq!(second[0].global_position, first[1].global_position + 1);
    assert_conflict(third, &stream, 3);
    let elsewhere = elsewhere.expect("another stream lands").into_events();
    assert_eq!(elsewhere[0].global_position, second[0].global_position + 1);
    assert_eq!(store.read_stream(&stream, 0).await.expect("read").len(), 3);
    assert!(store.verify().await.expect("verify").is_intact());
    store.close().await;
}

/// A request that fails inside the batch (a duplicate event id) is rolled back alone: the
/// requests before and after it in the same transaction land, and it leaves no trace.
async fn a_failing_request_is_rolled_back_alone(database: &TestDatabase) {
    let store = open(database).await;
    let seed = unique_stream("seed");
    let seeded = append_ok(&store, request(&seed, ExpectedVersion::NoStream, events(1))).await;

    let stream = unique_stream("lands");
    let first = request(&stream, ExpectedVersion::NoStream, events(2));
    let mut duplicate_of_stored = request(&unique_stream("dup"), ExpectedVersion::Any, events(2));
    duplicate_of_stored.events[1].event_id = seeded[0].event_id;
    let mut duplicate_in_batch = request(&unique_stream("dup"), ExpectedVersion::Any, events(1));
    duplicate_in_batch.events[0].event_id = first.events[0].event_id;
    let conflicting = request(&seed, ExpectedVersion::Exact(7), events(1));
    let after = request(&stream, ExpectedVersion::Exact(2), events(1));
    let retry_of_first = first.clone();

    let commits_before = store.committed_batches();
    let results = tokio::join!(
        store.append(first.clone()),
        store.append(duplicate_of_stored.clone()),
        store.append(duplicate_in_batch.clone()),
        store.append(conflicting),
        store.append(after),
        store.append(retry_of_first),
    );
    assert_eq!(
        store.committed_batches() - commits_before,
        1,
        "one transaction"
    );

    let first_events = match results.0 {
        Ok(AppendOutcome::Appended(events)) => events,
        other => panic!("the first request lands: {other:?}"),
    };
    for (result, duplicate) in [
        (results.1, seeded[0].event_id),
        (results.2, first.events[0].event_id),
    ] {
        match result {
            Err(AppendError::Store(StoreError::DuplicateEventId(id))) => assert_eq!(id, duplicate),
            other => panic!("expected a duplicate event id, got {other:?}"),
        }
    }
    assert_conflict(results.3, &seed, 1);
    let after_events = results
        .4
        .expect("the request after the failure lands")
        .into_events();
    assert_eq!(after_events[0].stream_version, 3);
    assert_eq!(
        after_events[0].global_position,
        first_events[1].global_position + 1
    );
    match results.5 {
        Ok(AppendOutcome::AlreadyApplied(events)) => assert_eq!(events, first_events),
        other => panic!("the in-batch retry is recognised: {other:?}"),
    }

    for failed in [&duplicate_of_stored, &duplicate_in_batch] {
        assert_eq!(
            store.find_command(failed.command_id).await.expect("find"),
            None
        );
        assert_eq!(
            store
                .stream_version(&failed.stream_id)
                .await
                .expect("version"),
            0
        );
    }
    assert_eq!(
        store.head_position().await.expect("head"),
        4,
        "gap-free: 1 + 2 + 1"
    );
    let report = store.verify().await.expect("verify");
    assert_eq!(report.first_break, None);
    assert_eq!(report.events_checked, 4);
    store.close().await;
}

/// Refused before reaching the writer: nothing is appended.
async fn malformed_requests_are_refused(database: &TestDatabase) {
    let store = open(database).await;
    let stream = unique_stream("invalid");

    let mut not_json = request(&stream, ExpectedVersion::Any, events(2));
    not_json.events[1].payload = "{not json".to_owned();
    let mut mismatched = request(&stream, ExpectedVersion::Any, events(1));
    mismatched.metadata.command_id = uuid::Uuid::now_v7();
    let mut bad_type = request(&stream, ExpectedVersion::Any, events(1));
    bad_type.events[0].event_type = "Bad\u{1f}Type".to_owned();
    let mut empty_type = request(&stream, ExpectedVersion::Any, events(1));
    empty_type.events[0].event_type = String::new();

    for request in [not_json, mismatched, bad_type, empty_type] {
        match store.append(request).await {
            Err(AppendError::Store(StoreError::Invalid(_))) => {}
            other => panic!("expected Invalid, got {other:?}"),
        }
    }
    assert_eq!(store.head_position().await.expect("head"), 0);
    store.close().await;
}

/// When the batch's insert itself hits a constraint (here one a test adds: no `Forbidden` events), the
/// batch is redone one request per savepoint: the guilty request alone is refused, with nothing of it
/// left, and the others land gap-free around it.
async fn a_constraint_hit_by_the_insert_refuses_that_request_alone(database: &TestDatabase) {
    let store = open(database).await;
    let forbid = match database.backend() {
        TestBackend::Sqlite => {
            "CREATE TRIGGER test_forbidden BEFORE INSERT ON events WHEN NEW.event_type = 'Forbidden' \
             BEGIN SELECT RAISE(ABORT, 'forbidden event type'); END"
        }
        TestBackend::Postgres => {
            "ALTER TABLE events ADD CONSTRAINT test_forbidden CHECK (event_type <> 'Forbidden')"
        }
    };
    execute_raw(database, forbid)
        .await
        .expect("the constraint is added");
    let stream = unique_stream("careful");
    let first = request(&stream, ExpectedVersion::NoStream, events(2));
    let mut forbidden = request(&unique_stream("forbidden"), ExpectedVersion::Any, events(2));
    forbidden.events[1].event_type = "Forbidden".to_owned();
    let after = request(&stream, ExpectedVersion::Exact(2), events(1));
    let commits_before = store.committed_batches();
    let (first_result, forbidden_result, after_result) = tokio::join!(
        store.append(first),
        store.append(forbidden.clone()),
        store.append(after),
    );
    assert_eq!(
        store.committed_batches() - commits_before,
        1,
        "one transaction"
    );
    let first_events = first_result.expect("the first lands").into_events();
    match forbidden_result {
        Err(AppendError::Store(StoreError::Database(_))) => {}
        other => panic!("expected the constraint's refusal, got {other:?}"),
    }
    let after_events = after_result.expect("the one after lands").into_events();
    assert_eq!(
        after_events[0].global_position,
        first_events[1].global_position + 1,
        "gap-free around the refused request"
    );
    assert_eq!(
        store
            .find_command(forbidden.command_id)
            .await
            .expect("find"),
        None
    );
    assert_eq!(
        store
            .stream_version(&forbidden.stream_id)
            .await
            .expect("version"),
        0
    );
    assert_eq!(store.head_position().await.expect("head"), 3);
    assert!(store.verify().await.expect("verify").is_intact());
    store.close().await;
}

/// The observer hears of a batch once, with its size, the events it wrote and one latency per request; an
/// append refused inside the batch counts as failed and writes nothing.
async fn the_observer_sees_each_group_commit(database: &TestDatabase) {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let observer = {
        let seen = std::sync::Arc::clone(&seen);
        mmonboard_eventlog::AppendObserver::new(move |batch| {
            seen.lock().expect("the test's list").push(batch.clone());
        })
    };
    let store = open_log_with(
        database,
        &mmonboard_eventlog::LogOptions::observed(observer),
    )
    .await;
    let stream = unique_stream("observed");
    let (first, conflicting, other) = tokio::join!(
        store.append(request(&stream, ExpectedVersion::NoStream, events(2))),
        store.append(request(&stream, ExpectedVersion::NoStream, events(1))),
        store.append(request(
            &unique_stream("observed-other"),
            ExpectedVersion::Any,
            events(3)
        )),
    );
    first.expect("the first lands");
    assert_conflict(conflicting, &stream, 2);
    other.expect("another stream lands");
    store.close().await;
    let seen = seen.lock().expect("the test's list").clone();
    assert_eq!(seen.len(), 1, "one group commit: {seen:?}");
    let batch = &seen[0];
    assert_eq!(
        (
            batch.requests,
            batch.events_written,
            batch.failed,
            batch.append_latencies.len()
        ),
        (3, 5, 1, 3),
        "{batch:?}"
    );
    assert!(
        batch
            .append_latencies
            .iter()
            .all(|latency| *latency >= batch.transaction),
        "each request waited at least as long as the transaction that answered it: {batch:?}"
    );
}
