//! Snapshots and the cache of folds in the command path, on both backends: a long stream is folded from its
//! snapshot into exactly the state a full replay gives; deleting every snapshot changes nothing but speed; a
//! snapshot the log does not agree with is ignored; a snapshot that cannot be stored never fails a command;
//! and a cached fold gone stale (another process appended) is never answered from nor decided on.

use std::time::Duration;

use chrono::TimeDelta;
use mmonboard_app::{CommandContext, ManualClock, OnboardingService, ServiceOptions, ServiceStats};
use mmonboard_domain::snapshot::fingerprint;
use mmonboard_domain::{DomainConfig, OnboardingCommand, Phase};
use mmonboard_eventlog::testing::TestDatabase;
use mmonboard_eventlog::{
    EventLog, EventStore, LogOptions, SnapshotStore, StoredSnapshot, StreamId, backend_tests,
};

use crate::service::{portfolio, start_time, to_live, use_template};

type Service = OnboardingService<EventLog, ManualClock>;

const EVERY: u64 = 10;

async fn service(database: &TestDatabase, clock: &ManualClock, snapshots: bool) -> Service {
    service_every(database, clock, snapshots, EVERY).await
}

/// A service that stores a snapshot every `every` events (0: reads snapshots but never stores one).
async fn service_every(
    database: &TestDatabase,
    clock: &ManualClock,
    snapshots: bool,
    every: u64,
) -> Service {
    let log = EventLog::open(database.url(), &LogOptions::default())
        .await
        .expect("the log opens");
    let service = OnboardingService::new(log, clock.clone(), DomainConfig::default()).with_options(
        ServiceOptions {
            snapshot_every: every,
            ..ServiceOptions::default()
        },
    );
    if snapshots {
        let store = SnapshotStore::open(database.url())
            .await
            .expect("the snapshots open");
        service.with_snapshots(store)
    } else {
        service
    }
}

fn stream() -> StreamId {
    StreamId::parse(format!("portfolio-{}", portfolio())).expect("a stream id")
}

async fn accept(service: &Service, command: &OnboardingCommand) {
    service
        .execute(&portfolio(), command, &CommandContext::new("test"))
        .await
        .expect("no infrastructure failure")
        .unwrap_or_else(|refusal| panic!("{} refused: {refusal}", command.type_name()));
}

/// Live, one template, then `uses` uses of it: 9 + `uses` events.
async fn long_history(service: &Service, clock: &ManualClock, uses: usize) {
    for command in to_live() {
        accept(service, &command).await;
    }
    clock.advance(TimeDelta::minutes(15));
    accept(service, &OnboardingCommand::CompleteSync {}).await;
    accept(
        service,
        &OnboardingCommand::ChangeTemplate {
            waba_id: crate::service::waba(),
            template_id: crate::service::template(),
            name: mmonboard_domain::ids::TemplateName::parse("offer").expect("valid"),
            language: mmonboard_domain::ids::TemplateLanguage::parse("en_US").expect("valid"),
            category: mmonboard_domain::facts::TemplateCategory::Marketing,
        },
    )
    .await;
    for _ in 0..uses {
        clock.advance(TimeDelta::seconds(1));
        accept(service, &use_template()).await;
    }
}

/// Waits (bounded) until the service's counters satisfy `done`: snapshots are stored in the background.
async fn until(service: &Service, what: &str, done: impl Fn(&ServiceStats) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let stats = service.stats();
        if done(&stats) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: still {stats:?}"
        );
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn a_long_stream_folds_from_its_snapshot_into_the_replayed_state(database: &TestDatabase) {
    let clock = ManualClock::starting_at(start_time());
    let writer = service(database, &clock, true).await;
    long_history(&writer, &clock, 26).await;
    // 35 events: the stream passed 10, 20 and 30.
    until(&writer, "three snapshots stored", |stats| {
        stats.snapshots_written == 3
    })
    .await;
    assert_eq!(writer.stats().snapshot_write_failures, 0);
    let snapshots = writer.snapshots().expect("snapshots").clone();
    let stored = snapshots
        .load(&stream(), fingerprint())
        .await
        .expect("load")
        .expect("a snapshot");
    assert_eq!(stored.stream_version, 30);

    let live = writer.load(&portfolio()).await.expect("loads");
    assert_eq!(live.version(), 35);
    let from_snapshot = service(database, &clock, true).await;
    assert_eq!(from_snapshot.load(&portfolio()).await.expect("loads"), live);
    assert_eq!(from_snapshot.stats().snapshots_used, 1);
    let replayed = service(database, &clock, false).await;
    assert_eq!(replayed.load(&portfolio()).await.expect("loads"), live);

    // Deleting every snapshot changes nothing but speed.
    assert_eq!(snapshots.clear().await.expect("clear"), 1);
    let without = service(database, &clock, true).await;
    assert_eq!(without.load(&portfolio()).await.expect("loads"), live);
    assert_eq!(without.stats().snapshots_used, 0);
    // Having folded 35 events from the log, it stores a snapshot of them for next time.
    until(&without, "a snapshot after a long fold", |stats| {
        stats.snapshots_written == 1
    })
    .await;
    let stored = snapshots
        .load(&stream(), fingerprint())
        .await
        .expect("load")
        .expect("a snapshot");
    assert_eq!(stored.stream_version, 35);
    // And a command on it goes on from there.
    accept(&service(database, &clock, true).await, &use_template()).await;
    assert_eq!(
        replayed.load(&portfolio()).await.expect("loads").version(),
        36
    );
}

async fn a_snapshot_the_log_does_not_agree_with_is_ignored(database: &TestDatabase) {
    let clock = ManualClock::starting_at(start_time());
    // The readers below never store a snapshot: one stored in the background would race the test's own.
    let writer = service(database, &clock, false).await;
    long_history(&writer, &clock, 5).await;
    let live = writer.load(&portfolio()).await.expect("loads");
    let snapshots = SnapshotStore::open(database.url()).await.expect("open");
    let events = writer
        .store()
        .read_stream(&stream(), 0)
        .await
        .expect("read");
    // The state after 3 events, stored as if it were the state after 12 (its event id is the 12th's).
    let mut early = mmonboard_domain::Aggregate::new(portfolio());
    for recorded in &events[..3] {
        early
            .apply(&mmonboard_app::codec::decode(recorded).expect("decodes"))
            .expect("folds");
    }
    let mut state = early.to_snapshot().expect("a snapshot");
    let wrong_version = StoredSnapshot {
        stream_version: 12,
        last_event_id: events[11].event_id,
        state: state.clone(),
    };
    snapshots
        .save(&stream(), fingerprint(), &wrong_version)
        .await
        .expect("save");
    let reader = service_every(database, &clock, true, 0).await;
    assert_eq!(reader.load(&portfolio()).await.expect("loads"), live);
    assert_eq!(reader.stats().snapshots_rejected, 1);

    // The right state under an event id the log does not have at that version.
    snapshots.clear().await.expect("clear");
    let stale = StoredSnapshot {
        stream_version: 3,
        last_event_id: events[4].event_id,
        state: state.clone(),
    };
    snapshots
        .save(&stream(), fingerprint(), &stale)
        .await
        .expect("save");
    let reader = service_every(database, &clock, true, 0).await;
    assert_eq!(reader.load(&portfolio()).await.expect("loads"), live);
    assert_eq!(reader.stats().snapshots_rejected, 1);

    // Damaged bytes under the right key.
    snapshots.clear().await.expect("clear");
    state.truncate(state.len() / 2);
    let damaged = StoredSnapshot {
        stream_version: 3,
        last_event_id: events[2].event_id,
        state,
    };
    snapshots
        .save(&stream(), fingerprint(), &damaged)
        .await
        .expect("save");
    let reader = service_every(database, &clock, true, 0).await;
    assert_eq!(reader.load(&portfolio()).await.expect("loads"), live);
    assert_eq!(reader.stats().snapshots_rejected, 1);

    // Another build's snapshot is never even looked at.
    snapshots.clear().await.expect("clear");
    let good = StoredSnapshot {
        stream_version: 3,
        last_event_id: events[2].event_id,
        state: early.to_snapshot().expect("a snapshot"),
    };
    snapshots
        .save(&stream(), "another-build", &good)
        .await
        .expect("save");
    let reader = service_every(database, &clock, true, 0).await;
    assert_eq!(reader.load(&portfolio()).await.expect("loads"), live);
    assert_eq!(reader.stats().snapshots_used, 0);
    assert_eq!(reader.stats().snapshots_rejected, 0);
    snapshots.close().await;
}

async fn a_snapshot_that_cannot_be_stored_never_fails_a_command(database: &TestDatabase) {
    let clock = ManualClock::starting_at(start_time());
    let writer = service(database, &clock, true).await;
    writer.snapshots().expect("snapshots").close().await;
    long_history(&writer, &clock, 16).await;
    until(&writer, "the failed snapshot writes counted", |stats| {
        stats.snapshot_write_failures == 2
    })
    .await;
    assert_eq!(writer.stats().snapshots_written, 0);
    assert_eq!(writer.stats().accepted, 25);
    let replayed = service(database, &clock, false).await;
    assert_eq!(
        replayed.load(&portfolio()).await.expect("loads"),
        writer.load(&portfolio()).await.expect("loads")
    );
}

async fn a_stale_cached_fold_is_neither_answered_from_nor_decided_on(database: &TestDatabase) {
    let clock = ManualClock::starting_at(start_time());
    let flow = to_live();
    let (start, check, review, submit, accept_terms) =
        (&flow[0], &flow[1], &flow[2], &flow[3], &flow[4]);
    // Two services on one database, as two processes would be.
    let first = service(database, &clock, true).await;
    let second = service(database, &clock, true).await;
    accept(&first, start).await;
    // The other one moves the portfolio on; the first one's cached fold is now behind the log.
    accept(&second, check).await;
    let state = first.current(&portfolio()).await.expect("loads");
    assert_eq!(
        (state.phase(), state.version()),
        (Phase::ReviewingPermissions, 2)
    );

    // Decided on a stale fold, a command the log's state accepts is not refused.
    accept(&second, review).await;
    accept(&first, submit).await;
    assert_eq!(first.stats().refused, 0);

    // Decided on a stale fold and appended, a command conflicts and is decided again on the log's state,
    // which refuses it: the refusal names the phase the portfolio is really in.
    let refusal = second
        .execute(&portfolio(), check, &CommandContext::new("test"))
        .await
        .expect("no infrastructure failure")
        .expect_err("refused after the retry");
    assert_eq!(refusal.phase, Phase::TermsPending);
    assert_eq!(second.stats().conflicts_retried, 1);
    assert_eq!(first.store().head_position().await.expect("head"), 4);

    // Refused on a stale fold, a command is refused only as the log's state refuses it.
    accept(&first, accept_terms).await;
    let refusal = second
        .execute(
            &portfolio(),
            &OnboardingCommand::CompleteSync {},
            &CommandContext::new("test"),
        )
        .await
        .expect("no infrastructure failure")
        .expect_err("refused");
    assert_eq!(refusal.phase, Phase::Connecting);

    let replayed = service(database, &clock, false).await;
    let expected = replayed.load(&portfolio()).await.expect("loads");
    assert_eq!(
        (expected.phase(), expected.version()),
        (Phase::Connecting, 5)
    );
    assert_eq!(first.load(&portfolio()).await.expect("loads"), expected);
    assert_eq!(second.load(&portfolio()).await.expect("loads"), expected);
}

backend_tests!(
    a_long_stream_folds_from_its_snapshot_into_the_replayed_state,
    a_snapshot_the_log_does_not_agree_with_is_ignored,
    a_snapshot_that_cannot_be_stored_never_fails_a_command,
    a_stale_cached_fold_is_neither_answered_from_nor_decided_on,
);
