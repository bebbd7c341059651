//! The stored form of every event type, pinned byte for byte. A change here means stored history would be
//! read differently: add a schema version and an upcast instead. `UPDATE_GOLDEN=1 cargo test` creates the
//! file of a new event type (never one that exists, never under `CI=true`).

use std::path::PathBuf;

use mmonboard_domain::event::*;
use mmonboard_domain::facts::{PortfolioRole, SuspensionReason, TemplateCategory, WabaExitReason};
use mmonboard_domain::ids::*;
use mmonboard_domain::{DecodeError, MirroredAdAccount, OnboardingEvent};

use crate::support::*;

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// One realistic sample of every event type.
fn samples() -> Vec<OnboardingEvent> {
    let checked = History::started().then(1, check(vec![shared_waba("1001"), obo_waba("1002")]));
    let eligibility = checked
        .events
        .last()
        .cloned()
        .expect("an eligibility event");
    vec![
        OnboardingEvent::OnboardingStarted(OnboardingStarted {
            portfolio_id: portfolio(),
            at: t(0),
        }),
        eligibility,
        OnboardingEvent::OboMigrationRequested(OboMigrationRequested {
            waba_id: waba("1002"),
            at: t(2),
        }),
        OnboardingEvent::OboWabaMigrated(OboWabaMigrated {
            waba_id: waba("1002"),
            at: t(3),
        }),
        OnboardingEvent::PermissionsReviewed(PermissionsReviewed {
            reviewed_by: user("7001"),
            at: t(4),
        }),
        OnboardingEvent::BusinessInformationSubmitted(BusinessInformationSubmitted {
            business_name: BusinessName::parse("Acme Ltda").expect("valid"),
            website: WebsiteUrl::parse("https://acme.example").expect("valid"),
            at: t(5),
        }),
        OnboardingEvent::TermsAccepted(TermsAccepted {
            accepted_by: user("7001"),
            role: PortfolioRole::Admin,
            terms_version: TermsVersion::parse("2025-07").expect("valid"),
            at: t(6),
        }),
        OnboardingEvent::Connected(Connected {
            ad_accounts: vec![MirroredAdAccount {
                waba_id: waba("1001"),
                ad_account_id: AdAccountId::parse("81001").expect("valid"),
            }],
            at: t(7),
        }),
        OnboardingEvent::ConfigSyncStarted(ConfigSyncStarted {
            window_ends_at: t(23),
            at: t(8),
        }),
        OnboardingEvent::SyncCompleted(SyncCompleted { at: t(23) }),
        OnboardingEvent::TemplateChanged(TemplateChanged {
            waba_id: waba("1001"),
            template_id: template("3001"),
            name: TemplateName::parse("black_friday_offer").expect("valid"),
            language: TemplateLanguage::parse("pt_BR").expect("valid"),
            category: TemplateCategory::Marketing,
            sync_window_ends_at: t(39),
            at: t(24),
        }),
        OnboardingEvent::TemplateMirrorSynced(TemplateMirrorSynced {
            waba_id: waba("1001"),
            template_id: template("3001"),
            at: t(40),
        }),
        OnboardingEvent::TemplateUsed(TemplateUsed {
            waba_id: waba("1001"),
            template_id: template("3001"),
            at: t(41),
        }),
        OnboardingEvent::TemplateReactivated(TemplateReactivated {
            waba_id: waba("1001"),
            template_id: template("3001"),
            sync_window_ends_at: t(20_000),
            at: t(19_985),
        }),
        OnboardingEvent::WabaRestricted(WabaRestricted {
            waba_id: waba("1001"),
            reason: SuspensionReason::AccountRestriction,
            at: t(20_001),
        }),
        OnboardingEvent::WabaReinstated(WabaReinstated {
            facts: shared_waba("1001"),
            at: t(20_002),
        }),
        OnboardingEvent::WabaOffboarded(WabaOffboarded {
            waba_id: waba("1001"),
            reason: WabaExitReason::PartnerRemoved,
            at: t(20_003),
        }),
        OnboardingEvent::OnboardingOffboarded(OnboardingOffboarded {
            reason: Reason::parse("customer left the provider").expect("valid"),
            at: t(20_004),
        }),
        OnboardingEvent::TermsRequested(TermsRequested {
            request_id: Some(MetaRequestId::parse("mmreq-4100000001-1").expect("valid")),
            already_invited: false,
            at: t(20_005),
        }),
        OnboardingEvent::TermsSigned(TermsSigned {
            reported_for_waba: waba("1001"),
            at: t(20_006),
        }),
        OnboardingEvent::ProcessStalled(ProcessStalled {
            step: StepName::parse("request_terms").expect("valid"),
            attempts: 8,
            error: Reason::parse("requesting the MM API terms for business portfolio 4100000001: Meta answered HTTP 500 with error 1: Meta failed transiently (An unknown error occurred)").expect("valid"),
            at: t(20_007),
        }),
    ]
}

/// Whether missing golden files may be written: only when asked for explicitly (`UPDATE_GOLDEN=1` or
/// `true`), and never in CI, where a missing file is a failure. An existing file is never rewritten: a
/// stored form that changed is a new schema version, not a new golden file.
fn may_create_golden_files(update_golden: Option<&str>, ci: Option<&str>) -> bool {
    let asked = matches!(update_golden, Some("1" | "true"));
    let in_ci = ci.is_some_and(|ci| !matches!(ci, "" | "0" | "false"));
    asked && !in_ci
}

#[test]
fn golden_files_are_only_created_when_asked_for_and_never_in_ci() {
    assert!(may_create_golden_files(Some("1"), None));
    assert!(may_create_golden_files(Some("true"), Some("false")));
    assert!(!may_create_golden_files(Some("0"), None));
    assert!(!may_create_golden_files(Some(""), None));
    assert!(!may_create_golden_files(Some("yes please"), None));
    assert!(!may_create_golden_files(None, None));
    assert!(!may_create_golden_files(Some("1"), Some("true")));
}

#[test]
fn every_event_type_is_stored_exactly_as_its_golden_file_says() {
    let update_golden = std::env::var("UPDATE_GOLDEN").ok();
    let ci = std::env::var("CI").ok();
    let create = may_create_golden_files(update_golden.as_deref(), ci.as_deref());
    for sample in samples() {
        let path = golden_dir().join(format!(
            "{}.v{CURRENT_SCHEMA_VERSION}.json",
            sample.type_name()
        ));
        let encoded = sample.encode();
        if create && !path.exists() {
            std::fs::write(&path, format!("{encoded}\n")).expect("golden file written");
        }
        let golden = std::fs::read_to_string(&path).unwrap_or_else(|error| {
            panic!(
                "{}: {error} (run with UPDATE_GOLDEN=1, outside CI, to create it for a new type)",
                path.display()
            )
        });
        let golden = golden.trim_end_matches('\n');
        assert_eq!(
            encoded,
            golden,
            "the stored form of {} drifted",
            sample.type_name()
        );
        let decoded = OnboardingEvent::decode(sample.type_name(), CURRENT_SCHEMA_VERSION, golden)
            .expect("decodes");
        assert_eq!(decoded, sample);
    }
}

#[test]
fn there_is_a_golden_file_for_every_type_and_a_type_for_every_golden_file() {
    let sampled: std::collections::BTreeSet<&str> =
        samples().iter().map(OnboardingEvent::type_name).collect();
    let declared: std::collections::BTreeSet<&str> = ALL_TYPE_NAMES.iter().copied().collect();
    assert_eq!(sampled, declared, "every stored type has a sample");
    let files: std::collections::BTreeSet<String> = std::fs::read_dir(golden_dir())
        .expect("golden dir")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let expected: std::collections::BTreeSet<String> = declared
        .iter()
        .map(|name| format!("{name}.v{CURRENT_SCHEMA_VERSION}.json"))
        .collect();
    assert_eq!(files, expected);
}

#[test]
fn unknown_types_and_versions_are_typed_errors() {
    assert!(matches!(
        OnboardingEvent::decode("no_such_event", 1, "{}"),
        Err(DecodeError::UnknownType { .. })
    ));
    assert!(matches!(
        OnboardingEvent::decode(type_names::SYNC_COMPLETED, 99, "{}"),
        Err(DecodeError::UnknownVersion {
            schema_version: 99,
            ..
        })
    ));
    assert!(matches!(
        OnboardingEvent::decode(type_names::SYNC_COMPLETED, 1, "{\"at\": 5}"),
        Err(DecodeError::Payload { .. })
    ));
}
