//! The skip test, on each backend: 16 writers (16 stores, as 16 processes would be, each with its own
//! writer task and connection) hold every commit open for a random few milliseconds between the insert
//! and the COMMIT, while a subscriber follows the log from 0 on a store of its own and checkpoints as it
//! goes, resuming from its checkpoint now and then as a restarted process would. Every position
//! 1..=N must be delivered exactly once, in order: a log that let a later position become visible
//! before an earlier one (a sequence, say) would make the subscriber checkpoint past the earlier one
//! and lose it for good.

use std::collections::HashSet;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use mmonboard_eventlog::conformance::{append_ok, events, request, unique_stream};
use mmonboard_eventlog::testing::TestDatabase;
use mmonboard_eventlog::{
    CommitHold, EventLog, EventStore, ExpectedVersion, Subscription, SubscriptionOptions,
    backend_tests,
};
use uuid::Uuid;

use crate::support::{close_shared, fast_options, open_log_with};

const WRITERS: usize = 16;
const APPENDERS_PER_WRITER: usize = 3;
const COMMANDS_PER_APPENDER: u64 = 53;
const EVENTS_PER_COMMAND: u64 = 4;
const TOTAL_EVENTS: u64 =
    WRITERS as u64 * APPENDERS_PER_WRITER as u64 * COMMANDS_PER_APPENDER * EVENTS_PER_COMMAND;
/// The longest a commit is held open.
const MAX_HOLD_MICROS: u64 = 3_000;
/// Batches between the subscriber's simulated restarts from its checkpoint.
const RESTART_EVERY: usize = 25;
const DEADLINE: Duration = Duration::from_secs(300);

backend_tests!(no_subscriber_skips_an_event_while_commits_finish_out_of_order);

/// A hold of 0..3 ms, different for every commit: std's randomly keyed hasher over a counter is random
/// enough here and needs no extra crate.
fn random_hold() -> CommitHold {
    let keys = std::collections::hash_map::RandomState::new();
    let counter = AtomicU64::new(0);
    CommitHold::new(move || {
        let draw = keys.hash_one(counter.fetch_add(1, Ordering::Relaxed));
        Duration::from_micros(draw % MAX_HOLD_MICROS)
    })
}

async fn no_subscriber_skips_an_event_while_commits_finish_out_of_order(database: &TestDatabase) {
    const { assert!(TOTAL_EVENTS >= 10_000) };
    let mut options = fast_options();
    options.sqlite.busy_timeout = Duration::from_secs(60);
    options.postgres.lock_timeout = Duration::from_secs(60);
    options.sqlite.hold_commit = Some(random_hold());
    options.postgres.hold_commit = Some(random_hold());
    // Half the writers commit without a hold: on PostgreSQL a writer that wrote last then commits in one
    // call outside a transaction block, racing the held transactions of the others.
    let mut unheld = options.clone();
    unheld.sqlite.hold_commit = None;
    unheld.postgres.hold_commit = None;
    // The subscriber's own store, opened first: it also migrates the database. On PostgreSQL it reads as a
    // binary COPY whenever its head watch knows of an event it has not read, and by SELECT otherwise, so
    // both read paths follow the out-of-order commits.
    let mut reading = fast_options();
    reading.postgres.copy_reads_from = 1;
    let reader = Arc::new(open_log_with(database, &reading).await);
    let mut writers = Vec::new();
    for index in 0..WRITERS {
        let options = if index % 2 == 0 { &options } else { &unheld };
        writers.push(Arc::new(open_log_with(database, options).await));
    }

    let subscriber = tokio::spawn(follow(Arc::clone(&reader)));
    let mut appenders = Vec::new();
    for writer in &writers {
        for _ in 0..APPENDERS_PER_WRITER {
            let writer = Arc::clone(writer);
            appenders.push(tokio::spawn(async move {
                let stream = unique_stream("skip");
                let mut ids = Vec::new();
                for round in 0..COMMANDS_PER_APPENDER {
                    let expected = ExpectedVersion::Exact(round * EVENTS_PER_COMMAND);
                    let appended = append_ok(
                        &*writer,
                        request(&stream, expected, events(EVENTS_PER_COMMAND)),
                    )
                    .await;
                    ids.extend(appended.iter().map(|event| event.event_id));
                }
                ids
            }));
        }
    }
    let mut appended = HashSet::new();
    for appender in appenders {
        appended.extend(appender.await.expect("an appender finished"));
    }
    assert_eq!(appended.len() as u64, TOTAL_EVENTS);

    let (delivered, restarts) = tokio::time::timeout(DEADLINE, subscriber)
        .await
        .expect("the subscriber caught up before the deadline")
        .expect("the subscriber finished");
    assert_eq!(delivered, appended, "every appended event was delivered");
    let batches: u64 = writers
        .iter()
        .map(|writer| writer.committed_batches())
        .sum();
    eprintln!(
        "skip test ({:?}): {} events in {batches} commits held open 0-{} ms, {} delivered in order, \
         skipped 0, subscriber restarted {restarts} times from its checkpoint",
        database.backend(),
        TOTAL_EVENTS,
        MAX_HOLD_MICROS / 1000,
        delivered.len(),
    );
    let report = reader.verify().await.expect("verify");
    assert_eq!(report.first_break, None);
    assert_eq!(report.events_checked, TOTAL_EVENTS);
    for writer in writers {
        close_shared(writer).await;
    }
    close_shared(reader).await;
}

/// Follows the log from 0 until it has delivered [`TOTAL_EVENTS`], asserting that each event is the
/// one after the last (none skipped, none repeated); returns the event ids delivered and the number of
/// restarts.
async fn follow(store: Arc<EventLog>) -> (HashSet<Uuid>, usize) {
    let options = SubscriptionOptions {
        page_size: 200,
        // Other stores' commits reach this one's head watch only through NOTIFY on PostgreSQL; SQLite
        // relies on the poll.
        poll_interval: Duration::from_millis(5),
    };
    let mut checkpoint = 0;
    let mut subscription = Subscription::after(Arc::clone(&store), checkpoint, options);
    let mut delivered = HashSet::new();
    let mut batches = 0;
    let mut restarts = 0;
    while checkpoint < TOTAL_EVENTS {
        let batch = subscription.next_batch().await.expect("a batch");
        for event in &batch {
            assert_eq!(
                event.global_position,
                checkpoint + 1,
                "delivered out of order or with a gap after {checkpoint}"
            );
            assert!(delivered.insert(event.event_id), "an event delivered twice");
            checkpoint = event.global_position;
        }
        batches += 1;
        if batches % RESTART_EVERY == 0 {
            // A restarted subscriber resumes after its checkpoint: whatever it skipped is lost for good.
            subscription = Subscription::after(Arc::clone(&store), checkpoint, options);
            restarts += 1;
        }
    }
    drop(subscription);
    (delivered, restarts)
}
