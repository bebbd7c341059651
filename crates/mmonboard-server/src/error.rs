//! Errors: a stable machine `code` and a human `message` in every error body.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Store(#[from] mmonboard_eventlog::StoreError),
    #[error(transparent)]
    ReadModels(#[from] mmonboard_projections::ProjectionError),
    #[error(transparent)]
    Process(#[from] mmonboard_process::ProcessError),
    #[error(transparent)]
    Access(#[from] mmonboard_access::AccessError),
    #[error("the JetStream relay: {0}")]
    Relay(#[from] mmonboard_relay::RelayError),
    #[error(
        "the database holds no usable access token, so every request would be refused: create the first \
         with `mmonboard tokens create --name admin --role admin` (with the same --database), or start with \
         --insecure-no-auth on a development machine"
    )]
    NoTokens,
    #[error("TLS: {0}")]
    Tls(String),
    #[error("the server failed: {0}")]
    Io(#[from] std::io::Error),
}

/// An error answer of the API.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

/// Seconds after which a retry may succeed, for the answers that mean "not now" (every 503 carries
/// `Retry-After`): a busy log frees up fast, a full disk takes an operator.
fn retry_after(status: StatusCode, code: &str) -> Option<u32> {
    match (status, code) {
        (StatusCode::SERVICE_UNAVAILABLE, "busy") => Some(1),
        (StatusCode::SERVICE_UNAVAILABLE, "storage_full") => Some(30),
        (StatusCode::SERVICE_UNAVAILABLE, _) => Some(5),
        _ => None,
    }
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_input",
            message: message.into(),
        }
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            code,
            message: message.into(),
        }
    }

    pub fn internal(error: impl std::fmt::Display) -> Self {
        let message = error.to_string();
        tracing::error!(%message, "request failed");
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "internal",
            message,
        }
    }
}

impl From<mmonboard_app::AppError> for ApiError {
    fn from(error: mmonboard_app::AppError) -> Self {
        match &error {
            mmonboard_app::AppError::Store(mmonboard_eventlog::StoreError::Busy { .. })
            | mmonboard_app::AppError::ConflictRetriesExhausted { .. } => Self {
                status: StatusCode::SERVICE_UNAVAILABLE,
                code: "busy",
                message: error.to_string(),
            },
            // Nothing was written; once space is back the same request succeeds (with the same
            // Idempotency-Key, at most once).
            mmonboard_app::AppError::Store(mmonboard_eventlog::StoreError::StorageFull(_)) => {
                tracing::error!(%error, "the log's storage is full");
                Self {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    code: "storage_full",
                    message: error.to_string(),
                }
            }
            _ => Self::internal(error),
        }
    }
}

impl From<mmonboard_eventlog::StoreError> for ApiError {
    fn from(error: mmonboard_eventlog::StoreError) -> Self {
        Self::from(mmonboard_app::AppError::from(error))
    }
}

impl From<mmonboard_projections::ProjectionError> for ApiError {
    fn from(error: mmonboard_projections::ProjectionError) -> Self {
        match error {
            mmonboard_projections::ProjectionError::Store(error) => Self::from(error),
            error => Self::internal(error),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(json!({ "code": self.code, "message": self.message })),
        )
            .into_response();
        if let Some(seconds) = retry_after(self.status, self.code) {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}
