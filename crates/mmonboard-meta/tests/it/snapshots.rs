//! Meta's JSON becomes domain types on the way in: known values typed, unknown status values kept verbatim, a
//! value the domain cannot accept refused with an error naming it. And the gateway asks on the configured base
//! path and version, for exactly the fields `wire.rs` lists.

use std::time::Duration;

use chrono::{DateTime, Utc};
use mmonboard_domain::country::{CountryCode, Subdivision};
use mmonboard_domain::facts::{
    AccountStatus, OwnershipType, PhoneNumberFacts, PortfolioFacts, TemplateCategory, TermsStatus,
    WabaFacts, WabaOnboardingStatus,
};
use mmonboard_domain::ids::{
    AdAccountId, PhoneNumberId, TemplateId, TemplateLanguage, TemplateName, WabaId,
};
use mmonboard_meta::http::AccessToken;
use mmonboard_meta::wire::{self, BUSINESS_FIELDS, TEMPLATE_FIELDS, WABA_FIELDS};
use mmonboard_meta::{
    BusinessSnapshot, GatewayConfig, HttpGateway, MetaError, MetaGateway, OboIntent, RetryPolicy,
    TemplateSnapshot, WabaSnapshot, portfolio_facts,
};
use serde_json::{Value, json};

use crate::fixtures::{
    OBO_WABA, PORTFOLIO, SHARED_WABA, business, business_path, obo_waba, obo_waba_node, portfolio,
    shared_waba, shared_waba_node, templates, templates_path, waba_path,
};
use crate::stub::{Stub, TOKEN, gateway, ok};

fn at(text: &str) -> DateTime<Utc> {
    text.parse().expect("an RFC 3339 time")
}

fn country(code: &str) -> CountryCode {
    CountryCode::parse(code).expect("a country")
}

fn phone(id: &str, code: &str, cloud_api: bool, biz_app: bool) -> PhoneNumberFacts {
    PhoneNumberFacts {
        phone_number_id: PhoneNumberId::parse(id).expect("a phone number id"),
        country: country(code),
        registered_on_cloud_api: cloud_api,
        uses_business_app: biz_app,
    }
}

fn obo_facts() -> WabaFacts {
    WabaFacts {
        waba_id: obo_waba(),
        ownership_type: OwnershipType::OnBehalfOf,
        account_status: AccountStatus::Active,
        tax_country: country("BR"),
        phone_numbers: vec![
            phone("4120000001", "BR", true, false),
            phone("4120000002", "PT", false, true),
        ],
        meta_status: Some(WabaOnboardingStatus::IneligibleOnBehalfOfWaba),
    }
}

fn shared_facts() -> WabaFacts {
    WabaFacts {
        waba_id: shared_waba(),
        ownership_type: OwnershipType::ClientOwned,
        account_status: AccountStatus::Active,
        tax_country: country("BR"),
        phone_numbers: vec![phone("4120000003", "BR", true, false)],
        meta_status: Some(WabaOnboardingStatus::Onboarded),
    }
}

#[tokio::test]
async fn a_portfolio_and_its_wabas_become_portfolio_facts() {
    let stub = Stub::start().await;
    stub.on("GET", &business_path(), [ok(business("REQUEST_SENT"))])
        .on("GET", &waba_path(OBO_WABA), [ok(obo_waba_node(true))])
        .on("GET", &waba_path(SHARED_WABA), [ok(shared_waba_node())]);
    let (snapshot, facts) = portfolio_facts(&gateway(&stub), &portfolio())
        .await
        .expect("facts");
    assert_eq!(
        snapshot,
        BusinessSnapshot {
            id: portfolio(),
            name: "Loja Aurora".into(),
            website: Some("https://lojaaurora.example".into()),
            country: country("BR"),
            subdivision: Some(Subdivision::parse("BR-SP").expect("a subdivision")),
            enable_offered: true,
            terms_status: TermsStatus::RequestSent,
            terms_status_time: Some(at("2026-11-25T09:00:00Z")),
            waba_ids: vec![obo_waba(), shared_waba()],
        }
    );
    assert_eq!(
        facts,
        PortfolioFacts {
            business_country: country("BR"),
            business_subdivision: Some(Subdivision::parse("BR-SP").expect("a subdivision")),
            enable_offered: true,
            terms_status: Some(TermsStatus::RequestSent),
            wabas: vec![obo_facts(), shared_facts()],
        }
    );
    // One read of the business, one of each WABA, in the portfolio's order.
    let paths: Vec<String> = stub.seen().into_iter().map(|seen| seen.path).collect();
    assert_eq!(
        paths,
        [business_path(), waba_path(OBO_WABA), waba_path(SHARED_WABA)]
    );
}

#[tokio::test]
async fn a_waba_snapshot_carries_its_ad_account_and_obo_transfer() {
    let stub = Stub::start().await;
    stub.on("GET", &waba_path(OBO_WABA), [ok(obo_waba_node(true))])
        .on("GET", &waba_path(SHARED_WABA), [ok(shared_waba_node())]);
    let gateway = gateway(&stub);
    assert_eq!(
        gateway.waba(&obo_waba()).await.expect("the OBO WABA"),
        WabaSnapshot {
            facts: obo_facts(),
            ad_account_id: None,
            obo_intent: Some(OboIntent {
                status: "PENDING".into(),
                requested_at: Some(at("2026-11-25T10:00:00Z")),
            }),
        }
    );
    let shared = gateway.waba(&shared_waba()).await.expect("the shared WABA");
    assert_eq!(
        shared,
        WabaSnapshot {
            facts: shared_facts(),
            ad_account_id: Some(AdAccountId::parse("84110000002").expect("an ad account id")),
            obo_intent: None,
        }
    );
    assert_eq!(shared.meta_status(), Some(&WabaOnboardingStatus::Onboarded));
}

#[tokio::test]
async fn templates_become_snapshots_with_their_mirrored_ad() {
    let stub = Stub::start().await;
    stub.on("GET", &templates_path(SHARED_WABA), [ok(templates())]);
    let snapshots = gateway(&stub)
        .templates(&shared_waba())
        .await
        .expect("templates");
    assert_eq!(
        snapshots,
        [
            TemplateSnapshot {
                id: TemplateId::parse("4130000001").expect("an id"),
                name: TemplateName::parse("black_friday").expect("a name"),
                language: TemplateLanguage::parse("pt_BR").expect("a language"),
                category: TemplateCategory::Marketing,
                ad_id: Some("714130000001".into()),
                ad_account_id: Some(AdAccountId::parse("84110000002").expect("an id")),
            },
            TemplateSnapshot {
                id: TemplateId::parse("4130000002").expect("an id"),
                name: TemplateName::parse("order_shipped").expect("a name"),
                language: TemplateLanguage::parse("pt_BR").expect("a language"),
                category: TemplateCategory::Utility,
                ad_id: None,
                ad_account_id: None,
            },
        ]
    );
    // No templates at all is an empty list, not an error.
    let stub = Stub::start().await;
    stub.on(
        "GET",
        &templates_path(SHARED_WABA),
        [ok(json!({"data": []}))],
    );
    assert_eq!(
        gateway(&stub)
            .templates(&shared_waba())
            .await
            .expect("none"),
        []
    );
}

#[tokio::test]
async fn the_terms_status_time_may_be_a_plain_date_as_in_metas_examples() {
    // (what Meta answers, what the snapshot holds); Meta's documented examples show `"time": "2025-10-07"`.
    for (time, expected) in [
        (json!("2025-10-07"), Ok(Some(at("2025-10-07T00:00:00Z")))),
        (
            json!("2025-10-07T12:30:00-03:00"),
            Ok(Some(at("2025-10-07T15:30:00Z"))),
        ),
        (
            json!("2025-10-07T09:00:00+0000"),
            Ok(Some(at("2025-10-07T09:00:00Z"))),
        ),
        (json!(null), Ok(None)),
        (json!("07/10/2025"), Err("07/10/2025")),
    ] {
        let mut answer = business("TERM_OF_SERVICE_SIGNED");
        answer["marketing_messages_onboarding_status"]["time"] = time;
        let stub = Stub::start().await;
        stub.on("GET", &business_path(), [ok(answer)]);
        let read = gateway(&stub).business(&portfolio()).await;
        match (read, expected) {
            (Ok(snapshot), Ok(expected)) => assert_eq!(snapshot.terms_status_time, expected),
            (Err(MetaError::UnexpectedAnswer { message, .. }), Err(named)) => {
                assert!(message.contains(named), "{message}")
            }
            (read, expected) => panic!("{read:?}, expected {expected:?}"),
        }
    }
}

#[tokio::test]
async fn templates_are_read_across_every_page() {
    // Meta pages edges: `paging.next` is there while more follow, `paging.cursors.after` says where.
    let first = json!({
        "data": templates()["data"].clone(),
        "paging": {
            "cursors": {"before": "QVFIUb4", "after": "QVFIUaf1"},
            "next": "https://graph.facebook.com/v23.0/4110000002/message_templates?limit=2&after=QVFIUaf1"
        }
    });
    let last = json!({
        "data": [{"id": "4130000003", "name": "welcome_back", "language": "en_US", "category": "MARKETING"}],
        "paging": {"cursors": {"before": "QVFIUb5", "after": "QVFIUaf2"}}
    });
    let stub = Stub::start().await;
    stub.on("GET", &templates_path(SHARED_WABA), [ok(first), ok(last)]);
    let snapshots = gateway(&stub)
        .templates(&shared_waba())
        .await
        .expect("templates");
    let names: Vec<&str> = snapshots
        .iter()
        .map(|template| template.name.as_str())
        .collect();
    assert_eq!(names, ["black_friday", "order_shipped", "welcome_back"]);
    let seen = stub.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0].query.get("after"), None);
    assert_eq!(
        seen[1].query.get("after").map(String::as_str),
        Some("QVFIUaf1")
    );
    for request in &seen {
        assert_eq!(
            request.query.get("fields").map(String::as_str),
            Some(TEMPLATE_FIELDS)
        );
        assert_eq!(request.path, templates_path(SHARED_WABA));
    }
}

#[tokio::test]
async fn a_portfolios_wabas_and_a_wabas_phone_numbers_are_read_across_every_page() {
    // Expanded as fields, Meta gives an edge's first page only; the rest is read from the edge itself.
    let more = |after: &str, edge: &str| {
        json!({
            "cursors": {"before": "QVFIUb0", "after": after},
            "next": format!("https://graph.facebook.com/v23.0/x/{edge}?after={after}")
        })
    };
    let mut first_business = business("NOT_STARTED");
    first_business["owned_whatsapp_business_accounts"] = json!({
        "data": [{"id": OBO_WABA}],
        "paging": more("QVFIUw1", "owned_whatsapp_business_accounts")
    });
    let mut first_waba = obo_waba_node(false);
    first_waba["phone_numbers"]["data"] = json!([first_waba["phone_numbers"]["data"][0].clone()]);
    first_waba["phone_numbers"]["paging"] = more("QVFIUp1", "phone_numbers");
    let wabas_path = format!("{}/owned_whatsapp_business_accounts", business_path());
    let phones_path = format!("{}/phone_numbers", waba_path(OBO_WABA));
    let stub = Stub::start().await;
    stub.on("GET", &business_path(), [ok(first_business)])
        .on(
            "GET",
            &wabas_path,
            // The edge changed between the reads: the second page repeats an entry of the first.
            [ok(json!({"data": [{"id": OBO_WABA}, {"id": SHARED_WABA}], "paging": {"cursors": {"before": "b", "after": "QVFIUw2"}}}))],
        )
        .on("GET", &waba_path(OBO_WABA), [ok(first_waba)])
        .on(
            "GET",
            &phones_path,
            [ok(json!({"data": [obo_waba_node(false)["phone_numbers"]["data"][1].clone()]}))],
        );
    let gateway = gateway(&stub);
    let business = gateway.business(&portfolio()).await.expect("the business");
    assert_eq!(business.waba_ids, [obo_waba(), shared_waba()]);
    let waba = gateway.waba(&obo_waba()).await.expect("the WABA");
    assert_eq!(waba.facts.phone_numbers, obo_facts().phone_numbers);
    let seen = stub.seen();
    let continued: Vec<(&str, Option<&str>, Option<&str>)> = seen
        .iter()
        .filter(|request| request.path == wabas_path || request.path == phones_path)
        .map(|request| {
            (
                request.path.rsplit('/').next().unwrap_or_default(),
                request.query.get("after").map(String::as_str),
                request.query.get("fields").map(String::as_str),
            )
        })
        .collect();
    assert_eq!(
        continued,
        [
            (
                "owned_whatsapp_business_accounts",
                Some("QVFIUw1"),
                Some("id")
            ),
            (
                "phone_numbers",
                Some("QVFIUp1"),
                Some(wire::PHONE_NUMBER_FIELDS)
            ),
        ]
    );
}

#[tokio::test]
async fn paging_that_does_not_move_forward_is_an_unexpected_answer() {
    let page = |after: Option<&str>| {
        let mut paging = json!({"next": "https://graph.facebook.com/v23.0/4110000002/message_templates?after=x"});
        if let Some(after) = after {
            paging["cursors"] = json!({"before": "b", "after": after});
        }
        ok(json!({"data": templates()["data"].clone(), "paging": paging}))
    };
    // (the pages Meta answers, the requests expected)
    for (pages, requests) in [
        (vec![page(None)], 1),
        (vec![page(Some("c1")), page(Some("c1"))], 2),
        // A cycle over more than one page is caught too.
        (
            vec![page(Some("c1")), page(Some("c2")), page(Some("c1"))],
            3,
        ),
    ] {
        let stub = Stub::start().await;
        stub.on("GET", &templates_path(SHARED_WABA), pages);
        let failure = gateway(&stub)
            .templates(&shared_waba())
            .await
            .expect_err("a loop or a dead end");
        assert!(
            matches!(&failure, MetaError::UnexpectedAnswer { status: 200, message, .. } if message.contains("paging")),
            "{failure:?}"
        );
        assert_eq!(stub.count("GET", &templates_path(SHARED_WABA)), requests);
    }
}

#[tokio::test]
async fn unknown_status_values_are_kept_verbatim() {
    let mut unusual_business = business("AWAITING_SOMETHING_NEW");
    unusual_business["owned_whatsapp_business_accounts"] = json!({"data": [{"id": OBO_WABA}]});
    let mut unusual_waba = obo_waba_node(true);
    unusual_waba["ownership_type"] = json!("SHARED_SOMEHOW");
    unusual_waba["account_status"] = json!("UNDER_REVIEW");
    unusual_waba["marketing_messages_onboarding_status"] = json!("PENDING_SOMETHING_NEW");
    unusual_waba["obo_mobility_intent"]["status"] = json!("REVIEWING");
    // Fields Meta adds, or answers without being asked, are ignored.
    unusual_waba["currency"] = json!("BRL");
    unusual_waba["phone_numbers"]["paging"] = json!({"cursors": {"before": "a", "after": "b"}});
    let stub = Stub::start().await;
    stub.on("GET", &business_path(), [ok(unusual_business)])
        .on("GET", &waba_path(OBO_WABA), [ok(unusual_waba)])
        .on(
            "GET",
            &templates_path(OBO_WABA),
            [ok(json!({"data": [
                {"id": "4130000009", "name": "promo", "language": "es", "category": "PROMOTIONAL_NEW"}
            ]}))],
        );
    let gateway = gateway(&stub);
    let (business, facts) = portfolio_facts(&gateway, &portfolio())
        .await
        .expect("unknown values are not errors");
    assert_eq!(
        business.terms_status,
        TermsStatus::Unknown("AWAITING_SOMETHING_NEW".into())
    );
    let waba = &facts.wabas[0];
    assert_eq!(
        waba.meta_status,
        Some(WabaOnboardingStatus::Unknown(
            "PENDING_SOMETHING_NEW".into()
        ))
    );
    assert_eq!(
        waba.ownership_type,
        OwnershipType::Unknown("SHARED_SOMEHOW".into())
    );
    assert_eq!(
        waba.account_status,
        AccountStatus::Unknown("UNDER_REVIEW".into())
    );
    assert_eq!(
        gateway
            .waba(&obo_waba())
            .await
            .expect("the WABA")
            .obo_intent
            .expect("a transfer")
            .status,
        "REVIEWING"
    );
    assert_eq!(
        gateway.templates(&obo_waba()).await.expect("templates")[0].category,
        TemplateCategory::Unknown("PROMOTIONAL_NEW".into())
    );
}

/// `(what, path, answer, the value the error must name)`.
fn bad_answers() -> Vec<(&'static str, String, Value, &'static str)> {
    let with = |mut node: Value, pointer: &str, value: Value| {
        *node.pointer_mut(pointer).expect("the field exists") = value;
        node
    };
    vec![
        (
            "WABA tax country",
            waba_path(OBO_WABA),
            with(obo_waba_node(false), "/tax_country", json!("ZZZ")),
            "ZZZ",
        ),
        (
            "phone number country",
            waba_path(OBO_WABA),
            with(
                obo_waba_node(false),
                "/phone_numbers/data/1/country",
                json!("XQ"),
            ),
            "XQ",
        ),
        (
            "phone number id",
            waba_path(OBO_WABA),
            with(
                obo_waba_node(false),
                "/phone_numbers/data/0/id",
                json!("+55 11 5555"),
            ),
            "+55 11 5555",
        ),
        (
            "WABA ad account",
            waba_path(SHARED_WABA),
            with(
                shared_waba_node(),
                "/ad_account_id",
                json!("act_84110000002"),
            ),
            "act_84110000002",
        ),
        (
            "business country",
            business_path(),
            with(business("NOT_STARTED"), "/country", json!("ZZZ")),
            "ZZZ",
        ),
        (
            "business subdivision",
            business_path(),
            with(
                business("NOT_STARTED"),
                "/subdivision",
                json!("BR-SAOPAULO"),
            ),
            "BR-SAOPAULO",
        ),
        (
            "owned WABA id",
            business_path(),
            with(
                business("NOT_STARTED"),
                "/owned_whatsapp_business_accounts/data/1/id",
                json!("waba-2"),
            ),
            "waba-2",
        ),
        (
            "template id",
            templates_path(SHARED_WABA),
            with(templates(), "/data/1/id", json!("tmpl-2")),
            "tmpl-2",
        ),
    ]
}

#[tokio::test]
async fn a_value_the_domain_cannot_accept_is_an_invalid_value_naming_it() {
    for (what, path, answer, value) in bad_answers() {
        let stub = Stub::start().await;
        stub.on("GET", &path, [ok(answer)]);
        let gateway = gateway(&stub);
        let failure = if path == business_path() {
            gateway.business(&portfolio()).await.map(|_| ())
        } else if path.ends_with("/message_templates") {
            gateway.templates(&shared_waba()).await.map(|_| ())
        } else {
            let id = path.rsplit('/').next().expect("an id");
            gateway
                .waba(&WabaId::parse(id).expect("a WABA id"))
                .await
                .map(|_| ())
        }
        .expect_err(what);
        let MetaError::InvalidValue { operation, source } = &failure else {
            panic!("{what}: not an invalid value: {failure:?}");
        };
        assert_eq!(source.value, value, "{what}");
        assert!(
            operation.contains(PORTFOLIO) || operation.contains("WABA"),
            "{what}: {operation}"
        );
        let shown = failure.to_string();
        assert!(shown.contains(&format!("{value:?}")), "{what}: {shown}");
        assert!(
            !failure.is_retryable(),
            "{what}: asking again changes nothing"
        );
        assert_eq!(stub.count("GET", &path), 1, "{what}: asked once");
    }
}

#[tokio::test]
async fn an_answer_that_is_not_the_node_is_an_unexpected_answer_not_retried() {
    let mut no_enable_offered = business("NOT_STARTED");
    no_enable_offered
        .as_object_mut()
        .expect("an object")
        .remove("enable_offered");
    let mut bad_time = business("REQUEST_SENT");
    bad_time["marketing_messages_onboarding_status"]["time"] = json!("yesterday");
    for (answer, named) in [
        (no_enable_offered, "enable_offered"),
        (bad_time, "yesterday"),
        (json!([1, 2, 3]), "invalid type"),
    ] {
        let stub = Stub::start().await;
        stub.on("GET", &business_path(), [ok(answer)]);
        let failure = gateway(&stub)
            .business(&portfolio())
            .await
            .expect_err("not a business node");
        assert!(
            matches!(&failure, MetaError::UnexpectedAnswer { status: 200, message, .. } if message.contains(named)),
            "{named}: {failure:?}"
        );
        assert!(!failure.is_retryable());
        assert_eq!(stub.count("GET", &business_path()), 1);
    }
}

fn gateway_on(base: &str, version: &str) -> HttpGateway {
    HttpGateway::new(GatewayConfig {
        timeout: Duration::from_secs(2),
        retry: RetryPolicy {
            max_attempts: 1,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(5),
        },
        ..GatewayConfig::new(base, version, AccessToken::new(TOKEN)).expect("a valid configuration")
    })
    .expect("an HTTP client")
}

#[tokio::test]
async fn requests_go_to_the_configured_base_path_and_version_with_the_wire_field_lists() {
    // (base URL path, version, the prefix every request must have)
    let cases = [
        ("", "v23.0", "/v23.0"),
        ("/", "v23.0", "/v23.0"),
        ("/graph", "v24.1", "/graph/v24.1"),
        ("/graph/", "v24.1", "/graph/v24.1"),
        ("/proxy/meta", "v1.0", "/proxy/meta/v1.0"),
    ];
    for (base_path, version, prefix) in cases {
        let stub = Stub::start().await;
        let business = format!("{prefix}/{PORTFOLIO}");
        let waba = format!("{prefix}/{SHARED_WABA}");
        let templates_edge = format!("{prefix}/{SHARED_WABA}/message_templates");
        let terms = format!("{prefix}/{PORTFOLIO}/onboard_partners_to_mm_lite");
        let obo = format!("{prefix}/{OBO_WABA}/set_obo_mobility_intent");
        stub.on(
            "GET",
            &business,
            [ok(crate::fixtures::business("NOT_STARTED"))],
        )
        .on("GET", &waba, [ok(shared_waba_node())])
        .on("GET", &templates_edge, [ok(templates())])
        .on("POST", &terms, [ok(json!({"request_id": "mmreq-7"}))])
        .on("POST", &obo, [ok(json!({"success": true}))]);
        let gateway = gateway_on(&stub.base(base_path), version);
        gateway.business(&portfolio()).await.expect("business");
        gateway.waba(&shared_waba()).await.expect("WABA");
        gateway.templates(&shared_waba()).await.expect("templates");
        gateway.request_terms(&portfolio()).await.expect("terms");
        gateway
            .set_obo_mobility_intent(&obo_waba())
            .await
            .expect("transfer");

        let seen: Vec<(String, String, Option<String>)> = stub
            .seen()
            .into_iter()
            .map(|seen| (seen.method, seen.path, seen.query.get("fields").cloned()))
            .collect();
        let fields = |list: &str| Some(list.to_owned());
        assert_eq!(
            seen,
            [
                ("GET".into(), business, fields(BUSINESS_FIELDS)),
                ("GET".into(), waba, fields(WABA_FIELDS)),
                ("GET".into(), templates_edge, fields(TEMPLATE_FIELDS)),
                ("POST".into(), terms, None),
                ("POST".into(), obo, None),
            ],
            "base path {base_path:?}, version {version}"
        );
    }
}

#[test]
fn the_field_lists_are_exactly_the_fields_of_the_wire_types() {
    // A fully populated node of each wire type, serialised back: its keys are what the gateway reads, and
    // what it asks for must be the same set of fields.
    fn keys<T: serde::de::DeserializeOwned + serde::Serialize>(answer: Value) -> Vec<String> {
        let node: T = serde_json::from_value(answer).expect("a wire node");
        let Value::Object(fields) = serde_json::to_value(node).expect("serialises") else {
            panic!("not an object");
        };
        fields.keys().cloned().collect()
    }
    let mut waba = obo_waba_node(true);
    waba["ad_account_id"] = json!("84110000001");
    for (list, fields) in [
        (
            BUSINESS_FIELDS,
            keys::<wire::BusinessNode>(business("REQUEST_SENT")),
        ),
        (WABA_FIELDS, keys::<wire::WabaNode>(waba)),
        (
            TEMPLATE_FIELDS,
            keys::<wire::TemplateNode>(templates()["data"][0].clone()),
        ),
        (
            wire::PHONE_NUMBER_FIELDS,
            keys::<wire::PhoneNumberNode>(obo_waba_node(false)["phone_numbers"]["data"][0].clone()),
        ),
    ] {
        // A field expanded with its own fields (`phone_numbers{id,…}`) counts by its name.
        let mut listed: Vec<&str> = top_level(list)
            .into_iter()
            .map(|field| field.split('{').next().unwrap_or(field))
            .collect();
        listed.sort_unstable();
        let mut fields = fields;
        fields.sort_unstable();
        assert_eq!(listed, fields, "{list}");
    }
    // The phone numbers expanded on the WABA are the ones read from their own edge when they run on.
    assert!(
        WABA_FIELDS.contains(&format!("phone_numbers{{{}}}", wire::PHONE_NUMBER_FIELDS)),
        "{WABA_FIELDS}"
    );
}

/// `a,b{c,d},e` → `["a", "b{c,d}", "e"]`.
fn top_level(list: &str) -> Vec<&str> {
    let (mut fields, mut depth, mut start) = (Vec::new(), 0usize, 0);
    for (index, byte) in list.bytes().enumerate() {
        match byte {
            b'{' => depth += 1,
            b'}' => depth = depth.saturating_sub(1),
            b',' if depth == 0 => {
                fields.push(&list[start..index]);
                start = index + 1;
            }
            _ => {}
        }
    }
    fields.push(&list[start..]);
    fields
}
