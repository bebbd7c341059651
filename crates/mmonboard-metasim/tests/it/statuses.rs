//! Meta's per-WABA verdict, the mirrored ad account and the mirrored ads of marketing templates, over time.

use chrono::TimeDelta;
use serde_json::{Value, json};

use crate::support::{Harness, inline, scenario};

const WABA: &str = "4110000001";

async fn status_of(harness: &Harness, waba: &str) -> String {
    harness.node(waba).await["marketing_messages_onboarding_status"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn mirrored(harness: &Harness, waba: &str) -> Vec<(String, bool)> {
    let edge = harness.node(&format!("{waba}/message_templates")).await;
    edge["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|template| {
            let fields = ["ad_id", "ad_adset_id", "ad_campaign_id", "ad_account_id"];
            let present = fields
                .iter()
                .filter(|field| template.get(**field).is_some())
                .count();
            assert!(
                present == 0 || present == 4,
                "all mirror fields or none: {template}"
            );
            (template["name"].as_str().unwrap().to_owned(), present == 4)
        })
        .collect()
}

fn names(list: &[(&str, bool)]) -> Vec<(String, bool)> {
    list.iter()
        .map(|(name, on)| ((*name).to_owned(), *on))
        .collect()
}

#[tokio::test]
async fn an_eligible_waba_is_set_up_then_onboarded_and_its_marketing_templates_mirrored() {
    let harness = Harness::start(vec![scenario("happy_path")]).await;
    let waba = harness.node(WABA).await;
    assert_eq!(waba["ownership_type"], "CLIENT_OWNED");
    assert_eq!(waba["account_status"], "ACTIVE");
    assert_eq!(waba["tax_country"], "BR");
    assert_eq!(waba["marketing_messages_onboarding_status"], "ELIGIBLE");
    assert!(waba.get("ad_account_id").is_none() && waba.get("obo_mobility_intent").is_none());
    assert_eq!(
        waba["phone_numbers"]["data"],
        json!([{"id": "4120000001", "country": "BR", "platform_type": "CLOUD_API", "is_on_biz_app": false}])
    );
    let none = names(&[
        ("spring_sale", false),
        ("welcome_back", false),
        ("order_update", false),
    ]);
    assert_eq!(mirrored(&harness, WABA).await, none);

    harness.post("4100000001/onboard_partners_to_mm_lite").await;
    assert_eq!(status_of(&harness, WABA).await, "ELIGIBLE");
    harness.advance(TimeDelta::minutes(2)); // signed now
    let waba = harness.node(WABA).await;
    assert_eq!(
        waba["marketing_messages_onboarding_status"],
        "PENDING_INTERNAL_SETUP"
    );
    assert!(waba.get("ad_account_id").is_none());

    harness.advance(TimeDelta::minutes(1)); // ad account creation
    let waba = harness.node(WABA).await;
    assert_eq!(waba["ad_account_id"], "84110000001");
    assert_eq!(
        waba["marketing_messages_onboarding_status"],
        "PENDING_INTERNAL_SETUP"
    );

    harness.advance(TimeDelta::minutes(9) - TimeDelta::seconds(1));
    assert_eq!(status_of(&harness, WABA).await, "PENDING_INTERNAL_SETUP");
    harness.advance(TimeDelta::seconds(1)); // signed + 10m
    assert_eq!(status_of(&harness, WABA).await, "ONBOARDED");
    assert_eq!(mirrored(&harness, WABA).await, none);

    harness.advance(TimeDelta::minutes(1)); // ad account + 10m
    let all = names(&[
        ("spring_sale", true),
        ("welcome_back", true),
        ("order_update", false),
    ]);
    assert_eq!(mirrored(&harness, WABA).await, all);
    let edge = harness.node(&format!("{WABA}/message_templates")).await;
    let spring: &Value = &edge["data"][0];
    assert_eq!(spring["ad_account_id"], "84110000001");
    assert_eq!(spring["ad_id"], "714130000001");
    harness.stop().await;
}

#[tokio::test]
async fn a_template_change_restarts_its_mirror_and_only_marketing_is_mirrored() {
    let harness = Harness::start(vec![scenario("happy_path")]).await;
    harness.post("4100000001/onboard_partners_to_mm_lite").await;
    harness.advance(TimeDelta::minutes(2 + 11));
    assert_eq!(
        mirrored(&harness, WABA).await[0],
        ("spring_sale".to_owned(), true)
    );

    let change = |category: &str| json!({"id": "4130000001", "name": "spring_sale", "language": "pt_BR", "category": category});
    let templates = format!("/sim/wabas/{WABA}/templates");
    let (status, body) = harness.control(&templates, change("UTILITY")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        mirrored(&harness, WABA).await[0],
        ("spring_sale".to_owned(), false)
    );
    harness.advance(TimeDelta::minutes(30));
    assert_eq!(
        mirrored(&harness, WABA).await[0],
        ("spring_sale".to_owned(), false)
    );

    harness.control(&templates, change("MARKETING")).await;
    harness.advance(TimeDelta::minutes(10) - TimeDelta::seconds(1));
    assert_eq!(
        mirrored(&harness, WABA).await[0],
        ("spring_sale".to_owned(), false)
    );
    harness.advance(TimeDelta::seconds(1));
    assert_eq!(
        mirrored(&harness, WABA).await[0],
        ("spring_sale".to_owned(), true)
    );

    // A new marketing template waits its own window.
    let (status, body) = harness
        .control(
            &templates,
            json!({"id": "4130000009", "name": "flash_sale", "language": "pt_BR", "category": "MARKETING"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        mirrored(&harness, WABA).await[3],
        ("flash_sale".to_owned(), false)
    );
    harness.advance(TimeDelta::minutes(10));
    assert_eq!(
        mirrored(&harness, WABA).await[3],
        ("flash_sale".to_owned(), true)
    );

    // Two template_category_update webhooks, recorded after the MM_LITE_TERMS_SIGNED one.
    let deliveries = harness.sim.deliveries();
    let fields: Vec<&str> = deliveries.iter().map(|d| d.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "account_update",
            "template_category_update",
            "template_category_update"
        ]
    );
    let body: Value = serde_json::from_str(&deliveries[1].body).unwrap();
    assert_eq!(
        body["entry"][0]["changes"][0]["value"],
        json!({"message_template_id": 4130000001u64, "message_template_name": "spring_sale",
               "message_template_language": "pt_BR", "previous_category": "MARKETING", "new_category": "UTILITY"})
    );

    let (status, body) = harness
        .control(
            &templates,
            json!({"id": "x", "name": "a", "language": "en", "category": "MARKETING"}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = harness
        .control(
            "/sim/wabas/4110000001/templates",
            json!({"id": "1", "name": "a", "language": "en", "category": "PROMO"}),
        )
        .await;
    assert_eq!(status, 400);
    harness.stop().await;
}

#[tokio::test]
async fn each_reason_of_ineligibility_has_its_status() {
    let harness = Harness::start(vec![
        scenario("obo_waba"),
        scenario("unsupported_country"),
        scenario("restricted_waba"),
        scenario("business_app_number"),
        inline("52", |json| {
            json["business"]["subdivision"] = json!("UA-43")
        }),
        inline("53", |json| {
            json["business"]["wabas"][0]["tax_country"] = json!("SY")
        }),
        inline("54", |json| {
            json["business"]["wabas"][0]["phone_numbers"][0]["country"] = json!("IR")
        }),
        inline("55", |json| {
            json["business"]["wabas"][0]["account_status"] = json!("DISABLED")
        }),
        inline("56", |json| {
            // Several reasons at once: OBO comes first.
            let waba = &mut json["business"]["wabas"][0];
            waba["ownership_type"] = json!("ON_BEHALF_OF");
            waba["account_status"] = json!("RESTRICTED");
        }),
    ])
    .await;
    for (waba, expected) in [
        ("4210000001", "INELIGIBLE_ON_BEHALF_OF_WABA"),
        ("4210000002", "ELIGIBLE"),
        ("4310000001", "INELIGIBLE_COUNTRY_NOT_SUPPORTED"),
        ("4410000001", "INELIGIBLE_INACTIVE_OR_RESTRICTED"),
        ("4510000001", "INELIGIBLE_USING_WHATSAPP_BUSINESS_APP"),
        ("5210000001", "INELIGIBLE_COUNTRY_NOT_SUPPORTED"),
        ("5310000001", "INELIGIBLE_COUNTRY_NOT_SUPPORTED"),
        ("5410000001", "INELIGIBLE_COUNTRY_NOT_SUPPORTED"),
        ("5510000001", "INELIGIBLE_INACTIVE_OR_RESTRICTED"),
        ("5610000001", "INELIGIBLE_ON_BEHALF_OF_WABA"),
    ] {
        assert_eq!(status_of(&harness, waba).await, expected, "WABA {waba}");
    }

    // An ineligible WABA stays so after the signature: no ad account, no onboarding.
    harness.post("4400000001/onboard_partners_to_mm_lite").await;
    harness.advance(TimeDelta::hours(1));
    let waba = harness.node("4410000001").await;
    assert_eq!(
        waba["marketing_messages_onboarding_status"],
        "INELIGIBLE_INACTIVE_OR_RESTRICTED"
    );
    assert!(waba.get("ad_account_id").is_none());
    let business = harness.node("4400000001").await;
    assert_eq!(
        business["marketing_messages_onboarding_status"]["status"],
        "TERM_OF_SERVICE_SIGNED"
    );
    harness.stop().await;
}

#[tokio::test]
async fn a_restriction_after_enablement_suspends_the_waba_until_it_is_reinstated() {
    let harness = Harness::start(vec![scenario("restriction_after_enablement")]).await;
    let waba = "4610000001";
    harness.post("4600000001/onboard_partners_to_mm_lite").await;
    harness.advance(TimeDelta::minutes(2 + 30) - TimeDelta::seconds(1));
    assert_eq!(status_of(&harness, waba).await, "ONBOARDED");
    harness.advance(TimeDelta::seconds(1)); // signed + 30m
    let node = harness.node(waba).await;
    assert_eq!(node["account_status"], "RESTRICTED");
    assert_eq!(
        node["marketing_messages_onboarding_status"],
        "INELIGIBLE_INACTIVE_OR_RESTRICTED"
    );
    assert_eq!(node["ad_account_id"], "84610000001", "the ad account stays");

    harness.advance(TimeDelta::minutes(20)); // signed + 50m
    let node = harness.node(waba).await;
    assert_eq!(node["account_status"], "ACTIVE");
    assert_eq!(node["marketing_messages_onboarding_status"], "ONBOARDED");

    let events: Vec<(String, i64)> = harness
        .sim
        .deliveries()
        .iter()
        .map(|delivery| {
            let body: Value = serde_json::from_str(&delivery.body).unwrap();
            let entry = &body["entry"][0];
            (
                entry["changes"][0]["value"]["event"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
                entry["time"].as_i64().unwrap(),
            )
        })
        .collect();
    let signed = crate::support::start_time() + TimeDelta::minutes(2);
    assert_eq!(
        events,
        [
            ("MM_LITE_TERMS_SIGNED".to_owned(), signed.timestamp()),
            (
                "ACCOUNT_RESTRICTION".to_owned(),
                (signed + TimeDelta::minutes(30)).timestamp()
            ),
        ]
    );
    let restriction: Value = serde_json::from_str(&harness.sim.deliveries()[1].body).unwrap();
    assert_eq!(
        restriction["entry"][0]["changes"][0]["value"]["restriction_info"],
        json!([{"restriction_type": "RESTRICTED_ADD_PHONE_NUMBER_ACTION"}])
    );
    harness.stop().await;
}

#[tokio::test]
async fn the_account_status_changes_when_told_with_its_webhook() {
    let harness = Harness::start(vec![scenario("happy_path")]).await;
    let route = format!("/sim/wabas/{WABA}/account_status");
    let (status, body) = harness
        .control(
            &route,
            json!({"status": "DISABLED", "event": "DISABLED_UPDATE"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["marketing_messages_onboarding_status"],
        "INELIGIBLE_INACTIVE_OR_RESTRICTED"
    );
    assert_eq!(
        status_of(&harness, WABA).await,
        "INELIGIBLE_INACTIVE_OR_RESTRICTED"
    );

    // Signed while disabled: not enabled; reinstated later: enabled from then on.
    harness.post("4100000001/onboard_partners_to_mm_lite").await;
    harness.advance(TimeDelta::minutes(5));
    assert!(harness.node(WABA).await.get("ad_account_id").is_none());
    harness.control(&route, json!({"status": "ACTIVE"})).await;
    assert_eq!(status_of(&harness, WABA).await, "PENDING_INTERNAL_SETUP");
    harness.advance(TimeDelta::minutes(10));
    assert_eq!(status_of(&harness, WABA).await, "ONBOARDED");

    let (status, _) = harness.control(&route, json!({"status": "BANNED"})).await;
    assert_eq!(status, 400);
    let (status, _) = harness
        .control("/sim/wabas/77/account_status", json!({"status": "ACTIVE"}))
        .await;
    assert_eq!(status, 404);
    let events: Vec<String> = harness
        .sim
        .deliveries()
        .iter()
        .map(|delivery| serde_json::from_str::<Value>(&delivery.body).unwrap()["entry"][0]["changes"][0]["value"]["event"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(events, ["DISABLED_UPDATE", "MM_LITE_TERMS_SIGNED"]);
    harness.stop().await;
}

#[tokio::test]
async fn a_scenario_event_can_change_a_template_after_the_signature() {
    let changing = inline("58", |json| {
        json["events"] = json!([{
            "after_terms_signed": "1h", "waba_id": "5810000001",
            "template": {"id": "5830000001", "name": "promo", "language": "en_US", "category": "UTILITY"}
        }]);
    });
    let harness = Harness::start(vec![changing]).await;
    harness.post("5800000001/onboard_partners_to_mm_lite").await;
    harness.advance(TimeDelta::minutes(2 + 11));
    assert_eq!(
        mirrored(&harness, "5810000001").await,
        names(&[("promo", true)])
    );
    harness.advance(TimeDelta::hours(1));
    assert_eq!(
        mirrored(&harness, "5810000001").await,
        names(&[("promo", false)])
    );
    let fields: Vec<String> = harness
        .sim
        .deliveries()
        .into_iter()
        .map(|d| d.field)
        .collect();
    assert_eq!(fields, ["account_update", "template_category_update"]);
    harness.stop().await;
}
