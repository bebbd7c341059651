//! Filtered subscriptions (`portfolio_id=`, `type=` on `/v1/events` and the SSE stream) and the paged
//! portfolio list from the status read model.

use std::time::Duration;

use serde_json::Value;

use crate::support::*;

fn positions(page: &Value) -> Vec<(u64, String, String)> {
    page["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|event| {
            (
                event["sequence"]
                    .as_str()
                    .expect("sequence")
                    .parse()
                    .expect("a position"),
                event["subject"].as_str().expect("subject").to_owned(),
                event["type"].as_str().expect("type").to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_paged_read_keeps_only_the_portfolios_and_types_asked_for() {
    let app = spawn_app().await;
    for portfolio in ["11", "22", "33"] {
        app.accept(portfolio, start()).await;
        app.accept(portfolio, eligibility()).await;
    }
    // Positions: 11 → 1, 2; 22 → 3, 4; 33 → 5, 6.
    let (status, page) = app.get("/v1/events?portfolio_id=22").await;
    assert_eq!(status, 200, "{page}");
    let found = positions(&page);
    assert_eq!(
        found.iter().map(|found| found.0).collect::<Vec<_>>(),
        [3, 4]
    );
    assert!(found.iter().all(|found| found.1 == "22"));
    assert_eq!(page["next_after"], 6, "it looked through the whole log");

    let (_, page) = app
        .get("/v1/events?type=eligibility_checked&portfolio_id=11&portfolio_id=33")
        .await;
    let found = positions(&page);
    assert_eq!(
        found.iter().map(|found| found.0).collect::<Vec<_>>(),
        [2, 6]
    );
    assert!(
        found
            .iter()
            .all(|found| found.2.contains(".eligibility_checked."))
    );

    // A full page stops at its last match: the next page resumes after it.
    let (_, page) = app.get("/v1/events?type=onboarding_started&limit=2").await;
    assert_eq!(
        positions(&page)
            .iter()
            .map(|found| found.0)
            .collect::<Vec<_>>(),
        [1, 3]
    );
    assert_eq!(page["next_after"], 3);
    let (_, page) = app
        .get("/v1/events?type=onboarding_started&limit=2&after=3")
        .await;
    assert_eq!(
        positions(&page)
            .iter()
            .map(|found| found.0)
            .collect::<Vec<_>>(),
        [5]
    );

    for (path, named) in [
        ("/v1/events?type=terms_sined", "terms_sined"),
        ("/v1/events?portfolio_id=abc", "abc"),
        ("/v1/events?after=1&after=2", "after"),
        ("/v1/events/stream?type=nope", "nope"),
    ] {
        let (status, body) = app.get(path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body.to_string().contains(named), "{path}: {body}");
    }
    app.shutdown().await;
}

#[tokio::test]
async fn the_live_stream_sends_only_matching_events_and_resumes_with_a_filter() {
    let app = spawn_app().await;
    // Positions: 11 starts → 1, 22 starts → 2, 11's eligibility → 3.
    app.accept("11", start()).await;
    app.accept("22", start()).await;
    app.accept("11", eligibility()).await;
    let mut stream = EventStream::connect_to(&app, "/v1/events/stream?portfolio_id=22", None).await;
    let (first, event) = stream.next().await;
    assert_eq!((first, event["subject"].as_str()), (2, Some("22")));
    drop(stream);
    // 33 starts → 4, 22's eligibility → 5: resumed after 2, the filtered stream skips 3 and 4.
    app.accept("33", start()).await;
    app.accept("22", eligibility()).await;
    let mut resumed = EventStream::connect_to(
        &app,
        "/v1/events/stream?portfolio_id=22&type=eligibility_checked",
        Some(first),
    )
    .await;
    let (next, event) = resumed.next().await;
    assert_eq!((next, event["subject"].as_str()), (5, Some("22")));
    assert!(
        event["type"]
            .as_str()
            .is_some_and(|kind| kind.contains(".eligibility_checked.")),
        "{event}"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn the_portfolio_list_pages_through_the_status_read_model_by_phase() {
    let app = spawn_app().await;
    for portfolio in ["101", "102", "103"] {
        app.accept(portfolio, start()).await;
    }
    app.accept("102", eligibility()).await;
    let head = app.head().await;
    // The projector follows the log; wait for it with a deadline.
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let (_, list) = app.get("/v1/portfolios?limit=1000").await;
            let projected = list["portfolios"].as_array().is_some_and(|rows| {
                rows.iter()
                    .map(|row| row["last_position"].as_u64().unwrap_or(0))
                    .max()
                    == Some(head)
            });
            if projected {
                return;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("projected before the deadline");

    let (status, page) = app.get("/v1/portfolios?limit=2").await;
    assert_eq!(status, 200, "{page}");
    let ids: Vec<_> = page["portfolios"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|row| row["portfolio_id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(ids, ["101", "102"]);
    assert_eq!(page["next_after"], "102");
    let (_, rest) = app.get("/v1/portfolios?limit=2&after=102").await;
    assert_eq!(rest["portfolios"][0]["portfolio_id"], "103");
    assert_eq!(rest["next_after"], Value::Null, "the last page");

    let (_, checking) = app.get("/v1/portfolios?phase=checking_eligibility").await;
    let phases: Vec<_> = checking["portfolios"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|row| (row["portfolio_id"].clone(), row["phase"].clone()))
        .collect();
    assert!(
        phases
            .iter()
            .all(|(_, phase)| phase == "checking_eligibility"),
        "{phases:?}"
    );
    assert_eq!(phases.len(), 2, "{phases:?}");

    for (path, named) in [
        ("/v1/portfolios?phase=liv", "liv"),
        ("/v1/portfolios?limit=0", "limit"),
        ("/v1/portfolios?after=x1", "x1"),
        ("/v1/portfolios?sort=phase", "sort"),
    ] {
        let (status, body) = app.get(path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body.to_string().contains(named), "{path}: {body}");
    }
    app.shutdown().await;
}
