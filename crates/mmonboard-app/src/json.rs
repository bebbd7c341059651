//! The JSON shapes of stored events, history entries and accepted commands, shared by the CLI and the HTTP
//! API so the two contracts cannot drift apart.

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

/// What an accepted command answers.
pub fn accepted_json(outcome: &CommandOutcome, command_id: Uuid) -> Value {
    json!({
        "outcome": "accepted",
        "portfolio_id": outcome.portfolio_id,
        "command_id": command_id,
        "already_applied": outcome.already_applied,
        "phase": outcome.phase,
        "version": outcome.version,
        "events": outcome.events.iter().map(event_json).collect::<Vec<_>>(),
    })
}
