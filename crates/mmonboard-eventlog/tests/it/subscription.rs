//! Subscriptions: catch-up then live without a gap or a repeat at the seam, under concurrent writers;
//! resuming from a durable checkpoint redelivers what was not acknowledged; a slow subscriber holds at
//! most a page; appends by another process are found by polling.

use std::sync::Arc;
use std::time::Duration;

use mmonboard_eventlog::conformance::{append_ok, events, request, unique_stream};
use mmonboard_eventlog::{
    Checkpoints, DurableSubscription, ExpectedVersion, SqliteEventStore, Subscription,
    SubscriptionOptions,
};

use crate::support::TempLog;

const DEADLINE: Duration = Duration::from_secs(60);

async fn append_many(store: &SqliteEventStore, appends: u64) {
    let stream = unique_stream("sub");
    for _ in 0..appends {
        append_ok(store, request(&stream, ExpectedVersion::Any, events(1))).await;
    }
}

/// Read until the subscription has delivered `until`; the positions delivered, in order.
async fn read_until(
    subscription: &mut Subscription<Arc<SqliteEventStore>>,
    until: u64,
) -> Vec<u64> {
    let mut positions = Vec::new();
    tokio::time::timeout(DEADLINE, async {
        while subscription.position() < until {
            let batch = subscription.next_batch().await.expect("a batch");
            assert!(!batch.is_empty(), "a batch is never empty");
            positions.extend(batch.iter().map(|event| event.global_position));
        }
    })
    .await
    .expect("delivered before the deadline");
    positions
}

#[tokio::test]
async fn catch_up_then_live_delivers_every_event_once_in_order_under_concurrent_writers() {
    let log = TempLog::new();
    let store = Arc::new(log.open_fast().await);
    append_many(&store, 50).await;
    let mut subscription = Subscription::after(
        Arc::clone(&store),
        0,
        SubscriptionOptions {
            page_size: 16,
            ..SubscriptionOptions::default()
        },
    );
    let mut delivered = read_until(&mut subscription, 50).await;
    assert_eq!(delivered, (1..=50).collect::<Vec<_>>(), "catch-up");

    let writers: Vec<_> = (0..8)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { append_many(&store, 25).await })
        })
        .collect();
    delivered.extend(read_until(&mut subscription, 250).await);
    for writer in writers {
        writer.await.expect("writer finished");
    }
    assert_eq!(
        delivered,
        (1..=250).collect::<Vec<_>>(),
        "no gap and no repeat across the seam"
    );
    assert_eq!(subscription.lag().await.expect("lag"), 0);
}

#[tokio::test]
async fn a_subscriber_resumes_after_its_checkpoint_and_gets_unacknowledged_events_again() {
    let log = TempLog::new();
    let store = Arc::new(log.open_fast().await);
    append_many(&store, 30).await;
    let checkpoints = Arc::new(Checkpoints::open(&log.url()).await.expect("opens"));
    let options = SubscriptionOptions {
        page_size: 10,
        ..SubscriptionOptions::default()
    };

    let mut first = DurableSubscription::resume(
        Arc::clone(&store),
        Arc::clone(&checkpoints),
        "projector",
        options,
    )
    .await
    .expect("resumes");
    let batch = first.next_batch().await.expect("a batch");
    assert_eq!(batch.last().map(|event| event.global_position), Some(10));
    first.acknowledge(10).await.expect("acknowledged");
    let unacknowledged = first.next_batch().await.expect("a batch");
    assert_eq!(
        unacknowledged.first().map(|event| event.global_position),
        Some(11)
    );
    assert!(
        first.acknowledge(99).await.is_err(),
        "cannot acknowledge what was not delivered"
    );
    drop(first); // crashed before acknowledging 11..=20

    let mut second = DurableSubscription::resume(
        Arc::clone(&store),
        Arc::clone(&checkpoints),
        "projector",
        options,
    )
    .await
    .expect("resumes");
    assert_eq!(second.acknowledged(), 10);
    let again = second.next_batch().await.expect("a batch");
    let positions: Vec<u64> = again.iter().map(|event| event.global_position).collect();
    assert_eq!(
        positions,
        (11..=20).collect::<Vec<_>>(),
        "at least once: 11..=20 come again"
    );
    assert_eq!(second.lag().await.expect("lag"), 10);

    let other =
        DurableSubscription::resume(Arc::clone(&store), checkpoints, "another", options).await;
    assert_eq!(
        other.expect("resumes").acknowledged(),
        0,
        "checkpoints are per name"
    );
}

#[tokio::test]
async fn a_slow_subscriber_never_holds_up_writers_and_holds_at_most_a_page() {
    let log = TempLog::new();
    let store = Arc::new(log.open_fast().await);
    let mut subscription = Subscription::after(
        Arc::clone(&store),
        0,
        SubscriptionOptions {
            page_size: 64,
            ..SubscriptionOptions::default()
        },
    );
    // The subscriber reads while the writers run...
    let writers = {
        let store = Arc::clone(&store);
        tokio::spawn(async move { append_many(&store, 1_000).await })
    };
    let mut positions = Vec::new();
    let first = tokio::time::timeout(DEADLINE, subscription.next_batch())
        .await
        .expect("a first page while the writers run")
        .expect("a batch");
    assert!(
        !first.is_empty() && first.len() <= 64,
        "a batch is at most a page"
    );
    positions.extend(first.iter().map(|event| event.global_position));
    // ...then stops reading: the writers finish all the same.
    tokio::time::timeout(DEADLINE, writers)
        .await
        .expect("the writers finished while the subscriber read nothing")
        .expect("the writers' task");
    // And it catches up a page at a time, missing and repeating nothing.
    tokio::time::timeout(DEADLINE, async {
        while positions.len() < 1_000 {
            let batch = subscription.next_batch().await.expect("a batch");
            assert!(
                !batch.is_empty() && batch.len() <= 64,
                "a batch is at most a page"
            );
            positions.extend(batch.iter().map(|event| event.global_position));
        }
    })
    .await
    .expect("caught up before the deadline");
    assert_eq!(positions, (1..=1_000).collect::<Vec<u64>>());
}

#[tokio::test]
async fn appends_by_another_process_are_found_by_polling() {
    let log = TempLog::new();
    let ours = Arc::new(log.open_fast().await);
    let theirs = log.open_fast().await;
    let mut subscription = Subscription::after(
        Arc::clone(&ours),
        0,
        SubscriptionOptions {
            page_size: 100,
            poll_interval: Duration::from_millis(20),
        },
    );
    let waiting = tokio::spawn(async move {
        let batch = subscription.next_batch().await.expect("a batch");
        batch.len()
    });
    append_many(&theirs, 3).await;
    let delivered = tokio::time::timeout(DEADLINE, waiting)
        .await
        .expect("before the deadline")
        .expect("joined");
    assert!((1..=3).contains(&delivered));
}
