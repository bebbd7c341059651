//! The reference model: the onboarding rules of DOMAIN.md as one flat function over a plain struct, written
//! without `decide` or the machine, so that the two can be checked against each other. It uses the eligibility
//! evaluation (tested on its own) and nothing else of the domain's logic.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, TimeZone, Utc};

use crate::aggregate::{Phase, Stage};
use crate::command::OnboardingCommand;
use crate::config::DomainConfig;
use crate::eligibility::{evaluate, evaluate_waba};
use crate::facts::{PortfolioRole, TemplateCategory};
use crate::ids::{TemplateId, WabaId};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelObo {
    Pending,
    Requested,
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelRouting {
    NotOnboarded,
    Onboarded,
    Suspended,
    Offboarded,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelTemplate {
    pub waba_id: WabaId,
    pub marketing: bool,
    pub window_ends_at: DateTime<Utc>,
    pub synced: bool,
    pub last_activity_at: DateTime<Utc>,
}

/// What the model predicted for the last step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelOutcome {
    Accepted,
    Refused(&'static str),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelState {
    pub config: DomainConfig,
    /// The clock: moves on every step, accepted or not.
    pub now: DateTime<Utc>,
    pub last_event_at: Option<DateTime<Utc>>,
    pub phase: Phase,
    pub known_wabas: BTreeSet<WabaId>,
    pub eligible: BTreeSet<WabaId>,
    /// OBO WABAs that become eligible once migrated.
    pub eligible_after_migration: BTreeSet<WabaId>,
    pub obo: BTreeMap<WabaId, ModelObo>,
    pub routing: BTreeMap<WabaId, ModelRouting>,
    pub sync_window_ends_at: Option<DateTime<Utc>>,
    pub templates: BTreeMap<TemplateId, ModelTemplate>,
    pub last_outcome: Option<ModelOutcome>,
    /// How many steps were accepted.
    pub accepted: usize,
}

impl ModelState {
    pub fn new(config: DomainConfig) -> Self {
        Self {
            config,
            now: Utc
                .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
                .single()
                .unwrap_or_default(),
            last_event_at: None,
            phase: Phase::NotStarted,
            known_wabas: BTreeSet::new(),
            eligible: BTreeSet::new(),
            eligible_after_migration: BTreeSet::new(),
            obo: BTreeMap::new(),
            routing: BTreeMap::new(),
            sync_window_ends_at: None,
            templates: BTreeMap::new(),
            last_outcome: None,
            accepted: 0,
        }
    }

    /// Move the clock by `seconds`, then apply `command`: the new state, with `last_outcome` set.
    pub fn step(&self, seconds: i64, command: &OnboardingCommand) -> Self {
        let mut next = self.clone();
        next.now += chrono::TimeDelta::seconds(seconds);
        match next.apply(command) {
            Ok(()) => {
                next.last_event_at = Some(next.now);
                next.accepted += 1;
                next.last_outcome = Some(ModelOutcome::Accepted);
                next
            }
            Err(code) => {
                let mut refused = self.clone();
                refused.now = next.now;
                refused.last_outcome = Some(ModelOutcome::Refused(code));
                refused
            }
        }
    }

    fn pending_obo(&self) -> bool {
        self.obo.values().any(|state| *state != ModelObo::Done)
    }

    fn require(&self, allowed: &[Phase]) -> Result<(), &'static str> {
        if allowed.contains(&self.phase) {
            Ok(())
        } else if self.phase == Phase::MigratingObo {
            Err("portfolio_still_contains_obo")
        } else if self.phase == Phase::Ineligible {
            Err("portfolio_ineligible")
        } else {
            Err("not_allowed_now")
        }
    }

    fn require_enabled(&self) -> Result<(), &'static str> {
        if self.phase.stage() == Stage::Enabled {
            Ok(())
        } else {
            Err("not_allowed_now")
        }
    }

    fn routing_of(&self, waba_id: &WabaId) -> Result<ModelRouting, &'static str> {
        self.routing.get(waba_id).copied().ok_or("unknown_waba")
    }

    fn routable(&self, waba_id: &WabaId, allow_suspended: bool) -> Result<(), &'static str> {
        match self.routing_of(waba_id)? {
            ModelRouting::Onboarded => Ok(()),
            ModelRouting::Suspended if allow_suspended => Ok(()),
            ModelRouting::Suspended => Err("waba_suspended"),
            ModelRouting::Offboarded => Err("waba_offboarded"),
            ModelRouting::NotOnboarded => Err("waba_not_onboarded"),
        }
    }

    fn marketing_template(
        &self,
        waba_id: &WabaId,
        template_id: &TemplateId,
    ) -> Result<ModelTemplate, &'static str> {
        let template = self.templates.get(template_id).ok_or("unknown_template")?;
        if template.waba_id != *waba_id {
            return Err("template_of_another_waba");
        }
        if !template.marketing {
            return Err("template_not_marketing");
        }
        Ok(template.clone())
    }

    fn apply(&mut self, command: &OnboardingCommand) -> Result<(), &'static str> {
        use OnboardingCommand as C;
        let now = self.now;
        match (self.phase, command) {
            (Phase::Offboarded, _) => return Err("already_offboarded"),
            (Phase::NotStarted, C::StartOnboarding {}) => {}
            (Phase::NotStarted, _) => return Err("not_started"),
            (_, C::StartOnboarding {}) => return Err("already_started"),
            _ => {}
        }
        if self.last_event_at.is_some_and(|last| now < last) {
            return Err("time_before_last_event");
        }
        match command {
            C::StartOnboarding {} => self.phase = Phase::CheckingEligibility,
            C::CheckEligibility { facts } => {
                if self.phase.stage() != Stage::Preparing {
                    return Err("not_allowed_now");
                }
                let ids: BTreeSet<&WabaId> = facts.wabas.iter().map(|waba| &waba.waba_id).collect();
                if ids.len() != facts.wabas.len() {
                    return Err("duplicate_waba_in_facts");
                }
                let verdict = evaluate(facts, &self.config.countries);
                self.known_wabas = verdict.wabas.keys().cloned().collect();
                self.eligible = verdict
                    .wabas
                    .iter()
                    .filter(|(_, v)| v.is_eligible())
                    .map(|(id, _)| id.clone())
                    .collect();
                self.eligible_after_migration = verdict
                    .wabas
                    .iter()
                    .filter(|(_, v)| v.needs_obo_migration() && v.is_eligible_after_migration())
                    .map(|(id, _)| id.clone())
                    .collect();
                self.obo = verdict
                    .obo_wabas()
                    .map(|id| (id.clone(), ModelObo::Pending))
                    .collect();
                self.routing = self
                    .known_wabas
                    .iter()
                    .map(|id| (id.clone(), ModelRouting::NotOnboarded))
                    .collect();
                self.phase = if !verdict.may_proceed() {
                    Phase::Ineligible
                } else if self.pending_obo() {
                    Phase::MigratingObo
                } else {
                    Phase::ReviewingPermissions
                };
            }
            C::RequestOboMigration { waba_id } => {
                self.require(&[Phase::MigratingObo])?;
                if !self.known_wabas.contains(waba_id) {
                    return Err("unknown_waba");
                }
                match self.obo.get(waba_id) {
                    Some(ModelObo::Pending) => {
                        self.obo.insert(waba_id.clone(), ModelObo::Requested);
                    }
                    Some(ModelObo::Requested) => return Err("migration_already_requested"),
                    _ => return Err("not_awaiting_migration"),
                }
            }
            C::CompleteOboMigration { waba_id } => {
                self.require(&[Phase::MigratingObo])?;
                if !self.known_wabas.contains(waba_id) {
                    return Err("unknown_waba");
                }
                match self.obo.get(waba_id) {
                    Some(ModelObo::Requested) => {
                        self.obo.insert(waba_id.clone(), ModelObo::Done);
                        if self.eligible_after_migration.contains(waba_id) {
                            self.eligible.insert(waba_id.clone());
                        }
                        if !self.pending_obo() {
                            self.phase = Phase::ReviewingPermissions;
                        }
                    }
                    Some(ModelObo::Pending) => return Err("migration_not_requested"),
                    _ => return Err("not_awaiting_migration"),
                }
            }
            C::ReviewPermissions { .. } => {
                self.require(&[Phase::ReviewingPermissions])?;
                self.phase = Phase::EnteringBusinessInfo;
            }
            C::SubmitBusinessInfo { .. } => {
                self.require(&[Phase::EnteringBusinessInfo, Phase::TermsPending])?;
                self.phase = Phase::TermsPending;
            }
            C::AcceptTerms { role, .. } => {
                self.require(&[Phase::TermsPending])?;
                if *role != PortfolioRole::Admin {
                    return Err("terms_require_admin");
                }
                self.phase = Phase::Connecting;
            }
            C::Connect { ad_accounts } => {
                self.require(&[Phase::Connecting])?;
                let mut given = BTreeSet::new();
                for account in ad_accounts {
                    if !self.eligible.contains(&account.waba_id) {
                        return Err("unexpected_ad_account");
                    }
                    if !given.insert(account.waba_id.clone()) {
                        return Err("duplicate_ad_account");
                    }
                }
                if given != self.eligible {
                    return Err("missing_ad_account");
                }
                for waba_id in given {
                    self.routing.insert(waba_id, ModelRouting::Onboarded);
                }
                self.phase = Phase::Connected;
            }
            C::StartConfigSync {} => {
                self.require(&[Phase::Connected])?;
                self.sync_window_ends_at = Some(now + self.config.config_sync_window);
                self.phase = Phase::SyncingConfig;
            }
            C::CompleteSync {} => {
                self.require(&[Phase::SyncingConfig])?;
                if self.sync_window_ends_at.is_none_or(|ends| now < ends) {
                    return Err("config_sync_window_open");
                }
                self.phase = Phase::Live;
            }
            C::ChangeTemplate {
                waba_id,
                template_id,
                category,
                ..
            } => {
                self.require_enabled()?;
                self.routable(waba_id, true)?;
                if self
                    .templates
                    .get(template_id)
                    .is_some_and(|template| template.waba_id != *waba_id)
                {
                    return Err("template_of_another_waba");
                }
                self.templates.insert(
                    template_id.clone(),
                    ModelTemplate {
                        waba_id: waba_id.clone(),
                        marketing: *category == TemplateCategory::Marketing,
                        window_ends_at: now + self.config.template_sync_window,
                        synced: false,
                        last_activity_at: now,
                    },
                );
            }
            C::RecordTemplateMirrorSynced {
                waba_id,
                template_id,
            } => {
                self.require_enabled()?;
                let template = self.marketing_template(waba_id, template_id)?;
                if template.synced {
                    return Err("template_already_synced");
                }
                if now < template.window_ends_at {
                    return Err("template_sync_window_open");
                }
                self.templates.insert(
                    template_id.clone(),
                    ModelTemplate {
                        synced: true,
                        ..template
                    },
                );
            }
            C::RecordTemplateUse {
                waba_id,
                template_id,
            } => {
                self.require_enabled()?;
                let mut template = self.marketing_template(waba_id, template_id)?;
                if now - template.last_activity_at > self.config.dormancy_after {
                    template.window_ends_at = now + self.config.template_sync_window;
                    template.synced = false;
                }
                template.last_activity_at = now;
                self.templates.insert(template_id.clone(), template);
            }
            C::RestrictWaba { waba_id, .. } => {
                self.require_enabled()?;
                self.routable(waba_id, false)?;
                self.routing
                    .insert(waba_id.clone(), ModelRouting::Suspended);
            }
            C::ReinstateWaba { facts } => {
                self.require_enabled()?;
                match self.routing_of(&facts.waba_id)? {
                    ModelRouting::Suspended => {}
                    ModelRouting::Onboarded => return Err("waba_not_suspended"),
                    ModelRouting::Offboarded => return Err("waba_offboarded"),
                    ModelRouting::NotOnboarded => return Err("waba_not_onboarded"),
                }
                if !evaluate_waba(facts, &self.config.countries).is_eligible() {
                    return Err("waba_still_ineligible");
                }
                self.routing
                    .insert(facts.waba_id.clone(), ModelRouting::Onboarded);
                self.eligible.insert(facts.waba_id.clone());
            }
            C::OffboardWaba { waba_id, .. } => {
                self.require_enabled()?;
                self.routable(waba_id, true)?;
                self.routing
                    .insert(waba_id.clone(), ModelRouting::Offboarded);
            }
            C::Offboard { .. } => self.phase = Phase::Offboarded,
        }
        Ok(())
    }
}
