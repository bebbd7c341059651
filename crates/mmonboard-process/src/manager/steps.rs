//! What each step asks of Meta, one function per step: read what Meta shows and turn it into the commands to
//! record, or into "not yet" with what Meta reports instead. Nothing here decides (the commands go through
//! `decide` like any other), writes a timer or touches the log; the one write to Meta whose intent must be
//! durable first (the terms request) is handed back as a [`Write`] for the manager to make durable and send.

use chrono::TimeDelta;
use mmonboard_domain::eligibility::evaluate_waba;
use mmonboard_domain::facts::{
    AccountStatus, OwnershipType, SuspensionReason, TermsStatus, WabaOnboardingStatus,
};
use mmonboard_domain::ids::{MetaRequestId, PortfolioId, TemplateId, WabaId};
use mmonboard_domain::machine::WabaRouting;
use mmonboard_domain::{Aggregate, DomainConfig, MirroredAdAccount, OnboardingCommand};
use mmonboard_meta::{MetaError, MetaGateway, TermsRequestOutcome, portfolio_facts};

use crate::plan::{ProcessConfig, Step};

/// What one step produced.
pub(super) enum Outcome {
    /// Record these commands, in order.
    Record(Vec<OnboardingCommand>),
    /// Meta has not got there yet (what it reports instead): look again after this long.
    NotYet(TimeDelta, String),
}

/// What asking Meta for a step came to.
pub(super) enum Asked {
    Done(Outcome),
    /// Meta must be asked to write: the manager makes the intent durable, then [`send`]s it.
    MustWrite(Write),
}

/// A write to Meta whose intent is made durable before it is sent: if the process dies between Meta's answer
/// and its record, the next attempt sees the intent and reads back instead of sending again.
pub(super) enum Write {
    RequestTerms,
}

impl Write {
    /// The intent as the step's timer says it.
    pub(super) fn intent(&self) -> &'static str {
        match self {
            Self::RequestTerms => {
                "the terms request was being sent; its outcome is not recorded yet"
            }
        }
    }

    pub(super) fn operation(&self) -> &'static str {
        match self {
            Self::RequestTerms => "recording the intent to request the terms",
        }
    }
}

/// What Meta's facts and the manager's settings a step is taken with.
pub(super) struct Ask<'a, G> {
    pub(super) gateway: &'a G,
    pub(super) config: &'a ProcessConfig,
    pub(super) domain: &'a DomainConfig,
}

impl<G: MetaGateway> Ask<'_, G> {
    /// Ask Meta what `step` needs. `failures`: how many times this step already failed in a row (an earlier
    /// attempt may have reached Meta).
    pub(super) async fn step(
        &self,
        aggregate: &Aggregate,
        step: &Step,
        failures: u32,
    ) -> Result<Asked, MetaError> {
        let outcome = match step {
            Step::CheckEligibility => self.check_eligibility(aggregate.portfolio_id()).await?,
            Step::RequestOboTransfer(waba_id) => self.request_obo_transfer(waba_id).await?,
            Step::AwaitOboTransfer(waba_id) => self.await_obo_transfer(waba_id).await?,
            Step::RequestTerms => {
                return self.request_terms(aggregate.portfolio_id(), failures).await;
            }
            Step::AwaitTermsSigned => self.await_terms_signed(aggregate).await?,
            Step::Connect => self.connect(aggregate).await?,
            Step::StartConfigSync => self.start_config_sync(aggregate).await?,
            Step::CompleteSync => self.complete_sync(aggregate).await?,
            Step::SyncTemplateMirror {
                waba_id,
                template_id,
            } => self.sync_template_mirror(waba_id, template_id).await?,
            Step::RecheckSuspendedWaba(waba_id) => self.recheck_suspended_waba(waba_id).await?,
        };
        Ok(Asked::Done(outcome))
    }

    /// Send a write whose intent is durable now.
    pub(super) async fn send(
        &self,
        portfolio_id: &PortfolioId,
        write: Write,
    ) -> Result<Outcome, MetaError> {
        match write {
            Write::RequestTerms => {
                let outcome = self.gateway.request_terms(portfolio_id).await?;
                Ok(Outcome::Record(vec![terms_request_recorded(outcome)?]))
            }
        }
    }

    async fn check_eligibility(&self, portfolio_id: &PortfolioId) -> Result<Outcome, MetaError> {
        let (_, facts) = portfolio_facts(self.gateway, portfolio_id).await?;
        Ok(Outcome::Record(vec![OnboardingCommand::CheckEligibility {
            facts,
        }]))
    }

    async fn request_obo_transfer(&self, waba_id: &WabaId) -> Result<Outcome, MetaError> {
        let waba = self.gateway.waba(waba_id).await?;
        let already =
            waba.obo_intent.is_some() || waba.facts.ownership_type == OwnershipType::ClientOwned;
        if !already {
            self.gateway.set_obo_mobility_intent(waba_id).await?;
        }
        Ok(Outcome::Record(vec![
            OnboardingCommand::RequestOboMigration {
                waba_id: waba_id.clone(),
            },
        ]))
    }

    async fn await_obo_transfer(&self, waba_id: &WabaId) -> Result<Outcome, MetaError> {
        let waba = self.gateway.waba(waba_id).await?;
        let completed = waba.facts.ownership_type == OwnershipType::ClientOwned
            || waba
                .obo_intent
                .as_ref()
                .is_some_and(|intent| intent.status == "COMPLETED");
        Ok(if completed {
            Outcome::Record(vec![OnboardingCommand::CompleteOboMigration {
                waba_id: waba_id.clone(),
            }])
        } else {
            Outcome::NotYet(
                self.config.poll_interval,
                format!(
                    "Meta has not completed the OBO transfer of WABA {waba_id} (ownership {})",
                    waba.facts.ownership_type
                ),
            )
        })
    }

    /// Signed already: nothing to ask. An invitation out after an attempt of ours whose outcome was unknown:
    /// that attempt went through, do not send it again. Otherwise ask; an invitation someone else sent is
    /// Meta's to report (1752041), and a request repeated after a crash between the call and its record gets
    /// the same answer, recorded the same way.
    async fn request_terms(
        &self,
        portfolio_id: &PortfolioId,
        failures: u32,
    ) -> Result<Asked, MetaError> {
        let business = self.gateway.business(portfolio_id).await?;
        let outcome = match business.terms_status {
            TermsStatus::TermOfServiceSigned => TermsRequestOutcome::AlreadyInvited,
            TermsStatus::RequestSent if failures > 0 => TermsRequestOutcome::SentAnswerLost,
            _ => return Ok(Asked::MustWrite(Write::RequestTerms)),
        };
        Ok(Asked::Done(Outcome::Record(vec![terms_request_recorded(
            outcome,
        )?])))
    }

    async fn await_terms_signed(&self, aggregate: &Aggregate) -> Result<Outcome, MetaError> {
        let data = aggregate.data();
        let business = self.gateway.business(aggregate.portfolio_id()).await?;
        let reporting_waba = data
            .eligible_wabas()
            .next()
            .or_else(|| data.wabas.keys().next());
        Ok(match (&business.terms_status, reporting_waba) {
            (TermsStatus::TermOfServiceSigned, Some(waba_id)) => {
                Outcome::Record(vec![OnboardingCommand::RecordTermsSigned {
                    waba_id: waba_id.clone(),
                }])
            }
            (status, _) => Outcome::NotYet(
                self.config.terms_poll_interval,
                format!("Meta reports the portfolio's terms {status}, not signed"),
            ),
        })
    }

    async fn connect(&self, aggregate: &Aggregate) -> Result<Outcome, MetaError> {
        let mut ad_accounts = Vec::new();
        for waba_id in aggregate.data().eligible_wabas() {
            match self.gateway.waba(waba_id).await?.ad_account_id {
                Some(ad_account_id) => ad_accounts.push(MirroredAdAccount {
                    waba_id: waba_id.clone(),
                    ad_account_id,
                }),
                None => {
                    return Ok(Outcome::NotYet(
                        self.config.poll_interval,
                        format!("Meta has not created the mirrored ad account of WABA {waba_id}"),
                    ));
                }
            }
        }
        Ok(Outcome::Record(vec![OnboardingCommand::Connect {
            ad_accounts,
        }]))
    }

    async fn start_config_sync(&self, aggregate: &Aggregate) -> Result<Outcome, MetaError> {
        let data = aggregate.data();
        let mut commands = Vec::new();
        for (waba_id, record) in &data.wabas {
            if !matches!(record.routing, WabaRouting::Onboarded { .. }) {
                continue;
            }
            for template in self.gateway.templates(waba_id).await? {
                let known = data.templates.get(&template.id).is_some_and(|known| {
                    known.waba_id == *waba_id && known.category == template.category
                });
                if !known {
                    commands.push(OnboardingCommand::ChangeTemplate {
                        waba_id: waba_id.clone(),
                        template_id: template.id,
                        name: template.name,
                        language: template.language,
                        category: template.category,
                    });
                }
            }
        }
        commands.push(OnboardingCommand::StartConfigSync {});
        Ok(Outcome::Record(commands))
    }

    /// Every onboarded WABA must be ONBOARDED at Meta. One Meta restricted or disabled meanwhile (its webhook
    /// may have come before the portfolio was enabled, when it could not be recorded) is suspended first: it
    /// must not hold the others back, nor keep MM routing.
    async fn complete_sync(&self, aggregate: &Aggregate) -> Result<Outcome, MetaError> {
        let mut suspend = Vec::new();
        let mut pending = Vec::new();
        for (waba_id, record) in &aggregate.data().wabas {
            if !matches!(record.routing, WabaRouting::Onboarded { .. }) {
                continue;
            }
            let waba = self.gateway.waba(waba_id).await?;
            match waba.facts.account_status {
                AccountStatus::Active => {}
                AccountStatus::Disabled => {
                    suspend.push((waba_id, SuspensionReason::DisabledUpdate))
                }
                _ => suspend.push((waba_id, SuspensionReason::AccountRestriction)),
            }
            if waba.meta_status() != Some(&WabaOnboardingStatus::Onboarded) {
                let status = waba
                    .meta_status()
                    .map_or_else(|| "no status".to_owned(), ToString::to_string);
                pending.push(format!("WABA {waba_id} is {status}"));
            }
        }
        Ok(if !suspend.is_empty() {
            Outcome::Record(
                suspend
                    .into_iter()
                    .map(|(waba_id, reason)| OnboardingCommand::RestrictWaba {
                        waba_id: waba_id.clone(),
                        reason,
                    })
                    .collect(),
            )
        } else if !pending.is_empty() {
            Outcome::NotYet(
                self.config.poll_interval,
                format!("Meta has not onboarded every WABA: {}", pending.join(", ")),
            )
        } else {
            Outcome::Record(vec![OnboardingCommand::CompleteSync {}])
        })
    }

    async fn sync_template_mirror(
        &self,
        waba_id: &WabaId,
        template_id: &TemplateId,
    ) -> Result<Outcome, MetaError> {
        let templates = self.gateway.templates(waba_id).await?;
        let mirrored = templates
            .iter()
            .any(|template| template.id == *template_id && template.ad_id.is_some());
        Ok(if mirrored {
            Outcome::Record(vec![OnboardingCommand::RecordTemplateMirrorSynced {
                waba_id: waba_id.clone(),
                template_id: template_id.clone(),
            }])
        } else {
            Outcome::NotYet(
                self.config.poll_interval,
                format!("Meta shows no mirrored ad for template {template_id} of WABA {waba_id}"),
            )
        })
    }

    async fn recheck_suspended_waba(&self, waba_id: &WabaId) -> Result<Outcome, MetaError> {
        let waba = self.gateway.waba(waba_id).await?;
        let verdict = evaluate_waba(&waba.facts, &self.domain.countries);
        Ok(if verdict.is_eligible() {
            Outcome::Record(vec![OnboardingCommand::ReinstateWaba { facts: waba.facts }])
        } else {
            let reasons: Vec<String> = verdict.reasons.iter().map(ToString::to_string).collect();
            Outcome::NotYet(
                self.config.recheck_interval,
                format!(
                    "WABA {waba_id} is still not eligible: {}",
                    reasons.join("; ")
                ),
            )
        })
    }
}

/// The command that records how a terms request went.
fn terms_request_recorded(outcome: TermsRequestOutcome) -> Result<OnboardingCommand, MetaError> {
    Ok(match outcome {
        TermsRequestOutcome::Sent { request_id } => OnboardingCommand::RecordTermsRequest {
            request_id: Some(MetaRequestId::parse(&request_id).map_err(|source| {
                MetaError::InvalidValue {
                    operation: "requesting the MM API terms".into(),
                    source,
                }
            })?),
            already_invited: false,
        },
        TermsRequestOutcome::AlreadyInvited => OnboardingCommand::RecordTermsRequest {
            request_id: None,
            already_invited: true,
        },
        TermsRequestOutcome::SentAnswerLost => OnboardingCommand::RecordTermsRequest {
            request_id: None,
            already_invited: false,
        },
    })
}
