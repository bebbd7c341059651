//! Time as a dependency. Everything that needs "now" takes a `Clock`, so tests and the demo control time
//! instead of sleeping, and the domain never reads a clock itself.

use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, TimeDelta, Utc};

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to: for tests and the accelerated demo.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<DateTime<Utc>>>,
}

impl ManualClock {
    pub fn starting_at(now: DateTime<Utc>) -> Self {
        Self {
            now: Arc::new(Mutex::new(now)),
        }
    }

    pub fn advance(&self, by: TimeDelta) {
        let mut now = self.now.lock().unwrap_or_else(PoisonError::into_inner);
        *now += by;
    }

    pub fn set(&self, to: DateTime<Utc>) {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner) = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<C: Clock> Clock for Arc<C> {
    fn now(&self) -> DateTime<Utc> {
        self.as_ref().now()
    }
}

/// Wall time sped up: starts at a given instant and runs `factor` times faster than the machine's clock. The
/// demo and the end-to-end tests run Meta's minutes-long windows in seconds with it; every party to a flow
/// (service, process manager, simulator) must share one.
#[derive(Debug, Clone)]
pub struct AcceleratedClock {
    origin: DateTime<Utc>,
    started: std::time::Instant,
    factor: u32,
    /// Never ahead of the wall clock (see [`AcceleratedClock::ending_by_now`]).
    capped_at_wall_clock: bool,
}

impl AcceleratedClock {
    /// `factor` is clamped to at least 1.
    pub fn starting_at(origin: DateTime<Utc>, factor: u32) -> Self {
        Self {
            origin,
            started: std::time::Instant::now(),
            factor: factor.max(1),
            capped_at_wall_clock: false,
        }
    }

    /// A clock whose history ends in the past: it starts as far back as it can run ahead in `real_budget`
    /// of real time, and never reads later than the wall clock. What it records can then be served and
    /// continued on the wall clock (a real command after it is not "before the last event", a template
    /// synced in it is not still syncing). Should a run outlast its budget, the clock goes on at real speed
    /// rather than run ahead.
    pub fn ending_by_now(factor: u32, real_budget: std::time::Duration) -> Self {
        let factor = factor.max(1);
        let head_start =
            TimeDelta::from_std(real_budget.saturating_mul(factor)).unwrap_or(TimeDelta::MAX);
        let wall = Utc::now();
        Self {
            origin: wall.checked_sub_signed(head_start).unwrap_or(wall),
            started: std::time::Instant::now(),
            factor,
            capped_at_wall_clock: true,
        }
    }

    pub fn factor(&self) -> u32 {
        self.factor
    }

    /// How long, in real time, a span of this clock's time takes.
    pub fn real_duration(&self, span: TimeDelta) -> std::time::Duration {
        span.to_std().unwrap_or_default() / self.factor
    }
}

impl Clock for AcceleratedClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = self.started.elapsed().saturating_mul(self.factor);
        let accelerated = TimeDelta::from_std(elapsed)
            .ok()
            .and_then(|elapsed| self.origin.checked_add_signed(elapsed))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        if self.capped_at_wall_clock {
            accelerated.min(Utc::now())
        } else {
            accelerated
        }
    }
}

impl Clock for Arc<dyn Clock> {
    fn now(&self) -> DateTime<Utc> {
        self.as_ref().now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clock_ending_by_now_never_reads_later_than_the_wall_clock() {
        // No head start at all and time a hundred thousand times faster: only the cap keeps it behind.
        let clock = AcceleratedClock::ending_by_now(100_000, std::time::Duration::ZERO);
        for _ in 0..10_000 {
            let read = clock.now();
            assert!(read <= Utc::now(), "{read} is ahead of the wall clock");
        }
    }

    #[test]
    fn a_clock_ending_by_now_starts_its_budget_back() {
        let before = Utc::now();
        let clock = AcceleratedClock::ending_by_now(600, std::time::Duration::from_secs(120));
        let read = clock.now();
        assert!(
            read <= before - TimeDelta::hours(10),
            "{read} starts 20 simulated hours back"
        );
        assert_eq!(clock.factor(), 600);
    }
}
