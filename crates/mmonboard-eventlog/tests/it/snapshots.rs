//! The snapshot seam on both backends: a snapshot is found only under its stream and fingerprint, a later one
//! replaces it but an earlier one never does, bad input is refused naming what was wrong, snapshots survive a
//! reopen, and clearing or removing other builds' snapshots deletes exactly those.

use mmonboard_eventlog::conformance::unique_stream;
use mmonboard_eventlog::testing::TestDatabase;
use mmonboard_eventlog::{SnapshotStore, StoreError, StoredSnapshot, backend_tests};
use uuid::Uuid;

use crate::support::open_log;

fn snapshot(version: u64, state: &[u8]) -> StoredSnapshot {
    StoredSnapshot {
        stream_version: version,
        last_event_id: Uuid::now_v7(),
        state: state.to_vec(),
    }
}

async fn a_snapshot_is_kept_per_stream_and_fingerprint(database: &TestDatabase) {
    let log = open_log(database).await;
    let snapshots = SnapshotStore::open(database.url()).await.expect("open");
    let stream = unique_stream("snap");
    let other_stream = unique_stream("snap");
    assert_eq!(
        snapshots.load(&stream, "build-a").await.expect("load"),
        None
    );

    let first = snapshot(100, b"{\"at\":100}");
    snapshots
        .save(&stream, "build-a", &first)
        .await
        .expect("save");
    assert_eq!(
        snapshots.load(&stream, "build-a").await.expect("load"),
        Some(first.clone())
    );
    assert_eq!(
        snapshots.load(&stream, "build-b").await.expect("load"),
        None
    );
    assert_eq!(
        snapshots
            .load(&other_stream, "build-a")
            .await
            .expect("load"),
        None
    );

    let later = snapshot(200, &[0, 159, 146, 150, 255]);
    snapshots
        .save(&stream, "build-a", &later)
        .await
        .expect("save a later one");
    assert_eq!(
        snapshots.load(&stream, "build-a").await.expect("load"),
        Some(later.clone()),
        "a later snapshot replaces the earlier one, bytes intact"
    );
    snapshots
        .save(&stream, "build-a", &snapshot(150, b"stale"))
        .await
        .expect("an earlier one is accepted");
    assert_eq!(
        snapshots.load(&stream, "build-a").await.expect("load"),
        Some(later.clone()),
        "but never replaces a later one"
    );
    snapshots.close().await;

    let reopened = SnapshotStore::open(database.url()).await.expect("reopen");
    assert_eq!(
        reopened.load(&stream, "build-a").await.expect("load"),
        Some(later)
    );
    assert_eq!(reopened.count("build-a").await.expect("count"), 1);
    reopened.close().await;
    log.close().await;
}

async fn bad_snapshots_are_refused(database: &TestDatabase) {
    let log = open_log(database).await;
    let snapshots = SnapshotStore::open(database.url()).await.expect("open");
    let stream = unique_stream("snap");
    let refused = |result: Result<(), StoreError>, what: &str| match result {
        Err(StoreError::Invalid(message)) => assert!(message.contains(what), "{message}"),
        other => panic!("expected a refusal naming {what}, got {other:?}"),
    };
    refused(
        snapshots.save(&stream, "build-a", &snapshot(0, b"x")).await,
        "stream version",
    );
    refused(
        snapshots
            .save(&stream, "build-a", &snapshot(u64::MAX, b"x"))
            .await,
        "stream version",
    );
    refused(
        snapshots.save(&stream, "", &snapshot(1, b"x")).await,
        "fingerprint",
    );
    assert_eq!(snapshots.count("build-a").await.expect("count"), 0);
    assert_eq!(snapshots.count("").await.expect("count"), 0);
    snapshots.close().await;
    log.close().await;
}

async fn clearing_deletes_every_snapshot_and_other_builds_can_be_removed(database: &TestDatabase) {
    let log = open_log(database).await;
    let snapshots = SnapshotStore::open(database.url()).await.expect("open");
    let (one, two) = (unique_stream("snap"), unique_stream("snap"));
    for stream in [&one, &two] {
        for fingerprint in ["old-build", "this-build"] {
            snapshots
                .save(stream, fingerprint, &snapshot(7, fingerprint.as_bytes()))
                .await
                .expect("save");
        }
    }
    assert_eq!(
        snapshots
            .remove_other_fingerprints("this-build")
            .await
            .expect("remove"),
        2
    );
    assert_eq!(snapshots.count("old-build").await.expect("count"), 0);
    assert_eq!(snapshots.count("this-build").await.expect("count"), 2);
    assert_eq!(snapshots.clear().await.expect("clear"), 2);
    assert_eq!(snapshots.count("this-build").await.expect("count"), 0);
    assert_eq!(
        snapshots.load(&one, "this-build").await.expect("load"),
        None
    );
    snapshots.close().await;
    log.close().await;
}

backend_tests!(
    a_snapshot_is_kept_per_stream_and_fingerprint,
    bad_snapshots_are_refused,
    clearing_deletes_every_snapshot_and_other_builds_can_be_removed,
);
