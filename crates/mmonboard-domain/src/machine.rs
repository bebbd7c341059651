//! The statig state machine that folds onboarding events into state: the only way state is ever built. Its
//! event type is the domain event; commands never reach it (they go through `decide`). Every state has the
//! explicit `root` superstate, which counts events no state explains, so replay can refuse a log the machine
//! cannot account for instead of silently ignoring it (statig's implicit top accepts everything).
//!
//! Handlers only touch the machine's own storage: no clock, no I/O, no ids. Entry and exit actions are not used.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use statig::prelude::*;

use crate::command::MirroredAdAccount;
use crate::eligibility::{EligibilityVerdict, WabaIneligibility, WabaVerdict};
use crate::event::*;
use crate::facts::{
    PortfolioFacts, PortfolioRole, SuspensionReason, TemplateCategory, WabaExitReason,
};
use crate::ids::{
    AdAccountId, BusinessName, MetaRequestId, PortfolioId, Reason, StepName, TemplateId,
    TemplateLanguage, TemplateName, TermsVersion, UserId, WabaId, WebsiteUrl,
};

/// Where a WABA stands in the OBO to shared migration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum OboMigration {
    NotNeeded,
    Pending,
    Requested { at: DateTime<Utc> },
    Completed { at: DateTime<Utc> },
}

/// Whether a WABA's marketing traffic may use the MM API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum WabaRouting {
    /// The portfolio is not connected yet, or the WABA was not eligible when it was.
    NotOnboarded,
    Onboarded {
        since: DateTime<Utc>,
    },
    Suspended {
        reason: SuspensionReason,
        at: DateTime<Utc>,
    },
    Offboarded {
        reason: WabaExitReason,
        at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WabaRecord {
    pub verdict: WabaVerdict,
    pub obo_migration: OboMigration,
    pub ad_account_id: Option<AdAccountId>,
    pub routing: WabaRouting,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EligibilityRecord {
    pub facts: PortfolioFacts,
    pub verdict: EligibilityVerdict,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermissionsRecord {
    pub reviewed_by: UserId,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BusinessInfo {
    pub business_name: BusinessName,
    pub website: WebsiteUrl,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TermsRecord {
    pub accepted_by: UserId,
    pub role: PortfolioRole,
    pub terms_version: TermsVersion,
    pub at: DateTime<Utc>,
}

/// The terms request that reached Meta.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TermsRequestRecord {
    pub request_id: Option<MetaRequestId>,
    pub already_invited: bool,
    pub at: DateTime<Utc>,
}

/// Meta's report that a portfolio admin signed the terms in Meta's own flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TermsSignedRecord {
    pub reported_for_waba: WabaId,
    pub at: DateTime<Utc>,
}

/// A step Meta kept failing past the retry bound; current until the portfolio's next event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StallRecord {
    pub step: StepName,
    pub attempts: u32,
    pub error: Reason,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigSync {
    pub started_at: DateTime<Utc>,
    pub window_ends_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateRecord {
    pub waba_id: WabaId,
    pub name: TemplateName,
    pub language: TemplateLanguage,
    pub category: TemplateCategory,
    pub changed_at: DateTime<Utc>,
    /// The mirrored ad is not relied on before this time (a change or a reactivation restarts it).
    pub sync_window_ends_at: DateTime<Utc>,
    /// When the mirror last reported synced, if after the latest change.
    pub mirror_synced_at: Option<DateTime<Utc>>,
    /// Last send, or the latest change, whichever is later: the start of the dormancy clock.
    pub last_activity_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffboardRecord {
    pub reason: Reason,
    pub at: DateTime<Utc>,
}

/// The machine's shared storage: everything the fold knows beyond the current leaf state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Onboarding {
    pub portfolio_id: Option<PortfolioId>,
    pub started_at: Option<DateTime<Utc>>,
    pub eligibility: Option<EligibilityRecord>,
    pub wabas: BTreeMap<WabaId, WabaRecord>,
    pub permissions: Option<PermissionsRecord>,
    pub business_info: Option<BusinessInfo>,
    pub terms: Option<TermsRecord>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub terms_request: Option<TermsRequestRecord>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub terms_signed: Option<TermsSignedRecord>,
    pub connected_at: Option<DateTime<Utc>>,
    pub config_sync: Option<ConfigSync>,
    pub templates: BTreeMap<TemplateId, TemplateRecord>,
    pub offboarded: Option<OffboardRecord>,
    /// Events no state could explain; non-zero means the log is inconsistent with the machine.
    #[serde(skip)]
    pub unexplained_events: u64,
    #[serde(skip)]
    pub last_unexplained: Option<String>,
}

#[state_machine(
    initial = "State::not_started()",
    state(derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)),
    superstate(derive(Debug))
)]
impl Onboarding {
    #[state(superstate = "root")]
    fn not_started(&mut self, event: &OnboardingEvent) -> Outcome<State> {
        match event {
            OnboardingEvent::OnboardingStarted(started) => {
                self.portfolio_id = Some(started.portfolio_id.clone());
                self.started_at = Some(started.at);
                Transition(State::checking_eligibility())
            }
            _ => Super,
        }
    }

    #[state(superstate = "preparing")]
    fn checking_eligibility(event: &OnboardingEvent) -> Outcome<State> {
        let _ = event;
        Super
    }

    #[state(superstate = "preparing")]
    fn ineligible(event: &OnboardingEvent) -> Outcome<State> {
        let _ = event;
        Super
    }

    #[state(superstate = "preparing")]
    fn migrating_obo(&mut self, event: &OnboardingEvent) -> Outcome<State> {
        match event {
            OnboardingEvent::OboMigrationRequested(requested) => {
                match self.wabas.get_mut(&requested.waba_id) {
                    Some(record) if record.obo_migration == OboMigration::Pending => {
                        record.obo_migration = OboMigration::Requested { at: requested.at };
                        Handled
                    }
                    _ => Super,
                }
            }
            OnboardingEvent::OboWabaMigrated(migrated) => match self
                .wabas
                .get_mut(&migrated.waba_id)
            {
                Some(record) if matches!(record.obo_migration, OboMigration::Requested { .. }) => {
                    record.obo_migration = OboMigration::Completed { at: migrated.at };
                    record
                        .verdict
                        .reasons
                        .retain(|reason| *reason != WabaIneligibility::OnBehalfOf);
                    if self.pending_obo_wabas().next().is_none() {
                        Transition(State::reviewing_permissions())
                    } else {
                        Handled
                    }
                }
                _ => Super,
            },
            _ => Super,
        }
    }

    #[state(superstate = "preparing")]
    fn reviewing_permissions(&mut self, event: &OnboardingEvent) -> Outcome<State> {
        match event {
            OnboardingEvent::PermissionsReviewed(reviewed) => {
                self.permissions = Some(PermissionsRecord {
                    reviewed_by: reviewed.reviewed_by.clone(),
                    at: reviewed.at,
                });
                Transition(State::entering_business_info())
            }
            _ => Super,
        }
    }

    #[state(superstate = "preparing")]
    fn entering_business_info(&mut self, event: &OnboardingEvent) -> Outcome<State> {
        match event {
            OnboardingEvent::BusinessInformationSubmitted(submitted) => {
                self.record_business_info(submitted);
                Transition(State::terms_pending())
            }
            _ => Super,
        }
    }

    /// Preparation: eligibility may be checked again at any point, which restarts preparation from its verdict.
    #[superstate(superstate = "in_progress")]
    fn preparing(&mut self, event: &OnboardingEvent) -> Outcome<State> {
        match event {
            OnboardingEvent::EligibilityChecked(checked) => {
                self.record_eligibility(checked);
                if !checked.verdict.may_proceed() {
                    Transition(State::ineligible())
                } else if self.pending_obo_wabas().next().is_some() {
                    Transition(State::migrating_obo())
                } else {
                    Transition(State::reviewing_permissions())
                }
            }
            _ => Super,
        }
    }

    #[state(superstate = "awaiting_terms")]
    fn terms_pending(&mut self, event: &OnboardingEvent) -> Outcome<State> {
        match event {
            OnboardingEvent::BusinessInformationSubmitted(submitted) => {
                self.record_business_info(submitted);
                Handled
            }
            OnboardingEvent::TermsAccepted(accepted) if accepted.role == PortfolioRole::Admin => {
                self.terms = Some(TermsRecord {
                    accepted_by: accepted.accepted_by.clone(),
                    role: accepted.role.clone(),
                    terms_version: accepted.terms_version.clone(),
                    at: accepted.at,
                });
                Transition(State::connecting())
            }
            OnboardingEvent::TermsRequested(requested) if self.terms_request.is_none() => {
                self.terms_request = Some(TermsRequestRecord {
                    request_id: requested.request_id.clone(),
                    already_invited: requested.already_invited,
                    at: requested.at,
                });
                Handled
            }
            OnboardingEvent::TermsSigned(signed)
                if self.wabas.contains_key(&signed.reported_for_waba) =>
            {
                self.terms_signed = Some(TermsSignedRecord {
                    reported_for_waba: signed.reported_for_waba.clone(),
                    at: signed.at,
                });
                Transition(State::connecting())
            }
            _ => Super,
        }
    }

    #[state(superstate = "awaiting_terms")]
    fn connecting(&mut self, event: &OnboardingEvent) -> Outcome<State> {
        match event {
            OnboardingEvent::Connected(connected) => {
                self.record_connection(&connected.ad_accounts, connected.at);
                Transition(State::connected())
            }
            _ => Super,
        }
    }

    /// Awaiting terms: from business information submitted until Meta connects the portfolio.
    #[superstate(superstate = "in_progress")]
    fn awaiting_terms(event: &OnboardingEvent) -> Outcome<State> {
        let _ = event;
        Super
    }

    #[state(superstate = "enabled")]
    fn connected(&mut self, event: &OnboardingEvent) -> Outcome<State> {
        match event {
            OnboardingEvent::ConfigSyncStarted(started) => {
                self.config_sync = Some(ConfigSync {
                    started_at: started.at,
                    window_ends_at: started.window_ends_at,
                    completed_at: None,
                });
                Transition(State::syncing_config())
            }
            _ => Super,
        }
    }

    #[state(superstate = "enabled")]
    fn syncing_config(&mut self, event: &OnboardingEvent) -> Outcome<State> {
        match event {
            OnboardingEvent::SyncCompleted(completed) => match &mut self.config_sync {
                Some(sync) => {
                    sync.completed_at = Some(completed.at);
                    Transition(State::live())
                }
                None => Super,
            },
            _ => Super,
        }
    }

    #[state(superstate = "enabled")]
    fn live(event: &OnboardingEvent) -> Outcome<State> {
        let _ = event;
        Super
    }

    /// Enabled: connected with mirrored ad accounts. Templates and per-WABA suspensions live here.
    #[superstate(superstate = "in_progress")]
    fn enabled(&mut self, event: &OnboardingEvent) -> Outcome<State> {
        if self.apply_enabled_event(event) {
            Handled
        } else {
            Super
        }
    }

    /// Any started, not yet offboarded onboarding may be offboarded.
    #[superstate(superstate = "root")]
    fn in_progress(&mut self, event: &OnboardingEvent) -> Outcome<State> {
        match event {
            OnboardingEvent::OnboardingOffboarded(offboarded) => {
                // WABA records stay as they were: the phase says the whole portfolio is out of MM routing.
                self.offboarded = Some(OffboardRecord {
                    reason: offboarded.reason.clone(),
                    at: offboarded.at,
                });
                Transition(State::offboarded())
            }
            // The stall itself is kept by the aggregate, beside the version: it lasts until the next event.
            OnboardingEvent::ProcessStalled(_) => Handled,
            _ => Super,
        }
    }

    #[state(superstate = "root")]
    fn offboarded(event: &OnboardingEvent) -> Outcome<State> {
        let _ = event;
        Super
    }

    /// The explicit root: an event that reaches it was not explained by any state.
    #[superstate]
    fn root(&mut self, event: &OnboardingEvent) -> Outcome<State> {
        self.unexplained_events += 1;
        self.last_unexplained = Some(event.type_name().to_owned());
        Handled
    }
}

impl Onboarding {
    /// OBO WABAs whose migration has not completed.
    pub fn pending_obo_wabas(&self) -> impl Iterator<Item = &WabaId> {
        self.wabas
            .iter()
            .filter(|(_, record)| {
                matches!(
                    record.obo_migration,
                    OboMigration::Pending | OboMigration::Requested { .. }
                )
            })
            .map(|(id, _)| id)
    }

    /// WABAs eligible now (OBO ones count once migrated).
    pub fn eligible_wabas(&self) -> impl Iterator<Item = &WabaId> {
        self.wabas
            .iter()
            .filter(|(_, record)| record.verdict.is_eligible())
            .map(|(id, _)| id)
    }

    fn record_eligibility(&mut self, checked: &EligibilityChecked) {
        self.wabas = checked
            .verdict
            .wabas
            .iter()
            .map(|(waba_id, verdict)| {
                let obo_migration = if verdict.needs_obo_migration() {
                    OboMigration::Pending
                } else {
                    OboMigration::NotNeeded
                };
                let record = WabaRecord {
                    verdict: verdict.clone(),
                    obo_migration,
                    ad_account_id: None,
                    routing: WabaRouting::NotOnboarded,
                };
                (waba_id.clone(), record)
            })
            .collect();
        self.eligibility = Some(EligibilityRecord {
            facts: checked.facts.clone(),
            verdict: checked.verdict.clone(),
            at: checked.at,
        });
    }

    fn record_business_info(&mut self, submitted: &BusinessInformationSubmitted) {
        self.business_info = Some(BusinessInfo {
            business_name: submitted.business_name.clone(),
            website: submitted.website.clone(),
            at: submitted.at,
        });
    }

    fn record_connection(&mut self, ad_accounts: &[MirroredAdAccount], at: DateTime<Utc>) {
        self.connected_at = Some(at);
        for account in ad_accounts {
            if let Some(record) = self.wabas.get_mut(&account.waba_id) {
                record.ad_account_id = Some(account.ad_account_id.clone());
                record.routing = WabaRouting::Onboarded { since: at };
            }
        }
    }

    /// The events handled by the `enabled` superstate; false when the event does not fit the storage.
    fn apply_enabled_event(&mut self, event: &OnboardingEvent) -> bool {
        match event {
            OnboardingEvent::TemplateChanged(changed) => {
                self.templates.insert(
                    changed.template_id.clone(),
                    TemplateRecord {
                        waba_id: changed.waba_id.clone(),
                        name: changed.name.clone(),
                        language: changed.language.clone(),
                        category: changed.category.clone(),
                        changed_at: changed.at,
                        sync_window_ends_at: changed.sync_window_ends_at,
                        mirror_synced_at: None, // a change restarts the sync
                        last_activity_at: changed.at,
                    },
                );
                true
            }
            OnboardingEvent::TemplateMirrorSynced(synced) => {
                match self.templates.get_mut(&synced.template_id) {
                    Some(template) if template.waba_id == synced.waba_id => {
                        template.mirror_synced_at = Some(synced.at);
                        true
                    }
                    _ => false,
                }
            }
            OnboardingEvent::TemplateUsed(used) => {
                match self.templates.get_mut(&used.template_id) {
                    Some(template) if template.waba_id == used.waba_id => {
                        template.last_activity_at = used.at;
                        true
                    }
                    _ => false,
                }
            }
            OnboardingEvent::TemplateReactivated(reactivated) => {
                match self.templates.get_mut(&reactivated.template_id) {
                    Some(template) if template.waba_id == reactivated.waba_id => {
                        template.last_activity_at = reactivated.at;
                        template.sync_window_ends_at = reactivated.sync_window_ends_at;
                        template.mirror_synced_at = None;
                        true
                    }
                    _ => false,
                }
            }
            OnboardingEvent::WabaRestricted(restricted) => {
                match self.wabas.get_mut(&restricted.waba_id) {
                    Some(record) if matches!(record.routing, WabaRouting::Onboarded { .. }) => {
                        record.routing = WabaRouting::Suspended {
                            reason: restricted.reason.clone(),
                            at: restricted.at,
                        };
                        true
                    }
                    _ => false,
                }
            }
            OnboardingEvent::WabaReinstated(reinstated) => {
                match self.wabas.get_mut(&reinstated.facts.waba_id) {
                    Some(record) if matches!(record.routing, WabaRouting::Suspended { .. }) => {
                        // Reinstatement is only ever decided on facts that passed the check; the fold trusts the
                        // event and never re-runs rules whose configuration may have changed since.
                        record.verdict = WabaVerdict {
                            reasons: Vec::new(),
                        };
                        record.routing = WabaRouting::Onboarded {
                            since: reinstated.at,
                        };
                        true
                    }
                    _ => false,
                }
            }
            OnboardingEvent::WabaOffboarded(offboarded) => {
                match self.wabas.get_mut(&offboarded.waba_id) {
                    Some(record)
                        if matches!(
                            record.routing,
                            WabaRouting::Onboarded { .. } | WabaRouting::Suspended { .. }
                        ) =>
                    {
                        record.routing = WabaRouting::Offboarded {
                            reason: offboarded.reason.clone(),
                            at: offboarded.at,
                        };
                        true
                    }
                    _ => false,
                }
            }
            _ => false,
        }
    }
}
