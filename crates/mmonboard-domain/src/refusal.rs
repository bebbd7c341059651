//! Typed refusals: a command the domain turns down is a value naming the state it met and the rule it broke,
//! with a stable machine code. Refusals are not errors of the system; infrastructure failures live elsewhere.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::aggregate::Phase;
use crate::eligibility::{PortfolioIneligibility, WabaIneligibility};
use crate::facts::PortfolioRole;
use crate::ids::{TemplateId, WabaId};

/// The rule a refused command broke.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum Rule {
    #[error("onboarding has not been started for this portfolio")]
    NotStarted,
    #[error("onboarding was already started")]
    AlreadyStarted,
    #[error("the portfolio's onboarding was offboarded; nothing more can happen to it")]
    AlreadyOffboarded,
    #[error("{command} is not allowed while {phase}; {expected}")]
    NotAllowedNow {
        command: &'static str,
        phase: Phase,
        expected: &'static str,
    },
    #[error(
        "the decision time {} is before the last recorded event at {}",
        rfc3339(now),
        rfc3339(last_event_at)
    )]
    TimeBeforeLastEvent {
        now: DateTime<Utc>,
        last_event_at: DateTime<Utc>,
    },
    #[error("terms can only be accepted by a portfolio admin (the person's role is {role})")]
    TermsRequireAdmin { role: PortfolioRole },
    #[error("the terms request was already recorded")]
    TermsAlreadyRequested,
    #[error("portfolio still contains OBO WABA {waba_id}: migrate it to a shared WABA first")]
    PortfolioStillContainsObo { waba_id: WabaId },
    #[error("WABA {waba_id} is not part of the portfolio's last eligibility check")]
    UnknownWaba { waba_id: WabaId },
    #[error("WABA {waba_id} is not an OBO WABA awaiting migration")]
    NotAwaitingMigration { waba_id: WabaId },
    #[error("the OBO migration of WABA {waba_id} was already requested")]
    MigrationAlreadyRequested { waba_id: WabaId },
    #[error("the OBO migration of WABA {waba_id} was not requested yet")]
    MigrationNotRequested { waba_id: WabaId },
    #[error("the eligibility facts name WABA {waba_id} more than once")]
    DuplicateWabaInFacts { waba_id: WabaId },
    #[error("no mirrored ad account given for eligible WABA {waba_id}")]
    MissingAdAccount { waba_id: WabaId },
    #[error(
        "an ad account was given for WABA {waba_id}, which is not an eligible WABA of the portfolio"
    )]
    UnexpectedAdAccount { waba_id: WabaId },
    #[error("more than one ad account was given for WABA {waba_id}")]
    DuplicateAdAccount { waba_id: WabaId },
    #[error(
        "sync cannot complete before {window_minutes} minutes after the config sync started (earliest {})",
        rfc3339(earliest)
    )]
    ConfigSyncWindowOpen {
        window_minutes: i64,
        earliest: DateTime<Utc>,
    },
    #[error("WABA {waba_id} is not onboarded to the MM API")]
    WabaNotOnboarded { waba_id: WabaId },
    #[error("WABA {waba_id} is suspended")]
    WabaSuspended { waba_id: WabaId },
    #[error("WABA {waba_id} is not suspended")]
    WabaNotSuspended { waba_id: WabaId },
    #[error("WABA {waba_id} was offboarded from the MM API")]
    WabaOffboarded { waba_id: WabaId },
    #[error("WABA {waba_id} is still not eligible: {}", join(reasons))]
    WabaStillIneligible {
        waba_id: WabaId,
        reasons: Vec<WabaIneligibility>,
    },
    #[error("template {template_id} is not known for WABA {waba_id}")]
    UnknownTemplate {
        waba_id: WabaId,
        template_id: TemplateId,
    },
    #[error("template {template_id} belongs to WABA {owner}, not {waba_id}")]
    TemplateOfAnotherWaba {
        waba_id: WabaId,
        template_id: TemplateId,
        owner: WabaId,
    },
    #[error("template {template_id}'s latest category is not MARKETING")]
    TemplateNotMarketing { template_id: TemplateId },
    #[error(
        "template {template_id}'s mirror cannot be relied on before {} (its sync window after the latest change)",
        rfc3339(earliest)
    )]
    TemplateSyncWindowOpen {
        template_id: TemplateId,
        earliest: DateTime<Utc>,
    },
    #[error("template {template_id}'s mirror is already synced")]
    TemplateAlreadySynced { template_id: TemplateId },
    #[error("the portfolio is not eligible: {}", join(reasons))]
    PortfolioIneligible {
        reasons: Vec<PortfolioIneligibility>,
    },
}

fn rfc3339(time: &DateTime<Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn join<T: std::fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl Rule {
    /// A stable machine code (snake_case), for HTTP bodies, exit messages and scripts.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotStarted => "not_started",
            Self::AlreadyStarted => "already_started",
            Self::AlreadyOffboarded => "already_offboarded",
            Self::NotAllowedNow { .. } => "not_allowed_now",
            Self::TimeBeforeLastEvent { .. } => "time_before_last_event",
            Self::TermsRequireAdmin { .. } => "terms_require_admin",
            Self::TermsAlreadyRequested => "terms_already_requested",
            Self::PortfolioStillContainsObo { .. } => "portfolio_still_contains_obo",
            Self::UnknownWaba { .. } => "unknown_waba",
            Self::NotAwaitingMigration { .. } => "not_awaiting_migration",
            Self::MigrationAlreadyRequested { .. } => "migration_already_requested",
            Self::MigrationNotRequested { .. } => "migration_not_requested",
            Self::DuplicateWabaInFacts { .. } => "duplicate_waba_in_facts",
            Self::MissingAdAccount { .. } => "missing_ad_account",
            Self::UnexpectedAdAccount { .. } => "unexpected_ad_account",
            Self::DuplicateAdAccount { .. } => "duplicate_ad_account",
            Self::ConfigSyncWindowOpen { .. } => "config_sync_window_open",
            Self::WabaNotOnboarded { .. } => "waba_not_onboarded",
            Self::WabaSuspended { .. } => "waba_suspended",
            Self::WabaNotSuspended { .. } => "waba_not_suspended",
            Self::WabaOffboarded { .. } => "waba_offboarded",
            Self::WabaStillIneligible { .. } => "waba_still_ineligible",
            Self::UnknownTemplate { .. } => "unknown_template",
            Self::TemplateOfAnotherWaba { .. } => "template_of_another_waba",
            Self::TemplateNotMarketing { .. } => "template_not_marketing",
            Self::TemplateSyncWindowOpen { .. } => "template_sync_window_open",
            Self::TemplateAlreadySynced { .. } => "template_already_synced",
            Self::PortfolioIneligible { .. } => "portfolio_ineligible",
        }
    }

    /// Whether the command was refused because of where the onboarding stands (it may be right later, or
    /// was right earlier: HTTP 409), rather than because of what it says (wrong whatever the state: 422).
    /// Exhaustive, so a new rule must be placed on one side.
    pub fn is_conflict(&self) -> bool {
        match self {
            Self::NotStarted
            | Self::AlreadyStarted
            | Self::AlreadyOffboarded
            | Self::NotAllowedNow { .. }
            | Self::TimeBeforeLastEvent { .. }
            | Self::PortfolioStillContainsObo { .. }
            | Self::PortfolioIneligible { .. }
            | Self::ConfigSyncWindowOpen { .. }
            | Self::TemplateSyncWindowOpen { .. }
            | Self::MigrationAlreadyRequested { .. }
            | Self::MigrationNotRequested { .. }
            | Self::TemplateAlreadySynced { .. }
            | Self::WabaSuspended { .. }
            | Self::WabaNotSuspended { .. }
            | Self::WabaOffboarded { .. }
            | Self::WabaNotOnboarded { .. } => true,
            Self::TermsRequireAdmin { .. }
            | Self::TermsAlreadyRequested
            | Self::UnknownWaba { .. }
            | Self::NotAwaitingMigration { .. }
            | Self::DuplicateWabaInFacts { .. }
            | Self::MissingAdAccount { .. }
            | Self::UnexpectedAdAccount { .. }
            | Self::DuplicateAdAccount { .. }
            | Self::WabaStillIneligible { .. }
            | Self::UnknownTemplate { .. }
            | Self::TemplateOfAnotherWaba { .. }
            | Self::TemplateNotMarketing { .. } => false,
        }
    }
}

/// A refused command: the state it met and the rule it broke.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("refused in state {phase}: {rule}")]
pub struct Refusal {
    pub phase: Phase,
    pub rule: Rule,
}

impl Refusal {
    pub fn code(&self) -> &'static str {
        self.rule.code()
    }
}
