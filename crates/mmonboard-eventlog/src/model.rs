//! The log's vocabulary: stream ids, expected versions, the events going in and coming out, and
//! the verification report. Backend-agnostic on purpose: a PostgreSQL store speaks the same types,
//! so nothing here mentions SQLite.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The longest stream id accepted, in characters.
pub const MAX_STREAM_ID_CHARS: usize = 200;

/// A string that is not a valid [`StreamId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid stream id {value:?}: {reason}")]
pub struct InvalidStreamId {
    value: String,
    reason: &'static str,
}

impl InvalidStreamId {
    pub(crate) fn new(value: &str, reason: &'static str) -> Self {
        // Keep the message readable even for an absurdly long input.
        let value = value.chars().take(64).collect();
        Self { value, reason }
    }
}

/// The name of one stream (one aggregate instance), checked at construction.
///
/// Cheap to clone: every event read back carries one.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct StreamId(Arc<str>);

impl StreamId {
    /// Accepts a non-empty id of at most [`MAX_STREAM_ID_CHARS`] characters without control
    /// characters.
    pub fn parse(value: impl Into<String>) -> Result<Self, InvalidStreamId> {
        let value = value.into();
        if value.is_empty() {
            return Err(InvalidStreamId::new(&value, "it is empty"));
        }
        if value.chars().count() > MAX_STREAM_ID_CHARS {
            return Err(InvalidStreamId::new(
                &value,
                "it is longer than 200 characters",
            ));
        }
        if value.chars().any(char::is_control) {
            return Err(InvalidStreamId::new(
                &value,
                "it contains a control character",
            ));
        }
        Ok(Self(value.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as a shared string, bound to queries without copying.
    pub(crate) fn shared(&self) -> Arc<str> {
        Arc::clone(&self.0)
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl AsRef<str> for StreamId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for StreamId {
    type Error = InvalidStreamId;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(value)
    }
}

impl TryFrom<&str> for StreamId {
    type Error = InvalidStreamId;
    fn try_from(value: &str) -> Result<Self, Self::Error> {
        Self::parse(value)
    }
}

impl From<StreamId> for String {
    fn from(value: StreamId) -> Self {
        value.0.to_string()
    }
}

/// What the appender believes the stream's version is; the append is refused otherwise, so two
/// commands decided on the same state can never both land (no lost updates).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ExpectedVersion {
    /// The stream has no events yet (version 0).
    NoStream,
    /// The stream's last event has exactly this version (0 means no events).
    Exact(u64),
    /// No check.
    Any,
}

impl ExpectedVersion {
    /// Whether a stream at `actual` satisfies the expectation.
    pub fn matches(self, actual: u64) -> bool {
        match self {
            Self::NoStream => actual == 0,
            Self::Exact(expected) => actual == expected,
            Self::Any => true,
        }
    }
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoStream => f.write_str("no stream"),
            Self::Exact(version) => write!(f, "version {version}"),
            Self::Any => f.write_str("any version"),
        }
    }
}

/// Who did what on whose behalf. Stored as JSON beside every event of the command and covered by
/// the hash.
///
/// Its serialized form is part of the audit contract ([`crate::chain_hash`] re-serializes it): a
/// field added later must be skipped when absent, so old events serialize as they were stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventMetadata {
    pub command_id: Uuid,
    pub actor: String,
    pub correlation_id: Uuid,
    pub causation_id: Option<Uuid>,
}

/// One event to append. The payload is opaque JSON text, stored and hashed verbatim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// A UUID v7, chosen by the caller so a retried command carries the same ids.
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: u32,
    pub payload: String,
}

/// One command's append: all of its events land in one transaction or none do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendRequest {
    pub stream_id: StreamId,
    pub expected_version: ExpectedVersion,
    /// The idempotency key: a command id seen before is answered with its original events.
    /// Must equal `metadata.command_id`.
    pub command_id: Uuid,
    pub metadata: EventMetadata,
    /// Stored with microsecond precision (finer digits are dropped).
    pub recorded_at: DateTime<Utc>,
    /// May be empty: the command is then recorded (for idempotency) with no events.
    pub events: Vec<NewEvent>,
}

/// An event as stored in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedEvent {
    /// 1-based, gap-free, in commit order across the whole log.
    pub global_position: u64,
    pub stream_id: StreamId,
    /// 1-based, contiguous within the stream.
    pub stream_version: u64,
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: u32,
    pub payload: String,
    pub metadata: EventMetadata,
    /// Microsecond precision.
    pub recorded_at: DateTime<Utc>,
    /// SHA-256 chain hash, see [`crate::chain_hash`].
    pub hash: [u8; 32],
}

/// An event as [`crate::EventStore::replay`] hands it to its visitor: a [`RecordedEvent`] borrowed from the
/// read in progress, valid for the visit only. A replay that keeps only what it folds pays for no copy of
/// the rest (the type, the payload, the metadata); [`EventView::to_recorded`] makes the owned event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventView<'a> {
    /// 1-based, gap-free, in commit order across the whole log.
    pub global_position: u64,
    pub stream_id: &'a StreamId,
    /// 1-based, contiguous within the stream.
    pub stream_version: u64,
    pub event_id: Uuid,
    pub event_type: &'a str,
    pub schema_version: u32,
    pub payload: &'a str,
    pub metadata: &'a EventMetadata,
    /// Microsecond precision.
    pub recorded_at: DateTime<Utc>,
    /// SHA-256 chain hash, see [`crate::chain_hash`].
    pub hash: [u8; 32],
}

impl EventView<'_> {
    /// The owned event.
    pub fn to_recorded(&self) -> RecordedEvent {
        RecordedEvent {
            global_position: self.global_position,
            stream_id: self.stream_id.clone(),
            stream_version: self.stream_version,
            event_id: self.event_id,
            event_type: self.event_type.to_owned(),
            schema_version: self.schema_version,
            payload: self.payload.to_owned(),
            metadata: self.metadata.clone(),
            recorded_at: self.recorded_at,
            hash: self.hash,
        }
    }
}

impl<'a> From<&'a RecordedEvent> for EventView<'a> {
    fn from(event: &'a RecordedEvent) -> Self {
        Self {
            global_position: event.global_position,
            stream_id: &event.stream_id,
            stream_version: event.stream_version,
            event_id: event.event_id,
            event_type: &event.event_type,
            schema_version: event.schema_version,
            payload: &event.payload,
            metadata: &event.metadata,
            recorded_at: event.recorded_at,
            hash: event.hash,
        }
    }
}

/// The result of an append that did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendOutcome {
    /// The events were committed durably.
    Appended(Vec<RecordedEvent>),
    /// The command id had been applied before: these are its original events (possibly none) and
    /// nothing was appended.
    AlreadyApplied(Vec<RecordedEvent>),
}

impl AppendOutcome {
    /// The events of the command, whether appended now or before.
    pub fn events(&self) -> &[RecordedEvent] {
        match self {
            Self::Appended(events) | Self::AlreadyApplied(events) => events,
        }
    }

    pub fn into_events(self) -> Vec<RecordedEvent> {
        match self {
            Self::Appended(events) | Self::AlreadyApplied(events) => events,
        }
    }
}

/// The result of walking the whole log and recomputing its hash chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Events examined (up to and including the first break, if any).
    pub events_checked: u64,
    /// Distinct streams among the examined events.
    pub streams_checked: u64,
    /// The last examined event's position and stored hash; `None` for an empty log.
    pub head: Option<(u64, [u8; 32])>,
    /// The first place where the log is not what was appended; `None` if intact.
    pub first_break: Option<ChainBreak>,
}

impl VerifyReport {
    pub fn is_intact(&self) -> bool {
        self.first_break.is_none()
    }
}

/// Where and why verification failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainBreak {
    pub global_position: u64,
    pub reason: String,
}
