//! Every Graph API request needs the bearer token; unknown objects and paths answer Meta's errors.

use serde_json::Value;

use crate::support::{Harness, TOKEN, scenario};

fn assert_graph_error(body: &Value, code: i64) {
    let error = &body["error"];
    assert_eq!(error["code"], code, "{body}");
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(
        error["type"].as_str().is_some_and(|t| !t.is_empty()),
        "{body}"
    );
    assert!(
        error["fbtrace_id"].as_str().is_some_and(|t| !t.is_empty()),
        "{body}"
    );
}

#[tokio::test]
async fn a_request_without_the_token_is_refused_with_190() {
    let harness = Harness::start(vec![scenario("happy_path")]).await;
    let url = harness.graph_url("4100000001");

    let missing = harness.client.get(&url).send().await.unwrap();
    assert_eq!(missing.status().as_u16(), 401);
    let body: Value = missing.json().await.unwrap();
    assert_graph_error(&body, 190);
    assert_eq!(body["error"]["type"], "OAuthException");

    let wrong = harness
        .client
        .post(harness.graph_url("4100000001/onboard_partners_to_mm_lite"))
        .bearer_auth("not-the-token")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 401);
    assert_graph_error(&wrong.json().await.unwrap(), 190);

    // Refused requests are recorded, and change nothing.
    let requests = harness.sim.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].method, "GET");
    assert_eq!(requests[0].path, "/4100000001");
    assert_eq!(requests[0].status, 401);
    assert_eq!(requests[1].path, "/4100000001/onboard_partners_to_mm_lite");
    assert_eq!(requests[1].at, harness.now());
    let business = harness.node("4100000001").await;
    assert_eq!(
        business["marketing_messages_onboarding_status"]["status"],
        "NOT_STARTED"
    );

    let right = harness
        .client
        .get(&url)
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(right.status().as_u16(), 200);
    harness.stop().await;
}

#[tokio::test]
async fn unknown_objects_and_paths_answer_graph_errors() {
    let harness = Harness::start(vec![scenario("happy_path")]).await;

    let (status, body) = harness.get("999999").await;
    assert_eq!(status, 400);
    assert_graph_error(&body, 100);
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("Unsupported get request. Object with ID '999999' does not exist"),
        "{message}"
    );

    // A business has no message templates; a WABA cannot be invited; a business is not an OBO WABA.
    let (status, body) = harness.get("4100000001/message_templates").await;
    assert_eq!(
        (status, body["error"]["code"].as_i64()),
        (400, Some(100)),
        "{body}"
    );
    let (status, body) = harness.post("4110000001/onboard_partners_to_mm_lite").await;
    assert_eq!(
        (status, body["error"]["code"].as_i64()),
        (400, Some(100)),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Unsupported post request")
    );
    let (status, body) = harness.post("4100000001/set_obo_mobility_intent").await;
    assert_eq!(
        (status, body["error"]["code"].as_i64()),
        (400, Some(100)),
        "{body}"
    );

    // Without a version prefix the path is unknown.
    let response = harness
        .client
        .get(format!("{}/4100000001", harness.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let paths: Vec<String> = harness.sim.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        [
            "/999999",
            "/4100000001/message_templates",
            "/4110000001/onboard_partners_to_mm_lite",
            "/4100000001/set_obo_mobility_intent",
            "/4100000001"
        ]
    );
    harness.stop().await;
}
