//! Values as the storage layer keeps them in the log's database, for its own tables and its companions'
//! (read models, process timers and lease, tokens): a time is whole microseconds since the Unix epoch in an
//! integer column, on both backends; a count or position is a non-negative integer. Read back, a value this
//! code could not have written is a [`CorruptValue`] naming its table and column, never a default.

use chrono::{DateTime, Utc};

/// A stored value that this code could not have written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{table}: {column} = {value} {problem}")]
pub struct CorruptValue {
    pub table: &'static str,
    pub column: &'static str,
    /// The value as stored, as text.
    pub value: String,
    /// What is wrong with it.
    pub problem: &'static str,
}

/// A time as it is stored: microseconds since the Unix epoch.
pub fn micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

/// A stored time, from the microseconds in `table`'s `column`.
pub fn time_from_micros(
    table: &'static str,
    column: &'static str,
    micros: i64,
) -> Result<DateTime<Utc>, CorruptValue> {
    DateTime::from_timestamp_micros(micros).ok_or_else(|| CorruptValue {
        table,
        column,
        value: micros.to_string(),
        problem: "is not a time",
    })
}

/// A stored integer as the unsigned type it was written from (a count, a position, a number of attempts).
pub fn unsigned<T: TryFrom<i64>>(
    table: &'static str,
    column: &'static str,
    value: i64,
) -> Result<T, CorruptValue> {
    T::try_from(value).map_err(|_| CorruptValue {
        table,
        column,
        value: value.to_string(),
        problem: "is out of range",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_time_survives_its_stored_form_and_an_impossible_one_names_its_place() {
        let at = DateTime::from_timestamp_micros(1_767_225_600_123_456).expect("a time");
        assert_eq!(time_from_micros("t", "c", micros(at)), Ok(at));
        let corrupt = time_from_micros("process_timers", "due_at", i64::MAX).expect_err("corrupt");
        assert_eq!(
            corrupt.to_string(),
            format!("process_timers: due_at = {} is not a time", i64::MAX)
        );
    }

    #[test]
    fn a_negative_or_too_large_count_is_corrupt() {
        assert_eq!(unsigned::<u32>("t", "c", 7), Ok(7));
        let negative =
            unsigned::<u64>("read_model_checkpoints", "position", -1).expect_err("corrupt");
        assert_eq!(
            negative.to_string(),
            "read_model_checkpoints: position = -1 is out of range"
        );
        assert!(unsigned::<u32>("t", "c", i64::from(u32::MAX) + 1).is_err());
    }
}
