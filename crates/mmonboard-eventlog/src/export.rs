//! Exports of the log, their offline verification and their import: the backup format that keeps global
//! positions, and what an auditor takes away to check without the service.
//!
//! An export is NDJSON: a header line, then one line per event exactly as stored (its metadata and payload
//! as JSON strings holding the stored text, its time as the stored unix microseconds, its hash in hex), in
//! global order. Every line must be byte for byte what [`export`] writes (a line is parsed, written again
//! and compared), so a changed byte either changes a hashed field, which breaks the chain, or changes the
//! form, which is refused: nothing in a file can change unseen. `docs/audit.md` describes the bytes.
//!
//! Signed checkpoints are exported too, each as a `checkpoint` line right after the event at its position, so
//! that a verifier checks each against the chain as it reads (an export written before checkpoints existed
//! simply has none, and reads as before).
//!
//! Command records are not exported: an import rebuilds each command's record from its events (a command's
//! events are consecutive and carry its id), which is what `verify` cross-checks. Commands that wrote no
//! event (recorded only so a retry is recognised) are not carried over.

use std::io::BufRead;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt};
use uuid::Uuid;

use crate::crosscheck::{CommandRecord, is_canonical_uuid_text};
use crate::error::StoreError;
use crate::hash::GENESIS_HASH;
use crate::log::{EventLog, LogOptions};
use crate::model::{EventMetadata, RecordedEvent, StreamId};
use crate::signed::{SignedCheckpoint, TrustedKey};
use crate::store::{ChainVerifier, EventStore};
use crate::{Backend, PgEventStore, SqliteEventStore};

/// The `format` of an export's header line.
pub const EXPORT_FORMAT: &str = "mmonboard-export/1";

/// Events read per page while exporting.
const EXPORT_PAGE: usize = 2048;

/// One line of an export file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ExportLine {
    /// The first line: what follows starts after position `after`, whose hash is `previous_hash`
    /// (32 zero bytes for a whole log).
    Header {
        format: String,
        after: u64,
        previous_hash: String,
    },
    /// One event as stored.
    Event {
        position: u64,
        stream: String,
        version: u64,
        event_id: String,
        event_type: String,
        schema_version: u32,
        /// Unix microseconds, as stored and hashed.
        recorded_at: i64,
        /// The metadata's JSON text as stored.
        metadata: String,
        /// The payload's JSON text as stored.
        payload: String,
        hash: String,
    },
    /// A signed checkpoint of the event just before it (docs/audit.md, "The bytes that are signed").
    Checkpoint {
        position: u64,
        /// The signed chain hash at `position`, hex.
        hash: String,
        /// Unix microseconds, as signed.
        recorded_at: i64,
        key_id: String,
        /// The Ed25519 public key, hex.
        public_key: String,
        /// The Ed25519 signature, hex.
        signature: String,
    },
}

impl ExportLine {
    fn checkpoint(checkpoint: &SignedCheckpoint) -> Self {
        Self::Checkpoint {
            position: checkpoint.position,
            hash: hex::encode(checkpoint.head_hash),
            recorded_at: checkpoint.recorded_at_micros,
            key_id: checkpoint.key_id.clone(),
            public_key: hex::encode(checkpoint.public_key),
            signature: hex::encode(checkpoint.signature),
        }
    }

    fn event(event: &RecordedEvent, metadata: &str) -> Self {
        Self::Event {
            position: event.global_position,
            stream: event.stream_id.as_str().to_owned(),
            version: event.stream_version,
            event_id: event.event_id.hyphenated().to_string(),
            event_type: event.event_type.clone(),
            schema_version: event.schema_version,
            recorded_at: event.recorded_at.timestamp_micros(),
            metadata: metadata.to_owned(),
            payload: event.payload.clone(),
            hash: hex::encode(event.hash),
        }
    }
}

/// Which part of the log to export.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportRange {
    /// Events after this position (0: from the first).
    pub after: u64,
    /// Up to and including this position (`None`: to the head as the export reaches it).
    pub to: Option<u64>,
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSummary {
    pub events: u64,
    /// Signed checkpoints written.
    pub checkpoints: u64,
    /// The last exported event's position and hash.
    pub last: Option<(u64, [u8; 32])>,
}

/// Why an export, import or file verification did not complete.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    /// The range asked for is not in the log.
    #[error("{0}")]
    Range(String),
    /// The file is not an intact export: nothing was imported.
    #[error("line {}: {}", .0.line, .0.reason)]
    Broken(FileBreak),
}

/// The first place where an export file is not what was exported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileBreak {
    /// 1-based line number.
    pub line: u64,
    /// The event's position, when the line names one.
    pub global_position: Option<u64>,
    pub reason: String,
}

/// The result of verifying an export file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileReport {
    /// The header's `after`.
    pub after: u64,
    pub events_checked: u64,
    /// The last sound event's position and hash.
    pub head: Option<(u64, [u8; 32])>,
    /// Signed checkpoints found sound.
    pub checkpoints_checked: u64,
    /// The sound checkpoint of the highest position.
    pub newest_checkpoint: Option<SignedCheckpoint>,
    pub first_break: Option<FileBreak>,
}

impl FileReport {
    pub fn is_intact(&self) -> bool {
        self.first_break.is_none()
    }
}

/// Writes the events of `range` to `out` as an export, reading the log in pages (flat memory);
/// `progress` is told the position reached after each page.
pub async fn export<W: AsyncWrite + Unpin>(
    log: &EventLog,
    range: ExportRange,
    out: &mut W,
    progress: &mut (dyn FnMut(u64) + Send),
) -> Result<ExportSummary, ExportError> {
    if let Some(to) = range.to
        && to < range.after
    {
        return Err(ExportError::Range(format!(
            "the range is empty: --to {to} is below --after {}",
            range.after
        )));
    }
    let previous_hash = if range.after == 0 {
        GENESIS_HASH
    } else {
        match log.read_all(range.after - 1, 1).await?.first() {
            Some(event) if event.global_position == range.after => event.hash,
            _ => {
                return Err(ExportError::Range(format!(
                    "there is no event at position {} to export after",
                    range.after
                )));
            }
        }
    };
    let header = ExportLine::Header {
        format: EXPORT_FORMAT.to_owned(),
        after: range.after,
        previous_hash: hex::encode(previous_hash),
    };
    write_line(out, &header).await?;
    // Read before the events: every checkpoint then signs a position the export reaches (the head only
    // grows), unless `to` stops before it.
    let mut checkpoints = log.signed_checkpoints().await?;
    checkpoints.retain(|checkpoint| checkpoint.position > range.after);
    // An index rather than a borrowing iterator: the future stays `Send` for a spawned export.
    let mut next_checkpoint = 0;
    let mut summary = ExportSummary {
        events: 0,
        checkpoints: 0,
        last: None,
    };
    let mut after = range.after;
    'pages: loop {
        let page = read_as_stored(log, after, EXPORT_PAGE).await?;
        let full = page.len() == EXPORT_PAGE;
        for (event, metadata) in &page {
            if range.to.is_some_and(|to| event.global_position > to) {
                break 'pages;
            }
            write_line(out, &ExportLine::event(event, metadata)).await?;
            while let Some(checkpoint) = checkpoints
                .get(next_checkpoint)
                .filter(|checkpoint| checkpoint.position <= event.global_position)
            {
                write_line(out, &ExportLine::checkpoint(checkpoint)).await?;
                summary.checkpoints += 1;
                next_checkpoint += 1;
            }
            summary.events += 1;
            summary.last = Some((event.global_position, event.hash));
            after = event.global_position;
        }
        progress(after);
        if !full || range.to.is_some_and(|to| after >= to) {
            break;
        }
    }
    out.flush().await.map_err(|source| ExportError::Io {
        what: "cannot write the export".to_owned(),
        source,
    })?;
    Ok(summary)
}

pub(crate) async fn read_as_stored(
    log: &EventLog,
    after: u64,
    limit: usize,
) -> Result<Vec<(RecordedEvent, String)>, StoreError> {
    match log {
        EventLog::Sqlite(store) => SqliteEventStore::read_all_as_stored(store, after, limit).await,
        EventLog::Postgres(store) => PgEventStore::read_all_as_stored(store, after, limit).await,
    }
}

async fn write_line<W: AsyncWrite + Unpin>(
    out: &mut W,
    line: &ExportLine,
) -> Result<(), ExportError> {
    let mut text = serde_json::to_string(line)
        .map_err(|error| ExportError::Range(format!("cannot serialize an export line: {error}")))?;
    text.push('\n');
    out.write_all(text.as_bytes())
        .await
        .map_err(|source| ExportError::Io {
            what: "cannot write the export".to_owned(),
            source,
        })
}

/// Checks an export line by line: the header, each line's exact form, the chain from the header's hash on.
struct FileChecker {
    line: u64,
    after: Option<u64>,
    verifier: ChainVerifier,
    /// The keys checkpoints must be signed by (none: any key, as long as its signature verifies).
    trusted: Vec<TrustedKey>,
    /// The last sound event's position and hash.
    last: Option<(u64, [u8; 32])>,
    /// The position of the last sound checkpoint, to say where a rewrite happened.
    last_checkpoint: u64,
}

/// One line, checked.
enum Checked {
    Header,
    Event(RecordedEvent, String),
    Checkpoint(SignedCheckpoint),
}

impl FileChecker {
    fn new(trusted: Vec<TrustedKey>) -> Self {
        Self {
            line: 0,
            after: None,
            verifier: ChainVerifier::new(),
            trusted,
            last: None,
            last_checkpoint: 0,
        }
    }

    /// Checks the next line (without its newline).
    fn line(&mut self, text: &str) -> Result<Checked, FileBreak> {
        self.line += 1;
        let line = self.line;
        let broken = |global_position: Option<u64>, reason: String| FileBreak {
            line,
            global_position,
            reason,
        };
        let parsed: ExportLine = serde_json::from_str(text)
            .map_err(|error| broken(None, format!("not an export line: {error}")))?;
        let canonical = serde_json::to_string(&parsed)
            .map_err(|error| broken(None, format!("cannot re-serialize the line: {error}")))?;
        let position = match &parsed {
            ExportLine::Event { position, .. } | ExportLine::Checkpoint { position, .. } => {
                Some(*position)
            }
            ExportLine::Header { .. } => None,
        };
        if canonical != text {
            return Err(broken(
                position,
                "the line is not in the exact form an export writes (a byte was changed, added or \
                 removed)"
                    .to_owned(),
            ));
        }
        match (parsed, self.after) {
            (
                ExportLine::Header {
                    format,
                    after,
                    previous_hash,
                },
                None,
            ) => {
                if format != EXPORT_FORMAT {
                    return Err(broken(
                        None,
                        format!("unknown export format {format:?} (expected {EXPORT_FORMAT:?})"),
                    ));
                }
                let previous_hash = hash_of(&previous_hash).ok_or_else(|| {
                    broken(None, "the previous hash is not 64 hex digits".to_owned())
                })?;
                if after == 0 && previous_hash != GENESIS_HASH {
                    return Err(broken(
                        None,
                        "an export of the whole log must start from the zero hash".to_owned(),
                    ));
                }
                self.after = Some(after);
                self.verifier = ChainVerifier::starting_after(after, previous_hash);
                self.last_checkpoint = after;
                Ok(Checked::Header)
            }
            (ExportLine::Header { .. }, Some(_)) => {
                Err(broken(None, "a second header line".to_owned()))
            }
            (ExportLine::Event { .. } | ExportLine::Checkpoint { .. }, None) => Err(broken(
                position,
                "the file does not start with an export header".to_owned(),
            )),
            (
                ExportLine::Checkpoint {
                    position,
                    hash,
                    recorded_at,
                    key_id,
                    public_key,
                    signature,
                },
                Some(_),
            ) => {
                let at = Some(position);
                let head_hash = hash_of(&hash)
                    .ok_or_else(|| broken(at, "the hash is not 64 hex digits".to_owned()))?;
                let public_key = hex_bytes::<32>(&public_key)
                    .ok_or_else(|| broken(at, "the public key is not 64 hex digits".to_owned()))?;
                let signature = hex_bytes::<64>(&signature)
                    .ok_or_else(|| broken(at, "the signature is not 128 hex digits".to_owned()))?;
                let checkpoint = SignedCheckpoint {
                    position,
                    head_hash,
                    recorded_at_micros: recorded_at,
                    key_id,
                    public_key,
                    signature,
                };
                checkpoint
                    .check(&self.trusted)
                    .map_err(|reason| broken(at, reason))?;
                match self.last {
                    Some((last, last_hash)) if last == position => {
                        if last_hash != head_hash {
                            return Err(broken(
                                at,
                                crate::signed::rewritten(
                                    &checkpoint,
                                    &last_hash,
                                    self.last_checkpoint,
                                ),
                            ));
                        }
                    }
                    last => {
                        let last = last.map_or(self.after.unwrap_or(0), |(last, _)| last);
                        return Err(broken(
                            at,
                            format!(
                                "a checkpoint of position {position} follows the event at position \
                                 {last}: an export writes each checkpoint right after the event it \
                                 signs (events were removed or lines moved)"
                            ),
                        ));
                    }
                }
                self.last_checkpoint = position;
                Ok(Checked::Checkpoint(checkpoint))
            }
            (
                ExportLine::Event {
                    position,
                    stream,
                    version,
                    event_id,
                    event_type,
                    schema_version,
                    recorded_at,
                    metadata: metadata_text,
                    payload,
                    hash,
                },
                Some(_),
            ) => {
                let at = Some(position);
                let stream_id =
                    StreamId::parse(stream).map_err(|error| broken(at, error.to_string()))?;
                let parsed_id = Uuid::try_parse(&event_id)
                    .ok()
                    .filter(|id| is_canonical_uuid_text(event_id.as_bytes(), id))
                    .ok_or_else(|| {
                        broken(
                            at,
                            format!("the event id {event_id:?} is not a canonical UUID"),
                        )
                    })?;
                let metadata: EventMetadata = serde_json::from_str(&metadata_text)
                    .map_err(|error| broken(at, format!("unreadable metadata: {error}")))?;
                let recorded = chrono::DateTime::from_timestamp_micros(recorded_at)
                    .ok_or_else(|| broken(at, format!("bad timestamp {recorded_at}")))?;
                let hash = hash_of(&hash)
                    .ok_or_else(|| broken(at, "the hash is not 64 hex digits".to_owned()))?;
                let event = RecordedEvent {
                    global_position: position,
                    stream_id,
                    stream_version: version,
                    event_id: parsed_id,
                    event_type,
                    schema_version,
                    payload,
                    metadata,
                    recorded_at: recorded,
                    hash,
                };
                self.verifier.check(&event, &metadata_text);
                if let Some(reason) = self.verifier.break_reason() {
                    return Err(broken(at, reason.to_owned()));
                }
                self.last = Some((event.global_position, event.hash));
                Ok(Checked::Event(event, metadata_text))
            }
        }
    }

    /// The end of the file: it must at least have had its header.
    fn finish(self) -> Result<FileReport, FileBreak> {
        let Some(after) = self.after else {
            return Err(FileBreak {
                line: self.line + 1,
                global_position: None,
                reason: "the file is empty: an export starts with a header line".to_owned(),
            });
        };
        let report = self.verifier.finish();
        Ok(FileReport {
            after,
            events_checked: report.events_checked,
            head: report.head,
            checkpoints_checked: 0,
            newest_checkpoint: None,
            first_break: None,
        })
    }
}

fn hash_of(text: &str) -> Option<[u8; 32]> {
    hex_bytes::<32>(text)
}

fn hex_bytes<const N: usize>(text: &str) -> Option<[u8; N]> {
    let mut bytes = [0; N];
    // Lower-case only: the form an export writes.
    if text.bytes().any(|byte| byte.is_ascii_uppercase()) {
        return None;
    }
    hex::decode_to_slice(text, &mut bytes).ok()?;
    Some(bytes)
}

/// Verifies an export file without any database, naming the first broken line and position.
pub fn verify_export<R: BufRead>(reader: R) -> Result<FileReport, ExportError> {
    verify_export_expecting(reader, None)
}

/// [`verify_export`], and also that the file holds `expect_head` (a position and hash an auditor noted
/// earlier): a log re-chained after an edit, or cut back before that position, is then a break.
pub fn verify_export_expecting<R: BufRead>(
    reader: R,
    expect_head: Option<(u64, [u8; 32])>,
) -> Result<FileReport, ExportError> {
    verify_export_trusting(reader, expect_head, &[])
}

/// [`verify_export_expecting`], and every checkpoint in the file signed by one of `trusted` (when not
/// empty), of which there must be at least one: the file then proves itself up to its newest checkpoint.
pub fn verify_export_trusting<R: BufRead>(
    reader: R,
    expect_head: Option<(u64, [u8; 32])>,
    trusted: &[TrustedKey],
) -> Result<FileReport, ExportError> {
    let mut checker = FileChecker::new(trusted.to_vec());
    let mut report = FileReport {
        after: 0,
        events_checked: 0,
        head: None,
        checkpoints_checked: 0,
        newest_checkpoint: None,
        first_break: None,
    };
    for text in reader.lines() {
        let text = text.map_err(|source| ExportError::Io {
            what: "cannot read the export file".to_owned(),
            source,
        })?;
        match checker.line(&text) {
            Ok(Checked::Checkpoint(checkpoint)) => {
                report.checkpoints_checked += 1;
                report.newest_checkpoint = Some(checkpoint);
            }
            Ok(Checked::Event(event, _)) => {
                if let Some((position, hash)) = expect_head
                    && position == event.global_position
                    && hash != event.hash
                {
                    report.first_break = Some(FileBreak {
                        line: checker.line,
                        global_position: Some(position),
                        reason: format!(
                            "position {position} has hash {}, not the {} noted earlier: the log was \
                             rewritten",
                            hex::encode(event.hash),
                            hex::encode(hash)
                        ),
                    });
                    return Ok(report);
                }
                report.events_checked += 1;
                report.head = Some((event.global_position, event.hash));
            }
            Ok(Checked::Header) => report.after = checker.after.unwrap_or(0),
            Err(found) => {
                report.first_break = Some(found);
                return Ok(report);
            }
        }
    }
    let line = checker.line + 1;
    if let Err(found) = checker.finish() {
        report.first_break = Some(found);
        return Ok(report);
    }
    if !trusted.is_empty() && report.newest_checkpoint.is_none() {
        report.first_break = Some(FileBreak {
            line,
            global_position: None,
            reason:
                "no checkpoint signed by a trusted key: nothing proves the file was not rewritten"
                    .to_owned(),
        });
        return Ok(report);
    }
    if let Some((position, _)) = expect_head {
        let last = report.head.map_or(report.after, |(last, _)| last);
        let reason = if position <= report.after {
            Some(format!(
                "the export starts after position {}, so it cannot show the head noted earlier at \
                 position {position}",
                report.after
            ))
        } else if position > last {
            Some(format!(
                "the export ends at position {last}, before the head noted earlier at position \
                 {position}: events were cut off"
            ))
        } else {
            None
        };
        if let Some(reason) = reason {
            report.first_break = Some(FileBreak {
                line,
                global_position: Some(position),
                reason,
            });
        }
    }
    Ok(report)
}

/// Whether the log `verify` found intact up to `head` still holds `expected` (a position and hash noted
/// earlier); the reason when not.
pub async fn expected_head_break(
    log: &EventLog,
    head: Option<(u64, [u8; 32])>,
    expected: (u64, [u8; 32]),
) -> Result<Option<String>, StoreError> {
    let (position, hash) = expected;
    let last = head.map_or(0, |(last, _)| last);
    if position == 0 || position > last {
        return Ok(Some(format!(
            "the log ends at position {last}, before the head noted earlier at position {position}: \
             events were cut off"
        )));
    }
    let found = log.read_all(position - 1, 1).await?;
    Ok(match found.first() {
        Some(event) if event.global_position == position && event.hash == hash => None,
        Some(event) if event.global_position == position => Some(format!(
            "position {position} has hash {}, not the {} noted earlier: the log was rewritten",
            hex::encode(event.hash),
            hex::encode(hash)
        )),
        _ => Some(format!("the log has no event at position {position}")),
    })
}

/// What an import wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportSummary {
    pub events: u64,
    pub commands: u64,
    pub checkpoints: u64,
    /// The imported head: the same position and hash as the exported log's.
    pub head: Option<(u64, [u8; 32])>,
}

/// Imports a whole-log export into the empty log at `url` (created and migrated if missing), keeping
/// positions, ids, times and hashes. The file is verified as it is read, and everything is written in one
/// transaction under the log's write lock: a broken file or a non-empty target writes nothing.
pub async fn import<R: AsyncBufRead + Unpin>(
    url: &str,
    options: &LogOptions,
    reader: R,
) -> Result<ImportSummary, ExportError> {
    let backend = Backend::of_url(url)?;
    // Opening creates and migrates the schema; the rows go in on a connection of the import's own.
    EventLog::open(url, options).await?.close().await;
    let mut target = match backend {
        Backend::Sqlite => Target::Sqlite(
            crate::sqlite::SqliteImport::begin(url, options.sqlite.busy_timeout).await?,
        ),
        Backend::Postgres => Target::Postgres(crate::postgres::PgImport::begin(url).await?),
    };
    match import_into(&mut target, reader).await {
        Ok(summary) => {
            target.commit().await?;
            Ok(summary)
        }
        Err(error) => {
            target.rollback().await;
            Err(error)
        }
    }
}

enum Target {
    Sqlite(crate::sqlite::SqliteImport),
    Postgres(crate::postgres::PgImport),
}

impl Target {
    async fn event(&mut self, event: &RecordedEvent, metadata: &str) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(target) => target.event(event, metadata).await,
            Self::Postgres(target) => target.event(event, metadata).await,
        }
    }

    async fn command(&mut self, record: &CommandRecord) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(target) => target.command(record).await,
            Self::Postgres(target) => target.command(record).await,
        }
    }

    async fn checkpoint(&mut self, checkpoint: &SignedCheckpoint) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(target) => target.checkpoint(checkpoint).await,
            Self::Postgres(target) => target.checkpoint(checkpoint).await,
        }
    }

    async fn commit(self) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(target) => target.commit().await,
            Self::Postgres(target) => target.commit().await,
        }
    }

    async fn rollback(self) {
        match self {
            Self::Sqlite(target) => target.rollback().await,
            Self::Postgres(target) => target.rollback().await,
        }
    }
}

async fn import_into<R: AsyncBufRead + Unpin>(
    target: &mut Target,
    reader: R,
) -> Result<ImportSummary, ExportError> {
    let mut checker = FileChecker::new(Vec::new());
    let mut lines = reader.lines();
    let mut summary = ImportSummary {
        events: 0,
        commands: 0,
        checkpoints: 0,
        head: None,
    };
    let mut run: Option<CommandRecord> = None;
    while let Some(text) = lines.next_line().await.map_err(|source| ExportError::Io {
        what: "cannot read the export file".to_owned(),
        source,
    })? {
        let (event, metadata) = match checker.line(&text).map_err(ExportError::Broken)? {
            Checked::Event(event, metadata) => (event, metadata),
            Checked::Checkpoint(checkpoint) => {
                target.checkpoint(&checkpoint).await?;
                summary.checkpoints += 1;
                continue;
            }
            Checked::Header => {
                if checker.after != Some(0) {
                    return Err(ExportError::Broken(FileBreak {
                        line: checker.line,
                        global_position: None,
                        reason: format!(
                            "the export starts after position {}: only an export of the whole log can be \
                         imported",
                            checker.after.unwrap_or(0)
                        ),
                    }));
                }
                continue;
            }
        };
        target.event(&event, &metadata).await?;
        summary.events += 1;
        summary.head = Some((event.global_position, event.hash));
        let micros = event.recorded_at.timestamp_micros();
        match &mut run {
            Some(current) if current.command_id == event.metadata.command_id => {
                current.event_count += 1;
            }
            _ => {
                if let Some(done) = run.take() {
                    target.command(&done).await?;
                    summary.commands += 1;
                }
                run = Some(CommandRecord {
                    command_id: event.metadata.command_id,
                    stream_id: event.stream_id.as_str().to_owned(),
                    first_position: event.global_position,
                    event_count: 1,
                    recorded_at_micros: micros,
                });
            }
        }
    }
    checker.finish().map_err(ExportError::Broken)?;
    if let Some(done) = run.take() {
        target.command(&done).await?;
        summary.commands += 1;
    }
    Ok(summary)
}
