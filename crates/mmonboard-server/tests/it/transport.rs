//! What surrounds the routes: HTTPS with rustls (a self-signed certificate made here with rcgen), the
//! credential-free metrics listener, and request logs that never hold a secret.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mmonboard_access::Role;
use mmonboard_server::{ServeOptions, TlsFiles, WebhookConfig};
use tokio::sync::oneshot;

use crate::support::*;

struct Server {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), mmonboard_server::ServerError>>,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn stop(self) {
        let _ = self.stop.send(());
        self.task
            .await
            .expect("the server task")
            .expect("a clean shutdown");
    }
}

/// A server on a fresh database holding one admin token (returned), with `options`.
async fn start(
    listener: tokio::net::TcpListener,
    options: ServeOptions<mmonboard_meta::HttpGateway>,
) -> (Server, String) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite://{}", dir.path().join("log.db").display());
    let token = create_token(&url, "ops-admin", Role::Admin, start_time(), None).await;
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(mmonboard_server::run_with(
        listener,
        url,
        mmonboard_app::ManualClock::starting_at(start_time()),
        options,
        async move {
            let _ = stopped.await;
        },
    ));
    (
        Server {
            stop,
            task,
            _dir: dir,
        },
        token,
    )
}

async fn await_status(client: &reqwest::Client, url: &str, status: u16) -> reqwest::Response {
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if let Ok(response) = client.get(url).send().await
                && response.status() == status
            {
                return response;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{url} did not answer {status} before the deadline"))
}

#[tokio::test]
async fn tls_serves_https_with_the_given_certificate() {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("a certificate");
    let files = tempfile::tempdir().expect("a temporary directory");
    let cert = files.path().join("cert.pem");
    let key = files.path().join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).expect("written");
    std::fs::write(&key, certified.signing_key.serialize_pem()).expect("written");

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let port = listener.local_addr().expect("an address").port();
    let (server, token) = start(
        listener,
        ServeOptions {
            tls: Some(TlsFiles { cert, key }),
            ..ServeOptions::default()
        },
    )
    .await;
    let trusted = reqwest::Client::builder()
        .tls_certs_only([
            reqwest::Certificate::from_pem(certified.cert.pem().as_bytes()).expect("a certificate"),
        ])
        .resolve("localhost", ([127, 0, 0, 1], port).into())
        .build()
        .expect("a client");
    let base = format!("https://localhost:{port}");
    await_status(&trusted, &format!("{base}/healthz"), 200).await;
    let events = trusted
        .get(format!("{base}/v1/events"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("an answer over TLS");
    assert_eq!(events.status(), 200);
    let anonymous = trusted
        .get(format!("{base}/v1/events"))
        .send()
        .await
        .expect("an answer over TLS");
    assert_eq!(anonymous.status(), 401);
    // Plain HTTP gets no answer from the TLS port.
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .timeout(Duration::from_secs(10))
        .send()
        .await;
    assert!(plain.is_err() || plain.is_ok_and(|response| response.status() != 200));
    server.stop().await;
}

#[tokio::test]
async fn a_missing_certificate_stops_the_start_with_its_name() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let (server, _) = start(
        listener,
        ServeOptions {
            tls: Some(TlsFiles {
                cert: "/nonexistent/cert.pem".into(),
                key: "/nonexistent/key.pem".into(),
            }),
            ..ServeOptions::default()
        },
    )
    .await;
    let error = server
        .task
        .await
        .expect("the server task")
        .expect_err("no certificate, no start");
    assert!(
        error.to_string().contains("/nonexistent/cert.pem"),
        "{error}"
    );
}

#[tokio::test]
async fn metrics_are_open_on_their_own_listener_only() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let base = format!("http://{}", listener.local_addr().expect("an address"));
    let metrics_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let metrics_base = format!(
        "http://{}",
        metrics_listener.local_addr().expect("an address")
    );
    let (server, token) = start(
        listener,
        ServeOptions {
            metrics_listener: Some(metrics_listener),
            ..ServeOptions::default()
        },
    )
    .await;
    let client = reqwest::Client::new();
    await_status(&client, &format!("{base}/readyz"), 200).await;
    let open = client
        .get(format!("{metrics_base}/metrics"))
        .send()
        .await
        .expect("an answer");
    assert_eq!(open.status(), 200);
    assert!(open.text().await.expect("text").contains("mmonboard_"));
    // Only /metrics is there: the API is not reachable through the open listener.
    let api = client
        .get(format!("{metrics_base}/v1/events"))
        .send()
        .await
        .expect("an answer");
    assert_eq!(api.status(), 404);
    let closed = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("an answer");
    assert_eq!(closed.status(), 401);
    let with_token = client
        .get(format!("{base}/metrics"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("an answer");
    assert_eq!(with_token.status(), 200);
    server.stop().await;
}

/// Log lines gathered in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every log line of this test binary, at every level. Global rather than scoped to one test: a scoped
/// subscriber misses callsites whose interest another test's thread cached first.
fn captured_log() -> &'static Captured {
    static CAPTURED: std::sync::OnceLock<Captured> = std::sync::OnceLock::new();
    CAPTURED.get_or_init(|| {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        captured
    })
}

#[tokio::test]
async fn no_secret_reaches_the_log_at_any_level() {
    let captured = captured_log();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let base = format!("http://{}", listener.local_addr().expect("an address"));
    let (server, token) = start(
        listener,
        ServeOptions {
            webhook: Some(WebhookConfig {
                app_secret: APP_SECRET.into(),
                verify_token: VERIFY_TOKEN.into(),
            }),
            ..ServeOptions::default()
        },
    )
    .await;
    let client = reqwest::Client::new();
    await_status(&client, &format!("{base}/readyz"), 200).await;
    let handshake = client
        .get(format!(
            "{base}/webhooks/meta?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=42"
        ))
        .send()
        .await
        .expect("an answer");
    assert_eq!(handshake.status(), 200);
    let events = client
        .get(format!("{base}/v1/events"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("an answer");
    assert_eq!(events.status(), 200);
    let refused = client
        .get(format!("{base}/v1/events"))
        .bearer_auth("mmo_not-a-real-token-but-still-a-secret")
        .send()
        .await
        .expect("an answer");
    assert_eq!(refused.status(), 401);
    server.stop().await;

    let log = String::from_utf8_lossy(
        &captured
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    )
    .into_owned();
    assert!(
        log.contains("/webhooks/meta"),
        "the requests were logged:\n{log}"
    );
    for secret in [
        VERIFY_TOKEN,
        APP_SECRET,
        token.as_str(),
        &token[4..],
        "not-a-real-token-but-still-a-secret",
    ] {
        assert!(!log.contains(secret), "{secret:?} is in the log:\n{log}");
    }
}
