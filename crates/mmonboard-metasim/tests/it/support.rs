//! A simulator served on 127.0.0.1:0 with a manual clock, a client for it, and a webhook receiver.

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, TimeDelta, Utc};
use mmonboard_app::{Clock, ManualClock};
use mmonboard_metasim::{Scenario, SimConfig, Simulator};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

pub const TOKEN: &str = "sim-token";
pub const SECRET: &str = "sim-app-secret";
pub const VERSION: &str = "v23.0";

/// How long a test waits for something the simulator does in real time (a webhook, a redelivery).
pub const DEADLINE: Duration = Duration::from_secs(10);

pub fn start_time() -> DateTime<Utc> {
    "2026-03-02T09:00:00Z".parse().unwrap()
}

pub fn scenarios_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scenarios")
}

pub fn scenario(name: &str) -> Scenario {
    let path = scenarios_dir().join(format!("{name}.json"));
    Scenario::from_file(&path).unwrap_or_else(|error| panic!("{error}"))
}

/// A one-WABA scenario with `prefix` in every id (10 digits: prefix + zeros + n), changed by `edit`.
pub fn inline(prefix: &str, edit: impl FnOnce(&mut Value)) -> Scenario {
    let id = |kind: u8, n: u8| format!("{prefix}{kind}{:0width$}", n, width = 9 - prefix.len());
    let mut json = serde_json::json!({
        "name": format!("inline_{prefix}"),
        "expect": {"phase": "live"},
        "business": {
            "id": id(0, 1), "name": "Inline", "country": "BR",
            "admin": {"user_id": id(9, 1), "accepts_terms_after": "2m"},
            "wabas": [{
                "id": id(1, 1), "tax_country": "BR",
                "phone_numbers": [{"id": id(2, 1), "country": "BR"}],
                "templates": [{"id": id(3, 1), "name": "promo", "language": "en_US", "category": "MARKETING"}]
            }]
        }
    });
    edit(&mut json);
    Scenario::from_json(&json.to_string()).unwrap_or_else(|error| panic!("{error}"))
}

pub fn config() -> SimConfig {
    let mut config = SimConfig::new(TOKEN, SECRET);
    config.tick = Duration::from_millis(5);
    config.redelivery.initial_backoff = Duration::from_millis(10);
    config.redelivery.max_backoff = Duration::from_millis(50);
    config
}

pub struct Harness {
    pub sim: Simulator,
    pub clock: ManualClock,
    pub base: String,
    pub client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    served: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Harness {
    pub async fn start(scenarios: Vec<Scenario>) -> Self {
        Self::start_with(scenarios, config()).await
    }

    pub async fn start_with(scenarios: Vec<Scenario>, config: SimConfig) -> Self {
        let clock = ManualClock::starting_at(start_time());
        let shared: Arc<dyn Clock> = Arc::new(clock.clone());
        let sim =
            Simulator::new(scenarios, shared, config).unwrap_or_else(|error| panic!("{error}"));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let served = tokio::spawn(sim.clone().serve(listener, async move {
            let _ = stopped.await;
        }));
        Self {
            sim,
            clock,
            base,
            client: reqwest::Client::new(),
            stop: Some(stop),
            served: Some(served),
        }
    }

    pub fn advance(&self, by: TimeDelta) {
        self.clock.advance(by);
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub fn graph_url(&self, path: &str) -> String {
        format!("{}/{VERSION}/{path}", self.base)
    }

    async fn answer(request: reqwest::RequestBuilder) -> (u16, Value) {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, body)
    }

    /// An authorised Graph API GET (`path` without the version).
    pub async fn get(&self, path: &str) -> (u16, Value) {
        Self::answer(
            self.client
                .get(self.graph_url(path))
                .query(&[("fields", "id")])
                .bearer_auth(TOKEN),
        )
        .await
    }

    /// An authorised Graph API POST.
    pub async fn post(&self, path: &str) -> (u16, Value) {
        Self::answer(self.client.post(self.graph_url(path)).bearer_auth(TOKEN)).await
    }

    /// A GET that must succeed.
    pub async fn node(&self, path: &str) -> Value {
        let (status, body) = self.get(path).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    pub async fn control(&self, path: &str, body: Value) -> (u16, Value) {
        Self::answer(self.client.post(format!("{}{path}", self.base)).json(&body)).await
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(served) = self.served.take() {
            tokio::time::timeout(DEADLINE, served)
                .await
                .expect("the simulator stops when told to")
                .unwrap()
                .unwrap();
        }
    }
}

/// Wait until `condition` holds, polling, for at most [`DEADLINE`].
pub async fn eventually<T>(what: &str, mut condition: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Some(value) = condition() {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Await `future` for at most [`DEADLINE`].
pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(DEADLINE, future)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// One request the webhook receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub signature: Option<String>,
    pub content_type: Option<String>,
    pub body: Bytes,
    pub answered: u16,
}

/// A webhook receiver that refuses (503) the first `refuse` requests, then acknowledges every one.
pub struct Receiver {
    pub url: url::Url,
    pub received: mpsc::UnboundedReceiver<Received>,
    _stop: oneshot::Sender<()>,
}

impl Receiver {
    pub async fn start(refuse: u32) -> Self {
        let (sender, received) = mpsc::unbounded_channel();
        let count = Arc::new(Mutex::new(0u32));
        let app = axum::Router::new().route(
            "/webhooks/meta",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let sender = sender.clone();
                let count = count.clone();
                async move {
                    let seen = {
                        let mut count = count.lock().unwrap();
                        *count += 1;
                        *count
                    };
                    let status = if seen <= refuse {
                        StatusCode::SERVICE_UNAVAILABLE
                    } else {
                        StatusCode::OK
                    };
                    let header = |name: &str| {
                        headers
                            .get(name)
                            .and_then(|value| value.to_str().ok())
                            .map(str::to_owned)
                    };
                    let _ = sender.send(Received {
                        signature: header("x-hub-signature-256"),
                        content_type: header("content-type"),
                        body,
                        answered: status.as_u16(),
                    });
                    status
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/webhooks/meta", listener.local_addr().unwrap())
            .parse()
            .unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await
        });
        Self {
            url,
            received,
            _stop: stop,
        }
    }

    pub async fn next(&mut self) -> Received {
        within("a webhook delivery", self.received.recv())
            .await
            .expect("the receiver is running")
    }
}

pub fn json(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap()
}
