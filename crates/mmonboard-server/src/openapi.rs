//! The OpenAPI document of the HTTP API, generated from the code: each handler's `#[utoipa::path]` (its
//! parameters, body and the statuses it answers), the domain's request types (`mmonboard-domain`'s `openapi`
//! feature), the response shapes below, and what the layers around every route add (`Layers`: credentials
//! and roles from the access matrix, the rate limit, the limit of requests in flight, unknown query
//! parameters, `X-Request-Id`). `docs/openapi.json` is this document as [`document_json`] prints it, and
//! `/openapi.json` serves the same; a test fails when the file is stale (`docs/openapi.md`).

use std::sync::LazyLock;

use mmonboard_access::{Role, requires_credentials, roles_text, rules_for};
use utoipa::openapi::path::{HttpMethod, Operation, Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, HeaderBuilder, ObjectBuilder, OpenApi as Document, RefOr, Required, Response,
    ResponseBuilder, Type,
};
use utoipa::{Modify, OpenApi, ToSchema};

pub(crate) use schemas::*;

/// The document, built once per process.
static DOCUMENT: LazyLock<String> = LazyLock::new(document_json_uncached);

/// The OpenAPI document as `docs/openapi.json` holds it: pretty JSON, keys in a stable order, a final newline.
pub fn document_json() -> &'static str {
    &DOCUMENT
}

fn document_json_uncached() -> String {
    // Serialising the document's own types (maps, strings, numbers) cannot fail.
    let mut text = serde_json::to_string_pretty(&ApiDoc::openapi()).unwrap_or_default();
    text.push('\n');
    text
}

/// The description of an error answer that comes from our own failure (nothing was appended).
pub(crate) const INTERNAL: &str = "internal: a failure of the server's own (the log could not be read or \
written, named in the message); nothing was appended";
/// The description of the 503 answers every route may give under load.
pub(crate) const BUSY: &str = "busy: the log is busy; overloaded: too many requests in flight; retry after Retry-After seconds";
pub(crate) const UNKNOWN_PORTFOLIO: &str =
    "unknown_portfolio: the portfolio has no recorded history";
pub(crate) const BAD_PORTFOLIO: &str = "invalid_input: the portfolio id is not Meta's numeric id, or a query \
parameter is malformed or repeated (the message names it); unknown_query_parameter: a parameter this \
endpoint does not take";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "mmonboard",
        description = "Onboarding of Meta business portfolios to the Marketing Messages API for WhatsApp, as an \
event-sourced history. Commands and events are documented in docs/commands.md. Every /v1 route and /metrics \
need Authorization: Bearer <token> (docs/access.md: roles and the matrix; each operation names the roles that \
may call it); /healthz, /readyz, /openapi.json and /webhooks/meta (signed by Meta) do not. Every error, on \
every route (an unknown route 404 unknown_route, a wrong method 405 method_not_allowed with Allow, an unknown \
query parameter 400 unknown_query_parameter), is the JSON {code, message}. Every answer carries X-Request-Id: \
the caller's, or a new UUID. This document is generated from the code (docs/openapi.md)."
    ),
    paths(
        crate::routes::command,
        crate::routes::portfolios,
        crate::routes::portfolio_state,
        crate::audit::history,
        crate::routes::status,
        crate::routes::ad_accounts,
        crate::routes::templates,
        crate::routes::routing,
        crate::routes::events,
        crate::routes::event_stream,
        crate::routes::healthz,
        crate::routes::ready,
        crate::routes::metrics,
        crate::routes::openapi,
        crate::webhook::handshake,
        crate::webhook::receive,
        crate::tokens_api::list,
        crate::tokens_api::create,
        crate::tokens_api::revoke,
        crate::audit::export,
        crate::audit::verify,
        crate::audit::checkpoints,
    ),
    // The parameters' types: utoipa collects the bodies' schemas by itself, not these.
    components(schemas(
        ErrorBody,
        RefusalBody,
        MessageKindName,
        PolicyName,
        mmonboard_domain::ids::PortfolioId,
        mmonboard_domain::ids::WabaId,
        mmonboard_domain::ids::TemplateId,
        mmonboard_domain::Phase,
    )),
    modifiers(&Layers),
    tags(
        (name = "commands", description = "Deciding commands and recording their events"),
        (name = "portfolios", description = "A portfolio's state, history and read models"),
        (name = "routing", description = "Which API a message goes through"),
        (name = "events", description = "The log in global order, as CloudEvents"),
        (name = "audit", description = "The export, the verification report and the signed checkpoints (docs/audit.md)"),
        (name = "tokens", description = "Access tokens (admin)"),
        (name = "webhooks", description = "Meta's webhooks"),
        (name = "operations", description = "Health, readiness, metrics and this document"),
    )
)]
struct ApiDoc;

/// What the layers around the routes answer on every route, written once here as the layers apply it
/// (`lib.rs`'s `layers`, `auth.rs`, `routes.rs`'s `known_query_parameters`), so no operation can lack it.
struct Layers;

impl Modify for Layers {
    fn modify(&self, openapi: &mut Document) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearerToken",
            SecurityScheme::Http(
                {
                    let mut http = Http::new(HttpAuthScheme::Bearer);
                    http.bearer_format = Some("mmo_ followed by 64 hex digits".to_owned());
                    http.description = Some(
                        "A token from `mmonboard tokens create` or POST /v1/tokens. Its role decides what it \
                         may call (docs/access.md)."
                            .to_owned(),
                    );
                    http
                },
            ),
        );
        openapi.security = Some(vec![SecurityRequirement::new(
            "bearerToken",
            Vec::<String>::new(),
        )]);
        for (path, item) in openapi.paths.paths.iter_mut() {
            let operations = [
                (HttpMethod::Get, &mut item.get),
                (HttpMethod::Post, &mut item.post),
                (HttpMethod::Delete, &mut item.delete),
                (HttpMethod::Put, &mut item.put),
                (HttpMethod::Patch, &mut item.patch),
            ];
            for (method, operation) in operations {
                if let Some(operation) = operation {
                    layer_responses(path, method_name(&method), operation);
                }
            }
        }
    }
}

fn method_name(method: &HttpMethod) -> &'static str {
    match method {
        HttpMethod::Get => "GET",
        HttpMethod::Post => "POST",
        HttpMethod::Delete => "DELETE",
        HttpMethod::Put => "PUT",
        HttpMethod::Patch => "PATCH",
        HttpMethod::Head => "HEAD",
        HttpMethod::Options => "OPTIONS",
        HttpMethod::Trace => "TRACE",
    }
}

fn error_response(description: &str) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        "application/json",
        ContentBuilder::new()
            .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                ErrorBody::name(),
            ))))
            .build(),
    )
}

fn retry_after() -> utoipa::openapi::Header {
    HeaderBuilder::new()
        .schema(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0)),
        )
        .description(Some("Seconds to wait"))
        .build()
}

fn request_id_header() -> utoipa::openapi::Header {
    HeaderBuilder::new()
        .schema(ObjectBuilder::new().schema_type(Type::String))
        .description(Some(
            "The request's id: the caller's X-Request-Id, else a new UUID (it is in every log line of the request)",
        ))
        .build()
}

fn request_id_parameter() -> Parameter {
    ParameterBuilder::new()
        .name("X-Request-Id")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(255)),
        ))
        .description(Some(
            "An id for the request, returned in X-Request-Id and logged; a new UUID when absent",
        ))
        .build()
}

/// Adds what the layers answer to one operation, keeping any answer the handler documents itself.
fn layer_responses(path: &str, method: &str, operation: &mut Operation) {
    let responses = &mut operation.responses.responses;
    let mut add = |status: &str, response: Response| {
        responses
            .entry(status.to_owned())
            .or_insert(RefOr::T(response));
    };
    add(
        "400",
        error_response(
            "invalid_input: the query string is malformed; unknown_query_parameter: a parameter this endpoint \
             does not take (the message names it and the ones it takes)",
        )
        .build(),
    );
    add(
        "503",
        error_response(
            "overloaded: the server has as many requests in flight as it takes; retry after Retry-After seconds",
        )
        .header("Retry-After", retry_after())
        .build(),
    );
    if requires_credentials(path) {
        let rules = rules_for(method, path);
        let roles: Vec<Role> = Role::ALL
            .into_iter()
            .filter(|role| rules.iter().any(|rule| rule.roles.contains(role)))
            .collect();
        add(
            "401",
            error_response(
                "missing_credentials, invalid_token, token_revoked or token_expired: no usable bearer token",
            )
            .header(
                "WWW-Authenticate",
                HeaderBuilder::new()
                    .schema(ObjectBuilder::new().schema_type(Type::String))
                    .build(),
            )
            .build(),
        );
        add(
            "403",
            error_response(&format!(
                "forbidden: the token's role may not call this endpoint; only {} may (the message names the \
                 roles)",
                roles_text(&roles)
            ))
            .build(),
        );
        add(
            "429",
            error_response("rate_limited: the token is past its rate limit")
                .header("Retry-After", retry_after())
                .build(),
        );
        let who = rules
            .iter()
            .map(|rule| {
                if rules.len() == 1 {
                    roles_text(rule.roles)
                } else {
                    format!("{} for {}", roles_text(rule.roles), rule.what)
                }
            })
            .collect::<Vec<_>>()
            .join("; ");
        let description = operation.description.get_or_insert_with(String::new);
        if !description.is_empty() {
            description.push_str("\n\n");
        }
        description.push_str(&format!("Roles (docs/access.md): {who}."));
    } else {
        // Open routes: no credentials are asked for.
        operation.security = Some(Vec::new());
    }
    for response in operation.responses.responses.values_mut() {
        if let RefOr::T(response) = response {
            response
                .headers
                .insert("X-Request-Id".to_owned(), request_id_header());
            let unavailable = response.description.starts_with("overloaded")
                || response.description.contains("Retry-After");
            if unavailable && !response.headers.contains_key("Retry-After") {
                response
                    .headers
                    .insert("Retry-After".to_owned(), retry_after());
            }
        }
    }
    operation
        .parameters
        .get_or_insert_with(Vec::new)
        .push(request_id_parameter());
}

/// The response bodies. The handlers build most of their JSON with `json!` (the event and history shapes
/// are `mmonboard-app`'s `json.rs`, shared with the CLI), so these types describe that JSON rather than
/// produce it; `.ci/schemathesis.sh` checks every answer against them (`response_schema_conformance`).
#[allow(dead_code)]
mod schemas {
    use std::collections::BTreeMap;

    use chrono::{DateTime, Utc};
    use mmonboard_domain::ids::{AdAccountId, PortfolioId, Reason, StepName, TemplateId, WabaId};
    use mmonboard_domain::{Phase, ProductPolicy, Route, RouteReason, Rule, Stage};
    use serde_json::Value;
    use utoipa::ToSchema;
    use uuid::Uuid;

    /// Every error: a stable machine code and a human message, nothing else.
    #[derive(serde::Serialize, ToSchema)]
    #[serde(deny_unknown_fields)]
    #[schema(as = Error, example = json!({"code": "unknown_portfolio", "message": "portfolio 123 has no recorded onboarding"}))]
    pub struct ErrorBody {
        pub code: String,
        pub message: String,
    }

    /// A refused command: the rule it broke, in the phase it met; nothing was appended.
    #[derive(serde::Serialize, ToSchema)]
    #[schema(as = Refusal)]
    pub struct RefusalBody {
        /// The rule's stable code.
        pub code: String,
        pub message: String,
        /// The phase the command met.
        pub state: Phase,
        pub rule: Rule,
    }

    /// A 422 of the command route: a refusal, or `idempotency_key_reused` (an error).
    #[derive(serde::Serialize, ToSchema)]
    #[serde(untagged)]
    pub enum CommandRejection {
        Refusal(RefusalBody),
        Error(ErrorBody),
    }

    /// A 503 of `/readyz`: not ready, or `overloaded` (an error).
    #[derive(serde::Serialize, ToSchema)]
    #[serde(untagged)]
    pub enum ReadyUnavailable {
        NotReady(NotReady),
        Error(ErrorBody),
    }

    /// A 503 of a webhook delivery: a notification to deliver again, or `busy`/`overloaded` (an error).
    #[derive(serde::Serialize, ToSchema)]
    #[serde(untagged)]
    pub enum WebhookUnavailable {
        Redeliver(WebhookAnswer),
        Error(ErrorBody),
    }

    /// The events' metadata.
    #[derive(serde::Serialize, ToSchema)]
    pub struct EventMetadata {
        pub command_id: Uuid,
        /// The token (or process) that sent the command.
        pub actor: String,
        pub correlation_id: Uuid,
        pub causation_id: Option<Uuid>,
    }

    /// A stored event, exactly as recorded (docs/commands.md lists every type and its data).
    #[derive(serde::Serialize, ToSchema)]
    pub struct StoredEvent {
        /// The position in the whole log: 1-based, gap-free.
        pub global_position: u64,
        /// The position in the portfolio's stream: 1-based.
        pub stream_version: u64,
        pub event_id: Uuid,
        /// The stored type name, e.g. permissions_reviewed.
        #[schema(rename = "type")]
        pub event_type: String,
        pub schema_version: u32,
        pub recorded_at: DateTime<Utc>,
        pub metadata: EventMetadata,
        /// The SHA-256 chain hash, hex.
        #[schema(pattern = "^[0-9a-f]{64}$")]
        pub hash: String,
        /// The event's data; its fields depend on the type (docs/commands.md).
        pub data: BTreeMap<String, Value>,
    }

    /// What an accepted command answers.
    #[derive(ToSchema)]
    pub struct CommandOutcome {
        #[schema(inline)]
        pub outcome: Accepted,
        pub portfolio_id: PortfolioId,
        pub command_id: Uuid,
        /// The command id was applied before: these are the original events and nothing was appended.
        pub already_applied: bool,
        /// The phase after the command.
        pub phase: Phase,
        /// The stream's version after the command.
        pub version: u64,
        pub events: Vec<StoredEvent>,
    }

    #[derive(ToSchema)]
    #[schema(rename_all = "snake_case")]
    pub enum Accepted {
        Accepted,
    }

    /// The phase before and after an event.
    #[derive(serde::Serialize, ToSchema)]
    pub struct Transition {
        pub from: Phase,
        pub to: Phase,
    }

    /// A stored event with the transition it caused.
    #[derive(serde::Serialize, ToSchema)]
    pub struct HistoryEntry {
        #[schema(inline)]
        #[serde(flatten)]
        pub event: StoredEvent,
        pub transition: Transition,
    }

    /// A step Meta kept failing past the retry bound.
    #[derive(ToSchema)]
    pub struct Stall {
        pub step: StepName,
        pub attempts: u32,
        pub error: Reason,
        pub at: DateTime<Utc>,
    }

    /// The configuration sync window.
    #[derive(ToSchema)]
    pub struct ConfigSync {
        pub started_at: DateTime<Utc>,
        pub window_ends_at: DateTime<Utc>,
        pub completed_at: Option<DateTime<Utc>>,
    }

    /// The fold of the portfolio's events: where it stands, and everything the fold knows (the records of
    /// the eligibility check, WABAs, permissions, business information, terms, connection, templates).
    #[derive(ToSchema)]
    pub struct PortfolioState {
        /// Null as of a time before the portfolio's first event.
        pub portfolio_id: Option<PortfolioId>,
        /// The stream's version folded.
        pub version: u64,
        pub phase: Phase,
        pub stage: Stage,
        /// What the portfolio waits for next, in words.
        pub next_action: String,
        pub last_event_at: Option<DateTime<Utc>>,
        /// Only while a step Meta kept failing is unresolved.
        #[schema(required = false)]
        pub stall: Option<Stall>,
        /// Only with as_of: the time asked about.
        #[schema(required = false)]
        pub as_of: Option<DateTime<Utc>>,
        pub started_at: Option<DateTime<Utc>>,
        pub eligibility: Option<BTreeMap<String, Value>>,
        /// By WABA id.
        pub wabas: BTreeMap<String, BTreeMap<String, Value>>,
        pub permissions: Option<BTreeMap<String, Value>>,
        pub business_info: Option<BTreeMap<String, Value>>,
        pub terms: Option<BTreeMap<String, Value>>,
        #[schema(required = false)]
        pub terms_request: Option<BTreeMap<String, Value>>,
        #[schema(required = false)]
        pub terms_signed: Option<BTreeMap<String, Value>>,
        pub connected_at: Option<DateTime<Utc>>,
        pub config_sync: Option<ConfigSync>,
        /// By template id.
        pub templates: BTreeMap<String, BTreeMap<String, Value>>,
        pub offboarded: Option<BTreeMap<String, Value>>,
    }

    /// One thing that stands in the way of a portfolio's next step.
    #[derive(ToSchema)]
    pub struct Blocker {
        pub code: String,
        pub message: String,
    }

    /// The onboarding status read model of one portfolio.
    #[derive(ToSchema)]
    pub struct StatusRow {
        pub portfolio_id: PortfolioId,
        pub phase: Phase,
        pub stage: Stage,
        pub next_action: String,
        pub blocked_by: Vec<Blocker>,
        pub version: u64,
        pub started_at: Option<DateTime<Utc>>,
        pub updated_at: Option<DateTime<Utc>>,
        /// The log position the row was projected from.
        pub last_position: u64,
    }

    /// A page of status rows, in portfolio id order.
    #[derive(ToSchema)]
    pub struct PortfoliosPage {
        pub portfolios: Vec<StatusRow>,
        /// The cursor of the next page (after=), null on the last.
        pub next_after: Option<PortfolioId>,
    }

    #[derive(ToSchema)]
    #[schema(rename_all = "snake_case")]
    pub enum WabaRoutingStatus {
        NotOnboarded,
        Onboarded,
        Suspended,
        Offboarded,
    }

    /// The read-only ad account mirrored for one WABA.
    #[derive(ToSchema)]
    pub struct AdAccountRow {
        pub portfolio_id: PortfolioId,
        pub waba_id: WabaId,
        pub ad_account_id: AdAccountId,
        pub created_at: DateTime<Utc>,
        /// The WABA's MM API routing.
        pub status: WabaRoutingStatus,
    }

    /// A template's sync status at the moment of the question.
    #[derive(ToSchema)]
    #[schema(rename_all = "snake_case")]
    pub enum TemplateSyncStatus {
        Syncing,
        Synced,
        Dormant,
        Unavailable,
    }

    /// A template with its sync status.
    #[derive(ToSchema)]
    pub struct TemplateRow {
        pub portfolio_id: PortfolioId,
        pub template_id: TemplateId,
        pub waba_id: WabaId,
        pub name: String,
        pub language: String,
        /// Its latest category, as Meta reports it.
        pub category: String,
        pub changed_at: DateTime<Utc>,
        pub sync_window_ends_at: DateTime<Utc>,
        pub mirror_synced_at: Option<DateTime<Utc>>,
        pub last_activity_at: DateTime<Utc>,
        pub status: TemplateSyncStatus,
    }

    /// The templates at the moment of the question.
    #[derive(ToSchema)]
    pub struct TemplatesAnswer {
        pub as_of: DateTime<Utc>,
        pub templates: Vec<TemplateRow>,
    }

    /// The `kind=` of `GET /v1/route`.
    #[derive(ToSchema)]
    #[schema(rename_all = "snake_case")]
    pub enum MessageKindName {
        MarketingTemplate,
        Utility,
        Authentication,
        Service,
        FreeForm,
    }

    /// The `policy=` of `GET /v1/route`: each in Meta's spelling or in lower case.
    #[derive(ToSchema)]
    pub enum PolicyName {
        #[schema(rename = "CLOUD_API_FALLBACK")]
        CloudApiFallback,
        #[schema(rename = "fallback")]
        Fallback,
        #[schema(rename = "STRICT")]
        Strict,
        #[schema(rename = "strict")]
        StrictLowerCase,
    }

    /// Where a message goes now, and why.
    #[derive(ToSchema)]
    pub struct RouteAnswer {
        pub portfolio_id: PortfolioId,
        pub waba_id: WabaId,
        pub at: DateTime<Utc>,
        /// Null when STRICT refuses a marketing message the MM API cannot take.
        pub route: Option<Route>,
        pub policy: ProductPolicy,
        pub reason: RouteReason,
        /// The reason in words.
        pub message: String,
    }

    /// A stored event as a CloudEvent 1.0 (docs/events.md).
    #[derive(ToSchema)]
    pub struct CloudEvent {
        #[schema(inline)]
        pub specversion: SpecVersion,
        /// The event id.
        pub id: Uuid,
        #[schema(example = "urn:mmonboard:onboarding")]
        pub source: String,
        /// com.mmonboard.onboarding.<event type>.v<schema version>
        #[schema(
            rename = "type",
            pattern = r"^com\.mmonboard\.onboarding\.[a-z_]+\.v[0-9]+$"
        )]
        pub event_type: String,
        /// The portfolio id.
        pub subject: String,
        pub time: DateTime<Utc>,
        #[schema(example = "application/json")]
        pub datacontenttype: String,
        /// The global position, as a string (the sequence extension).
        #[schema(pattern = "^[0-9]+$")]
        pub sequence: String,
        pub streamversion: u64,
        pub correlationid: Uuid,
        /// The event's data (docs/commands.md).
        pub data: BTreeMap<String, Value>,
    }

    #[derive(ToSchema)]
    pub enum SpecVersion {
        #[schema(rename = "1.0")]
        V1,
    }

    #[derive(ToSchema)]
    #[schema(rename_all = "snake_case")]
    pub enum SseEventName {
        Cloudevent,
    }

    /// One Server-Sent Event of `GET /v1/events/stream`.
    #[derive(ToSchema)]
    pub struct SseCloudEvent {
        /// The event's global position: reconnect with it as Last-Event-ID to resume after it.
        #[schema(pattern = "^[0-9]+$")]
        pub id: String,
        #[schema(inline)]
        pub event: SseEventName,
        /// The CloudEvent as JSON text (the CloudEvent schema).
        #[schema(content_media_type = "application/json")]
        pub data: String,
    }

    /// A page of the log in global order.
    #[derive(ToSchema)]
    pub struct EventsPage {
        pub events: Vec<CloudEvent>,
        /// The position looked at last: the next page starts after it.
        pub next_after: u64,
        /// The log's last position.
        pub head: u64,
    }

    #[derive(ToSchema)]
    #[schema(rename_all = "snake_case")]
    pub enum HealthOk {
        Ok,
    }

    /// The process is up.
    #[derive(ToSchema)]
    pub struct Health {
        #[schema(inline)]
        pub status: HealthOk,
    }

    #[derive(ToSchema)]
    pub enum AuthMode {
        #[schema(rename = "tokens")]
        Tokens,
        #[schema(rename = "insecure-no-auth")]
        InsecureNoAuth,
    }

    #[derive(ToSchema)]
    #[schema(rename_all = "snake_case")]
    pub enum ProcessManagerRole {
        Starting,
        Active,
        Standby,
        Stopped,
    }

    #[derive(ToSchema)]
    #[schema(rename_all = "snake_case")]
    pub enum RelayRole {
        Active,
        Standby,
    }

    #[derive(ToSchema)]
    #[schema(rename_all = "snake_case")]
    pub enum ReadyStatus {
        Ready,
    }

    /// Ready: the log answers and every background task runs.
    #[derive(ToSchema)]
    pub struct Ready {
        #[schema(inline)]
        pub status: ReadyStatus,
        /// The log's last global position.
        pub head: u64,
        #[schema(inline)]
        pub auth: AuthMode,
        /// Only with --insecure-no-auth.
        #[schema(required = false)]
        pub warning: Option<String>,
        /// With a process manager only: active while this instance holds the lease and calls Meta, standby
        /// while another instance does (it takes over if that one goes away), starting before its first try
        /// for the lease.
        #[schema(inline, required = false)]
        pub process_manager: Option<ProcessManagerRole>,
        /// With the JetStream relay only: whether this instance publishes.
        #[schema(inline, required = false)]
        pub relay: Option<RelayRole>,
    }

    #[derive(serde::Serialize, ToSchema)]
    #[schema(rename_all = "snake_case")]
    pub enum NotReadyStatus {
        Degraded,
        NotReady,
    }

    /// Not ready: the log cannot be read, or a background task is restarting.
    #[derive(serde::Serialize, ToSchema)]
    pub struct NotReady {
        #[schema(inline)]
        pub status: NotReadyStatus,
        /// The log's last position (degraded only).
        #[schema(required = false)]
        pub head: Option<u64>,
        pub reason: String,
    }

    /// The chain's head.
    #[derive(ToSchema)]
    pub struct ChainHead {
        pub global_position: u64,
        #[schema(pattern = "^[0-9a-f]{64}$")]
        pub hash: String,
    }

    /// The first position where the chain, the command records or a checkpoint do not hold.
    #[derive(ToSchema)]
    pub struct ChainBreak {
        pub global_position: u64,
        pub reason: String,
    }

    /// A signed checkpoint of the chain head (docs/audit.md).
    #[derive(ToSchema)]
    pub struct SignedCheckpoint {
        pub position: u64,
        #[schema(pattern = "^[0-9a-f]{64}$")]
        pub hash: String,
        pub recorded_at: DateTime<Utc>,
        pub recorded_at_micros: i64,
        pub key_id: String,
        #[schema(pattern = "^ed25519:[0-9a-f]{64}$")]
        pub public_key: String,
        #[schema(pattern = "^[0-9a-f]{128}$")]
        pub signature: String,
    }

    /// What the checkpoints show.
    #[derive(ToSchema)]
    pub struct CheckpointsReport {
        pub stored: u64,
        pub checked: u64,
        pub newest: Option<SignedCheckpoint>,
        /// The key ids of the trusted_key parameters.
        pub trusted_keys: Vec<String>,
    }

    /// The verification report, as `mmonboard verify --json` prints it.
    #[derive(ToSchema)]
    pub struct VerifyReport {
        pub intact: bool,
        pub events_checked: u64,
        pub streams_checked: u64,
        pub head: Option<ChainHead>,
        pub first_break: Option<ChainBreak>,
        pub checkpoints: CheckpointsReport,
    }

    /// Every signed checkpoint, by position.
    #[derive(ToSchema)]
    pub struct Checkpoints {
        pub checkpoints: Vec<SignedCheckpoint>,
    }

    #[derive(serde::Serialize, ToSchema)]
    #[schema(rename_all = "snake_case")]
    pub enum TokenRole {
        Operator,
        Recorder,
        Auditor,
        Subscriber,
        Admin,
    }

    /// A token as listed: never its secret or its hash.
    #[derive(serde::Serialize, ToSchema)]
    pub struct Token {
        #[schema(pattern = "^[a-z0-9][a-z0-9._-]{0,63}$")]
        pub name: String,
        pub role: TokenRole,
        pub created_at: DateTime<Utc>,
        pub expires_at: Option<DateTime<Utc>>,
        pub revoked_at: Option<DateTime<Utc>>,
        pub last_used_at: Option<DateTime<Utc>>,
    }

    /// A token just created: `token` is the secret, shown this once.
    #[derive(serde::Serialize, ToSchema)]
    pub struct CreatedToken {
        #[schema(inline)]
        #[serde(flatten)]
        pub record: Token,
        #[schema(pattern = "^mmo_[0-9a-f]{64}$")]
        pub token: String,
    }

    /// A delivery of Meta's webhooks (Meta's own JSON; only `account_update` and `template_category_update`
    /// changes are acted on).
    #[derive(ToSchema)]
    pub struct WebhookDelivery {
        #[schema(example = "whatsapp_business_account")]
        pub object: String,
        pub entry: Vec<WebhookEntry>,
    }

    /// One entry: a WABA's changes.
    #[derive(ToSchema)]
    pub struct WebhookEntry {
        /// The WABA id.
        pub id: String,
        pub time: Option<i64>,
        pub changes: Vec<WebhookChange>,
    }

    /// One change; the fields other than account_update and template_category_update are ignored.
    #[derive(ToSchema)]
    pub struct WebhookChange {
        #[schema(example = "account_update")]
        pub field: String,
        pub value: WebhookChangeValue,
    }

    /// The value of an account_update or a template_category_update change.
    #[derive(serde::Serialize, ToSchema)]
    #[serde(untagged)]
    pub enum WebhookChangeValue {
        AccountUpdate(AccountUpdateValue),
        TemplateCategoryUpdate(TemplateCategoryUpdateValue),
    }

    #[derive(serde::Serialize, ToSchema)]
    pub struct WabaInfo {
        pub waba_id: String,
        pub owner_business_id: Option<String>,
    }

    /// An account_update: MM_LITE_TERMS_SIGNED, ACCOUNT_RESTRICTION, DISABLED_UPDATE, ACCOUNT_OFFBOARDED,
    /// PARTNER_REMOVED are acted on.
    #[derive(serde::Serialize, ToSchema)]
    pub struct AccountUpdateValue {
        #[schema(example = "MM_LITE_TERMS_SIGNED")]
        pub event: String,
        pub waba_info: Option<WabaInfo>,
    }

    /// A template_category_update.
    #[derive(serde::Serialize, ToSchema)]
    pub struct TemplateCategoryUpdateValue {
        /// Meta sends it as a number or a string.
        #[schema(value_type = String)]
        pub message_template_id: String,
        pub message_template_name: String,
        pub message_template_language: String,
        pub previous_category: Option<String>,
        pub new_category: String,
    }

    #[derive(serde::Serialize, ToSchema)]
    #[schema(rename_all = "snake_case")]
    pub enum NotificationOutcomeKind {
        /// Recorded as a command.
        Recorded,
        /// A redelivery: recorded before, nothing new.
        AlreadyApplied,
        /// The domain refused the command: acknowledged, nothing recorded.
        Refused,
        /// Nothing mmonboard acts on.
        Ignored,
        /// Malformed: acknowledged, nothing recorded.
        Invalid,
        /// The WABA belongs to no portfolio known here (yet): the delivery is answered 503.
        Unroutable,
    }

    /// What became of one notification of the delivery.
    #[derive(serde::Serialize, ToSchema)]
    pub struct NotificationOutcome {
        pub outcome: NotificationOutcomeKind,
        /// recorded, already_applied, refused.
        #[schema(required = false)]
        pub portfolio_id: Option<PortfolioId>,
        /// The command's type (recorded, already_applied, refused).
        #[schema(required = false)]
        pub command: Option<String>,
        /// The types of the events recorded (recorded, already_applied).
        #[schema(required = false)]
        pub events: Option<Vec<String>>,
        /// unroutable.
        #[schema(required = false)]
        pub waba_id: Option<WabaId>,
        /// The refusal's code (refused).
        #[schema(required = false)]
        pub code: Option<String>,
        /// refused, invalid, unroutable.
        #[schema(required = false)]
        pub message: Option<String>,
    }

    /// Every notification's outcome, in the delivery's order.
    #[derive(serde::Serialize, ToSchema)]
    pub struct WebhookAnswer {
        pub notifications: Vec<NotificationOutcome>,
    }
}
