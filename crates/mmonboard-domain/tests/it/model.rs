//! Model-based testing: proptest-state-machine drives the real aggregate (decide + the statig machine + an
//! in-memory log) against the reference model with random valid and invalid commands at random times. After
//! every step: both agree on accepted or refused and on the refusal code; both see the same phase, WABAs and
//! templates; replaying the log equals the live state; a refused command appended nothing; every decided
//! event is explained by the machine; and the portfolio is never enabled (nor live) without all of
//! domain.md's preconditions in its own log. Here the log is in memory, so "replay equals live" and "a refusal
//! appended nothing" check the fold; `mmonboard-app`'s `stored_model` test checks both through the stored form
//! (encoded, appended to a real SQLite log, read back, decoded).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, TimeDelta, Utc};
use mmonboard_domain::event::{ALL_TYPE_NAMES, CURRENT_SCHEMA_VERSION};
use mmonboard_domain::facts::PortfolioRole;
use mmonboard_domain::machine::{OboMigration, WabaRouting};
use mmonboard_domain::testing::strategies::{command, command_for, time_step};
use mmonboard_domain::testing::{ModelOutcome, ModelRouting, ModelState, ReferenceModel, Step};
use mmonboard_domain::transitions::is_transition;
use mmonboard_domain::{Aggregate, Decider, OnboardingCommand, OnboardingEvent, Phase, Stage};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest, prop_state_machine};

use crate::support::portfolio;

/// The longest random run.
const MAX_STEPS: usize = 40;

/// The system under test: the real decision, fold and log.
pub struct RealOnboarding {
    decider: Decider,
    aggregate: Aggregate,
    log: Vec<OnboardingEvent>,
    now: DateTime<Utc>,
}

impl StateMachineTest for RealOnboarding {
    type SystemUnderTest = Self;
    type Reference = ReferenceModel;

    fn init_test(model: &ModelState) -> Self {
        RealOnboarding {
            decider: Decider::new(model.config().clone()),
            aggregate: Aggregate::new(portfolio()),
            log: Vec::new(),
            now: model.now,
        }
    }

    fn apply(mut real: Self, model: &ModelState, step: Step) -> Self {
        real.now += TimeDelta::seconds(step.seconds);
        assert_eq!(real.now, model.now, "the clocks agree");
        let before = real.aggregate.clone();
        let decided = real
            .decider
            .decide(&real.aggregate, &step.command, real.now);
        assert_eq!(
            decided,
            real.decider.decide(&before, &step.command, real.now),
            "decide is a function of its inputs"
        );
        match (decided, model.last_outcome) {
            (Ok(events), Some(ModelOutcome::Accepted)) => {
                assert!(!events.is_empty(), "an accepted command records something");
                for event in events {
                    assert_eq!(
                        event.at(),
                        real.now,
                        "an event happens at the decision's now"
                    );
                    let phase_before = real.aggregate.phase();
                    if let Err(error) = real.aggregate.apply(&event) {
                        panic!(
                            "decide produced {event:?}, which the machine cannot explain: {error}"
                        );
                    }
                    let phase_after = real.aggregate.phase();
                    assert!(
                        phase_before == phase_after
                            || is_transition(phase_before, event.type_name(), phase_after),
                        "{} took {phase_before} to {phase_after}, which the transition table lacks",
                        event.type_name()
                    );
                    real.log.push(event);
                }
            }
            (Err(refusal), Some(ModelOutcome::Refused(code))) => {
                assert_eq!(refusal.code(), code, "the refusal of {step:?}: {refusal}");
                assert_eq!(
                    refusal.phase,
                    before.phase(),
                    "a refusal names the phase it met"
                );
                assert_eq!(real.aggregate, before, "a refused command changed nothing");
                assert_eq!(
                    real.log.len() as u64,
                    before.version(),
                    "a refused command appended nothing"
                );
            }
            (real_outcome, model_outcome) => panic!(
                "in {:?}, {step:?}: the domain says {real_outcome:?} but the model {model_outcome:?}",
                before.phase()
            ),
        }
        real
    }

    fn check_invariants(real: &Self, model: &ModelState) {
        assert_eq!(
            real.aggregate.version(),
            real.log.len() as u64,
            "one version per event"
        );
        assert_eq!(real.aggregate.phase(), model.phase(), "the phases agree");
        assert_same_portfolio(&real.aggregate, model);
        let replayed = Aggregate::replay(portfolio(), &real.log).expect("the log replays");
        assert_eq!(
            replayed, real.aggregate,
            "replaying the log equals the live state"
        );
        check_enablement_preconditions(real, model);
    }
}

/// Beyond the phase, the model and the fold agree on the OBO migrations, the eligible WABAs, every WABA's
/// routing, the config sync and every template.
fn assert_same_portfolio(aggregate: &Aggregate, state: &ModelState) {
    let data = aggregate.data();
    let model = &state.model;
    let pending: BTreeMap<_, _> = data
        .wabas
        .iter()
        .filter_map(|(id, record)| match record.obo_migration {
            OboMigration::Pending => Some((id.clone(), false)),
            OboMigration::Requested { .. } => Some((id.clone(), true)),
            _ => None,
        })
        .collect();
    assert_eq!(pending, model.pending_obo, "pending OBO migrations");
    let eligible: BTreeSet<_> = data.eligible_wabas().cloned().collect();
    assert_eq!(eligible, model.eligible, "eligible WABAs");
    let routing: BTreeMap<_, _> = data
        .wabas
        .iter()
        .map(|(id, record)| {
            let routing = match record.routing {
                WabaRouting::NotOnboarded => ModelRouting::NotOnboarded,
                WabaRouting::Onboarded { .. } => ModelRouting::Onboarded,
                WabaRouting::Suspended { .. } => ModelRouting::Suspended,
                WabaRouting::Offboarded { .. } => ModelRouting::Offboarded,
            };
            (id.clone(), routing)
        })
        .collect();
    assert_eq!(routing, model.routing, "WABA routing");
    assert_eq!(
        data.config_sync.as_ref().map(|sync| sync.started_at),
        model.sync_started_at,
        "config sync start"
    );
    let templates: BTreeMap<_, _> = data
        .templates
        .iter()
        .map(|(id, template)| {
            let seen = (
                template.waba_id.clone(),
                template.category.clone(),
                template.sync_window_ends_at,
                template.mirror_synced_at.is_some(),
                template.last_activity_at,
            );
            (id.clone(), seen)
        })
        .collect();
    let expected: BTreeMap<_, _> = model
        .templates
        .iter()
        .map(|(id, template)| {
            let expected = (
                template.waba_id.clone(),
                template.category.clone(),
                template.window_ends_at,
                template.mirror_synced,
                template.last_activity_at,
            );
            (id.clone(), expected)
        })
        .collect();
    assert_eq!(templates, expected, "templates");
}

/// The portfolio is never enabled without everything DOMAIN.md demands, found in its own log in the flow's
/// order after the eligibility check it was enabled on: no OBO WABA left, permissions reviewed, business
/// information entered, terms accepted by a portfolio admin, and one mirrored ad account per eligible WABA.
/// Live also needs the config sync completed no earlier than the configured window after it started.
fn check_enablement_preconditions(real: &RealOnboarding, model: &ModelState) {
    let phase = real.aggregate.phase();
    if phase.stage() != Stage::Enabled {
        return;
    }
    let log = &real.log;
    let position = |from: usize, what: &str, wanted: &dyn Fn(&OnboardingEvent) -> bool| {
        from + log[from..]
            .iter()
            .position(wanted)
            .unwrap_or_else(|| panic!("{phase} without {what} after position {from}: {log:#?}"))
    };
    let check_at = log
        .iter()
        .rposition(|event| matches!(event, OnboardingEvent::EligibilityChecked(_)))
        .unwrap_or_else(|| panic!("{phase} without an eligibility check"));
    let OnboardingEvent::EligibilityChecked(check) = &log[check_at] else {
        unreachable!("found by type")
    };
    assert!(
        check.verdict.may_proceed(),
        "{phase} on a failed eligibility check"
    );
    let mut migrated_by = check_at;
    for obo in check.verdict.obo_wabas() {
        let at = position(
            check_at,
            "every OBO WABA migrated",
            &|event| matches!(event, OnboardingEvent::OboWabaMigrated(migrated) if &migrated.waba_id == obo),
        );
        migrated_by = migrated_by.max(at);
    }
    let reviewed_at = position(migrated_by, "the permissions reviewed", &|event| {
        matches!(event, OnboardingEvent::PermissionsReviewed(_))
    });
    let submitted_at = position(reviewed_at, "the business information", &|event| {
        matches!(event, OnboardingEvent::BusinessInformationSubmitted(_))
    });
    // Terms accepted by a portfolio admin by hand, or reported signed by Meta, whose flow only an admin can
    // complete, for a WABA of the checked portfolio.
    let terms_at = position(submitted_at, "the terms accepted", &|event| {
        matches!(
            event,
            OnboardingEvent::TermsAccepted(_) | OnboardingEvent::TermsSigned(_)
        )
    });
    match &log[terms_at] {
        OnboardingEvent::TermsAccepted(terms) => assert_eq!(
            terms.role,
            PortfolioRole::Admin,
            "terms accepted by a portfolio admin"
        ),
        OnboardingEvent::TermsSigned(signed) => assert!(
            check.verdict.wabas.contains_key(&signed.reported_for_waba),
            "terms reported signed for WABA {} outside the checked portfolio",
            signed.reported_for_waba
        ),
        _ => unreachable!("found by type"),
    }
    let connected_at = position(terms_at, "the connection", &|event| {
        matches!(event, OnboardingEvent::Connected(_))
    });
    let OnboardingEvent::Connected(connected) = &log[connected_at] else {
        unreachable!("found by type")
    };
    let eligible: Vec<_> = check
        .verdict
        .wabas
        .iter()
        .filter(|(_, verdict)| verdict.is_eligible_after_migration())
        .map(|(id, _)| id)
        .collect();
    let mut with_account: Vec<_> = connected.ad_accounts.iter().map(|a| &a.waba_id).collect();
    with_account.sort();
    assert_eq!(
        with_account, eligible,
        "exactly one ad account per eligible WABA"
    );
    if phase == Phase::Live {
        let started_at = position(connected_at, "the config sync started", &|event| {
            matches!(event, OnboardingEvent::ConfigSyncStarted(_))
        });
        let completed_at = position(started_at, "the sync completed", &|event| {
            matches!(event, OnboardingEvent::SyncCompleted(_))
        });
        assert!(
            log[completed_at].at() - log[started_at].at() >= model.config().config_sync_window,
            "live before the config sync window ended"
        );
    }
}

prop_state_machine! {
    #![proptest_config(Config {
        cases: 256,
        failure_persistence: None,
        .. Config::default()
    })]
    #[test]
    fn the_aggregate_behaves_like_the_reference_model(sequential 1..=MAX_STEPS => RealOnboarding);
}

/// What a sequence of steps did to a fresh portfolio, through the real decide and fold.
struct RealRun {
    aggregate: Aggregate,
    log: Vec<OnboardingEvent>,
    phases: BTreeSet<&'static str>,
    refusals: BTreeSet<&'static str>,
}

fn run_for_real(initial: &ModelState, steps: &[Step]) -> RealRun {
    let decider = Decider::new(initial.config().clone());
    let mut run = RealRun {
        aggregate: Aggregate::new(portfolio()),
        log: Vec::new(),
        phases: BTreeSet::from([Phase::NotStarted.as_str()]),
        refusals: BTreeSet::new(),
    };
    let mut now = initial.now;
    for step in steps {
        now += TimeDelta::seconds(step.seconds);
        match decider.decide(&run.aggregate, &step.command, now) {
            Ok(events) => {
                for event in events {
                    run.aggregate
                        .apply(&event)
                        .expect("decided events are explained");
                    run.log.push(event);
                }
            }
            Err(refusal) => {
                run.refusals.insert(refusal.code());
            }
        }
        run.phases.insert(run.aggregate.phase().as_str());
    }
    run
}

/// The runs the state-machine test makes must go the whole way often, or it would only ever exercise the
/// first phases: over 200 sequences drawn exactly as it draws them (fixed seed, so the counts are stable), a
/// good share reaches live, every kind of event happens and nearly every rule refuses something.
#[test]
fn random_runs_reach_live_and_exercise_every_event_and_rule() {
    const RUNS: usize = 200;
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]),
    );
    let strategy = ReferenceModel::sequential_strategy(1..=MAX_STEPS);
    let mut reached = BTreeMap::<&'static str, usize>::new();
    let mut event_types = BTreeSet::new();
    let mut refusals = BTreeSet::new();
    for _ in 0..RUNS {
        let (initial, steps, _) = strategy.new_tree(&mut runner).expect("a run").current();
        let run = run_for_real(&initial, &steps);
        for phase in run.phases {
            *reached.entry(phase).or_default() += 1;
        }
        event_types.extend(run.log.iter().map(OnboardingEvent::type_name));
        refusals.extend(run.refusals);
    }
    let live = reached
        .get(Phase::Live.as_str())
        .copied()
        .unwrap_or_default();
    eprintln!("runs reaching each phase, of {RUNS}: {reached:?}");
    assert!(
        live * 100 >= RUNS * 30,
        "only {live} of {RUNS} random runs reached live: {reached:?}"
    );
    for phase in [Phase::Ineligible, Phase::MigratingObo, Phase::Offboarded] {
        assert!(
            reached.contains_key(phase.as_str()),
            "no random run reached {phase}"
        );
    }
    let missing: Vec<_> = ALL_TYPE_NAMES
        .iter()
        .filter(|name| !event_types.contains(*name))
        .collect();
    assert!(missing.is_empty(), "no random run recorded {missing:?}");
    let unlisted: Vec<_> = refusals
        .iter()
        .filter(|code| !RULE_CODES.contains(*code))
        .collect();
    assert!(
        unlisted.is_empty(),
        "list the new rules {unlisted:?} in RULE_CODES"
    );
    // Time never runs backwards in these runs (`time_step` is never negative): that rule has its own tests.
    let missing: Vec<_> = RULE_CODES
        .iter()
        .filter(|code| **code != "time_before_last_event" && !refusals.contains(*code))
        .collect();
    assert!(
        missing.is_empty(),
        "no random run was refused with {missing:?}"
    );
}

/// Other crates steer random commands with the real aggregate alone (no model): those runs go the whole way
/// too. Fixed seed, so the count is stable.
#[test]
fn commands_aimed_at_the_real_aggregate_reach_live() {
    const RUNS: usize = 100;
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &[11; 32]),
    );
    let decider = Decider::default();
    let mut live = 0;
    for _ in 0..RUNS {
        let mut aggregate = Aggregate::new(portfolio());
        let mut now = crate::support::t(0);
        for _ in 0..MAX_STEPS {
            let (seconds, command) = (time_step(), command_for(&aggregate))
                .new_tree(&mut runner)
                .expect("a step")
                .current();
            now += TimeDelta::seconds(seconds);
            for event in decider
                .decide(&aggregate, &command, now)
                .unwrap_or_default()
            {
                aggregate
                    .apply(&event)
                    .expect("decided events are explained");
            }
            if aggregate.phase() == Phase::Live {
                live += 1;
                break;
            }
        }
    }
    assert!(
        live * 100 >= RUNS * 40,
        "only {live} of {RUNS} runs reached live"
    );
}

/// Every `Rule::code()` (a new rule that random runs meet fails the test above until it is listed).
const RULE_CODES: &[&str] = &[
    "terms_already_requested",
    "not_started",
    "already_started",
    "already_offboarded",
    "not_allowed_now",
    "time_before_last_event",
    "terms_require_admin",
    "portfolio_still_contains_obo",
    "unknown_waba",
    "not_awaiting_migration",
    "migration_already_requested",
    "migration_not_requested",
    "duplicate_waba_in_facts",
    "missing_ad_account",
    "unexpected_ad_account",
    "duplicate_ad_account",
    "config_sync_window_open",
    "waba_not_onboarded",
    "waba_suspended",
    "waba_not_suspended",
    "waba_offboarded",
    "waba_still_ineligible",
    "unknown_template",
    "template_of_another_waba",
    "template_not_marketing",
    "template_sync_window_open",
    "template_already_synced",
    "portfolio_ineligible",
];

proptest! {
    #![proptest_config(Config { cases: 256, failure_persistence: None, .. Config::default() })]

    /// Whatever decide accepts survives the stored format: encoding then decoding gives each event back, and
    /// the decoded log replays to the same state.
    #[test]
    fn decided_events_round_trip_through_the_stored_format(
        (initial, steps, seen) in ReferenceModel::sequential_strategy(1..=MAX_STEPS)
    ) {
        if let Some(seen) = seen {
            // Every step is used: shrinking may drop any of them, not just those after a failure.
            seen.fetch_add(steps.len(), std::sync::atomic::Ordering::SeqCst);
        }
        let RealRun { aggregate, log, .. } = run_for_real(&initial, &steps);
        let mut decoded = Vec::new();
        for event in &log {
            let stored = event.encode();
            let read = OnboardingEvent::decode(event.type_name(), CURRENT_SCHEMA_VERSION, &stored);
            prop_assert_eq!(read.as_ref().ok(), Some(event), "{} read back from {}", event.type_name(), stored);
            decoded.extend(read.ok());
        }
        prop_assert_eq!(Aggregate::replay(portfolio(), &decoded).ok(), Some(aggregate));
    }

    /// A command's JSON is the public contract of the CLI and the HTTP API: any command reads back unchanged.
    #[test]
    fn commands_round_trip_through_their_json(command in command()) {
        let json = serde_json::to_string(&command).expect("a command serialises");
        let read: Result<OnboardingCommand, _> = serde_json::from_str(&json);
        prop_assert_eq!(read.ok(), Some(command), "read back from {}", json);
    }
}
