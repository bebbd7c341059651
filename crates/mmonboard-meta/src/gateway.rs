//! What mmonboard asks of Meta, as a trait: the process manager depends on this, never on HTTP. The answers are
//! domain-typed snapshots, checked on the way in: an id or country Meta sends that the domain cannot accept is an
//! error naming the value, and Meta's status values stay open enums (an unknown one is kept, never a crash).

use std::future::Future;

use chrono::{DateTime, Utc};
use mmonboard_domain::InvalidValue;
use mmonboard_domain::country::{CountryCode, Subdivision};
use mmonboard_domain::facts::{
    AccountStatus, OwnershipType, PhoneNumberFacts, PortfolioFacts, TemplateCategory, TermsStatus,
    WabaFacts, WabaOnboardingStatus,
};
use mmonboard_domain::ids::{
    AdAccountId, PhoneNumberId, PortfolioId, TemplateId, TemplateLanguage, TemplateName, WabaId,
};

use crate::error::MetaError;
use crate::wire;

/// A business portfolio as Meta reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusinessSnapshot {
    pub id: PortfolioId,
    pub name: String,
    pub website: Option<String>,
    pub country: CountryCode,
    pub subdivision: Option<Subdivision>,
    pub enable_offered: bool,
    pub terms_status: TermsStatus,
    pub terms_status_time: Option<DateTime<Utc>>,
    pub waba_ids: Vec<WabaId>,
}

/// Where an OBO to shared transfer stands at Meta.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OboIntent {
    /// Meta's status, `PENDING` or `COMPLETED` (kept verbatim).
    pub status: String,
    pub requested_at: Option<DateTime<Utc>>,
}

/// A WABA as Meta reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WabaSnapshot {
    pub facts: WabaFacts,
    pub ad_account_id: Option<AdAccountId>,
    pub obo_intent: Option<OboIntent>,
}

impl WabaSnapshot {
    pub fn meta_status(&self) -> Option<&WabaOnboardingStatus> {
        self.facts.meta_status.as_ref()
    }
}

/// A message template as Meta reports it, with its mirrored ad once Meta created it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateSnapshot {
    pub id: TemplateId,
    pub name: TemplateName,
    pub language: TemplateLanguage,
    pub category: TemplateCategory,
    pub ad_id: Option<String>,
    pub ad_account_id: Option<AdAccountId>,
}

/// How a terms request (Intent API) ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TermsRequestOutcome {
    /// Meta accepted the request.
    Sent { request_id: String },
    /// Meta says an invitation is already out (1752041): someone else's, or an earlier one.
    AlreadyInvited,
    /// Our request's answer was lost (no answer, or a 5xx) and reading back shows it went through: sent, but
    /// Meta's request id is unknown.
    SentAnswerLost,
}

/// How a `set_obo_mobility_intent` ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OboIntentOutcome {
    Requested,
    /// Reading back showed the transfer had already been asked for (the first answer was lost).
    AlreadyRequested,
}

/// What mmonboard asks of Meta's Graph API.
pub trait MetaGateway: Send + Sync + 'static {
    /// `GET /{business_id}?fields=…`.
    fn business(
        &self,
        business_id: &PortfolioId,
    ) -> impl Future<Output = Result<BusinessSnapshot, MetaError>> + Send;

    /// `GET /{waba_id}?fields=…`.
    fn waba(
        &self,
        waba_id: &WabaId,
    ) -> impl Future<Output = Result<WabaSnapshot, MetaError>> + Send;

    /// `GET /{waba_id}/message_templates?fields=…` (every page).
    fn templates(
        &self,
        waba_id: &WabaId,
    ) -> impl Future<Output = Result<Vec<TemplateSnapshot>, MetaError>> + Send;

    /// `POST /{waba_id}/set_obo_mobility_intent`: start an OBO to shared transfer.
    fn set_obo_mobility_intent(
        &self,
        waba_id: &WabaId,
    ) -> impl Future<Output = Result<OboIntentOutcome, MetaError>> + Send;

    /// `POST /{business_id}/onboard_partners_to_mm_lite`: ask the portfolio's admin to accept the terms.
    fn request_terms(
        &self,
        business_id: &PortfolioId,
    ) -> impl Future<Output = Result<TermsRequestOutcome, MetaError>> + Send;
}

/// Everything an eligibility check needs: the portfolio, then each of its WABAs.
pub async fn portfolio_facts<G: MetaGateway + ?Sized>(
    gateway: &G,
    business_id: &PortfolioId,
) -> Result<(BusinessSnapshot, PortfolioFacts), MetaError> {
    let business = gateway.business(business_id).await?;
    let mut wabas = Vec::with_capacity(business.waba_ids.len());
    for waba_id in &business.waba_ids {
        wabas.push(gateway.waba(waba_id).await?.facts);
    }
    let facts = PortfolioFacts {
        business_country: business.country,
        business_subdivision: business.subdivision.clone(),
        enable_offered: business.enable_offered,
        terms_status: Some(business.terms_status.clone()),
        wabas,
    };
    Ok((business, facts))
}

fn checked<T>(operation: &str, parsed: Result<T, InvalidValue>) -> Result<T, MetaError> {
    parsed.map_err(|source| MetaError::InvalidValue {
        operation: operation.to_owned(),
        source,
    })
}

/// A time Meta reports: RFC 3339; the Graph API's own form with the offset's colon left out
/// (`2025-10-07T09:00:00+0000`); or a plain date (`2025-10-07`, as Meta's examples of the portfolio's
/// `marketing_messages_onboarding_status.time` show it), read as that day's start in UTC.
fn time(operation: &str, value: Option<&str>) -> Result<Option<DateTime<Utc>>, MetaError> {
    value
        .map(|text| {
            DateTime::parse_from_rfc3339(text)
                .or_else(|_| DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%z"))
                .map(|time| time.with_timezone(&Utc))
                .or_else(|error| {
                    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
                        .map(|day| day.and_time(chrono::NaiveTime::MIN).and_utc())
                        .map_err(|_| error)
                })
                .map_err(|error| MetaError::UnexpectedAnswer {
                    operation: operation.to_owned(),
                    status: 200,
                    message: format!(
                        "time {text:?} is neither RFC 3339, the Graph API's +0000 form, nor a YYYY-MM-DD date: {error}"
                    ),
                })
        })
        .transpose()
}

impl BusinessSnapshot {
    pub fn from_wire(operation: &str, node: wire::BusinessNode) -> Result<Self, MetaError> {
        Ok(Self {
            id: checked(operation, PortfolioId::parse(&node.id))?,
            name: node.name,
            website: node.website,
            country: checked(operation, CountryCode::parse(&node.country))?,
            subdivision: node
                .subdivision
                .as_deref()
                .map(|value| checked(operation, Subdivision::parse(value)))
                .transpose()?,
            enable_offered: node.enable_offered,
            terms_status: TermsStatus::from(node.marketing_messages_onboarding_status.status),
            terms_status_time: time(
                operation,
                node.marketing_messages_onboarding_status.time.as_deref(),
            )?,
            waba_ids: node
                .owned_whatsapp_business_accounts
                .data
                .iter()
                .map(|waba| checked(operation, WabaId::parse(&waba.id)))
                .collect::<Result<_, _>>()?,
        })
    }
}

impl WabaSnapshot {
    pub fn from_wire(operation: &str, node: wire::WabaNode) -> Result<Self, MetaError> {
        let phone_numbers = node
            .phone_numbers
            .data
            .into_iter()
            .map(|phone| {
                Ok(PhoneNumberFacts {
                    phone_number_id: checked(operation, PhoneNumberId::parse(&phone.id))?,
                    country: checked(operation, CountryCode::parse(&phone.country))?,
                    registered_on_cloud_api: phone.platform_type == "CLOUD_API",
                    uses_business_app: phone.is_on_biz_app,
                })
            })
            .collect::<Result<_, MetaError>>()?;
        Ok(Self {
            facts: WabaFacts {
                waba_id: checked(operation, WabaId::parse(&node.id))?,
                ownership_type: OwnershipType::from(node.ownership_type),
                account_status: AccountStatus::from(node.account_status),
                tax_country: checked(operation, CountryCode::parse(&node.tax_country))?,
                phone_numbers,
                meta_status: Some(WabaOnboardingStatus::from(
                    node.marketing_messages_onboarding_status,
                )),
            },
            ad_account_id: node
                .ad_account_id
                .as_deref()
                .map(|value| checked(operation, AdAccountId::parse(value)))
                .transpose()?,
            obo_intent: node
                .obo_mobility_intent
                .map(|intent| {
                    Ok::<_, MetaError>(OboIntent {
                        requested_at: time(operation, Some(&intent.requested_time))?,
                        status: intent.status,
                    })
                })
                .transpose()?,
        })
    }
}

impl TemplateSnapshot {
    pub fn from_wire(operation: &str, node: wire::TemplateNode) -> Result<Self, MetaError> {
        Ok(Self {
            id: checked(operation, TemplateId::parse(&node.id))?,
            name: checked(operation, TemplateName::parse(&node.name))?,
            language: checked(operation, TemplateLanguage::parse(&node.language))?,
            category: TemplateCategory::from(node.category),
            ad_id: node.ad_id,
            ad_account_id: node
                .ad_account_id
                .as_deref()
                .map(|value| checked(operation, AdAccountId::parse(value)))
                .transpose()?,
        })
    }
}
