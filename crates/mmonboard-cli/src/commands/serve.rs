//! `mmonboard serve`: the HTTP API on this database, with the process manager, webhooks, signed checkpoints
//! and the relay as configured.

use mmonboard_app::SystemClock;

use super::{Failure, bind, invalid_input, open, shutdown_signal, webhook_config_from_env};
use crate::exit;

/// `serve` with its flags: the signing key, relay, access limits and TLS files are read from them, then served.
pub(super) async fn run(
    database: &str,
    log_format: crate::logging::LogFormat,
    args: crate::ServeArgs,
) -> Result<u8, Failure> {
    let crate::ServeArgs {
        listen,
        meta_base_url,
        meta_api_version,
        insecure_no_auth,
        tls_cert,
        tls_key,
        metrics_listen,
        max_in_flight,
        rate_limit_per_second,
        rate_limit_burst,
        snapshot_every,
        signing_key,
        checkpoint_every_events,
        checkpoint_every_seconds,
        nats_url,
        nats_stream,
        nats_subject_prefix,
        #[cfg(feature = "otel")]
        otlp_endpoint,
    } = args;
    let checkpoints = match signing_key {
        None => None,
        Some(path) => match mmonboard_eventlog::CheckpointKey::read(&path) {
            Ok(key) => Some(mmonboard_server::CheckpointSetup {
                key,
                every_events: checkpoint_every_events,
                every: std::time::Duration::from_secs(checkpoint_every_seconds),
            }),
            Err(error) => {
                return invalid_input(&error.to_string());
            }
        },
    };
    let relay = nats_url.map(|nats_url| {
        let mut options = mmonboard_relay::RelayOptions::new(nats_url);
        options.stream = nats_stream;
        options.subject_prefix = nats_subject_prefix;
        options
    });
    let access = mmonboard_server::AccessOptions {
        mode: if insecure_no_auth {
            mmonboard_server::AuthMode::InsecureNoAuth
        } else {
            mmonboard_server::AuthMode::Tokens
        },
        max_in_flight: usize::try_from(max_in_flight).unwrap_or(usize::MAX),
        rate_limit: mmonboard_server::RateLimit::per_second(
            std::num::NonZeroU32::new(rate_limit_per_second).unwrap_or(std::num::NonZeroU32::MIN),
            std::num::NonZeroU32::new(rate_limit_burst).unwrap_or(std::num::NonZeroU32::MIN),
        ),
        ..mmonboard_server::AccessOptions::default()
    };
    let tls = match (tls_cert, tls_key) {
        (Some(cert), Some(key)) => Some(mmonboard_server::TlsFiles { cert, key }),
        _ => None,
    };
    serve(
        database,
        listen,
        meta_base_url.as_deref(),
        &meta_api_version,
        ServeAccess {
            access,
            tls,
            metrics_listen,
            snapshot_every,
            log_format,
            checkpoints,
            relay,
            #[cfg(feature = "otel")]
            otlp_endpoint,
        },
    )
    .await
}

/// What `serve` is told about credentials, TLS and the metrics listener.
struct ServeAccess {
    access: mmonboard_server::AccessOptions,
    tls: Option<mmonboard_server::TlsFiles>,
    metrics_listen: Option<std::net::SocketAddr>,
    snapshot_every: u64,
    log_format: crate::logging::LogFormat,
    checkpoints: Option<mmonboard_server::CheckpointSetup>,
    relay: Option<mmonboard_relay::RelayOptions>,
    /// The OTLP collector traces go to (feature `otel`).
    #[cfg(feature = "otel")]
    otlp_endpoint: Option<String>,
}

async fn serve(
    database: &str,
    listen: std::net::SocketAddr,
    meta_base_url: Option<&str>,
    meta_api_version: &str,
    serve_access: ServeAccess,
) -> Result<u8, Failure> {
    let webhook = match webhook_config_from_env() {
        Ok(webhook) => webhook,
        Err(message) => return invalid_input(&message),
    };
    if let Some(Err(message)) = serve_access.relay.as_ref().map(|relay| relay.validate()) {
        return invalid_input(&message);
    }
    let process = match meta_base_url {
        None => None,
        Some(base_url) => {
            let config = match mmonboard_meta::GatewayConfig::from_env(base_url, meta_api_version) {
                Ok(config) => config,
                Err(error) => return invalid_input(&error.to_string()),
            };
            let gateway = mmonboard_meta::HttpGateway::new(config)
                .map_err(|error| Failure::Meta(error.to_string()))?;
            Some(mmonboard_server::ProcessSetup {
                gateway: std::sync::Arc::new(gateway),
                config: mmonboard_process::ProcessConfig::default(),
                options: mmonboard_process::ProcessOptions::default(),
            })
        }
    };
    // Held until `serve` returns: dropping it exports the last spans.
    #[cfg(feature = "otel")]
    let _traces = match crate::logging::init_with_traces(
        serve_access.log_format,
        serve_access.otlp_endpoint.as_deref(),
    ) {
        Ok(traces) => traces,
        Err(message) => return invalid_input(&message),
    };
    #[cfg(not(feature = "otel"))]
    crate::logging::init(serve_access.log_format);
    // The log must open for writing (migrated, writable), and someone must be able to sign in, before
    // anything says it is served.
    open(database).await?.close().await;
    if matches!(serve_access.access.mode, mmonboard_server::AuthMode::Tokens) {
        let tokens = mmonboard_access::TokenStore::open(database).await?;
        let usable = tokens.has_usable_token(chrono::Utc::now()).await;
        tokens.close().await;
        if !usable? {
            return Err(mmonboard_server::ServerError::NoTokens.into());
        }
    }
    let listener = bind(listen).await?;
    let metrics_listener = match serve_access.metrics_listen {
        Some(address) => Some(bind(address).await?),
        None => None,
    };
    let scheme = if serve_access.tls.is_some() {
        "https"
    } else {
        "http"
    };
    if let Ok(address) = listener.local_addr() {
        crate::logging::say(
            serve_access.log_format,
            format_args!(
                "mmonboard serving {scheme}://{address} on {}",
                mmonboard_eventlog::redact_database_url(database)
            ),
        );
    }
    if let Some(address) = metrics_listener
        .as_ref()
        .and_then(|listener| listener.local_addr().ok())
    {
        crate::logging::say(
            serve_access.log_format,
            format_args!("  /metrics without credentials on http://{address}"),
        );
    }
    if matches!(
        serve_access.access.mode,
        mmonboard_server::AuthMode::InsecureNoAuth
    ) {
        crate::logging::say(
            serve_access.log_format,
            format_args!(
                "  WARNING: --insecure-no-auth: no credentials are checked; anyone reaching the port may read and write"
            ),
        );
    }
    let meta = if process.is_some() {
        "driving onboardings through Meta"
    } else {
        "without a process manager (no --meta-base-url)"
    };
    let hooks = if webhook.is_some() {
        "Meta webhooks at /webhooks/meta"
    } else {
        "no webhooks (META_APP_SECRET unset)"
    };
    crate::logging::say(serve_access.log_format, format_args!("  {meta}; {hooks}"));
    if let Some(relay) = &serve_access.relay {
        crate::logging::say(
            serve_access.log_format,
            format_args!(
                "  relaying every event to the JetStream stream {} on {}",
                relay.stream, relay.nats_url
            ),
        );
    }
    mmonboard_server::run_with(
        listener,
        database.to_owned(),
        SystemClock,
        mmonboard_server::ServeOptions {
            webhook,
            process,
            access: serve_access.access,
            tls: serve_access.tls,
            metrics_listener,
            snapshot_every: serve_access.snapshot_every,
            checkpoints: serve_access.checkpoints,
            relay: serve_access.relay,
        },
        shutdown_signal(),
    )
    .await?;
    Ok(exit::OK)
}
