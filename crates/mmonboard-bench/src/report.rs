//! The figures of one run: a table for people and one JSON object for comparing runs.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{Value, json};

#[derive(Debug, Clone, Copy)]
pub enum Target {
    /// figure / baseline must be at least this.
    RatioAtLeast(f64),
    /// figure / baseline must be at most this (a time against the raw time).
    RatioAtMost(f64),
    /// The figure itself must be at most this.
    AtMost(f64),
    /// The figure itself must be at least this.
    AtLeast(f64),
}

#[derive(Debug, Clone)]
pub struct Row {
    pub key: &'static str,
    pub name: &'static str,
    pub figure: f64,
    pub unit: &'static str,
    pub baseline: Option<(f64, &'static str)>,
    /// Every one must be met.
    pub targets: Vec<Target>,
    pub notes: Vec<String>,
    /// A raw baseline rather than a workload.
    pub is_baseline: bool,
}

impl Row {
    pub(crate) fn info(
        key: &'static str,
        name: &'static str,
        figure: f64,
        unit: &'static str,
    ) -> Self {
        Self {
            key,
            name,
            figure,
            unit,
            baseline: None,
            targets: Vec::new(),
            notes: Vec::new(),
            is_baseline: true,
        }
    }

    pub(crate) fn measured(
        key: &'static str,
        name: &'static str,
        figure: f64,
        unit: &'static str,
    ) -> Self {
        Self {
            is_baseline: false,
            ..Self::info(key, name, figure, unit)
        }
    }

    pub(crate) fn against(mut self, baseline: f64, unit: &'static str) -> Self {
        self.baseline = Some((baseline, unit));
        self
    }

    pub(crate) fn target(mut self, target: Target) -> Self {
        self.targets.push(target);
        self
    }

    pub(crate) fn note(mut self, note: String) -> Self {
        self.notes.push(note);
        self
    }

    pub fn ratio(&self) -> Option<f64> {
        self.baseline
            .filter(|(baseline, _)| *baseline > 0.0)
            .map(|(baseline, _)| self.figure / baseline)
    }

    pub fn meets_target(&self) -> Option<bool> {
        if self.targets.is_empty() {
            return None;
        }
        let mut met = true;
        for target in &self.targets {
            met &= match *target {
                Target::RatioAtLeast(minimum) => self.ratio().map(|ratio| ratio >= minimum)?,
                Target::RatioAtMost(maximum) => self.ratio().map(|ratio| ratio <= maximum)?,
                Target::AtMost(maximum) => self.figure <= maximum,
                Target::AtLeast(minimum) => self.figure >= minimum,
            };
        }
        Some(met)
    }

    fn target_text(&self) -> String {
        self.targets
            .iter()
            .map(|target| match *target {
                Target::RatioAtLeast(minimum) => format!("ratio >= {minimum:.2}"),
                Target::RatioAtMost(maximum) => format!("ratio <= {maximum:.2}"),
                Target::AtMost(maximum) => format!("<= {maximum} {}", self.unit),
                Target::AtLeast(minimum) => format!(">= {} {}", thousands(minimum), self.unit),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[derive(Debug, Clone)]
pub struct BenchReport {
    pub scale: f64,
    /// What the run measured: the backend, its durability and where its log lived.
    pub setting: String,
    pub rows: Vec<Row>,
    pub events_verified: u64,
    pub elapsed: Duration,
}

fn thousands(value: f64) -> String {
    if value >= 100.0 {
        let digits = format!("{:.0}", value);
        let mut out = String::new();
        for (index, digit) in digits.chars().enumerate() {
            if index > 0 && (digits.len() - index) % 3 == 0 {
                out.push(',');
            }
            out.push(digit);
        }
        out
    } else {
        format!("{value:.1}")
    }
}

impl BenchReport {
    pub(crate) fn new(scale: f64, setting: impl Into<String>) -> Self {
        Self {
            scale,
            setting: setting.into(),
            rows: Vec::new(),
            events_verified: 0,
            elapsed: Duration::ZERO,
        }
    }

    pub(crate) fn push(&mut self, row: Row) {
        self.rows.push(row);
    }

    pub(crate) fn set_verified(&mut self, events: u64) {
        self.events_verified = events;
    }

    pub(crate) fn set_elapsed(&mut self, elapsed: Duration) {
        self.elapsed = elapsed;
    }

    pub fn row(&self, key: &str) -> Option<&Row> {
        self.rows.iter().find(|row| row.key == key)
    }

    /// Rows whose target was missed.
    pub fn missed(&self) -> Vec<&Row> {
        self.rows
            .iter()
            .filter(|row| row.meets_target() == Some(false))
            .collect()
    }

    pub fn to_table(&self) -> String {
        let mut text = String::new();
        let _ = writeln!(
            text,
            "mmonboard bench: {}, scale {}",
            self.setting, self.scale
        );
        let _ = writeln!(
            text,
            "{:<58} {:>16} {:>26} {:>7}  {:<18} result",
            "workload", "figure", "baseline", "ratio", "target"
        );
        for row in &self.rows {
            let figure = format!("{} {}", thousands(row.figure), row.unit);
            let baseline = row
                .baseline
                .map(|(value, _)| thousands(value))
                .unwrap_or_default();
            let ratio = row
                .ratio()
                .map(|ratio| format!("{ratio:.2}"))
                .unwrap_or_default();
            let result = match row.meets_target() {
                Some(true) => "met",
                Some(false) => "MISSED",
                None if row.is_baseline => "(baseline)",
                None => "",
            };
            let _ = writeln!(
                text,
                "{:<58} {:>16} {:>26} {:>7}  {:<18} {result}",
                row.name,
                figure,
                baseline,
                ratio,
                row.target_text()
            );
            for note in &row.notes {
                let _ = writeln!(text, "    {note}");
            }
        }
        let _ = writeln!(
            text,
            "log verified: {} events, hash chain intact",
            self.events_verified
        );
        let missed = self.missed();
        if missed.is_empty() {
            let _ = writeln!(
                text,
                "all targets met ({:.1} s)",
                self.elapsed.as_secs_f64()
            );
        } else {
            for row in missed {
                let _ = writeln!(text, "target missed: {} ({})", row.name, row.target_text());
            }
        }
        text
    }

    pub fn to_json(&self) -> Value {
        let mut workloads = serde_json::Map::new();
        for row in &self.rows {
            workloads.insert(
                row.key.to_owned(),
                json!({
                    "name": row.name,
                    "figure": row.figure,
                    "unit": row.unit,
                    "baseline": row.baseline.map(|(value, _)| value),
                    "baseline_unit": row.baseline.map(|(_, unit)| unit),
                    "ratio": row.ratio(),
                    "target": row.target_text(),
                    "meets_target": row.meets_target(),
                    "notes": row.notes,
                }),
            );
        }
        json!({
            "durability": "WAL, synchronous=FULL",
            "scale": self.scale,
            "setting": self.setting,
            "workloads": workloads,
            "events_verified": self.events_verified,
            "all_targets_met": self.missed().is_empty(),
            "elapsed_seconds": self.elapsed.as_secs_f64(),
        })
    }
}
