//! Webhooks: signed with the app secret, sent in order per WABA, sent again with the same bytes until a 2xx.

use std::time::Duration;

use chrono::TimeDelta;
use mmonboard_meta::webhook::{AccountEvent, Notification, WebhookPayload, verify};
use serde_json::{Value, json};

use crate::support::{Harness, Receiver, SECRET, config, eventually, json, scenario};

fn event_of(body: &[u8]) -> String {
    json(body)["entry"][0]["changes"][0]["value"]["event"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn terms_signed_is_sent_signed_and_redelivered_until_acknowledged() {
    let mut receiver = Receiver::start(2).await;
    let mut config = config();
    config.webhook_url = Some(receiver.url.clone());
    let harness = Harness::start_with(vec![scenario("happy_path")], config).await;

    harness.post("4100000001/onboard_partners_to_mm_lite").await;
    // No request after this: the background task notices the admin's acceptance on the clock by itself.
    harness.advance(TimeDelta::minutes(2));
    let attempts = [
        receiver.next().await,
        receiver.next().await,
        receiver.next().await,
    ];
    assert_eq!(attempts.each_ref().map(|a| a.answered), [503, 503, 200]);
    for attempt in &attempts {
        assert_eq!(
            attempt.body, attempts[0].body,
            "every attempt sends the same bytes"
        );
        assert_eq!(
            verify(
                SECRET.as_bytes(),
                &attempt.body,
                attempt.signature.as_deref()
            ),
            Ok(())
        );
        assert_eq!(attempt.content_type.as_deref(), Some("application/json"));
    }
    let signed = crate::support::start_time() + TimeDelta::minutes(2);
    assert_eq!(
        json(&attempts[0].body),
        json!({"object": "whatsapp_business_account", "entry": [{
            "id": "4110000001", "time": signed.timestamp(),
            "changes": [{"field": "account_update", "value": {
                "event": "MM_LITE_TERMS_SIGNED",
                "waba_info": {"waba_id": "4110000001", "owner_business_id": "4100000001"}
            }}]
        }]})
    );
    let notifications = WebhookPayload::parse(&attempts[0].body)
        .unwrap()
        .notifications()
        .unwrap();
    assert!(matches!(
        &notifications[..],
        [Notification::AccountUpdate { event: AccountEvent::TermsSigned, business_id: Some(business), .. }]
            if business.as_str() == "4100000001"
    ));

    let delivery = eventually("the delivery to be recorded as acknowledged", || {
        harness
            .sim
            .deliveries()
            .into_iter()
            .find(|delivery| delivery.acknowledged)
    })
    .await;
    assert_eq!(delivery.id, 1);
    assert_eq!(delivery.attempts, 3);
    assert_eq!(delivery.last_status, Some(200));
    assert_eq!(delivery.body.as_bytes(), &attempts[0].body[..]);
    assert_eq!(delivery.waba_id, "4110000001");

    // The control route shows the same.
    let listed: Value = harness
        .client
        .get(format!("{}/sim/deliveries", harness.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed[0]["attempts"], 3);
    assert_eq!(listed[0]["acknowledged"], true);
    harness.stop().await;
}

#[tokio::test]
async fn deliveries_for_one_waba_keep_their_order_through_redeliveries() {
    let mut receiver = Receiver::start(1).await;
    let mut config = config();
    config.webhook_url = Some(receiver.url.clone());
    let harness = Harness::start_with(vec![scenario("happy_path")], config).await;
    let route = "/sim/wabas/4110000001/account_status";
    harness
        .control(
            route,
            json!({"status": "RESTRICTED", "event": "ACCOUNT_RESTRICTION"}),
        )
        .await;
    harness
        .control(
            route,
            json!({"status": "DISABLED", "event": "DISABLED_UPDATE"}),
        )
        .await;
    harness
        .control(
            route,
            json!({"status": "ACTIVE", "event": "ACCOUNT_UPDATE"}),
        )
        .await;

    let mut seen = Vec::new();
    for _ in 0..4 {
        let attempt = receiver.next().await;
        seen.push((event_of(&attempt.body), attempt.answered));
    }
    assert_eq!(
        seen,
        [
            ("ACCOUNT_RESTRICTION".to_owned(), 503),
            ("ACCOUNT_RESTRICTION".to_owned(), 200),
            ("DISABLED_UPDATE".to_owned(), 200),
            ("ACCOUNT_UPDATE".to_owned(), 200),
        ]
    );
    eventually("all three acknowledged", || {
        let deliveries = harness.sim.deliveries();
        (deliveries.len() == 3 && deliveries.iter().all(|d| d.acknowledged)).then_some(())
    })
    .await;
    harness.stop().await;
}

#[tokio::test]
async fn a_receiver_that_never_answers_gets_max_attempts_then_the_delivery_is_given_up() {
    let unreachable = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        format!("http://{}/webhooks/meta", listener.local_addr().unwrap())
    };
    let mut config = config();
    config.webhook_url = Some(unreachable.parse().unwrap());
    config.redelivery.max_attempts = 3;
    config.redelivery.initial_backoff = Duration::from_millis(1);
    let harness = Harness::start_with(vec![scenario("happy_path")], config).await;
    harness
        .control(
            "/sim/wabas/4110000001/account_status",
            json!({"status": "RESTRICTED", "event": "ACCOUNT_RESTRICTION"}),
        )
        .await;
    let delivery = eventually("three failed attempts", || {
        harness
            .sim
            .deliveries()
            .into_iter()
            .find(|delivery| delivery.attempts == 3)
    })
    .await;
    assert!(!delivery.acknowledged);
    assert_eq!(delivery.last_status, None);
    assert!(delivery.last_error.is_some());
    harness.stop().await;
}

#[tokio::test]
async fn a_category_change_sends_a_typed_template_category_update() {
    let mut receiver = Receiver::start(0).await;
    let mut config = config();
    config.webhook_url = Some(receiver.url.clone());
    let harness = Harness::start_with(vec![scenario("happy_path")], config).await;
    harness
        .control(
            "/sim/wabas/4110000001/templates",
            json!({"id": "4130000003", "name": "order_update", "language": "pt_BR", "category": "MARKETING"}),
        )
        .await;
    let attempt = receiver.next().await;
    assert_eq!(
        verify(
            SECRET.as_bytes(),
            &attempt.body,
            attempt.signature.as_deref()
        ),
        Ok(())
    );
    let notifications = WebhookPayload::parse(&attempt.body)
        .unwrap()
        .notifications()
        .unwrap();
    match &notifications[..] {
        [
            Notification::TemplateCategoryUpdate {
                waba_id,
                template_id,
                new_category,
                ..
            },
        ] => {
            assert_eq!(waba_id.as_str(), "4110000001");
            assert_eq!(template_id.as_str(), "4130000003");
            assert_eq!(new_category.to_string(), "MARKETING");
        }
        other => panic!("unexpected notifications {other:?}"),
    }
    harness.stop().await;
}
