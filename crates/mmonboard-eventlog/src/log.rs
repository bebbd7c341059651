//! The log as the layers above see it: one type whatever the backend, opened from a URL whose scheme picks
//! the backend. An enum rather than a generic parameter or a trait object: the [`EventStore`] trait's
//! methods return `impl Future`, so it cannot be a trait object, and a generic parameter would spread a
//! backend choice through every type above (service, projector, process manager, server state) that is
//! made once, at start-up, from a URL. Matching once per method here keeps every call site plain.

use tokio::sync::watch;
use uuid::Uuid;

use crate::backend::Backend;
use crate::error::{AppendError, StoreError};
use crate::model::{
    AppendOutcome, AppendRequest, EventView, RecordedEvent, StreamId, VerifyReport,
};
use crate::postgres::{PgEventStore, PgOptions};
use crate::sqlite::{SqliteEventStore, SqliteOptions};
use crate::store::EventStore;
use crate::subscription::HeadWatch;

/// How the log is opened, per backend.
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    pub sqlite: SqliteOptions,
    pub postgres: PgOptions,
}

impl LogOptions {
    /// The defaults, with `observer` told of every group commit on whichever backend is opened.
    pub fn observed(observer: crate::hooks::AppendObserver) -> Self {
        let mut options = Self::default();
        options.sqlite.observer = Some(observer.clone());
        options.postgres.observer = Some(observer);
        options
    }
}

/// The event log on either backend.
pub enum EventLog {
    Sqlite(SqliteEventStore),
    Postgres(PgEventStore),
}

impl EventLog {
    /// Opens (creating and migrating it if missing) the log at `url`: `sqlite://…` or `postgres://…`.
    pub async fn open(url: &str, options: &LogOptions) -> Result<Self, StoreError> {
        match Backend::of_url(url)? {
            Backend::Sqlite => Ok(Self::Sqlite(
                SqliteEventStore::open(url, options.sqlite.clone()).await?,
            )),
            Backend::Postgres => Ok(Self::Postgres(
                PgEventStore::open(url, options.postgres.clone()).await?,
            )),
        }
    }

    /// Opens an existing log at `url` for reading only: nothing is created, migrated or written, a missing
    /// database is [`StoreError::NotFound`], and appends are refused ([`StoreError::ReadOnly`]). For `verify`,
    /// `state`, `history` and exports, including on an auditor's read-only copy.
    pub async fn open_read_only(url: &str, options: &LogOptions) -> Result<Self, StoreError> {
        match Backend::of_url(url)? {
            Backend::Sqlite => Ok(Self::Sqlite(
                SqliteEventStore::open_read_only(url, options.sqlite.clone()).await?,
            )),
            Backend::Postgres => Ok(Self::Postgres(
                PgEventStore::open_read_only(url, options.postgres.clone()).await?,
            )),
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Self::Sqlite(_) => Backend::Sqlite,
            Self::Postgres(_) => Backend::Postgres,
        }
    }

    /// Stops accepting appends, waits for the ones already sent to commit, and closes every connection.
    pub async fn close(self) {
        match self {
            Self::Sqlite(store) => store.close().await,
            Self::Postgres(store) => store.close().await,
        }
    }

    /// The signed checkpoints beside the log, by position then key id (read on the log's own readers, so a
    /// read-only log has them too; none on a log whose schema predates them).
    pub async fn signed_checkpoints(
        &self,
    ) -> Result<Vec<crate::signed::SignedCheckpoint>, StoreError> {
        match self {
            Self::Sqlite(store) => store.signed_checkpoints().await,
            Self::Postgres(store) => store.signed_checkpoints().await,
        }
    }

    /// Write transactions committed by this process so far (group commit makes it grow slower than appends).
    pub fn committed_batches(&self) -> u64 {
        match self {
            Self::Sqlite(store) => store.committed_batches(),
            Self::Postgres(store) => store.committed_batches(),
        }
    }
}

impl HeadWatch for EventLog {
    fn watch_head(&self) -> watch::Receiver<u64> {
        match self {
            Self::Sqlite(store) => store.watch_head(),
            Self::Postgres(store) => store.watch_head(),
        }
    }
}

impl EventStore for EventLog {
    /// (Traced: the span covers the wait for the group commit and the commit itself.)
    #[tracing::instrument(
        name = "append",
        skip_all,
        fields(
            stream_id = %request.stream_id,
            events = request.events.len(),
            command_id = %request.command_id,
        )
    )]
    async fn append(&self, request: AppendRequest) -> Result<AppendOutcome, AppendError> {
        match self {
            Self::Sqlite(store) => store.append(request).await,
            Self::Postgres(store) => store.append(request).await,
        }
    }

    async fn read_stream(
        &self,
        stream_id: &StreamId,
        from_version: u64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        match self {
            Self::Sqlite(store) => store.read_stream(stream_id, from_version).await,
            Self::Postgres(store) => store.read_stream(stream_id, from_version).await,
        }
    }

    async fn read_all(
        &self,
        after_position: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        match self {
            Self::Sqlite(store) => store.read_all(after_position, limit).await,
            Self::Postgres(store) => store.read_all(after_position, limit).await,
        }
    }

    async fn replay<E, F>(&self, after_position: u64, limit: usize, visit: F) -> Result<u64, E>
    where
        E: From<StoreError> + Send,
        F: FnMut(EventView<'_>) -> Result<(), E> + Send,
    {
        match self {
            Self::Sqlite(store) => store.replay(after_position, limit, visit).await,
            Self::Postgres(store) => store.replay(after_position, limit, visit).await,
        }
    }

    async fn stream_version(&self, stream_id: &StreamId) -> Result<u64, StoreError> {
        match self {
            Self::Sqlite(store) => store.stream_version(stream_id).await,
            Self::Postgres(store) => store.stream_version(stream_id).await,
        }
    }

    async fn find_command(
        &self,
        command_id: Uuid,
    ) -> Result<Option<Vec<RecordedEvent>>, StoreError> {
        match self {
            Self::Sqlite(store) => store.find_command(command_id).await,
            Self::Postgres(store) => store.find_command(command_id).await,
        }
    }

    async fn head_position(&self) -> Result<u64, StoreError> {
        match self {
            Self::Sqlite(store) => store.head_position().await,
            Self::Postgres(store) => store.head_position().await,
        }
    }

    async fn verify(&self) -> Result<VerifyReport, StoreError> {
        match self {
            Self::Sqlite(store) => store.verify().await,
            Self::Postgres(store) => store.verify().await,
        }
    }
}
