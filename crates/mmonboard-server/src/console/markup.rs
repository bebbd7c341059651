//! The console's page frame and the small pieces every page uses: the layout (header, navigation, who is
//! signed in), error pages, times, phases.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::session::Session;
use crate::error::ApiError;

/// Where the page is in the navigation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Section {
    Portfolios,
    Enable,
    Integrity,
}

/// A page's live region: the console's event stream from this log position on (optionally one portfolio's).
pub(crate) struct Live {
    pub after: u64,
    pub portfolio_id: Option<String>,
}

impl Live {
    fn url(&self) -> String {
        match &self.portfolio_id {
            Some(portfolio) => format!(
                "/console/live?after={}&portfolio_id={portfolio}",
                self.after
            ),
            None => format!("/console/live?after={}", self.after),
        }
    }
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · mmonboard" }
            link rel="stylesheet" href="/console/console.css";
            script src="/console/console.js" defer {}
        }
    }
}

/// A page of the signed-in console.
pub(crate) fn page(
    title: &str,
    session: &Session,
    section: Section,
    live: Option<Live>,
    body: Markup,
) -> Markup {
    let nav = |target: Section, href: &str, label: &str| {
        html! {
            a href=(href) aria-current=[(section == target).then_some("page")] { (label) }
        }
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body data-live=[live.as_ref().map(Live::url)] {
                header.top {
                    a.brand href="/" { "mmonboard" }
                    nav {
                        (nav(Section::Portfolios, "/", "Portfolios"))
                        (nav(Section::Enable, "/enable", "Enable Marketing Messages"))
                        (nav(Section::Integrity, "/integrity", "Log integrity"))
                    }
                    div.who {
                        span #signed-in-as { (session.principal.name) " · " (session.principal.role.to_string()) }
                        form.sign-out method="post" action="/sign-out" {
                            input type="hidden" name="csrf" value=(session.csrf);
                            button.link type="submit" { "Sign out" }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// A page outside the session (sign-in, errors before one).
pub(crate) fn bare_page(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                header.top { a.brand href="/" { "mmonboard" } }
                main { (body) }
            }
        }
    }
}

/// An error shown as a page, with the API's status and wording.
pub(crate) struct Failure(pub ApiError);

impl Failure {
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self(ApiError {
            status: StatusCode::FORBIDDEN,
            code: "forbidden",
            message: message.into(),
        })
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self(ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "unavailable",
            message: message.into(),
        })
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self(ApiError::not_found("not_found", message))
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self(ApiError::bad_request(message))
    }
}

impl From<ApiError> for Failure {
    fn from(error: ApiError) -> Self {
        Self(error)
    }
}

impl From<mmonboard_app::AppError> for Failure {
    fn from(error: mmonboard_app::AppError) -> Self {
        Self(error.into())
    }
}

impl From<mmonboard_eventlog::StoreError> for Failure {
    fn from(error: mmonboard_eventlog::StoreError) -> Self {
        Self(error.into())
    }
}

impl From<mmonboard_projections::ProjectionError> for Failure {
    fn from(error: mmonboard_projections::ProjectionError) -> Self {
        Self(error.into())
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let ApiError {
            status,
            code,
            message,
        } = self.0;
        let title = status.canonical_reason().unwrap_or("Error");
        let body = html! {
            section.card.narrow {
                h1 { (title) }
                p.error #error-message data-code=(code) { (message) }
                p { a href="/" { "Back to the portfolios" } }
            }
        };
        (status, bare_page(title, body)).into_response()
    }
}

/// A time as people read it, in UTC, with the exact value in the `datetime` attribute.
pub(crate) fn time(at: DateTime<Utc>) -> Markup {
    html! {
        time datetime=(at.to_rfc3339_opts(SecondsFormat::Secs, true)) {
            (at.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        }
    }
}

pub(crate) fn optional_time(at: Option<DateTime<Utc>>) -> Markup {
    match at {
        Some(at) => time(at),
        None => html! { span.muted { "—" } },
    }
}

/// A phase as a badge.
pub(crate) fn phase_badge(phase: &str) -> Markup {
    html! { span class={"phase phase-" (phase)} data-phase=(phase) { (phase.replace('_', " ")) } }
}

/// An SVG produced by this crate's own code (the state machine diagram), inlined.
pub(crate) fn inline_svg(svg: String) -> Markup {
    PreEscaped(svg)
}

/// The hidden fields every command form carries: the session's CSRF token and the stream version the page
/// showed (the command id is derived from it, so sending the form twice applies it once).
pub(crate) fn command_fields(session: &Session, version: u64) -> Markup {
    html! {
        input type="hidden" name="csrf" value=(session.csrf);
        input type="hidden" name="version" value=(version);
    }
}
