//! `mmonboard history`: every event of a portfolio with the transition it caused.

use mmonboard_app::json::history_entry_json;
use mmonboard_domain::ids::PortfolioId;
use serde_json::json;

use super::{Failure, open_read_only, print_json, service};
use crate::exit;

pub(super) async fn history(
    database: &str,
    portfolio_id: &PortfolioId,
    as_json: bool,
) -> Result<u8, Failure> {
    let service = service(open_read_only(database).await?);
    let entries = service.history(portfolio_id).await?;
    if as_json {
        print_json(&json!(
            entries.iter().map(history_entry_json).collect::<Vec<_>>()
        ))?;
    } else if entries.is_empty() {
        out!("portfolio {portfolio_id} has no recorded events");
    } else {
        out!(
            "{:>8} {:>4}  {:<27} {:<16} {:<31} transition",
            "position",
            "ver",
            "recorded at",
            "actor",
            "event"
        );
        for entry in &entries {
            let recorded = &entry.logged.recorded;
            let transition = if entry.phase_before == entry.phase_after {
                format!("(stays {})", entry.phase_after)
            } else {
                format!("{} -> {}", entry.phase_before, entry.phase_after)
            };
            out!(
                "{:>8} {:>4}  {:<27} {:<16} {:<31} {transition}",
                recorded.global_position,
                recorded.stream_version,
                recorded
                    .recorded_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                truncate(&recorded.metadata.actor, 16),
                recorded.event_type,
            );
        }
    }
    service.into_store().close().await;
    Ok(exit::OK)
}

fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_owned()
    } else {
        let mut cut: String = text.chars().take(width - 1).collect();
        cut.push('…');
        cut
    }
}
