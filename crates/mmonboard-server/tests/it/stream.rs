//! The events for other services: paged catch-up, and the live stream resuming from Last-Event-ID without
//! losing an event, including while many writers append.

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
