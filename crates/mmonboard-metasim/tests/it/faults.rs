//! Planted faults: the next matching requests fail, recorded; a dropped write is applied anyway.

use chrono::TimeDelta;
use serde_json::json;

use crate::support::{Harness, scenario};

#[tokio::test]
async fn the_next_matching_requests_fail_with_the_planted_status_and_code() {
    let harness = Harness::start(vec![scenario("happy_path")]).await;
    let (status, body) = harness
        .control(
            "/sim/faults",
            json!({"method": "GET", "path_contains": "/4110000001", "status": 503, "code": 2, "count": 2}),
        )
        .await;
    assert_eq!(status, 201, "{body}");

    // Other methods and paths are not affected.
    assert_eq!(harness.get("4100000001").await.0, 200);
    for _ in 0..2 {
        let (status, body) = harness.get("4110000001/message_templates").await;
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["error"]["code"], 2);
        assert!(body["error"]["fbtrace_id"].is_string());
    }
    assert_eq!(harness.get("4110000001").await.0, 200);

    let statuses: Vec<(String, u16)> = harness
        .sim
        .requests()
        .into_iter()
        .map(|request| (request.path, request.status))
        .collect();
    assert_eq!(
        statuses,
        [
            ("/4100000001".to_owned(), 200),
            ("/4110000001/message_templates".to_owned(), 503),
            ("/4110000001/message_templates".to_owned(), 503),
            ("/4110000001".to_owned(), 200),
        ]
    );

    // A failed write is not applied.
    harness
        .control(
            "/sim/faults",
            json!({"method": "post", "path_contains": "onboard_partners", "status": 500, "code": 1, "count": 1, "message": "boom"}),
        )
        .await;
    let (status, body) = harness.post("4100000001/onboard_partners_to_mm_lite").await;
    assert_eq!(
        (status, body["error"]["message"].as_str()),
        (500, Some("boom"))
    );
    let business = harness.node("4100000001").await;
    assert_eq!(
        business["marketing_messages_onboarding_status"]["status"],
        "NOT_STARTED"
    );
    assert_eq!(
        harness
            .post("4100000001/onboard_partners_to_mm_lite")
            .await
            .0,
        200
    );

    let (status, _) = harness
        .control(
            "/sim/faults",
            json!({"method": "PUT", "path_contains": "x"}),
        )
        .await;
    assert_eq!(status, 400);
    let (status, _) = harness
        .control(
            "/sim/faults",
            json!({"method": "GET", "path_contains": "x", "colour": 1}),
        )
        .await;
    assert_eq!(status, 400);
    harness.stop().await;
}

#[tokio::test]
async fn a_dropped_write_is_applied_but_answered_with_the_error() {
    let harness = Harness::start(vec![scenario("obo_waba")]).await;
    harness
        .control(
            "/sim/faults",
            json!({"method": "POST", "path_contains": "onboard_partners_to_mm_lite", "status": 500, "code": 1, "count": 1, "drop": true}),
        )
        .await;
    let (status, body) = harness.post("4200000001/onboard_partners_to_mm_lite").await;
    assert_eq!(
        (status, body["error"]["code"].as_i64()),
        (500, Some(1)),
        "{body}"
    );
    let business = harness.node("4200000001").await;
    assert_eq!(
        business["marketing_messages_onboarding_status"]["status"],
        "REQUEST_SENT"
    );
    // The admin's delay started with that request.
    harness.advance(TimeDelta::minutes(2));
    let business = harness.node("4200000001").await;
    assert_eq!(
        business["marketing_messages_onboarding_status"]["status"],
        "TERM_OF_SERVICE_SIGNED"
    );

    harness
        .control(
            "/sim/faults",
            json!({"method": "POST", "path_contains": "set_obo_mobility_intent", "status": 502, "code": 2, "count": 1, "drop": true}),
        )
        .await;
    let (status, _) = harness.post("4210000001/set_obo_mobility_intent").await;
    assert_eq!(status, 502);
    assert_eq!(
        harness.node("4210000001").await["obo_mobility_intent"]["status"],
        "PENDING"
    );
    harness.stop().await;
}
