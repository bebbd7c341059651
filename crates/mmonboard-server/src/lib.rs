//! The HTTP service behind `mmonboard serve`: commands, state and history, the read models, the routing
//! question, and the events for other services (a paged catch-up read and a live Server-Sent Events stream
//! that resumes from `Last-Event-ID`, each event in CloudEvents 1.0 JSON). `run` takes the listener, the
//! clock and the shutdown signal, so tests bind port 0 and control time. Every `/v1` route sits behind the
//! access layer (`auth.rs`): bearer tokens checked against a cached copy of the token store, the role
//! matrix, a per-token rate limit, and a global limit of requests in flight; TLS is optional (rustls).

mod audit;
mod auth;
mod checkpointer;
mod console;
mod error;
mod metrics;
mod openapi;
mod routes;
mod supervise;
mod token_cache;
mod tokens_api;
mod webhook;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use mmonboard_app::{Clock, OnboardingService};
use mmonboard_domain::DomainConfig;
use mmonboard_eventlog::{EventLog, LogOptions};
use mmonboard_meta::{HttpGateway, MetaGateway};
use mmonboard_process::{ProcessConfig, ProcessManager, ProcessOptions};
use mmonboard_projections::{Projector, ProjectorOptions, ReadModels};
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use auth::{AccessOptions, AuthMode, DEFAULT_REFRESH, RateLimit};
pub use checkpointer::CheckpointSetup;
pub use error::ServerError;
pub use openapi::document_json as openapi_document;
pub use token_cache::Principal;
pub use webhook::{WEBHOOK_ACTOR, WebhookConfig};

/// The largest request body accepted; larger ones get 413 before anything is parsed.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Everything the handlers share.
pub(crate) struct AppState<C> {
    pub service: OnboardingService<Arc<EventLog>, C>,
    pub store: Arc<EventLog>,
    pub read_models: ReadModels,
    pub config: DomainConfig,
    pub metrics: Arc<metrics::Metrics>,
    pub shutdown: watch::Receiver<bool>,
    /// The projector's supervisor: an error it restarts after makes the server degraded until it works again.
    pub projector_health: supervise::TaskHealth,
    pub webhook: Option<WebhookConfig>,
    /// The process manager's supervisor, likewise.
    pub process_health: supervise::TaskHealth,
    /// Whether this instance's process manager holds the lease (set when one runs).
    pub process_role: std::sync::OnceLock<mmonboard_process::RoleWatch>,
    /// Tokens, roles and limits; also what `/readyz` reports of them.
    pub access: Arc<auth::AccessControl<C>>,
    /// The checkpoint signer's supervisor, likewise (when `--signing-key` is given).
    pub checkpoint_health: supervise::TaskHealth,
    /// The outbox relay's supervisor, likewise.
    pub relay_health: supervise::TaskHealth,
    /// The relay's counters, for `/metrics` and `/readyz` (set when one runs).
    pub relay: std::sync::OnceLock<Arc<mmonboard_relay::RelayStats>>,
}

/// The process manager to run beside the API: it drives onboardings forward through Meta.
pub struct ProcessSetup<G> {
    pub gateway: Arc<G>,
    pub config: ProcessConfig,
    pub options: ProcessOptions,
}

/// What `serve` runs beyond the API and the projector.
pub struct ServeOptions<G = HttpGateway> {
    /// Meta's webhooks at `/webhooks/meta`; without it that path answers 404.
    pub webhook: Option<WebhookConfig>,
    /// The process manager; without it the onboarding moves only by the commands it is sent.
    pub process: Option<ProcessSetup<G>>,
    /// Credentials, roles and limits.
    pub access: AccessOptions,
    /// Serve HTTPS with this certificate chain and key (PEM files); plain HTTP without.
    pub tls: Option<TlsFiles>,
    /// A second listener serving `/metrics` alone, without credentials (for a scraper on a private network).
    pub metrics_listener: Option<TcpListener>,
    /// Store a portfolio's folded state beside the log every this many events (0: no snapshots).
    pub snapshot_every: u64,
    /// Sign checkpoints of the chain head with this key, this often, and at shutdown.
    pub checkpoints: Option<CheckpointSetup>,
    /// The outbox relay to NATS JetStream (`--nats-url`); without it no stream is fed from this server.
    pub relay: Option<mmonboard_relay::RelayOptions>,
}

/// The PEM files `--tls-cert` and `--tls-key` name.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
}

impl<G> Default for ServeOptions<G> {
    fn default() -> Self {
        Self {
            webhook: None,
            process: None,
            access: AccessOptions::default(),
            tls: None,
            metrics_listener: None,
            snapshot_every: mmonboard_app::DEFAULT_SNAPSHOT_EVERY,
            checkpoints: None,
            relay: None,
        }
    }
}

/// Serve the log at `database_url` on `listener` until `shutdown` completes; then finish the requests in
/// flight, end the event streams, stop the projector and close the log so that nothing acknowledged is lost.
pub async fn run<C: Clock + Clone>(
    listener: TcpListener,
    database_url: String,
    clock: C,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    run_with::<C, HttpGateway>(
        listener,
        database_url,
        clock,
        ServeOptions::default(),
        shutdown,
    )
    .await
}

/// `run` with Meta's webhooks and the process manager, as configured.
pub async fn run_with<C: Clock + Clone, G: MetaGateway>(
    listener: TcpListener,
    database_url: String,
    clock: C,
    options: ServeOptions<G>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let database_url = database_url.as_str();
    // A bad certificate stops the start before anything is opened.
    let tls = match &options.tls {
        None => None,
        Some(files) => Some(
            axum_server::tls_rustls::RustlsConfig::from_pem_file(&files.cert, &files.key)
                .await
                .map_err(|error| {
                    ServerError::Tls(format!(
                        "cannot load the certificate {} and key {}: {error}",
                        files.cert.display(),
                        files.key.display()
                    ))
                })?,
        ),
    };
    let metrics = Arc::new(metrics::Metrics::new(
        options.process.is_some(),
        options.relay.is_some(),
    ));
    let store = Arc::new(
        EventLog::open(
            database_url,
            &LogOptions::observed(metrics.append_observer()),
        )
        .await?,
    );
    let tokens = match options.access.mode {
        AuthMode::InsecureNoAuth => {
            tracing::warn!(
                "RUNNING WITHOUT AUTHENTICATION (--insecure-no-auth): anyone who reaches this port may \
                 read and write every portfolio; never do this on a shared network"
            );
            None
        }
        AuthMode::Tokens => {
            let cache = token_cache::TokenCache::load(
                mmonboard_access::TokenStore::open(database_url).await?,
                clock.clone(),
                options.access.refresh_every,
            )
            .await?;
            if !cache.has_usable_token() {
                cache.store().close().await;
                return Err(ServerError::NoTokens);
            }
            Some(cache)
        }
    };
    let access = Arc::new(auth::AccessControl::new(tokens, options.access.rate_limit));
    let read_models = ReadModels::open(database_url).await?;
    let config = DomainConfig::default();
    let service = OnboardingService::new(Arc::clone(&store), clock.clone(), config.clone())
        .with_options(mmonboard_app::ServiceOptions {
            snapshot_every: options.snapshot_every,
            ..mmonboard_app::ServiceOptions::default()
        });
    let service = if options.snapshot_every > 0 {
        service.with_snapshots(mmonboard_eventlog::SnapshotStore::open(database_url).await?)
    } else {
        service
    };
    let (stop, stopped) = watch::channel(false);
    let state = Arc::new(AppState {
        service,
        store: Arc::clone(&store),
        read_models: read_models.clone(),
        config,
        metrics: Arc::clone(&metrics),
        shutdown: stopped.clone(),
        projector_health: supervise::TaskHealth::default(),
        webhook: options.webhook,
        process_health: supervise::TaskHealth::default(),
        process_role: std::sync::OnceLock::new(),
        access: Arc::clone(&access),
        checkpoint_health: supervise::TaskHealth::default(),
        relay_health: supervise::TaskHealth::default(),
        relay: std::sync::OnceLock::new(),
    });

    let projector = Arc::new(tokio::sync::Mutex::new(Projector::new(
        Arc::clone(&store),
        read_models.clone(),
        ProjectorOptions::default(),
    )));
    let projector_state = Arc::clone(&state);
    let projector_stop = stopped.clone();
    let projector = tokio::spawn(async move {
        let progressed = Arc::new(AtomicBool::new(false));
        supervise::supervise(
            "projector",
            &projector_state.projector_health,
            projector_stop.clone(),
            || progressed.load(Ordering::SeqCst),
            || {
                let (projector, progressed) = (Arc::clone(&projector), Arc::clone(&progressed));
                let mut stop = projector_stop.clone();
                progressed.store(false, Ordering::SeqCst);
                async move {
                    projector
                        .lock()
                        .await
                        .run_observed(
                            async move {
                                let _ = stop.wait_for(|stopped| *stopped).await;
                            },
                            |_| progressed.store(true, Ordering::SeqCst),
                        )
                        .await
                }
            },
        )
        .await;
    });

    let signer = match options.checkpoints {
        None => None,
        Some(setup) => {
            let checkpoints = mmonboard_eventlog::SignedCheckpoints::open(database_url).await?;
            let (signer_store, signer_state, signer_stop) =
                (Arc::clone(&store), Arc::clone(&state), stopped.clone());
            let (signer_checkpoints, signer_setup, signer_clock) =
                (checkpoints.clone(), setup.clone(), clock.clone());
            let task = tokio::spawn(async move {
                let worked = AtomicBool::new(false);
                supervise::supervise(
                    "checkpoint signer",
                    &signer_state.checkpoint_health,
                    signer_stop.clone(),
                    || worked.load(Ordering::SeqCst),
                    || {
                        worked.store(false, Ordering::SeqCst);
                        checkpointer::run(
                            &signer_store,
                            &signer_checkpoints,
                            &signer_setup,
                            &signer_clock,
                            signer_stop.clone(),
                            &worked,
                        )
                    },
                )
                .await;
            });
            Some((task, checkpoints, setup))
        }
    };

    let process = match options.process {
        None => None,
        Some(setup) => {
            let manager = ProcessManager::open(
                Arc::clone(&store),
                database_url,
                clock.clone(),
                Arc::new(metrics::MeteredGateway::new(
                    setup.gateway,
                    Arc::clone(&metrics),
                )),
                state.config.clone(),
                setup.config,
                setup.options,
            )
            .await?;
            let role = manager.role();
            let _ = state.process_role.set(manager.role());
            let manager = Arc::new(manager);
            let counted = Arc::clone(&manager);
            let _ = metrics
                .process_stats
                .set(Box::new(move || counted.command_stats()));
            let process_stop = stopped.clone();
            let process_state = Arc::clone(&state);
            Some(tokio::spawn(async move {
                supervise::supervise(
                    "process manager",
                    &process_state.process_health,
                    process_stop.clone(),
                    // Back on the lease, as holder or standby: its storage answers again.
                    || {
                        matches!(
                            role.get(),
                            mmonboard_process::ProcessRole::Active
                                | mmonboard_process::ProcessRole::Standby
                        )
                    },
                    || {
                        let manager = Arc::clone(&manager);
                        let mut stop = process_stop.clone();
                        async move {
                            manager
                                .run(async move {
                                    let _ = stop.wait_for(|stopped| *stopped).await;
                                })
                                .await
                        }
                    },
                )
                .await;
                manager.timers().close().await;
            }))
        }
    };

    let relay = match options.relay {
        None => None,
        Some(relay_options) => {
            let relay = Arc::new(
                mmonboard_relay::Relay::open(Arc::clone(&store), database_url, relay_options)
                    .await?,
            );
            let _ = state.relay.set(relay.stats());
            let relay_state = Arc::clone(&state);
            let relay_stop = stopped.clone();
            Some(tokio::spawn(async move {
                let stats = relay.stats();
                supervise::supervise(
                    "relay",
                    &relay_state.relay_health,
                    relay_stop.clone(),
                    // Connected with the stream read (or standing by): NATS answers again.
                    || stats.working(),
                    || {
                        let relay = Arc::clone(&relay);
                        let mut stop = relay_stop.clone();
                        async move {
                            // A lost lease ends an attempt well: stand by again until shutdown.
                            loop {
                                relay.run_once(&mut stop).await?;
                                if *stop.borrow() {
                                    return Ok::<(), mmonboard_relay::RelayError>(());
                                }
                            }
                        }
                    },
                )
                .await;
                relay.close().await;
            }))
        }
    };

    let address = listener.local_addr()?;
    tracing::info!(
        %address,
        database = mmonboard_eventlog::redact_database_url(database_url),
        tls = tls.is_some(),
        "mmonboard listening"
    );
    let metrics_server = options.metrics_listener.map(|metrics_listener| {
        let router = routes::metrics_router(Arc::clone(&state));
        let mut metrics_stop = stopped.clone();
        tokio::spawn(async move {
            let served = axum::serve(metrics_listener, router)
                .with_graceful_shutdown(async move {
                    while metrics_stop.changed().await.is_ok() && !*metrics_stop.borrow() {}
                })
                .await;
            if let Err(error) = served {
                tracing::error!(%error, "the metrics listener stopped");
            }
        })
    });
    // The web console at `/` beside the API, outside the API's JSON error mapping (its errors are pages).
    let router = layers(
        routes::router(Arc::clone(&state))
            .merge(console::router(Arc::clone(&state), tls.is_some())?),
        &access,
        options.access.max_in_flight,
        &metrics,
    );
    let shutdown = async move {
        shutdown.await;
        tracing::info!("shutting down: finishing requests in flight");
        let _ = stop.send(true);
    };
    match tls {
        None => {
            axum::serve(listener, router)
                .with_graceful_shutdown(shutdown)
                .await?
        }
        Some(tls) => {
            let handle = axum_server::Handle::new();
            let stopping = handle.clone();
            tokio::spawn(async move {
                shutdown.await;
                stopping.graceful_shutdown(None);
            });
            axum_server::from_tcp_rustls(listener.into_std()?, tls)?
                .handle(handle)
                .serve(router.into_make_service())
                .await?
        }
    }
    if let Some(metrics_server) = metrics_server {
        let _ = metrics_server.await;
    }
    if let Some(cache) = &access.tokens {
        if let Err(error) = cache.flush_uses().await {
            tracing::warn!(%error, "the tokens' last-use times were not written");
        }
        cache.store().close().await;
    }
    let _ = projector.await;
    if let Some(process) = process {
        let _ = process.await;
    }
    if let Some(relay) = relay {
        let _ = relay.await;
    }
    if let Some((task, checkpoints, setup)) = signer {
        let _ = task.await;
        // Everything acknowledged is in the log now: sign its head once more.
        if let Err(error) = checkpointer::sign(&store, &checkpoints, &setup.key, &clock).await {
            tracing::error!(%error, "the checkpoint at shutdown was not signed");
        }
        checkpoints.close().await;
    }
    // Before the log: its last act folds the WAL into the file, which an open connection would hold up.
    if let Some(snapshots) = state.service.snapshots() {
        snapshots.close().await;
    }
    drop(state);
    if let Ok(store) = Arc::try_unwrap(store) {
        store.close().await;
    }
    read_models.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// The layers around the routes, innermost first: the access layer (credentials, matrix, per-token rate
/// limit), the global limit of requests in flight (shed at once with 503, never queued), the request metrics,
/// the request log (one line at info level per answer), which records the method and the path but never the
/// query (`hub.verify_token`) or a header, and the request id outermost, so that every log line has it.
fn layers<C: Clock + Clone>(
    router: axum::Router,
    access: &Arc<auth::AccessControl<C>>,
    max_in_flight: usize,
    metrics: &Arc<metrics::Metrics>,
) -> axum::Router {
    use axum::http::StatusCode;
    router
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(access),
            auth::authenticate::<C>,
        ))
        .layer(
            tower::ServiceBuilder::new()
                .layer(axum::error_handling::HandleErrorLayer::new(
                    |_: tower::BoxError| async {
                        auth::retry_later(
                            StatusCode::SERVICE_UNAVAILABLE,
                            "overloaded",
                            "the server has as many requests in flight as it takes; try again"
                                .into(),
                            std::time::Duration::from_secs(1),
                        )
                    },
                ))
                .layer(tower::load_shed::LoadShedLayer::new())
                .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
                    max_in_flight.max(1),
                )),
        )
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(metrics),
            metrics::time_requests,
        ))
        .layer(tower_http::request_id::PropagateRequestIdLayer::x_request_id())
        .layer(
            tower_http::trace::TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_response(
                    tower_http::trace::DefaultOnResponse::new().level(tracing::Level::INFO),
                ),
        )
        .layer(tower_http::request_id::SetRequestIdLayer::x_request_id(
            tower_http::request_id::MakeRequestUuid,
        ))
}

/// The span every log line of a request carries: its method, path and route template, its request id (the
/// caller's `X-Request-Id`, else a new UUID, returned either way), and the portfolio and command once the
/// handler knows them (recorded by the routes).
fn request_span(request: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("unmatched", axum::extract::MatchedPath::as_str);
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        route,
        request_id,
        portfolio_id = tracing::field::Empty,
        command_id = tracing::field::Empty,
    )
}
