//! The events for other services: paged catch-up, and the live stream resuming from Last-Event-ID without
//! losing an event, including while many writers append; both in the CloudEvents format as the CloudEvents
//! SDK reads it.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn the_catch_up_read_pages_through_cloud_events() {
    let app = spawn_app().await;
    for portfolio in ["1", "2", "3"] {
        app.accept(portfolio, start()).await;
    }
    let (_, page) = app.get("/v1/events?after=0&limit=2").await;
    let events = page["events"].as_array().expect("events");
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["specversion"], "1.0");
    assert_eq!(
        events[0]["type"],
        "com.mmonboard.onboarding.onboarding_started.v1"
    );
    assert_eq!(events[0]["subject"], "1");
    assert_eq!(page["next_after"], 2);
    let (_, rest) = app.get("/v1/events?after=2&limit=2").await;
    assert_eq!(rest["events"][0]["subject"], "3");
    let (status, _) = app.get("/v1/events?limit=0").await;
    assert_eq!(status, 400);
    app.shutdown().await;
}

#[tokio::test]
async fn a_disconnected_subscriber_resumes_from_last_event_id_without_losing_an_event() {
    let app = spawn_app().await;
    let mut stream = EventStream::connect(&app, None).await;
    up_to_terms(&app, "100").await;
    let mut seen = Vec::new();
    for _ in 0..4 {
        let (id, event) = stream.next().await;
        assert_eq!(event["subject"], "100");
        seen.push(id);
    }
    drop(stream); // the subscriber goes away mid-stream
    app.accept("100", json!({"type": "accept_terms", "accepted_by": "3001", "role": "ADMIN", "terms_version": "v1"})).await;
    app.accept("200", start()).await;
    let mut resumed = EventStream::connect(&app, seen.last().copied()).await;
    for _ in 0..2 {
        seen.push(resumed.next().await.0);
    }
    assert_eq!(
        seen,
        (1..=6).collect::<Vec<_>>(),
        "every event exactly once, in order"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn a_live_subscriber_gets_every_event_in_order_while_eight_writers_append() {
    let app = Arc::new(spawn_app().await);
    let mut stream = EventStream::connect(&app, Some(0)).await;
    let writers: Vec<_> = (0..8)
        .map(|writer| {
            let app = Arc::clone(&app);
            tokio::spawn(async move {
                for portfolio in 0..5 {
                    let portfolio = format!("{}{portfolio}", writer + 1);
                    app.accept(&portfolio, start()).await;
                    app.accept(&portfolio, eligibility()).await;
                }
            })
        })
        .collect();
    let mut ids = Vec::new();
    let mut subjects = BTreeSet::new();
    while ids.len() < 80 {
        let (id, event) = stream.next().await;
        ids.push(id);
        subjects.insert(event["subject"].as_str().map(str::to_owned));
    }
    for writer in writers {
        writer.await.expect("writer finished");
    }
    assert_eq!(
        ids,
        (1..=80).collect::<Vec<_>>(),
        "in order, none skipped, none twice"
    );
    assert_eq!(subjects.len(), 40);
    drop(stream);
    if let Ok(app) = Arc::try_unwrap(app) {
        app.shutdown().await;
    }
}

/// Both routes serve structured-mode CloudEvents (a JSON document per event; no route or message uses the
/// binary mode). `mmonboard_app::cloudevents` builds the document with serde_json rather than through the
/// SDK's types: it is a contract consumers and the relay's stream already hold, with `time` in microseconds
/// and `Z`, and the SDK would be linked into the server only to write what serde_json writes. So the SDK's
/// own parser checks here that what is served is a CloudEvent it reads, attribute by attribute.
#[tokio::test]
async fn every_served_event_is_a_cloud_event_the_sdk_reads() {
    use cloudevents::event::{AttributesReader, Data, ExtensionValue, SpecVersion};

    let app = spawn_app().await;
    let mut stream = EventStream::connect(&app, Some(0)).await;
    app.accept("41", start()).await;
    app.accept("41", eligibility()).await;
    let (_, page) = app.get("/v1/events?after=0&limit=10").await;
    let paged = page["events"].as_array().expect("events").clone();
    assert_eq!(paged.len(), 2);
    let mut streamed = Vec::new();
    for _ in 0..2 {
        let (id, document) = stream.next().await;
        assert_eq!(
            document["sequence"],
            id.to_string(),
            "the SSE id is the sequence"
        );
        streamed.push(document);
    }
    assert_eq!(
        streamed, paged,
        "the stream and the page serve one document"
    );
    for (index, document) in paged.iter().enumerate() {
        let position = index as u64 + 1;
        let event: cloudevents::Event = serde_json::from_value(document.clone())
            .unwrap_or_else(|error| panic!("{document} is not a CloudEvent: {error}"));
        assert_eq!(event.specversion(), SpecVersion::V10);
        assert_eq!(event.id(), document["id"].as_str().expect("an id"));
        assert!(
            uuid::Uuid::parse_str(event.id()).is_ok(),
            "the id is the event's UUID"
        );
        assert_eq!(event.source().as_str(), mmonboard_app::cloudevents::SOURCE);
        let expected_type = if position == 1 {
            "com.mmonboard.onboarding.onboarding_started.v1"
        } else {
            "com.mmonboard.onboarding.eligibility_checked.v1"
        };
        assert_eq!(event.ty(), expected_type);
        assert_eq!(event.subject(), Some("41"));
        assert_eq!(event.datacontenttype(), Some("application/json"));
        let time = event.time().expect("a time");
        assert_eq!(
            time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            document["time"].as_str().expect("a time")
        );
        assert_eq!(
            event.extension("sequence"),
            Some(&ExtensionValue::String(position.to_string()))
        );
        assert_eq!(
            event.extension("streamversion"),
            Some(&ExtensionValue::Integer(
                i64::try_from(position).expect("small")
            ))
        );
        match event.extension("correlationid") {
            Some(ExtensionValue::String(id)) => assert!(uuid::Uuid::parse_str(id).is_ok()),
            other => panic!("correlationid is {other:?}"),
        }
        assert_eq!(event.iter_extensions().count(), 3, "no other extension");
        match event.data() {
            Some(Data::Json(data)) => assert_eq!(data, &document["data"]),
            other => panic!("the data is {other:?}, not JSON"),
        }
    }
    drop(stream);
    app.shutdown().await;
}
