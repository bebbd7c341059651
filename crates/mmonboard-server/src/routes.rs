//! The routes. Input is fully checked before anything is decided or written: a refused command or invalid
//! input appends nothing.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, MatchedPath, Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use chrono::{DateTime, Utc};
use futures_util::Stream;
use mmonboard_app::json::accepted_json;
use mmonboard_app::{Clock, CommandContext};
use mmonboard_domain::ids::{PortfolioId, TemplateId, WabaId};
use mmonboard_domain::{MessageKind, OnboardingCommand, Phase, ProductPolicy, Refusal, route};
use mmonboard_eventlog::{EventStore, RecordedEvent, Subscription, SubscriptionOptions};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::error::ApiError;
use crate::metrics::{Outcome, Snapshot, Source};
use crate::openapi::{
    AdAccountRow, BAD_PORTFOLIO, BUSY, CommandOutcome, CommandRejection, ErrorBody, EventsPage,
    Health, INTERNAL, MessageKindName, PolicyName, PortfolioState, PortfoliosPage, Ready,
    ReadyUnavailable, RefusalBody, RouteAnswer, SseCloudEvent, StatusRow, TemplatesAnswer,
    UNKNOWN_PORTFOLIO,
};
use crate::token_cache::Principal;
use crate::{AppState, MAX_BODY_BYTES};
use mmonboard_app::cloudevents::to_cloud_event;

type Shared<C> = State<Arc<AppState<C>>>;

pub(crate) fn router<C: Clock + Clone>(state: Arc<AppState<C>>) -> Router {
    Router::new()
        .route("/v1/portfolios/{portfolio_id}/commands", post(command::<C>))
        .route("/v1/portfolios", get(portfolios::<C>))
        .route("/v1/portfolios/{portfolio_id}", get(portfolio_state::<C>))
        .route(
            "/v1/portfolios/{portfolio_id}/history",
            get(crate::audit::history::<C>),
        )
        .route("/v1/audit/export", get(crate::audit::export::<C>))
        .route("/v1/audit/verify", get(crate::audit::verify::<C>))
        .route("/v1/audit/checkpoints", get(crate::audit::checkpoints::<C>))
        .route("/v1/portfolios/{portfolio_id}/status", get(status::<C>))
        .route(
            "/v1/portfolios/{portfolio_id}/ad-accounts",
            get(ad_accounts::<C>),
        )
        .route(
            "/v1/portfolios/{portfolio_id}/templates",
            get(templates::<C>),
        )
        .route("/v1/route", get(routing::<C>))
        .route(
            "/webhooks/meta",
            get(crate::webhook::handshake::<C>).post(crate::webhook::receive::<C>),
        )
        .route("/v1/events", get(events::<C>))
        .route("/v1/events/stream", get(event_stream::<C>))
        .route("/healthz", get(healthz))
        .route("/readyz", get(ready::<C>))
        .route("/metrics", get(metrics::<C>))
        .route("/openapi.json", get(openapi))
        .route(
            "/v1/tokens",
            get(crate::tokens_api::list::<C>).post(crate::tokens_api::create::<C>),
        )
        .route(
            "/v1/tokens/{name}",
            axum::routing::delete(crate::tokens_api::revoke::<C>),
        )
        .route_layer(axum::middleware::from_fn(known_query_parameters))
        .fallback(unknown_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::map_response(json_errors))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// `/metrics` alone, without credentials, for `--metrics-listen`.
pub(crate) fn metrics_router<C: Clock + Clone>(state: Arc<AppState<C>>) -> Router {
    Router::new()
        .route("/metrics", get(metrics::<C>))
        .with_state(state)
}

/// The query parameters each route reads; anything else is a mistake the caller should hear about (a
/// misspelt `as_of` would otherwise answer the state now as if it were the state then).
fn query_parameters_of(route: &str) -> &'static [&'static str] {
    match route {
        "/v1/portfolios/{portfolio_id}" | "/v1/portfolios/{portfolio_id}/history" => &["as_of"],
        "/v1/audit/export" => &["after", "to"],
        "/v1/audit/verify" => &["trusted_key"],
        "/v1/route" => &["portfolio_id", "waba_id", "template_id", "kind", "policy"],
        "/v1/portfolios" => &["phase", "after", "limit"],
        "/v1/events" => &["after", "limit", "portfolio_id", "type"],
        "/v1/events/stream" => &["after", "portfolio_id", "type"],
        "/webhooks/meta" => &["hub.mode", "hub.verify_token", "hub.challenge"],
        _ => &[],
    }
}

async fn known_query_parameters(
    matched: MatchedPath,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let allowed = query_parameters_of(matched.as_str());
    let pairs = match Query::<Vec<(String, String)>>::try_from_uri(request.uri()) {
        Ok(Query(pairs)) => pairs,
        Err(rejection) => {
            return ApiError::bad_request(format!("the query string is malformed: {rejection}"))
                .into_response();
        }
    };
    let mut unknown: Vec<&str> = pairs
        .iter()
        .map(|(name, _)| name.as_str())
        .filter(|name| !allowed.contains(name))
        .collect();
    unknown.sort_unstable();
    unknown.dedup();
    if unknown.is_empty() {
        return next.run(request).await;
    }
    let known = if allowed.is_empty() {
        "it takes none".to_owned()
    } else {
        format!("it takes {}", allowed.join(", "))
    };
    ApiError {
        status: StatusCode::BAD_REQUEST,
        code: "unknown_query_parameter",
        message: format!(
            "unknown query parameter{} {} for {}: {known}",
            if unknown.len() == 1 { "" } else { "s" },
            unknown.join(", "),
            matched.as_str()
        ),
    }
    .into_response()
}

/// 404 for a portfolio with no recorded history, the same on every route that names one.
async fn known_portfolio<C: Clock + Clone>(
    state: &AppState<C>,
    portfolio_id: &PortfolioId,
) -> Result<(), ApiError> {
    tracing::Span::current().record("portfolio_id", portfolio_id.as_str());
    let stream_id = mmonboard_app::codec::stream_id(portfolio_id);
    if state.store.stream_version(&stream_id).await? == 0 {
        return Err(ApiError::not_found(
            "unknown_portfolio",
            format!("portfolio {portfolio_id} has no recorded onboarding"),
        ));
    }
    Ok(())
}

/// A command is JSON: a body sent as form data or text (curl's `-d` without a content type) is refused
/// rather than read as JSON it was not declared to be.
fn json_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    // Only the essence (type/subtype before any `;` parameters) matters here; a media-type crate would
    // add a dependency for one comparison.
    let essence = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .map(|essence| essence.trim().to_ascii_lowercase());
    let is_json = essence.as_deref().is_some_and(|essence| {
        essence == "application/json"
            || essence
                .strip_prefix("application/")
                .is_some_and(|subtype| subtype.ends_with("+json"))
    });
    if is_json {
        return Ok(());
    }
    Err(ApiError {
        status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
        code: "unsupported_media_type",
        message: format!(
            "a command must be sent as Content-Type: application/json (got {})",
            headers
                .get(header::CONTENT_TYPE)
                .and_then(|value| value.to_str().ok())
                .map_or_else(|| "none".to_owned(), |value| format!("{value:?}"))
        ),
    })
}

async fn unknown_route(method: Method, uri: Uri) -> ApiError {
    ApiError::not_found(
        "unknown_route",
        format!(
            "no route {method} {} (the API is described at /openapi.json)",
            uri.path()
        ),
    )
}

/// The router adds `Allow` with the path's methods to this answer.
async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError {
        status: StatusCode::METHOD_NOT_ALLOWED,
        code: "method_not_allowed",
        message: format!(
            "{} does not take {method} (see the Allow header)",
            uri.path()
        ),
    }
}

/// The size of error bodies `json_errors` reads to rewrite: the framework's own are one line.
const MAX_PLAIN_ERROR_BYTES: usize = 4 * 1024;

/// The last line of "every error is JSON": an error answer some layer or extractor made in plain text (a
/// rejection this module did not map itself) becomes `{code, message}` with the same status and wording.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, MAX_PLAIN_ERROR_BYTES)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_owned())
        .unwrap_or_default();
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_lowercase()
    } else {
        text
    };
    let code = match status {
        StatusCode::BAD_REQUEST => "invalid_input",
        StatusCode::NOT_FOUND => "unknown_route",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        status if status.is_server_error() => "internal",
        _ => "invalid_request",
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    let body = json!({ "code": code, "message": message }).to_string();
    Response::from_parts(parts, axum::body::Body::from(body))
}

/// A body the framework could not read, in the API's words: over the limit (413) or cut short (400).
pub(crate) fn body_rejection(rejection: &BytesRejection) -> ApiError {
    ApiError {
        status: rejection.status(),
        code: if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            "body_too_large"
        } else {
            "invalid_input"
        },
        message: format!("{rejection} (the limit is {MAX_BODY_BYTES} bytes)"),
    }
}

pub(crate) fn portfolio(raw: &str) -> Result<PortfolioId, ApiError> {
    PortfolioId::parse(raw).map_err(|error| ApiError::bad_request(error.to_string()))
}

/// Refusals that depend on where the onboarding stands are 409; those about what the command says, 422.
fn refusal_response(refusal: &Refusal) -> Response {
    let status = if refusal.rule.is_conflict() {
        StatusCode::CONFLICT
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let body = json!({ "code": refusal.code(), "message": refusal.to_string(), "state": refusal.phase, "rule": refusal.rule });
    (status, Json(body)).into_response()
}

/// The command id an `Idempotency-Key` stands for: the same key on the same portfolio is the same command.
fn idempotent_command_id(portfolio_id: &PortfolioId, key: &str) -> Uuid {
    mmonboard_app::sha256_uuid(
        b"mmonboard idempotency key\0",
        &[portfolio_id.as_str(), key],
    )
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, ApiError> {
    match headers.get(name) {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .ok()
            .filter(|text| !text.trim().is_empty() && text.len() <= 255)
            .map(Some)
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "header {name} must be 1 to 255 visible ASCII characters"
                ))
            }),
    }
}

#[utoipa::path(
    post,
    path = "/v1/portfolios/{portfolio_id}/commands",
    operation_id = "send_command",
    tag = "commands",
    summary = "Decide one command against the portfolio and record its events",
    description = "The command is checked whole (JSON, type, every id and value) before anything is decided; \
a refused or invalid command appends nothing. Every command and its fields: docs/commands.md.",
    params(
        ("portfolio_id" = PortfolioId, Path, description = "Meta business portfolio id"),
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255,
            description = "The same key on the same portfolio is applied once; a retry returns the original events with 200."),
        ("X-Correlation-Id" = Option<Uuid>, Header,
            description = "Recorded in every event's metadata; a new one when absent"),
    ),
    request_body(content = OnboardingCommand, content_type = "application/json", examples(
        ("start_onboarding" = (value = json!({"type": "start_onboarding"}))),
        ("review_permissions" = (value = json!({"type": "review_permissions", "reviewed_by": "4001"}))),
        ("submit_business_info" = (value = json!({"type": "submit_business_info", "business_name": "Acme Ltda", "website": "https://acme.example"}))),
        ("offboard" = (value = json!({"type": "offboard", "reason": "customer left"}))),
    )),
    responses(
        (status = 200, description = "Already applied under this Idempotency-Key: the original events, nothing appended", body = CommandOutcome),
        (status = 201, description = "Accepted: the events recorded", body = CommandOutcome),
        (status = 400, description = "invalid_input: malformed JSON, an unknown type or field, an invalid id or value, an X-Actor header, a malformed Idempotency-Key or X-Correlation-Id; unknown_query_parameter; nothing appended", body = ErrorBody),
        (status = 403, description = "forbidden: the token's role may not send this command (the message names the roles that may)", body = ErrorBody),
        (status = 409, description = "Refused: not possible in the portfolio's current state; nothing appended", body = RefusalBody),
        (status = 413, description = "body_too_large: the body is larger than 64 KiB", body = ErrorBody),
        (status = 415, description = "unsupported_media_type: the command was not sent as Content-Type: application/json; nothing appended", body = ErrorBody),
        (status = 422, description = "Refused: the command breaks a rule (e.g. terms by a non-admin), a Refusal body; or idempotency_key_reused: the Idempotency-Key was already used for a different request, an Error body; nothing appended", body = CommandRejection),
        (status = 500, description = INTERNAL, body = ErrorBody),
        (status = 503, description = "Nothing was appended; retry with the same Idempotency-Key after Retry-After seconds. code busy: the log's write lock was not had in time; overloaded: too many requests are in flight; storage_full: the disk (or quota) of the log is full, and the same request succeeds once space is back", body = ErrorBody),
    )
)]
pub(crate) async fn command<C: Clock + Clone>(
    State(state): Shared<C>,
    Extension(principal): Extension<Principal>,
    Path(portfolio_id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let checked = (|| {
        let portfolio_id = portfolio(&portfolio_id)?;
        let body = body.map_err(|rejection| body_rejection(&rejection))?;
        json_content_type(&headers)?;
        let command: OnboardingCommand = serde_json::from_slice(&body)
            .map_err(|error| ApiError::bad_request(format!("the command is not valid: {error}")))?;
        // What Meta said is recorded with the recorder role only: an operator must not be able to write
        // "Meta reported the terms signed".
        crate::auth::authorize_command(&principal, &command)?;
        if headers.contains_key("x-actor") {
            return Err(ApiError::bad_request(
                "the X-Actor header is no longer accepted: the actor recorded is the authenticated token",
            ));
        }
        // The actor is whoever authenticated, never what the caller claims.
        let mut context = CommandContext::new(principal.actor());
        if let Some(key) = header_text(&headers, "idempotency-key")? {
            context = context.with_command_id(idempotent_command_id(&portfolio_id, key));
        }
        if let Some(correlation) = header_text(&headers, "x-correlation-id")? {
            context.correlation_id = Uuid::parse_str(correlation).map_err(|error| {
                ApiError::bad_request(format!("X-Correlation-Id is not a UUID: {error}"))
            })?;
        }
        Ok::<_, ApiError>((portfolio_id, command, context))
    })();
    let (portfolio_id, command, context) = match checked {
        Ok(checked) => {
            let span = tracing::Span::current();
            span.record("portfolio_id", checked.0.as_str());
            span.record("command_id", tracing::field::display(checked.2.command_id));
            checked
        }
        Err(error) => {
            state.metrics.command(Source::Api, Outcome::Invalid);
            return Err(error);
        }
    };
    let executed = state
        .service
        .execute(&portfolio_id, &command, &context)
        .await;
    state.metrics.command(Source::Api, Outcome::of(&executed));
    match executed? {
        Ok(outcome) => {
            if outcome.already_applied && !state.service.is_same_request(&command, &outcome).await?
            {
                // Answering with the first request's outcome would tell the caller its other request
                // was applied.
                return Err(ApiError {
                    status: StatusCode::UNPROCESSABLE_ENTITY,
                    code: "idempotency_key_reused",
                    message: format!(
                        "this Idempotency-Key was already used for a different {} request on portfolio {portfolio_id}; use a new key for a new request",
                        command.type_name()
                    ),
                });
            }
            let status = if outcome.already_applied {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            };
            Ok((status, Json(accepted_json(&outcome, context.command_id))).into_response())
        }
        Err(refusal) => Ok(refusal_response(&refusal)),
    }
}

pub(crate) fn parse_time(name: &str, value: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(value)
        .map(|time| time.with_timezone(&Utc))
        .map_err(|error| ApiError::bad_request(format!("{name} is not an RFC 3339 time ({error})")))
}

#[utoipa::path(
    get,
    path = "/v1/portfolios/{portfolio_id}",
    operation_id = "portfolio_state",
    tag = "portfolios",
    summary = "The portfolio's state now, or as of a time",
    params(
        ("portfolio_id" = PortfolioId, Path, description = "Meta business portfolio id"),
        ("as_of" = Option<DateTime<Utc>>, Query, description = "RFC 3339 time: the fold of the events recorded at or before it"),
    ),
    responses(
        (status = 200, description = "The fold of the events recorded up to then", body = PortfolioState),
        (status = 400, description = "invalid_input: the portfolio id or as_of is not valid; unknown_query_parameter", body = ErrorBody),
        (status = 404, description = UNKNOWN_PORTFOLIO, body = ErrorBody),
        (status = 500, description = INTERNAL, body = ErrorBody),
        (status = 503, description = BUSY, body = ErrorBody),
    )
)]
pub(crate) async fn portfolio_state<C: Clock + Clone>(
    State(state): Shared<C>,
    Path(portfolio_id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let portfolio_id = portfolio(&portfolio_id)?;
    let as_of = query
        .get("as_of")
        .map(|value| parse_time("as_of", value))
        .transpose()?;
    let aggregate = match as_of {
        Some(as_of) => {
            // Before its first event a known portfolio was `not_started`; one never started is unknown.
            known_portfolio(&state, &portfolio_id).await?;
            state.service.load_as_of(&portfolio_id, as_of).await?
        }
        None => state.service.load(&portfolio_id).await?,
    };
    if aggregate.version() == 0 && as_of.is_none() {
        return Err(ApiError::not_found(
            "unknown_portfolio",
            format!("portfolio {portfolio_id} has no recorded onboarding"),
        ));
    }
    let mut view = serde_json::to_value(aggregate.view()).map_err(ApiError::internal)?;
    if let (Some(as_of), Value::Object(map)) = (as_of, &mut view) {
        map.insert("as_of".into(), json!(as_of));
    }
    Ok(Json(view))
}

#[utoipa::path(
    get,
    path = "/v1/portfolios/{portfolio_id}/status",
    operation_id = "portfolio_status",
    tag = "portfolios",
    summary = "Onboarding status read model",
    description = "Phase, what blocks it, the next action, timestamps; the read model follows the log (it may lag a command by a moment).",
    params(("portfolio_id" = PortfolioId, Path, description = "Meta business portfolio id")),
    responses(
        (status = 200, description = "Phase, what blocks it, next action, timestamps", body = StatusRow),
        (status = 400, description = BAD_PORTFOLIO, body = ErrorBody),
        (status = 404, description = "unknown_portfolio: no status projected for the portfolio (yet)", body = ErrorBody),
        (status = 500, description = INTERNAL, body = ErrorBody),
        (status = 503, description = BUSY, body = ErrorBody),
    )
)]
pub(crate) async fn status<C: Clock + Clone>(
    State(state): Shared<C>,
    Path(portfolio_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let portfolio_id = portfolio(&portfolio_id)?;
    let row = state
        .read_models
        .status(portfolio_id.as_str())
        .await?
        .ok_or_else(|| {
            ApiError::not_found(
                "unknown_portfolio",
                format!("no status projected for portfolio {portfolio_id} (yet)"),
            )
        })?;
    Ok(Json(json!(row)))
}

#[utoipa::path(
    get,
    path = "/v1/portfolios/{portfolio_id}/ad-accounts",
    operation_id = "portfolio_ad_accounts",
    tag = "portfolios",
    summary = "Mirrored read-only ad account per WABA",
    params(("portfolio_id" = PortfolioId, Path, description = "Meta business portfolio id")),
    responses(
        (status = 200, description = "One row per WABA", body = Vec<AdAccountRow>),
        (status = 400, description = BAD_PORTFOLIO, body = ErrorBody),
        (status = 404, description = UNKNOWN_PORTFOLIO, body = ErrorBody),
        (status = 500, description = INTERNAL, body = ErrorBody),
        (status = 503, description = BUSY, body = ErrorBody),
    )
)]
pub(crate) async fn ad_accounts<C: Clock + Clone>(
    State(state): Shared<C>,
    Path(portfolio_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let portfolio_id = portfolio(&portfolio_id)?;
    known_portfolio(&state, &portfolio_id).await?;
    Ok(Json(json!(
        state.read_models.ad_accounts(portfolio_id.as_str()).await?
    )))
}

#[utoipa::path(
    get,
    path = "/v1/portfolios/{portfolio_id}/templates",
    operation_id = "portfolio_templates",
    tag = "portfolios",
    summary = "Templates with their sync status at the moment of the question",
    params(("portfolio_id" = PortfolioId, Path, description = "Meta business portfolio id")),
    responses(
        (status = 200, description = "Templates (syncing, synced, dormant, unavailable)", body = TemplatesAnswer),
        (status = 400, description = BAD_PORTFOLIO, body = ErrorBody),
        (status = 404, description = UNKNOWN_PORTFOLIO, body = ErrorBody),
        (status = 500, description = INTERNAL, body = ErrorBody),
        (status = 503, description = BUSY, body = ErrorBody),
    )
)]
pub(crate) async fn templates<C: Clock + Clone>(
    State(state): Shared<C>,
    Path(portfolio_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let portfolio_id = portfolio(&portfolio_id)?;
    known_portfolio(&state, &portfolio_id).await?;
    let now = state.service.clock().now();
    let rows = state.read_models.templates(portfolio_id.as_str()).await?;
    let rows: Vec<Value> = rows
        .iter()
        .map(|row| {
            let mut value = json!(row);
            if let Value::Object(map) = &mut value {
                map.insert("status".into(), json!(row.status_at(now, &state.config)));
            }
            value
        })
        .collect();
    Ok(Json(json!({ "as_of": now, "templates": rows })))
}

#[utoipa::path(
    get,
    path = "/v1/route",
    operation_id = "route_message",
    tag = "routing",
    summary = "MM API or Cloud API for a message, right now",
    description = "Give template_id for a marketing template, or kind for another kind of message.",
    params(
        ("portfolio_id" = PortfolioId, Query, description = "Meta business portfolio id"),
        ("waba_id" = WabaId, Query, description = "The WABA that sends"),
        ("template_id" = Option<TemplateId>, Query, description = "For a marketing template"),
        ("kind" = Option<MessageKindName>, Query, description = "The kind of message: marketing_template (with template_id, which implies it), utility, authentication, service or free_form"),
        ("policy" = Option<PolicyName>, Query, description = "What to do when the MM API cannot take a marketing message: CLOUD_API_FALLBACK (the default; also fallback) or STRICT (also strict)"),
    ),
    responses(
        (status = 200, description = "The route (null when STRICT refuses) and the reason", body = RouteAnswer),
        (status = 400, description = "invalid_input: a missing or invalid parameter, neither template_id nor kind, or both; unknown_query_parameter", body = ErrorBody),
        (status = 404, description = UNKNOWN_PORTFOLIO, body = ErrorBody),
        (status = 500, description = INTERNAL, body = ErrorBody),
        (status = 503, description = BUSY, body = ErrorBody),
    )
)]
pub(crate) async fn routing<C: Clock + Clone>(
    State(state): Shared<C>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<RouteBody>, ApiError> {
    route_decision(&state, &query).await.map(Json)
}

/// The answer of `GET /v1/route` (see `openapi::RouteAnswer`), written straight from its fields, keys in
/// the order a `json!` map would keep them: the sending platform asks one per marketing message.
#[derive(serde::Serialize)]
pub(crate) struct RouteBody {
    at: DateTime<Utc>,
    message: String,
    policy: ProductPolicy,
    portfolio_id: PortfolioId,
    reason: mmonboard_domain::RouteReason,
    route: Option<mmonboard_domain::Route>,
    waba_id: WabaId,
}

/// The answer of `GET /v1/route` to these query parameters as JSON (the console's route probe asks it).
pub(crate) async fn route_answer<C: Clock + Clone>(
    state: &crate::AppState<C>,
    query: &HashMap<String, String>,
) -> Result<Value, ApiError> {
    let body = route_decision(state, query).await?;
    serde_json::to_value(body).map_err(|error| ApiError::internal(error.to_string()))
}

/// The answer of `GET /v1/route` to these query parameters.
async fn route_decision<C: Clock + Clone>(
    state: &crate::AppState<C>,
    query: &HashMap<String, String>,
) -> Result<RouteBody, ApiError> {
    let required = |name: &str| {
        query
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| ApiError::bad_request(format!("query parameter {name} is required")))
    };
    let portfolio_id = portfolio(required("portfolio_id")?)?;
    let waba_id = WabaId::parse(required("waba_id")?)
        .map_err(|error| ApiError::bad_request(error.to_string()))?;
    let kind = match (
        query.get("template_id"),
        query.get("kind").map(String::as_str),
    ) {
        (Some(template_id), None | Some("marketing_template")) => MessageKind::MarketingTemplate {
            template_id: TemplateId::parse(template_id)
                .map_err(|error| ApiError::bad_request(error.to_string()))?,
        },
        (None, Some("utility")) => MessageKind::Utility,
        (None, Some("authentication")) => MessageKind::Authentication,
        (None, Some("service")) => MessageKind::Service,
        (None, Some("free_form")) => MessageKind::FreeForm,
        _ => {
            return Err(ApiError::bad_request(
                "give template_id for a marketing template, or kind=utility|authentication|service|free_form",
            ));
        }
    };
    let policy = match query.get("policy").map(String::as_str) {
        None | Some("CLOUD_API_FALLBACK" | "fallback") => ProductPolicy::CloudApiFallback,
        Some("STRICT" | "strict") => ProductPolicy::Strict,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "policy {other:?} is not CLOUD_API_FALLBACK or STRICT"
            )));
        }
    };
    // The cached fold, checked against the stream's version: no stream load per question.
    let aggregate = state.service.current(&portfolio_id).await?;
    if aggregate.version() == 0 {
        return Err(ApiError::not_found(
            "unknown_portfolio",
            format!("portfolio {portfolio_id} has no recorded onboarding"),
        ));
    }
    let now = state.service.clock().now();
    let decision = route(&aggregate, &waba_id, &kind, policy, now, &state.config);
    Ok(RouteBody {
        at: now,
        message: decision.reason.to_string(),
        policy: decision.policy,
        portfolio_id,
        reason: decision.reason,
        route: decision.route,
        waba_id,
    })
}

/// The query string as name/value pairs, repeats kept (`type=a&type=b`), for the routes with repeatable filters.
type Pairs = Query<Vec<(String, String)>>;

/// The one value of a parameter that may appear at most once: a repeated `after` or `limit` is ambiguous.
pub(crate) fn single<'a>(
    pairs: &'a [(String, String)],
    name: &str,
) -> Result<Option<&'a str>, ApiError> {
    let mut values = pairs.iter().filter(|(key, _)| key == name);
    let first = values.next().map(|(_, value)| value.as_str());
    if values.next().is_some() {
        return Err(ApiError::bad_request(format!(
            "the query parameter {name} is given more than once"
        )));
    }
    Ok(first)
}

/// `?limit=`: a page size from 1 to 1000, 100 when absent.
fn page_limit(pairs: &[(String, String)]) -> Result<usize, ApiError> {
    match single(pairs, "limit")? {
        None => Ok(100),
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|limit| (1..=1_000).contains(limit))
            .ok_or_else(|| ApiError::bad_request("limit must be a whole number from 1 to 1000")),
    }
}

/// Which events a subscriber wants: `portfolio_id=` and `type=`, each repeatable (any of the values), both
/// together (all of the parameters). No filter at all is every event.
#[derive(Debug, Default)]
struct EventFilter {
    portfolios: Vec<PortfolioId>,
    types: Vec<String>,
}

impl EventFilter {
    fn parse(pairs: &[(String, String)]) -> Result<Self, ApiError> {
        let mut filter = Self::default();
        for (name, value) in pairs {
            match name.as_str() {
                "portfolio_id" => filter.portfolios.push(portfolio(value)?),
                "type" => {
                    if !mmonboard_domain::event::ALL_TYPE_NAMES.contains(&value.as_str()) {
                        return Err(ApiError::bad_request(format!(
                            "unknown event type {value:?} in type=: it is one of {}",
                            mmonboard_domain::event::ALL_TYPE_NAMES.join(", ")
                        )));
                    }
                    filter.types.push(value.clone());
                }
                _ => {}
            }
        }
        Ok(filter)
    }

    fn matches(&self, recorded: &RecordedEvent) -> bool {
        let type_matches = self.types.is_empty() || self.types.contains(&recorded.event_type);
        type_matches
            && (self.portfolios.is_empty()
                || mmonboard_app::codec::portfolio_of(&recorded.stream_id)
                    .is_some_and(|id| self.portfolios.contains(&id)))
    }
}

/// The most log events one filtered `/v1/events` request reads before it answers: a filter that matches
/// rarely still answers promptly, with `next_after` showing how far it looked.
const FILTER_SCAN_LIMIT: usize = 10_000;

/// The `after` cursor: `?after=` first, else `Last-Event-ID`, else 0.
fn cursor(pairs: &[(String, String)], headers: &HeaderMap) -> Result<u64, ApiError> {
    let from_header = headers
        .get("last-event-id")
        .and_then(|value| value.to_str().ok());
    match single(pairs, "after")?.or(from_header) {
        None => Ok(0),
        Some(text) => text.trim().parse().map_err(|_| {
            ApiError::bad_request(format!("the position {text:?} is not a whole number"))
        }),
    }
}

#[utoipa::path(
    get,
    path = "/v1/events",
    operation_id = "list_events",
    tag = "events",
    summary = "Catch-up read of the log in global order, as CloudEvents",
    params(
        ("after" = Option<u64>, Query, description = "Events after this global position (else Last-Event-ID, else 0)"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "At most this many events (100 when absent)"),
        ("portfolio_id" = Option<Vec<PortfolioId>>, Query, style = Form, explode,
            description = "Only events of these portfolios (repeatable: any of them)"),
        ("type" = Option<Vec<String>>, Query, style = Form, explode,
            description = "Only events of these types, e.g. permissions_reviewed (repeatable: any of them; an unknown type is refused). With portfolio_id, an event must match both"),
        ("Last-Event-ID" = Option<String>, Header, description = "The cursor when after is absent: a global position"),
    ),
    responses(
        (status = 200, description = "A page of matching events (at most limit; with a filter, at most 10000 log events are looked at per request) and next_after, the position looked at last: the next page starts after it", body = EventsPage),
        (status = 400, description = "invalid_input: a malformed parameter (the message names it), a repeated after or limit, an unknown event type; unknown_query_parameter", body = ErrorBody),
        (status = 500, description = INTERNAL, body = ErrorBody),
        (status = 503, description = BUSY, body = ErrorBody),
    )
)]
pub(crate) async fn events<C: Clock + Clone>(
    State(state): Shared<C>,
    headers: HeaderMap,
    Query(pairs): Pairs,
) -> Result<Json<Value>, ApiError> {
    let after = cursor(&pairs, &headers)?;
    let limit = page_limit(&pairs)?;
    let filter = EventFilter::parse(&pairs)?;
    let mut matched: Vec<RecordedEvent> = Vec::new();
    // Everything up to `next_after` was looked at: the next page starts after it, whether it matched or not.
    let mut next_after = after;
    let mut scanned = 0;
    'scan: while matched.len() < limit && scanned < FILTER_SCAN_LIMIT {
        let page_size = if filter.portfolios.is_empty() && filter.types.is_empty() {
            limit
        } else {
            1_000
        };
        let page = state.store.read_all(next_after, page_size).await?;
        let page_len = page.len();
        for recorded in page {
            next_after = recorded.global_position;
            scanned += 1;
            if filter.matches(&recorded) {
                matched.push(recorded);
                if matched.len() == limit {
                    break 'scan;
                }
            }
        }
        if page_len < page_size {
            break;
        }
    }
    Ok(Json(json!({
        "events": matched.iter().map(to_cloud_event).collect::<Vec<_>>(),
        "next_after": next_after,
        "head": state.store.head_position().await?,
    })))
}

/// `GET /v1/portfolios`: the onboarding status rows, in portfolio id order, `phase=` (repeatable) to keep
/// some phases, paged by `after=<portfolio id>`.
#[utoipa::path(
    get,
    path = "/v1/portfolios",
    operation_id = "list_portfolios",
    tag = "portfolios",
    summary = "The portfolios with their onboarding status, in portfolio id order, paged",
    params(
        ("phase" = Option<Vec<Phase>>, Query, style = Form, explode,
            description = "Only portfolios in these phases (repeatable: any of them)"),
        ("after" = Option<PortfolioId>, Query, description = "The next_after of the previous page: portfolios after this id"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "At most this many portfolios (100 when absent)"),
    ),
    responses(
        (status = 200, description = "portfolios: the status rows of the page (as GET /v1/portfolios/{portfolio_id}/status); next_after: the cursor of the next page, null on the last", body = PortfoliosPage),
        (status = 400, description = "invalid_input: a malformed parameter (the message names it), a repeated after or limit, an unknown phase; unknown_query_parameter", body = ErrorBody),
        (status = 500, description = INTERNAL, body = ErrorBody),
        (status = 503, description = BUSY, body = ErrorBody),
    )
)]
pub(crate) async fn portfolios<C: Clock + Clone>(
    State(state): Shared<C>,
    Query(pairs): Pairs,
) -> Result<Json<Value>, ApiError> {
    let limit = page_limit(&pairs)?;
    let after = single(&pairs, "after")?.map(portfolio).transpose()?;
    let mut phases = Vec::new();
    for (_, value) in pairs.iter().filter(|(name, _)| name == "phase") {
        let phase: mmonboard_domain::Phase = serde_json::from_value(Value::String(value.clone()))
            .map_err(|_| {
                ApiError::bad_request(format!(
                    "unknown phase {value:?} in phase=: it is a phase of GET /v1/portfolios/{{id}}/status"
                ))
            })?;
        phases.push(phase.as_str());
    }
    let mut rows = state.read_models.statuses().await?;
    // The cursor compares ids as text, so order them the same way here, whatever the database's collation.
    rows.sort_by(|a, b| a.portfolio_id.as_str().cmp(b.portfolio_id.as_str()));
    let mut page: Vec<_> = rows
        .into_iter()
        .filter(|row| {
            after
                .as_ref()
                .is_none_or(|after| row.portfolio_id.as_str() > after.as_str())
        })
        .filter(|row| phases.is_empty() || phases.contains(&row.phase.as_str()))
        .take(limit + 1)
        .collect();
    let more = page.len() > limit;
    page.truncate(limit);
    let next_after = if more {
        page.last().map(|row| row.portfolio_id.clone())
    } else {
        None
    };
    Ok(Json(json!({
        "portfolios": page,
        "next_after": next_after,
    })))
}

#[utoipa::path(
    get,
    path = "/v1/events/stream",
    operation_id = "stream_events",
    tag = "events",
    summary = "Live Server-Sent Events stream of CloudEvents; resumes after Last-Event-ID (a global position)",
    description = "Each SSE event: id = the global position, event = cloudevent, data = the CloudEvent JSON (as in GET /v1/events). The stream stays open; a client reconnecting with Last-Event-ID resumes after it.",
    params(
        ("after" = Option<u64>, Query, description = "Events after this global position (else Last-Event-ID, else 0)"),
        ("portfolio_id" = Option<Vec<PortfolioId>>, Query, style = Form, explode,
            description = "Only events of these portfolios (repeatable: any of them)"),
        ("type" = Option<Vec<String>>, Query, style = Form, explode,
            description = "Only events of these types, e.g. permissions_reviewed (repeatable: any of them; an unknown type is refused). With portfolio_id, an event must match both"),
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this global position"),
    ),
    responses(
        (status = 200, description = "text/event-stream: id = global position, event = cloudevent, data = CloudEvent JSON", content_type = "text/event-stream", body = SseCloudEvent),
        (status = 400, description = "invalid_input: a malformed parameter (the message names it), a repeated after, an unknown event type; unknown_query_parameter", body = ErrorBody),
    )
)]
pub(crate) async fn event_stream<C: Clock + Clone>(
    State(state): Shared<C>,
    headers: HeaderMap,
    Query(pairs): Pairs,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let after = cursor(&pairs, &headers)?;
    let filter = EventFilter::parse(&pairs)?;
    let options = SubscriptionOptions {
        page_size: 200,
        poll_interval: Duration::from_millis(500),
    };
    let subscription = Subscription::after(Arc::clone(&state.store), after, options);
    // Counts the subscriber for as long as its stream exists.
    let guard = state.metrics.subscriber();
    let shutdown = state.shutdown.clone();
    // Each SSE event's id is the global position: a client reconnecting with Last-Event-ID resumes after it.
    let stream = futures_util::stream::unfold(
        (
            subscription,
            Vec::<RecordedEvent>::new().into_iter(),
            shutdown,
            (guard, filter),
        ),
        |(mut subscription, mut pending, mut shutdown, guard)| async move {
            loop {
                if let Some(recorded) = pending.next() {
                    if !guard.1.matches(&recorded) {
                        continue;
                    }
                    let data = to_cloud_event(&recorded).to_string();
                    let event = SseEvent::default()
                        .id(recorded.global_position.to_string())
                        .event("cloudevent")
                        .data(data);
                    return Some((Ok(event), (subscription, pending, shutdown, guard)));
                }
                if *shutdown.borrow() {
                    return None;
                }
                tokio::select! {
                    batch = subscription.next_batch() => match batch {
                        Ok(batch) => pending = batch.into_iter(),
                        Err(error) => {
                            tracing::warn!(%error, "event stream ended");
                            return None;
                        }
                    },
                    _ = shutdown.changed() => return None,
                }
            }
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "readyz",
    tag = "operations",
    summary = "Readiness: the log answers and the background tasks run",
    responses(
        (status = 200, description = "ready", body = Ready),
        (status = 503, description = "status not_ready (the log cannot be read) or degraded (a background task, the projector, the process manager, the checkpoint signer or the relay, is restarting after the error named in reason; commands still work and it catches up by itself); retry after Retry-After seconds. overloaded (an Error body): too many requests in flight", body = ReadyUnavailable),
    )
)]
pub(crate) async fn ready<C: Clock + Clone>(State(state): Shared<C>) -> Response {
    let degraded: Vec<String> = [
        ("the projector", state.projector_health.failure()),
        ("the process manager", state.process_health.failure()),
        ("the checkpoint signer", state.checkpoint_health.failure()),
        ("the JetStream relay", state.relay_health.failure()),
    ]
    .into_iter()
    .filter_map(|(task, failure)| Some(format!("{task} is restarting after: {}", failure?)))
    .collect();
    match state.store.head_position().await {
        Ok(head) if degraded.is_empty() => {
            let mut body = json!({ "status": "ready", "head": head });
            if state.access.tokens.is_some() {
                body["auth"] = json!("tokens");
            } else {
                body["auth"] = json!("insecure-no-auth");
                body["warning"] = json!(
                    "authentication is off (--insecure-no-auth): anyone reaching this port may read and write every portfolio"
                );
            }
            // A standby is ready: it serves the API, and takes over Meta's steps if the holder goes away.
            if let Some(role) = state.process_role.get() {
                body["process_manager"] = json!(role.get().as_str());
            }
            if let Some(relay) = state.relay.get() {
                body["relay"] = json!(if relay.active() { "active" } else { "standby" });
            }
            Json(body).into_response()
        }
        // Commands still work; what is behind catches up by itself once the task is back.
        Ok(head) => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(axum::http::header::RETRY_AFTER, "5")],
            Json(json!({ "status": "degraded", "head": head, "reason": degraded.join("; ") })),
        )
            .into_response(),
        Err(error) => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(axum::http::header::RETRY_AFTER, "5")],
            Json(json!({ "status": "not_ready", "reason": error.to_string() })),
        )
            .into_response(),
    }
}

#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "operations",
    summary = "Prometheus metrics",
    responses(
        (status = 200, description = "OpenMetrics text format (docs/operations.md lists every metric)", content_type = "application/openmetrics-text", body = String),
        (status = 500, description = INTERNAL, body = ErrorBody),
        (status = 503, description = BUSY, body = ErrorBody),
    )
)]
pub(crate) async fn metrics<C: Clock + Clone>(
    State(state): Shared<C>,
) -> Result<Response, ApiError> {
    let stats = state.service.stats();
    let head = state.store.head_position().await?;
    let checkpoint = state
        .read_models
        .checkpoint(mmonboard_projections::STATUS_PROJECTION)
        .await?;
    let snapshot = Snapshot {
        service: stats,
        process_manager: state.metrics.process_stats.get().map(|stats| stats()),
        head,
        projection_lag: head.saturating_sub(checkpoint),
        process_manager_active: state
            .process_role
            .get()
            .map(|role| u64::from(role.get() == mmonboard_process::ProcessRole::Active)),
        relay: state
            .relay
            .get()
            .map(|relay| crate::metrics::RelaySnapshot {
                published: relay.published(),
                checkpoints_published: relay.checkpoints_published(),
                publish_errors: relay.publish_errors(),
                last_published_position: relay.last_published_position(),
                active: relay.active(),
            }),
    };
    let body = state.metrics.render(&snapshot).await;
    Ok(([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], body).into_response())
}

/// Liveness: the process answers.
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "healthz",
    tag = "operations",
    summary = "Liveness",
    responses((status = 200, description = "ok", body = Health)),
)]
pub(crate) async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// The OpenAPI document, generated from the code (`docs/openapi.json` holds the same, checked by a test).
#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "openapi",
    tag = "operations",
    summary = "This document",
    responses((status = 200, description = "OpenAPI 3.1", content_type = "application/json", body = Object)),
)]
pub(crate) async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        crate::openapi::document_json(),
    )
        .into_response()
}
