//! The checkpoint seam on both backends: saved positions survive a reopen, names are independent, and a
//! durable subscription resumes after what it acknowledged and refuses to acknowledge what it was not given.

use std::sync::Arc;

use mmonboard_eventlog::conformance::{append_ok, events, request, unique_stream};
use mmonboard_eventlog::testing::TestDatabase;
use mmonboard_eventlog::{
    Checkpoints, DurableSubscription, EventStore, ExpectedVersion, StoreError, SubscriptionOptions,
    backend_tests,
};

use crate::support::{close_shared, open_log};

async fn checkpoints_are_saved_per_name_and_survive_a_reopen(database: &TestDatabase) {
    let log = open_log(database).await;
    let checkpoints = Checkpoints::open(database.url()).await.expect("open");
    assert_eq!(checkpoints.load("never-saved").await.expect("load"), 0);
    checkpoints.save("projector", 7).await.expect("save");
    checkpoints.save("relay", 3).await.expect("save");
    checkpoints.save("projector", 12).await.expect("save again");
    let large = i64::MAX as u64;
    checkpoints
        .save("far", large)
        .await
        .expect("save a large position");
    assert!(matches!(
        checkpoints.save("too-far", u64::MAX).await,
        Err(StoreError::Invalid(_))
    ));
    checkpoints.close().await;

    let reopened = Checkpoints::open(database.url()).await.expect("reopen");
    assert_eq!(reopened.load("projector").await.expect("load"), 12);
    assert_eq!(reopened.load("relay").await.expect("load"), 3);
    assert_eq!(reopened.load("far").await.expect("load"), large);
    assert_eq!(reopened.load("too-far").await.expect("load"), 0);
    reopened.close().await;
    log.close().await;
}

async fn a_durable_subscription_resumes_after_its_acknowledgement(database: &TestDatabase) {
    let store = Arc::new(open_log(database).await);
    let stream = unique_stream("durable");
    append_ok(
        &*store,
        request(&stream, ExpectedVersion::NoStream, events(5)),
    )
    .await;
    let checkpoints = Arc::new(Checkpoints::open(database.url()).await.expect("open"));
    let options = SubscriptionOptions::default();

    let blank =
        DurableSubscription::resume(Arc::clone(&store), Arc::clone(&checkpoints), " ", options)
            .await;
    assert!(
        matches!(blank, Err(StoreError::Invalid(_))),
        "a blank name is refused"
    );

    let mut first = DurableSubscription::resume(
        Arc::clone(&store),
        Arc::clone(&checkpoints),
        "reader",
        options,
    )
    .await
    .expect("resume");
    let batch = first.next_batch().await.expect("a batch");
    assert_eq!(batch.len(), 5);
    assert!(
        matches!(first.acknowledge(6).await, Err(StoreError::Invalid(_))),
        "acknowledging past what was delivered is refused"
    );
    first.acknowledge(3).await.expect("acknowledge");
    drop(first);

    let mut second = DurableSubscription::resume(
        Arc::clone(&store),
        Arc::clone(&checkpoints),
        "reader",
        options,
    )
    .await
    .expect("resume");
    assert_eq!(second.acknowledged(), 3);
    let batch = second.next_batch().await.expect("a batch");
    let positions: Vec<u64> = batch.iter().map(|event| event.global_position).collect();
    assert_eq!(
        positions,
        vec![4, 5],
        "at least once: what was not acknowledged comes again"
    );
    assert_eq!(second.lag().await.expect("lag"), 0);
    drop(second);
    checkpoints.close().await;
    assert_eq!(store.head_position().await.expect("head"), 5);
    close_shared(store).await;
}

backend_tests!(
    checkpoints_are_saved_per_name_and_survive_a_reopen,
    a_durable_subscription_resumes_after_its_acknowledgement,
);
