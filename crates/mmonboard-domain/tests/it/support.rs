//! Builders for the domain's tests: fixed times, ids, facts, and histories produced by running real commands
//! through `decide` and `Aggregate::apply`, so every history is one the machine accepts.

#![allow(dead_code)]

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use mmonboard_domain::command::MirroredAdAccount;
use mmonboard_domain::country::CountryCode;
use mmonboard_domain::facts::*;
use mmonboard_domain::ids::*;
use mmonboard_domain::{
    Aggregate, Decider, DomainConfig, OnboardingCommand, OnboardingEvent, Phase, Refusal,
};

/// 2026-01-01T00:00:00Z plus `minutes`.
pub fn t(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("a valid time")
        + TimeDelta::minutes(minutes)
}

pub fn portfolio() -> PortfolioId {
    PortfolioId::parse("9001").expect("valid")
}

pub fn waba(id: &str) -> WabaId {
    WabaId::parse(id).expect("valid")
}

pub fn template(id: &str) -> TemplateId {
    TemplateId::parse(id).expect("valid")
}

pub fn country(code: &str) -> CountryCode {
    CountryCode::parse(code).expect("valid")
}

pub fn user(id: &str) -> UserId {
    UserId::parse(id).expect("valid")
}

/// An eligible shared WABA with one Brazilian number on Cloud API.
pub fn shared_waba(id: &str) -> WabaFacts {
    WabaFacts {
        waba_id: waba(id),
        ownership_type: OwnershipType::ClientOwned,
        account_status: AccountStatus::Active,
        tax_country: country("BR"),
        phone_numbers: vec![PhoneNumberFacts {
            phone_number_id: PhoneNumberId::parse(&format!("5{id}")).expect("valid"),
            country: country("BR"),
            registered_on_cloud_api: true,
            uses_business_app: false,
        }],
        meta_status: None,
    }
}

pub fn obo_waba(id: &str) -> WabaFacts {
    WabaFacts {
        ownership_type: OwnershipType::OnBehalfOf,
        ..shared_waba(id)
    }
}

pub fn facts(wabas: Vec<WabaFacts>) -> PortfolioFacts {
    PortfolioFacts {
        business_country: country("BR"),
        business_subdivision: None,
        enable_offered: true,
        terms_status: None,
        wabas,
    }
}

pub fn check(wabas: Vec<WabaFacts>) -> OnboardingCommand {
    OnboardingCommand::CheckEligibility {
        facts: facts(wabas),
    }
}

pub fn accept_terms(role: PortfolioRole) -> OnboardingCommand {
    OnboardingCommand::AcceptTerms {
        accepted_by: user("7001"),
        role,
        terms_version: TermsVersion::parse("2025-07").expect("valid"),
    }
}

pub fn business_info() -> OnboardingCommand {
    OnboardingCommand::SubmitBusinessInfo {
        business_name: BusinessName::parse("Acme").expect("valid"),
        website: WebsiteUrl::parse("https://acme.example").expect("valid"),
    }
}

pub fn connect(wabas: &[&str]) -> OnboardingCommand {
    OnboardingCommand::Connect {
        ad_accounts: wabas
            .iter()
            .map(|id| MirroredAdAccount {
                waba_id: waba(id),
                ad_account_id: AdAccountId::parse(&format!("8{id}")).expect("valid"),
            })
            .collect(),
    }
}

pub fn change_template(
    waba_id: &str,
    template_id: &str,
    category: TemplateCategory,
) -> OnboardingCommand {
    OnboardingCommand::ChangeTemplate {
        waba_id: waba(waba_id),
        template_id: template(template_id),
        name: TemplateName::parse("offer").expect("valid"),
        language: TemplateLanguage::parse("en_US").expect("valid"),
        category,
    }
}

pub fn mirror_synced(waba_id: &str, template_id: &str) -> OnboardingCommand {
    OnboardingCommand::RecordTemplateMirrorSynced {
        waba_id: waba(waba_id),
        template_id: template(template_id),
    }
}

pub fn use_template(waba_id: &str, template_id: &str) -> OnboardingCommand {
    OnboardingCommand::RecordTemplateUse {
        waba_id: waba(waba_id),
        template_id: template(template_id),
    }
}

/// A history being built: commands at given minutes, each of which must be accepted.
#[derive(Clone)]
pub struct History {
    pub decider: Decider,
    pub aggregate: Aggregate,
    pub events: Vec<OnboardingEvent>,
    pub now: DateTime<Utc>,
}

impl History {
    pub fn new() -> Self {
        Self::with_config(DomainConfig::default())
    }

    pub fn with_config(config: DomainConfig) -> Self {
        Self {
            decider: Decider::new(config),
            aggregate: Aggregate::new(portfolio()),
            events: Vec::new(),
            now: t(0),
        }
    }

    /// Run `command` at minute `minute`; it must be accepted.
    pub fn then(mut self, minute: i64, command: OnboardingCommand) -> Self {
        self.now = t(minute);
        let events = self
            .decider
            .decide(&self.aggregate, &command, self.now)
            .unwrap_or_else(|refusal| {
                panic!("setting up: {} refused: {refusal}", command.type_name())
            });
        for event in events {
            self.aggregate
                .apply(&event)
                .expect("the machine explains every decided event");
            self.events.push(event);
        }
        self
    }

    pub fn started() -> Self {
        Self::new().then(0, OnboardingCommand::StartOnboarding {})
    }

    /// One eligible shared WABA "1001", up to terms pending.
    pub fn terms_pending() -> Self {
        Self::started()
            .then(1, check(vec![shared_waba("1001")]))
            .then(
                2,
                OnboardingCommand::ReviewPermissions {
                    reviewed_by: user("7001"),
                },
            )
            .then(3, business_info())
    }

    pub fn connected() -> Self {
        Self::terms_pending()
            .then(4, accept_terms(PortfolioRole::Admin))
            .then(5, connect(&["1001"]))
    }

    /// Config sync started at minute 10.
    pub fn syncing() -> Self {
        Self::connected().then(10, OnboardingCommand::StartConfigSync {})
    }

    /// Live from minute 25, with marketing template "3001" of WABA "1001" changed at minute 30.
    pub fn live_with_template() -> Self {
        Self::syncing()
            .then(25, OnboardingCommand::CompleteSync {})
            .then(
                30,
                change_template("1001", "3001", TemplateCategory::Marketing),
            )
    }

    pub fn phase(&self) -> Phase {
        self.aggregate.phase()
    }

    /// Decide `command` at `minute` without keeping the result.
    pub fn decide(
        &self,
        minute: i64,
        command: &OnboardingCommand,
    ) -> Result<Vec<OnboardingEvent>, Refusal> {
        self.decider.decide(&self.aggregate, command, t(minute))
    }
}

/// What a case expects.
pub enum Expect {
    /// Accepted, and the aggregate ends in this phase.
    Phase(Phase),
    /// Accepted with exactly these event types.
    Events(&'static [&'static str]),
    /// Refused with this code, and the message contains this text.
    Refused(&'static str, &'static str),
}

/// given `history`, when `command` at `minute`, then `expect`. Also checks that the history replays to the
/// same aggregate, that a refusal names the phase it met, and that accepted events are explained.
pub fn check_case(given: &History, minute: i64, command: OnboardingCommand, expect: Expect) {
    let replayed = Aggregate::replay(portfolio(), &given.events).expect("the history replays");
    assert_eq!(
        replayed, given.aggregate,
        "replaying the history gives the live state"
    );
    let result = given.decide(minute, &command);
    match (expect, result) {
        (Expect::Refused(code, text), Err(refusal)) => {
            assert_eq!(refusal.code(), code, "refusal: {refusal}");
            assert_eq!(
                refusal.phase,
                given.phase(),
                "a refusal names the phase it met"
            );
            assert!(
                refusal.to_string().contains(text),
                "expected {text:?} in {refusal}"
            );
        }
        (Expect::Refused(code, _), Ok(events)) => {
            panic!(
                "{} was accepted ({events:?}), expected refusal {code}",
                command.type_name()
            )
        }
        (expect, Ok(events)) => {
            let mut aggregate = given.aggregate.clone();
            for event in &events {
                aggregate
                    .apply(event)
                    .expect("the machine explains every decided event");
            }
            match expect {
                Expect::Phase(phase) => assert_eq!(aggregate.phase(), phase),
                Expect::Events(types) => {
                    let names: Vec<&str> = events.iter().map(OnboardingEvent::type_name).collect();
                    assert_eq!(names, types);
                }
                Expect::Refused(..) => unreachable!(),
            }
        }
        (_, Err(refusal)) => panic!("{} was refused: {refusal}", command.type_name()),
    }
}
