//! Bulk reads of the log in PostgreSQL's binary `COPY` format.
//!
//! A long page (a replay, a projector catching up) is read with
//! `COPY (SELECT … LIMIT n) TO STDOUT (FORMAT binary)` through sqlx's `copy_out_raw`, and its tuples are
//! parsed here. The values are the same binary values a `SELECT` sends, in the same snapshot semantics
//! (one statement, one snapshot), but without sqlx's per-row machinery: a row is a slice of the chunk it
//! arrived in, so the client does less work per row than through the row stream.
//!
//! The format (PostgreSQL's documentation, "COPY", "Binary Format") is an 11-byte signature, a 32-bit flags
//! field, a 32-bit header-extension length and the extension, then one tuple per row: a 16-bit field count
//! and, per field, a 32-bit length (-1 for NULL) and that many bytes; a field count of -1 ends the data.
//! All integers are big-endian. It carries no column types: the statement checks them itself, once, with
//! `mmonboard_event_columns_checked()` (see `migrations/postgres/0005_event_columns_check.sql`).
//!
//! sqlx offers the `COPY` stream only as raw chunks, and no maintained crate parses the binary format
//! without owning the connection (the `postgres` crate's `BinaryCopyOutStream` is tied to its own driver), so
//! the parser is kept here; it is small and tested at every chunk boundary.

use crate::error::{DatabaseError, StoreError};

/// The columns every event read selects (`sql::event_columns!`).
pub(super) const FIELDS: usize = 10;

/// The first bytes of every binary `COPY` stream.
const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";

/// Bits 16-31 of the header's flags mark critical format changes, which a reader must refuse if it does not
/// know them (bit 16 says each tuple carries an OID, which this reader does not expect); bits 0-15 mark
/// compatible ones, which it ignores.
const REFUSED_FLAGS: u32 = 0xffff_0000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Header,
    Tuples,
    Trailer,
}

/// Parses a binary `COPY` stream of event rows fed in chunks of any size, handing each complete tuple's
/// values to a callback. Tuples that fit in their chunk are read in place; only when one straddles a chunk
/// boundary is the rest of the stream copied, up to the end of the chunk that completes it (PostgreSQL sends
/// one chunk per row, so in practice nothing is copied).
#[derive(Debug)]
pub(super) struct CopyParser {
    stage: Stage,
    pending: Vec<u8>,
}

impl Default for CopyParser {
    fn default() -> Self {
        Self {
            stage: Stage::Header,
            pending: Vec::new(),
        }
    }
}

impl CopyParser {
    /// Parses what `chunk` completes, calling `tuple` with each tuple's ten values in column order.
    /// A malformed stream is a [`StoreError`]; the callback's own error stops the parse and is returned.
    pub(super) fn feed<F, E>(&mut self, chunk: &[u8], tuple: &mut F) -> Result<(), E>
    where
        F: FnMut([&[u8]; FIELDS]) -> Result<(), E>,
        E: From<StoreError>,
    {
        if self.pending.is_empty() {
            let used = parse(&mut self.stage, chunk, tuple)?;
            self.pending.extend_from_slice(&chunk[used..]);
        } else {
            self.pending.extend_from_slice(chunk);
            let used = parse(&mut self.stage, &self.pending, tuple)?;
            self.pending.drain(..used);
        }
        Ok(())
    }

    /// Refuses a stream that ended before its trailer (a tuple or the header cut short).
    pub(super) fn finish(self) -> Result<(), StoreError> {
        if self.stage == Stage::Trailer && self.pending.is_empty() {
            Ok(())
        } else {
            Err(malformed(format!(
                "it ended {} ({} bytes unread)",
                match self.stage {
                    Stage::Header => "inside its header",
                    Stage::Tuples => "before its trailer",
                    Stage::Trailer => "with bytes after its trailer",
                },
                self.pending.len()
            )))
        }
    }
}

/// Parses the complete parts of `input` from `stage` on, and answers how many bytes they took; the rest is
/// the beginning of a part that the next chunk completes.
fn parse<F, E>(stage: &mut Stage, input: &[u8], tuple: &mut F) -> Result<usize, E>
where
    F: FnMut([&[u8]; FIELDS]) -> Result<(), E>,
    E: From<StoreError>,
{
    let mut used = 0;
    loop {
        let rest = &input[used..];
        match *stage {
            Stage::Header => {
                let Some(extension) = rest.get(15..19) else {
                    return Ok(used);
                };
                if !rest.starts_with(SIGNATURE) {
                    return Err(malformed("its signature is wrong".to_owned()));
                }
                let flags = be_u32(&rest[11..15]);
                if flags & REFUSED_FLAGS != 0 {
                    return Err(malformed(format!("its header has flags {flags:#010x}")));
                }
                let Some(end) = usize::try_from(be_u32(extension))
                    .ok()
                    .and_then(|length| length.checked_add(19))
                else {
                    return Err(malformed("its header extension is too long".to_owned()));
                };
                if rest.len() < end {
                    return Ok(used);
                }
                used += end;
                *stage = Stage::Tuples;
            }
            Stage::Tuples => {
                let Some(count) = rest.get(..2) else {
                    return Ok(used);
                };
                let count = i16::from_be_bytes([count[0], count[1]]);
                if count == -1 {
                    used += 2;
                    *stage = Stage::Trailer;
                    continue;
                }
                if usize::try_from(count) != Ok(FIELDS) {
                    return Err(malformed(format!(
                        "a tuple has {count} fields, not {FIELDS}"
                    )));
                }
                let mut values: [&[u8]; FIELDS] = [&[]; FIELDS];
                let mut at = 2;
                for (index, value) in values.iter_mut().enumerate() {
                    let Some(length) = rest.get(at..at + 4) else {
                        return Ok(used);
                    };
                    let length = i32::from_be_bytes([length[0], length[1], length[2], length[3]]);
                    let Ok(length) = usize::try_from(length) else {
                        return Err(malformed(format!(
                            "field {index} of a tuple is NULL or of length {length}"
                        )));
                    };
                    at += 4;
                    let Some(bytes) = at.checked_add(length).and_then(|end| rest.get(at..end))
                    else {
                        return Ok(used);
                    };
                    *value = bytes;
                    at += length;
                }
                tuple(values)?;
                used += at;
            }
            Stage::Trailer => {
                if rest.is_empty() {
                    return Ok(used);
                }
                return Err(malformed(format!(
                    "{} bytes follow its trailer",
                    rest.len()
                )));
            }
        }
    }
}

fn be_u32(bytes: &[u8]) -> u32 {
    u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

fn malformed<E: From<StoreError>>(reason: String) -> E {
    E::from(StoreError::Database(DatabaseError::text(format!(
        "an event read's binary COPY stream is malformed: {reason}"
    ))))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A binary COPY stream of `rows`, each of ten fields (`None` for NULL), as PostgreSQL writes it.
    fn stream(rows: &[Vec<Option<&[u8]>>], extension: &[u8]) -> Vec<u8> {
        let mut bytes = SIGNATURE.to_vec();
        bytes.extend_from_slice(&0u32.to_be_bytes());
        bytes.extend_from_slice(&u32::try_from(extension.len()).unwrap().to_be_bytes());
        bytes.extend_from_slice(extension);
        for row in rows {
            bytes.extend_from_slice(&i16::try_from(row.len()).unwrap().to_be_bytes());
            for field in row {
                match field {
                    Some(value) => {
                        bytes.extend_from_slice(&i32::try_from(value.len()).unwrap().to_be_bytes());
                        bytes.extend_from_slice(value);
                    }
                    None => bytes.extend_from_slice(&(-1i32).to_be_bytes()),
                }
            }
        }
        bytes.extend_from_slice(&(-1i16).to_be_bytes());
        bytes
    }

    fn row(seed: u8) -> Vec<Option<&'static [u8]>> {
        let values: [&'static [u8]; 4] = [b"", b"a", b"{\"k\": \"\xe2\x9c\x93\"}", &[0xff; 40]];
        (0..FIELDS)
            .map(|index| Some(values[(index + usize::from(seed)) % values.len()]))
            .collect()
    }

    /// Feeds `chunks` and collects the tuples, or the first error.
    fn parse_chunks(chunks: &[&[u8]]) -> Result<Vec<Vec<Vec<u8>>>, StoreError> {
        let mut parser = CopyParser::default();
        let mut tuples = Vec::new();
        let mut collect = |values: [&[u8]; FIELDS]| {
            tuples.push(values.iter().map(|value| value.to_vec()).collect());
            Ok::<(), StoreError>(())
        };
        for chunk in chunks {
            parser.feed(chunk, &mut collect)?;
        }
        parser.finish()?;
        Ok(tuples)
    }

    fn expected(rows: &[Vec<Option<&[u8]>>]) -> Vec<Vec<Vec<u8>>> {
        rows.iter()
            .map(|row| row.iter().map(|value| value.unwrap().to_vec()).collect())
            .collect()
    }

    #[test]
    fn every_split_into_two_or_three_chunks_gives_the_same_tuples() {
        let rows: Vec<_> = (0..3).map(row).collect();
        let bytes = stream(&rows, b"ext");
        let want = expected(&rows);
        assert_eq!(parse_chunks(&[&bytes]).unwrap(), want);
        for first in 0..=bytes.len() {
            assert_eq!(
                parse_chunks(&[&bytes[..first], &bytes[first..]]).unwrap(),
                want,
                "split at {first}"
            );
            for second in (first..=bytes.len()).step_by(7) {
                let chunks = [&bytes[..first], &bytes[first..second], &bytes[second..]];
                assert_eq!(
                    parse_chunks(&chunks).unwrap(),
                    want,
                    "split at {first}, {second}"
                );
            }
        }
    }

    #[test]
    fn byte_by_byte_gives_the_same_tuples() {
        let rows: Vec<_> = (0..5).map(row).collect();
        let bytes = stream(&rows, b"");
        let chunks: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(parse_chunks(&chunks).unwrap(), expected(&rows));
    }

    #[test]
    fn an_empty_result_is_a_header_and_a_trailer() {
        assert!(parse_chunks(&[&stream(&[], b"")]).unwrap().is_empty());
    }

    #[test]
    fn a_stream_cut_anywhere_before_its_trailer_is_refused() {
        let bytes = stream(&[row(0), row(1)], b"");
        for end in 0..bytes.len() {
            let error = parse_chunks(&[&bytes[..end]]).expect_err("a cut stream is refused");
            assert!(error.to_string().contains("ended"), "cut at {end}: {error}");
        }
    }

    #[test]
    fn malformed_streams_are_refused_with_the_reason() {
        let good = stream(&[row(0)], b"");
        let mut wrong_signature = good.clone();
        wrong_signature[0] = b'X';
        let mut oids = good.clone();
        oids[11..15].copy_from_slice(&(1u32 << 16).to_be_bytes());
        let mut critical_flag = good.clone();
        critical_flag[11..15].copy_from_slice(&(1u32 << 20).to_be_bytes());
        let mut ignorable_flag = good.clone();
        ignorable_flag[11..15].copy_from_slice(&(1u32 << 3).to_be_bytes());
        let mut after_trailer = good.clone();
        after_trailer.push(0);
        let nine_fields = stream(&[row(0)[..9].to_vec()], b"");
        let mut with_null = row(0);
        with_null[4] = None;
        let null = stream(&[with_null], b"");
        for (bytes, reason) in [
            (wrong_signature, "signature"),
            (oids, "flags 0x00010000"),
            (critical_flag, "flags 0x00100000"),
            (after_trailer, "1 bytes follow its trailer"),
            (nine_fields, "9 fields, not 10"),
            (null, "field 4 of a tuple is NULL"),
        ] {
            let error = parse_chunks(&[&bytes]).expect_err(reason);
            assert!(error.to_string().contains(reason), "{reason}: {error}");
        }
        assert_eq!(parse_chunks(&[&ignorable_flag]).unwrap().len(), 1);
    }

    #[test]
    fn an_error_from_the_callback_stops_the_parse() {
        let bytes = stream(&[row(0), row(1)], b"");
        let mut parser = CopyParser::default();
        let mut seen = 0;
        let error = parser
            .feed(&bytes, &mut |_| {
                seen += 1;
                Err(malformed::<StoreError>("refused by the decoder".to_owned()))
            })
            .expect_err("the callback's error");
        assert!(error.to_string().contains("refused by the decoder"));
        assert_eq!(seen, 1);
    }
}
