//! The operators' and auditors' pages: every portfolio in a table, one portfolio (its WABAs, mirrored ad
//! accounts, templates, a route probe and the state machine with its path), its timeline with the state as of
//! a chosen time, and the log's integrity. Each page is checked against the access-matrix row of the API
//! route that shows the same thing.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use maud::{Markup, html};
use mmonboard_access::Endpoint;
use mmonboard_app::diagram::{phase_path, state_machine_svg};
use mmonboard_app::{Clock, HistoryEntry};
use mmonboard_domain::eligibility::WabaVerdict;
use mmonboard_domain::ids::{PortfolioId, Reason};
use mmonboard_domain::machine::{OboMigration, WabaRecord, WabaRouting};
use mmonboard_domain::{Aggregate, OnboardingCommand, Phase};
use mmonboard_eventlog::{EventStore, check_checkpoints};
use serde::Serialize;

use super::markup::{
    self, Failure, Live, Section, command_fields, optional_time, phase_badge, time,
};
use super::session::{Session, checked_form, page_session};
use super::{Console, Issued, Shared, VerifyRun, issue};

/// A value's serialised name (`"ACCOUNT_RESTRICTION"` → `ACCOUNT_RESTRICTION`), for open enums of Meta's.
pub(crate) fn json_text<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(text)) => text,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

pub(crate) fn parse_portfolio(raw: &str) -> Result<PortfolioId, Failure> {
    PortfolioId::parse(raw).map_err(|error| Failure::bad_request(error.to_string()))
}

/// `GET /`: every portfolio with its phase, blocker, next action and last change; `?phase=` keeps one phase.
pub(crate) async fn portfolios<C: Clock + Clone>(
    State(console): Shared<C>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Failure> {
    let session = match page_session(&console, &headers, Endpoint::Portfolios).await {
        Ok(session) => session,
        Err(response) => return Ok(response),
    };
    let app = &console.app;
    let filter = match query.get("phase").filter(|phase| !phase.is_empty()) {
        None => None,
        Some(text) => Some(
            Phase::ALL
                .into_iter()
                .find(|phase| phase.as_str() == text)
                .ok_or_else(|| Failure::bad_request(format!("unknown phase {text:?} in phase=")))?,
        ),
    };
    // The rows are the read models', so the region's key (and where its live updates start) is how far the
    // read models had got, read before the rows: keyed by the log's head instead, a page rendered while the
    // projector was behind would carry the key of rows it does not show, and the refresh that brings them
    // would find the key unchanged and keep the stale rows.
    let projected = app
        .read_models
        .checkpoint(mmonboard_projections::STATUS_PROJECTION)
        .await?;
    let mut rows = app.read_models.statuses().await?;
    rows.sort_by(|a, b| a.portfolio_id.cmp(&b.portfolio_id));
    let count = |phase: Phase| {
        rows.iter()
            .filter(|row| row.phase == phase.as_str())
            .count()
    };
    let counts: Vec<(Phase, usize)> = Phase::ALL
        .into_iter()
        .map(|phase| (phase, count(phase)))
        .filter(|(_, count)| *count > 0)
        .collect();
    let total = rows.len();
    let shown: Vec<_> = rows
        .iter()
        .filter(|row| filter.is_none_or(|phase| row.phase == phase.as_str()))
        .collect();
    let body = html! {
        h1 { "Portfolios" }
        section #portfolios data-live-region data-key=(projected) {
            nav.filters aria-label="Filter by phase" {
                a href="/" aria-current=[filter.is_none().then_some("page")] { "All (" (total) ")" }
                @for (phase, count) in &counts {
                    a href={"/?phase=" (phase.as_str())} aria-current=[(filter == Some(*phase)).then_some("page")] {
                        (phase.as_str().replace('_', " ")) " (" (count) ")"
                    }
                }
            }
            @if shown.is_empty() {
                p.muted #no-portfolios {
                    @if total == 0 { "No portfolio has an onboarding yet." } @else { "No portfolio is in this phase." }
                    @if session.can_operate() { " " a href="/enable" { "Enable Marketing Messages for a portfolio" } }
                }
            } @else {
                table.grid #portfolio-table {
                    thead { tr { th { "Portfolio" } th { "Phase" } th { "Blocker" } th { "Next action" } th { "Last change" } } }
                    tbody {
                        @for row in &shown {
                            tr data-portfolio=(row.portfolio_id) {
                                td { a href={"/portfolios/" (row.portfolio_id)} { (row.portfolio_id) } }
                                td { (phase_badge(&row.phase)) }
                                td.blocker {
                                    @if row.blocked_by.is_empty() { span.muted { "—" } }
                                    @for blocker in &row.blocked_by { div title=(blocker.code) { (blocker.message) } }
                                }
                                td { (row.next_action) }
                                td { (optional_time(row.updated_at)) }
                            }
                        }
                    }
                }
            }
        }
    };
    let live = Live {
        after: projected,
        portfolio_id: None,
    };
    Ok(markup::page(
        "Portfolios",
        &session,
        Section::Portfolios,
        Some(live),
        body,
    )
    .into_response())
}

/// A WABA's verdict in words.
pub(crate) fn verdict(verdict: &WabaVerdict) -> Markup {
    html! {
        @if verdict.is_eligible() { span.ok { "eligible" } }
        @else {
            ul.reasons { @for reason in &verdict.reasons { li { (reason.to_string()) } } }
        }
    }
}

pub(crate) fn obo_migration(migration: &OboMigration) -> Markup {
    html! {
        @match migration {
            OboMigration::NotNeeded => span.muted { "not needed" },
            OboMigration::Pending => "to be migrated to shared",
            OboMigration::Requested { at } => { "being migrated to shared (requested " (time(*at)) ")" },
            OboMigration::Completed { at } => { "migrated to shared " (time(*at)) },
        }
    }
}

fn routing(routing: &WabaRouting) -> Markup {
    html! {
        @match routing {
            WabaRouting::NotOnboarded => span.muted { "not onboarded" },
            WabaRouting::Onboarded { since } => { span.ok { "onboarded" } " since " (time(*since)) },
            WabaRouting::Suspended { reason, at } => { span.warn { "suspended" } " (" (json_text(reason)) ") " (time(*at)) },
            WabaRouting::Offboarded { reason, at } => { span.warn { "offboarded" } " (" (json_text(reason)) ") " (time(*at)) },
        }
    }
}

fn waba_table(aggregate: &Aggregate, ad_account_status: &HashMap<String, String>) -> Markup {
    let wabas = &aggregate.data().wabas;
    html! {
        @if wabas.is_empty() {
            p.muted { "No eligibility check has been recorded yet." }
        } @else {
            table.grid #waba-table {
                thead { tr { th { "WABA" } th { "Verdict" } th { "OBO migration" } th { "Mirrored ad account" } th { "Routing" } } }
                tbody {
                    @for (waba_id, record) in wabas {
                        (waba_row(waba_id.as_str(), record, ad_account_status))
                    }
                }
            }
        }
    }
}

fn waba_row(
    waba_id: &str,
    record: &WabaRecord,
    ad_account_status: &HashMap<String, String>,
) -> Markup {
    html! {
        tr data-waba=(waba_id) {
            td { (waba_id) }
            td { (verdict(&record.verdict)) }
            td { (obo_migration(&record.obo_migration)) }
            td {
                @match &record.ad_account_id {
                    Some(account) => {
                        (account.as_str())
                        @if let Some(status) = ad_account_status.get(account.as_str()) { " " span.muted { "(" (status) ")" } }
                    },
                    None => span.muted { "—" },
                }
            }
            td { (routing(&record.routing)) }
        }
    }
}

/// The route probe's form and, when asked, `/v1/route`'s answer.
async fn route_probe<C: Clock + Clone>(
    console: &Console<C>,
    portfolio_id: &PortfolioId,
    aggregate: &Aggregate,
    query: &HashMap<String, String>,
) -> Markup {
    let data = aggregate.data();
    let asked = query.contains_key("waba_id");
    let answer = if asked {
        let mut question: HashMap<String, String> = HashMap::new();
        question.insert("portfolio_id".into(), portfolio_id.as_str().to_owned());
        for name in ["waba_id", "policy"] {
            if let Some(value) = query.get(name) {
                question.insert(name.into(), value.clone());
            }
        }
        match query.get("message").map(String::as_str) {
            Some(kind @ ("utility" | "authentication" | "service" | "free_form")) => {
                question.insert("kind".into(), kind.to_owned());
            }
            Some(template) => {
                let template = template.strip_prefix("template:").unwrap_or(template);
                question.insert("template_id".into(), template.to_owned());
            }
            None => {}
        }
        Some(crate::routes::route_answer(&console.app, &question).await)
    } else {
        None
    };
    let selected = |name: &str, value: &str| query.get(name).is_some_and(|chosen| chosen == value);
    html! {
        form.probe #route-probe method="get" action={"/portfolios/" (portfolio_id)} {
            label { "WABA "
                select name="waba_id" {
                    @for waba_id in data.wabas.keys() {
                        option value=(waba_id) selected[selected("waba_id", waba_id.as_str())] { (waba_id) }
                    }
                }
            }
            label { "Message "
                select name="message" {
                    @for (template_id, template) in &data.templates {
                        @let value = format!("template:{template_id}");
                        option value=(value) selected[selected("message", &value)] {
                            "template " (template.name.as_str()) " (" (template_id) ")"
                        }
                    }
                    @for kind in ["utility", "authentication", "service", "free_form"] {
                        option value=(kind) selected[selected("message", kind)] { (kind.replace('_', "-")) " message" }
                    }
                }
            }
            label { "Policy "
                select name="policy" {
                    option value="CLOUD_API_FALLBACK" selected[selected("policy", "CLOUD_API_FALLBACK")] { "fall back to Cloud API" }
                    option value="STRICT" selected[selected("policy", "STRICT")] { "strict" }
                }
            }
            button type="submit" { "Ask the router" }
        }
        @match answer {
            None => {},
            Some(Ok(answer)) => {
                div.answer #route-answer role="status" {
                    @let route = answer["route"].as_str().unwrap_or("none");
                    strong { @match route {
                        "marketing_messages_api" => "Marketing Messages API",
                        "cloud_api" => "Cloud API",
                        _ => "not sent (strict policy)",
                    } }
                    ": " (answer["message"].as_str().unwrap_or_default())
                }
            },
            Some(Err(error)) => { p.error #route-answer role="alert" { (error.message) } },
        }
    }
}

/// A portfolio's history for a page about it: a portfolio with none is a 404, not an empty page.
async fn recorded_history<C: Clock + Clone>(
    console: &Console<C>,
    portfolio_id: &PortfolioId,
) -> Result<Vec<HistoryEntry>, Failure> {
    let history = console.app.service.history(portfolio_id).await?;
    if history.is_empty() {
        return Err(Failure::not_found(format!(
            "portfolio {portfolio_id} has no recorded onboarding"
        )));
    }
    Ok(history)
}

/// `GET /portfolios/{id}`: the portfolio's WABAs, ad accounts, templates, route probe and state machine.
pub(crate) async fn portfolio<C: Clock + Clone>(
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
    let app = &console.app;
    let head = app.store.head_position().await?;
    let history = recorded_history(&console, &portfolio_id).await?;
    let aggregate = app.service.load(&portfolio_id).await?;
    let now = app.service.clock().now();
    // The ad accounts' routing status is the read models': the summary's key carries how far they had got
    // (read before them), so a refresh once the projector caught up replaces a summary rendered before.
    let projected = app
        .read_models
        .checkpoint(mmonboard_projections::STATUS_PROJECTION)
        .await?;
    let ad_accounts: HashMap<String, String> = app
        .read_models
        .ad_accounts(portfolio_id.as_str())
        .await?
        .into_iter()
        .map(|row| (row.ad_account_id, row.status))
        .collect();
    let templates = app.read_models.templates(portfolio_id.as_str()).await?;
    let probe = route_probe(&console, &portfolio_id, &aggregate, &query).await;
    let view = aggregate.view();
    let body = html! {
        h1 { "Portfolio " (portfolio_id) }
        p.links {
            a href={"/portfolios/" (portfolio_id) "/timeline"} { "Timeline" }
            " · "
            a href={"/portfolios/" (portfolio_id) "/enable"} { "Enable flow (customer view)" }
        }
        section #summary data-live-region data-key=(format!("{}-{projected}", view.version)) {
            dl.facts {
                dt { "Phase" } dd #phase { (phase_badge(view.phase.as_str())) " " span.muted { "(" (view.stage.as_str().replace('_', " ")) ")" } }
                dt { "Next action" } dd { (view.next_action) }
                @if let Some(stall) = aggregate.stall() {
                    dt { "Blocked" } dd.warn { "Meta keeps failing " (stall.step.as_str()) " (" (stall.attempts) " attempts): " (stall.error.as_str()) }
                }
                dt { "Events" } dd { (view.version) ", the last " (optional_time(view.last_event_at)) }
            }
            h2 { "WABAs" }
            (waba_table(&aggregate, &ad_accounts))
            h2 { "Templates" }
            @if templates.is_empty() {
                p.muted { "No template has been recorded." }
            } @else {
                table.grid #template-table {
                    thead { tr { th { "Template" } th { "WABA" } th { "Category" } th { "Sync" } th { "Window ends" } th { "Mirror synced" } } }
                    tbody {
                        @for template in &templates {
                            tr data-template=(template.template_id) {
                                td { (template.name) " " span.muted { (template.language) " · " (template.template_id) } }
                                td { (template.waba_id) }
                                td { (template.category) }
                                td { (json_text(&template.status_at(now, &app.config))) }
                                td { (time(template.sync_window_ends_at)) }
                                td { (optional_time(template.mirror_synced_at)) }
                            }
                        }
                    }
                }
            }
            h2 { "State machine" }
            figure.diagram {
                (markup::inline_svg(state_machine_svg(&phase_path(&history))))
                figcaption { "The path this portfolio took, ending in its current phase." }
            }
        }
        h2 { "Route probe" }
        p.muted { "Which API a message of this portfolio would go through now, as " code { "GET /v1/route" } " answers." }
        (probe)
        @if session.can_operate() && view.phase != Phase::Offboarded && view.phase != Phase::NotStarted {
            h2 { "Offboard" }
            form.inline method="post" action={"/portfolios/" (portfolio_id) "/offboard"} {
                (command_fields(&session, view.version))
                label { "Reason " input type="text" name="reason" required maxlength="500"; }
                button.danger type="submit" data-command="offboard" { "Offboard this portfolio" }
            }
        }
    };
    let live = Live {
        after: head,
        portfolio_id: Some(portfolio_id.as_str().to_owned()),
    };
    Ok(markup::page(
        &format!("Portfolio {portfolio_id}"),
        &session,
        Section::Portfolios,
        Some(live),
        body,
    )
    .into_response())
}

/// `POST /portfolios/{id}/offboard`: the operator's `offboard` command.
pub(crate) async fn offboard<C: Clock + Clone>(
    State(console): Shared<C>,
    headers: HeaderMap,
    Path(portfolio_id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, Failure> {
    let session = match checked_form(&console, &headers, &form).await {
        Ok(session) => session,
        Err(response) => return Ok(response),
    };
    let portfolio_id = parse_portfolio(&portfolio_id)?;
    let reason = Reason::parse(form.get("reason").map(String::as_str).unwrap_or_default())
        .map_err(|error| Failure::bad_request(format!("the reason: {error}")))?;
    let version = form.get("version").cloned().unwrap_or_default();
    let command = OnboardingCommand::Offboard { reason };
    match issue(&console, &session, &portfolio_id, &command, &version).await? {
        Issued::Accepted => {
            Ok(Redirect::to(&format!("/portfolios/{portfolio_id}")).into_response())
        }
        Issued::Refused(message) => Ok(refused_page(&session, &portfolio_id, &message)),
    }
}

fn refused_page(session: &Session, portfolio_id: &PortfolioId, message: &str) -> Response {
    let body = html! {
        section.card.narrow {
            h1 { "Not done" }
            p.error #refusal role="alert" { (message) }
            p { a href={"/portfolios/" (portfolio_id)} { "Back to portfolio " (portfolio_id) } }
        }
    };
    (
        StatusCode::CONFLICT,
        markup::page("Not done", session, Section::Portfolios, None, body),
    )
        .into_response()
}

/// A time typed into the as-of field: RFC 3339, or a `datetime-local` value read as UTC.
pub(crate) fn parse_as_of(text: &str) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Ok(time.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"] {
        if let Ok(time) = NaiveDateTime::parse_from_str(text, format) {
            return Ok(time.and_utc());
        }
    }
    Err(format!(
        "{text:?} is not a time: give it as 2026-12-01T10:30:00 (UTC) or in RFC 3339"
    ))
}

fn transition_cell(entry: &HistoryEntry) -> Markup {
    html! {
        @if entry.phase_before == entry.phase_after {
            span.muted { "stays " (entry.phase_after.as_str().replace('_', " ")) }
        } @else {
            (phase_badge(entry.phase_before.as_str())) " → " (phase_badge(entry.phase_after.as_str()))
        }
    }
}

/// `GET /portfolios/{id}/timeline`: every event with its time, actor and transition; `?as_of=` shows the
/// state as it was then.
pub(crate) async fn timeline<C: Clock + Clone>(
    State(console): Shared<C>,
    headers: HeaderMap,
    Path(portfolio_id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Failure> {
    let session = match page_session(&console, &headers, Endpoint::History).await {
        Ok(session) => session,
        Err(response) => return Ok(response),
    };
    let portfolio_id = parse_portfolio(&portfolio_id)?;
    let app = &console.app;
    let head = app.store.head_position().await?;
    let history = recorded_history(&console, &portfolio_id).await?;
    let as_of_text = query.get("as_of").filter(|text| !text.trim().is_empty());
    let as_of = as_of_text.map(|text| parse_as_of(text));
    let as_of_view = match &as_of {
        Some(Ok(as_of)) => {
            let then = app.service.load_as_of(&portfolio_id, *as_of).await?;
            let path_then: Vec<&HistoryEntry> = history
                .iter()
                .filter(|entry| entry.logged.recorded.recorded_at <= *as_of)
                .collect();
            let path = phase_path(&path_then.into_iter().cloned().collect::<Vec<_>>());
            Some((*as_of, then, path))
        }
        _ => None,
    };
    let as_of_input = match &as_of {
        Some(Ok(at)) => at.format("%Y-%m-%dT%H:%M:%S").to_string(),
        _ => as_of_text.cloned().unwrap_or_default(),
    };
    let version = history.len();
    let body = html! {
        h1 { "Timeline of portfolio " a href={"/portfolios/" (portfolio_id)} { (portfolio_id) } }
        form.probe #as-of-form method="get" action={"/portfolios/" (portfolio_id) "/timeline"} {
            label for="as_of" { "The state as of (UTC) " }
            input #as_of type="datetime-local" step="1" name="as_of" value=(as_of_input)
                aria-describedby=[matches!(as_of, Some(Err(_))).then_some("as-of-error")];
            button type="submit" { "Show" }
            @if as_of.is_some() { " " a href={"/portfolios/" (portfolio_id) "/timeline"} { "now" } }
            @if let Some(Err(error)) = &as_of { p #as-of-error .field-error role="alert" { (error) } }
        }
        @if let Some((at, then, path)) = &as_of_view {
            section.card #as-of {
                h2 { "As of " (time(*at)) }
                dl.facts {
                    dt { "Phase" } dd #as-of-phase { (phase_badge(then.phase().as_str())) }
                    dt { "Events folded" } dd #as-of-version { (then.version()) " of " (version) }
                    dt { "Next action then" } dd { (then.phase().next_action()) }
                }
                (waba_table(then, &HashMap::new()))
                figure.diagram { (markup::inline_svg(state_machine_svg(path))) }
            }
        }
        section #timeline data-live-region data-key=(version) {
            table.grid #timeline-table {
                thead { tr { th { "#" } th { "Time" } th { "Actor" } th { "Event" } th { "Transition" } th {} } }
                tbody {
                    @for entry in &history {
                        @let recorded = &entry.logged.recorded;
                        tr data-position=(recorded.global_position) data-event=(recorded.event_type) {
                            td { (recorded.stream_version) }
                            td { (time(recorded.recorded_at)) }
                            td { (recorded.metadata.actor) }
                            td { code { (recorded.event_type) } }
                            td { (transition_cell(entry)) }
                            td { a.as-of-link href={"/portfolios/" (portfolio_id) "/timeline?as_of=" (recorded.recorded_at.to_rfc3339_opts(SecondsFormat::Micros, true).replace('+', "%2B"))} { "state then" } }
                        }
                    }
                }
            }
        }
    };
    let live = Live {
        after: head,
        portfolio_id: Some(portfolio_id.as_str().to_owned()),
    };
    let status = if matches!(as_of, Some(Err(_))) {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        markup::page(
            &format!("Timeline of {portfolio_id}"),
            &session,
            Section::Portfolios,
            Some(live),
            body,
        ),
    )
        .into_response())
}

/// `GET /integrity`: the log's head and `verify`'s result (run again only when the log has moved on).
pub(crate) async fn integrity<C: Clock + Clone>(
    State(console): Shared<C>,
    headers: HeaderMap,
) -> Result<Response, Failure> {
    // Reading the whole log is what the event feed gives; the roles that may read it may see this.
    let session = match page_session(&console, &headers, Endpoint::Events).await {
        Ok(session) => session,
        Err(response) => return Ok(response),
    };
    // Listed before the log is verified, so that every checkpoint listed is at or below the head the
    // verify run saw (one signed in between would otherwise look like events missing at the end). Checked
    // at every look, not cached with the verify run: a checkpoint can be signed while the head stands still
    // (at shutdown, or by `mmonboard checkpoint`).
    let stored = console.app.store.signed_checkpoints().await?;
    let run = verified(&console).await?;
    let report = &run.report;
    let checkpoints = if report.is_intact() && !stored.is_empty() {
        Some(check_checkpoints(&console.app.store, &stored, &[], report.head).await?)
    } else {
        None
    };
    let body = html! {
        h1 { "Log integrity" }
        section.card #integrity {
            dl.facts {
                dt { "Head position" } dd #head-position { (run.head) }
                dt { "Head hash" } dd { @match report.head { Some((_, hash)) => code { (hex::encode(hash)) }, None => span.muted { "the log is empty" } } }
                dt { "Verify" } dd #verify-result {
                    @match &report.first_break {
                        None => { span.ok { "intact" } ": " (report.events_checked) " events in " (report.streams_checked) " streams, the hash chain and the command records agree" },
                        Some(found) => { span.warn { "broken" } " at global position " (found.global_position) ": " (found.reason) },
                    }
                }
                dt { "Verified" } dd { (time(run.at)) " (server time), up to position " (run.head) }
                dt { "Signed checkpoint" } dd #signed-checkpoint {
                    @match (&checkpoints, stored.is_empty()) {
                        (_, true) => span.muted { "none recorded for this log (serve --signing-key, or mmonboard checkpoint, records them)" },
                        (None, false) => span.muted { (stored.len()) " recorded; not checked while the chain is broken" },
                        (Some(found), false) => @match (&found.first_break, &found.newest) {
                            (Some(broken), _) => { span.warn { "broken" } " at global position " (broken.global_position) ": " (broken.reason) },
                            (None, Some(newest)) => {
                                span.ok { "position " (newest.position) } " signed by key " code { (newest.key_id) }
                                @if let Some(at) = newest.recorded_at() { " at " (time(at)) }
                                "; " (found.checked) " checkpoints, each signature and hash checked against the log (check the key with "
                                code { "mmonboard verify --trusted-key" } ")"
                            },
                            (None, None) => span.muted { "none recorded for this log" },
                        },
                    }
                }
            }
            p.muted { "The same check as " code { "mmonboard verify" } ": every event's chain hash from the first, and the command records against the events both ways. It runs again when the log has grown since the last run." }
        }
    };
    Ok(markup::page("Log integrity", &session, Section::Integrity, None, body).into_response())
}

async fn verified<C: Clock + Clone>(console: &Arc<Console<C>>) -> Result<VerifyRun, Failure> {
    let head = console.app.store.head_position().await?;
    let cached = console
        .last_verify
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    if let Some(run) = cached.filter(|run| run.head == head) {
        return Ok(run);
    }
    let report = console.app.store.verify().await?;
    let run = VerifyRun {
        head: report.head.map_or(0, |(position, _)| position),
        at: console.app.service.clock().now(),
        report,
    };
    *console
        .last_verify
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(run.clone());
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_of_takes_rfc3339_and_the_browsers_local_time_as_utc() {
        let expected = DateTime::parse_from_rfc3339("2026-11-25T09:30:00Z")
            .expect("a time")
            .with_timezone(&Utc);
        assert_eq!(parse_as_of("2026-11-25T09:30:00Z"), Ok(expected));
        assert_eq!(parse_as_of("2026-11-25T10:30:00+01:00"), Ok(expected));
        assert_eq!(parse_as_of("2026-11-25T09:30"), Ok(expected));
        assert_eq!(parse_as_of("2026-11-25T09:30:00"), Ok(expected));
        let error = parse_as_of("yesterday").expect_err("not a time");
        assert!(error.contains("\"yesterday\" is not a time"), "{error}");
    }
}
