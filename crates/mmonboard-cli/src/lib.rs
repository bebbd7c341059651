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

mod commands;
#[cfg(feature = "simulator")]
pub mod flow;
mod logging;
mod output;
mod progress;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use mmonboard_domain::ids::PortfolioId;

pub use commands::run;
#[cfg(feature = "simulator")]
pub use commands::sample_scenarios;
pub use logging::LogFormat;

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

    /// How `serve` and `meta-sim` write their log to standard error: text for a person, json for a log
    /// collector (one JSON object per line). RUST_LOG picks the levels (default: info, with one line per
    /// HTTP request).
    #[arg(
        long,
        global = true,
        env = "MMONBOARD_LOG_FORMAT",
        value_enum,
        default_value_t = logging::LogFormat::Text
    )]
    pub log_format: logging::LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

// Parsed once per process: `serve`'s many flags make its variant large, which costs nothing here.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Decide one JSON command against a portfolio and record its events.
    #[command(
        after_help = "Examples:\n  echo '{\"type\": \"start_onboarding\"}' | mmonboard exec --portfolio 123\n  mmonboard exec --portfolio 123 --command-file eligibility.json --command-id 0190f6d2-8b7c-7cc1-9a3b-6f1d2e4c5b6a"
    )]
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
    #[command(
        after_help = "Examples:\n  mmonboard state --portfolio 123\n  mmonboard state --portfolio 123 --as-of 2026-11-25T10:00:00Z --json"
    )]
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
    #[command(after_help = "Example:\n  mmonboard history --portfolio 123 --json")]
    History {
        /// The Meta business portfolio id (digits, no leading zero): one portfolio, one history.
        #[arg(long, value_parser = parse_portfolio_id)]
        portfolio: PortfolioId,
        /// Print JSON (the same shapes as the HTTP API) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Walk the hash chain and the stream versions of the whole log, and cross-check the command records.
    #[command(
        after_help = "Examples:\n  mmonboard verify\n  mmonboard verify --file export.ndjson --expect-head 42:<64 hex digits>"
    )]
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
        /// A public key (ed25519:<hex>, as `keys generate` prints it, or its .pub file) whose signed
        /// checkpoints are trusted; repeatable. Every checkpoint must then be signed by one of them, and the
        /// log must still hold each checkpointed position with exactly its hash.
        #[arg(long = "trusted-key")]
        trusted_keys: Vec<String>,
    },
    /// Sign a checkpoint of the chain head now (for a cron job), after checking the chain since the key's
    /// previous checkpoint.
    #[command(
        after_help = "Example:\n  mmonboard checkpoint --signing-key /etc/mmonboard/signing.key"
    )]
    Checkpoint {
        /// The private key file `keys generate` wrote.
        #[arg(long, env = "MMONBOARD_SIGNING_KEY")]
        signing_key: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Write one self-contained HTML page on a portfolio for a person to read: the integrity proof, the state
    /// machine with its path, each WABA's verdict, templates, and the timeline of every event.
    #[command(
        after_help = "Examples:\n  mmonboard report --portfolio 1234567890 --out report.html\n  mmonboard report --portfolio 1234567890 --file backup.ndjson --trusted-key ed25519:<hex> --out report.html"
    )]
    Report {
        /// The Meta business portfolio id.
        #[arg(long, value_parser = parse_portfolio_id)]
        portfolio: PortfolioId,
        /// The HTML file to write.
        #[arg(long)]
        out: PathBuf,
        /// Read this export file instead of the database (verified and imported into a temporary log).
        #[arg(long)]
        file: Option<PathBuf>,
        /// Public keys whose checkpoints are trusted (as for verify); repeatable.
        #[arg(long = "trusted-key")]
        trusted_keys: Vec<String>,
    },
    /// Ed25519 keys for signed checkpoints.
    #[command(after_help = "Example:\n  mmonboard keys generate --out /etc/mmonboard/signing.key")]
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Write the log as NDJSON, each event exactly as stored (docs/audit.md): a backup, or an auditor's copy.
    #[command(after_help = "Example:\n  mmonboard export --out backup.ndjson")]
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
    #[command(
        after_help = "Example:\n  mmonboard --database postgres://postgres@127.0.0.1/restored import --file backup.ndjson"
    )]
    Import {
        /// The export file.
        #[arg(long)]
        file: PathBuf,
    },
    #[cfg(feature = "simulator")]
    /// Onboard the sample portfolios end to end through the Meta simulator, over real HTTP, on this database,
    /// with accelerated time: only the operator's own steps come from here; every fact comes from Meta.
    #[command(
        after_help = "Example:\n  mmonboard --database sqlite://demo.db demo --time-factor 600"
    )]
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
        RUST_LOG                   which logs go to stderr, e.g. RUST_LOG=info or RUST_LOG=mmonboard_process=debug\n\n\
        Examples:\n  \
        mmonboard tokens create --name admin --role admin && mmonboard serve --listen 0.0.0.0:8080\n  \
        META_ACCESS_TOKEN=… mmonboard serve --meta-base-url https://graph.facebook.com --log-format json")]
    Serve(ServeArgs),
    /// Run the outbox relay alone: publish every event of the log, in order, exactly once, to a NATS JetStream
    /// stream, until interrupted. One relay publishes per database; more stand by and take over.
    #[command(
        after_help = "Examples:\n  mmonboard relay --nats-url nats://127.0.0.1:4222\n  mmonboard relay --nats-url nats://127.0.0.1:4222 --from-position 1   # into an emptied stream"
    )]
    Relay {
        /// The NATS server, e.g. nats://127.0.0.1:4222.
        #[arg(long, env = "MMONBOARD_NATS_URL")]
        nats_url: String,
        /// When the stream is empty (new or purged), republish from this position on instead of continuing
        /// after the relay's checkpoint. A stream that holds messages always continues after its last one.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        from_position: Option<u64>,
        /// The JetStream stream (created with file storage when absent).
        #[arg(long, env = "MMONBOARD_NATS_STREAM", default_value = mmonboard_relay::DEFAULT_STREAM)]
        stream: String,
        /// Subjects are <prefix>.<portfolio_id>.<event_type>.
        #[arg(long, env = "MMONBOARD_NATS_SUBJECT_PREFIX", default_value = mmonboard_relay::DEFAULT_SUBJECT_PREFIX)]
        subject_prefix: String,
        /// How long the relay lease lasts (renewed every third of it): a standby takes over within about
        /// this long after the active relay dies. e.g. 15s, 3s.
        #[arg(long, default_value = "15s", value_parser = parse_lease_ttl)]
        lease_ttl: std::time::Duration,
    },
    /// Manage the API tokens `serve` accepts (only their hashes are stored, next to the log).
    #[command(
        after_help = "Examples:\n  mmonboard tokens create --name alice --role operator --expires-in 90d\n  mmonboard tokens list --json\n  mmonboard tokens revoke alice"
    )]
    Tokens {
        #[command(subcommand)]
        action: TokensAction,
    },
    #[cfg(feature = "simulator")]
    /// Serve a simulator of the part of Meta's Graph API mmonboard speaks to, from scenario files.
    #[command(after_help = "Environment:\n  \
        META_ACCESS_TOKEN  the token the simulator expects in calls (the same value as serve's)\n  \
        META_APP_SECRET    the app secret the simulator signs its webhooks with (the same value as serve's)\n  \
        RUST_LOG           which logs go to stderr, e.g. RUST_LOG=info\n\n\
        Example:\n  \
        mmonboard meta-sim --scenario scenarios/happy_path.json --webhook-url http://127.0.0.1:8080/webhooks/meta")]
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
    #[command(
        after_help = "Examples:\n  mmonboard projections status\n  mmonboard projections rebuild"
    )]
    Projections {
        #[command(subcommand)]
        action: ProjectionsAction,
    },
    /// The aggregate snapshots kept beside the log (a cache: clearing them changes nothing but speed).
    #[command(
        after_help = "Examples:\n  mmonboard snapshots rebuild --every 100\n  mmonboard snapshots clear"
    )]
    Snapshots {
        #[command(subcommand)]
        action: SnapshotsAction,
    },
    #[cfg(feature = "bench")]
    /// Measure the event log on a fresh temporary database against raw baselines.
    #[command(after_help = "Example:\n  mmonboard bench --quick")]
    Bench {
        /// One JSON object (workload -> figure, baseline, ratio) instead of a table.
        #[arg(long)]
        json: bool,
        /// A smaller run (a tenth of the sizes), for a quick look; the figures are not comparable.
        #[arg(long)]
        quick: bool,
        /// The NATS server for the relay rows; they are left out, with a note, when it does not answer.
        #[arg(
            long,
            env = "MMONBOARD_NATS_URL",
            default_value = "nats://127.0.0.1:4222"
        )]
        nats_url: String,
    },
    /// Print a shell completion script, generated from these definitions.
    #[command(after_help = "Examples:\n  \
        mmonboard completions bash > /etc/bash_completion.d/mmonboard\n  \
        mmonboard completions zsh > \"${fpath[1]}/_mmonboard\"\n  \
        mmonboard completions fish > ~/.config/fish/completions/mmonboard.fish")]
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), or write one page per command into a directory.
    #[command(after_help = "Examples:\n  \
        mmonboard man | man -l -\n  \
        mmonboard man --dir /usr/local/share/man/man1")]
    Man {
        /// Write mmonboard.1 and a page per subcommand (mmonboard-serve.1, …) into this existing directory.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

// `serve`'s flags. A plain comment, not a doc comment: clap would take it for the subcommand's help, which
// is on `Command::Serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port (the chosen address is logged).
    #[arg(long, env = "MMONBOARD_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    /// Meta's Graph API (e.g. https://graph.facebook.com, or a `meta-sim`): when given, the process manager
    /// drives every onboarding forward through it. The token is read from META_ACCESS_TOKEN.
    #[arg(long, env = "META_BASE_URL")]
    pub meta_base_url: Option<String>,
    /// The Graph API version to call.
    #[arg(long, env = "META_API_VERSION", default_value = mmonboard_meta::wire::DEFAULT_GRAPH_API_VERSION)]
    pub meta_api_version: String,
    /// Run without credentials: anyone reaching the port may read and write. Development machines only.
    #[arg(long)]
    pub insecure_no_auth: bool,
    /// Serve HTTPS with this PEM certificate chain (with --tls-key).
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Also serve /metrics, without credentials, on this address (on the API's listener it needs a token).
    #[arg(long, env = "MMONBOARD_METRICS_LISTEN")]
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Requests in flight at once; past it, 503 with Retry-After.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_in_flight: u32,
    /// Requests per second each token may send on average; past it, 429 with Retry-After.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub rate_limit_per_second: u32,
    /// Requests a token may send in one burst.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub rate_limit_burst: u32,
    /// Store a portfolio's folded state beside the log each time its history passes a multiple of this
    /// many events, so a long history loads from there (0: no snapshots).
    #[arg(long, default_value_t = mmonboard_app::DEFAULT_SNAPSHOT_EVERY, value_parser = clap::value_parser!(u64).range(0..=1_000_000_000))]
    pub snapshot_every: u64,
    /// Sign checkpoints of the chain head with this private key (from `keys generate`), and at shutdown.
    #[arg(long, env = "MMONBOARD_SIGNING_KEY")]
    pub signing_key: Option<PathBuf>,
    /// With --signing-key: sign when the head is this many events past the last checkpoint.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub checkpoint_every_events: u64,
    /// With --signing-key: sign at least this often (seconds) while the head moves.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub checkpoint_every_seconds: u64,
    /// Also run the outbox relay: every event, in order, into a NATS JetStream stream (docs/events.md).
    #[arg(long, env = "MMONBOARD_NATS_URL")]
    pub nats_url: Option<String>,
    /// The JetStream stream the relay feeds (created with file storage when absent).
    #[arg(long, env = "MMONBOARD_NATS_STREAM", default_value = mmonboard_relay::DEFAULT_STREAM)]
    pub nats_stream: String,
    /// Subjects are <prefix>.<portfolio_id>.<event_type>.
    #[arg(long, env = "MMONBOARD_NATS_SUBJECT_PREFIX", default_value = mmonboard_relay::DEFAULT_SUBJECT_PREFIX)]
    pub nats_subject_prefix: String,
    /// Export OpenTelemetry traces (requests, commands, appends, process steps, Meta calls) over OTLP/HTTP
    /// to this collector, e.g. http://127.0.0.1:4318 (`/v1/traces` is appended).
    #[cfg(feature = "otel")]
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT", value_name = "URL", value_parser = logging::parse_otlp_endpoint)]
    pub otlp_endpoint: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum KeysAction {
    /// Write a new Ed25519 key pair: the private key to FILE (readable by its owner only), the public key to
    /// FILE.pub; the public key is printed.
    Generate {
        /// Where to write the private key (refused if it exists); the public key goes to FILE.pub.
        #[arg(long)]
        out: PathBuf,
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
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token: every server refuses it within the refresh interval (5 s).
    Revoke {
        /// The token's name, as `tokens list` shows it.
        name: String,
    },
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

#[derive(Debug, Subcommand)]
pub enum SnapshotsAction {
    /// Fold every portfolio with at least --every events and store its snapshot; delete those other builds
    /// wrote (this build never reads them).
    Rebuild {
        /// Only portfolios with at least this many events get one (shorter ones load fast without).
        #[arg(long, default_value_t = mmonboard_app::DEFAULT_SNAPSHOT_EVERY, value_parser = clap::value_parser!(u64).range(1..=1_000_000_000))]
        every: u64,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Delete every snapshot.
    Clear {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

fn parse_lease_ttl(value: &str) -> Result<std::time::Duration, String> {
    let ttl = humantime::parse_duration(value).map_err(|error| format!("{value:?}: {error}"))?;
    if ttl < std::time::Duration::from_secs(1) {
        return Err(format!("{value:?} is shorter than the 1 s a lease needs"));
    }
    Ok(ttl)
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
