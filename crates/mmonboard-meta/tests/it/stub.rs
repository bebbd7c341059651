//! A stub Graph API on a local port: every request is recorded (method, path, decoded query, Authorization
//! header), and each `METHOD path` answers from its own script, in order, the last answer repeating. An
//! unscripted request gets a plain-text 404 (the gateway then fails with `UnexpectedAnswer`, loudly).
//!
//! [`Answer::Hang`] never answers: the handler awaits a future that never completes, so only the gateway's own
//! timeout ends the request. Nothing here sleeps.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mmonboard_meta::http::AccessToken;
use mmonboard_meta::{GatewayConfig, HttpGateway, RetryPolicy};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The token every test gateway carries.
pub const TOKEN: &str = "tok-123";
/// The path prefix of the stub's Graph API as [`gateway`] is configured: base path `/graph`, version `v23.0`.
pub const V: &str = "/graph/v23.0";
/// Attempts a test gateway makes for a read (the first included).
pub const ATTEMPTS: u32 = 3;
/// The timeout of a test gateway that is not meant to time out: far above a local answer.
pub const TIMEOUT: Duration = Duration::from_secs(2);
/// The timeout of a test gateway meant to meet a stub that hangs: what each hang costs a test.
pub const HANG_TIMEOUT: Duration = Duration::from_millis(150);

/// One scripted answer.
#[derive(Debug, Clone)]
pub enum Answer {
    /// A JSON body with this HTTP status.
    Json(u16, Value),
    /// A body that is not JSON (a proxy's error page).
    Text(u16, &'static str),
    /// No answer, ever.
    Hang,
}

/// `200` with this JSON body.
pub fn ok(body: Value) -> Answer {
    Answer::Json(200, body)
}

/// Meta's error envelope with `code`, answered with HTTP `status`.
pub fn graph_error(status: u16, code: i64) -> Answer {
    Answer::Json(
        status,
        json!({"error": {
            "message": format!("(#{code}) stub error {code}"),
            "type": "OAuthException",
            "code": code,
            "error_subcode": 2_494_010,
            "fbtrace_id": format!("Atrace{code}"),
        }}),
    )
}

/// One request the stub received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    /// The raw query string, as sent.
    pub raw_query: String,
    /// The query, decoded.
    pub query: HashMap<String, String>,
    pub authorization: Option<String>,
}

#[derive(Default)]
struct Script {
    routes: HashMap<(String, String), VecDeque<Answer>>,
    seen: Vec<Seen>,
}

/// A running stub; it lives as long as the test's runtime.
#[derive(Clone)]
pub struct Stub {
    script: Arc<Mutex<Script>>,
    addr: SocketAddr,
}

impl Stub {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a local port");
        let stub = Self {
            script: Arc::default(),
            addr: listener.local_addr().expect("an address"),
        };
        let router = Router::new().fallback(answer).with_state(stub.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        stub
    }

    fn with<T>(&self, change: impl FnOnce(&mut Script) -> T) -> T {
        change(&mut self.script.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The base URL with `path` after the address (`""`, `"/graph"`, `"/graph/"`…).
    pub fn base(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Script `METHOD path` (the full path, e.g. `"/graph/v23.0/4110000001"`): these answers in order, the
    /// last one repeating.
    pub fn on(&self, method: &str, path: &str, answers: impl IntoIterator<Item = Answer>) -> &Self {
        let answers: VecDeque<Answer> = answers.into_iter().collect();
        assert!(!answers.is_empty(), "script at least one answer");
        self.with(|script| {
            script
                .routes
                .insert((method.to_owned(), path.to_owned()), answers)
        });
        self
    }

    /// How many `METHOD path` requests arrived.
    pub fn count(&self, method: &str, path: &str) -> usize {
        self.with(|script| {
            script
                .seen
                .iter()
                .filter(|seen| seen.method == method && seen.path == path)
                .count()
        })
    }

    /// How many requests with this method arrived, whatever their path.
    pub fn count_method(&self, method: &str) -> usize {
        self.with(|script| {
            script
                .seen
                .iter()
                .filter(|seen| seen.method == method)
                .count()
        })
    }

    /// Every request received, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.with(|script| script.seen.clone())
    }
}

async fn answer(State(stub): State<Stub>, request: Request) -> Response {
    let uri = request.uri();
    let raw_query = uri.query().unwrap_or_default().to_owned();
    let seen = Seen {
        method: request.method().as_str().to_owned(),
        path: uri.path().to_owned(),
        query: url::form_urlencoded::parse(raw_query.as_bytes())
            .into_owned()
            .collect(),
        raw_query,
        authorization: request
            .headers()
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned),
    };
    let key = (seen.method.clone(), seen.path.clone());
    let scripted = stub.with(|script| {
        script.seen.push(seen);
        script.routes.get_mut(&key).map(|answers| {
            if answers.len() > 1 {
                answers.pop_front().expect("more than one")
            } else {
                answers.front().cloned().expect("one")
            }
        })
    });
    match scripted {
        Some(Answer::Json(status, body)) => (
            StatusCode::from_u16(status).expect("an HTTP status"),
            axum::Json(body),
        )
            .into_response(),
        Some(Answer::Text(status, body)) => {
            (StatusCode::from_u16(status).expect("an HTTP status"), body).into_response()
        }
        Some(Answer::Hang) => std::future::pending().await,
        None => (
            StatusCode::NOT_FOUND,
            format!("the stub has no script for {} {}", key.0, key.1),
        )
            .into_response(),
    }
}

/// A server that sends the status line, headers and the start of a body, then nothing more, on every
/// connection: a body that never completes. Returns its base URL and the number of requests it read.
pub async fn start_stalling_body() -> (String, Arc<Mutex<usize>>) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a local port");
    let base = format!(
        "http://{}/graph",
        listener.local_addr().expect("an address")
    );
    let requests = Arc::new(Mutex::new(0usize));
    let counter = requests.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buffer = [0u8; 1024];
                while !head.windows(4).any(|window| window == b"\r\n\r\n") {
                    match socket.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(read) => head.extend_from_slice(&buffer[..read]),
                    }
                }
                *counter.lock().unwrap_or_else(PoisonError::into_inner) += 1;
                let start = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{\"id\":";
                if socket.write_all(start).await.is_ok() {
                    // Keep the socket open, never finish the body.
                    std::future::pending::<()>().await;
                }
            });
        }
    });
    (base, requests)
}

/// A base URL where nothing listens: connections are refused.
pub async fn closed_base() -> String {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a local port");
    let addr = listener.local_addr().expect("an address");
    drop(listener);
    format!("http://{addr}/graph")
}

/// A gateway on `base` (version `v23.0`, token [`TOKEN`]) with this timeout and number of read attempts and
/// backoffs of 1 to 5 ms.
pub fn gateway_with(base: &str, timeout: Duration, max_attempts: u32) -> HttpGateway {
    HttpGateway::new(GatewayConfig {
        timeout,
        retry: RetryPolicy {
            max_attempts,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(5),
        },
        ..GatewayConfig::new(base, "v23.0", AccessToken::new(TOKEN)).expect("a valid configuration")
    })
    .expect("an HTTP client")
}

/// The usual test gateway on the stub: base path `/graph`, [`TIMEOUT`], [`ATTEMPTS`].
pub fn gateway(stub: &Stub) -> HttpGateway {
    gateway_with(&stub.base("/graph"), TIMEOUT, ATTEMPTS)
}

/// The test gateway for stubs that hang: [`HANG_TIMEOUT`], `max_attempts` attempts.
pub fn impatient_gateway(stub: &Stub, max_attempts: u32) -> HttpGateway {
    gateway_with(&stub.base("/graph"), HANG_TIMEOUT, max_attempts)
}
