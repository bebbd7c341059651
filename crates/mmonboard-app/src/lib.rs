//! The application layer of mmonboard: the command path (load, decide, append, retry), reading state now and
//! as of a time, history with transitions, and the clock every time-dependent piece takes as a dependency.

pub mod cache;
pub mod clock;
pub mod cloudevents;
pub mod codec;
pub mod diagram;
pub mod error;
mod head;
pub mod json;
mod locks;
pub mod service;

pub use clock::{AcceleratedClock, Clock, ManualClock, SystemClock};
pub use error::AppError;
pub use service::{
    CommandContext, CommandOutcome, DEFAULT_SNAPSHOT_EVERY, HistoryEntry, LoggedEvent,
    OnboardingService, ServiceOptions, ServiceStats, derived_command_id, sha256_uuid,
};
