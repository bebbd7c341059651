//! Tampering behind the log's back, on each backend: the triggers refuse updates, deletes (and on
//! PostgreSQL truncation), and when they are dropped or disabled first (as the file's owner or a
//! superuser can), verify finds the first broken place.

use mmonboard_eventlog::conformance::{append_ok, events, request, unique_stream};
use mmonboard_eventlog::testing::{TestBackend, TestDatabase};
use mmonboard_eventlog::{EventLog, EventStore, ExpectedVersion, backend_tests};

use crate::support::{execute_raw, open_log};

backend_tests!(
    the_triggers_refuse_updates_and_deletes,
    an_edited_payload_breaks_the_chain_there,
    a_deleted_event_is_reported_at_the_gap,
    a_truncated_tail_is_reported,
    a_renumbered_event_is_reported,
    a_deleted_command_record_is_reported,
    a_command_record_with_another_count_is_reported,
    a_command_record_moved_to_another_stream_is_reported,
    a_command_record_with_another_time_is_reported,
    a_command_id_spelt_otherwise_is_reported,
    an_event_id_spelt_otherwise_is_reported,
);

/// Ten events on two streams, positions 1..=10.
async fn ten_events(database: &TestDatabase) -> EventLog {
    let store = open_log(database).await;
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

/// Runs `sql` with the append-only triggers out of the way: dropped on SQLite, disabled for the
/// statement's transaction on PostgreSQL.
async fn tamper(database: &TestDatabase, trigger: &str, sql: &str) {
    let table = trigger.split('_').next().unwrap_or("events");
    let sql = match database.backend() {
        TestBackend::Sqlite => format!("DROP TRIGGER {trigger}; {sql}"),
        TestBackend::Postgres => format!(
            "BEGIN; ALTER TABLE {table} DISABLE TRIGGER {trigger}; {sql}; \
             ALTER TABLE {table} ENABLE TRIGGER {trigger}; COMMIT"
        ),
    };
    execute_raw(database, &sql)
        .await
        .unwrap_or_else(|error| panic!("{sql}: {error}"));
}

async fn the_triggers_refuse_updates_and_deletes(database: &TestDatabase) {
    let store = ten_events(database).await;
    let mut refused = vec![
        "UPDATE events SET payload = '{}' WHERE global_position = 3",
        "DELETE FROM events WHERE global_position = 10",
        "UPDATE commands SET event_count = 0",
        "DELETE FROM commands",
    ];
    if database.backend() == TestBackend::Postgres {
        refused.extend(["TRUNCATE events CASCADE", "TRUNCATE commands"]);
    }
    for sql in refused {
        let error = execute_raw(database, sql)
            .await
            .expect_err("an append-only table refuses the change");
        assert!(
            error.to_string().contains("append-only"),
            "{sql}: unexpected error {error}"
        );
    }
    assert!(store.verify().await.expect("verify").is_intact());
    assert_eq!(store.head_position().await.expect("head"), 10);
    store.close().await;
}

async fn an_edited_payload_breaks_the_chain_there(database: &TestDatabase) {
    let store = ten_events(database).await;
    tamper(
        database,
        "events_no_update",
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
    store.close().await;
}

async fn a_deleted_event_is_reported_at_the_gap(database: &TestDatabase) {
    let store = ten_events(database).await;
    tamper(
        database,
        "events_no_delete",
        "DELETE FROM events WHERE global_position = 6",
    )
    .await;
    let chain_break = store
        .verify()
        .await
        .expect("verify")
        .first_break
        .expect("a break");
    assert_eq!(chain_break.global_position, 6);
    assert!(chain_break.reason.contains("gap"), "{}", chain_break.reason);
    store.close().await;
}

async fn a_truncated_tail_is_reported(database: &TestDatabase) {
    let store = ten_events(database).await;
    tamper(
        database,
        "events_no_delete",
        "DELETE FROM events WHERE global_position >= 9",
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
        chain_break.reason.contains("missing"),
        "{}",
        chain_break.reason
    );
    store.close().await;
}

async fn a_renumbered_event_is_reported(database: &TestDatabase) {
    let store = ten_events(database).await;
    // The last event of its stream (version 7) claims version 8.
    tamper(
        database,
        "events_no_update",
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
    store.close().await;
}

/// The first break verify reports after `sql` ran with `trigger` out of the way.
async fn break_after(database: &TestDatabase, trigger: &str, sql: &str) -> (u64, String) {
    let store = ten_events(database).await;
    tamper(database, trigger, sql).await;
    let report = store.verify().await.expect("verify");
    store.close().await;
    let chain_break = report
        .first_break
        .unwrap_or_else(|| panic!("{sql}: verify says the log is intact"));
    (chain_break.global_position, chain_break.reason)
}

// The third command wrote positions 6..=9 of stream tamper-a; the second 4..=5 of tamper-b.

async fn a_deleted_command_record_is_reported(database: &TestDatabase) {
    let (position, reason) = break_after(
        database,
        "commands_no_delete",
        "DELETE FROM commands WHERE first_position = 6",
    )
    .await;
    assert_eq!(position, 6, "{reason}");
    assert!(reason.contains("no command record"), "{reason}");
}

async fn a_command_record_with_another_count_is_reported(database: &TestDatabase) {
    let (position, reason) = break_after(
        database,
        "commands_no_update",
        "UPDATE commands SET event_count = 3 WHERE first_position = 6",
    )
    .await;
    assert_eq!(position, 6, "{reason}");
    assert!(reason.contains("records 3 events"), "{reason}");
}

async fn a_command_record_moved_to_another_stream_is_reported(database: &TestDatabase) {
    let (position, reason) = break_after(
        database,
        "commands_no_update",
        "UPDATE commands SET stream_id = 'elsewhere' WHERE first_position = 4",
    )
    .await;
    assert_eq!(position, 4, "{reason}");
    assert!(reason.contains("\"elsewhere\""), "{reason}");
}

async fn a_command_record_with_another_time_is_reported(database: &TestDatabase) {
    let (position, reason) = break_after(
        database,
        "commands_no_update",
        "UPDATE commands SET recorded_at = recorded_at + 1 WHERE first_position = 10",
    )
    .await;
    assert_eq!(position, 10, "{reason}");
    assert!(reason.contains("recorded at"), "{reason}");
}

/// Upper-casing a UUID's letters keeps the UUID and so its hashed bytes. On SQLite the command id is
/// stored as text, so verify insists on its canonical spelling; on PostgreSQL the metadata is the only
/// place it is text, and the chain hashes that text as stored.
async fn a_command_id_spelt_otherwise_is_reported(database: &TestDatabase) {
    let (trigger, sql, expected) = match database.backend() {
        TestBackend::Sqlite => (
            "commands_no_update",
            "UPDATE commands SET command_id = upper(command_id) WHERE first_position = 4",
            "canonical form",
        ),
        TestBackend::Postgres => (
            "events_no_update",
            "UPDATE events SET metadata = replace(metadata, metadata::json->>'command_id', \
             upper(metadata::json->>'command_id')) WHERE global_position = 4",
            "hash mismatch",
        ),
    };
    let (position, reason) = break_after(database, trigger, sql).await;
    assert_eq!(position, 4, "{reason}");
    assert!(reason.contains(expected), "{reason}");
}

/// On SQLite the event id is text the hash does not cover as such (it covers the UUID's 16 bytes):
/// verify insists on its canonical spelling. PostgreSQL stores a `uuid`, which has one form; the
/// metadata's correlation id is text there and hashed as stored.
async fn an_event_id_spelt_otherwise_is_reported(database: &TestDatabase) {
    let (sql, expected) = match database.backend() {
        TestBackend::Sqlite => (
            "UPDATE events SET event_id = upper(event_id) WHERE global_position = 5",
            "canonical form",
        ),
        TestBackend::Postgres => (
            "UPDATE events SET metadata = replace(metadata, metadata::json->>'correlation_id', \
             upper(metadata::json->>'correlation_id')) WHERE global_position = 5",
            "hash mismatch",
        ),
    };
    let (position, reason) = break_after(database, "events_no_update", sql).await;
    assert_eq!(position, 5, "{reason}");
    assert!(reason.contains(expected), "{reason}");
}
