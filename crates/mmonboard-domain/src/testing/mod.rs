//! Property-testing support, for this crate's tests and for other engineers' (feature `proptest`): proptest
//! strategies for ids, facts, commands and time, and a small reference model of the onboarding written
//! independently of `decide` and the statig machine, to drive the real aggregate against.

pub mod model;
pub mod strategies;

pub use model::{ModelOutcome, ModelState};
