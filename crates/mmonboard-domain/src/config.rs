//! The domain's tunable values. Decisions read them; events record the values they produced (window ends,
//! verdicts), so replaying history never depends on today's configuration.

use chrono::TimeDelta;
use serde::{Deserialize, Serialize};

use crate::country::CountryPolicy;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainConfig {
    /// How long after the config sync starts before marketing traffic may use the MM API. BSPs say 15 minutes,
    /// Meta says 10: the stricter 15 is the default.
    #[serde(with = "seconds")]
    pub config_sync_window: TimeDelta,
    /// How long after a marketing template changes (or is reactivated) before its mirrored ad is relied on.
    #[serde(with = "seconds")]
    pub template_sync_window: TimeDelta,
    /// A template unused for longer than this is dormant.
    #[serde(with = "seconds")]
    pub dormancy_after: TimeDelta,
    pub countries: CountryPolicy,
}

impl Default for DomainConfig {
    fn default() -> Self {
        Self {
            config_sync_window: TimeDelta::minutes(15),
            template_sync_window: TimeDelta::minutes(15),
            dormancy_after: TimeDelta::days(7),
            countries: CountryPolicy::default(),
        }
    }
}

mod seconds {
    use chrono::TimeDelta;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &TimeDelta, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i64(value.num_seconds())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<TimeDelta, D::Error> {
        let seconds = i64::deserialize(deserializer)?;
        if seconds < 0 {
            return Err(serde::de::Error::custom("a window must not be negative"));
        }
        TimeDelta::try_seconds(seconds)
            .ok_or_else(|| serde::de::Error::custom("window out of range"))
    }
}
