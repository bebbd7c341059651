//! What an auditor reads over HTTP: the export of the whole log (the same NDJSON as `mmonboard export`,
//! streamed), the verification report (the chain, the command records, the signed checkpoints, optionally
//! against the auditor's own trusted keys), the signed checkpoints, and a portfolio's history as of a time.
//! The access matrix gives the audit routes to the auditor and admin roles.

use std::sync::Arc;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use mmonboard_app::Clock;
use mmonboard_app::json::history_entry_json;
use mmonboard_eventlog::{EventStore, ExportRange, TrustedKey, check_checkpoints};
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;

use crate::AppState;
use crate::error::ApiError;
use crate::openapi::{
    BUSY, Checkpoints, ErrorBody, HistoryEntry, INTERNAL, UNKNOWN_PORTFOLIO, VerifyReport,
};
use crate::routes::{parse_time, portfolio, single};
use mmonboard_domain::ids::PortfolioId;

type Shared<C> = State<Arc<AppState<C>>>;
type Pairs = Query<Vec<(String, String)>>;

/// Bytes buffered between the export and the response: memory stays flat whatever the log's size.
const EXPORT_BUFFER: usize = 64 * 1024;

fn position(pairs: &[(String, String)], name: &str) -> Result<Option<u64>, ApiError> {
    single(pairs, name)?
        .map(|text| {
            text.parse::<u64>().map_err(|_| {
                ApiError::bad_request(format!("{name} must be a whole number (got {text:?})"))
            })
        })
        .transpose()
}

/// `GET /v1/audit/export?after=&to=`: the log as NDJSON, streamed as it is read. A failure half-way aborts
/// the response, so a client never takes a cut-short body for a whole export.
#[utoipa::path(
    get,
    path = "/v1/audit/export",
    operation_id = "audit_export",
    tag = "audit",
    summary = "The log as NDJSON, streamed: a header, each event exactly as stored, each signed checkpoint after the event it signs (docs/audit.md)",
    params(
        ("after" = Option<u64>, Query, description = "only events after this position (0 when absent)"),
        ("to" = Option<u64>, Query, description = "only events up to this position"),
    ),
    responses(
        (status = 200, description = "The export, one JSON object per line (`mmonboard verify-export` checks it offline)", content_type = "application/x-ndjson", body = String),
        (status = 400, description = "invalid_input: a position is not a whole number or repeated, to is below after, or after is past the head; unknown_query_parameter", body = ErrorBody),
        (status = 500, description = INTERNAL, body = ErrorBody),
        (status = 503, description = BUSY, body = ErrorBody),
    )
)]
pub(crate) async fn export<C: Clock + Clone>(
    State(state): Shared<C>,
    Query(pairs): Pairs,
) -> Result<Response, ApiError> {
    let after = position(&pairs, "after")?.unwrap_or(0);
    let to = position(&pairs, "to")?;
    if let Some(to) = to
        && to < after
    {
        return Err(ApiError::bad_request(format!(
            "to={to} is below after={after}: nothing to export"
        )));
    }
    let head = state.store.head_position().await?;
    if after > head {
        return Err(ApiError::bad_request(format!(
            "there is no event at position {after} to export after (the head is {head})"
        )));
    }
    let (mut writer, reader) = tokio::io::duplex(EXPORT_BUFFER);
    let store = Arc::clone(&state.store);
    let task = tokio::spawn(async move {
        let mut progress = |_: u64| {};
        let progress: &mut (dyn FnMut(u64) + Send) = &mut progress;
        mmonboard_eventlog::export(&store, ExportRange { after, to }, &mut writer, progress).await
    });
    let stream =
        futures_util::stream::unfold((reader, Some(task)), |(mut reader, task)| async move {
            let task = task?;
            let mut buffer = vec![0; 16 * 1024];
            match reader.read(&mut buffer).await {
                Ok(0) => match task.await {
                    Ok(Ok(_)) => None,
                    Ok(Err(error)) => Some((
                        Err(std::io::Error::other(error.to_string())),
                        (reader, None),
                    )),
                    Err(error) => Some((
                        Err(std::io::Error::other(error.to_string())),
                        (reader, None),
                    )),
                },
                Ok(read) => {
                    buffer.truncate(read);
                    Some((Ok(Bytes::from(buffer)), (reader, Some(task))))
                }
                Err(error) => Some((Err(error), (reader, None))),
            }
        });
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(stream),
    )
        .into_response())
}

/// `GET /v1/audit/verify?trusted_key=`: the report `mmonboard verify --json` prints. With `trusted_key`
/// (repeatable: `ed25519:<hex>`), every checkpoint must be signed by one of them.
#[utoipa::path(
    get,
    path = "/v1/audit/verify",
    operation_id = "audit_verify",
    tag = "audit",
    summary = "The verification report: hash chain, command records, and every signed checkpoint",
    params(
        ("trusted_key" = Option<Vec<String>>, Query, style = Form, explode,
            description = "a public key whose checkpoints are trusted, ed25519:<64 hex digits>; repeatable"),
    ),
    responses(
        (status = 200, description = "The report (intact, events_checked, streams_checked, head, first_break, checkpoints)", body = VerifyReport),
        (status = 400, description = "invalid_input: a trusted_key is malformed; unknown_query_parameter", body = ErrorBody),
        (status = 500, description = INTERNAL, body = ErrorBody),
        (status = 503, description = BUSY, body = ErrorBody),
    )
)]
pub(crate) async fn verify<C: Clock + Clone>(
    State(state): Shared<C>,
    Query(pairs): Pairs,
) -> Result<Json<Value>, ApiError> {
    let trusted = pairs
        .iter()
        .filter(|(name, _)| name == "trusted_key")
        .map(|(_, text)| {
            TrustedKey::parse(text)
                .map_err(|error| ApiError::bad_request(format!("trusted_key: {error}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let report = state.store.verify().await?;
    let stored = state.store.signed_checkpoints().await?;
    let checkpoints = if report.is_intact() {
        Some(check_checkpoints(&state.store, &stored, &trusted, report.head).await?)
    } else {
        None
    };
    let first_break = report.first_break.clone().or_else(|| {
        checkpoints
            .as_ref()
            .and_then(|found| found.first_break.clone())
    });
    Ok(Json(json!({
        "intact": first_break.is_none(),
        "events_checked": report.events_checked,
        "streams_checked": report.streams_checked,
        "head": report.head.map(|(position, hash)| json!({ "global_position": position, "hash": hex::encode(hash) })),
        "first_break": first_break.map(|found| json!({ "global_position": found.global_position, "reason": found.reason })),
        "checkpoints": {
            "stored": stored.len(),
            "checked": checkpoints.as_ref().map_or(0, |found| found.checked),
            "newest": checkpoints.as_ref().and_then(|found| found.newest.as_ref()).map(|newest| newest.to_json()),
            "trusted_keys": trusted.iter().map(TrustedKey::key_id).collect::<Vec<_>>(),
        },
    })))
}

/// `GET /v1/audit/checkpoints`: every signed checkpoint, by position.
#[utoipa::path(
    get,
    path = "/v1/audit/checkpoints",
    operation_id = "audit_checkpoints",
    tag = "audit",
    summary = "Every signed checkpoint of the chain head, by position",
    responses(
        (status = 200, description = "The checkpoints (position, hash, recorded_at, key_id, public_key, signature)", body = Checkpoints),
        (status = 500, description = INTERNAL, body = ErrorBody),
        (status = 503, description = BUSY, body = ErrorBody),
    )
)]
pub(crate) async fn checkpoints<C: Clock + Clone>(
    State(state): Shared<C>,
) -> Result<Json<Value>, ApiError> {
    let stored = state.store.signed_checkpoints().await?;
    Ok(Json(json!({
        "checkpoints": stored.iter().map(|checkpoint| checkpoint.to_json()).collect::<Vec<_>>(),
    })))
}

/// `GET /v1/portfolios/{id}/history?as_of=`: the history, or the part of it recorded up to `as_of`.
#[utoipa::path(
    get,
    path = "/v1/portfolios/{portfolio_id}/history",
    operation_id = "portfolio_history",
    tag = "portfolios",
    summary = "Every event with the transition it caused, or those recorded up to as_of",
    params(
        ("portfolio_id" = PortfolioId, Path, description = "Meta business portfolio id"),
        ("as_of" = Option<chrono::DateTime<chrono::Utc>>, Query, description = "RFC 3339 time: only the events recorded at or before it"),
    ),
    responses(
        (status = 200, description = "Events in stream order", body = Vec<HistoryEntry>),
        (status = 400, description = "invalid_input: the portfolio id is not valid, or as_of is not an RFC 3339 time or repeated; unknown_query_parameter", body = ErrorBody),
        (status = 404, description = UNKNOWN_PORTFOLIO, body = ErrorBody),
        (status = 500, description = INTERNAL, body = ErrorBody),
        (status = 503, description = BUSY, body = ErrorBody),
    )
)]
pub(crate) async fn history<C: Clock + Clone>(
    State(state): Shared<C>,
    Path(portfolio_id): Path<String>,
    Query(pairs): Pairs,
) -> Result<Json<Value>, ApiError> {
    let portfolio_id = portfolio(&portfolio_id)?;
    let as_of = single(&pairs, "as_of")?
        .map(|value| parse_time("as_of", value))
        .transpose()?;
    let entries = state.service.history(&portfolio_id).await?;
    if entries.is_empty() {
        return Err(ApiError::not_found(
            "unknown_portfolio",
            format!("portfolio {portfolio_id} has no recorded onboarding"),
        ));
    }
    let entries: Vec<Value> = entries
        .iter()
        .filter(|entry| as_of.is_none_or(|as_of| entry.logged.recorded.recorded_at <= as_of))
        .map(history_entry_json)
        .collect();
    Ok(Json(json!(entries)))
}
