//! What callers ask of a portfolio's onboarding. Commands carry every outside fact a decision needs (Meta's
//! facts are fetched before, never inside `decide`). The JSON form, `{"type": "...", ...fields}`, is the public
//! contract of the CLI and the HTTP API: the `type` names below never change.

use serde::{Deserialize, Serialize};

use crate::facts::{
    PortfolioFacts, PortfolioRole, SuspensionReason, TemplateCategory, WabaExitReason, WabaFacts,
};
use crate::ids::{
    AdAccountId, BusinessName, MetaRequestId, Reason, StepName, TemplateId, TemplateLanguage,
    TemplateName, TermsVersion, UserId, WabaId, WebsiteUrl,
};

/// The read-only ad account Meta mirrors for one WABA on connection.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MirroredAdAccount {
    pub waba_id: WabaId,
    pub ad_account_id: AdAccountId,
}

/// One command, `{"type": "...", ...fields}` (docs/commands.md).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum OnboardingCommand {
    /// Open the onboarding of the portfolio named by the stream.
    StartOnboarding {},
    /// Record the facts Meta reports and the verdict of DOMAIN.md's rules.
    CheckEligibility { facts: PortfolioFacts },
    /// Ask Meta to convert an OBO WABA to a shared one (`set_obo_mobility_intent`).
    RequestOboMigration { waba_id: WabaId },
    /// Meta reports the OBO WABA is now shared.
    CompleteOboMigration { waba_id: WabaId },
    /// The operator reviewed the benefits and the permissions granted to the provider.
    ReviewPermissions { reviewed_by: UserId },
    /// Business information entered for the portfolio.
    SubmitBusinessInfo {
        business_name: BusinessName,
        website: WebsiteUrl,
    },
    /// A person of the customer's portfolio accepted the MM API terms of service.
    AcceptTerms {
        accepted_by: UserId,
        role: PortfolioRole,
        terms_version: TermsVersion,
    },
    /// The terms request (Meta's Intent API) reached Meta: with Meta's request id, or Meta said an invitation
    /// was already out (error 1752041).
    RecordTermsRequest {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<MetaRequestId>,
        already_invited: bool,
    },
    /// Meta reported the terms signed by a portfolio admin in its own flow (the `MM_LITE_TERMS_SIGNED` webhook
    /// for one of the portfolio's WABAs, or the portfolio's status read back as `TERM_OF_SERVICE_SIGNED`).
    RecordTermsSigned { waba_id: WabaId },
    /// Meta kept failing one step of the onboarding past the retry bound: made visible, not silent.
    RecordProcessStall {
        step: StepName,
        attempts: u32,
        error: Reason,
    },
    /// Meta connected the portfolio and created one read-only ad account per eligible WABA.
    Connect { ad_accounts: Vec<MirroredAdAccount> },
    /// The configuration sync window starts.
    StartConfigSync {},
    /// The configuration sync is over: marketing traffic may use the MM API.
    CompleteSync {},
    /// A template was created or updated (its latest category decides whether it is marketing).
    ChangeTemplate {
        waba_id: WabaId,
        template_id: TemplateId,
        name: TemplateName,
        language: TemplateLanguage,
        category: TemplateCategory,
    },
    /// The template's mirrored ad entity finished syncing.
    RecordTemplateMirrorSynced {
        waba_id: WabaId,
        template_id: TemplateId,
    },
    /// A marketing template was sent; a dormant one is reactivated and starts a new sync window.
    RecordTemplateUse {
        waba_id: WabaId,
        template_id: TemplateId,
    },
    /// Meta suspended the WABA after enablement (restriction, disablement).
    RestrictWaba {
        waba_id: WabaId,
        reason: SuspensionReason,
    },
    /// A new eligibility check of a suspended WABA; reinstated only if it passes.
    ReinstateWaba { facts: WabaFacts },
    /// The WABA left MM routing for good (offboarded, partner removed).
    OffboardWaba {
        waba_id: WabaId,
        reason: WabaExitReason,
    },
    /// End the portfolio's onboarding.
    Offboard { reason: Reason },
}

impl OnboardingCommand {
    /// The command's `type` as written in JSON.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::StartOnboarding {} => "start_onboarding",
            Self::CheckEligibility { .. } => "check_eligibility",
            Self::RequestOboMigration { .. } => "request_obo_migration",
            Self::CompleteOboMigration { .. } => "complete_obo_migration",
            Self::ReviewPermissions { .. } => "review_permissions",
            Self::SubmitBusinessInfo { .. } => "submit_business_info",
            Self::AcceptTerms { .. } => "accept_terms",
            Self::RecordTermsRequest { .. } => "record_terms_request",
            Self::RecordTermsSigned { .. } => "record_terms_signed",
            Self::RecordProcessStall { .. } => "record_process_stall",
            Self::Connect { .. } => "connect",
            Self::StartConfigSync {} => "start_config_sync",
            Self::CompleteSync {} => "complete_sync",
            Self::ChangeTemplate { .. } => "change_template",
            Self::RecordTemplateMirrorSynced { .. } => "record_template_mirror_synced",
            Self::RecordTemplateUse { .. } => "record_template_use",
            Self::RestrictWaba { .. } => "restrict_waba",
            Self::ReinstateWaba { .. } => "reinstate_waba",
            Self::OffboardWaba { .. } => "offboard_waba",
            Self::Offboard { .. } => "offboard",
        }
    }
}
