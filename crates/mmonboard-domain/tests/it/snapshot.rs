//! Snapshots are only a cache of the fold: for random histories (the reference model's sequences of valid and
//! invalid commands at random times, through the real decide and fold), restoring the snapshot taken at any
//! version and folding the events after it gives exactly the state a full replay gives, and it decides the
//! next command the same way. Snapshot bytes under another portfolio or version, or damaged, are refused.

use chrono::TimeDelta;
use mmonboard_domain::snapshot::{SnapshotError, fingerprint};
use mmonboard_domain::testing::ReferenceModel;
use mmonboard_domain::testing::strategies::command;
use mmonboard_domain::{Aggregate, Decider, OnboardingEvent};
use proptest::prelude::*;
use proptest_state_machine::ReferenceStateMachine;

use crate::support::{portfolio, t};

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn a_snapshot_and_the_tail_after_it_equal_the_full_replay(
        (initial, steps, _) in ReferenceModel::sequential_strategy(1..=40),
        next in command(),
    ) {
        let decider = Decider::new(initial.config().clone());
        let mut live = Aggregate::new(portfolio());
        let mut log: Vec<OnboardingEvent> = Vec::new();
        // The snapshot bytes at every version, taken as the fold went: snapshots[k] is the state after k events.
        let mut snapshots = vec![live.to_snapshot().expect("a snapshot of the empty state")];
        let mut now = initial.now;
        for step in &steps {
            now += TimeDelta::seconds(step.seconds);
            if let Ok(events) = decider.decide(&live, &step.command, now) {
                for event in events {
                    live.apply(&event).expect("decided events are explained");
                    log.push(event);
                    snapshots.push(live.to_snapshot().expect("a snapshot"));
                }
            }
        }
        let replayed = Aggregate::replay(portfolio(), &log).expect("the log replays");
        prop_assert_eq!(&replayed, &live);
        for (version, bytes) in snapshots.iter().enumerate() {
            let mut restored = Aggregate::from_snapshot(&portfolio(), version as u64, bytes)
                .expect("a snapshot of this build restores");
            prop_assert_eq!(restored.version(), version as u64);
            for event in &log[version..] {
                restored.apply(event).expect("the tail folds onto the snapshot");
            }
            prop_assert_eq!(&restored, &replayed, "snapshot at {} + tail", version);
            prop_assert_eq!(restored.phase(), replayed.phase());
            prop_assert_eq!(restored.last_event_at(), replayed.last_event_at());
            prop_assert_eq!(restored.stall(), replayed.stall());
            prop_assert_eq!(
                serde_json::to_value(restored.view()).expect("a view"),
                serde_json::to_value(replayed.view()).expect("a view")
            );
            let later = now + TimeDelta::minutes(1);
            prop_assert_eq!(
                decider.decide(&restored, &next, later),
                decider.decide(&replayed, &next, later),
                "the restored state decides as the replayed one"
            );
        }
    }
}

#[test]
fn snapshot_bytes_are_checked_against_their_key() {
    let mut aggregate = Aggregate::new(portfolio());
    let events = Decider::default()
        .decide(
            &aggregate,
            &mmonboard_domain::OnboardingCommand::StartOnboarding {},
            t(0),
        )
        .expect("a start is accepted");
    for event in &events {
        aggregate.apply(event).expect("explained");
    }
    let bytes = aggregate.to_snapshot().expect("a snapshot");
    assert_eq!(
        Aggregate::from_snapshot(&portfolio(), 1, &bytes).expect("restores"),
        aggregate
    );
    let other = mmonboard_domain::ids::PortfolioId::parse("9002").expect("valid");
    assert!(matches!(
        Aggregate::from_snapshot(&other, 1, &bytes),
        Err(SnapshotError::WrongPortfolio { .. })
    ));
    assert_eq!(
        Aggregate::from_snapshot(&portfolio(), 2, &bytes),
        Err(SnapshotError::WrongVersion {
            expected: 2,
            found: 1
        })
    );
    assert!(matches!(
        Aggregate::from_snapshot(&portfolio(), 1, &bytes[..bytes.len() / 2]),
        Err(SnapshotError::Malformed(_))
    ));
    // A leaf state this build does not have is refused, not guessed.
    let renamed = String::from_utf8(bytes)
        .expect("JSON")
        .replace("CheckingEligibility", "NoSuchState");
    assert!(matches!(
        Aggregate::from_snapshot(&portfolio(), 1, renamed.as_bytes()),
        Err(SnapshotError::Malformed(_))
    ));
}

#[test]
fn the_fingerprint_is_stable_within_a_build_and_names_the_code() {
    assert_eq!(fingerprint(), fingerprint());
    assert_eq!(fingerprint().len(), 64);
    assert!(fingerprint().bytes().all(|byte| byte.is_ascii_hexdigit()));
}
