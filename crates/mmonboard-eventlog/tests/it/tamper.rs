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
    let sql = match database.backend() {
        TestBackend::Sqlite => format!("DROP TRIGGER {trigger}; {sql}"),
        TestBackend::Postgres => format!(
            "BEGIN; ALTER TABLE events DISABLE TRIGGER {trigger}; {sql}; \
             ALTER TABLE events ENABLE TRIGGER {trigger}; COMMIT"
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
