//! The customer's enable flow, step by step as the provider's web interface shows it (Channels & Numbers >
//! Numbers > WhatsApp, the Overview tab): the "Enable Marketing Messages (formerly MM Lite)" section and its
//! Enable button, the benefits and the permissions granted to the provider, the business information, the
//! account connected, and after Done the routing notice with the configuration sync's window counting down.
//! The step shown is the portfolio's phase; each button sends the command the API would, and a refusal is
//! shown in words beside the step or field it concerns.

use std::collections::HashMap;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use maud::{Markup, html};
use mmonboard_access::Endpoint;
use mmonboard_app::Clock;
use mmonboard_domain::eligibility::PortfolioIneligibility;
use mmonboard_domain::ids::{BusinessName, PortfolioId, UserId, WebsiteUrl};
use mmonboard_domain::machine::OboMigration;
use mmonboard_domain::{Aggregate, OnboardingCommand, Phase};
use mmonboard_eventlog::EventStore;

use super::markup::{self, Failure, Live, Section, command_fields, phase_badge, time};
use super::session::{Session, checked_form, page_session};
use super::views::{obo_migration, parse_portfolio, verdict};
use super::{Console, Issued, Shared, issue};

/// `GET /enable`: which portfolio to enable.
pub(crate) async fn choose<C: Clock + Clone>(
    State(console): Shared<C>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Failure> {
    let session = match page_session(&console, &headers, Endpoint::PortfolioState).await {
        Ok(session) => session,
        Err(response) => return Ok(response),
    };
    let entered = query.get("portfolio_id").map(|id| id.trim().to_owned());
    let error = match entered.as_deref() {
        Some(text) => match PortfolioId::parse(text) {
            Ok(portfolio_id) => {
                return Ok(
                    Redirect::to(&format!("/portfolios/{portfolio_id}/enable")).into_response()
                );
            }
            Err(error) => Some(error.to_string()),
        },
        None => None,
    };
    let body = html! {
        (breadcrumb())
        section.card.narrow {
            h1 { "Enable Marketing Messages" }
            p { "Open the WhatsApp overview of a business portfolio (its Meta business id)." }
            form #choose-portfolio method="get" action="/enable" {
                label for="portfolio_id" { "Business portfolio id" }
                input #portfolio_id type="text" name="portfolio_id" inputmode="numeric" required
                    value=[entered.as_deref()] aria-describedby=[error.as_ref().map(|_| "portfolio-error")];
                @if let Some(error) = &error { p #portfolio-error .field-error role="alert" { (error) } }
                button type="submit" { "Open" }
            }
        }
    };
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        markup::page(
            "Enable Marketing Messages",
            &session,
            Section::Enable,
            None,
            body,
        ),
    )
        .into_response())
}

fn breadcrumb() -> Markup {
    html! {
        nav.breadcrumb aria-label="Breadcrumb" {
            span { "Channels & Numbers" } " › " span { "Numbers" } " › " span { "WhatsApp" }
        }
    }
}

/// What a step's form sent back when it was not accepted: the message, the field it concerns (if one),
/// and the values to show again.
#[derive(Default)]
struct Rejected {
    message: Option<String>,
    field: Option<&'static str>,
    values: HashMap<String, String>,
}

impl Rejected {
    fn at(&self, field: &'static str) -> Option<&str> {
        self.message
            .as_deref()
            .filter(|_| self.field == Some(field))
    }

    fn step(&self) -> Option<&str> {
        self.message.as_deref().filter(|_| self.field.is_none())
    }

    fn value(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }
}

fn field_error(id: &str, message: Option<&str>) -> Markup {
    html! { @if let Some(message) = message { p.field-error id=(id) role="alert" { (message) } } }
}

fn step_error(message: Option<&str>) -> Markup {
    html! { @if let Some(message) = message { p.error #step-error role="alert" { "Not done: " (message) } } }
}

fn progress(current: usize) -> Markup {
    let steps = [
        "Benefits and permissions",
        "Business information",
        "Account connected",
    ];
    html! {
        ol.steps {
            @for (index, step) in steps.iter().enumerate() {
                li class=(if index + 1 == current { "current" } else if index + 1 < current { "done" } else { "" }) { (step) }
            }
        }
    }
}

fn waiting(text: &str) -> Markup {
    html! { p.waiting #waiting role="status" { span.spinner aria-hidden="true" {} (text) } }
}

/// The step of the flow for a portfolio in `aggregate`'s state.
fn step(
    session: &Session,
    portfolio_id: &PortfolioId,
    aggregate: &Aggregate,
    done: bool,
    now: DateTime<Utc>,
    rejected: &Rejected,
) -> Markup {
    let data = aggregate.data();
    let version = aggregate.version();
    let act = session.can_operate();
    let action = |step: &str| format!("/portfolios/{portfolio_id}/enable/{step}");
    let not_yours =
        html! { p.muted.not-yours { "An operator or admin of the provider takes this step." } };
    html! {
        @match aggregate.phase() {
            Phase::NotStarted => {
                p { "Send marketing template messages through the Marketing Messages API for WhatsApp: Meta optimises "
                    "their delivery and reports their performance, while every other message keeps going through the Cloud API." }
                @if act {
                    form method="post" action=(action("start")) {
                        (command_fields(session, version))
                        button #enable type="submit" data-command="start_onboarding" { "Enable" }
                    }
                } @else { (not_yours) }
            },
            Phase::CheckingEligibility => { (waiting("Checking with Meta whether this portfolio can use Marketing Messages…")) },
            Phase::Ineligible => {
                @let reasons = data.eligibility.as_ref().map(|record| &record.verdict.portfolio_reasons[..]).unwrap_or_default();
                @if reasons.contains(&PortfolioIneligibility::EnableNotOffered) {
                    p.warn #not-offered { "Meta does not offer Marketing Messages for this portfolio. Contact your account manager or support." }
                } @else {
                    p.warn { "This portfolio cannot use Marketing Messages yet:" }
                }
                ul.reasons #ineligible-reasons { @for reason in reasons { li { (reason.to_string()) } } }
                (left_out_wabas(aggregate))
            },
            Phase::MigratingObo => {
                (waiting("WhatsApp Business Accounts owned on your behalf (OBO) are being migrated to shared accounts…"))
                table.grid #obo-table {
                    thead { tr { th { "WABA" } th { "Migration" } } }
                    tbody { @for (waba_id, record) in &data.wabas {
                        @if record.obo_migration != OboMigration::NotNeeded {
                            tr { td { (waba_id) } td { (obo_migration(&record.obo_migration)) } }
                        }
                    } }
                }
            },
            Phase::ReviewingPermissions => {
                (progress(1))
                h2 { "Why use the Marketing Messages API" }
                ul.benefits {
                    li { "Meta optimises the delivery of your marketing templates to reach the people most likely to engage." }
                    li { "Performance insights for each marketing template in Ads Manager." }
                    li { "Marketing templates go through the Marketing Messages API where possible; service, utility and authentication messages are unchanged." }
                }
                h2 { "Permissions granted to the provider" }
                ul.permissions {
                    li { "Manage Marketing Messages for the portfolio's WhatsApp Business Accounts." }
                    li { "Read the read-only ad account Meta mirrors for each eligible WABA, and the performance of marketing templates." }
                    li { "Request the portfolio's acceptance of the Marketing Messages API terms." }
                }
                @if act {
                    form #review-form method="post" action=(action("review")) {
                        (command_fields(session, version))
                        label for="reviewed_by" { "Your Meta user id (recorded as the person who reviewed this)" }
                        input #reviewed_by type="text" name="reviewed_by" inputmode="numeric" required
                            value=[rejected.value("reviewed_by")] aria-describedby=[rejected.at("reviewed_by").map(|_| "reviewed_by-error")];
                        (field_error("reviewed_by-error", rejected.at("reviewed_by")))
                        button #continue type="submit" data-command="review_permissions" { "Continue" }
                    }
                } @else { (not_yours) }
            },
            Phase::EnteringBusinessInfo => {
                (progress(2))
                h2 { "Business information" }
                @if act {
                    form #business-form method="post" action=(action("business-info")) {
                        (command_fields(session, version))
                        label for="portfolio" { "Business portfolio" }
                        input #portfolio type="text" value=(portfolio_id) readonly;
                        label for="business_name" { "Business name" }
                        input #business_name type="text" name="business_name" required
                            value=[rejected.value("business_name")] aria-describedby=[rejected.at("business_name").map(|_| "business_name-error")];
                        (field_error("business_name-error", rejected.at("business_name")))
                        // Checked by the server as the API checks it, not by the browser's own rules for URLs.
                        label for="website" { "Website" }
                        input #website type="text" inputmode="url" name="website" required placeholder="https://"
                            value=[rejected.value("website")] aria-describedby=[rejected.at("website").map(|_| "website-error")];
                        (field_error("website-error", rejected.at("website")))
                        button #next type="submit" data-command="submit_business_info" { "Next" }
                    }
                } @else { (not_yours) }
            },
            Phase::TermsPending => {
                (progress(3))
                @if let Some(info) = &data.business_info {
                    p { "Business information: " strong { (info.business_name.as_str()) } ", " (info.website.as_str()) }
                }
                (waiting("Waiting for a portfolio admin to accept the Marketing Messages API terms in Meta's own flow…"))
                @if let Some(request) = &data.terms_request {
                    p.muted { "Meta was asked " (time(request.at)) @if request.already_invited { " (an invitation was already out)" } "." }
                }
            },
            Phase::Connecting => {
                (progress(3))
                (waiting("The terms are accepted. Meta is connecting the portfolio and creating its mirrored ad accounts…"))
            },
            Phase::Connected | Phase::SyncingConfig | Phase::Live if !done => {
                (progress(3))
                h2 #connected { "Account connected" }
                table.grid #connected-wabas {
                    thead { tr { th { "WABA" } th { "Marketing Messages" } th { "Mirrored ad account" } } }
                    tbody { @for (waba_id, record) in &data.wabas {
                        tr data-waba=(waba_id) {
                            td { (waba_id) }
                            td {
                                @if record.ad_account_id.is_some() {
                                    span.ok { "connected" }
                                    @if !matches!(record.obo_migration, OboMigration::NotNeeded) { " · " (obo_migration(&record.obo_migration)) }
                                } @else {
                                    span.warn { "left out" } (verdict(&record.verdict))
                                }
                            }
                            td { @match &record.ad_account_id { Some(account) => (account.as_str()), None => span.muted { "—" } } }
                        }
                    } }
                }
                a.button #done href={"/portfolios/" (portfolio_id) "/enable?step=done"} { "Done" }
            },
            Phase::Connected | Phase::SyncingConfig | Phase::Live => {
                p.ok #routing-notice { "Marketing traffic will be routed through the Marketing Messages API where possible." }
                (sync_notice(aggregate, now))
            },
            Phase::Offboarded => {
                p.warn #offboarded { "This portfolio's Marketing Messages onboarding was offboarded"
                    @if let Some(record) = &data.offboarded { " " (time(record.at)) ": " (record.reason.as_str()) } "." }
            },
        }
    }
}

fn left_out_wabas(aggregate: &Aggregate) -> Markup {
    let left_out: Vec<_> = aggregate
        .data()
        .wabas
        .iter()
        .filter(|(_, record)| !record.verdict.is_eligible_after_migration())
        .collect();
    html! {
        @if !left_out.is_empty() {
            h3 { "WhatsApp Business Accounts left out" }
            table.grid { tbody { @for (waba_id, record) in left_out {
                tr { td { (waba_id) } td { (verdict(&record.verdict)) } }
            } } }
        }
    }
}

/// The configuration sync: when its window ends (counting down), and that sends in it may fail.
fn sync_notice(aggregate: &Aggregate, now: DateTime<Utc>) -> Markup {
    let sync = aggregate.data().config_sync.as_ref();
    html! {
        @match sync {
            None => { (waiting("The configuration sync starts shortly; it takes up to 15 minutes.")) },
            Some(sync) if sync.completed_at.is_none() => {
                div.notice #sync-notice role="status" {
                    p { "Configuration sync in progress: it ends at " (time(sync.window_ends_at)) ", in "
                        span.countdown #countdown
                            data-ends=(sync.window_ends_at.to_rfc3339_opts(SecondsFormat::Millis, true))
                            data-now=(now.to_rfc3339_opts(SecondsFormat::Millis, true)) {
                            (remaining(sync.window_ends_at - now))
                        } "." }
                    p.warn { "Marketing messages sent before then may fail." }
                }
            },
            Some(sync) => {
                p #sync-complete { "The configuration sync completed"
                    @if let Some(at) = sync.completed_at { " " (time(at)) }
                    ": marketing traffic now goes through the Marketing Messages API where possible." }
            },
        }
    }
}

/// `14:59` for what is left of a window (the script counts it down).
fn remaining(left: chrono::TimeDelta) -> String {
    let seconds = left.num_seconds().max(0);
    format!("{}:{:02}", seconds / 60, seconds % 60)
}

async fn render<C: Clock + Clone>(
    console: &Console<C>,
    session: &Session,
    portfolio_id: &PortfolioId,
    done: bool,
    rejected: &Rejected,
    status: StatusCode,
) -> Result<Response, Failure> {
    let app = &console.app;
    let head = app.store.head_position().await?;
    let aggregate = app.service.load(portfolio_id).await?;
    let now = app.service.clock().now();
    let body = html! {
        (breadcrumb())
        h1 { "WhatsApp · portfolio " (portfolio_id) }
        nav.tabs { span.tab.active { "Overview" } }
        section.card #enable-section data-live-region data-key=(format!("{}-{}", aggregate.version(), done)) {
            h2 { "Enable Marketing Messages (formerly MM Lite)" }
            p.muted { "Now: " (phase_badge(aggregate.phase().as_str())) }
            (step_error(rejected.step()))
            (step(session, portfolio_id, &aggregate, done, now, rejected))
        }
    };
    let live = Live {
        after: head,
        portfolio_id: Some(portfolio_id.as_str().to_owned()),
    };
    Ok((
        status,
        markup::page(
            &format!("WhatsApp · {portfolio_id}"),
            session,
            Section::Enable,
            Some(live),
            body,
        ),
    )
        .into_response())
}

/// `GET /portfolios/{id}/enable[?step=done]`.
pub(crate) async fn page<C: Clock + Clone>(
    State(console): Shared<C>,
    headers: HeaderMap,
    Path(portfolio_id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Failure> {
    let session = match page_session(&console, &headers, Endpoint::PortfolioState).await {
        Ok(session) => session,
        Err(response) => return Ok(response),
    };
    let portfolio_id = parse_portfolio(&portfolio_id)?;
    let done = query.get("step").is_some_and(|step| step == "done");
    render(
        &console,
        &session,
        &portfolio_id,
        done,
        &Rejected::default(),
        StatusCode::OK,
    )
    .await
}

/// `GET` of a step's address (a page refreshed after its form was answered): the flow's page.
pub(crate) async fn back(Path((portfolio_id, _step)): Path<(String, String)>) -> Response {
    match PortfolioId::parse(&portfolio_id) {
        Ok(portfolio_id) => {
            Redirect::to(&format!("/portfolios/{portfolio_id}/enable")).into_response()
        }
        Err(error) => Failure::bad_request(error.to_string()).into_response(),
    }
}

/// The command a step's form stands for, or what is wrong with the form (and which field).
fn command_of(
    step: &str,
    form: &HashMap<String, String>,
) -> Result<OnboardingCommand, (Option<&'static str>, String)> {
    let field = |name: &str| form.get(name).map(|value| value.trim()).unwrap_or_default();
    match step {
        "start" => Ok(OnboardingCommand::StartOnboarding {}),
        "review" => UserId::parse(field("reviewed_by"))
            .map(|reviewed_by| OnboardingCommand::ReviewPermissions { reviewed_by })
            .map_err(|error| (Some("reviewed_by"), error.to_string())),
        "business-info" => {
            let business_name = BusinessName::parse(field("business_name"))
                .map_err(|error| (Some("business_name"), error.to_string()))?;
            let website = WebsiteUrl::parse(field("website"))
                .map_err(|error| (Some("website"), error.to_string()))?;
            Ok(OnboardingCommand::SubmitBusinessInfo {
                business_name,
                website,
            })
        }
        other => Err((None, format!("the enable flow has no step {other:?}"))),
    }
}

/// `POST /portfolios/{id}/enable/{start|review|business-info}`.
pub(crate) async fn act<C: Clock + Clone>(
    State(console): Shared<C>,
    headers: HeaderMap,
    Path((portfolio_id, step_name)): Path<(String, String)>,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, Failure> {
    let session = match checked_form(&console, &headers, &form).await {
        Ok(session) => session,
        Err(response) => return Ok(response),
    };
    let portfolio_id = parse_portfolio(&portfolio_id)?;
    let mut values = form.clone();
    values.remove("csrf");
    let rejected = |field, message| Rejected {
        message: Some(message),
        field,
        values,
    };
    let command = match command_of(&step_name, &form) {
        Ok(command) => command,
        Err((None, message)) => return Err(Failure::not_found(message)),
        Err((field, message)) => {
            return render(
                &console,
                &session,
                &portfolio_id,
                false,
                &rejected(field, message),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
    };
    let version = form.get("version").cloned().unwrap_or_default();
    match issue(&console, &session, &portfolio_id, &command, &version).await? {
        Issued::Accepted => {
            Ok(Redirect::to(&format!("/portfolios/{portfolio_id}/enable")).into_response())
        }
        Issued::Refused(message) => {
            render(
                &console,
                &session,
                &portfolio_id,
                false,
                &rejected(None, message),
                StatusCode::CONFLICT,
            )
            .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect()
    }

    #[test]
    fn each_step_sends_the_command_the_api_takes_and_names_the_field_it_refuses() {
        assert_eq!(
            command_of("start", &form(&[])).ok(),
            Some(OnboardingCommand::StartOnboarding {})
        );
        assert!(matches!(
            command_of("review", &form(&[("reviewed_by", "1060001")])),
            Ok(OnboardingCommand::ReviewPermissions { .. })
        ));
        assert_eq!(
            command_of("review", &form(&[("reviewed_by", "alice")]))
                .err()
                .map(|(field, _)| field),
            Some(Some("reviewed_by"))
        );
        let (field, message) = command_of(
            "business-info",
            &form(&[("business_name", "Acme"), ("website", "not a website")]),
        )
        .expect_err("refused");
        assert_eq!(field, Some("website"));
        assert!(!message.is_empty());
        assert!(matches!(
            command_of(
                "business-info",
                &form(&[
                    ("business_name", "Acme"),
                    ("website", "https://acme.example")
                ])
            ),
            Ok(OnboardingCommand::SubmitBusinessInfo { .. })
        ));
        assert_eq!(
            command_of("other", &form(&[]))
                .err()
                .map(|(field, _)| field),
            Some(None)
        );
    }

    #[test]
    fn what_is_left_of_a_window_is_shown_in_minutes_and_seconds() {
        assert_eq!(remaining(chrono::TimeDelta::seconds(899)), "14:59");
        assert_eq!(remaining(chrono::TimeDelta::seconds(-5)), "0:00");
    }
}
