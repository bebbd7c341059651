//! How the stored events' timestamps are read back: chrono's own reading of RFC 3339, tried first through its
//! strict parser.
//!
//! `DateTime<Utc>`'s `Deserialize` goes through chrono's relaxed parser (it also takes an offset without
//! its colon, spaces before the offset, and the like), which is table-driven and was a sixth of everything a
//! replay did on the client. Every timestamp this crate writes is strict RFC 3339 (`2026-11-25T10:00:00Z`), which
//! `DateTime::parse_from_rfc3339` reads in a fraction of the time. Whatever the strict parser refuses goes to
//! the relaxed one, so the same texts are accepted, as the same instants, with the same errors as before.
//!
//! In front of both sits a reading of the one spelling serde writes for a `DateTime<Utc>`
//! (`2026-11-25T10:00:00Z`, or with 1 to 9 digits of fraction): chrono's strict parser still cost ~350
//! instructions a timestamp, a tenth of decoding a stored event. It only splits the digits out; chrono checks
//! the date and the time of day, and any other text, or a value chrono refuses (a 30 February, a leap
//! second), goes on to chrono's parsers as before.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveTime, Utc};
use serde::Deserializer;
use serde::de::{self, Visitor};

/// Reads an RFC 3339 text into the instant it names; used as `deserialize_with` on every stored timestamp.
pub(crate) fn deserialize<'de, D>(deserializer: D) -> Result<DateTime<Utc>, D::Error>
where
    D: Deserializer<'de>,
{
    deserializer.deserialize_str(Rfc3339)
}

/// Parses the text where the deserializer holds it, without copying it out.
struct Rfc3339;

impl Visitor<'_> for Rfc3339 {
    type Value = DateTime<Utc>;

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        // chrono's words, so an error reads as it did before.
        formatter.write_str("an RFC 3339 formatted date and time string")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
        parse(text).map_err(E::custom)
    }
}

/// The spelling serde writes, then the strict parser, then the relaxed one that chrono's `Deserialize` uses.
pub(crate) fn parse(text: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
    if let Some(instant) = as_written(text) {
        return Ok(instant);
    }
    DateTime::parse_from_rfc3339(text)
        .or_else(|_| text.parse::<DateTime<FixedOffset>>())
        .map(|instant| instant.with_timezone(&Utc))
}

/// `YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z`, as serde writes a `DateTime<Utc>`; `None` for any other text and for a
/// value chrono does not take as a date and a time of day, which the parsers after this one then judge.
fn as_written(text: &str) -> Option<DateTime<Utc>> {
    let bytes = text.as_bytes();
    let (&b'Z', body) = bytes.split_last()? else {
        return None;
    };
    if body.len() < 19 || [body[4], body[7], body[10], body[13], body[16]] != *b"--T::" {
        return None;
    }
    let number = |digits: &[u8]| {
        digits.iter().try_fold(0u32, |value, digit| {
            digit
                .is_ascii_digit()
                .then(|| value * 10 + u32::from(digit - b'0'))
        })
    };
    let nanos = match &body[19..] {
        [] => 0,
        [b'.', fraction @ ..] if (1..=9).contains(&fraction.len()) => {
            number(fraction)? * 10u32.pow(9 - fraction.len() as u32)
        }
        _ => return None,
    };
    let date = NaiveDate::from_ymd_opt(
        i32::try_from(number(&body[0..4])?).ok()?,
        number(&body[5..7])?,
        number(&body[8..10])?,
    )?;
    let time = NaiveTime::from_hms_nano_opt(
        number(&body[11..13])?,
        number(&body[14..16])?,
        number(&body[17..19])?,
        nanos,
    )?;
    Some(date.and_time(time).and_utc())
}

#[cfg(test)]
mod tests {
    use chrono::{SecondsFormat, TimeZone};
    use proptest::prelude::*;

    use super::*;

    /// What chrono's own `Deserialize` makes of a JSON string.
    fn chrono_reads(text: &str) -> Result<DateTime<Utc>, String> {
        serde_json::from_value::<DateTime<Utc>>(serde_json::Value::String(text.to_owned()))
            .map_err(|error| error.to_string())
    }

    #[derive(serde::Deserialize)]
    struct Wrapped {
        #[serde(deserialize_with = "deserialize")]
        at: DateTime<Utc>,
    }

    fn ours_reads(text: &str) -> Result<DateTime<Utc>, String> {
        serde_json::from_value::<Wrapped>(serde_json::json!({ "at": text }))
            .map(|wrapped| wrapped.at)
            .map_err(|error| error.to_string())
    }

    proptest! {
        #[test]
        fn every_instant_in_every_rfc3339_spelling_reads_as_chrono_reads_it(
            seconds in -62_135_596_800_i64..253_402_300_799,
            nanos in 0u32..1_000_000_000,
            offset_minutes in -1439i32..=1439,
            format in 0usize..5,
            z in any::<bool>(),
        ) {
            let offset = FixedOffset::east_opt(offset_minutes * 60).unwrap();
            let instant = offset.timestamp_opt(seconds, nanos).unwrap();
            let format = [
                SecondsFormat::Secs,
                SecondsFormat::Millis,
                SecondsFormat::Micros,
                SecondsFormat::Nanos,
                SecondsFormat::AutoSi,
            ][format];
            let text = instant.to_rfc3339_opts(format, z);
            prop_assert_eq!(ours_reads(&text), chrono_reads(&text));
            // And what serde writes for a `DateTime<Utc>`, the form every stored event has.
            let written = serde_json::to_value(instant.with_timezone(&Utc)).unwrap();
            let written = written.as_str().unwrap();
            prop_assert_eq!(ours_reads(written), chrono_reads(written));
        }

        /// The spelling serde writes, with every field also out of its range (which chrono refuses or, for a
        /// leap second, reads itself).
        #[test]
        fn the_written_spelling_reads_as_chrono_reads_it(
            year in 0u32..=9999,
            month in 0u32..=13,
            day in 0u32..=32,
            hour in 0u32..=25,
            minute in 0u32..=61,
            second in 0u32..=61,
            fraction in "|\\.[0-9]{1,10}",
        ) {
            let text = format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}{fraction}Z");
            prop_assert_eq!(ours_reads(&text), chrono_reads(&text));
        }

        #[test]
        fn any_text_reads_as_chrono_reads_it(text in "[0-9T:. +\\-Zz\u{2212}]{0,40}") {
            prop_assert_eq!(ours_reads(&text), chrono_reads(&text));
        }
    }

    #[test]
    fn what_either_parser_takes_is_taken_as_chrono_takes_it() {
        for text in [
            // Taken by both parsers.
            "2026-11-25 10:00:00Z",
            "2026-11-25t10:00:00z",
            // A leap second, and the minus sign U+2212 in the offset: where the two parsers run code of
            // their own.
            "2016-12-31T23:59:60Z",
            "2016-12-31T23:59:60.5+01:00",
            "2026-11-25T10:00:00\u{2212}03:00",
            // Taken by the relaxed parser only.
            "2026-11-25T10:00:00 +01:00",
            "2026-11-25T10:00:00+0100",
        ] {
            let chrono = chrono_reads(text);
            assert!(chrono.is_ok(), "{text}: {chrono:?}");
            assert_eq!(ours_reads(text), chrono, "{text}");
        }
        for text in ["", "2026-11-25", "2026-13-01T00:00:00Z", "yesterday"] {
            let chrono = chrono_reads(text);
            assert!(chrono.is_err(), "{text}");
            assert_eq!(ours_reads(text), chrono, "{text}");
        }
    }
}
