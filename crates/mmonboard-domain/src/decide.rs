//! `decide`: the pure function from (state, command, now) to the events that happen, or a typed refusal. It
//! reads the aggregate, never changes it, and does no I/O: whatever it needs from outside is in the command.
//! Every event it returns is one the machine explains in the current state (the model-based tests check it).

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use crate::aggregate::{Aggregate, Phase, Stage};
use crate::command::{MirroredAdAccount, OnboardingCommand};
use crate::config::DomainConfig;
use crate::eligibility::{evaluate, evaluate_waba};
use crate::event::*;
use crate::facts::{PortfolioFacts, PortfolioRole, TemplateCategory};
use crate::ids::{TemplateId, WabaId};
use crate::machine::{OboMigration, TemplateRecord, WabaRecord, WabaRouting};
use crate::refusal::{Refusal, Rule};

/// Decide with the default configuration (DOMAIN.md's windows and country policy).
pub fn decide(
    aggregate: &Aggregate,
    command: &OnboardingCommand,
    now: DateTime<Utc>,
) -> Result<Vec<OnboardingEvent>, Refusal> {
    Decider::default().decide(aggregate, command, now)
}

/// `decide` with an explicit configuration.
#[derive(Debug, Clone, Default)]
pub struct Decider {
    pub config: DomainConfig,
}

impl Decider {
    pub fn new(config: DomainConfig) -> Self {
        Self { config }
    }

    pub fn decide(
        &self,
        aggregate: &Aggregate,
        command: &OnboardingCommand,
        now: DateTime<Utc>,
    ) -> Result<Vec<OnboardingEvent>, Refusal> {
        let phase = aggregate.phase();
        let refuse = |rule: Rule| Refusal { phase, rule };
        match (phase, command) {
            (Phase::Offboarded, _) => return Err(refuse(Rule::AlreadyOffboarded)),
            (Phase::NotStarted, OnboardingCommand::StartOnboarding {}) => {}
            (Phase::NotStarted, _) => return Err(refuse(Rule::NotStarted)),
            (_, OnboardingCommand::StartOnboarding {}) => return Err(refuse(Rule::AlreadyStarted)),
            _ => {}
        }
        if let Some(last_event_at) = aggregate.last_event_at()
            && now < last_event_at
        {
            return Err(refuse(Rule::TimeBeforeLastEvent { now, last_event_at }));
        }
        let context = Context {
            aggregate,
            config: &self.config,
            now,
            phase,
        };
        context.decide(command).map_err(refuse)
    }
}

struct Context<'a> {
    aggregate: &'a Aggregate,
    config: &'a DomainConfig,
    now: DateTime<Utc>,
    phase: Phase,
}

type Decision = Result<Vec<OnboardingEvent>, Rule>;

impl Context<'_> {
    fn decide(&self, command: &OnboardingCommand) -> Decision {
        let now = self.now;
        let one = |event: OnboardingEvent| Ok(vec![event]);
        match command {
            OnboardingCommand::StartOnboarding {} => {
                one(OnboardingEvent::OnboardingStarted(OnboardingStarted {
                    portfolio_id: self.aggregate.portfolio_id().clone(),
                    at: now,
                }))
            }
            OnboardingCommand::CheckEligibility { facts } => self.check_eligibility(facts),
            OnboardingCommand::RequestOboMigration { waba_id } => {
                self.require_phase(
                    command,
                    &[Phase::MigratingObo],
                    "OBO migrations happen after an eligibility check finds OBO WABAs",
                )?;
                match &self.waba(waba_id)?.obo_migration {
                    OboMigration::Pending => one(OnboardingEvent::OboMigrationRequested(
                        OboMigrationRequested {
                            waba_id: waba_id.clone(),
                            at: now,
                        },
                    )),
                    OboMigration::Requested { .. } => Err(Rule::MigrationAlreadyRequested {
                        waba_id: waba_id.clone(),
                    }),
                    OboMigration::NotNeeded | OboMigration::Completed { .. } => {
                        Err(Rule::NotAwaitingMigration {
                            waba_id: waba_id.clone(),
                        })
                    }
                }
            }
            OnboardingCommand::CompleteOboMigration { waba_id } => {
                self.require_phase(
                    command,
                    &[Phase::MigratingObo],
                    "OBO migrations happen after an eligibility check finds OBO WABAs",
                )?;
                match &self.waba(waba_id)?.obo_migration {
                    OboMigration::Requested { .. } => {
                        one(OnboardingEvent::OboWabaMigrated(OboWabaMigrated {
                            waba_id: waba_id.clone(),
                            at: now,
                        }))
                    }
                    OboMigration::Pending => Err(Rule::MigrationNotRequested {
                        waba_id: waba_id.clone(),
                    }),
                    OboMigration::NotNeeded | OboMigration::Completed { .. } => {
                        Err(Rule::NotAwaitingMigration {
                            waba_id: waba_id.clone(),
                        })
                    }
                }
            }
            OnboardingCommand::ReviewPermissions { reviewed_by } => {
                self.require_phase(
                    command,
                    &[Phase::ReviewingPermissions],
                    "permissions are reviewed once the portfolio is eligible",
                )?;
                one(OnboardingEvent::PermissionsReviewed(PermissionsReviewed {
                    reviewed_by: reviewed_by.clone(),
                    at: now,
                }))
            }
            OnboardingCommand::SubmitBusinessInfo {
                business_name,
                website,
            } => {
                self.require_phase(
                    command,
                    &[Phase::EnteringBusinessInfo, Phase::TermsPending],
                    "business information is entered after the permissions review and before the terms",
                )?;
                one(OnboardingEvent::BusinessInformationSubmitted(
                    BusinessInformationSubmitted {
                        business_name: business_name.clone(),
                        website: website.clone(),
                        at: now,
                    },
                ))
            }
            OnboardingCommand::AcceptTerms {
                accepted_by,
                role,
                terms_version,
            } => {
                self.require_phase(
                    command,
                    &[Phase::TermsPending],
                    "terms are accepted after the business information is entered",
                )?;
                if *role != PortfolioRole::Admin {
                    return Err(Rule::TermsRequireAdmin { role: role.clone() });
                }
                one(OnboardingEvent::TermsAccepted(TermsAccepted {
                    accepted_by: accepted_by.clone(),
                    role: role.clone(),
                    terms_version: terms_version.clone(),
                    at: now,
                }))
            }
            OnboardingCommand::RecordTermsRequest {
                request_id,
                already_invited,
            } => {
                self.require_phase(
                    command,
                    &[Phase::TermsPending],
                    "the terms are requested after the business information is entered",
                )?;
                if self.aggregate.data().terms_request.is_some() {
                    return Err(Rule::TermsAlreadyRequested);
                }
                one(OnboardingEvent::TermsRequested(TermsRequested {
                    request_id: request_id.clone(),
                    already_invited: *already_invited,
                    at: now,
                }))
            }
            OnboardingCommand::RecordTermsSigned { waba_id } => {
                self.require_phase(
                    command,
                    &[Phase::TermsPending],
                    "Meta reports the terms signed after the business information is entered",
                )?;
                self.waba(waba_id)?;
                one(OnboardingEvent::TermsSigned(TermsSigned {
                    reported_for_waba: waba_id.clone(),
                    at: now,
                }))
            }
            OnboardingCommand::RecordProcessStall {
                step,
                attempts,
                error,
            } => one(OnboardingEvent::ProcessStalled(ProcessStalled {
                step: step.clone(),
                attempts: *attempts,
                error: error.clone(),
                at: now,
            })),
            OnboardingCommand::Connect { ad_accounts } => {
                self.require_phase(
                    command,
                    &[Phase::Connecting],
                    "the portfolio is connected after a portfolio admin accepts the terms",
                )?;
                let ad_accounts = self.check_ad_accounts(ad_accounts)?;
                one(OnboardingEvent::Connected(Connected {
                    ad_accounts,
                    at: now,
                }))
            }
            OnboardingCommand::StartConfigSync {} => {
                self.require_phase(
                    command,
                    &[Phase::Connected],
                    "the configuration sync starts once the portfolio is connected",
                )?;
                one(OnboardingEvent::ConfigSyncStarted(ConfigSyncStarted {
                    window_ends_at: now + self.config.config_sync_window,
                    at: now,
                }))
            }
            OnboardingCommand::CompleteSync {} => {
                self.require_phase(
                    command,
                    &[Phase::SyncingConfig],
                    "the sync completes after the configuration sync started",
                )?;
                let sync =
                    self.aggregate
                        .data()
                        .config_sync
                        .as_ref()
                        .ok_or(Rule::NotAllowedNow {
                            command: command.type_name(),
                            phase: self.phase,
                            expected: "the configuration sync has not started",
                        })?;
                if now < sync.window_ends_at {
                    return Err(Rule::ConfigSyncWindowOpen {
                        window_minutes: (sync.window_ends_at - sync.started_at).num_minutes(),
                        earliest: sync.window_ends_at,
                    });
                }
                one(OnboardingEvent::SyncCompleted(SyncCompleted { at: now }))
            }
            OnboardingCommand::ChangeTemplate {
                waba_id,
                template_id,
                name,
                language,
                category,
            } => {
                self.require_enabled(command)?;
                self.require_routable(waba_id, true)?;
                if let Some(existing) = self.aggregate.data().templates.get(template_id)
                    && existing.waba_id != *waba_id
                {
                    return Err(Rule::TemplateOfAnotherWaba {
                        waba_id: waba_id.clone(),
                        template_id: template_id.clone(),
                        owner: existing.waba_id.clone(),
                    });
                }
                one(OnboardingEvent::TemplateChanged(TemplateChanged {
                    waba_id: waba_id.clone(),
                    template_id: template_id.clone(),
                    name: name.clone(),
                    language: language.clone(),
                    category: category.clone(),
                    sync_window_ends_at: now + self.config.template_sync_window,
                    at: now,
                }))
            }
            OnboardingCommand::RecordTemplateMirrorSynced {
                waba_id,
                template_id,
            } => {
                self.require_enabled(command)?;
                let template = self.marketing_template(waba_id, template_id)?;
                if template.mirror_synced_at.is_some() {
                    return Err(Rule::TemplateAlreadySynced {
                        template_id: template_id.clone(),
                    });
                }
                if now < template.sync_window_ends_at {
                    return Err(Rule::TemplateSyncWindowOpen {
                        template_id: template_id.clone(),
                        earliest: template.sync_window_ends_at,
                    });
                }
                one(OnboardingEvent::TemplateMirrorSynced(
                    TemplateMirrorSynced {
                        waba_id: waba_id.clone(),
                        template_id: template_id.clone(),
                        at: now,
                    },
                ))
            }
            OnboardingCommand::RecordTemplateUse {
                waba_id,
                template_id,
            } => {
                self.require_enabled(command)?;
                let template = self.marketing_template(waba_id, template_id)?;
                if now - template.last_activity_at > self.config.dormancy_after {
                    one(OnboardingEvent::TemplateReactivated(TemplateReactivated {
                        waba_id: waba_id.clone(),
                        template_id: template_id.clone(),
                        sync_window_ends_at: now + self.config.template_sync_window,
                        at: now,
                    }))
                } else {
                    one(OnboardingEvent::TemplateUsed(TemplateUsed {
                        waba_id: waba_id.clone(),
                        template_id: template_id.clone(),
                        at: now,
                    }))
                }
            }
            OnboardingCommand::RestrictWaba { waba_id, reason } => {
                self.require_enabled(command)?;
                self.require_routable(waba_id, false)?;
                one(OnboardingEvent::WabaRestricted(WabaRestricted {
                    waba_id: waba_id.clone(),
                    reason: reason.clone(),
                    at: now,
                }))
            }
            OnboardingCommand::ReinstateWaba { facts } => {
                self.require_enabled(command)?;
                let waba_id = &facts.waba_id;
                match &self.waba(waba_id)?.routing {
                    WabaRouting::Suspended { .. } => {}
                    WabaRouting::Onboarded { .. } => {
                        return Err(Rule::WabaNotSuspended {
                            waba_id: waba_id.clone(),
                        });
                    }
                    WabaRouting::Offboarded { .. } => {
                        return Err(Rule::WabaOffboarded {
                            waba_id: waba_id.clone(),
                        });
                    }
                    WabaRouting::NotOnboarded => {
                        return Err(Rule::WabaNotOnboarded {
                            waba_id: waba_id.clone(),
                        });
                    }
                }
                let verdict = evaluate_waba(facts, &self.config.countries);
                if !verdict.is_eligible() {
                    return Err(Rule::WabaStillIneligible {
                        waba_id: waba_id.clone(),
                        reasons: verdict.reasons,
                    });
                }
                one(OnboardingEvent::WabaReinstated(WabaReinstated {
                    facts: facts.clone(),
                    at: now,
                }))
            }
            OnboardingCommand::OffboardWaba { waba_id, reason } => {
                self.require_enabled(command)?;
                self.require_routable(waba_id, true)?;
                one(OnboardingEvent::WabaOffboarded(WabaOffboarded {
                    waba_id: waba_id.clone(),
                    reason: reason.clone(),
                    at: now,
                }))
            }
            OnboardingCommand::Offboard { reason } => one(OnboardingEvent::OnboardingOffboarded(
                OnboardingOffboarded {
                    reason: reason.clone(),
                    at: now,
                },
            )),
        }
    }

    fn check_eligibility(&self, facts: &PortfolioFacts) -> Decision {
        if self.phase.stage() != Stage::Preparing {
            return Err(Rule::NotAllowedNow {
                command: "check_eligibility",
                phase: self.phase,
                expected: "eligibility is checked during preparation; after enablement a suspended WABA is re-checked with reinstate_waba",
            });
        }
        let mut seen = BTreeSet::new();
        for waba in &facts.wabas {
            if !seen.insert(&waba.waba_id) {
                return Err(Rule::DuplicateWabaInFacts {
                    waba_id: waba.waba_id.clone(),
                });
            }
        }
        let verdict = evaluate(facts, &self.config.countries);
        Ok(vec![OnboardingEvent::EligibilityChecked(
            EligibilityChecked {
                facts: facts.clone(),
                verdict,
                at: self.now,
            },
        )])
    }

    /// Exactly one ad account for each eligible WABA, nothing else. Returned sorted for a stable record.
    fn check_ad_accounts(
        &self,
        ad_accounts: &[MirroredAdAccount],
    ) -> Result<Vec<MirroredAdAccount>, Rule> {
        let eligible: BTreeSet<&WabaId> = self.aggregate.data().eligible_wabas().collect();
        let mut given = BTreeSet::new();
        for account in ad_accounts {
            if !eligible.contains(&account.waba_id) {
                return Err(Rule::UnexpectedAdAccount {
                    waba_id: account.waba_id.clone(),
                });
            }
            if !given.insert(&account.waba_id) {
                return Err(Rule::DuplicateAdAccount {
                    waba_id: account.waba_id.clone(),
                });
            }
        }
        if let Some(missing) = eligible.iter().find(|waba_id| !given.contains(*waba_id)) {
            return Err(Rule::MissingAdAccount {
                waba_id: (*missing).clone(),
            });
        }
        let mut sorted = ad_accounts.to_vec();
        sorted.sort();
        Ok(sorted)
    }

    /// A phase check whose refusal explains, in the most useful words, what stands in the way.
    fn require_phase(
        &self,
        command: &OnboardingCommand,
        allowed: &[Phase],
        expected: &'static str,
    ) -> Result<(), Rule> {
        if allowed.contains(&self.phase) {
            return Ok(());
        }
        // What stands in the way of any later step, said in the most useful words.
        if self.phase == Phase::MigratingObo
            && let Some(waba_id) = self.aggregate.data().pending_obo_wabas().next()
        {
            return Err(Rule::PortfolioStillContainsObo {
                waba_id: waba_id.clone(),
            });
        }
        if self.phase == Phase::Ineligible
            && let Some(record) = &self.aggregate.data().eligibility
        {
            return Err(Rule::PortfolioIneligible {
                reasons: record.verdict.portfolio_reasons.clone(),
            });
        }
        Err(Rule::NotAllowedNow {
            command: command.type_name(),
            phase: self.phase,
            expected,
        })
    }

    fn require_enabled(&self, command: &OnboardingCommand) -> Result<(), Rule> {
        if self.phase.stage() == Stage::Enabled {
            Ok(())
        } else {
            Err(Rule::NotAllowedNow {
                command: command.type_name(),
                phase: self.phase,
                expected: "templates and WABA suspensions are tracked once the portfolio is connected",
            })
        }
    }

    fn waba(&self, waba_id: &WabaId) -> Result<&WabaRecord, Rule> {
        self.aggregate
            .data()
            .wabas
            .get(waba_id)
            .ok_or_else(|| Rule::UnknownWaba {
                waba_id: waba_id.clone(),
            })
    }

    /// The WABA is onboarded (and, when `allow_suspended`, possibly suspended), not offboarded.
    fn require_routable(&self, waba_id: &WabaId, allow_suspended: bool) -> Result<(), Rule> {
        match &self.waba(waba_id)?.routing {
            WabaRouting::Onboarded { .. } => Ok(()),
            WabaRouting::Suspended { .. } if allow_suspended => Ok(()),
            WabaRouting::Suspended { .. } => Err(Rule::WabaSuspended {
                waba_id: waba_id.clone(),
            }),
            WabaRouting::Offboarded { .. } => Err(Rule::WabaOffboarded {
                waba_id: waba_id.clone(),
            }),
            WabaRouting::NotOnboarded => Err(Rule::WabaNotOnboarded {
                waba_id: waba_id.clone(),
            }),
        }
    }

    fn marketing_template(
        &self,
        waba_id: &WabaId,
        template_id: &TemplateId,
    ) -> Result<&TemplateRecord, Rule> {
        let template = self
            .aggregate
            .data()
            .templates
            .get(template_id)
            .ok_or_else(|| Rule::UnknownTemplate {
                waba_id: waba_id.clone(),
                template_id: template_id.clone(),
            })?;
        if template.waba_id != *waba_id {
            return Err(Rule::TemplateOfAnotherWaba {
                waba_id: waba_id.clone(),
                template_id: template_id.clone(),
                owner: template.waba_id.clone(),
            });
        }
        if template.category != TemplateCategory::Marketing {
            return Err(Rule::TemplateNotMarketing {
                template_id: template_id.clone(),
            });
        }
        Ok(template)
    }
}
