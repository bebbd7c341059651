//! The process manager of mmonboard: it follows the log and drives each portfolio's onboarding forward through
//! Meta (eligibility read from the Graph API, OBO transfers, the terms request, connection, the sync windows,
//! template mirrors, re-checks after a restriction), with durable timers. Its decisions are commands like any
//! other, recorded with the actor `process-manager` and the event that caused them, so an auditor sees why each
//! step happened. See `manager/mod.rs` for why nothing is lost or done twice.

mod lease;
mod manager;
mod plan;
mod sql;
mod timers;

pub use lease::{Lease, LeaseHolder, LeaseOptions};
pub use manager::{ACTOR, ProcessManager, ProcessOptions, ProcessRole, RoleWatch, SUBSCRIPTION};
pub use plan::{Planned, ProcessConfig, Step, plan};
pub use timers::{Timer, TimerStore};

/// A failure of the process manager's own infrastructure (Meta's failures are not errors: they are retried
/// and, past a bound, recorded as a stall).
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error(transparent)]
    App(#[from] mmonboard_app::AppError),
    #[error(transparent)]
    Store(#[from] mmonboard_eventlog::StoreError),
    #[error("process manager: {0}")]
    Corrupt(String),
}

impl From<mmonboard_eventlog::stored::CorruptValue> for ProcessError {
    fn from(error: mmonboard_eventlog::stored::CorruptValue) -> Self {
        Self::Corrupt(error.to_string())
    }
}

impl From<sqlx::Error> for ProcessError {
    fn from(error: sqlx::Error) -> Self {
        Self::Store(error.into())
    }
}
