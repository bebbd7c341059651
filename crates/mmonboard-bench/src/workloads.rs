//! The four workloads, each through the real code path: the command path of `OnboardingService` (W1, W4), a
//! stream load and fold (W2), and a global-order replay into a projection (W3).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use mmonboard_app::codec::{decode, decode_view, stream_id};
use mmonboard_app::{CommandContext, OnboardingService, ServiceOptions, SystemClock};
use mmonboard_domain::OnboardingEvent;
use mmonboard_domain::snapshot::fingerprint;
use mmonboard_eventlog::{
    EventLog, EventStore, LogOptions, SnapshotStore, StoredSnapshot, StreamId,
};

use crate::BenchError;
use crate::seed::{self, portfolio_id};

type Service = OnboardingService<Arc<EventLog>, SystemClock>;

pub(crate) async fn open(url: &str) -> Result<EventLog, BenchError> {
    Ok(EventLog::open(url, &LogOptions::default()).await?)
}

fn service(store: &Arc<EventLog>) -> Service {
    OnboardingService::new(Arc::clone(store), SystemClock, seed::config())
}

async fn accept(
    service: &Service,
    number: u64,
    command: &mmonboard_domain::OnboardingCommand,
) -> Result<(), BenchError> {
    match service
        .execute(
            &portfolio_id(number)?,
            command,
            &CommandContext::new("bench"),
        )
        .await?
    {
        Ok(_) => Ok(()),
        Err(refusal) => Err(BenchError::Workload(format!(
            "{} was refused: {refusal}",
            command.type_name()
        ))),
    }
}

pub(crate) struct CommandRun {
    pub rate: f64,
    pub commands: u64,
    pub batches: u64,
}

/// `portfolios` onboardings of 8 commands each, shared out among `clients` concurrent tasks.
pub(crate) async fn commands(
    store: &Arc<EventLog>,
    portfolios: usize,
    clients: usize,
    first_number: u64,
) -> Result<CommandRun, BenchError> {
    let service = Arc::new(service(store));
    let next = Arc::new(AtomicU64::new(0));
    let batches_before = store.committed_batches();
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let service = Arc::clone(&service);
            let next = Arc::clone(&next);
            tokio::spawn(async move {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    if index >= portfolios as u64 {
                        return Ok::<(), BenchError>(());
                    }
                    let number = first_number + index;
                    for command in seed::onboarding_commands(number)? {
                        accept(&service, number, &command).await?;
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await
            .map_err(|error| BenchError::Workload(format!("a client task failed: {error}")))??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let commands = service.stats().accepted;
    if commands != portfolios as u64 * 8 {
        return Err(BenchError::Workload(format!(
            "{commands} of {} commands were accepted",
            portfolios * 8
        )));
    }
    Ok(CommandRun {
        rate: commands as f64 / elapsed,
        commands,
        batches: store.committed_batches() - batches_before,
    })
}

pub(crate) struct RehydrateRun {
    pub events: u64,
    /// The rusqlite raw read of the same rows, each run right before a load (median, fastest, slowest).
    pub raw_ms: Option<(f64, f64, f64)>,
    /// The median of the read alone (no decoding or folding), to show where the time goes.
    pub read_ms: f64,
    pub median_ms: f64,
    pub fastest_ms: f64,
    pub slowest_ms: f64,
}

/// Load one long stream (read, decode, fold) several times with a cold service, each load right after a
/// raw read of the same rows when `raw` is given (machine noise then hits both).
pub(crate) async fn rehydrate(
    store: &Arc<EventLog>,
    events: usize,
    raw: Option<&crate::raw::RusqliteRaw>,
) -> Result<RehydrateRun, BenchError> {
    const NUMBER: u64 = LONG_STREAM_NUMBER;
    // 8 onboarding commands and a template change, then sends up to `events` in all.
    let history = seed::history(NUMBER, events.saturating_sub(9))?;
    seed::append_history(store, NUMBER, &history, 1_000).await?;
    let portfolio = portfolio_id(NUMBER)?;
    let stream = stream_id(&portfolio);
    let mut timings = Vec::new();
    let mut raw_timings = Vec::new();
    let mut loaded = 0;
    for _ in 0..7 {
        if let Some(raw) = raw {
            let read = raw.read_stream(stream.as_str()).await?;
            if read.rows != history.len() {
                return Err(BenchError::Workload(format!(
                    "the raw read found {} of {} events",
                    read.rows,
                    history.len()
                )));
            }
            raw_timings.push(read.ms());
        }
        let service = service(store);
        let started = Instant::now();
        let aggregate = service.load(&portfolio).await?;
        timings.push(started.elapsed().as_secs_f64() * 1_000.0);
        loaded = aggregate.version();
    }
    if loaded != history.len() as u64 {
        return Err(BenchError::Workload(format!(
            "loaded {loaded} of {} events",
            history.len()
        )));
    }
    timings.sort_by(f64::total_cmp);
    let raw_ms = (!raw_timings.is_empty()).then(|| crate::median_and_spread(&mut raw_timings));
    let mut reads = Vec::new();
    for _ in 0..7 {
        let started = Instant::now();
        let events = store.read_stream(&stream, 0).await?;
        reads.push(started.elapsed().as_secs_f64() * 1_000.0);
        drop(events);
    }
    reads.sort_by(f64::total_cmp);
    Ok(RehydrateRun {
        events: loaded,
        raw_ms,
        read_ms: reads[reads.len() / 2],
        median_ms: timings[timings.len() / 2],
        fastest_ms: timings[0],
        slowest_ms: timings[timings.len() - 1],
    })
}

pub(crate) struct ReplayRun {
    pub rate: f64,
    pub events: u64,
    pub portfolios: usize,
    pub samples_mib: Vec<f64>,
    pub growth_mib: f64,
}

/// What the replay projects: per portfolio, how far it got; per event type, how many there are.
#[derive(Default)]
struct StatusProjection {
    by_stream: HashMap<StreamId, (&'static str, u64)>,
    by_type: HashMap<&'static str, u64>,
}

impl StatusProjection {
    fn apply(&mut self, stream_id: &StreamId, event: &OnboardingEvent) {
        let status = event.type_name();
        *self.by_type.entry(status).or_default() += 1;
        match self.by_stream.get_mut(stream_id) {
            Some(entry) => *entry = (status, entry.1 + 1),
            None => {
                self.by_stream.insert(stream_id.clone(), (status, 1));
            }
        }
    }
}

/// Anonymous (heap) memory of this process, in MiB: file pages of the memory-mapped database are not counted,
/// they belong to the OS page cache.
fn anonymous_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("RssAnon:"))
                .and_then(|line| {
                    line.split_whitespace()
                        .nth(1)
                        .and_then(|kib| kib.parse::<f64>().ok())
                        .map(|kib| kib / 1024.0)
                })
        })
        .unwrap_or(0.0)
}

/// The whole log in global order through `EventStore::replay` (pages read ahead while the last is folded;
/// on PostgreSQL, `COPY` segments lent in place), every event decoded and folded into a projection.
pub(crate) async fn replay(store: &Arc<EventLog>) -> Result<ReplayRun, BenchError> {
    let head = store.head_position().await?;
    let checkpoints: Vec<u64> = [1, 2, 3, 4]
        .iter()
        .map(|quarter| head * quarter / 4)
        .collect();
    let mut samples_mib = vec![anonymous_mib()];
    let mut projection = StatusProjection::default();
    let started = Instant::now();
    let events = store
        .replay(0, usize::MAX, |view| {
            let event = decode_view(&view).map_err(|error| {
                BenchError::Workload(format!(
                    "event {} does not decode: {error}",
                    view.global_position
                ))
            })?;
            projection.apply(view.stream_id, &event);
            if checkpoints
                .get(samples_mib.len() - 1)
                .is_some_and(|checkpoint| view.global_position >= *checkpoint)
            {
                samples_mib.push(anonymous_mib());
            }
            Ok::<(), BenchError>(())
        })
        .await?;
    let elapsed = started.elapsed().as_secs_f64();
    if events != head {
        return Err(BenchError::Workload(format!(
            "replayed {events} of {head} events"
        )));
    }
    let growth_mib = match (samples_mib.get(1), samples_mib.last()) {
        (Some(quarter), Some(end)) => (end - quarter).max(0.0),
        _ => 0.0,
    };
    Ok(ReplayRun {
        rate: events as f64 / elapsed,
        events,
        portfolios: projection.by_stream.len(),
        samples_mib,
        growth_mib,
    })
}

pub(crate) struct OneStreamRun {
    pub rate: f64,
    pub appended: u64,
    pub conflicts: u64,
}

async fn live_portfolio(service: &Service, number: u64) -> Result<u64, BenchError> {
    for command in seed::onboarding_commands(number)? {
        accept(service, number, &command).await?;
    }
    accept(service, number, &seed::template_change(number)?).await?;
    Ok(service.load(&portfolio_id(number)?).await?.version())
}

async fn hammer(
    services: Vec<Arc<Service>>,
    number: u64,
    writers: usize,
    per_writer: usize,
) -> Result<f64, BenchError> {
    let started = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|writer| {
            let service = Arc::clone(&services[writer % services.len()]);
            tokio::spawn(async move {
                let command = seed::template_use(number)?;
                for _ in 0..per_writer {
                    accept(&service, number, &command).await?;
                }
                Ok::<(), BenchError>(())
            })
        })
        .collect();
    for task in tasks {
        task.await
            .map_err(|error| BenchError::Workload(format!("a writer task failed: {error}")))??;
    }
    Ok((writers * per_writer) as f64 / started.elapsed().as_secs_f64())
}

/// Check that exactly `expected` events landed after `before`, with contiguous versions.
async fn check_none_lost(
    store: &EventLog,
    number: u64,
    before: u64,
    expected: u64,
) -> Result<(), BenchError> {
    let stream: StreamId = stream_id(&portfolio_id(number)?);
    let events = store.read_stream(&stream, 0).await?;
    let contiguous = events
        .iter()
        .enumerate()
        .all(|(index, event)| event.stream_version == index as u64 + 1);
    if events.len() as u64 != before + expected || !contiguous {
        return Err(BenchError::Workload(format!(
            "lost updates: expected {} events with contiguous versions, found {}",
            before + expected,
            events.len()
        )));
    }
    Ok(())
}

/// `writers` tasks of one process append to one portfolio at once.
pub(crate) async fn one_stream(
    store: &Arc<EventLog>,
    writers: usize,
    per_writer: usize,
) -> Result<OneStreamRun, BenchError> {
    const NUMBER: u64 = 6_000_000;
    let service = Arc::new(service(store));
    let before = live_portfolio(&service, NUMBER).await?;
    let conflicts_before = service.stats().conflicts_retried;
    let rate = hammer(vec![Arc::clone(&service)], NUMBER, writers, per_writer).await?;
    let appended = (writers * per_writer) as u64;
    check_none_lost(store, NUMBER, before, appended).await?;
    Ok(OneStreamRun {
        rate,
        appended,
        conflicts: service.stats().conflicts_retried - conflicts_before,
    })
}

/// The same, split over two stores on one file, as two processes would: conflicts are real and retried.
pub(crate) async fn one_stream_two_stores(
    store: &Arc<EventLog>,
    url: &str,
    writers: usize,
    per_writer: usize,
) -> Result<OneStreamRun, BenchError> {
    const NUMBER: u64 = 6_000_001;
    let other = Arc::new(open(url).await?);
    let first = Arc::new(service(store));
    let second = Arc::new(service(&other));
    let before = live_portfolio(&first, NUMBER).await?;
    let rate = hammer(
        vec![Arc::clone(&first), Arc::clone(&second)],
        NUMBER,
        writers,
        per_writer,
    )
    .await?;
    let appended = (writers * per_writer) as u64;
    check_none_lost(store, NUMBER, before, appended).await?;
    let conflicts = first.stats().conflicts_retried + second.stats().conflicts_retried;
    drop(second);
    if let Ok(other) = Arc::try_unwrap(other) {
        other.close().await;
    }
    Ok(OneStreamRun {
        rate,
        appended,
        conflicts,
    })
}

/// The portfolio whose 10,000-event stream W2 loads, and the route questions ask about.
pub(crate) const LONG_STREAM_NUMBER: u64 = 5_000_000;

pub(crate) struct SnapshotLoadRun {
    pub median_ms: f64,
    pub fastest_ms: f64,
    pub slowest_ms: f64,
    /// Events folded after the snapshot on each load.
    pub tail: u64,
}

/// W2 again with a snapshot stored: each of 7 cold services (empty cache) loads the long stream from its
/// snapshot and the events after it. The snapshot is stored `tail` events before the head, as the service
/// would leave it between two multiples of its snapshot interval.
pub(crate) async fn rehydrate_from_snapshot(
    store: &Arc<EventLog>,
    url: &str,
    tail: u64,
) -> Result<SnapshotLoadRun, BenchError> {
    let portfolio = portfolio_id(LONG_STREAM_NUMBER)?;
    let stream = stream_id(&portfolio);
    let recorded = store.read_stream(&stream, 0).await?;
    let upto = recorded.len().saturating_sub(tail as usize).max(1);
    let mut folded = mmonboard_domain::Aggregate::new(portfolio.clone());
    for event in &recorded[..upto] {
        let event = decode(event).map_err(|error| BenchError::Workload(error.to_string()))?;
        folded
            .apply(&event)
            .map_err(|error| BenchError::Workload(error.to_string()))?;
    }
    let snapshots = SnapshotStore::open(url).await?;
    snapshots.clear().await?;
    let state = folded
        .to_snapshot()
        .map_err(|error| BenchError::Workload(error.to_string()))?;
    snapshots
        .save(
            &stream,
            fingerprint(),
            &StoredSnapshot {
                stream_version: folded.version(),
                last_event_id: recorded[upto - 1].event_id,
                state,
            },
        )
        .await?;
    let mut timings = Vec::new();
    for _ in 0..7 {
        // Never stores a snapshot of its own: each load starts from the one stored above.
        let service = service(store)
            .with_options(ServiceOptions {
                snapshot_every: 0,
                ..ServiceOptions::default()
            })
            .with_snapshots(snapshots.clone());
        let started = Instant::now();
        let aggregate = service.current(&portfolio).await?;
        timings.push(started.elapsed().as_secs_f64() * 1_000.0);
        if aggregate.version() != recorded.len() as u64 || service.stats().snapshots_used != 1 {
            return Err(BenchError::Workload(format!(
                "loaded {} of {} events, {} from a snapshot",
                aggregate.version(),
                recorded.len(),
                service.stats().snapshots_used
            )));
        }
    }
    snapshots.clear().await?;
    snapshots.close().await;
    timings.sort_by(f64::total_cmp);
    Ok(SnapshotLoadRun {
        median_ms: timings[timings.len() / 2],
        fastest_ms: timings[0],
        slowest_ms: timings[timings.len() - 1],
        tail: recorded.len() as u64 - upto as u64,
    })
}

pub(crate) struct RouteRun {
    pub questions: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub rate: f64,
}

/// Route questions in process, one after another, about the long stream's portfolio and its marketing
/// template, as the server answers them: the service's current fold (checked against the stream's version)
/// and the routing rule.
pub(crate) async fn route_questions(
    store: &Arc<EventLog>,
    questions: usize,
) -> Result<RouteRun, BenchError> {
    use mmonboard_domain::{MessageKind, ProductPolicy, route};
    let portfolio = portfolio_id(LONG_STREAM_NUMBER)?;
    let waba = seed::waba_id(LONG_STREAM_NUMBER)?;
    let kind = MessageKind::MarketingTemplate {
        template_id: seed::template_id(LONG_STREAM_NUMBER)?,
    };
    let config = seed::config();
    let service = service(store);
    service.current(&portfolio).await?;
    let mut latencies = Vec::with_capacity(questions);
    let started = Instant::now();
    for _ in 0..questions {
        let asked = Instant::now();
        let aggregate = service.current(&portfolio).await?;
        let decision = route(
            &aggregate,
            &waba,
            &kind,
            ProductPolicy::CloudApiFallback,
            chrono::Utc::now(),
            &config,
        );
        std::hint::black_box(decision);
        latencies.push(asked.elapsed().as_secs_f64() * 1_000.0);
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let at = |quantile: f64| latencies[((latencies.len() - 1) as f64 * quantile).round() as usize];
    Ok(RouteRun {
        questions,
        p50_ms: at(0.5),
        p99_ms: at(0.99),
        rate: questions as f64 / elapsed,
    })
}
