//! The access layer in front of every route: it authenticates a request that needs a credential (everything
//! under `/v1`, and `/metrics` on the API's listener) by its bearer token, checks the role against the
//! access matrix, applies the per-token rate limit, and hands the principal to the handlers in the request's
//! extensions. Health, readiness, the OpenAPI document and Meta's signed webhooks pass untouched.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::TimeDelta;
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use mmonboard_access::{
    Endpoint, Role, requires_credentials, roles_text, route_is_listed, rules_for,
};
use mmonboard_app::Clock;

use crate::error::ApiError;
use crate::token_cache::{Principal, TokenCache, Verdict};

/// How the API authenticates its callers.
pub enum AuthMode {
    /// Bearer tokens from the token store (the default).
    Tokens,
    /// No credentials: every caller is an admin recorded as `unauthenticated`. For a development machine.
    InsecureNoAuth,
}

/// The per-token rate limit: a bucket of `burst` requests, one more every `replenish_every`.
#[derive(Debug, Clone, Copy)]
pub struct RateLimit {
    pub replenish_every: Duration,
    pub burst: NonZeroU32,
}

impl RateLimit {
    /// `per_second` requests a second on average, bursts of `burst`.
    pub fn per_second(per_second: NonZeroU32, burst: NonZeroU32) -> Self {
        Self {
            replenish_every: Duration::from_secs(1) / per_second.get(),
            burst,
        }
    }
}

/// Access control of `serve`, as configured.
pub struct AccessOptions {
    pub mode: AuthMode,
    /// How old the server's copy of the tokens may grow before a request reloads it: a revocation takes
    /// effect within this time.
    pub refresh_every: TimeDelta,
    /// Requests in flight at once over the whole server; past it, 503 with `Retry-After`.
    pub max_in_flight: usize,
    pub rate_limit: RateLimit,
}

/// The default refresh interval of the token cache (documented in docs/access.md).
pub const DEFAULT_REFRESH: TimeDelta = TimeDelta::seconds(5);

impl Default for AccessOptions {
    fn default() -> Self {
        Self {
            mode: AuthMode::Tokens,
            refresh_every: DEFAULT_REFRESH,
            max_in_flight: 256,
            rate_limit: RateLimit::per_second(
                NonZeroU32::new(50).unwrap_or(NonZeroU32::MIN),
                NonZeroU32::new(100).unwrap_or(NonZeroU32::MIN),
            ),
        }
    }
}

/// What the access layer shares.
pub(crate) struct AccessControl<C> {
    /// `None` under `--insecure-no-auth`.
    pub tokens: Option<TokenCache<C>>,
    limiter: DefaultKeyedRateLimiter<String>,
}

impl<C: Clock> AccessControl<C> {
    pub fn new(tokens: Option<TokenCache<C>>, rate_limit: RateLimit) -> Self {
        let quota = Quota::with_period(rate_limit.replenish_every)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MAX))
            .allow_burst(rate_limit.burst);
        Self {
            tokens,
            limiter: RateLimiter::keyed(quota),
        }
    }
}

/// 401: no usable credential. Says how to authenticate, as RFC 6750 asks.
fn unauthorized(code: &'static str, message: String) -> Response {
    let challenge = if code == "missing_credentials" {
        "Bearer realm=\"mmonboard\"".to_owned()
    } else {
        format!("Bearer realm=\"mmonboard\", error=\"invalid_token\", error_description=\"{code}\"")
    };
    let mut response = ApiError {
        status: StatusCode::UNAUTHORIZED,
        code,
        message,
    }
    .into_response();
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

/// 403 naming the roles that may.
pub(crate) fn forbidden(role: Role, what: &str, allowed: &[Role]) -> ApiError {
    ApiError {
        status: StatusCode::FORBIDDEN,
        code: "forbidden",
        message: format!(
            "the role {role} may not {what}: it needs the role {}",
            roles_text(allowed)
        ),
    }
}

/// 429 or 503 with `Retry-After` in whole seconds (at least 1).
pub(crate) fn retry_later(
    status: StatusCode,
    code: &'static str,
    message: String,
    after: Duration,
) -> Response {
    let seconds = after.as_secs() + u64::from(after.subsec_nanos() > 0);
    let mut response = ApiError {
        status,
        code,
        message,
    }
    .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    response
}

/// The bearer token of a request, or the code and message of the 401 that says what is wrong with it.
fn bearer(headers: &HeaderMap) -> Result<&str, (&'static str, String)> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err((
            "missing_credentials",
            "this endpoint needs an Authorization: Bearer <token> header (create a token with `mmonboard tokens create`)".to_owned(),
        ));
    };
    let malformed = || {
        (
            "invalid_token",
            "the Authorization header is not of the form Bearer <token>".to_owned(),
        )
    };
    let text = value.to_str().map_err(|_| malformed())?;
    let (scheme, token) = text.split_once(' ').ok_or_else(malformed)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(malformed());
    }
    Ok(token)
}

pub(crate) async fn authenticate<C: Clock>(
    State(access): State<Arc<AccessControl<C>>>,
    mut request: Request,
    next: Next,
) -> Response {
    if !requires_credentials(request.uri().path()) {
        return next.run(request).await;
    }
    let principal = match &access.tokens {
        None => Principal::unauthenticated(),
        Some(cache) => {
            let token = match bearer(request.headers()) {
                Ok(token) => token,
                Err((code, message)) => return unauthorized(code, message),
            };
            match cache.authenticate(token).await {
                Ok(Verdict::Valid(principal)) => principal,
                Ok(Verdict::Unknown) => {
                    return unauthorized("invalid_token", "the token is not known".to_owned());
                }
                Ok(Verdict::Revoked(name)) => {
                    return unauthorized("token_revoked", format!("the token {name} is revoked"));
                }
                Ok(Verdict::Expired(name)) => {
                    return unauthorized("token_expired", format!("the token {name} has expired"));
                }
                Err(error) => {
                    tracing::error!(%error, "the tokens could not be loaded");
                    return retry_later(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "credentials_unavailable",
                        format!("the token could not be checked: {error}"),
                        Duration::from_secs(1),
                    );
                }
            }
        }
    };
    if let Err(not_until) = access.limiter.check_key(&principal.name) {
        let after = not_until.wait_time_from(DefaultClock::default().now());
        return retry_later(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "the token {} sent more requests than its rate limit allows",
                principal.name
            ),
            after,
        );
    }
    if let Some(route) = request.extensions().get::<MatchedPath>() {
        let route = route.as_str();
        let rules = rules_for(request.method().as_str(), route);
        if rules.is_empty() {
            // A method the route lacks is the router's 405; a route without a row is closed.
            if !route_is_listed(route) {
                return ApiError {
                    status: StatusCode::FORBIDDEN,
                    code: "forbidden",
                    message: format!("{route} is not in the access matrix: no role may call it"),
                }
                .into_response();
            }
        } else if !rules
            .iter()
            .any(|rule| rule.roles.contains(&principal.role))
        {
            let allowed: Vec<Role> = Role::ALL
                .into_iter()
                .filter(|role| rules.iter().any(|rule| rule.roles.contains(role)))
                .collect();
            let what = format!("{} {route}", request.method());
            return forbidden(principal.role, &what, &allowed).into_response();
        }
    }
    request.extensions_mut().insert(principal);
    next.run(request).await
}

/// The check of one command against the matrix, once the handler knows which command it is.
pub(crate) fn authorize_command(
    principal: &Principal,
    command: &mmonboard_domain::OnboardingCommand,
) -> Result<(), ApiError> {
    let endpoint: Endpoint = mmonboard_access::CommandClass::of(command).endpoint();
    if endpoint.allows(principal.role) {
        return Ok(());
    }
    let what = match endpoint {
        Endpoint::SendRecorderCommand => format!(
            "send {}, which records what Meta reported",
            command.type_name()
        ),
        _ => format!("send {}", command.type_name()),
    };
    Err(forbidden(principal.role, &what, endpoint.roles()))
}
