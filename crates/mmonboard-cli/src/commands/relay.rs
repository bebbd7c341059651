//! `mmonboard relay`: the outbox relay on its own, for deployments that keep it apart from the API. It runs
//! until Ctrl-C or SIGTERM, retrying with backoff whenever NATS or the database fails, and stands by while
//! another relay holds the database's lease.

use std::sync::Arc;

use tokio::sync::watch;

use crate::commands::{Failure, invalid_input, open, shutdown_signal};
use crate::exit;

pub(crate) async fn relay(
    database: &str,
    options: mmonboard_relay::RelayOptions,
    log_format: crate::logging::LogFormat,
) -> Result<u8, Failure> {
    if let Err(message) = options.validate() {
        return invalid_input(&message);
    }
    crate::logging::init(log_format);
    let store = Arc::new(open(database).await?);
    let relay = mmonboard_relay::Relay::open(Arc::clone(&store), database, options)
        .await
        .map_err(|error| Failure::Relay(error.to_string()))?;
    crate::logging::say(
        log_format,
        format_args!(
            "mmonboard relaying {} to the JetStream stream {} on {} (subjects {}.<portfolio_id>.<event_type>)",
            mmonboard_eventlog::redact_database_url(database),
            relay.options().stream,
            relay.options().nats_url,
            relay.options().subject_prefix,
        ),
    );
    let (stop, stopped) = watch::channel(false);
    let signal = tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop.send(true);
    });
    relay.run(stopped).await;
    signal.abort();
    relay.close().await;
    // The relay holds the log too: without it gone, the log could not be closed (and SQLite's WAL folded).
    drop(relay);
    if let Ok(store) = Arc::try_unwrap(store) {
        store.close().await;
    }
    Ok(exit::OK)
}
