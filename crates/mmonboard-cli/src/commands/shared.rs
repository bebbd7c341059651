//! What the subcommands share: the infrastructure failure they exit 1 with, opening the log, printing JSON and
//! invalid input, counting nouns, waiting for a shutdown signal and binding a listener.

use mmonboard_app::{AppError, OnboardingService, SystemClock};
use mmonboard_domain::DomainConfig;
use mmonboard_eventlog::{EventLog, LogOptions};

use crate::exit;
use crate::output::invalid_input_json;

/// Failures of the infrastructure: exit 1.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Failure {
    #[error("cannot open the event log at {url}: {source}")]
    Open {
        url: String,
        source: mmonboard_eventlog::StoreError,
    },
    #[error(transparent)]
    App(#[from] AppError),
    #[error(transparent)]
    Store(#[from] mmonboard_eventlog::StoreError),
    #[error(transparent)]
    Export(#[from] mmonboard_eventlog::ExportError),
    #[error("the relay: {0}")]
    Relay(String),
    #[error("cannot write the output: {0}")]
    Output(#[from] serde_json::Error),
    #[cfg(feature = "bench")]
    #[error("benchmark failed: {0}")]
    Bench(String),
    #[error(transparent)]
    Server(#[from] mmonboard_server::ServerError),
    #[error(transparent)]
    Projection(#[from] mmonboard_projections::ProjectionError),
    #[error(transparent)]
    Access(#[from] mmonboard_access::AccessError),
    #[error("Meta: {0}")]
    Meta(String),
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: std::net::SocketAddr,
        source: std::io::Error,
    },
}

pub(crate) async fn open(url: &str) -> Result<EventLog, Failure> {
    EventLog::open(url, &LogOptions::default())
        .await
        .map_err(|source| Failure::Open {
            url: mmonboard_eventlog::redact_database_url(url),
            source,
        })
}

/// For the commands that only read (`state`, `history`, `verify`): nothing is created or written, a missing
/// database is an error naming it, and a read-only copy works.
pub(crate) async fn open_read_only(url: &str) -> Result<EventLog, Failure> {
    EventLog::open_read_only(url, &LogOptions::default())
        .await
        .map_err(|source| Failure::Open {
            url: mmonboard_eventlog::redact_database_url(url),
            source,
        })
}

pub(crate) fn service(store: EventLog) -> OnboardingService<EventLog, SystemClock> {
    OnboardingService::new(store, SystemClock, DomainConfig::default())
}

/// ", head at position N with hash H" for a log or export that has a head, "" for an empty one.
pub(crate) fn head_text(head: Option<(u64, [u8; 32])>) -> String {
    head.map(|(position, hash)| {
        format!(
            ", head at position {position} with hash {}",
            hex::encode(hash)
        )
    })
    .unwrap_or_default()
}

pub(crate) fn print_json(value: &serde_json::Value) -> Result<(), Failure> {
    out!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

pub(crate) fn invalid_input(message: &str) -> Result<u8, Failure> {
    eprintln!("invalid input: {message}");
    print_json(&invalid_input_json(message))?;
    Ok(exit::INVALID_INPUT)
}

/// "1 event", "2 events".
pub(crate) fn counted(count: u64, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

/// The webhook secrets, from the environment only (never flags: those show in process lists).
pub(crate) fn webhook_config_from_env() -> Result<Option<mmonboard_server::WebhookConfig>, String> {
    let read = |name: &str| {
        std::env::var(name)
            .ok()
            .filter(|value| !value.trim().is_empty())
    };
    match (read("META_APP_SECRET"), read("META_WEBHOOK_VERIFY_TOKEN")) {
        (Some(app_secret), Some(verify_token)) => Ok(Some(mmonboard_server::WebhookConfig {
            app_secret,
            verify_token,
        })),
        (None, None) => Ok(None),
        (Some(_), None) => Err("META_APP_SECRET is set but META_WEBHOOK_VERIFY_TOKEN is not: Meta's webhooks need both".into()),
        (None, Some(_)) => Err("META_WEBHOOK_VERIFY_TOKEN is set but META_APP_SECRET is not: Meta's webhooks need both".into()),
    }
}

pub(crate) async fn bind(listen: std::net::SocketAddr) -> Result<tokio::net::TcpListener, Failure> {
    tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| Failure::Listen {
            address: listen,
            source,
        })
}
