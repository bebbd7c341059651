//! Read models fed from the event log: each portfolio's onboarding status, the mirrored read-only ad account
//! of each WABA, and every template with its sync status. They live in the log's own database.
//!
//! The projector is state-based: it folds each event into the portfolio's real `Aggregate` (kept in a bounded
//! cache, reloaded from the stream on a miss) and rewrites that portfolio's rows from it, in the same
//! transaction as the checkpoint. So a rebuild from zero gives exactly what the incremental path gave, a
//! redelivered event changes nothing, and the read models can never disagree with the domain's own fold.
//! Time-dependent answers (a template's status) are computed with the clock at the moment of the question.

mod projector;
mod read_models;
mod storage;

pub use projector::{Projector, ProjectorOptions, STATUS_PROJECTION};
pub use read_models::{
    AdAccountRow, Blocker, ReadModels, StatusRow, TemplateRow, TemplateSyncStatus,
};

#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error(transparent)]
    Store(#[from] mmonboard_eventlog::StoreError),
    /// A stored row this crate could not have written (a time out of range, a malformed list).
    #[error("read model table {table} holds a corrupt row: {reason}")]
    CorruptRow { table: String, reason: String },
    #[error("event {global_position} cannot be projected: {reason}")]
    Corrupt {
        global_position: u64,
        reason: String,
    },
}

impl From<mmonboard_eventlog::stored::CorruptValue> for ProjectionError {
    fn from(error: mmonboard_eventlog::stored::CorruptValue) -> Self {
        Self::CorruptRow {
            table: error.table.to_owned(),
            reason: format!("{} = {} {}", error.column, error.value, error.problem),
        }
    }
}

impl From<sqlx::Error> for ProjectionError {
    fn from(error: sqlx::Error) -> Self {
        Self::Store(error.into())
    }
}
