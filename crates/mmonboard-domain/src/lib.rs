//! The pure onboarding domain of mmonboard: one aggregate per Meta business portfolio, whose commands are
//! decided by `decide(state, command, now)` and whose events are folded by a statig state machine.
//!
//! This crate does no I/O and reads no clock: time comes in as an argument, outside facts come in inside
//! commands. It depends on no async runtime, database or web framework.

pub mod aggregate;
pub mod command;
pub mod config;
pub mod country;
pub mod decide;
pub mod eligibility;
pub mod event;
pub mod facts;
pub mod ids;
pub mod machine;
#[cfg(feature = "openapi")]
mod openapi;
pub mod refusal;
pub mod routing;
pub mod snapshot;
#[cfg(feature = "proptest")]
pub mod testing;
pub mod transitions;
mod wire_time;

pub use aggregate::{Aggregate, Phase, ReplayError, Stage, StateView};
pub use command::{MirroredAdAccount, OnboardingCommand};
pub use config::DomainConfig;
pub use decide::{Decider, decide};
pub use event::{DecodeError, OnboardingEvent};
pub use ids::InvalidValue;
pub use refusal::{Refusal, Rule};
pub use routing::{MessageKind, ProductPolicy, Route, RouteReason, RoutingDecision, route};
pub use snapshot::SnapshotError;
