//! A process killed with SIGKILL in the middle of appending leaves whole commands or nothing, on each
//! backend: the log
//! verifies intact and every stream holds a whole number of its three-event commands. The test binary
//! re-runs itself as the writer (`crash_writer_child`, which does nothing unless told to by the parent).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mmonboard_eventlog::testing::TestDatabase;
use mmonboard_eventlog::{
    AppendRequest, EventLog, EventMetadata, EventStore, ExpectedVersion, LogOptions, NewEvent,
    StreamId, backend_tests,
};
use uuid::Uuid;

backend_tests!(a_writer_killed_mid_append_leaves_whole_commands_only);

const CHILD_DATABASE: &str = "MMONBOARD_CRASH_CHILD_DATABASE";
const EVENTS_PER_COMMAND: usize = 3;

fn command(stream: u64, version: u64) -> AppendRequest {
    let command_id = Uuid::now_v7();
    AppendRequest {
        stream_id: StreamId::parse(format!("crash-{stream}")).expect("a valid stream id"),
        expected_version: if version == 0 {
            ExpectedVersion::NoStream
        } else {
            ExpectedVersion::Exact(version)
        },
        command_id,
        metadata: EventMetadata {
            command_id,
            actor: "crash".into(),
            correlation_id: command_id,
            causation_id: None,
        },
        recorded_at: chrono::Utc::now(),
        events: (0..EVENTS_PER_COMMAND)
            .map(|index| NewEvent {
                event_id: Uuid::now_v7(),
                event_type: "crash_test".into(),
                schema_version: 1,
                payload: format!(r#"{{"part":{index},"padding":"{}"}}"#, "x".repeat(200)),
            })
            .collect(),
    }
}

/// The child: append three-event commands to 8 streams from 8 tasks until killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_writer_child() {
    let Ok(url) = std::env::var(CHILD_DATABASE) else {
        return; // Run by the parent test only.
    };
    let store = std::sync::Arc::new(
        EventLog::open(&url, &LogOptions::default())
            .await
            .expect("opens"),
    );
    let writers: Vec<_> = (0..8u64)
        .map(|stream| {
            let store = std::sync::Arc::clone(&store);
            tokio::spawn(async move {
                let mut version = 0;
                loop {
                    store
                        .append(command(stream, version))
                        .await
                        .expect("appends");
                    version += EVENTS_PER_COMMAND as u64;
                }
            })
        })
        .collect();
    for writer in writers {
        let _ = writer.await;
    }
}

async fn a_writer_killed_mid_append_leaves_whole_commands_only(database: &TestDatabase) {
    let open = || async {
        EventLog::open(database.url(), &LogOptions::default())
            .await
            .expect("the log opens")
    };
    // Create the schema first so the child and this test agree on the database.
    open().await.close().await;
    let mut child = Command::new(std::env::current_exe().expect("the test binary"))
        .args(["--exact", "crash::crash_writer_child", "--nocapture"])
        .env(CHILD_DATABASE, database.url())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the writer starts");

    // Await a condition with a deadline: the child has committed a good number of events.
    let observer = open().await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while observer.head_position().await.expect("head") < 600 {
        assert!(Instant::now() < deadline, "the writer never got going");
        assert!(
            child.try_wait().expect("child status").is_none(),
            "the writer died on its own"
        );
        tokio::task::yield_now().await;
    }
    observer.close().await;
    child.kill().expect("SIGKILL delivered");
    child.wait().expect("the writer is gone");

    let store = open().await;
    let report = store.verify().await.expect("verifies");
    assert!(
        report.first_break.is_none(),
        "broken after the crash: {:?}",
        report.first_break
    );
    assert!(report.events_checked >= 600);
    for stream in 0..8 {
        let stream_id = StreamId::parse(format!("crash-{stream}")).expect("valid");
        let version = store.stream_version(&stream_id).await.expect("a version");
        assert_eq!(
            version % EVENTS_PER_COMMAND as u64,
            0,
            "stream {stream} holds a partial command"
        );
    }
    // The log goes on where it stopped.
    let stream_id = StreamId::parse("crash-0").expect("valid");
    let version = store.stream_version(&stream_id).await.expect("a version");
    store
        .append(command(0, version))
        .await
        .expect("appends after the crash");
    store.close().await;
}
