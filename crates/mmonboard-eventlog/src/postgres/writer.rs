//! The writer of one store: one task owning one connection, committing whatever appends are pending as one
//! transaction (group commit), so concurrent commands share one commit while each caller is answered only
//! after the COMMIT holding its events. On the read path a batch costs four round trips whatever its size:
//! open the transaction and take the write lock; read everything the decisions depend on (head, stream
//! versions, known command ids, event ids already used); insert every row and queue the notification;
//! commit. The requests are decided in memory as if each ran alone after the ones before it, so a conflict
//! or a duplicate event id refuses that request only. Should the insert still hit a constraint, the batch
//! is redone one request per savepoint, so only the guilty request is refused.
//!
//! While this writer is the only one writing (one instance, or the one that is busy), the read is skipped
//! and a batch costs one round trip, where a bare insert transaction costs three: the writer remembers the
//! head it committed and the versions of the streams it has seen ([`Known`]), decides on them, and calls
//! the insert (a server-side function, `mmonboard_append`) outside a transaction block, so the call is the
//! whole transaction: it takes the lock, checks a guard after it, writes and commits before it answers. The
//! guard: the head (position and hash) must still be the one the writer committed and the streams it has
//! never seen must have no event. Only events move stream versions, and each moves the head, so an unmoved
//! head means every version it remembers and the chain's base are the log's. (A command without events
//! moves nothing; its id is still caught by the commands key, which sends the batch down the careful path.)
//! The guard is what makes such decisions safe: a command without events writes only its command record,
//! which no key would refuse on a stale version. If the guard fails, nothing was written and the batch is
//! looked up and decided again in a transaction of its own (four round trips more, once); a writer that saw
//! another one move the head then keeps to the lookup until a read finds the head where it left it, so
//! instances taking turns pay four round trips a batch, not five.
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
/// [`StoreError::Busy`] rather than a hang, and transactions are READ COMMITTED whatever the server's
/// default, so that a one-trip insert, its own transaction, checks its guard in a snapshot taken after the
/// lock (under a stronger level its snapshot would date from the call, before the lock was granted).
pub(crate) async fn connect(
    options: &PgConnectOptions,
    lock_timeout: Duration,
) -> Result<PgConnection, StoreError> {
    let lock_timeout = format!("{}ms", lock_timeout.as_millis().max(1));
    Ok(options
        .clone()
        .application_name("mmonboard-eventlog-writer")
        .options([
            ("lock_timeout", lock_timeout.as_str()),
            ("default_transaction_isolation", "read committed"),
        ])
        .connect()
        .await?)
}

/// The last event of the log as seen inside the current transaction.
#[derive(Clone, Copy)]
struct Head {
    position: u64,
    hash: [u8; 32],
}

/// How the fast path ended.
enum FastOutcome {
    /// With what the writer knows of the log after the batch.
    Committed(Vec<Reply>, Known),
    /// Nothing was committed (and the transaction is rolled back); redo the batch one request per savepoint.
    RetryCarefully,
    /// Nothing known to be committed (a call or COMMIT whose answer was lost may have landed); `open` when a
    /// transaction may be left to roll back.
    Failed { error: StoreError, open: bool },
}

impl FastOutcome {
    fn failed(error: StoreError, open: bool) -> Self {
        Self::Failed { error, open }
    }
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
    /// What this writer knows of the log from its last batch; `None` until a batch has read it, and after
    /// any failure (a COMMIT whose answer was lost may or may not have landed).
    pub known: Option<Known>,
}

/// What the writer knows of the log as of its last committed batch: the head, and the versions of streams
/// it has read or written since it last saw another writer move the head. True as long as the head has not
/// moved, which the guarded insert checks.
pub(crate) struct Known {
    head: Head,
    versions: HashMap<String, u64>,
    /// Whether to decide without reading: false once another writer was seen moving the head, until a read
    /// under the lock finds the head where this writer left it.
    alone: bool,
}

/// Stream versions remembered at most; past it the writer forgets them all and reads them again as they
/// come (a few megabytes; streams are portfolios, and a busy writer sees the same ones again and again).
const KNOWN_STREAMS_AT_MOST: usize = 65_536;

impl Known {
    /// The lookup the writer assumes for `batch`: its head, the streams it knows at their versions and the
    /// others new; no command or event id known (were one, its insert hits a constraint and the batch is
    /// redone carefully). Also the streams assumed new, for the guard.
    fn assume<'a>(&self, batch: &'a [AppendJob]) -> (Lookup, Vec<&'a str>) {
        let mut versions = HashMap::with_capacity(batch.len());
        let mut assumed_new = Vec::new();
        for job in batch {
            let stream = job.append.stream_id.as_str();
            if versions.contains_key(stream) {
                continue;
            }
            let version = self.versions.get(stream).copied().unwrap_or_else(|| {
                assumed_new.push(stream);
                0
            });
            versions.insert(stream.to_owned(), version);
        }
        let lookup = Lookup {
            head: self.head,
            known_commands: HashMap::new(),
            versions,
            known_events: HashSet::new(),
        };
        (lookup, assumed_new)
    }

    /// What the writer knows after committing `decided`, the batch decided on `looked_up` (a read under the
    /// lock, or `None` when it decided on `known`, the guard having confirmed it).
    fn after(known: Option<Self>, looked_up: Option<Head>, decided: &Decided<'_>) -> Self {
        let mut known = match (known, looked_up) {
            (Some(known), None) => known,
            // The head is where this writer left it: nobody else wrote, what it knew still holds.
            (Some(known), Some(read)) if known.head.position == read.position => Self {
                alone: true,
                ..known
            },
            // Another writer moved the head, or this writer knew nothing (its first batch, or the first after
            // a failure, which it may try deciding alone: the guard checks it): only what was just read holds.
            (known, _) => Self {
                head: decided.head,
                versions: HashMap::new(),
                alone: known.is_none(),
            },
        };
        if known.versions.len() + decided.versions.len() > KNOWN_STREAMS_AT_MOST {
            known.versions.clear();
        }
        known.head = decided.head;
        known.versions.extend(
            decided
                .versions
                .iter()
                .map(|(stream, version)| (stream.clone(), *version)),
        );
        known
    }
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
        // Forgotten until this batch commits: should it fail, what it knew may no longer hold.
        let known = self.known.take();
        let (outcome, open) =
            match fast_batch(connection, batch, lock_timeout, hold_commit, known).await {
                FastOutcome::Committed(replies, known) => {
                    self.known = Some(known);
                    (Ok(replies), false)
                }
                FastOutcome::Failed { error, open } => (Err(error), open),
                FastOutcome::RetryCarefully => {
                    (careful_batch(connection, batch, lock_timeout).await, true)
                }
            };
        // (ROLLBACK outside a transaction would only earn a warning from the server.)
        if outcome.is_err() && open && rollback(connection).await.is_err() {
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

/// The batch in as few round trips as what the writer knows allows. Deciding alone (and with no commit
/// hold to honour, which needs a transaction to hold open), it sends the guarded insert outside a
/// transaction block: the call takes the lock, checks, writes and commits, one round trip. Otherwise, or when
/// the guard fails, it opens a transaction under the lock, reads what the decisions depend on, decides,
/// inserts and commits.
async fn fast_batch(
    connection: &mut PgConnection,
    batch: &[AppendJob],
    lock_timeout: Duration,
    hold_commit: Option<&CommitHold>,
    mut known: Option<Known>,
) -> FastOutcome {
    let one_trip = hold_commit.is_none();
    let mut in_transaction = false;
    let mut inserted = None;
    if let Some((assumed, assumed_new)) = known
        .as_ref()
        .filter(|known| known.alone)
        .map(|known| known.assume(batch))
    {
        // Decided without the connection: nothing is known to look up.
        let decided = match decide(connection, batch, assumed).await {
            Ok(decided) => decided,
            Err(error) => return FastOutcome::failed(error, false),
        };
        // A refusal decided on what the writer assumed would stand unchecked (it writes nothing to guard):
        // such a batch is decided again on what the log holds.
        if decided.replies.iter().all(Result::is_ok) {
            let guard = match to_i64(decided.decided_on.position) {
                Ok(head) => Guard {
                    head,
                    head_hash: decided.decided_on.hash,
                    assumed_new,
                },
                Err(error) => return FastOutcome::failed(error, false),
            };
            if !one_trip {
                if let Err(error) = begin(connection, lock_timeout).await {
                    return FastOutcome::failed(error, true);
                }
                in_transaction = true;
            }
            match decided
                .rows
                .insert(connection, decided.head, Some(&guard))
                .await
            {
                Ok(Guarded::Written) => inserted = Some(decided),
                Ok(Guarded::HeadMoved) => {
                    if let Some(known) = known.as_mut() {
                        known.alone = false;
                    }
                }
                Ok(Guarded::StreamNotNew) => {}
                Err(error) if in_transaction => return insert_failed(connection, error).await,
                // The call was its own transaction: the server has rolled it back.
                Err(error) if is_constraint(&error) => return FastOutcome::RetryCarefully,
                Err(error) => return FastOutcome::failed(lock_error(error, lock_timeout), false),
            }
        }
    }
    let (decided, looked_up) = match inserted {
        // Committed by the call itself.
        Some(decided) if !in_transaction => {
            let known = Known::after(known, None, &decided);
            return FastOutcome::Committed(decided.replies, known);
        }
        Some(decided) => (decided, None),
        None => {
            // After a failed guard outside a transaction nothing is open (the call committed nothing and
            // let go of the lock, so the batch queues for it again: a miss may wait up to two lock timeouts).
            if !in_transaction && let Err(error) = begin(connection, lock_timeout).await {
                return FastOutcome::failed(error, true);
            }
            let decided = match look_up(connection, batch).await {
                Ok(lookup) => decide(connection, batch, lookup).await,
                Err(error) => Err(error),
            };
            let decided = match decided {
                Ok(decided) => decided,
                Err(error) => return FastOutcome::failed(error, true),
            };
            if let Err(error) = decided.rows.insert(connection, decided.head, None).await {
                return insert_failed(connection, error).await;
            }
            let read = decided.decided_on;
            (decided, Some(read))
        }
    };
    if let Some(hold) = hold_commit {
        hold.wait().await;
    }
    match sqlx::raw_sql(sql::COMMIT).execute(&mut *connection).await {
        Ok(_) => {
            let known = Known::after(known, looked_up, &decided);
            FastOutcome::Committed(decided.replies, known)
        }
        Err(error) => FastOutcome::failed(error.into(), true),
    }
}

/// Opens a batch's transaction under the log's write lock.
async fn begin(connection: &mut PgConnection, lock_timeout: Duration) -> Result<(), StoreError> {
    sqlx::raw_sql(sql::BEGIN_AND_LOCK)
        .execute(&mut *connection)
        .await
        .map_err(|error| lock_error(error, lock_timeout))?;
    Ok(())
}

/// An insert that failed: a constraint sends the batch down the careful path, anything else fails it.
async fn insert_failed(connection: &mut PgConnection, error: sqlx::Error) -> FastOutcome {
    if is_constraint(&error) {
        // The transaction is aborted: roll it back here, so the careful path starts afresh.
        match rollback(connection).await {
            Ok(()) => FastOutcome::RetryCarefully,
            Err(error) => FastOutcome::failed(error.into(), true),
        }
    } else {
        FastOutcome::failed(error.into(), true)
    }
}

/// The careful path: the same lock, then each request under its own savepoint, looked up, decided and
/// inserted alone; a constraint violation rolls back its savepoint and refuses that request only.
async fn careful_batch(
    connection: &mut PgConnection,
    batch: &[AppendJob],
    lock_timeout: Duration,
) -> Result<Vec<Reply>, StoreError> {
    begin(connection, lock_timeout).await?;
    let mut replies = Vec::with_capacity(batch.len());
    for job in batch {
        let alone = std::slice::from_ref(job);
        sqlx::raw_sql(sql::SAVEPOINT)
            .execute(&mut *connection)
            .await?;
        let lookup = look_up(connection, alone).await?;
        let mut decided = decide(connection, alone, lookup).await?;
        match decided.rows.insert(connection, decided.head, None).await {
            Ok(_) => {
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
    /// The head the batch was decided on, and the head after it.
    decided_on: Head,
    head: Head,
    /// The versions of the batch's streams after it.
    versions: HashMap<String, u64>,
}

/// Decides every request in order, as if each ran alone after the ones before it.
async fn decide<'a>(
    connection: &mut PgConnection,
    batch: &'a [AppendJob],
    mut lookup: Lookup,
) -> Result<Decided<'a>, StoreError> {
    let decided_on = lookup.head;
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
    Ok(Decided {
        replies,
        rows,
        decided_on,
        head: lookup.head,
        versions: lookup.versions,
    })
}

/// The batch's rows, one array per column, as `mmonboard_append` ([`sql::INSERT`]) unnests them.
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

    /// Inserts every row in one statement, under `guard` if given, announcing `head` (the head after the
    /// batch) to listeners; nothing to do when every request was refused or known.
    async fn insert(
        &self,
        connection: &mut PgConnection,
        head: Head,
        guard: Option<&Guard<'_>>,
    ) -> Result<Guarded, sqlx::Error> {
        if self.command_ids.is_empty() {
            // Only an unguarded batch can write nothing: a guarded one has every request appended.
            debug_assert!(guard.is_none(), "a guarded batch with nothing to write");
            return Ok(Guarded::Written);
        }
        let (head_ok, written): (bool, bool) = sqlx::query_as(sql::INSERT)
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
            .bind(head.position.to_string())
            .bind(guard.map(|guard| guard.head))
            .bind(guard.map_or(&[][..], |guard| guard.assumed_new.as_slice()))
            .bind(guard.map(|guard| &guard.head_hash[..]))
            .fetch_one(&mut *connection)
            .await?;
        Ok(match (head_ok, written) {
            (_, true) => Guarded::Written,
            (false, false) => Guarded::HeadMoved,
            (true, false) => Guarded::StreamNotNew,
        })
    }
}

/// What a guarded insert checks before it writes, after the lock (its checks are separate statements, each
/// in a snapshot of its own, which all see the same log: nobody else can insert while the lock is held).
struct Guard<'a> {
    /// The position and hash of the head the batch was decided on.
    head: i64,
    head_hash: [u8; 32],
    /// The streams the batch assumed to have no event.
    assumed_new: Vec<&'a str>,
}

/// What an insert did.
enum Guarded {
    Written,
    /// Another writer has committed since: nothing was written.
    HeadMoved,
    /// A stream assumed new has events: nothing was written.
    StreamNotNew,
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
