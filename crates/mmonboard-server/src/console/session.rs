//! Signing in to the console: a token of the access-control work is entered once and kept in an HttpOnly,
//! SameSite=Strict cookie; every request checks it against the server's token cache again, so a revoked or
//! expired token ends the session at once. Forms that change something carry a CSRF token derived from the
//! session's token and a key random to this process, and their `Origin` (or `Referer`) must be this server:
//! a page of another site can neither read the token nor post a form with the cookie.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Form;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use cookie::{Cookie, SameSite};
use maud::html;
use mmonboard_access::Endpoint;
use mmonboard_app::Clock;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::markup::{self, Failure};
use super::{Console, Shared};
use crate::token_cache::{Principal, Verdict};

/// The session cookie's name.
pub(crate) const COOKIE: &str = "mmonboard_console";

/// Who is signed in, and the CSRF token their forms carry.
#[derive(Clone)]
pub(crate) struct Session {
    pub principal: Principal,
    pub csrf: String,
}

impl Session {
    /// Whether the person may send the operator's own steps (start, review, business information, offboard).
    pub fn can_operate(&self) -> bool {
        Endpoint::SendOperatorCommand.allows(self.principal.role)
    }

    pub fn may(&self, endpoint: Endpoint) -> bool {
        endpoint.allows(self.principal.role)
    }
}

fn csrf_for<C>(console: &Console<C>, token: &str) -> String {
    let digest = Sha256::new_with_prefix(b"mmonboard console csrf\0")
        .chain_update(console.key)
        .chain_update(b"\0")
        .chain_update(token.as_bytes())
        .finalize();
    hex::encode(digest)
}

fn session_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|cookie| cookie.name() == COOKIE)
        .map(|cookie| cookie.value().to_owned())
        .filter(|value| !value.is_empty())
}

/// Why a request has no session: the page to send the person to instead.
pub(crate) enum NoSession {
    SignIn(Option<String>),
    Failed(Failure),
}

impl IntoResponse for NoSession {
    fn into_response(self) -> Response {
        match self {
            // A page asked for without a session goes to the sign-in page; the stale cookie is cleared.
            Self::SignIn(reason) => {
                let target = match reason {
                    Some(reason) => format!("/sign-in?reason={reason}"),
                    None => "/sign-in".to_owned(),
                };
                let mut response = Redirect::to(&target).into_response();
                if let Ok(value) = removal_cookie().parse() {
                    response.headers_mut().insert(header::SET_COOKIE, value);
                }
                response
            }
            Self::Failed(failure) => failure.into_response(),
        }
    }
}

fn removal_cookie() -> String {
    let mut cookie = Cookie::new(COOKIE, "");
    cookie.set_path("/");
    cookie.set_http_only(true);
    cookie.set_same_site(SameSite::Strict);
    cookie.make_removal();
    cookie.to_string()
}

/// The session of a request, checked against the token cache now.
pub(crate) async fn session<C: Clock + Clone>(
    console: &Console<C>,
    headers: &HeaderMap,
) -> Result<Session, NoSession> {
    let Some(cache) = &console.app.access.tokens else {
        // --insecure-no-auth: everyone is the unauthenticated admin; forms are still CSRF-checked.
        return Ok(Session {
            principal: Principal::unauthenticated(),
            csrf: csrf_for(console, ""),
        });
    };
    let Some(token) = session_token(headers) else {
        return Err(NoSession::SignIn(None));
    };
    match cache.authenticate(&token).await {
        Ok(Verdict::Valid(principal)) => Ok(Session {
            csrf: csrf_for(console, &token),
            principal,
        }),
        Ok(Verdict::Unknown) => Err(NoSession::SignIn(Some("unknown".into()))),
        Ok(Verdict::Revoked(_)) => Err(NoSession::SignIn(Some("revoked".into()))),
        Ok(Verdict::Expired(_)) => Err(NoSession::SignIn(Some("expired".into()))),
        Err(error) => Err(NoSession::Failed(Failure::unavailable(format!(
            "the token could not be checked: {error}"
        )))),
    }
}

/// Whether the request comes from a page of this server: `Origin` (or, without it, `Referer`) names the
/// host the request was sent to.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(host) = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
    else {
        return false;
    };
    let origin = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
        .and_then(|value| value.to_str().ok());
    let Some(origin) = origin else {
        return false;
    };
    let Ok(origin) = url::Url::parse(origin) else {
        return false;
    };
    let origin_host = match (origin.host_str(), origin.port()) {
        (Some(name), Some(port)) => format!("{name}:{port}"),
        (Some(name), None) => name.to_owned(),
        (None, _) => return false,
    };
    origin_host.eq_ignore_ascii_case(host)
}

/// The checks of a form that changes something: a session, this server's origin, and the session's CSRF
/// token in the form's `csrf` field.
pub(crate) async fn checked_form<C: Clock + Clone>(
    console: &Console<C>,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<Session, Response> {
    let session = session(console, headers)
        .await
        .map_err(IntoResponse::into_response)?;
    if !same_origin(headers) {
        return Err(Failure::forbidden(
            "this form was not sent from a page of this console (its Origin is another site's, or missing)",
        )
        .into_response());
    }
    let presented = form.get("csrf").map(String::as_bytes).unwrap_or_default();
    if !bool::from(presented.ct_eq(session.csrf.as_bytes())) {
        return Err(Failure::forbidden(
            "this form's security token does not match your session: reload the page and send it again",
        )
        .into_response());
    }
    Ok(session)
}

pub(crate) async fn sign_in_page<C: Clock + Clone>(
    axum::extract::State(console): Shared<C>,
    axum::extract::Query(query): axum::extract::Query<HashMap<String, String>>,
) -> Response {
    if console.app.access.tokens.is_none() {
        return Redirect::to("/").into_response();
    }
    let notice = match query.get("reason").map(String::as_str) {
        Some("revoked") => Some("Your token was revoked: sign in with another."),
        Some("expired") => Some("Your token has expired: sign in with another."),
        Some("unknown") => Some("Your token is no longer known: sign in with another."),
        Some("signed-out") => Some("You are signed out."),
        _ => None,
    };
    sign_in_form(StatusCode::OK, notice, None)
}

fn sign_in_form(status: StatusCode, notice: Option<&str>, error: Option<&str>) -> Response {
    let body = html! {
        section.card.narrow {
            h1 { "Sign in" }
            @if let Some(notice) = notice { p.notice { (notice) } }
            p { "Paste an access token of this server (" code { "mmonboard tokens create" } " prints one). "
                "It is kept in a cookie this browser sends only to this console." }
            form method="post" action="/sign-in" {
                label for="token" { "Access token" }
                input #token type="password" name="token" autocomplete="off" required
                    aria-describedby=[error.map(|_| "token-error")];
                @if let Some(error) = error { p #token-error .field-error role="alert" { (error) } }
                button #sign-in type="submit" { "Sign in" }
            }
        }
    };
    (status, markup::bare_page("Sign in", body)).into_response()
}

pub(crate) async fn sign_in<C: Clock + Clone>(
    axum::extract::State(console): Shared<C>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let Some(cache) = &console.app.access.tokens else {
        return Redirect::to("/").into_response();
    };
    // No session yet, so no CSRF token: the origin check keeps another site from signing a browser in.
    if !same_origin(&headers) {
        return Failure::forbidden("the sign-in form was not sent from this console")
            .into_response();
    }
    let token = form
        .get("token")
        .map(|token| token.trim())
        .unwrap_or_default();
    if token.is_empty() {
        return sign_in_form(
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            Some("Enter a token."),
        );
    }
    let principal = match cache.authenticate(token).await {
        Ok(Verdict::Valid(principal)) => principal,
        Ok(Verdict::Unknown) => {
            return sign_in_form(
                StatusCode::UNAUTHORIZED,
                None,
                Some("This token is not known to this server."),
            );
        }
        Ok(Verdict::Revoked(name)) => {
            return sign_in_form(
                StatusCode::UNAUTHORIZED,
                None,
                Some(&format!("The token {name} is revoked.")),
            );
        }
        Ok(Verdict::Expired(name)) => {
            return sign_in_form(
                StatusCode::UNAUTHORIZED,
                None,
                Some(&format!("The token {name} has expired.")),
            );
        }
        Err(error) => {
            return Failure::unavailable(format!("the token could not be checked: {error}"))
                .into_response();
        }
    };
    if !Endpoint::Portfolios.allows(principal.role) {
        return sign_in_form(
            StatusCode::FORBIDDEN,
            None,
            Some(&format!(
                "The token {} has the role {}, which may not read portfolios: the console needs the role operator, auditor or admin.",
                principal.name, principal.role
            )),
        );
    }
    let mut cookie = Cookie::new(COOKIE, token.to_owned());
    cookie.set_path("/");
    cookie.set_http_only(true);
    cookie.set_same_site(SameSite::Strict);
    cookie.set_secure(console.secure_cookie);
    let mut response = Redirect::to("/").into_response();
    if let Ok(value) = cookie.to_string().parse() {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

pub(crate) async fn sign_out<C: Clock + Clone>(
    axum::extract::State(console): Shared<C>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if let Err(response) = checked_form(&console, &headers, &form).await {
        return response;
    }
    let mut response = Redirect::to("/sign-in?reason=signed-out").into_response();
    if let Ok(value) = removal_cookie().parse() {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// The session of a page request, or the redirect to the sign-in page.
pub(crate) async fn page_session<C: Clock + Clone>(
    console: &Arc<Console<C>>,
    headers: &HeaderMap,
    endpoint: Endpoint,
) -> Result<Session, Response> {
    let session = session(console, headers)
        .await
        .map_err(IntoResponse::into_response)?;
    if !session.may(endpoint) {
        return Err(Failure::forbidden(format!(
            "the role {} may not see this page",
            session.principal.role
        ))
        .into_response());
    }
    Ok(session)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(*name, value.parse().expect("a header value"));
        }
        headers
    }

    #[test]
    fn a_form_counts_as_this_consoles_only_when_its_origin_is_this_host() {
        assert!(same_origin(&headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:8080")
        ])));
        assert!(same_origin(&headers(&[
            ("host", "127.0.0.1:8080"),
            ("referer", "http://127.0.0.1:8080/portfolios/1")
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://evil.example")
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:9090")
        ])));
        assert!(!same_origin(&headers(&[("host", "127.0.0.1:8080")])));
        assert!(!same_origin(&headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "null")
        ])));
    }

    #[test]
    fn the_session_token_is_read_from_its_cookie_among_others() {
        assert_eq!(
            session_token(&headers(&[(
                "cookie",
                "a=1; mmonboard_console=mmo_abc; b=2"
            )])),
            Some("mmo_abc".to_owned())
        );
        assert_eq!(session_token(&headers(&[("cookie", "a=1")])), None);
        assert_eq!(
            session_token(&headers(&[("cookie", "mmonboard_console=")])),
            None
        );
    }

    #[test]
    fn the_removal_cookie_keeps_the_attributes_of_the_session_cookie() {
        let removal = removal_cookie();
        assert!(removal.starts_with("mmonboard_console=;"), "{removal}");
        assert!(removal.contains("HttpOnly"), "{removal}");
        assert!(removal.contains("SameSite=Strict"), "{removal}");
        assert!(removal.contains("Max-Age=0"), "{removal}");
    }
}
