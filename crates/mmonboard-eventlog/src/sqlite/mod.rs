//! The embedded SQLite event log, the default backend. One writer task with one held connection
//! does all appends (group commit, see [`writer`]); read-only connections serve reads beside it,
//! which WAL mode allows: the bulk reads (streams, `read_all`, `verify`, exports) through rusqlite on
//! blocking threads ([`bulk`]), the small look-ups through a sqlx pool.

mod bulk;
mod decode;
mod sql;
mod writer;

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use backon::Retryable;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Row, SqliteConnection};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::backend::Backend;
use crate::crosscheck::{CommandCrossCheck, CommandRecord, CommandRecords};
use crate::error::{AppendError, DatabaseError, StoreError};
use crate::hooks::{AppendObserver, CommitHold};
use crate::model::{AppendOutcome, AppendRequest, RecordedEvent, StreamId, VerifyReport};
use crate::store::{ChainVerifier, EventStore};
use bulk::{BulkReaders, BulkTarget};
use decode::ChunkDecoder;
pub(crate) use writer::PreparedAppend;
use writer::{AppendJob, Writer};

/// Events per row of the writer's chunked reads (a known command's events), and per page of `verify`'s
/// and exports' walks.
const READ_CHUNK: usize = 2048;

// Reads of at least this many events are split into ranges read and decoded on several blocking threads
// at once; below it one thread is quicker than the hand-over.
use crate::halves::PARALLEL_READ_FROM;

/// Ranges of one long read fetched at once (the machines have two cores).
const READ_PARALLELISM: usize = 2;

/// When a commit reaches the disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Durability {
    /// `synchronous=FULL`: a committed append survives power loss.
    #[default]
    Full,
    /// `synchronous=NORMAL`: survives a process crash; the last commits may be lost on power
    /// loss.
    Normal,
}

/// How the SQLite log is opened; [`Default`] suits a server.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    pub synchronous: Durability,
    /// How long the writer waits for SQLite's write lock (held by another process) before the
    /// batch fails with [`StoreError::Busy`].
    pub busy_timeout: Duration,
    /// Connections of each read pool: the sqlx pool of the small look-ups, and the rusqlite pool of
    /// the bulk reads (opened as first needed).
    pub read_connections: u32,
    /// The most appends committed in one transaction.
    pub max_batch: usize,
    /// SQLite page cache of each read connection, in KiB, allocated as pages are read. Events
    /// of one stream are spread over the file, so loading a long stream touches many pages; a
    /// cache that holds them makes repeated loads cheap.
    pub read_cache_kib: u32,
    /// Bytes of the database file each connection maps into memory (SQLite `mmap_size`), so
    /// pages outside the cache are read without a system call each; 0 disables it.
    pub mmap_size: u64,
    /// Test-only: holds each batch's transaction open between its insert and its COMMIT.
    #[doc(hidden)]
    pub hold_commit: Option<CommitHold>,
    /// Told of every group commit (the server's metrics); none by default.
    pub observer: Option<AppendObserver>,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            synchronous: Durability::Full,
            busy_timeout: Duration::from_secs(5),
            read_connections: 4,
            max_batch: 256,
            read_cache_kib: 64 * 1024,
            mmap_size: 1 << 30,
            hold_commit: None,
            observer: None,
        }
    }
}

/// The SQLite event log. Dropping it stops the writer once the appends already sent are
/// committed; [`SqliteEventStore::close`] also waits for that.
pub struct SqliteEventStore {
    /// `None` when opened read-only: appends are refused.
    appends: Option<mpsc::Sender<AppendJob>>,
    writer: JoinHandle<()>,
    readers: SqlitePool,
    /// The bulk read path (rusqlite on blocking threads).
    bulk: BulkReaders,
    read_parallelism: usize,
    commits: Arc<AtomicU64>,
    head: Arc<tokio::sync::watch::Sender<u64>>,
}

impl SqliteEventStore {
    /// Opens (creating if missing) the database at `url`, e.g. `sqlite://path/to/log.db`, and
    /// migrates it. In-memory databases are refused: the writer and the readers need one shared
    /// file to see each other's commits under WAL.
    pub async fn open(url: &str, options: SqliteOptions) -> Result<Self, StoreError> {
        if url.contains(":memory:") || url.contains("mode=memory") {
            return Err(StoreError::Invalid(
                "in-memory SQLite databases are not supported: the writer and the read pool \
                 need a database file (use a temporary file in tests)"
                    .to_owned(),
            ));
        }
        if options.max_batch == 0 || options.read_connections == 0 {
            return Err(StoreError::Invalid(
                "max_batch and read_connections must be at least 1".to_owned(),
            ));
        }
        let base = SqliteConnectOptions::from_str(url)
            .map_err(|error| StoreError::Invalid(format!("bad SQLite URL {url:?}: {error}")))?
            .busy_timeout(options.busy_timeout)
            .foreign_keys(true)
            .pragma("mmap_size", options.mmap_size.to_string());
        let synchronous = match options.synchronous {
            Durability::Full => SqliteSynchronous::Full,
            Durability::Normal => SqliteSynchronous::Normal,
        };
        let writer_options = base
            .clone()
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(synchronous);
        let mut connection = open_writer(&writer_options, options.busy_timeout).await?;
        // A file it can read but not write (an auditor's read-only copy) would otherwise open fine and fail
        // at the first append: say so now, before anything is served.
        if let Err(error) = probe_write(&mut connection).await {
            let _ = sqlx::Connection::close(connection).await;
            return Err(error);
        }

        let bulk = BulkReaders::new(
            bulk_target(base.get_filename(), &options),
            options.read_connections as usize,
        );
        let readers = SqlitePoolOptions::new()
            .max_connections(options.read_connections)
            .min_connections(0)
            .test_before_acquire(false)
            .connect_with(
                base.read_only(true)
                    .pragma("cache_size", format!("-{}", options.read_cache_kib)),
            )
            .await?;

        let (appends, receiver) = mpsc::channel(options.max_batch.saturating_mul(2));
        let commits = Arc::new(AtomicU64::new(0));
        let head = Arc::new(tokio::sync::watch::Sender::new(0));
        let writer = Writer {
            connection,
            busy_timeout: options.busy_timeout,
            max_batch: options.max_batch,
            commits: Arc::clone(&commits),
            head: Arc::clone(&head),
            hold_commit: options.hold_commit,
            observer: options.observer,
        };
        let writer = tokio::spawn(writer.run(receiver));
        let store = Self {
            appends: Some(appends),
            writer,
            readers,
            bulk,
            read_parallelism: READ_PARALLELISM.min(options.read_connections as usize),
            commits,
            head,
        };
        let current_head = store.head_position().await?;
        store.head.send_if_modified(|head| {
            let moved = current_head > *head;
            *head = (*head).max(current_head);
            moved
        });
        Ok(store)
    }

    /// Opens an existing log for reading only: nothing is created, migrated or written (appends are refused
    /// with [`StoreError::ReadOnly`]). A missing file is [`StoreError::NotFound`]; a file this process may
    /// not write (a read-only copy, a read-only filesystem) is opened as immutable, since SQLite could not
    /// even create the WAL index beside it.
    pub async fn open_read_only(url: &str, options: SqliteOptions) -> Result<Self, StoreError> {
        if options.read_connections == 0 {
            return Err(StoreError::Invalid(
                "read_connections must be at least 1".to_owned(),
            ));
        }
        let base = SqliteConnectOptions::from_str(url)
            .map_err(|error| StoreError::Invalid(format!("bad SQLite URL {url:?}: {error}")))?
            .busy_timeout(options.busy_timeout)
            .pragma("mmap_size", options.mmap_size.to_string())
            .pragma("cache_size", format!("-{}", options.read_cache_kib))
            .read_only(true)
            .create_if_missing(false);
        let path = base.get_filename().to_owned();
        if !path.exists() {
            return Err(StoreError::NotFound(format!(
                "there is no event log at {}: the file does not exist",
                path.display()
            )));
        }
        let target = bulk_target(&path, &options);
        let (readers, target) = match read_only_pool(&base, &options).await {
            Ok(readers) => (readers, target),
            // SQLITE_READONLY or SQLITE_CANTOPEN: the WAL index cannot be created or written here.
            Err(error) if matches!(writer::primary_code(&error), Some(8 | 14)) => (
                read_only_pool(&base.clone().immutable(true), &options).await?,
                target.immutable(&path)?,
            ),
            Err(error) => return Err(error.into()),
        };
        let bulk = BulkReaders::new(target, options.read_connections as usize);
        let is_log: bool = sqlx::query_scalar(sql::IS_EVENT_LOG)
            .fetch_one(&readers)
            .await?;
        if !is_log {
            readers.close().await;
            return Err(StoreError::NotFound(format!(
                "{} is a SQLite database but not an mmonboard event log (it has no events table)",
                path.display()
            )));
        }
        let store = Self {
            appends: None,
            writer: tokio::spawn(async {}),
            readers,
            bulk,
            read_parallelism: READ_PARALLELISM.min(options.read_connections as usize),
            commits: Arc::new(AtomicU64::new(0)),
            head: Arc::new(tokio::sync::watch::Sender::new(0)),
        };
        let current_head = store.head_position().await?;
        store.head.send_replace(current_head);
        Ok(store)
    }

    /// Stops accepting appends, waits until the writer has committed the ones already sent and
    /// closed its connection, then closes the read pool.
    pub async fn close(self) {
        let Self {
            appends,
            writer,
            readers,
            bulk,
            ..
        } = self;
        drop(appends);
        // Readers first: the writer's last act folds the WAL into the file, which open readers would hold up.
        bulk.close();
        readers.close().await;
        let _ = writer.await;
    }

    /// Write transactions committed by this store so far; with many concurrent appenders it
    /// grows slower than the number of appends (group commit).
    pub fn committed_batches(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// The head position as this store last committed or saw it. It moves on this store's own commits;
    /// appends by other processes are seen by reading (subscriptions poll for them).
    pub fn watch_head(&self) -> tokio::sync::watch::Receiver<u64> {
        self.head.subscribe()
    }

    /// Appends waiting for the writer.
    pub fn pending_appends(&self) -> usize {
        self.appends
            .as_ref()
            .map_or(0, |appends| appends.max_capacity() - appends.capacity())
    }

    async fn reader(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Sqlite>, StoreError> {
        self.readers.acquire().await.map_err(|error| match error {
            sqlx::Error::PoolClosed => StoreError::Closed,
            error => error.into(),
        })
    }
}

/// Connects the writer and migrates. A fresh file opened by several processes at once makes some of them meet
/// a lock that SQLite's busy handler does not wait for (switching to WAL): connecting is retried while the
/// file is locked, and migrating while another process migrates it (`companion::migrate`), each within the
/// busy timeout.
async fn open_writer(
    options: &SqliteConnectOptions,
    busy_timeout: Duration,
) -> Result<SqliteConnection, StoreError> {
    let connect = || options.connect();
    let mut connection = connect
        .retry(crate::companion::opening_backoff(busy_timeout))
        .sleep(tokio::time::sleep)
        .when(locked)
        .await?;
    let migrated = crate::companion::migrate(
        &sqlx::migrate!("./migrations/sqlite"),
        Backend::Sqlite,
        &mut connection,
        busy_timeout,
    )
    .await;
    match migrated {
        Ok(()) => Ok(connection),
        Err(error) => {
            let _ = sqlx::Connection::close(connection).await;
            Err(error)
        }
    }
}

/// Where the bulk readers find the log, opened as the sqlx readers are.
fn bulk_target(path: &std::path::Path, options: &SqliteOptions) -> BulkTarget {
    BulkTarget {
        location: path.to_owned(),
        immutable: false,
        busy_timeout: options.busy_timeout,
        cache_kib: options.read_cache_kib,
        mmap_size: options.mmap_size,
    }
}

/// The read pool of a read-only store; connecting the first connection checks the file can be read.
async fn read_only_pool(
    options: &SqliteConnectOptions,
    settings: &SqliteOptions,
) -> Result<SqlitePool, sqlx::Error> {
    SqlitePoolOptions::new()
        .max_connections(settings.read_connections)
        .min_connections(1)
        .test_before_acquire(false)
        .connect_with(options.clone())
        .await
}

/// Takes the write lock and gives it back at once: fails on a database this process may not write.
async fn probe_write(connection: &mut SqliteConnection) -> Result<(), StoreError> {
    use sqlx::Executor;
    match connection.execute("BEGIN IMMEDIATE; ROLLBACK").await {
        Ok(_) => Ok(()),
        Err(error) if writer::primary_code(&error) == Some(8) => {
            let _ = connection.execute("ROLLBACK").await;
            Err(StoreError::ReadOnlyDatabase(error.to_string()))
        }
        Err(error) => {
            let _ = connection.execute("ROLLBACK").await;
            Err(error.into())
        }
    }
}

/// SQLITE_BUSY or SQLITE_LOCKED.
pub(crate) fn locked(error: &sqlx::Error) -> bool {
    matches!(writer::primary_code(error), Some(5 | 6))
}

impl EventStore for SqliteEventStore {
    async fn append(&self, request: AppendRequest) -> Result<AppendOutcome, AppendError> {
        let Some(appends) = &self.appends else {
            return Err(StoreError::ReadOnly.into());
        };
        let append = prepare(request)?;
        let (reply, answer) = oneshot::channel();
        appends
            .send(AppendJob {
                append,
                reply,
                queued: std::time::Instant::now(),
            })
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    async fn read_stream(
        &self,
        stream_id: &StreamId,
        from_version: u64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let Ok(from) = i64::try_from(from_version) else {
            return Ok(Vec::new());
        };
        let parallel = self.read_parallelism > 1;
        let stream = stream_id.clone();
        let first = self
            .bulk
            .run(move |connection| {
                let last = bulk::stream_version(connection, &stream)?;
                let wanted = usize::try_from(last.saturating_sub(from)).unwrap_or(0);
                if parallel && wanted >= PARALLEL_READ_FROM {
                    Ok(Err(last))
                } else {
                    bulk::stream_range(connection, &stream, from, last).map(Ok)
                }
            })
            .await?;
        let last = match first {
            Ok(events) => return Ok(events),
            Err(last) => last,
        };
        // A long stream: its versions up to `last` are committed, so ranges of them read on several
        // connections at once (each decoding its own rows) together hold exactly what one read would.
        let parts = self.read_parallelism as i64;
        let span = (last - from + parts - 1) / parts;
        let ranges = (0..self.read_parallelism as i64).map(|part| {
            let after = from + part * span;
            let up_to = (after + span).min(last);
            let stream = stream_id.clone();
            self.bulk
                .run(move |connection| bulk::stream_range(connection, &stream, after, up_to))
        });
        let mut events = Vec::with_capacity(usize::try_from(last - from).unwrap_or(0));
        for part in futures_util::future::try_join_all(ranges).await? {
            events.extend(part);
        }
        Ok(events)
    }

    async fn read_all(
        &self,
        after_position: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let Ok(after) = i64::try_from(after_position) else {
            return Ok(Vec::new());
        };
        if self.read_parallelism < 2 {
            return self
                .bulk
                .run(move |connection| bulk::read_all(connection, after, limit, limit))
                .await;
        }
        crate::halves::read_all(after, limit, |after, limit, capacity| {
            self.bulk
                .run(move |connection| bulk::read_all(connection, after, limit, capacity))
        })
        .await
    }

    async fn stream_version(&self, stream_id: &StreamId) -> Result<u64, StoreError> {
        let mut connection = self.reader().await?;
        let version: i64 = sqlx::query_scalar(sql::STREAM_VERSION)
            .bind(stream_id.shared())
            .fetch_one(&mut *connection)
            .await?;
        u64::try_from(version).map_err(|_| StoreError::Corrupt {
            global_position: 0,
            reason: format!("negative stream version in stream {stream_id}"),
        })
    }

    async fn find_command(
        &self,
        command_id: Uuid,
    ) -> Result<Option<Vec<RecordedEvent>>, StoreError> {
        let mut connection = self.reader().await?;
        let row = sqlx::query(sql::FIND_COMMAND)
            .bind(command_id.hyphenated().to_string())
            .fetch_optional(&mut *connection)
            .await?;
        drop(connection);
        let Some(row) = row else {
            return Ok(None);
        };
        let (first_position, event_count): (Option<i64>, i64) = (row.try_get(0)?, row.try_get(1)?);
        let Some(first_position) = first_position else {
            return Ok(Some(Vec::new()));
        };
        let span = crate::store::CommandSpan::new(first_position, event_count)?;
        let (after, count) = (span.after(), span.count());
        let events = self
            .bulk
            .run(move |connection| bulk::read_all(connection, after, count, count))
            .await?;
        span.checked(events).map(Some)
    }

    async fn head_position(&self) -> Result<u64, StoreError> {
        let mut connection = self.reader().await?;
        let head: i64 = sqlx::query_scalar(sql::HEAD_POSITION)
            .fetch_one(&mut *connection)
            .await?;
        u64::try_from(head).map_err(|_| StoreError::Corrupt {
            global_position: 0,
            reason: format!("negative global position {head}"),
        })
    }

    async fn verify(&self) -> Result<VerifyReport, StoreError> {
        // The command records are read in one snapshot taken first (see `crosscheck`): every
        // position it claims, and every event up to its head, must be found by the walk that
        // follows, however many appends land meanwhile.
        let mut snapshot_connection = self.reader().await?;
        let mut snapshot = sqlx::Connection::begin(&mut *snapshot_connection).await?;
        let (head, last_commanded): (i64, i64) = sqlx::query_as(sql::VERIFY_BOUND)
            .fetch_one(&mut *snapshot)
            .await?;
        let bound = u64::try_from(head.max(last_commanded)).unwrap_or(0);
        let rows = sqlx::query(sql::COMMANDS_BY_POSITION).fetch(&mut *snapshot);
        let mut commands = CommandCrossCheck::new(CommandRows { rows }, bound);

        let mut verifier = ChainVerifier::new();
        let mut next_page = Some(self.prefetch_stored_page(0));
        'pages: while let Some(fetching) = next_page.take() {
            let page = fetching.await.map_err(|error| {
                StoreError::Database(DatabaseError::text(format!(
                    "a read of the event log failed: {error}"
                )))
            })??;
            // The next page is read and decoded on a blocking thread while this one's hashes are checked.
            if page.undecodable.is_none()
                && page.rows == READ_CHUNK
                && let Some((last, _)) = page.events.last()
            {
                next_page = Some(self.prefetch_stored_page(last.global_position));
            }
            for (event, metadata) in &page.events {
                verifier.check(event, metadata);
                if verifier.is_broken() {
                    break 'pages;
                }
                commands.event(event).await?;
                if commands.first_break().is_some() {
                    break 'pages;
                }
            }
            if let Some((global_position, reason)) = page.undecodable {
                verifier.undecodable(global_position, reason);
                break;
            }
        }
        if !verifier.is_broken() {
            commands.finish(verifier.last_position()).await?;
        }
        if let Some(found) = commands.first_break() {
            verifier.found(found);
        }
        verifier.expect_last_position(u64::try_from(last_commanded).unwrap_or(0));
        drop(commands);
        snapshot.rollback().await?;
        Ok(verifier.finish())
    }
}

/// The command records of `verify`'s snapshot, decoded as the cross-check pulls them.
struct CommandRows<'c> {
    rows: futures_util::stream::BoxStream<'c, Result<sqlx::sqlite::SqliteRow, sqlx::Error>>,
}

impl CommandRecords for CommandRows<'_> {
    async fn next_record(&mut self) -> Result<Option<CommandRecord>, StoreError> {
        use futures_util::TryStreamExt;
        let Some(row) = self.rows.try_next().await? else {
            return Ok(None);
        };
        let first_position: i64 = row.try_get(2)?;
        let global_position = u64::try_from(first_position).unwrap_or(0);
        let corrupt = |reason: String| StoreError::Corrupt {
            global_position,
            reason,
        };
        let command_id: &str = row.try_get(0)?;
        let parsed = Uuid::try_parse(command_id)
            .map_err(|_| corrupt(format!("the command id {command_id:?} is not a UUID")))?;
        if !crate::crosscheck::is_canonical_uuid_text(command_id.as_bytes(), &parsed) {
            return Err(corrupt(format!(
                "the command id {command_id:?} is not stored in its canonical form (lower-case, \
                 hyphenated)"
            )));
        }
        let event_count: i64 = row.try_get(3)?;
        Ok(Some(CommandRecord {
            command_id: parsed,
            stream_id: row.try_get(1)?,
            first_position: global_position,
            event_count: u64::try_from(event_count)
                .map_err(|_| corrupt(format!("a command records {event_count} events")))?,
            recorded_at_micros: row.try_get(4)?,
        }))
    }
}

/// Checks a request and turns it into what the writer stores, so the writer spends its time
/// only on the database. Shared with the PostgreSQL store: both accept exactly the same requests.
pub(crate) fn prepare(request: AppendRequest) -> Result<PreparedAppend, StoreError> {
    if request.command_id != request.metadata.command_id {
        return Err(StoreError::Invalid(format!(
            "command id {} differs from the metadata's command id {}",
            request.command_id, request.metadata.command_id
        )));
    }
    for event in &request.events {
        if event.event_type.is_empty() || event.event_type.chars().any(char::is_control) {
            return Err(StoreError::Invalid(format!(
                "event {}: the event type {:?} is empty or has control characters",
                event.event_id, event.event_type
            )));
        }
        if let Err(error) = serde_json::from_str::<serde::de::IgnoredAny>(&event.payload) {
            return Err(StoreError::Invalid(format!(
                "event {}: the payload is not JSON: {error}",
                event.event_id
            )));
        }
    }
    let metadata_json = serde_json::to_string(&request.metadata)
        .map_err(|error| StoreError::Invalid(format!("unserializable metadata: {error}")))?;
    let micros = request.recorded_at.timestamp_micros();
    let recorded_at = chrono::DateTime::from_timestamp_micros(micros).ok_or_else(|| {
        StoreError::Invalid(format!(
            "recorded_at {} is out of range",
            request.recorded_at
        ))
    })?;
    Ok(PreparedAppend {
        stream_id: request.stream_id,
        expected_version: request.expected_version,
        command_id: request.command_id,
        metadata: request.metadata,
        metadata_json: metadata_json.into(),
        recorded_at,
        events: request.events,
    })
}

async fn read_all_on(
    connection: &mut SqliteConnection,
    mut after: i64,
    limit: usize,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let mut decoder = ChunkDecoder::default();
    let mut events = Vec::with_capacity(limit.min(READ_CHUNK * 16));
    while events.len() < limit {
        let wanted = (limit - events.len()).min(READ_CHUNK);
        let row = sqlx::query(sql::READ_ALL_CHUNK)
            .bind(after)
            .bind(wanted as i64)
            .fetch_one(&mut *connection)
            .await?;
        let start = events.len();
        let count = decoder.decode(&row, None, |event, _| events.push(event))?;
        let chunk = &mut events[start..];
        if !chunk.is_sorted_by_key(|event| event.global_position) {
            chunk.sort_unstable_by_key(|event| event.global_position);
        }
        match chunk.last() {
            Some(last) if count == wanted => after = to_i64(last.global_position)?,
            _ => break,
        }
    }
    Ok(events)
}

impl SqliteEventStore {
    /// One chunk of up to `limit` events after `after`, each with its metadata text exactly as stored
    /// (what the chain hashes), for exports.
    pub(crate) async fn read_all_as_stored(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(RecordedEvent, String)>, StoreError> {
        let after = to_i64(after)?;
        let limit = limit.min(READ_CHUNK);
        let page = self
            .bulk
            .run(move |connection| bulk::read_all_as_stored(connection, after, limit))
            .await?;
        match page.undecodable {
            None => Ok(page.events),
            Some((global_position, reason)) => Err(StoreError::Corrupt {
                global_position,
                reason,
            }),
        }
    }

    /// Starts reading `verify`'s page after `after` in the background.
    fn prefetch_stored_page(
        &self,
        after: u64,
    ) -> tokio::task::JoinHandle<Result<bulk::StoredPage, StoreError>> {
        let bulk = self.bulk.clone();
        tokio::spawn(async move {
            let after = to_i64(after)?;
            bulk.run(move |connection| bulk::read_all_as_stored(connection, after, READ_CHUNK))
                .await
        })
    }
}

impl SqliteEventStore {
    /// The signed checkpoints beside the log, by position (none on a log whose schema predates them).
    pub(crate) async fn signed_checkpoints(
        &self,
    ) -> Result<Vec<crate::signed::SignedCheckpoint>, StoreError> {
        let mut connection = self.reader().await?;
        crate::signed::list_on_sqlite(&mut connection, 0).await
    }
}

/// Writes exported rows verbatim into an empty SQLite log, on a connection of its own under one
/// `BEGIN IMMEDIATE` transaction: either every row lands or none does.
pub(crate) struct SqliteImport {
    connection: SqliteConnection,
}

impl SqliteImport {
    /// Takes the write lock and checks, under it, that the log holds no event and no command.
    pub(crate) async fn begin(url: &str, busy_timeout: Duration) -> Result<Self, StoreError> {
        use sqlx::Executor;
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|error| StoreError::Invalid(format!("bad SQLite URL {url:?}: {error}")))?
            .busy_timeout(busy_timeout)
            .foreign_keys(true);
        let mut connection = options.connect().await?;
        connection.execute(sql::BEGIN_IMMEDIATE).await?;
        let mut import = Self { connection };
        let (events, commands): (i64, i64) = sqlx::query_as(sql::COUNT_ROWS)
            .fetch_one(&mut import.connection)
            .await?;
        if events != 0 || commands != 0 {
            import.rollback().await;
            return Err(StoreError::Invalid(format!(
                "the target log is not empty ({events} events, {commands} commands): import \
                 writes only into an empty log"
            )));
        }
        Ok(import)
    }

    pub(crate) async fn event(
        &mut self,
        event: &RecordedEvent,
        metadata: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(sql::INSERT_EVENT)
            .bind(to_i64(event.global_position)?)
            .bind(event.stream_id.as_str())
            .bind(to_i64(event.stream_version)?)
            .bind(event.event_id.hyphenated().to_string())
            .bind(event.event_type.as_str())
            .bind(i64::from(event.schema_version))
            .bind(event.payload.as_str())
            .bind(metadata)
            .bind(event.recorded_at.timestamp_micros())
            .bind(&event.hash[..])
            .execute(&mut self.connection)
            .await?;
        Ok(())
    }

    pub(crate) async fn command(&mut self, record: &CommandRecord) -> Result<(), StoreError> {
        sqlx::query(sql::INSERT_COMMAND)
            .bind(record.command_id.hyphenated().to_string())
            .bind(record.stream_id.as_str())
            .bind(to_i64(record.first_position)?)
            .bind(to_i64(record.event_count)?)
            .bind(record.recorded_at_micros)
            .execute(&mut self.connection)
            .await?;
        Ok(())
    }

    pub(crate) async fn checkpoint(
        &mut self,
        checkpoint: &crate::signed::SignedCheckpoint,
    ) -> Result<(), StoreError> {
        crate::signed::insert_on_sqlite(&mut self.connection, checkpoint).await?;
        Ok(())
    }

    pub(crate) async fn commit(mut self) -> Result<(), StoreError> {
        use sqlx::Executor;
        self.connection.execute(sql::COMMIT).await?;
        let _ = sqlx::Connection::close(self.connection).await;
        Ok(())
    }

    pub(crate) async fn rollback(mut self) {
        use sqlx::Executor;
        let _ = self.connection.execute(sql::ROLLBACK).await;
        let _ = sqlx::Connection::close(self.connection).await;
    }
}

/// The events of a command found in `commands`: they occupy consecutive positions.
pub(crate) async fn read_command_events(
    connection: &mut SqliteConnection,
    first_position: Option<i64>,
    event_count: i64,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let Some(first_position) = first_position else {
        return Ok(Vec::new());
    };
    let span = crate::store::CommandSpan::new(first_position, event_count)?;
    let events = read_all_on(connection, span.after(), span.count()).await?;
    span.checked(events)
}

/// Positions and versions are stored as SQLite's signed 64-bit integers.
pub(crate) fn to_i64(value: u64) -> Result<i64, StoreError> {
    i64::try_from(value)
        .map_err(|_| StoreError::Invalid(format!("{value} exceeds the largest storable position")))
}
