//! Decoding of the chunk rows built by [`super::sql`]: one row holding, column by column, the
//! lists of many events' fields. Splitting those lists is a few slices and integer parses per
//! event, far cheaper than receiving each event as its own sqlx row.

use std::str::Split;

use chrono::DateTime;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use uuid::Uuid;

use crate::crosscheck::is_canonical_uuid_text;
use crate::error::StoreError;
use crate::model::{EventMetadata, RecordedEvent, StreamId};

const TEXT_SEPARATOR: char = '\u{1f}';
const EVENT_ID_LEN: usize = 36;
const HASH_LEN: usize = 32;

/// The last stream id and metadata decoded: consecutive events usually share them (one stream, one
/// command), and reusing them saves an allocation and a JSON parse per event. Both decoders (the chunk rows
/// here, the bulk reader's rows in `bulk.rs`) keep one.
#[derive(Default)]
pub(super) struct FieldMemo {
    last_stream: Option<StreamId>,
    last_metadata: Option<(String, EventMetadata)>,
}

impl FieldMemo {
    pub(super) fn stream_id(&mut self, text: &str) -> Result<StreamId, String> {
        if let Some(last) = &self.last_stream
            && last.as_str() == text
        {
            return Ok(last.clone());
        }
        let parsed = StreamId::parse(text).map_err(|error| error.to_string())?;
        self.last_stream = Some(parsed.clone());
        Ok(parsed)
    }

    pub(super) fn metadata(&mut self, text: &str) -> Result<EventMetadata, String> {
        if let Some((last_text, parsed)) = &self.last_metadata
            && last_text == text
        {
            return Ok(parsed.clone());
        }
        let parsed = match parse_canonical_metadata(text) {
            Some(parsed) => parsed,
            None => serde_json::from_str(text)
                .map_err(|error| format!("unreadable metadata: {error}"))?,
        };
        self.last_metadata = Some((text.to_owned(), parsed.clone()));
        Ok(parsed)
    }
}

/// Decodes chunk rows, remembering the fields consecutive events share.
#[derive(Default)]
pub(crate) struct ChunkDecoder {
    memo: FieldMemo,
}

impl ChunkDecoder {
    /// Decodes a chunk row, handing each event and its metadata text (as stored) to `sink` in
    /// row order. `stream_id` is the stream read, if the row does not list stream ids. Returns
    /// how many events were decoded.
    pub(crate) fn decode<'r>(
        &mut self,
        row: &'r SqliteRow,
        stream_id: Option<&StreamId>,
        mut sink: impl FnMut(RecordedEvent, &'r str),
    ) -> Result<usize, StoreError> {
        let count: i64 = row.try_get(0)?;
        if count == 0 {
            return Ok(0);
        }
        let list = |index: usize| -> Result<&'r str, StoreError> {
            let text: Option<&str> = row.try_get(index)?;
            text.ok_or_else(|| StoreError::Corrupt {
                global_position: 0,
                reason: "a column of the chunk is missing".to_owned(),
            })
        };
        let positions = list(1)?.split(',');
        let mut stream_versions = list(2)?.split(',');
        let mut schema_versions = list(3)?.split(',');
        let mut recorded_ats = list(4)?.split(',');
        let mut event_ids = list(5)?.as_bytes().chunks(EVENT_ID_LEN);
        let hashes: Option<&[u8]> = row.try_get(6)?;
        let mut hashes = hashes.unwrap_or_default().chunks(HASH_LEN);
        let stream_ids: Option<&str> = row.try_get(7)?;
        let mut stream_ids = stream_ids.map(|text| text.split(TEXT_SEPARATOR));
        let mut event_types = list(8)?.split(TEXT_SEPARATOR);
        let mut metadatas = list(9)?.split(TEXT_SEPARATOR);
        let mut payloads = list(10)?.split(TEXT_SEPARATOR);

        let mut decoded = 0;
        let mut previous_position = 0;
        for position in positions {
            let position: u64 = position.parse().map_err(|_| StoreError::Corrupt {
                global_position: previous_position + 1,
                reason: format!("bad global position {position:?}"),
            })?;
            let corrupt = |reason: String| StoreError::Corrupt {
                global_position: position,
                reason,
            };
            let missing = |what: &str| corrupt(format!("the chunk lacks the {what}"));
            let stream_id = match (&mut stream_ids, stream_id) {
                (Some(stream_ids), _) => {
                    let text = stream_ids.next().ok_or_else(|| missing("stream id"))?;
                    self.memo.stream_id(text).map_err(&corrupt)?
                }
                (None, Some(stream_id)) => stream_id.clone(),
                (None, None) => return Err(missing("stream id")),
            };
            let event_id_text = event_ids.next().ok_or_else(|| missing("event id"))?;
            let event_id = Uuid::try_parse_ascii(event_id_text)
                .map_err(|_| corrupt("the event id is not a UUID".to_owned()))?;
            // The hash covers the id's 16 bytes, not its text: another spelling of it would be a
            // changed stored byte the chain cannot see.
            if !is_canonical_uuid_text(event_id_text, &event_id) {
                return Err(corrupt(format!(
                    "the event id {:?} is not stored in its canonical form (lower-case, hyphenated)",
                    String::from_utf8_lossy(event_id_text)
                )));
            }
            let hash = hashes.next().ok_or_else(|| missing("hash"))?;
            let hash = <[u8; HASH_LEN]>::try_from(hash)
                .map_err(|_| corrupt("the hash is not 32 bytes".to_owned()))?;
            let recorded_at = number(&mut recorded_ats, "timestamp").map_err(&corrupt)?;
            let metadata = metadatas.next().ok_or_else(|| missing("metadata"))?;
            let event = RecordedEvent {
                global_position: position,
                stream_id,
                stream_version: number(&mut stream_versions, "stream version").map_err(&corrupt)?,
                event_id,
                event_type: event_types
                    .next()
                    .ok_or_else(|| missing("event type"))?
                    .to_owned(),
                schema_version: number(&mut schema_versions, "schema version").map_err(&corrupt)?,
                payload: payloads
                    .next()
                    .ok_or_else(|| missing("payload"))?
                    .to_owned(),
                metadata: self.memo.metadata(metadata).map_err(&corrupt)?,
                recorded_at: DateTime::from_timestamp_micros(recorded_at)
                    .ok_or_else(|| corrupt(format!("bad timestamp {recorded_at}")))?,
                hash,
            };
            sink(event, metadata);
            decoded += 1;
            previous_position = position;
        }
        let leftover = stream_versions.next().is_some()
            || schema_versions.next().is_some()
            || recorded_ats.next().is_some()
            || event_ids.next().is_some()
            || hashes.next().is_some()
            || stream_ids.is_some_and(|mut ids| ids.next().is_some())
            || event_types.next().is_some()
            || metadatas.next().is_some()
            || payloads.next().is_some();
        if leftover || i64::try_from(decoded).ok() != Some(count) {
            return Err(StoreError::Corrupt {
                global_position: previous_position,
                reason: format!(
                    "{count} events selected but their fields do not line up (a stored text \
                     holds a separator)"
                ),
            });
        }
        Ok(decoded)
    }
}

/// Parses metadata in exactly the form this crate writes (`serde_json::to_string` of
/// [`EventMetadata`] with an actor free of escapes) several times faster than serde; anything
/// else returns `None` and goes through serde. Commands usually carry one event each, so this
/// runs once per event on long reads.
pub(super) fn parse_canonical_metadata(text: &str) -> Option<EventMetadata> {
    let rest = text.strip_prefix(r#"{"command_id":""#)?;
    let (command_id, rest) = rest.split_at_checked(EVENT_ID_LEN)?;
    let rest = rest.strip_prefix(r#"","actor":""#)?;
    let actor_end = rest.find(['"', '\\'])?;
    let (actor, rest) = rest.split_at(actor_end);
    let rest = rest.strip_prefix(r#"","correlation_id":""#)?;
    let (correlation_id, rest) = rest.split_at_checked(EVENT_ID_LEN)?;
    let rest = rest.strip_prefix(r#"","causation_id":"#)?;
    let causation_id = if rest == "null}" {
        None
    } else {
        let rest = rest.strip_prefix('"')?;
        let (causation_id, rest) = rest.split_at_checked(EVENT_ID_LEN)?;
        if rest != "\"}" {
            return None;
        }
        Some(Uuid::try_parse(causation_id).ok()?)
    };
    if actor.chars().any(char::is_control) {
        return None;
    }
    Some(EventMetadata {
        command_id: Uuid::try_parse(command_id).ok()?,
        actor: actor.to_owned(),
        correlation_id: Uuid::try_parse(correlation_id).ok()?,
        causation_id,
    })
}

fn number<T: std::str::FromStr>(list: &mut Split<'_, char>, what: &str) -> Result<T, String> {
    let text = list
        .next()
        .ok_or_else(|| format!("the chunk lacks the {what}"))?;
    text.parse().map_err(|_| format!("bad {what} {text:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(actor: &str, causation_id: Option<Uuid>) -> EventMetadata {
        EventMetadata {
            command_id: Uuid::now_v7(),
            actor: actor.to_owned(),
            correlation_id: Uuid::now_v7(),
            causation_id,
        }
    }

    #[test]
    fn canonical_metadata_parses_like_serde() {
        for original in [
            metadata("ops@example.com", None),
            metadata("ünïcode actor ✓", Some(Uuid::now_v7())),
            metadata("", Some(Uuid::nil())),
        ] {
            let text = serde_json::to_string(&original).expect("serializable");
            assert_eq!(parse_canonical_metadata(&text), Some(original));
        }
    }

    #[test]
    fn anything_else_is_left_to_serde() {
        let escaped =
            serde_json::to_string(&metadata("a \"quoted\" actor\n", None)).expect("serializable");
        assert_eq!(parse_canonical_metadata(&escaped), None);
        let original = metadata("x", None);
        let spaced = serde_json::to_string_pretty(&original).expect("serializable");
        assert_eq!(parse_canonical_metadata(&spaced), None);
        let text = serde_json::to_string(&original).expect("serializable");
        let reordered = text.replace(r#"{"command_id""#, r#"{"extra":1,"command_id""#);
        assert_eq!(parse_canonical_metadata(&reordered), None);
        assert_eq!(parse_canonical_metadata(&text[..text.len() - 1]), None);
    }
}
