//! The reference model: DOMAIN.md's onboarding rules as one flat function over a plain struct, written without
//! `decide` or the statig machine, so that the two can be checked against each other. It borrows the eligibility
//! evaluation (tested on its own), the `Phase` names and the refusal codes of `Rule::code()`, and nothing else.
//!
//! `OnboardingModel::predict(command, now)` says what must happen; `ModelState` is a run of the model with a
//! clock, and `ReferenceModel` drives it as proptest-state-machine's reference state machine, so any crate can
//! run the same random command sequences against its own system under test.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, TimeDelta, Utc};
use proptest::prelude::*;
use proptest_state_machine::ReferenceStateMachine;

use crate::aggregate::Phase;
use crate::command::OnboardingCommand;
use crate::config::DomainConfig;
use crate::eligibility::{evaluate, evaluate_waba};
use crate::facts::{PortfolioRole, TemplateCategory};
use crate::ids::{TemplateId, WabaId};

use super::strategies::{Steerable, Steering, command_for, time_step};

/// Where a WABA of the last eligibility check stands for MM routing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelRouting {
    /// Not connected yet, or not eligible when the portfolio was connected.
    NotOnboarded,
    Onboarded,
    Suspended,
    Offboarded,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelTemplate {
    pub waba_id: WabaId,
    pub category: TemplateCategory,
    /// The mirror is not relied on before this (a change or a reactivation restarts it).
    pub window_ends_at: DateTime<Utc>,
    pub mirror_synced: bool,
    /// The latest change or send: the start of the dormancy clock.
    pub last_activity_at: DateTime<Utc>,
}

/// What the model says a command does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prediction {
    Accepted(Box<OnboardingModel>),
    /// Refused with this `Rule::code()`.
    Refused(&'static str),
}

/// One portfolio's onboarding, as DOMAIN.md tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnboardingModel {
    pub config: DomainConfig,
    pub phase: Phase,
    pub last_event_at: Option<DateTime<Utc>>,
    /// Every WABA named by the last eligibility check.
    pub routing: BTreeMap<WabaId, ModelRouting>,
    /// OBO WABAs not migrated yet, and whether their migration was requested.
    pub pending_obo: BTreeMap<WabaId, bool>,
    /// WABAs eligible now (an OBO WABA joins once migrated, if OBO was all that stood in its way).
    pub eligible: BTreeSet<WabaId>,
    pub eligible_once_migrated: BTreeSet<WabaId>,
    pub sync_started_at: Option<DateTime<Utc>>,
    /// The terms request reached Meta (recorded once).
    pub terms_requested: bool,
    pub templates: BTreeMap<TemplateId, ModelTemplate>,
}

type Rule = Result<(), &'static str>;

impl OnboardingModel {
    pub fn new(config: DomainConfig) -> Self {
        Self {
            config,
            phase: Phase::NotStarted,
            last_event_at: None,
            routing: BTreeMap::new(),
            pending_obo: BTreeMap::new(),
            eligible: BTreeSet::new(),
            eligible_once_migrated: BTreeSet::new(),
            sync_started_at: None,
            terms_requested: false,
            templates: BTreeMap::new(),
        }
    }

    /// The state after `command` at `now`, or the code of the rule it breaks.
    pub fn predict(&self, command: &OnboardingCommand, now: DateTime<Utc>) -> Prediction {
        let mut next = self.clone();
        match next.run(command, now) {
            Ok(()) => {
                next.last_event_at = Some(now);
                Prediction::Accepted(Box::new(next))
            }
            Err(code) => Prediction::Refused(code),
        }
    }

    /// Preparation: eligibility may be (re-)checked, which restarts the flow from its verdict.
    pub fn is_preparing(&self) -> bool {
        use Phase::*;
        matches!(
            self.phase,
            CheckingEligibility
                | Ineligible
                | MigratingObo
                | ReviewingPermissions
                | EnteringBusinessInfo
        )
    }

    /// Connected with mirrored ad accounts: templates and WABA suspensions are tracked.
    pub fn is_enabled(&self) -> bool {
        matches!(
            self.phase,
            Phase::Connected | Phase::SyncingConfig | Phase::Live
        )
    }

    /// A step of the flow, allowed only in `allowed`. Elsewhere, what blocks the flow is named first.
    fn step_of_flow(&self, allowed: &[Phase]) -> Rule {
        match self.phase {
            phase if allowed.contains(&phase) => Ok(()),
            Phase::MigratingObo => Err("portfolio_still_contains_obo"),
            Phase::Ineligible => Err("portfolio_ineligible"),
            _ => Err("not_allowed_now"),
        }
    }

    fn enabled(&self) -> Rule {
        if self.is_enabled() {
            Ok(())
        } else {
            Err("not_allowed_now")
        }
    }

    fn routing_of(&self, waba_id: &WabaId) -> Result<ModelRouting, &'static str> {
        self.routing.get(waba_id).copied().ok_or("unknown_waba")
    }

    /// Onboarded (or suspended, when allowed) and not offboarded.
    fn routable(&self, waba_id: &WabaId, allow_suspended: bool) -> Rule {
        match self.routing_of(waba_id)? {
            ModelRouting::Onboarded => Ok(()),
            ModelRouting::Suspended if allow_suspended => Ok(()),
            ModelRouting::Suspended => Err("waba_suspended"),
            ModelRouting::Offboarded => Err("waba_offboarded"),
            ModelRouting::NotOnboarded => Err("waba_not_onboarded"),
        }
    }

    fn marketing_template(
        &mut self,
        waba_id: &WabaId,
        template_id: &TemplateId,
    ) -> Result<&mut ModelTemplate, &'static str> {
        let template = self
            .templates
            .get_mut(template_id)
            .ok_or("unknown_template")?;
        if template.waba_id != *waba_id {
            return Err("template_of_another_waba");
        }
        if template.category != TemplateCategory::Marketing {
            return Err("template_not_marketing");
        }
        Ok(template)
    }

    fn run(&mut self, command: &OnboardingCommand, now: DateTime<Utc>) -> Rule {
        use OnboardingCommand as C;
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
                if !self.is_preparing() {
                    return Err("not_allowed_now");
                }
                let ids: BTreeSet<&WabaId> = facts.wabas.iter().map(|waba| &waba.waba_id).collect();
                if ids.len() != facts.wabas.len() {
                    return Err("duplicate_waba_in_facts");
                }
                let verdict = evaluate(facts, &self.config.countries);
                let (mut eligible, mut once_migrated, mut obo) =
                    (BTreeSet::new(), BTreeSet::new(), BTreeMap::new());
                for (waba_id, waba) in &verdict.wabas {
                    if waba.is_eligible() {
                        eligible.insert(waba_id.clone());
                    }
                    if waba.needs_obo_migration() {
                        obo.insert(waba_id.clone(), false);
                        if waba.is_eligible_after_migration() {
                            once_migrated.insert(waba_id.clone());
                        }
                    }
                }
                self.routing = verdict
                    .wabas
                    .keys()
                    .map(|id| (id.clone(), ModelRouting::NotOnboarded))
                    .collect();
                self.eligible = eligible;
                self.eligible_once_migrated = once_migrated;
                self.pending_obo = obo;
                self.phase = if !verdict.may_proceed() {
                    Phase::Ineligible
                } else if !self.pending_obo.is_empty() {
                    Phase::MigratingObo
                } else {
                    Phase::ReviewingPermissions
                };
            }
            C::RequestOboMigration { waba_id } => {
                self.step_of_flow(&[Phase::MigratingObo])?;
                self.routing_of(waba_id)?;
                match self.pending_obo.get(waba_id) {
                    Some(false) => {
                        self.pending_obo.insert(waba_id.clone(), true);
                    }
                    Some(true) => return Err("migration_already_requested"),
                    None => return Err("not_awaiting_migration"),
                }
            }
            C::CompleteOboMigration { waba_id } => {
                self.step_of_flow(&[Phase::MigratingObo])?;
                self.routing_of(waba_id)?;
                match self.pending_obo.get(waba_id) {
                    Some(true) => {
                        self.pending_obo.remove(waba_id);
                        if self.eligible_once_migrated.contains(waba_id) {
                            self.eligible.insert(waba_id.clone());
                        }
                        if self.pending_obo.is_empty() {
                            self.phase = Phase::ReviewingPermissions;
                        }
                    }
                    Some(false) => return Err("migration_not_requested"),
                    None => return Err("not_awaiting_migration"),
                }
            }
            C::ReviewPermissions { .. } => {
                self.step_of_flow(&[Phase::ReviewingPermissions])?;
                self.phase = Phase::EnteringBusinessInfo;
            }
            C::SubmitBusinessInfo { .. } => {
                self.step_of_flow(&[Phase::EnteringBusinessInfo, Phase::TermsPending])?;
                self.phase = Phase::TermsPending;
            }
            C::AcceptTerms { role, .. } => {
                self.step_of_flow(&[Phase::TermsPending])?;
                if *role != PortfolioRole::Admin {
                    return Err("terms_require_admin");
                }
                self.phase = Phase::Connecting;
            }
            C::RecordTermsRequest { .. } => {
                self.step_of_flow(&[Phase::TermsPending])?;
                if self.terms_requested {
                    return Err("terms_already_requested");
                }
                self.terms_requested = true;
            }
            C::RecordTermsSigned { waba_id } => {
                self.step_of_flow(&[Phase::TermsPending])?;
                self.routing_of(waba_id)?;
                self.phase = Phase::Connecting;
            }
            // Making a stall visible is allowed whenever the onboarding is open; it changes no step.
            C::RecordProcessStall { .. } => {}
            C::Connect { ad_accounts } => {
                self.step_of_flow(&[Phase::Connecting])?;
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
                self.step_of_flow(&[Phase::Connected])?;
                self.sync_started_at = Some(now);
                self.phase = Phase::SyncingConfig;
            }
            C::CompleteSync {} => {
                self.step_of_flow(&[Phase::SyncingConfig])?;
                let window = self.config.config_sync_window;
                if self
                    .sync_started_at
                    .is_none_or(|started| now - started < window)
                {
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
                self.enabled()?;
                self.routable(waba_id, true)?;
                if let Some(existing) = self.templates.get(template_id)
                    && existing.waba_id != *waba_id
                {
                    return Err("template_of_another_waba");
                }
                let template = ModelTemplate {
                    waba_id: waba_id.clone(),
                    category: category.clone(),
                    window_ends_at: now + self.config.template_sync_window,
                    mirror_synced: false,
                    last_activity_at: now,
                };
                self.templates.insert(template_id.clone(), template);
            }
            C::RecordTemplateMirrorSynced {
                waba_id,
                template_id,
            } => {
                self.enabled()?;
                let template = self.marketing_template(waba_id, template_id)?;
                if template.mirror_synced {
                    return Err("template_already_synced");
                }
                if now < template.window_ends_at {
                    return Err("template_sync_window_open");
                }
                template.mirror_synced = true;
            }
            C::RecordTemplateUse {
                waba_id,
                template_id,
            } => {
                self.enabled()?;
                let (dormancy, window) =
                    (self.config.dormancy_after, self.config.template_sync_window);
                let template = self.marketing_template(waba_id, template_id)?;
                if now - template.last_activity_at > dormancy {
                    template.window_ends_at = now + window;
                    template.mirror_synced = false;
                }
                template.last_activity_at = now;
            }
            C::RestrictWaba { waba_id, .. } => {
                self.enabled()?;
                self.routable(waba_id, false)?;
                self.routing
                    .insert(waba_id.clone(), ModelRouting::Suspended);
            }
            C::ReinstateWaba { facts } => {
                self.enabled()?;
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
            }
            C::OffboardWaba { waba_id, .. } => {
                self.enabled()?;
                self.routable(waba_id, true)?;
                self.routing
                    .insert(waba_id.clone(), ModelRouting::Offboarded);
            }
            C::Offboard { .. } => self.phase = Phase::Offboarded,
        }
        Ok(())
    }
}

/// How the last step of a run went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelOutcome {
    Accepted,
    Refused(&'static str),
}

/// A run of the model: the model, the clock, and what the last step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelState {
    pub model: OnboardingModel,
    /// The clock: moves on every step, accepted or not.
    pub now: DateTime<Utc>,
    pub last_outcome: Option<ModelOutcome>,
    /// How many steps were accepted.
    pub accepted: usize,
    /// Whether the run has been live at some point.
    pub reached_live: bool,
}

impl ModelState {
    /// A run starting at 2026-01-01T00:00:00Z with nothing done.
    pub fn new(config: DomainConfig) -> Self {
        Self::starting_at(config, DateTime::UNIX_EPOCH + TimeDelta::days(20_454))
    }

    pub fn starting_at(config: DomainConfig, now: DateTime<Utc>) -> Self {
        Self {
            model: OnboardingModel::new(config),
            now,
            last_outcome: None,
            accepted: 0,
            reached_live: false,
        }
    }

    pub fn phase(&self) -> Phase {
        self.model.phase
    }

    pub fn config(&self) -> &DomainConfig {
        &self.model.config
    }

    /// Move the clock on by `seconds`, then apply `command` as the model predicts.
    pub fn step(&self, seconds: i64, command: &OnboardingCommand) -> Self {
        let now = self.now + TimeDelta::seconds(seconds);
        match self.model.predict(command, now) {
            Prediction::Accepted(model) => Self {
                reached_live: self.reached_live || model.phase == Phase::Live,
                model: *model,
                now,
                last_outcome: Some(ModelOutcome::Accepted),
                accepted: self.accepted + 1,
            },
            Prediction::Refused(code) => Self {
                now,
                last_outcome: Some(ModelOutcome::Refused(code)),
                ..self.clone()
            },
        }
    }
}

/// One transition of a random run: let time pass, then send a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Never negative (see `strategies::time_step`).
    pub seconds: i64,
    pub command: OnboardingCommand,
}

/// proptest-state-machine's reference state machine over the model, with the default configuration. Pair it
/// with a `StateMachineTest` whose system under test is the real thing (aggregate, service, store).
pub struct ReferenceModel;

impl ReferenceStateMachine for ReferenceModel {
    type State = ModelState;
    type Transition = Step;

    fn init_state() -> BoxedStrategy<Self::State> {
        Just(ModelState::new(DomainConfig::default())).boxed()
    }

    fn transitions(state: &Self::State) -> BoxedStrategy<Self::Transition> {
        (time_step(), command_for(state))
            .prop_map(|(seconds, command)| Step { seconds, command })
            .boxed()
    }

    fn apply(state: Self::State, step: &Self::Transition) -> Self::State {
        state.step(step.seconds, &step.command)
    }
}

impl Steerable for OnboardingModel {
    fn steering(&self) -> Steering {
        let with_routing = |wanted: ModelRouting| {
            self.routing
                .iter()
                .filter(|(_, routing)| **routing == wanted)
                .map(|(id, _)| id.clone())
                .collect()
        };
        Steering {
            phase: self.phase,
            pending_obo: self
                .pending_obo
                .iter()
                .map(|(id, requested)| (id.clone(), *requested))
                .collect(),
            eligible: self.eligible.iter().cloned().collect(),
            onboarded: with_routing(ModelRouting::Onboarded),
            suspended: with_routing(ModelRouting::Suspended),
            templates: self
                .templates
                .iter()
                .map(|(id, template)| (template.waba_id.clone(), id.clone()))
                .collect(),
        }
    }
}

impl Steerable for ModelState {
    fn steering(&self) -> Steering {
        self.model.steering()
    }
}
