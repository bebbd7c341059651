//! Signed checkpoints of the chain head reach the stream: each right after the event it vouches for, on its
//! key's subject, exactly once across restarts, also into a stream created before checkpoints were published.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::stream;
use chrono::Utc;
use mmonboard_eventlog::testing::TestDatabase;
use mmonboard_eventlog::{CheckpointKey, RecordOutcome, SignedCheckpoints};
use mmonboard_relay::{
    Relay, SIGNED_CHECKPOINT_TYPE, SIGNED_POSITION_HEADER, checkpoint_cloud_event,
    checkpoint_subject_of,
};
use tokio::sync::watch;

use crate::support::{TestStream, nats, nats_url, open_log, write};

async fn sign(
    checkpoints: &SignedCheckpoints,
    store: &mmonboard_eventlog::EventLog,
    key: &CheckpointKey,
) {
    let outcome = checkpoints
        .record(store, key, Utc::now())
        .await
        .expect("signed");
    assert!(matches!(outcome, RecordOutcome::Recorded(_)), "{outcome:?}");
}

/// Runs a relay until the stream holds `messages`, then stops it; the checkpoints it published.
async fn relay_until(
    store: &Arc<mmonboard_eventlog::EventLog>,
    database: &TestDatabase,
    stream: &TestStream,
    messages: u64,
) -> u64 {
    relay_meanwhile(store, database, stream, messages, async {}).await
}

/// `relay_until`, doing `meanwhile` once the relay runs.
async fn relay_meanwhile(
    store: &Arc<mmonboard_eventlog::EventLog>,
    database: &TestDatabase,
    stream: &TestStream,
    messages: u64,
    meanwhile: impl std::future::Future<Output = ()>,
) -> u64 {
    let mut options = stream.options(&nats_url());
    options.signed_poll_interval = Duration::from_millis(20);
    let relay = Arc::new(
        Relay::open(Arc::clone(store), database.url(), options)
            .await
            .expect("the relay opens"),
    );
    let (stop, stopped) = watch::channel(false);
    let running = Arc::clone(&relay);
    let task = tokio::spawn(async move { running.run(stopped).await });
    meanwhile.await;
    stream
        .wait_for_messages(messages, Duration::from_secs(60))
        .await;
    let _ = stop.send(true);
    task.await.expect("the relay task ends");
    relay.close().await;
    relay.stats().checkpoints_published()
}

async fn signed_checkpoints_follow_their_events(database: &TestDatabase) {
    let Some(client) = nats().await else { return };
    let stream = TestStream::new(client);
    // The stream exists already, as a relay that published no checkpoints made it.
    stream
        .context
        .create_stream(stream::Config {
            name: stream.name.clone(),
            subjects: vec![format!("{}.>", stream.prefix)],
            ..Default::default()
        })
        .await
        .expect("the stream is created");
    let store = open_log(database.url()).await;
    let checkpoints = SignedCheckpoints::open(database.url())
        .await
        .expect("checkpoints");
    let first_key = CheckpointKey::from_seed(&[7; 32]);
    let second_key = CheckpointKey::from_seed(&[9; 32]);

    write(&store, 1, 0, 10, 4).await;
    sign(&checkpoints, &store, &first_key).await;
    write(&store, 1, 40, 5, 4).await;
    assert_eq!(relay_until(&store, database, &stream, 61).await, 1);

    // Two keys sign the same head while the relay is stopped: it finds them from the stream's state.
    sign(&checkpoints, &store, &first_key).await;
    sign(&checkpoints, &store, &second_key).await;
    assert_eq!(relay_until(&store, database, &stream, 63).await, 2);
    // The stream ends with checkpoints now: restarted, the relay continues after its last event and publishes
    // nothing twice.
    write(&store, 1, 60, 1, 4).await;
    assert_eq!(relay_until(&store, database, &stream, 67).await, 0);
    // While a relay runs: events, then a checkpoint, found by its next look.
    let live = async {
        write(&store, 1, 64, 1, 4).await;
        sign(&checkpoints, &store, &first_key).await;
    };
    assert_eq!(
        relay_meanwhile(&store, database, &stream, 72, live).await,
        1
    );

    let signed = checkpoints.list().await.expect("listed");
    assert_eq!(
        signed
            .iter()
            .map(|c| (c.position, c.key_id.clone()))
            .collect::<Vec<_>>(),
        {
            let mut expected = vec![
                (40, first_key.key_id().to_owned()),
                (60, first_key.key_id().to_owned()),
                (60, second_key.key_id().to_owned()),
                (68, first_key.key_id().to_owned()),
            ];
            expected.sort();
            expected
        }
    );
    let messages = stream.read_all().await;
    let events: Vec<_> = messages.iter().filter(|m| m.position.is_some()).collect();
    assert_eq!(
        events.iter().map(|m| m.position).collect::<Vec<_>>(),
        (1..=68).map(Some).collect::<Vec<_>>(),
        "every event once, in order"
    );
    let published: Vec<_> = messages.iter().filter(|m| m.position.is_none()).collect();
    assert_eq!(published.len(), signed.len(), "every checkpoint once");
    for checkpoint in &signed {
        checkpoint
            .check(&[first_key.trusted(), second_key.trusted()])
            .expect("a valid checkpoint");
        let message = published
            .iter()
            .find(|m| m.body == checkpoint_cloud_event(checkpoint))
            .unwrap_or_else(|| panic!("checkpoint {checkpoint:?} is not in the stream"));
        assert_eq!(
            message.subject,
            checkpoint_subject_of(&stream.name, &checkpoint.key_id)
        );
        assert_eq!(message.body["type"], SIGNED_CHECKPOINT_TYPE);
        assert_eq!(
            message.body["data"]["signature"],
            hex::encode(checkpoint.signature)
        );
        // Right after the event it vouches for: nothing but checkpoints between them.
        let event = messages
            .iter()
            .position(|m| m.position == Some(checkpoint.position))
            .expect("its event");
        let at = messages
            .iter()
            .position(|m| std::ptr::eq(m, *message))
            .expect("its place");
        assert!(
            at > event,
            "checkpoint {} before its event",
            checkpoint.position
        );
        assert!(
            messages[event + 1..at].iter().all(|m| m.position.is_none()),
            "events between checkpoint {} and its event",
            checkpoint.position
        );
    }
    // The header a consumer resumes by.
    let raw = stream
        .context
        .get_stream(&stream.name)
        .await
        .expect("the stream")
        .get_last_raw_message_by_subject(&checkpoint_subject_of(&stream.name, second_key.key_id()))
        .await
        .expect("the second key's checkpoint");
    assert_eq!(
        raw.headers
            .get(SIGNED_POSITION_HEADER)
            .map(|value| value.as_str().to_owned()),
        Some("60".to_owned())
    );
    checkpoints.close().await;
    stream.delete().await;
    if let Ok(store) = Arc::try_unwrap(store) {
        store.close().await;
    }
}

mmonboard_eventlog::backend_tests!(signed_checkpoints_follow_their_events);
