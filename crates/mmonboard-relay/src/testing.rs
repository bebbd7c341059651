//! Test support (feature `testing`) for the relay's tests and the command line's: a NATS connection (skipped with a notice when none answers, a failure under
//! `CI=true`), a stream of the test's own, appends by concurrent writers, reading a stream back, and a
//! `nats-server` child process for the tests that stop NATS.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::{POSITION_HEADER, RelayOptions};
use async_nats::jetstream::{self, consumer};
use chrono::Utc;
use futures_util::StreamExt;
use mmonboard_eventlog::{
    AppendRequest, EventLog, EventMetadata, EventStore, ExpectedVersion, LogOptions, NewEvent,
    StreamId,
};
use uuid::Uuid;

/// The NATS server the tests use (a JetStream-enabled `nats-server -js`).
pub const NATS_URL_ENV: &str = "MMONBOARD_TEST_NATS_URL";
pub const DEFAULT_NATS_URL: &str = "nats://127.0.0.1:4222";

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| value == "true")
}

pub fn nats_url() -> String {
    std::env::var(NATS_URL_ENV).unwrap_or_else(|_| DEFAULT_NATS_URL.to_owned())
}

/// A connection to the test NATS, or `None` (after a notice) when none answers outside CI.
pub async fn nats() -> Option<async_nats::Client> {
    let url = nats_url();
    match async_nats::connect(url.as_str()).await {
        Ok(client) => Some(client),
        Err(error) => {
            assert!(
                !in_ci(),
                "CI=true but NATS at {url} ({NATS_URL_ENV}) cannot be reached: {error}; start nats-server -js"
            );
            eprintln!(
                "notice: skipping a NATS test: no server at {url} ({error}); set {NATS_URL_ENV} or start nats-server -js"
            );
            None
        }
    }
}

/// A stream name and subject prefix of the test's own (streams may not share subjects).
pub struct TestStream {
    pub name: String,
    pub prefix: String,
    pub context: jetstream::Context,
}

impl TestStream {
    pub fn new(client: async_nats::Client) -> Self {
        let id = Uuid::now_v7().simple().to_string();
        Self {
            name: format!("TEST_{id}"),
            prefix: format!("test{id}.onboarding"),
            context: jetstream::new(client),
        }
    }

    /// A handle on a stream whose name and prefix are already chosen (on another server).
    pub fn named(client: async_nats::Client, name: &str, prefix: &str) -> Self {
        Self {
            name: name.to_owned(),
            prefix: prefix.to_owned(),
            context: jetstream::new(client),
        }
    }

    pub fn options(&self, url: &str) -> RelayOptions {
        let mut options = Self::options_for(url);
        options.stream = self.name.clone();
        options.subject_prefix = self.prefix.clone();
        options
    }

    /// Options for a stream and prefix of the test's own, fast leases and polls.
    pub fn options_for(url: &str) -> RelayOptions {
        let id = Uuid::now_v7().simple().to_string();
        let mut options = RelayOptions::new(url);
        options.stream = format!("TEST_{id}");
        options.subject_prefix = format!("test{id}.onboarding");
        options.lease = mmonboard_process::LeaseOptions {
            ttl: Duration::from_secs(3),
            renew_every: Duration::from_millis(300),
        };
        options.poll_interval = Duration::from_millis(50);
        options
    }

    /// Messages in the stream now (0 before the relay created it).
    pub async fn message_count(&self) -> u64 {
        match self.context.get_stream(&self.name).await {
            Ok(mut stream) => stream.info().await.map_or(0, |info| info.state.messages),
            Err(_) => 0,
        }
    }

    /// Wait until the stream holds `count` messages.
    pub async fn wait_for_messages(&self, count: u64, within: Duration) {
        let what = format!("{count} messages in {}", self.name);
        until(&what, within, || async move {
            let now = self.message_count().await;
            assert!(
                now <= count,
                "{} holds {now} messages, more than the {count} expected",
                self.name
            );
            now == count
        })
        .await;
    }

    /// Every message of the stream, in stream order.
    pub async fn read_all(&self) -> Vec<Streamed> {
        let stream = self
            .context
            .get_stream(&self.name)
            .await
            .expect("the stream exists");
        let total = stream.get_info().await.expect("stream info").state.messages;
        let consumer = stream
            .create_consumer(consumer::pull::Config {
                ack_policy: consumer::AckPolicy::None,
                deliver_policy: consumer::DeliverPolicy::All,
                inactive_threshold: Duration::from_secs(60),
                ..Default::default()
            })
            .await
            .expect("an ephemeral consumer");
        let mut messages = consumer.messages().await.expect("a message stream");
        let mut read = Vec::new();
        while (read.len() as u64) < total {
            let message = tokio::time::timeout(Duration::from_secs(10), messages.next())
                .await
                .expect("the next message within 10 s")
                .expect("more messages")
                .expect("a message");
            let info = message.info().expect("JetStream metadata");
            let headers = message.headers.clone().unwrap_or_default();
            read.push(Streamed {
                sequence: info.stream_sequence,
                subject: message.subject.to_string(),
                message_id: headers.get("Nats-Msg-Id").map(|v| v.as_str().to_owned()),
                position: headers
                    .get(POSITION_HEADER)
                    .and_then(|v| v.as_str().parse().ok()),
                body: serde_json::from_slice(&message.payload).expect("a JSON body"),
            });
        }
        read
    }

    pub async fn delete(&self) {
        let _ = self.context.delete_stream(&self.name).await;
    }
}

/// One message as read back.
#[derive(Debug)]
pub struct Streamed {
    pub sequence: u64,
    pub subject: String,
    pub message_id: Option<String>,
    pub position: Option<u64>,
    pub body: serde_json::Value,
}

/// The stream holds each event of the log exactly once, in global order, with its subject, headers and
/// CloudEvents body.
pub async fn assert_exactly_once(store: &EventLog, stream: &TestStream) {
    let head = store.head_position().await.expect("head");
    let events = store
        .read_all(0, usize::try_from(head).unwrap_or(usize::MAX))
        .await
        .expect("the log");
    let messages = stream.read_all().await;
    assert_eq!(
        messages.len(),
        events.len(),
        "the stream holds {} messages for {} events",
        messages.len(),
        events.len()
    );
    for pair in messages.windows(2) {
        assert!(pair[0].sequence < pair[1].sequence, "stream order");
    }
    for (message, event) in messages.iter().zip(&events) {
        assert_eq!(
            message.position,
            Some(event.global_position),
            "position header of {message:?}"
        );
        assert_eq!(
            message.message_id.as_deref(),
            Some(event.event_id.to_string().as_str())
        );
        assert_eq!(message.subject, crate::subject_of(&stream.prefix, event));
        assert_eq!(
            message.body,
            mmonboard_app::cloudevents::to_cloud_event(event)
        );
    }
}

/// Await `condition` until `within` has passed (then fail naming `what`).
pub async fn until<F, Fut>(what: &str, within: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if condition().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

pub async fn open_log(url: &str) -> Arc<EventLog> {
    Arc::new(
        EventLog::open(url, &LogOptions::default())
            .await
            .expect("the log opens"),
    )
}

/// The portfolio of writer `n`.
pub fn portfolio(n: usize) -> String {
    format!("{}", 4_000_000_000_u64 + n as u64)
}

pub const EVENT_TYPES: [&str; 4] = [
    "onboarding_started",
    "eligibility_checked",
    "terms_signed",
    "sync_completed",
];

/// Append `commands` commands of `per_command` events to writer `n`'s portfolio stream, starting at its
/// version `from_version`.
pub async fn write(
    store: &EventLog,
    n: usize,
    from_version: u64,
    commands: usize,
    per_command: usize,
) {
    let stream_id = StreamId::parse(format!("portfolio-{}", portfolio(n))).expect("a stream id");
    let mut version = from_version;
    for _ in 0..commands {
        let command_id = Uuid::now_v7();
        let events = (0..per_command)
            .map(|i| NewEvent {
                event_id: Uuid::now_v7(),
                event_type: EVENT_TYPES[(version as usize + i) % EVENT_TYPES.len()].to_owned(),
                schema_version: 1,
                payload: format!(r#"{{"writer":{n},"version":{}}}"#, version + i as u64 + 1),
            })
            .collect();
        store
            .append(AppendRequest {
                stream_id: stream_id.clone(),
                expected_version: ExpectedVersion::Exact(version),
                command_id,
                metadata: EventMetadata {
                    command_id,
                    actor: "test".to_owned(),
                    correlation_id: command_id,
                    causation_id: None,
                },
                recorded_at: Utc::now(),
                events,
            })
            .await
            .expect("the append");
        version += per_command as u64;
    }
}

/// A free local port (bound then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// A `nats-server -js` child process of the test's own, on a port and store directory that survive its
/// restarts.
pub struct NatsChild {
    pub port: u16,
    store_dir: PathBuf,
    child: Option<std::process::Child>,
}

impl NatsChild {
    /// `None` (after a notice) when there is no `nats-server` outside CI.
    pub fn binary() -> Option<PathBuf> {
        let binary = std::env::var_os("MMONBOARD_TEST_NATS_SERVER")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("nats-server"));
        let found = std::process::Command::new(&binary)
            .arg("--version")
            .output()
            .is_ok_and(|output| output.status.success());
        if !found {
            assert!(
                !in_ci(),
                "CI=true but there is no nats-server to start ({binary:?})"
            );
            eprintln!("notice: skipping a test that starts nats-server: none found ({binary:?})");
            return None;
        }
        Some(binary)
    }

    pub fn new(store_dir: &Path) -> Self {
        Self {
            port: free_port(),
            store_dir: store_dir.to_owned(),
            child: None,
        }
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Start it and wait until it answers.
    pub async fn start(&mut self, binary: &Path) {
        assert!(self.child.is_none(), "already running");
        let child = std::process::Command::new(binary)
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(&self.store_dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("nats-server starts");
        self.child = Some(child);
        let url = self.url();
        until(
            "the child nats-server answers",
            Duration::from_secs(20),
            || {
                let url = url.clone();
                async move {
                    // nats-server starts JetStream before it listens for clients.
                    match async_nats::connect(url.as_str()).await {
                        Ok(client) => client.flush().await.is_ok(),
                        Err(_) => false,
                    }
                }
            },
        )
        .await;
    }

    /// SIGKILL, as a crash.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for NatsChild {
    fn drop(&mut self) {
        self.kill();
    }
}
