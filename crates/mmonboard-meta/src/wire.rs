//! Meta's wire format: the JSON the Graph API answers with, as far as mmonboard reads it. The HTTP gateway
//! parses these and the simulator (`mmonboard meta-sim`) serves them, so the two can never drift apart.
//! `docs/meta-api.md` lists every path, field and error with an example.
//!
//! Status values stay strings here; they become the domain's open enums (unknown values kept) in the gateway.

use serde::{Deserialize, Serialize};

/// The Graph API version mmonboard was written against; configurable on the gateway.
pub const DEFAULT_GRAPH_API_VERSION: &str = "v23.0";

/// Whether `version` is a Graph API version as it appears in paths: `v<major>.<minor>`.
pub fn is_graph_api_version(version: &str) -> bool {
    version
        .strip_prefix('v')
        .and_then(|rest| rest.split_once('.'))
        .is_some_and(|(major, minor)| {
            !major.is_empty()
                && !minor.is_empty()
                && major.bytes().all(|b| b.is_ascii_digit())
                && minor.bytes().all(|b| b.is_ascii_digit())
        })
}

/// The fields mmonboard asks of a business portfolio.
pub const BUSINESS_FIELDS: &str = "id,name,website,country,subdivision,enable_offered,marketing_messages_onboarding_status,owned_whatsapp_business_accounts";
/// The fields mmonboard asks of a WABA.
pub const WABA_FIELDS: &str = "id,ownership_type,account_status,tax_country,marketing_messages_onboarding_status,ad_account_id,obo_mobility_intent,phone_numbers{id,country,platform_type,is_on_biz_app}";
/// The fields mmonboard asks of a WABA's phone numbers, when they continue on further pages.
pub const PHONE_NUMBER_FIELDS: &str = "id,country,platform_type,is_on_biz_app";
/// The edge of a business portfolio's own WABAs.
pub const BUSINESS_WABAS_EDGE: &str = "owned_whatsapp_business_accounts";
/// The fields mmonboard asks of a WABA's message templates.
pub const TEMPLATE_FIELDS: &str =
    "id,name,language,category,ad_id,ad_adset_id,ad_campaign_id,ad_account_id";

/// `{"data": [...], "paging": {...}}`: one page of a Graph API edge, whether read at `/{id}/{edge}` or
/// expanded as a field of its node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Edge<T> {
    pub data: Vec<T>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paging: Option<Paging>,
}

impl<T> Edge<T> {
    /// A whole edge on one page.
    pub fn whole(data: Vec<T>) -> Self {
        Self { data, paging: None }
    }

    /// The cursor of the page after this one, when Meta says one follows (`paging.next` is present only
    /// while more pages follow). `Err` when `next` comes without a cursor to ask for it with.
    pub fn next_cursor(&self) -> Result<Option<&str>, &'static str> {
        match &self.paging {
            Some(paging) if paging.next.is_some() => paging
                .cursors
                .as_ref()
                .and_then(|cursors| cursors.after.as_deref())
                .map(Some)
                .ok_or("paging.next without paging.cursors.after"),
            _ => Ok(None),
        }
    }
}

/// Cursor-based paging: `cursors.after` names the next page, `next` (a full URL) is there while one follows.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Paging {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursors: Option<Cursors>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Cursors {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

/// `{"id": "..."}`: a reference to another node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRef {
    pub id: String,
}

/// `marketing_messages_onboarding_status` of a business portfolio: `{status, time}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortfolioOnboardingStatus {
    /// `NOT_STARTED`, `REQUEST_SENT`, `TERM_OF_SERVICE_SIGNED`, or a value Meta added since.
    pub status: String,
    /// When the status last changed (RFC 3339), absent before anything happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
}

/// `GET /{business_id}?fields=BUSINESS_FIELDS`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BusinessNode {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub website: Option<String>,
    /// ISO 3166-1 alpha-2 country of the business address.
    pub country: String,
    /// ISO 3166-2 region of the business address, where Meta has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subdivision: Option<String>,
    /// Whether Meta offers the "enable" section of the MM API to this portfolio.
    pub enable_offered: bool,
    pub marketing_messages_onboarding_status: PortfolioOnboardingStatus,
    pub owned_whatsapp_business_accounts: Edge<NodeRef>,
}

/// One phone number of a WABA, as the `phone_numbers` field expands it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhoneNumberNode {
    pub id: String,
    /// ISO 3166-1 alpha-2 country of the number.
    pub country: String,
    /// `CLOUD_API` when the number is registered on Cloud API, `NOT_APPLICABLE` otherwise.
    pub platform_type: String,
    /// The number is (also) used in the WhatsApp Business app.
    pub is_on_biz_app: bool,
}

/// The OBO to shared transfer started by `set_obo_mobility_intent`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OboMobilityIntent {
    /// `PENDING` until the transfer completes, then `COMPLETED`.
    pub status: String,
    pub requested_time: String,
}

/// `GET /{waba_id}?fields=WABA_FIELDS`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WabaNode {
    pub id: String,
    /// `CLIENT_OWNED` or `ON_BEHALF_OF`.
    pub ownership_type: String,
    /// `ACTIVE`, `RESTRICTED`, `DISABLED`.
    pub account_status: String,
    pub tax_country: String,
    /// Meta's per-WABA verdict (`ELIGIBLE`, `ONBOARDED`, `INELIGIBLE_…`, `PENDING_…`).
    pub marketing_messages_onboarding_status: String,
    /// The read-only ad account Meta mirrors for the WABA once the portfolio is enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ad_account_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub obo_mobility_intent: Option<OboMobilityIntent>,
    pub phone_numbers: Edge<PhoneNumberNode>,
}

/// One entry of `GET /{waba_id}/message_templates?fields=TEMPLATE_FIELDS`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateNode {
    pub id: String,
    pub name: String,
    pub language: String,
    pub category: String,
    /// The mirrored ad of a marketing template, once Meta created it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ad_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ad_adset_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ad_campaign_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ad_account_id: Option<String>,
}

/// The answer to `POST /{business_id}/onboard_partners_to_mm_lite`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TermsRequestResponse {
    pub request_id: String,
}

/// The answer to a write with nothing to return (`set_obo_mobility_intent`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuccessResponse {
    pub success: bool,
}

/// `{"error": {...}}`: every Graph API failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    pub error: GraphErrorBody,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraphErrorBody {
    pub message: String,
    #[serde(rename = "type", default)]
    pub error_type: String,
    pub code: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_subcode: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fbtrace_id: Option<String>,
}
