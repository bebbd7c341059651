//! The read side's figures: rebuilding the read models from the whole log, and how long an appended event
//! takes to reach a client of the live SSE stream under a steady write load, through a real server.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use mmonboard_app::SystemClock;
use mmonboard_eventlog::EventLog;
use mmonboard_projections::{Projector, ProjectorOptions, ReadModels};

use crate::BenchError;

pub(crate) fn failed(what: &str) -> impl Fn(std::io::Error) -> BenchError + '_ {
    move |error| BenchError::Workload(format!("{what}: {error}"))
}

pub(crate) struct RebuildRun {
    pub rate: f64,
    pub events: u64,
}

/// Empty the read models and project the whole log again.
pub(crate) async fn rebuild(store: &Arc<EventLog>, url: &str) -> Result<RebuildRun, BenchError> {
    let read_models = ReadModels::open(url)
        .await
        .map_err(|error| BenchError::Workload(error.to_string()))?;
    let options = ProjectorOptions {
        page_size: 2_000,
        ..ProjectorOptions::default()
    };
    let mut projector = Projector::new(Arc::clone(store), read_models.clone(), options);
    let started = Instant::now();
    let events = projector
        .rebuild(|_, _| {})
        .await
        .map_err(|error| BenchError::Workload(error.to_string()))?;
    let rate = events as f64 / started.elapsed().as_secs_f64();
    read_models.close().await;
    Ok(RebuildRun { rate, events })
}

pub(crate) struct LagRun {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub events: usize,
    pub rate: f64,
}

/// POSTs one command; its status code.
async fn post(
    client: &reqwest::Client,
    address: &str,
    token: &str,
    path: &str,
    body: &'static str,
) -> Result<u16, BenchError> {
    let response = client
        .post(format!("http://{address}{path}"))
        .bearer_auth(token)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .map_err(|error| BenchError::Workload(format!("sending a command: {error}")))?;
    Ok(response.status().as_u16())
}

/// A real server on port 0 over a bench log, with one admin token unlimited in rate (the rate is the bench's).
pub(crate) struct Served {
    pub address: String,
    pub token: String,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<Result<(), mmonboard_server::ServerError>>,
}

impl Served {
    pub(crate) async fn start(url: &str) -> Result<Self, BenchError> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(failed("binding a port"))?;
        let address = listener
            .local_addr()
            .map_err(failed("reading the port"))?
            .to_string();
        let token = {
            EventLog::open(url, &mmonboard_eventlog::LogOptions::default())
                .await?
                .close()
                .await;
            let store = mmonboard_access::TokenStore::open(url).await?;
            let suffix = uuid::Uuid::now_v7().simple().to_string();
            let name = mmonboard_access::TokenName::parse(&format!("bench-{}", &suffix[20..]))?;
            let created = store
                .create(
                    &name,
                    mmonboard_access::Role::Admin,
                    chrono::Utc::now(),
                    None,
                )
                .await;
            store.close().await;
            created?.secret.expose().to_owned()
        };
        let options = mmonboard_server::ServeOptions::<mmonboard_meta::HttpGateway> {
            access: mmonboard_server::AccessOptions {
                rate_limit: mmonboard_server::RateLimit::per_second(
                    std::num::NonZeroU32::MAX,
                    std::num::NonZeroU32::MAX,
                ),
                ..mmonboard_server::AccessOptions::default()
            },
            ..Default::default()
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(mmonboard_server::run_with(
            listener,
            url.to_owned(),
            SystemClock,
            options,
            async move {
                let _ = stopped.await;
            },
        ));
        Ok(Self {
            address,
            token,
            stop,
            server,
        })
    }

    /// Stop the server and wait until it has closed the log.
    pub(crate) async fn stop(self) -> Result<(), BenchError> {
        let _ = self.stop.send(());
        self.server
            .await
            .map_err(|error| BenchError::Workload(format!("the server task failed: {error}")))?
            .map_err(|error| BenchError::Workload(format!("the server failed: {error}")))
    }
}

/// Start a server on port 0 over the log at `url`, follow its SSE stream from the head, and post `events`
/// commands at `rate` per second; the lag of each is from just before its POST to its arrival on the stream.
pub(crate) async fn stream_lag(url: &str, events: usize, rate: f64) -> Result<LagRun, BenchError> {
    let served = Served::start(url).await?;
    let (address, token) = (served.address.clone(), served.token.clone());

    // Follow the live stream from the current head.
    let head = {
        use mmonboard_eventlog::EventStore;
        let store = EventLog::open(url, &mmonboard_eventlog::LogOptions::default()).await?;
        let head = store.head_position().await?;
        store.close().await;
        head
    };
    // eventsource-stream parses each chunk as it comes off the connection and yields an event as soon as its
    // blank line has arrived: it holds nothing back, so the lag measured is the server's.
    let client = reqwest::Client::new();
    let response = client
        .get(format!("http://{address}/v1/events/stream"))
        .bearer_auth(&token)
        .header(reqwest::header::ACCEPT, "text/event-stream")
        .header("Last-Event-ID", head.to_string())
        .send()
        .await
        .map_err(|error| BenchError::Workload(format!("opening the stream: {error}")))?;
    if !response.status().is_success() {
        return Err(BenchError::Workload(format!(
            "the stream answered {}",
            response.status()
        )));
    }
    let mut sse = response.bytes_stream().eventsource();
    let (sent_tx, mut sent_rx) = tokio::sync::mpsc::unbounded_channel::<(String, Instant)>();
    let reader = tokio::spawn(async move {
        let mut sent: HashMap<String, Instant> = HashMap::new();
        let mut lags = Vec::with_capacity(events);
        while lags.len() < events {
            let Some(Ok(message)) = sse.next().await else {
                break;
            };
            let arrived = Instant::now();
            let Ok(event) = serde_json::from_str::<serde_json::Value>(&message.data) else {
                continue;
            };
            let Some(subject) = event["subject"].as_str() else {
                continue;
            };
            while let Ok((portfolio, at)) = sent_rx.try_recv() {
                sent.insert(portfolio, at);
            }
            if let Some(at) = sent.remove(subject) {
                lags.push(arrived.duration_since(at));
            }
        }
        lags
    });

    let started = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / rate);
    let mut ticker = tokio::time::interval(interval);
    for index in 0..events {
        ticker.tick().await;
        let portfolio = format!("880000{index:06}");
        let _ = sent_tx.send((portfolio.clone(), Instant::now()));
        let status = post(
            &client,
            &address,
            &token,
            &format!("/v1/portfolios/{portfolio}/commands"),
            r#"{"type":"start_onboarding"}"#,
        )
        .await?;
        if status != 201 {
            return Err(BenchError::Workload(format!("a command answered {status}")));
        }
    }
    let achieved = events as f64 / started.elapsed().as_secs_f64();
    let lags = tokio::time::timeout(Duration::from_secs(60), reader)
        .await
        .map_err(|_| {
            BenchError::Workload("the stream did not deliver every event within 60 s".into())
        })?
        .map_err(|error| BenchError::Workload(format!("the stream reader failed: {error}")))?;
    served.stop().await?;
    if lags.len() < events {
        return Err(BenchError::Workload(format!(
            "the stream delivered {} of {events} events",
            lags.len()
        )));
    }
    let mut ms: Vec<f64> = lags.iter().map(|lag| lag.as_secs_f64() * 1_000.0).collect();
    ms.sort_by(f64::total_cmp);
    let at =
        |quantile: f64| ms[((ms.len() as f64 * quantile).ceil() as usize).clamp(1, ms.len()) - 1];
    Ok(LagRun {
        p50_ms: at(0.5),
        p99_ms: at(0.99),
        max_ms: at(1.0),
        events: ms.len(),
        rate: achieved,
    })
}
