//! Retries with one `Idempotency-Key`: concurrent or not, every duplicate gets the original outcome; the
//! key reused for a different request is refused, and nothing is appended for it.

use serde_json::{Value, json};

use crate::support::*;

#[tokio::test]
async fn concurrent_retries_with_one_key_all_get_the_original_outcome() {
    let app = spawn_app().await;
    let body = start().to_string();
    let answers = futures_util::future::join_all(
        (0..16).map(|_| app.post("123", &body, Some("retry-storm"))),
    )
    .await;
    let created: Vec<&Value> = answers
        .iter()
        .filter(|(status, _)| *status == 201)
        .map(|(_, body)| body)
        .collect();
    assert_eq!(created.len(), 1, "one of them applied it: {answers:?}");
    for (status, answer) in &answers {
        assert!(
            *status == 201 || *status == 200,
            "a duplicate gets 200, not {status}: {answer}"
        );
        assert_eq!(
            answer["events"], created[0]["events"],
            "the original outcome"
        );
        assert_eq!(answer["command_id"], created[0]["command_id"]);
    }
    assert_eq!(app.head().await, 1);
    app.shutdown().await;
}

#[tokio::test]
async fn a_key_reused_for_a_different_request_is_refused() {
    let app = spawn_app().await;
    app.accept("123", start()).await;
    app.accept("123", eligibility()).await;
    let review = |user: &str| json!({"type": "review_permissions", "reviewed_by": user});
    let (status, first) = app
        .post("123", &review("3001").to_string(), Some("review-1"))
        .await;
    assert_eq!(status, 201, "{first}");
    let head = app.head().await;

    // Another reviewer under the same key: not the request the key stands for.
    let (status, body) = app
        .post("123", &review("3002").to_string(), Some("review-1"))
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["code"], "idempotency_key_reused");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|message| message.contains("Idempotency-Key")),
        "{body}"
    );
    // Another command altogether under the same key.
    let (status, body) = app
        .post("123", &start().to_string(), Some("review-1"))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("idempotency_key_reused"))
    );
    assert_eq!(app.head().await, head, "nothing appended for them");

    // The same request spelled differently, even after time has passed, is the same request.
    app.clock.advance(chrono::TimeDelta::hours(1));
    let (status, again) = app
        .post(
            "123",
            r#"{ "reviewed_by" : "3001", "type": "review_permissions" }"#,
            Some("review-1"),
        )
        .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["events"], first["events"]);
    assert_eq!(app.head().await, head);
    app.shutdown().await;
}
