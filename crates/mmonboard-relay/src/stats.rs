//! What the relay counts, for `/metrics` and `/readyz`: plain atomics the relay updates and a renderer in the
//! Prometheus text format, self-contained so that whichever metrics layer the server uses can append it.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// The relay's counters and gauges, shared with whoever reports them.
#[derive(Debug, Default)]
pub struct RelayStats {
    published: AtomicU64,
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

    /// The relay's metrics in the Prometheus text format; `head` is the log's head position, for the lag.
    pub fn render(&self, head: u64) -> String {
        let mut text = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
            let _ = writeln!(
                text,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        };
        metric(
            "mmonboard_relay_events_published_total",
            "counter",
            "Events JetStream acknowledged from this relay (duplicates included: they are stored once).",
            self.published(),
        );
        metric(
            "mmonboard_relay_publish_errors_total",
            "counter",
            "Failed publishes, NATS connections or stream requests of this relay (each is retried).",
            self.publish_errors(),
        );
        metric(
            "mmonboard_relay_last_published_position",
            "gauge",
            "Global position of the last event known to be in the JetStream stream.",
            self.last_published_position(),
        );
        metric(
            "mmonboard_relay_lag_events",
            "gauge",
            "Events in the log not yet acknowledged by JetStream.",
            head.saturating_sub(self.last_published_position()),
        );
        metric(
            "mmonboard_relay_active",
            "gauge",
            "1 while this instance holds the relay lease and publishes, 0 while it stands by.",
            u64::from(self.active()),
        );
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_and_lag() {
        let stats = RelayStats::default();
        stats.set_position(40);
        stats.acknowledged(41, false);
        stats.acknowledged(42, true);
        stats.publish_failed();
        stats.set_active(true);
        let text = stats.render(50);
        for line in [
            "mmonboard_relay_events_published_total 2",
            "mmonboard_relay_publish_errors_total 1",
            "mmonboard_relay_last_published_position 42",
            "mmonboard_relay_lag_events 8",
            "mmonboard_relay_active 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
        assert_eq!(stats.duplicates(), 1);
    }
}
