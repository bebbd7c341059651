//! Any bytes as a sequence of commands, one JSON object per line, as the API and `exec` parse them.
//! Whatever parses must serialise back to itself; each command is decided against the live aggregate;
//! every event decided must fold, survive its stored form (encode → decode) unchanged, and a replay of
//! everything decided must give the live state. A refusal changes nothing.
#![no_main]

use chrono::{DateTime, Duration, Utc};
use libfuzzer_sys::fuzz_target;
use mmonboard_domain::event::CURRENT_SCHEMA_VERSION;
use mmonboard_domain::ids::PortfolioId;
use mmonboard_domain::{Aggregate, Decider, DomainConfig, OnboardingCommand, OnboardingEvent};

fn state_of(aggregate: &Aggregate) -> serde_json::Value {
    serde_json::to_value(aggregate.view()).expect("a state view serialises")
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let portfolio = PortfolioId::parse("1234567890").expect("a valid id");
    let decider = Decider::new(DomainConfig::default());
    let mut live = Aggregate::new(portfolio.clone());
    let mut decided: Vec<OnboardingEvent> = Vec::new();
    let mut now = DateTime::<Utc>::from_timestamp(1_767_225_600, 0).expect("a time");
    for line in text.lines() {
        let Ok(command) = serde_json::from_str::<OnboardingCommand>(line) else {
            continue;
        };
        let again: OnboardingCommand =
            serde_json::from_str(&serde_json::to_string(&command).expect("a command serialises"))
                .expect("a serialised command parses");
        assert_eq!(again, command, "a command's JSON round trip changed it");
        // Each line a minute later, so the 15-minute windows open and close within one input.
        now += Duration::minutes(1);
        let before = state_of(&live);
        match decider.decide(&live, &command, now) {
            Ok(events) => {
                for event in events {
                    let stored = OnboardingEvent::decode(
                        event.type_name(),
                        CURRENT_SCHEMA_VERSION,
                        &event.encode(),
                    )
                    .expect("a decided event decodes from its stored form");
                    assert_eq!(stored, event, "the stored form changed an event");
                    live.apply(&event).expect("a decided event folds");
                    decided.push(event);
                }
            }
            Err(_) => assert_eq!(state_of(&live), before, "a refusal changed the state"),
        }
    }
    let replayed =
        Aggregate::replay(portfolio, decided.iter()).expect("the decided history replays");
    assert_eq!(
        state_of(&replayed),
        state_of(&live),
        "replay differs from the live state"
    );
    assert_eq!(replayed.version(), live.version());
});
