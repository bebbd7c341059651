//! The checkpoint signer behind `serve --signing-key`: it signs the chain head every `every_events` events or
//! every `every` (whichever comes first, and only when the head moved), under the supervisor like the other
//! background tasks, and once more at shutdown after the last request finished (`run_with` does that one, so
//! it covers everything the server acknowledged). Each signing checks the chain from the key's previous
//! checkpoint first (`SignedCheckpoints::record`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use mmonboard_app::Clock;
use mmonboard_eventlog::{
    CheckpointError, CheckpointKey, EventLog, HeadWatch, RecordOutcome, SignedCheckpoints,
};
use tokio::sync::watch;

/// How `serve` signs checkpoints.
#[derive(Debug, Clone)]
pub struct CheckpointSetup {
    pub key: CheckpointKey,
    /// Sign when the head is this many events past the last checkpoint.
    pub every_events: u64,
    /// Sign at least this often while the head moves.
    pub every: Duration,
}

/// One run of the signer, until `stop`; `worked` is set after each successful signing or check.
pub(crate) async fn run<C: Clock>(
    store: &Arc<EventLog>,
    checkpoints: &SignedCheckpoints,
    setup: &CheckpointSetup,
    clock: &C,
    mut stop: watch::Receiver<bool>,
    worked: &AtomicBool,
) -> Result<(), CheckpointError> {
    let mut head = store.watch_head();
    let mut signed = checkpoints
        .list()
        .await?
        .iter()
        .filter(|checkpoint| checkpoint.key_id == setup.key.key_id())
        .map(|checkpoint| checkpoint.position)
        .max()
        .unwrap_or(0);
    worked.store(true, Ordering::SeqCst);
    let mut ticks = tokio::time::interval(setup.every.max(Duration::from_millis(10)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick is immediate: a head left unsigned by an earlier run is signed at once.
    let every_events = setup.every_events.max(1);
    loop {
        let due = tokio::select! {
            _ = stop.wait_for(|stopped| *stopped) => return Ok(()),
            changed = head.changed() => {
                if changed.is_err() {
                    return Ok(());
                }
                *head.borrow_and_update() >= signed.saturating_add(every_events)
            }
            _ = ticks.tick() => *head.borrow() > signed,
        };
        if due {
            signed = sign(store, checkpoints, &setup.key, clock)
                .await?
                .unwrap_or(signed);
            worked.store(true, Ordering::SeqCst);
        }
    }
}

/// Signs the head now; the position signed (or already signed), `None` for an empty log.
pub(crate) async fn sign<C: Clock>(
    store: &EventLog,
    checkpoints: &SignedCheckpoints,
    key: &CheckpointKey,
    clock: &C,
) -> Result<Option<u64>, CheckpointError> {
    match checkpoints.record(store, key, clock.now()).await? {
        RecordOutcome::Recorded(checkpoint) => {
            tracing::info!(
                position = checkpoint.position,
                hash = hex::encode(checkpoint.head_hash),
                key_id = checkpoint.key_id,
                "signed a checkpoint of the chain head"
            );
            Ok(Some(checkpoint.position))
        }
        RecordOutcome::AlreadySigned(checkpoint) => Ok(Some(checkpoint.position)),
        RecordOutcome::EmptyLog => Ok(None),
    }
}
