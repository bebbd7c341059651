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
use crate::openapi::{CreatedToken, ErrorBody, INTERNAL, Token};

type Shared<C> = State<Arc<AppState<C>>>;

/// The token to create.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateToken {
    #[schema(pattern = "^[a-z0-9][a-z0-9._-]{0,63}$", example = "ci-reader")]
    name: String,
    #[schema(value_type = crate::openapi::TokenRole)]
    role: String,
    /// Its lifetime: 90d, 12h, 2w ...; none: it does not expire.
    #[serde(default)]
    #[schema(example = "90d")]
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

#[utoipa::path(
    get,
    path = "/v1/tokens",
    operation_id = "list_tokens",
    tag = "tokens",
    summary = "List the tokens (admin): never their secrets",
    responses(
        (status = 200, description = "The tokens", body = Vec<Token>),
        (status = 404, description = "tokens_disabled: the server runs with --insecure-no-auth and has no tokens to manage", body = ErrorBody),
        (status = 500, description = INTERNAL, body = ErrorBody),
    )
)]
pub(crate) async fn list<C: Clock + Clone>(
    State(state): Shared<C>,
) -> Result<Json<Value>, ApiError> {
    let records = store(&state)?.list().await.map_err(access_error)?;
    Ok(Json(json!(
        records.iter().map(token_json).collect::<Vec<_>>()
    )))
}

#[utoipa::path(
    post,
    path = "/v1/tokens",
    operation_id = "create_token",
    tag = "tokens",
    summary = "Create a token (admin); the answer holds the token, shown once",
    request_body(content = CreateToken, content_type = "application/json",
        example = json!({"name": "ci-reader", "role": "auditor", "expires_in": "90d"})),
    responses(
        (status = 201, description = "Created; `token` is the secret", body = CreatedToken),
        (status = 400, description = "invalid_input: the body is not the JSON asked for, or an invalid name, role or lifetime", body = ErrorBody),
        (status = 404, description = "tokens_disabled: the server runs with --insecure-no-auth and has no tokens to manage", body = ErrorBody),
        (status = 409, description = "token_name_taken", body = ErrorBody),
        (status = 413, description = "body_too_large: the body is larger than 64 KiB", body = ErrorBody),
        (status = 500, description = INTERNAL, body = ErrorBody),
    )
)]
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

#[utoipa::path(
    delete,
    path = "/v1/tokens/{name}",
    operation_id = "revoke_token",
    tag = "tokens",
    summary = "Revoke a token (admin)",
    params(("name" = String, Path, pattern = "^[a-z0-9][a-z0-9._-]{0,63}$", description = "The token's name")),
    responses(
        (status = 204, description = "Revoked; every server refuses it within 5 s"),
        (status = 400, description = "invalid_input: the name is not a token name", body = ErrorBody),
        (status = 404, description = "unknown_token: no token of this name; tokens_disabled: the server runs with --insecure-no-auth and has no tokens to manage", body = ErrorBody),
        (status = 409, description = "token_already_revoked", body = ErrorBody),
        (status = 500, description = INTERNAL, body = ErrorBody),
    )
)]
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
