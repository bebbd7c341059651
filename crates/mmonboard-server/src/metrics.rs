//! Prometheus metrics in the text exposition format, from plain counters: commands, refusals, appends,
//! projection lag and live subscribers.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Default)]
pub(crate) struct Metrics {
    pub events_appended: AtomicU64,
    pub invalid_requests: AtomicU64,
    pub subscribers: AtomicU64,
    pub webhooks_accepted: AtomicU64,
    pub webhooks_refused: AtomicU64,
}

pub(crate) struct Snapshot {
    pub accepted: u64,
    pub refused: u64,
    pub already_applied: u64,
    pub conflicts_retried: u64,
    pub head: u64,
    pub projection_lag: u64,
    /// 1 while this instance's process manager holds the lease, 0 on standby; `None` without one.
    pub process_manager_active: Option<u64>,
}

impl Metrics {
    pub fn render(&self, snapshot: &Snapshot) -> String {
        let mut text = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, lines: &[(&str, u64)]| {
            let _ = writeln!(text, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, value) in lines {
                let _ = writeln!(text, "{name}{labels} {value}");
            }
        };
        metric(
            "mmonboard_commands_total",
            "counter",
            "Commands decided, by outcome.",
            &[
                ("{outcome=\"accepted\"}", snapshot.accepted),
                ("{outcome=\"refused\"}", snapshot.refused),
                ("{outcome=\"already_applied\"}", snapshot.already_applied),
                (
                    "{outcome=\"invalid\"}",
                    self.invalid_requests.load(Ordering::Relaxed),
                ),
            ],
        );
        metric(
            "mmonboard_conflicts_retried_total",
            "counter",
            "Appends that met a newer stream version and were decided again.",
            &[("", snapshot.conflicts_retried)],
        );
        metric(
            "mmonboard_events_appended_total",
            "counter",
            "Events appended through this server.",
            &[("", self.events_appended.load(Ordering::Relaxed))],
        );
        metric(
            "mmonboard_log_head_position",
            "gauge",
            "Global position of the last event.",
            &[("", snapshot.head)],
        );
        metric(
            "mmonboard_projection_lag_events",
            "gauge",
            "Events in the log the read models do not reflect yet.",
            &[("{projection=\"read_models\"}", snapshot.projection_lag)],
        );
        metric(
            "mmonboard_event_stream_subscribers",
            "gauge",
            "Clients following the live event stream.",
            &[("", self.subscribers.load(Ordering::Relaxed))],
        );
        metric(
            "mmonboard_meta_webhooks_total",
            "counter",
            "Meta webhook deliveries, by outcome (refused: bad signature or body, nothing recorded).",
            &[
                (
                    "{outcome=\"accepted\"}",
                    self.webhooks_accepted.load(Ordering::Relaxed),
                ),
                (
                    "{outcome=\"refused\"}",
                    self.webhooks_refused.load(Ordering::Relaxed),
                ),
            ],
        );
        if let Some(active) = snapshot.process_manager_active {
            metric(
                "mmonboard_process_manager_active",
                "gauge",
                "1 while this instance's process manager holds the lease and calls Meta, 0 while it stands by.",
                &[("", active)],
            );
        }
        text
    }
}
