//! Subscriptions: reading the log in global order from any position, catching up through history and then
//! following new appends, with durable named checkpoints so a subscriber resumes where it acknowledged.
//!
//! A subscription pulls pages (`read_all` after its position), so catch-up and live are one loop and the seam
//! between them can neither skip nor repeat an event. Pulling is also the back-pressure: a slow subscriber
//! reads later, never holds up writers, and never holds more than one page. When it has caught up it waits
//! for the store's head to move (its own commits wake it at once) or for the poll interval (appends by other
//! processes). Delivery is at least once: what was read but not acknowledged is read again after a restart.
//!
//! This relies on the store's promise that `read_all` never returns position n+1 before n is visible. Both
//! backends assign positions under a write lock held until the commit, so positions become visible in order.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::checkpoints::Checkpoints;
use crate::error::StoreError;
use crate::model::RecordedEvent;
use crate::sqlite::SqliteEventStore;
use crate::store::EventStore;

/// A store that announces the head positions it commits, so a caught-up subscriber can wait, not spin.
pub trait HeadWatch {
    fn watch_head(&self) -> watch::Receiver<u64>;
}

impl HeadWatch for SqliteEventStore {
    fn watch_head(&self) -> watch::Receiver<u64> {
        SqliteEventStore::watch_head(self)
    }
}

impl<S: HeadWatch> HeadWatch for Arc<S> {
    fn watch_head(&self) -> watch::Receiver<u64> {
        S::watch_head(self)
    }
}

#[derive(Debug, Clone, Copy)]
pub struct SubscriptionOptions {
    /// The most events one `next_batch` returns: the bound on what a subscriber holds.
    pub page_size: usize,
    /// How often a caught-up subscriber looks for appends it was not told about (other processes).
    pub poll_interval: Duration,
}

impl Default for SubscriptionOptions {
    fn default() -> Self {
        Self {
            page_size: 500,
            poll_interval: Duration::from_millis(500),
        }
    }
}

/// A reader of the log in global order, from a position on.
pub struct Subscription<S> {
    store: S,
    position: u64,
    head: watch::Receiver<u64>,
    options: SubscriptionOptions,
}

impl<S: EventStore + HeadWatch> Subscription<S> {
    /// Events after `after_position` (0: from the beginning).
    pub fn after(store: S, after_position: u64, options: SubscriptionOptions) -> Self {
        let head = store.watch_head();
        Self {
            store,
            position: after_position,
            head,
            options,
        }
    }

    /// The position of the last event delivered.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// The next events in global order, at most a page: at once while catching up, otherwise as soon as
    /// something is appended. Never empty, never a gap, never a repeat.
    pub async fn next_batch(&mut self) -> Result<Vec<RecordedEvent>, StoreError> {
        loop {
            // Mark the head as seen before reading: a commit after this point wakes the wait below.
            self.head.borrow_and_update();
            let page = self
                .store
                .read_all(self.position, self.options.page_size)
                .await?;
            if let Some(last) = page.last() {
                self.position = last.global_position;
                return Ok(page);
            }
            tokio::select! {
                changed = self.head.changed() => {
                    if changed.is_err() {
                        return Err(StoreError::Closed);
                    }
                }
                () = tokio::time::sleep(self.options.poll_interval) => {}
            }
        }
    }

    /// What is in the log but not yet delivered: head minus position.
    pub async fn lag(&self) -> Result<u64, StoreError> {
        Ok(self
            .store
            .head_position()
            .await?
            .saturating_sub(self.position))
    }
}

/// A named subscriber that resumes from its durable checkpoint: read a batch, handle it, `acknowledge`.
pub struct DurableSubscription<S> {
    name: String,
    subscription: Subscription<S>,
    checkpoints: Arc<Checkpoints>,
    acknowledged: u64,
}

impl<S: EventStore + HeadWatch> DurableSubscription<S> {
    /// Resume `name` after its last acknowledged position.
    pub async fn resume(
        store: S,
        checkpoints: Arc<Checkpoints>,
        name: impl Into<String>,
        options: SubscriptionOptions,
    ) -> Result<Self, StoreError> {
        let name = name.into();
        if name.trim().is_empty() {
            return Err(StoreError::Invalid(
                "a subscriber needs a non-blank name".to_owned(),
            ));
        }
        let acknowledged = checkpoints.load(&name).await?;
        let subscription = Subscription::after(store, acknowledged, options);
        Ok(Self {
            name,
            subscription,
            checkpoints,
            acknowledged,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The last position saved as done.
    pub fn acknowledged(&self) -> u64 {
        self.acknowledged
    }

    pub async fn next_batch(&mut self) -> Result<Vec<RecordedEvent>, StoreError> {
        self.subscription.next_batch().await
    }

    /// Everything up to `position` is handled: after a restart, delivery resumes after it.
    pub async fn acknowledge(&mut self, position: u64) -> Result<(), StoreError> {
        if position > self.subscription.position() {
            return Err(StoreError::Invalid(format!(
                "cannot acknowledge position {position}: only {} was delivered",
                self.subscription.position()
            )));
        }
        if position > self.acknowledged {
            self.checkpoints.save(&self.name, position).await?;
            self.acknowledged = position;
        }
        Ok(())
    }

    pub async fn lag(&self) -> Result<u64, StoreError> {
        self.subscription.lag().await
    }
}
