//! DOMAIN.md's rules, one small given/when/then case each.

use chrono::TimeDelta;
use mmonboard_domain::country::{CountryPolicy, Subdivision};
use mmonboard_domain::eligibility::{PortfolioIneligibility, WabaIneligibility, evaluate};
use mmonboard_domain::event::{OnboardingStarted, SyncCompleted};
use mmonboard_domain::facts::*;
use mmonboard_domain::ids::Reason;
use mmonboard_domain::{
    Aggregate, DomainConfig, OnboardingCommand, OnboardingEvent, Phase, ReplayError,
};

use crate::support::*;

fn waba_reasons(waba_facts: WabaFacts) -> Vec<WabaIneligibility> {
    let verdict = evaluate(&facts(vec![waba_facts]), &CountryPolicy::default());
    verdict
        .wabas
        .into_values()
        .next()
        .expect("one verdict")
        .reasons
}

fn portfolio_reasons(portfolio_facts: PortfolioFacts) -> Vec<PortfolioIneligibility> {
    evaluate(&portfolio_facts, &CountryPolicy::default()).portfolio_reasons
}

// ---- eligibility, per WABA ----

#[test]
fn an_active_shared_waba_on_cloud_api_is_eligible() {
    assert_eq!(waba_reasons(shared_waba("1001")), vec![]);
}

#[test]
fn a_waba_without_a_number_on_cloud_api_is_ineligible() {
    let mut waba = shared_waba("1001");
    waba.phone_numbers[0].registered_on_cloud_api = false;
    assert_eq!(waba_reasons(waba), vec![WabaIneligibility::NotOnCloudApi]);
}

#[test]
fn restricted_and_disabled_wabas_are_ineligible() {
    for status in [
        AccountStatus::Restricted,
        AccountStatus::Disabled,
        AccountStatus::Unknown("PAUSED".into()),
    ] {
        let waba = WabaFacts {
            account_status: status.clone(),
            ..shared_waba("1001")
        };
        assert_eq!(
            waba_reasons(waba),
            vec![WabaIneligibility::InactiveOrRestricted { status }]
        );
    }
}

#[test]
fn an_obo_waba_must_be_migrated_first() {
    assert_eq!(
        waba_reasons(obo_waba("1001")),
        vec![WabaIneligibility::OnBehalfOf]
    );
}

#[test]
fn an_unknown_ownership_type_is_kept_and_ineligible() {
    let ownership_type = OwnershipType::Unknown("SOMETHING_NEW".into());
    let waba = WabaFacts {
        ownership_type: ownership_type.clone(),
        ..shared_waba("1001")
    };
    assert_eq!(
        waba_reasons(waba),
        vec![WabaIneligibility::UnrecognisedOwnership { ownership_type }]
    );
}

#[test]
fn sanctioned_tax_countries_are_ineligible() {
    for code in ["CU", "IR", "KP", "SY"] {
        let waba = WabaFacts {
            tax_country: country(code),
            ..shared_waba("1001")
        };
        assert_eq!(
            waba_reasons(waba),
            vec![WabaIneligibility::TaxCountryNotSupported {
                country: country(code)
            }]
        );
    }
}

#[test]
fn a_phone_number_in_an_unsupported_country_makes_the_waba_ineligible() {
    let mut waba = shared_waba("1001");
    waba.phone_numbers[0].country = country("IR");
    let phone_number_id = waba.phone_numbers[0].phone_number_id.clone();
    assert_eq!(
        waba_reasons(waba),
        vec![WabaIneligibility::PhoneCountryNotSupported {
            phone_number_id,
            country: country("IR")
        }]
    );
}

#[test]
fn a_number_used_in_the_whatsapp_business_app_makes_the_waba_ineligible() {
    let mut waba = shared_waba("1001");
    waba.phone_numbers[0].uses_business_app = true;
    let reasons = waba_reasons(waba);
    assert!(
        matches!(
            reasons.as_slice(),
            [WabaIneligibility::UsingWhatsAppBusinessApp { .. }]
        ),
        "{reasons:?}"
    );
}

#[test]
fn meta_reporting_ineligible_is_honoured_even_for_values_this_build_does_not_know() {
    for status in [
        WabaOnboardingStatus::IneligibleCountryNotSupported,
        WabaOnboardingStatus::Unknown("INELIGIBLE_SOME_NEW_RULE".into()),
    ] {
        let waba = WabaFacts {
            meta_status: Some(status.clone()),
            ..shared_waba("1001")
        };
        assert_eq!(
            waba_reasons(waba),
            vec![WabaIneligibility::MetaReportsIneligible { status }]
        );
    }
}

#[test]
fn unknown_non_ineligible_meta_values_are_kept_without_blocking() {
    let status = WabaOnboardingStatus::Unknown("PENDING_SOMETHING".into());
    let waba = WabaFacts {
        meta_status: Some(status),
        ..shared_waba("1001")
    };
    assert_eq!(waba_reasons(waba), vec![]);
}

#[test]
fn every_reason_is_reported_not_just_the_first() {
    let mut waba = WabaFacts {
        account_status: AccountStatus::Restricted,
        ..obo_waba("1001")
    };
    waba.phone_numbers[0].registered_on_cloud_api = false;
    assert_eq!(waba_reasons(waba).len(), 3);
}

// ---- eligibility, per portfolio ----

#[test]
fn a_portfolio_not_offered_enablement_is_told_to_contact_support() {
    let reasons = portfolio_reasons(PortfolioFacts {
        enable_offered: false,
        ..facts(vec![shared_waba("1001")])
    });
    assert_eq!(reasons, vec![PortfolioIneligibility::EnableNotOffered]);
    assert!(
        reasons[0]
            .to_string()
            .contains("contact your account manager or support")
    );
}

#[test]
fn an_unsupported_business_country_blocks_the_portfolio() {
    let reasons = portfolio_reasons(PortfolioFacts {
        business_country: country("KP"),
        ..facts(vec![shared_waba("1001")])
    });
    assert_eq!(
        reasons,
        vec![PortfolioIneligibility::BusinessCountryNotSupported {
            country: country("KP")
        }]
    );
}

#[test]
fn crimea_donetsk_and_luhansk_are_never_supported() {
    for code in ["UA-43", "UA-40", "UA-14", "UA-09"] {
        let subdivision = Subdivision::parse(code).expect("valid");
        let reasons = portfolio_reasons(PortfolioFacts {
            business_country: country("UA"),
            business_subdivision: Some(subdivision.clone()),
            ..facts(vec![shared_waba("1001")])
        });
        assert_eq!(
            reasons,
            vec![PortfolioIneligibility::BusinessRegionNotSupported { subdivision }]
        );
    }
}

#[test]
fn a_portfolio_needs_a_waba_and_an_eligible_one() {
    assert_eq!(
        portfolio_reasons(facts(vec![])),
        vec![PortfolioIneligibility::NoWabas]
    );
    let restricted = WabaFacts {
        account_status: AccountStatus::Restricted,
        ..shared_waba("1001")
    };
    assert_eq!(
        portfolio_reasons(facts(vec![restricted])),
        vec![PortfolioIneligibility::NoEligibleWaba]
    );
}

#[test]
fn one_eligible_waba_is_enough_even_beside_an_ineligible_one() {
    let restricted = WabaFacts {
        account_status: AccountStatus::Restricted,
        ..shared_waba("1002")
    };
    check_case(
        &History::started(),
        1,
        check(vec![shared_waba("1001"), restricted]),
        Expect::Phase(Phase::ReviewingPermissions),
    );
}

#[test]
fn the_country_policy_is_configuration() {
    let policy = CountryPolicy {
        supported: Some([country("BR")].into()),
        ..CountryPolicy::default()
    };
    let mexican = WabaFacts {
        tax_country: country("MX"),
        ..shared_waba("1001")
    };
    let verdict = evaluate(&facts(vec![mexican]), &policy);
    assert_eq!(
        verdict.portfolio_reasons,
        vec![PortfolioIneligibility::NoEligibleWaba]
    );
}

#[test]
fn an_ineligible_verdict_is_recorded_and_blocks_the_next_steps() {
    let given = History::started().then(1, check(vec![]));
    assert_eq!(given.phase(), Phase::Ineligible);
    let review = OnboardingCommand::ReviewPermissions {
        reviewed_by: user("7001"),
    };
    check_case(
        &given,
        2,
        review,
        Expect::Refused("portfolio_ineligible", "no WhatsApp Business Account"),
    );
    check_case(
        &given,
        2,
        check(vec![shared_waba("1001")]),
        Expect::Phase(Phase::ReviewingPermissions),
    );
}

#[test]
fn facts_naming_a_waba_twice_are_refused() {
    check_case(
        &History::started(),
        1,
        check(vec![shared_waba("1001"), shared_waba("1001")]),
        Expect::Refused("duplicate_waba_in_facts", "more than once"),
    );
}

// ---- the flow ----

#[test]
fn onboarding_starts_once() {
    check_case(
        &History::new(),
        0,
        OnboardingCommand::StartOnboarding {},
        Expect::Events(&["onboarding_started"]),
    );
    check_case(
        &History::started(),
        1,
        OnboardingCommand::StartOnboarding {},
        Expect::Refused("already_started", ""),
    );
}

#[test]
fn nothing_happens_before_the_onboarding_starts() {
    for command in [
        check(vec![shared_waba("1001")]),
        accept_terms(PortfolioRole::Admin),
        OnboardingCommand::CompleteSync {},
        OnboardingCommand::Offboard {
            reason: Reason::parse("test").expect("valid"),
        },
    ] {
        check_case(
            &History::new(),
            0,
            command,
            Expect::Refused("not_started", "has not been started"),
        );
    }
}

#[test]
fn an_obo_waba_is_migrated_before_the_onboarding_goes_on() {
    let given = History::started().then(1, check(vec![shared_waba("1001"), obo_waba("1234")]));
    assert_eq!(given.phase(), Phase::MigratingObo);
    let review = OnboardingCommand::ReviewPermissions {
        reviewed_by: user("7001"),
    };
    check_case(
        &given,
        2,
        review,
        Expect::Refused(
            "portfolio_still_contains_obo",
            "portfolio still contains OBO WABA 1234",
        ),
    );
    let complete = OnboardingCommand::CompleteOboMigration {
        waba_id: waba("1234"),
    };
    check_case(
        &given,
        2,
        complete.clone(),
        Expect::Refused("migration_not_requested", "not requested"),
    );
    let request = OnboardingCommand::RequestOboMigration {
        waba_id: waba("1234"),
    };
    let requested = given.clone().then(2, request.clone());
    check_case(
        &requested,
        3,
        request,
        Expect::Refused("migration_already_requested", "already requested"),
    );
    let not_obo = OnboardingCommand::RequestOboMigration {
        waba_id: waba("1001"),
    };
    check_case(
        &given,
        2,
        not_obo,
        Expect::Refused("not_awaiting_migration", "1001"),
    );
    check_case(
        &requested,
        5,
        complete.clone(),
        Expect::Phase(Phase::ReviewingPermissions),
    );
    let migrated = requested.then(5, complete);
    assert!(
        migrated.aggregate.data().wabas[&waba("1234")]
            .verdict
            .is_eligible(),
        "the migrated WABA is eligible"
    );
}

#[test]
fn terms_can_only_be_accepted_by_a_portfolio_admin() {
    let given = History::terms_pending();
    for role in [
        PortfolioRole::Employee,
        PortfolioRole::FinanceEditor,
        PortfolioRole::FinanceAnalyst,
        PortfolioRole::Developer,
        PortfolioRole::Unknown("OWNER_MAYBE".into()),
    ] {
        check_case(
            &given,
            4,
            accept_terms(role),
            Expect::Refused(
                "terms_require_admin",
                "terms can only be accepted by a portfolio admin",
            ),
        );
    }
    check_case(
        &given,
        4,
        accept_terms(PortfolioRole::Admin),
        Expect::Phase(Phase::Connecting),
    );
}

#[test]
fn terms_come_after_the_business_information() {
    let given = History::started()
        .then(1, check(vec![shared_waba("1001")]))
        .then(
            2,
            OnboardingCommand::ReviewPermissions {
                reviewed_by: user("7001"),
            },
        );
    check_case(
        &given,
        3,
        accept_terms(PortfolioRole::Admin),
        Expect::Refused("not_allowed_now", "entering_business_info"),
    );
}

#[test]
fn business_information_may_be_corrected_while_terms_are_pending() {
    check_case(
        &History::terms_pending(),
        4,
        business_info(),
        Expect::Phase(Phase::TermsPending),
    );
}

#[test]
fn connecting_needs_exactly_one_ad_account_per_eligible_waba() {
    let restricted = WabaFacts {
        account_status: AccountStatus::Restricted,
        ..shared_waba("1002")
    };
    let given = History::started()
        .then(
            1,
            check(vec![shared_waba("1001"), shared_waba("1003"), restricted]),
        )
        .then(
            2,
            OnboardingCommand::ReviewPermissions {
                reviewed_by: user("7001"),
            },
        )
        .then(3, business_info())
        .then(4, accept_terms(PortfolioRole::Admin));
    check_case(
        &given,
        5,
        connect(&["1001"]),
        Expect::Refused("missing_ad_account", "1003"),
    );
    check_case(
        &given,
        5,
        connect(&["1001", "1003", "1002"]),
        Expect::Refused("unexpected_ad_account", "1002"),
    );
    check_case(
        &given,
        5,
        connect(&["1001", "1001", "1003"]),
        Expect::Refused("duplicate_ad_account", "1001"),
    );
    check_case(
        &given,
        5,
        connect(&["1003", "1001"]),
        Expect::Phase(Phase::Connected),
    );
}

#[test]
fn the_sync_cannot_complete_before_its_15_minute_window_ends() {
    let given = History::syncing();
    let too_early = given
        .decide(24, &OnboardingCommand::CompleteSync {})
        .expect_err("refused at +14 minutes");
    assert_eq!(too_early.code(), "config_sync_window_open");
    assert!(
        too_early
            .to_string()
            .contains("sync cannot complete before 15 minutes after"),
        "{too_early}"
    );
    let almost = given.decider.decide(
        &given.aggregate,
        &OnboardingCommand::CompleteSync {},
        t(25) - TimeDelta::seconds(1),
    );
    assert!(almost.is_err(), "refused at 14:59");
    check_case(
        &given,
        25,
        OnboardingCommand::CompleteSync {},
        Expect::Phase(Phase::Live),
    );
}

#[test]
fn the_sync_window_is_configurable() {
    let config = DomainConfig {
        config_sync_window: TimeDelta::minutes(10),
        ..DomainConfig::default()
    };
    let given = History::with_config(config)
        .then(0, OnboardingCommand::StartOnboarding {})
        .then(1, check(vec![shared_waba("1001")]))
        .then(
            2,
            OnboardingCommand::ReviewPermissions {
                reviewed_by: user("7001"),
            },
        )
        .then(3, business_info())
        .then(4, accept_terms(PortfolioRole::Admin))
        .then(5, connect(&["1001"]))
        .then(10, OnboardingCommand::StartConfigSync {});
    check_case(
        &given,
        20,
        OnboardingCommand::CompleteSync {},
        Expect::Phase(Phase::Live),
    );
}

#[test]
fn a_template_mirror_is_relied_on_only_15_minutes_after_a_change() {
    let given = History::live_with_template();
    check_case(
        &given,
        44,
        mirror_synced("1001", "3001"),
        Expect::Refused("template_sync_window_open", "3001"),
    );
    check_case(
        &given,
        45,
        mirror_synced("1001", "3001"),
        Expect::Events(&["template_mirror_synced"]),
    );
    let changed_again = given.then(
        40,
        change_template("1001", "3001", TemplateCategory::Marketing),
    );
    check_case(
        &changed_again,
        45,
        mirror_synced("1001", "3001"),
        Expect::Refused("template_sync_window_open", ""),
    );
    check_case(
        &changed_again,
        55,
        mirror_synced("1001", "3001"),
        Expect::Events(&["template_mirror_synced"]),
    );
}

#[test]
fn only_a_template_whose_latest_category_is_marketing_is_mirrored() {
    let given = History::live_with_template().then(
        31,
        change_template("1001", "3001", TemplateCategory::Utility),
    );
    check_case(
        &given,
        60,
        mirror_synced("1001", "3001"),
        Expect::Refused("template_not_marketing", "MARKETING"),
    );
    check_case(
        &given,
        60,
        use_template("1001", "3001"),
        Expect::Refused("template_not_marketing", ""),
    );
}

#[test]
fn a_template_belongs_to_one_waba() {
    let given = History::live_with_template();
    check_case(
        &given,
        50,
        use_template("1002", "3001"),
        Expect::Refused("template_of_another_waba", "1001"),
    );
    check_case(
        &given,
        50,
        use_template("1001", "3999"),
        Expect::Refused("unknown_template", "3999"),
    );
}

#[test]
fn a_template_unused_for_more_than_7_days_is_reactivated_with_a_new_window() {
    let given = History::live_with_template();
    let week = 7 * 24 * 60;
    check_case(
        &given,
        30 + week,
        use_template("1001", "3001"),
        Expect::Events(&["template_used"]),
    );
    let later = 30 + week + 1;
    check_case(
        &given,
        later,
        use_template("1001", "3001"),
        Expect::Events(&["template_reactivated"]),
    );
    let reactivated = given.then(later, use_template("1001", "3001"));
    check_case(
        &reactivated,
        later + 14,
        mirror_synced("1001", "3001"),
        Expect::Refused("template_sync_window_open", ""),
    );
    check_case(
        &reactivated,
        later + 15,
        mirror_synced("1001", "3001"),
        Expect::Events(&["template_mirror_synced"]),
    );
}

#[test]
fn a_restricted_waba_is_reinstated_only_by_a_passing_check() {
    let restrict = OnboardingCommand::RestrictWaba {
        waba_id: waba("1001"),
        reason: SuspensionReason::AccountRestriction,
    };
    let given = History::live_with_template();
    check_case(
        &given,
        40,
        restrict.clone(),
        Expect::Events(&["waba_restricted"]),
    );
    let restricted = given.then(40, restrict.clone());
    check_case(
        &restricted,
        41,
        restrict,
        Expect::Refused("waba_suspended", "1001"),
    );
    let still_bad = WabaFacts {
        account_status: AccountStatus::Restricted,
        ..shared_waba("1001")
    };
    check_case(
        &restricted,
        41,
        OnboardingCommand::ReinstateWaba { facts: still_bad },
        Expect::Refused("waba_still_ineligible", "not active"),
    );
    let reinstate = OnboardingCommand::ReinstateWaba {
        facts: shared_waba("1001"),
    };
    check_case(
        &restricted,
        42,
        reinstate.clone(),
        Expect::Events(&["waba_reinstated"]),
    );
    let reinstated = restricted.then(42, reinstate.clone());
    check_case(
        &reinstated,
        43,
        reinstate,
        Expect::Refused("waba_not_suspended", "1001"),
    );
}

#[test]
fn an_offboarded_waba_stays_out() {
    let offboard = OnboardingCommand::OffboardWaba {
        waba_id: waba("1001"),
        reason: WabaExitReason::PartnerRemoved,
    };
    let given = History::live_with_template().then(40, offboard);
    let restrict = OnboardingCommand::RestrictWaba {
        waba_id: waba("1001"),
        reason: SuspensionReason::DisabledUpdate,
    };
    check_case(
        &given,
        41,
        restrict,
        Expect::Refused("waba_offboarded", "1001"),
    );
    check_case(
        &given,
        41,
        change_template("1001", "3002", TemplateCategory::Marketing),
        Expect::Refused("waba_offboarded", ""),
    );
}

#[test]
fn templates_and_suspensions_wait_for_the_connection() {
    let restrict = OnboardingCommand::RestrictWaba {
        waba_id: waba("1001"),
        reason: SuspensionReason::AccountRestriction,
    };
    check_case(
        &History::terms_pending(),
        4,
        restrict,
        Expect::Refused("not_allowed_now", "connected"),
    );
}

#[test]
fn offboarding_ends_everything_from_any_started_phase() {
    let offboard = || OnboardingCommand::Offboard {
        reason: Reason::parse("customer left").expect("valid"),
    };
    for given in [
        History::started(),
        History::terms_pending(),
        History::syncing(),
        History::live_with_template(),
    ] {
        let minute = 100;
        check_case(&given, minute, offboard(), Expect::Phase(Phase::Offboarded));
        let offboarded = given.then(minute, offboard());
        check_case(
            &offboarded,
            minute + 1,
            offboard(),
            Expect::Refused("already_offboarded", ""),
        );
        check_case(
            &offboarded,
            minute + 1,
            check(vec![shared_waba("1001")]),
            Expect::Refused("already_offboarded", ""),
        );
    }
}

#[test]
fn a_decision_cannot_be_dated_before_the_last_event() {
    let given = History::terms_pending();
    check_case(
        &given,
        2,
        accept_terms(PortfolioRole::Admin),
        Expect::Refused("time_before_last_event", "before the last"),
    );
}

#[test]
fn eligibility_is_rechecked_only_while_preparing() {
    check_case(
        &History::terms_pending(),
        4,
        check(vec![shared_waba("1001")]),
        Expect::Refused("not_allowed_now", "reinstate_waba"),
    );
}

// ---- replay ----

#[test]
fn replay_refuses_an_event_the_machine_cannot_explain() {
    let events = vec![
        OnboardingEvent::OnboardingStarted(OnboardingStarted {
            portfolio_id: portfolio(),
            at: t(0),
        }),
        OnboardingEvent::SyncCompleted(SyncCompleted { at: t(1) }),
    ];
    let error = Aggregate::replay(portfolio(), &events).expect_err("unexplained");
    assert_eq!(
        error,
        ReplayError::Unexplained {
            version: 2,
            event_type: "sync_completed",
            phase: Phase::CheckingEligibility
        }
    );
}

#[test]
fn replay_refuses_another_portfolios_history() {
    let other = mmonboard_domain::ids::PortfolioId::parse("4242").expect("valid");
    let events = vec![OnboardingEvent::OnboardingStarted(OnboardingStarted {
        portfolio_id: other,
        at: t(0),
    })];
    assert!(matches!(
        Aggregate::replay(portfolio(), &events),
        Err(ReplayError::WrongPortfolio { .. })
    ));
}

#[test]
fn a_full_onboarding_replays_to_the_same_state() {
    let live = History::live_with_template().then(45, mirror_synced("1001", "3001"));
    assert_eq!(
        Aggregate::replay(portfolio(), &live.events).expect("replays"),
        live.aggregate
    );
    assert_eq!(live.phase(), Phase::Live);
}

#[test]
fn a_portfolio_ineligibility_code_is_its_stored_reason_tag() {
    let subdivision = Subdivision::parse("UA-43").expect("valid");
    for reason in [
        PortfolioIneligibility::EnableNotOffered,
        PortfolioIneligibility::BusinessCountryNotSupported {
            country: country("KP"),
        },
        PortfolioIneligibility::BusinessRegionNotSupported { subdivision },
        PortfolioIneligibility::NoWabas,
        PortfolioIneligibility::NoEligibleWaba,
    ] {
        let stored = serde_json::to_value(&reason).expect("serializes");
        assert_eq!(stored["reason"], reason.code(), "{reason:?}");
    }
}
