//! `mmonboard export`, `mmonboard import` and `mmonboard verify --file`: the log taken away as a file and
//! checked or restored without the service. The format, and what a verifier recomputes, is in
//! docs/audit.md; the work itself is the storage layer's (`mmonboard_eventlog::{export, import,
//! verify_export}`), so this module only opens files, reports and picks the exit code.

use std::path::{Path, PathBuf};

use mmonboard_eventlog::{
    CheckpointError, CheckpointKey, EventStore, ExportError, ExportRange, FileReport, LogOptions,
    RecordOutcome, SignedCheckpoint, SignedCheckpoints, TrustedKey, check_checkpoints,
};
use serde_json::json;
use tokio::io::AsyncWriteExt;

use crate::commands::{Failure, counted, invalid_input, open_read_only, print_json};
use crate::exit;

/// `-` (or no `--out`) writes to standard output.
fn is_stdio(path: Option<&Path>) -> bool {
    path.is_none_or(|path| path == Path::new("-"))
}

pub(crate) async fn export(
    database: &str,
    after: u64,
    to: Option<u64>,
    out: Option<PathBuf>,
) -> Result<u8, Failure> {
    if let Some(to) = to
        && to < after
    {
        return invalid_input(&format!(
            "--to {to} is below --after {after}: nothing to export"
        ));
    }
    let log = open_read_only(database).await?;
    let head = log.head_position().await?;
    let end = to.unwrap_or(head).min(head);
    let bar = crate::progress::events(end.saturating_sub(after));
    let mut progress = {
        let bar = bar.clone();
        move |position: u64| bar.set_position(position.saturating_sub(after))
    };
    let range = ExportRange { after, to };
    let result = if is_stdio(out.as_deref()) {
        let mut stdout = tokio::io::stdout();
        mmonboard_eventlog::export(&log, range, &mut stdout, &mut progress).await
    } else {
        let target = out.unwrap_or_default();
        export_to_file(&log, range, &target, &mut progress).await
    };
    log.close().await;
    bar.finish_and_clear();
    match result {
        Ok(summary) => {
            let last = summary
                .last
                .map(|(position, hash)| {
                    format!(
                        ", up to position {position} with hash {}",
                        hex::encode(hash)
                    )
                })
                .unwrap_or_default();
            eprintln!(
                "exported {} events after position {after}{last}",
                summary.events
            );
            Ok(exit::OK)
        }
        Err(ExportError::Range(message)) => invalid_input(&message),
        Err(error) => Err(error.into()),
    }
}

/// Writes beside the target and renames at the end, so a failed export never leaves a file that looks
/// complete.
async fn export_to_file(
    log: &mmonboard_eventlog::EventLog,
    range: ExportRange,
    target: &Path,
    progress: &mut (dyn FnMut(u64) + Send),
) -> Result<mmonboard_eventlog::ExportSummary, ExportError> {
    let io = |what: String| move |source| ExportError::Io { what, source };
    let partial = target.with_extension("partial");
    let file = tokio::fs::File::create(&partial)
        .await
        .map_err(io(format!("cannot create {}", partial.display())))?;
    let mut writer = tokio::io::BufWriter::new(file);
    let summary = match mmonboard_eventlog::export(log, range, &mut writer, progress).await {
        Ok(summary) => summary,
        Err(error) => {
            drop(writer);
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(error);
        }
    };
    let mut file = writer.into_inner();
    file.flush()
        .await
        .map_err(io(format!("cannot write {}", partial.display())))?;
    file.sync_all()
        .await
        .map_err(io(format!("cannot write {}", partial.display())))?;
    drop(file);
    tokio::fs::rename(&partial, target)
        .await
        .map_err(io(format!(
            "cannot rename {} to {}",
            partial.display(),
            target.display()
        )))?;
    Ok(summary)
}

pub(crate) async fn import(database: &str, file: &Path) -> Result<u8, Failure> {
    let opened = match tokio::fs::File::open(file).await {
        Ok(opened) => opened,
        Err(error) => {
            return invalid_input(&format!(
                "cannot read the export {}: {error}",
                file.display()
            ));
        }
    };
    let reader = tokio::io::BufReader::new(opened);
    match mmonboard_eventlog::import(database, &LogOptions::default(), reader).await {
        Ok(summary) => {
            let head = crate::commands::head_text(summary.head);
            out!(
                "imported {} events and {} command records{head}",
                summary.events,
                summary.commands
            );
            Ok(exit::OK)
        }
        Err(ExportError::Broken(found)) => {
            let position = found
                .global_position
                .map(|position| format!(" (position {position})"))
                .unwrap_or_default();
            invalid_input(&format!(
                "{} is not an intact export, nothing was imported: line {}{position}: {}",
                file.display(),
                found.line,
                found.reason
            ))
        }
        Err(ExportError::Store(mmonboard_eventlog::StoreError::Invalid(message))) => {
            invalid_input(&format!("nothing was imported: {message}"))
        }
        Err(error) => Err(error.into()),
    }
}

fn verify_file(
    file: &Path,
    as_json: bool,
    expect_head: Option<(u64, [u8; 32])>,
    trusted: &[TrustedKey],
) -> Result<u8, Failure> {
    let opened = match std::fs::File::open(file) {
        Ok(opened) => opened,
        Err(error) => {
            return invalid_input(&format!(
                "cannot read the export {}: {error}",
                file.display()
            ));
        }
    };
    let report = mmonboard_eventlog::verify_export_trusting(
        std::io::BufReader::new(opened),
        expect_head,
        trusted,
    )?;
    print_report(&report, as_json, trusted)?;
    Ok(if report.is_intact() {
        exit::OK
    } else {
        exit::LOG_BROKEN
    })
}

fn print_report(report: &FileReport, as_json: bool, trusted: &[TrustedKey]) -> Result<(), Failure> {
    let head = report
        .head
        .map(|(position, hash)| json!({ "global_position": position, "hash": hex::encode(hash) }));
    if as_json {
        let first_break = report.first_break.as_ref().map(|found| {
            json!({ "line": found.line, "global_position": found.global_position, "reason": found.reason })
        });
        print_json(&json!({
            "intact": report.is_intact(),
            "after": report.after,
            "events_checked": report.events_checked,
            "head": head,
            "first_break": first_break,
            "checkpoints": {
                "checked": report.checkpoints_checked,
                "newest": report.newest_checkpoint.as_ref().map(SignedCheckpoint::to_json),
                "trusted_keys": trusted.iter().map(TrustedKey::key_id).collect::<Vec<_>>(),
            },
        }))?;
    }
    match &report.first_break {
        None if !as_json => {
            let head_text = crate::commands::head_text(report.head);
            out!(
                "export intact: {} events after position {}{head_text}",
                report.events_checked,
                report.after
            );
            if let Some(line) = checkpoint_line(
                report.checkpoints_checked,
                report.newest_checkpoint.as_ref(),
                trusted,
            ) {
                out!("{line}");
            }
        }
        None => {}
        Some(found) => {
            let position = found
                .global_position
                .map(|position| format!(" (position {position})"))
                .unwrap_or_default();
            eprintln!(
                "export broken at line {}{position}: {}",
                found.line, found.reason
            );
        }
    }
    Ok(())
}

/// The trusted keys named on the command line, each the printed text or a file holding it.
fn trusted_keys(arguments: &[String]) -> Result<Vec<TrustedKey>, String> {
    arguments
        .iter()
        .map(|argument| {
            TrustedKey::from_argument(argument).map_err(|error| format!("--trusted-key: {error}"))
        })
        .collect()
}

/// `mmonboard verify [--file FILE] [--expect-head P:H] [--trusted-key KEY]...`.
pub(crate) async fn verify(
    database: &str,
    file: Option<&Path>,
    as_json: bool,
    expect_head: Option<(u64, [u8; 32])>,
    trusted: &[String],
) -> Result<u8, Failure> {
    let trusted = match trusted_keys(trusted) {
        Ok(trusted) => trusted,
        Err(message) => return invalid_input(&message),
    };
    match file {
        Some(file) => verify_file(file, as_json, expect_head, &trusted),
        None => verify_log(database, as_json, expect_head, &trusted).await,
    }
}

async fn verify_log(
    database: &str,
    as_json: bool,
    expect_head: Option<(u64, [u8; 32])>,
    trusted: &[TrustedKey],
) -> Result<u8, Failure> {
    let store = open_read_only(database).await?;
    let mut report = store.verify().await?;
    if let Some(expected) = expect_head
        && report.is_intact()
        && let Some(reason) =
            mmonboard_eventlog::expected_head_break(&store, report.head, expected).await?
    {
        report.first_break = Some(mmonboard_eventlog::ChainBreak {
            global_position: expected.0,
            reason,
        });
    }
    let stored = store.signed_checkpoints().await?;
    let checkpoints = if report.is_intact() {
        let checked = check_checkpoints(&store, &stored, trusted, report.head).await?;
        report.first_break = checked.first_break.clone();
        Some(checked)
    } else {
        None
    };
    store.close().await;
    let head = report
        .head
        .map(|(position, hash)| json!({ "global_position": position, "hash": hex::encode(hash) }));
    let newest = checkpoints.as_ref().and_then(|found| found.newest.as_ref());
    if as_json {
        let first_break = report.first_break.as_ref().map(
            |found| json!({ "global_position": found.global_position, "reason": found.reason }),
        );
        print_json(&json!({
            "intact": report.first_break.is_none(),
            "events_checked": report.events_checked,
            "streams_checked": report.streams_checked,
            "head": head,
            "first_break": first_break,
            "checkpoints": {
                "stored": stored.len(),
                "checked": checkpoints.as_ref().map_or(0, |found| found.checked),
                "newest": newest.map(SignedCheckpoint::to_json),
                "trusted_keys": trusted.iter().map(TrustedKey::key_id).collect::<Vec<_>>(),
            },
        }))?;
    }
    match &report.first_break {
        None => {
            if !as_json {
                let head_text = crate::commands::head_text(report.head);
                out!(
                    "log intact: {} in {}{head_text}",
                    counted(report.events_checked, "event"),
                    counted(report.streams_checked, "stream")
                );
                if let Some(line) = checkpoint_line(stored.len() as u64, newest, trusted) {
                    out!("{line}");
                }
            }
            Ok(exit::OK)
        }
        Some(found) => {
            eprintln!(
                "log broken at global position {}: {}",
                found.global_position, found.reason
            );
            Ok(exit::LOG_BROKEN)
        }
    }
}

/// "signed checkpoints: N, the newest at position P by key K (trusted) at T", or `None` when there are none.
fn checkpoint_line(
    count: u64,
    newest: Option<&SignedCheckpoint>,
    trusted: &[TrustedKey],
) -> Option<String> {
    let newest = newest?;
    let trust = if trusted.is_empty() {
        "not checked against a trusted key (--trusted-key)"
    } else {
        "a trusted key"
    };
    Some(format!(
        "{} verified, the newest at position {} with hash {}, signed by key {} ({trust}) at {}",
        counted(count, "signed checkpoint"),
        newest.position,
        hex::encode(newest.head_hash),
        newest.key_id,
        newest.recorded_at().map_or_else(
            || newest.recorded_at_micros.to_string(),
            |at| at.to_rfc3339()
        ),
    ))
}

/// `mmonboard checkpoint --signing-key FILE`: signs the head now.
pub(crate) async fn checkpoint(
    database: &str,
    signing_key: &Path,
    as_json: bool,
) -> Result<u8, Failure> {
    let key = match CheckpointKey::read(signing_key) {
        Ok(key) => key,
        Err(error) => return invalid_input(&error.to_string()),
    };
    // Opening for writing migrates an older log, which creates the checkpoints' table.
    let log = crate::commands::open(database).await?;
    let checkpoints = SignedCheckpoints::open(database).await?;
    let outcome = checkpoints.record(&log, &key, chrono::Utc::now()).await;
    checkpoints.close().await;
    log.close().await;
    let (status, checkpoint) = match outcome {
        Ok(RecordOutcome::Recorded(checkpoint)) => ("signed", Some(checkpoint)),
        Ok(RecordOutcome::AlreadySigned(checkpoint)) => ("already_signed", Some(checkpoint)),
        Ok(RecordOutcome::EmptyLog) => ("empty_log", None),
        Err(CheckpointError::Broken(found)) => {
            eprintln!(
                "not signed: the log is broken at global position {}: {}",
                found.global_position, found.reason
            );
            if as_json {
                print_json(&json!({
                    "status": "broken",
                    "first_break": { "global_position": found.global_position, "reason": found.reason },
                }))?;
            }
            return Ok(exit::LOG_BROKEN);
        }
        Err(CheckpointError::Store(error)) => return Err(error.into()),
    };
    if as_json {
        print_json(&json!({
            "status": status,
            "checkpoint": checkpoint.as_ref().map(SignedCheckpoint::to_json),
        }))?;
    } else {
        match (&checkpoint, status) {
            (Some(checkpoint), "signed") => out!(
                "signed position {} with hash {} by key {}",
                checkpoint.position,
                hex::encode(checkpoint.head_hash),
                checkpoint.key_id
            ),
            (Some(checkpoint), _) => out!(
                "position {} is signed by key {} already: nothing new to sign",
                checkpoint.position,
                checkpoint.key_id
            ),
            (None, _) => out!("the log is empty: nothing to sign"),
        }
    }
    Ok(exit::OK)
}

/// `mmonboard keys generate --out FILE`: never overwrites a key.
pub(crate) fn generate_key(out: &Path) -> Result<u8, Failure> {
    let public_path = public_key_path(out);
    for path in [out, public_path.as_path()] {
        if path.exists() {
            return invalid_input(&format!(
                "{} exists already: keys generate never overwrites a key",
                path.display()
            ));
        }
    }
    let key = match CheckpointKey::generate() {
        Ok(key) => key,
        Err(error) => return invalid_input(&error.to_string()),
    };
    if let Err(error) = write_new(out, key.private_text().as_bytes(), 0o600) {
        return invalid_input(&format!("cannot write {}: {error}", out.display()));
    }
    let public = key.trusted();
    if let Err(error) = write_new(
        &public_path,
        format!("{}\n", public.text()).as_bytes(),
        0o644,
    ) {
        return invalid_input(&format!("cannot write {}: {error}", public_path.display()));
    }
    out!("{}", public.text());
    eprintln!(
        "key id {}: private key in {} (readable by its owner only), public key in {}",
        public.key_id(),
        out.display(),
        public_path.display()
    );
    Ok(exit::OK)
}

/// FILE.pub beside FILE.
fn public_key_path(private: &Path) -> PathBuf {
    let mut name = private.as_os_str().to_owned();
    name.push(".pub");
    PathBuf::from(name)
}

/// Creates `path` (never replacing a file) with `mode` on Unix, writes `bytes` and syncs them.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}
