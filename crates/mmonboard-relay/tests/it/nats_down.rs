//! NATS unreachable, then there, then killed and back: the log's writes never wait for it, the relay fails
//! its attempts and says why, and once NATS answers the stream catches up, each event once, in order.

use std::sync::Arc;
use std::time::Duration;

use mmonboard_eventlog::EventStore;
use mmonboard_eventlog::testing::TestDatabase;
use mmonboard_relay::Relay;
use tokio::sync::watch;

use crate::support::{NatsChild, TestStream, assert_exactly_once, open_log, until, write};

async fn nats_down_then_back_then_killed_and_back(database: &TestDatabase) {
    let Some(binary) = NatsChild::binary() else {
        return;
    };
    let store_dir = tempfile::tempdir().expect("a store directory");
    let mut nats = NatsChild::new(store_dir.path());
    let store = open_log(database.url()).await;

    // The relay points at a port where nothing listens yet.
    let mut options = TestStream::options_for(&nats.url());
    options.ack_timeout = Duration::from_secs(2);
    let stream_name = options.stream.clone();
    let prefix = options.subject_prefix.clone();
    let relay = Arc::new(
        Relay::open(Arc::clone(&store), database.url(), options)
            .await
            .expect("the relay opens"),
    );
    let (stop, stopped) = watch::channel(false);
    let running = Arc::clone(&relay);
    let task = tokio::spawn(async move { running.run(stopped).await });

    // Writes succeed while NATS is away; the relay says what it cannot reach.
    write(&store, 5, 0, 25, 4).await;
    until(
        "the relay reports NATS unreachable",
        Duration::from_secs(30),
        || async {
            relay
                .stats()
                .last_error()
                .is_some_and(|error| error.contains("NATS"))
        },
    )
    .await;
    assert_eq!(relay.stats().last_published_position(), 0);

    // NATS comes up: the stream catches up by itself.
    nats.start(&binary).await;
    let client = async_nats::connect(nats.url().as_str())
        .await
        .expect("connects");
    let stream = TestStream::named(client, &stream_name, &prefix);
    stream.wait_for_messages(100, Duration::from_secs(60)).await;
    until("the relay recovers", Duration::from_secs(30), || async {
        relay.stats().last_error().is_none()
    })
    .await;

    // Killed in the middle of a burst of writes, NATS comes back on the same store.
    let writer = {
        let store = Arc::clone(&store);
        tokio::spawn(async move { write(&store, 6, 0, 200, 5).await })
    };
    until(
        "part of the burst is in the stream",
        Duration::from_secs(60),
        || async { stream.message_count().await >= 150 },
    )
    .await;
    nats.kill();
    writer.await.expect("the writes succeed without NATS");
    until("the relay notices", Duration::from_secs(30), || async {
        relay.stats().last_error().is_some()
    })
    .await;
    nats.start(&binary).await;
    let client = async_nats::connect(nats.url().as_str())
        .await
        .expect("connects");
    let stream = TestStream::named(client, &stream_name, &prefix);
    let head = store.head_position().await.expect("head");
    assert_eq!(head, 1_100);
    stream
        .wait_for_messages(head, Duration::from_secs(90))
        .await;
    let _ = stop.send(true);
    task.await.expect("the relay stops");
    relay.close().await;
    assert_exactly_once(&store, &stream).await;
    assert!(relay.stats().publish_errors() >= 2);
    stream.delete().await;
    drop(relay);
    if let Ok(store) = Arc::try_unwrap(store) {
        store.close().await;
    }
}

mmonboard_eventlog::backend_tests!(nats_down_then_back_then_killed_and_back);
