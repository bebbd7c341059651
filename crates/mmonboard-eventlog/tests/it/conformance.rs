//! The backend-agnostic suite, each check on a fresh SQLite log.

use mmonboard_eventlog::conformance;

use crate::support::TempLog;

macro_rules! conformance_tests {
    ($($check:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $check() {
                let log = TempLog::new();
                let store = log.open().await;
                conformance::$check(&store).await;
                store.close().await;
            }
        )*
    };
}

conformance_tests!(
    append_and_read_round_trip,
    expected_versions,
    conflict_appends_nothing,
    global_positions_are_gap_free,
    command_retry_returns_original_events,
    command_without_events_is_idempotent,
    command_retry_with_stale_expected_version,
    read_all_pages,
    verify_intact_log,
);

/// The checks also hold one after another on a log that is not empty.
#[tokio::test]
async fn run_all_on_one_log() {
    let log = TempLog::new();
    let store = log.open().await;
    conformance::run_all(&store).await;
    conformance::run_all(&store).await;
    store.close().await;
}
