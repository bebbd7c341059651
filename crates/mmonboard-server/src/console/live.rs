//! The console's live updates: a Server-Sent Events stream (the browser's `EventSource` sends the session
//! cookie, which the API's bearer-token stream does not take) that says "the log moved to position N" once
//! the read models have caught up with N, so the page it refreshes shows the change. It follows the log from
//! the position the page was rendered at, so nothing recorded in between is missed.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use mmonboard_access::Endpoint;
use mmonboard_app::Clock;
use mmonboard_eventlog::{RecordedEvent, Subscription, SubscriptionOptions};
use mmonboard_projections::STATUS_PROJECTION;

use super::Shared;
use super::markup::Failure;
use super::session::page_session;
use super::views::parse_portfolio;

/// How long a change waits for the read models before it is announced anyway (the page then shows what
/// the read models hold, and the next change refreshes it again).
const READ_MODEL_WAIT: Duration = Duration::from_secs(5);
const READ_MODEL_POLL: Duration = Duration::from_millis(25);

pub(crate) async fn stream<C: Clock + Clone>(
    State(console): Shared<C>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Failure> {
    let session = match page_session(&console, &headers, Endpoint::EventStream).await {
        Ok(session) => session,
        Err(response) => return Ok(response),
    };
    drop(session);
    let position = |text: &str| {
        text.trim().parse::<u64>().map_err(|_| {
            Failure::bad_request(format!("the position {text:?} is not a whole number"))
        })
    };
    let mut after = query
        .get("after")
        .map(|text| position(text))
        .transpose()?
        .unwrap_or(0);
    // A reconnecting EventSource says how far it got: go on from there.
    if let Some(seen) = headers
        .get("last-event-id")
        .and_then(|value| value.to_str().ok())
    {
        after = after.max(position(seen)?);
    }
    let portfolio = query
        .get("portfolio_id")
        .map(|raw| parse_portfolio(raw))
        .transpose()?;
    let app = std::sync::Arc::clone(&console.app);
    let options = SubscriptionOptions {
        page_size: 500,
        poll_interval: Duration::from_millis(500),
    };
    let subscription = Subscription::after(std::sync::Arc::clone(&app.store), after, options);
    let shutdown = app.shutdown.clone();
    let matches = move |recorded: &RecordedEvent| {
        portfolio.as_ref().is_none_or(|portfolio| {
            mmonboard_app::codec::portfolio_of(&recorded.stream_id).as_ref() == Some(portfolio)
        })
    };
    let stream = futures_util::stream::unfold(
        (subscription, shutdown, app),
        move |(mut subscription, mut shutdown, app)| {
            let matches = matches.clone();
            async move {
                loop {
                    if *shutdown.borrow() {
                        return None;
                    }
                    let batch = tokio::select! {
                        batch = subscription.next_batch() => batch,
                        _ = shutdown.changed() => return None,
                    };
                    let batch = match batch {
                        Ok(batch) => batch,
                        Err(error) => {
                            tracing::warn!(%error, "the console's live stream ended");
                            return None;
                        }
                    };
                    let Some(last) = batch.iter().rev().find(|recorded| matches(recorded)) else {
                        continue;
                    };
                    let position = last.global_position;
                    // Wait (bounded) for the projector to reach it: the page reads the read models.
                    let deadline = tokio::time::Instant::now() + READ_MODEL_WAIT;
                    while tokio::time::Instant::now() < deadline {
                        match app.read_models.checkpoint(STATUS_PROJECTION).await {
                            Ok(reached) if reached >= position => break,
                            Ok(_) => tokio::time::sleep(READ_MODEL_POLL).await,
                            Err(error) => {
                                tracing::warn!(%error, "the console could not read the projection's checkpoint");
                                break;
                            }
                        }
                    }
                    let event = SseEvent::default()
                        .id(position.to_string())
                        .event("change")
                        .data(position.to_string());
                    return Some((Ok::<_, Infallible>(event), (subscription, shutdown, app)));
                }
            }
        },
    );
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}
