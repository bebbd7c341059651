//! The conformance suite every [`EventStore`] backend must pass, written once against the trait
//! so the SQLite log and a later PostgreSQL log are held to the same contract. Each check panics
//! with a message on failure (it is test support, behind the `conformance` feature). A check may
//! run on a store that already holds events, but assumes no one else appends while it runs.

use chrono::{DateTime, TimeZone, Utc};
use uuid::Uuid;

use crate::{
    AppendError, AppendOutcome, AppendRequest, EventMetadata, EventStore, ExpectedVersion,
    GENESIS_HASH, NewEvent, RecordedEvent, StoreError, StreamId, chain_hash,
};

/// A stream id no other check uses.
pub fn unique_stream(prefix: &str) -> StreamId {
    StreamId::parse(format!("{prefix}-{}", Uuid::now_v7())).expect("a valid stream id")
}

/// An event with a small JSON payload.
pub fn event(event_type: &str, n: u64) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event_type: event_type.to_owned(),
        schema_version: 1,
        payload: format!(r#"{{"n": {n}, "note": "ünïcode ✓"}}"#),
    }
}

/// `count` events of type `Tested`.
pub fn events(count: u64) -> Vec<NewEvent> {
    (0..count).map(|n| event("Tested", n)).collect()
}

/// A fixed time with sub-microsecond digits, which the store must drop.
pub fn recorded_at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0)
        .single()
        .expect("a valid date")
        + chrono::Duration::nanoseconds(123_456_789)
}

/// A request under a fresh command id.
pub fn request(
    stream_id: &StreamId,
    expected_version: ExpectedVersion,
    events: Vec<NewEvent>,
) -> AppendRequest {
    let command_id = Uuid::now_v7();
    AppendRequest {
        stream_id: stream_id.clone(),
        expected_version,
        command_id,
        metadata: EventMetadata {
            command_id,
            actor: "conformance@example.com".to_owned(),
            correlation_id: Uuid::now_v7(),
            causation_id: Some(Uuid::now_v7()),
        },
        recorded_at: recorded_at(),
        events,
    }
}

/// Appends and expects [`AppendOutcome::Appended`].
pub async fn append_ok<S: EventStore>(store: &S, request: AppendRequest) -> Vec<RecordedEvent> {
    match store.append(request).await {
        Ok(AppendOutcome::Appended(events)) => events,
        other => panic!("expected the append to land, got {other:?}"),
    }
}

/// Runs every check.
pub async fn run_all<S: EventStore>(store: &S) {
    append_and_read_round_trip(store).await;
    expected_versions(store).await;
    conflict_appends_nothing(store).await;
    global_positions_are_gap_free(store).await;
    command_retry_returns_original_events(store).await;
    command_without_events_is_idempotent(store).await;
    command_retry_with_stale_expected_version(store).await;
    read_all_pages(store).await;
    replay_visits_what_read_all_returns(store).await;
    verify_intact_log(store).await;
}

/// What goes in comes out, byte for byte, with positions, versions and a correct chain hash.
pub async fn append_and_read_round_trip<S: EventStore>(store: &S) {
    let stream = unique_stream("round-trip");
    let mut new_events = events(3);
    new_events[1].payload = "{ \"spacing\" :  [1, 2,3],\n \"kept\": \"verbatim\" }".to_owned();
    new_events[2].schema_version = 7;
    new_events[2].event_type = "Other.Type-v2".to_owned();
    let request = request(&stream, ExpectedVersion::NoStream, new_events.clone());
    let head_before = store.head_position().await.expect("head");
    let appended = append_ok(store, request.clone()).await;

    let read = store.read_stream(&stream, 0).await.expect("read_stream");
    assert_eq!(read, appended, "read_stream returns what append returned");
    assert_eq!(read.len(), 3);
    let truncated =
        DateTime::from_timestamp_micros(recorded_at().timestamp_micros()).expect("a valid time");
    for (offset, (event, new)) in read.iter().zip(&new_events).enumerate() {
        let offset = offset as u64;
        assert_eq!(event.global_position, head_before + 1 + offset);
        assert_eq!(event.stream_id, stream);
        assert_eq!(event.stream_version, 1 + offset);
        assert_eq!(event.event_id, new.event_id);
        assert_eq!(event.event_type, new.event_type);
        assert_eq!(event.schema_version, new.schema_version);
        assert_eq!(event.payload, new.payload, "payload stored verbatim");
        assert_eq!(event.metadata, request.metadata);
        assert_eq!(event.recorded_at, truncated, "microsecond precision");
    }

    let previous_hash = if head_before == 0 {
        GENESIS_HASH
    } else {
        store.read_all(head_before - 1, 1).await.expect("read_all")[0].hash
    };
    let mut prev = previous_hash;
    for event in &read {
        assert_eq!(
            chain_hash(&prev, event),
            event.hash,
            "chain hash recomputes"
        );
        prev = event.hash;
    }

    assert_eq!(store.stream_version(&stream).await.expect("version"), 3);
    let tail = store.read_stream(&stream, 1).await.expect("read_stream");
    assert_eq!(tail, read[1..], "from_version is exclusive");
    assert!(
        store
            .read_stream(&stream, 3)
            .await
            .expect("read")
            .is_empty()
    );
    let unknown = unique_stream("never-written");
    assert!(
        store
            .read_stream(&unknown, 0)
            .await
            .expect("read")
            .is_empty()
    );
    assert_eq!(store.stream_version(&unknown).await.expect("version"), 0);
}

/// NoStream, Exact and Any behave as documented.
pub async fn expected_versions<S: EventStore>(store: &S) {
    let stream = unique_stream("expected");
    append_ok(
        store,
        request(&stream, ExpectedVersion::NoStream, events(2)),
    )
    .await;
    assert_conflict(
        store
            .append(request(&stream, ExpectedVersion::NoStream, events(1)))
            .await,
        &stream,
        2,
    );
    append_ok(
        store,
        request(&stream, ExpectedVersion::Exact(2), events(1)),
    )
    .await;
    assert_conflict(
        store
            .append(request(&stream, ExpectedVersion::Exact(2), events(1)))
            .await,
        &stream,
        3,
    );
    let any = append_ok(store, request(&stream, ExpectedVersion::Any, events(2))).await;
    assert_eq!(any[0].stream_version, 4);
    assert_eq!(any[1].stream_version, 5);

    let fresh = unique_stream("expected-exact-zero");
    append_ok(store, request(&fresh, ExpectedVersion::Exact(0), events(1))).await;
    let any_fresh = unique_stream("expected-any");
    append_ok(store, request(&any_fresh, ExpectedVersion::Any, events(1))).await;
}

/// A conflict reports the actual version and appends nothing at all.
pub async fn conflict_appends_nothing<S: EventStore>(store: &S) {
    let stream = unique_stream("conflict");
    append_ok(
        store,
        request(&stream, ExpectedVersion::NoStream, events(4)),
    )
    .await;
    let head = store.head_position().await.expect("head");
    let refused = request(&stream, ExpectedVersion::Exact(1), events(3));
    let command_id = refused.command_id;
    assert_conflict(store.append(refused).await, &stream, 4);
    assert_eq!(store.head_position().await.expect("head"), head);
    assert_eq!(store.stream_version(&stream).await.expect("version"), 4);
    assert_eq!(
        store.find_command(command_id).await.expect("find_command"),
        None,
        "a refused command is not recorded, so it may be retried"
    );
}

/// Global positions continue the head by one per event, across streams and commands.
pub async fn global_positions_are_gap_free<S: EventStore>(store: &S) {
    let head = store.head_position().await.expect("head");
    let first = unique_stream("gap-free-a");
    let second = unique_stream("gap-free-b");
    let mut appended = Vec::new();
    appended.extend(append_ok(store, request(&first, ExpectedVersion::NoStream, events(2))).await);
    appended.extend(
        append_ok(
            store,
            request(&second, ExpectedVersion::NoStream, events(1)),
        )
        .await,
    );
    let _ = store
        .append(request(&first, ExpectedVersion::NoStream, events(5)))
        .await;
    appended.extend(append_ok(store, request(&first, ExpectedVersion::Exact(2), events(3))).await);
    let positions: Vec<u64> = appended.iter().map(|event| event.global_position).collect();
    let expected: Vec<u64> = (head + 1..=head + 6).collect();
    assert_eq!(positions, expected, "no gap, even after a refused append");
    assert_eq!(store.head_position().await.expect("head"), head + 6);
    assert_eq!(store.read_all(head, 100).await.expect("read_all"), appended);
}

/// Retrying a command returns its original events and appends nothing.
pub async fn command_retry_returns_original_events<S: EventStore>(store: &S) {
    let stream = unique_stream("retry");
    let original = request(&stream, ExpectedVersion::NoStream, events(2));
    let appended = append_ok(store, original.clone()).await;
    let head = store.head_position().await.expect("head");

    let mut retry = original.clone();
    // A retry regenerates event ids; the command id alone decides.
    retry.events = events(2);
    match store.append(retry).await {
        Ok(AppendOutcome::AlreadyApplied(events)) => assert_eq!(events, appended),
        other => panic!("expected AlreadyApplied, got {other:?}"),
    }
    assert_eq!(store.head_position().await.expect("head"), head);
    assert_eq!(
        store.find_command(original.command_id).await.expect("find"),
        Some(appended)
    );
    assert_eq!(
        store.find_command(Uuid::now_v7()).await.expect("find"),
        None
    );
}

/// A command that produced no events is recorded too, and its retry is recognised.
pub async fn command_without_events_is_idempotent<S: EventStore>(store: &S) {
    let stream = unique_stream("no-events");
    let empty = request(&stream, ExpectedVersion::NoStream, Vec::new());
    let head = store.head_position().await.expect("head");
    match store.append(empty.clone()).await {
        Ok(AppendOutcome::Appended(events)) => assert!(events.is_empty()),
        other => panic!("expected an empty Appended, got {other:?}"),
    }
    match store.append(empty.clone()).await {
        Ok(AppendOutcome::AlreadyApplied(events)) => assert!(events.is_empty()),
        other => panic!("expected an empty AlreadyApplied, got {other:?}"),
    }
    assert_eq!(store.head_position().await.expect("head"), head);
    assert_eq!(
        store.find_command(empty.command_id).await.expect("find"),
        Some(Vec::new())
    );
}

/// A retry whose expected version has gone stale is still AlreadyApplied, not a conflict.
pub async fn command_retry_with_stale_expected_version<S: EventStore>(store: &S) {
    let stream = unique_stream("stale-retry");
    let original = request(&stream, ExpectedVersion::NoStream, events(1));
    let appended = append_ok(store, original.clone()).await;
    append_ok(
        store,
        request(&stream, ExpectedVersion::Exact(1), events(2)),
    )
    .await;
    match store.append(original).await {
        Ok(AppendOutcome::AlreadyApplied(events)) => assert_eq!(events, appended),
        other => panic!("expected AlreadyApplied before the version check, got {other:?}"),
    }
    assert_eq!(store.stream_version(&stream).await.expect("version"), 3);
}

/// read_all pages in global order by the last position read.
pub async fn read_all_pages<S: EventStore>(store: &S) {
    let head = store.head_position().await.expect("head");
    let stream_a = unique_stream("pages-a");
    let stream_b = unique_stream("pages-b");
    let mut appended = Vec::new();
    for round in 0..5_u64 {
        let expected = if round == 0 {
            ExpectedVersion::NoStream
        } else {
            ExpectedVersion::Exact(round * 3)
        };
        appended.extend(append_ok(store, request(&stream_a, expected, events(3))).await);
        appended
            .extend(append_ok(store, request(&stream_b, ExpectedVersion::Any, events(2))).await);
    }
    let mut paged = Vec::new();
    let mut after = head;
    loop {
        let page = store.read_all(after, 7).await.expect("read_all");
        assert!(page.len() <= 7, "a page holds at most `limit` events");
        let Some(last) = page.last() else { break };
        after = last.global_position;
        paged.extend(page);
    }
    assert_eq!(paged, appended);
    assert!(store.read_all(head, 0).await.expect("read_all").is_empty());
    assert!(
        store
            .read_all(u64::MAX - 1, 10)
            .await
            .expect("read_all")
            .is_empty()
    );
}

/// replay lends the events read_all returns, in order, at most `limit` of them, and stops at the visitor's
/// first error, which is what it returns.
pub async fn replay_visits_what_read_all_returns<S: EventStore>(store: &S) {
    let head = store.head_position().await.expect("head");
    let streams = [unique_stream("replay-a"), unique_stream("replay-b")];
    let mut appended = Vec::new();
    for round in 0..4 {
        let stream = &streams[round % 2];
        appended.extend(append_ok(store, request(stream, ExpectedVersion::Any, events(5))).await);
    }
    assert_eq!(
        store.read_all(head, usize::MAX).await.expect("read_all"),
        appended
    );
    for limit in [usize::MAX, 21, 20, 7, 1, 0] {
        let expected: Vec<RecordedEvent> = appended.iter().take(limit).cloned().collect();
        assert_eq!(
            replayed(store, head, limit).await,
            expected,
            "replay({head}, {limit})"
        );
    }
    let from_the_middle = appended[12].global_position;
    assert_eq!(
        replayed(store, from_the_middle, usize::MAX).await,
        appended[13..]
    );
    let (stopped, seen) = replay_stopping_at(store, head, appended[9].global_position).await;
    assert!(
        matches!(&stopped, Err(StoreError::Invalid(reason)) if reason == VISITOR_STOPS),
        "expected the visitor's error, got {stopped:?}"
    );
    assert_eq!(
        seen,
        appended[..10]
            .iter()
            .map(|event| event.global_position)
            .collect::<Vec<_>>(),
        "nothing is visited after the visitor's error"
    );
}

/// The error [`replay_stopping_at`]'s visitor returns.
pub const VISITOR_STOPS: &str = "the visitor stops here";

/// What a replay after `after` of at most `limit` events visited, as owned events (the count it answers is
/// checked against them).
pub async fn replayed<S: EventStore>(store: &S, after: u64, limit: usize) -> Vec<RecordedEvent> {
    let mut visited = Vec::new();
    let count = store
        .replay(after, limit, |view| {
            visited.push(view.to_recorded());
            Ok::<(), StoreError>(())
        })
        .await
        .expect("replays");
    assert_eq!(
        count,
        visited.len() as u64,
        "replay({after}, {limit})'s count"
    );
    visited
}

/// A replay after `after` whose visitor fails with [`VISITOR_STOPS`] on the event at `stop_at`: what it
/// answered, and the positions it lent the visitor.
pub async fn replay_stopping_at<S: EventStore>(
    store: &S,
    after: u64,
    stop_at: u64,
) -> (Result<u64, StoreError>, Vec<u64>) {
    let mut seen = Vec::new();
    let stopped = store
        .replay(after, usize::MAX, |view| {
            seen.push(view.global_position);
            if view.global_position == stop_at {
                Err(StoreError::Invalid(VISITOR_STOPS.to_owned()))
            } else {
                Ok(())
            }
        })
        .await;
    (stopped, seen)
}

/// verify finds an intact log intact and reports its head.
pub async fn verify_intact_log<S: EventStore>(store: &S) {
    let stream = unique_stream("verify");
    append_ok(
        store,
        request(&stream, ExpectedVersion::NoStream, events(3)),
    )
    .await;
    let head = store.head_position().await.expect("head");
    let last = store.read_all(head - 1, 1).await.expect("read_all");
    let report = store.verify().await.expect("verify");
    assert_eq!(report.first_break, None, "an intact log verifies");
    assert_eq!(report.events_checked, head);
    assert_eq!(report.head, Some((head, last[0].hash)));
    assert!(report.streams_checked >= 1);
}

/// Asserts a version conflict on `stream` at `actual`.
pub fn assert_conflict(result: Result<AppendOutcome, AppendError>, stream: &StreamId, actual: u64) {
    match result {
        Err(AppendError::Conflict {
            stream_id,
            actual: reported,
            ..
        }) => {
            assert_eq!(&stream_id, stream);
            assert_eq!(reported, actual, "the conflict reports the actual version");
        }
        other => panic!("expected a conflict at version {actual}, got {other:?}"),
    }
}
