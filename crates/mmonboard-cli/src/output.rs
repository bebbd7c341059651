//! How results are shown: JSON shapes (a contract) and the human-readable forms.

use mmonboard_domain::{Aggregate, Refusal};
use serde_json::{Value, json};

/// Set once standard output cannot be written: later output is dropped.
static STDOUT_GONE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
/// Set when it failed for another reason than a reader that went away.
static STDOUT_FAILED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Writes to standard output. When the reader has gone (a closed pipe, as with `| head`), the rest of the
/// output is dropped without a word and the command ends as it would have, with its own exit code (a
/// refused command still exits 3); any other failure to write (a full disk) is said once on stderr and
/// turns a successful exit into 1 (see [`output_failed`]). Never a panic mid-output.
pub fn write_out(text: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    use std::sync::atomic::Ordering;
    if STDOUT_GONE.load(Ordering::Relaxed) {
        return;
    }
    let mut stdout = std::io::stdout().lock();
    if let Err(error) = stdout.write_fmt(text).and_then(|()| stdout.flush())
        && !STDOUT_GONE.swap(true, Ordering::Relaxed)
        && error.kind() != std::io::ErrorKind::BrokenPipe
    {
        STDOUT_FAILED.store(true, Ordering::Relaxed);
        eprintln!("error: cannot write to standard output: {error}");
    }
}

/// Whether output was lost for another reason than a reader that went away.
pub fn output_failed() -> bool {
    STDOUT_FAILED.load(std::sync::atomic::Ordering::Relaxed)
}

pub fn refusal_json(refusal: &Refusal) -> Value {
    json!({
        "outcome": "refused",
        "code": refusal.code(),
        "message": refusal.to_string(),
        "state": refusal.phase,
        "rule": refusal.rule,
    })
}

pub fn invalid_input_json(message: &str) -> Value {
    json!({ "outcome": "invalid_input", "code": "invalid_input", "message": message })
}

/// A readable account of a portfolio's state.
pub fn state_text(aggregate: &Aggregate) -> String {
    use std::fmt::Write as _;
    let data = aggregate.data();
    let phase = aggregate.phase();
    let mut text = String::new();
    let _ = writeln!(text, "portfolio {}", aggregate.portfolio_id());
    let _ = writeln!(text, "  phase        {phase} (stage {})", phase.stage());
    let _ = writeln!(text, "  version      {}", aggregate.version());
    if let Some(at) = aggregate.last_event_at() {
        let _ = writeln!(
            text,
            "  last event   {}",
            at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
    }
    let _ = writeln!(text, "  next action  {}", phase.next_action());
    if let Some(eligibility) = &data.eligibility {
        for reason in &eligibility.verdict.portfolio_reasons {
            let _ = writeln!(text, "  blocked by   {reason}");
        }
    }
    if let Some(info) = &data.business_info {
        let _ = writeln!(
            text,
            "  business     {} ({})",
            info.business_name, info.website
        );
    }
    if let Some(terms) = &data.terms {
        let _ = writeln!(
            text,
            "  terms        {} accepted by {} ({})",
            terms.terms_version, terms.accepted_by, terms.role
        );
    }
    if let Some(request) = &data.terms_request {
        let how = match (&request.request_id, request.already_invited) {
            (_, true) => "Meta said an invitation was already out".to_owned(),
            (Some(id), false) => format!("request {id}"),
            (None, false) => "no request id".to_owned(),
        };
        let _ = writeln!(text, "  terms asked  {how}");
    }
    if let Some(signed) = &data.terms_signed {
        let _ = writeln!(
            text,
            "  terms        signed at Meta by a portfolio admin (reported for WABA {})",
            signed.reported_for_waba
        );
    }
    if let Some(stall) = aggregate.stall() {
        let _ = writeln!(
            text,
            "  stalled      {} after {} attempts: {}",
            stall.step, stall.attempts, stall.error
        );
    }
    if let Some(sync) = &data.config_sync {
        let ends = sync
            .window_ends_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        match sync.completed_at {
            Some(done) => {
                let _ = writeln!(
                    text,
                    "  config sync  completed {}",
                    done.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                );
            }
            None => {
                let _ = writeln!(text, "  config sync  window ends {ends}");
            }
        }
    }
    for (waba_id, record) in &data.wabas {
        let verdict = if record.verdict.is_eligible() {
            "eligible".to_owned()
        } else {
            record
                .verdict
                .reasons
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        };
        let routing = serde_json::to_value(&record.routing)
            .ok()
            .and_then(|value| {
                value
                    .get("status")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .unwrap_or_default();
        let ad_account = record
            .ad_account_id
            .as_ref()
            .map(|id| format!(", ad account act_{id}"))
            .unwrap_or_default();
        let _ = writeln!(
            text,
            "  WABA {waba_id}: {verdict}; routing {routing}{ad_account}"
        );
    }
    for (template_id, template) in &data.templates {
        let synced = if template.mirror_synced_at.is_some() {
            "mirror synced"
        } else {
            "mirror syncing"
        };
        let _ = writeln!(
            text,
            "  template {template_id} ({} {}, WABA {}): {}, {synced}",
            template.name, template.language, template.waba_id, template.category
        );
    }
    text
}
