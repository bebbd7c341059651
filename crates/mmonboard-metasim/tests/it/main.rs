//! The simulator over real HTTP, on a manual clock.

mod support;

mod auth;
mod faults;
mod gateway;
mod obo;
mod scenarios;
mod statuses;
mod terms;
mod webhooks;
