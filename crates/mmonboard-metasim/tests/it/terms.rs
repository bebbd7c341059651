//! The portfolio's terms: requested, accepted by the admin (on a delay or when told), refused when repeated.

use chrono::TimeDelta;
use serde_json::json;

use crate::support::{Harness, inline, scenario};

const BUSINESS: &str = "4100000001";

fn terms_request() -> String {
    format!("{BUSINESS}/onboard_partners_to_mm_lite")
}

#[tokio::test]
async fn a_terms_request_is_sent_then_signed_by_the_admin_after_the_delay() {
    let harness = Harness::start(vec![scenario("happy_path")]).await;
    let business = harness.node(BUSINESS).await;
    assert_eq!(business["id"], BUSINESS);
    assert_eq!(business["country"], "BR");
    assert_eq!(business["enable_offered"], true);
    assert_eq!(
        business["owned_whatsapp_business_accounts"]["data"],
        json!([{"id": "4110000001"}])
    );
    assert_eq!(
        business["marketing_messages_onboarding_status"],
        json!({"status": "NOT_STARTED"})
    );

    harness.advance(TimeDelta::seconds(30));
    let requested_at = harness.now();
    let (status, answer) = harness.post(&terms_request()).await;
    assert_eq!(status, 200, "{answer}");
    let request_id = answer["request_id"].as_str().unwrap().to_owned();
    assert!(!request_id.is_empty());
    let business = harness.node(BUSINESS).await;
    assert_eq!(
        business["marketing_messages_onboarding_status"],
        json!({"status": "REQUEST_SENT", "time": "2026-03-02T09:00:30Z"})
    );

    // The admin accepts two minutes after the request, not a moment before.
    harness.advance(TimeDelta::seconds(119));
    let business = harness.node(BUSINESS).await;
    assert_eq!(
        business["marketing_messages_onboarding_status"]["status"],
        "REQUEST_SENT"
    );
    harness.advance(TimeDelta::seconds(1));
    let business = harness.node(BUSINESS).await;
    assert_eq!(
        business["marketing_messages_onboarding_status"],
        json!({"status": "TERM_OF_SERVICE_SIGNED", "time": "2026-03-02T09:02:30Z"})
    );
    assert_eq!(
        requested_at + TimeDelta::minutes(2),
        "2026-03-02T09:02:30Z"
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap()
    );

    // A request after signing is refused as already invited.
    let (status, answer) = harness.post(&terms_request()).await;
    assert_eq!(status, 400);
    assert_eq!(answer["error"]["code"], 1752041);
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already invited")
    );

    // Another simulator on the same scenario answers the same request id: it is deterministic.
    let other = Harness::start(vec![scenario("happy_path")]).await;
    let (_, again) = other.post(&terms_request()).await;
    assert_eq!(again["request_id"], request_id.as_str());
    other.stop().await;
    harness.stop().await;
}

#[tokio::test]
async fn a_repeated_or_competing_terms_request_answers_1752041() {
    let harness = Harness::start(vec![scenario("happy_path")]).await;
    let path = terms_request();
    let (first, second) = tokio::join!(harness.post(&path), harness.post(&path));
    let mut statuses = [first.0, second.0];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 400], "{first:?} {second:?}");
    let refused = if first.0 == 400 { &first.1 } else { &second.1 };
    assert_eq!(refused["error"]["code"], 1752041);

    let (status, again) = harness.post(&terms_request()).await;
    assert_eq!(
        (status, again["error"]["code"].as_i64()),
        (400, Some(1752041))
    );
    harness.stop().await;
}

#[tokio::test]
async fn an_invitation_already_out_is_request_sent_from_the_start_and_accepted_after_the_first_request()
 {
    let harness = Harness::start(vec![scenario("duplicate_invitation")]).await;
    let business = harness.node("4700000001").await;
    assert_eq!(
        business["marketing_messages_onboarding_status"],
        json!({"status": "REQUEST_SENT", "time": "2026-03-02T09:00:00Z"})
    );

    // Nothing happens until someone asks: the admin's delay starts at the first request, even a refused one.
    harness.advance(TimeDelta::hours(1));
    let (status, answer) = harness.post("4700000001/onboard_partners_to_mm_lite").await;
    assert_eq!(
        (status, answer["error"]["code"].as_i64()),
        (400, Some(1752041)),
        "{answer}"
    );
    harness.advance(TimeDelta::minutes(3) - TimeDelta::seconds(1));
    let business = harness.node("4700000001").await;
    assert_eq!(
        business["marketing_messages_onboarding_status"]["status"],
        "REQUEST_SENT"
    );
    harness.advance(TimeDelta::seconds(1));
    let business = harness.node("4700000001").await;
    assert_eq!(
        business["marketing_messages_onboarding_status"],
        json!({"status": "TERM_OF_SERVICE_SIGNED", "time": "2026-03-02T10:03:00Z"})
    );
    harness.stop().await;
}

#[tokio::test]
async fn the_admin_accepts_when_told_and_only_once() {
    let manual = inline("51", |json| {
        json["business"]["admin"] = json!({"user_id": "5190000001"});
    });
    let harness = Harness::start(vec![manual]).await;
    let accept = "/sim/businesses/5100000001/accept_terms";

    let (status, body) = harness
        .control(accept, json!({"user_id": "5190000001"}))
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("no terms request"),
        "{body}"
    );

    harness.post("5100000001/onboard_partners_to_mm_lite").await;
    // No delay in the scenario: the admin never accepts by themself.
    harness.advance(TimeDelta::days(2));
    let business = harness.node("5100000001").await;
    assert_eq!(
        business["marketing_messages_onboarding_status"]["status"],
        "REQUEST_SENT"
    );

    let (status, body) = harness
        .control(accept, json!({"user_id": "not a user"}))
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = harness
        .control("/sim/businesses/42/accept_terms", json!({"user_id": "1"}))
        .await;
    assert_eq!(status, 404, "{body}");

    let (status, body) = harness
        .control(accept, json!({"user_id": "5190000001"}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "TERM_OF_SERVICE_SIGNED");
    assert_eq!(body["time"], "2026-03-04T09:00:00Z");

    let (status, body) = harness
        .control(accept, json!({"user_id": "5190000001"}))
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("already signed"),
        "{body}"
    );

    // One MM_LITE_TERMS_SIGNED for the portfolio's one WABA (recorded: no webhook URL here).
    let deliveries = harness.sim.deliveries();
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].attempts, 0);
    assert!(deliveries[0].body.contains("MM_LITE_TERMS_SIGNED"));
    harness.stop().await;
}

#[tokio::test]
async fn a_manual_acceptance_before_the_delay_is_not_repeated_by_the_scheduled_one() {
    let harness = Harness::start(vec![scenario("happy_path")]).await;
    harness.post(&terms_request()).await;
    harness.advance(TimeDelta::seconds(10));
    let (status, _) = harness
        .control(
            "/sim/businesses/4100000001/accept_terms",
            json!({"user_id": "4190000001"}),
        )
        .await;
    assert_eq!(status, 200);
    harness.advance(TimeDelta::minutes(5));
    let business = harness.node(BUSINESS).await;
    assert_eq!(
        business["marketing_messages_onboarding_status"],
        json!({"status": "TERM_OF_SERVICE_SIGNED", "time": "2026-03-02T09:00:10Z"})
    );
    assert_eq!(harness.sim.deliveries().len(), 1);
    harness.stop().await;
}
