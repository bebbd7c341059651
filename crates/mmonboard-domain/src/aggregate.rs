//! The aggregate: one portfolio's statig machine plus the stream version, kept outside the machine's storage
//! (statig only lets handlers mutate it). State is only ever the fold of the events: `replay` and `apply` are
//! the sole ways to change it, and a log the machine cannot explain is refused loudly as corruption.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use statig::blocking::{InitializedStateMachine, IntoStateMachineExt};

use crate::event::OnboardingEvent;
use crate::ids::PortfolioId;
use crate::machine::{Onboarding, StallRecord, State};

/// The leaf state, as the outside world names it. Ordered as declared (a portfolio's usual course).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    NotStarted,
    CheckingEligibility,
    Ineligible,
    MigratingObo,
    ReviewingPermissions,
    EnteringBusinessInfo,
    TermsPending,
    Connecting,
    Connected,
    SyncingConfig,
    Live,
    Offboarded,
}

/// The superstate a phase belongs to.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    NotStarted,
    Preparing,
    AwaitingTerms,
    Enabled,
    Offboarded,
}

impl Stage {
    /// The name the API and the CLI show (the serialised form).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotStarted => "not_started",
            Self::Preparing => "preparing",
            Self::AwaitingTerms => "awaiting_terms",
            Self::Enabled => "enabled",
            Self::Offboarded => "offboarded",
        }
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotStarted => "not_started",
            Self::CheckingEligibility => "checking_eligibility",
            Self::Ineligible => "ineligible",
            Self::MigratingObo => "migrating_obo",
            Self::ReviewingPermissions => "reviewing_permissions",
            Self::EnteringBusinessInfo => "entering_business_info",
            Self::TermsPending => "terms_pending",
            Self::Connecting => "connecting",
            Self::Connected => "connected",
            Self::SyncingConfig => "syncing_config",
            Self::Live => "live",
            Self::Offboarded => "offboarded",
        }
    }

    pub fn stage(self) -> Stage {
        match self {
            Self::NotStarted => Stage::NotStarted,
            Self::CheckingEligibility
            | Self::Ineligible
            | Self::MigratingObo
            | Self::ReviewingPermissions
            | Self::EnteringBusinessInfo => Stage::Preparing,
            Self::TermsPending | Self::Connecting => Stage::AwaitingTerms,
            Self::Connected | Self::SyncingConfig | Self::Live => Stage::Enabled,
            Self::Offboarded => Stage::Offboarded,
        }
    }

    /// The next step the onboarding waits for, in words, for status screens.
    pub fn next_action(self) -> &'static str {
        match self {
            Self::NotStarted => "start the onboarding",
            Self::CheckingEligibility => "check eligibility with Meta",
            Self::Ineligible => "resolve the ineligibility reasons, then check eligibility again",
            Self::MigratingObo => "migrate each OBO WABA to a shared WABA",
            Self::ReviewingPermissions => {
                "review the benefits and the permissions granted to the provider"
            }
            Self::EnteringBusinessInfo => "enter the business name and website",
            Self::TermsPending => "a portfolio admin accepts the Marketing Messages API terms",
            Self::Connecting => {
                "wait for Meta to connect the portfolio and create the mirrored ad accounts"
            }
            Self::Connected => "start the configuration sync",
            Self::SyncingConfig => {
                "wait for the configuration sync window to end, then complete the sync"
            }
            Self::Live => "none: marketing traffic uses the MM API where possible",
            Self::Offboarded => "none: the onboarding was offboarded",
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

fn phase_of(state: &State) -> Phase {
    match state {
        State::NotStarted {} => Phase::NotStarted,
        State::CheckingEligibility {} => Phase::CheckingEligibility,
        State::Ineligible {} => Phase::Ineligible,
        State::MigratingObo {} => Phase::MigratingObo,
        State::ReviewingPermissions {} => Phase::ReviewingPermissions,
        State::EnteringBusinessInfo {} => Phase::EnteringBusinessInfo,
        State::TermsPending {} => Phase::TermsPending,
        State::Connecting {} => Phase::Connecting,
        State::Connected {} => Phase::Connected,
        State::SyncingConfig {} => Phase::SyncingConfig,
        State::Live {} => Phase::Live,
        State::Offboarded {} => Phase::Offboarded,
    }
}

/// A stored history the machine cannot explain: corruption, or a log written by a different machine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    #[error("event {event_type} at stream version {version} is not possible in state {phase}")]
    Unexplained {
        version: u64,
        event_type: &'static str,
        phase: Phase,
    },
    #[error(
        "event {event_type} at stream version {version} belongs to portfolio {found}, not {expected}"
    )]
    WrongPortfolio {
        version: u64,
        event_type: &'static str,
        expected: PortfolioId,
        found: PortfolioId,
    },
}

/// One portfolio's onboarding: the machine and how many events it has folded.
#[derive(Clone)]
pub struct Aggregate {
    portfolio_id: PortfolioId,
    machine: InitializedStateMachine<Onboarding>,
    version: u64,
    last_event_at: Option<DateTime<Utc>>,
    /// Set by a `process_stalled` event, cleared by any later one.
    stall: Option<StallRecord>,
}

impl Aggregate {
    /// A portfolio with no history.
    pub fn new(portfolio_id: PortfolioId) -> Self {
        Self {
            portfolio_id,
            machine: Onboarding::default().uninitialized_state_machine().init(),
            version: 0,
            last_event_at: None,
            stall: None,
        }
    }

    /// Fold a whole history, in stream order.
    pub fn replay<'a>(
        portfolio_id: PortfolioId,
        events: impl IntoIterator<Item = &'a OnboardingEvent>,
    ) -> Result<Self, ReplayError> {
        let mut aggregate = Self::new(portfolio_id);
        for event in events {
            aggregate.apply(event)?;
        }
        Ok(aggregate)
    }

    /// Fold one event. On error the aggregate must be discarded: the log does not fit the machine.
    pub fn apply(&mut self, event: &OnboardingEvent) -> Result<(), ReplayError> {
        let version = self.version + 1;
        if let OnboardingEvent::OnboardingStarted(started) = event
            && started.portfolio_id != self.portfolio_id
        {
            return Err(ReplayError::WrongPortfolio {
                version,
                event_type: event.type_name(),
                expected: self.portfolio_id.clone(),
                found: started.portfolio_id.clone(),
            });
        }
        let phase = self.phase();
        let unexplained_before = self.machine.unexplained_events;
        self.machine.handle(event);
        if self.machine.unexplained_events != unexplained_before {
            return Err(ReplayError::Unexplained {
                version,
                event_type: event.type_name(),
                phase,
            });
        }
        self.version = version;
        self.stall = match event {
            OnboardingEvent::ProcessStalled(stalled) => Some(StallRecord {
                step: stalled.step.clone(),
                attempts: stalled.attempts,
                error: stalled.error.clone(),
                at: stalled.at,
            }),
            _ => None,
        };
        self.last_event_at = Some(
            self.last_event_at
                .map_or(event.at(), |last| last.max(event.at())),
        );
        Ok(())
    }

    pub fn portfolio_id(&self) -> &PortfolioId {
        &self.portfolio_id
    }

    /// How many events have been folded: the stream version a new append expects.
    pub fn version(&self) -> u64 {
        self.version
    }

    pub fn phase(&self) -> Phase {
        phase_of(self.machine.state())
    }

    /// Everything the fold knows beyond the phase.
    pub fn data(&self) -> &Onboarding {
        &self.machine
    }

    pub fn last_event_at(&self) -> Option<DateTime<Utc>> {
        self.last_event_at
    }

    /// The step Meta keeps failing, when the portfolio's latest event says so.
    pub fn stall(&self) -> Option<&StallRecord> {
        self.stall.as_ref()
    }

    /// What a stored snapshot holds beyond the id and version (`snapshot.rs`).
    pub(crate) fn parts(
        &self,
    ) -> (
        &InitializedStateMachine<Onboarding>,
        Option<DateTime<Utc>>,
        Option<&StallRecord>,
    ) {
        (&self.machine, self.last_event_at, self.stall.as_ref())
    }

    /// An aggregate restored from a snapshot (`snapshot.rs`), which only a fold of the same build wrote.
    pub(crate) fn restore(
        portfolio_id: PortfolioId,
        machine: InitializedStateMachine<Onboarding>,
        version: u64,
        last_event_at: Option<DateTime<Utc>>,
        stall: Option<StallRecord>,
    ) -> Self {
        Self {
            portfolio_id,
            machine,
            version,
            last_event_at,
            stall,
        }
    }

    /// A serialisable snapshot for people and tools.
    pub fn view(&self) -> StateView<'_> {
        let phase = self.phase();
        StateView {
            portfolio_id: &self.portfolio_id,
            version: self.version,
            phase,
            stage: phase.stage(),
            next_action: phase.next_action(),
            last_event_at: self.last_event_at,
            stall: self.stall.as_ref(),
            data: &self.machine,
        }
    }
}

impl PartialEq for Aggregate {
    fn eq(&self, other: &Self) -> bool {
        self.portfolio_id == other.portfolio_id
            && self.version == other.version
            && self.last_event_at == other.last_event_at
            && self.stall == other.stall
            && self.machine.state() == other.machine.state()
            && *self.machine == *other.machine
    }
}

impl Eq for Aggregate {}

impl std::fmt::Debug for Aggregate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Aggregate")
            .field("portfolio_id", &self.portfolio_id)
            .field("version", &self.version)
            .field("phase", &self.phase())
            .field("data", &*self.machine)
            .finish()
    }
}

#[derive(Debug, Serialize)]
pub struct StateView<'a> {
    pub portfolio_id: &'a PortfolioId,
    pub version: u64,
    pub phase: Phase,
    pub stage: Stage,
    pub next_action: &'static str,
    pub last_event_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stall: Option<&'a StallRecord>,
    #[serde(flatten)]
    pub data: &'a Onboarding,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_are_shown_as_they_are_serialised() {
        for stage in [
            Stage::NotStarted,
            Stage::Preparing,
            Stage::AwaitingTerms,
            Stage::Enabled,
            Stage::Offboarded,
        ] {
            assert_eq!(
                serde_json::to_value(stage).ok(),
                Some(serde_json::Value::from(stage.to_string()))
            );
        }
    }
}
