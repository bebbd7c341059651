//! The outbox relay: it follows the log from a durable checkpoint and publishes every event, in global order,
//! to a NATS JetStream stream, so that other services read onboarding events from their broker with durable
//! consumers, subject filters and replay. The log stays the source of truth; a stream can always be rebuilt
//! from it.
//!
//! Exactly once in the stream: on start the relay reads the position header of the stream's last message and
//! resumes after it (the checkpoint is only used when the stream holds nothing); each message carries the
//! event id as `Nats-Msg-Id`, so JetStream drops a copy published twice within its duplicate window (an
//! acknowledgement with `duplicate: true` counts as published); and each message expects the stream's last
//! sequence to be the one before it (`Nats-Expected-Last-Sequence`), so a message lost on its way (a dropped
//! connection in the middle of a pipelined burst) makes every later one fail instead of leaving a gap. The
//! checkpoint moves only after JetStream's acknowledgement.
//!
//! One relay acts per database (the `relay` row of the process lease table); the others stand by and take
//! over. NATS being down or slow never reaches the command path: the relay only reads the log, fails its
//! attempt, and is run again after a backoff delay until NATS answers.

mod error;
mod options;
mod relay;
mod stats;
#[cfg(feature = "testing")]
pub mod testing;

pub use error::RelayError;
pub use options::{
    DEFAULT_STREAM, DEFAULT_SUBJECT_PREFIX, RelayOptions, validate_stream_name,
    validate_subject_prefix,
};
pub use relay::{
    CHECKPOINT_PREFIX, LEASE_NAME, POSITION_HEADER, Relay, SIGNED_CHECKPOINT_TYPE,
    SIGNED_POSITION_HEADER, SIGNED_SUBJECT_ROOT, checkpoint_cloud_event, checkpoint_subject_of,
    subject_of,
};
pub use stats::RelayStats;
