//! The HTTP service behind `mmonboard serve`: commands, state and history, the read models, the routing
//! question, and the events for other services (a paged catch-up read and a live Server-Sent Events stream
//! that resumes from `Last-Event-ID`, each event in CloudEvents 1.0 JSON). `run` takes the listener, the
//! clock and the shutdown signal, so tests bind port 0 and control time.

mod cloudevents;
mod error;
mod metrics;
mod routes;
mod supervise;
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

pub use error::ServerError;
pub use webhook::{WEBHOOK_ACTOR, WebhookConfig};

/// The largest request body accepted; larger ones get 413 before anything is parsed.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Everything the handlers share.
pub(crate) struct AppState<C> {
    pub service: OnboardingService<Arc<EventLog>, C>,
    pub store: Arc<EventLog>,
    pub read_models: ReadModels,
    pub config: DomainConfig,
    pub metrics: metrics::Metrics,
    pub shutdown: watch::Receiver<bool>,
    /// The projector's supervisor: an error it restarts after makes the server degraded until it works again.
    pub projector_health: supervise::TaskHealth,
    pub webhook: Option<WebhookConfig>,
    /// The process manager's supervisor, likewise.
    pub process_health: supervise::TaskHealth,
    /// Whether this instance's process manager holds the lease (set when one runs).
    pub process_role: std::sync::OnceLock<mmonboard_process::RoleWatch>,
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
}

impl<G> Default for ServeOptions<G> {
    fn default() -> Self {
        Self {
            webhook: None,
            process: None,
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
    let store = Arc::new(EventLog::open(database_url, &LogOptions::default()).await?);
    let read_models = ReadModels::open(database_url).await?;
    let config = DomainConfig::default();
    let (stop, stopped) = watch::channel(false);
    let state = Arc::new(AppState {
        service: OnboardingService::new(Arc::clone(&store), clock.clone(), config.clone()),
        store: Arc::clone(&store),
        read_models: read_models.clone(),
        config,
        metrics: metrics::Metrics::default(),
        shutdown: stopped.clone(),
        projector_health: supervise::TaskHealth::default(),
        webhook: options.webhook,
        process_health: supervise::TaskHealth::default(),
        process_role: std::sync::OnceLock::new(),
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

    let process = match options.process {
        None => None,
        Some(setup) => {
            let manager = ProcessManager::open(
                Arc::clone(&store),
                database_url,
                clock,
                setup.gateway,
                state.config.clone(),
                setup.config,
                setup.options,
            )
            .await?;
            let role = manager.role();
            let _ = state.process_role.set(manager.role());
            let manager = Arc::new(manager);
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

    let address = listener.local_addr()?;
    let database = mmonboard_eventlog::redact_database_url(database_url);
    tracing::info!(%address, %database, "mmonboard listening");
    let router = routes::router(Arc::clone(&state));
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            shutdown.await;
            tracing::info!("shutting down: finishing requests in flight");
            let _ = stop.send(true);
        })
        .await?;
    let _ = projector.await;
    if let Some(process) = process {
        let _ = process.await;
    }
    drop(state);
    if let Ok(store) = Arc::try_unwrap(store) {
        store.close().await;
    }
    read_models.close().await;
    tracing::info!("stopped");
    Ok(())
}
