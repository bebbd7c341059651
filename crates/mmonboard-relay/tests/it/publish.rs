//! Every event exactly once, in global order, with the right subjects and headers: under concurrent writers,
//! across a lease handover, into an emptied stream from a position, and never into another log's stream.

use std::sync::Arc;
use std::time::Duration;

use mmonboard_eventlog::testing::TestDatabase;
use mmonboard_eventlog::{Checkpoints, EventStore};
use mmonboard_relay::{Relay, RelayError};
use tokio::sync::watch;

use crate::support::{TestStream, assert_exactly_once, nats, nats_url, open_log, until, write};

/// A relay running in a task until its sender is dropped or set.
struct Running {
    relay: Arc<Relay>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

async fn start(relay: Relay) -> Running {
    let relay = Arc::new(relay);
    let (stop, stopped) = watch::channel(false);
    let running = Arc::clone(&relay);
    let task = tokio::spawn(async move { running.run(stopped).await });
    Running { relay, stop, task }
}

impl Running {
    async fn stop(self) -> Arc<Relay> {
        let _ = self.stop.send(true);
        self.task.await.expect("the relay task ends");
        self.relay.close().await;
        self.relay
    }
}

async fn eight_concurrent_writers_each_event_once_in_order(database: &TestDatabase) {
    let Some(client) = nats().await else { return };
    let stream = TestStream::new(client);
    let store = open_log(database.url()).await;
    let relay = Relay::open(
        Arc::clone(&store),
        database.url(),
        stream.options(&nats_url()),
    )
    .await
    .expect("the relay opens");
    let running = start(relay).await;
    // 8 writers × 2,000 events (500 commands of 4), while the relay follows.
    let writers: Vec<_> = (0..8)
        .map(|n| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { write(&store, n, 0, 500, 4).await })
        })
        .collect();
    for writer in writers {
        writer.await.expect("a writer");
    }
    let head = store.head_position().await.expect("head");
    assert_eq!(head, 16_000);
    stream
        .wait_for_messages(head, Duration::from_secs(120))
        .await;
    let relay = running.stop().await;
    assert_exactly_once(&store, &stream).await;
    let stats = relay.stats();
    assert_eq!(stats.last_published_position(), head);
    assert!(stats.published() >= head, "{} published", stats.published());
    let checkpoints = Checkpoints::open(database.url())
        .await
        .expect("checkpoints");
    assert_eq!(
        checkpoints
            .load(&relay.checkpoint_name())
            .await
            .expect("load"),
        head
    );
    checkpoints.close().await;
    stream.delete().await;
    close(store).await;
}

async fn a_standby_takes_over_and_nothing_repeats(database: &TestDatabase) {
    let Some(client) = nats().await else { return };
    let stream = TestStream::new(client);
    let store = open_log(database.url()).await;
    let open = || async {
        Relay::open(
            Arc::clone(&store),
            database.url(),
            stream.options(&nats_url()),
        )
        .await
        .expect("the relay opens")
    };
    let first = start(open().await).await;
    until(
        "the first relay is active",
        Duration::from_secs(20),
        || async { first.relay.stats().active() },
    )
    .await;
    let second = start(open().await).await;
    until(
        "the second relay stands by",
        Duration::from_secs(20),
        || async { second.relay.stats().working() },
    )
    .await;
    assert!(!second.relay.stats().active(), "two active relays");
    write(&store, 0, 0, 50, 4).await;
    stream.wait_for_messages(200, Duration::from_secs(60)).await;
    assert_eq!(second.relay.stats().published(), 0, "the standby published");
    // The active relay stops (and releases the lease); the standby takes over where the stream ends.
    first.stop().await;
    write(&store, 0, 200, 50, 4).await;
    stream.wait_for_messages(400, Duration::from_secs(60)).await;
    assert!(second.relay.stats().active(), "the standby took over");
    let second = second.stop().await;
    assert_eq!(second.stats().published(), 200);
    assert_exactly_once(&store, &stream).await;
    stream.delete().await;
    close(store).await;
}

async fn an_emptied_stream_is_rebuilt_from_a_position(database: &TestDatabase) {
    let Some(client) = nats().await else { return };
    let stream = TestStream::new(client);
    let store = open_log(database.url()).await;
    write(&store, 1, 0, 25, 4).await;
    let running = start(
        Relay::open(
            Arc::clone(&store),
            database.url(),
            stream.options(&nats_url()),
        )
        .await
        .expect("the relay opens"),
    )
    .await;
    stream.wait_for_messages(100, Duration::from_secs(60)).await;
    running.stop().await;

    // Purged, the stream continues after the checkpoint: nothing is republished on its own.
    purge(&stream).await;
    write(&store, 1, 100, 5, 4).await;
    let running = start(
        Relay::open(
            Arc::clone(&store),
            database.url(),
            stream.options(&nats_url()),
        )
        .await
        .expect("the relay opens"),
    )
    .await;
    stream.wait_for_messages(20, Duration::from_secs(60)).await;
    running.stop().await;
    let positions: Vec<_> = stream.read_all().await.iter().map(|m| m.position).collect();
    assert_eq!(positions, (101..=120).map(Some).collect::<Vec<_>>());

    // Purged again, the events cannot be republished at once: JetStream's duplicate window still holds their
    // ids and would drop them. The relay says so instead of counting them as published.
    purge(&stream).await;
    let mut options = stream.options(&nats_url());
    options.from_position = Some(1);
    let relay = Relay::open(Arc::clone(&store), database.url(), options.clone())
        .await
        .expect("the relay opens");
    let (_stop, mut stopped) = watch::channel(false);
    let error = relay.run_once(&mut stopped).await.expect_err("refused");
    assert!(error.to_string().contains("duplicate window"), "{error}");
    relay.close().await;
    assert_eq!(stream.message_count().await, 0);

    // Deleted (its duplicate window with it) and rebuilt from position 1: every event once, in order.
    stream.delete().await;
    let running = start(
        Relay::open(Arc::clone(&store), database.url(), options.clone())
            .await
            .expect("the relay opens"),
    )
    .await;
    stream.wait_for_messages(120, Duration::from_secs(60)).await;
    running.stop().await;
    assert_exactly_once(&store, &stream).await;

    // --from-position on a stream that holds messages changes nothing: it continues after the last one.
    let running = start(
        Relay::open(Arc::clone(&store), database.url(), options)
            .await
            .expect("the relay opens"),
    )
    .await;
    write(&store, 1, 120, 1, 4).await;
    stream.wait_for_messages(124, Duration::from_secs(60)).await;
    running.stop().await;
    assert_exactly_once(&store, &stream).await;
    stream.delete().await;
    close(store).await;
}

async fn purge(stream: &TestStream) {
    stream
        .context
        .get_stream(&stream.name)
        .await
        .expect("the stream")
        .purge()
        .await
        .expect("purged");
    assert_eq!(stream.message_count().await, 0);
}

async fn another_logs_stream_is_refused(database: &TestDatabase) {
    let Some(client) = nats().await else { return };
    let stream = TestStream::new(client);
    // Another log fills the stream first.
    let other = TestDatabase::sqlite();
    let other_store = open_log(other.url()).await;
    write(&other_store, 2, 0, 5, 2).await;
    let running = start(
        Relay::open(
            Arc::clone(&other_store),
            other.url(),
            stream.options(&nats_url()),
        )
        .await
        .expect("the relay opens"),
    )
    .await;
    stream.wait_for_messages(10, Duration::from_secs(60)).await;
    running.stop().await;

    let store = open_log(database.url()).await;
    write(&store, 3, 0, 10, 2).await;
    let relay = Relay::open(
        Arc::clone(&store),
        database.url(),
        stream.options(&nats_url()),
    )
    .await
    .expect("the relay opens");
    let (_stop, mut stopped) = watch::channel(false);
    let error = relay.run_once(&mut stopped).await.expect_err("refused");
    assert!(
        matches!(&error, RelayError::ForeignStream(message) if message.contains("another log")),
        "{error}"
    );
    assert_eq!(stream.message_count().await, 10, "nothing was published");

    // A message the relay did not publish, at the end of the stream, is refused too.
    stream
        .context
        .publish(format!("{}.x.y", stream.prefix), "not an event".into())
        .await
        .expect("published")
        .await
        .expect("acknowledged");
    let error = relay.run_once(&mut stopped).await.expect_err("refused");
    assert!(error.to_string().contains("did not publish"), "{error}");
    assert_eq!(
        relay.stats().publish_errors(),
        2,
        "each refused attempt is counted"
    );
    relay.close().await;
    stream.delete().await;
    close(store).await;
    close(other_store).await;
    other.cleanup().await;
}

async fn close(store: Arc<mmonboard_eventlog::EventLog>) {
    if let Ok(store) = Arc::try_unwrap(store) {
        store.close().await;
    }
}

mmonboard_eventlog::backend_tests!(
    eight_concurrent_writers_each_event_once_in_order,
    a_standby_takes_over_and_nothing_repeats,
    an_emptied_stream_is_rebuilt_from_a_position,
    another_logs_stream_is_refused,
);
