//! Scenario files: the seven shipped ones load together; a bad value is named with its file and field.

use std::sync::Arc;

use mmonboard_app::{Clock, ManualClock};
use mmonboard_metasim::{Scenario, ScenarioError, Simulator, Timing};
use serde_json::Value;

use crate::support::{Harness, config, inline, scenario, scenarios_dir, start_time};

const ALL: [&str; 7] = [
    "happy_path",
    "obo_waba",
    "unsupported_country",
    "restricted_waba",
    "business_app_number",
    "restriction_after_enablement",
    "duplicate_invitation",
];

fn clock() -> Arc<dyn Clock> {
    Arc::new(ManualClock::starting_at(start_time()))
}

#[tokio::test]
async fn the_seven_scenario_files_load_together_and_are_all_served() {
    let scenarios: Vec<Scenario> = ALL.iter().map(|name| scenario(name)).collect();
    for (scenario, name) in scenarios.iter().zip(ALL) {
        assert_eq!(scenario.name, name);
        assert!(!scenario.description.is_empty(), "{name} has a description");
        assert!(
            ["live", "ineligible"].contains(&scenario.expect.phase.as_str()),
            "{name}"
        );
    }
    let business_ids: Vec<String> = scenarios
        .iter()
        .map(|s| s.business.id.to_string())
        .collect();
    let harness = Harness::start(scenarios).await;
    for id in &business_ids {
        let business = harness.node(id).await;
        for waba in business["owned_whatsapp_business_accounts"]["data"]
            .as_array()
            .unwrap()
        {
            harness.node(waba["id"].as_str().unwrap()).await;
        }
    }
    let listed: Value = harness
        .client
        .get(format!("{}/sim/scenarios", harness.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 7);
    harness.stop().await;
}

#[test]
fn every_json_file_in_the_scenarios_directory_is_a_valid_scenario() {
    let mut found = 0;
    for entry in std::fs::read_dir(scenarios_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|ext| ext == "json") {
            Scenario::from_file(&path).unwrap_or_else(|error| panic!("{error}"));
            found += 1;
        }
    }
    assert!(found >= 7);
}

#[test]
fn an_id_used_twice_is_refused_naming_it() {
    let error = Simulator::new(
        vec![scenario("happy_path"), scenario("happy_path")],
        clock(),
        config(),
    )
    .unwrap_err();
    assert!(
        matches!(error, ScenarioError::DuplicateId { .. }),
        "{error}"
    );
    let message = error.to_string();
    assert!(
        message.contains("4100000001") && message.contains("happy_path.json"),
        "{message}"
    );

    // Across kinds too: a template id equal to another scenario's WABA id.
    let clash = inline("57", |json| {
        json["business"]["wabas"][0]["templates"][0]["id"] = "4110000001".into()
    });
    let error = Simulator::new(vec![scenario("happy_path"), clash], clock(), config()).unwrap_err();
    assert!(error.to_string().contains("4110000001"), "{error}");
}

#[test]
fn a_bad_value_names_the_file_the_field_and_the_value() {
    let text = std::fs::read_to_string(scenarios_dir().join("happy_path.json")).unwrap();
    let mut json: Value = serde_json::from_str(&text).unwrap();
    json["business"]["wabas"][0]["phone_numbers"][0]["id"] = "41-2000".into();
    let error = Scenario::from_json(&json.to_string()).unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, ScenarioError::Field { .. }), "{message}");
    assert!(
        message.contains("business.wabas[0].phone_numbers[0].id"),
        "{message}"
    );
    assert!(message.contains("41-2000"), "{message}");

    let dir = std::env::temp_dir().join(format!("metasim-scenario-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad_country.json");
    json["business"]["wabas"][0]["phone_numbers"][0]["id"] = "4120000001".into();
    json["business"]["country"] = "XX".into();
    std::fs::write(&file, json.to_string()).unwrap();
    let message = Scenario::from_file(&file).unwrap_err().to_string();
    assert!(
        message.contains("bad_country.json")
            && message.contains("business.country")
            && message.contains("XX"),
        "{message}"
    );

    json["business"]["country"] = "BR".into();
    json["business"]["colour"] = "blue".into();
    std::fs::write(&file, json.to_string()).unwrap();
    let message = Scenario::from_file(&file).unwrap_err().to_string();
    assert!(
        message.contains("bad_country.json") && message.contains("colour"),
        "{message}"
    );

    let missing = Scenario::from_file(&dir.join("missing.json")).unwrap_err();
    assert!(matches!(missing, ScenarioError::Io { .. }));
    std::fs::remove_dir_all(&dir).unwrap();

    for (pointer, value, field) in [
        (
            "/timing",
            serde_json::json!({"obo_transfer": "5 fortnights"}),
            "timing.obo_transfer",
        ),
        (
            "/expect",
            serde_json::json!({"phase": "partying"}),
            "expect.phase",
        ),
        (
            "/events",
            serde_json::json!([{"after_terms_signed": "1m", "waba_id": "1", "account_status": "ACTIVE"}]),
            "events[0].waba_id",
        ),
        (
            "/business/wabas/0/ownership_type",
            "SHARED".into(),
            "ownership_type",
        ),
    ] {
        let mut edited: Value = serde_json::from_str(&text).unwrap();
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        let parent = if parent.is_empty() {
            &mut edited
        } else {
            edited.pointer_mut(parent).unwrap()
        };
        parent[key] = value;
        let message = Scenario::from_json(&edited.to_string())
            .unwrap_err()
            .to_string();
        assert!(message.contains(field), "{pointer}: {message}");
    }
}

#[test]
fn timing_defaults_to_metas_usual_delays() {
    let scenario = scenario("happy_path");
    assert_eq!(scenario.timing, Timing::default());
    assert_eq!(scenario.timing.obo_transfer.to_string(), "5m");
    assert_eq!(scenario.timing.ad_account_creation.to_string(), "1m");
    assert_eq!(scenario.timing.waba_onboarding.to_string(), "10m");
    assert_eq!(scenario.timing.template_mirror.to_string(), "10m");
    let events = crate::support::scenario("restriction_after_enablement").events;
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].after_terms_signed.to_string(), "30m");
}
