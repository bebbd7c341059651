//! The JSON shapes of stored events, history entries and accepted commands, shared by the CLI and the HTTP
//! API so the two contracts cannot drift apart.

use mmonboard_domain::Phase;
use mmonboard_domain::ids::PortfolioId;
use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::service::{CommandOutcome, HistoryEntry, LoggedEvent};

/// A stored event: position, version, ids, type, time, metadata, chain hash and its data.
pub fn event_json(logged: &LoggedEvent) -> Value {
    let recorded = &logged.recorded;
    json!({
        "global_position": recorded.global_position,
        "stream_version": recorded.stream_version,
        "event_id": recorded.event_id,
        "type": recorded.event_type,
        "schema_version": recorded.schema_version,
        "recorded_at": recorded.recorded_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "metadata": {
            "command_id": recorded.metadata.command_id,
            "actor": recorded.metadata.actor,
            "correlation_id": recorded.metadata.correlation_id,
            "causation_id": recorded.metadata.causation_id,
        },
        "hash": hex::encode(recorded.hash),
        "data": serde_json::from_str::<Value>(&recorded.payload).unwrap_or(Value::Null),
    })
}

/// A stored event with the transition it caused.
pub fn history_entry_json(entry: &HistoryEntry) -> Value {
    let mut value = event_json(&entry.logged);
    if let Value::Object(map) = &mut value {
        map.insert(
            "transition".into(),
            json!({ "from": entry.phase_before, "to": entry.phase_after }),
        );
    }
    value
}

/// What an accepted command answers: the same document as a `Value` built with `json!` would be (keys in
/// the same order), written straight from these fields, since every command over HTTP answers one.
#[derive(Serialize)]
pub struct Accepted<'a> {
    already_applied: bool,
    command_id: Uuid,
    events: Vec<EventBody<'a>>,
    outcome: &'static str,
    phase: Phase,
    portfolio_id: &'a PortfolioId,
    version: u64,
}

/// [`event_json`]'s document, field by field (keys sorted, as a `Value` map keeps them).
#[derive(Serialize)]
struct EventBody<'a> {
    data: Value,
    event_id: Uuid,
    global_position: u64,
    hash: String,
    metadata: MetadataBody<'a>,
    recorded_at: String,
    schema_version: u32,
    stream_version: u64,
    #[serde(rename = "type")]
    event_type: &'a str,
}

#[derive(Serialize)]
struct MetadataBody<'a> {
    actor: &'a str,
    causation_id: Option<Uuid>,
    command_id: Uuid,
    correlation_id: Uuid,
}

impl<'a> EventBody<'a> {
    fn of(logged: &'a LoggedEvent) -> Self {
        let recorded = &logged.recorded;
        Self {
            data: serde_json::from_str::<Value>(&recorded.payload).unwrap_or(Value::Null),
            event_id: recorded.event_id,
            global_position: recorded.global_position,
            hash: hex::encode(recorded.hash),
            metadata: MetadataBody {
                actor: &recorded.metadata.actor,
                causation_id: recorded.metadata.causation_id,
                command_id: recorded.metadata.command_id,
                correlation_id: recorded.metadata.correlation_id,
            },
            recorded_at: recorded
                .recorded_at
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            schema_version: recorded.schema_version,
            stream_version: recorded.stream_version,
            event_type: &recorded.event_type,
        }
    }
}

/// What an accepted command answers.
pub fn accepted_json(outcome: &CommandOutcome, command_id: Uuid) -> Accepted<'_> {
    Accepted {
        already_applied: outcome.already_applied,
        command_id,
        events: outcome.events.iter().map(EventBody::of).collect(),
        outcome: "accepted",
        phase: outcome.phase,
        portfolio_id: &outcome.portfolio_id,
        version: outcome.version,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The typed answer is the document `json!` built before it, byte for byte.
    #[test]
    fn the_accepted_answer_is_the_json_value_it_replaced() {
        use mmonboard_eventlog::{EventMetadata, RecordedEvent, StreamId};
        let portfolio_id = PortfolioId::parse("4100000001").expect("id");
        let command_id = Uuid::now_v7();
        let recorded = RecordedEvent {
            global_position: 7,
            stream_id: StreamId::parse("portfolio-4100000001").expect("stream"),
            stream_version: 3,
            event_id: Uuid::now_v7(),
            event_type: "terms_requested".to_owned(),
            schema_version: 1,
            payload: r#"{"z":1,"a":{"y":"\u00e9","b":[1,2]}}"#.to_owned(),
            metadata: EventMetadata {
                command_id,
                actor: "ops \"night\"".to_owned(),
                correlation_id: command_id,
                causation_id: Some(Uuid::now_v7()),
            },
            recorded_at: chrono::Utc::now(),
            hash: [9; 32],
        };
        let outcome = CommandOutcome {
            portfolio_id: portfolio_id.clone(),
            events: vec![LoggedEvent {
                event: mmonboard_domain::OnboardingEvent::decode(
                    "terms_requested",
                    1,
                    r#"{"already_invited":false,"at":"2026-11-25T10:00:00Z"}"#,
                )
                .expect("a terms_requested payload"),
                recorded,
            }],
            already_applied: false,
            phase: Phase::TermsPending,
            version: 3,
        };
        let before = json!({
            "outcome": "accepted",
            "portfolio_id": outcome.portfolio_id,
            "command_id": command_id,
            "already_applied": outcome.already_applied,
            "phase": outcome.phase,
            "version": outcome.version,
            "events": outcome.events.iter().map(event_json).collect::<Vec<_>>(),
        });
        assert_eq!(
            serde_json::to_string(&accepted_json(&outcome, command_id)).expect("typed"),
            serde_json::to_string(&before).expect("value")
        );
    }
}
