//! The server's Prometheus metrics, kept with the `prometheus-client` crate and served at `/metrics` in the
//! OpenMetrics text format: histograms (in seconds) of HTTP requests, Meta calls and appends, the sizes of
//! the log's group commits, commands by source and outcome, and gauges of the log's head, the projection's
//! lag and the live subscribers. Every instance has its own registry, so two servers in one process (the
//! tests) never share a count. `docs/operations.md` lists every metric.
//!
//! Most values are recorded where they happen (a middleware times each request, `MeteredGateway` each Meta
//! call, the log's `AppendObserver` each group commit); the few kept elsewhere as running totals (the head,
//! the lag, the command counters of the process manager's own service) are brought up to date at each
//! scrape, under one lock so that two scrapes never add the same increment twice.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use mmonboard_app::ServiceStats;
use mmonboard_eventlog::{AppendObserver, CommittedBatch};
use mmonboard_meta::{
    BusinessSnapshot, MetaError, MetaErrorKind, MetaGateway, OboIntentOutcome, TemplateSnapshot,
    TermsRequestOutcome, WabaSnapshot,
};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

/// The content type of the OpenMetrics text `prometheus-client` writes (Prometheus asks for it).
pub(crate) const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Who sent a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Source {
    Api,
    /// A person's action in the web console (the same commands as the API's).
    Console,
    Webhook,
    ProcessManager,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::Console => "console",
            Self::Webhook => "webhook",
            Self::ProcessManager => "process_manager",
        }
    }
}

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Outcome {
    /// Decided and its events appended.
    Accepted,
    /// The domain refused it (nothing appended).
    Refused,
    /// Its command id had been applied before (nothing appended).
    AlreadyApplied,
    /// The request was not a valid command (nothing decided).
    Invalid,
    /// The log failed or conflicts never settled.
    Error,
}

impl Outcome {
    /// The outcome of what `OnboardingService::execute` answered.
    pub fn of<R, E>(executed: &Result<Result<mmonboard_app::CommandOutcome, R>, E>) -> Self {
        match executed {
            Ok(Ok(outcome)) if outcome.already_applied => Self::AlreadyApplied,
            Ok(Ok(_)) => Self::Accepted,
            Ok(Err(_)) => Self::Refused,
            Err(_) => Self::Error,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Refused => "refused",
            Self::AlreadyApplied => "already_applied",
            Self::Invalid => "invalid",
            Self::Error => "error",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CommandLabels {
    source: &'static str,
    outcome: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct HttpLabels {
    method: String,
    /// The route template (`/v1/portfolios/{portfolio_id}`), never the path: a label per portfolio would
    /// grow without bound. `unmatched` for a path no route takes.
    route: String,
    status_class: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct MetaLabels {
    operation: &'static str,
    outcome: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ProjectionLabel {
    projection: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// 0.5 ms to about 16 s: an API request.
fn request_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// 5 ms to about 80 s: a call to Meta, timeouts and retries included.
fn meta_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 15))
}

/// 0.1 ms to about 3 s: an append, from its request to its commit.
fn append_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 15))
}

/// What the values kept elsewhere say at a scrape.
pub(crate) struct Snapshot {
    /// Counters of the service behind the API and the webhooks.
    pub service: ServiceStats,
    /// Counters of the process manager's own service, when one runs.
    pub process_manager: Option<ServiceStats>,
    pub head: u64,
    pub projection_lag: u64,
    /// 1 while this instance's process manager holds the lease, 0 on standby; `None` without one.
    pub process_manager_active: Option<u64>,
    /// The outbox relay's counters, when one runs.
    pub relay: Option<RelaySnapshot>,
}

/// What the relay has counted so far (it keeps running totals; a scrape raises the counters to them).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RelaySnapshot {
    pub published: u64,
    pub checkpoints_published: u64,
    pub publish_errors: u64,
    pub last_published_position: u64,
    pub active: bool,
}

/// The relay's series, registered only when this instance runs a relay.
struct RelayMetrics {
    published: Counter,
    checkpoints_published: Counter,
    publish_errors: Counter,
    last_published_position: Gauge,
    lag: Gauge,
    active: Gauge,
}

impl RelayMetrics {
    fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            published: Counter::default(),
            checkpoints_published: Counter::default(),
            publish_errors: Counter::default(),
            last_published_position: Gauge::default(),
            lag: Gauge::default(),
            active: Gauge::default(),
        };
        registry.register(
            "mmonboard_relay_events_published",
            "Events JetStream acknowledged from this relay (duplicates included: they are stored once)",
            metrics.published.clone(),
        );
        registry.register(
            "mmonboard_relay_checkpoints_published",
            "Signed checkpoints of the chain head JetStream acknowledged from this relay",
            metrics.checkpoints_published.clone(),
        );
        registry.register(
            "mmonboard_relay_publish_errors",
            "Failed publishes, NATS connections or stream requests of this relay (each is retried)",
            metrics.publish_errors.clone(),
        );
        registry.register(
            "mmonboard_relay_last_published_position",
            "Global position of the last event known to be in the JetStream stream",
            metrics.last_published_position.clone(),
        );
        registry.register(
            "mmonboard_relay_lag_events",
            "Events in the log not yet acknowledged by JetStream",
            metrics.lag.clone(),
        );
        registry.register(
            "mmonboard_relay_active",
            "1 while this instance holds the relay lease and publishes, 0 while it stands by",
            metrics.active.clone(),
        );
        metrics
    }

    fn update(&self, relay: &RelaySnapshot, head: u64) {
        catch_up(&self.published, relay.published);
        catch_up(&self.checkpoints_published, relay.checkpoints_published);
        catch_up(&self.publish_errors, relay.publish_errors);
        self.last_published_position
            .set(saturating_i64(relay.last_published_position));
        self.lag.set(saturating_i64(
            head.saturating_sub(relay.last_published_position),
        ));
        self.active.set(i64::from(relay.active));
    }
}

pub(crate) struct Metrics {
    registry: Registry,
    commands: Family<CommandLabels, Counter>,
    conflicts_retried: Counter,
    events_appended: Counter,
    http_requests: HistogramFamily<HttpLabels>,
    meta_requests: HistogramFamily<MetaLabels>,
    appends: Histogram,
    append_batches: Histogram,
    append_batch_requests: Histogram,
    head: Gauge,
    projection_lag: Family<ProjectionLabel, Gauge>,
    subscribers: Gauge,
    webhooks: Family<OutcomeLabel, Counter>,
    process_manager_active: Option<Gauge>,
    relay: Option<RelayMetrics>,
    /// Serialises the scrape-time updates (see the module's doc).
    scrape: tokio::sync::Mutex<()>,
    /// The process manager's command counters, set once it is opened.
    pub process_stats: OnceLock<Box<dyn Fn() -> ServiceStats + Send + Sync>>,
}

impl Metrics {
    /// Every metric registered; the process manager's gauge and the relay's series only when they run.
    pub fn new(with_process_manager: bool, with_relay: bool) -> Self {
        let mut registry = Registry::default();
        let commands = Family::<CommandLabels, Counter>::default();
        registry.register(
            "mmonboard_commands",
            "Commands decided, by source (api, console, webhook, process_manager) and outcome (accepted, refused, \
             already_applied, invalid, error)",
            commands.clone(),
        );
        let conflicts_retried = Counter::default();
        registry.register(
            "mmonboard_conflicts_retried",
            "Appends that met a newer stream version and were decided again",
            conflicts_retried.clone(),
        );
        let events_appended = Counter::default();
        registry.register(
            "mmonboard_events_appended",
            "Events appended to the log by this server (API, webhooks and process manager)",
            events_appended.clone(),
        );
        let http_requests = HistogramFamily::<HttpLabels>::new_with_constructor(request_buckets);
        registry.register_with_unit(
            "mmonboard_http_request_duration",
            "HTTP requests, by method, route template and status class, from the first byte read to the \
             answer's head",
            Unit::Seconds,
            http_requests.clone(),
        );
        let meta_requests = HistogramFamily::<MetaLabels>::new_with_constructor(meta_buckets);
        registry.register_with_unit(
            "mmonboard_meta_request_duration",
            "Calls to Meta's Graph API by the process manager, by operation and outcome (ok, or the kind of \
             error)",
            Unit::Seconds,
            meta_requests.clone(),
        );
        let appends = append_buckets();
        registry.register_with_unit(
            "mmonboard_append_duration",
            "Appends to the log, from the request to its answer, the wait for the group commit included",
            Unit::Seconds,
            appends.clone(),
        );
        let append_batches = append_buckets();
        registry.register_with_unit(
            "mmonboard_append_batch_duration",
            "Group commits of the log: one transaction for the appends waiting together",
            Unit::Seconds,
            append_batches.clone(),
        );
        let append_batch_requests = Histogram::new(exponential_buckets(1.0, 2.0, 9));
        registry.register(
            "mmonboard_append_batch_requests",
            "Appends served by one group commit",
            append_batch_requests.clone(),
        );
        let head = Gauge::default();
        registry.register(
            "mmonboard_log_head_position",
            "Global position of the last event",
            head.clone(),
        );
        let projection_lag = Family::<ProjectionLabel, Gauge>::default();
        registry.register(
            "mmonboard_projection_lag_events",
            "Events in the log the read models do not reflect yet",
            projection_lag.clone(),
        );
        let subscribers = Gauge::default();
        registry.register(
            "mmonboard_event_stream_subscribers",
            "Clients following the live event stream",
            subscribers.clone(),
        );
        let webhooks = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "mmonboard_meta_webhooks",
            "Meta webhook deliveries, by outcome (refused: bad signature or body, nothing recorded)",
            webhooks.clone(),
        );
        // Both outcomes show from the start, at 0: an alert on refusals needs the series to exist.
        for outcome in ["accepted", "refused"] {
            let _ = webhooks.get_or_create(&OutcomeLabel { outcome });
        }
        let process_manager_active = with_process_manager.then(|| {
            let gauge = Gauge::default();
            registry.register(
                "mmonboard_process_manager_active",
                "1 while this instance's process manager holds the lease and calls Meta, 0 while it \
                 stands by",
                gauge.clone(),
            );
            gauge
        });
        let relay = with_relay.then(|| RelayMetrics::register(&mut registry));
        registry.register(
            "mmonboard_build",
            "The running build: its version",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        Self {
            registry,
            commands,
            conflicts_retried,
            events_appended,
            http_requests,
            meta_requests,
            appends,
            append_batches,
            append_batch_requests,
            head,
            projection_lag,
            subscribers,
            webhooks,
            process_manager_active,
            relay,
            scrape: tokio::sync::Mutex::new(()),
            process_stats: OnceLock::new(),
        }
    }

    /// One command of `source` ended with `outcome`.
    pub fn command(&self, source: Source, outcome: Outcome) {
        self.commands
            .get_or_create(&CommandLabels {
                source: source.as_str(),
                outcome: outcome.as_str(),
            })
            .inc();
    }

    pub fn webhook(&self, accepted: bool) {
        let outcome = if accepted { "accepted" } else { "refused" };
        self.webhooks.get_or_create(&OutcomeLabel { outcome }).inc();
    }

    /// A live subscriber, counted for as long as the guard lives.
    pub fn subscriber(self: &Arc<Self>) -> SubscriberGuard {
        self.subscribers.inc();
        SubscriberGuard(Arc::clone(self))
    }

    /// What the log reports of each group commit, recorded here.
    pub fn append_observer(self: &Arc<Self>) -> AppendObserver {
        let metrics = Arc::downgrade(self);
        AppendObserver::new(move |batch: &CommittedBatch| {
            let Some(metrics) = metrics.upgrade() else {
                return;
            };
            metrics
                .append_batches
                .observe(batch.transaction.as_secs_f64());
            metrics.append_batch_requests.observe(batch.requests as f64);
            for latency in &batch.append_latencies {
                metrics.appends.observe(latency.as_secs_f64());
            }
            metrics.events_appended.inc_by(batch.events_written as u64);
        })
    }

    fn http_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let status_class = match status {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        self.http_requests
            .get_or_create(&HttpLabels {
                method: method.to_owned(),
                route: route.to_owned(),
                status_class,
            })
            .observe(elapsed.as_secs_f64());
    }

    fn meta_request(&self, operation: &'static str, outcome: &'static str, elapsed: Duration) {
        self.meta_requests
            .get_or_create(&MetaLabels { operation, outcome })
            .observe(elapsed.as_secs_f64());
    }

    /// Brings the scrape-time values up to date and writes every metric as OpenMetrics text.
    pub async fn render(&self, snapshot: &Snapshot) -> String {
        let _one_scrape_at_a_time = self.scrape.lock().await;
        catch_up(&self.conflicts_retried, total_conflicts(snapshot));
        if let Some(stats) = &snapshot.process_manager {
            for (outcome, total) in [
                (Outcome::Accepted, stats.accepted),
                (Outcome::Refused, stats.refused),
                (Outcome::AlreadyApplied, stats.already_applied),
            ] {
                let counter = self.commands.get_or_create(&CommandLabels {
                    source: Source::ProcessManager.as_str(),
                    outcome: outcome.as_str(),
                });
                catch_up(&counter, total);
            }
        }
        self.head.set(saturating_i64(snapshot.head));
        self.projection_lag
            .get_or_create(&ProjectionLabel {
                projection: "read_models",
            })
            .set(saturating_i64(snapshot.projection_lag));
        if let (Some(gauge), Some(active)) = (
            &self.process_manager_active,
            snapshot.process_manager_active,
        ) {
            gauge.set(saturating_i64(active));
        }
        if let (Some(metrics), Some(relay)) = (&self.relay, &snapshot.relay) {
            metrics.update(relay, snapshot.head);
        }
        let mut text = String::new();
        // Writing to a String cannot fail; the encoder's only error is the writer's.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

fn total_conflicts(snapshot: &Snapshot) -> u64 {
    snapshot.service.conflicts_retried
        + snapshot
            .process_manager
            .map_or(0, |stats| stats.conflicts_retried)
}

/// Raises a counter to a running total kept elsewhere (which only grows).
fn catch_up(counter: &Counter<u64, AtomicU64>, total: u64) {
    let current = counter.get();
    if total > current {
        counter.inc_by(total - current);
    }
}

fn saturating_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Counts a live subscriber until dropped.
pub(crate) struct SubscriberGuard(Arc<Metrics>);

impl Drop for SubscriberGuard {
    fn drop(&mut self) {
        self.0.subscribers.dec();
    }
}

/// Times every request by method, route template and status class. Outside the access layer and the load
/// shedding, so refused and shed requests are counted too.
pub(crate) async fn time_requests(
    State(metrics): State<Arc<Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let response = next.run(request).await;
    metrics.http_request(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// A Meta gateway whose every call is timed, by operation and outcome.
pub(crate) struct MeteredGateway<G> {
    inner: Arc<G>,
    metrics: Arc<Metrics>,
}

impl<G> MeteredGateway<G> {
    pub fn new(inner: Arc<G>, metrics: Arc<Metrics>) -> Self {
        Self { inner, metrics }
    }

    async fn timed<T>(
        &self,
        operation: &'static str,
        call: impl Future<Output = Result<T, MetaError>>,
    ) -> Result<T, MetaError> {
        let started = Instant::now();
        let result = call.await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(error) => meta_outcome(error),
        };
        self.metrics
            .meta_request(operation, outcome, started.elapsed());
        result
    }
}

/// The `outcome` label of a failed Meta call: the kind of Graph API error, or how the call failed.
fn meta_outcome(error: &MetaError) -> &'static str {
    match error {
        MetaError::Graph { .. } => match error.kind() {
            Some(MetaErrorKind::NotSyncedYet) => "not_synced_yet",
            Some(MetaErrorKind::NotOnboarded) => "not_onboarded",
            Some(MetaErrorKind::OnlyMarketingTemplates) => "only_marketing_templates",
            Some(MetaErrorKind::InvalidParameter) => "invalid_parameter",
            Some(MetaErrorKind::AlreadyInvited) => "already_invited",
            Some(MetaErrorKind::RateLimited) => "rate_limited",
            Some(MetaErrorKind::InvalidToken) => "invalid_token",
            Some(MetaErrorKind::PermissionDenied) => "permission_denied",
            Some(MetaErrorKind::Transient) => "transient",
            Some(MetaErrorKind::Other) | None => "graph_error",
        },
        MetaError::Timeout { .. } => "timeout",
        MetaError::Transport { .. } => "transport",
        MetaError::UnexpectedAnswer { .. } => "unexpected_answer",
        MetaError::InvalidValue { .. } => "invalid_value",
        MetaError::WriteNotApplied { .. } => "write_not_applied",
    }
}

impl<G: MetaGateway> MetaGateway for MeteredGateway<G> {
    async fn business(
        &self,
        business_id: &mmonboard_domain::ids::PortfolioId,
    ) -> Result<BusinessSnapshot, MetaError> {
        self.timed("business", self.inner.business(business_id))
            .await
    }

    async fn waba(
        &self,
        waba_id: &mmonboard_domain::ids::WabaId,
    ) -> Result<WabaSnapshot, MetaError> {
        self.timed("waba", self.inner.waba(waba_id)).await
    }

    async fn templates(
        &self,
        waba_id: &mmonboard_domain::ids::WabaId,
    ) -> Result<Vec<TemplateSnapshot>, MetaError> {
        self.timed("templates", self.inner.templates(waba_id)).await
    }

    async fn set_obo_mobility_intent(
        &self,
        waba_id: &mmonboard_domain::ids::WabaId,
    ) -> Result<OboIntentOutcome, MetaError> {
        self.timed(
            "set_obo_mobility_intent",
            self.inner.set_obo_mobility_intent(waba_id),
        )
        .await
    }

    async fn request_terms(
        &self,
        business_id: &mmonboard_domain::ids::PortfolioId,
    ) -> Result<TermsRequestOutcome, MetaError> {
        self.timed("request_terms", self.inner.request_terms(business_id))
            .await
    }
}
