//! The model test's two log invariants, checked where they can fail: random runs drawn as the domain's
//! state-machine test draws them go through the real command path onto a real SQLite log. After every step
//! the state read back from the log (stored, read, decoded, folded) equals the live state the decisions
//! were folded into, and a refused command left the log exactly as long as it was.

use chrono::TimeDelta;
use mmonboard_app::{CommandContext, ManualClock, OnboardingService};
use mmonboard_domain::ids::PortfolioId;
use mmonboard_domain::testing::ReferenceModel;
use mmonboard_domain::{Aggregate, Decider};
use mmonboard_eventlog::{Durability, EventStore, SqliteEventStore, SqliteOptions};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use proptest_state_machine::ReferenceStateMachine;

const RUNS: usize = 128;
const MAX_STEPS: usize = 40;

#[tokio::test]
async fn state_read_back_from_the_log_equals_the_live_state_and_refusals_store_nothing() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite://{}", dir.path().join("log.db").display());
    // Durability is not what this test is about; NORMAL keeps its thousands of commits quick.
    let options = SqliteOptions {
        synchronous: Durability::Normal,
        ..SqliteOptions::default()
    };
    let store = std::sync::Arc::new(
        SqliteEventStore::open(&url, options)
            .await
            .expect("the log opens"),
    );
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &[23; 32]),
    );
    let strategy = ReferenceModel::sequential_strategy(1..=MAX_STEPS);
    let (mut accepted, mut refused) = (0, 0);
    for run in 0..RUNS {
        let (initial, steps, _) = strategy.new_tree(&mut runner).expect("a run").current();
        let portfolio = PortfolioId::parse(&format!("77{run:04}")).expect("a portfolio id");
        let clock = ManualClock::starting_at(initial.now);
        let service = OnboardingService::new(
            std::sync::Arc::clone(&store),
            clock.clone(),
            initial.config().clone(),
        );
        // The live state: the same decisions folded in memory, never stored.
        let decider = Decider::new(initial.config().clone());
        let mut live = Aggregate::new(portfolio.clone());
        for step in &steps {
            clock.advance(TimeDelta::seconds(step.seconds));
            let head_before = store.head_position().await.expect("the head");
            let decided = decider.decide(&live, &step.command, mmonboard_app::Clock::now(&clock));
            let outcome = service
                .execute(&portfolio, &step.command, &CommandContext::new("model"))
                .await
                .expect("the log answers");
            match (decided, outcome) {
                (Ok(events), Ok(outcome)) => {
                    accepted += 1;
                    assert_eq!(outcome.events.len(), events.len());
                    for event in &events {
                        live.apply(event).expect("decided events are explained");
                    }
                }
                (Err(expected), Err(refusal)) => {
                    refused += 1;
                    assert_eq!(refusal.code(), expected.code());
                    assert_eq!(
                        store.head_position().await.expect("the head"),
                        head_before,
                        "a refused {} appended nothing",
                        step.command.type_name()
                    );
                }
                (decided, outcome) => panic!(
                    "{}: decided in memory {decided:?}, through the log {outcome:?}",
                    step.command.type_name()
                ),
            }
            let read_back = service.load(&portfolio).await.expect("the stream loads");
            assert_eq!(
                read_back,
                live,
                "the state read back from the log equals the live state after {}",
                step.command.type_name()
            );
        }
    }
    assert!(
        accepted > RUNS && refused > 0,
        "{accepted} accepted, {refused} refused"
    );
}
