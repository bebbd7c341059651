//! The auditor's routes and the checkpoint signer, on both backends: `serve` with a signing key signs the
//! head as events come and once more at shutdown; `/v1/audit/checkpoints` lists them, `/v1/audit/export`
//! streams an export that verifies offline against the public key, `/v1/audit/verify` reports the chain and
//! the checkpoints (a wrong trusted key fails, naming the key), and the history answers as of a time.

use std::time::Duration;

use chrono::{TimeDelta, TimeZone, Utc};
use mmonboard_app::ManualClock;
use mmonboard_eventlog::testing::{TestBackend, TestDatabase};
use mmonboard_eventlog::{CheckpointKey, EventLog, EventStore, LogOptions, on_both_backends};
use serde_json::Value;

use crate::support::{eligibility, eventually, start, without_credentials};

on_both_backends!(the_auditor_gets_checkpoints_an_export_and_a_report);

async fn get(client: &reqwest::Client, url: String) -> (u16, Value) {
    let response = client.get(url).send().await.expect("an answer");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn the_auditor_gets_checkpoints_an_export_and_a_report(backend: TestBackend) {
    let Some(database) = TestDatabase::on(backend).await else {
        return;
    };
    let key = CheckpointKey::from_seed(&[3; 32]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port");
    let base = format!("http://{}", listener.local_addr().expect("an address"));
    let started = Utc
        .with_ymd_and_hms(2026, 11, 25, 9, 0, 0)
        .single()
        .expect("a time");
    let clock = ManualClock::starting_at(started);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let options = mmonboard_server::ServeOptions {
        checkpoints: Some(mmonboard_server::CheckpointSetup {
            key: key.clone(),
            every_events: 1,
            every: Duration::from_secs(3600),
        }),
        ..without_credentials()
    };
    let server = tokio::spawn(mmonboard_server::run_with(
        listener,
        database.url().to_owned(),
        clock.clone(),
        options,
        async move {
            let _ = stopped.await;
        },
    ));
    let client = reqwest::Client::new();
    eventually("the server is ready", async || {
        get(&client, format!("{base}/readyz")).await.0 == 200
    })
    .await;
    let post = async |command: Value| {
        let status = client
            .post(format!("{base}/v1/portfolios/5550000002/commands"))
            .json(&command)
            .send()
            .await
            .expect("an answer")
            .status()
            .as_u16();
        assert_eq!(status, 201, "{command}");
    };
    post(start()).await;
    clock.advance(TimeDelta::minutes(5));
    post(eligibility()).await;
    let head = get(&client, format!("{base}/v1/events?limit=1")).await.1["head"]
        .as_u64()
        .expect("a head");
    eventually("the head is signed", async || {
        let (_, body) = get(&client, format!("{base}/v1/audit/checkpoints")).await;
        body["checkpoints"]
            .as_array()
            .and_then(|all| all.last())
            .is_some_and(|newest| newest["position"] == head && newest["key_id"] == key.key_id())
    })
    .await;

    // The export, streamed, verifies offline against the public key and carries the checkpoints.
    let response = client
        .get(format!("{base}/v1/audit/export"))
        .send()
        .await
        .expect("an answer");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let exported = response.bytes().await.expect("the body");
    let file = mmonboard_eventlog::verify_export_trusting(&exported[..], None, &[key.trusted()])
        .expect("verified");
    assert!(file.is_intact(), "{:?}", file.first_break);
    assert_eq!(file.head.map(|(position, _)| position), Some(head));
    assert_eq!(
        file.newest_checkpoint.map(|checkpoint| checkpoint.position),
        Some(head)
    );
    let (status, body) = get(&client, format!("{base}/v1/audit/export?after=x")).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_input")),
        "{body}"
    );

    let trusted = key.trusted().text();
    let (status, report) = get(
        &client,
        format!("{base}/v1/audit/verify?trusted_key={trusted}"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(report["intact"], true, "{report}");
    assert_eq!(report["checkpoints"]["newest"]["position"], head);
    let other = CheckpointKey::from_seed(&[4; 32]).trusted().text();
    let (_, report) = get(
        &client,
        format!("{base}/v1/audit/verify?trusted_key={other}"),
    )
    .await;
    assert_eq!(report["intact"], false);
    assert!(
        report["first_break"]["reason"]
            .as_str()
            .is_some_and(|reason| reason.contains("not a trusted key")),
        "{report}"
    );
    let (status, _) = get(&client, format!("{base}/v1/audit/verify?trusted_key=nope")).await;
    assert_eq!(status, 400);

    // The history as of a time between the two commands holds the first only.
    let (_, all) = get(&client, format!("{base}/v1/portfolios/5550000002/history")).await;
    let between =
        (started + TimeDelta::minutes(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let (status, then) = get(
        &client,
        format!("{base}/v1/portfolios/5550000002/history?as_of={between}"),
    )
    .await;
    assert_eq!(status, 200);
    let (all, then) = (
        all.as_array().expect("a list").len(),
        then.as_array().expect("a list").len(),
    );
    assert!(then >= 1 && then < all, "{then} of {all}");
    let (status, _) = get(
        &client,
        format!("{base}/v1/portfolios/5550000002/history?as_of=yesterday"),
    )
    .await;
    assert_eq!(status, 400);

    // One more command, then shutdown: the last head is signed on the way out.
    clock.advance(TimeDelta::minutes(5));
    post(serde_json::json!({"type": "offboard", "reason": "audit test"})).await;
    let _ = stop.send(());
    server
        .await
        .expect("the server task")
        .expect("a clean shutdown");
    let log = EventLog::open_read_only(database.url(), &LogOptions::default())
        .await
        .expect("the log");
    let final_head = log.head_position().await.expect("the head");
    let newest = log
        .signed_checkpoints()
        .await
        .expect("the checkpoints")
        .into_iter()
        .map(|checkpoint| checkpoint.position)
        .max();
    assert_eq!(newest, Some(final_head));
    log.close().await;
    database.cleanup().await;
}
