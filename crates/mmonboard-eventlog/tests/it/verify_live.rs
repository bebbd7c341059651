//! `verify` while commands keep landing, on each backend: its cross-check with the command records reads
//! them in one snapshot taken before the event walk, so events and commands appended during the walk never
//! look like missing records or missing events.

use std::sync::Arc;

use mmonboard_eventlog::backend_tests;
use mmonboard_eventlog::conformance::{append_ok, events, request, unique_stream};
use mmonboard_eventlog::testing::TestDatabase;
use mmonboard_eventlog::{EventStore, ExpectedVersion};

use crate::support::{close_shared, open_log};

backend_tests!(verify_beside_appends_finds_the_log_intact);

async fn verify_beside_appends_finds_the_log_intact(database: &TestDatabase) {
    let store = Arc::new(open_log(database).await);
    let appender = {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            let stream = unique_stream("live");
            for round in 0..300_u64 {
                let expected = if round == 0 {
                    ExpectedVersion::NoStream
                } else {
                    ExpectedVersion::Exact(round * 2)
                };
                append_ok(&*store, request(&stream, expected, events(2))).await;
            }
        })
    };
    let mut verified = 0;
    while !appender.is_finished() || verified == 0 {
        let report = store.verify().await.expect("verify");
        assert_eq!(report.first_break, None, "after {verified} intact runs");
        verified += 1;
    }
    appender.await.expect("the appender");
    let report = store.verify().await.expect("verify");
    assert_eq!(report.first_break, None);
    assert_eq!(report.events_checked, 600);
    close_shared(store).await;
}
