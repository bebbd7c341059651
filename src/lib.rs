//! mmonboard: onboarding of Meta business portfolios to the Marketing Messages API for WhatsApp as an
//! event-sourced aggregate. This facade re-exports the workspace's libraries under one name.

pub use mmonboard_app as app;
pub use mmonboard_cli as cli;
pub use mmonboard_domain as domain;
pub use mmonboard_eventlog as eventlog;
