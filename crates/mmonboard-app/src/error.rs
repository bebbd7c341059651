//! Infrastructure failures of the application layer, kept apart from domain refusals (those are values).

use mmonboard_domain::ids::PortfolioId;
use mmonboard_eventlog::{StoreError, StreamId};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("stream {stream_id} is corrupt at version {version}: {reason}")]
    Corrupt {
        stream_id: StreamId,
        version: u64,
        reason: String,
    },
    #[error(
        "portfolio {portfolio_id}: the command still conflicted with concurrent writers after {attempts} attempts"
    )]
    ConflictRetriesExhausted {
        portfolio_id: PortfolioId,
        attempts: u32,
    },
}
