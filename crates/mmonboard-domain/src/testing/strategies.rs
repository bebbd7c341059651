//! proptest strategies for the domain's inputs. Ids come from small pools so that random commands name the
//! WABAs and templates a portfolio knows often enough to matter; facts are mostly eligible, with a realistic
//! share of every ineligibility and of values Meta may add tomorrow; `command_for` leans towards what the
//! current phase accepts, so random runs reach `live`, while still sending plenty of commands it refuses.

use proptest::prelude::*;
use proptest::sample::select;
use proptest::strategy::Union;

use crate::aggregate::{Aggregate, Phase};
use crate::command::{MirroredAdAccount, OnboardingCommand};
use crate::country::{CountryCode, Subdivision};
use crate::facts::*;
use crate::ids::*;
use crate::machine::{OboMigration, WabaRouting};

/// The WABA ids random facts and commands use.
pub const WABA_POOL: [&str; 3] = ["1001", "1002", "1003"];
/// The template ids random commands use.
pub const TEMPLATE_POOL: [&str; 3] = ["3001", "3002", "3003"];

fn parsed<T, E: std::fmt::Debug>(result: Result<T, E>) -> T {
    result.unwrap_or_else(|error| unreachable!("generated values are valid: {error:?}"))
}

pub fn portfolio_id() -> impl Strategy<Value = PortfolioId> {
    "[1-9][0-9]{5,16}".prop_map(|digits| parsed(PortfolioId::parse(&digits)))
}

/// One of `WABA_POOL`.
pub fn waba_id() -> impl Strategy<Value = WabaId> {
    select(&WABA_POOL[..]).prop_map(|id| parsed(WabaId::parse(id)))
}

/// One of `TEMPLATE_POOL`.
pub fn template_id() -> impl Strategy<Value = TemplateId> {
    select(&TEMPLATE_POOL[..]).prop_map(|id| parsed(TemplateId::parse(id)))
}

pub fn user_id() -> impl Strategy<Value = UserId> {
    "[1-9][0-9]{3,15}".prop_map(|digits| parsed(UserId::parse(&digits)))
}

/// A served country.
pub fn supported_country() -> impl Strategy<Value = CountryCode> {
    select(&["BR", "MX", "IN", "ID", "US", "DE", "UA", "AE"][..])
        .prop_map(|code| parsed(CountryCode::parse(code)))
}

/// Sanctioned and never served (DOMAIN.md).
pub fn sanctioned_country() -> impl Strategy<Value = CountryCode> {
    select(&["CU", "IR", "KP", "SY"][..]).prop_map(|code| parsed(CountryCode::parse(code)))
}

/// Mostly served countries, sometimes a sanctioned one.
pub fn country() -> impl Strategy<Value = CountryCode> {
    prop_oneof![9 => supported_country(), 1 => sanctioned_country()]
}

/// Mostly an admin; sometimes another role, or one Meta added after this build.
pub fn role() -> impl Strategy<Value = PortfolioRole> {
    prop_oneof![
        6 => Just(PortfolioRole::Admin),
        1 => Just(PortfolioRole::Employee),
        1 => Just(PortfolioRole::FinanceEditor),
        1 => Just(PortfolioRole::Developer),
        1 => unknown_meta_value().prop_map(PortfolioRole::from),
    ]
}

/// An upper-case value of the kind Meta sends, almost always one this build does not know (and when it does
/// know it, it is read as the known value: `From<String>` decides, as it does for stored JSON).
pub fn unknown_meta_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("SOMETHING_NEW".to_owned()),
        "[A-Z]{3,8}(_[A-Z]{3,8}){0,2}",
    ]
}

/// Meta's per-WABA status when it was read: mostly absent or harmless, sometimes a value this build does not
/// know (an `INELIGIBLE_…` one blocks, others do not).
pub fn meta_status() -> impl Strategy<Value = Option<WabaOnboardingStatus>> {
    prop_oneof![
        8 => Just(None),
        2 => Just(Some(WabaOnboardingStatus::Eligible)),
        1 => Just(Some(WabaOnboardingStatus::Onboarded)),
        1 => Just(Some(WabaOnboardingStatus::PendingInternalSetup)),
        1 => unknown_meta_value().prop_map(|value| Some(WabaOnboardingStatus::from(format!("PENDING_{value}")))),
        1 => unknown_meta_value().prop_map(|value| Some(WabaOnboardingStatus::from(format!("INELIGIBLE_{value}")))),
    ]
}

fn phone_number_id(waba_id: &WabaId, index: usize) -> PhoneNumberId {
    parsed(PhoneNumberId::parse(&format!("5{waba_id}{index}")))
}

/// A number that keeps its WABA eligible: served country, on Cloud API, not in the Business app.
fn clean_number(waba_id: &WabaId, index: usize) -> impl Strategy<Value = PhoneNumberFacts> + use<> {
    let phone_number_id = phone_number_id(waba_id, index);
    supported_country().prop_map(move |country| PhoneNumberFacts {
        phone_number_id: phone_number_id.clone(),
        country,
        registered_on_cloud_api: true,
        uses_business_app: false,
    })
}

/// Any number: sometimes off Cloud API, in the Business app, or in a sanctioned country.
pub fn phone_number(
    waba_id: &WabaId,
    index: usize,
) -> impl Strategy<Value = PhoneNumberFacts> + use<> {
    let phone_number_id = phone_number_id(waba_id, index);
    (
        country(),
        prop::bool::weighted(0.8),
        prop::bool::weighted(0.2),
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

fn numbers<S: Strategy<Value = PhoneNumberFacts> + 'static>(
    waba_id: &WabaId,
    count: std::ops::RangeInclusive<usize>,
    number: fn(&WabaId, usize) -> S,
) -> impl Strategy<Value = Vec<PhoneNumberFacts>> + use<S> {
    let waba_id = waba_id.clone();
    count.prop_flat_map(move |count| {
        (0..count)
            .map(|index| number(&waba_id, index))
            .collect::<Vec<_>>()
    })
}

/// The facts of the WABA `waba_id`: mostly an eligible shared WABA; sometimes OBO (eligible once migrated),
/// restricted or disabled; sometimes anything at all (no number on Cloud API, a Business-app number, a
/// sanctioned country, an unknown ownership or status, Meta saying ineligible).
pub fn waba_facts_for(waba_id: WabaId) -> impl Strategy<Value = WabaFacts> {
    let shared = (
        supported_country(),
        numbers(&waba_id, 1..=2, clean_number),
        prop_oneof![
            3 => Just(None),
            1 => Just(Some(WabaOnboardingStatus::Eligible)),
            1 => unknown_meta_value().prop_map(|value| Some(WabaOnboardingStatus::from(format!("PENDING_{value}")))),
        ],
    )
        .boxed();
    let eligible_shared = shared.clone().prop_map({
        let waba_id = waba_id.clone();
        move |(tax_country, phone_numbers, meta_status)| WabaFacts {
            waba_id: waba_id.clone(),
            ownership_type: OwnershipType::ClientOwned,
            account_status: AccountStatus::Active,
            tax_country,
            phone_numbers,
            meta_status,
        }
    });
    let obo = (shared.clone(), prop::bool::ANY).prop_map({
        let waba_id = waba_id.clone();
        move |((tax_country, phone_numbers, _), meta_says_obo)| WabaFacts {
            waba_id: waba_id.clone(),
            ownership_type: OwnershipType::OnBehalfOf,
            account_status: AccountStatus::Active,
            tax_country,
            phone_numbers,
            meta_status: meta_says_obo.then_some(WabaOnboardingStatus::IneligibleOnBehalfOfWaba),
        }
    });
    let restricted = (
        shared,
        prop_oneof![
            Just(AccountStatus::Restricted),
            Just(AccountStatus::Disabled)
        ],
    )
        .prop_map({
            let waba_id = waba_id.clone();
            move |((tax_country, phone_numbers, meta_status), account_status)| WabaFacts {
                waba_id: waba_id.clone(),
                ownership_type: OwnershipType::ClientOwned,
                account_status,
                tax_country,
                phone_numbers,
                meta_status,
            }
        });
    let anything = (
        prop_oneof![
            4 => Just(OwnershipType::ClientOwned),
            2 => Just(OwnershipType::OnBehalfOf),
            1 => unknown_meta_value().prop_map(OwnershipType::from),
        ],
        prop_oneof![
            4 => Just(AccountStatus::Active),
            1 => Just(AccountStatus::Restricted),
            1 => Just(AccountStatus::Disabled),
            1 => unknown_meta_value().prop_map(AccountStatus::from),
        ],
        country(),
        numbers(&waba_id, 0..=2, phone_number),
        meta_status(),
    )
        .prop_map(
            move |(ownership_type, account_status, tax_country, phone_numbers, meta_status)| {
                WabaFacts {
                    waba_id: waba_id.clone(),
                    ownership_type,
                    account_status,
                    tax_country,
                    phone_numbers,
                    meta_status,
                }
            },
        );
    prop_oneof![
        10 => eligible_shared,
        3 => obo,
        1 => restricted,
        3 => anything,
    ]
}

/// The facts of a WABA of the pool.
pub fn waba_facts() -> impl Strategy<Value = WabaFacts> {
    waba_id().prop_flat_map(waba_facts_for)
}

/// A portfolio with one to three distinct WABAs of the pool (rarely none): mostly in a served country, sometimes
/// in a sanctioned one or in a Ukrainian region (some of them sanctioned); Meta rarely withholds enablement.
pub fn portfolio_facts() -> impl Strategy<Value = PortfolioFacts> {
    let ua = || parsed(CountryCode::parse("UA"));
    let region = select(&["UA-43", "UA-40", "UA-14", "UA-09", "UA-30", "UA-46"][..])
        .prop_map(move |code| (ua(), Some(parsed(Subdivision::parse(code)))));
    let business = prop_oneof![
        16 => supported_country().prop_map(|country| (country, None)),
        1 => sanctioned_country().prop_map(|country| (country, None)),
        2 => region,
    ];
    let terms_status = prop_oneof![
        4 => Just(None),
        1 => Just(Some(TermsStatus::NotStarted)),
        1 => Just(Some(TermsStatus::RequestSent)),
        1 => Just(Some(TermsStatus::TermOfServiceSigned)),
        1 => unknown_meta_value().prop_map(|value| Some(TermsStatus::from(value))),
    ];
    let ids = prop_oneof![
        30 => prop::sample::subsequence(WABA_POOL.to_vec(), 1..=3),
        1 => Just(Vec::new()),
    ];
    let wabas = ids.prop_flat_map(|ids| {
        ids.into_iter()
            .map(|id| waba_facts_for(parsed(WabaId::parse(id))))
            .collect::<Vec<_>>()
    });
    (
        business,
        prop::bool::weighted(0.97),
        terms_status,
        wabas.prop_shuffle(),
    )
        .prop_map(
            |((business_country, business_subdivision), enable_offered, terms_status, wabas)| {
                PortfolioFacts {
                    business_country,
                    business_subdivision,
                    enable_offered,
                    terms_status,
                    wabas,
                }
            },
        )
}

/// Facts that name one WABA twice (a bug in whoever gathered them).
pub fn portfolio_facts_naming_a_waba_twice() -> impl Strategy<Value = PortfolioFacts> {
    (portfolio_facts(), waba_facts()).prop_map(|(mut facts, waba)| {
        facts.wabas.push(waba.clone());
        facts.wabas.push(waba);
        facts
    })
}

pub fn category() -> impl Strategy<Value = TemplateCategory> {
    prop_oneof![
        6 => Just(TemplateCategory::Marketing),
        1 => Just(TemplateCategory::Utility),
        1 => Just(TemplateCategory::Authentication),
        1 => unknown_meta_value().prop_map(TemplateCategory::from),
    ]
}

pub fn business_name() -> impl Strategy<Value = BusinessName> {
    prop_oneof![
        "[A-Z][a-z]{1,12}( [A-Z][a-z]{1,12}){0,2}( Ltda\\.| S\\.A\\.| & Co)?",
        Just("Café São João 東京".to_owned()),
    ]
    .prop_map(|name| parsed(BusinessName::parse(&name)))
}

pub fn website() -> impl Strategy<Value = WebsiteUrl> {
    prop_oneof![
        "https?://[a-z]{1,12}\\.(example|com|com\\.br|co\\.id)(/[a-z0-9-]{1,8}){0,2}/?",
        Just("https://café.example/loja".to_owned()),
        Just("HTTPS://Acme.Example:443/a/../b?x=1".to_owned()),
    ]
    .prop_map(|url| parsed(WebsiteUrl::parse(&url)))
}

pub fn terms_version() -> impl Strategy<Value = TermsVersion> {
    select(&["2025-07", "2025-10-01", "v3"][..])
        .prop_map(|version| parsed(TermsVersion::parse(version)))
}

pub fn template_name() -> impl Strategy<Value = TemplateName> {
    "[a-z][a-z0-9_]{0,23}".prop_map(|name| parsed(TemplateName::parse(&name)))
}

pub fn template_language() -> impl Strategy<Value = TemplateLanguage> {
    select(&["en_US", "pt_BR", "es_MX", "id"][..])
        .prop_map(|language| parsed(TemplateLanguage::parse(language)))
}

pub fn reason() -> impl Strategy<Value = Reason> {
    "[A-Z][a-z]{2,10}( [a-z]{2,10}){0,5}".prop_map(|reason| parsed(Reason::parse(&reason)))
}

pub fn suspension_reason() -> impl Strategy<Value = SuspensionReason> {
    prop_oneof![
        3 => Just(SuspensionReason::AccountRestriction),
        3 => Just(SuspensionReason::DisabledUpdate),
        1 => unknown_meta_value().prop_map(SuspensionReason::from),
    ]
}

pub fn exit_reason() -> impl Strategy<Value = WabaExitReason> {
    prop_oneof![
        3 => Just(WabaExitReason::AccountOffboarded),
        3 => Just(WabaExitReason::PartnerRemoved),
        1 => unknown_meta_value().prop_map(WabaExitReason::from),
    ]
}

fn ad_account(waba_id: WabaId) -> MirroredAdAccount {
    MirroredAdAccount {
        ad_account_id: parsed(AdAccountId::parse(&format!("8{waba_id}"))),
        waba_id,
    }
}

fn change_template(
    (waba_id, template_id): (WabaId, TemplateId),
) -> impl Strategy<Value = OnboardingCommand> {
    (template_name(), template_language(), category()).prop_map(
        move |(name, language, category)| OnboardingCommand::ChangeTemplate {
            waba_id: waba_id.clone(),
            template_id: template_id.clone(),
            name,
            language,
            category,
        },
    )
}

fn review_permissions() -> impl Strategy<Value = OnboardingCommand> {
    user_id().prop_map(|reviewed_by| OnboardingCommand::ReviewPermissions { reviewed_by })
}

fn submit_business_info() -> impl Strategy<Value = OnboardingCommand> {
    (business_name(), website()).prop_map(|(business_name, website)| {
        OnboardingCommand::SubmitBusinessInfo {
            business_name,
            website,
        }
    })
}

fn accept_terms() -> impl Strategy<Value = OnboardingCommand> {
    (user_id(), role(), terms_version()).prop_map(|(accepted_by, role, terms_version)| {
        OnboardingCommand::AcceptTerms {
            accepted_by,
            role,
            terms_version,
        }
    })
}

/// The terms request reaching Meta: with a request id, or answered "already invited" (1752041).
pub fn terms_request() -> impl Strategy<Value = OnboardingCommand> {
    prop_oneof![
        "[0-9a-f]{8,16}".prop_map(|id| OnboardingCommand::RecordTermsRequest {
            request_id: Some(MetaRequestId::parse(&id).expect("non-empty")),
            already_invited: false,
        }),
        Just(OnboardingCommand::RecordTermsRequest {
            request_id: None,
            already_invited: true,
        }),
    ]
}

/// A step Meta kept failing, made visible.
pub fn process_stall() -> impl Strategy<Value = OnboardingCommand> {
    (
        prop::sample::select(vec!["check_eligibility", "request_terms", "connect"]),
        1u32..20,
    )
        .prop_map(|(step, attempts)| OnboardingCommand::RecordProcessStall {
            step: StepName::parse(step).expect("valid step"),
            attempts,
            error: Reason::parse("Meta answered HTTP 500 with error 1").expect("valid"),
        })
}

fn offboard() -> impl Strategy<Value = OnboardingCommand> {
    reason().prop_map(|reason| OnboardingCommand::Offboard { reason })
}

/// Any command, with random fields (ids from the pools).
pub fn command() -> impl Strategy<Value = OnboardingCommand> {
    prop_oneof![
        Just(OnboardingCommand::StartOnboarding {}),
        portfolio_facts().prop_map(|facts| OnboardingCommand::CheckEligibility { facts }),
        waba_id().prop_map(|waba_id| OnboardingCommand::RequestOboMigration { waba_id }),
        waba_id().prop_map(|waba_id| OnboardingCommand::CompleteOboMigration { waba_id }),
        review_permissions(),
        submit_business_info(),
        accept_terms(),
        terms_request(),
        waba_id().prop_map(|waba_id| OnboardingCommand::RecordTermsSigned { waba_id }),
        process_stall(),
        prop::collection::vec(waba_id().prop_map(ad_account), 0..=3)
            .prop_map(|ad_accounts| OnboardingCommand::Connect { ad_accounts }),
        Just(OnboardingCommand::StartConfigSync {}),
        Just(OnboardingCommand::CompleteSync {}),
        (waba_id(), template_id()).prop_flat_map(change_template),
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
        (waba_id(), suspension_reason())
            .prop_map(|(waba_id, reason)| OnboardingCommand::RestrictWaba { waba_id, reason }),
        waba_facts().prop_map(|facts| OnboardingCommand::ReinstateWaba { facts }),
        (waba_id(), exit_reason())
            .prop_map(|(waba_id, reason)| OnboardingCommand::OffboardWaba { waba_id, reason }),
        offboard(),
    ]
}

/// What `command_for` needs to know about a portfolio to aim at its current phase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Steering {
    pub phase: Phase,
    /// OBO WABAs not migrated yet, and whether their migration was requested.
    pub pending_obo: Vec<(WabaId, bool)>,
    /// WABAs eligible now (those that get a mirrored ad account on connection).
    pub eligible: Vec<WabaId>,
    pub onboarded: Vec<WabaId>,
    pub suspended: Vec<WabaId>,
    /// Every known template, with its WABA.
    pub templates: Vec<(WabaId, TemplateId)>,
}

/// Something `command_for` can aim at: the real aggregate, or a run of the reference model.
pub trait Steerable {
    fn steering(&self) -> Steering;
}

impl Steerable for Aggregate {
    fn steering(&self) -> Steering {
        let data = self.data();
        let with_routing = |wanted: fn(&WabaRouting) -> bool| {
            data.wabas
                .iter()
                .filter(|(_, record)| wanted(&record.routing))
                .map(|(id, _)| id.clone())
                .collect()
        };
        Steering {
            phase: self.phase(),
            pending_obo: data
                .wabas
                .iter()
                .filter_map(|(id, record)| match record.obo_migration {
                    OboMigration::Pending => Some((id.clone(), false)),
                    OboMigration::Requested { .. } => Some((id.clone(), true)),
                    OboMigration::NotNeeded | OboMigration::Completed { .. } => None,
                })
                .collect(),
            eligible: data.eligible_wabas().cloned().collect(),
            onboarded: with_routing(|routing| matches!(routing, WabaRouting::Onboarded { .. })),
            suspended: with_routing(|routing| matches!(routing, WabaRouting::Suspended { .. })),
            templates: data
                .templates
                .iter()
                .map(|(id, template)| (template.waba_id.clone(), id.clone()))
                .collect(),
        }
    }
}

/// A command aimed at the state's current phase (the next step of the flow, right WABA ids, an admin most of
/// the time), else a near miss or any command at all: about seven in ten are the next step.
pub fn command_for(state: &impl Steerable) -> BoxedStrategy<OnboardingCommand> {
    let steering = state.steering();
    let mut options: Vec<(u32, BoxedStrategy<OnboardingCommand>)> = vec![
        (44, next_step(&steering)),
        (12, near_miss(&steering)),
        (5, command().boxed()),
    ];
    if steering.phase != Phase::Offboarded {
        options.push((1, offboard().boxed()));
    }
    Union::new_weighted(options).boxed()
}

/// What the flow waits for in this phase (for an enabled portfolio: template and WABA traffic).
fn next_step(steering: &Steering) -> BoxedStrategy<OnboardingCommand> {
    match steering.phase {
        Phase::NotStarted => Just(OnboardingCommand::StartOnboarding {}).boxed(),
        Phase::CheckingEligibility | Phase::Ineligible => portfolio_facts()
            .prop_map(|facts| OnboardingCommand::CheckEligibility { facts })
            .boxed(),
        Phase::MigratingObo if !steering.pending_obo.is_empty() => {
            select(steering.pending_obo.clone())
                .prop_map(|(waba_id, requested)| {
                    if requested {
                        OnboardingCommand::CompleteOboMigration { waba_id }
                    } else {
                        OnboardingCommand::RequestOboMigration { waba_id }
                    }
                })
                .boxed()
        }
        Phase::ReviewingPermissions => review_permissions().boxed(),
        Phase::EnteringBusinessInfo => submit_business_info().boxed(),
        // Terms arrive either accepted by hand, or requested from Meta and reported signed by its webhook.
        Phase::TermsPending if !steering.eligible.is_empty() => prop_oneof![
            2 => accept_terms(),
            1 => terms_request(),
            2 => select(steering.eligible.clone())
                .prop_map(|waba_id| OnboardingCommand::RecordTermsSigned { waba_id }),
        ]
        .boxed(),
        Phase::TermsPending => accept_terms().boxed(),
        Phase::Connecting => Just(steering.eligible.iter().cloned().map(ad_account).collect())
            .prop_shuffle()
            .prop_map(|ad_accounts| OnboardingCommand::Connect { ad_accounts })
            .boxed(),
        Phase::Connected => prop_oneof![
            3 => Just(OnboardingCommand::StartConfigSync {}),
            1 => enabled_traffic(steering),
        ]
        .boxed(),
        Phase::SyncingConfig => prop_oneof![
            3 => Just(OnboardingCommand::CompleteSync {}),
            1 => enabled_traffic(steering),
        ]
        .boxed(),
        Phase::Live => enabled_traffic(steering),
        Phase::MigratingObo | Phase::Offboarded => command().boxed(),
    }
}

/// Commands that are almost right: a step of the flow out of turn, a wrong set of ad accounts, an OBO step for
/// the wrong WABA, a change of eligibility facts late in the flow, traffic for an unknown template or WABA.
fn near_miss(steering: &Steering) -> BoxedStrategy<OnboardingCommand> {
    let flow = prop_oneof![
        portfolio_facts().prop_map(|facts| OnboardingCommand::CheckEligibility { facts }),
        portfolio_facts_naming_a_waba_twice()
            .prop_map(|facts| OnboardingCommand::CheckEligibility { facts }),
        waba_id().prop_map(|waba_id| OnboardingCommand::RequestOboMigration { waba_id }),
        waba_id().prop_map(|waba_id| OnboardingCommand::CompleteOboMigration { waba_id }),
        review_permissions(),
        submit_business_info(),
        accept_terms(),
        Just(OnboardingCommand::StartConfigSync {}),
        Just(OnboardingCommand::CompleteSync {}),
    ];
    let eligible = steering.eligible.clone();
    let wrong_accounts = prop_oneof![
        // one eligible WABA left out
        Just(eligible.clone()).prop_shuffle().prop_map(|mut wabas| {
            wabas.pop();
            wabas
        }),
        // one named twice, or one that is not eligible added
        (Just(eligible), waba_id()).prop_map(|(mut wabas, extra)| {
            wabas.push(extra);
            wabas
        }),
    ]
    .prop_map(|wabas| OnboardingCommand::Connect {
        ad_accounts: wabas.into_iter().map(ad_account).collect(),
    });
    let traffic = (waba_id(), template_id()).prop_flat_map(|(waba_id, template_id)| {
        prop_oneof![
            change_template((waba_id.clone(), template_id.clone())).boxed(),
            Just(OnboardingCommand::RecordTemplateUse {
                waba_id: waba_id.clone(),
                template_id: template_id.clone(),
            })
            .boxed(),
            Just(OnboardingCommand::RecordTemplateMirrorSynced {
                waba_id: waba_id.clone(),
                template_id,
            })
            .boxed(),
            suspension_reason()
                .prop_map(move |reason| OnboardingCommand::RestrictWaba {
                    waba_id: waba_id.clone(),
                    reason,
                })
                .boxed(),
            waba_facts()
                .prop_map(|facts| OnboardingCommand::ReinstateWaba { facts })
                .boxed(),
        ]
    });
    match steering.phase {
        Phase::MigratingObo if !steering.pending_obo.is_empty() => {
            // the other OBO step than the one the WABA waits for
            let wrong_obo_step =
                select(steering.pending_obo.clone()).prop_map(|(waba_id, requested)| {
                    if requested {
                        OnboardingCommand::RequestOboMigration { waba_id }
                    } else {
                        OnboardingCommand::CompleteOboMigration { waba_id }
                    }
                });
            prop_oneof![2 => wrong_obo_step, 1 => flow].boxed()
        }
        Phase::Connecting => prop_oneof![2 => wrong_accounts, 1 => flow].boxed(),
        Phase::Connected | Phase::SyncingConfig | Phase::Live => {
            prop_oneof![2 => traffic, 1 => flow].boxed()
        }
        _ => prop_oneof![3 => flow, 1 => traffic].boxed(),
    }
}

/// Template and WABA traffic aimed at what an enabled portfolio has.
fn enabled_traffic(steering: &Steering) -> BoxedStrategy<OnboardingCommand> {
    let mut routable = steering.onboarded.clone();
    routable.extend(steering.suspended.iter().cloned());
    if routable.is_empty() {
        return command().boxed();
    }
    let mut options: Vec<(u32, BoxedStrategy<OnboardingCommand>)> = vec![
        (
            4,
            (select(routable.clone()), template_id())
                .prop_flat_map(change_template)
                .boxed(),
        ),
        (
            1,
            (select(routable), exit_reason())
                .prop_map(|(waba_id, reason)| OnboardingCommand::OffboardWaba { waba_id, reason })
                .boxed(),
        ),
    ];
    if !steering.onboarded.is_empty() {
        let restrict = (select(steering.onboarded.clone()), suspension_reason())
            .prop_map(|(waba_id, reason)| OnboardingCommand::RestrictWaba { waba_id, reason });
        options.push((2, restrict.boxed()));
    }
    if !steering.suspended.is_empty() {
        let reinstate = select(steering.suspended.clone())
            .prop_flat_map(waba_facts_for)
            .prop_map(|facts| OnboardingCommand::ReinstateWaba { facts });
        options.push((2, reinstate.boxed()));
    }
    if !steering.templates.is_empty() {
        let template = select(steering.templates.clone());
        let synced = template.clone().prop_map(|(waba_id, template_id)| {
            OnboardingCommand::RecordTemplateMirrorSynced {
                waba_id,
                template_id,
            }
        });
        let used =
            template.prop_map(
                |(waba_id, template_id)| OnboardingCommand::RecordTemplateUse {
                    waba_id,
                    template_id,
                },
            );
        options.push((4, synced.boxed()));
        options.push((5, used.boxed()));
    }
    Union::new_weighted(options).boxed()
}

/// How many seconds the clock moves before a command: never negative; mostly seconds to minutes, sometimes
/// past the 15-minute sync windows, sometimes past the 7-day dormancy, and sometimes exactly on either edge.
pub fn time_step() -> impl Strategy<Value = i64> {
    const MINUTES_15: i64 = 15 * 60;
    const DAYS_7: i64 = 7 * 24 * 3600;
    prop_oneof![
        10 => 0i64..120,
        5 => 120i64..MINUTES_15,
        3 => MINUTES_15 + 1..4 * 3600,
        1 => DAYS_7 + 1..2 * DAYS_7,
        1 => Just(MINUTES_15),
        1 => Just(DAYS_7),
    ]
}
