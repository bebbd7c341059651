//! The log's errors, one enum per boundary: [`AppendError`] separates the refusal a caller
//! expects and handles (a version conflict) from infrastructure failures ([`StoreError`]), which
//! every read shares.

use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use crate::model::{ExpectedVersion, InvalidStreamId, StreamId};

/// Why an append did not land.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AppendError {
    /// The stream moved on since the caller read it: reload, decide again, retry.
    #[error("stream {stream_id} is at version {actual}, the append expected {expected}")]
    Conflict {
        stream_id: StreamId,
        expected: ExpectedVersion,
        actual: u64,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An infrastructure failure of the log. Cheap to clone: one failed group commit answers every
/// request of the batch with the same error.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// Another writer (usually another process) held the write lock for the whole busy timeout.
    #[error("the event log is busy: no write lock within {waited:?}")]
    Busy { waited: Duration },
    #[error("event log database error: {0}")]
    Database(DatabaseError),
    /// The disk (or a quota) is full: the transaction was rolled back, nothing was written. Retrying once
    /// space is back succeeds.
    #[error("the event log's storage is full: {0}")]
    StorageFull(DatabaseError),
    #[error("event log migration failed: {0}")]
    Migration(DatabaseError),
    /// Stored data that this crate could not have written.
    #[error("the event log is corrupt at global position {global_position}: {reason}")]
    Corrupt {
        global_position: u64,
        reason: String,
    },
    /// The request itself is malformed; retrying it cannot help.
    #[error("invalid event log request: {0}")]
    Invalid(String),
    /// An event id of the request is already in the log (under another command).
    #[error("event id {0} is already in the log")]
    DuplicateEventId(Uuid),
    /// The log was opened read-only (an auditor's copy): nothing can be appended.
    #[error("the event log was opened read-only: nothing can be appended")]
    ReadOnly,
    /// The database may be read but not written by this process.
    #[error(
        "the event log's database is read-only here ({0}): open it read-only, or fix its permissions"
    )]
    ReadOnlyDatabase(String),
    /// There is no log where the URL points.
    #[error("{0}")]
    NotFound(String),
    /// The store was closed, or its writer stopped.
    #[error("the event log is closed")]
    Closed,
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match error {
            sqlx::Error::Migrate(error) => Self::from(*error),
            error if is_storage_full(&error) => Self::StorageFull(DatabaseError::of(&error)),
            error => Self::Database(DatabaseError::of(&error)),
        }
    }
}

/// The bulk read path of the SQLite log reads through rusqlite (`sqlite/bulk.rs`); its errors cross the layer
/// as text too.
impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        let (server_refusal, full) = match &error {
            rusqlite::Error::SqliteFailure(failure, _) => {
                (true, failure.code == rusqlite::ErrorCode::DiskFull)
            }
            _ => (false, false),
        };
        let database = DatabaseError {
            message: error.to_string().into(),
            server_refusal,
        };
        if full {
            Self::StorageFull(database)
        } else {
            Self::Database(database)
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(error: sqlx::migrate::MigrateError) -> Self {
        Self::Migration(DatabaseError {
            message: error.to_string().into(),
            server_refusal: false,
        })
    }
}

/// SQLite's `SQLITE_FULL` (primary code 13), PostgreSQL's `disk_full` (SQLSTATE 53100), or the operating
/// system's ENOSPC.
fn is_storage_full(error: &sqlx::Error) -> bool {
    const ENOSPC: i32 = 28;
    match error {
        sqlx::Error::Database(database) => {
            let code = database.code().unwrap_or_default();
            if database
                .try_downcast_ref::<sqlx::sqlite::SqliteError>()
                .is_some()
            {
                code.parse::<i32>().is_ok_and(|code| code & 0xff == 13)
            } else {
                code == "53100"
            }
        }
        sqlx::Error::Io(io) => io.raw_os_error() == Some(ENOSPC),
        _ => false,
    }
}

/// What the database driver said, as text: the layers above the storage layer never see a driver's types,
/// so a backend can change without changing their error handling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseError {
    message: Arc<str>,
    /// The database itself refused the statement (a constraint, a lock timeout): the connection is fine. Any
    /// other failure (I/O, protocol, a closed connection) leaves the connection in an unknown state.
    server_refusal: bool,
}

impl DatabaseError {
    /// A failure around the driver rather than from it (a read thread that panicked).
    pub(crate) fn text(message: String) -> Self {
        Self {
            message: message.into(),
            server_refusal: false,
        }
    }

    fn of(error: &sqlx::Error) -> Self {
        Self {
            message: error.to_string().into(),
            server_refusal: matches!(error, sqlx::Error::Database(_)),
        }
    }

    /// Whether the database refused the statement, as opposed to the connection failing.
    pub(crate) fn is_server_refusal(&self) -> bool {
        self.server_refusal
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl std::fmt::Display for DatabaseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<InvalidStreamId> for StoreError {
    fn from(error: InvalidStreamId) -> Self {
        Self::Invalid(error.to_string())
    }
}
