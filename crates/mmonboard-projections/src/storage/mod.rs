//! The read models' SQL, one module per backend, each with the same functions. Times are stored as unix
//! microseconds on both; a stored value this crate could not have written is an error, never a default.

pub(crate) mod postgres;
pub(crate) mod sqlite;

use chrono::{DateTime, Utc};

use crate::ProjectionError;
use crate::read_models::Blocker;

pub(crate) fn micros(time: DateTime<Utc>) -> i64 {
    time.timestamp_micros()
}

pub(crate) fn time(
    table: &str,
    column: &str,
    micros: i64,
) -> Result<DateTime<Utc>, ProjectionError> {
    DateTime::from_timestamp_micros(micros)
        .ok_or_else(|| corrupt(table, format!("{column} = {micros} is not a time")))
}

pub(crate) fn optional_time(
    table: &str,
    column: &str,
    micros: Option<i64>,
) -> Result<Option<DateTime<Utc>>, ProjectionError> {
    micros.map(|micros| time(table, column, micros)).transpose()
}

pub(crate) fn count(table: &str, column: &str, value: i64) -> Result<u64, ProjectionError> {
    u64::try_from(value).map_err(|_| corrupt(table, format!("{column} = {value} is negative")))
}

pub(crate) fn blockers_of(text: &str) -> Result<Vec<Blocker>, ProjectionError> {
    serde_json::from_str(text).map_err(|error| {
        corrupt(
            "read_onboarding_status",
            format!("blocked_by is not a list of blockers: {error}"),
        )
    })
}

pub(crate) fn blockers_text(blockers: &[Blocker]) -> String {
    // A list of two plain strings per item always serializes.
    serde_json::to_string(blockers).unwrap_or_else(|_| "[]".to_owned())
}

pub(crate) fn position(value: u64) -> Result<i64, ProjectionError> {
    i64::try_from(value).map_err(|_| {
        ProjectionError::Store(mmonboard_eventlog::StoreError::Invalid(format!(
            "position {value} is out of range"
        )))
    })
}

pub(crate) fn corrupt(table: &str, reason: String) -> ProjectionError {
    ProjectionError::CorruptRow {
        table: table.to_owned(),
        reason,
    }
}
