//! Property-testing support, for this crate's tests and for other crates' (feature `proptest`): proptest
//! strategies for ids, facts, commands and time steps, and a small reference model of the onboarding written
//! independently of `decide` and the statig machine, with a proptest-state-machine reference state machine
//! over it, to drive a real aggregate (or a service, or a store) against.

pub mod model;
pub mod strategies;

pub use model::{
    ModelOutcome, ModelRouting, ModelState, ModelTemplate, OnboardingModel, Prediction,
    ReferenceModel, Step,
};
pub use strategies::{Steerable, Steering};
