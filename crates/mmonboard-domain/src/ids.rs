//! Identifier newtypes, checked at construction ("parse, don't validate"): once an id exists it is valid
//! everywhere, so no other module re-checks digits, lengths or URL schemes.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a value could not become one of the domain's identifier types; names the type and the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} {value:?}: {reason}")]
pub struct InvalidValue {
    pub kind: &'static str,
    pub value: String,
    pub reason: String,
}

impl InvalidValue {
    pub(crate) fn new(kind: &'static str, value: &str, reason: impl Into<String>) -> Self {
        let shown: String = value.chars().take(80).collect();
        Self {
            kind,
            value: shown,
            reason: reason.into(),
        }
    }
}

/// Meta object ids (business portfolios, WABAs, phone numbers, templates, users, ad accounts) are decimal
/// strings. They stay strings: they exceed what some JSON consumers can hold as numbers.
pub(crate) const MAX_META_ID_DIGITS: usize = 32;

fn check_meta_id(kind: &'static str, value: &str) -> Result<(), InvalidValue> {
    if value.is_empty() {
        return Err(InvalidValue::new(kind, value, "must not be empty"));
    }
    if value.len() > MAX_META_ID_DIGITS {
        return Err(InvalidValue::new(
            kind,
            value,
            format!("must have at most {MAX_META_ID_DIGITS} digits"),
        ));
    }
    if !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(InvalidValue::new(
            kind,
            value,
            "must be Meta's numeric id (digits only)",
        ));
    }
    // Meta never writes its ids with leading zeros, and none is 0. Refusing them (rather than stripping)
    // keeps one spelling per object: `0005550000001` and `5550000001` would otherwise be two streams, or
    // the same one under two names depending on who stripped what.
    if value == "0" {
        return Err(InvalidValue::new(kind, value, "must not be 0"));
    }
    if value.starts_with('0') {
        return Err(InvalidValue::new(
            kind,
            value,
            "must not start with 0 (Meta's ids have no leading zeros)",
        ));
    }
    Ok(())
}

macro_rules! meta_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The id's name as it appears in error messages.
            pub const KIND: &'static str = $kind;

            pub fn parse(value: &str) -> Result<Self, InvalidValue> {
                check_meta_id($kind, value)?;
                Ok(Self(value.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        /// Keeps the string it is given: a stored event's ids are read with one allocation each.
        impl TryFrom<String> for $name {
            type Error = InvalidValue;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                check_meta_id($kind, &value)?;
                Ok(Self(value))
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = InvalidValue;
            fn from_str(value: &str) -> Result<Self, Self::Err> {
                Self::parse(value)
            }
        }
    };
}

meta_id!(
    /// A Meta business portfolio (business manager id): the unit of onboarding and one event stream.
    PortfolioId,
    "portfolio id"
);
meta_id!(
    /// A WhatsApp Business Account inside a portfolio.
    WabaId,
    "WABA id"
);
meta_id!(
    /// A phone number registered to a WABA.
    PhoneNumberId,
    "phone number id"
);
meta_id!(
    /// A message template of a WABA.
    TemplateId,
    "template id"
);
meta_id!(
    /// A person's Meta user id (who reviewed, who accepted the terms).
    UserId,
    "user id"
);
meta_id!(
    /// The read-only ad account Meta mirrors for a WABA once the portfolio is enabled (shown as `act_<id>`).
    AdAccountId,
    "ad account id"
);

/// Bounded, trimmed free text such as a business name or a reason: the trimmed text, if it is acceptable.
fn check_text<'v>(
    kind: &'static str,
    value: &'v str,
    max_chars: usize,
) -> Result<&'v str, InvalidValue> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(InvalidValue::new(kind, value, "must not be blank"));
    }
    if trimmed.chars().count() > max_chars {
        return Err(InvalidValue::new(
            kind,
            value,
            format!("must be at most {max_chars} characters"),
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(InvalidValue::new(
            kind,
            value,
            "must not contain control characters",
        ));
    }
    Ok(trimmed)
}

macro_rules! text_value {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $max:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The most characters the value may have, once trimmed.
            pub const MAX_CHARS: usize = $max;

            pub fn parse(value: &str) -> Result<Self, InvalidValue> {
                check_text($kind, value, Self::MAX_CHARS).map(|trimmed| Self(trimmed.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        /// Keeps the string it is given when it needs no trimming (as every stored value does).
        impl TryFrom<String> for $name {
            type Error = InvalidValue;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                let trimmed = check_text($kind, &value, Self::MAX_CHARS)?;
                if trimmed.len() == value.len() {
                    Ok(Self(value))
                } else {
                    Ok(Self(trimmed.to_owned()))
                }
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }
    };
}

text_value!(
    /// The business name entered during onboarding.
    BusinessName,
    "business name",
    200
);
text_value!(
    /// The version of the Marketing Messages API terms of service that was accepted.
    TermsVersion,
    "terms version",
    64
);
text_value!(
    /// A template's name as Meta knows it.
    TemplateName,
    "template name",
    512
);
text_value!(
    /// A template's language code (e.g. `en_US`).
    TemplateLanguage,
    "template language",
    16
);
text_value!(
    /// The id Meta gave a terms request (`onboard_partners_to_mm_lite`).
    MetaRequestId,
    "Meta request id",
    128
);
text_value!(
    /// What a process step was doing when Meta kept failing (e.g. `request_terms`).
    StepName,
    "step name",
    64
);
text_value!(
    /// Free-text reason given by an operator (e.g. for offboarding).
    Reason,
    "reason",
    1000
);

/// The business website entered during onboarding: an absolute http(s) URL with a host.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct WebsiteUrl(String);

impl WebsiteUrl {
    pub fn parse(value: &str) -> Result<Self, InvalidValue> {
        const KIND: &str = "website";
        let url = url::Url::parse(value.trim())
            .map_err(|error| InvalidValue::new(KIND, value, error.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(InvalidValue::new(
                KIND,
                value,
                "must be an http or https URL",
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(InvalidValue::new(KIND, value, "must name a host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(InvalidValue::new(KIND, value, "must not carry credentials"));
        }
        Ok(Self(url.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for WebsiteUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for WebsiteUrl {
    type Error = InvalidValue;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<WebsiteUrl> for String {
    fn from(value: WebsiteUrl) -> String {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Deserializing (which keeps the string it is given) and parsing (which copies) take and refuse the
        /// same values, with the same result.
        #[test]
        fn try_from_agrees_with_parse(value in "[ 0-9a-z\\t]{0,40}|[0-9]{1,34}") {
            prop_assert_eq!(WabaId::try_from(value.clone()), WabaId::parse(&value));
            prop_assert_eq!(PortfolioId::try_from(value.clone()), PortfolioId::parse(&value));
            prop_assert_eq!(TemplateLanguage::try_from(value.clone()), TemplateLanguage::parse(&value));
            prop_assert_eq!(BusinessName::try_from(value.clone()), BusinessName::parse(&value));
        }
    }

    #[test]
    fn meta_ids_are_digits_only() {
        assert!(PortfolioId::parse("1234567890").is_ok());
        let error = PortfolioId::parse("12ab").unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid portfolio id \"12ab\": must be Meta's numeric id (digits only)"
        );
        assert!(WabaId::parse("").is_err());
        assert!(WabaId::parse(&"1".repeat(33)).is_err());
    }

    #[test]
    fn meta_ids_have_one_spelling() {
        assert_eq!(
            PortfolioId::parse("0005550000001").unwrap_err().to_string(),
            "invalid portfolio id \"0005550000001\": must not start with 0 (Meta's ids have no leading zeros)"
        );
        assert_eq!(
            PortfolioId::parse("0").unwrap_err().to_string(),
            "invalid portfolio id \"0\": must not be 0"
        );
        // The same rule for every Meta id, in every way one is built.
        assert!(WabaId::parse("01001").is_err());
        assert!(PhoneNumberId::parse("00").is_err());
        assert!(TemplateId::parse("0").is_err());
        assert!(UserId::parse("0106").is_err());
        assert!(AdAccountId::parse("0").is_err());
        assert!(serde_json::from_str::<WabaId>("\"0123\"").is_err());
        assert!("0123".parse::<PortfolioId>().is_err());
        assert_eq!(
            PortfolioId::parse("5550000001").unwrap().as_str(),
            "5550000001"
        );
        assert!(PortfolioId::parse("10").is_ok());
    }

    #[test]
    fn ids_deserialize_through_their_check() {
        let parsed: Result<WabaId, _> = serde_json::from_str("\"x1\"");
        assert!(parsed.unwrap_err().to_string().contains("invalid WABA id"));
    }

    #[test]
    fn websites_must_be_http_urls_with_a_host() {
        assert_eq!(
            WebsiteUrl::parse("https://example.com").unwrap().as_str(),
            "https://example.com/"
        );
        assert!(WebsiteUrl::parse("ftp://example.com").is_err());
        assert!(WebsiteUrl::parse("example.com").is_err());
        assert!(WebsiteUrl::parse("https://user:pw@example.com").is_err());
    }

    #[test]
    fn text_is_trimmed_and_bounded() {
        assert_eq!(BusinessName::parse("  Acme  ").unwrap().as_str(), "Acme");
        assert!(BusinessName::parse("   ").is_err());
        assert!(BusinessName::parse(&"x".repeat(201)).is_err());
    }
}
