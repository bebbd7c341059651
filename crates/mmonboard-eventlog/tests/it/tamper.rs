//! Tampering with the file behind the log's back: the triggers refuse it, and when they are
//! dropped first, verify finds the first broken place.

use mmonboard_eventlog::conformance::{append_ok, events, request, unique_stream};
use mmonboard_eventlog::{EventStore, ExpectedVersion, SqliteEventStore};

use crate::support::{TempLog, execute};

/// Ten events on two streams, positions 1..=10.
async fn ten_events(log: &TempLog) -> SqliteEventStore {
    let store = log.open_fast().await;
    let first = unique_stream("tamper-a");
    let second = unique_stream("tamper-b");
    append_ok(
        &store,
        request(&first, ExpectedVersion::NoStream, events(3)),
    )
    .await;
    append_ok(
        &store,
        request(&second, ExpectedVersion::NoStream, events(2)),
    )
    .await;
    append_ok(
        &store,
        request(&first, ExpectedVersion::Exact(3), events(4)),
    )
    .await;
    append_ok(
        &store,
        request(&second, ExpectedVersion::Exact(2), events(1)),
    )
    .await;
    assert_eq!(store.head_position().await.expect("head"), 10);
    assert!(store.verify().await.expect("verify").is_intact());
    store
}

#[tokio::test]
async fn the_triggers_refuse_updates_and_deletes() {
    let log = TempLog::new();
    let store = ten_events(&log).await;
    let mut raw = log.raw_connection().await;
    for sql in [
        "UPDATE events SET payload = '{}' WHERE global_position = 3",
        "DELETE FROM events WHERE global_position = 10",
        "UPDATE commands SET event_count = 0",
        "DELETE FROM commands",
    ] {
        let error = sqlx::query(sql)
            .execute(&mut raw)
            .await
            .expect_err("an append-only table refuses the change");
        assert!(
            error.to_string().contains("append-only"),
            "{sql}: unexpected error {error}"
        );
    }
    assert!(store.verify().await.expect("verify").is_intact());
}

#[tokio::test]
async fn an_edited_payload_breaks_the_chain_there() {
    let log = TempLog::new();
    let store = ten_events(&log).await;
    let mut raw = log.raw_connection().await;
    execute(&mut raw, "DROP TRIGGER events_no_update").await;
    execute(
        &mut raw,
        r#"UPDATE events SET payload = '{"n": 999}' WHERE global_position = 4"#,
    )
    .await;
    let report = store.verify().await.expect("verify");
    let chain_break = report.first_break.expect("a break");
    assert_eq!(chain_break.global_position, 4);
    assert!(
        chain_break.reason.contains("hash"),
        "{}",
        chain_break.reason
    );
    assert_eq!(report.head.map(|(position, _)| position), Some(3));
}

#[tokio::test]
async fn a_deleted_event_is_reported_at_the_gap() {
    let log = TempLog::new();
    let store = ten_events(&log).await;
    let mut raw = log.raw_connection().await;
    execute(&mut raw, "DROP TRIGGER events_no_delete").await;
    execute(&mut raw, "DELETE FROM events WHERE global_position = 6").await;
    let chain_break = store
        .verify()
        .await
        .expect("verify")
        .first_break
        .expect("a break");
    assert_eq!(chain_break.global_position, 6);
    assert!(chain_break.reason.contains("gap"), "{}", chain_break.reason);
}

#[tokio::test]
async fn a_truncated_tail_is_reported() {
    let log = TempLog::new();
    let store = ten_events(&log).await;
    let mut raw = log.raw_connection().await;
    execute(&mut raw, "DROP TRIGGER events_no_delete").await;
    execute(&mut raw, "DELETE FROM events WHERE global_position >= 9").await;
    let chain_break = store
        .verify()
        .await
        .expect("verify")
        .first_break
        .expect("a break");
    assert_eq!(chain_break.global_position, 9);
    assert!(
        chain_break.reason.contains("missing"),
        "{}",
        chain_break.reason
    );
}

#[tokio::test]
async fn a_renumbered_event_is_reported() {
    let log = TempLog::new();
    let store = ten_events(&log).await;
    let mut raw = log.raw_connection().await;
    execute(&mut raw, "DROP TRIGGER events_no_update").await;
    // The last event of its stream (version 7) claims version 8.
    execute(
        &mut raw,
        "UPDATE events SET stream_version = 8 WHERE global_position = 9",
    )
    .await;
    let chain_break = store
        .verify()
        .await
        .expect("verify")
        .first_break
        .expect("a break");
    assert_eq!(chain_break.global_position, 9);
    assert!(
        chain_break.reason.contains("stream version 8 follows 6"),
        "{}",
        chain_break.reason
    );
}
