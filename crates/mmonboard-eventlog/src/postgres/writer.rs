//! The writer of one store: one task owning one connection, committing whatever appends are pending as one
//! transaction (group commit), so concurrent commands share one commit while each caller is answered only
//! after the COMMIT holding its events. A batch costs four round trips whatever its size: open the
//! transaction and take the write lock; read everything the decisions depend on (head, stream versions,
//! known command ids, event ids already used); insert every row and queue the notification; commit. The
//! requests are decided in memory as if each ran alone after the ones before it, so a conflict or a
//! duplicate event id refuses that request only. Should the insert still hit a constraint, the batch is
//! redone one request per savepoint, so only the guilty request is refused.
//!
//! A lost connection fails the batch in flight and is re-established for the next one. A COMMIT whose
//! answer was lost may have landed: the caller retries with the same command id and is told
//! `AlreadyApplied` if it did.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection, Row};
use tokio::sync::{mpsc, oneshot, watch};
use uuid::Uuid;

use super::{advance, non_negative, read_command_events, sql, to_i64};
use crate::error::{AppendError, StoreError};
use crate::hash::{CanonicalEvent, GENESIS_HASH};
use crate::hooks::{AppendObserver, CommitHold};
use crate::model::{AppendOutcome, RecordedEvent};
use crate::sqlite::PreparedAppend;

pub(crate) struct AppendJob {
    pub append: PreparedAppend,
    pub reply: oneshot::Sender<Reply>,
    /// When the request was sent to the writer, for the append latency the observer sees.
    pub queued: std::time::Instant,
}

pub(crate) type Reply = Result<AppendOutcome, AppendError>;

/// PostgreSQL's `lock_not_available`: the lock was not granted within `lock_timeout`.
const LOCK_NOT_AVAILABLE: &str = "55P03";

/// The unique constraint PostgreSQL names for `events.event_id`.
const EVENT_ID_CONSTRAINT: &str = "events_event_id_key";

/// Opens a writer connection: the lock wait is bounded so a stuck writer elsewhere surfaces as
/// [`StoreError::Busy`] rather than a hang.
pub(crate) async fn connect(
    options: &PgConnectOptions,
    lock_timeout: Duration,
) -> Result<PgConnection, StoreError> {
    let lock_timeout = format!("{}ms", lock_timeout.as_millis().max(1));
    Ok(options
        .clone()
        .application_name("mmonboard-eventlog-writer")
        .options([("lock_timeout", lock_timeout.as_str())])
        .connect()
        .await?)
}

/// The last event of the log as seen inside the current transaction.
#[derive(Clone, Copy)]
struct Head {
    position: u64,
    hash: [u8; 32],
}

/// How the fast path ended (it has rolled back unless it committed).
enum FastOutcome {
    Committed(Vec<Reply>),
    /// Nothing was committed; redo the batch one request per savepoint.
    RetryCarefully,
    Failed(StoreError),
}

pub(crate) struct Writer {
    /// `None` after the connection failed: the next batch connects again.
    pub connection: Option<PgConnection>,
    pub connect: PgConnectOptions,
    pub lock_timeout: Duration,
    pub max_batch: usize,
    pub hold_commit: Option<CommitHold>,
    /// Told of every batch (metrics).
    pub observer: Option<AppendObserver>,
    /// Transactions committed so far, shared with the store for observability.
    pub commits: Arc<AtomicU64>,
    /// The log's head as last committed or heard of.
    pub head: Arc<watch::Sender<u64>>,
}

impl Writer {
    /// Serves appends until every sender is gone, then closes the connection.
    pub(crate) async fn run(mut self, mut receiver: mpsc::Receiver<AppendJob>) {
        let mut batch = Vec::with_capacity(self.max_batch);
        while receiver.recv_many(&mut batch, self.max_batch).await > 0 {
            let started = std::time::Instant::now();
            let replies = self.commit_batch(&batch).await;
            if let Some(observer) = &self.observer {
                observer.observe(&crate::hooks::report(
                    started,
                    batch.iter().map(|job| job.queued),
                    &replies,
                    |outcome| match outcome {
                        AppendOutcome::Appended(events) => events.len(),
                        AppendOutcome::AlreadyApplied(_) => 0,
                    },
                ));
            }
            for (job, reply) in batch.drain(..).zip(replies) {
                // The caller may have stopped waiting; its append stands all the same.
                let _ = job.reply.send(reply);
            }
        }
        if let Some(connection) = self.connection.take() {
            let _ = connection.close().await;
        }
    }

    /// Applies the batch in one transaction and returns one reply per job, in order.
    async fn commit_batch(&mut self, batch: &[AppendJob]) -> Vec<Reply> {
        let committed = match self.commit_on_connection(batch).await {
            Ok(replies) => replies,
            Err(error) => {
                if breaks_connection(&error) {
                    // I/O or protocol trouble: the connection cannot be trusted any more.
                    self.connection = None;
                }
                return (0..batch.len())
                    .map(|_| Err(error.clone().into()))
                    .collect();
            }
        };
        self.commits.fetch_add(1, Ordering::Relaxed);
        let committed_head = committed
            .iter()
            .filter_map(|reply| match reply {
                Ok(AppendOutcome::Appended(events)) => events.last(),
                _ => None,
            })
            .map(|event| event.global_position)
            .max();
        if let Some(committed_head) = committed_head {
            // Sent after the COMMIT: a subscriber woken by it always finds the rows.
            advance(&self.head, committed_head);
        }
        committed
    }

    async fn commit_on_connection(
        &mut self,
        batch: &[AppendJob],
    ) -> Result<Vec<Reply>, StoreError> {
        if self.connection.is_none() {
            self.connection = Some(connect(&self.connect, self.lock_timeout).await?);
        }
        let Some(connection) = self.connection.as_mut() else {
            return Err(StoreError::Closed);
        };
        let lock_timeout = self.lock_timeout;
        let hold_commit = self.hold_commit.as_ref();
        let outcome = match fast_batch(connection, batch, lock_timeout, hold_commit).await {
            FastOutcome::Committed(replies) => Ok(replies),
            FastOutcome::Failed(error) => Err(error),
            FastOutcome::RetryCarefully => careful_batch(connection, batch, lock_timeout).await,
        };
        if outcome.is_err() && rollback(connection).await.is_err() {
            self.connection = None;
        }
        outcome
    }
}

/// A lock not granted within `lock_timeout` is [`StoreError::Busy`].
fn lock_error(error: sqlx::Error, lock_timeout: Duration) -> StoreError {
    let busy = error
        .as_database_error()
        .and_then(|database_error| database_error.code())
        .is_some_and(|code| code == LOCK_NOT_AVAILABLE);
    if busy {
        StoreError::Busy {
            waited: lock_timeout,
        }
    } else {
        error.into()
    }
}

/// Whether the error leaves the connection in an unknown state (anything but the server's own refusal).
fn breaks_connection(error: &StoreError) -> bool {
    matches!(error, StoreError::Database(error) if !error.is_server_refusal())
}

async fn rollback(connection: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::raw_sql(sql::ROLLBACK)
        .execute(&mut *connection)
        .await?;
    Ok(())
}

async fn fast_batch(
    connection: &mut PgConnection,
    batch: &[AppendJob],
    lock_timeout: Duration,
    hold_commit: Option<&CommitHold>,
) -> FastOutcome {
    if let Err(error) = sqlx::raw_sql(sql::BEGIN_AND_LOCK)
        .execute(&mut *connection)
        .await
    {
        return FastOutcome::Failed(lock_error(error, lock_timeout));
    }
    let decided = match look_up(connection, batch).await {
        Ok(lookup) => decide(connection, batch, lookup).await,
        Err(error) => Err(error),
    };
    let decided = match decided {
        Ok(decided) => decided,
        Err(error) => return FastOutcome::Failed(error),
    };
    if let Err(error) = decided.rows.insert(connection).await {
        return if is_constraint(&error) {
            // The transaction is aborted: roll it back here, so the careful path starts afresh.
            match rollback(connection).await {
                Ok(()) => FastOutcome::RetryCarefully,
                Err(error) => FastOutcome::Failed(error.into()),
            }
        } else {
            FastOutcome::Failed(error.into())
        };
    }
    if let Some(hold) = hold_commit {
        hold.wait().await;
    }
    match sqlx::raw_sql(sql::COMMIT).execute(&mut *connection).await {
        Ok(_) => FastOutcome::Committed(decided.replies),
        Err(error) => FastOutcome::Failed(error.into()),
    }
}

/// The careful path: the same lock, then each request under its own savepoint, looked up, decided and
/// inserted alone; a constraint violation rolls back its savepoint and refuses that request only.
async fn careful_batch(
    connection: &mut PgConnection,
    batch: &[AppendJob],
    lock_timeout: Duration,
) -> Result<Vec<Reply>, StoreError> {
    sqlx::raw_sql(sql::BEGIN_AND_LOCK)
        .execute(&mut *connection)
        .await
        .map_err(|error| lock_error(error, lock_timeout))?;
    let mut replies = Vec::with_capacity(batch.len());
    for job in batch {
        let alone = std::slice::from_ref(job);
        sqlx::raw_sql(sql::SAVEPOINT)
            .execute(&mut *connection)
            .await?;
        let lookup = look_up(connection, alone).await?;
        let mut decided = decide(connection, alone, lookup).await?;
        match decided.rows.insert(connection).await {
            Ok(()) => {
                sqlx::raw_sql(sql::RELEASE)
                    .execute(&mut *connection)
                    .await?;
                replies.extend(decided.replies.pop());
            }
            Err(error) if is_constraint(&error) => {
                sqlx::raw_sql(sql::ROLLBACK_TO)
                    .execute(&mut *connection)
                    .await?;
                sqlx::raw_sql(sql::RELEASE)
                    .execute(&mut *connection)
                    .await?;
                replies.push(Err(refusal(error, &job.append).into()));
            }
            Err(error) => return Err(error.into()),
        }
    }
    sqlx::raw_sql(sql::COMMIT).execute(&mut *connection).await?;
    Ok(replies)
}

/// What the lookup found inside the transaction, under the lock.
struct Lookup {
    head: Head,
    /// By command id: (first_position, event_count).
    known_commands: HashMap<Uuid, (Option<i64>, i64)>,
    /// By stream id: its version.
    versions: HashMap<String, u64>,
    /// Event ids of the batch already in the log.
    known_events: HashSet<Uuid>,
}

async fn look_up(connection: &mut PgConnection, batch: &[AppendJob]) -> Result<Lookup, StoreError> {
    let command_ids: Vec<String> = batch
        .iter()
        .map(|job| job.append.command_id.hyphenated().to_string())
        .collect();
    let mut stream_ids: Vec<&str> = batch
        .iter()
        .map(|job| job.append.stream_id.as_str())
        .collect();
    stream_ids.sort_unstable();
    stream_ids.dedup();
    let event_ids: Vec<String> = batch
        .iter()
        .flat_map(|job| &job.append.events)
        .map(|event| event.event_id.hyphenated().to_string())
        .collect();
    let rows = sqlx::query(sql::LOOKUP)
        .bind(command_ids)
        .bind(stream_ids)
        .bind(event_ids)
        .fetch_all(&mut *connection)
        .await?;
    let mut lookup = Lookup {
        head: Head {
            position: 0,
            hash: GENESIS_HASH,
        },
        known_commands: HashMap::new(),
        versions: HashMap::new(),
        known_events: HashSet::new(),
    };
    let corrupt = |global_position: u64, reason: String| StoreError::Corrupt {
        global_position,
        reason,
    };
    for row in &rows {
        let kind: i16 = row.try_get(0)?;
        let key: Option<String> = row.try_get(1)?;
        let a: Option<i64> = row.try_get(2)?;
        let uuid_key = || {
            key.as_deref()
                .and_then(|key| Uuid::try_parse(key).ok())
                .ok_or_else(|| corrupt(0, format!("the lookup returned a bad id {key:?}")))
        };
        match kind {
            0 => {
                let position = non_negative(a.unwrap_or(0), 0)?;
                let hash: &[u8] = row.try_get(4)?;
                let hash = <[u8; 32]>::try_from(hash)
                    .map_err(|_| corrupt(position, "the hash is not 32 bytes".to_owned()))?;
                lookup.head = Head { position, hash };
            }
            1 => {
                let event_count: i64 = row.try_get(3)?;
                lookup.known_commands.insert(uuid_key()?, (a, event_count));
            }
            2 => {
                let version = non_negative(a.unwrap_or(0), 0)?;
                lookup
                    .versions
                    .insert(key.clone().unwrap_or_default(), version);
            }
            _ => {
                lookup.known_events.insert(uuid_key()?);
            }
        }
    }
    Ok(lookup)
}

/// The batch's decisions and the rows they write.
struct Decided<'a> {
    replies: Vec<Reply>,
    rows: Rows<'a>,
}

/// Decides every request in order, as if each ran alone after the ones before it.
async fn decide<'a>(
    connection: &mut PgConnection,
    batch: &'a [AppendJob],
    mut lookup: Lookup,
) -> Result<Decided<'a>, StoreError> {
    let mut replies: Vec<Reply> = Vec::with_capacity(batch.len());
    let mut rows = Rows::default();
    // Commands appended earlier in this batch, by id: the index of their reply.
    let mut appended_here: HashMap<Uuid, usize> = HashMap::new();
    for job in batch {
        let append = &job.append;
        if let Some(&(first_position, event_count)) = lookup.known_commands.get(&append.command_id)
        {
            let events = read_command_events(connection, first_position, event_count).await?;
            replies.push(Ok(AppendOutcome::AlreadyApplied(events)));
            continue;
        }
        if let Some(&earlier) = appended_here.get(&append.command_id) {
            let events = match &replies[earlier] {
                Ok(outcome) => outcome.events().to_vec(),
                Err(_) => Vec::new(),
            };
            replies.push(Ok(AppendOutcome::AlreadyApplied(events)));
            continue;
        }
        let Some(version) = lookup.versions.get_mut(append.stream_id.as_str()) else {
            return Err(StoreError::Invalid("a stream was not looked up".to_owned()));
        };
        if !append.expected_version.matches(*version) {
            replies.push(Err(AppendError::Conflict {
                stream_id: append.stream_id.clone(),
                expected: append.expected_version,
                actual: *version,
            }));
            continue;
        }
        let mut seen_here = HashSet::new();
        let duplicate = append.events.iter().find(|event| {
            lookup.known_events.contains(&event.event_id) || !seen_here.insert(event.event_id)
        });
        if let Some(duplicate) = duplicate {
            replies.push(Err(StoreError::DuplicateEventId(duplicate.event_id).into()));
            continue;
        }
        lookup.known_events.extend(seen_here);
        let recorded = record(&mut lookup.head, *version, append);
        *version += recorded.len() as u64;
        rows.push(append, &recorded)?;
        appended_here.insert(append.command_id, replies.len());
        replies.push(Ok(AppendOutcome::Appended(recorded)));
    }
    rows.head = lookup.head.position;
    Ok(Decided { replies, rows })
}

/// The batch's rows, one array per column, as [`sql::INSERT`] unnests them.
#[derive(Default)]
struct Rows<'a> {
    positions: Vec<i64>,
    stream_ids: Vec<&'a str>,
    stream_versions: Vec<i64>,
    event_ids: Vec<String>,
    event_types: Vec<&'a str>,
    schema_versions: Vec<i64>,
    payloads: Vec<&'a str>,
    metadata: Vec<&'a str>,
    recorded_ats: Vec<i64>,
    hashes: Vec<[u8; 32]>,
    command_ids: Vec<String>,
    command_streams: Vec<&'a str>,
    /// 0 for a command without events (stored as NULL).
    first_positions: Vec<i64>,
    event_counts: Vec<i64>,
    command_recorded_ats: Vec<i64>,
    /// The head after the batch, announced to listeners.
    head: u64,
}

impl<'a> Rows<'a> {
    fn push(
        &mut self,
        append: &'a PreparedAppend,
        recorded: &[RecordedEvent],
    ) -> Result<(), StoreError> {
        let recorded_at = append.recorded_at.timestamp_micros();
        for (event, new) in recorded.iter().zip(&append.events) {
            self.positions.push(to_i64(event.global_position)?);
            self.stream_ids.push(append.stream_id.as_str());
            self.stream_versions.push(to_i64(event.stream_version)?);
            self.event_ids.push(event.event_id.hyphenated().to_string());
            self.event_types.push(&new.event_type);
            self.schema_versions.push(i64::from(event.schema_version));
            self.payloads.push(&new.payload);
            self.metadata.push(&append.metadata_json);
            self.recorded_ats.push(recorded_at);
            self.hashes.push(event.hash);
        }
        self.command_ids
            .push(append.command_id.hyphenated().to_string());
        self.command_streams.push(append.stream_id.as_str());
        self.first_positions.push(
            recorded
                .first()
                .map(|event| to_i64(event.global_position))
                .transpose()?
                .unwrap_or(0),
        );
        self.event_counts.push(to_i64(recorded.len() as u64)?);
        self.command_recorded_ats.push(recorded_at);
        Ok(())
    }

    /// Inserts every row in one statement; nothing to do when every request was refused or known.
    async fn insert(&self, connection: &mut PgConnection) -> Result<(), sqlx::Error> {
        if self.command_ids.is_empty() {
            return Ok(());
        }
        sqlx::query(sql::INSERT)
            .bind(&self.positions)
            .bind(&self.stream_ids)
            .bind(&self.stream_versions)
            .bind(&self.event_ids)
            .bind(&self.event_types)
            .bind(&self.schema_versions)
            .bind(&self.payloads)
            .bind(&self.metadata)
            .bind(&self.recorded_ats)
            .bind(&self.hashes)
            .bind(&self.command_ids)
            .bind(&self.command_streams)
            .bind(&self.first_positions)
            .bind(&self.event_counts)
            .bind(&self.command_recorded_ats)
            .bind(self.head.to_string())
            .execute(&mut *connection)
            .await?;
        Ok(())
    }
}

/// Numbers the request's events after `head` and `stream_version`, chaining their hashes over the head's
/// hash as committed, and advances `head` past them.
fn record(head: &mut Head, stream_version: u64, append: &PreparedAppend) -> Vec<RecordedEvent> {
    let recorded_at_micros = append.recorded_at.timestamp_micros();
    let mut recorded = Vec::with_capacity(append.events.len());
    for (offset, event) in append.events.iter().enumerate() {
        let global_position = head.position + 1;
        let stream_version = stream_version + 1 + offset as u64;
        let hash = CanonicalEvent {
            global_position,
            stream_id: append.stream_id.as_str(),
            stream_version,
            event_id: &event.event_id,
            event_type: &event.event_type,
            schema_version: event.schema_version,
            recorded_at_micros,
            metadata: &append.metadata_json,
            payload: &event.payload,
        }
        .chain_hash(&head.hash);
        *head = Head {
            position: global_position,
            hash,
        };
        recorded.push(RecordedEvent {
            global_position,
            stream_id: append.stream_id.clone(),
            stream_version,
            event_id: event.event_id,
            event_type: event.event_type.clone(),
            schema_version: event.schema_version,
            payload: event.payload.clone(),
            metadata: append.metadata.clone(),
            recorded_at: append.recorded_at,
            hash,
        });
    }
    recorded
}

/// Class 23, integrity constraint violation (unique, check, not null, foreign key).
fn is_constraint(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .and_then(|database_error| database_error.code())
        .is_some_and(|code| code.starts_with("23"))
}

/// The refusal of one request whose insert hit a constraint: a used event id names the id (from the
/// server's detail, `Key (event_id)=(…) already exists.`); anything else is reported as it came.
fn refusal(error: sqlx::Error, append: &PreparedAppend) -> StoreError {
    let Some(database_error) = error.as_database_error() else {
        return error.into();
    };
    if database_error.constraint() != Some(EVENT_ID_CONSTRAINT) {
        return error.into();
    }
    let from_detail = database_error
        .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
        .and_then(|error| error.detail())
        .and_then(|detail| detail.split_once("=(")?.1.split_once(')'))
        .and_then(|(id, _)| Uuid::try_parse(id).ok());
    match from_detail.or_else(|| append.events.first().map(|event| event.event_id)) {
        Some(event_id) => StoreError::DuplicateEventId(event_id),
        None => error.into(),
    }
}
