//! The command path: load a portfolio's stream, decide against its state, append the events with the version
//! the decision saw. A stale version is retried a bounded number of times; a command id seen before returns
//! the original outcome and appends nothing. Refusals come back as values (`Ok(Err(refusal))`), failures of
//! the infrastructure as errors.
//!
//! Folded aggregates are kept in memory between commands and reads, and (with a [`SnapshotStore`]) stored
//! every few events beside the log, so neither a command nor a question reads more of a stream than the
//! events it has not folded yet. Both are caches: a cached fold at version v is the fold of events 1..=v,
//! which never change, and whatever is cached is checked against the log before an answer depends on it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use mmonboard_domain::ids::PortfolioId;
use mmonboard_domain::snapshot::fingerprint;
use mmonboard_domain::{
    Aggregate, Decider, DomainConfig, OnboardingCommand, OnboardingEvent, Phase, Refusal,
};
use mmonboard_eventlog::{
    AppendError, AppendOutcome, AppendRequest, EventMetadata, EventStore, ExpectedVersion,
    RecordedEvent, SnapshotStore, StoredSnapshot, StreamId,
};
use serde::Serialize;
use uuid::Uuid;

use crate::cache::AggregateCache;
use crate::clock::Clock;
use crate::codec::{decode, stream_id, to_new_event};
use crate::error::AppError;
use crate::head::HeadReadings;
use crate::locks::KeyedLocks;

/// Who asks and how the command relates to others; recorded with every event it produces.
#[derive(Debug, Clone)]
pub struct CommandContext {
    /// Idempotency key: the same id twice is applied once.
    pub command_id: Uuid,
    pub actor: String,
    pub correlation_id: Uuid,
    pub causation_id: Option<Uuid>,
}

impl CommandContext {
    /// A fresh command by `actor`, correlated with itself.
    pub fn new(actor: impl Into<String>) -> Self {
        let command_id = Uuid::now_v7();
        Self {
            command_id,
            actor: actor.into(),
            correlation_id: command_id,
            causation_id: None,
        }
    }

    pub fn with_command_id(mut self, command_id: Uuid) -> Self {
        if self.correlation_id == self.command_id {
            self.correlation_id = command_id;
        }
        self.command_id = command_id;
        self
    }

    pub fn with_causation(mut self, causation_id: Option<Uuid>) -> Self {
        self.causation_id = causation_id;
        self
    }
}

/// A command id derived from what the command is about (UUID v8 over SHA-256 of `namespace` and `parts`): a
/// decision taken twice on the same grounds (a redelivered webhook, a timer that fires again after a crash) is
/// the same command, which the log applies once.
pub fn derived_command_id(namespace: &str, parts: &[&str]) -> Uuid {
    let mut fields = Vec::with_capacity(parts.len() + 1);
    fields.push(namespace);
    fields.extend_from_slice(parts);
    sha256_uuid(b"mmonboard derived command id\0", &fields)
}

/// A UUID v8 made of the first 16 bytes of SHA-256 over `prefix` and then `fields`, separated by NUL bytes:
/// the one way mmonboard derives a stable id from what it stands for (derived command ids, the command an
/// `Idempotency-Key` stands for). The bytes hashed are part of the contract: ids already in logs depend on
/// them.
pub fn sha256_uuid(prefix: &[u8], fields: &[&str]) -> Uuid {
    use sha2::{Digest, Sha256};
    let mut digest = Sha256::new_with_prefix(prefix);
    for (index, field) in fields.iter().enumerate() {
        if index > 0 {
            digest.update(b"\0");
        }
        digest.update(field.as_bytes());
    }
    let digest = digest.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    Uuid::new_v8(bytes)
}

/// A stored event with its domain meaning.
#[derive(Debug, Clone)]
pub struct LoggedEvent {
    pub recorded: RecordedEvent,
    pub event: OnboardingEvent,
}

/// What an accepted command did.
#[derive(Debug, Clone)]
pub struct CommandOutcome {
    pub portfolio_id: PortfolioId,
    pub events: Vec<LoggedEvent>,
    /// The command id had been applied before: these are the original events; nothing was appended now.
    pub already_applied: bool,
    pub phase: Phase,
    pub version: u64,
}

/// One entry of a portfolio's history: the event and the transition it caused.
#[derive(Debug, Clone)]
pub struct HistoryEntry {
    pub logged: LoggedEvent,
    pub phase_before: Phase,
    pub phase_after: Phase,
}

/// Tuning of the command path.
#[derive(Debug, Clone)]
pub struct ServiceOptions {
    /// How many times a command that lost a race with a concurrent writer is decided again.
    pub max_conflict_retries: u32,
    /// How many portfolios' folded state is kept between commands. A cached state at version v is the fold
    /// of events 1..=v, which never change, so only the events after v are read on the next command: this
    /// stays correct when other processes write the same log. 0 disables the cache.
    pub cached_aggregates: usize,
    /// With a snapshot store: a portfolio's fold is stored each time its stream passes a multiple of this
    /// many events (and after folding this many events from the log on a read). 0 never stores one.
    pub snapshot_every: u64,
}

/// The default of [`ServiceOptions::snapshot_every`]: a long stream is then folded from at most this many
/// events after its snapshot.
pub const DEFAULT_SNAPSHOT_EVERY: u64 = 100;

impl Default for ServiceOptions {
    fn default() -> Self {
        Self {
            max_conflict_retries: 64,
            cached_aggregates: 10_000,
            snapshot_every: DEFAULT_SNAPSHOT_EVERY,
        }
    }
}

/// Counters of the command path since the service started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ServiceStats {
    pub accepted: u64,
    pub refused: u64,
    pub already_applied: u64,
    /// Appends that met a newer stream version and were decided again.
    pub conflicts_retried: u64,
    /// Snapshots stored.
    pub snapshots_written: u64,
    /// Snapshots that could not be stored (each logged; the command it followed was not affected).
    pub snapshot_write_failures: u64,
    /// Folds that started from a stored snapshot.
    pub snapshots_used: u64,
    /// Stored snapshots not used: unreadable, or not matching the log (then the stream was folded whole).
    pub snapshots_rejected: u64,
}

#[derive(Default)]
struct Counters {
    accepted: AtomicU64,
    refused: AtomicU64,
    already_applied: AtomicU64,
    conflicts_retried: AtomicU64,
    snapshots_written: AtomicU64,
    snapshot_write_failures: AtomicU64,
    snapshots_used: AtomicU64,
    snapshots_rejected: AtomicU64,
}

/// A cached fold and the head position it is known to be current as of: no event of its stream has a
/// global position at or below `current_at` that it has not folded (0: not known to be current at all).
#[derive(Clone)]
struct Fold {
    aggregate: Arc<Aggregate>,
    current_at: u64,
}

impl Fold {
    fn unchecked(aggregate: Arc<Aggregate>) -> Self {
        Self {
            aggregate,
            current_at: 0,
        }
    }
}

impl std::borrow::Borrow<Aggregate> for Fold {
    fn borrow(&self) -> &Aggregate {
        &self.aggregate
    }
}

pub struct OnboardingService<S, C> {
    store: S,
    clock: C,
    decider: Decider,
    options: ServiceOptions,
    cache: Mutex<AggregateCache<Fold>>,
    /// Readings of the log's head shared by concurrent questions: whether a cached fold is current.
    heads: HeadReadings,
    locks: KeyedLocks<PortfolioId>,
    counters: Arc<Counters>,
    snapshots: Option<SnapshotStore>,
}

impl<S: EventStore, C: Clock> OnboardingService<S, C> {
    pub fn new(store: S, clock: C, config: DomainConfig) -> Self {
        Self {
            store,
            clock,
            decider: Decider::new(config),
            options: ServiceOptions::default(),
            cache: Mutex::new(AggregateCache::new(
                ServiceOptions::default().cached_aggregates,
            )),
            heads: HeadReadings::default(),
            locks: KeyedLocks::default(),
            counters: Arc::default(),
            snapshots: None,
        }
    }

    /// Fold long streams from the snapshots in `snapshots` and store new ones every
    /// [`ServiceOptions::snapshot_every`] events.
    pub fn with_snapshots(mut self, snapshots: SnapshotStore) -> Self {
        self.snapshots = Some(snapshots);
        self
    }

    pub fn snapshots(&self) -> Option<&SnapshotStore> {
        self.snapshots.as_ref()
    }

    pub fn stats(&self) -> ServiceStats {
        ServiceStats {
            accepted: self.counters.accepted.load(Ordering::Relaxed),
            refused: self.counters.refused.load(Ordering::Relaxed),
            already_applied: self.counters.already_applied.load(Ordering::Relaxed),
            conflicts_retried: self.counters.conflicts_retried.load(Ordering::Relaxed),
            snapshots_written: self.counters.snapshots_written.load(Ordering::Relaxed),
            snapshot_write_failures: self
                .counters
                .snapshot_write_failures
                .load(Ordering::Relaxed),
            snapshots_used: self.counters.snapshots_used.load(Ordering::Relaxed),
            snapshots_rejected: self.counters.snapshots_rejected.load(Ordering::Relaxed),
        }
    }

    pub fn with_options(mut self, options: ServiceOptions) -> Self {
        self.cache = Mutex::new(AggregateCache::new(options.cached_aggregates));
        self.options = options;
        self
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn clock(&self) -> &C {
        &self.clock
    }

    pub fn into_store(self) -> S {
        self.store
    }

    /// Decide and record one command. `Ok(Err(refusal))` appended nothing.
    ///
    /// A lone command costs one trip to the log, the append: it is decided on the cached fold without
    /// asking the log first whether that fold is current. That is safe because the append carries the
    /// version the decision saw, so a decision on a stale fold conflicts and is decided again on the events
    /// read after it; and a refusal is only given once a read has shown that the fold it was decided on is
    /// current. A command id applied before is answered with its original outcome: the append finds the id
    /// inside its transaction, and a refusal first looks the id up (a caller that retries with the same
    /// context would otherwise be refused, "already started", instead of getting the original outcome).
    #[tracing::instrument(
        name = "command",
        skip_all,
        fields(
            portfolio_id = %portfolio_id,
            command = command.type_name(),
            command_id = %context.command_id,
            actor = %context.actor,
        )
    )]
    pub async fn execute(
        &self,
        portfolio_id: &PortfolioId,
        command: &OnboardingCommand,
        context: &CommandContext,
    ) -> Result<Result<CommandOutcome, Refusal>, AppError> {
        let stream_id = stream_id(portfolio_id);
        let _serialised = self.locks.lock(portfolio_id).await;
        let (mut aggregate, mut current) = match self.cached(portfolio_id) {
            Some(cached) => (cached.aggregate, false),
            None => (
                self.fold_and_remember(portfolio_id, &stream_id, None)
                    .await?,
                true,
            ),
        };
        let mut attempts = 0;
        loop {
            let now = stored_precision(self.clock.now());
            let events = match self.decider.decide(&aggregate, command, now) {
                Ok(events) => events,
                Err(refusal) => {
                    if !current {
                        // Decided on the cached fold: refuse only if that fold is the log's state.
                        let version = aggregate.version();
                        aggregate = self
                            .brought_up_to_date(&stream_id, Fold::unchecked(aggregate), None)
                            .await?;
                        current = true;
                        if aggregate.version() != version {
                            continue;
                        }
                    }
                    // The same command may have been applied while this one waited for the portfolio (a
                    // concurrent retry with its key, here or in another process), or before it was sent
                    // again: that one's outcome is the answer, not a refusal of it as a second attempt.
                    if let Some(original) = self.store.find_command(context.command_id).await? {
                        self.counters
                            .already_applied
                            .fetch_add(1, Ordering::Relaxed);
                        return self.already_applied(portfolio_id, original).await.map(Ok);
                    }
                    self.counters.refused.fetch_add(1, Ordering::Relaxed);
                    return Ok(Err(refusal));
                }
            };
            attempts += 1;
            let decided_on = aggregate.version();
            let expected_version = match decided_on {
                0 => ExpectedVersion::NoStream,
                version => ExpectedVersion::Exact(version),
            };
            let request = AppendRequest {
                stream_id: stream_id.clone(),
                expected_version,
                command_id: context.command_id,
                metadata: EventMetadata {
                    command_id: context.command_id,
                    actor: context.actor.clone(),
                    correlation_id: context.correlation_id,
                    causation_id: context.causation_id,
                },
                recorded_at: now,
                events: events.iter().map(to_new_event).collect(),
            };
            match self.store.append(request).await {
                Ok(AppendOutcome::Appended(recorded)) => {
                    let mut aggregate = Arc::unwrap_or_clone(aggregate);
                    for event in &events {
                        aggregate.apply(event).map_err(|error| AppError::Corrupt {
                            stream_id: stream_id.clone(),
                            version: aggregate.version() + 1,
                            reason: format!(
                                "decide produced an event the machine cannot explain: {error}"
                            ),
                        })?;
                    }
                    let phase = aggregate.phase();
                    let version = aggregate.version();
                    let aggregate = Arc::new(aggregate);
                    if let Some(last) = recorded.last()
                        && self.snapshot_due(decided_on, version)
                    {
                        self.store_snapshot(&stream_id, &aggregate, last.event_id);
                    }
                    // Current as of its own last event: nothing of the stream can come before it.
                    let current_at = recorded.last().map_or(0, |event| event.global_position);
                    self.remember(Fold {
                        aggregate,
                        current_at,
                    });
                    self.counters.accepted.fetch_add(1, Ordering::Relaxed);
                    let logged = recorded
                        .into_iter()
                        .zip(events)
                        .map(|(recorded, event)| LoggedEvent { recorded, event })
                        .collect();
                    return Ok(Ok(CommandOutcome {
                        portfolio_id: portfolio_id.clone(),
                        events: logged,
                        already_applied: false,
                        phase,
                        version,
                    }));
                }
                Ok(AppendOutcome::AlreadyApplied(original)) => {
                    self.counters
                        .already_applied
                        .fetch_add(1, Ordering::Relaxed);
                    return self.already_applied(portfolio_id, original).await.map(Ok);
                }
                Err(AppendError::Conflict { .. })
                    if attempts <= self.options.max_conflict_retries =>
                {
                    self.counters
                        .conflicts_retried
                        .fetch_add(1, Ordering::Relaxed);
                    aggregate = self
                        .brought_up_to_date(&stream_id, Fold::unchecked(aggregate), None)
                        .await?;
                    current = true;
                    continue;
                }
                Err(AppendError::Conflict { .. }) => {
                    return Err(AppError::ConflictRetriesExhausted {
                        portfolio_id: portfolio_id.clone(),
                        attempts,
                    });
                }
                Err(AppendError::Store(error)) => return Err(error.into()),
            }
        }
    }

    /// Whether `command` is the request that produced `original` (an outcome with `already_applied`): decided
    /// again on the state and at the time the original was, it gives the same events. A caller that reuses an
    /// idempotency key for another request is told so rather than handed the first request's outcome. The
    /// comparison is of meaning, not bytes: the same command spelled differently matches.
    pub async fn is_same_request(
        &self,
        command: &OnboardingCommand,
        original: &CommandOutcome,
    ) -> Result<bool, AppError> {
        let Some(first) = original.events.first() else {
            return Ok(true);
        };
        let stream_id = stream_id(&original.portfolio_id);
        let decided_on = first.recorded.stream_version.saturating_sub(1);
        let mut aggregate = Aggregate::new(original.portfolio_id.clone());
        for recorded in self.store.read_stream(&stream_id, 0).await? {
            if recorded.stream_version > decided_on {
                break;
            }
            let event = decode_checked(&stream_id, &recorded)?;
            apply_checked(&mut aggregate, &stream_id, &recorded, &event)?;
        }
        let again = self
            .decider
            .decide(&aggregate, command, first.recorded.recorded_at);
        Ok(again.is_ok_and(|events| {
            events.len() == original.events.len()
                && events
                    .iter()
                    .zip(&original.events)
                    .all(|(again, logged)| *again == logged.event)
        }))
    }

    /// The id of the portfolio's latest event, if it has any: the causation of a command that answers
    /// the portfolio as it stands (a Meta webhook is decided on the state that event ended in).
    pub async fn last_event_id(
        &self,
        portfolio_id: &PortfolioId,
    ) -> Result<Option<Uuid>, AppError> {
        let stream_id = stream_id(portfolio_id);
        let Some(after_version) = self.store.stream_version(&stream_id).await?.checked_sub(1)
        else {
            return Ok(None);
        };
        // Bounded below by the version just read, so this reads the head and whatever came after it.
        let tail = self.store.read_stream(&stream_id, after_version).await?;
        Ok(tail.last().map(|event| event.event_id))
    }

    /// The portfolio's state now (a portfolio with no history is `not_started`).
    pub async fn load(&self, portfolio_id: &PortfolioId) -> Result<Aggregate, AppError> {
        self.current(portfolio_id).await.map(Arc::unwrap_or_clone)
    }

    /// The portfolio's state now, shared with the service's cache: the cached fold when the log has nothing
    /// after it (one look at the stream's tail), else the fold brought up to date, else folded from the log
    /// (from its snapshot when there is one). What questions and state reads are answered from.
    pub async fn current(&self, portfolio_id: &PortfolioId) -> Result<Arc<Aggregate>, AppError> {
        let stream_id = stream_id(portfolio_id);
        // A reading of the head begun after this call: nothing appended since the cached fold was last
        // found current means it is current now, without a look at its stream.
        let head = self.heads.fresh(|| self.store.head_position()).await?;
        match self.cached(portfolio_id) {
            Some(cached) if cached.current_at >= head => Ok(cached.aggregate),
            Some(cached) => {
                self.brought_up_to_date(&stream_id, cached, Some(head))
                    .await
            }
            None => {
                self.fold_and_remember(portfolio_id, &stream_id, Some(head))
                    .await
            }
        }
    }

    /// The state as it was at `as_of`: the fold of the events recorded up to then.
    pub async fn load_as_of(
        &self,
        portfolio_id: &PortfolioId,
        as_of: DateTime<Utc>,
    ) -> Result<Aggregate, AppError> {
        self.load_stream(portfolio_id, &stream_id(portfolio_id), Some(as_of))
            .await
    }

    /// Every event of the portfolio with the transition it caused.
    pub async fn history(&self, portfolio_id: &PortfolioId) -> Result<Vec<HistoryEntry>, AppError> {
        let stream_id = stream_id(portfolio_id);
        let recorded = self.store.read_stream(&stream_id, 0).await?;
        let mut aggregate = Aggregate::new(portfolio_id.clone());
        let mut history = Vec::with_capacity(recorded.len());
        for recorded in recorded {
            let event = decode_checked(&stream_id, &recorded)?;
            let phase_before = aggregate.phase();
            apply_checked(&mut aggregate, &stream_id, &recorded, &event)?;
            history.push(HistoryEntry {
                logged: LoggedEvent { recorded, event },
                phase_before,
                phase_after: aggregate.phase(),
            });
        }
        Ok(history)
    }

    /// The cached fold of the portfolio, as it was last seen (it may be behind the log).
    fn cached(&self, portfolio_id: &PortfolioId) -> Option<Fold> {
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(portfolio_id)
    }

    /// The fold with the events the log has after it folded in (itself when there are none). `head`: a
    /// reading of the log's head taken before the stream is read, which the result is then current as of.
    async fn brought_up_to_date(
        &self,
        stream_id: &StreamId,
        fold: Fold,
        head: Option<u64>,
    ) -> Result<Arc<Aggregate>, AppError> {
        let Fold {
            aggregate,
            current_at,
        } = fold;
        let tail = self
            .store
            .read_stream(stream_id, aggregate.version())
            .await?;
        let Some(last) = tail.last() else {
            if let Some(head) = head.filter(|head| *head > current_at) {
                self.remember(Fold {
                    aggregate: Arc::clone(&aggregate),
                    current_at: head,
                });
            }
            return Ok(aggregate);
        };
        let current_at = head.unwrap_or(0).max(last.global_position);
        let mut aggregate = Arc::unwrap_or_clone(aggregate);
        for recorded in &tail {
            let event = decode_checked(stream_id, recorded)?;
            apply_checked(&mut aggregate, stream_id, recorded, &event)?;
        }
        let aggregate = Arc::new(aggregate);
        self.remember(Fold {
            aggregate: Arc::clone(&aggregate),
            current_at,
        });
        Ok(aggregate)
    }

    /// The portfolio folded from the log (from its snapshot when one of this build matches the log), kept
    /// in the cache, and snapshotted when that fold read many events. `head`: as in
    /// [`Self::brought_up_to_date`].
    async fn fold_and_remember(
        &self,
        portfolio_id: &PortfolioId,
        stream_id: &StreamId,
        head: Option<u64>,
    ) -> Result<Arc<Aggregate>, AppError> {
        let (aggregate, snapshotted) = match self.restored_snapshot(portfolio_id, stream_id).await?
        {
            Some((mut aggregate, tail)) => {
                let snapshotted = aggregate.version();
                for recorded in &tail {
                    let event = decode_checked(stream_id, recorded)?;
                    apply_checked(&mut aggregate, stream_id, recorded, &event)?;
                }
                (Arc::new(aggregate), snapshotted)
            }
            None => (
                Arc::new(self.load_stream(portfolio_id, stream_id, None).await?),
                0,
            ),
        };
        if aggregate.version() == 0 {
            // Not cached: questions about portfolios that do not exist must not crowd out those that do.
            return Ok(aggregate);
        }
        if self.snapshot_due_after_fold(snapshotted, aggregate.version()) {
            let last = self
                .store
                .read_stream(stream_id, aggregate.version() - 1)
                .await?;
            if let Some(last) = last
                .first()
                .filter(|event| event.stream_version == aggregate.version())
            {
                self.store_snapshot(stream_id, &aggregate, last.event_id);
            }
        }
        self.remember(Fold {
            aggregate: Arc::clone(&aggregate),
            current_at: head.unwrap_or(0),
        });
        Ok(aggregate)
    }

    /// The portfolio's stored snapshot of this build, restored, if there is one and the log agrees with it
    /// (its event at the snapshot's version is the one the snapshot says it folded last), with the events
    /// the log has after it. Anything else (no store, no snapshot, unreadable bytes, another history) is `None`: the stream is
    /// then folded whole, so a snapshot can only ever save time.
    async fn restored_snapshot(
        &self,
        portfolio_id: &PortfolioId,
        stream_id: &StreamId,
    ) -> Result<Option<(Aggregate, Vec<RecordedEvent>)>, AppError> {
        let Some(snapshots) = &self.snapshots else {
            return Ok(None);
        };
        let stored = match snapshots.load(stream_id, fingerprint()).await {
            Ok(Some(stored)) => stored,
            Ok(None) => return Ok(None),
            Err(error) => {
                tracing::warn!(%stream_id, %error, "reading the snapshot failed; folding the whole stream");
                self.counters
                    .snapshots_rejected
                    .fetch_add(1, Ordering::Relaxed);
                return Ok(None);
            }
        };
        let mut at_version = self
            .store
            .read_stream(stream_id, stored.stream_version - 1)
            .await?;
        let matches = at_version.first().is_some_and(|event| {
            event.stream_version == stored.stream_version && event.event_id == stored.last_event_id
        });
        let restored = if matches {
            Aggregate::from_snapshot(portfolio_id, stored.stream_version, &stored.state)
                .map_err(|error| error.to_string())
        } else {
            Err(format!(
                "the log's event at version {} is not the one it folded",
                stored.stream_version
            ))
        };
        match restored {
            Ok(aggregate) => {
                self.counters.snapshots_used.fetch_add(1, Ordering::Relaxed);
                at_version.remove(0);
                Ok(Some((aggregate, at_version)))
            }
            Err(reason) => {
                tracing::warn!(%stream_id, %reason, "ignoring the stored snapshot; folding the whole stream");
                self.counters
                    .snapshots_rejected
                    .fetch_add(1, Ordering::Relaxed);
                Ok(None)
            }
        }
    }

    /// Whether appending took the stream from `before` past a multiple of `snapshot_every`.
    fn snapshot_due(&self, before: u64, after: u64) -> bool {
        let every = self.options.snapshot_every;
        self.snapshots.is_some() && every > 0 && before / every < after / every
    }

    /// Whether a read folded at least `snapshot_every` events from the log past its snapshot (if any).
    fn snapshot_due_after_fold(&self, snapshotted: u64, version: u64) -> bool {
        let every = self.options.snapshot_every;
        self.snapshots.is_some() && every > 0 && version - snapshotted >= every
    }

    /// Store `aggregate` as its stream's snapshot, in the background: the command or read that took it does
    /// not wait, and a failure is logged and counted, never returned (a snapshot is only a cache).
    fn store_snapshot(
        &self,
        stream_id: &StreamId,
        aggregate: &Aggregate,
        last_event_id: uuid::Uuid,
    ) {
        let Some(snapshots) = self.snapshots.clone() else {
            return;
        };
        let counters = Arc::clone(&self.counters);
        let state = match aggregate.to_snapshot() {
            Ok(state) => state,
            Err(error) => {
                tracing::warn!(%stream_id, %error, "could not serialise a snapshot");
                counters
                    .snapshot_write_failures
                    .fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        let snapshot = StoredSnapshot {
            stream_version: aggregate.version(),
            last_event_id,
            state,
        };
        let stream_id = stream_id.clone();
        tokio::spawn(async move {
            match snapshots.save(&stream_id, fingerprint(), &snapshot).await {
                Ok(()) => counters.snapshots_written.fetch_add(1, Ordering::Relaxed),
                Err(error) => {
                    tracing::warn!(%stream_id, %error, "storing a snapshot failed");
                    counters
                        .snapshot_write_failures
                        .fetch_add(1, Ordering::Relaxed)
                }
            };
        });
    }

    fn remember(&self, fold: Fold) {
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remember(fold);
    }

    async fn load_stream(
        &self,
        portfolio_id: &PortfolioId,
        stream_id: &StreamId,
        as_of: Option<DateTime<Utc>>,
    ) -> Result<Aggregate, AppError> {
        let mut recorded = self.store.read_stream(stream_id, 0).await?;
        if let Some(as_of) = as_of {
            recorded.retain(|event| event.recorded_at <= as_of);
        }
        let (recorded, decoded) = decode_stream(stream_id, recorded).await?;
        let mut aggregate = Aggregate::new(portfolio_id.clone());
        for (event, decoded) in recorded.iter().zip(&decoded) {
            apply_checked(&mut aggregate, stream_id, event, decoded)?;
        }
        Ok(aggregate)
    }

    async fn already_applied(
        &self,
        portfolio_id: &PortfolioId,
        original: Vec<RecordedEvent>,
    ) -> Result<CommandOutcome, AppError> {
        let stream_id = stream_id(portfolio_id);
        if let Some(other) = original
            .first()
            .filter(|event| event.stream_id != stream_id)
        {
            return Err(AppError::Corrupt {
                stream_id: other.stream_id.clone(),
                version: other.stream_version,
                reason: format!("command id was already used for stream {}", other.stream_id),
            });
        }
        let mut events = Vec::with_capacity(original.len());
        for recorded in original {
            let event = decode_checked(&stream_id, &recorded)?;
            events.push(LoggedEvent { recorded, event });
        }
        let aggregate = self.load(portfolio_id).await?;
        Ok(CommandOutcome {
            portfolio_id: portfolio_id.clone(),
            events,
            already_applied: true,
            phase: aggregate.phase(),
            version: aggregate.version(),
        })
    }
}

/// `now` at the precision the log keeps times (microseconds): the events decided at `now` then carry exactly
/// the time they are recorded at, so deciding a command again at its `recorded_at` gives the same events.
fn stored_precision(now: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}

/// Streams at least this long are decoded in parallel, off the async workers.
const PARALLEL_DECODE_FROM: usize = 2_048;

/// Decode a whole stream. Folding is sequential by nature, decoding is not: a long stream is decoded in
/// chunks on all cores (on the blocking pool, so no async worker is held up), then folded in order.
async fn decode_stream(
    stream_id: &StreamId,
    recorded: Vec<RecordedEvent>,
) -> Result<(Vec<RecordedEvent>, Vec<OnboardingEvent>), AppError> {
    if recorded.len() < PARALLEL_DECODE_FROM {
        let decoded = recorded
            .iter()
            .map(|event| decode_checked(stream_id, event))
            .collect::<Result<_, _>>()?;
        return Ok((recorded, decoded));
    }
    let owned_stream_id = stream_id.clone();
    let joined = tokio::task::spawn_blocking(move || {
        let threads = std::thread::available_parallelism()
            .map_or(2, std::num::NonZero::get)
            .clamp(1, 8);
        let chunk = recorded.len().div_ceil(threads);
        let decoded: Result<Vec<OnboardingEvent>, AppError> = std::thread::scope(|scope| {
            let workers: Vec<_> = recorded
                .chunks(chunk)
                .map(|part| {
                    let stream_id = &owned_stream_id;
                    scope.spawn(move || {
                        part.iter()
                            .map(|event| decode_checked(stream_id, event))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            let mut decoded = Vec::with_capacity(recorded.len());
            for worker in workers {
                let part = worker.join().map_err(|_| AppError::Corrupt {
                    stream_id: owned_stream_id.clone(),
                    version: 0,
                    reason: "a decoding thread panicked".to_owned(),
                })?;
                for event in part {
                    decoded.push(event?);
                }
            }
            Ok(decoded)
        });
        decoded.map(|decoded| (recorded, decoded))
    })
    .await;
    joined.map_err(|error| AppError::Corrupt {
        stream_id: stream_id.clone(),
        version: 0,
        reason: format!("decoding the stream failed: {error}"),
    })?
}

fn decode_checked(
    stream_id: &StreamId,
    recorded: &RecordedEvent,
) -> Result<OnboardingEvent, AppError> {
    decode(recorded).map_err(|error| AppError::Corrupt {
        stream_id: stream_id.clone(),
        version: recorded.stream_version,
        reason: error.to_string(),
    })
}

fn apply_checked(
    aggregate: &mut Aggregate,
    stream_id: &StreamId,
    recorded: &RecordedEvent,
    event: &OnboardingEvent,
) -> Result<(), AppError> {
    if recorded.stream_version != aggregate.version() + 1 {
        return Err(AppError::Corrupt {
            stream_id: stream_id.clone(),
            version: recorded.stream_version,
            reason: format!("expected stream version {}", aggregate.version() + 1),
        });
    }
    aggregate.apply(event).map_err(|error| AppError::Corrupt {
        stream_id: stream_id.clone(),
        version: recorded.stream_version,
        reason: error.to_string(),
    })
}

#[cfg(test)]
mod derived_id_tests {
    use super::{derived_command_id, sha256_uuid};

    /// Pinned: ids already recorded in logs were derived with exactly these bytes.
    #[test]
    fn derived_ids_keep_their_bytes() {
        assert_eq!(
            derived_command_id("meta-webhook", &["abc", "0"]).to_string(),
            "c305d631-ba6b-81ae-9aef-0302c92ddd45"
        );
        assert_eq!(
            sha256_uuid(b"mmonboard idempotency key\0", &["123", "key-1"]).to_string(),
            "812130a5-7437-89b1-a07f-d6bf2dde655d"
        );
    }
}
