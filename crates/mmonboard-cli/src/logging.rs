//! The log of the long-running commands (`serve`, `meta-sim`): to standard error, as text for a person or as
//! JSON lines for a log collector (`--log-format`, `MMONBOARD_LOG_FORMAT`). `RUST_LOG` picks the levels; by
//! default every request is logged once at info level when it is answered (method, route, status, latency,
//! request id; never the query string or a header).

use clap::ValueEnum;

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event, coloured on a terminal.
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, `fields` (with `message`), and `span` /
    /// `spans` with the request's `request_id` and, where known, `portfolio_id` and `command_id`.
    Json,
}

/// The levels when `RUST_LOG` is not set: info, with the request log, and the drivers' chatter off.
pub const DEFAULT_FILTER: &str = "info,sqlx=warn";

/// Installs the global subscriber (once; a second call keeps the first).
pub fn init(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .try_init(),
    };
}

/// A line for the operator on standard error (what `serve` listens on, how it runs): as it is in text, as a
/// log event in JSON, so that every line stays one JSON object.
pub fn say(format: LogFormat, line: std::fmt::Arguments<'_>) {
    match format {
        LogFormat::Text => eprintln!("{line}"),
        LogFormat::Json => {
            init(format);
            tracing::info!(target: "mmonboard", "{line}");
        }
    }
}

/// The error a command ends with, on standard error: `error: …` in text, an error event in JSON.
pub fn fail(format: LogFormat, error: &dyn std::fmt::Display) {
    match format {
        LogFormat::Text => eprintln!("error: {error}"),
        LogFormat::Json => {
            init(format);
            tracing::error!(target: "mmonboard", %error, "the command failed");
        }
    }
}
