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
}

impl AcceleratedClock {
    /// `factor` is clamped to at least 1.
    pub fn starting_at(origin: DateTime<Utc>, factor: u32) -> Self {
        Self {
            origin,
            started: std::time::Instant::now(),
            factor: factor.max(1),
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
        let elapsed = self.started.elapsed() * self.factor;
        self.origin + TimeDelta::from_std(elapsed).unwrap_or(TimeDelta::MAX)
    }
}

impl Clock for Arc<dyn Clock> {
    fn now(&self) -> DateTime<Utc> {
        self.as_ref().now()
    }
}
