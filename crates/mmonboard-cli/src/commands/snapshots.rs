//! `mmonboard snapshots rebuild|clear`: the aggregate snapshots beside the log. Rebuilding folds the whole log
//! once, in global order, and stores each long enough portfolio's state under this build's fingerprint (the
//! snapshots other builds wrote are deleted: this build never reads them). Clearing deletes them all. Either
//! way the log is only read: a snapshot is a cache of its fold.

use std::collections::HashMap;

use mmonboard_app::AppError;
use mmonboard_app::codec::{decode, portfolio_of};
use mmonboard_domain::Aggregate;
use mmonboard_domain::snapshot::fingerprint;
use mmonboard_eventlog::{EventStore, SnapshotStore, StoredSnapshot, StreamId};
use serde_json::json;
use uuid::Uuid;

use crate::commands::{Failure, open, print_json};
use crate::exit;

/// Events read from the log per page.
const PAGE: usize = 4_096;

pub(crate) async fn rebuild(database: &str, every: u64, as_json: bool) -> Result<u8, Failure> {
    let store = open(database).await?;
    let snapshots = SnapshotStore::open(database).await?;
    let started = std::time::Instant::now();
    let outcome = rebuild_on(&store, &snapshots, every).await;
    snapshots.close().await;
    store.close().await;
    let (events, stored, removed) = outcome?;
    let seconds = started.elapsed().as_secs_f64();
    if as_json {
        print_json(&json!({
            "events_folded": events,
            "snapshots_stored": stored,
            "other_builds_removed": removed,
            "fingerprint": fingerprint(),
        }))?;
    } else {
        out!(
            "folded {events} events in {seconds:.2} s; stored {stored} snapshots (portfolios with at least {every} events); removed {removed} of other builds"
        );
    }
    Ok(exit::OK)
}

pub(crate) async fn clear(database: &str, as_json: bool) -> Result<u8, Failure> {
    // The log is opened (not created here) so that a mistyped path is an error naming it, as everywhere.
    let store = open(database).await?;
    let snapshots = SnapshotStore::open(database).await?;
    let cleared = snapshots.clear().await;
    snapshots.close().await;
    store.close().await;
    let cleared = cleared?;
    if as_json {
        print_json(&json!({ "snapshots_deleted": cleared }))?;
    } else {
        out!("deleted {cleared} snapshots");
    }
    Ok(exit::OK)
}

/// Folds the log into one aggregate per portfolio and stores those with at least `every` events: (events
/// folded, snapshots stored, other builds' snapshots removed).
async fn rebuild_on(
    store: &impl EventStore,
    snapshots: &SnapshotStore,
    every: u64,
) -> Result<(u64, u64, u64), Failure> {
    let removed = snapshots.remove_other_fingerprints(fingerprint()).await?;
    let mut folds: HashMap<StreamId, (Aggregate, Uuid)> = HashMap::new();
    let mut after = 0;
    let mut events = 0;
    loop {
        let page = store.read_all(after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.global_position;
        for recorded in &page {
            let Some(portfolio_id) = portfolio_of(&recorded.stream_id) else {
                continue;
            };
            let (aggregate, last_event_id) = folds
                .entry(recorded.stream_id.clone())
                .or_insert_with(|| (Aggregate::new(portfolio_id), recorded.event_id));
            let corrupt = |reason: String| AppError::Corrupt {
                stream_id: recorded.stream_id.clone(),
                version: recorded.stream_version,
                reason,
            };
            if recorded.stream_version != aggregate.version() + 1 {
                return Err(corrupt(format!(
                    "expected stream version {}",
                    aggregate.version() + 1
                ))
                .into());
            }
            let event = decode(recorded).map_err(|error| corrupt(error.to_string()))?;
            aggregate
                .apply(&event)
                .map_err(|error| corrupt(error.to_string()))?;
            *last_event_id = recorded.event_id;
            events += 1;
        }
    }
    let mut stored = 0;
    for (stream_id, (aggregate, last_event_id)) in folds {
        if aggregate.version() < every {
            continue;
        }
        let state = aggregate.to_snapshot().map_err(|error| AppError::Corrupt {
            stream_id: stream_id.clone(),
            version: aggregate.version(),
            reason: error.to_string(),
        })?;
        let snapshot = StoredSnapshot {
            stream_version: aggregate.version(),
            last_event_id,
            state,
        };
        snapshots.save(&stream_id, fingerprint(), &snapshot).await?;
        stored += 1;
    }
    Ok((events, stored, removed))
}
