//! The manager's role among the instances sharing a database: whether it holds the lease (`lease.rs`), and
//! so follows the log and calls Meta, or stands by. Taking the lease resumes the subscription from the shared
//! checkpoint; losing it drops the subscription and the step in flight.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use mmonboard_app::Clock;
use mmonboard_domain::ids::PortfolioId;
use mmonboard_eventlog::{DurableSubscription, EventStore, HeadWatch, RecordedEvent};
use mmonboard_meta::MetaGateway;

use super::{ProcessManager, SUBSCRIPTION};
use crate::ProcessError;

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

    pub(super) fn set(&self, role: ProcessRole) {
        self.0.store(role.to_u8(), Ordering::SeqCst);
    }
}

/// Marks the manager stopped however its run ends: returned, failed, panicked or dropped.
pub(super) struct StoppedOnDrop<'a>(pub(super) &'a RoleWatch, pub(super) &'a AtomicBool);

impl Drop for StoppedOnDrop<'_> {
    fn drop(&mut self) {
        self.0.set(ProcessRole::Stopped);
        self.1.store(false, Ordering::SeqCst);
    }
}

/// Where a running manager stands with the lease.
pub(super) struct Tenure<S> {
    /// While this instance holds the lease: its subscription, resumed from the shared checkpoint when it took
    /// the lease.
    pub(super) subscription: Option<DurableSubscription<S>>,
    /// Until when the lease is ours, as far as this instance knows (lease clock).
    held_until: DateTime<Utc>,
    /// When to renew it, or, standing by, to try for it again (lease clock).
    next_renewal: DateTime<Utc>,
}

impl<S> Tenure<S> {
    /// Not holding the lease, and due to try for it.
    pub(super) fn standing_by() -> Self {
        Self {
            subscription: None,
            held_until: DateTime::<Utc>::MIN_UTC,
            next_renewal: DateTime::<Utc>::MIN_UTC,
        }
    }
}

impl<S, C, G> ProcessManager<S, C, G>
where
    S: EventStore + HeadWatch + Clone,
    C: Clock + Clone,
    G: MetaGateway,
{
    /// Renew the lease when due (or try for it, standing by); true while this instance holds it. Taking it
    /// resumes the subscription from the shared checkpoint, where the previous holder left off.
    pub(super) async fn keep_lease(
        &self,
        tenure: &mut Tenure<S>,
        force: bool,
    ) -> Result<bool, ProcessError> {
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
    pub(super) async fn reconcile_leased(
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
}

/// The next batch of the subscription, or never while there is none (standing by).
pub(super) async fn next_batch<S: EventStore + HeadWatch + Clone>(
    subscription: &mut Option<DurableSubscription<S>>,
) -> Result<Vec<RecordedEvent>, ProcessError> {
    match subscription {
        Some(subscription) => Ok(subscription.next_batch().await?),
        None => std::future::pending().await,
    }
}

fn lease_delta(duration: Duration) -> TimeDelta {
    TimeDelta::from_std(duration).unwrap_or(TimeDelta::MAX)
}
