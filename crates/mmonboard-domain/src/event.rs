//! The onboarding events and their stored form. Stored events are forever: each has a type name and a schema
//! version that never change, and a payload whose shape for that version never changes. A new shape gets a new
//! version, and `decode` upcasts every older version it meets. Golden files in `tests/` pin each stored form.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::command::MirroredAdAccount;
use crate::eligibility::EligibilityVerdict;
use crate::facts::{
    PortfolioFacts, PortfolioRole, SuspensionReason, TemplateCategory, WabaExitReason, WabaFacts,
};
use crate::ids::{
    BusinessName, MetaRequestId, PortfolioId, Reason, StepName, TemplateId, TemplateLanguage,
    TemplateName, TermsVersion, UserId, WabaId, WebsiteUrl,
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnboardingStarted {
    pub portfolio_id: PortfolioId,
    #[serde(deserialize_with = "crate::wire_time::deserialize")]
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EligibilityChecked {
    pub facts: PortfolioFacts,
    pub verdict: EligibilityVerdict,
    #[serde(deserialize_with = "crate::wire_time::deserialize")]
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OboMigrationRequested {
    pub waba_id: WabaId,
    #[serde(deserialize_with = "crate::wire_time::deserialize")]
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OboWabaMigrated {
    pub waba_id: WabaId,
    #[serde(deserialize_with = "crate::wire_time::deserialize")]
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermissionsReviewed {
    pub reviewed_by: UserId,
    #[serde(deserialize_with = "crate::wire_time::deserialize")]
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BusinessInformationSubmitted {
    pub business_name: BusinessName,
    pub website: WebsiteUrl,
    #[serde(deserialize_with = "crate::wire_time::deserialize")]
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TermsAccepted {
    pub accepted_by: UserId,
    pub role: PortfolioRole,
    pub terms_version: TermsVersion,
    #[serde(deserialize_with = "crate::wire_time::deserialize")]
    pub at: DateTime<Utc>,
}

/// The terms request reached Meta (the portfolio's admin is asked to accept in Meta's own flow).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TermsRequested {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<MetaRequestId>,
    /// Meta answered 1752041: an invitation was already out.
    pub already_invited: bool,
    #[serde(deserialize_with = "crate::wire_time::deserialize")]
    pub at: DateTime<Utc>,
}

/// Meta reported the terms signed by a portfolio admin (only an admin can sign in Meta's flow).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TermsSigned {
    /// The WABA whose `MM_LITE_TERMS_SIGNED` webhook (or status read) reported it.
    pub reported_for_waba: WabaId,
    #[serde(deserialize_with = "crate::wire_time::deserialize")]
    pub at: DateTime<Utc>,
}

/// A step Meta kept failing past the retry bound. Any later event of the portfolio ends the stall.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessStalled {
    pub step: StepName,
    pub attempts: u32,
    pub error: Reason,
    #[serde(deserialize_with = "crate::wire_time::deserialize")]
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connected {
    pub ad_accounts: Vec<MirroredAdAccount>,
    #[serde(deserialize_with = "crate::wire_time::deserialize")]
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigSyncStarted {
    #[serde(deserialize_with = "crate::wire_time::deserialize")]
    pub window_ends_at: DateTime<Utc>,
    #[serde(deserialize_with = "crate::wire_time::deserialize")]
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncCompleted {
    #[serde(deserialize_with = "crate::wire_time::deserialize")]
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateChanged {
    pub waba_id: WabaId,
    pub template_id: TemplateId,
    pub name: TemplateName,
    pub language: TemplateLanguage,
    pub category: TemplateCategory,
    #[serde(deserialize_with = "crate::wire_time::deserialize")]
    pub sync_window_ends_at: DateTime<Utc>,
    #[serde(deserialize_with = "crate::wire_time::deserialize")]
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateMirrorSynced {
    pub waba_id: WabaId,
    pub template_id: TemplateId,
    #[serde(deserialize_with = "crate::wire_time::deserialize")]
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateUsed {
    pub waba_id: WabaId,
    pub template_id: TemplateId,
    #[serde(deserialize_with = "crate::wire_time::deserialize")]
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateReactivated {
    pub waba_id: WabaId,
    pub template_id: TemplateId,
    #[serde(deserialize_with = "crate::wire_time::deserialize")]
    pub sync_window_ends_at: DateTime<Utc>,
    #[serde(deserialize_with = "crate::wire_time::deserialize")]
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WabaRestricted {
    pub waba_id: WabaId,
    pub reason: SuspensionReason,
    #[serde(deserialize_with = "crate::wire_time::deserialize")]
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WabaReinstated {
    pub facts: WabaFacts,
    #[serde(deserialize_with = "crate::wire_time::deserialize")]
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WabaOffboarded {
    pub waba_id: WabaId,
    pub reason: WabaExitReason,
    #[serde(deserialize_with = "crate::wire_time::deserialize")]
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnboardingOffboarded {
    pub reason: Reason,
    #[serde(deserialize_with = "crate::wire_time::deserialize")]
    pub at: DateTime<Utc>,
}

/// Stored event type names. Persisted identifiers: never rename one; a changed shape is a new schema version.
pub mod type_names {
    pub const ONBOARDING_STARTED: &str = "onboarding_started";
    pub const ELIGIBILITY_CHECKED: &str = "eligibility_checked";
    pub const OBO_MIGRATION_REQUESTED: &str = "obo_migration_requested";
    pub const OBO_WABA_MIGRATED: &str = "obo_waba_migrated";
    pub const PERMISSIONS_REVIEWED: &str = "permissions_reviewed";
    pub const BUSINESS_INFORMATION_SUBMITTED: &str = "business_information_submitted";
    pub const TERMS_ACCEPTED: &str = "terms_accepted";
    pub const CONNECTED: &str = "connected";
    pub const CONFIG_SYNC_STARTED: &str = "config_sync_started";
    pub const SYNC_COMPLETED: &str = "sync_completed";
    pub const TEMPLATE_CHANGED: &str = "marketing_template_changed";
    pub const TEMPLATE_MIRROR_SYNCED: &str = "template_mirror_synced";
    pub const TEMPLATE_USED: &str = "template_used";
    pub const TEMPLATE_REACTIVATED: &str = "template_reactivated";
    pub const WABA_RESTRICTED: &str = "waba_restricted";
    pub const WABA_REINSTATED: &str = "waba_reinstated";
    pub const WABA_OFFBOARDED: &str = "waba_offboarded";
    pub const ONBOARDING_OFFBOARDED: &str = "onboarding_offboarded";
    pub const TERMS_REQUESTED: &str = "terms_requested";
    pub const TERMS_SIGNED: &str = "terms_signed";
    pub const PROCESS_STALLED: &str = "process_stalled";
}

/// Every event of a portfolio's onboarding: the statig machine's event type and the unit of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OnboardingEvent {
    OnboardingStarted(OnboardingStarted),
    EligibilityChecked(EligibilityChecked),
    OboMigrationRequested(OboMigrationRequested),
    OboWabaMigrated(OboWabaMigrated),
    PermissionsReviewed(PermissionsReviewed),
    BusinessInformationSubmitted(BusinessInformationSubmitted),
    TermsAccepted(TermsAccepted),
    Connected(Connected),
    ConfigSyncStarted(ConfigSyncStarted),
    SyncCompleted(SyncCompleted),
    TemplateChanged(TemplateChanged),
    TemplateMirrorSynced(TemplateMirrorSynced),
    TemplateUsed(TemplateUsed),
    TemplateReactivated(TemplateReactivated),
    WabaRestricted(WabaRestricted),
    WabaReinstated(WabaReinstated),
    WabaOffboarded(WabaOffboarded),
    OnboardingOffboarded(OnboardingOffboarded),
    TermsRequested(TermsRequested),
    TermsSigned(TermsSigned),
    ProcessStalled(ProcessStalled),
}

/// The schema version every event is written with today.
pub const CURRENT_SCHEMA_VERSION: u32 = 1;

/// A stored event the domain cannot read back.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("unknown event type {event_type:?}")]
    UnknownType { event_type: String },
    #[error("event type {event_type:?} has no schema version {schema_version}")]
    UnknownVersion {
        event_type: String,
        schema_version: u32,
    },
    #[error("payload of {event_type:?} v{schema_version} does not decode: {source}")]
    Payload {
        event_type: String,
        schema_version: u32,
        source: serde_json::Error,
    },
}

macro_rules! event_codec {
    ($($variant:ident => $type_name:ident),+ $(,)?) => {
        impl OnboardingEvent {
            /// The stored type name.
            pub fn type_name(&self) -> &'static str {
                match self {
                    $(Self::$variant(_) => type_names::$type_name,)+
                }
            }

            /// The stored payload (JSON text) at the current schema version.
            pub fn encode(&self) -> String {
                let encoded = match self {
                    $(Self::$variant(event) => serde_json::to_string(event),)+
                };
                // Serialising these plain structs (strings, numbers, maps with string keys) cannot fail.
                encoded.unwrap_or_else(|error| unreachable!("event serialisation failed: {error}"))
            }

            /// Read a stored event back, upcasting older schema versions to today's shape.
            pub fn decode(event_type: &str, schema_version: u32, payload: &str) -> Result<Self, DecodeError> {
                let payload_error = |source| DecodeError::Payload {
                    event_type: event_type.to_owned(),
                    schema_version,
                    source,
                };
                match event_type {
                    $(type_names::$type_name => match schema_version {
                        1 => serde_json::from_str(payload).map(Self::$variant).map_err(payload_error),
                        _ => Err(DecodeError::UnknownVersion { event_type: event_type.to_owned(), schema_version }),
                    },)+
                    _ => Err(DecodeError::UnknownType { event_type: event_type.to_owned() }),
                }
            }

            /// When it happened (the decision's `now`).
            pub fn at(&self) -> DateTime<Utc> {
                match self {
                    $(Self::$variant(event) => event.at,)+
                }
            }
        }

        /// Every stored type name, for documentation and golden-file checks.
        pub const ALL_TYPE_NAMES: &[&str] = &[$(type_names::$type_name),+];
    };
}

event_codec! {
    OnboardingStarted => ONBOARDING_STARTED,
    EligibilityChecked => ELIGIBILITY_CHECKED,
    OboMigrationRequested => OBO_MIGRATION_REQUESTED,
    OboWabaMigrated => OBO_WABA_MIGRATED,
    PermissionsReviewed => PERMISSIONS_REVIEWED,
    BusinessInformationSubmitted => BUSINESS_INFORMATION_SUBMITTED,
    TermsAccepted => TERMS_ACCEPTED,
    Connected => CONNECTED,
    ConfigSyncStarted => CONFIG_SYNC_STARTED,
    SyncCompleted => SYNC_COMPLETED,
    TemplateChanged => TEMPLATE_CHANGED,
    TemplateMirrorSynced => TEMPLATE_MIRROR_SYNCED,
    TemplateUsed => TEMPLATE_USED,
    TemplateReactivated => TEMPLATE_REACTIVATED,
    WabaRestricted => WABA_RESTRICTED,
    WabaReinstated => WABA_REINSTATED,
    WabaOffboarded => WABA_OFFBOARDED,
    OnboardingOffboarded => ONBOARDING_OFFBOARDED,
    TermsRequested => TERMS_REQUESTED,
    TermsSigned => TERMS_SIGNED,
    ProcessStalled => PROCESS_STALLED,
}

impl OnboardingEvent {
    /// The event as `{"type": ..., "schema_version": ..., "data": ...}`, for people and exports.
    pub fn to_json(&self) -> serde_json::Value {
        let data: serde_json::Value =
            serde_json::from_str(&self.encode()).unwrap_or(serde_json::Value::Null);
        serde_json::json!({ "type": self.type_name(), "schema_version": CURRENT_SCHEMA_VERSION, "data": data })
    }
}
