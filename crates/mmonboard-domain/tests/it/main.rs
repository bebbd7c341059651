//! The domain's integration tests, in one binary to keep link time down.

mod architecture;
mod golden;
mod model;
mod routing;
mod rules;
mod support;
mod transitions;
