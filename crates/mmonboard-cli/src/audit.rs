//! `mmonboard export`, `mmonboard import` and `mmonboard verify --file`: the log taken away as a file and
//! checked or restored without the service. The format, and what a verifier recomputes, is in
//! docs/audit.md; the work itself is the storage layer's (`mmonboard_eventlog::{export, import,
//! verify_export}`), so this module only opens files, reports and picks the exit code.

use std::path::{Path, PathBuf};

use mmonboard_eventlog::{EventStore, ExportError, ExportRange, FileReport, LogOptions};
use serde_json::json;
use tokio::io::AsyncWriteExt;

use crate::commands::{Failure, invalid_input, open_read_only, print_json};
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
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let end = to.unwrap_or(head).min(head);
    // A bar on a terminal only (hand-drawn like `projections rebuild`'s, so both look alike).
    let mut progress = move |position: u64| {
        if terminal && end > after {
            let done = position.saturating_sub(after).min(end - after);
            let filled = (done * 40 / (end - after)) as usize;
            eprint!(
                "\r[{}{}] {:>3}% {position}/{end} events",
                "#".repeat(filled),
                " ".repeat(40 - filled),
                done * 100 / (end - after)
            );
        }
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
    if terminal {
        eprintln!();
    }
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

pub(crate) fn verify_file(
    file: &Path,
    as_json: bool,
    expect_head: Option<(u64, [u8; 32])>,
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
    let report =
        mmonboard_eventlog::verify_export_expecting(std::io::BufReader::new(opened), expect_head)?;
    print_report(&report, as_json)?;
    Ok(if report.is_intact() {
        exit::OK
    } else {
        exit::LOG_BROKEN
    })
}

fn print_report(report: &FileReport, as_json: bool) -> Result<(), Failure> {
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
