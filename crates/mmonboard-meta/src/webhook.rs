//! Meta's webhooks: the `X-Hub-Signature-256` signature (HMAC-SHA256 of the raw body with the app secret) and
//! the notifications mmonboard acts on. `serve` verifies with these and `meta-sim` signs with them.

use hmac::{Hmac, KeyInit, Mac};
use mmonboard_domain::InvalidValue;
use mmonboard_domain::facts::TemplateCategory;
use mmonboard_domain::ids::{PortfolioId, TemplateId, TemplateLanguage, TemplateName, WabaId};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// The header Meta signs webhook deliveries with.
pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";

type HmacSha256 = Hmac<Sha256>;

/// The header value for `body` signed with `app_secret`: `sha256=<hex>`.
pub fn sign(app_secret: &[u8], body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(app_secret).expect("HMAC accepts keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Why a delivery's signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the request carries no X-Hub-Signature-256 header")]
    Missing,
    #[error("the X-Hub-Signature-256 header is not \"sha256=<64 hex digits>\"")]
    Malformed,
    #[error("the X-Hub-Signature-256 signature does not match the body signed with the app secret")]
    Mismatch,
}

/// Check `header` against `body` signed with `app_secret`, in constant time.
pub fn verify(app_secret: &[u8], body: &[u8], header: Option<&str>) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let hex_digest = header
        .trim()
        .strip_prefix("sha256=")
        .ok_or(SignatureError::Malformed)?;
    let digest = hex::decode(hex_digest).map_err(|_| SignatureError::Malformed)?;
    if digest.len() != 32 {
        return Err(SignatureError::Malformed);
    }
    let mut mac = HmacSha256::new_from_slice(app_secret).expect("HMAC accepts keys of any length");
    mac.update(body);
    mac.verify_slice(&digest)
        .map_err(|_| SignatureError::Mismatch)
}

/// The body of every webhook delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookPayload {
    pub object: String,
    pub entry: Vec<WebhookEntry>,
}

/// One entry: the object (a WABA for `whatsapp_business_account`) and what changed on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookEntry {
    pub id: String,
    #[serde(default)]
    pub time: Option<i64>,
    pub changes: Vec<WebhookChange>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookChange {
    pub field: String,
    pub value: serde_json::Value,
}

/// `waba_info` of an `account_update`: which WABA, owned by which business portfolio.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WabaInfo {
    pub waba_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_business_id: Option<String>,
}

/// The `value` of an `account_update` change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountUpdateValue {
    pub event: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waba_info: Option<WabaInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restriction_info: Option<serde_json::Value>,
    /// `DISABLED_UPDATE` only: `{"waba_ban_state": "DISABLE" | "SCHEDULE_FOR_DISABLE" | "REINSTATE",
    /// "waba_ban_date": "<free text>"}`. Kept as sent: a shape we do not expect must not cost the disablement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ban_info: Option<serde_json::Value>,
}

impl AccountUpdateValue {
    /// `ban_info.waba_ban_state`, when it is there and a string.
    pub fn ban_state(&self) -> Option<&str> {
        self.ban_info
            .as_ref()
            .and_then(|info| info.get("waba_ban_state"))
            .and_then(serde_json::Value::as_str)
    }
}

/// The `value` of a `template_category_update` change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateCategoryUpdateValue {
    pub message_template_id: serde_json::Value,
    pub message_template_name: String,
    pub message_template_language: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_category: Option<String>,
    pub new_category: String,
}

/// The `account_update` events mmonboard acts on (DOMAIN.md, "After enablement").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountEvent {
    /// `MM_LITE_TERMS_SIGNED`: the portfolio's admin signed the MM API terms (one per WABA).
    TermsSigned,
    /// `ACCOUNT_RESTRICTION`.
    Restricted,
    /// `DISABLED_UPDATE` with `ban_info.waba_ban_state` `DISABLE`, absent, or any state not below.
    Disabled,
    /// `DISABLED_UPDATE` with `SCHEDULE_FOR_DISABLE`: a warning, the WABA still works (not acted on).
    DisableScheduled,
    /// `DISABLED_UPDATE` with `REINSTATE`: Meta lifted the disablement. Not acted on directly: a suspended WABA
    /// comes back only when a new eligibility check passes (DOMAIN.md), which the process manager runs.
    Reinstated,
    /// `ACCOUNT_OFFBOARDED`.
    Offboarded,
    /// `PARTNER_REMOVED`.
    PartnerRemoved,
    /// Any other `account_update` event (kept as sent; acknowledged, not acted on).
    Other(String),
}

impl AccountEvent {
    /// The event of an `account_update` value, with `DISABLED_UPDATE` told apart by its `ban_info`. Any other
    /// ban state, or none readable, is taken as a disablement: the cautious reading (the WABA falls back to
    /// Cloud API until a new eligibility check passes).
    pub fn of(value: &AccountUpdateValue) -> Self {
        match (value.event.as_str(), value.ban_state()) {
            ("DISABLED_UPDATE", Some("REINSTATE")) => Self::Reinstated,
            ("DISABLED_UPDATE", Some("SCHEDULE_FOR_DISABLE")) => Self::DisableScheduled,
            (event, _) => Self::parse(event),
        }
    }

    /// The event named `event`, whatever its details.
    pub fn parse(event: &str) -> Self {
        match event {
            "MM_LITE_TERMS_SIGNED" => Self::TermsSigned,
            "ACCOUNT_RESTRICTION" => Self::Restricted,
            "DISABLED_UPDATE" => Self::Disabled,
            "ACCOUNT_OFFBOARDED" => Self::Offboarded,
            "PARTNER_REMOVED" => Self::PartnerRemoved,
            other => Self::Other(other.to_owned()),
        }
    }
}

/// One change of a delivery, checked and typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notification {
    AccountUpdate {
        waba_id: WabaId,
        /// The owning portfolio when Meta names it (`waba_info.owner_business_id`).
        business_id: Option<PortfolioId>,
        event: AccountEvent,
    },
    TemplateCategoryUpdate {
        waba_id: WabaId,
        template_id: TemplateId,
        name: TemplateName,
        language: TemplateLanguage,
        new_category: TemplateCategory,
    },
    /// A field mmonboard does not subscribe to: acknowledged, not acted on.
    Ignored { field: String },
}

/// Why a signed delivery could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("the webhook body is not a Meta webhook payload: {0}")]
    Json(String),
    #[error("webhook object {0:?} is not whatsapp_business_account")]
    Object(String),
    #[error("the {field} change of entry {entry} is malformed: {message}")]
    Change {
        entry: String,
        field: String,
        message: String,
    },
    #[error("webhook entry {entry}: {source}")]
    Value {
        entry: String,
        #[source]
        source: InvalidValue,
    },
}

impl WebhookPayload {
    pub fn parse(body: &[u8]) -> Result<Self, PayloadError> {
        serde_json::from_slice(body).map_err(|error| PayloadError::Json(error.to_string()))
    }

    /// Every change of every entry, typed, in delivery order; an error when any of them is malformed.
    pub fn notifications(&self) -> Result<Vec<Notification>, PayloadError> {
        self.each_notification()?.into_iter().collect()
    }

    /// Every change of every entry, each typed on its own: one malformed change does not hide the others.
    /// The outer error is for a payload that is not about WhatsApp Business Accounts at all.
    pub fn each_notification(
        &self,
    ) -> Result<Vec<Result<Notification, PayloadError>>, PayloadError> {
        if self.object != "whatsapp_business_account" {
            return Err(PayloadError::Object(self.object.clone()));
        }
        Ok(self
            .entry
            .iter()
            .flat_map(|entry| {
                entry
                    .changes
                    .iter()
                    .map(move |change| Self::notification(entry, change))
            })
            .collect())
    }

    fn notification(
        entry: &WebhookEntry,
        change: &WebhookChange,
    ) -> Result<Notification, PayloadError> {
        let value_error = |source| PayloadError::Value {
            entry: entry.id.clone(),
            source,
        };
        let malformed = |error: serde_json::Error| PayloadError::Change {
            entry: entry.id.clone(),
            field: change.field.clone(),
            message: error.to_string(),
        };
        Ok(match change.field.as_str() {
            "account_update" => {
                let value: AccountUpdateValue =
                    serde_json::from_value(change.value.clone()).map_err(malformed)?;
                let waba_id = value
                    .waba_info
                    .as_ref()
                    .map_or(entry.id.as_str(), |info| info.waba_id.as_str());
                Notification::AccountUpdate {
                    waba_id: WabaId::parse(waba_id).map_err(value_error)?,
                    business_id: value
                        .waba_info
                        .as_ref()
                        .and_then(|info| info.owner_business_id.as_deref())
                        .map(PortfolioId::parse)
                        .transpose()
                        .map_err(value_error)?,
                    event: AccountEvent::of(&value),
                }
            }
            "template_category_update" => {
                let value: TemplateCategoryUpdateValue =
                    serde_json::from_value(change.value.clone()).map_err(malformed)?;
                let template_id = match &value.message_template_id {
                    serde_json::Value::String(id) => id.clone(),
                    other => other.to_string(),
                };
                Notification::TemplateCategoryUpdate {
                    waba_id: WabaId::parse(&entry.id).map_err(value_error)?,
                    template_id: TemplateId::parse(&template_id).map_err(value_error)?,
                    name: TemplateName::parse(&value.message_template_name).map_err(value_error)?,
                    language: TemplateLanguage::parse(&value.message_template_language)
                        .map_err(value_error)?,
                    new_category: TemplateCategory::from(value.new_category),
                }
            }
            other => Notification::Ignored {
                field: other.to_owned(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_only_over_the_same_body_and_secret() {
        let header = sign(b"secret", b"{\"a\":1}");
        assert!(header.starts_with("sha256="));
        assert_eq!(verify(b"secret", b"{\"a\":1}", Some(&header)), Ok(()));
        assert_eq!(
            verify(b"secret", b"{\"a\":2}", Some(&header)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"other", b"{\"a\":1}", Some(&header)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(verify(b"secret", b"x", None), Err(SignatureError::Missing));
        assert_eq!(
            verify(b"secret", b"x", Some("sha1=abcd")),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify(b"secret", b"x", Some("sha256=zz")),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn account_updates_and_category_changes_are_typed() {
        let body = br#"{"object":"whatsapp_business_account","entry":[
            {"id":"1001","time":1700000000,"changes":[
                {"field":"account_update","value":{"event":"MM_LITE_TERMS_SIGNED","waba_info":{"waba_id":"1001","owner_business_id":"42"}}},
                {"field":"account_update","value":{"event":"SOMETHING_NEW"}},
                {"field":"template_category_update","value":{"message_template_id":3001,"message_template_name":"spring_sale","message_template_language":"en_US","previous_category":"UTILITY","new_category":"MARKETING"}},
                {"field":"messages","value":{}}
            ]}]}"#;
        let notifications = WebhookPayload::parse(body)
            .unwrap()
            .notifications()
            .unwrap();
        assert_eq!(notifications.len(), 4);
        assert_eq!(
            notifications[0],
            Notification::AccountUpdate {
                waba_id: WabaId::parse("1001").unwrap(),
                business_id: Some(PortfolioId::parse("42").unwrap()),
                event: AccountEvent::TermsSigned,
            }
        );
        assert!(matches!(
            &notifications[1],
            Notification::AccountUpdate { event: AccountEvent::Other(name), business_id: None, .. } if name == "SOMETHING_NEW"
        ));
        assert!(matches!(
            &notifications[2],
            Notification::TemplateCategoryUpdate { template_id, new_category: TemplateCategory::Marketing, .. } if template_id.as_str() == "3001"
        ));
        assert_eq!(
            notifications[3],
            Notification::Ignored {
                field: "messages".into()
            }
        );
    }

    #[test]
    fn a_disabled_update_is_told_apart_by_its_ban_state() {
        let body = br#"{"object":"whatsapp_business_account","entry":[{"id":"1001","time":1744823932,"changes":[
            {"field":"account_update","value":{"event":"DISABLED_UPDATE","ban_info":{"waba_ban_state":"DISABLE","waba_ban_date":"April 17, 2025"}}},
            {"field":"account_update","value":{"event":"DISABLED_UPDATE"}},
            {"field":"account_update","value":{"event":"DISABLED_UPDATE","ban_info":{"waba_ban_state":"SCHEDULE_FOR_DISABLE","waba_ban_date":"April 17, 2025"}}},
            {"field":"account_update","value":{"event":"DISABLED_UPDATE","ban_info":{"waba_ban_state":"REINSTATE","waba_ban_date":"April 17, 2025"}}},
            {"field":"account_update","value":{"event":"DISABLED_UPDATE","ban_info":{"waba_ban_state":"SOMETHING_NEW"}}},
            {"field":"account_update","value":{"event":"DISABLED_UPDATE","ban_info":{"waba_ban_state":["odd"],"waba_ban_date":1744823932}}}
        ]}]}"#;
        let events: Vec<AccountEvent> = WebhookPayload::parse(body)
            .unwrap()
            .notifications()
            .unwrap()
            .into_iter()
            .map(|notification| match notification {
                Notification::AccountUpdate { waba_id, event, .. } => {
                    assert_eq!(waba_id.as_str(), "1001");
                    event
                }
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            events,
            [
                AccountEvent::Disabled,
                AccountEvent::Disabled,
                AccountEvent::DisableScheduled,
                AccountEvent::Reinstated,
                AccountEvent::Disabled,
                AccountEvent::Disabled
            ]
        );
    }

    #[test]
    fn a_bad_id_is_named() {
        let body = br#"{"object":"whatsapp_business_account","entry":[{"id":"abc","changes":[{"field":"account_update","value":{"event":"ACCOUNT_RESTRICTION"}}]}]}"#;
        let error = WebhookPayload::parse(body)
            .unwrap()
            .notifications()
            .unwrap_err();
        assert!(error.to_string().contains("abc"), "{error}");
    }
}
