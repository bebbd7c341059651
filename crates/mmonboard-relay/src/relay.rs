//! The relay itself: take the lease, find where the stream ends, then publish the log's events after it in a
//! pipeline (many publishes in flight, acknowledgements awaited in order) and save the acknowledged position.
//!
//! The signed checkpoints of the chain head go into the same stream, on subjects of their own
//! ([`checkpoint_subject_of`]), each right after the event it vouches for, so that a party outside the database
//! holds them; per signing key they are published in position order, exactly once like the events.
//!
//! One call of [`Relay::run_once`] is one attempt: it returns `Ok` at shutdown or when the lease is lost, and
//! an error when NATS or the database fails. [`Relay::run`] repeats attempts with a jittered, capped backoff
//! (for `mmonboard relay`); the server runs `run_once` under its own supervisor instead, which also makes
//! `/readyz` say degraded while it recovers.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, message::PublishMessage, publish::PublishAck, stream};
use backon::{BackoffBuilder, ExponentialBuilder};
use chrono::{DateTime, TimeDelta, Utc};
use mmonboard_app::cloudevents::to_cloud_event;
use mmonboard_app::codec::portfolio_of;
use mmonboard_eventlog::{
    Checkpoints, EventLog, EventStore, RecordedEvent, SignedCheckpoint, SignedCheckpoints,
    Subscription, SubscriptionOptions,
};
use mmonboard_process::{Lease, TimerStore};
use tokio::sync::{mpsc, watch};

use crate::error::RelayError;
use crate::options::RelayOptions;
use crate::stats::RelayStats;

/// The header holding an event's global position (decimal). Persisted in every stream: never rename.
pub const POSITION_HEADER: &str = "Mmonboard-Position";
/// The relay's row in the lease table: one active relay per database.
pub const LEASE_NAME: &str = "relay";
/// The relay's checkpoint is named `jetstream:<stream>`, so two streams fed from one log keep apart.
pub const CHECKPOINT_PREFIX: &str = "jetstream:";
/// The header holding the position a published signed checkpoint covers (decimal). Persisted: never rename.
pub const SIGNED_POSITION_HEADER: &str = "Mmonboard-Checkpoint-Position";
/// The first tokens of the subjects signed checkpoints are published on. Persisted: never rename.
pub const SIGNED_SUBJECT_ROOT: &str = "mmonboard.audit";
/// The CloudEvents `type` of a published signed checkpoint.
pub const SIGNED_CHECKPOINT_TYPE: &str = "mmonboard.audit.checkpoint.v1";

/// The subject of the signed checkpoints of `key_id` published into `stream`:
/// `mmonboard.audit.<stream>.checkpoints.<key_id>`. The stream's name is in it because JetStream lets no two
/// streams take the same subjects; the key id, so that each key's newest published checkpoint is one lookup.
pub fn checkpoint_subject_of(stream: &str, key_id: &str) -> String {
    format!("{SIGNED_SUBJECT_ROOT}.{stream}.checkpoints.{key_id}")
}

/// The subjects of the events of `prefix`, and of the signed checkpoints of `stream`, that the stream takes.
/// When the events' subjects already cover the checkpoints' (a prefix of `mmonboard` or `mmonboard.audit`),
/// only the events' are listed: JetStream refuses overlapping subjects within a stream.
fn stream_subjects(prefix: &str, stream: &str) -> Vec<String> {
    let events = format!("{prefix}.>");
    let checkpoints = checkpoint_subject_of(stream, "*");
    if covers(&events, &checkpoints) {
        vec![events]
    } else {
        vec![events, checkpoints]
    }
}

/// Whether the subject filter `filter` takes every subject `subject` names (itself a filter: `*` one token,
/// `>` the rest), token by token as NATS matches them.
fn covers(filter: &str, subject: &str) -> bool {
    let mut subject_tokens = subject.split('.');
    for token in filter.split('.') {
        match (token, subject_tokens.next()) {
            (">", Some(_)) => return true,
            (_, None) => return false,
            ("*", Some(theirs)) if theirs != ">" => {}
            (ours, Some(theirs)) if ours == theirs && theirs != "*" && theirs != ">" => {}
            _ => return false,
        }
    }
    subject_tokens.next().is_none()
}

/// The message of a signed checkpoint: a CloudEvent whose data is the checkpoint as the HTTP API shows it
/// (`GET /v1/audit/checkpoints`), so a consumer checks it with the same code.
pub fn checkpoint_cloud_event(checkpoint: &SignedCheckpoint) -> serde_json::Value {
    serde_json::json!({
        "specversion": "1.0",
        "id": checkpoint_message_id(checkpoint),
        "source": mmonboard_app::cloudevents::SOURCE,
        "type": SIGNED_CHECKPOINT_TYPE,
        "subject": checkpoint.position.to_string(),
        "time": checkpoint.recorded_at(),
        "datacontenttype": "application/json",
        "data": checkpoint.to_json(),
    })
}

/// A signed checkpoint's `Nats-Msg-Id` and CloudEvent id: one key signs a position once.
fn checkpoint_message_id(checkpoint: &SignedCheckpoint) -> String {
    format!("checkpoint:{}:{}", checkpoint.key_id, checkpoint.position)
}

/// What goes into the stream, in order.
enum Outgoing {
    Event(RecordedEvent),
    Checkpoint(SignedCheckpoint),
}

/// What an acknowledgement in flight is for.
enum Sent {
    Event(u64),
    Checkpoint { key_id: String, position: u64 },
}

type AckFuture =
    Pin<Box<dyn Future<Output = Result<PublishAck, jetstream::context::PublishError>> + Send>>;

/// The subject of an event: `<prefix>.<portfolio_id>.<event_type>`. A stream that is not a portfolio's
/// (none is today) gets its name as the token, with the characters a subject token cannot hold replaced.
pub fn subject_of(prefix: &str, event: &RecordedEvent) -> String {
    let token = match portfolio_of(&event.stream_id) {
        Some(portfolio_id) => portfolio_id.to_string(),
        None => event
            .stream_id
            .as_str()
            .chars()
            .map(|c| {
                if c.is_whitespace() || matches!(c, '.' | '*' | '>') {
                    '_'
                } else {
                    c
                }
            })
            .collect(),
    };
    format!("{prefix}.{token}.{}", event.event_type)
}

/// A relay from one log to one JetStream stream.
pub struct Relay {
    store: Arc<EventLog>,
    checkpoints: Checkpoints,
    signed: SignedCheckpoints,
    timers: TimerStore,
    lease: Lease,
    options: RelayOptions,
    stats: Arc<RelayStats>,
}

/// The lease as this instance holds it.
struct Tenure {
    /// Act only until then: one renewal interval before another instance could take it.
    held_until: DateTime<Utc>,
    next_renewal: DateTime<Utc>,
}

impl Relay {
    /// A relay for the log `store` (opened from `database_url`), with its checkpoint and lease in that
    /// database. Nothing is asked of NATS yet.
    pub async fn open(
        store: Arc<EventLog>,
        database_url: &str,
        options: RelayOptions,
    ) -> Result<Self, RelayError> {
        options.validate().map_err(RelayError::Invalid)?;
        let timers = TimerStore::open(database_url).await?;
        let checkpoints = Checkpoints::open(database_url).await?;
        let signed = SignedCheckpoints::open_read_only(database_url).await?;
        let holder = format!(
            "relay-pid{}-{}",
            std::process::id(),
            uuid::Uuid::now_v7().simple()
        );
        let lease = timers.lease_named(LEASE_NAME, holder)?;
        Ok(Self {
            store,
            checkpoints,
            signed,
            timers,
            lease,
            options,
            stats: Arc::new(RelayStats::default()),
        })
    }

    pub fn stats(&self) -> Arc<RelayStats> {
        Arc::clone(&self.stats)
    }

    pub fn options(&self) -> &RelayOptions {
        &self.options
    }

    /// The name of this relay's checkpoint.
    pub fn checkpoint_name(&self) -> String {
        format!("{CHECKPOINT_PREFIX}{}", self.options.stream)
    }

    /// Closes the checkpoint and lease connections (the log is the caller's).
    pub async fn close(&self) {
        self.checkpoints.close().await;
        self.signed.close().await;
        self.timers.close().await;
    }

    /// Attempts until `shutdown` is set, each failure followed by a backoff delay (200 ms doubling to 10 s,
    /// with jitter; back to the start once an attempt works).
    pub async fn run(&self, mut shutdown: watch::Receiver<bool>) {
        // backon gives the delays; the loop is ours because an attempt runs until shutdown rather than
        // returning a value to retry for.
        let backoff = || {
            ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(200))
                .with_max_delay(Duration::from_secs(10))
                .with_jitter()
                .without_max_times()
                .build()
        };
        let mut delays = backoff();
        loop {
            match self.run_once(&mut shutdown).await {
                Ok(()) => delays = backoff(),
                Err(error) => {
                    tracing::error!(%error, "the relay stopped with an error; it will try again");
                    if self.stats.working() {
                        delays = backoff();
                    }
                    self.stats.failed(error.to_string());
                    let delay = delays.next().unwrap_or(Duration::from_secs(10));
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = stopped(&mut shutdown) => {}
                    }
                }
            }
            if *shutdown.borrow() {
                return;
            }
        }
    }

    /// One attempt: stand by until this instance holds the lease, then publish until `shutdown`, a lost
    /// lease (`Ok`), or a failure (`Err`). The lease is released on the way out.
    pub async fn run_once(&self, shutdown: &mut watch::Receiver<bool>) -> Result<(), RelayError> {
        self.stats.set_working(false);
        let outcome = self.attempt(shutdown).await;
        self.stats.set_active(false);
        if outcome.is_err() {
            self.stats.publish_failed();
        }
        let released = self.lease.release().await.map_err(RelayError::from);
        outcome.and(released)
    }

    async fn attempt(&self, shutdown: &mut watch::Receiver<bool>) -> Result<(), RelayError> {
        let mut announced_standby = false;
        let mut tenure = loop {
            if *shutdown.borrow() {
                return Ok(());
            }
            if let Some(tenure) = self.try_lease().await? {
                break tenure;
            }
            if !announced_standby {
                let current = self.lease.current().await?.map(|holder| holder.holder);
                tracing::info!(holder = ?current, "another relay holds the lease: standing by");
                announced_standby = true;
            }
            // A standby reports the shared checkpoint, so the lag it shows is the stream's.
            self.stats
                .set_position(self.checkpoints.load(&self.checkpoint_name()).await?);
            self.stats.set_working(true);
            tokio::select! {
                () = tokio::time::sleep(self.options.lease.renew_every) => {}
                () = stopped(shutdown) => return Ok(()),
            }
        };
        self.stats.set_working(false);
        self.stats.set_active(true);
        tracing::info!(
            holder = self.lease.holder_name(),
            stream = %self.options.stream,
            "the relay took the lease: publishing"
        );
        self.publish(shutdown, &mut tenure).await
    }

    /// Take or renew the lease; `None` when another instance holds it.
    async fn try_lease(&self) -> Result<Option<Tenure>, RelayError> {
        let now = Utc::now();
        if !self.lease.try_hold(now, self.options.lease.ttl).await? {
            return Ok(None);
        }
        let delta = |duration: Duration| TimeDelta::from_std(duration).unwrap_or(TimeDelta::MAX);
        Ok(Some(Tenure {
            held_until: now + delta(self.options.lease.ttl) - delta(self.options.lease.renew_every),
            next_renewal: now + delta(self.options.lease.renew_every),
        }))
    }

    fn nats_error(&self, message: impl std::fmt::Display) -> RelayError {
        RelayError::Nats {
            url: self.options.nats_url.clone(),
            message: message.to_string(),
        }
    }

    async fn publish(
        &self,
        shutdown: &mut watch::Receiver<bool>,
        tenure: &mut Tenure,
    ) -> Result<(), RelayError> {
        let client = async_nats::ConnectOptions::new()
            .name("mmonboard-relay")
            .connection_timeout(self.options.ack_timeout)
            .connect(self.options.nats_url.as_str())
            .await
            .map_err(|error| self.nats_error(format!("cannot connect: {error}")))?;
        let context = jetstream::ContextBuilder::new()
            .timeout(self.options.ack_timeout)
            .ack_timeout(self.options.ack_timeout)
            .max_ack_inflight(self.options.max_in_flight)
            .backpressure_on_inflight(true)
            .build(client);
        let stream = context
            .get_or_create_stream(stream::Config {
                name: self.options.stream.clone(),
                subjects: stream_subjects(&self.options.subject_prefix, &self.options.stream),
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(|error| {
                self.nats_error(format!(
                    "cannot create or find the stream {}: {error}",
                    self.options.stream
                ))
            })?;
        let with_checkpoints = self.take_checkpoint_subjects(&context, &stream).await;
        let (resume_after, mut last_sequence) = self.resume_point(&stream).await?;
        let mut signed = SignedFollower::start(self, &stream, with_checkpoints).await?;
        // A duplicate of a message older than this was purged from the stream: JetStream's duplicate window
        // still remembers its id, and would drop the event instead of storing it.
        let first_kept = last_sequence + 1;
        let checkpoint_name = self.checkpoint_name();
        let mut saved = self.checkpoints.load(&checkpoint_name).await?;
        if saved != resume_after {
            self.checkpoints
                .save(&checkpoint_name, resume_after)
                .await?;
            saved = resume_after;
        }
        self.stats.set_position(resume_after);
        self.stats.set_working(true);
        tracing::info!(stream = %self.options.stream, after = resume_after, "the relay resumes");

        // The log is read by a task of its own, so that a read in progress is never cancelled by an
        // acknowledgement arriving (a cancelled read would start over, and a busy pipeline would starve it).
        let (batches, mut incoming) = mpsc::channel::<Result<Vec<RecordedEvent>, RelayError>>(2);
        let mut subscription = Subscription::after(
            Arc::clone(&self.store),
            resume_after,
            SubscriptionOptions {
                page_size: self.options.page_size,
                poll_interval: self.options.poll_interval,
            },
        );
        let mut reader = tokio::task::JoinSet::new();
        reader.spawn(async move {
            loop {
                let batch = subscription.next_batch().await.map_err(RelayError::from);
                let failed = batch.is_err();
                if batches.send(batch).await.is_err() || failed {
                    return;
                }
            }
        });

        let mut pending: VecDeque<RecordedEvent> = VecDeque::new();
        let mut in_flight: VecDeque<(Sent, AckFuture)> = VecDeque::new();
        let mut acknowledged = resume_after;
        // The last event handed to JetStream: a signed checkpoint goes out once its position has.
        let mut sent_through = resume_after;
        let mut ticks = tokio::time::interval(self.options.checkpoint_every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut signed_polls = tokio::time::interval(self.options.signed_poll_interval);
        signed_polls.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let outcome = loop {
            if Utc::now() >= tenure.held_until {
                tracing::warn!("the relay could not renew its lease in time: standing by");
                break Ok(());
            }
            while in_flight.len() < self.options.max_in_flight {
                let next = match signed.next_due(sent_through) {
                    Some(checkpoint) => Outgoing::Checkpoint(checkpoint),
                    None => match pending.pop_front() {
                        Some(event) => Outgoing::Event(event),
                        None => break,
                    },
                };
                let (sent, ack) = self.send(&context, next, last_sequence).await?;
                last_sequence += 1;
                if let Sent::Event(position) = sent {
                    sent_through = position;
                }
                in_flight.push_back((sent, ack));
            }
            tokio::select! {
                biased;
                () = stopped(shutdown) => break Ok(()),
                outcome = next_ack(&mut in_flight) => {
                    let (position, key_id) = match in_flight.pop_front() {
                        Some((Sent::Event(position), _)) => (position, None),
                        Some((Sent::Checkpoint { key_id, position }, _)) => (position, Some(key_id)),
                        None => continue,
                    };
                    let what = match &key_id {
                        None => format!("position {position}"),
                        Some(key_id) => format!("the checkpoint of position {position} by key {key_id}"),
                    };
                    match outcome {
                        Ok(ack) if ack.duplicate && ack.sequence < first_kept => break Err(RelayError::ForeignStream(format!(
                            "JetStream dropped {what} as a duplicate of its message {} that is no longer \
                             in the stream {} (purged, but its id is still in the duplicate window): delete the \
                             stream instead of purging it, or wait for the duplicate window to pass, before \
                             republishing with --from-position",
                            ack.sequence, self.options.stream
                        ))),
                        Ok(ack) => {
                            if ack.duplicate {
                                tracing::debug!(what, "JetStream already held this message");
                            }
                            match key_id {
                                None => {
                                    acknowledged = position;
                                    self.stats.acknowledged(position, ack.duplicate);
                                }
                                Some(key_id) => {
                                    tracing::info!(position, key_id, "a signed checkpoint is in the stream");
                                    self.stats.checkpoint_acknowledged();
                                }
                            }
                        }
                        Err(error) => break Err(self.nats_error(format!(
                            "publishing {what} into {}: {error}",
                            self.options.stream
                        ))),
                    }
                }
                batch = incoming.recv(), if pending.is_empty() && in_flight.len() < self.options.max_in_flight => {
                    match batch {
                        Some(Ok(batch)) => pending.extend(batch),
                        Some(Err(error)) => break Err(error),
                        None => break Err(RelayError::Store(mmonboard_eventlog::StoreError::Closed)),
                    }
                }
                _ = signed_polls.tick() => signed.poll(self).await?,
                _ = ticks.tick() => {
                    if acknowledged > saved {
                        self.checkpoints.save(&checkpoint_name, acknowledged).await?;
                        saved = acknowledged;
                    }
                    if Utc::now() >= tenure.next_renewal {
                        match self.try_lease().await? {
                            Some(renewed) => *tenure = renewed,
                            None => {
                                tracing::warn!("the relay lost its lease: standing by");
                                break Ok(());
                            }
                        }
                    }
                }
            }
        };
        reader.abort_all();
        // What is already on its way is acknowledged or not; the acknowledged part is saved either way.
        if outcome.is_ok() {
            while let Some((sent, ack)) = in_flight.pop_front() {
                match (sent, ack.await) {
                    (Sent::Event(position), Ok(ack)) => {
                        acknowledged = position;
                        self.stats.acknowledged(position, ack.duplicate);
                    }
                    (Sent::Checkpoint { .. }, Ok(_)) => self.stats.checkpoint_acknowledged(),
                    (_, Err(_)) => break,
                }
            }
        }
        if acknowledged > saved {
            self.checkpoints
                .save(&checkpoint_name, acknowledged)
                .await?;
        }
        outcome
    }

    /// Publish one event (the CloudEvent as body, its id as `Nats-Msg-Id`, its position) or one signed
    /// checkpoint (likewise, on its key's subject), expecting the stream sequence it must follow.
    async fn send(
        &self,
        context: &jetstream::Context,
        outgoing: Outgoing,
        last_sequence: u64,
    ) -> Result<(Sent, AckFuture), RelayError> {
        let (body, message_id, header, subject, sent) = match outgoing {
            Outgoing::Event(event) => (
                serde_json::to_vec(&to_cloud_event(&event)),
                event.event_id.to_string(),
                (POSITION_HEADER, event.global_position),
                subject_of(&self.options.subject_prefix, &event),
                Sent::Event(event.global_position),
            ),
            Outgoing::Checkpoint(checkpoint) => (
                serde_json::to_vec(&checkpoint_cloud_event(&checkpoint)),
                checkpoint_message_id(&checkpoint),
                (SIGNED_POSITION_HEADER, checkpoint.position),
                checkpoint_subject_of(&self.options.stream, &checkpoint.key_id),
                Sent::Checkpoint {
                    key_id: checkpoint.key_id,
                    position: checkpoint.position,
                },
            ),
        };
        let position = header.1;
        let what = match &sent {
            Sent::Event(_) => format!("position {position}"),
            Sent::Checkpoint { key_id, .. } => {
                format!("the checkpoint of position {position} by key {key_id}")
            }
        };
        let body = body.map_err(|error| RelayError::Invalid(format!("{what}: {error}")))?;
        let mut message = PublishMessage::build()
            .payload(bytes::Bytes::from(body))
            .message_id(message_id)
            .header(header.0, position.to_string().as_str());
        // JetStream ignores an expected last sequence of 0, so the first message of a new stream goes
        // unchecked; every later one must follow its predecessor.
        if last_sequence > 0 {
            message = message.expected_last_sequence(last_sequence);
        }
        let ack = context
            .send_publish(subject, message)
            .await
            .map_err(|error| {
                self.nats_error(format!(
                    "publishing {what} into {}: {error}",
                    self.options.stream
                ))
            })?;
        Ok((sent, ack.into_future()))
    }

    /// Whether the stream takes the signed checkpoints' subjects, after giving them to a stream created before
    /// checkpoints were published. A stream that already covers a subject (configured more broadly, say
    /// `mmonboard.>`) is left as it is; one that cannot take them (JetStream refuses, e.g. another stream holds
    /// them) gets the events only, with a warning: the checkpoints stay in the log and its API.
    async fn take_checkpoint_subjects(
        &self,
        context: &jetstream::Context,
        stream: &stream::Stream,
    ) -> bool {
        let mut config = stream.cached_info().config.clone();
        let wanted = stream_subjects(&self.options.subject_prefix, &self.options.stream);
        let missing: Vec<String> = wanted
            .into_iter()
            .filter(|subject| !config.subjects.iter().any(|taken| covers(taken, subject)))
            .collect();
        if missing.is_empty() {
            return true;
        }
        config.subjects.extend(missing);
        match context.update_stream(&config).await {
            Ok(_) => true,
            Err(error) => {
                tracing::warn!(
                    stream = %self.options.stream,
                    %error,
                    "the stream cannot take the signed checkpoints' subjects: publishing the events only"
                );
                false
            }
        }
    }

    /// The stream's last event message, walking back over the signed checkpoints (and deleted messages) after
    /// it; `None` when the stream holds no event.
    async fn last_event_message(
        &self,
        stream: &stream::Stream,
        state: &stream::State,
    ) -> Result<Option<async_nats::jetstream::message::StreamMessage>, RelayError> {
        if state.messages == 0 {
            return Ok(None);
        }
        let checkpoints = checkpoint_subject_of(&self.options.stream, "");
        let mut sequence = state.last_sequence;
        while sequence >= state.first_sequence.max(1) {
            match stream.get_raw_message(sequence).await {
                Ok(message)
                    if message.subject.starts_with(checkpoints.as_str())
                        && message.headers.get(POSITION_HEADER).is_none() => {}
                Ok(message) => return Ok(Some(message)),
                Err(error)
                    if matches!(
                        error.kind(),
                        stream::LastRawMessageErrorKind::NoMessageFound
                    ) => {}
                Err(error) => {
                    return Err(self.nats_error(format!(
                        "reading the message of sequence {sequence} of the stream {}: {error}",
                        self.options.stream
                    )));
                }
            }
            sequence -= 1;
        }
        Ok(None)
    }

    /// Where to continue, and the stream's last sequence. A stream that holds messages continues after its
    /// last one (whatever the checkpoint says); an empty one after `from_position - 1`, or the checkpoint.
    async fn resume_point(&self, stream: &stream::Stream) -> Result<(u64, u64), RelayError> {
        let state = stream
            .get_info()
            .await
            .map_err(|error| {
                self.nats_error(format!(
                    "reading the stream {}: {error}",
                    self.options.stream
                ))
            })?
            .state;
        let head = self.store.head_position().await?;
        let checkpoint = self.checkpoints.load(&self.checkpoint_name()).await?;
        let name = &self.options.stream;
        let last = self.last_event_message(stream, &state).await?;
        let Some(last) = last else {
            let after = match self.options.from_position {
                Some(position) => position - 1,
                None => {
                    if checkpoint > 0 {
                        tracing::warn!(
                            stream = %name,
                            checkpoint,
                            "the stream is empty but events up to the checkpoint were published into it: \
                             continuing after the checkpoint (relay --from-position 1 republishes them all)"
                        );
                    }
                    checkpoint
                }
            };
            if after > head {
                return Err(RelayError::Invalid(format!(
                    "cannot start after position {after}: the log's head is {head}"
                )));
            }
            return Ok((after, state.last_sequence));
        };
        let position: u64 = last
            .headers
            .get(POSITION_HEADER)
            .and_then(|value| value.as_str().parse().ok())
            .ok_or_else(|| {
                RelayError::ForeignStream(format!(
                    "the last message of the stream {name} (sequence {}, subject {}) has no {POSITION_HEADER} \
                     header: the stream holds messages the relay did not publish; give the relay a stream of its own",
                    last.sequence, last.subject
                ))
            })?;
        let message_id = last
            .headers
            .get("Nats-Msg-Id")
            .map(|value| value.as_str().to_owned());
        let ours = if position == 0 || position > head {
            None
        } else {
            self.store
                .read_all(position - 1, 1)
                .await?
                .into_iter()
                .next()
        };
        match ours {
            Some(event) if message_id.as_deref() == Some(event.event_id.to_string().as_str()) => {}
            _ => {
                return Err(RelayError::ForeignStream(format!(
                    "the stream {name} ends with position {position} (event {}), which this log (head {head}) \
                     does not hold: it was filled from another log; give the relay a stream of its own or purge it",
                    message_id.as_deref().unwrap_or("without an id")
                )));
            }
        }
        if let Some(from) = self.options.from_position {
            tracing::info!(
                stream = %name,
                from,
                position,
                "the stream is not empty: --from-position applies only to an empty stream; continuing after its last message"
            );
        }
        if position < checkpoint {
            tracing::warn!(
                stream = %name,
                position,
                checkpoint,
                "the stream ends before the checkpoint: JetStream lost acknowledged messages; republishing after its last one"
            );
        }
        Ok((position, state.last_sequence))
    }
}

/// Which signed checkpoints the stream holds, per key, and the ones found that wait for their event to be
/// handed to JetStream first.
struct SignedFollower {
    /// Off when the stream cannot take the checkpoints' subjects: then nothing is looked for or sent.
    enabled: bool,
    /// Per key id, the newest position the stream held when this attempt started. A key signs only past its
    /// own newest checkpoint, so everything of that key at or below it was published before.
    in_stream: HashMap<String, u64>,
    /// What this attempt found and queued or sent, so nothing goes twice.
    taken: HashSet<(String, u64)>,
    /// Found and not yet sent, by position then key.
    waiting: BTreeMap<(u64, String), SignedCheckpoint>,
    /// Each look asks for the checkpoints from the highest position seen on (a checkpoint signs the head, so a
    /// later one is normally there or beyond) ...
    floor: u64,
    /// ... and every `FULL_LOOK_EVERY` looks, or when a key not seen before shows up, for all of them: a signer
    /// that read the head before another key's checkpoint was recorded commits below it, and a new key's first
    /// checkpoint is visible before its second (it signs past its own), so one full look finds them.
    looks: u32,
}

/// Looks between two reads of every checkpoint (with the one-second default poll: a minute).
const FULL_LOOK_EVERY: u32 = 60;

impl SignedFollower {
    /// Reads every checkpoint of the log and, per key, the newest one in the stream.
    async fn start(
        relay: &Relay,
        stream: &stream::Stream,
        enabled: bool,
    ) -> Result<Self, RelayError> {
        let mut follower = Self {
            enabled,
            in_stream: HashMap::new(),
            taken: HashSet::new(),
            waiting: BTreeMap::new(),
            floor: 0,
            looks: 0,
        };
        if !enabled {
            return Ok(follower);
        }
        let all = relay.signed.list().await?;
        let keys: BTreeSet<&str> = all
            .iter()
            .map(|checkpoint| checkpoint.key_id.as_str())
            .collect();
        for key_id in keys {
            let subject = checkpoint_subject_of(&relay.options.stream, key_id);
            let newest = match stream.get_last_raw_message_by_subject(&subject).await {
                Ok(message) => message
                    .headers
                    .get(SIGNED_POSITION_HEADER)
                    .and_then(|value| value.as_str().parse::<u64>().ok())
                    .ok_or_else(|| {
                        RelayError::ForeignStream(format!(
                            "the last message on {subject} in the stream {} (sequence {}) has no \
                             {SIGNED_POSITION_HEADER} header: the relay did not publish it",
                            relay.options.stream, message.sequence
                        ))
                    })?,
                Err(error)
                    if matches!(
                        error.kind(),
                        stream::LastRawMessageErrorKind::NoMessageFound
                    ) =>
                {
                    0
                }
                Err(error) => {
                    return Err(relay.nats_error(format!(
                        "reading the newest signed checkpoint on {subject}: {error}"
                    )));
                }
            };
            follower.in_stream.insert(key_id.to_owned(), newest);
        }
        follower.take(all);
        Ok(follower)
    }

    /// Queues the checkpoints of `found` the stream does not hold; whether one of them is by a key not seen
    /// before.
    fn take(&mut self, found: Vec<SignedCheckpoint>) -> bool {
        let mut new_key = false;
        for checkpoint in found {
            self.floor = self.floor.max(checkpoint.position);
            let published_before = match self.in_stream.get(&checkpoint.key_id) {
                Some(newest) => checkpoint.position <= *newest,
                None => {
                    new_key = true;
                    self.in_stream.insert(checkpoint.key_id.clone(), 0);
                    false
                }
            };
            let id = (checkpoint.key_id.clone(), checkpoint.position);
            if !published_before && self.taken.insert(id) {
                self.waiting
                    .insert((checkpoint.position, checkpoint.key_id.clone()), checkpoint);
            }
        }
        new_key
    }

    /// Looks for checkpoints recorded since the last look (see `floor` and `looks`).
    async fn poll(&mut self, relay: &Relay) -> Result<(), RelayError> {
        if !self.enabled {
            return Ok(());
        }
        self.looks += 1;
        let full = self.looks.is_multiple_of(FULL_LOOK_EVERY);
        let from = if full { 0 } else { self.floor };
        let found = relay.signed.list_from(from).await?;
        if self.take(found) && !full {
            let all = relay.signed.list().await?;
            self.take(all);
        }
        Ok(())
    }

    /// The next checkpoint to send, once the event it vouches for has been handed to JetStream.
    fn next_due(&mut self, sent_through: u64) -> Option<SignedCheckpoint> {
        let due = self
            .waiting
            .first_key_value()
            .is_some_and(|((position, _), _)| *position <= sent_through);
        if due {
            self.waiting.pop_first().map(|(_, checkpoint)| checkpoint)
        } else {
            None
        }
    }
}

/// The oldest acknowledgement in flight; pending forever when there is none.
async fn next_ack(
    in_flight: &mut VecDeque<(Sent, AckFuture)>,
) -> Result<PublishAck, jetstream::context::PublishError> {
    match in_flight.front_mut() {
        Some((_, ack)) => ack.await,
        None => std::future::pending().await,
    }
}

/// Resolves once `shutdown` is set (or its sender is gone). The guard `wait_for` returns is dropped here, so
/// that no future holding it lives across an await.
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stopped| *stopped).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_filters_cover_as_nats_matches_them() {
        assert!(covers("mmonboard.>", "mmonboard.audit.S.checkpoints.*"));
        assert!(covers(
            "mmonboard.audit.>",
            "mmonboard.audit.S.checkpoints.*"
        ));
        assert!(covers(
            "mmonboard.audit.*.checkpoints.*",
            "mmonboard.audit.S.checkpoints.*"
        ));
        assert!(covers("a.b", "a.b"));
        assert!(!covers(
            "mmonboard.onboarding.>",
            "mmonboard.audit.S.checkpoints.*"
        ));
        assert!(!covers(
            "mmonboard.audit.S.checkpoints.k1",
            "mmonboard.audit.S.checkpoints.*"
        ));
        assert!(!covers("a.>", "a"));
        assert!(!covers("a.*", "a.>"));
        assert!(!covers("a.b", "a.b.c"));
        assert!(!covers("a.b.c", "a.b"));
    }

    #[test]
    fn the_checkpoints_get_a_subject_of_their_own_unless_the_events_cover_it() {
        assert_eq!(
            stream_subjects("mmonboard.onboarding", "EVENTS"),
            vec![
                "mmonboard.onboarding.>".to_owned(),
                "mmonboard.audit.EVENTS.checkpoints.*".to_owned()
            ]
        );
        assert_eq!(
            stream_subjects("mmonboard", "EVENTS"),
            vec!["mmonboard.>".to_owned()]
        );
        assert_eq!(
            stream_subjects("mmonboard.audit", "EVENTS"),
            vec!["mmonboard.audit.>".to_owned()]
        );
    }
}
