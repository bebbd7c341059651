//! The matrix: complete, consistent, and shown in the docs as the code has it.

use mmonboard_access::{CommandClass, Endpoint, MATRIX, Role, render_markdown, rules_for};
use mmonboard_domain::OnboardingCommand;

/// Every endpoint, listed through an exhaustive match so a new one cannot be forgotten here.
fn every_endpoint() -> Vec<Endpoint> {
    let all = [
        Endpoint::SendOperatorCommand,
        Endpoint::SendRecorderCommand,
        Endpoint::Portfolios,
        Endpoint::PortfolioState,
        Endpoint::History,
        Endpoint::Status,
        Endpoint::AdAccounts,
        Endpoint::Templates,
        Endpoint::Route,
        Endpoint::Events,
        Endpoint::EventStream,
        Endpoint::Metrics,
        Endpoint::AuditExport,
        Endpoint::AuditVerify,
        Endpoint::AuditCheckpoints,
        Endpoint::ListTokens,
        Endpoint::CreateToken,
        Endpoint::RevokeToken,
    ];
    for endpoint in all {
        match endpoint {
            Endpoint::SendOperatorCommand
            | Endpoint::SendRecorderCommand
            | Endpoint::Portfolios
            | Endpoint::PortfolioState
            | Endpoint::History
            | Endpoint::Status
            | Endpoint::AdAccounts
            | Endpoint::Templates
            | Endpoint::Route
            | Endpoint::Events
            | Endpoint::EventStream
            | Endpoint::Metrics
            | Endpoint::AuditExport
            | Endpoint::AuditVerify
            | Endpoint::AuditCheckpoints
            | Endpoint::ListTokens
            | Endpoint::CreateToken
            | Endpoint::RevokeToken => {}
        }
    }
    all.to_vec()
}

#[test]
fn every_endpoint_has_exactly_one_row() {
    for endpoint in every_endpoint() {
        let rows = MATRIX
            .iter()
            .filter(|rule| rule.endpoint == endpoint)
            .count();
        assert_eq!(rows, 1, "{endpoint:?} has {rows} rows");
    }
    assert_eq!(MATRIX.len(), every_endpoint().len());
}

#[test]
fn the_roles_are_least_privilege() {
    for rule in MATRIX {
        // Admin may do everything; nothing but admin manages tokens; no reader role writes.
        assert!(rule.roles.contains(&Role::Admin), "{:?}", rule.endpoint);
        if rule.path.starts_with("/v1/tokens") {
            assert_eq!(rule.roles, [Role::Admin]);
        }
        if rule.method != "GET" {
            assert!(!rule.roles.contains(&Role::Auditor), "{:?}", rule.endpoint);
            assert!(
                !rule.roles.contains(&Role::Subscriber),
                "{:?}",
                rule.endpoint
            );
        }
    }
    assert!(!Endpoint::SendRecorderCommand.allows(Role::Operator));
    assert!(!Endpoint::SendOperatorCommand.allows(Role::Recorder));
    assert!(Endpoint::EventStream.allows(Role::Subscriber));
    assert!(!Endpoint::History.allows(Role::Subscriber));
    assert_eq!(rules_for("HEAD", "/v1/events").len(), 1);
    assert_eq!(
        rules_for("POST", "/v1/portfolios/{portfolio_id}/commands").len(),
        2
    );
}

#[test]
fn commands_are_split_between_operator_and_recorder() {
    let operator: OnboardingCommand =
        serde_json::from_str(r#"{"type":"start_onboarding"}"#).expect("a command");
    let recorder: OnboardingCommand = serde_json::from_str(
        r#"{"type":"accept_terms","accepted_by":"3001","role":"ADMIN","terms_version":"v1"}"#,
    )
    .expect("a command");
    assert_eq!(CommandClass::of(&operator), CommandClass::OperatorStep);
    assert_eq!(CommandClass::of(&recorder), CommandClass::MetaReport);
    assert_eq!(
        CommandClass::of(&recorder).endpoint(),
        Endpoint::SendRecorderCommand
    );
}

#[test]
fn docs_show_the_matrix_as_the_code_has_it() {
    let docs =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/access.md"))
            .expect("docs/access.md");
    let table = render_markdown();
    assert!(
        docs.contains(&table),
        "docs/access.md does not hold the matrix as rendered; paste this:\n{table}"
    );
}
