//! Another process holding SQLite's write lock: the append waits for the busy timeout, fails
//! with Busy and writes nothing, and works once the lock is released.

use std::time::Duration;

use mmonboard_eventlog::conformance::{append_ok, events, request, unique_stream};
use mmonboard_eventlog::{AppendError, EventStore, ExpectedVersion, SqliteOptions, StoreError};

use crate::support::{TempLog, execute};

#[tokio::test]
async fn a_held_write_lock_makes_appends_busy_until_released() {
    let log = TempLog::new();
    let busy_timeout = Duration::from_millis(50);
    let store = log
        .open_with(SqliteOptions {
            busy_timeout,
            ..SqliteOptions::default()
        })
        .await;
    let stream = unique_stream("busy");
    append_ok(
        &store,
        request(&stream, ExpectedVersion::NoStream, events(1)),
    )
    .await;

    let mut other_process = log.raw_connection().await;
    execute(&mut other_process, "BEGIN IMMEDIATE").await;
    match store
        .append(request(&stream, ExpectedVersion::Exact(1), events(1)))
        .await
    {
        Err(AppendError::Store(StoreError::Busy { waited })) => {
            assert_eq!(waited, busy_timeout);
            let message = StoreError::Busy { waited }.to_string();
            assert_eq!(message, "the event log is busy: no write lock within 50ms");
        }
        other => panic!("expected Busy, got {other:?}"),
    }
    // Readers are not blocked by a writer under WAL.
    assert_eq!(store.stream_version(&stream).await.expect("version"), 1);
    execute(&mut other_process, "ROLLBACK").await;

    let appended = append_ok(
        &store,
        request(&stream, ExpectedVersion::Exact(1), events(1)),
    )
    .await;
    assert_eq!(
        appended[0].global_position, 2,
        "the busy append wrote nothing"
    );
    store.close().await;
}
