//! An in-memory Meta for the process manager's tests: facts the test sets, counters of every call, and
//! failures on demand.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use mmonboard_domain::country::CountryCode;
use mmonboard_domain::facts::{
    AccountStatus, OwnershipType, PhoneNumberFacts, TemplateCategory, TermsStatus, WabaFacts,
    WabaOnboardingStatus,
};
use mmonboard_domain::ids::{
    AdAccountId, PhoneNumberId, PortfolioId, TemplateId, TemplateLanguage, TemplateName, WabaId,
};
use mmonboard_meta::{
    BusinessSnapshot, MetaError, MetaGateway, OboIntent, OboIntentOutcome, TemplateSnapshot,
    TermsRequestOutcome, WabaSnapshot,
};

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Calls {
    pub business_reads: u32,
    pub waba_reads: u32,
    pub template_reads: u32,
    pub obo_writes: u32,
    pub terms_writes: u32,
}

pub struct MetaState {
    pub business: BusinessSnapshot,
    pub wabas: BTreeMap<WabaId, WabaSnapshot>,
    pub templates: BTreeMap<WabaId, Vec<TemplateSnapshot>>,
    pub calls: Calls,
    /// Every read and write fails with this while set.
    pub failing: Option<MetaError>,
    /// The next terms request is applied at Meta but its answer is lost.
    pub lose_next_terms_answer: bool,
    /// The caller dies right after Meta answers the next terms request (a panic in its task).
    pub crash_after_next_terms_answer: bool,
    /// While set, business reads wait for a permit (a Meta that takes its time); counted before they wait.
    pub business_gate: Option<Arc<tokio::sync::Semaphore>>,
}

#[derive(Clone)]
pub struct FakeMeta(pub Arc<Mutex<MetaState>>);

pub fn portfolio() -> PortfolioId {
    PortfolioId::parse("4100000001").expect("valid")
}

pub fn waba(id: &str) -> WabaId {
    WabaId::parse(id).expect("valid")
}

/// What a proxy in front of Meta answers: an HTML page, line breaks and all.
pub fn html_failure() -> MetaError {
    MetaError::UnexpectedAnswer {
        operation: "reading business portfolio 4100000001".into(),
        status: 502,
        message: "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n</html>".into(),
    }
}

fn shared_waba(id: &str, ownership: OwnershipType) -> WabaSnapshot {
    WabaSnapshot {
        facts: WabaFacts {
            waba_id: waba(id),
            ownership_type: ownership,
            account_status: AccountStatus::Active,
            tax_country: CountryCode::parse("BR").expect("valid"),
            phone_numbers: vec![PhoneNumberFacts {
                phone_number_id: PhoneNumberId::parse(&format!("9{id}")).expect("valid"),
                country: CountryCode::parse("BR").expect("valid"),
                registered_on_cloud_api: true,
                uses_business_app: false,
            }],
            meta_status: Some(WabaOnboardingStatus::Eligible),
        },
        ad_account_id: None,
        obo_intent: None,
    }
}

impl FakeMeta {
    /// A portfolio with one shared WABA (1001) and, when `with_obo`, an OBO one (1002).
    pub fn new(with_obo: bool) -> Self {
        let mut wabas = BTreeMap::new();
        wabas.insert(
            waba("1001"),
            shared_waba("1001", OwnershipType::ClientOwned),
        );
        if with_obo {
            wabas.insert(waba("1002"), shared_waba("1002", OwnershipType::OnBehalfOf));
        }
        let templates = BTreeMap::from([(
            waba("1001"),
            vec![TemplateSnapshot {
                id: TemplateId::parse("3001").expect("valid"),
                name: TemplateName::parse("spring_sale").expect("valid"),
                language: TemplateLanguage::parse("en_US").expect("valid"),
                category: TemplateCategory::Marketing,
                ad_id: None,
                ad_account_id: None,
            }],
        )]);
        Self(Arc::new(Mutex::new(MetaState {
            business: BusinessSnapshot {
                id: portfolio(),
                name: "Loja Aurora".into(),
                website: Some("https://lojaaurora.example.com.br".into()),
                country: CountryCode::parse("BR").expect("valid"),
                subdivision: None,
                enable_offered: true,
                terms_status: TermsStatus::NotStarted,
                terms_status_time: None,
                waba_ids: wabas.keys().cloned().collect(),
            },
            wabas,
            templates,
            calls: Calls::default(),
            failing: None,
            lose_next_terms_answer: false,
            crash_after_next_terms_answer: false,
            business_gate: None,
        })))
    }

    pub fn with<T>(&self, change: impl FnOnce(&mut MetaState) -> T) -> T {
        change(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    pub fn calls(&self) -> Calls {
        self.with(|state| state.calls.clone())
    }

    /// What Meta does when the admin signs: terms signed, ad accounts created, WABAs onboarded, ads mirrored.
    pub fn admin_signs_and_meta_sets_up(&self) {
        self.with(|state| {
            state.business.terms_status = TermsStatus::TermOfServiceSigned;
            for (id, waba) in state.wabas.iter_mut() {
                waba.ad_account_id = Some(AdAccountId::parse(&format!("8{id}")).expect("valid"));
            }
        });
    }

    pub fn wabas_onboarded(&self) {
        self.with(|state| {
            for waba in state.wabas.values_mut() {
                waba.facts.meta_status = Some(WabaOnboardingStatus::Onboarded);
            }
        });
    }

    pub fn ads_mirrored(&self) {
        self.with(|state| {
            for templates in state.templates.values_mut() {
                for template in templates {
                    template.ad_id = Some(format!("7{}", template.id));
                }
            }
        });
    }
}

impl MetaGateway for FakeMeta {
    async fn business(&self, _business_id: &PortfolioId) -> Result<BusinessSnapshot, MetaError> {
        let gate = self.with(|state| {
            state.calls.business_reads += 1;
            state.business_gate.clone()
        });
        if let Some(gate) = gate {
            let _permit = gate.acquire().await.expect("the gate stays open");
        }
        self.with(|state| match &state.failing {
            Some(error) => Err(error.clone()),
            None => Ok(state.business.clone()),
        })
    }

    async fn waba(&self, waba_id: &WabaId) -> Result<WabaSnapshot, MetaError> {
        self.with(|state| {
            state.calls.waba_reads += 1;
            if let Some(error) = &state.failing {
                return Err(error.clone());
            }
            Ok(state.wabas.get(waba_id).cloned().expect("a known WABA"))
        })
    }

    async fn templates(&self, waba_id: &WabaId) -> Result<Vec<TemplateSnapshot>, MetaError> {
        self.with(|state| {
            state.calls.template_reads += 1;
            if let Some(error) = &state.failing {
                return Err(error.clone());
            }
            Ok(state.templates.get(waba_id).cloned().unwrap_or_default())
        })
    }

    async fn set_obo_mobility_intent(
        &self,
        waba_id: &WabaId,
    ) -> Result<OboIntentOutcome, MetaError> {
        self.with(|state| {
            state.calls.obo_writes += 1;
            if let Some(error) = &state.failing {
                return Err(error.clone());
            }
            let waba = state.wabas.get_mut(waba_id).expect("a known WABA");
            assert!(
                waba.obo_intent.is_none(),
                "the OBO transfer was asked for twice"
            );
            waba.obo_intent = Some(OboIntent {
                status: "PENDING".into(),
                requested_at: None,
            });
            Ok(OboIntentOutcome::Requested)
        })
    }

    async fn request_terms(
        &self,
        _business_id: &PortfolioId,
    ) -> Result<TermsRequestOutcome, MetaError> {
        self.with(|state| {
            state.calls.terms_writes += 1;
            if let Some(error) = &state.failing {
                return Err(error.clone());
            }
            if state.business.terms_status != TermsStatus::NotStarted {
                return Ok(TermsRequestOutcome::AlreadyInvited);
            }
            state.business.terms_status = TermsStatus::RequestSent;
            if std::mem::take(&mut state.crash_after_next_terms_answer) {
                panic!("the process dies after Meta accepted the terms request");
            }
            if std::mem::take(&mut state.lose_next_terms_answer) {
                return Err(MetaError::Timeout {
                    operation: "requesting the MM API terms".into(),
                    timeout_ms: 10_000,
                });
            }
            Ok(TermsRequestOutcome::Sent {
                request_id: "mmreq-1".into(),
            })
        })
    }
}

/// Complete an OBO transfer at Meta.
pub fn complete_obo(meta: &FakeMeta, id: &str) {
    meta.with(|state| {
        let waba = state.wabas.get_mut(&waba(id)).expect("a known WABA");
        waba.facts.ownership_type = OwnershipType::ClientOwned;
        waba.facts.meta_status = Some(WabaOnboardingStatus::Eligible);
        if let Some(intent) = &mut waba.obo_intent {
            intent.status = "COMPLETED".into();
        }
    });
}
