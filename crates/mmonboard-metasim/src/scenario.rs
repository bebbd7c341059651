//! Scenario files: one business portfolio as Meta holds it, how fast Meta's background work runs, what the
//! admin does, and what happens after the terms are signed. `scenarios/README.md` at the repository root
//! describes the format with an example.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use chrono::TimeDelta;
use mmonboard_domain::Phase;
use mmonboard_domain::country::{CountryCode, Subdivision};
use mmonboard_domain::ids::{
    PhoneNumberId, PortfolioId, TemplateId, TemplateLanguage, TemplateName, UserId, WabaId,
};
use serde::{Deserialize, Serialize};

/// The ownership types Meta reports.
pub const OWNERSHIP_TYPES: &[&str] = &["CLIENT_OWNED", "ON_BEHALF_OF"];
/// The account statuses a WABA can have.
pub const ACCOUNT_STATUSES: &[&str] = &["ACTIVE", "RESTRICTED", "DISABLED"];
/// The platform types of a phone number.
pub const PLATFORM_TYPES: &[&str] = &["CLOUD_API", "NOT_APPLICABLE"];
/// The template categories Meta knows.
pub const TEMPLATE_CATEGORIES: &[&str] = &["MARKETING", "UTILITY", "AUTHENTICATION"];

/// Why a scenario could not be loaded; always names the file, and the field and value when one is at fault.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read scenario file {file}: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("scenario {file} is not a valid scenario: {message}")]
    Json { file: String, message: String },
    #[error("scenario {file}: field {field} = {value:?} {reason}")]
    Invalid {
        file: String,
        field: String,
        value: String,
        reason: String,
    },
    #[error("{kind} id {id:?} appears twice: in {first} and in {second}")]
    DuplicateId {
        kind: &'static str,
        id: String,
        first: String,
        second: String,
    },
}

/// A span of simulated time, written `"90s"`, `"5m"`, `"2h"`, `"1d"` (also `"250ms"` and `"0s"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SimDuration(pub TimeDelta);

impl SimDuration {
    pub fn seconds(seconds: i64) -> Self {
        Self(TimeDelta::seconds(seconds))
    }

    pub fn minutes(minutes: i64) -> Self {
        Self(TimeDelta::minutes(minutes))
    }

    pub fn delta(self) -> TimeDelta {
        self.0
    }

    /// Parse `"<digits><unit>"` with unit `ms`, `s`, `m`, `h` or `d`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(|| "needs a unit: ms, s, m, h or d (e.g. \"5m\")".to_owned())?;
        let (digits, unit) = text.split_at(split);
        let amount: i64 = digits
            .parse()
            .map_err(|_| "must start with a whole number (e.g. \"90s\")".to_owned())?;
        let delta = match unit {
            "ms" => TimeDelta::try_milliseconds(amount),
            "s" => TimeDelta::try_seconds(amount),
            "m" => TimeDelta::try_minutes(amount),
            "h" => TimeDelta::try_hours(amount),
            "d" => TimeDelta::try_days(amount),
            _ => return Err(format!("has unknown unit {unit:?}: use ms, s, m, h or d")),
        };
        delta
            .filter(|delta| *delta <= TimeDelta::days(3650))
            .map(Self)
            .ok_or_else(|| "is longer than ten years".to_owned())
    }
}

impl fmt::Display for SimDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.num_milliseconds();
        for (unit, size) in [
            ("d", 86_400_000),
            ("h", 3_600_000),
            ("m", 60_000),
            ("s", 1000),
        ] {
            if ms != 0 && ms % size == 0 {
                return write!(f, "{}{unit}", ms / size);
            }
        }
        if ms == 0 {
            f.write_str("0s")
        } else {
            write!(f, "{ms}ms")
        }
    }
}

impl Serialize for SimDuration {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SimDuration {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text)
            .map_err(|reason| serde::de::Error::custom(format!("duration {text:?} {reason}")))
    }
}

/// One simulated business portfolio and what happens to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// A short unique name (e.g. `happy_path`).
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// What DOMAIN.md predicts mmonboard ends up with, for a scenario runner.
    pub expect: Expect,
    #[serde(default)]
    pub timing: Timing,
    pub business: BusinessSpec,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<EventSpec>,
    /// The file the scenario was read from, for error messages.
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

/// What the scenario expects mmonboard to end up with. Fields besides `phase`, `routable_wabas` and `note` are
/// kept as they are for the runner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Expect {
    /// A phase as mmonboard names it (`live`, `ineligible`, …).
    pub phase: String,
    /// The WABAs whose marketing traffic should end up routed through the MM API.
    #[serde(default)]
    pub routable_wabas: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// How long Meta's background work takes, in simulated time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timing {
    /// From `set_obo_mobility_intent` to the WABA being `CLIENT_OWNED`.
    #[serde(default = "Timing::default_obo_transfer")]
    pub obo_transfer: SimDuration,
    /// From the terms being signed (for an eligible WABA) to its mirrored ad account existing.
    #[serde(default = "Timing::default_ad_account_creation")]
    pub ad_account_creation: SimDuration,
    /// From the terms being signed (for an eligible WABA) to it being `ONBOARDED`.
    #[serde(default = "Timing::default_waba_onboarding")]
    pub waba_onboarding: SimDuration,
    /// From a marketing template's last change (or its ad account's creation) to its mirrored ad existing.
    #[serde(default = "Timing::default_template_mirror")]
    pub template_mirror: SimDuration,
}

impl Timing {
    fn default_obo_transfer() -> SimDuration {
        SimDuration::minutes(5)
    }
    fn default_ad_account_creation() -> SimDuration {
        SimDuration::minutes(1)
    }
    fn default_waba_onboarding() -> SimDuration {
        SimDuration::minutes(10)
    }
    fn default_template_mirror() -> SimDuration {
        SimDuration::minutes(10)
    }
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            obo_transfer: Self::default_obo_transfer(),
            ad_account_creation: Self::default_ad_account_creation(),
            waba_onboarding: Self::default_waba_onboarding(),
            template_mirror: Self::default_template_mirror(),
        }
    }
}

/// The business portfolio.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusinessSpec {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub website: Option<String>,
    pub country: String,
    #[serde(default)]
    pub subdivision: Option<String>,
    #[serde(default = "default_true")]
    pub enable_offered: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin: Option<AdminSpec>,
    /// An invitation is already out when the simulation starts: the status is `REQUEST_SENT` and every terms
    /// request answers 1752041.
    #[serde(default)]
    pub already_invited: bool,
    pub wabas: Vec<WabaSpec>,
}

fn default_true() -> bool {
    true
}

/// The portfolio's admin, who alone can accept the terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSpec {
    pub user_id: String,
    /// Accepts this long after the first terms request; absent: only `POST /sim/businesses/{id}/accept_terms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepts_terms_after: Option<SimDuration>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WabaSpec {
    pub id: String,
    #[serde(default = "default_ownership")]
    pub ownership_type: String,
    #[serde(default = "default_account_status")]
    pub account_status: String,
    pub tax_country: String,
    #[serde(default)]
    pub phone_numbers: Vec<PhoneSpec>,
    #[serde(default)]
    pub templates: Vec<TemplateSpec>,
}

fn default_ownership() -> String {
    "CLIENT_OWNED".into()
}

fn default_account_status() -> String {
    "ACTIVE".into()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhoneSpec {
    pub id: String,
    pub country: String,
    #[serde(default = "default_platform")]
    pub platform_type: String,
    #[serde(default)]
    pub is_on_biz_app: bool,
}

fn default_platform() -> String {
    "CLOUD_API".into()
}

/// A message template; also the body of `POST /sim/wabas/{id}/templates`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateSpec {
    pub id: String,
    pub name: String,
    pub language: String,
    pub category: String,
}

/// Something that happens to a WABA a while after the portfolio's terms were signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventSpec {
    pub after_terms_signed: SimDuration,
    pub waba_id: String,
    /// The WABA's new account status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_status: Option<String>,
    /// The `account_update` webhook event sent with the change (e.g. `ACCOUNT_RESTRICTION`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
    /// A template created or changed (a category change sends `template_category_update`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<TemplateSpec>,
}

impl Scenario {
    /// Read and check a scenario file.
    pub fn from_file(path: &Path) -> Result<Self, ScenarioError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Io {
            file: file.clone(),
            source,
        })?;
        let mut scenario = Self::parse(&text, &file)?;
        scenario.source = Some(path.to_owned());
        Ok(scenario)
    }

    /// Parse and check a scenario given as JSON text.
    pub fn from_json(text: &str) -> Result<Self, ScenarioError> {
        Self::parse(text, "<json>")
    }

    fn parse(text: &str, file: &str) -> Result<Self, ScenarioError> {
        let scenario: Self = serde_json::from_str(text).map_err(|error| ScenarioError::Json {
            file: file.to_owned(),
            message: error.to_string(),
        })?;
        scenario.validate_as(file)?;
        Ok(scenario)
    }

    /// How the scenario is named in error messages: its file, else its name.
    pub fn origin(&self) -> String {
        match &self.source {
            Some(path) => path.display().to_string(),
            None => format!("scenario {:?}", self.name),
        }
    }

    /// Check every id, country, status and reference.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        self.validate_as(&self.origin())
    }

    fn validate_as(&self, file: &str) -> Result<(), ScenarioError> {
        let invalid = |field: String, value: &str, reason: String| ScenarioError::Invalid {
            file: file.to_owned(),
            field,
            value: value.to_owned(),
            reason,
        };
        let parsed =
            |field: String, value: &str, result: Result<(), mmonboard_domain::InvalidValue>| {
                result.map_err(|error| invalid(field, value, error.reason))
            };
        let one_of = |field: String, value: &str, allowed: &[&str]| {
            if allowed.contains(&value) {
                Ok(())
            } else {
                Err(invalid(
                    field,
                    value,
                    format!("must be one of {}", allowed.join(", ")),
                ))
            }
        };
        if self.name.trim().is_empty() {
            return Err(invalid(
                "name".into(),
                &self.name,
                "must not be blank".into(),
            ));
        }
        if serde_json::from_value::<Phase>(serde_json::Value::String(self.expect.phase.clone()))
            .is_err()
        {
            return Err(invalid(
                "expect.phase".into(),
                &self.expect.phase,
                "is not a phase mmonboard knows (e.g. live, ineligible)".into(),
            ));
        }
        let business = &self.business;
        parsed(
            "business.id".into(),
            &business.id,
            PortfolioId::parse(&business.id).map(drop),
        )?;
        if business.name.trim().is_empty() {
            return Err(invalid(
                "business.name".into(),
                &business.name,
                "must not be blank".into(),
            ));
        }
        if let Some(website) = &business.website {
            let ok = url::Url::parse(website)
                .is_ok_and(|url| matches!(url.scheme(), "http" | "https") && url.has_host());
            if !ok {
                return Err(invalid(
                    "business.website".into(),
                    website,
                    "must be an absolute http(s) URL".into(),
                ));
            }
        }
        parsed(
            "business.country".into(),
            &business.country,
            CountryCode::parse(&business.country).map(drop),
        )?;
        if let Some(subdivision) = &business.subdivision {
            parsed(
                "business.subdivision".into(),
                subdivision,
                Subdivision::parse(subdivision).map(drop),
            )?;
        }
        if let Some(admin) = &business.admin {
            parsed(
                "business.admin.user_id".into(),
                &admin.user_id,
                UserId::parse(&admin.user_id).map(drop),
            )?;
        }
        if business.wabas.is_empty() {
            return Err(invalid(
                "business.wabas".into(),
                "[]",
                "must list at least one WABA".into(),
            ));
        }
        for (w, waba) in business.wabas.iter().enumerate() {
            let at = format!("business.wabas[{w}]");
            parsed(
                format!("{at}.id"),
                &waba.id,
                WabaId::parse(&waba.id).map(drop),
            )?;
            one_of(
                format!("{at}.ownership_type"),
                &waba.ownership_type,
                OWNERSHIP_TYPES,
            )?;
            one_of(
                format!("{at}.account_status"),
                &waba.account_status,
                ACCOUNT_STATUSES,
            )?;
            parsed(
                format!("{at}.tax_country"),
                &waba.tax_country,
                CountryCode::parse(&waba.tax_country).map(drop),
            )?;
            for (p, phone) in waba.phone_numbers.iter().enumerate() {
                let at = format!("{at}.phone_numbers[{p}]");
                parsed(
                    format!("{at}.id"),
                    &phone.id,
                    PhoneNumberId::parse(&phone.id).map(drop),
                )?;
                parsed(
                    format!("{at}.country"),
                    &phone.country,
                    CountryCode::parse(&phone.country).map(drop),
                )?;
                one_of(
                    format!("{at}.platform_type"),
                    &phone.platform_type,
                    PLATFORM_TYPES,
                )?;
            }
            for (t, template) in waba.templates.iter().enumerate() {
                validate_template(template, &format!("{at}.templates[{t}]"))
                    .map_err(|(field, value, reason)| invalid(field, &value, reason))?;
            }
        }
        for (e, event) in self.events.iter().enumerate() {
            let at = format!("events[{e}]");
            if !business.wabas.iter().any(|waba| waba.id == event.waba_id) {
                return Err(invalid(
                    format!("{at}.waba_id"),
                    &event.waba_id,
                    "is not a WABA of this scenario's business".into(),
                ));
            }
            if let Some(status) = &event.account_status {
                one_of(format!("{at}.account_status"), status, ACCOUNT_STATUSES)?;
            }
            if let Some(webhook) = &event.webhook
                && (webhook.is_empty()
                    || !webhook.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'))
            {
                return Err(invalid(
                    format!("{at}.webhook"),
                    webhook,
                    "must be an account_update event name such as ACCOUNT_RESTRICTION".into(),
                ));
            }
            if let Some(template) = &event.template {
                validate_template(template, &format!("{at}.template"))
                    .map_err(|(field, value, reason)| invalid(field, &value, reason))?;
                let owner = business
                    .wabas
                    .iter()
                    .find(|waba| waba.templates.iter().any(|listed| listed.id == template.id));
                if let Some(owner) = owner
                    && owner.id != event.waba_id
                {
                    return Err(invalid(
                        format!("{at}.template.id"),
                        &template.id,
                        format!(
                            "is a template of WABA {}, not of {}",
                            owner.id, event.waba_id
                        ),
                    ));
                }
            }
            if event.account_status.is_none() && event.webhook.is_none() && event.template.is_none()
            {
                return Err(invalid(
                    at,
                    &event.waba_id,
                    "does nothing: give account_status, webhook or template".into(),
                ));
            }
        }
        for (i, waba) in self.expect.routable_wabas.iter().enumerate() {
            if !business.wabas.iter().any(|known| &known.id == waba) {
                return Err(invalid(
                    format!("expect.routable_wabas[{i}]"),
                    waba,
                    "is not a WABA of this scenario's business".into(),
                ));
            }
        }
        Ok(())
    }

    /// Every Graph object id the scenario defines, with its kind (for collision checks).
    pub(crate) fn object_ids(&self) -> Vec<(&'static str, &str)> {
        let mut ids = vec![("business", self.business.id.as_str())];
        for waba in &self.business.wabas {
            ids.push(("WABA", waba.id.as_str()));
            ids.extend(
                waba.phone_numbers
                    .iter()
                    .map(|phone| ("phone number", phone.id.as_str())),
            );
            ids.extend(
                waba.templates
                    .iter()
                    .map(|template| ("template", template.id.as_str())),
            );
        }
        // An event's template is new, or a change to one listed above (not a second object).
        for event in &self.events {
            if let Some(template) = &event.template
                && !ids.contains(&("template", template.id.as_str()))
            {
                ids.push(("template", template.id.as_str()));
            }
        }
        ids
    }
}

/// Check a template's fields; on failure the field path, the value and why.
pub(crate) fn validate_template(
    template: &TemplateSpec,
    at: &str,
) -> Result<(), (String, String, String)> {
    let fail = |field: &str, value: &str, reason: String| {
        Err((format!("{at}.{field}"), value.to_owned(), reason))
    };
    if let Err(error) = TemplateId::parse(&template.id) {
        return fail("id", &template.id, error.reason);
    }
    if let Err(error) = TemplateName::parse(&template.name) {
        return fail("name", &template.name, error.reason);
    }
    if let Err(error) = TemplateLanguage::parse(&template.language) {
        return fail("language", &template.language, error.reason);
    }
    if !TEMPLATE_CATEGORIES.contains(&template.category.as_str()) {
        return fail(
            "category",
            &template.category,
            format!("must be one of {}", TEMPLATE_CATEGORIES.join(", ")),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_round_trip() {
        for (text, seconds) in [
            ("90s", 90),
            ("5m", 300),
            ("2h", 7200),
            ("1d", 86_400),
            ("0s", 0),
        ] {
            let parsed = SimDuration::parse(text).unwrap();
            assert_eq!(parsed.0, TimeDelta::seconds(seconds));
        }
        assert_eq!(SimDuration::parse("90s").unwrap().to_string(), "90s");
        assert_eq!(SimDuration::parse("120s").unwrap().to_string(), "2m");
        assert_eq!(SimDuration::parse("250ms").unwrap().to_string(), "250ms");
        assert!(SimDuration::parse("5").is_err());
        assert!(SimDuration::parse("m").is_err());
        assert!(SimDuration::parse("5w").is_err());
    }
}
