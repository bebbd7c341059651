//! Stored events in the CloudEvents 1.0 JSON format for other services: the body of every event the HTTP
//! API serves (`/v1/events`, the SSE stream) and of every message the outbox relay publishes to JetStream,
//! so a consumer parses one shape whichever way it reads.

use crate::codec::portfolio_of;
use mmonboard_eventlog::RecordedEvent;
use serde_json::{Value, json};

/// The `source` of every event: this service's onboarding log.
pub const SOURCE: &str = "urn:mmonboard:onboarding";
/// Prefix of the CloudEvents `type`: `com.mmonboard.onboarding.<event type>.v<schema version>`.
pub const TYPE_PREFIX: &str = "com.mmonboard.onboarding";

/// The CloudEvent of one stored event. `sequence` is the global position as a string, as the CloudEvents
/// sequence extension defines it: consumers parse it to compare positions.
pub fn to_cloud_event(recorded: &RecordedEvent) -> Value {
    let data: Value = serde_json::from_str(&recorded.payload).unwrap_or(Value::Null);
    let subject = portfolio_of(&recorded.stream_id)
        .map_or_else(|| recorded.stream_id.to_string(), |id| id.to_string());
    json!({
        "specversion": "1.0",
        "id": recorded.event_id,
        "source": SOURCE,
        "type": format!("{TYPE_PREFIX}.{}.v{}", recorded.event_type, recorded.schema_version),
        "subject": subject,
        "time": recorded.recorded_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "datacontenttype": "application/json",
        "sequence": recorded.global_position.to_string(),
        "streamversion": recorded.stream_version,
        "correlationid": recorded.metadata.correlation_id,
        "data": data,
    })
}
