//! The timer bookkeeping of one pass over a portfolio's plan: which planned steps are due, what a step's timer
//! says after each attempt (Meta answered "not yet", Meta failed: back off, a write's intent), and when a step
//! that keeps failing or waiting is recorded as stalled. What a step asks of Meta is in `steps.rs`.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, TimeDelta, Utc};
use mmonboard_app::Clock;
use mmonboard_domain::ids::{PortfolioId, Reason, StepName};
use mmonboard_domain::{Aggregate, OnboardingCommand};
use mmonboard_eventlog::{EventStore, HeadWatch};
use mmonboard_meta::{MetaError, MetaGateway};

use super::ProcessManager;
use super::steps::{Ask, Asked, Outcome};
use crate::ProcessError;
use crate::plan::{Step, plan};
use crate::timers::Timer;

impl<S, C, G> ProcessManager<S, C, G>
where
    S: EventStore + HeadWatch + Clone,
    C: Clock + Clone,
    G: MetaGateway,
{
    /// One pass over the plan; true when something was recorded (the state changed: plan again).
    pub(super) async fn step_once(&self, aggregate: &Aggregate) -> Result<bool, ProcessError> {
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
            if self
                .take_step(aggregate, &item.step, &key, existing, now, failures)
                .await?
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Take one due step: ask Meta, then record its commands or keep its timer; true when the state changed.
    /// Traced as `process_step`: the Meta calls and the command it records are its children.
    #[tracing::instrument(
        name = "process_step",
        skip_all,
        fields(portfolio_id = %aggregate.portfolio_id(), step = %key)
    )]
    async fn take_step(
        &self,
        aggregate: &Aggregate,
        step: &Step,
        key: &str,
        existing: Option<&Timer>,
        now: DateTime<Utc>,
        failures: u32,
    ) -> Result<bool, ProcessError> {
        let portfolio_id = aggregate.portfolio_id();
        match self.perform(aggregate, step, failures).await {
            Ok(Outcome::Record(commands)) => {
                let recorded = self.record(aggregate, key, &commands).await?;
                if recorded {
                    self.timers.remove(portfolio_id, key).await?;
                    return Ok(true);
                }
                // Refused: the state moved under the step (a webhook, an operator). Look again later.
                self.set_timer(portfolio_id, key, now + self.config.poll_interval, 0, None)
                    .await?;
            }
            Ok(Outcome::NotYet(wait, reported)) => {
                let timer = waiting(portfolio_id, key, existing, now, wait, reported);
                if self.keep_waiting(aggregate, step, timer, now).await? {
                    return Ok(true);
                }
            }
            Err(error) => {
                if self
                    .keep_failing(aggregate, step, existing, now, failures, &error)
                    .await?
                {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// Keep a waiting step's timer. Meta answers, but never gets there: as visible as a failure, once the wait
    /// is longer than `max_wait`.
    async fn keep_waiting(
        &self,
        aggregate: &Aggregate,
        step: &Step,
        timer: Timer,
        now: DateTime<Utc>,
    ) -> Result<bool, ProcessError> {
        let since = timer.waiting_since.unwrap_or(now);
        let stalled = now - since >= self.config.max_wait;
        let text = format!(
            "still waiting after {} minutes: {}",
            (now - since).num_minutes(),
            timer.last_error.as_deref().unwrap_or_default()
        );
        let polls = timer.polls;
        self.keep_timer(aggregate, step, timer, stalled, polls, &text)
            .await
    }

    /// Back off after Meta failed the step, and record a stall after `stall_after` failures in a row.
    async fn keep_failing(
        &self,
        aggregate: &Aggregate,
        step: &Step,
        existing: Option<&Timer>,
        now: DateTime<Utc>,
        failures: u32,
        error: &MetaError,
    ) -> Result<bool, ProcessError> {
        let portfolio_id = aggregate.portfolio_id();
        let key = step.key();
        let attempts = failures.saturating_add(1);
        let wait = self.config.backoff(attempts);
        tracing::warn!(%portfolio_id, step = %key, attempts, %error, retry_in_s = wait.num_seconds(), "Meta failed a step");
        let timer = Timer {
            portfolio_id: portfolio_id.clone(),
            step_key: key,
            due_at: now + wait,
            attempts,
            last_error: Some(error.to_string()),
            waiting_since: None,
            polls: 0,
            stall_recorded: existing.is_some_and(|timer| timer.stall_recorded),
        };
        let stalled = attempts >= self.config.stall_after;
        self.keep_timer(
            aggregate,
            step,
            timer,
            stalled,
            attempts,
            &error.to_string(),
        )
        .await
    }

    /// Ask Meta what the step needs (`steps.rs`). A write whose intent must be durable first gets it here, in
    /// the step's timer, before it is sent: the timer a failure of this attempt would leave, with the intent as
    /// its error.
    async fn perform(
        &self,
        aggregate: &Aggregate,
        step: &Step,
        failures: u32,
    ) -> Result<Outcome, MetaError> {
        let ask = Ask {
            gateway: self.gateway.as_ref(),
            config: &self.config,
            domain: &self.domain,
        };
        match ask.step(aggregate, step, failures).await? {
            Asked::Done(outcome) => Ok(outcome),
            Asked::MustWrite(write) => {
                let portfolio_id = aggregate.portfolio_id();
                self.set_timer(
                    portfolio_id,
                    &step.key(),
                    self.clock.now() + self.config.backoff(failures + 1),
                    failures + 1,
                    Some(write.intent().into()),
                )
                .await
                .map_err(|error| MetaError::Transport {
                    operation: write.operation().into(),
                    message: error.to_string(),
                })?;
                ask.send(portfolio_id, write).await
            }
        }
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
}

/// The step's timer after Meta answered, but not what the step needs: look again after `wait`.
fn waiting(
    portfolio_id: &PortfolioId,
    key: &str,
    existing: Option<&Timer>,
    now: DateTime<Utc>,
    wait: TimeDelta,
    reported: String,
) -> Timer {
    Timer {
        portfolio_id: portfolio_id.clone(),
        step_key: key.to_owned(),
        due_at: now + wait,
        attempts: 0,
        last_error: Some(reported),
        waiting_since: Some(
            existing
                .and_then(|timer| timer.waiting_since)
                .unwrap_or(now),
        ),
        polls: existing.map_or(0, |timer| timer.polls).saturating_add(1),
        stall_recorded: existing.is_some_and(|timer| timer.stall_recorded),
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
