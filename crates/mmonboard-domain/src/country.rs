//! ISO 3166 countries and subdivisions, and the policy that says which ones the Marketing Messages API serves.
//! The policy is configuration (DOMAIN.md): the defaults encode the sanctioned list, never supported.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::InvalidValue;

/// Every officially assigned ISO 3166-1 alpha-2 code.
const ASSIGNED_ALPHA2: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ \
BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI \
FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT \
JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ \
MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS \
RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA \
UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW";

/// [`ASSIGNED_ALPHA2`] as a bitmap, built at compile time: bit `second - 'A'` of word `first - 'A'` is set
/// for each assigned code. Replaying a log checks every stored code, and a scan of the list was a tenth of
/// decoding an eligibility event.
const ASSIGNED_BITMAP: [u32; 26] = {
    let bytes = ASSIGNED_ALPHA2.as_bytes();
    let mut bitmap = [0u32; 26];
    let mut index = 0;
    while index + 1 < bytes.len() {
        bitmap[(bytes[index] - b'A') as usize] |= 1 << (bytes[index + 1] - b'A');
        index += 3;
    }
    bitmap
};

/// An ISO 3166-1 alpha-2 country code, upper case, and assigned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CountryCode([u8; 2]);

impl CountryCode {
    pub fn parse(value: &str) -> Result<Self, InvalidValue> {
        const KIND: &str = "country";
        let bytes = value.as_bytes();
        if bytes.len() != 2 || !bytes.iter().all(u8::is_ascii_alphabetic) {
            return Err(InvalidValue::new(
                KIND,
                value,
                "must be an ISO 3166-1 alpha-2 code such as \"BR\"",
            ));
        }
        let upper = [bytes[0].to_ascii_uppercase(), bytes[1].to_ascii_uppercase()];
        let code = Self(upper);
        if ASSIGNED_BITMAP[usize::from(upper[0] - b'A')] & (1 << (upper[1] - b'A')) == 0 {
            return Err(InvalidValue::new(
                KIND,
                value,
                "is not an assigned ISO 3166-1 alpha-2 code",
            ));
        }
        Ok(code)
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII letters are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }

    /// Every assigned code, for generators and configuration checks.
    pub fn all() -> impl Iterator<Item = CountryCode> {
        ASSIGNED_ALPHA2.split(' ').map(|code| {
            let bytes = code.as_bytes();
            CountryCode([bytes[0], bytes[1]])
        })
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<String> for CountryCode {
    type Error = InvalidValue;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<CountryCode> for String {
    fn from(value: CountryCode) -> String {
        value.as_str().to_owned()
    }
}

/// An ISO 3166-2 subdivision (`UA-43` is Crimea). Only its shape is checked: country part assigned, then 1 to 3
/// letters or digits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Subdivision(String);

impl Subdivision {
    pub fn parse(value: &str) -> Result<Self, InvalidValue> {
        const KIND: &str = "subdivision";
        let Some((country, local)) = value.split_once('-') else {
            return Err(InvalidValue::new(
                KIND,
                value,
                "must be an ISO 3166-2 code such as \"UA-43\"",
            ));
        };
        let country = CountryCode::parse(country)
            .map_err(|error| InvalidValue::new(KIND, value, error.reason))?;
        if local.is_empty() || local.len() > 3 || !local.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(InvalidValue::new(
                KIND,
                value,
                "the part after '-' must be 1 to 3 letters or digits",
            ));
        }
        Ok(Self(format!("{country}-{}", local.to_ascii_uppercase())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Subdivision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Subdivision {
    type Error = InvalidValue;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Subdivision> for String {
    fn from(value: Subdivision) -> String {
        value.0
    }
}

/// Which countries and regions the Marketing Messages API serves. `supported = None` means every assigned
/// country that is not listed as unsupported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountryPolicy {
    pub supported: Option<BTreeSet<CountryCode>>,
    pub unsupported: BTreeSet<CountryCode>,
    pub unsupported_subdivisions: BTreeSet<Subdivision>,
}

impl CountryPolicy {
    pub fn is_supported(&self, country: CountryCode) -> bool {
        !self.unsupported.contains(&country)
            && self
                .supported
                .as_ref()
                .is_none_or(|supported| supported.contains(&country))
    }

    pub fn is_subdivision_supported(&self, subdivision: &Subdivision) -> bool {
        !self.unsupported_subdivisions.contains(subdivision)
    }
}

impl Default for CountryPolicy {
    /// Sanctioned and never supported (DOMAIN.md): Cuba, Iran, North Korea, Syria, and the Crimea (with
    /// Sevastopol), Donetsk and Luhansk regions of Ukraine.
    fn default() -> Self {
        let codes = |list: &[&str]| {
            list.iter()
                .filter_map(|code| CountryCode::parse(code).ok())
                .collect()
        };
        Self {
            supported: None,
            unsupported: codes(&["CU", "IR", "KP", "SY"]),
            unsupported_subdivisions: ["UA-43", "UA-40", "UA-14", "UA-09"]
                .iter()
                .filter_map(|code| Subdivision::parse(code).ok())
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn countries_are_assigned_alpha2_codes() {
        assert_eq!(CountryCode::parse("br").unwrap().as_str(), "BR");
        assert!(
            CountryCode::parse("XX")
                .unwrap_err()
                .to_string()
                .contains("not an assigned")
        );
        assert!(CountryCode::parse("BRA").is_err());
        assert_eq!(CountryCode::all().count(), 249);
    }

    #[test]
    fn the_bitmap_accepts_exactly_the_listed_codes() {
        let listed: BTreeSet<&str> = ASSIGNED_ALPHA2.split(' ').collect();
        for first in b'A'..=b'Z' {
            for second in b'A'..=b'Z' {
                let code = String::from_utf8(vec![first, second]).unwrap();
                assert_eq!(
                    CountryCode::parse(&code).is_ok(),
                    listed.contains(code.as_str()),
                    "{code}"
                );
            }
        }
    }

    #[test]
    fn default_policy_refuses_sanctioned_places() {
        let policy = CountryPolicy::default();
        assert!(!policy.is_supported(CountryCode::parse("IR").unwrap()));
        assert!(policy.is_supported(CountryCode::parse("UA").unwrap()));
        assert!(!policy.is_subdivision_supported(&Subdivision::parse("ua-43").unwrap()));
        assert!(policy.is_subdivision_supported(&Subdivision::parse("UA-30").unwrap()));
    }
}
