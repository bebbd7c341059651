//! The outbox relay as a process: `mmonboard relay` SIGKILLed at random points and restarted still puts each
//! event in the stream once, in order; `serve --nats-url` keeps taking commands while NATS is away, says it
//! is degraded, and catches the stream up by itself once NATS starts.

use std::hash::BuildHasher;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use mmonboard_eventlog::EventStore;
use mmonboard_eventlog::testing::{TestBackend, TestDatabase};
use mmonboard_relay::testing::{
    NatsChild, TestStream, assert_exactly_once, free_port, nats, nats_url, open_log, until, write,
};

/// A number below `bound`, different on every call and every run.
fn random_below(bound: u64) -> u64 {
    std::collections::hash_map::RandomState::new().hash_one(std::time::SystemTime::now()) % bound
}

fn relay_child(database: &str, stream: &TestStream) -> Child {
    Command::new(env!("CARGO_BIN_EXE_mmonboard"))
        .args(["--database", database, "relay", "--nats-url", &nats_url()])
        .args(["--stream", &stream.name, "--subject-prefix", &stream.prefix])
        .args(["--lease-ttl", "2s"])
        .env_remove("MMONBOARD_DATABASE_URL")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("mmonboard relay starts")
}

async fn killed_at_random_points(backend: TestBackend) {
    let Some(client) = nats().await else { return };
    let Some(database) = TestDatabase::on(backend).await else {
        return;
    };
    let stream = TestStream::new(client);
    let store = open_log(database.url()).await;
    write(&store, 0, 0, 20, 5).await;
    // Writes go on while the relay is killed and restarted.
    let writer = {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            for round in 0..4 {
                write(&store, 1 + round, 0, 150, 5).await;
            }
        })
    };
    for kill in 0..6 {
        // A backlog written while the relay is down, so that the kill lands in the middle of its catch-up
        // (a pipeline full of publishes awaiting their acknowledgements).
        write(&store, 10 + kill, 0, 200, 5).await;
        let before = stream.message_count().await;
        let more = 1 + random_below(250);
        let mut relay = relay_child(database.url(), &stream);
        let what = format!("kill {kill}: {more} more messages after {before}");
        until(&what, Duration::from_secs(90), || async {
            stream.message_count().await >= before + more
        })
        .await;
        relay.kill().expect("SIGKILL");
        relay.wait().expect("reaped");
        let head = store.head_position().await.expect("head");
        eprintln!(
            "kill {kill}: SIGKILL at {} messages, log head {head}",
            stream.message_count().await
        );
    }
    writer.await.expect("the writes");
    let head = store.head_position().await.expect("head");
    assert_eq!(head, 9_100);
    let mut relay = relay_child(database.url(), &stream);
    stream
        .wait_for_messages(head, Duration::from_secs(120))
        .await;
    relay.kill().expect("stopped");
    relay.wait().expect("reaped");
    assert_exactly_once(&store, &stream).await;
    stream.delete().await;
    if let Ok(store) = Arc::try_unwrap(store) {
        store.close().await;
    }
    database.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_killed_at_random_points_publishes_each_event_once_sqlite() {
    killed_at_random_points(TestBackend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_killed_at_random_points_publishes_each_event_once_postgres() {
    killed_at_random_points(TestBackend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_keeps_taking_commands_while_nats_is_away_and_catches_up() {
    let Some(binary) = NatsChild::binary() else {
        return;
    };
    let nats_dir = tempfile::tempdir().expect("a directory");
    let mut nats = NatsChild::new(nats_dir.path());
    let database = TestDatabase::sqlite();
    let options = TestStream::options_for(&nats.url());
    let port = free_port();
    let mut serve = Command::new(env!("CARGO_BIN_EXE_mmonboard"))
        .args(["--database", database.url(), "serve", "--insecure-no-auth"])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--nats-url", &nats.url(), "--nats-stream", &options.stream])
        .args(["--nats-subject-prefix", &options.subject_prefix])
        .env_remove("MMONBOARD_DATABASE_URL")
        .env_remove("META_APP_SECRET")
        .env_remove("META_BASE_URL")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve starts");
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");

    // NATS is away: every command is accepted, and /readyz names the relay.
    let ready = |expect: &'static str| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            let Ok(answer) = http.get(format!("{base}/readyz")).send().await else {
                return false;
            };
            let body: serde_json::Value = answer.json().await.unwrap_or_default();
            match expect {
                "degraded" => {
                    body["status"] == "degraded"
                        && body["reason"].as_str().is_some_and(|r| r.contains("relay"))
                }
                _ => body["status"] == "ready" && body["relay"] == "active",
            }
        }
    };
    until(
        "readyz says the relay is degraded",
        Duration::from_secs(60),
        || ready("degraded"),
    )
    .await;
    for n in 0..30 {
        let answer = http
            .post(format!(
                "{base}/v1/portfolios/{}/commands",
                5_000_000_000_u64 + n
            ))
            .json(&serde_json::json!({ "type": "start_onboarding" }))
            .send()
            .await
            .expect("an answer");
        assert!(
            answer.status().is_success(),
            "command {n}: {}",
            answer.status()
        );
    }
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics
            .lines()
            .any(|line| line == "mmonboard_relay_lag_events 30"),
        "{metrics}"
    );

    // NATS starts on that port: the stream catches up and the server is ready again.
    nats.start(&binary).await;
    let client = async_nats::connect(nats.url().as_str())
        .await
        .expect("connects");
    let stream = TestStream::named(client, &options.stream, &options.subject_prefix);
    stream.wait_for_messages(30, Duration::from_secs(60)).await;
    until(
        "readyz says ready with an active relay",
        Duration::from_secs(60),
        || ready("ready"),
    )
    .await;
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics
            .lines()
            .any(|line| line == "mmonboard_relay_lag_events 0"),
        "{metrics}"
    );
    assert!(
        metrics
            .lines()
            .any(|line| line == "mmonboard_relay_last_published_position 30"),
        "{metrics}"
    );

    serve.kill().expect("stopped");
    serve.wait().expect("reaped");
    let store = open_log(database.url()).await;
    assert_eq!(store.head_position().await.expect("head"), 30);
    assert_exactly_once(&store, &stream).await;
    stream.delete().await;
    if let Ok(store) = Arc::try_unwrap(store) {
        store.close().await;
    }
}

/// Bad relay flags are refused before the database is opened, naming what was wrong.
#[test]
fn bad_relay_flags_are_refused_before_anything_is_opened() {
    let workspace = crate::support::Workspace::new();
    for (flags, named) in [
        (
            vec!["relay", "--nats-url", "http://127.0.0.1:4222"],
            "NATS URL",
        ),
        (
            vec![
                "relay",
                "--nats-url",
                "nats://127.0.0.1:4222",
                "--stream",
                "a.b",
            ],
            "stream name",
        ),
        (
            vec![
                "relay",
                "--nats-url",
                "nats://127.0.0.1:4222",
                "--subject-prefix",
                "a.*",
            ],
            "subject prefix",
        ),
        (
            vec![
                "serve",
                "--insecure-no-auth",
                "--nats-url",
                "nats://127.0.0.1:4222",
                "--nats-stream",
                "x y",
            ],
            "stream name",
        ),
    ] {
        let run = workspace.run(&flags, "");
        assert_eq!(run.code, 2, "{flags:?}: {}", run.stderr);
        assert!(run.stderr.contains(named), "{flags:?}: {}", run.stderr);
        assert!(
            !workspace.database_path().exists(),
            "{flags:?} opened the database"
        );
    }
    for flags in [
        vec![
            "relay",
            "--nats-url",
            "nats://127.0.0.1:4222",
            "--from-position",
            "0",
        ],
        vec![
            "relay",
            "--nats-url",
            "nats://127.0.0.1:4222",
            "--lease-ttl",
            "10ms",
        ],
    ] {
        let run = workspace.run(&flags, "");
        assert_eq!(run.code, 2, "{flags:?}: {}", run.stderr);
        assert!(
            !workspace.database_path().exists(),
            "{flags:?} opened the database"
        );
    }
}
