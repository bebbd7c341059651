//! What the relay counts, for `/metrics` and `/readyz`: running totals the relay updates, which the server's
//! metrics registry reports at each scrape (the relay knows no metrics library).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// The relay's counters and gauges, shared with whoever reports them.
#[derive(Debug, Default)]
pub struct RelayStats {
    published: AtomicU64,
    checkpoints_published: AtomicU64,
    duplicates: AtomicU64,
    publish_errors: AtomicU64,
    position: AtomicU64,
    active: AtomicBool,
    working: AtomicBool,
    last_error: Mutex<Option<String>>,
}

impl RelayStats {
    /// Events JetStream acknowledged, duplicates included (they are in the stream once).
    pub fn published(&self) -> u64 {
        self.published.load(Ordering::Relaxed)
    }

    /// Signed checkpoints JetStream acknowledged from this instance.
    pub fn checkpoints_published(&self) -> u64 {
        self.checkpoints_published.load(Ordering::Relaxed)
    }

    /// Acknowledgements that said `duplicate: true`.
    pub fn duplicates(&self) -> u64 {
        self.duplicates.load(Ordering::Relaxed)
    }

    /// Publishes, connections or stream requests that failed.
    pub fn publish_errors(&self) -> u64 {
        self.publish_errors.load(Ordering::Relaxed)
    }

    /// The last global position known to be in the stream (on a standby: the shared checkpoint).
    pub fn last_published_position(&self) -> u64 {
        self.position.load(Ordering::Relaxed)
    }

    /// Whether this instance holds the lease and publishes.
    pub fn active(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }

    /// Whether the current attempt got going: holding the lease with NATS connected and the stream read, or
    /// standing by. A supervisor reads it to tell a restarted relay that works from one that keeps failing.
    pub fn working(&self) -> bool {
        self.working.load(Ordering::Relaxed)
    }

    /// The error the last attempt stopped with, until an attempt works again.
    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn acknowledged(&self, position: u64, duplicate: bool) {
        self.published.fetch_add(1, Ordering::Relaxed);
        if duplicate {
            self.duplicates.fetch_add(1, Ordering::Relaxed);
        }
        self.position.store(position, Ordering::Relaxed);
    }

    pub(crate) fn checkpoint_acknowledged(&self) {
        self.checkpoints_published.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn publish_failed(&self) {
        self.publish_errors.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn set_position(&self, position: u64) {
        self.position.store(position, Ordering::Relaxed);
    }

    pub(crate) fn set_active(&self, active: bool) {
        self.active.store(active, Ordering::Relaxed);
    }

    pub(crate) fn set_working(&self, working: bool) {
        self.working.store(working, Ordering::Relaxed);
        if working {
            *self
                .last_error
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        }
    }

    pub(crate) fn failed(&self, error: String) {
        self.working.store(false, Ordering::Relaxed);
        *self
            .last_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(error);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_acknowledgements_duplicates_and_errors() {
        let stats = RelayStats::default();
        stats.set_position(40);
        stats.acknowledged(41, false);
        stats.acknowledged(42, true);
        stats.publish_failed();
        stats.set_active(true);
        assert_eq!(stats.published(), 2);
        assert_eq!(stats.duplicates(), 1);
        assert_eq!(stats.publish_errors(), 1);
        assert_eq!(stats.last_published_position(), 42);
        assert!(stats.active());
    }
}
