//! Background tasks that recover by themselves: the projector and the process manager stop with an error when
//! their storage fails (a full disk, a lost database connection), and a supervisor runs them again after a
//! backoff delay, for as long as the server runs. While one is down, `/readyz` says the server is degraded
//! and names the error; it is ready again once the restarted task shows it works (a batch projected, the
//! lease tried for).
//!
//! The delays come from `backon` (exponential with jitter, capped); the loop is our own because each attempt
//! runs until shutdown rather than returning a value to retry for.

use std::fmt::Display;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use tokio::sync::watch;

/// How often a restarted task is looked at to see whether it works again.
const HEALTH_CHECK_EVERY: Duration = Duration::from_millis(100);

/// What a background task's supervisor knows of it.
#[derive(Debug, Default)]
pub(crate) struct TaskHealth {
    failure: Mutex<Option<String>>,
}

impl TaskHealth {
    /// The error it is recovering from, if it is down.
    pub(crate) fn failure(&self) -> Option<String> {
        self.lock().clone()
    }

    fn failed(&self, error: String) {
        *self.lock() = Some(error);
    }

    /// Whether this cleared a failure.
    fn recovered(&self) -> bool {
        self.lock().take().is_some()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Runs `attempt` until it ends well (the task stopped at shutdown) or `stop` is set. After each failure the
/// error is recorded in `health`, and the task is run again after a backoff delay; while it runs, `healthy`
/// is asked every [`HEALTH_CHECK_EVERY`] whether it works again, which clears the failure and resets the
/// backoff.
pub(crate) async fn supervise<E, Fut>(
    name: &'static str,
    health: &TaskHealth,
    mut stop: watch::Receiver<bool>,
    healthy: impl Fn() -> bool,
    mut attempt: impl FnMut() -> Fut,
) where
    E: Display,
    Fut: Future<Output = Result<(), E>>,
{
    let backoff = || {
        ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(200))
            .with_max_delay(Duration::from_secs(10))
            .with_jitter()
            .without_max_times()
            .build()
    };
    let mut delays = backoff();
    loop {
        let run = attempt();
        tokio::pin!(run);
        let mut checks = tokio::time::interval(HEALTH_CHECK_EVERY);
        let outcome = loop {
            tokio::select! {
                outcome = &mut run => break outcome,
                _ = checks.tick() => {
                    if health.failure().is_some() && healthy() && health.recovered() {
                        tracing::info!(task = name, "recovered");
                        delays = backoff();
                    }
                }
            }
        };
        match outcome {
            Ok(()) => return,
            Err(error) => {
                let error = error.to_string();
                tracing::error!(task = name, %error, "stopped with an error; it will be restarted");
                health.failed(error);
            }
        }
        if *stop.borrow() {
            return;
        }
        let delay = delays.next().unwrap_or(Duration::from_secs(10));
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            _ = stop.wait_for(|stopped| *stopped) => return,
        }
    }
}
