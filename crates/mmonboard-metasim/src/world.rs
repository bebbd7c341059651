//! The simulated Meta's state and rules, free of HTTP and of any clock: every operation is given the time it
//! happens at. Scheduled things (an admin's acceptance, an OBO transfer completing, a scenario's events) sit
//! in a queue ordered by time and fire, each at its own time, when [`World::catch_up`] reaches them.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use mmonboard_domain::country::{CountryCode, CountryPolicy, Subdivision};
use mmonboard_meta::webhook::{
    AccountUpdateValue, TemplateCategoryUpdateValue, WabaInfo, WebhookChange, WebhookEntry,
    WebhookPayload,
};
use mmonboard_meta::wire;
use serde::Serialize;

use crate::scenario::{AccountStatus, EventSpec, Expect, Scenario, TemplateSpec, Timing};
use crate::{Delivery, Fault, RecordedRequest};

/// Meta's per-WABA verdicts the simulator produces.
pub(crate) mod status {
    pub const INELIGIBLE_OBO: &str = "INELIGIBLE_ON_BEHALF_OF_WABA";
    pub const INELIGIBLE_INACTIVE: &str = "INELIGIBLE_INACTIVE_OR_RESTRICTED";
    pub const INELIGIBLE_COUNTRY: &str = "INELIGIBLE_COUNTRY_NOT_SUPPORTED";
    pub const INELIGIBLE_BIZ_APP: &str = "INELIGIBLE_USING_WHATSAPP_BUSINESS_APP";
    pub const ELIGIBLE: &str = "ELIGIBLE";
    pub const PENDING_INTERNAL_SETUP: &str = "PENDING_INTERNAL_SETUP";
    pub const ONBOARDED: &str = "ONBOARDED";
}

pub(crate) fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Terms {
    NotStarted,
    RequestSent { at: DateTime<Utc> },
    Signed { at: DateTime<Utc> },
}

pub(crate) struct Business {
    pub scenario: String,
    pub description: String,
    pub expect: Expect,
    pub id: String,
    pub name: String,
    pub website: Option<String>,
    pub country: String,
    pub subdivision: Option<String>,
    pub enable_offered: bool,
    pub admin_user_id: Option<String>,
    pub accepts_terms_after: Option<TimeDelta>,
    pub terms: Terms,
    /// Who signed, when someone did.
    pub signed_by: Option<String>,
    /// When the first terms request reached Meta (answered or 1752041): the admin's delay starts then.
    pub first_request_at: Option<DateTime<Utc>>,
    pub waba_ids: Vec<String>,
    pub timing: Timing,
    pub events: Vec<EventSpec>,
}

#[derive(Clone)]
pub(crate) struct Template {
    pub id: String,
    pub name: String,
    pub language: String,
    pub category: String,
    /// When it was created or last changed: its mirror's sync window starts then.
    pub changed_at: DateTime<Utc>,
}

impl Template {
    fn of(spec: &TemplateSpec, changed_at: DateTime<Utc>) -> Self {
        Self {
            id: spec.id.to_string(),
            name: spec.name.to_string(),
            language: spec.language.to_string(),
            category: spec.category.as_str().to_owned(),
            changed_at,
        }
    }
}

pub(crate) struct Obo {
    pub requested_at: DateTime<Utc>,
    pub completed: bool,
}

pub(crate) struct Waba {
    pub id: String,
    pub business_id: String,
    pub ownership_type: String,
    pub account_status: String,
    pub tax_country: String,
    pub phones: Vec<wire::PhoneNumberNode>,
    pub obo: Option<Obo>,
    /// When Meta started enabling the WABA for the MM API: the signature, if it was eligible then, else the
    /// moment it became eligible afterwards. Its ad account and onboarding count from here.
    pub enabled_at: Option<DateTime<Utc>>,
    pub templates: Vec<Template>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Due {
    AdminAccepts { business_id: String },
    OboCompletes { waba_id: String },
    Event { business_id: String, index: usize },
}

/// A view of a loaded scenario, for `GET /sim/scenarios`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ScenarioView {
    pub name: String,
    pub description: String,
    pub business_id: String,
    pub waba_ids: Vec<String>,
    pub expect: Expect,
}

pub(crate) struct World {
    policy: CountryPolicy,
    pub businesses: BTreeMap<String, Business>,
    pub wabas: BTreeMap<String, Waba>,
    /// Which WABA each template belongs to.
    template_owner: BTreeMap<String, String>,
    schedule: BTreeMap<(DateTime<Utc>, u64), Due>,
    next_seq: u64,
    pub requests: Vec<RecordedRequest>,
    pub deliveries: Vec<Delivery>,
    /// Whether deliveries are sent (a webhook URL is configured) or only recorded.
    sending: bool,
    /// Per WABA, the deliveries still to be sent, in order (indexes into `deliveries`).
    pub outbox: BTreeMap<String, VecDeque<usize>>,
    /// WABAs whose outbox a sender is working through.
    pub busy: BTreeSet<String>,
    pub faults: Vec<Fault>,
    next_trace: u64,
}

/// Why a Graph API write was refused.
pub(crate) enum Refused {
    NoSuchObject,
    /// Graph error 100 with a message.
    InvalidParameter(String),
    /// Graph error 1752041.
    AlreadyInvited,
}

/// Why a control request was refused (HTTP status, message).
pub(crate) type ControlError = (u16, String);

impl World {
    pub fn new(scenarios: Vec<Scenario>, now: DateTime<Utc>, sending: bool) -> Self {
        let mut world = Self {
            policy: CountryPolicy::default(),
            businesses: BTreeMap::new(),
            wabas: BTreeMap::new(),
            template_owner: BTreeMap::new(),
            schedule: BTreeMap::new(),
            next_seq: 0,
            requests: Vec::new(),
            deliveries: Vec::new(),
            sending,
            outbox: BTreeMap::new(),
            busy: BTreeSet::new(),
            faults: Vec::new(),
            next_trace: 0,
        };
        for scenario in scenarios {
            let spec = scenario.business;
            for waba in &spec.wabas {
                for template in &waba.templates {
                    world
                        .template_owner
                        .insert(template.id.to_string(), waba.id.to_string());
                }
                world.wabas.insert(
                    waba.id.to_string(),
                    Waba {
                        id: waba.id.to_string(),
                        business_id: spec.id.to_string(),
                        ownership_type: waba.ownership_type.as_str().to_owned(),
                        account_status: waba.account_status.as_str().to_owned(),
                        tax_country: waba.tax_country.to_string(),
                        phones: waba
                            .phone_numbers
                            .iter()
                            .map(|phone| wire::PhoneNumberNode {
                                id: phone.id.to_string(),
                                country: phone.country.to_string(),
                                platform_type: phone.platform_type.as_str().to_owned(),
                                is_on_biz_app: phone.is_on_biz_app,
                            })
                            .collect(),
                        obo: None,
                        enabled_at: None,
                        templates: waba
                            .templates
                            .iter()
                            .map(|template| Template::of(template, now))
                            .collect(),
                    },
                );
            }
            let terms = if spec.already_invited {
                Terms::RequestSent { at: now }
            } else {
                Terms::NotStarted
            };
            world.businesses.insert(
                spec.id.to_string(),
                Business {
                    scenario: scenario.name,
                    description: scenario.description,
                    expect: scenario.expect,
                    id: spec.id.to_string(),
                    name: spec.name.to_string(),
                    website: spec.website.map(String::from),
                    country: spec.country.to_string(),
                    subdivision: spec.subdivision.map(String::from),
                    enable_offered: spec.enable_offered,
                    admin_user_id: spec.admin.as_ref().map(|admin| admin.user_id.to_string()),
                    accepts_terms_after: spec
                        .admin
                        .and_then(|admin| admin.accepts_terms_after)
                        .map(|span| span.delta()),
                    terms,
                    signed_by: None,
                    first_request_at: None,
                    waba_ids: spec.wabas.iter().map(|waba| waba.id.to_string()).collect(),
                    timing: scenario.timing,
                    events: scenario.events,
                },
            );
        }
        world
    }

    pub fn scenarios(&self) -> Vec<ScenarioView> {
        self.businesses
            .values()
            .map(|business| ScenarioView {
                name: business.scenario.clone(),
                description: business.description.clone(),
                business_id: business.id.clone(),
                waba_ids: business.waba_ids.clone(),
                expect: business.expect.clone(),
            })
            .collect()
    }

    pub fn next_trace_id(&mut self) -> String {
        self.next_trace += 1;
        format!("AsimTrace{:08}", self.next_trace)
    }

    fn schedule(&mut self, at: DateTime<Utc>, due: Due) {
        self.next_seq += 1;
        self.schedule.insert((at, self.next_seq), due);
    }

    /// Fire, in time order and each at its own time, everything scheduled up to `now`.
    pub fn catch_up(&mut self, now: DateTime<Utc>) {
        while let Some(entry) = self.schedule.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let ((at, _), due) = entry.remove_entry();
            match due {
                Due::AdminAccepts { business_id } => {
                    let user = self.businesses[&business_id].admin_user_id.clone();
                    if matches!(
                        self.businesses[&business_id].terms,
                        Terms::RequestSent { .. }
                    ) {
                        self.sign(&business_id, at, user);
                    }
                }
                Due::OboCompletes { waba_id } => {
                    let waba = self
                        .wabas
                        .get_mut(&waba_id)
                        .expect("scheduled for a known WABA");
                    waba.ownership_type = "CLIENT_OWNED".into();
                    if let Some(obo) = &mut waba.obo {
                        obo.completed = true;
                    }
                    self.enable_if_eligible(&waba_id, at);
                }
                Due::Event { business_id, index } => {
                    let event = self.businesses[&business_id].events[index].clone();
                    self.apply_event(&event, at);
                }
            }
        }
    }

    fn apply_event(&mut self, event: &EventSpec, at: DateTime<Utc>) {
        let waba_id = event.waba_id.as_str();
        if let Some(status) = event.account_status {
            self.set_account_status(waba_id, status, at);
        }
        if let Some(template) = &event.template {
            // Validated when the scenario was loaded; a template id another WABA took since is skipped.
            let _ = self.upsert_template(waba_id, template, at);
        }
        if let Some(name) = &event.webhook {
            self.emit_account_update(waba_id, name.as_str(), at);
        }
    }

    fn sign(&mut self, business_id: &str, at: DateTime<Utc>, user: Option<String>) {
        let business = self
            .businesses
            .get_mut(business_id)
            .expect("signing a known business");
        business.terms = Terms::Signed { at };
        business.signed_by = user;
        let waba_ids = business.waba_ids.clone();
        let events: Vec<(usize, TimeDelta)> = business
            .events
            .iter()
            .enumerate()
            .map(|(index, event)| (index, event.after_terms_signed.delta()))
            .collect();
        for waba_id in &waba_ids {
            self.enable_if_eligible(waba_id, at);
        }
        for waba_id in &waba_ids {
            self.emit_account_update(waba_id, "MM_LITE_TERMS_SIGNED", at);
        }
        for (index, after) in events {
            self.schedule(
                at + after,
                Due::Event {
                    business_id: business_id.to_owned(),
                    index,
                },
            );
        }
    }

    /// Once the portfolio signed, a WABA that is (or becomes) eligible starts being enabled.
    fn enable_if_eligible(&mut self, waba_id: &str, at: DateTime<Utc>) {
        let waba = &self.wabas[waba_id];
        let signed = matches!(
            self.businesses[&waba.business_id].terms,
            Terms::Signed { .. }
        );
        if signed && waba.enabled_at.is_none() && self.verdict(waba) == status::ELIGIBLE {
            self.wabas.get_mut(waba_id).expect("known WABA").enabled_at = Some(at);
        }
    }

    /// Meta's eligibility verdict from the WABA's facts alone (before the terms are considered).
    fn verdict(&self, waba: &Waba) -> &'static str {
        let business = &self.businesses[&waba.business_id];
        if waba.ownership_type == "ON_BEHALF_OF" {
            return status::INELIGIBLE_OBO;
        }
        if waba.account_status != "ACTIVE" {
            return status::INELIGIBLE_INACTIVE;
        }
        let supported = |country: &str| {
            CountryCode::parse(country).is_ok_and(|code| self.policy.is_supported(code))
        };
        let region_supported = business.subdivision.as_deref().is_none_or(|region| {
            Subdivision::parse(region)
                .is_ok_and(|region| self.policy.is_subdivision_supported(&region))
        });
        if !supported(&business.country)
            || !region_supported
            || !supported(&waba.tax_country)
            || waba.phones.iter().any(|phone| !supported(&phone.country))
        {
            return status::INELIGIBLE_COUNTRY;
        }
        if waba.phones.iter().any(|phone| phone.is_on_biz_app) {
            return status::INELIGIBLE_BIZ_APP;
        }
        status::ELIGIBLE
    }

    fn timing_of(&self, waba: &Waba) -> Timing {
        self.businesses[&waba.business_id].timing
    }

    fn ad_account_since(&self, waba: &Waba) -> Option<DateTime<Utc>> {
        let timing = self.timing_of(waba);
        waba.enabled_at
            .map(|enabled| enabled + timing.ad_account_creation.delta())
    }

    pub fn waba_status(&self, waba: &Waba, now: DateTime<Utc>) -> &'static str {
        let verdict = self.verdict(waba);
        match waba.enabled_at {
            Some(enabled) if verdict == status::ELIGIBLE => {
                if now >= enabled + self.timing_of(waba).waba_onboarding.delta() {
                    status::ONBOARDED
                } else {
                    status::PENDING_INTERNAL_SETUP
                }
            }
            _ => verdict,
        }
    }

    pub fn business_node(&self, id: &str) -> Option<wire::BusinessNode> {
        let business = self.businesses.get(id)?;
        let (status, time) = match business.terms {
            Terms::NotStarted => ("NOT_STARTED", None),
            Terms::RequestSent { at } => ("REQUEST_SENT", Some(rfc3339(at))),
            Terms::Signed { at } => ("TERM_OF_SERVICE_SIGNED", Some(rfc3339(at))),
        };
        Some(wire::BusinessNode {
            id: business.id.clone(),
            name: business.name.clone(),
            website: business.website.clone(),
            country: business.country.clone(),
            subdivision: business.subdivision.clone(),
            enable_offered: business.enable_offered,
            marketing_messages_onboarding_status: wire::PortfolioOnboardingStatus {
                status: status.into(),
                time,
            },
            owned_whatsapp_business_accounts: wire::Edge::whole(
                business
                    .waba_ids
                    .iter()
                    .map(|id| wire::NodeRef { id: id.clone() })
                    .collect(),
            ),
        })
    }

    pub fn waba_node(&self, id: &str, now: DateTime<Utc>) -> Option<wire::WabaNode> {
        let waba = self.wabas.get(id)?;
        Some(wire::WabaNode {
            id: waba.id.clone(),
            ownership_type: waba.ownership_type.clone(),
            account_status: waba.account_status.clone(),
            tax_country: waba.tax_country.clone(),
            marketing_messages_onboarding_status: self.waba_status(waba, now).into(),
            ad_account_id: self
                .ad_account_since(waba)
                .filter(|since| now >= *since)
                .map(|_| ad_account_id(&waba.id)),
            obo_mobility_intent: waba.obo.as_ref().map(|obo| wire::OboMobilityIntent {
                status: if obo.completed {
                    "COMPLETED"
                } else {
                    "PENDING"
                }
                .into(),
                requested_time: rfc3339(obo.requested_at),
            }),
            phone_numbers: wire::Edge::whole(waba.phones.clone()),
        })
    }

    pub fn template_nodes(
        &self,
        waba_id: &str,
        now: DateTime<Utc>,
    ) -> Option<Vec<wire::TemplateNode>> {
        let waba = self.wabas.get(waba_id)?;
        let mirror = self.timing_of(waba).template_mirror.delta();
        let ad_account_since = self.ad_account_since(waba);
        Some(
            waba.templates
                .iter()
                .map(|template| {
                    let mirrored = template.category == "MARKETING"
                        && ad_account_since
                            .is_some_and(|since| now >= since.max(template.changed_at) + mirror);
                    let id = &template.id;
                    wire::TemplateNode {
                        id: id.clone(),
                        name: template.name.clone(),
                        language: template.language.clone(),
                        category: template.category.clone(),
                        ad_id: mirrored.then(|| format!("71{id}")),
                        ad_adset_id: mirrored.then(|| format!("72{id}")),
                        ad_campaign_id: mirrored.then(|| format!("73{id}")),
                        ad_account_id: mirrored.then(|| ad_account_id(waba_id)),
                    }
                })
                .collect(),
        )
    }

    /// `POST /{business_id}/onboard_partners_to_mm_lite` at `now`.
    pub fn request_terms(
        &mut self,
        business_id: &str,
        now: DateTime<Utc>,
    ) -> Result<String, Refused> {
        let business = self
            .businesses
            .get_mut(business_id)
            .ok_or(Refused::NoSuchObject)?;
        if business.first_request_at.is_none() {
            business.first_request_at = Some(now);
            if let Some(after) = business.accepts_terms_after {
                self.schedule(
                    now + after,
                    Due::AdminAccepts {
                        business_id: business_id.to_owned(),
                    },
                );
            }
        }
        let business = self.businesses.get_mut(business_id).expect("found above");
        if business.terms != Terms::NotStarted {
            return Err(Refused::AlreadyInvited);
        }
        business.terms = Terms::RequestSent { at: now };
        Ok(format!("mmlite_req_{business_id}"))
    }

    /// `POST /{waba_id}/set_obo_mobility_intent` at `now`.
    pub fn set_obo_intent(&mut self, waba_id: &str, now: DateTime<Utc>) -> Result<(), Refused> {
        let waba = self.wabas.get_mut(waba_id).ok_or(Refused::NoSuchObject)?;
        if let Some(obo) = &waba.obo {
            return Err(Refused::InvalidParameter(format!(
                "An OBO mobility intent was already set for WABA {waba_id} at {} ({}): a WABA is transferred once.",
                rfc3339(obo.requested_at),
                if obo.completed {
                    "COMPLETED"
                } else {
                    "PENDING"
                }
            )));
        }
        if waba.ownership_type != "ON_BEHALF_OF" {
            return Err(Refused::InvalidParameter(format!(
                "WABA {waba_id} is not owned on behalf of its business (ownership_type is {}): there is nothing to transfer.",
                waba.ownership_type
            )));
        }
        waba.obo = Some(Obo {
            requested_at: now,
            completed: false,
        });
        let after = self.timing_of(&self.wabas[waba_id]).obo_transfer.delta();
        self.schedule(
            now + after,
            Due::OboCompletes {
                waba_id: waba_id.to_owned(),
            },
        );
        Ok(())
    }

    /// The admin accepts the terms now (`POST /sim/businesses/{id}/accept_terms`).
    pub fn accept_terms(
        &mut self,
        business_id: &str,
        user_id: &str,
        now: DateTime<Utc>,
    ) -> Result<wire::PortfolioOnboardingStatus, ControlError> {
        let business = self.businesses.get(business_id).ok_or_else(|| {
            (
                404,
                format!("no business portfolio {business_id} is simulated"),
            )
        })?;
        match business.terms {
            Terms::NotStarted => Err((
                409,
                format!(
                    "no terms request was sent to business portfolio {business_id}: there is nothing to accept"
                ),
            )),
            Terms::Signed { at } => Err((
                409,
                format!(
                    "business portfolio {business_id} already signed the terms at {}",
                    rfc3339(at)
                ),
            )),
            Terms::RequestSent { .. } => {
                self.sign(business_id, now, Some(user_id.to_owned()));
                Ok(self
                    .business_node(business_id)
                    .expect("known business")
                    .marketing_messages_onboarding_status)
            }
        }
    }

    /// Change a WABA's account status at `at` (control route or scenario event).
    pub fn set_account_status(&mut self, waba_id: &str, status: AccountStatus, at: DateTime<Utc>) {
        if let Some(waba) = self.wabas.get_mut(waba_id) {
            waba.account_status = status.as_str().to_owned();
            self.enable_if_eligible(waba_id, at);
        }
    }

    pub fn owner_of(&self, waba_id: &str) -> Option<&str> {
        self.wabas
            .get(waba_id)
            .map(|waba| waba.business_id.as_str())
    }

    /// Create or change a template at `at`; a category change sends `template_category_update`. Answers
    /// whether the template was created.
    pub fn upsert_template(
        &mut self,
        waba_id: &str,
        spec: &TemplateSpec,
        at: DateTime<Utc>,
    ) -> Result<bool, ControlError> {
        if !self.wabas.contains_key(waba_id) {
            return Err((404, format!("no WABA {waba_id} is simulated")));
        }
        // The simulator keeps Meta's strings; the spec's checked values become them here.
        let given = Template::of(spec, at);
        if let Some(owner) = self.template_owner.get(&given.id)
            && owner != waba_id
        {
            return Err((
                409,
                format!(
                    "template {} belongs to WABA {owner}, not {waba_id}",
                    given.id
                ),
            ));
        }
        if self.businesses.contains_key(&given.id) || self.wabas.contains_key(&given.id) {
            return Err((
                409,
                format!("id {} is already a business or a WABA", given.id),
            ));
        }
        let waba = self.wabas.get_mut(waba_id).expect("checked above");
        let previous_category = match waba
            .templates
            .iter_mut()
            .find(|template| template.id == given.id)
        {
            Some(template) => {
                let previous = template.category.clone();
                let changed = template.name != given.name
                    || template.language != given.language
                    || template.category != given.category;
                if changed {
                    template.name = given.name.clone();
                    template.language = given.language.clone();
                    template.category = given.category.clone();
                    template.changed_at = at;
                }
                Some(previous)
            }
            None => {
                self.template_owner
                    .insert(given.id.clone(), waba_id.to_owned());
                waba.templates.push(given.clone());
                None
            }
        };
        let created = previous_category.is_none();
        if let Some(previous) = previous_category
            && previous != given.category
        {
            let value = TemplateCategoryUpdateValue {
                message_template_id: given
                    .id
                    .parse::<u64>()
                    .map_or_else(|_| given.id.clone().into(), Into::into),
                message_template_name: given.name,
                message_template_language: given.language,
                previous_category: Some(previous),
                new_category: given.category,
            };
            self.emit(
                waba_id,
                at,
                "template_category_update",
                serde_json::to_value(value).expect("plain data serialises"),
            );
        }
        Ok(created)
    }

    pub fn emit_account_update(&mut self, waba_id: &str, event: &str, at: DateTime<Utc>) {
        let value = AccountUpdateValue {
            event: event.to_owned(),
            waba_info: Some(WabaInfo {
                waba_id: waba_id.to_owned(),
                owner_business_id: self.owner_of(waba_id).map(str::to_owned),
            }),
            restriction_info: (event == "ACCOUNT_RESTRICTION").then(|| {
                serde_json::json!([{ "restriction_type": "RESTRICTED_ADD_PHONE_NUMBER_ACTION" }])
            }),
            ban_info: (event == "DISABLED_UPDATE").then(|| {
                serde_json::json!({
                    "waba_ban_state": "DISABLE",
                    "waba_ban_date": at.format("%B %-d, %Y").to_string(),
                })
            }),
        };
        self.emit(
            waba_id,
            at,
            "account_update",
            serde_json::to_value(value).expect("plain data serialises"),
        );
    }

    /// Record a webhook delivery and queue it behind the WABA's earlier ones.
    fn emit(&mut self, waba_id: &str, at: DateTime<Utc>, field: &str, value: serde_json::Value) {
        let payload = WebhookPayload {
            object: "whatsapp_business_account".into(),
            entry: vec![WebhookEntry {
                id: waba_id.to_owned(),
                time: Some(at.timestamp()),
                changes: vec![WebhookChange {
                    field: field.to_owned(),
                    value,
                }],
            }],
        };
        let body = serde_json::to_string(&payload).expect("plain data serialises");
        let index = self.deliveries.len();
        self.deliveries.push(Delivery {
            id: index as u64 + 1,
            waba_id: waba_id.to_owned(),
            field: field.to_owned(),
            at,
            body,
            attempts: 0,
            acknowledged: false,
            last_status: None,
            last_error: None,
        });
        if self.sending {
            self.outbox
                .entry(waba_id.to_owned())
                .or_default()
                .push_back(index);
        }
    }
}

/// The mirrored ad account Meta creates for a WABA: deterministic, `8` then the WABA id.
pub(crate) fn ad_account_id(waba_id: &str) -> String {
    format!("8{waba_id}")
}
