//! `mmonboard report --portfolio ID --out FILE.html [--file EXPORT] [--trusted-key KEY]`: one self-contained
//! HTML page a person reads (no script, no external asset): the integrity proof first (the chain verified up
//! to which signed checkpoint, by which key, and whether the portfolio's events are all covered), the state
//! machine with the path the portfolio took, each WABA's verdict with its reasons, the ad accounts and
//! templates, and the timeline of every event (time, actor, event, transition). From an export file, the file
//! is verified and imported into a temporary SQLite log first, so the report reads exactly what the file holds.

use std::fmt::Write as _;
use std::path::Path;

use mmonboard_app::{HistoryEntry, OnboardingService, SystemClock};
use mmonboard_domain::DomainConfig;
use mmonboard_domain::ids::PortfolioId;
use mmonboard_eventlog::{EventStore, LogOptions, SignedCheckpoint, TrustedKey, check_checkpoints};
use serde_json::Value;

use crate::commands::{Failure, invalid_input};
use crate::exit;

/// What the page says about the log's integrity.
struct Proof {
    events_checked: u64,
    head: Option<(u64, [u8; 32])>,
    broken: Option<(u64, String)>,
    newest: Option<SignedCheckpoint>,
    trusted: Vec<TrustedKey>,
    source: String,
}

pub(crate) async fn report(
    database: &str,
    portfolio_id: &PortfolioId,
    out: &Path,
    file: Option<&Path>,
    trusted: &[String],
) -> Result<u8, Failure> {
    let trusted = match trusted
        .iter()
        .map(|argument| TrustedKey::from_argument(argument))
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(trusted) => trusted,
        Err(error) => return invalid_input(&format!("--trusted-key: {error}")),
    };
    // From a file: verified and imported into a log of its own, removed afterwards.
    let scratch = match file {
        None => None,
        Some(file) => {
            let opened = match tokio::fs::File::open(file).await {
                Ok(opened) => opened,
                Err(error) => {
                    return invalid_input(&format!(
                        "cannot read the export {}: {error}",
                        file.display()
                    ));
                }
            };
            let dir = tempfile::tempdir().map_err(|error| {
                Failure::Meta(format!("cannot make a temporary directory: {error}"))
            })?;
            let url = format!("sqlite://{}", dir.path().join("report.db").display());
            match mmonboard_eventlog::import(
                &url,
                &LogOptions::default(),
                tokio::io::BufReader::new(opened),
            )
            .await
            {
                Ok(_) => {}
                Err(mmonboard_eventlog::ExportError::Broken(found)) => {
                    return invalid_input(&format!(
                        "{} is not an intact export: line {}: {}",
                        file.display(),
                        found.line,
                        found.reason
                    ));
                }
                Err(error) => return Err(error.into()),
            }
            Some((dir, url))
        }
    };
    let url = scratch.as_ref().map_or(database, |(_, url)| url.as_str());
    let log = crate::commands::open_read_only(url).await?;
    let verified = log.verify().await?;
    let stored = log.signed_checkpoints().await?;
    let mut proof = Proof {
        events_checked: verified.events_checked,
        head: verified.head,
        broken: verified
            .first_break
            .as_ref()
            .map(|found| (found.global_position, found.reason.clone())),
        newest: None,
        trusted: trusted.clone(),
        source: match file {
            Some(file) => format!("the export file {}", file.display()),
            None => format!(
                "the log at {}",
                mmonboard_eventlog::redact_database_url(database)
            ),
        },
    };
    if proof.broken.is_none() {
        let checked = check_checkpoints(&log, &stored, &trusted, verified.head).await?;
        proof.broken = checked
            .first_break
            .map(|found| (found.global_position, found.reason));
        proof.newest = checked.newest;
    }
    let service = OnboardingService::new(log, SystemClock, DomainConfig::default());
    let history = service.history(portfolio_id).await?;
    if history.is_empty() {
        service.into_store().close().await;
        return invalid_input(&format!(
            "portfolio {portfolio_id} has no recorded onboarding in {}",
            proof.source
        ));
    }
    let aggregate = service.load(portfolio_id).await?;
    let state = serde_json::to_value(aggregate.view())?;
    service.into_store().close().await;
    let page = render(portfolio_id, &state, &history, &proof);
    if let Err(error) = std::fs::write(out, page) {
        return invalid_input(&format!("cannot write {}: {error}", out.display()));
    }
    drop(scratch);
    eprintln!(
        "wrote the report of portfolio {portfolio_id} to {}",
        out.display()
    );
    Ok(if proof.broken.is_some() {
        exit::LOG_BROKEN
    } else {
        exit::OK
    })
}

/// Text made safe for HTML. Five replacements: a dependency would add nothing.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

/// A JSON value as short text (strings without quotes).
fn text(value: &Value) -> String {
    match value {
        Value::Null => "—".to_owned(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn render(
    portfolio_id: &PortfolioId,
    state: &Value,
    history: &[HistoryEntry],
    proof: &Proof,
) -> String {
    let mut page = String::new();
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Onboarding audit report: portfolio {id}</title>\
         <style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:70em}}\
         table{{border-collapse:collapse;margin:.5em 0}}td,th{{border:1px solid #ccc;padding:.25em .5em;\
         text-align:left;vertical-align:top}}th{{background:#f3f3f3}}.ok{{color:#0a6b2d}}.bad{{color:#a40000}}\
         code{{font-size:.9em;word-break:break-all}}</style></head><body>\n\
         <h1>Onboarding audit report: portfolio <span id=\"portfolio\">{id}</span></h1>\n\
         <p>Phase <strong id=\"phase\">{phase}</strong> (stage {stage}); next: {next}. Generated {now} from {source}.</p>\n",
        id = escape(portfolio_id.as_str()),
        phase = escape(&text(&state["phase"])),
        stage = escape(&text(&state["stage"])),
        next = escape(&text(&state["next_action"])),
        now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        source = escape(&proof.source),
    );
    integrity(&mut page, history, proof);
    page.push_str("<h2>State machine</h2>\n<p>The path this portfolio took is highlighted.</p>\n<figure id=\"state-machine\">");
    let path = mmonboard_app::diagram::phase_path(history);
    page.push_str(&mmonboard_app::diagram::state_machine_svg(&path));
    page.push_str("</figure>\n");
    wabas(&mut page, state);
    templates(&mut page, state);
    timeline(&mut page, history);
    page.push_str("</body></html>\n");
    page
}

fn integrity(page: &mut String, history: &[HistoryEntry], proof: &Proof) {
    page.push_str("<h2>Integrity</h2>\n<div id=\"integrity\">");
    let head = proof.head.map_or_else(
        || "the log is empty".to_owned(),
        |(position, hash)| {
            format!(
                "head at position {position} with hash <code>{}</code>",
                hex::encode(hash)
            )
        },
    );
    match &proof.broken {
        Some((position, reason)) => {
            let _ = write!(
                page,
                "<p class=\"bad\"><strong>Not verified:</strong> the log is broken at global position \
                 {position}: {}</p>",
                escape(reason)
            );
        }
        None => {
            let _ = write!(
                page,
                "<p class=\"ok\">Hash chain and command records verified: {} events, {head}.</p>",
                proof.events_checked
            );
        }
    }
    let last_of_portfolio = history
        .last()
        .map_or(0, |entry| entry.logged.recorded.global_position);
    match &proof.newest {
        Some(checkpoint) => {
            let trust = if proof.trusted.is_empty() {
                "its signature verifies against its own key; no trusted key was given (--trusted-key)"
                    .to_owned()
            } else {
                "a trusted key".to_owned()
            };
            let coverage = if last_of_portfolio <= checkpoint.position {
                format!(
                    "every event of this portfolio (the last at position {last_of_portfolio}) is covered by it"
                )
            } else {
                format!(
                    "this portfolio's events after position {} (up to {last_of_portfolio}) are not yet \
                     covered by a checkpoint",
                    checkpoint.position
                )
            };
            let _ = write!(
                page,
                "<p id=\"checkpoint\">Verified up to the signed checkpoint at position <strong>{}</strong> \
                 (hash <code>{}</code>), signed at {} by key <strong>{}</strong> (public key <code>ed25519:{}</code>, \
                 {trust}); {coverage}.</p>",
                checkpoint.position,
                hex::encode(checkpoint.head_hash),
                checkpoint
                    .recorded_at()
                    .map_or_else(|| checkpoint.recorded_at_micros.to_string(), |at| at.to_rfc3339()),
                escape(&checkpoint.key_id),
                hex::encode(checkpoint.public_key),
            );
        }
        None => page.push_str(
            "<p id=\"checkpoint\" class=\"bad\">No signed checkpoint: the chain proves the log consistent, \
             not unaltered (see the audit documentation).</p>",
        ),
    }
    page.push_str("</div>\n");
}

fn wabas(page: &mut String, state: &Value) {
    page.push_str("<h2>WABAs and their ad accounts</h2>\n");
    let portfolio_reasons = reasons(&state["eligibility"]["verdict"]["portfolio_reasons"]);
    if !portfolio_reasons.is_empty() {
        let _ = writeln!(
            page,
            "<p>Portfolio: not eligible: {}</p>",
            escape(&portfolio_reasons)
        );
    }
    let Some(wabas) = state["wabas"].as_object().filter(|wabas| !wabas.is_empty()) else {
        page.push_str("<p id=\"wabas\">No WABA recorded.</p>\n");
        return;
    };
    page.push_str(
        "<table id=\"wabas\"><tr><th>WABA</th><th>verdict</th><th>reasons</th><th>OBO migration</th>\
         <th>routing</th><th>ad account</th></tr>\n",
    );
    for (waba_id, waba) in wabas {
        let why = reasons(&waba["verdict"]["reasons"]);
        let verdict = if why.is_empty() {
            "eligible"
        } else {
            "not eligible"
        };
        let _ = writeln!(
            page,
            "<tr><td>{}</td><td>{verdict}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(waba_id),
            escape(if why.is_empty() { "—" } else { &why }),
            escape(&text(&waba["obo_migration"]["status"])),
            escape(&text(&waba["routing"]["status"])),
            escape(&text(&waba["ad_account_id"])),
        );
    }
    page.push_str("</table>\n");
}

/// "a, b (detail)" from a list of `{"reason": …, …}`.
fn reasons(list: &Value) -> String {
    list.as_array()
        .map(|reasons| {
            reasons
                .iter()
                .map(|reason| match reason {
                    Value::Object(map) => {
                        let name = map.get("reason").map(text).unwrap_or_default();
                        let details: Vec<String> = map
                            .iter()
                            .filter(|(key, _)| key.as_str() != "reason")
                            .map(|(key, value)| format!("{key} {}", text(value)))
                            .collect();
                        if details.is_empty() {
                            name
                        } else {
                            format!("{name} ({})", details.join(", "))
                        }
                    }
                    other => text(other),
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

fn templates(page: &mut String, state: &Value) {
    page.push_str("<h2>Templates</h2>\n");
    let Some(templates) = state["templates"]
        .as_object()
        .filter(|templates| !templates.is_empty())
    else {
        page.push_str("<p id=\"templates\">No template recorded.</p>\n");
        return;
    };
    page.push_str("<table id=\"templates\"><tr><th>template</th><th>recorded</th></tr>\n");
    for (template_id, template) in templates {
        let fields: Vec<String> = template
            .as_object()
            .map(|fields| {
                fields
                    .iter()
                    .map(|(key, value)| format!("{key}: {}", text(value)))
                    .collect()
            })
            .unwrap_or_else(|| vec![text(template)]);
        let _ = writeln!(
            page,
            "<tr><td>{}</td><td>{}</td></tr>",
            escape(template_id),
            escape(&fields.join("; "))
        );
    }
    page.push_str("</table>\n");
}

fn timeline(page: &mut String, history: &[HistoryEntry]) {
    page.push_str(
        "<h2>Timeline</h2>\n<table id=\"timeline\"><tr><th>position</th><th>time (UTC)</th><th>actor</th>\
         <th>event</th><th>transition</th></tr>\n",
    );
    for entry in history {
        let recorded = &entry.logged.recorded;
        let transition = if entry.phase_before == entry.phase_after {
            format!("(stays {})", entry.phase_after)
        } else {
            format!("{} → {}", entry.phase_before, entry.phase_after)
        };
        let _ = writeln!(
            page,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            recorded.global_position,
            recorded
                .recorded_at
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            escape(&recorded.metadata.actor),
            escape(&recorded.event_type),
            escape(&transition),
        );
    }
    page.push_str("</table>\n");
}
