//! Token management over HTTP for an admin token: the same operations as `mmonboard tokens`. The matrix
//! lets only `admin` reach these routes; a token created here is shown once in the answer.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mmonboard_access::{AccessError, Role, TokenName, TokenRecord, TokenStore, parse_lifetime};
use mmonboard_app::Clock;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::error::ApiError;

type Shared<C> = State<Arc<AppState<C>>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateToken {
    name: String,
    role: String,
    #[serde(default)]
    expires_in: Option<String>,
}

/// A token as listed: never its secret or its hash.
pub fn token_json(record: &TokenRecord) -> Value {
    json!({
        "name": record.name.as_str(),
        "role": record.role.as_str(),
        "created_at": record.created_at,
        "expires_at": record.expires_at,
        "revoked_at": record.revoked_at,
        "last_used_at": record.last_used_at,
    })
}

fn access_error(error: AccessError) -> ApiError {
    let (status, code) = match &error {
        AccessError::UnknownRole(_)
        | AccessError::InvalidName { .. }
        | AccessError::InvalidLifetime { .. } => (StatusCode::BAD_REQUEST, "invalid_input"),
        AccessError::NameTaken(_) => (StatusCode::CONFLICT, "token_name_taken"),
        AccessError::AlreadyRevoked(_) => (StatusCode::CONFLICT, "token_already_revoked"),
        AccessError::UnknownToken(_) => (StatusCode::NOT_FOUND, "unknown_token"),
        AccessError::Store(_) => return ApiError::internal(error),
    };
    ApiError {
        status,
        code,
        message: error.to_string(),
    }
}

fn store<C: Clock>(state: &AppState<C>) -> Result<&TokenStore, ApiError> {
    state
        .access
        .tokens
        .as_ref()
        .map(|cache| cache.store())
        .ok_or_else(|| {
            ApiError::not_found(
                "tokens_disabled",
                "the server runs with --insecure-no-auth: it has no tokens to manage",
            )
        })
}

pub(crate) async fn list<C: Clock + Clone>(
    State(state): Shared<C>,
) -> Result<Json<Value>, ApiError> {
    let records = store(&state)?.list().await.map_err(access_error)?;
    Ok(Json(json!(
        records.iter().map(token_json).collect::<Vec<_>>()
    )))
}

pub(crate) async fn create<C: Clock + Clone>(
    State(state): Shared<C>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: CreateToken = serde_json::from_slice(&body).map_err(|error| {
        ApiError::bad_request(format!("the token request is not valid: {error}"))
    })?;
    let name = TokenName::parse(&request.name).map_err(access_error)?;
    let role: Role = request.role.parse().map_err(access_error)?;
    let lifetime = request
        .expires_in
        .as_deref()
        .map(parse_lifetime)
        .transpose()
        .map_err(access_error)?;
    let now = state.service.clock().now();
    let issued = store(&state)?
        .create(&name, role, now, lifetime.map(|lifetime| now + lifetime))
        .await
        .map_err(access_error)?;
    if let Some(cache) = &state.access.tokens {
        cache.invalidate();
    }
    let mut body = token_json(&issued.record);
    body["token"] = json!(issued.secret.expose());
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

pub(crate) async fn revoke<C: Clock + Clone>(
    State(state): Shared<C>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let name = TokenName::parse(&name).map_err(access_error)?;
    let now = state.service.clock().now();
    store(&state)?
        .revoke(&name, now)
        .await
        .map_err(access_error)?;
    if let Some(cache) = &state.access.tokens {
        cache.invalidate();
    }
    Ok(StatusCode::NO_CONTENT)
}
