//! The command contract, bad input, idempotency, queries, read models, routing and operations.

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn commands_are_accepted_refused_or_rejected_and_only_accepted_ones_append() {
    let app = spawn_app().await;
    let (status, body) = app.post("123", &start().to_string(), None).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["events"][0]["type"], "onboarding_started");
    assert_eq!(app.head().await, 1);

    let (status, body) = app.post("123", &start().to_string(), None).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["code"], "already_started");
    assert_eq!(body["state"], "checking_eligibility");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|message| message.contains("already started"))
    );

    let bad = [
        (
            "123",
            r#"{"type": "start_onboarding""#,
            400,
            "invalid_input",
        ),
        ("123", r#"{"type": "launch"}"#, 400, "invalid_input"),
        (
            "12x",
            r#"{"type": "start_onboarding"}"#,
            400,
            "invalid_input",
        ),
        (
            "123",
            r#"{"type": "request_obo_migration", "waba_id": "abc"}"#,
            400,
            "invalid_input",
        ),
    ];
    for (portfolio, body, expected_status, code) in bad {
        let (status, answer) = app.post(portfolio, body, None).await;
        assert_eq!(status, expected_status, "{body}: {answer}");
        assert_eq!(answer["code"], code);
        assert!(
            answer["message"]
                .as_str()
                .is_some_and(|message| !message.is_empty())
        );
    }
    let oversized = format!(
        r#"{{"type": "offboard", "reason": "{}"}}"#,
        "x".repeat(70_000)
    );
    let (status, answer) = app.post("123", &oversized, None).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (413, Some("body_too_large"))
    );
    assert_eq!(
        app.head().await,
        1,
        "nothing appended by refusals or invalid input"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn a_rule_broken_by_the_command_is_422() {
    let app = spawn_app().await;
    up_to_terms(&app, "555").await;
    let employee = json!({"type": "accept_terms", "accepted_by": "3002", "role": "EMPLOYEE", "terms_version": "v1"});
    let (status, body) = app.post("555", &employee.to_string(), None).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["code"], "terms_require_admin");
    assert_eq!(body["state"], "terms_pending");
    app.shutdown().await;
}

#[tokio::test]
async fn an_idempotency_key_applies_a_command_once() {
    let app = spawn_app().await;
    let (first_status, first) = app
        .post("123", &start().to_string(), Some("order-42"))
        .await;
    let (second_status, second) = app
        .post("123", &start().to_string(), Some("order-42"))
        .await;
    assert_eq!((first_status, second_status), (201, 200));
    assert_eq!(second["already_applied"], true);
    assert_eq!(first["events"], second["events"]);
    assert_eq!(app.head().await, 1);
    let (status, _) = app
        .post("456", &start().to_string(), Some("order-42"))
        .await;
    assert_eq!(
        status, 201,
        "the same key on another portfolio is another command"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn state_history_and_read_models_answer_queries() {
    let app = spawn_app().await;
    let (status, body) = app.get("/v1/portfolios/999").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("unknown_portfolio"))
    );
    live_with_template(&app, "777").await;
    let (status, state) = app.get("/v1/portfolios/777").await;
    assert_eq!(status, 200);
    assert_eq!(
        (state["phase"].as_str(), state["version"].as_u64()),
        (Some("live"), Some(9))
    );
    let (_, then) = app
        .get("/v1/portfolios/777?as_of=2026-11-25T09:00:00Z")
        .await;
    // The clock stood still until the config sync window: as of then, seven events had been recorded.
    assert_eq!(
        (then["phase"].as_str(), then["version"].as_u64()),
        (Some("syncing_config"), Some(7))
    );
    let (status, _) = app.get("/v1/portfolios/777?as_of=yesterday").await;
    assert_eq!(status, 400);
    let (_, history) = app.get("/v1/portfolios/777/history").await;
    assert_eq!(history.as_array().map(Vec::len), Some(9));
    assert_eq!(history[8]["transition"]["to"], "live");

    // The projector follows the log; wait for it with a deadline.
    let status_row = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        loop {
            let (code, row) = app.get("/v1/portfolios/777/status").await;
            if code == 200 && row["version"] == 9 {
                return row;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("projected before the deadline");
    assert_eq!(status_row["phase"], "live");
    let (_, accounts) = app.get("/v1/portfolios/777/ad-accounts").await;
    assert_eq!(accounts[0]["ad_account_id"], "8001");
    let (_, templates) = app.get("/v1/portfolios/777/templates").await;
    assert_eq!(templates["templates"][0]["status"], "syncing");
    app.shutdown().await;
}

#[tokio::test]
async fn the_route_follows_the_rules_and_the_clock() {
    let app = spawn_app().await;
    live_with_template(&app, "888").await;
    let ask = |policy: &str| {
        format!("/v1/route?portfolio_id=888&waba_id=1001&template_id=7001&policy={policy}")
    };
    let (_, syncing) = app.get(&ask("CLOUD_API_FALLBACK")).await;
    assert_eq!(
        (
            syncing["route"].as_str(),
            syncing["reason"]["code"].as_str()
        ),
        (Some("cloud_api"), Some("template_syncing"))
    );
    let (_, strict) = app.get(&ask("STRICT")).await;
    assert!(strict["route"].is_null(), "STRICT refuses: {strict}");
    app.clock.advance(chrono::TimeDelta::minutes(15));
    app.accept(
        "888",
        json!({"type": "record_template_mirror_synced", "waba_id": "1001", "template_id": "7001"}),
    )
    .await;
    let (_, ready) = app.get(&ask("STRICT")).await;
    assert_eq!(ready["route"], "marketing_messages_api", "{ready}");
    let (_, utility) = app
        .get("/v1/route?portfolio_id=888&waba_id=1001&kind=utility")
        .await;
    assert_eq!(utility["route"], "cloud_api");
    let (status, _) = app.get("/v1/route?portfolio_id=888&waba_id=1001").await;
    assert_eq!(status, 400);
    app.shutdown().await;
}

#[tokio::test]
async fn operations_endpoints_answer() {
    let app = spawn_app().await;
    app.accept("123", start()).await;
    let (status, _) = app.get("/healthz").await;
    assert_eq!(status, 200);
    let (status, ready) = app.get("/readyz").await;
    assert_eq!((status, ready["status"].as_str()), (200, Some("ready")));
    let (status, openapi) = app.get("/openapi.json").await;
    assert_eq!((status, openapi["openapi"].as_str()), (200, Some("3.1.0")));
    let metrics = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("mmonboard_commands_total{source=\"api\",outcome=\"accepted\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("mmonboard_events_appended_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("mmonboard_projection_lag_events"),
        "{metrics}"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn a_graceful_shutdown_loses_nothing_that_was_acknowledged() {
    let app = spawn_app().await;
    let url = app.url.clone();
    let mut acknowledged = 0;
    for portfolio in 1..=20 {
        app.accept(&portfolio.to_string(), start()).await;
        acknowledged += 1;
    }
    let _files = app.shutdown().await; // keeps the database's directory alive
    let store =
        mmonboard_eventlog::EventLog::open(&url, &mmonboard_eventlog::LogOptions::default())
            .await
            .expect("the log reopens");
    use mmonboard_eventlog::EventStore;
    assert_eq!(store.head_position().await.expect("head"), acknowledged);
    assert!(
        store
            .verify()
            .await
            .expect("verifies")
            .first_break
            .is_none()
    );
    store.close().await;
}
