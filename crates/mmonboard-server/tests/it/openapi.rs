//! The OpenAPI document: `docs/openapi.json` is what the code generates (regenerate it with
//! `MMONBOARD_UPDATE_OPENAPI=1 cargo test -p mmonboard-server openapi`), it is a valid OpenAPI 3.1 document
//! (typed by the `oas3` crate, every `$ref` resolves), it documents every route of the access matrix, and
//! `/openapi.json` serves it.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::Value;

use crate::support::*;

const REGENERATE: &str = "MMONBOARD_UPDATE_OPENAPI=1 cargo test -p mmonboard-server openapi";

fn committed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json")
}

fn generated() -> Value {
    serde_json::from_str(mmonboard_server::openapi_document()).expect("the document is JSON")
}

#[test]
fn docs_openapi_json_is_the_generated_document() {
    let generated = mmonboard_server::openapi_document();
    let path = committed_path();
    if std::env::var_os("MMONBOARD_UPDATE_OPENAPI").is_some_and(|value| value == "1") {
        std::fs::write(&path, generated).expect("docs/openapi.json is writable");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/openapi.json is not the document the code generates: regenerate it with `{REGENERATE}` \
         and commit it"
    );
}

/// The value a local `$ref` (`#/a/b`) points to, if any.
fn resolve<'a>(document: &'a Value, reference: &str) -> Option<&'a Value> {
    let pointer = reference.strip_prefix('#')?;
    document.pointer(pointer)
}

fn references<'a>(value: &'a Value, found: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            for (key, item) in map {
                match (key.as_str(), item) {
                    ("$ref", Value::String(reference)) => found.push(reference),
                    _ => references(item, found),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| references(item, found)),
        _ => {}
    }
}

#[test]
fn the_document_is_valid_openapi_and_every_reference_resolves() {
    let text = mmonboard_server::openapi_document();
    let spec = oas3::from_json(text).expect("the document is an OpenAPI 3.1 document");
    let version = spec
        .validate_version()
        .expect("a supported OpenAPI version");
    assert_eq!((version.major, version.minor), (3, 1));

    let document = generated();
    let mut found = Vec::new();
    references(&document, &mut found);
    assert!(!found.is_empty(), "the document uses components");
    for reference in found {
        assert!(
            resolve(&document, reference).is_some(),
            "{reference} does not resolve"
        );
    }

    let mut operation_ids = BTreeSet::new();
    for (path, method, operation) in spec.operations() {
        let id = operation
            .operation_id
            .clone()
            .unwrap_or_else(|| panic!("{method} {path} has an operationId"));
        assert!(operation_ids.insert(id.clone()), "{id} is unique");
        let responses = operation.responses.as_ref().map_or(0, |map| map.len());
        assert!(responses > 0, "{method} {path} documents its answers");
        let raw = &document["paths"][&path][method.as_str().to_lowercase()];
        for (status, response) in raw["responses"].as_object().into_iter().flatten() {
            assert!(
                status.len() == 3 && status.parse::<u16>().is_ok(),
                "{method} {path}: {status} is a status"
            );
            assert!(
                response["headers"]["X-Request-Id"].is_object(),
                "{method} {path} {status} documents X-Request-Id"
            );
            if status == "429" || status == "503" {
                assert!(
                    response["headers"]["Retry-After"].is_object(),
                    "{method} {path} {status} documents Retry-After"
                );
            }
        }
        let parameters = operation
            .parameters(&spec)
            .unwrap_or_else(|error| panic!("{method} {path}'s parameters resolve: {error}"));
        for segment in path.split('/') {
            if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                assert!(
                    parameters.iter().any(|parameter| parameter.name == name),
                    "{method} {path} declares its path parameter {name}"
                );
            }
        }
        operation
            .request_body(&spec)
            .unwrap_or_else(|error| panic!("{method} {path}'s body resolves: {error}"));
    }
}

#[test]
fn every_route_of_the_access_matrix_is_documented_with_its_statuses() {
    let document = generated();
    for rule in mmonboard_access::MATRIX {
        let operation = &document["paths"][rule.path][rule.method.to_lowercase()];
        assert!(
            operation.is_object(),
            "{} {} is documented",
            rule.method,
            rule.path
        );
        for status in ["400", "401", "403", "429", "503"] {
            assert!(
                operation["responses"][status].is_object(),
                "{} {} documents {status}",
                rule.method,
                rule.path
            );
        }
        assert!(
            operation.get("security").is_none(),
            "{} {} needs the bearer token",
            rule.method,
            rule.path
        );
    }
    for (method, path) in [
        ("get", "/healthz"),
        ("get", "/readyz"),
        ("get", "/openapi.json"),
        ("get", "/webhooks/meta"),
        ("post", "/webhooks/meta"),
    ] {
        assert_eq!(
            document["paths"][path][method]["security"],
            serde_json::json!([]),
            "{method} {path} is open"
        );
    }
    let command = &document["paths"]["/v1/portfolios/{portfolio_id}/commands"]["post"];
    let command_types: BTreeSet<&str> =
        document["components"]["schemas"]["OnboardingCommand"]["oneOf"]
            .as_array()
            .expect("one schema per command")
            .iter()
            .filter_map(|variant| {
                variant["properties"]["type"]["enum"][0]
                    .as_str()
                    .or_else(|| variant["allOf"][1]["properties"]["type"]["enum"][0].as_str())
            })
            .collect();
    // Every command type, as the command's own deserializer names them when asked for one that does not exist.
    let error = serde_json::from_str::<mmonboard_domain::OnboardingCommand>(r#"{"type": "none"}"#)
        .err()
        .map(|error| error.to_string())
        .unwrap_or_default();
    let known: BTreeSet<&str> = error
        .split_once("expected one of ")
        .map(|(_, list)| list)
        .unwrap_or_else(|| panic!("serde names the command types: {error}"))
        .split('`')
        .skip(1)
        .step_by(2)
        .collect();
    assert!(known.contains("start_onboarding"), "{known:?}");
    assert_eq!(command_types, known, "one request schema per command type");
    for status in ["200", "201", "409", "413", "415", "422", "500"] {
        assert!(
            command["responses"][status].is_object(),
            "the command route documents {status}"
        );
    }
}

#[tokio::test]
async fn the_server_serves_the_generated_document() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(format!("{}/openapi.json", app.base))
        .send()
        .await
        .expect("a response");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let served = response.text().await.expect("a body");
    assert_eq!(served, mmonboard_server::openapi_document());
    app.shutdown().await;
}
