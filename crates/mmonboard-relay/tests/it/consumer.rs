//! The example consumer across a crash between applying and acknowledging: the restart sees the message
//! again, skips it, and the projection holds every portfolio that went live, each once.

use std::sync::Arc;
use std::time::Duration;

use mmonboard_eventlog::testing::TestDatabase;
use mmonboard_relay::Relay;
use tokio::sync::watch;

use crate::support::{TestStream, nats, nats_url, open_log, portfolio, write};

#[allow(dead_code)]
#[path = "../../examples/consumer.rs"]
mod example;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_consumer_resumes_after_a_crash_without_applying_twice() {
    let Some(client) = nats().await else { return };
    let stream = TestStream::new(client);
    let database = TestDatabase::sqlite();
    let store = open_log(database.url()).await;
    // Six portfolios, each with one sync_completed among three other events.
    for n in 0..6 {
        write(&store, 10 + n, 0, 1, 4).await;
    }
    let relay = Arc::new(
        Relay::open(
            Arc::clone(&store),
            database.url(),
            stream.options(&nats_url()),
        )
        .await
        .expect("the relay opens"),
    );
    let (stop, stopped) = watch::channel(false);
    let running = Arc::clone(&relay);
    let task = tokio::spawn(async move { running.run(stopped).await });
    stream.wait_for_messages(24, Duration::from_secs(60)).await;

    let state_dir = tempfile::tempdir().expect("a directory");
    let config = example::Config {
        nats_url: nats_url(),
        stream: stream.name.clone(),
        filter_subject: format!("{}.*.sync_completed", stream.prefix),
        durable: "live-portfolios".to_owned(),
        state: state_dir.path().join("live.json"),
        ack_wait: Duration::from_secs(1),
    };
    // The first run applies two and "crashes" before acknowledging the second.
    let crashed = tokio::time::timeout(
        Duration::from_secs(60),
        example::consume(&config, |_| false, Some(2)),
    )
    .await
    .expect("the first run within a minute")
    .expect("the first run");
    assert_eq!(crashed.live.len(), 2);

    // The restart continues: the unacknowledged one comes again and is skipped, the rest is applied.
    let expected: Vec<String> = (0..6).map(|n| portfolio(10 + n)).collect();
    let resumed = tokio::time::timeout(
        Duration::from_secs(60),
        example::consume(
            &config,
            |state| state.live.len() == 6 && state.skipped >= 1,
            None,
        ),
    )
    .await
    .expect("the restart within a minute")
    .expect("the restart");
    assert_eq!(resumed.live.keys().cloned().collect::<Vec<_>>(), {
        let mut sorted = expected.clone();
        sorted.sort();
        sorted
    });
    assert_eq!(
        resumed.skipped, 1,
        "only the unacknowledged delivery came again"
    );
    assert_eq!(
        example::LivePortfolios::load(&config.state).expect("saved"),
        resumed
    );
    // Positions are the sync_completed events' own.
    let events = mmonboard_eventlog::EventStore::read_all(&*store, 0, 100)
        .await
        .expect("the log");
    for event in events
        .iter()
        .filter(|event| event.event_type == "sync_completed")
    {
        let portfolio_id = event.stream_id.as_str().trim_start_matches("portfolio-");
        assert_eq!(resumed.live.get(portfolio_id), Some(&event.global_position));
    }

    let _ = stop.send(true);
    task.await.expect("the relay stops");
    relay.close().await;
    stream.delete().await;
    drop(relay);
    if let Ok(store) = Arc::try_unwrap(store) {
        store.close().await;
    }
}
