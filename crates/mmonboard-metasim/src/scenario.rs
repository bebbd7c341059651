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
    BusinessName, PhoneNumberId, PortfolioId, TemplateId, TemplateLanguage, TemplateName, UserId,
    WabaId, WebsiteUrl,
};
use serde::{Deserialize, Serialize};

/// Why a scenario could not be loaded; always names the file, and the field and value when one is at fault.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read scenario file {file}: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    /// Not JSON, or not a scenario's shape as a whole (no field to blame).
    #[error("scenario {file} is not a valid scenario: {message}")]
    Json { file: String, message: String },
    /// A field's value is not what the field holds: its type's own check said why (an id that is not
    /// digits, an unknown country or status, a duration without a unit, an unknown field, ...).
    #[error("scenario {file}: field {field}: {message}")]
    Field {
        file: String,
        field: String,
        message: String,
    },
    /// Each value is fine alone, but they do not fit together (a reference to a WABA the business does not
    /// have, an event that does nothing).
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

/// The longest span a scenario may give.
const MAX_SPAN: TimeDelta = TimeDelta::days(3650);

/// A span of simulated time in humantime's notation: `"90s"`, `"5m"`, `"2h"`, `"1d"`, `"250ms"`, `"0s"`,
/// also combined (`"1h 30m"`) and in words (`"5min"`, `"2 hours"`); at most ten years.
///
/// A newtype over chrono's `TimeDelta` (what the simulator's clock adds) rather than a `std::time::Duration`
/// field with `humantime-serde`: the ten-year bound and the conversion belong to the type, checked once
/// when the file is read.
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

    /// Parse a span in humantime's notation (a number needs its unit: `"5"` is refused).
    pub fn parse(text: &str) -> Result<Self, String> {
        let span = humantime::parse_duration(text.trim()).map_err(|error| {
            format!(
                "duration {text:?} is not a span such as \"90s\", \"5m\" or \"1h 30m\": {error}"
            )
        })?;
        TimeDelta::from_std(span)
            .ok()
            .filter(|delta| *delta <= MAX_SPAN)
            .map(Self)
            .ok_or_else(|| format!("duration {text:?} is longer than ten years"))
    }
}

impl fmt::Display for SimDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never negative: every SimDuration comes from `parse` or a non-negative constructor argument.
        let span = self.0.to_std().unwrap_or_default();
        if span.is_zero() {
            f.write_str("0s")
        } else {
            write!(f, "{}", humantime::format_duration(span))
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
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Closed sets of Meta's values that a scenario may set. The domain's facts keep any value Meta sends (open
/// enums); a scenario only names what the simulator knows how to play.
macro_rules! scenario_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant,)+
        }

        impl $name {
            /// Meta's spelling.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

scenario_enum!(
    /// The ownership types Meta reports for a WABA.
    OwnershipType { ClientOwned = "CLIENT_OWNED", OnBehalfOf = "ON_BEHALF_OF" }
);
scenario_enum!(
    /// The account statuses a WABA can have.
    AccountStatus { Active = "ACTIVE", Restricted = "RESTRICTED", Disabled = "DISABLED" }
);
scenario_enum!(
    /// The platform types of a phone number.
    PlatformType { CloudApi = "CLOUD_API", NotApplicable = "NOT_APPLICABLE" }
);
scenario_enum!(
    /// The template categories Meta knows.
    TemplateCategory { Marketing = "MARKETING", Utility = "UTILITY", Authentication = "AUTHENTICATION" }
);

/// The name of an `account_update` webhook event (e.g. `ACCOUNT_RESTRICTION`): capitals and underscores.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AccountUpdateName(String);

impl AccountUpdateName {
    pub fn parse(value: &str) -> Result<Self, String> {
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_uppercase() || b == b'_') {
            return Err(format!(
                "{value:?} is not an account_update event name such as ACCOUNT_RESTRICTION"
            ));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for AccountUpdateName {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<AccountUpdateName> for String {
    fn from(value: AccountUpdateName) -> Self {
        value.0
    }
}

fn non_blank<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let text = String::deserialize(deserializer)?;
    if text.trim().is_empty() {
        return Err(serde::de::Error::custom("must not be blank"));
    }
    Ok(text)
}

/// One simulated business portfolio and what happens to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// A short unique name (e.g. `happy_path`).
    #[serde(deserialize_with = "non_blank")]
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
    pub phase: Phase,
    /// The WABAs whose marketing traffic should end up routed through the MM API.
    #[serde(default)]
    pub routable_wabas: Vec<WabaId>,
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
    pub id: PortfolioId,
    pub name: BusinessName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub website: Option<WebsiteUrl>,
    pub country: CountryCode,
    #[serde(default)]
    pub subdivision: Option<Subdivision>,
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
    pub user_id: UserId,
    /// Accepts this long after the first terms request; absent: only `POST /sim/businesses/{id}/accept_terms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepts_terms_after: Option<SimDuration>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WabaSpec {
    pub id: WabaId,
    #[serde(default = "default_ownership")]
    pub ownership_type: OwnershipType,
    #[serde(default = "default_account_status")]
    pub account_status: AccountStatus,
    pub tax_country: CountryCode,
    #[serde(default)]
    pub phone_numbers: Vec<PhoneSpec>,
    #[serde(default)]
    pub templates: Vec<TemplateSpec>,
}

fn default_ownership() -> OwnershipType {
    OwnershipType::ClientOwned
}

fn default_account_status() -> AccountStatus {
    AccountStatus::Active
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhoneSpec {
    pub id: PhoneNumberId,
    pub country: CountryCode,
    #[serde(default = "default_platform")]
    pub platform_type: PlatformType,
    #[serde(default)]
    pub is_on_biz_app: bool,
}

fn default_platform() -> PlatformType {
    PlatformType::CloudApi
}

/// A message template; also the body of `POST /sim/wabas/{id}/templates`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateSpec {
    pub id: TemplateId,
    pub name: TemplateName,
    pub language: TemplateLanguage,
    pub category: TemplateCategory,
}

/// Something that happens to a WABA a while after the portfolio's terms were signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventSpec {
    pub after_terms_signed: SimDuration,
    pub waba_id: WabaId,
    /// The WABA's new account status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_status: Option<AccountStatus>,
    /// The `account_update` webhook event sent with the change (e.g. `ACCOUNT_RESTRICTION`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<AccountUpdateName>,
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

    /// Every value is deserialised straight into its checked type (ids, countries, names, URLs, statuses,
    /// durations), so a value that parses is valid; `serde_path_to_error` names the field that did not.
    /// What is left for `validate_as` is how the values fit together.
    fn parse(text: &str, file: &str) -> Result<Self, ScenarioError> {
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let scenario: Self =
            serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
                let field = error.path().to_string();
                let message = error.into_inner().to_string();
                if field == "." {
                    ScenarioError::Json {
                        file: file.to_owned(),
                        message,
                    }
                } else {
                    ScenarioError::Field {
                        file: file.to_owned(),
                        field,
                        message,
                    }
                }
            })?;
        // Only whitespace may follow the scenario's object.
        deserializer.end().map_err(|error| ScenarioError::Json {
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

    /// Check that the values fit together: at least one WABA, and every reference to a WABA or template
    /// names one of this business's (each value alone was checked by its type).
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
        let business = &self.business;
        if business.wabas.is_empty() {
            return Err(invalid(
                "business.wabas".into(),
                "[]",
                "must list at least one WABA".into(),
            ));
        }
        let is_ours = |waba_id: &WabaId| business.wabas.iter().any(|waba| &waba.id == waba_id);
        for (e, event) in self.events.iter().enumerate() {
            let at = format!("events[{e}]");
            if !is_ours(&event.waba_id) {
                return Err(invalid(
                    format!("{at}.waba_id"),
                    event.waba_id.as_str(),
                    "is not a WABA of this scenario's business".into(),
                ));
            }
            if let Some(template) = &event.template {
                let owner = business
                    .wabas
                    .iter()
                    .find(|waba| waba.templates.iter().any(|listed| listed.id == template.id));
                if let Some(owner) = owner
                    && owner.id != event.waba_id
                {
                    return Err(invalid(
                        format!("{at}.template.id"),
                        template.id.as_str(),
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
                    event.waba_id.as_str(),
                    "does nothing: give account_status, webhook or template".into(),
                ));
            }
        }
        for (i, waba) in self.expect.routable_wabas.iter().enumerate() {
            if !is_ours(waba) {
                return Err(invalid(
                    format!("expect.routable_wabas[{i}]"),
                    waba.as_str(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_in_humantime_notation() {
        for (text, seconds) in [
            ("90s", 90),
            ("5m", 300),
            ("2h", 7200),
            ("1d", 86_400),
            ("0s", 0),
            ("1h 30m", 5400),
            ("5min", 300),
        ] {
            let parsed = SimDuration::parse(text).expect(text);
            assert_eq!(parsed.0, TimeDelta::seconds(seconds), "{text}");
        }
        assert_eq!(
            SimDuration::parse("250ms").expect("250ms").0,
            TimeDelta::milliseconds(250)
        );
        assert_eq!(
            SimDuration::parse("90s").expect("90s").to_string(),
            "1m 30s"
        );
        assert_eq!(SimDuration::parse("120s").expect("120s").to_string(), "2m");
        assert_eq!(SimDuration::parse("0s").expect("0s").to_string(), "0s");
        for shown in ["1m 30s", "2m", "250ms", "1day 2h"] {
            let parsed = SimDuration::parse(shown).expect(shown);
            assert_eq!(
                SimDuration::parse(&parsed.to_string()),
                Ok(parsed),
                "{shown}"
            );
        }
        assert!(SimDuration::parse("5").is_err(), "a number needs its unit");
        assert!(SimDuration::parse("m").is_err());
        assert!(SimDuration::parse("soon").is_err());
        assert!(
            SimDuration::parse("11years").is_err(),
            "longer than ten years"
        );
    }
}
