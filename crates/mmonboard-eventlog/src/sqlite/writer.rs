//! The single writer: one task owning one SQLite connection, committing whatever appends are
//! pending as one transaction (group commit), so concurrent commands share one fsync while each
//! caller is answered only after the COMMIT holding its events. Everything a decision depends on
//! (head, stream versions, known command ids) is read inside the transaction, after
//! `BEGIN IMMEDIATE` took the write lock, so other processes on the same file are accounted for
//! and no cache can be stale. A batch normally costs two round trips (lock and look up, then
//! insert and commit) with every request decided in memory as if they ran one after another;
//! if the insert hits a constraint (a duplicate event id) the batch is redone one request per
//! savepoint, so only the guilty request is refused.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{Row, SqliteConnection};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::sql;
use super::{read_command_events, to_i64};
use crate::error::{AppendError, StoreError};
use crate::hash::{CanonicalEvent, GENESIS_HASH};
use crate::hooks::{AppendObserver, CommitHold};
use crate::model::{
    AppendOutcome, EventMetadata, ExpectedVersion, NewEvent, RecordedEvent, StreamId,
};

/// A validated append, ready for the writer.
pub(crate) struct PreparedAppend {
    pub stream_id: StreamId,
    pub expected_version: ExpectedVersion,
    pub command_id: Uuid,
    pub metadata: EventMetadata,
    /// `serde_json::to_string(&metadata)`: what is stored and hashed.
    pub metadata_json: Arc<str>,
    /// Already truncated to microseconds.
    pub recorded_at: DateTime<Utc>,
    pub events: Vec<NewEvent>,
}

pub(crate) struct AppendJob {
    pub append: PreparedAppend,
    pub reply: oneshot::Sender<Reply>,
    /// When the request was sent to the writer, for the append latency the observer sees.
    pub queued: std::time::Instant,
}

pub(crate) type Reply = Result<AppendOutcome, AppendError>;

/// The last event of the log as seen inside the current transaction.
#[derive(Clone, Copy)]
struct Head {
    position: u64,
    hash: [u8; 32],
}

impl Head {
    const EMPTY: Self = Self {
        position: 0,
        hash: GENESIS_HASH,
    };
}

/// How the fast path ended.
enum FastOutcome {
    Committed(Vec<Reply>),
    /// Nothing was committed; redo the batch one request per savepoint.
    RetryCarefully,
    Failed(StoreError),
}

/// How one request of the careful path ended before the COMMIT.
enum RequestError {
    /// This request alone is refused; its savepoint was rolled back, the batch goes on.
    Refused(AppendError),
    /// The transaction is no longer usable: the whole batch fails.
    Fatal(StoreError),
}

impl From<sqlx::Error> for RequestError {
    fn from(error: sqlx::Error) -> Self {
        Self::Fatal(error.into())
    }
}

impl From<StoreError> for RequestError {
    fn from(error: StoreError) -> Self {
        Self::Fatal(error)
    }
}

pub(crate) struct Writer {
    pub connection: SqliteConnection,
    pub busy_timeout: Duration,
    pub max_batch: usize,
    /// Transactions committed so far, shared with the store for observability.
    pub commits: Arc<AtomicU64>,
    /// The log's head as this writer last committed it: subscribers wait on it instead of polling.
    pub head: Arc<tokio::sync::watch::Sender<u64>>,
    /// Test-only: when set, the insert and the COMMIT go as two statements with this wait between.
    pub hold_commit: Option<CommitHold>,
    /// Told of every batch (metrics).
    pub observer: Option<AppendObserver>,
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
        // Fold the WAL into the database file, so that a log closed cleanly is one self-contained file (what
        // an auditor copies). Best effort: with readers of other processes still open it may stop short,
        // which loses nothing (the WAL stays and is read as before).
        let _ = sqlx::query(sql::CHECKPOINT_WAL)
            .execute(&mut self.connection)
            .await;
        let _ = sqlx::Connection::close(self.connection).await;
    }

    /// Applies the batch in one transaction and returns one reply per job, in order.
    async fn commit_batch(&mut self, batch: &[AppendJob]) -> Vec<Reply> {
        let committed = match self.fast_batch(batch).await {
            FastOutcome::Committed(replies) => Ok(replies),
            FastOutcome::Failed(error) => Err(error),
            FastOutcome::RetryCarefully => self.careful_batch(batch).await,
        };
        match committed {
            Ok(replies) => {
                self.commits.fetch_add(1, Ordering::Relaxed);
                let committed_head = replies
                    .iter()
                    .filter_map(|reply| match reply {
                        Ok(AppendOutcome::Appended(events)) => events.last(),
                        _ => None,
                    })
                    .map(|event| event.global_position)
                    .max();
                if let Some(committed_head) = committed_head {
                    // Sent after the COMMIT: a subscriber woken by it always finds the rows.
                    self.head.send_if_modified(|head| {
                        let moved = committed_head > *head;
                        *head = (*head).max(committed_head);
                        moved
                    });
                }
                replies
            }
            Err(error) => (0..batch.len())
                .map(|_| Err(error.clone().into()))
                .collect(),
        }
    }

    async fn rollback(&mut self) {
        // SQLite may already have rolled back (after an I/O error, or no BEGIN happened); then
        // this fails harmlessly.
        let _ = sqlx::query(sql::ROLLBACK)
            .execute(&mut self.connection)
            .await;
    }

    fn begin_error(&self, error: sqlx::Error) -> StoreError {
        if is_busy(&error) {
            StoreError::Busy {
                waited: self.busy_timeout,
            }
        } else {
            error.into()
        }
    }

    async fn fast_batch(&mut self, batch: &[AppendJob]) -> FastOutcome {
        let lookup = match self.lock_and_look_up(batch).await {
            Ok(lookup) => lookup,
            Err(error) => {
                self.rollback().await;
                return FastOutcome::Failed(error);
            }
        };
        let decided = match self.decide(batch, lookup).await {
            Ok(decided) => decided,
            Err(error) => {
                self.rollback().await;
                return FastOutcome::Failed(error);
            }
        };
        let written = match (
            json_array(&decided.event_rows),
            json_array(&decided.command_rows),
        ) {
            (Ok(events), Ok(commands)) => match &self.hold_commit {
                None => {
                    sqlx::query(sql::INSERT_AND_COMMIT)
                        .bind(events)
                        .bind(commands)
                        .execute(&mut self.connection)
                        .await
                }
                Some(hold) => {
                    let inserted = sqlx::query(sql::INSERT_ROWS)
                        .bind(events)
                        .bind(commands)
                        .execute(&mut self.connection)
                        .await;
                    if inserted.is_ok() {
                        hold.wait().await;
                        sqlx::query(sql::COMMIT).execute(&mut self.connection).await
                    } else {
                        inserted
                    }
                }
            },
            (Err(error), _) | (_, Err(error)) => {
                self.rollback().await;
                return FastOutcome::Failed(error);
            }
        };
        match written {
            Ok(_) => FastOutcome::Committed(decided.replies),
            Err(error) => {
                self.rollback().await;
                if is_constraint(&error) {
                    FastOutcome::RetryCarefully
                } else {
                    FastOutcome::Failed(error.into())
                }
            }
        }
    }

    async fn lock_and_look_up(&mut self, batch: &[AppendJob]) -> Result<Lookup, StoreError> {
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
        let rows = sqlx::query(sql::BEGIN_AND_LOOKUP)
            .bind(json_array(&command_ids)?)
            .bind(json_array(&stream_ids)?)
            .fetch_all(&mut self.connection)
            .await
            .map_err(|error| self.begin_error(error))?;
        let mut lookup = Lookup {
            head: Head::EMPTY,
            known_commands: HashMap::new(),
            versions: HashMap::new(),
        };
        for row in &rows {
            let kind: i64 = row.try_get(0)?;
            match kind {
                0 => {
                    let position = non_negative(row.try_get(2)?, 0)?;
                    let hash: &[u8] = row.try_get(3)?;
                    let hash = <[u8; 32]>::try_from(hash).map_err(|_| StoreError::Corrupt {
                        global_position: position,
                        reason: "the hash is not 32 bytes".to_owned(),
                    })?;
                    lookup.head = Head { position, hash };
                }
                1 => {
                    let command_id: String = row.try_get(1)?;
                    let first_position: Option<i64> = row.try_get(2)?;
                    let event_count: i64 = row.try_get(3)?;
                    lookup
                        .known_commands
                        .insert(command_id, (first_position, event_count));
                }
                _ => {
                    let stream_id: String = row.try_get(1)?;
                    let version = non_negative(row.try_get(2)?, 0)?;
                    lookup.versions.insert(stream_id, version);
                }
            }
        }
        Ok(lookup)
    }

    /// Decides every request in order, as if each ran alone after the ones before it.
    async fn decide(
        &mut self,
        batch: &[AppendJob],
        mut lookup: Lookup,
    ) -> Result<Decided, StoreError> {
        let mut decided = Decided::default();
        // Commands appended earlier in this batch, by id: the index of their reply.
        let mut appended_here: HashMap<Uuid, usize> = HashMap::new();
        for job in batch {
            let append = &job.append;
            let command_key = append.command_id.hyphenated().to_string();
            if let Some(&(first_position, event_count)) = lookup.known_commands.get(&command_key) {
                let events =
                    read_command_events(&mut self.connection, first_position, event_count).await?;
                decided
                    .replies
                    .push(Ok(AppendOutcome::AlreadyApplied(events)));
                continue;
            }
            if let Some(&earlier) = appended_here.get(&append.command_id) {
                let events = match &decided.replies[earlier] {
                    Ok(outcome) => outcome.events().to_vec(),
                    Err(_) => Vec::new(),
                };
                decided
                    .replies
                    .push(Ok(AppendOutcome::AlreadyApplied(events)));
                continue;
            }
            let version = lookup
                .versions
                .get_mut(append.stream_id.as_str())
                .ok_or_else(|| StoreError::Invalid("a stream was not looked up".to_owned()))?;
            if !append.expected_version.matches(*version) {
                decided.replies.push(Err(AppendError::Conflict {
                    stream_id: append.stream_id.clone(),
                    expected: append.expected_version,
                    actual: *version,
                }));
                continue;
            }
            let recorded = record(&mut lookup.head, *version, append);
            *version += recorded.len() as u64;
            for event in &recorded {
                decided.event_rows.push(EventRow::new(event, append));
            }
            decided.command_rows.push(CommandRow(
                command_key,
                append.stream_id.shared(),
                recorded.first().map(|event| event.global_position),
                recorded.len() as u64,
                append.recorded_at.timestamp_micros(),
            ));
            appended_here.insert(append.command_id, decided.replies.len());
            decided.replies.push(Ok(AppendOutcome::Appended(recorded)));
        }
        Ok(decided)
    }

    /// The careful path: one request per savepoint, statement by statement.
    async fn careful_batch(&mut self, batch: &[AppendJob]) -> Result<Vec<Reply>, StoreError> {
        sqlx::query(sql::BEGIN_IMMEDIATE)
            .execute(&mut self.connection)
            .await
            .map_err(|error| self.begin_error(error))?;
        let committed = match self.careful_requests(batch).await {
            Ok(replies) => sqlx::query(sql::COMMIT)
                .execute(&mut self.connection)
                .await
                .map(|_| replies)
                .map_err(StoreError::from),
            Err(error) => Err(error),
        };
        if committed.is_err() {
            self.rollback().await;
        }
        committed
    }

    async fn careful_requests(&mut self, batch: &[AppendJob]) -> Result<Vec<Reply>, StoreError> {
        let mut head = self.read_head().await?;
        let mut replies = Vec::with_capacity(batch.len());
        for job in batch {
            match self.careful_request(&mut head, &job.append).await {
                Ok(outcome) => replies.push(Ok(outcome)),
                Err(RequestError::Refused(error)) => replies.push(Err(error)),
                Err(RequestError::Fatal(error)) => return Err(error),
            }
        }
        Ok(replies)
    }

    async fn read_head(&mut self) -> Result<Head, StoreError> {
        let Some(row) = sqlx::query(sql::HEAD)
            .fetch_optional(&mut self.connection)
            .await?
        else {
            return Ok(Head::EMPTY);
        };
        let position = non_negative(row.try_get(0)?, 0)?;
        let hash: &[u8] = row.try_get(1)?;
        let hash = <[u8; 32]>::try_from(hash).map_err(|_| StoreError::Corrupt {
            global_position: position,
            reason: "the hash is not 32 bytes".to_owned(),
        })?;
        Ok(Head { position, hash })
    }

    async fn careful_request(
        &mut self,
        head: &mut Head,
        append: &PreparedAppend,
    ) -> Result<AppendOutcome, RequestError> {
        let command_id = append.command_id.hyphenated().to_string();
        let known = sqlx::query(sql::FIND_COMMAND)
            .bind(command_id.as_str())
            .fetch_optional(&mut self.connection)
            .await?;
        if let Some(row) = known {
            let events =
                read_command_events(&mut self.connection, row.try_get(0)?, row.try_get(1)?).await?;
            return Ok(AppendOutcome::AlreadyApplied(events));
        }
        let version: i64 = sqlx::query_scalar(sql::STREAM_VERSION)
            .bind(append.stream_id.shared())
            .fetch_one(&mut self.connection)
            .await?;
        let version = non_negative(version, 0)?;
        if !append.expected_version.matches(version) {
            return Err(RequestError::Refused(AppendError::Conflict {
                stream_id: append.stream_id.clone(),
                expected: append.expected_version,
                actual: version,
            }));
        }

        sqlx::query(sql::SAVEPOINT)
            .execute(&mut self.connection)
            .await?;
        let mut advanced = *head;
        let recorded = record(&mut advanced, version, append);
        match self.careful_insert(&recorded, append, &command_id).await {
            Ok(()) => {
                sqlx::query(sql::RELEASE)
                    .execute(&mut self.connection)
                    .await?;
                *head = advanced;
                Ok(AppendOutcome::Appended(recorded))
            }
            Err(RequestError::Refused(error)) => {
                sqlx::query(sql::ROLLBACK_TO)
                    .execute(&mut self.connection)
                    .await?;
                sqlx::query(sql::RELEASE)
                    .execute(&mut self.connection)
                    .await?;
                Err(RequestError::Refused(error))
            }
            Err(fatal) => Err(fatal),
        }
    }

    async fn careful_insert(
        &mut self,
        recorded: &[RecordedEvent],
        append: &PreparedAppend,
        command_id: &str,
    ) -> Result<(), RequestError> {
        let recorded_at = append.recorded_at.timestamp_micros();
        for event in recorded {
            let inserted = sqlx::query(sql::INSERT_EVENT)
                .bind(to_i64(event.global_position)?)
                .bind(append.stream_id.shared())
                .bind(to_i64(event.stream_version)?)
                .bind(event.event_id.hyphenated().to_string())
                .bind(event.event_type.as_str())
                .bind(i64::from(event.schema_version))
                .bind(event.payload.as_str())
                .bind(Arc::clone(&append.metadata_json))
                .bind(recorded_at)
                .bind(&event.hash[..])
                .execute(&mut self.connection)
                .await;
            if let Err(error) = inserted {
                return Err(refusal(error, event.event_id));
            }
        }
        let first_position = recorded
            .first()
            .map(|event| to_i64(event.global_position))
            .transpose()?;
        let inserted = sqlx::query(sql::INSERT_COMMAND)
            .bind(command_id)
            .bind(append.stream_id.shared())
            .bind(first_position)
            .bind(to_i64(recorded.len() as u64)?)
            .bind(recorded_at)
            .execute(&mut self.connection)
            .await;
        match inserted {
            Ok(_) => Ok(()),
            Err(error) if is_constraint(&error) => {
                Err(RequestError::Refused(StoreError::from(error).into()))
            }
            Err(error) => Err(error.into()),
        }
    }
}

/// What the lookup found inside the transaction.
struct Lookup {
    head: Head,
    /// By hyphenated command id: (first_position, event_count).
    known_commands: HashMap<String, (Option<i64>, i64)>,
    /// By stream id: its version.
    versions: HashMap<String, u64>,
}

/// The batch's decisions and the rows they write.
#[derive(Default)]
struct Decided {
    replies: Vec<Reply>,
    event_rows: Vec<EventRow>,
    command_rows: Vec<CommandRow>,
}

/// One `events` row as the JSON array `INSERT_AND_COMMIT` unpacks (a tuple serializes as one).
#[derive(serde::Serialize)]
struct EventRow(
    u64,
    Arc<str>,
    u64,
    Uuid,
    String,
    u32,
    String,
    Arc<str>,
    i64,
    String,
);

impl EventRow {
    fn new(event: &RecordedEvent, append: &PreparedAppend) -> Self {
        Self(
            event.global_position,
            append.stream_id.shared(),
            event.stream_version,
            event.event_id,
            event.event_type.clone(),
            event.schema_version,
            event.payload.clone(),
            Arc::clone(&append.metadata_json),
            event.recorded_at.timestamp_micros(),
            hex::encode(event.hash),
        )
    }
}

/// One `commands` row: command_id, stream_id, first_position, event_count, recorded_at.
#[derive(serde::Serialize)]
struct CommandRow(String, Arc<str>, Option<u64>, u64, i64);

/// Numbers the request's events after `head` and `stream_version`, chaining their hashes, and
/// advances `head` past them.
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

fn json_array<T: serde::Serialize>(rows: &[T]) -> Result<String, StoreError> {
    serde_json::to_string(rows)
        .map_err(|error| StoreError::Invalid(format!("unserializable batch: {error}")))
}

fn non_negative(value: i64, global_position: u64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt {
        global_position,
        reason: format!("negative number {value} where a position or version belongs"),
    })
}

/// A constraint violation refuses the request alone; anything else (I/O, a full disk) may have
/// ended the transaction, so it fails the batch.
fn refusal(error: sqlx::Error, event_id: Uuid) -> RequestError {
    if !is_constraint(&error) {
        return RequestError::Fatal(error.into());
    }
    let duplicate = error
        .as_database_error()
        .is_some_and(|database_error| database_error.message().contains("events.event_id"));
    if duplicate {
        RequestError::Refused(StoreError::DuplicateEventId(event_id).into())
    } else {
        RequestError::Refused(StoreError::from(error).into())
    }
}

/// The primary SQLite result code (the low byte of the extended code sqlx reports).
pub(super) fn primary_code(error: &sqlx::Error) -> Option<i32> {
    error
        .as_database_error()
        .and_then(|database_error| database_error.code())
        .and_then(|code| code.parse::<i32>().ok())
        .map(|code| code & 0xff)
}

/// SQLITE_BUSY.
fn is_busy(error: &sqlx::Error) -> bool {
    primary_code(error) == Some(5)
}

/// SQLITE_CONSTRAINT, whichever constraint (unique, check, a trigger's RAISE).
fn is_constraint(error: &sqlx::Error) -> bool {
    primary_code(error) == Some(19)
}
