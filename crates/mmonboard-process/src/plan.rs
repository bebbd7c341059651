//! What a portfolio waits for, read off its folded state: a pure function, so the process manager keeps no
//! state of its own beyond its timers and can be restarted, or run twice, without losing or repeating a step.

use backon::{BackoffBuilder, ExponentialBuilder};
use chrono::{DateTime, TimeDelta, Utc};
use mmonboard_domain::facts::TemplateCategory;
use mmonboard_domain::ids::{TemplateId, WabaId};
use mmonboard_domain::machine::{OboMigration, WabaRouting};
use mmonboard_domain::{Aggregate, Phase};

/// How long the process manager waits between looks at Meta, on its clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessConfig {
    /// Between two looks at something Meta does on its own time (an OBO transfer, the ad accounts, the WABAs
    /// reported onboarded, a template's mirrored ad).
    pub poll_interval: TimeDelta,
    /// Between two reads of the portfolio's terms status while waiting for the `MM_LITE_TERMS_SIGNED` webhook
    /// (a safety net for a webhook that never comes).
    pub terms_poll_interval: TimeDelta,
    /// Between two eligibility re-checks of a suspended WABA.
    pub recheck_interval: TimeDelta,
    /// The first wait after Meta fails a step; doubled on each further failure up to `max_backoff`.
    pub initial_backoff: TimeDelta,
    pub max_backoff: TimeDelta,
    /// After this many consecutive failures of one step, the stall is recorded in the portfolio's log.
    pub stall_after: u32,
    /// A step that has waited this long for Meta to get somewhere (Meta answers, but not what the step needs)
    /// is recorded as stalled too, with what Meta last reported.
    pub max_wait: TimeDelta,
}

impl Default for ProcessConfig {
    fn default() -> Self {
        Self {
            poll_interval: TimeDelta::minutes(1),
            terms_poll_interval: TimeDelta::minutes(10),
            recheck_interval: TimeDelta::minutes(10),
            initial_backoff: TimeDelta::seconds(30),
            max_backoff: TimeDelta::minutes(10),
            stall_after: 5,
            max_wait: TimeDelta::hours(24),
        }
    }
}

impl ProcessConfig {
    /// The wait after the `attempts`-th consecutive failure (1-based), in whole milliseconds.
    ///
    /// A computed delay rather than backon's retry loop: the manager's retries outlive its process (the wait
    /// is a durable timer, the count is the timer's `attempts`), so the n-th delay of backon's exponential
    /// schedule is taken, not slept. Without jitter: one manager takes due steps one after another, so
    /// portfolios failed together are not retried all at once anyway, and a delay that is a function of the
    /// count keeps the timers exact on an injected clock.
    pub fn backoff(&self, attempts: u32) -> TimeDelta {
        let as_std = |delta: TimeDelta| delta.to_std().unwrap_or_default();
        let wait = ExponentialBuilder::default()
            .with_min_delay(as_std(self.initial_backoff))
            .with_max_delay(as_std(self.max_backoff))
            .without_max_times()
            .build()
            .nth(attempts.clamp(1, 32) as usize - 1)
            .unwrap_or_default();
        let millis = i64::try_from(wait.as_millis()).unwrap_or(i64::MAX);
        TimeDelta::try_milliseconds(millis)
            .unwrap_or(TimeDelta::MAX)
            .min(self.max_backoff)
    }
}

/// One step the process manager takes for a portfolio.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Read the portfolio and its WABAs from Meta and record the eligibility check.
    CheckEligibility,
    /// Ask Meta to transfer an OBO WABA to shared (`set_obo_mobility_intent`), unless it already was.
    RequestOboTransfer(WabaId),
    /// See whether Meta completed a requested OBO transfer.
    AwaitOboTransfer(WabaId),
    /// Send the terms request (Intent API), unless Meta shows one already out.
    RequestTerms,
    /// Read the portfolio's terms status, in case the signed webhook never comes.
    AwaitTermsSigned,
    /// Read the mirrored ad account of each eligible WABA and connect once all exist.
    Connect,
    /// Record the templates Meta has for the onboarded WABAs, then start the configuration sync window.
    StartConfigSync,
    /// After the window, complete the sync once Meta reports every onboarded WABA `ONBOARDED`.
    CompleteSync,
    /// After its window, record a marketing template's mirror synced once Meta shows its ad.
    SyncTemplateMirror {
        waba_id: WabaId,
        template_id: TemplateId,
    },
    /// Re-check a suspended WABA's eligibility and reinstate it if it passes.
    RecheckSuspendedWaba(WabaId),
}

impl Step {
    /// The step's name in the log's stall records and in the timers table.
    pub fn name(&self) -> &'static str {
        match self {
            Self::CheckEligibility => "check_eligibility",
            Self::RequestOboTransfer(_) => "request_obo_transfer",
            Self::AwaitOboTransfer(_) => "await_obo_transfer",
            Self::RequestTerms => "request_terms",
            Self::AwaitTermsSigned => "await_terms_signed",
            Self::Connect => "connect",
            Self::StartConfigSync => "start_config_sync",
            Self::CompleteSync => "complete_sync",
            Self::SyncTemplateMirror { .. } => "sync_template_mirror",
            Self::RecheckSuspendedWaba(_) => "recheck_suspended_waba",
        }
    }

    /// Unique per portfolio: a step and what it is about.
    pub fn key(&self) -> String {
        match self {
            Self::RequestOboTransfer(waba_id)
            | Self::AwaitOboTransfer(waba_id)
            | Self::RecheckSuspendedWaba(waba_id) => format!("{}:{waba_id}", self.name()),
            Self::SyncTemplateMirror {
                waba_id,
                template_id,
            } => format!("{}:{waba_id}:{template_id}", self.name()),
            _ => self.name().to_owned(),
        }
    }
}

/// A step and the earliest time it may be taken (`None`: now).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub step: Step,
    pub not_before: Option<DateTime<Utc>>,
}

/// Everything the portfolio waits for from Meta, in the order it should be taken. Steps that wait for a person
/// (the permissions review, the business information) or that nothing can resolve (ineligible, offboarded)
/// plan nothing.
pub fn plan(aggregate: &Aggregate, config: &ProcessConfig) -> Vec<Planned> {
    let data = aggregate.data();
    let now_step = |step| Planned {
        step,
        not_before: None,
    };
    let later = |step, at| Planned {
        step,
        not_before: Some(at),
    };
    let mut planned = Vec::new();
    match aggregate.phase() {
        Phase::CheckingEligibility => planned.push(now_step(Step::CheckEligibility)),
        Phase::MigratingObo => {
            for (waba_id, record) in &data.wabas {
                match record.obo_migration {
                    OboMigration::Pending => {
                        planned.push(now_step(Step::RequestOboTransfer(waba_id.clone())))
                    }
                    OboMigration::Requested { at } => planned.push(later(
                        Step::AwaitOboTransfer(waba_id.clone()),
                        at + config.poll_interval,
                    )),
                    OboMigration::NotNeeded | OboMigration::Completed { .. } => {}
                }
            }
        }
        Phase::TermsPending => match &data.terms_request {
            None => planned.push(now_step(Step::RequestTerms)),
            Some(request) => planned.push(later(
                Step::AwaitTermsSigned,
                request.at + config.terms_poll_interval,
            )),
        },
        Phase::Connecting => planned.push(now_step(Step::Connect)),
        Phase::Connected => planned.push(now_step(Step::StartConfigSync)),
        Phase::SyncingConfig => {
            if let Some(sync) = &data.config_sync {
                planned.push(later(Step::CompleteSync, sync.window_ends_at));
            }
        }
        Phase::NotStarted
        | Phase::Ineligible
        | Phase::ReviewingPermissions
        | Phase::EnteringBusinessInfo
        | Phase::Live
        | Phase::Offboarded => {}
    }
    if aggregate.phase().stage() == mmonboard_domain::Stage::Enabled {
        for (template_id, template) in &data.templates {
            let routable = data
                .wabas
                .get(&template.waba_id)
                .is_some_and(|record| matches!(record.routing, WabaRouting::Onboarded { .. }));
            if template.category == TemplateCategory::Marketing
                && template.mirror_synced_at.is_none()
                && routable
            {
                planned.push(later(
                    Step::SyncTemplateMirror {
                        waba_id: template.waba_id.clone(),
                        template_id: template_id.clone(),
                    },
                    template.sync_window_ends_at,
                ));
            }
        }
        for (waba_id, record) in &data.wabas {
            if let WabaRouting::Suspended { at, .. } = record.routing {
                planned.push(later(
                    Step::RecheckSuspendedWaba(waba_id.clone()),
                    at + config.recheck_interval,
                ));
            }
        }
    }
    planned
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_retry_delay_doubles_from_the_first_wait_up_to_the_cap() {
        let config = ProcessConfig::default();
        let waits: Vec<i64> = (1..=8)
            .map(|attempts| config.backoff(attempts).num_seconds())
            .collect();
        assert_eq!(waits, [30, 60, 120, 240, 480, 600, 600, 600]);
        assert_eq!(config.backoff(0), TimeDelta::seconds(30), "as the first");
        assert_eq!(config.backoff(u32::MAX), TimeDelta::minutes(10));
        let odd = ProcessConfig {
            initial_backoff: TimeDelta::milliseconds(1500),
            max_backoff: TimeDelta::seconds(4),
            ..config
        };
        let waits: Vec<i64> = (1..=4)
            .map(|attempts| odd.backoff(attempts).num_milliseconds())
            .collect();
        assert_eq!(waits, [1500, 3000, 4000, 4000]);
        let inverted = ProcessConfig {
            initial_backoff: TimeDelta::minutes(20),
            ..ProcessConfig::default()
        };
        assert_eq!(
            inverted.backoff(1),
            TimeDelta::minutes(10),
            "never past the cap"
        );
    }
}
