//! What stops one attempt of the relay. Every kind is retried by the caller's backoff loop; the text names
//! what failed so that `/readyz` and the logs say why the stream is behind.

use mmonboard_eventlog::StoreError;
use mmonboard_process::ProcessError;

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The options are wrong (a stream name NATS refuses, a position past the log's head).
    #[error("{0}")]
    Invalid(String),
    /// NATS could not be reached, refused, or did not acknowledge in time.
    #[error("NATS at {url}: {message}")]
    Nats { url: String, message: String },
    /// The stream holds messages the relay cannot continue after (another log's, or not the relay's at all).
    #[error("{0}")]
    ForeignStream(String),
    /// The log or the checkpoints failed.
    #[error("the log: {0}")]
    Store(#[from] StoreError),
    /// The lease table failed.
    #[error("the relay lease: {0}")]
    Lease(#[from] ProcessError),
}
