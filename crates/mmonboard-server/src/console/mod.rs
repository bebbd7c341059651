//! The web console `serve` answers at `/`: server-rendered HTML (maud) for the customer's enable flow and for
//! operators' and auditors' views of the portfolios, with every asset compiled into the binary. It signs in
//! with the API's tokens (kept in an HttpOnly, SameSite=Strict cookie, `session.rs`), checks each page and
//! each command against the same access matrix as the API, and issues commands through the same
//! `OnboardingService`. Pages that show something that moves carry a live region that a few lines of
//! JavaScript refresh when the console's event stream (`live.rs`) says the log moved past it.

mod enable;
mod live;
mod markup;
mod session;
mod views;

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use mmonboard_app::{Clock, CommandContext, derived_command_id};
use mmonboard_domain::OnboardingCommand;
use mmonboard_domain::ids::PortfolioId;
use mmonboard_eventlog::VerifyReport;

use crate::AppState;
use crate::metrics::{Outcome, Source};
use session::Session;

/// The largest form the console accepts.
const MAX_FORM_BYTES: usize = 16 * 1024;

/// What the console's handlers share: the API's state and the console's own.
pub(crate) struct Console<C> {
    pub app: Arc<AppState<C>>,
    /// Signs the CSRF tokens of this process's sessions (random at start).
    key: [u8; 32],
    /// Whether the session cookie is marked `Secure` (the server serves HTTPS).
    secure_cookie: bool,
    /// The last `verify` of the log, shown on the integrity page until the log moves on.
    last_verify: Mutex<Option<VerifyRun>>,
}

#[derive(Clone)]
pub(crate) struct VerifyRun {
    pub head: u64,
    pub at: DateTime<Utc>,
    pub report: VerifyReport,
}

type Shared<C> = axum::extract::State<Arc<Console<C>>>;

/// The console's routes, mounted beside the API (whose layers do not apply to them: its errors are pages).
pub(crate) fn router<C: Clock + Clone>(
    app: Arc<AppState<C>>,
    secure_cookie: bool,
) -> Result<Router, crate::ServerError> {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|error| {
        std::io::Error::other(format!("no randomness for the console's key: {error}"))
    })?;
    let console = Arc::new(Console {
        app,
        key,
        secure_cookie,
        last_verify: Mutex::new(None),
    });
    Ok(Router::new()
        .route("/", get(views::portfolios::<C>))
        .route(
            "/sign-in",
            get(session::sign_in_page::<C>).post(session::sign_in::<C>),
        )
        .route("/sign-out", post(session::sign_out::<C>))
        .route("/console/console.css", get(stylesheet))
        .route("/console/console.js", get(script))
        .route("/console/live", get(live::stream::<C>))
        .route("/integrity", get(views::integrity::<C>))
        .route("/enable", get(enable::choose::<C>))
        .route("/portfolios/{portfolio_id}", get(views::portfolio::<C>))
        .route(
            "/portfolios/{portfolio_id}/timeline",
            get(views::timeline::<C>),
        )
        .route(
            "/portfolios/{portfolio_id}/offboard",
            post(views::offboard::<C>),
        )
        .route("/portfolios/{portfolio_id}/enable", get(enable::page::<C>))
        .route(
            "/portfolios/{portfolio_id}/enable/{step}",
            get(enable::back).post(enable::act::<C>),
        )
        .layer(DefaultBodyLimit::max(MAX_FORM_BYTES))
        .with_state(console))
}

async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("console.css"),
    )
}

async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("console.js"),
    )
}

/// What a command from the console came to, in the words the page shows.
pub(crate) enum Issued {
    Accepted,
    /// Refused by the domain, by the access matrix, or a repeat of another request: the message to show.
    Refused(String),
}

/// Send `command` as the signed-in person, exactly as the API's command route does: the same matrix check
/// of the command's class, the same service, the actor the token names. The command id is derived from the
/// page the form came from (its stream version), so a form sent twice is applied once.
pub(crate) async fn issue<C: Clock + Clone>(
    console: &Console<C>,
    session: &Session,
    portfolio_id: &PortfolioId,
    command: &OnboardingCommand,
    seen_version: &str,
) -> Result<Issued, crate::error::ApiError> {
    if let Err(error) = crate::auth::authorize_command(&session.principal, command) {
        return Ok(Issued::Refused(error.message));
    }
    let command_id = derived_command_id(
        "console",
        &[
            portfolio_id.as_str(),
            command.type_name(),
            seen_version,
            &session.principal.name,
        ],
    );
    let context = CommandContext::new(session.principal.actor()).with_command_id(command_id);
    let app = &console.app;
    let executed = app.service.execute(portfolio_id, command, &context).await;
    app.metrics.command(Source::Console, Outcome::of(&executed));
    match executed? {
        Ok(outcome) => {
            if outcome.already_applied && !app.service.is_same_request(command, &outcome).await? {
                return Ok(Issued::Refused(format!(
                    "this page had already sent a different {} for portfolio {portfolio_id}; reload the page and try again",
                    command.type_name()
                )));
            }
            Ok(Issued::Accepted)
        }
        Err(refusal) => Ok(Issued::Refused(refusal.rule.to_string())),
    }
}
