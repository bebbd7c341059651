//! The process manager: follows the log (a durable subscription), and for every portfolio that changed or whose
//! timer is due, plans from the portfolio's folded state what it waits for from Meta and takes those steps.
//!
//! Nothing is done twice:
//! - every step's command carries an id derived from the portfolio, the step and the stream version it was
//!   decided on, so a step repeated after a crash (or by a second instance) is the same command, applied once;
//! - a write to Meta is preceded by a read: a transfer or terms request Meta already shows is recorded, never
//!   sent again (and the gateway itself re-checks a write whose answer was lost);
//! - planning reads the log, so a step already recorded is never planned again.
//!
//! Nothing is lost: a step waiting for a time has a row in `process_timers`; the subscription's checkpoint
//! moves only after the portfolios of a batch were reconciled.
//!
//! One at a time: of the managers sharing a database (one per `serve` replica), only the holder of the lease
//! (`lease.rs`) follows the log and calls Meta; the others stand by and take over when it lapses or is released.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use mmonboard_app::codec::portfolio_of;
use mmonboard_app::{
    AppError, Clock, CommandContext, OnboardingService, SystemClock, derived_command_id,
};
use mmonboard_domain::eligibility::evaluate_waba;
use mmonboard_domain::facts::{
    AccountStatus, OwnershipType, SuspensionReason, TermsStatus, WabaOnboardingStatus,
};
use mmonboard_domain::ids::{MetaRequestId, PortfolioId, Reason, StepName};
use mmonboard_domain::machine::WabaRouting;
use mmonboard_domain::{Aggregate, DomainConfig, MirroredAdAccount, OnboardingCommand};
use mmonboard_eventlog::{
    Checkpoints, DurableSubscription, EventStore, HeadWatch, SubscriptionOptions,
};
use mmonboard_meta::{MetaError, MetaGateway, TermsRequestOutcome, portfolio_facts};

use crate::ProcessError;
use crate::lease::{Lease, LeaseOptions};
use crate::plan::{ProcessConfig, Step, plan};
use crate::timers::{Timer, TimerStore};

/// The actor the process manager's commands are recorded with.
pub const ACTOR: &str = "process-manager";
/// The name of its durable subscription (its checkpoint).
pub const SUBSCRIPTION: &str = "process_manager";
/// A reconciliation re-plans after each step; this bounds the steps of one reconciliation.
const MAX_STEPS_PER_RECONCILE: usize = 64;

/// How the manager runs, in real time (its planning uses its clock).
#[derive(Debug, Clone)]
pub struct ProcessOptions {
    /// How often due timers are looked for.
    pub tick: Duration,
    pub subscription: SubscriptionOptions,
    /// The lease that lets one manager at a time act.
    pub lease: LeaseOptions,
}

impl Default for ProcessOptions {
    fn default() -> Self {
        Self {
            tick: Duration::from_millis(50),
            subscription: SubscriptionOptions::default(),
            lease: LeaseOptions::default(),
        }
    }
}

/// What one step produced.
enum Outcome {
    /// Record these commands, in order.
    Record(Vec<OnboardingCommand>),
    /// Meta has not got there yet (what it reports instead): look again after this long.
    NotYet(TimeDelta, String),
}

pub struct ProcessManager<S, C, G> {
    service: OnboardingService<S, C>,
    store: S,
    clock: C,
    gateway: Arc<G>,
    timers: TimerStore,
    checkpoints: Arc<Checkpoints>,
    domain: DomainConfig,
    config: ProcessConfig,
    options: ProcessOptions,
    lease: Lease,
    lease_clock: Arc<dyn Clock>,
    role: RoleWatch,
    /// A manager runs once at a time: two runs would share one lease holder's name.
    running: std::sync::atomic::AtomicBool,
}

/// Where a process manager stands with the lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessRole {
    /// Not running yet, or has not tried for the lease yet.
    Starting,
    /// Another instance holds the lease: this one waits to take over.
    Standby,
    /// Holds the lease: follows the log and calls Meta.
    Active,
    /// Its run ended (shutdown, failure, or its task was dropped).
    Stopped,
}

impl ProcessRole {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Standby => "standby",
            Self::Active => "active",
            Self::Stopped => "stopped",
        }
    }

    fn from_u8(value: u8) -> Self {
        match value {
            1 => Self::Standby,
            2 => Self::Active,
            3 => Self::Stopped,
            _ => Self::Starting,
        }
    }

    fn to_u8(self) -> u8 {
        match self {
            Self::Starting => 0,
            Self::Standby => 1,
            Self::Active => 2,
            Self::Stopped => 3,
        }
    }
}

/// A process manager's role, readable from elsewhere (the server's `/readyz` and metrics).
#[derive(Debug, Clone, Default)]
pub struct RoleWatch(Arc<AtomicU8>);

impl RoleWatch {
    pub fn get(&self) -> ProcessRole {
        ProcessRole::from_u8(self.0.load(Ordering::SeqCst))
    }

    fn set(&self, role: ProcessRole) {
        self.0.store(role.to_u8(), Ordering::SeqCst);
    }
}

/// Marks the manager stopped however its run ends: returned, failed, panicked or dropped.
struct StoppedOnDrop<'a>(&'a RoleWatch, &'a std::sync::atomic::AtomicBool);

impl Drop for StoppedOnDrop<'_> {
    fn drop(&mut self) {
        self.0.set(ProcessRole::Stopped);
        self.1.store(false, Ordering::SeqCst);
    }
}

/// Where a running manager stands with the lease.
struct Tenure<S> {
    /// While this instance holds the lease: its subscription, resumed from the shared checkpoint when it took
    /// the lease.
    subscription: Option<DurableSubscription<S>>,
    /// Until when the lease is ours, as far as this instance knows (lease clock).
    held_until: DateTime<Utc>,
    /// When to renew it, or, standing by, to try for it again (lease clock).
    next_renewal: DateTime<Utc>,
}

impl<S, C, G> ProcessManager<S, C, G>
where
    S: EventStore + HeadWatch + Clone,
    C: Clock + Clone,
    G: MetaGateway,
{
    /// A manager over the log `store` whose database is at `database_url` (for its timers and checkpoint).
    pub async fn open(
        store: S,
        database_url: &str,
        clock: C,
        gateway: Arc<G>,
        domain: DomainConfig,
        config: ProcessConfig,
        options: ProcessOptions,
    ) -> Result<Self, ProcessError> {
        options.lease.validate().map_err(ProcessError::Corrupt)?;
        let timers = TimerStore::open(database_url).await?;
        let checkpoints = Arc::new(Checkpoints::open(database_url).await?);
        let holder = format!(
            "pid{}-{}",
            std::process::id(),
            uuid::Uuid::now_v7().simple()
        );
        Ok(Self {
            lease: timers.lease(holder),
            lease_clock: Arc::new(SystemClock),
            role: RoleWatch::default(),
            running: std::sync::atomic::AtomicBool::new(false),
            service: OnboardingService::new(store.clone(), clock.clone(), domain.clone()),
            store,
            clock,
            gateway,
            timers,
            checkpoints,
            domain,
            config,
            options,
        })
    }

    pub fn timers(&self) -> &TimerStore {
        &self.timers
    }

    /// The lease this instance takes and renews.
    pub fn lease(&self) -> &Lease {
        &self.lease
    }

    /// The lease runs on this clock instead of the wall clock (tests move it by hand).
    pub fn with_lease_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.lease_clock = clock;
        self
    }

    /// The counters of the commands this manager recorded (accepted, refused, already applied), for metrics.
    pub fn command_stats(&self) -> mmonboard_app::ServiceStats {
        self.service.stats()
    }

    /// This instance's role: active while it holds the lease and acts, standby while another does.
    pub fn role(&self) -> RoleWatch {
        self.role.clone()
    }

    /// Renew the lease when due (or try for it, standing by); true while this instance holds it. Taking it
    /// resumes the subscription from the shared checkpoint, where the previous holder left off.
    async fn keep_lease(&self, tenure: &mut Tenure<S>, force: bool) -> Result<bool, ProcessError> {
        let now = self.lease_clock.now();
        if !force && now < tenure.next_renewal {
            return Ok(tenure.subscription.is_some() && now < tenure.held_until);
        }
        let held = self.lease.try_hold(now, self.options.lease.ttl).await?;
        tenure.next_renewal = now + lease_delta(self.options.lease.renew_every);
        match (held, tenure.subscription.is_some()) {
            (true, true) => {}
            (true, false) => {
                let subscription = DurableSubscription::resume(
                    self.store.clone(),
                    Arc::clone(&self.checkpoints),
                    SUBSCRIPTION,
                    self.options.subscription,
                )
                .await?;
                tracing::info!(
                    holder = self.lease.holder_name(),
                    after = subscription.acknowledged(),
                    "process manager took the lease: following the log"
                );
                tenure.subscription = Some(subscription);
            }
            (false, true) => {
                tracing::warn!(
                    holder = self.lease.holder_name(),
                    "process manager lost its lease: standing by"
                );
                tenure.subscription = None;
            }
            (false, false) => {}
        }
        if held {
            // Ours, as far as this instance acts on it, until one renewal interval before anybody else may take
            // it: a holder that could not renew stops before its successor can start.
            tenure.held_until = now + lease_delta(self.options.lease.ttl)
                - lease_delta(self.options.lease.renew_every);
        }
        self.role.set(if held {
            ProcessRole::Active
        } else {
            ProcessRole::Standby
        });
        Ok(held)
    }

    /// Reconcile one portfolio while renewing the lease as it falls due, however long Meta takes. True when it
    /// was done; false when the lease was lost first, or meanwhile: then the work in flight is dropped (as a
    /// crash would drop it, which the steps are made to survive) and left to the next holder.
    async fn reconcile_leased(
        &self,
        tenure: &mut Tenure<S>,
        portfolio_id: &PortfolioId,
    ) -> Result<bool, ProcessError> {
        if !self.keep_lease(tenure, false).await? {
            return Ok(false);
        }
        let every = (self.options.lease.renew_every / 2).max(Duration::from_millis(1));
        let mut renew = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut work = std::pin::pin!(self.reconcile(portfolio_id));
        loop {
            tokio::select! {
                outcome = &mut work => {
                    outcome?;
                    return Ok(true);
                }
                _ = renew.tick() => {
                    if !self.keep_lease(tenure, false).await? {
                        tracing::warn!(%portfolio_id, "the lease was lost in the middle of a step: the step is dropped for the next holder");
                        return Ok(false);
                    }
                }
            }
        }
    }

    /// Follow the log and the timers until `shutdown` completes, while this instance holds the lease (standing
    /// by otherwise). A failure of the log or the timers table ends the run with the error (after a restart it
    /// resumes from its checkpoint and timers); Meta's failures never do: they become timers, then a recorded
    /// stall. The lease is released on the way out, whichever way that is.
    pub async fn run(&self, shutdown: impl Future<Output = ()> + Send) -> Result<(), ProcessError> {
        if self.running.swap(true, Ordering::SeqCst) {
            return Err(ProcessError::Corrupt(
                "this process manager is running already: open another to run beside it".into(),
            ));
        }
        let _stopped = StoppedOnDrop(&self.role, &self.running);
        self.role.set(ProcessRole::Starting);
        let outcome = self.follow(shutdown).await;
        self.role.set(ProcessRole::Stopped);
        let released = self.lease.release().await;
        tracing::info!("process manager stopped");
        outcome.and(released)
    }

    async fn follow(&self, shutdown: impl Future<Output = ()> + Send) -> Result<(), ProcessError> {
        let mut tenure = Tenure {
            subscription: None,
            held_until: DateTime::<Utc>::MIN_UTC,
            next_renewal: DateTime::<Utc>::MIN_UTC,
        };
        if !self.keep_lease(&mut tenure, true).await? {
            let current = self.lease.current().await?.map(|current| current.holder);
            tracing::info!(
                holder = self.lease.holder_name(),
                current = current.as_deref().unwrap_or("nobody"),
                "another process manager holds the lease: standing by"
            );
        }
        let mut shutdown = std::pin::pin!(shutdown);
        let mut tick = tokio::time::interval(self.options.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                batch = next_batch(&mut tenure.subscription) => {
                    let batch = batch?;
                    let portfolios: BTreeSet<PortfolioId> =
                        batch.iter().filter_map(|event| portfolio_of(&event.stream_id)).collect();
                    // Each portfolio on a lease still ours (renewed as it falls due, however long Meta takes);
                    // a lease lost midway leaves the batch unacknowledged for the next holder, and so does one
                    // lost before the acknowledgement (a late one would move the shared checkpoint back).
                    let mut finished = true;
                    for portfolio_id in &portfolios {
                        if !self.reconcile_leased(&mut tenure, portfolio_id).await? {
                            finished = false;
                            break;
                        }
                    }
                    if finished && self.keep_lease(&mut tenure, false).await?
                        && let (Some(last), Some(subscription)) =
                            (batch.last(), tenure.subscription.as_mut())
                    {
                        subscription.acknowledge(last.global_position).await?;
                    }
                }
                _ = tick.tick() => {
                    if !self.keep_lease(&mut tenure, false).await? {
                        continue;
                    }
                    for portfolio_id in self.timers.due(self.clock.now()).await? {
                        if !self.reconcile_leased(&mut tenure, &portfolio_id).await? {
                            break;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Take every step the portfolio's state calls for now, and set a timer for each that must wait.
    pub async fn reconcile(&self, portfolio_id: &PortfolioId) -> Result<(), ProcessError> {
        for _ in 0..MAX_STEPS_PER_RECONCILE {
            let aggregate = self.service.load(portfolio_id).await?;
            if !self.step_once(&aggregate).await? {
                return Ok(());
            }
        }
        tracing::warn!(%portfolio_id, "reconciliation stopped after {MAX_STEPS_PER_RECONCILE} steps; it resumes at the next event or timer");
        Ok(())
    }

    /// One pass over the plan; true when something was recorded (the state changed: plan again).
    async fn step_once(&self, aggregate: &Aggregate) -> Result<bool, ProcessError> {
        let portfolio_id = aggregate.portfolio_id();
        let planned = plan(aggregate, &self.config);
        let mut timers: BTreeMap<String, Timer> = self
            .timers
            .of_portfolio(portfolio_id)
            .await?
            .into_iter()
            .map(|timer| (timer.step_key.clone(), timer))
            .collect();
        let planned_keys: BTreeSet<String> = planned.iter().map(|item| item.step.key()).collect();
        for key in timers.keys().filter(|key| !planned_keys.contains(*key)) {
            self.timers.remove(portfolio_id, key).await?;
        }
        timers.retain(|key, _| planned_keys.contains(key));

        for item in planned {
            let key = item.step.key();
            let now = self.clock.now();
            let existing = timers.get(&key);
            let due = existing
                .map(|timer| timer.due_at)
                .or(item.not_before)
                .unwrap_or(now);
            if due > now {
                if existing.is_none() {
                    self.set_timer(portfolio_id, &key, due, 0, None).await?;
                }
                continue;
            }
            let failures = existing.map_or(0, |timer| timer.attempts);
            match self.perform(aggregate, &item.step, failures).await {
                Ok(Outcome::Record(commands)) => {
                    let recorded = self.record(aggregate, &key, &commands).await?;
                    if recorded {
                        self.timers.remove(portfolio_id, &key).await?;
                        return Ok(true);
                    }
                    // Refused: the state moved under the step (a webhook, an operator). Look again later.
                    self.set_timer(portfolio_id, &key, now + self.config.poll_interval, 0, None)
                        .await?;
                }
                Ok(Outcome::NotYet(wait, reported)) => {
                    let since = existing
                        .and_then(|timer| timer.waiting_since)
                        .unwrap_or(now);
                    let timer = Timer {
                        portfolio_id: portfolio_id.clone(),
                        step_key: key.clone(),
                        due_at: now + wait,
                        attempts: 0,
                        last_error: Some(reported.clone()),
                        waiting_since: Some(since),
                        polls: existing.map_or(0, |timer| timer.polls).saturating_add(1),
                        stall_recorded: existing.is_some_and(|timer| timer.stall_recorded),
                    };
                    // Meta answers, but never gets there: as visible as a failure, once the wait is too long.
                    let stalled = now - since >= self.config.max_wait;
                    let text = format!(
                        "still waiting after {} minutes: {reported}",
                        (now - since).num_minutes()
                    );
                    let polls = timer.polls;
                    if self
                        .keep_timer(aggregate, &item.step, timer, stalled, polls, &text)
                        .await?
                    {
                        return Ok(true);
                    }
                }
                Err(error) => {
                    let attempts = failures.saturating_add(1);
                    let wait = self.config.backoff(attempts);
                    tracing::warn!(%portfolio_id, step = %key, attempts, %error, retry_in_s = wait.num_seconds(), "Meta failed a step");
                    let timer = Timer {
                        portfolio_id: portfolio_id.clone(),
                        step_key: key.clone(),
                        due_at: now + wait,
                        attempts,
                        last_error: Some(error.to_string()),
                        waiting_since: None,
                        polls: 0,
                        stall_recorded: existing.is_some_and(|timer| timer.stall_recorded),
                    };
                    let stalled = attempts >= self.config.stall_after;
                    if self
                        .keep_timer(
                            aggregate,
                            &item.step,
                            timer,
                            stalled,
                            attempts,
                            &error.to_string(),
                        )
                        .await?
                    {
                        return Ok(true);
                    }
                }
            }
        }
        Ok(false)
    }

    async fn set_timer(
        &self,
        portfolio_id: &PortfolioId,
        key: &str,
        due_at: DateTime<Utc>,
        attempts: u32,
        last_error: Option<String>,
    ) -> Result<(), ProcessError> {
        let timer = Timer {
            portfolio_id: portfolio_id.clone(),
            step_key: key.to_owned(),
            due_at,
            attempts,
            last_error,
            waiting_since: None,
            polls: 0,
            stall_recorded: false,
        };
        self.timers.set(&timer, self.clock.now()).await
    }

    /// Keep a step's timer; when the step is `stalled` and its stall is not in the log yet, record it there
    /// once (true: the state changed). A stall is recorded once per stall, not at every retry, so failing
    /// steps never flood a portfolio's history; but a stall the portfolio no longer shows (a later event, say a
    /// template change, cleared it from the fold) while the step still fails is recorded again at the step's
    /// next retry, so that it never goes out of sight for good. While another step's stall is shown, the
    /// portfolio is visibly blocked already and nothing is added.
    async fn keep_timer(
        &self,
        aggregate: &Aggregate,
        step: &Step,
        mut timer: Timer,
        stalled: bool,
        attempts: u32,
        text: &str,
    ) -> Result<bool, ProcessError> {
        self.timers.set(&timer, self.clock.now()).await?;
        if !stalled || (timer.stall_recorded && aggregate.stall().is_some()) {
            return Ok(false);
        }
        let stall = OnboardingCommand::RecordProcessStall {
            step: StepName::parse(step.name())
                .map_err(|error| ProcessError::Corrupt(error.to_string()))?,
            attempts,
            error: reason_from(text),
        };
        // Recorded first, marked after: a crash in between records it twice, never not at all.
        let recorded = self
            .record(aggregate, &format!("stall:{}", timer.step_key), &[stall])
            .await?;
        timer.stall_recorded = true;
        self.timers.set(&timer, self.clock.now()).await?;
        Ok(recorded)
    }

    /// Record a step's commands; true if at least one was accepted (or had been, by an earlier attempt).
    async fn record(
        &self,
        aggregate: &Aggregate,
        key: &str,
        commands: &[OnboardingCommand],
    ) -> Result<bool, ProcessError> {
        let portfolio_id = aggregate.portfolio_id();
        let version = aggregate.version().to_string();
        let causation = self.last_event_id(aggregate).await?;
        let mut recorded = false;
        for (index, command) in commands.iter().enumerate() {
            let index = index.to_string();
            let command_id = derived_command_id(
                "process-manager",
                &[portfolio_id.as_str(), key, &version, &index],
            );
            let context = CommandContext::new(ACTOR)
                .with_command_id(command_id)
                .with_causation(causation);
            match self.service.execute(portfolio_id, command, &context).await {
                Ok(Ok(outcome)) => {
                    recorded = true;
                    for logged in &outcome.events {
                        tracing::info!(%portfolio_id, %command_id, step = key, event = logged.event.type_name(), phase = %outcome.phase, "recorded");
                    }
                }
                Ok(Err(refusal)) => {
                    tracing::warn!(%portfolio_id, %command_id, step = key, command = command.type_name(), %refusal, "the log refused the step's command");
                }
                Err(AppError::ConflictRetriesExhausted { .. }) => {
                    // Others keep writing to this portfolio: its next event brings it back here.
                    tracing::warn!(%portfolio_id, step = key, "the step's command kept conflicting");
                }
                Err(error) => return Err(error.into()),
            }
        }
        Ok(recorded)
    }

    /// The causation of a step's commands: the event the aggregate was folded up to, the one that made the
    /// plan call for the step (a timer's step is caused by the last event before it fired).
    async fn last_event_id(
        &self,
        aggregate: &Aggregate,
    ) -> Result<Option<uuid::Uuid>, ProcessError> {
        let Some(after_version) = aggregate.version().checked_sub(1) else {
            return Ok(None);
        };
        let stream_id = mmonboard_app::codec::stream_id(aggregate.portfolio_id());
        // `read_stream` returns the versions after its bound: after v - 1 comes v first.
        let tail = self.store.read_stream(&stream_id, after_version).await?;
        let event = tail
            .first()
            .filter(|event| event.stream_version == aggregate.version())
            .ok_or_else(|| {
                ProcessError::Corrupt(format!(
                    "{stream_id} has no event at version {}, which the manager folded",
                    aggregate.version()
                ))
            })?;
        Ok(Some(event.event_id))
    }

    /// Ask Meta what the step needs; decide nothing here: the commands go through `decide` like any other.
    /// `failures`: how many times this step already failed in a row (an earlier attempt may have reached Meta).
    async fn perform(
        &self,
        aggregate: &Aggregate,
        step: &Step,
        failures: u32,
    ) -> Result<Outcome, MetaError> {
        let gateway = self.gateway.as_ref();
        let data = aggregate.data();
        let portfolio_id = aggregate.portfolio_id();
        let poll = self.config.poll_interval;
        Ok(match step {
            Step::CheckEligibility => {
                let (_, facts) = portfolio_facts(gateway, portfolio_id).await?;
                Outcome::Record(vec![OnboardingCommand::CheckEligibility { facts }])
            }
            Step::RequestOboTransfer(waba_id) => {
                let waba = gateway.waba(waba_id).await?;
                let already = waba.obo_intent.is_some()
                    || waba.facts.ownership_type == OwnershipType::ClientOwned;
                if !already {
                    gateway.set_obo_mobility_intent(waba_id).await?;
                }
                Outcome::Record(vec![OnboardingCommand::RequestOboMigration {
                    waba_id: waba_id.clone(),
                }])
            }
            Step::AwaitOboTransfer(waba_id) => {
                let waba = gateway.waba(waba_id).await?;
                let completed = waba.facts.ownership_type == OwnershipType::ClientOwned
                    || waba
                        .obo_intent
                        .as_ref()
                        .is_some_and(|intent| intent.status == "COMPLETED");
                if completed {
                    Outcome::Record(vec![OnboardingCommand::CompleteOboMigration {
                        waba_id: waba_id.clone(),
                    }])
                } else {
                    Outcome::NotYet(
                        poll,
                        format!(
                            "Meta has not completed the OBO transfer of WABA {waba_id} (ownership {})",
                            waba.facts.ownership_type
                        ),
                    )
                }
            }
            Step::RequestTerms => {
                // Signed already: nothing to ask. An invitation out after an attempt of ours whose outcome was
                // unknown: that attempt went through, do not send it again. Otherwise ask; an invitation someone
                // else sent is Meta's to report (1752041), and a request repeated after a crash between the call
                // and its record gets the same answer, recorded the same way.
                let business = gateway.business(portfolio_id).await?;
                let outcome = match business.terms_status {
                    TermsStatus::TermOfServiceSigned => TermsRequestOutcome::AlreadyInvited,
                    TermsStatus::RequestSent if failures > 0 => TermsRequestOutcome::SentAnswerLost,
                    _ => {
                        // The intent, durable before the call: if the process dies between Meta's answer and
                        // the record, the next attempt sees it and reads back instead of sending again.
                        self.set_timer(
                            portfolio_id,
                            &step.key(),
                            self.clock.now() + self.config.backoff(failures + 1),
                            failures + 1,
                            Some(
                                "the terms request was being sent; its outcome is not recorded yet"
                                    .into(),
                            ),
                        )
                        .await
                        .map_err(|error| MetaError::Transport {
                            operation: "recording the intent to request the terms".into(),
                            message: error.to_string(),
                        })?;
                        gateway.request_terms(portfolio_id).await?
                    }
                };
                let command = match outcome {
                    TermsRequestOutcome::Sent { request_id } => {
                        OnboardingCommand::RecordTermsRequest {
                            request_id: Some(MetaRequestId::parse(&request_id).map_err(
                                |source| MetaError::InvalidValue {
                                    operation: "requesting the MM API terms".into(),
                                    source,
                                },
                            )?),
                            already_invited: false,
                        }
                    }
                    TermsRequestOutcome::AlreadyInvited => OnboardingCommand::RecordTermsRequest {
                        request_id: None,
                        already_invited: true,
                    },
                    TermsRequestOutcome::SentAnswerLost => OnboardingCommand::RecordTermsRequest {
                        request_id: None,
                        already_invited: false,
                    },
                };
                Outcome::Record(vec![command])
            }
            Step::AwaitTermsSigned => {
                let business = gateway.business(portfolio_id).await?;
                let reporting_waba = data
                    .eligible_wabas()
                    .next()
                    .or_else(|| data.wabas.keys().next());
                match (&business.terms_status, reporting_waba) {
                    (TermsStatus::TermOfServiceSigned, Some(waba_id)) => {
                        Outcome::Record(vec![OnboardingCommand::RecordTermsSigned {
                            waba_id: waba_id.clone(),
                        }])
                    }
                    (status, _) => Outcome::NotYet(
                        self.config.terms_poll_interval,
                        format!("Meta reports the portfolio's terms {status}, not signed"),
                    ),
                }
            }
            Step::Connect => {
                let mut ad_accounts = Vec::new();
                for waba_id in data.eligible_wabas() {
                    match gateway.waba(waba_id).await?.ad_account_id {
                        Some(ad_account_id) => ad_accounts.push(MirroredAdAccount {
                            waba_id: waba_id.clone(),
                            ad_account_id,
                        }),
                        None => {
                            return Ok(Outcome::NotYet(
                                poll,
                                format!(
                                    "Meta has not created the mirrored ad account of WABA {waba_id}"
                                ),
                            ));
                        }
                    }
                }
                Outcome::Record(vec![OnboardingCommand::Connect { ad_accounts }])
            }
            Step::StartConfigSync => {
                let mut commands = Vec::new();
                for (waba_id, record) in &data.wabas {
                    if !matches!(record.routing, WabaRouting::Onboarded { .. }) {
                        continue;
                    }
                    for template in gateway.templates(waba_id).await? {
                        let known = data.templates.get(&template.id).is_some_and(|known| {
                            known.waba_id == *waba_id && known.category == template.category
                        });
                        if !known {
                            commands.push(OnboardingCommand::ChangeTemplate {
                                waba_id: waba_id.clone(),
                                template_id: template.id,
                                name: template.name,
                                language: template.language,
                                category: template.category,
                            });
                        }
                    }
                }
                commands.push(OnboardingCommand::StartConfigSync {});
                Outcome::Record(commands)
            }
            Step::CompleteSync => {
                // Every onboarded WABA must be ONBOARDED at Meta. One Meta restricted or disabled meanwhile (its
                // webhook may have come before the portfolio was enabled, when it could not be recorded) is
                // suspended first: it must not hold the others back, nor keep MM routing.
                let mut suspend = Vec::new();
                let mut pending = Vec::new();
                for (waba_id, record) in &data.wabas {
                    if !matches!(record.routing, WabaRouting::Onboarded { .. }) {
                        continue;
                    }
                    let waba = gateway.waba(waba_id).await?;
                    match waba.facts.account_status {
                        AccountStatus::Active => {}
                        AccountStatus::Disabled => {
                            suspend.push((waba_id, SuspensionReason::DisabledUpdate))
                        }
                        _ => suspend.push((waba_id, SuspensionReason::AccountRestriction)),
                    }
                    if waba.meta_status() != Some(&WabaOnboardingStatus::Onboarded) {
                        let status = waba
                            .meta_status()
                            .map_or_else(|| "no status".to_owned(), ToString::to_string);
                        pending.push(format!("WABA {waba_id} is {status}"));
                    }
                }
                if !suspend.is_empty() {
                    Outcome::Record(
                        suspend
                            .into_iter()
                            .map(|(waba_id, reason)| OnboardingCommand::RestrictWaba {
                                waba_id: waba_id.clone(),
                                reason,
                            })
                            .collect(),
                    )
                } else if !pending.is_empty() {
                    Outcome::NotYet(
                        poll,
                        format!("Meta has not onboarded every WABA: {}", pending.join(", ")),
                    )
                } else {
                    Outcome::Record(vec![OnboardingCommand::CompleteSync {}])
                }
            }
            Step::SyncTemplateMirror {
                waba_id,
                template_id,
            } => {
                let templates = gateway.templates(waba_id).await?;
                let mirrored = templates
                    .iter()
                    .any(|template| template.id == *template_id && template.ad_id.is_some());
                if mirrored {
                    Outcome::Record(vec![OnboardingCommand::RecordTemplateMirrorSynced {
                        waba_id: waba_id.clone(),
                        template_id: template_id.clone(),
                    }])
                } else {
                    Outcome::NotYet(
                        poll,
                        format!(
                            "Meta shows no mirrored ad for template {template_id} of WABA {waba_id}"
                        ),
                    )
                }
            }
            Step::RecheckSuspendedWaba(waba_id) => {
                let waba = gateway.waba(waba_id).await?;
                let verdict = evaluate_waba(&waba.facts, &self.domain.countries);
                if verdict.is_eligible() {
                    Outcome::Record(vec![OnboardingCommand::ReinstateWaba { facts: waba.facts }])
                } else {
                    let reasons: Vec<String> =
                        verdict.reasons.iter().map(ToString::to_string).collect();
                    Outcome::NotYet(
                        self.config.recheck_interval,
                        format!(
                            "WABA {waba_id} is still not eligible: {}",
                            reasons.join("; ")
                        ),
                    )
                }
            }
        })
    }
}

/// Meta's words as a `Reason`: whatever Meta sent (an HTML error page, line breaks) must never keep a stall
/// from being recorded.
fn reason_from(text: &str) -> Reason {
    let text: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(900)
        .collect();
    Reason::parse(&text).unwrap_or_else(|_| {
        Reason::parse("Meta failed the step (its error text could not be kept)")
            .expect("a valid reason")
    })
}

/// The next batch of the subscription, or never while there is none (standing by).
async fn next_batch<S: EventStore + HeadWatch + Clone>(
    subscription: &mut Option<DurableSubscription<S>>,
) -> Result<Vec<mmonboard_eventlog::RecordedEvent>, ProcessError> {
    match subscription {
        Some(subscription) => Ok(subscription.next_batch().await?),
        None => std::future::pending().await,
    }
}

fn lease_delta(duration: Duration) -> TimeDelta {
    TimeDelta::from_std(duration).unwrap_or(TimeDelta::MAX)
}
