//! Hooks into the writers of both backends. `AppendObserver` reports every group commit (for metrics).
//! The test-only `CommitHold` holds a batch's transaction open between its insert and its COMMIT, so a test
//! can make commits finish in an order of its choosing and prove that readers still never skip an event; it
//! is hidden from the documentation: no production caller sets it.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Called by the writer after a batch's rows are inserted and before its COMMIT; the writer waits as long
/// as it returns, with the transaction (and the write lock) held.
#[doc(hidden)]
#[derive(Clone)]
pub struct CommitHold(Arc<dyn Fn() -> Duration + Send + Sync>);

impl CommitHold {
    pub fn new(hold: impl Fn() -> Duration + Send + Sync + 'static) -> Self {
        Self(Arc::new(hold))
    }

    pub(crate) async fn wait(&self) {
        let hold = (self.0)();
        if !hold.is_zero() {
            tokio::time::sleep(hold).await;
        }
    }
}

impl fmt::Debug for CommitHold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CommitHold(..)")
    }
}

/// What the writer reports after each group commit: how many appends it took together, how many events they
/// wrote, how long the transaction took, and how long each append waited from its request to its answer
/// (queueing behind other batches included). Failed batches are reported too, with no events written.
#[derive(Debug, Clone, PartialEq)]
pub struct CommittedBatch {
    /// Append requests served by this batch (its group-commit size).
    pub requests: usize,
    /// Events newly written (an append already applied writes none).
    pub events_written: usize,
    /// Requests whose answer was an error.
    pub failed: usize,
    /// From the batch's start to its commit (or failure).
    pub transaction: Duration,
    /// Per request, from the moment it was sent to the writer to its answer.
    pub append_latencies: Vec<Duration>,
}

/// Called by the writer of either backend after every batch, on the writer's task: keep it quick (update a
/// metric, no I/O). This is how the server's metrics see appends and group-commit sizes without the log
/// knowing about any metrics library.
#[derive(Clone)]
pub struct AppendObserver(Arc<dyn Fn(&CommittedBatch) + Send + Sync>);

impl AppendObserver {
    pub fn new(observe: impl Fn(&CommittedBatch) + Send + Sync + 'static) -> Self {
        Self(Arc::new(observe))
    }

    pub(crate) fn observe(&self, batch: &CommittedBatch) {
        (self.0)(batch);
    }
}

impl fmt::Debug for AppendObserver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AppendObserver(..)")
    }
}

/// The report of one batch from its jobs' send times and its replies, for both writers.
pub(crate) fn report<T, E>(
    started: std::time::Instant,
    queued: impl Iterator<Item = std::time::Instant>,
    replies: &[Result<T, E>],
    events_of: impl Fn(&T) -> usize,
) -> CommittedBatch {
    let now = std::time::Instant::now();
    CommittedBatch {
        requests: replies.len(),
        events_written: replies
            .iter()
            .filter_map(|reply| reply.as_ref().ok())
            .map(events_of)
            .sum(),
        failed: replies.iter().filter(|reply| reply.is_err()).count(),
        transaction: now.saturating_duration_since(started),
        append_latencies: queued
            .map(|queued| now.saturating_duration_since(queued))
            .collect(),
    }
}
