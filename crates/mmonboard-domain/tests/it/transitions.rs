//! The transition table (`transitions.rs`) against the real machine: every phase-to-phase transition it lists
//! is taken by decide + the statig fold, event for event. (The converse, that the machine takes no transition
//! the table lacks, is checked after every step of the model-based runs in `model.rs`.)

use mmonboard_domain::event::type_names;
use mmonboard_domain::facts::PortfolioRole;
use mmonboard_domain::ids::Reason;
use mmonboard_domain::transitions::{EDGES, Source, transitions};
use mmonboard_domain::{OnboardingCommand, Phase, Stage};

use crate::support::*;

/// A portfolio with WABA "1001" whose facts make the whole portfolio ineligible (Meta offers no enablement).
fn ineligible_check() -> OnboardingCommand {
    let mut portfolio_facts = facts(vec![shared_waba("1001")]);
    portfolio_facts.enable_offered = false;
    OnboardingCommand::CheckEligibility {
        facts: portfolio_facts,
    }
}

/// A history that ends in `phase`, through the usual path.
fn reach(phase: Phase) -> History {
    let reviewing = || History::started().then(1, check(vec![shared_waba("1001")]));
    match phase {
        Phase::NotStarted => History::new(),
        Phase::CheckingEligibility => History::started(),
        Phase::Ineligible => History::started().then(1, ineligible_check()),
        Phase::MigratingObo => History::started()
            .then(1, check(vec![obo_waba("1001")]))
            .then(
                2,
                OnboardingCommand::RequestOboMigration {
                    waba_id: waba("1001"),
                },
            ),
        Phase::ReviewingPermissions => reviewing(),
        Phase::EnteringBusinessInfo => reviewing().then(
            2,
            OnboardingCommand::ReviewPermissions {
                reviewed_by: user("7001"),
            },
        ),
        Phase::TermsPending => History::terms_pending(),
        Phase::Connecting => History::terms_pending().then(4, accept_terms(PortfolioRole::Admin)),
        Phase::Connected => History::connected(),
        Phase::SyncingConfig => History::syncing(),
        Phase::Live => History::syncing().then(25, OnboardingCommand::CompleteSync {}),
        Phase::Offboarded => History::started().then(
            1,
            OnboardingCommand::Offboard {
                reason: Reason::parse("test").expect("valid"),
            },
        ),
    }
}

/// The command that records `event` and leads to `to`.
fn command_causing(event: &str, to: Phase) -> OnboardingCommand {
    match (event, to) {
        (type_names::ONBOARDING_STARTED, _) => OnboardingCommand::StartOnboarding {},
        (type_names::ELIGIBILITY_CHECKED, Phase::Ineligible) => ineligible_check(),
        (type_names::ELIGIBILITY_CHECKED, Phase::MigratingObo) => check(vec![obo_waba("1001")]),
        (type_names::ELIGIBILITY_CHECKED, _) => check(vec![shared_waba("1001")]),
        (type_names::OBO_WABA_MIGRATED, _) => OnboardingCommand::CompleteOboMigration {
            waba_id: waba("1001"),
        },
        (type_names::PERMISSIONS_REVIEWED, _) => OnboardingCommand::ReviewPermissions {
            reviewed_by: user("7001"),
        },
        (type_names::BUSINESS_INFORMATION_SUBMITTED, _) => business_info(),
        (type_names::TERMS_ACCEPTED, _) => accept_terms(PortfolioRole::Admin),
        (type_names::TERMS_SIGNED, _) => OnboardingCommand::RecordTermsSigned {
            waba_id: waba("1001"),
        },
        (type_names::CONNECTED, _) => connect(&["1001"]),
        (type_names::CONFIG_SYNC_STARTED, _) => OnboardingCommand::StartConfigSync {},
        (type_names::SYNC_COMPLETED, _) => OnboardingCommand::CompleteSync {},
        (type_names::ONBOARDING_OFFBOARDED, _) => OnboardingCommand::Offboard {
            reason: Reason::parse("test").expect("valid"),
        },
        (other, _) => panic!("no command known to record {other}"),
    }
}

#[test]
fn the_machine_takes_every_transition_of_the_table() {
    let all = transitions();
    assert!(all.len() > EDGES.len(), "superstate edges expand");
    for transition in all {
        let given = reach(transition.from);
        assert_eq!(given.phase(), transition.from, "setting up {transition:?}");
        let command = command_causing(transition.event, transition.to);
        let events = given
            .decide(60, &command)
            .unwrap_or_else(|refusal| panic!("{transition:?}: refused: {refusal}"));
        let mut aggregate = given.aggregate.clone();
        let mut taken = false;
        for event in &events {
            let before = aggregate.phase();
            aggregate.apply(event).expect("the machine explains it");
            if event.type_name() == transition.event
                && before == transition.from
                && aggregate.phase() == transition.to
            {
                taken = true;
            }
        }
        assert!(
            taken,
            "{transition:?}: the events {events:?} ended in {}",
            aggregate.phase()
        );
    }
}

#[test]
fn superstate_edges_start_from_the_stages_the_machine_declares_them_on() {
    for edge in EDGES {
        if let Source::Stages(stages) = edge.source {
            assert!(!stages.contains(&Stage::NotStarted), "{edge:?}");
            assert!(!stages.contains(&Stage::Offboarded), "{edge:?}");
        }
    }
    // Nothing leaves the end: an offboarded portfolio takes no transition.
    assert!(
        transitions()
            .iter()
            .all(|transition| transition.from != Phase::Offboarded)
    );
}
