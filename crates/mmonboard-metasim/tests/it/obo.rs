//! The OBO to shared transfer: requested once, completed after the delay.

use chrono::TimeDelta;
use serde_json::json;

use crate::support::{Harness, scenario};

const OBO: &str = "4210000001";
const SHARED: &str = "4210000002";

#[tokio::test]
async fn an_obo_transfer_completes_after_the_delay_and_only_obo_wabas_can_transfer() {
    let harness = Harness::start(vec![scenario("obo_waba")]).await;
    let intent = format!("{OBO}/set_obo_mobility_intent");

    let (status, body) = harness
        .post(&format!("{SHARED}/set_obo_mobility_intent"))
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], 100);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not owned on behalf of"),
        "{body}"
    );

    harness.advance(TimeDelta::seconds(20));
    let (status, body) = harness.post(&intent).await;
    assert_eq!((status, body), (200, json!({"success": true})));
    let waba = harness.node(OBO).await;
    assert_eq!(waba["ownership_type"], "ON_BEHALF_OF");
    assert_eq!(
        waba["marketing_messages_onboarding_status"],
        "INELIGIBLE_ON_BEHALF_OF_WABA"
    );
    assert_eq!(
        waba["obo_mobility_intent"],
        json!({"status": "PENDING", "requested_time": "2026-03-02T09:00:20Z"})
    );

    let (status, body) = harness.post(&intent).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], 100);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already"),
        "{body}"
    );

    harness.advance(TimeDelta::minutes(5) - TimeDelta::seconds(1));
    assert_eq!(
        harness.node(OBO).await["obo_mobility_intent"]["status"],
        "PENDING"
    );
    harness.advance(TimeDelta::seconds(1));
    let waba = harness.node(OBO).await;
    assert_eq!(waba["ownership_type"], "CLIENT_OWNED");
    assert_eq!(waba["obo_mobility_intent"]["status"], "COMPLETED");
    assert_eq!(
        waba["obo_mobility_intent"]["requested_time"],
        "2026-03-02T09:00:20Z"
    );
    assert_eq!(waba["marketing_messages_onboarding_status"], "ELIGIBLE");

    // Once transferred, asking again is still refused.
    let (status, _) = harness.post(&intent).await;
    assert_eq!(status, 400);

    // Both WABAs are enabled with the terms.
    harness.post("4200000001/onboard_partners_to_mm_lite").await;
    harness.advance(TimeDelta::minutes(12));
    for waba in [OBO, SHARED] {
        let node = harness.node(waba).await;
        assert_eq!(
            node["marketing_messages_onboarding_status"], "ONBOARDED",
            "{node}"
        );
        assert_eq!(node["ad_account_id"], format!("8{waba}"));
    }
    harness.stop().await;
}

#[tokio::test]
async fn an_obo_waba_transferred_after_the_signature_is_enabled_when_the_transfer_completes() {
    let harness = Harness::start(vec![scenario("obo_waba")]).await;
    harness.post("4200000001/onboard_partners_to_mm_lite").await;
    harness.advance(TimeDelta::minutes(2));
    assert_eq!(
        harness.node(SHARED).await["marketing_messages_onboarding_status"],
        "PENDING_INTERNAL_SETUP"
    );
    let waba = harness.node(OBO).await;
    assert_eq!(
        waba["marketing_messages_onboarding_status"],
        "INELIGIBLE_ON_BEHALF_OF_WABA"
    );

    harness
        .post(&format!("{OBO}/set_obo_mobility_intent"))
        .await;
    harness.advance(TimeDelta::minutes(5));
    let waba = harness.node(OBO).await;
    assert_eq!(
        waba["marketing_messages_onboarding_status"],
        "PENDING_INTERNAL_SETUP"
    );
    assert!(waba.get("ad_account_id").is_none());
    harness.advance(TimeDelta::minutes(10));
    let waba = harness.node(OBO).await;
    assert_eq!(waba["marketing_messages_onboarding_status"], "ONBOARDED");
    assert_eq!(waba["ad_account_id"], "84210000001");
    harness.stop().await;
}
