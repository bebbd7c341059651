//! The hash chain: what makes the log tamper-evident. Each event's hash covers the previous
//! event's hash, so changing, removing or reordering any stored event breaks every hash after it.
//! The byte layout below is an audit contract, fixed forever:
//!
//! `hash(n) = SHA-256(hash(n-1) || canonical_bytes(event n))`, with `hash(0)` = 32 zero bytes.
//! `canonical_bytes` is the concatenation, in this order, of each field written as a u32
//! big-endian byte length followed by the bytes: global_position (u64 BE), stream_id (UTF-8),
//! stream_version (u64 BE), event_id (its 16 bytes), event_type (UTF-8), schema_version (u32 BE),
//! recorded_at (unix microseconds, i64 BE), metadata (the JSON text as stored) and payload (the
//! JSON text as stored).

use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::model::RecordedEvent;

/// The `prev` of the first event.
pub const GENESIS_HASH: [u8; 32] = [0; 32];

/// Recomputes an event's chain hash from the previous event's hash.
///
/// The metadata text is taken as `serde_json::to_string(&event.metadata)`, which is exactly what
/// the log stores for every event it appends.
pub fn chain_hash(prev: &[u8; 32], event: &RecordedEvent) -> [u8; 32] {
    // Serializing plain strings and UUIDs cannot fail; an empty text would only make the hash
    // disagree, never panic.
    let metadata = serde_json::to_string(&event.metadata).unwrap_or_default();
    CanonicalEvent {
        global_position: event.global_position,
        stream_id: event.stream_id.as_str(),
        stream_version: event.stream_version,
        event_id: &event.event_id,
        event_type: &event.event_type,
        schema_version: event.schema_version,
        recorded_at_micros: event.recorded_at.timestamp_micros(),
        metadata: &metadata,
        payload: &event.payload,
    }
    .chain_hash(prev)
}

/// The hashed fields of one event, borrowed from wherever they are (a request being appended, a
/// row being verified with its metadata text exactly as stored).
pub(crate) struct CanonicalEvent<'a> {
    pub global_position: u64,
    pub stream_id: &'a str,
    pub stream_version: u64,
    pub event_id: &'a Uuid,
    pub event_type: &'a str,
    pub schema_version: u32,
    pub recorded_at_micros: i64,
    pub metadata: &'a str,
    pub payload: &'a str,
}

impl CanonicalEvent<'_> {
    pub(crate) fn chain_hash(&self, prev: &[u8; 32]) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(prev);
        field(&mut hasher, &self.global_position.to_be_bytes());
        field(&mut hasher, self.stream_id.as_bytes());
        field(&mut hasher, &self.stream_version.to_be_bytes());
        field(&mut hasher, self.event_id.as_bytes());
        field(&mut hasher, self.event_type.as_bytes());
        field(&mut hasher, &self.schema_version.to_be_bytes());
        field(&mut hasher, &self.recorded_at_micros.to_be_bytes());
        field(&mut hasher, self.metadata.as_bytes());
        field(&mut hasher, self.payload.as_bytes());
        hasher.finalize().into()
    }
}

fn field(hasher: &mut Sha256, bytes: &[u8]) {
    // Fields are bounded far below 4 GiB by validation on append; saturating keeps this total.
    let length = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    hasher.update(length.to_be_bytes());
    hasher.update(bytes);
}
