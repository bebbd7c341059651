//! The application layer of mmonboard: the command path (load, decide, append, retry), reading state now and
//! as of a time, history with transitions, and the clock every time-dependent piece takes as a dependency.

pub mod clock;
pub mod codec;
pub mod diagram;
pub mod error;
pub mod json;
mod locks;
pub mod service;

pub use clock::{AcceleratedClock, Clock, ManualClock, SystemClock};
pub use error::AppError;
pub use service::{
    CommandContext, CommandOutcome, HistoryEntry, LoggedEvent, OnboardingService, ServiceOptions,
    ServiceStats, derived_command_id,
};
