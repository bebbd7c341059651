//! Meta's webhooks at `/webhooks/meta`: the handshake, signatures checked over the raw body, redeliveries
//! that record nothing new, and every notification becoming a command on the right portfolio.

use mmonboard_meta::webhook::sign;
use serde_json::{Value, json};

use crate::support::*;

const PORTFOLIO: &str = "4100000001";

fn account_update(waba: &str, event: &str, owner: Option<&str>) -> Vec<u8> {
    let mut waba_info = json!({ "waba_id": waba });
    if let Some(owner) = owner {
        waba_info["owner_business_id"] = json!(owner);
    }
    json!({"object": "whatsapp_business_account", "entry": [{"id": waba, "time": 1_795_000_000,
        "changes": [{"field": "account_update", "value": {"event": event, "waba_info": waba_info}}]}]})
    .to_string()
    .into_bytes()
}

async fn deliver(app: &App, body: &[u8], signature: Option<String>) -> (u16, Value) {
    let mut request = app
        .client
        .post(format!("{}/webhooks/meta", app.base))
        .header("content-type", "application/json")
        .body(body.to_vec());
    if let Some(signature) = signature {
        request = request.header("X-Hub-Signature-256", signature);
    }
    let response = request.send().await.expect("a response");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn deliver_signed(app: &App, body: &[u8]) -> (u16, Value) {
    deliver(app, body, Some(sign(APP_SECRET.as_bytes(), body))).await
}

/// The last `type_name` event of `history` names, as its causation, the event recorded just before it: the
/// state the notification was decided on.
fn assert_caused_by_the_event_before(history: &Value, type_name: &str) {
    let events = history.as_array().cloned().unwrap_or_default();
    let index = events
        .iter()
        .rposition(|event| event["type"] == type_name)
        .unwrap_or_else(|| panic!("{type_name} is in the history"));
    assert!(index > 0, "{type_name} follows other events");
    assert_eq!(
        events[index]["metadata"]["causation_id"],
        events[index - 1]["event_id"],
        "{type_name} is caused by the event before it"
    );
}

async fn phase(app: &App) -> String {
    app.get(&format!("/v1/portfolios/{PORTFOLIO}")).await.1["phase"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn the_subscription_handshake_echoes_the_challenge_only_for_the_right_token() {
    let app = spawn_app_with_webhooks().await;
    let handshake = |token: &str| {
        format!(
            "{}/webhooks/meta?hub.mode=subscribe&hub.verify_token={token}&hub.challenge=1158201444",
            app.base
        )
    };
    let response = app
        .client
        .get(handshake(VERIFY_TOKEN))
        .send()
        .await
        .expect("a response");
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.expect("a body"), "1158201444");

    let (status, body) = app
        .get("/webhooks/meta?hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1")
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("invalid_verify_token"))
    );
    let (status, _) = app.get("/webhooks/meta?hub.mode=subscribe").await;
    assert_eq!(status, 400);
    app.shutdown().await;

    // A server without the secrets says so rather than accepting anything.
    let plain = spawn_app().await;
    let (status, body) = plain
        .get("/webhooks/meta?hub.mode=subscribe&hub.verify_token=x&hub.challenge=1")
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("webhooks_not_configured"))
    );
    plain.shutdown().await;
}

#[tokio::test]
async fn unsigned_or_mis_signed_deliveries_are_refused_with_nothing_recorded() {
    let app = spawn_app_with_webhooks().await;
    up_to_terms(&app, PORTFOLIO).await;
    let head = app.head().await;
    let body = account_update("1001", "MM_LITE_TERMS_SIGNED", Some(PORTFOLIO));

    let (status, answer) = deliver(&app, &body, None).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (401, Some("invalid_signature"))
    );
    let (status, _) = deliver(&app, &body, Some(sign(b"another secret", &body))).await;
    assert_eq!(status, 401);
    // Signed over other bytes than those sent (one space added).
    let mut altered = body.clone();
    altered.push(b' ');
    let (status, _) = deliver(&app, &altered, Some(sign(APP_SECRET.as_bytes(), &body))).await;
    assert_eq!(status, 401);
    let (status, _) = deliver(&app, &body, Some("sha256=not-hex".into())).await;
    assert_eq!(status, 401);

    assert_eq!(app.head().await, head, "nothing recorded");
    assert_eq!(phase(&app).await, "terms_pending");
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
        metrics.contains("mmonboard_meta_webhooks_total{outcome=\"refused\"} 4"),
        "{metrics}"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn terms_signed_moves_the_portfolio_once_and_a_redelivery_records_nothing() {
    let app = spawn_app_with_webhooks().await;
    up_to_terms(&app, PORTFOLIO).await;
    let body = account_update("1001", "MM_LITE_TERMS_SIGNED", Some(PORTFOLIO));

    let (status, answer) = deliver_signed(&app, &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["notifications"][0]["outcome"], "recorded");
    assert_eq!(
        answer["notifications"][0]["events"],
        json!(["terms_signed"])
    );
    assert_eq!(phase(&app).await, "connecting");
    let head = app.head().await;

    // Meta delivers the same bytes again: acknowledged, nothing new.
    let (status, answer) = deliver_signed(&app, &body).await;
    assert_eq!(status, 200);
    assert_eq!(answer["notifications"][0]["outcome"], "already_applied");
    assert_eq!(app.head().await, head);

    // The history says who reported it.
    let history = app
        .get(&format!("/v1/portfolios/{PORTFOLIO}/history"))
        .await
        .1;
    let last = history
        .as_array()
        .and_then(|events| events.last())
        .cloned()
        .unwrap_or_default();
    assert_eq!(last["type"], "terms_signed");
    assert_eq!(last["metadata"]["actor"], "meta-webhook");
    assert_caused_by_the_event_before(&history, "terms_signed");
    app.shutdown().await;
}

#[tokio::test]
async fn a_notification_the_domain_refuses_is_acknowledged_and_records_nothing() {
    let app = spawn_app_with_webhooks().await;
    up_to_terms(&app, PORTFOLIO).await;
    let head = app.head().await;
    // A WABA that is not in the portfolio's eligibility check.
    let body = account_update("1999", "MM_LITE_TERMS_SIGNED", Some(PORTFOLIO));
    let (status, answer) = deliver_signed(&app, &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["notifications"][0]["outcome"], "refused");
    assert_eq!(answer["notifications"][0]["code"], "unknown_waba");
    assert_eq!(app.head().await, head);

    // Events mmonboard does not act on are acknowledged too.
    let body = account_update("1001", "VERIFIED_ACCOUNT", Some(PORTFOLIO));
    let (status, answer) = deliver_signed(&app, &body).await;
    assert_eq!(
        (status, answer["notifications"][0]["outcome"].as_str()),
        (200, Some("ignored"))
    );

    // A signed body that is not a webhook payload names what is wrong.
    let (status, answer) = deliver_signed(&app, b"{\"object\": 1}").await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(app.head().await, head);
    app.shutdown().await;
}

#[tokio::test]
async fn a_restriction_naming_only_the_waba_finds_its_portfolio_and_suspends_it() {
    let app = spawn_app_with_webhooks().await;
    live_with_template(&app, PORTFOLIO).await;
    // The WABA → portfolio index is the ad-accounts read model: wait until it has caught up.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (_, accounts) = app
            .get(&format!("/v1/portfolios/{PORTFOLIO}/ad-accounts"))
            .await;
        if accounts.as_array().is_some_and(|rows| !rows.is_empty()) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the read model caught up"
        );
        tokio::task::yield_now().await;
    }
    let body = account_update("1001", "ACCOUNT_RESTRICTION", None);
    let (status, answer) = deliver_signed(&app, &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["notifications"][0]["portfolio_id"], PORTFOLIO);
    assert_eq!(
        answer["notifications"][0]["events"],
        json!(["waba_restricted"])
    );
    let state = app.get(&format!("/v1/portfolios/{PORTFOLIO}")).await.1;
    assert_eq!(state["wabas"]["1001"]["routing"]["status"], "suspended");
    let history = app
        .get(&format!("/v1/portfolios/{PORTFOLIO}/history"))
        .await
        .1;
    assert_caused_by_the_event_before(&history, "waba_restricted");

    // Meta lifting a disablement does not reinstate by itself: only a new eligibility check does (DOMAIN.md).
    let head = app.head().await;
    for state in ["REINSTATE", "SCHEDULE_FOR_DISABLE"] {
        let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "1001", "time": 1_795_000_100,
            "changes": [{"field": "account_update", "value": {"event": "DISABLED_UPDATE",
                "ban_info": {"waba_ban_state": state, "waba_ban_date": "November 25, 2026"}}}]}]})
        .to_string();
        let (status, answer) = deliver_signed(&app, body.as_bytes()).await;
        assert_eq!(
            (status, answer["notifications"][0]["outcome"].as_str()),
            (200, Some("ignored")),
            "{state}: {answer}"
        );
    }
    assert_eq!(app.head().await, head);

    // A WABA not known here (yet) is not acknowledged, so that Meta delivers it again; nothing is recorded.
    let head = app.head().await;
    let body = account_update("1888", "ACCOUNT_RESTRICTION", None);
    let (status, answer) = deliver_signed(&app, &body).await;
    assert_eq!(
        (status, answer["notifications"][0]["outcome"].as_str()),
        (503, Some("unroutable"))
    );
    assert_eq!(app.head().await, head);
    app.shutdown().await;
}

#[tokio::test]
async fn a_malformed_notification_does_not_hide_the_valid_ones_beside_it() {
    let app = spawn_app_with_webhooks().await;
    up_to_terms(&app, PORTFOLIO).await;
    let body = json!({"object": "whatsapp_business_account", "entry": [
        {"id": "not-a-waba", "changes": [{"field": "account_update", "value": {"event": "ACCOUNT_RESTRICTION"}}]},
        {"id": "1001", "changes": [{"field": "account_update", "value": {"event": "MM_LITE_TERMS_SIGNED",
            "waba_info": {"waba_id": "1001", "owner_business_id": PORTFOLIO}}}]}]})
    .to_string()
    .into_bytes();
    let (status, answer) = deliver_signed(&app, &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["notifications"][0]["outcome"], "invalid");
    assert!(
        answer["notifications"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("not-a-waba"),
        "{answer}"
    );
    assert_eq!(answer["notifications"][1]["outcome"], "recorded");
    assert_eq!(phase(&app).await, "connecting");
    app.shutdown().await;
}

#[tokio::test]
async fn what_meta_reported_cannot_be_written_with_an_operator_token() {
    let app = spawn_app_with_webhooks().await;
    up_to_terms(&app, PORTFOLIO).await;
    let head = app.head().await;
    let operator = client_with(&app.token("ops", "operator", None).await);
    for command in [
        json!({"type": "record_terms_signed", "waba_id": "1001"}),
        json!({"type": "record_terms_request", "already_invited": true}),
        json!({"type": "record_process_stall", "step": "connect", "attempts": 1, "error": "x"}),
        json!({"type": "accept_terms", "accepted_by": "3001", "role": "ADMIN", "terms_version": "v1"}),
    ] {
        let (status, body) = app
            .post_with(&operator, PORTFOLIO, &command.to_string())
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (403, Some("forbidden")),
            "{command}"
        );
        assert!(
            body["message"]
                .as_str()
                .is_some_and(|message| message.contains("recorder")),
            "{body}"
        );
    }
    assert_eq!(app.head().await, head);
    assert_eq!(phase(&app).await, "terms_pending");
    app.shutdown().await;
}
