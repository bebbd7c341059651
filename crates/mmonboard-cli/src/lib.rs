//! The `mmonboard` command-line tool: argument parsing and the subcommands. The binary only parses arguments
//! and calls `run`; everything a subcommand does lives here. Subcommand names, flags, JSON shapes and exit
//! codes are a contract scripts rely on (docs/commands.md).

/// `println!` for a reader that may go away first (`mmonboard history … | head`): see [`output::write_out`].
macro_rules! out {
    () => {
        $crate::output::write_out(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::output::write_out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` for a reader that may go away first: see [`output::write_out`].
macro_rules! out_part {
    ($($arg:tt)*) => {
        $crate::output::write_out(format_args!($($arg)*))
    };
}

mod audit;
mod commands;
pub mod flow;
mod output;
mod tokens;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use mmonboard_domain::ids::PortfolioId;

pub use commands::{run, sample_scenarios};

/// Exit codes: a contract.
pub mod exit {
    /// The command was accepted / the check passed.
    pub const OK: u8 = 0;
    /// Infrastructure failure (database unreachable, busy, corrupt).
    pub const FAILURE: u8 = 1;
    /// Invalid input: nothing was read from or written to the log.
    pub const INVALID_INPUT: u8 = 2;
    /// The domain refused the command: nothing was appended.
    pub const REFUSED: u8 = 3;
    /// `verify` found the log broken.
    pub const LOG_BROKEN: u8 = 4;
}

/// A database URL whose scheme names a supported backend (checked before anything is opened).
fn parse_database_url(value: &str) -> Result<String, String> {
    mmonboard_eventlog::Backend::of_url(value)
        .map(|_| value.to_owned())
        .map_err(|error| match error {
            mmonboard_eventlog::StoreError::Invalid(message) => message,
            other => other.to_string(),
        })
}

/// The default database: an SQLite file in the working directory, created and migrated on first use.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://mmonboard.db";

#[derive(Debug, Parser)]
#[command(
    name = "mmonboard",
    version,
    about = "Onboard Meta business portfolios to the Marketing Messages API for WhatsApp, as an immutable, replayable history"
)]
pub struct Cli {
    /// Where the event log lives: sqlite://PATH (the default, created on first use) or
    /// postgres://USER@HOST[:PORT]/DATABASE (several instances may share one).
    #[arg(
        long,
        global = true,
        env = "MMONBOARD_DATABASE_URL",
        default_value = DEFAULT_DATABASE_URL,
        value_parser = parse_database_url
    )]
    pub database: String,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Decide one JSON command against a portfolio and record its events.
    Exec {
        /// The Meta business portfolio id (digits, no leading zero): one portfolio, one history.
        #[arg(long, value_parser = parse_portfolio_id)]
        portfolio: PortfolioId,
        /// The JSON command; `-` or absent reads standard input.
        #[arg(long)]
        command_file: Option<PathBuf>,
        /// Idempotency key: the same id again returns the original outcome and appends nothing.
        #[arg(long)]
        command_id: Option<uuid::Uuid>,
        /// Who issues the command, recorded in the events' metadata.
        #[arg(long, env = "MMONBOARD_ACTOR", default_value = "cli")]
        actor: String,
        /// Correlation id to record (defaults to the command id).
        #[arg(long)]
        correlation_id: Option<uuid::Uuid>,
    },
    /// Show a portfolio's onboarding state, now or as it was at a time.
    State {
        /// The Meta business portfolio id (digits, no leading zero): one portfolio, one history.
        #[arg(long, value_parser = parse_portfolio_id)]
        portfolio: PortfolioId,
        /// RFC 3339 time, e.g. 2026-11-25T10:00:00Z.
        #[arg(long, value_parser = parse_time)]
        as_of: Option<chrono::DateTime<chrono::Utc>>,
        /// Print JSON (the same shapes as the HTTP API) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Every event of a portfolio with the transition it caused.
    History {
        /// The Meta business portfolio id (digits, no leading zero): one portfolio, one history.
        #[arg(long, value_parser = parse_portfolio_id)]
        portfolio: PortfolioId,
        /// Print JSON (the same shapes as the HTTP API) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Walk the hash chain and the stream versions of the whole log, and cross-check the command records.
    Verify {
        /// Print JSON (the same shapes as the HTTP API) instead of text.
        #[arg(long)]
        json: bool,
        /// Verify this export file instead, without any database (docs/audit.md).
        #[arg(long)]
        file: Option<PathBuf>,
        /// POSITION:HASH, a head noted earlier (as verify prints it): the log must still hold that position
        /// with exactly that hash, which catches a log re-chained after an edit or cut back before it.
        #[arg(long, value_parser = parse_expected_head)]
        expect_head: Option<(u64, [u8; 32])>,
    },
    /// Write the log as NDJSON, each event exactly as stored (docs/audit.md): a backup, or an auditor's copy.
    Export {
        /// Only events after this position (the header carries its hash).
        #[arg(long, default_value_t = 0)]
        after: u64,
        /// Only events up to this position.
        #[arg(long)]
        to: Option<u64>,
        /// The file to write (`-` or absent: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Restore a whole-log export into an empty log of either backend, keeping positions, ids, times and
    /// hashes; a broken file or a non-empty target writes nothing.
    Import {
        /// The export file.
        #[arg(long)]
        file: PathBuf,
    },
    /// Onboard the sample portfolios end to end through the Meta simulator, over real HTTP, on this database,
    /// with accelerated time: only the operator's own steps come from here; every fact comes from Meta.
    Demo {
        /// Scenario files to onboard (see scenarios/README.md); default: the seven samples shipped with mmonboard.
        #[arg(long = "scenario")]
        scenarios: Vec<PathBuf>,
        /// Simulated time runs this many times faster than real time (600: a 15-minute window takes 1.5 s).
        #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        time_factor: u32,
        /// Keep the server (API and web console) running after the flow, until Ctrl-C, and print the console's
        /// address with a token to sign in; the simulator also holds one more portfolio to walk through the
        /// enable flow by hand.
        #[arg(long)]
        keep_serving: bool,
    },
    /// Serve the HTTP API (commands, queries, read models, routing, live events) on this database.
    #[command(after_help = "Environment:\n  \
        META_ACCESS_TOKEN          the Graph API token the process manager calls Meta with (with --meta-base-url; never logged)\n  \
        META_APP_SECRET            the Meta app's secret: webhook deliveries at /webhooks/meta are checked against it\n  \
        META_WEBHOOK_VERIFY_TOKEN  the token Meta echoes in the webhook subscription handshake\n  \
        (set both or neither; with neither, /webhooks/meta answers 404)\n  \
        RUST_LOG                   which logs go to stderr, e.g. RUST_LOG=info or RUST_LOG=mmonboard_process=debug")]
    Serve {
        /// Address to listen on; port 0 picks a free port (the chosen address is logged).
        #[arg(long, env = "MMONBOARD_LISTEN", default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// Meta's Graph API (e.g. https://graph.facebook.com, or a `meta-sim`): when given, the process manager
        /// drives every onboarding forward through it. The token is read from META_ACCESS_TOKEN.
        #[arg(long, env = "META_BASE_URL")]
        meta_base_url: Option<String>,
        /// The Graph API version to call.
        #[arg(long, env = "META_API_VERSION", default_value = mmonboard_meta::wire::DEFAULT_GRAPH_API_VERSION)]
        meta_api_version: String,
        /// Run without credentials: anyone reaching the port may read and write. Development machines only.
        #[arg(long)]
        insecure_no_auth: bool,
        /// Serve HTTPS with this PEM certificate chain (with --tls-key).
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The PEM private key of --tls-cert.
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Also serve /metrics, without credentials, on this address (on the API's listener it needs a token).
        #[arg(long, env = "MMONBOARD_METRICS_LISTEN")]
        metrics_listen: Option<std::net::SocketAddr>,
        /// Requests in flight at once; past it, 503 with Retry-After.
        #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
        max_in_flight: u32,
        /// Requests per second each token may send on average; past it, 429 with Retry-After.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
        rate_limit_per_second: u32,
        /// Requests a token may send in one burst.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
        rate_limit_burst: u32,
    },
    /// Manage the API tokens `serve` accepts (only their hashes are stored, next to the log).
    Tokens {
        #[command(subcommand)]
        action: TokensAction,
    },
    /// Serve a simulator of the part of Meta's Graph API mmonboard speaks to, from scenario files.
    #[command(after_help = "Environment:\n  \
        META_ACCESS_TOKEN  the token the simulator expects in calls (the same value as serve's)\n  \
        META_APP_SECRET    the app secret the simulator signs its webhooks with (the same value as serve's)\n  \
        RUST_LOG           which logs go to stderr, e.g. RUST_LOG=info")]
    MetaSim {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8090")]
        listen: std::net::SocketAddr,
        /// Scenario files (JSON); see scenarios/README.md.
        #[arg(long = "scenario", required = true)]
        scenarios: Vec<PathBuf>,
        /// Where to deliver webhooks (e.g. http://127.0.0.1:8080/webhooks/meta); none: only recorded.
        #[arg(long)]
        webhook_url: Option<String>,
        /// Run simulated time this many times faster than real time.
        #[arg(long, default_value_t = 1)]
        time_factor: u32,
    },
    /// The read models: rebuild them from the log, or show how far behind they are.
    Projections {
        #[command(subcommand)]
        action: ProjectionsAction,
    },
    /// Measure the event log on a fresh temporary database against raw baselines.
    Bench {
        /// One JSON object (workload -> figure, baseline, ratio) instead of a table.
        /// Print JSON (the same shapes as the HTTP API) instead of text.
        #[arg(long)]
        json: bool,
        /// A smaller run (a tenth of the sizes), for a quick look; the figures are not comparable.
        #[arg(long)]
        quick: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokensAction {
    /// Create a token and print it, once.
    Create {
        /// What the history records as the actor (with the role): 1 to 64 of a-z 0-9 . _ -
        #[arg(long)]
        name: String,
        /// operator, recorder, auditor, subscriber or admin (docs/access.md).
        #[arg(long)]
        role: String,
        /// How long it is valid: 90d, 12h, 2w ...; without it, until revoked.
        #[arg(long)]
        expires_in: Option<String>,
    },
    /// List the tokens: name, role, created, expires, last used, status (never the token).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token: every server refuses it within the refresh interval (5 s).
    Revoke { name: String },
}

#[derive(Debug, Subcommand)]
pub enum ProjectionsAction {
    /// Empty the read models and project the whole log again (a progress bar on a terminal).
    Rebuild {
        /// `read_models` (the default) or one of its tables: `status`, `ad_accounts`, `templates`. They share
        /// one projector and one checkpoint, so each name rebuilds all three.
        name: Option<String>,
    },
    /// Log head, checkpoint and lag of each projection.
    Status {
        /// Print JSON (the same shapes as the HTTP API) instead of text.
        #[arg(long)]
        json: bool,
    },
}

fn parse_portfolio_id(value: &str) -> Result<PortfolioId, String> {
    PortfolioId::parse(value).map_err(|error| error.to_string())
}

fn parse_expected_head(value: &str) -> Result<(u64, [u8; 32]), String> {
    let (position, hash) = value
        .split_once(':')
        .ok_or("expected POSITION:HASH, e.g. 42:9f86d0…(64 hex digits)")?;
    let position: u64 = position
        .parse()
        .ok()
        .filter(|position| *position > 0)
        .ok_or_else(|| format!("the position {position:?} is not a number from 1"))?;
    let mut bytes = [0; 32];
    hex::decode_to_slice(hash, &mut bytes)
        .map_err(|_| format!("the hash {hash:?} is not 64 hex digits"))?;
    Ok((position, bytes))
}

fn parse_time(value: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(value)
        .map(|time| time.with_timezone(&chrono::Utc))
        .map_err(|error| format!("not an RFC 3339 time ({error}); example: 2026-11-25T10:00:00Z"))
}
