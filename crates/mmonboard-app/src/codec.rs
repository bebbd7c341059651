//! The boundary between domain events and stored events: the stream naming convention, and turning one into
//! the other. Stream ids are persisted: `portfolio-<id>` never changes.

use mmonboard_domain::ids::PortfolioId;
use mmonboard_domain::{DecodeError, OnboardingEvent};
use mmonboard_eventlog::{EventView, NewEvent, RecordedEvent, StreamId};
use uuid::Uuid;

/// Persisted prefix of every portfolio's stream id. Never rename.
pub const PORTFOLIO_STREAM_PREFIX: &str = "portfolio-";

pub fn stream_id(portfolio_id: &PortfolioId) -> StreamId {
    // A checked portfolio id is at most 32 digits, so the stream id is always valid.
    StreamId::parse(format!("{PORTFOLIO_STREAM_PREFIX}{portfolio_id}"))
        .unwrap_or_else(|error| unreachable!("portfolio stream ids are always valid: {error}"))
}

/// The portfolio a stream belongs to, if it is a portfolio stream.
pub fn portfolio_of(stream_id: &StreamId) -> Option<PortfolioId> {
    let digits = stream_id.as_str().strip_prefix(PORTFOLIO_STREAM_PREFIX)?;
    PortfolioId::parse(digits).ok()
}

pub fn to_new_event(event: &OnboardingEvent) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event_type: event.type_name().to_owned(),
        schema_version: mmonboard_domain::event::CURRENT_SCHEMA_VERSION,
        payload: event.encode(),
    }
}

pub fn decode(recorded: &RecordedEvent) -> Result<OnboardingEvent, DecodeError> {
    OnboardingEvent::decode(
        &recorded.event_type,
        recorded.schema_version,
        &recorded.payload,
    )
}

/// [`decode`] for an event a replay lends ([`mmonboard_eventlog::EventStore::replay`]).
pub fn decode_view(view: &EventView<'_>) -> Result<OnboardingEvent, DecodeError> {
    OnboardingEvent::decode(view.event_type, view.schema_version, view.payload)
}
