//! The state machine's transitions as data, for pictures and documentation: which event takes a portfolio from
//! which phase to which. The machine in `machine.rs` is what folds events; this table describes it, and the
//! domain's tests hold the two together (every edge here is taken by the real machine, and every phase change
//! the machine makes in the model-based runs is an edge here). Edges from a superstate are kept as such, the way
//! the machine declares them, so a picture can draw them from the stage rather than from each phase.

use crate::aggregate::{Phase, Stage};
use crate::event::type_names;

impl Phase {
    /// Every phase, in the order a portfolio usually meets them.
    pub const ALL: [Phase; 12] = [
        Phase::NotStarted,
        Phase::CheckingEligibility,
        Phase::Ineligible,
        Phase::MigratingObo,
        Phase::ReviewingPermissions,
        Phase::EnteringBusinessInfo,
        Phase::TermsPending,
        Phase::Connecting,
        Phase::Connected,
        Phase::SyncingConfig,
        Phase::Live,
        Phase::Offboarded,
    ];
}

impl Stage {
    /// Every stage, in the order of the phases they hold.
    pub const ALL: [Stage; 5] = [
        Stage::NotStarted,
        Stage::Preparing,
        Stage::AwaitingTerms,
        Stage::Enabled,
        Stage::Offboarded,
    ];

    /// The phases of this stage, in `Phase::ALL`'s order.
    pub fn phases(self) -> impl Iterator<Item = Phase> {
        Phase::ALL
            .into_iter()
            .filter(move |phase| phase.stage() == self)
    }
}

/// Where an edge starts: one phase, or any phase of the given stages (a superstate's handler).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Phase(Phase),
    Stages(&'static [Stage]),
}

impl Source {
    /// The phases the edge can start from.
    pub fn phases(self) -> Vec<Phase> {
        match self {
            Self::Phase(phase) => vec![phase],
            Self::Stages(stages) => Phase::ALL
                .into_iter()
                .filter(|phase| stages.contains(&phase.stage()))
                .collect(),
        }
    }
}

/// One transition of the machine: `event` (a stored event type name) moves a portfolio from `source` to `to`.
/// A superstate edge does not include a phase's "transition" to itself (re-checking eligibility of an
/// ineligible portfolio that stays ineligible changes no phase).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edge {
    pub source: Source,
    pub event: &'static str,
    pub to: Phase,
}

/// A transition between two distinct phases, as the machine takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Transition {
    pub from: Phase,
    pub event: &'static str,
    pub to: Phase,
}

/// The stages an onboarding is in progress in: started, not offboarded (the machine's `in_progress`).
pub const IN_PROGRESS: &[Stage] = &[Stage::Preparing, Stage::AwaitingTerms, Stage::Enabled];

const PREPARING: &[Stage] = &[Stage::Preparing];

/// Every edge of the machine, in the order `machine.rs` declares its handlers.
pub const EDGES: &[Edge] = &[
    Edge {
        source: Source::Phase(Phase::NotStarted),
        event: type_names::ONBOARDING_STARTED,
        to: Phase::CheckingEligibility,
    },
    Edge {
        source: Source::Phase(Phase::MigratingObo),
        event: type_names::OBO_WABA_MIGRATED,
        to: Phase::ReviewingPermissions,
    },
    Edge {
        source: Source::Phase(Phase::ReviewingPermissions),
        event: type_names::PERMISSIONS_REVIEWED,
        to: Phase::EnteringBusinessInfo,
    },
    Edge {
        source: Source::Phase(Phase::EnteringBusinessInfo),
        event: type_names::BUSINESS_INFORMATION_SUBMITTED,
        to: Phase::TermsPending,
    },
    Edge {
        source: Source::Stages(PREPARING),
        event: type_names::ELIGIBILITY_CHECKED,
        to: Phase::Ineligible,
    },
    Edge {
        source: Source::Stages(PREPARING),
        event: type_names::ELIGIBILITY_CHECKED,
        to: Phase::MigratingObo,
    },
    Edge {
        source: Source::Stages(PREPARING),
        event: type_names::ELIGIBILITY_CHECKED,
        to: Phase::ReviewingPermissions,
    },
    Edge {
        source: Source::Phase(Phase::TermsPending),
        event: type_names::TERMS_ACCEPTED,
        to: Phase::Connecting,
    },
    Edge {
        source: Source::Phase(Phase::TermsPending),
        event: type_names::TERMS_SIGNED,
        to: Phase::Connecting,
    },
    Edge {
        source: Source::Phase(Phase::Connecting),
        event: type_names::CONNECTED,
        to: Phase::Connected,
    },
    Edge {
        source: Source::Phase(Phase::Connected),
        event: type_names::CONFIG_SYNC_STARTED,
        to: Phase::SyncingConfig,
    },
    Edge {
        source: Source::Phase(Phase::SyncingConfig),
        event: type_names::SYNC_COMPLETED,
        to: Phase::Live,
    },
    Edge {
        source: Source::Stages(IN_PROGRESS),
        event: type_names::ONBOARDING_OFFBOARDED,
        to: Phase::Offboarded,
    },
];

impl Edge {
    /// The phase-to-phase transitions this edge stands for.
    pub fn transitions(&self) -> impl Iterator<Item = Transition> + '_ {
        self.source
            .phases()
            .into_iter()
            .filter(|from| *from != self.to)
            .map(|from| Transition {
                from,
                event: self.event,
                to: self.to,
            })
    }
}

/// Every phase-to-phase transition of the machine, sorted.
pub fn transitions() -> Vec<Transition> {
    let mut all: Vec<Transition> = EDGES.iter().flat_map(Edge::transitions).collect();
    all.sort();
    all.dedup();
    all
}

/// Whether the machine moves from `from` to `to` on `event` (a stored type name).
pub fn is_transition(from: Phase, event: &str, to: Phase) -> bool {
    EDGES
        .iter()
        .any(|edge| edge.event == event && edge.to == to && edge.source.phases().contains(&from))
        && from != to
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_phase_is_listed_once_and_every_stage_holds_its_phases() {
        let mut phases = Phase::ALL.to_vec();
        phases.sort_by_key(|phase| phase.as_str());
        phases.dedup();
        assert_eq!(phases.len(), Phase::ALL.len());
        let staged: usize = Stage::ALL.iter().map(|stage| stage.phases().count()).sum();
        assert_eq!(staged, Phase::ALL.len());
    }

    #[test]
    fn every_edge_names_a_stored_event_type_and_every_phase_is_reachable_but_the_first() {
        for edge in EDGES {
            assert!(
                crate::event::ALL_TYPE_NAMES.contains(&edge.event),
                "{edge:?}"
            );
        }
        for phase in Phase::ALL.into_iter().skip(1) {
            assert!(
                transitions()
                    .iter()
                    .any(|transition| transition.to == phase),
                "nothing leads to {phase}"
            );
        }
    }

    #[test]
    fn a_superstate_edge_leaves_out_the_phase_it_leads_to() {
        assert!(is_transition(
            Phase::EnteringBusinessInfo,
            type_names::ELIGIBILITY_CHECKED,
            Phase::Ineligible
        ));
        assert!(!is_transition(
            Phase::Ineligible,
            type_names::ELIGIBILITY_CHECKED,
            Phase::Ineligible
        ));
        assert!(!is_transition(
            Phase::TermsPending,
            type_names::ELIGIBILITY_CHECKED,
            Phase::Ineligible
        ));
        assert!(!is_transition(
            Phase::NotStarted,
            type_names::ONBOARDING_OFFBOARDED,
            Phase::Offboarded
        ));
    }
}
