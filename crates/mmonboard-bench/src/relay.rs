//! The relay rows, when a NATS server answers: how fast the relay catches a stream up from the whole
//! benchmark log (over 200,000 events), and how long an append takes to reach a JetStream consumer under a
//! steady write rate. Each uses a stream of its own, deleted afterwards; without NATS the rows are left out
//! with a note.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer};
use futures_util::StreamExt;
use mmonboard_eventlog::{
    AppendRequest, EventLog, EventMetadata, EventStore, ExpectedVersion, NewEvent, StreamId,
};
use mmonboard_relay::{Relay, RelayOptions};
use tokio::sync::watch;

use crate::BenchError;
use crate::report::{BenchReport, Row, Target};

fn failed(what: &'static str) -> impl Fn(String) -> BenchError {
    move |error| BenchError::Workload(format!("{what}: {error}"))
}

/// A stream and subjects of this run's own.
fn options(nats_url: &str) -> RelayOptions {
    let id = uuid::Uuid::now_v7().simple().to_string();
    let mut options = RelayOptions::new(nats_url);
    options.stream = format!("BENCH_{id}");
    options.subject_prefix = format!("bench{id}.onboarding");
    options.poll_interval = Duration::from_millis(10);
    options
}

struct Running {
    relay: Arc<Relay>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

async fn start(
    store: &Arc<EventLog>,
    url: &str,
    options: RelayOptions,
) -> Result<Running, BenchError> {
    let relay = Arc::new(
        Relay::open(Arc::clone(store), url, options)
            .await
            .map_err(|error| failed("opening the relay")(error.to_string()))?,
    );
    let (stop, stopped) = watch::channel(false);
    let running = Arc::clone(&relay);
    let task = tokio::spawn(async move { running.run(stopped).await });
    Ok(Running { relay, stop, task })
}

impl Running {
    async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
        self.relay.close().await;
    }
}

/// Both rows, or a note that NATS did not answer.
pub(crate) async fn rows(
    url: &str,
    nats_url: &str,
    lag_events: usize,
    report: &mut BenchReport,
    progress: &mut impl FnMut(&str),
) -> Result<(), BenchError> {
    let client = match async_nats::connect(nats_url).await {
        Ok(client) => client,
        Err(error) => {
            progress(&format!(
                "relay rows left out: no NATS at {nats_url} ({error})"
            ));
            return Ok(());
        }
    };
    let context = jetstream::new(client);
    let store = Arc::new(crate::workloads::open(url).await?);

    progress("relay: catch-up of the whole log into JetStream");
    let head = store.head_position().await?;
    let catch_up = options(nats_url);
    let stream_name = catch_up.stream.clone();
    let started = Instant::now();
    let running = start(&store, url, catch_up).await?;
    let stats = running.relay.stats();
    while stats.last_published_position() < head {
        if started.elapsed() > Duration::from_secs(600) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    let published = stats.last_published_position();
    running.stop().await;
    let _ = context.delete_stream(&stream_name).await;
    if published < head {
        return Err(BenchError::Workload(format!(
            "the relay published {published} of {head} events in 10 minutes"
        )));
    }
    report.push(
        Row::measured(
            "relay_catch_up",
            "relay catch-up into JetStream",
            head as f64 / seconds,
            "events/s",
        )
        .target(Target::AtLeast(50_000.0))
        .note(format!(
            "{head} events in {seconds:.2} s (connect and stream creation included), {} in flight at most",
            RelayOptions::new(nats_url).max_in_flight
        )),
    );

    progress("relay: append -> JetStream consumer lag under a steady write load");
    let lag = consumer_lag(&store, url, &context, nats_url, lag_events, 200.0).await?;
    report.push(
        Row::measured(
            "relay_lag_p99_ms",
            "append -> JetStream consumer lag, p99 (200 commands/s)",
            lag.p99_ms,
            "ms",
        )
        .target(Target::AtMost(25.0))
        .note(format!(
            "p50 {:.1} ms, max {:.1} ms over {} events at {:.0} commands/s",
            lag.p50_ms, lag.max_ms, lag.events, lag.rate
        )),
    );
    if let Ok(store) = Arc::try_unwrap(store) {
        store.close().await;
    }
    Ok(())
}

struct Lag {
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    events: usize,
    rate: f64,
}

async fn consumer_lag(
    store: &Arc<EventLog>,
    url: &str,
    context: &jetstream::Context,
    nats_url: &str,
    events: usize,
    rate: f64,
) -> Result<Lag, BenchError> {
    let mut options = options(nats_url);
    // Only what is appended from now on: a new stream would otherwise first take the whole log again, and
    // the lag measured would be the catch-up's.
    options.from_position = Some(store.head_position().await? + 1);
    let (stream_name, prefix) = (options.stream.clone(), options.subject_prefix.clone());
    let running = start(store, url, options).await?;
    // The relay creates the stream; a consumer of new messages follows it.
    let stream = loop {
        match context.get_stream(&stream_name).await {
            Ok(stream) => break stream,
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    };
    let consumer = stream
        .create_consumer(consumer::pull::Config {
            filter_subject: format!("{prefix}.>"),
            deliver_policy: consumer::DeliverPolicy::New,
            ack_policy: consumer::AckPolicy::None,
            ..Default::default()
        })
        .await
        .map_err(|error| failed("creating the consumer")(error.to_string()))?;
    let mut messages = consumer
        .messages()
        .await
        .map_err(|error| failed("following the stream")(error.to_string()))?;
    let (sent_tx, mut sent_rx) = tokio::sync::mpsc::unbounded_channel::<(String, Instant)>();
    let reader = tokio::spawn(async move {
        let mut sent: HashMap<String, Instant> = HashMap::new();
        let mut lags = Vec::with_capacity(events);
        while lags.len() < events {
            let Ok(Some(Ok(message))) =
                tokio::time::timeout(Duration::from_secs(30), messages.next()).await
            else {
                break;
            };
            let arrived = Instant::now();
            let Some(id) = message
                .headers
                .as_ref()
                .and_then(|headers| headers.get("Nats-Msg-Id"))
                .map(|value| value.as_str().to_owned())
            else {
                continue;
            };
            while let Ok((id, at)) = sent_rx.try_recv() {
                sent.insert(id, at);
            }
            if let Some(at) = sent.remove(&id) {
                lags.push(arrived.duration_since(at).as_secs_f64() * 1000.0);
            }
        }
        lags
    });
    let stream_id = StreamId::parse(format!("portfolio-{}", 9_100_000_000_u64))
        .map_err(|error| failed("a stream id")(error.to_string()))?;
    let mut version = store.stream_version(&stream_id).await?;
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let begun = Instant::now();
    for _ in 0..events {
        ticks.tick().await;
        let command_id = uuid::Uuid::now_v7();
        let event_id = uuid::Uuid::now_v7();
        let at = Instant::now();
        let _ = sent_tx.send((event_id.to_string(), at));
        store
            .append(AppendRequest {
                stream_id: stream_id.clone(),
                expected_version: ExpectedVersion::Exact(version),
                command_id,
                metadata: EventMetadata {
                    command_id,
                    actor: "bench".to_owned(),
                    correlation_id: command_id,
                    causation_id: None,
                },
                recorded_at: chrono::Utc::now(),
                events: vec![NewEvent {
                    event_id,
                    event_type: "sync_window_opened".to_owned(),
                    schema_version: 1,
                    payload: "{}".to_owned(),
                }],
            })
            .await?;
        version += 1;
    }
    let achieved = events as f64 / begun.elapsed().as_secs_f64();
    let mut lags = reader
        .await
        .map_err(|error| failed("the consumer")(error.to_string()))?;
    running.stop().await;
    let _ = context.delete_stream(&stream_name).await;
    if lags.len() < events {
        return Err(BenchError::Workload(format!(
            "the consumer saw {} of {events} events",
            lags.len()
        )));
    }
    lags.sort_by(f64::total_cmp);
    let at = |quantile: f64| lags[((lags.len() - 1) as f64 * quantile).round() as usize];
    Ok(Lag {
        p50_ms: at(0.5),
        p99_ms: at(0.99),
        max_ms: lags[lags.len() - 1],
        events,
        rate: achieved,
    })
}
