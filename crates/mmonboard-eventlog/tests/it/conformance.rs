//! The backend-agnostic suite, each check on a fresh log of each backend.

use mmonboard_eventlog::backend_tests;
use mmonboard_eventlog::conformance;
use mmonboard_eventlog::testing::TestDatabase;

use crate::support::open_log;

macro_rules! conformance_checks {
    ($($check:ident),* $(,)?) => {
        $(
            async fn $check(database: &TestDatabase) {
                let log = open_log(database).await;
                conformance::$check(&log).await;
                log.close().await;
            }
        )*
        backend_tests!($($check),*);
    };
}

conformance_checks!(
    append_and_read_round_trip,
    expected_versions,
    conflict_appends_nothing,
    global_positions_are_gap_free,
    command_retry_returns_original_events,
    command_without_events_is_idempotent,
    command_retry_with_stale_expected_version,
    read_all_pages,
    replay_visits_what_read_all_returns,
    verify_intact_log,
);

/// The checks also hold one after another on a log that is not empty.
async fn run_all_on_one_log(database: &TestDatabase) {
    let log = open_log(database).await;
    conformance::run_all(&log).await;
    conformance::run_all(&log).await;
    log.close().await;
}

backend_tests!(run_all_on_one_log);
