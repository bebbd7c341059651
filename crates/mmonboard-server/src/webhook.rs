//! Meta's webhooks (`/webhooks/meta`): the verification handshake, and deliveries checked against
//! `X-Hub-Signature-256` over the raw body before anything is parsed. An unsigned or mis-signed delivery is
//! refused (401) with nothing recorded. Every accepted notification becomes a command on its portfolio, with
//! an id derived from the delivery's bytes and the notification's place in it, so a redelivery records nothing
//! new. A notification the domain refuses (a second WABA's `MM_LITE_TERMS_SIGNED`, a restriction of a WABA
//! not onboarded), or one that is malformed, is acknowledged: sending it again would not change the answer.
//! A failure of our own (the log unavailable), or a WABA whose portfolio is not known here yet, answers 5xx,
//! so that Meta delivers again.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use mmonboard_app::{Clock, CommandContext, derived_command_id};
use mmonboard_domain::OnboardingCommand;
use mmonboard_domain::facts::{SuspensionReason, WabaExitReason};
use mmonboard_domain::ids::{PortfolioId, WabaId};
use mmonboard_meta::webhook::{
    AccountEvent, Notification, SIGNATURE_HEADER, WebhookPayload, verify,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::error::ApiError;
use crate::metrics::{Outcome, Source};
use crate::openapi::{ErrorBody, INTERNAL, WebhookAnswer, WebhookDelivery, WebhookUnavailable};

/// The actor webhook commands are recorded with.
pub const WEBHOOK_ACTOR: &str = "meta-webhook";

/// The secrets Meta's webhooks are checked with.
#[derive(Clone)]
pub struct WebhookConfig {
    /// The Meta app's secret: deliveries are signed with it.
    pub app_secret: String,
    /// The token Meta echoes in the subscription handshake.
    pub verify_token: String,
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookConfig(<secrets redacted>)")
    }
}

fn configured<C>(state: &AppState<C>) -> Result<&WebhookConfig, ApiError> {
    state.webhook.as_ref().ok_or_else(|| {
        ApiError::not_found(
            "webhooks_not_configured",
            "Meta webhooks are not configured on this server (set META_APP_SECRET and META_WEBHOOK_VERIFY_TOKEN)",
        )
    })
}

/// `GET /webhooks/meta?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…`: echo the challenge.
#[utoipa::path(
    get,
    path = "/webhooks/meta",
    operation_id = "webhook_handshake",
    tag = "webhooks",
    summary = "Meta's webhook subscription handshake",
    description = "Echoes hub.challenge when hub.mode is subscribe and hub.verify_token matches META_WEBHOOK_VERIFY_TOKEN. 404 when webhooks are not configured.",
    params(
        ("hub.mode" = String, Query, example = "subscribe", description = "subscribe"),
        ("hub.verify_token" = String, Query, description = "The verify token configured in Meta's app"),
        ("hub.challenge" = String, Query, description = "Echoed back"),
    ),
    responses(
        (status = 200, description = "the challenge, as text", content_type = "text/plain", body = String),
        (status = 400, description = "invalid_input: hub.mode is not subscribe, or a parameter is missing; unknown_query_parameter", body = ErrorBody),
        (status = 403, description = "invalid_verify_token: hub.verify_token does not match", body = ErrorBody),
        (status = 404, description = "webhooks_not_configured: META_APP_SECRET and META_WEBHOOK_VERIFY_TOKEN are not set", body = ErrorBody),
    )
)]
pub(crate) async fn handshake<C: Clock + Clone>(
    State(state): State<Arc<AppState<C>>>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let config = configured(&state)?;
    let mode = query.get("hub.mode").map(String::as_str);
    let token = query.get("hub.verify_token").map(String::as_str);
    let challenge = query.get("hub.challenge");
    match (mode, token, challenge) {
        (Some("subscribe"), Some(token), Some(challenge))
            if constant_time_eq(token.as_bytes(), config.verify_token.as_bytes()) =>
        {
            Ok((StatusCode::OK, challenge.clone()).into_response())
        }
        (Some("subscribe"), Some(_), Some(_)) => Err(ApiError {
            status: StatusCode::FORBIDDEN,
            code: "invalid_verify_token",
            message: "hub.verify_token does not match the configured verify token".into(),
        }),
        _ => Err(ApiError::bad_request(
            "the handshake needs hub.mode=subscribe, hub.verify_token and hub.challenge",
        )),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `POST /webhooks/meta`: one delivery.
#[utoipa::path(
    post,
    path = "/webhooks/meta",
    operation_id = "webhook_delivery",
    tag = "webhooks",
    summary = "A Meta webhook delivery",
    description = "X-Hub-Signature-256 (HMAC-SHA256 of the raw body with META_APP_SECRET) is checked before anything is parsed; a refused delivery records nothing. Each notification becomes a command on its portfolio (account_update MM_LITE_TERMS_SIGNED → record_terms_signed, ACCOUNT_RESTRICTION/DISABLED_UPDATE → restrict_waba, ACCOUNT_OFFBOARDED/PARTNER_REMOVED → offboard_waba; template_category_update → change_template) with an id derived from the delivery's bytes: a redelivery records nothing new. Refusals of the domain and malformed notifications are acknowledged (200) with their code, the others in the delivery still applied; our own failures and WABAs of no known portfolio answer 5xx so that Meta delivers again.",
    params(
        ("X-Hub-Signature-256" = String, Header, pattern = "^sha256=[0-9a-f]{64}$", description = "sha256= and the HMAC-SHA256 of the raw body, hex"),
    ),
    request_body(content = WebhookDelivery, content_type = "application/json"),
    responses(
        (status = 200, description = "every notification's outcome", body = WebhookAnswer),
        (status = 400, description = "invalid_input: the signed body is not a webhook payload Meta sends; unknown_query_parameter", body = ErrorBody),
        (status = 401, description = "invalid_signature: X-Hub-Signature-256 is missing or does not match; nothing recorded", body = ErrorBody),
        (status = 404, description = "webhooks_not_configured: META_APP_SECRET and META_WEBHOOK_VERIFY_TOKEN are not set", body = ErrorBody),
        (status = 413, description = "body_too_large: the body is larger than 64 KiB", body = ErrorBody),
        (status = 500, description = INTERNAL, body = ErrorBody),
        (status = 503, description = "a notification names a WABA whose portfolio is not known here yet: not acknowledged, so that Meta delivers again (what was recorded from the delivery is recognised then); same body as 200. An Error body: busy or overloaded, retry after Retry-After seconds", body = WebhookUnavailable),
    )
)]
pub(crate) async fn receive<C: Clock + Clone>(
    State(state): State<Arc<AppState<C>>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let config = configured(&state)?;
    let body = body.map_err(|rejection| crate::routes::body_rejection(&rejection))?;
    let signature = headers
        .get(SIGNATURE_HEADER)
        .map(|value| value.to_str().unwrap_or(""));
    if let Err(error) = verify(config.app_secret.as_bytes(), &body, signature) {
        state.metrics.webhook(false);
        tracing::warn!(%error, "refused a webhook delivery");
        return Err(ApiError {
            status: StatusCode::UNAUTHORIZED,
            code: "invalid_signature",
            message: error.to_string(),
        });
    }
    let notifications = WebhookPayload::parse(&body)
        .and_then(|payload| payload.each_notification())
        .map_err(|error| {
            state.metrics.webhook(false);
            ApiError::bad_request(error.to_string())
        })?;
    state.metrics.webhook(true);
    let delivery = hex::encode(Sha256::digest(&body));
    let mut results = Vec::with_capacity(notifications.len());
    for (index, notification) in notifications.iter().enumerate() {
        results.push(match notification {
            Ok(notification) => apply(&state, &delivery, index, notification).await?,
            // Sending it again would not make it valid: acknowledged, named, and the others still applied.
            Err(error) => Applied::Invalid {
                message: error.to_string(),
            },
        });
    }
    // A notification for a WABA whose portfolio is not known here yet (the read model still catching up, or
    // a portfolio not connected yet) is not acknowledged: Meta delivers the whole payload again later, and
    // what was recorded from it is recognised then by its command id.
    let status = if results.iter().any(Applied::wants_redelivery) {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let results: Vec<Value> = results.iter().map(Applied::to_json).collect();
    Ok((status, Json(json!({ "notifications": results }))).into_response())
}

/// What became of one notification of a delivery.
enum Applied {
    /// Nothing mmonboard records (a status it does not act on, a field it does not follow).
    Ignored,
    /// Not a notification mmonboard can read; acknowledged all the same.
    Invalid { message: String },
    /// For a WABA of no portfolio known here (yet): the delivery is not acknowledged.
    Unroutable { waba_id: WabaId },
    /// Its command was decided and recorded (or had been, for a redelivery).
    Recorded {
        portfolio_id: PortfolioId,
        command: &'static str,
        already_applied: bool,
        events: Vec<&'static str>,
    },
    /// The domain refused its command: acknowledged, nothing recorded.
    Refused {
        portfolio_id: PortfolioId,
        command: &'static str,
        code: &'static str,
        message: String,
    },
}

impl Applied {
    /// Whether Meta should deliver the payload again (answered 503).
    fn wants_redelivery(&self) -> bool {
        match self {
            Self::Unroutable { .. } => true,
            Self::Ignored | Self::Invalid { .. } | Self::Recorded { .. } | Self::Refused { .. } => {
                false
            }
        }
    }

    fn to_json(&self) -> Value {
        match self {
            Self::Ignored => json!({ "outcome": "ignored" }),
            Self::Invalid { message } => json!({ "outcome": "invalid", "message": message }),
            Self::Unroutable { waba_id } => json!({
                "outcome": "unroutable",
                "waba_id": waba_id,
                "message": format!("WABA {waba_id} belongs to no connected portfolio known here"),
            }),
            Self::Recorded {
                portfolio_id,
                command,
                already_applied,
                events,
            } => json!({
                "outcome": if *already_applied { "already_applied" } else { "recorded" },
                "portfolio_id": portfolio_id,
                "command": command,
                "events": events,
            }),
            Self::Refused {
                portfolio_id,
                command,
                code,
                message,
            } => json!({
                "outcome": "refused",
                "portfolio_id": portfolio_id,
                "command": command,
                "code": code,
                "message": message,
            }),
        }
    }
}

/// What one notification asks of which portfolio.
fn command_of(notification: &Notification) -> Option<(&WabaId, OnboardingCommand)> {
    match notification {
        Notification::AccountUpdate { waba_id, event, .. } => {
            let waba = waba_id.clone();
            let command = match event {
                AccountEvent::TermsSigned => OnboardingCommand::RecordTermsSigned { waba_id: waba },
                AccountEvent::Restricted => OnboardingCommand::RestrictWaba {
                    waba_id: waba,
                    reason: SuspensionReason::AccountRestriction,
                },
                AccountEvent::Disabled => OnboardingCommand::RestrictWaba {
                    waba_id: waba,
                    reason: SuspensionReason::DisabledUpdate,
                },
                AccountEvent::Offboarded => OnboardingCommand::OffboardWaba {
                    waba_id: waba,
                    reason: WabaExitReason::AccountOffboarded,
                },
                AccountEvent::PartnerRemoved => OnboardingCommand::OffboardWaba {
                    waba_id: waba,
                    reason: WabaExitReason::PartnerRemoved,
                },
                AccountEvent::DisableScheduled
                | AccountEvent::Reinstated
                | AccountEvent::Other(_) => return None,
            };
            Some((waba_id, command))
        }
        Notification::TemplateCategoryUpdate {
            waba_id,
            template_id,
            name,
            language,
            new_category,
        } => Some((
            waba_id,
            OnboardingCommand::ChangeTemplate {
                waba_id: waba_id.clone(),
                template_id: template_id.clone(),
                name: name.clone(),
                language: language.clone(),
                category: new_category.clone(),
            },
        )),
        Notification::Ignored { .. } => None,
    }
}

async fn apply<C: Clock + Clone>(
    state: &AppState<C>,
    delivery: &str,
    index: usize,
    notification: &Notification,
) -> Result<Applied, ApiError> {
    let Some((waba_id, command)) = command_of(notification) else {
        return Ok(Applied::Ignored);
    };
    let named = match notification {
        Notification::AccountUpdate { business_id, .. } => business_id.clone(),
        _ => None,
    };
    let portfolio_id = match named {
        Some(portfolio_id) => portfolio_id,
        None => match state
            .read_models
            .portfolio_of_waba(waba_id.as_str())
            .await
            .map_err(ApiError::internal)?
            .map(|id| PortfolioId::parse(&id))
        {
            Some(Ok(portfolio_id)) => portfolio_id,
            _ => {
                tracing::warn!(%waba_id, "webhook for a WABA of no known portfolio");
                return Ok(Applied::Unroutable {
                    waba_id: waba_id.clone(),
                });
            }
        },
    };
    let index = index.to_string();
    // The notification answers the portfolio as it stands: its causation is the latest event recorded.
    let causation = state.service.last_event_id(&portfolio_id).await?;
    let context = CommandContext::new(WEBHOOK_ACTOR)
        .with_command_id(derived_command_id("meta-webhook", &[delivery, &index]))
        .with_causation(causation);
    let executed = state
        .service
        .execute(&portfolio_id, &command, &context)
        .await;
    state
        .metrics
        .command(Source::Webhook, Outcome::of(&executed));
    match executed? {
        Ok(outcome) => Ok(Applied::Recorded {
            portfolio_id,
            command: command.type_name(),
            already_applied: outcome.already_applied,
            events: outcome
                .events
                .iter()
                .map(|logged| logged.event.type_name())
                .collect(),
        }),
        Err(refusal) => {
            tracing::info!(%portfolio_id, command = command.type_name(), %refusal, "webhook acknowledged; the domain refused its command");
            Ok(Applied::Refused {
                portfolio_id,
                command: command.type_name(),
                code: refusal.code(),
                message: refusal.to_string(),
            })
        }
    }
}
