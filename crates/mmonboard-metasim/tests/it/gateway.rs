//! The real gateway reads the simulator: the two share one surface.

use mmonboard_domain::facts::{
    AccountStatus, OwnershipType, TemplateCategory, TermsStatus, WabaOnboardingStatus,
};
use mmonboard_domain::ids::{PortfolioId, WabaId};
use mmonboard_meta::http::AccessToken;
use mmonboard_meta::{
    GatewayConfig, HttpGateway, MetaGateway, OboIntentOutcome, TermsRequestOutcome,
};
use serde_json::json;

use crate::support::{Harness, TOKEN, VERSION, scenario};

fn gateway(harness: &Harness) -> HttpGateway {
    HttpGateway::new(GatewayConfig::new(&harness.base, VERSION, AccessToken::new(TOKEN)).unwrap())
        .unwrap()
}

#[tokio::test]
async fn the_http_gateway_reads_the_happy_path_into_snapshots() {
    let harness = Harness::start(vec![scenario("happy_path")]).await;
    let gateway = gateway(&harness);
    let business_id = PortfolioId::parse("4100000001").unwrap();
    let waba_id = WabaId::parse("4110000001").unwrap();

    let business = gateway.business(&business_id).await.unwrap();
    assert_eq!(business.id, business_id);
    assert_eq!(business.name, "Loja Aurora");
    assert_eq!(business.country.as_str(), "BR");
    assert_eq!(business.subdivision, None);
    assert!(business.enable_offered);
    assert_eq!(business.terms_status, TermsStatus::NotStarted);
    assert_eq!(business.terms_status_time, None);
    assert_eq!(business.waba_ids, std::slice::from_ref(&waba_id));

    let waba = gateway.waba(&waba_id).await.unwrap();
    assert_eq!(waba.facts.waba_id, waba_id);
    assert_eq!(waba.facts.ownership_type, OwnershipType::ClientOwned);
    assert_eq!(waba.facts.account_status, AccountStatus::Active);
    assert_eq!(waba.facts.tax_country.as_str(), "BR");
    assert_eq!(waba.facts.phone_numbers.len(), 1);
    assert!(waba.facts.phone_numbers[0].registered_on_cloud_api);
    assert!(!waba.facts.phone_numbers[0].uses_business_app);
    assert_eq!(waba.meta_status(), Some(&WabaOnboardingStatus::Eligible));
    assert_eq!(waba.ad_account_id, None);
    assert_eq!(waba.obo_intent, None);

    let templates = gateway.templates(&waba_id).await.unwrap();
    let categories: Vec<TemplateCategory> = templates.iter().map(|t| t.category.clone()).collect();
    assert_eq!(
        categories,
        [
            TemplateCategory::Marketing,
            TemplateCategory::Marketing,
            TemplateCategory::Utility
        ]
    );

    let (_, facts) = mmonboard_meta::portfolio_facts(&gateway, &business_id)
        .await
        .unwrap();
    assert_eq!(facts.wabas.len(), 1);

    assert!(matches!(
        gateway.request_terms(&business_id).await.unwrap(),
        TermsRequestOutcome::Sent { .. }
    ));
    assert_eq!(
        gateway.request_terms(&business_id).await.unwrap(),
        TermsRequestOutcome::AlreadyInvited
    );
    harness.advance(chrono::TimeDelta::minutes(13));
    let business = gateway.business(&business_id).await.unwrap();
    assert_eq!(business.terms_status, TermsStatus::TermOfServiceSigned);
    assert_eq!(
        business.terms_status_time,
        Some(crate::support::start_time() + chrono::TimeDelta::minutes(2))
    );
    let waba = gateway.waba(&waba_id).await.unwrap();
    assert_eq!(waba.meta_status(), Some(&WabaOnboardingStatus::Onboarded));
    assert_eq!(
        waba.ad_account_id.map(|id| id.to_string()),
        Some("84110000001".to_owned())
    );
    let templates = gateway.templates(&waba_id).await.unwrap();
    assert!(templates[0].ad_id.is_some() && templates[0].ad_account_id.is_some());
    assert!(templates[2].ad_id.is_none());
    harness.stop().await;
}

#[tokio::test]
async fn the_gateway_reads_back_a_write_whose_answer_was_lost() {
    let harness = Harness::start(vec![scenario("obo_waba")]).await;
    let gateway = gateway(&harness);
    for path in ["onboard_partners_to_mm_lite", "set_obo_mobility_intent"] {
        harness
            .control(
                "/sim/faults",
                json!({"method": "POST", "path_contains": path, "status": 500, "code": 1, "count": 1, "drop": true}),
            )
            .await;
    }
    let business_id = PortfolioId::parse("4200000001").unwrap();
    assert_eq!(
        gateway.request_terms(&business_id).await.unwrap(),
        TermsRequestOutcome::SentAnswerLost
    );
    let waba_id = WabaId::parse("4210000001").unwrap();
    assert_eq!(
        gateway.set_obo_mobility_intent(&waba_id).await.unwrap(),
        OboIntentOutcome::AlreadyRequested
    );
    let waba = gateway.waba(&waba_id).await.unwrap();
    assert_eq!(
        waba.obo_intent.map(|intent| intent.status),
        Some("PENDING".to_owned())
    );
    harness.stop().await;
}

#[tokio::test]
async fn edges_are_paged_like_meta_and_the_gateway_reads_every_page() {
    let many_phones = crate::support::inline("77", |json| {
        json["business"]["wabas"][0]["phone_numbers"] = json!([
            {"id": "7720000001", "country": "BR"},
            {"id": "7720000002", "country": "PT"},
            {"id": "7720000003", "country": "BR"}
        ]);
    });
    let scenarios = || {
        vec![
            scenario("obo_waba"),
            scenario("happy_path"),
            many_phones.clone(),
        ]
    };
    let whole = Harness::start(scenarios()).await;
    let mut config = crate::support::config();
    config.page_size = 1;
    let paged = Harness::start_with(scenarios(), config).await;

    // One entry a page: `paging.next` while more follow, the cursor to ask with, a bad cursor refused.
    let (status, first) = paged.get("4110000001/message_templates").await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["data"].as_array().map(Vec::len), Some(1));
    let after = first["paging"]["cursors"]["after"]
        .as_str()
        .unwrap()
        .to_owned();
    let next = first["paging"]["next"].as_str().unwrap();
    assert!(
        next.starts_with(&paged.graph_url("4110000001/message_templates")),
        "{next}"
    );
    let (_, second) = paged
        .get(&format!("4110000001/message_templates?after={after}"))
        .await;
    assert_ne!(second["data"][0]["id"], first["data"][0]["id"]);
    let (_, last) = paged
        .get(&format!(
            "4110000001/message_templates?after={}",
            second["paging"]["cursors"]["after"].as_str().unwrap()
        ))
        .await;
    assert_eq!(last["data"].as_array().map(Vec::len), Some(1));
    assert!(last["paging"].get("next").is_none(), "{last}");
    let (status, refused) = paged
        .get("4110000001/message_templates?after=not-a-cursor")
        .await;
    assert_eq!((status, &refused["error"]["code"]), (400, &json!(100)));

    // The gateway reads the same facts whatever the page size.
    for business in ["4200000001", "4100000001", "7700000001"] {
        let business = PortfolioId::parse(business).unwrap();
        let (_, expected) = mmonboard_meta::portfolio_facts(&gateway(&whole), &business)
            .await
            .unwrap();
        let (_, read) = mmonboard_meta::portfolio_facts(&gateway(&paged), &business)
            .await
            .unwrap();
        assert_eq!(read, expected);
        for waba in &expected.wabas {
            assert_eq!(
                gateway(&paged).templates(&waba.waba_id).await.unwrap(),
                gateway(&whole).templates(&waba.waba_id).await.unwrap()
            );
        }
    }
    let (_, facts) = mmonboard_meta::portfolio_facts(
        &gateway(&paged),
        &PortfolioId::parse("7700000001").unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(facts.wabas[0].phone_numbers.len(), 3);
    let (_, facts) = mmonboard_meta::portfolio_facts(
        &gateway(&paged),
        &PortfolioId::parse("4200000001").unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(facts.wabas.len(), 2);
    let edge_reads: Vec<String> = paged
        .sim
        .requests()
        .into_iter()
        .map(|request| request.path)
        .filter(|path| {
            path.ends_with("/owned_whatsapp_business_accounts") || path.ends_with("/phone_numbers")
        })
        .collect();
    assert!(
        edge_reads.contains(&"/4200000001/owned_whatsapp_business_accounts".to_owned())
            && edge_reads.contains(&"/7710000001/phone_numbers".to_owned()),
        "{edge_reads:?}"
    );
    whole.stop().await;
    paged.stop().await;
}
