//! The access token rides in the Authorization header and nowhere else: not in the URL, not in `Debug`, not in
//! any error's message. The configuration refuses what cannot work, by name.

use std::time::Duration;

use mmonboard_meta::http::{ACCESS_TOKEN_ENV, AccessToken, ConfigError, DEFAULT_BASE_URL};
use mmonboard_meta::wire::DEFAULT_GRAPH_API_VERSION;
use mmonboard_meta::{GatewayConfig, MetaError, MetaGateway, RetryPolicy};
use serde_json::json;

use crate::fixtures::{
    OBO_WABA, business, business_path, obo_intent_path, obo_waba, obo_waba_node, portfolio,
    terms_path, waba_path,
};
use crate::stub::{
    Answer, HANG_TIMEOUT, Stub, TOKEN, gateway, gateway_with, graph_error, impatient_gateway, ok,
};

#[tokio::test]
async fn every_request_carries_the_token_as_a_bearer_header_only() {
    let stub = Stub::start().await;
    stub.on("GET", &business_path(), [ok(business("NOT_STARTED"))])
        .on(
            "POST",
            &terms_path(),
            [ok(json!({"request_id": "mmreq-1"}))],
        )
        .on("POST", &obo_intent_path(), [ok(json!({"success": true}))]);
    let gateway = gateway(&stub);
    gateway.business(&portfolio()).await.expect("read");
    gateway.request_terms(&portfolio()).await.expect("sent");
    gateway
        .set_obo_mobility_intent(&obo_waba())
        .await
        .expect("sent");
    let seen = stub.seen();
    assert_eq!(seen.len(), 3);
    for request in &seen {
        assert_eq!(
            request.authorization.as_deref(),
            Some("Bearer tok-123"),
            "{request:?}"
        );
        assert!(
            !request.raw_query.contains(TOKEN) && !request.path.contains(TOKEN),
            "the token never rides in the URL: {request:?}"
        );
        assert!(!request.query.contains_key("access_token"), "{request:?}");
    }
}

#[tokio::test]
async fn the_token_shows_in_no_debug_output_and_no_error_message() {
    let mut failures: Vec<MetaError> = Vec::new();

    // Graph: the token refused.
    let stub = Stub::start().await;
    stub.on("GET", &waba_path(OBO_WABA), [graph_error(401, 190)]);
    let gateway = gateway(&stub);
    failures.push(gateway.waba(&obo_waba()).await.expect_err("190"));
    for shown in [
        format!("{gateway:?}"),
        format!("{:?}", gateway.config()),
        format!("{:?}", gateway.config().access_token),
        format!("{:?}", AccessToken::new(TOKEN)),
    ] {
        assert!(!shown.contains(TOKEN), "{shown}");
    }
    assert!(format!("{gateway:?}").contains("<redacted>"));

    // Timeout, then WriteNotApplied from a write that timed out and did not happen.
    let stub = Stub::start().await;
    stub.on("GET", &business_path(), [Answer::Hang]);
    failures.push(
        impatient_gateway(&stub, 1)
            .business(&portfolio())
            .await
            .expect_err("timeout"),
    );
    let stub = Stub::start().await;
    stub.on("POST", &obo_intent_path(), [Answer::Hang]).on(
        "GET",
        &waba_path(OBO_WABA),
        [ok(obo_waba_node(false))],
    );
    failures.push(
        impatient_gateway(&stub, 1)
            .set_obo_mobility_intent(&obo_waba())
            .await
            .expect_err("not applied"),
    );

    // UnexpectedAnswer: a proxy's page, and a 200 that is not the node.
    let stub = Stub::start().await;
    stub.on("GET", &business_path(), [Answer::Text(502, "Bad Gateway")])
        .on("GET", &waba_path(OBO_WABA), [ok(json!({"id": OBO_WABA}))]);
    let gateway = gateway_with(&stub.base("/graph"), Duration::from_secs(2), 1);
    failures.push(gateway.business(&portfolio()).await.expect_err("502"));
    failures.push(gateway.waba(&obo_waba()).await.expect_err("not a WABA"));

    // InvalidValue.
    let mut bad = obo_waba_node(false);
    bad["tax_country"] = json!("ZZZ");
    let stub = Stub::start().await;
    stub.on("GET", &waba_path(OBO_WABA), [ok(bad)]);
    failures.push(
        crate::stub::gateway(&stub)
            .waba(&obo_waba())
            .await
            .expect_err("ZZZ"),
    );

    // Transport: nothing listens.
    let base = crate::stub::closed_base().await;
    failures.push(
        gateway_with(&base, Duration::from_secs(2), 1)
            .business(&portfolio())
            .await
            .expect_err("refused connection"),
    );

    let variants: Vec<&str> = failures
        .iter()
        .map(|failure| match failure {
            MetaError::Graph { .. } => "Graph",
            MetaError::Timeout { .. } => "Timeout",
            MetaError::Transport { .. } => "Transport",
            MetaError::UnexpectedAnswer { .. } => "UnexpectedAnswer",
            MetaError::InvalidValue { .. } => "InvalidValue",
            MetaError::WriteNotApplied { .. } => "WriteNotApplied",
        })
        .collect();
    assert_eq!(
        variants,
        [
            "Graph",
            "Timeout",
            "WriteNotApplied",
            "UnexpectedAnswer",
            "UnexpectedAnswer",
            "InvalidValue",
            "Transport"
        ]
    );
    for failure in &failures {
        let shown = failure.to_string();
        assert!(!shown.contains(TOKEN), "{shown}");
        assert!(!format!("{failure:?}").contains(TOKEN), "{failure:?}");
        let mut source = std::error::Error::source(failure);
        while let Some(inner) = source {
            assert!(!inner.to_string().contains(TOKEN), "{inner}");
            source = inner.source();
        }
    }
}

#[test]
fn a_configuration_refuses_a_base_url_that_is_not_absolute_http() {
    for base in [
        "",
        "graph.facebook.com",
        "/v23.0",
        "ftp://graph.facebook.com",
        "file:///tmp/graph",
        "mailto:meta@example.com",
        "http://",
        "https://exa mple.com",
    ] {
        assert_eq!(
            GatewayConfig::new(base, "v23.0", AccessToken::new(TOKEN)).unwrap_err(),
            ConfigError::BaseUrl(base.into()),
            "{base:?}"
        );
    }
    for base in [
        DEFAULT_BASE_URL,
        "http://127.0.0.1:8090",
        "https://proxy.example/meta/graph/",
    ] {
        GatewayConfig::new(base, "v23.0", AccessToken::new(TOKEN))
            .unwrap_or_else(|error| panic!("{base}: {error}"));
    }
}

#[test]
fn a_configuration_refuses_a_version_not_of_the_form_v_major_minor() {
    for version in [
        "", "23.0", "v23", "v23.", "v.0", "V23.0", "v23.0.1", "v2a.0", "v23.0/", "latest", " v23.0",
    ] {
        assert_eq!(
            GatewayConfig::new(DEFAULT_BASE_URL, version, AccessToken::new(TOKEN)).unwrap_err(),
            ConfigError::Version(version.into()),
            "{version:?}"
        );
    }
    for version in [DEFAULT_GRAPH_API_VERSION, "v1.0", "v24.1", "v100.25"] {
        GatewayConfig::new(DEFAULT_BASE_URL, version, AccessToken::new(TOKEN))
            .unwrap_or_else(|error| panic!("{version}: {error}"));
    }
    // A bad base URL is reported before a bad version.
    assert_eq!(
        GatewayConfig::new("nowhere", "23", AccessToken::new(TOKEN)).unwrap_err(),
        ConfigError::BaseUrl("nowhere".into())
    );
}

#[test]
fn a_configuration_has_a_timeout_and_the_default_retry_policy() {
    let config = GatewayConfig::new(
        DEFAULT_BASE_URL,
        DEFAULT_GRAPH_API_VERSION,
        AccessToken::new(TOKEN),
    )
    .expect("valid");
    assert_eq!(config.timeout, Duration::from_secs(10));
    assert_eq!(config.retry, RetryPolicy::default());
    assert_eq!(config.api_version, "v23.0");
    assert_eq!(config.base_url.as_str(), "https://graph.facebook.com/");
}

/// Set in the copy of this test binary that checks the missing-token case.
const WITHOUT_TOKEN_CHILD: &str = "MMONBOARD_TEST_WITHOUT_META_ACCESS_TOKEN";

#[test]
fn from_env_without_the_token_is_missing_token() {
    if std::env::var_os(WITHOUT_TOKEN_CHILD).is_some() {
        assert!(
            std::env::var_os(ACCESS_TOKEN_ENV).is_none(),
            "the parent removed it"
        );
        let error =
            GatewayConfig::from_env(DEFAULT_BASE_URL, DEFAULT_GRAPH_API_VERSION).unwrap_err();
        assert_eq!(error, ConfigError::MissingToken);
        assert!(error.to_string().contains("META_ACCESS_TOKEN"), "{error}");
        return;
    }
    // The variable is process-wide and may be set where the tests run: the case is checked in a copy of
    // this test binary started without it, rather than skipped.
    let name = "token::from_env_without_the_token_is_missing_token";
    let output = std::process::Command::new(std::env::current_exe().expect("the test binary"))
        .args(["--exact", name, "--test-threads", "1"])
        .env_remove(ACCESS_TOKEN_ENV)
        .env(WITHOUT_TOKEN_CHILD, "1")
        .output()
        .expect("the test binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "the check without {ACCESS_TOKEN_ENV} ran and passed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn a_timed_out_request_reports_the_configured_timeout_not_the_url() {
    let stub = Stub::start().await;
    stub.on("GET", &business_path(), [Answer::Hang]);
    let failure = impatient_gateway(&stub, 1)
        .business(&portfolio())
        .await
        .expect_err("timeout");
    let shown = failure.to_string();
    assert!(
        shown.contains(&format!("{} ms", HANG_TIMEOUT.as_millis())),
        "{shown}"
    );
    assert!(!shown.contains("127.0.0.1"), "{shown}");
    assert_eq!(stub.count("GET", &business_path()), 1);
}
