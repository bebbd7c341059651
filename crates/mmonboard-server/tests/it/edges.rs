//! The HTTP edges: every error on every route is the JSON `{code, message}`; unknown query parameters, a
//! command not sent as JSON and a portfolio with no history get one answer each, wherever they occur.

use serde_json::Value;

use crate::support::*;

async fn send(request: reqwest::RequestBuilder) -> (u16, reqwest::header::HeaderMap, Value) {
    let response = request.send().await.expect("a response");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.text().await.expect("a body");
    let json = serde_json::from_str(&body)
        .unwrap_or_else(|error| panic!("{status}: {body:?} is not JSON ({error})"));
    (status, headers, json)
}

fn assert_error(body: &Value, code: &str, mentions: &str) {
    assert_eq!(body["code"], code, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(mentions),
        "{message:?} mentions {mentions:?}"
    );
}

#[tokio::test]
async fn unknown_routes_wrong_methods_and_oversized_webhooks_answer_json() {
    let app = spawn_app_with_webhooks().await;
    let (status, headers, body) = send(app.client.get(format!("{}/v2/nothing", app.base))).await;
    assert_eq!(status, 404);
    assert_eq!(headers["content-type"], "application/json");
    assert_error(&body, "unknown_route", "/v2/nothing");

    let (status, headers, body) = send(
        app.client
            .delete(format!("{}/v1/portfolios/123/commands", app.base)),
    )
    .await;
    assert_eq!(status, 405);
    assert_eq!(headers["allow"], "POST");
    assert_error(&body, "method_not_allowed", "DELETE");

    let big = vec![b'x'; 65 * 1024];
    let (status, _, body) = send(
        app.client
            .post(format!("{}/webhooks/meta", app.base))
            .header("content-type", "application/json")
            .body(big),
    )
    .await;
    assert_eq!(status, 413);
    assert_error(&body, "body_too_large", "65536");
    app.shutdown().await;
}

#[tokio::test]
async fn unknown_query_parameters_are_refused_by_name() {
    let app = spawn_app().await;
    app.accept("123", start()).await;
    for (path, named) in [
        ("/v1/portfolios/123?as_off=2026-11-25T10:00:00Z", "as_off"),
        ("/v1/portfolios/123/status?verbose=1", "verbose"),
        ("/v1/events?after=0&limt=5&x=1", "limt, x"),
        (
            "/v1/route?portfolio_id=123&waba_id=1001&kind=utility&polcy=STRICT",
            "polcy",
        ),
    ] {
        let (status, _, body) = send(app.client.get(format!("{}{path}", app.base))).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_error(&body, "unknown_query_parameter", named);
    }
    // The parameters a route reads are still taken.
    let (status, _, _) = send(
        app.client
            .get(format!("{}/v1/events?after=0&limit=5", app.base)),
    )
    .await;
    assert_eq!(status, 200);
    app.shutdown().await;
}

#[tokio::test]
async fn a_command_not_sent_as_json_is_refused_and_appends_nothing() {
    let app = spawn_app().await;
    let url = format!("{}/v1/portfolios/123/commands", app.base);
    let body = start().to_string();
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let mut request = app.client.post(&url).body(body.clone());
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let (status, _, answer) = send(request).await;
        assert_eq!(status, 415, "{content_type:?}: {answer}");
        assert_error(&answer, "unsupported_media_type", "application/json");
    }
    assert_eq!(app.head().await, 0);
    let (status, _, _) = send(
        app.client
            .post(&url)
            .header("content-type", "application/json; charset=utf-8")
            .body(body),
    )
    .await;
    assert_eq!(status, 201);
    app.shutdown().await;
}

#[tokio::test]
async fn a_portfolio_with_no_history_is_404_on_every_route() {
    let app = spawn_app().await;
    app.accept("123", start()).await;
    for path in [
        "/v1/portfolios/999",
        "/v1/portfolios/999?as_of=2026-11-25T10:00:00Z",
        "/v1/portfolios/999/history",
        "/v1/portfolios/999/ad-accounts",
        "/v1/portfolios/999/templates",
        "/v1/route?portfolio_id=999&waba_id=1001&kind=utility",
        "/v1/route?portfolio_id=999&waba_id=1001&template_id=7001&policy=STRICT",
    ] {
        let (status, _, body) = send(app.client.get(format!("{}{path}", app.base))).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert_error(&body, "unknown_portfolio", "999");
    }
    // A known portfolio before its first event was not started yet: that is an answer, not a 404.
    let (status, _, body) = send(app.client.get(format!(
        "{}/v1/portfolios/123?as_of=2020-01-01T00:00:00Z",
        app.base
    )))
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["phase"], "not_started");
    for path in [
        "/v1/portfolios/123/ad-accounts",
        "/v1/portfolios/123/templates",
    ] {
        let (status, _, _) = send(app.client.get(format!("{}{path}", app.base))).await;
        assert_eq!(status, 200, "{path}");
    }
    app.shutdown().await;
}

#[tokio::test]
async fn a_portfolio_id_with_leading_zeros_is_refused_not_a_second_stream() {
    let app = spawn_app().await;
    app.accept("5550000001", start()).await;
    for id in ["0005550000001", "0"] {
        let (status, body) = app.post(id, &start().to_string(), None).await;
        assert_eq!(status, 400, "{id}: {body}");
        assert_error(&body, "invalid_input", id);
        let (status, _) = app.get(&format!("/v1/portfolios/{id}")).await;
        assert_eq!(status, 400);
    }
    assert_eq!(app.head().await, 1);
    app.shutdown().await;
}
