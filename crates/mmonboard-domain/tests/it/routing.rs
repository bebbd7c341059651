//! DOMAIN.md's routing rule, a case each: what goes through the MM API and why everything else falls back
//! (or is refused under STRICT).

use mmonboard_domain::facts::{SuspensionReason, TemplateCategory, WabaExitReason};
use mmonboard_domain::{
    DomainConfig, MessageKind, OnboardingCommand, ProductPolicy, Route, RoutingDecision, route,
};

use crate::support::*;

fn marketing(template_id: &str) -> MessageKind {
    MessageKind::MarketingTemplate {
        template_id: template(template_id),
    }
}

fn ask(
    given: &History,
    minute: i64,
    waba_id: &str,
    kind: MessageKind,
    policy: ProductPolicy,
) -> RoutingDecision {
    route(
        &given.aggregate,
        &waba(waba_id),
        &kind,
        policy,
        t(minute),
        &DomainConfig::default(),
    )
}

/// Live, template 3001 changed at minute 30 and reported synced at minute 45.
fn ready() -> History {
    History::live_with_template().then(45, mirror_synced("1001", "3001"))
}

fn assert_falls_back(decision: RoutingDecision, code: &str) {
    assert_eq!(decision.route, Some(Route::CloudApi), "{decision:?}");
    assert_eq!(decision.reason.code(), code, "{decision:?}");
}

#[test]
fn a_synced_marketing_template_of_a_live_portfolio_uses_the_mm_api() {
    let decision = ask(
        &ready(),
        50,
        "1001",
        marketing("3001"),
        ProductPolicy::Strict,
    );
    assert_eq!(decision.route, Some(Route::MarketingMessagesApi));
    assert_eq!(decision.reason.code(), "marketing_ready");
}

#[test]
fn non_marketing_messages_always_use_cloud_api() {
    for kind in [
        MessageKind::Utility,
        MessageKind::Authentication,
        MessageKind::Service,
        MessageKind::FreeForm,
    ] {
        assert_falls_back(
            ask(&ready(), 50, "1001", kind.clone(), ProductPolicy::Strict),
            "not_marketing",
        );
        assert_falls_back(
            ask(&History::started(), 1, "1001", kind, ProductPolicy::Strict),
            "not_marketing",
        );
    }
}

#[test]
fn nothing_uses_the_mm_api_during_the_config_sync_window() {
    let decision = ask(
        &History::syncing(),
        20,
        "1001",
        marketing("3001"),
        ProductPolicy::CloudApiFallback,
    );
    assert_falls_back(decision.clone(), "config_sync_in_progress");
    assert!(
        decision.reason.to_string().contains("2026-01-01T00:25:00Z"),
        "{}",
        decision.reason
    );
}

#[test]
fn a_portfolio_not_yet_enabled_falls_back() {
    assert_falls_back(
        ask(
            &History::terms_pending(),
            5,
            "1001",
            marketing("3001"),
            ProductPolicy::CloudApiFallback,
        ),
        "portfolio_not_enabled",
    );
}

#[test]
fn a_template_in_its_sync_window_falls_back_until_its_mirror_reports_synced() {
    let live = History::live_with_template();
    assert_falls_back(
        ask(
            &live,
            40,
            "1001",
            marketing("3001"),
            ProductPolicy::CloudApiFallback,
        ),
        "template_syncing",
    );
    assert_falls_back(
        ask(
            &live,
            50,
            "1001",
            marketing("3001"),
            ProductPolicy::CloudApiFallback,
        ),
        "template_mirror_not_synced",
    );
    let changed_again = ready().then(
        50,
        change_template("1001", "3001", TemplateCategory::Marketing),
    );
    assert_falls_back(
        ask(
            &changed_again,
            55,
            "1001",
            marketing("3001"),
            ProductPolicy::CloudApiFallback,
        ),
        "template_syncing",
    );
}

#[test]
fn a_dormant_template_falls_back_until_a_send_reactivates_it() {
    let week_later = 45 + 7 * 24 * 60 + 1;
    let given = ready();
    assert_falls_back(
        ask(
            &given,
            week_later,
            "1001",
            marketing("3001"),
            ProductPolicy::CloudApiFallback,
        ),
        "template_dormant",
    );
    let reactivated = given.then(week_later, use_template("1001", "3001"));
    assert_falls_back(
        ask(
            &reactivated,
            week_later + 1,
            "1001",
            marketing("3001"),
            ProductPolicy::CloudApiFallback,
        ),
        "template_syncing",
    );
}

#[test]
fn a_template_whose_latest_category_is_not_marketing_falls_back() {
    let given = ready().then(
        50,
        change_template("1001", "3001", TemplateCategory::Utility),
    );
    assert_falls_back(
        ask(
            &given,
            70,
            "1001",
            marketing("3001"),
            ProductPolicy::CloudApiFallback,
        ),
        "template_not_marketing",
    );
    assert_falls_back(
        ask(
            &given,
            70,
            "1001",
            marketing("3999"),
            ProductPolicy::CloudApiFallback,
        ),
        "unknown_template",
    );
}

#[test]
fn a_non_marketing_template_asked_by_id_uses_cloud_api_even_under_strict() {
    // A utility template is a non-marketing message: Cloud API whatever the policy, the portfolio's
    // progress or the WABA's standing (asking by id or by kind gives the same route).
    let given = ready().then(
        50,
        change_template("1001", "3001", TemplateCategory::Utility),
    );
    let restricted = given.clone().then(
        60,
        OnboardingCommand::RestrictWaba {
            waba_id: waba("1001"),
            reason: SuspensionReason::AccountRestriction,
        },
    );
    for history in [&given, &restricted] {
        for policy in [ProductPolicy::Strict, ProductPolicy::CloudApiFallback] {
            assert_falls_back(
                ask(history, 70, "1001", marketing("3001"), policy),
                "template_not_marketing",
            );
            assert_eq!(
                ask(history, 70, "1001", MessageKind::Utility, policy).route,
                Some(Route::CloudApi)
            );
        }
    }
    // A template not known as non-marketing is still held to the marketing rules under STRICT.
    let unknown = ask(&given, 70, "1001", marketing("3999"), ProductPolicy::Strict);
    assert_eq!(unknown.route, None, "{unknown:?}");
    assert_eq!(unknown.reason.code(), "unknown_template");
}

#[test]
fn a_restricted_or_offboarded_waba_falls_back() {
    let restrict = OnboardingCommand::RestrictWaba {
        waba_id: waba("1001"),
        reason: SuspensionReason::AccountRestriction,
    };
    let restricted = ready().then(50, restrict);
    assert_falls_back(
        ask(
            &restricted,
            51,
            "1001",
            marketing("3001"),
            ProductPolicy::CloudApiFallback,
        ),
        "waba_suspended",
    );
    let reinstated = restricted.then(
        52,
        OnboardingCommand::ReinstateWaba {
            facts: shared_waba("1001"),
        },
    );
    let decision = ask(
        &reinstated,
        53,
        "1001",
        marketing("3001"),
        ProductPolicy::CloudApiFallback,
    );
    assert_eq!(
        decision.route,
        Some(Route::MarketingMessagesApi),
        "reinstated: {decision:?}"
    );
    let offboard = OnboardingCommand::OffboardWaba {
        waba_id: waba("1001"),
        reason: WabaExitReason::PartnerRemoved,
    };
    let offboarded = reinstated.then(54, offboard);
    assert_falls_back(
        ask(
            &offboarded,
            55,
            "1001",
            marketing("3001"),
            ProductPolicy::CloudApiFallback,
        ),
        "waba_offboarded",
    );
    assert_falls_back(
        ask(
            &ready(),
            50,
            "1999",
            marketing("3001"),
            ProductPolicy::CloudApiFallback,
        ),
        "unknown_waba",
    );
}

#[test]
fn strict_refuses_with_the_reason_where_fallback_uses_cloud_api() {
    let live = History::live_with_template();
    let fallback = ask(
        &live,
        40,
        "1001",
        marketing("3001"),
        ProductPolicy::CloudApiFallback,
    );
    let strict = ask(&live, 40, "1001", marketing("3001"), ProductPolicy::Strict);
    assert_eq!(fallback.route, Some(Route::CloudApi));
    assert_eq!(
        strict.route, None,
        "STRICT sends nothing rather than fall back"
    );
    assert_eq!(strict.reason, fallback.reason);
    assert_eq!(strict.policy, ProductPolicy::Strict);
}

#[test]
fn policies_and_decisions_have_a_stable_json_form() {
    let policy: ProductPolicy =
        serde_json::from_str("\"CLOUD_API_FALLBACK\"").expect("Meta's spelling");
    assert_eq!(policy, ProductPolicy::CloudApiFallback);
    let decision = ask(
        &ready(),
        50,
        "1001",
        marketing("3001"),
        ProductPolicy::Strict,
    );
    let json = serde_json::to_value(&decision).expect("serialises");
    assert_eq!(json["route"], "marketing_messages_api");
    assert_eq!(json["reason"]["code"], "marketing_ready");
    assert_eq!(json["policy"], "STRICT");
}
