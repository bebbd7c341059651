//! The access matrix: which role may call which endpoint, as one table. The server's middleware looks every
//! request up in it, `docs/access.md` shows it as rendered by [`render_markdown`] (a test keeps the two
//! equal), and one table-driven test calls every row with every role. Anything under `/v1` that the table
//! does not name is refused: a new route is closed until it is given a row.

use crate::role::Role;

/// One endpoint (or, for the command endpoint, one class of command) under access control.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    SendOperatorCommand,
    SendRecorderCommand,
    Portfolios,
    PortfolioState,
    History,
    Status,
    AdAccounts,
    Templates,
    Route,
    Events,
    EventStream,
    Metrics,
    AuditExport,
    AuditVerify,
    AuditCheckpoints,
    ListTokens,
    CreateToken,
    RevokeToken,
}

/// A row of the matrix.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub endpoint: Endpoint,
    /// The HTTP method; a `GET` row also covers `HEAD`.
    pub method: &'static str,
    /// The route as the router declares it.
    pub path: &'static str,
    /// What the row is, for the docs and for error messages.
    pub what: &'static str,
    pub roles: &'static [Role],
}

const READERS: &[Role] = &[Role::Operator, Role::Auditor, Role::Admin];
const FEED: &[Role] = &[Role::Operator, Role::Auditor, Role::Subscriber, Role::Admin];
const ADMIN: &[Role] = &[Role::Admin];
const AUDIT: &[Role] = &[Role::Auditor, Role::Admin];
const COMMANDS: &str = "/v1/portfolios/{portfolio_id}/commands";

/// The matrix. Each endpoint appears exactly once.
pub const MATRIX: &[Rule] = &[
    Rule {
        endpoint: Endpoint::SendOperatorCommand,
        method: "POST",
        path: COMMANDS,
        what: "an operator's step: start_onboarding, review_permissions, submit_business_info, offboard",
        roles: &[Role::Operator, Role::Admin],
    },
    Rule {
        endpoint: Endpoint::SendRecorderCommand,
        method: "POST",
        path: COMMANDS,
        what: "a record of what Meta reported: every other command",
        roles: &[Role::Recorder, Role::Admin],
    },
    Rule {
        endpoint: Endpoint::Portfolios,
        method: "GET",
        path: "/v1/portfolios",
        what: "the portfolios with their phase, paged",
        roles: READERS,
    },
    Rule {
        endpoint: Endpoint::PortfolioState,
        method: "GET",
        path: "/v1/portfolios/{portfolio_id}",
        what: "the state now or as of a time",
        roles: READERS,
    },
    Rule {
        endpoint: Endpoint::History,
        method: "GET",
        path: "/v1/portfolios/{portfolio_id}/history",
        what: "the history, or its part up to as_of",
        roles: READERS,
    },
    Rule {
        endpoint: Endpoint::Status,
        method: "GET",
        path: "/v1/portfolios/{portfolio_id}/status",
        what: "the status read model",
        roles: READERS,
    },
    Rule {
        endpoint: Endpoint::AdAccounts,
        method: "GET",
        path: "/v1/portfolios/{portfolio_id}/ad-accounts",
        what: "the mirrored ad accounts",
        roles: READERS,
    },
    Rule {
        endpoint: Endpoint::Templates,
        method: "GET",
        path: "/v1/portfolios/{portfolio_id}/templates",
        what: "the templates read model",
        roles: READERS,
    },
    Rule {
        endpoint: Endpoint::Route,
        method: "GET",
        path: "/v1/route",
        what: "the routing question",
        roles: READERS,
    },
    Rule {
        endpoint: Endpoint::Events,
        method: "GET",
        path: "/v1/events",
        what: "the events, paged",
        roles: FEED,
    },
    Rule {
        endpoint: Endpoint::EventStream,
        method: "GET",
        path: "/v1/events/stream",
        what: "the live event stream",
        roles: FEED,
    },
    Rule {
        endpoint: Endpoint::Metrics,
        method: "GET",
        path: "/metrics",
        what: "Prometheus metrics on the API's listener (open on --metrics-listen)",
        roles: READERS,
    },
    Rule {
        endpoint: Endpoint::AuditExport,
        method: "GET",
        path: "/v1/audit/export",
        what: "the whole log as NDJSON, each event as stored, with the signed checkpoints (streamed)",
        roles: AUDIT,
    },
    Rule {
        endpoint: Endpoint::AuditVerify,
        method: "GET",
        path: "/v1/audit/verify",
        what: "the verification report: chain, command records, signed checkpoints",
        roles: AUDIT,
    },
    Rule {
        endpoint: Endpoint::AuditCheckpoints,
        method: "GET",
        path: "/v1/audit/checkpoints",
        what: "the signed checkpoints of the chain head",
        roles: AUDIT,
    },
    Rule {
        endpoint: Endpoint::ListTokens,
        method: "GET",
        path: "/v1/tokens",
        what: "the tokens (never their secrets)",
        roles: ADMIN,
    },
    Rule {
        endpoint: Endpoint::CreateToken,
        method: "POST",
        path: "/v1/tokens",
        what: "create a token",
        roles: ADMIN,
    },
    Rule {
        endpoint: Endpoint::RevokeToken,
        method: "DELETE",
        path: "/v1/tokens/{name}",
        what: "revoke a token",
        roles: ADMIN,
    },
];

impl Endpoint {
    /// The endpoint's row (a test checks every endpoint has exactly one).
    pub fn rule(self) -> Option<&'static Rule> {
        MATRIX.iter().find(|rule| rule.endpoint == self)
    }

    /// Whether `role` may call the endpoint; an endpoint without a row is closed to every role.
    pub fn allows(self, role: Role) -> bool {
        self.rule().is_some_and(|rule| rule.roles.contains(&role))
    }

    /// The roles that may, for a 403's message.
    pub fn roles(self) -> &'static [Role] {
        self.rule().map_or(&[], |rule| rule.roles)
    }
}

/// Whether a request to `path` must carry a credential: everything under `/v1`, and `/metrics` on the API's
/// listener. Health, readiness, the OpenAPI document and Meta's signed webhooks stay open.
pub fn requires_credentials(path: &str) -> bool {
    path == "/v1" || path.starts_with("/v1/") || path == "/metrics"
}

/// The rows for a request, by its method and the route it matched (`HEAD` is looked up as `GET`).
pub fn rules_for(method: &str, route: &str) -> Vec<&'static Rule> {
    let method = if method == "HEAD" { "GET" } else { method };
    MATRIX
        .iter()
        .filter(|rule| rule.method == method && rule.path == route)
        .collect()
}

/// Whether the route is in the matrix for any method (a method it lacks is the router's 405, not a 403).
pub fn route_is_listed(route: &str) -> bool {
    MATRIX.iter().any(|rule| rule.path == route)
}

/// The roles any of `rules` allows, for a 403's message: "operator or admin".
pub fn roles_text(roles: &[Role]) -> String {
    let names: Vec<&str> = Role::ALL
        .iter()
        .filter(|role| roles.contains(role))
        .map(|role| role.as_str())
        .collect();
    match names.split_last() {
        None => "no role".to_owned(),
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

/// The matrix as a Markdown table, as `docs/access.md` shows it.
pub fn render_markdown() -> String {
    let mut table = String::from("| endpoint | what |");
    for role in Role::ALL {
        table.push_str(&format!(" {role} |"));
    }
    table.push_str("\n| --- | --- |");
    for _ in Role::ALL {
        table.push_str(" :-: |");
    }
    table.push('\n');
    for rule in MATRIX {
        table.push_str(&format!(
            "| `{} {}` | {} |",
            rule.method, rule.path, rule.what
        ));
        for role in Role::ALL {
            table.push_str(if rule.roles.contains(&role) {
                " yes |"
            } else {
                " |"
            });
        }
        table.push('\n');
    }
    table
}
