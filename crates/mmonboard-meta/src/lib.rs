//! mmonboard's side of Meta's Graph API: what it asks ([`MetaGateway`]), the real HTTP client
//! ([`HttpGateway`]), Meta's wire format (shared with the simulator so the two cannot drift), typed errors
//! for every Graph API error code DOMAIN.md names, and signed webhooks.

pub mod error;
pub mod gateway;
pub mod http;
pub mod webhook;
pub mod wire;

pub use error::{MetaError, MetaErrorKind};
pub use gateway::{
    BusinessSnapshot, MetaGateway, OboIntent, OboIntentOutcome, TemplateSnapshot,
    TermsRequestOutcome, WabaSnapshot, portfolio_facts,
};
pub use http::{GatewayConfig, HttpGateway, RetryPolicy};
