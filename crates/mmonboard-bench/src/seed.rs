//! Realistic histories for the workloads: every event is produced by the real `decide` on the real aggregate,
//! so the log the benchmark reads is one the domain accepts.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use futures_util::future::join_all;
use mmonboard_app::codec::{stream_id, to_new_event};
use mmonboard_domain::command::MirroredAdAccount;
use mmonboard_domain::country::CountryCode;
use mmonboard_domain::facts::{
    AccountStatus, OwnershipType, PhoneNumberFacts, PortfolioFacts, PortfolioRole,
    TemplateCategory, WabaFacts,
};
use mmonboard_domain::ids::*;
use mmonboard_domain::{Aggregate, Decider, DomainConfig, OnboardingCommand, OnboardingEvent};
use mmonboard_eventlog::{AppendRequest, EventLog, EventMetadata, EventStore, ExpectedVersion};
use uuid::Uuid;

use crate::BenchError;

fn id<T>(parsed: Result<T, InvalidValue>) -> Result<T, BenchError> {
    parsed.map_err(|error| BenchError::Workload(format!("a generated id is invalid: {error}")))
}

pub(crate) fn portfolio_id(number: u64) -> Result<PortfolioId, BenchError> {
    id(PortfolioId::parse(&(7_000_000_000 + number).to_string()))
}

pub(crate) fn waba_id(number: u64) -> Result<WabaId, BenchError> {
    id(WabaId::parse(&(1_000_000_000 + number).to_string()))
}

pub(crate) fn template_id(number: u64) -> Result<TemplateId, BenchError> {
    id(TemplateId::parse(&(3_000_000_000 + number).to_string()))
}

/// The benchmark's domain configuration: no config-sync wait, so W1 needs no simulated time.
pub(crate) fn config() -> DomainConfig {
    DomainConfig {
        config_sync_window: TimeDelta::zero(),
        ..DomainConfig::default()
    }
}

/// The eight commands that take portfolio `number` from nothing to live.
pub(crate) fn onboarding_commands(number: u64) -> Result<Vec<OnboardingCommand>, BenchError> {
    let brazil = id(CountryCode::parse("BR"))?;
    let waba_id = waba_id(number)?;
    let admin = id(UserId::parse("5000000001"))?;
    let facts = PortfolioFacts {
        business_country: brazil,
        business_subdivision: None,
        enable_offered: true,
        terms_status: None,
        wabas: vec![WabaFacts {
            waba_id: waba_id.clone(),
            ownership_type: OwnershipType::ClientOwned,
            account_status: AccountStatus::Active,
            tax_country: brazil,
            phone_numbers: vec![PhoneNumberFacts {
                phone_number_id: id(PhoneNumberId::parse(&(2_000_000_000 + number).to_string()))?,
                country: brazil,
                registered_on_cloud_api: true,
                uses_business_app: false,
            }],
            meta_status: None,
        }],
    };
    Ok(vec![
        OnboardingCommand::StartOnboarding {},
        OnboardingCommand::CheckEligibility { facts },
        OnboardingCommand::ReviewPermissions {
            reviewed_by: admin.clone(),
        },
        OnboardingCommand::SubmitBusinessInfo {
            business_name: id(BusinessName::parse("Bench Retail Ltda"))?,
            website: id(WebsiteUrl::parse("https://bench.example"))?,
        },
        OnboardingCommand::AcceptTerms {
            accepted_by: admin,
            role: PortfolioRole::Admin,
            terms_version: id(TermsVersion::parse("2025-07"))?,
        },
        OnboardingCommand::Connect {
            ad_accounts: vec![MirroredAdAccount {
                waba_id,
                ad_account_id: id(AdAccountId::parse(&(4_000_000_000 + number).to_string()))?,
            }],
        },
        OnboardingCommand::StartConfigSync {},
        OnboardingCommand::CompleteSync {},
    ])
}

pub(crate) fn template_change(number: u64) -> Result<OnboardingCommand, BenchError> {
    Ok(OnboardingCommand::ChangeTemplate {
        waba_id: waba_id(number)?,
        template_id: template_id(number)?,
        name: id(TemplateName::parse("black_friday_offer"))?,
        language: id(TemplateLanguage::parse("pt_BR"))?,
        category: TemplateCategory::Marketing,
    })
}

pub(crate) fn template_use(number: u64) -> Result<OnboardingCommand, BenchError> {
    Ok(OnboardingCommand::RecordTemplateUse {
        waba_id: waba_id(number)?,
        template_id: template_id(number)?,
    })
}

fn epoch() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_default()
}

/// A live portfolio with a marketing template, then `uses` sends of it: decided for real, in memory.
pub(crate) fn history(number: u64, uses: usize) -> Result<Vec<OnboardingEvent>, BenchError> {
    let decider = Decider::new(config());
    let mut aggregate = Aggregate::new(portfolio_id(number)?);
    let mut events = Vec::new();
    let mut now = epoch();
    let mut commands = onboarding_commands(number)?;
    commands.push(template_change(number)?);
    let use_command = template_use(number)?;
    commands.extend(std::iter::repeat_n(use_command, uses));
    for command in &commands {
        now += TimeDelta::seconds(1);
        let decided = decider
            .decide(&aggregate, command, now)
            .map_err(|refusal| BenchError::Workload(format!("seeding was refused: {refusal}")))?;
        for event in decided {
            aggregate.apply(&event).map_err(|error| {
                BenchError::Workload(format!("seeding made an unexplained event: {error}"))
            })?;
            events.push(event);
        }
    }
    Ok(events)
}

/// Append a history to its (new) stream in requests of at most `chunk` events.
pub(crate) async fn append_history(
    store: &EventLog,
    number: u64,
    events: &[OnboardingEvent],
    chunk: usize,
) -> Result<(), BenchError> {
    let stream_id = stream_id(&portfolio_id(number)?);
    let mut version = 0u64;
    for part in events.chunks(chunk) {
        let command_id = Uuid::now_v7();
        let request = AppendRequest {
            stream_id: stream_id.clone(),
            expected_version: if version == 0 {
                ExpectedVersion::NoStream
            } else {
                ExpectedVersion::Exact(version)
            },
            command_id,
            metadata: EventMetadata {
                command_id,
                actor: "bench".into(),
                correlation_id: command_id,
                causation_id: None,
            },
            recorded_at: part.last().map_or_else(epoch, OnboardingEvent::at),
            events: part.iter().map(to_new_event).collect(),
        };
        store.append(request).await?;
        version += part.len() as u64;
    }
    Ok(())
}

/// Grow the log to at least `target` events with many portfolios of ~20 events each, appended concurrently.
pub(crate) async fn fill_log(store: &Arc<EventLog>, target: u64) -> Result<(), BenchError> {
    const USES_PER_PORTFOLIO: usize = 11;
    let mut number = 10_000_000;
    while store.head_position().await? < target {
        let mut appends = Vec::new();
        for _ in 0..256 {
            number += 1;
            let events = history(number, USES_PER_PORTFOLIO)?;
            let store = Arc::clone(store);
            appends.push(tokio::spawn(async move {
                append_history(&store, number, &events, events.len()).await
            }));
        }
        for joined in join_all(appends).await {
            joined.map_err(|error| {
                BenchError::Workload(format!("a seeding task failed: {error}"))
            })??;
        }
    }
    Ok(())
}
