//! Meta's answers as the Graph API (and `docs/meta-api.md`) spell them: one portfolio in Brazil with an OBO
//! WABA whose transfer is under way and a shared WABA that is onboarded.

use mmonboard_domain::ids::{PortfolioId, WabaId};
use serde_json::{Value, json};

pub const PORTFOLIO: &str = "4100000001";
pub const OBO_WABA: &str = "4110000001";
pub const SHARED_WABA: &str = "4110000002";

pub fn portfolio() -> PortfolioId {
    PortfolioId::parse(PORTFOLIO).expect("a portfolio id")
}

pub fn obo_waba() -> WabaId {
    WabaId::parse(OBO_WABA).expect("a WABA id")
}

pub fn shared_waba() -> WabaId {
    WabaId::parse(SHARED_WABA).expect("a WABA id")
}

/// `GET /{business_id}` with the portfolio's terms `status`.
pub fn business(status: &str) -> Value {
    json!({
        "id": PORTFOLIO,
        "name": "Loja Aurora",
        "website": "https://lojaaurora.example",
        "country": "BR",
        "subdivision": "BR-SP",
        "enable_offered": true,
        "marketing_messages_onboarding_status": {"status": status, "time": "2026-11-25T09:00:00+00:00"},
        "owned_whatsapp_business_accounts": {"data": [{"id": OBO_WABA}, {"id": SHARED_WABA}]}
    })
}

/// `GET /{waba_id}` of the OBO WABA: its transfer `PENDING` since 2026-11-25 10:00 when `transfer_started`.
pub fn obo_waba_node(transfer_started: bool) -> Value {
    let mut node = json!({
        "id": OBO_WABA,
        "ownership_type": "ON_BEHALF_OF",
        "account_status": "ACTIVE",
        "tax_country": "BR",
        "marketing_messages_onboarding_status": "INELIGIBLE_ON_BEHALF_OF_WABA",
        "phone_numbers": {"data": [
            {"id": "4120000001", "country": "BR", "platform_type": "CLOUD_API", "is_on_biz_app": false},
            {"id": "4120000002", "country": "PT", "platform_type": "NOT_APPLICABLE", "is_on_biz_app": true}
        ]}
    });
    if transfer_started {
        node["obo_mobility_intent"] =
            json!({"status": "PENDING", "requested_time": "2026-11-25T10:00:00+00:00"});
    }
    node
}

/// `GET /{waba_id}` of the shared WABA, onboarded, with its mirrored ad account.
pub fn shared_waba_node() -> Value {
    json!({
        "id": SHARED_WABA,
        "ownership_type": "CLIENT_OWNED",
        "account_status": "ACTIVE",
        "tax_country": "BR",
        "marketing_messages_onboarding_status": "ONBOARDED",
        "ad_account_id": "84110000002",
        "phone_numbers": {"data": [
            {"id": "4120000003", "country": "BR", "platform_type": "CLOUD_API", "is_on_biz_app": false}
        ]}
    })
}

/// `GET /{waba_id}/message_templates`: a mirrored marketing template and a utility one.
pub fn templates() -> Value {
    json!({"data": [
        {"id": "4130000001", "name": "black_friday", "language": "pt_BR", "category": "MARKETING",
         "ad_id": "714130000001", "ad_adset_id": "724130000001", "ad_campaign_id": "734130000001",
         "ad_account_id": "84110000002"},
        {"id": "4130000002", "name": "order_shipped", "language": "pt_BR", "category": "UTILITY"}
    ]})
}

pub fn business_path() -> String {
    format!("{}/{PORTFOLIO}", crate::stub::V)
}

pub fn waba_path(waba: &str) -> String {
    format!("{}/{waba}", crate::stub::V)
}

pub fn templates_path(waba: &str) -> String {
    format!("{}/{waba}/message_templates", crate::stub::V)
}

pub fn terms_path() -> String {
    format!("{}/{PORTFOLIO}/onboard_partners_to_mm_lite", crate::stub::V)
}

pub fn obo_intent_path() -> String {
    format!("{}/{OBO_WABA}/set_obo_mobility_intent", crate::stub::V)
}
