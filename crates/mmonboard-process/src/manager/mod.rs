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

mod record;
mod role;
mod schedule;
mod steps;

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use mmonboard_app::codec::portfolio_of;
use mmonboard_app::{Clock, OnboardingService, SystemClock};
use mmonboard_domain::DomainConfig;
use mmonboard_domain::ids::PortfolioId;
use mmonboard_eventlog::{Checkpoints, EventStore, HeadWatch, SubscriptionOptions};
use mmonboard_meta::MetaGateway;

pub use role::{ProcessRole, RoleWatch};
use role::{StoppedOnDrop, Tenure, next_batch};

use crate::ProcessError;
use crate::lease::{Lease, LeaseOptions};
use crate::plan::ProcessConfig;
use crate::timers::TimerStore;

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
    running: AtomicBool,
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
            running: AtomicBool::new(false),
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
        let mut tenure = Tenure::standing_by();
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
}
