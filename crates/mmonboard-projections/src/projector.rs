//! The projector: reads the log in global order after its checkpoint, folds each event into its portfolio's
//! aggregate, and rewrites the touched portfolios' rows with the new checkpoint in one transaction.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::sync::Arc;

use mmonboard_app::cache::AggregateCache;
use mmonboard_app::codec::{decode, portfolio_of};
use mmonboard_domain::Aggregate;
use mmonboard_domain::ids::PortfolioId;
use mmonboard_eventlog::{EventLog, EventStore, RecordedEvent, Subscription, SubscriptionOptions};

use crate::ProjectionError;
use crate::read_models::{PortfolioRows, ReadModels};

/// The checkpoint name of the read models this projector keeps. Persisted: never rename.
pub const STATUS_PROJECTION: &str = "read_models";

#[derive(Debug, Clone, Copy)]
pub struct ProjectorOptions {
    /// Events per transaction: large pages amortise the per-transaction cost of a rebuild (5,000 events is
    /// a few MiB); a caught-up projector gets whatever is new, usually far fewer.
    pub page_size: usize,
    /// Portfolios whose folded state is kept between batches.
    pub cached_portfolios: usize,
}

impl Default for ProjectorOptions {
    fn default() -> Self {
        Self {
            page_size: 1_000,
            cached_portfolios: 10_000,
        }
    }
}

pub struct Projector {
    store: Arc<EventLog>,
    read_models: ReadModels,
    options: ProjectorOptions,
    cache: AggregateCache<Aggregate>,
}

impl Projector {
    pub fn new(store: Arc<EventLog>, read_models: ReadModels, options: ProjectorOptions) -> Self {
        Self {
            store,
            read_models,
            cache: AggregateCache::new(options.cached_portfolios),
            options,
        }
    }

    pub fn read_models(&self) -> &ReadModels {
        &self.read_models
    }

    /// Events in the log the read models do not reflect yet.
    pub async fn lag(&self) -> Result<u64, ProjectionError> {
        let head = self.store.head_position().await?;
        Ok(head.saturating_sub(self.read_models.checkpoint(STATUS_PROJECTION).await?))
    }

    /// Project everything up to the current head; returns how many events were projected.
    ///
    /// Three pages are at work at once: the next one is read (on the log's read threads) while this one is
    /// folded and the one before it is written (on its own task). A page is folded from the folds of the
    /// page before it as they stand, before that page has committed; those join the cache only once it has,
    /// so the cache never runs ahead of the checkpoint. One write at a time, in order; a failure waits for the
    /// write in flight to end before it is returned, so no write of this catch-up lands after it. Dropped
    /// (cancelled), it aborts the write in flight, which rolls back unless its COMMIT was already sent.
    pub async fn catch_up(
        &mut self,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<u64, ProjectionError> {
        let position = self.read_models.checkpoint(STATUS_PROJECTION).await?;
        let head = self.store.head_position().await?;
        let mut writing: Option<Writing> = None;
        let mut staged = Folds::new();
        let caught_up = self
            .pipelined(position, head, &mut writing, &mut staged, &mut progress)
            .await;
        let last_write = match writing {
            Some(writing) => writing.finish().await.map(Some),
            None => Ok(None),
        };
        let projected = caught_up?;
        if let Some(written_up_to) = last_write? {
            self.remember_all(staged);
            progress(written_up_to, head);
        }
        Ok(projected)
    }

    async fn pipelined(
        &mut self,
        mut position: u64,
        head: u64,
        writing: &mut Option<Writing>,
        staged: &mut Folds,
        progress: &mut impl FnMut(u64, u64),
    ) -> Result<u64, ProjectionError> {
        let page_size = self.options.page_size;
        let mut projected = 0;
        let mut page = if position < head {
            self.store.read_all(position, page_size).await?
        } else {
            Vec::new()
        };
        while let Some(last) = page.last() {
            position = last.global_position;
            let next = (position < head).then(|| {
                let store = Arc::clone(&self.store);
                tokio::spawn(async move { store.read_all(position, page_size).await })
            });
            let touched = self.fold(&page, staged).await?;
            let rows = rows_of(&touched);
            if let Some(previous) = writing.take() {
                let written_up_to = previous.finish().await?;
                // The page before is committed: what this page did not fold further joins the cache.
                self.remember_all(std::mem::take(staged));
                progress(written_up_to, head);
            }
            *staged = touched;
            let read_models = self.read_models.clone();
            *writing = Some(Writing {
                task: Some(tokio::spawn(async move {
                    read_models.write(&rows, STATUS_PROJECTION, position).await
                })),
                up_to: position,
            });
            projected += page.len() as u64;
            page = match next {
                Some(next) => next.await.map_err(join_error)??,
                None => Vec::new(),
            };
        }
        Ok(projected)
    }

    fn remember_all(&mut self, folds: Folds) {
        for (aggregate, _) in folds.into_values() {
            self.cache.remember(*aggregate);
        }
    }

    /// Follow the log for as long as `keep_running` is pending: catch up, then project new events as they
    /// are committed.
    pub async fn run(
        &mut self,
        keep_running: impl std::future::Future<Output = ()>,
    ) -> Result<(), ProjectionError> {
        self.run_observed(keep_running, |_| {}).await
    }

    /// `run`, telling `on_batch` the checkpoint after each batch committed (a supervisor learns from it that
    /// a restarted projector works again).
    pub async fn run_observed(
        &mut self,
        keep_running: impl std::future::Future<Output = ()>,
        mut on_batch: impl FnMut(u64),
    ) -> Result<(), ProjectionError> {
        let position = self.read_models.checkpoint(STATUS_PROJECTION).await?;
        let options = SubscriptionOptions {
            page_size: self.options.page_size,
            ..SubscriptionOptions::default()
        };
        let mut subscription = Subscription::after(Arc::clone(&self.store), position, options);
        tokio::pin!(keep_running);
        loop {
            tokio::select! {
                () = &mut keep_running => return Ok(()),
                batch = subscription.next_batch() => {
                    let batch = batch?;
                    self.project(&batch).await?;
                    if let Some(last) = batch.last() {
                        on_batch(last.global_position);
                    }
                }
            }
        }
    }

    /// Empty the read models and project the whole log again.
    pub async fn rebuild(
        &mut self,
        progress: impl FnMut(u64, u64),
    ) -> Result<u64, ProjectionError> {
        self.read_models.clear(STATUS_PROJECTION).await?;
        self.cache.clear();
        self.catch_up(progress).await
    }

    async fn project(&mut self, batch: &[RecordedEvent]) -> Result<(), ProjectionError> {
        let Some(last) = batch.last() else {
            return Ok(());
        };
        // Folded states of this batch stay staged until the COMMIT: if it fails, the cache holds none of
        // them (nor the folds they were taken from), and the retry folds the same events again.
        let touched = self.fold(batch, &mut Folds::new()).await?;
        self.read_models
            .write(&rows_of(&touched), STATUS_PROJECTION, last.global_position)
            .await?;
        self.remember_all(touched);
        Ok(())
    }

    /// Every portfolio of `batch` folded through its events in the batch, with the position of its last
    /// one. A portfolio's state before the batch comes from `earlier` (the folds of the page before, not
    /// yet committed; taken from it), else the cache, else the log.
    async fn fold(
        &mut self,
        batch: &[RecordedEvent],
        earlier: &mut Folds,
    ) -> Result<Folds, ProjectionError> {
        let mut touched = Folds::new();
        for recorded in batch {
            let Some(portfolio_id) = portfolio_of(&recorded.stream_id) else {
                continue;
            };
            // Folded in place: an aggregate is not moved in and out of the map for each event.
            let (aggregate, last_position) = match touched.entry(portfolio_id) {
                Entry::Occupied(staged) => staged.into_mut(),
                Entry::Vacant(vacant) => {
                    let before = match earlier.remove(vacant.key()) {
                        Some((folded, _)) if folded.version() + 1 >= recorded.stream_version => {
                            folded
                        }
                        _ => Box::new(self.aggregate_before(vacant.key(), recorded).await?),
                    };
                    vacant.insert((before, 0))
                }
            };
            if aggregate.version() < recorded.stream_version {
                let event =
                    decode(recorded).map_err(|error| corrupt(recorded, error.to_string()))?;
                aggregate
                    .apply(&event)
                    .map_err(|error| corrupt(recorded, error.to_string()))?;
            }
            if aggregate.version() == recorded.stream_version {
                *last_position = recorded.global_position;
            }
        }
        Ok(touched)
    }

    /// The portfolio's state just before `recorded` (or later, if it was already folded).
    async fn aggregate_before(
        &mut self,
        portfolio_id: &PortfolioId,
        recorded: &RecordedEvent,
    ) -> Result<Aggregate, ProjectionError> {
        // Taken, not copied: it is remembered again, folded further, once the batch is written (a batch
        // that fails to be written leaves it out, to be folded from the log next time).
        if let Some(cached) = self.cache.take(portfolio_id)
            && cached.version() + 1 >= recorded.stream_version
        {
            return Ok(cached);
        }
        let mut aggregate = Aggregate::new(portfolio_id.clone());
        if recorded.stream_version == 1 {
            return Ok(aggregate); // nothing came before: no need to read (every portfolio, in a rebuild)
        }
        for earlier in self.store.read_stream(&recorded.stream_id, 0).await? {
            if earlier.stream_version >= recorded.stream_version {
                break;
            }
            let event = decode(&earlier).map_err(|error| corrupt(&earlier, error.to_string()))?;
            aggregate
                .apply(&event)
                .map_err(|error| corrupt(&earlier, error.to_string()))?;
        }
        Ok(aggregate)
    }
}

/// Folded portfolios with the position of the last event folded in this batch. Boxed: a B-tree node shifts
/// its values on every insert, and an aggregate is large.
type Folds = BTreeMap<PortfolioId, (Box<Aggregate>, u64)>;

/// The read models' rows of these folds.
fn rows_of(folds: &Folds) -> PortfolioRows {
    let states: Vec<(&Aggregate, u64)> = folds
        .values()
        .map(|(aggregate, last)| (&**aggregate, *last))
        .collect();
    PortfolioRows::of(&states)
}

/// A page's rows being written on a task of their own, up to this position. Dropped unfinished (the
/// catch-up was cancelled), the task is aborted.
struct Writing {
    task: Option<tokio::task::JoinHandle<Result<(), ProjectionError>>>,
    up_to: u64,
}

impl Writing {
    /// Waits for the write to end; the position it committed.
    async fn finish(mut self) -> Result<u64, ProjectionError> {
        if let Some(task) = self.task.as_mut() {
            let written = task.await;
            self.task = None;
            written.map_err(join_error)??;
        }
        Ok(self.up_to)
    }
}

impl Drop for Writing {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

fn join_error(error: tokio::task::JoinError) -> ProjectionError {
    ProjectionError::Store(mmonboard_eventlog::StoreError::Invalid(format!(
        "a task of the projector failed: {error}"
    )))
}

fn corrupt(recorded: &RecordedEvent, reason: String) -> ProjectionError {
    ProjectionError::Corrupt {
        global_position: recorded.global_position,
        reason,
    }
}
