//! The PostgreSQL event log, for several instances sharing one store. One writer task per store commits
//! whatever appends are pending as one transaction (group commit, see [`writer`]); a pool serves reads;
//! a listener task moves [`PgEventStore::watch_head`] when any process commits.
//!
//! **Readers never skip an event.** Positions come from no sequence: the writer opens each batch's
//! transaction with `LOCK TABLE events IN EXCLUSIVE MODE`, held until its COMMIT, and only then reads the
//! head, the stream versions and the known command ids (each statement of a READ COMMITTED transaction
//! takes a fresh snapshot, so these see every commit made under the lock before). It numbers the events
//! head + 1, head + 2, … and chains each hash over the hash of the event before it as committed. So the
//! batch holding position n+1 can only take the lock after the batch holding n has committed: PostgreSQL
//! makes a transaction visible before it releases its locks. Commit visibility order is therefore lock
//! order is position order, and every snapshot a reader takes sees exactly positions 1..=k for some k:
//! a reader that has seen n+1 has seen n, so paging `read_all` after the last position read (and
//! checkpointing it) can never pass over an event that commits later. Readers never wait for the lock
//! (EXCLUSIVE does not conflict with ACCESS SHARE); writers of several processes queue on it, which is the
//! price of a gap-free total order, paid once per batch rather than per command.
//!
//! Wake-ups: each commit queues `NOTIFY mmonboard_events, '<head>'` inside its transaction, delivered only
//! if it commits. A notification only says "look again": subscriptions also poll, so a lost or reordered
//! notification (the listener reconnecting, say) delays a wake-up and never loses an event.

mod copy;
mod sql;
mod writer;

use std::ops::ControlFlow;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::DateTime;
use futures_util::TryStreamExt;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions, PgRow};
use sqlx::{Executor, PgConnection, Postgres, Row};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::backend::redact_url;
use crate::crosscheck::{CommandCrossCheck, CommandRecord, CommandRecords};
use crate::error::{AppendError, StoreError};
use crate::hooks::{AppendObserver, CommitHold};
use crate::model::{
    AppendOutcome, AppendRequest, EventMetadata, EventView, RecordedEvent, StreamId, VerifyReport,
};
use crate::sqlite::prepare;
use crate::store::{ChainVerifier, EventStore, REPLAY_PAGE, replay_in_pages};
use crate::subscription::HeadWatch;
use writer::{AppendJob, Writer};

/// Events per page of `verify`'s walk.
const VERIFY_PAGE: i64 = 4096;

/// The most events a read makes room for before it has them (a caller may ask for `usize::MAX`).
const MAX_PREALLOCATED: usize = 1 << 16;

/// The events a read makes room for when it cannot tell how many it will find (a stream load, a poll the
/// head watch has not caught up with), about 1 MiB; more are added as they come.
const PREALLOCATED_UNKNOWN: usize = 4096;

/// How the PostgreSQL log is opened; [`Default`] suits a server.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// Connections of the read pool.
    pub read_connections: u32,
    /// The most appends committed in one transaction.
    pub max_batch: usize,
    /// How long a batch waits for the log's write lock (held by another process's batch) before it fails
    /// with [`StoreError::Busy`].
    pub lock_timeout: Duration,
    /// Test-only: holds each batch's transaction open between its insert and its COMMIT.
    #[doc(hidden)]
    pub hold_commit: Option<CommitHold>,
    /// Told of every group commit (the server's metrics); none by default.
    pub observer: Option<AppendObserver>,
    /// A `read_all` of at least this many events (as far as the head is known) is read as a binary `COPY`
    /// rather than the prepared `SELECT`: the same rows, for less work per row on this side, but the
    /// statement is parsed and planned anew each time, which only a long read (a replay, a catch-up)
    /// earns back. `usize::MAX` keeps every read a `SELECT`. The role reading needs EXECUTE on
    /// `mmonboard_event_columns_checked()`; without it every read is a `SELECT`. A
    /// [`EventStore::replay`] at least this long goes as `COPY` segments of this many events (at most
    /// 65,536), fetched on up to `read_connections - 1` connections at once (at least one), so that many
    /// segments at most are in memory.
    pub copy_reads_from: usize,
}

impl Default for PgOptions {
    fn default() -> Self {
        Self {
            read_connections: 4,
            max_batch: 256,
            lock_timeout: Duration::from_secs(5),
            hold_commit: None,
            observer: None,
            copy_reads_from: 8192,
        }
    }
}

/// The PostgreSQL event log. Dropping it stops the writer once the appends already sent are committed;
/// [`PgEventStore::close`] also waits for that.
pub struct PgEventStore {
    /// `None` when opened read-only: appends are refused.
    appends: Option<mpsc::Sender<AppendJob>>,
    writer: JoinHandle<()>,
    readers: PgPool,
    listener: ListenerTask,
    commits: Arc<AtomicU64>,
    head: Arc<watch::Sender<u64>>,
    /// The shortest `read_all` read as a binary `COPY` ([`PgOptions::copy_reads_from`]); `usize::MAX` when
    /// the database lacks the columns check such a read calls.
    copy_reads_from: usize,
}

impl PgEventStore {
    /// Connects to the database at `url` (`postgres://…` or `postgresql://…`), migrates it (migrations
    /// table `_sqlx_migrations`; sqlx serialises concurrent migrators with an advisory lock) and starts the
    /// writer and the listener.
    pub async fn open(url: &str, options: PgOptions) -> Result<Self, StoreError> {
        if options.max_batch == 0 || options.read_connections == 0 {
            return Err(StoreError::Invalid(
                "max_batch and read_connections must be at least 1".to_owned(),
            ));
        }
        let connect = PgConnectOptions::from_str(url).map_err(|error| {
            StoreError::Invalid(format!("bad PostgreSQL URL: {}", redact_url(url, &error)))
        })?;
        let mut connection = writer::connect(&connect, options.lock_timeout).await?;
        // `run_direct` (what `run` calls: all pending migrations, none skipped) on one connection: `run`
        // goes through `Acquire`, whose higher-ranked bounds make this future not `Send`.
        sqlx::migrate!("./migrations/postgres")
            .run_direct(None, &mut connection, false)
            .await?;

        let readers = PgPoolOptions::new()
            .max_connections(options.read_connections)
            .min_connections(0)
            .test_before_acquire(false)
            .connect_with(
                connect
                    .clone()
                    .application_name("mmonboard-eventlog-reader"),
            )
            .await?;
        let head = Arc::new(watch::Sender::new(0));
        // Listening before the head is first read: a commit in between is then announced, not missed.
        let listener = ListenerTask::start(&connect, readers.clone(), Arc::clone(&head)).await?;

        let (appends, receiver) = mpsc::channel(options.max_batch.saturating_mul(2));
        let commits = Arc::new(AtomicU64::new(0));
        let writer = Writer {
            connection: Some(connection),
            connect,
            lock_timeout: options.lock_timeout,
            max_batch: options.max_batch,
            hold_commit: options.hold_commit,
            observer: options.observer,
            commits: Arc::clone(&commits),
            head: Arc::clone(&head),
            known: None,
        };
        let copy_reads_from = copy_reads_from(&readers, options.copy_reads_from).await?;
        let writer = tokio::spawn(writer.run(receiver));
        let store = Self {
            appends: Some(appends),
            writer,
            readers,
            listener,
            commits,
            head,
            copy_reads_from,
        };
        let current_head = store.head_position().await?;
        advance(&store.head, current_head);
        Ok(store)
    }

    /// Connects for reading only: nothing is migrated or written (appends are refused with
    /// [`StoreError::ReadOnly`]), so a read-only role or a replica serves `verify`, `state` and `history`. A
    /// database without the log's tables is [`StoreError::NotFound`].
    pub async fn open_read_only(url: &str, options: PgOptions) -> Result<Self, StoreError> {
        if options.read_connections == 0 {
            return Err(StoreError::Invalid(
                "read_connections must be at least 1".to_owned(),
            ));
        }
        let connect = PgConnectOptions::from_str(url).map_err(|error| {
            StoreError::Invalid(format!("bad PostgreSQL URL: {}", redact_url(url, &error)))
        })?;
        let readers = PgPoolOptions::new()
            .max_connections(options.read_connections)
            .min_connections(0)
            .test_before_acquire(false)
            .connect_with(
                connect
                    .clone()
                    .application_name("mmonboard-eventlog-reader"),
            )
            .await?;
        let is_log: bool = sqlx::query_scalar(sql::IS_EVENT_LOG)
            .fetch_one(&readers)
            .await?;
        if !is_log {
            readers.close().await;
            return Err(StoreError::NotFound(format!(
                "the PostgreSQL database {} holds no mmonboard event log (it has no events table)",
                connect.get_database().unwrap_or("(default)")
            )));
        }
        let copy_reads_from = copy_reads_from(&readers, options.copy_reads_from).await?;
        let head = Arc::new(watch::Sender::new(0));
        let listener = ListenerTask::start(&connect, readers.clone(), Arc::clone(&head)).await?;
        let store = Self {
            appends: None,
            writer: tokio::spawn(async {}),
            readers,
            listener,
            commits: Arc::new(AtomicU64::new(0)),
            head,
            copy_reads_from,
        };
        let current_head = store.head_position().await?;
        advance(&store.head, current_head);
        Ok(store)
    }

    /// Stops accepting appends, waits until the writer has committed the ones already sent and closed its
    /// connection, then stops the listener and closes the read pool.
    pub async fn close(self) {
        let Self {
            appends,
            writer,
            readers,
            listener,
            ..
        } = self;
        drop(appends);
        let _ = writer.await;
        listener.stop().await;
        readers.close().await;
    }

    /// Write transactions committed by this store so far; with many concurrent appenders it grows slower
    /// than the number of appends (group commit).
    pub fn committed_batches(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// The head position as this store last committed or heard of it: its own commits move it at once,
    /// other processes' commits when their notification arrives.
    pub fn watch_head(&self) -> watch::Receiver<u64> {
        self.head.subscribe()
    }

    /// Appends waiting for the writer.
    pub fn pending_appends(&self) -> usize {
        self.appends
            .as_ref()
            .map_or(0, |appends| appends.max_capacity() - appends.capacity())
    }

    async fn reader(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Postgres>, StoreError> {
        self.readers.acquire().await.map_err(closed_or)
    }
}

impl HeadWatch for PgEventStore {
    fn watch_head(&self) -> watch::Receiver<u64> {
        PgEventStore::watch_head(self)
    }
}

impl EventStore for PgEventStore {
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
        let mut connection = self.reader().await?;
        let query = sqlx::query(sql::READ_STREAM)
            .bind(stream_id.as_str())
            .bind(from);
        collect_events(&mut connection, query, PREALLOCATED_UNKNOWN).await
    }

    async fn read_all(
        &self,
        after_position: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let Ok(after) = i64::try_from(after_position) else {
            return Ok(Vec::new());
        };
        if limit == 0 {
            return Ok(Vec::new());
        }
        // A read the known head says is long (a replay, a catch-up) goes as COPY; one near the head, or one
        // the head watch has not caught up with, as the prepared SELECT. Both read the same rows.
        let known = usize::try_from(self.head.borrow().saturating_sub(after_position))
            .unwrap_or(usize::MAX);
        let bulk = limit.min(known) >= self.copy_reads_from;
        // Each half on a task of its own: rows are decoded by the task that reads them, so two tasks
        // decode on two workers while the server streams both.
        crate::halves::read_all(after, limit, |after, limit, capacity| {
            // Room for no more events than the head watch knows of (or, if it may lag, than a read that
            // cannot tell makes room for): a poll at the head does not reserve a whole page.
            let capacity = capacity.min(known.max(PREALLOCATED_UNKNOWN));
            let readers = self.readers.clone();
            async move {
                tokio::spawn(async move {
                    if bulk {
                        return copy_all(&readers, after, limit, capacity).await;
                    }
                    let mut connection = readers.acquire().await.map_err(closed_or)?;
                    read_all_on(&mut connection, after, limit, capacity).await
                })
                .await
                .map_err(|error| {
                    StoreError::Database(crate::error::DatabaseError::text(format!(
                        "a read task of the event log failed: {error}"
                    )))
                })?
            }
        })
        .await
    }

    /// A replay the known head says is long goes as consecutive binary `COPY` segments of
    /// [`PgOptions::copy_reads_from`] events (at most [`REPLAY_SEGMENT_AT_MOST`]), each on a pooled
    /// connection of its own, as many fetched at once as the read pool has connections but one (at least
    /// one), while the visitor works through the one before; their rows
    /// are lent to the visitor in place, out of the chunks they arrived in. A segment is a prefix of the log
    /// after its start in its own snapshot (one statement, see ARCHITECTURE.md §Reads), and one is used
    /// only if the segment before it ended exactly where it starts: a segment cut short is the end of the
    /// log, a segment ending elsewhere (positions with a gap, a log `verify` calls broken) sends the rest
    /// through `read_all`. So do the events past the head the replay knew of when it started.
    async fn replay<E, F>(&self, after_position: u64, limit: usize, mut visit: F) -> Result<u64, E>
    where
        E: From<StoreError> + Send,
        F: FnMut(EventView<'_>) -> Result<(), E> + Send,
    {
        let known = self.head.borrow().saturating_sub(after_position);
        let planned = usize::try_from(known).unwrap_or(usize::MAX).min(limit);
        let segment = self.copy_reads_from.clamp(1, REPLAY_SEGMENT_AT_MOST);
        if self.copy_reads_from == usize::MAX
            || planned < self.copy_reads_from
            || i64::try_from(after_position).is_err()
        {
            return replay_in_pages(self, after_position, limit, REPLAY_PAGE, &mut visit).await;
        }
        let mut segments = Segments {
            readers: self.readers.clone(),
            next_after: after_position,
            end: after_position + planned as u64,
            size: segment,
            // All the read pool's connections but one, which is left to the other readers.
            ahead: usize::try_from(self.readers.options().get_max_connections())
                .unwrap_or(1)
                .saturating_sub(1)
                .max(1),
            fetching: std::collections::VecDeque::new(),
        };
        segments.fill();
        let mut decoder = RowDecoder::default();
        let mut visited = 0u64;
        let mut last = after_position;
        while let Some((after, asked, mut fetch)) = segments.fetching.pop_front() {
            debug_assert_eq!(after, last);
            let mut rows = 0usize;
            let mut parser = copy::CopyParser::default();
            let mut lend = |values: [&[u8]; copy::FIELDS]| -> Result<(), E> {
                let view = decoder.decode_view(values)?;
                last = view.global_position;
                rows += 1;
                visit(view)
            };
            // Parsed as the fetch hands its chunks over, a batch at a time.
            while let Some(batch) = fetch.chunks.recv().await {
                for chunk in &batch? {
                    parser.feed(chunk, &mut lend)?;
                }
            }
            (&mut fetch.task).await.map_err(|error| {
                StoreError::Database(crate::error::DatabaseError::text(format!(
                    "a replay task of the event log failed: {error}"
                )))
            })?;
            // The fetch is over and its connection back in the pool: the next one can start, one connection
            // still left to other readers.
            segments.fill();
            parser.finish()?;
            visited += rows as u64;
            if rows < asked {
                return Ok(visited); // the end of the log, as this segment's snapshot found it
            }
            if last != after + asked as u64 {
                break; // a gap: the segments fetched after this one start in the wrong place
            }
        }
        drop(segments);
        let remaining = limit - usize::try_from(visited).unwrap_or(limit);
        Ok(visited + replay_in_pages(self, last, remaining, REPLAY_PAGE, &mut visit).await?)
    }

    async fn stream_version(&self, stream_id: &StreamId) -> Result<u64, StoreError> {
        let mut connection = self.reader().await?;
        let version: i64 = sqlx::query_scalar(sql::STREAM_VERSION)
            .bind(stream_id.as_str())
            .fetch_one(&mut *connection)
            .await?;
        non_negative(version, 0)
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
        match row {
            Some(row) => {
                let events =
                    read_command_events(&mut connection, row.try_get(0)?, row.try_get(1)?).await?;
                Ok(Some(events))
            }
            None => Ok(None),
        }
    }

    async fn head_position(&self) -> Result<u64, StoreError> {
        let mut connection = self.reader().await?;
        head_position_on(&mut connection).await
    }

    async fn verify(&self) -> Result<VerifyReport, StoreError> {
        // The command records are read in one snapshot taken first (see `crosscheck`): every position it
        // claims, and every event up to its head, must be found by the walk that follows, however many
        // appends land meanwhile.
        let mut snapshot_connection = self.reader().await?;
        let mut snapshot = sqlx::Connection::begin(&mut *snapshot_connection).await?;
        snapshot.execute(sql::REPEATABLE_READ).await?;
        let (head, last_commanded): (i64, i64) = sqlx::query_as(sql::VERIFY_BOUND)
            .fetch_one(&mut *snapshot)
            .await?;
        let bound = u64::try_from(head.max(last_commanded)).unwrap_or(0);
        let rows = sqlx::query(sql::COMMANDS_BY_POSITION).fetch(&mut *snapshot);
        let mut commands = CommandCrossCheck::new(CommandRows { rows }, bound);

        let mut connection = self.reader().await?;
        let mut verifier = ChainVerifier::new();
        let mut decoder = RowDecoder::default();
        let mut after = 0_i64;
        'pages: loop {
            let mut rows = sqlx::query(sql::READ_ALL)
                .bind(after)
                .bind(VERIFY_PAGE)
                .fetch(&mut *connection);
            let mut count = 0;
            while let Some(row) = rows.try_next().await? {
                count += 1;
                match decoder.decode(&row) {
                    Ok((event, metadata)) => {
                        verifier.check(&event, metadata);
                        if verifier.is_broken() {
                            break 'pages;
                        }
                        commands.event(&event).await?;
                        if commands.first_break().is_some() {
                            break 'pages;
                        }
                        after = to_i64(event.global_position)?;
                    }
                    Err(StoreError::Corrupt {
                        global_position,
                        reason,
                    }) => {
                        verifier.undecodable(global_position, reason);
                        break 'pages;
                    }
                    Err(error) => return Err(error),
                }
            }
            if count < VERIFY_PAGE {
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
    rows: futures_util::stream::BoxStream<'c, Result<PgRow, sqlx::Error>>,
}

impl CommandRecords for CommandRows<'_> {
    async fn next_record(&mut self) -> Result<Option<CommandRecord>, StoreError> {
        let Some(row) = self.rows.try_next().await? else {
            return Ok(None);
        };
        let first_position: i64 = row.try_get(2)?;
        let global_position = non_negative(first_position, 0)?;
        let corrupt = |reason: String| StoreError::Corrupt {
            global_position,
            reason,
        };
        let command_id: &[u8] = row.try_get(0)?;
        let command_id = Uuid::from_slice(command_id)
            .map_err(|_| corrupt("the command id is not 16 bytes".to_owned()))?;
        let event_count: i64 = row.try_get(3)?;
        Ok(Some(CommandRecord {
            command_id,
            stream_id: row.try_get(1)?,
            first_position: global_position,
            event_count: u64::try_from(event_count)
                .map_err(|_| corrupt(format!("a command records {event_count} events")))?,
            recorded_at_micros: row.try_get(4)?,
        }))
    }
}

/// Moves the watched head forward (never back: notifications may arrive out of order).
fn advance(head: &watch::Sender<u64>, position: u64) {
    head.send_if_modified(|current| {
        let moved = position > *current;
        *current = (*current).max(position);
        moved
    });
}

/// A closed pool means a closed store.
fn closed_or(error: sqlx::Error) -> StoreError {
    match error {
        sqlx::Error::PoolClosed => StoreError::Closed,
        error => error.into(),
    }
}

async fn head_position_on(connection: &mut PgConnection) -> Result<u64, StoreError> {
    let head: i64 = sqlx::query_scalar(sql::HEAD_POSITION)
        .fetch_one(&mut *connection)
        .await?;
    non_negative(head, 0)
}

async fn read_all_on(
    connection: &mut PgConnection,
    after: i64,
    limit: usize,
    capacity: usize,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let query = sqlx::query(sql::READ_ALL)
        .bind(after)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX));
    collect_events(connection, query, capacity).await
}

/// The shortest `read_all` a store on `readers` reads as COPY: `configured`, or `usize::MAX` (never) where the
/// role may not call the columns check such a read calls ([`sql::CAN_CHECK_COLUMNS`]).
async fn copy_reads_from(readers: &PgPool, configured: usize) -> Result<usize, StoreError> {
    let can_check_columns: bool = sqlx::query_scalar(sql::CAN_CHECK_COLUMNS)
        .fetch_one(readers)
        .await?;
    Ok(if can_check_columns {
        configured
    } else {
        usize::MAX
    })
}

/// Up to `limit` events after `after` as one binary `COPY` ([`sql::copy_all`]), decoded as the chunks
/// arrive.
async fn copy_all(
    readers: &PgPool,
    after: i64,
    limit: usize,
    capacity: usize,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let mut decoder = RowDecoder::default();
    let mut events = Vec::with_capacity(capacity.min(MAX_PREALLOCATED));
    let mut parser = copy::CopyParser::default();
    let mut push = |values: [&[u8]; copy::FIELDS]| {
        events.push(decoder.decode_values(values)?.0);
        Ok::<(), StoreError>(())
    };
    copy_out(readers, after, limit, |chunk| {
        parser.feed(&chunk, &mut push)?;
        Ok(ControlFlow::Continue(()))
    })
    .await?;
    parser.finish()?;
    Ok(events)
}

/// Runs the binary `COPY` of up to `limit` events after `after` ([`sql::copy_all`]) on a pooled connection,
/// handing each chunk to `each` as it arrives, until the stream ends or `each` breaks off or fails. The
/// connection goes back to the pool only once the stream has been read to its end: one left inside a COPY
/// (an error, a refused row, a panic, a reader gone) cannot serve the next query, so it is closed.
async fn copy_out<F>(
    readers: &PgPool,
    after: i64,
    limit: usize,
    mut each: F,
) -> Result<(), StoreError>
where
    F: FnMut(bytes::Bytes) -> Result<ControlFlow<()>, StoreError>,
{
    let mut held = CloseUnlessReleased(Some(readers.acquire().await.map_err(closed_or)?));
    let Some(connection) = held.0.as_deref_mut() else {
        return Err(StoreError::Closed);
    };
    let mut chunks = connection
        .copy_out_raw(&sql::copy_all(after, limit))
        .await?;
    while let Some(chunk) = chunks.try_next().await? {
        if each(chunk)?.is_break() {
            return Ok(()); // `held` closes the connection, inside its COPY
        }
    }
    drop(chunks);
    held.release();
    Ok(())
}

/// The longest `COPY` segment of a replay, in events (about 25 MiB of chunks for events of 400 bytes).
const REPLAY_SEGMENT_AT_MOST: usize = 65_536;

/// Chunks of a replay segment's `COPY` handed over at once (about 100 KiB of events).
const CHUNKS_PER_BATCH: usize = 256;

/// A replay segment being fetched: a task running its `COPY` and handing its chunks over in batches, then
/// closing the channel (an error is the last thing it sends). Dropped, it aborts the task; a fetch whose
/// replay is gone also stops at its next batch. Either way a connection left inside its `COPY` is closed,
/// not pooled.
struct SegmentFetch {
    chunks: mpsc::UnboundedReceiver<Result<Vec<bytes::Bytes>, StoreError>>,
    task: JoinHandle<()>,
}

impl Drop for SegmentFetch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The segments of a replay being fetched, in log order: `(after, limit, fetch)`, each fetch a `COPY` of up
/// to `limit` events after `after`.
struct Segments {
    readers: PgPool,
    next_after: u64,
    end: u64,
    size: usize,
    /// How many segments are fetched at once, at most.
    ahead: usize,
    fetching: std::collections::VecDeque<(u64, usize, SegmentFetch)>,
}

impl Segments {
    /// Starts fetching the next segments, up to `ahead` under way and none past `end`.
    fn fill(&mut self) {
        while self.fetching.len() < self.ahead && self.next_after < self.end {
            let after = self.next_after;
            let limit =
                usize::try_from(self.end - after).map_or(self.size, |left| left.min(self.size));
            self.next_after += limit as u64;
            let readers = self.readers.clone();
            let (sender, chunks) = mpsc::unbounded_channel();
            let task = tokio::spawn(async move {
                let fetched = match to_i64(after) {
                    Ok(after) => copy_chunks(&readers, after, limit, &sender).await,
                    Err(error) => Err(error),
                };
                if let Err(error) = fetched {
                    let _ = sender.send(Err(error));
                }
            });
            self.fetching
                .push_back((after, limit, SegmentFetch { chunks, task }));
        }
    }
}

/// Up to `limit` events after `after` as one binary `COPY`, its chunks sent as they arrived, in batches, for
/// a replay to parse in place. Stops early, closing the connection, once nobody receives.
async fn copy_chunks(
    readers: &PgPool,
    after: i64,
    limit: usize,
    sender: &mpsc::UnboundedSender<Result<Vec<bytes::Bytes>, StoreError>>,
) -> Result<(), StoreError> {
    // PostgreSQL sends a tuple per chunk, plus the header and the trailer.
    let mut batch = Vec::with_capacity(CHUNKS_PER_BATCH);
    copy_out(readers, after, limit, |chunk| {
        batch.push(chunk);
        if batch.len() < CHUNKS_PER_BATCH {
            return Ok(ControlFlow::Continue(()));
        }
        let full = std::mem::replace(&mut batch, Vec::with_capacity(CHUNKS_PER_BATCH));
        Ok(match sender.send(Ok(full)) {
            Ok(()) => ControlFlow::Continue(()),
            Err(_) => ControlFlow::Break(()), // the replay is over
        })
    })
    .await?;
    if !batch.is_empty() {
        let _ = sender.send(Ok(batch));
    }
    Ok(())
}

/// A pooled connection that is closed when dropped, unless [`Self::release`]d back to the pool.
struct CloseUnlessReleased(Option<PoolConnection<Postgres>>);

impl CloseUnlessReleased {
    fn release(mut self) {
        drop(self.0.take());
    }
}

impl Drop for CloseUnlessReleased {
    fn drop(&mut self) {
        if let Some(connection) = self.0.take() {
            drop(connection.detach());
        }
    }
}

/// Runs an event query and decodes its rows as they arrive.
async fn collect_events<'q>(
    connection: &mut PgConnection,
    query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    expected: usize,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let mut decoder = RowDecoder::default();
    let mut events = Vec::with_capacity(expected.min(MAX_PREALLOCATED));
    let mut rows = connection.fetch(query);
    while let Some(row) = rows.try_next().await? {
        events.push(decoder.decode(&row)?.0);
    }
    Ok(events)
}

impl PgEventStore {
    /// Up to `limit` events after `after`, each with its metadata text exactly as stored (what the
    /// chain hashes), for exports.
    pub(crate) async fn read_all_as_stored(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(RecordedEvent, String)>, StoreError> {
        let mut connection = self.reader().await?;
        let query = sqlx::query(sql::READ_ALL)
            .bind(to_i64(after)?)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX));
        let mut decoder = RowDecoder::default();
        let mut events = Vec::with_capacity(limit.min(4096));
        let mut rows = connection.fetch(query);
        while let Some(row) = rows.try_next().await? {
            let (event, metadata) = decoder.decode(&row)?;
            events.push((event, metadata.to_owned()));
        }
        Ok(events)
    }
}

impl PgEventStore {
    /// The signed checkpoints beside the log, by position (none on a log whose schema predates them).
    pub(crate) async fn signed_checkpoints(
        &self,
    ) -> Result<Vec<crate::signed::SignedCheckpoint>, StoreError> {
        let mut connection = self.reader().await?;
        crate::signed::list_on_postgres(&mut connection, 0).await
    }
}

/// Writes exported rows verbatim into an empty PostgreSQL log, in one transaction holding the log's
/// write lock: either every row lands or none does, and no append can interleave.
pub(crate) struct PgImport {
    connection: PgConnection,
}

impl PgImport {
    /// Takes the write lock and checks, under it, that the log holds no event and no command.
    pub(crate) async fn begin(url: &str) -> Result<Self, StoreError> {
        use sqlx::Connection;
        let options = PgConnectOptions::from_str(url).map_err(|error| {
            StoreError::Invalid(format!("bad PostgreSQL URL: {}", redact_url(url, &error)))
        })?;
        let mut connection = PgConnection::connect_with(&options).await?;
        connection.execute(sql::BEGIN_AND_LOCK).await?;
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
        sqlx::query(sql::IMPORT_EVENT)
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
        sqlx::query(sql::IMPORT_COMMAND)
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
        crate::signed::insert_on_postgres(&mut self.connection, checkpoint).await?;
        Ok(())
    }

    pub(crate) async fn commit(mut self) -> Result<(), StoreError> {
        let head: u64 = head_position_on(&mut self.connection).await?;
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(sql::CHANNEL)
            .bind(head.to_string())
            .execute(&mut self.connection)
            .await?;
        self.connection.execute(sql::COMMIT).await?;
        let _ = sqlx::Connection::close(self.connection).await;
        Ok(())
    }

    pub(crate) async fn rollback(mut self) {
        let _ = self.connection.execute(sql::ROLLBACK).await;
        let _ = sqlx::Connection::close(self.connection).await;
    }
}

/// The events of a command found in `commands`: they occupy consecutive positions.
pub(crate) async fn read_command_events(
    connection: &mut PgConnection,
    first_position: Option<i64>,
    event_count: i64,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let Some(first_position) = first_position else {
        return Ok(Vec::new());
    };
    let span = crate::store::CommandSpan::new(first_position, event_count)?;
    let query = sqlx::query(sql::READ_RANGE)
        .bind(first_position)
        .bind(event_count);
    let events = collect_events(connection, query, span.count()).await?;
    span.checked(events)
}

/// Decodes event rows (columns as [`sql::READ_ALL`] selects them), keeping the last stream id and
/// metadata seen: consecutive events usually share them (one stream, one command), and reusing them saves
/// an allocation and a JSON parse per event.
///
/// Values are read as the raw binary wire format (big-endian integers, UTF-8 text, 16 UUID bytes, the
/// hash's bytes) after the columns' types have been checked once, on the first row: sqlx's typed
/// `try_get` re-checks the column's type on every value, which was a tenth of a replay's client time.
#[derive(Default)]
struct RowDecoder {
    checked: bool,
    last_stream: Option<StreamId>,
    last_metadata: Option<(String, EventMetadata)>,
}

/// The wire type of each column of [`sql::READ_ALL`], in order.
const EVENT_COLUMN_TYPES: [&str; 10] = [
    "INT8", "TEXT", "INT8", "UUID", "TEXT", "INT8", "TEXT", "TEXT", "INT8", "BYTEA",
];

impl RowDecoder {
    /// Refuses a row whose columns are not those of [`sql::READ_ALL`] (a schema or query this decoder was
    /// not written for). Every query a decoder reads selects the same columns, so the first row's check
    /// holds for the rest; each value's length is still checked as it is read.
    fn check_columns(&mut self, row: &PgRow) -> Result<(), StoreError> {
        use sqlx::{Column, TypeInfo};
        if self.checked {
            return Ok(());
        }
        let names: Vec<&str> = row
            .columns()
            .iter()
            .map(|column| column.type_info().name())
            .collect();
        if names != EVENT_COLUMN_TYPES {
            return Err(StoreError::Database(crate::error::DatabaseError::text(
                format!(
                    "an event query returned columns of types {names:?}, not {EVENT_COLUMN_TYPES:?}"
                ),
            )));
        }
        self.checked = true;
        Ok(())
    }

    /// The event and its metadata text exactly as stored (which the chain hash covers), borrowed from the
    /// decoder, which keeps the last metadata seen: a replay that does not need it pays no copy.
    fn decode<'r>(&mut self, row: &'r PgRow) -> Result<(RecordedEvent, &str), StoreError> {
        self.check_columns(row)?;
        let mut values: [&'r [u8]; copy::FIELDS] = [&[]; copy::FIELDS];
        for (index, value) in values.iter_mut().enumerate() {
            let raw = row.try_get_raw(index)?;
            if raw.format() != sqlx::postgres::PgValueFormat::Binary {
                return Err(StoreError::Database(crate::error::DatabaseError::text(
                    "an event query's row arrived in text format, not binary".to_owned(),
                )));
            }
            *value = raw.as_bytes().map_err(|error| {
                StoreError::Database(crate::error::DatabaseError::text(format!(
                    "column {index} of an event row: {error}"
                )))
            })?;
        }
        self.decode_values(values)
    }

    /// The event from one row's binary values, in the order of [`sql::READ_ALL`]'s columns, whether they
    /// came in a `SELECT`'s row (types checked by [`Self::check_columns`]) or a `COPY`'s tuple (types
    /// checked by the statement itself), with its metadata text exactly as stored.
    fn decode_values(
        &mut self,
        values: [&[u8]; copy::FIELDS],
    ) -> Result<(RecordedEvent, &str), StoreError> {
        let event = self.decode_view(values)?.to_recorded();
        let metadata_text = self
            .last_metadata
            .as_ref()
            .map_or("", |(text, _)| text.as_str());
        Ok((event, metadata_text))
    }

    /// The event of one row's binary values ([`Self::decode_values`]), borrowed from them and from the
    /// decoder (the stream id and the metadata, kept from row to row).
    fn decode_view<'v>(
        &'v mut self,
        values: [&'v [u8]; copy::FIELDS],
    ) -> Result<EventView<'v>, StoreError> {
        let int8 = |index: usize| -> Result<i64, StoreError> {
            let value = values[index];
            <[u8; 8]>::try_from(value)
                .map(i64::from_be_bytes)
                .map_err(|_| {
                    StoreError::Database(crate::error::DatabaseError::text(format!(
                        "column {index} of an event row is {} bytes, not an 8-byte integer",
                        value.len()
                    )))
                })
        };
        let global_position = non_negative(int8(0)?, 0)?;
        let corrupt = |reason: String| StoreError::Corrupt {
            global_position,
            reason,
        };
        let text = |index: usize| -> Result<&'v str, StoreError> {
            std::str::from_utf8(values[index])
                .map_err(|error| corrupt(format!("column {index} is not UTF-8: {error}")))
        };
        // The stream id and the metadata are compared as bytes with the last row's first: equal to text
        // already checked, they need no UTF-8 check or parse of their own.
        if !matches!(&self.last_stream, Some(last) if last.as_str().as_bytes() == values[1]) {
            let parsed = StreamId::parse(text(1)?).map_err(|error| corrupt(error.to_string()))?;
            self.last_stream = Some(parsed);
        }
        let stream_version = int8(2)?;
        let event_id = Uuid::from_slice(values[3])
            .map_err(|_| corrupt("the event id is not 16 bytes".to_owned()))?;
        let schema_version = int8(5)?;
        let schema_version = u32::try_from(schema_version)
            .map_err(|_| corrupt(format!("bad schema version {schema_version}")))?;
        if !matches!(&self.last_metadata, Some((text, _)) if text.as_bytes() == values[7]) {
            let metadata_text = text(7)?;
            let parsed: EventMetadata = serde_json::from_str(metadata_text)
                .map_err(|error| corrupt(format!("unreadable metadata: {error}")))?;
            self.last_metadata = Some((metadata_text.to_owned(), parsed));
        }
        let (Some(stream_id), Some((_, metadata))) = (&self.last_stream, &self.last_metadata)
        else {
            return Err(corrupt(
                "the stream id or the metadata was not kept".to_owned(),
            ));
        };
        let recorded_at = int8(8)?;
        let hash = values[9];
        Ok(EventView {
            global_position,
            stream_id,
            stream_version: non_negative(stream_version, global_position)?,
            event_id,
            event_type: text(4)?,
            schema_version,
            payload: text(6)?,
            metadata,
            recorded_at: DateTime::from_timestamp_micros(recorded_at)
                .ok_or_else(|| corrupt(format!("bad timestamp {recorded_at}")))?,
            hash: <[u8; 32]>::try_from(hash)
                .map_err(|_| corrupt("the hash is not 32 bytes".to_owned()))?,
        })
    }
}

/// The task that turns other processes' notifications into head moves. It listens on a pool of its own
/// (one connection), which `PgListener` reconnects through when the connection drops; after a reconnect
/// it reads the head, since notifications sent meanwhile are gone. It ends when its pool is closed, or is
/// aborted when the store is dropped.
struct ListenerTask {
    pool: PgPool,
    task: Option<JoinHandle<()>>,
}

impl ListenerTask {
    async fn start(
        connect: &PgConnectOptions,
        readers: PgPool,
        head: Arc<watch::Sender<u64>>,
    ) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .min_connections(0)
            .max_lifetime(None)
            .idle_timeout(None)
            .connect_with(
                connect
                    .clone()
                    .application_name("mmonboard-eventlog-listener"),
            )
            .await?;
        let mut listener = PgListener::connect_with(&pool).await?;
        listener.listen(sql::CHANNEL).await?;
        let task = tokio::spawn(listen(listener, readers, head));
        Ok(Self {
            pool,
            task: Some(task),
        })
    }

    async fn stop(mut self) {
        self.pool.close().await;
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for ListenerTask {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn listen(mut listener: PgListener, readers: PgPool, head: Arc<watch::Sender<u64>>) {
    let mut pause = Duration::from_millis(10);
    loop {
        match listener.try_recv().await {
            Ok(Some(notification)) => {
                pause = Duration::from_millis(10);
                // Anything unparsable still means "look again"; the poll finds it.
                if let Ok(position) = notification.payload().parse::<u64>() {
                    advance(&head, position);
                }
            }
            Err(sqlx::Error::PoolClosed) => return,
            // The connection dropped (`Ok(None)`: it was re-established at once) or could not be made
            // (try again later, without spinning). Either way what was sent meanwhile is lost: look.
            lost => {
                if lost.is_err() {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(5));
                }
                if let Ok(mut connection) = readers.acquire().await
                    && let Ok(position) = head_position_on(&mut connection).await
                {
                    advance(&head, position);
                }
            }
        }
    }
}

fn non_negative(value: i64, global_position: u64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt {
        global_position,
        reason: format!("negative number {value} where a position or version belongs"),
    })
}

/// Positions and versions are stored as signed 64-bit integers.
fn to_i64(value: u64) -> Result<i64, StoreError> {
    i64::try_from(value)
        .map_err(|_| StoreError::Invalid(format!("{value} exceeds the largest storable position")))
}
