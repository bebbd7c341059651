//! The sample onboarding `mmonboard demo` walks: a Brazilian retailer's portfolio with two WABAs, one of them
//! OBO, taken from eligibility to live, with the two mistakes people make most (terms by a non-admin, completing
//! the sync too early) refused on the way. Time is simulated: each step says how far the clock moves first.

use chrono::TimeDelta;
use mmonboard_domain::OnboardingCommand;
use mmonboard_domain::command::MirroredAdAccount;
use mmonboard_domain::country::CountryCode;
use mmonboard_domain::facts::{
    AccountStatus, OwnershipType, PhoneNumberFacts, PortfolioFacts, PortfolioRole,
    TemplateCategory, TermsStatus, WabaFacts, WabaOnboardingStatus,
};
use mmonboard_domain::ids::{
    AdAccountId, BusinessName, InvalidValue, PhoneNumberId, PortfolioId, TemplateId,
    TemplateLanguage, TemplateName, TermsVersion, UserId, WabaId, WebsiteUrl,
};
use uuid::Uuid;

/// One step of the demo.
#[derive(Debug, Clone)]
pub struct DemoStep {
    /// What a person would be doing.
    pub narration: &'static str,
    /// How far simulated time moves before the command.
    pub advance: TimeDelta,
    pub command: OnboardingCommand,
    /// The domain is expected to refuse this step (it shows a rule at work).
    pub expect_refusal: bool,
}

/// A fresh portfolio id for a demo run, so the demo can run many times on one database.
pub fn fresh_portfolio_id() -> PortfolioId {
    let digits = (Uuid::now_v7().as_u128() % 1_000_000_000_000_000) + 9_000_000_000_000_000;
    PortfolioId::parse(&digits.to_string())
        .unwrap_or_else(|error| unreachable!("digits are a valid id: {error}"))
}

/// The demo's steps. Fails only if its own constants were invalid.
pub fn script() -> Result<Vec<DemoStep>, InvalidValue> {
    let shared_waba = WabaId::parse("104000000000001")?;
    let obo_waba = WabaId::parse("104000000000002")?;
    let brazil = CountryCode::parse("BR")?;
    let mexico = CountryCode::parse("MX")?;
    let phone = |id: &str, country| -> Result<PhoneNumberFacts, InvalidValue> {
        Ok(PhoneNumberFacts {
            phone_number_id: PhoneNumberId::parse(id)?,
            country,
            registered_on_cloud_api: true,
            uses_business_app: false,
        })
    };
    let facts = PortfolioFacts {
        business_country: brazil,
        business_subdivision: None,
        enable_offered: true,
        terms_status: Some(TermsStatus::NotStarted),
        wabas: vec![
            WabaFacts {
                waba_id: shared_waba.clone(),
                ownership_type: OwnershipType::ClientOwned,
                account_status: AccountStatus::Active,
                tax_country: brazil,
                phone_numbers: vec![phone("105000000000001", brazil)?],
                meta_status: Some(WabaOnboardingStatus::Eligible),
            },
            WabaFacts {
                waba_id: obo_waba.clone(),
                ownership_type: OwnershipType::OnBehalfOf,
                account_status: AccountStatus::Active,
                tax_country: mexico,
                phone_numbers: vec![phone("105000000000002", mexico)?],
                meta_status: Some(WabaOnboardingStatus::IneligibleOnBehalfOfWaba),
            },
        ],
    };
    let admin = UserId::parse("106000000000001")?;
    let employee = UserId::parse("106000000000002")?;
    let template = TemplateId::parse("107000000000001")?;
    let terms_version = TermsVersion::parse("2025-07")?;
    let step = |narration, minutes, command| DemoStep {
        narration,
        advance: TimeDelta::minutes(minutes),
        command,
        expect_refusal: false,
    };
    let refused = |narration, minutes, command| DemoStep {
        narration,
        advance: TimeDelta::minutes(minutes),
        command,
        expect_refusal: true,
    };
    Ok(vec![
        step(
            "The provider opens the onboarding of the customer's portfolio",
            0,
            OnboardingCommand::StartOnboarding {},
        ),
        step(
            "Meta's facts are read: one shared WABA, one OBO WABA",
            1,
            OnboardingCommand::CheckEligibility { facts },
        ),
        step(
            "The OBO WABA must become a shared WABA first: the transfer is requested",
            1,
            OnboardingCommand::RequestOboMigration {
                waba_id: obo_waba.clone(),
            },
        ),
        step(
            "Meta reports the transfer done (same WABA, numbers and templates kept)",
            3,
            OnboardingCommand::CompleteOboMigration {
                waba_id: obo_waba.clone(),
            },
        ),
        step(
            "The operator reviews the benefits and the permissions granted",
            1,
            OnboardingCommand::ReviewPermissions {
                reviewed_by: admin.clone(),
            },
        ),
        step(
            "Business information is entered",
            2,
            OnboardingCommand::SubmitBusinessInfo {
                business_name: BusinessName::parse("Loja Aurora Ltda")?,
                website: WebsiteUrl::parse("https://lojaaurora.example.com.br")?,
            },
        ),
        refused(
            "An employee tries to accept the terms",
            1,
            OnboardingCommand::AcceptTerms {
                accepted_by: employee,
                role: PortfolioRole::Employee,
                terms_version: terms_version.clone(),
            },
        ),
        step(
            "A portfolio admin accepts the Marketing Messages API terms",
            2,
            OnboardingCommand::AcceptTerms {
                accepted_by: admin,
                role: PortfolioRole::Admin,
                terms_version,
            },
        ),
        step(
            "Meta connects the portfolio and mirrors one read-only ad account per WABA",
            1,
            OnboardingCommand::Connect {
                ad_accounts: vec![
                    MirroredAdAccount {
                        waba_id: shared_waba.clone(),
                        ad_account_id: AdAccountId::parse("108000000000001")?,
                    },
                    MirroredAdAccount {
                        waba_id: obo_waba,
                        ad_account_id: AdAccountId::parse("108000000000002")?,
                    },
                ],
            },
        ),
        step(
            "The configuration sync window opens",
            0,
            OnboardingCommand::StartConfigSync {},
        ),
        refused(
            "Someone tries to complete the sync after 5 minutes",
            5,
            OnboardingCommand::CompleteSync {},
        ),
        step(
            "15 minutes after the sync started, it completes",
            10,
            OnboardingCommand::CompleteSync {},
        ),
        step(
            "A marketing template is created; its mirrored ad starts syncing",
            1,
            OnboardingCommand::ChangeTemplate {
                waba_id: shared_waba.clone(),
                template_id: template.clone(),
                name: TemplateName::parse("black_friday_offer")?,
                language: TemplateLanguage::parse("pt_BR")?,
                category: TemplateCategory::Marketing,
            },
        ),
        step(
            "15 minutes later its mirror is synced: it can go through the MM API",
            15,
            OnboardingCommand::RecordTemplateMirrorSynced {
                waba_id: shared_waba.clone(),
                template_id: template.clone(),
            },
        ),
        step(
            "The template is sent",
            30,
            OnboardingCommand::RecordTemplateUse {
                waba_id: shared_waba,
                template_id: template,
            },
        ),
    ])
}
