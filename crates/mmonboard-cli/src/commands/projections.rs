//! `mmonboard projections`: rebuild the read models from the log, or show how far behind they are.

use mmonboard_eventlog::EventStore;
use serde_json::json;

use super::{Failure, invalid_input, open, print_json};
use crate::exit;

const PROJECTION_NAMES: [&str; 4] = ["read_models", "status", "ad_accounts", "templates"];

pub(super) async fn rebuild(database: &str, name: Option<&str>) -> Result<u8, Failure> {
    if let Some(name) = name
        && !PROJECTION_NAMES.contains(&name)
    {
        return invalid_input(&format!(
            "unknown projection {name:?}; known: {}",
            PROJECTION_NAMES.join(", ")
        ));
    }
    let store = std::sync::Arc::new(open(database).await?);
    let read_models = mmonboard_projections::ReadModels::open(database).await?;
    let mut projector = mmonboard_projections::Projector::new(
        std::sync::Arc::clone(&store),
        read_models.clone(),
        mmonboard_projections::ProjectorOptions::default(),
    );
    let started = std::time::Instant::now();
    let bar = crate::progress::events(0);
    let projected = projector
        .rebuild(|position, head| {
            bar.set_length(head);
            bar.set_position(position);
        })
        .await?;
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    out!(
        "rebuilt read_models (status, ad_accounts, templates): {projected} events in {seconds:.2} s ({:.0} events/s)",
        projected as f64 / seconds.max(1e-9)
    );
    drop(projector);
    read_models.close().await;
    if let Ok(store) = std::sync::Arc::try_unwrap(store) {
        store.close().await;
    }
    Ok(exit::OK)
}

pub(super) async fn projection_status(database: &str, as_json: bool) -> Result<u8, Failure> {
    let store = open(database).await?;
    let read_models = mmonboard_projections::ReadModels::open(database).await?;
    let head = store.head_position().await?;
    let checkpoint = read_models
        .checkpoint(mmonboard_projections::STATUS_PROJECTION)
        .await?;
    let lag = head.saturating_sub(checkpoint);
    if as_json {
        print_json(
            &json!({ "projections": [{ "name": mmonboard_projections::STATUS_PROJECTION, "head": head, "checkpoint": checkpoint, "lag": lag }] }),
        )?;
    } else {
        out!(
            "{:<14} {:>10} {:>10} {:>8}",
            "projection",
            "head",
            "checkpoint",
            "lag"
        );
        out!(
            "{:<14} {head:>10} {checkpoint:>10} {lag:>8}",
            mmonboard_projections::STATUS_PROJECTION
        );
    }
    read_models.close().await;
    store.close().await;
    Ok(exit::OK)
}
