//! proptest strategies for the domain's inputs. Ids come from small pools so that random commands name
//! WABAs and templates the portfolio knows often enough to matter; facts are mostly eligible with a realistic
//! share of every ineligibility; `command_for` leans towards what the current phase accepts, so random runs
//! reach `live` while still trying plenty of refused commands.

use proptest::prelude::*;
use proptest::sample::select;

use super::model::{ModelObo, ModelRouting, ModelState};
use crate::aggregate::{Phase, Stage};
use crate::command::{MirroredAdAccount, OnboardingCommand};
use crate::country::CountryCode;
use crate::facts::*;
use crate::ids::*;

/// The WABA ids random facts and commands use.
pub const WABA_POOL: [&str; 3] = ["1001", "1002", "1003"];
/// The template ids random commands use.
pub const TEMPLATE_POOL: [&str; 2] = ["3001", "3002"];

fn parsed<T, E: std::fmt::Debug>(result: Result<T, E>) -> T {
    result.unwrap_or_else(|error| unreachable!("pool values are valid: {error:?}"))
}

pub fn portfolio_id() -> impl Strategy<Value = PortfolioId> {
    "[1-9][0-9]{5,16}".prop_map(|digits| parsed(PortfolioId::parse(&digits)))
}

pub fn waba_id() -> impl Strategy<Value = WabaId> {
    select(&WABA_POOL[..]).prop_map(|id| parsed(WabaId::parse(id)))
}

pub fn template_id() -> impl Strategy<Value = TemplateId> {
    select(&TEMPLATE_POOL[..]).prop_map(|id| parsed(TemplateId::parse(id)))
}

pub fn user_id() -> impl Strategy<Value = UserId> {
    "[1-9][0-9]{3,10}".prop_map(|digits| parsed(UserId::parse(&digits)))
}

/// Mostly served countries, sometimes a sanctioned one.
pub fn country() -> impl Strategy<Value = CountryCode> {
    prop_oneof![
        8 => select(vec!["BR", "MX", "IN", "ID", "US", "DE"]),
        1 => select(vec!["CU", "IR", "KP", "SY"]),
    ]
    .prop_map(|code| parsed(CountryCode::parse(code)))
}

pub fn role() -> impl Strategy<Value = PortfolioRole> {
    prop_oneof![
        6 => Just(PortfolioRole::Admin),
        1 => Just(PortfolioRole::Employee),
        1 => Just(PortfolioRole::FinanceEditor),
        1 => Just(PortfolioRole::Unknown("SOMETHING_NEW".into())),
    ]
}

pub fn phone_number(waba: &str, index: usize) -> impl Strategy<Value = PhoneNumberFacts> {
    let phone_number_id = parsed(PhoneNumberId::parse(&format!("5{waba}{index}")));
    (
        country(),
        prop::bool::weighted(0.9),
        prop::bool::weighted(0.08),
    )
        .prop_map(
            move |(country, registered_on_cloud_api, uses_business_app)| PhoneNumberFacts {
                phone_number_id: phone_number_id.clone(),
                country,
                registered_on_cloud_api,
                uses_business_app,
            },
        )
}

pub fn meta_status() -> impl Strategy<Value = Option<WabaOnboardingStatus>> {
    prop_oneof![
        8 => Just(None),
        2 => Just(Some(WabaOnboardingStatus::Eligible)),
        1 => Just(Some(WabaOnboardingStatus::Unknown("PENDING_SOMETHING_NEW".into()))),
        1 => Just(Some(WabaOnboardingStatus::Unknown("INELIGIBLE_SOMETHING_NEW".into()))),
    ]
}

/// One WABA's facts: mostly an eligible shared WABA, sometimes OBO, restricted or otherwise ineligible.
pub fn waba_facts_for(waba: &'static str) -> impl Strategy<Value = WabaFacts> {
    let ownership = prop_oneof![
        7 => Just(OwnershipType::ClientOwned),
        3 => Just(OwnershipType::OnBehalfOf),
        1 => Just(OwnershipType::Unknown("NEW_OWNERSHIP".into())),
    ];
    let status = prop_oneof![
        8 => Just(AccountStatus::Active),
        1 => Just(AccountStatus::Restricted),
        1 => Just(AccountStatus::Disabled),
    ];
    let numbers = prop::collection::vec(Just(()), 1..=2).prop_flat_map(move |slots| {
        slots
            .iter()
            .enumerate()
            .map(|(index, ())| phone_number(waba, index))
            .collect::<Vec<_>>()
    });
    (ownership, status, country(), numbers, meta_status()).prop_map(
        move |(ownership_type, account_status, tax_country, phone_numbers, meta_status)| {
            WabaFacts {
                waba_id: parsed(WabaId::parse(waba)),
                ownership_type,
                account_status,
                tax_country,
                phone_numbers,
                meta_status,
            }
        },
    )
}

pub fn waba_facts() -> impl Strategy<Value = WabaFacts> {
    select(&WABA_POOL[..]).prop_flat_map(waba_facts_for)
}

/// A portfolio with one to three distinct WABAs of the pool.
pub fn portfolio_facts() -> impl Strategy<Value = PortfolioFacts> {
    let wabas = prop::sample::subsequence(WABA_POOL.to_vec(), 1..=3)
        .prop_flat_map(|ids| ids.into_iter().map(waba_facts_for).collect::<Vec<_>>());
    (country(), prop::bool::weighted(0.95), wabas).prop_map(
        |(business_country, enable_offered, wabas)| PortfolioFacts {
            business_country,
            business_subdivision: None,
            enable_offered,
            terms_status: None,
            wabas,
        },
    )
}

pub fn category() -> impl Strategy<Value = TemplateCategory> {
    prop_oneof![
        6 => Just(TemplateCategory::Marketing),
        1 => Just(TemplateCategory::Utility),
        1 => Just(TemplateCategory::Authentication),
    ]
}

fn ad_accounts(wabas: Vec<WabaId>) -> Vec<MirroredAdAccount> {
    wabas
        .into_iter()
        .map(|waba_id| MirroredAdAccount {
            ad_account_id: parsed(AdAccountId::parse(&format!("8{waba_id}"))),
            waba_id,
        })
        .collect()
}

fn change_template(
    waba_id: WabaId,
    template_id: TemplateId,
    category: TemplateCategory,
) -> OnboardingCommand {
    OnboardingCommand::ChangeTemplate {
        waba_id,
        template_id,
        name: parsed(TemplateName::parse("offer")),
        language: parsed(TemplateLanguage::parse("en_US")),
        category,
    }
}

/// Any command, with random fields.
pub fn command() -> impl Strategy<Value = OnboardingCommand> {
    let reason = Just(parsed(Reason::parse("random offboarding")));
    prop_oneof![
        Just(OnboardingCommand::StartOnboarding {}),
        portfolio_facts().prop_map(|facts| OnboardingCommand::CheckEligibility { facts }),
        waba_id().prop_map(|waba_id| OnboardingCommand::RequestOboMigration { waba_id }),
        waba_id().prop_map(|waba_id| OnboardingCommand::CompleteOboMigration { waba_id }),
        user_id().prop_map(|reviewed_by| OnboardingCommand::ReviewPermissions { reviewed_by }),
        Just(OnboardingCommand::SubmitBusinessInfo {
            business_name: parsed(BusinessName::parse("Acme")),
            website: parsed(WebsiteUrl::parse("https://acme.example")),
        }),
        (user_id(), role()).prop_map(|(accepted_by, role)| OnboardingCommand::AcceptTerms {
            accepted_by,
            role,
            terms_version: parsed(TermsVersion::parse("2025-07")),
        }),
        prop::collection::vec(waba_id(), 0..=3).prop_map(|wabas| OnboardingCommand::Connect {
            ad_accounts: ad_accounts(wabas)
        }),
        Just(OnboardingCommand::StartConfigSync {}),
        Just(OnboardingCommand::CompleteSync {}),
        (waba_id(), template_id(), category())
            .prop_map(|(waba, template, category)| change_template(waba, template, category)),
        (waba_id(), template_id()).prop_map(|(waba_id, template_id)| {
            OnboardingCommand::RecordTemplateMirrorSynced {
                waba_id,
                template_id,
            }
        }),
        (waba_id(), template_id()).prop_map(|(waba_id, template_id)| {
            OnboardingCommand::RecordTemplateUse {
                waba_id,
                template_id,
            }
        }),
        waba_id().prop_map(|waba_id| OnboardingCommand::RestrictWaba {
            waba_id,
            reason: SuspensionReason::AccountRestriction
        }),
        waba_facts().prop_map(|facts| OnboardingCommand::ReinstateWaba { facts }),
        waba_id().prop_map(|waba_id| OnboardingCommand::OffboardWaba {
            waba_id,
            reason: WabaExitReason::PartnerRemoved
        }),
        reason.prop_map(|reason| OnboardingCommand::Offboard { reason }),
    ]
}

/// A command likely to be what the current phase accepts (about four in five), else any command.
pub fn command_for(state: &ModelState) -> BoxedStrategy<OnboardingCommand> {
    let likely: BoxedStrategy<OnboardingCommand> = match state.phase {
        Phase::NotStarted => Just(OnboardingCommand::StartOnboarding {}).boxed(),
        Phase::CheckingEligibility | Phase::Ineligible => portfolio_facts()
            .prop_map(|facts| OnboardingCommand::CheckEligibility { facts })
            .boxed(),
        Phase::MigratingObo => {
            let steps: Vec<OnboardingCommand> = state
                .obo
                .iter()
                .filter_map(|(waba_id, obo)| match obo {
                    ModelObo::Pending => Some(OnboardingCommand::RequestOboMigration {
                        waba_id: waba_id.clone(),
                    }),
                    ModelObo::Requested => Some(OnboardingCommand::CompleteOboMigration {
                        waba_id: waba_id.clone(),
                    }),
                    ModelObo::Done => None,
                })
                .collect();
            if steps.is_empty() {
                command().boxed()
            } else {
                select(steps).boxed()
            }
        }
        Phase::ReviewingPermissions => user_id()
            .prop_map(|reviewed_by| OnboardingCommand::ReviewPermissions { reviewed_by })
            .boxed(),
        Phase::EnteringBusinessInfo => Just(OnboardingCommand::SubmitBusinessInfo {
            business_name: parsed(BusinessName::parse("Acme")),
            website: parsed(WebsiteUrl::parse("https://acme.example")),
        })
        .boxed(),
        Phase::TermsPending => (user_id(), role())
            .prop_map(|(accepted_by, role)| OnboardingCommand::AcceptTerms {
                accepted_by,
                role,
                terms_version: parsed(TermsVersion::parse("2025-07")),
            })
            .boxed(),
        Phase::Connecting => Just(OnboardingCommand::Connect {
            ad_accounts: ad_accounts(state.eligible.iter().cloned().collect()),
        })
        .boxed(),
        Phase::Connected => Just(OnboardingCommand::StartConfigSync {}).boxed(),
        Phase::SyncingConfig => Just(OnboardingCommand::CompleteSync {}).boxed(),
        Phase::Live => enabled_command(state),
        Phase::Offboarded => command().boxed(),
    };
    let enabled_extra = if state.phase.stage() == Stage::Enabled {
        2
    } else {
        0
    };
    prop_oneof![
        8 => likely,
        enabled_extra => enabled_command(state),
        2 => command(),
    ]
    .boxed()
}

/// Template and WABA commands aimed at what the portfolio has.
fn enabled_command(state: &ModelState) -> BoxedStrategy<OnboardingCommand> {
    let onboarded: Vec<WabaId> = state
        .routing
        .iter()
        .filter(|(_, routing)| matches!(routing, ModelRouting::Onboarded | ModelRouting::Suspended))
        .map(|(id, _)| id.clone())
        .collect();
    let templates: Vec<(WabaId, TemplateId)> = state
        .templates
        .iter()
        .map(|(id, template)| (template.waba_id.clone(), id.clone()))
        .collect();
    if onboarded.is_empty() {
        return command().boxed();
    }
    let waba = select(onboarded);
    let change = (waba.clone(), template_id(), category())
        .prop_map(|(waba, template, category)| change_template(waba, template, category));
    let restrict = waba
        .clone()
        .prop_map(|waba_id| OnboardingCommand::RestrictWaba {
            waba_id,
            reason: SuspensionReason::AccountRestriction,
        });
    let reinstate = waba.prop_flat_map(|waba_id| {
        let id: &'static str = WABA_POOL
            .iter()
            .find(|pooled| **pooled == waba_id.as_str())
            .copied()
            .unwrap_or("1001");
        waba_facts_for(id).prop_map(|facts| OnboardingCommand::ReinstateWaba { facts })
    });
    if templates.is_empty() {
        return prop_oneof![4 => change, 1 => restrict, 1 => reinstate].boxed();
    }
    let template = select(templates);
    let synced = template.clone().prop_map(|(waba_id, template_id)| {
        OnboardingCommand::RecordTemplateMirrorSynced {
            waba_id,
            template_id,
        }
    });
    let used = template.prop_map(
        |(waba_id, template_id)| OnboardingCommand::RecordTemplateUse {
            waba_id,
            template_id,
        },
    );
    prop_oneof![2 => change, 3 => synced, 3 => used, 1 => restrict, 1 => reinstate].boxed()
}

/// How far the clock moves before a command: mostly seconds to minutes, sometimes past the 15-minute
/// windows, sometimes past the 7-day dormancy.
pub fn time_step() -> impl Strategy<Value = i64> {
    prop_oneof![
        6 => 0i64..120,
        3 => 60i64..1_800,
        2 => 900i64..1_200,
        1 => 604_800i64..691_200,
    ]
}
