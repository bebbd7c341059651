//! The subcommands. Each returns its exit code; input is fully checked before the database is opened, so
//! invalid input never touches the log.

use std::io::Read;
use std::path::Path;

use mmonboard_app::{AppError, Clock, CommandContext, OnboardingService, SystemClock};
use mmonboard_domain::ids::PortfolioId;
use mmonboard_domain::{DomainConfig, OnboardingCommand};
use mmonboard_eventlog::{EventLog, EventStore, LogOptions};
use mmonboard_metasim::Scenario;
use serde_json::json;

use mmonboard_app::json::{accepted_json, history_entry_json};

use crate::output::{invalid_input_json, refusal_json, state_text};
use crate::{Cli, Command, ProjectionsAction, SnapshotsAction, TokensAction, exit};

/// Run one invocation; returns the process exit code.
pub async fn run(cli: Cli) -> u8 {
    let database = cli.database;
    let log_format = cli.log_format;
    let result = match cli.command {
        Command::Exec {
            portfolio,
            command_file,
            command_id,
            actor,
            correlation_id,
        } => {
            exec(
                &database,
                &portfolio,
                command_file.as_deref(),
                command_id,
                actor,
                correlation_id,
            )
            .await
        }
        Command::State {
            portfolio,
            as_of,
            json,
        } => state(&database, &portfolio, as_of, json).await,
        Command::History { portfolio, json } => history(&database, &portfolio, json).await,
        Command::Verify {
            json,
            file,
            expect_head,
            trusted_keys,
        } => {
            crate::audit::verify(&database, file.as_deref(), json, expect_head, &trusted_keys).await
        }
        Command::Report {
            portfolio,
            out,
            file,
            trusted_keys,
        } => {
            crate::report::report(&database, &portfolio, &out, file.as_deref(), &trusted_keys).await
        }
        Command::Checkpoint { signing_key, json } => {
            crate::audit::checkpoint(&database, &signing_key, json).await
        }
        Command::Keys {
            action: crate::KeysAction::Generate { out },
        } => crate::audit::generate_key(&out),
        Command::Export { after, to, out } => crate::audit::export(&database, after, to, out).await,
        Command::Import { file } => crate::audit::import(&database, &file).await,
        Command::Demo {
            scenarios,
            time_factor,
            keep_serving,
        } => run_demo(&database, &scenarios, time_factor, keep_serving).await,
        Command::Bench {
            json,
            quick,
            nats_url,
        } => bench(&database, json, quick, &nats_url).await,
        Command::Relay {
            nats_url,
            from_position,
            stream,
            subject_prefix,
            lease_ttl,
        } => {
            let mut options = mmonboard_relay::RelayOptions::new(nats_url);
            options.lease = mmonboard_process::LeaseOptions {
                ttl: lease_ttl,
                renew_every: lease_ttl / 3,
            };
            options.from_position = from_position;
            options.stream = stream;
            options.subject_prefix = subject_prefix;
            crate::relay::relay(&database, options, log_format).await
        }
        Command::Serve {
            listen,
            meta_base_url,
            meta_api_version,
            insecure_no_auth,
            tls_cert,
            tls_key,
            metrics_listen,
            max_in_flight,
            rate_limit_per_second,
            rate_limit_burst,
            snapshot_every,
            signing_key,
            checkpoint_every_events,
            checkpoint_every_seconds,
            nats_url,
            nats_stream,
            nats_subject_prefix,
            #[cfg(feature = "otel")]
            otlp_endpoint,
        } => {
            let checkpoints = match signing_key {
                None => None,
                Some(path) => match mmonboard_eventlog::CheckpointKey::read(&path) {
                    Ok(key) => Some(mmonboard_server::CheckpointSetup {
                        key,
                        every_events: checkpoint_every_events,
                        every: std::time::Duration::from_secs(checkpoint_every_seconds),
                    }),
                    Err(error) => {
                        return invalid_input(&error.to_string()).unwrap_or(exit::FAILURE);
                    }
                },
            };
            let relay = nats_url.map(|nats_url| {
                let mut options = mmonboard_relay::RelayOptions::new(nats_url);
                options.stream = nats_stream;
                options.subject_prefix = nats_subject_prefix;
                options
            });
            let access = mmonboard_server::AccessOptions {
                mode: if insecure_no_auth {
                    mmonboard_server::AuthMode::InsecureNoAuth
                } else {
                    mmonboard_server::AuthMode::Tokens
                },
                max_in_flight: usize::try_from(max_in_flight).unwrap_or(usize::MAX),
                rate_limit: mmonboard_server::RateLimit::per_second(
                    std::num::NonZeroU32::new(rate_limit_per_second)
                        .unwrap_or(std::num::NonZeroU32::MIN),
                    std::num::NonZeroU32::new(rate_limit_burst)
                        .unwrap_or(std::num::NonZeroU32::MIN),
                ),
                ..mmonboard_server::AccessOptions::default()
            };
            let tls = match (tls_cert, tls_key) {
                (Some(cert), Some(key)) => Some(mmonboard_server::TlsFiles { cert, key }),
                _ => None,
            };
            serve(
                &database,
                listen,
                meta_base_url.as_deref(),
                &meta_api_version,
                ServeAccess {
                    access,
                    tls,
                    metrics_listen,
                    snapshot_every,
                    log_format,
                    checkpoints,
                    relay,
                    #[cfg(feature = "otel")]
                    otlp_endpoint,
                },
            )
            .await
        }
        Command::Tokens {
            action:
                TokensAction::Create {
                    name,
                    role,
                    expires_in,
                },
        } => crate::tokens::create(&database, &name, &role, expires_in.as_deref()).await,
        Command::Tokens {
            action: TokensAction::List { json },
        } => crate::tokens::list(&database, json).await,
        Command::Tokens {
            action: TokensAction::Revoke { name },
        } => crate::tokens::revoke(&database, &name).await,
        Command::MetaSim {
            listen,
            scenarios,
            webhook_url,
            time_factor,
        } => {
            meta_sim(
                listen,
                &scenarios,
                webhook_url.as_deref(),
                time_factor,
                log_format,
            )
            .await
        }
        Command::Projections {
            action: ProjectionsAction::Rebuild { name },
        } => rebuild(&database, name.as_deref()).await,
        Command::Projections {
            action: ProjectionsAction::Status { json },
        } => projection_status(&database, json).await,
        Command::Snapshots {
            action: SnapshotsAction::Rebuild { every, json },
        } => crate::snapshots::rebuild(&database, every, json).await,
        Command::Snapshots {
            action: SnapshotsAction::Clear { json },
        } => crate::snapshots::clear(&database, json).await,
        Command::Completions { shell } => Ok(crate::shell::completions(shell)),
        Command::Man { dir } => Ok(crate::shell::man(dir.as_deref())),
    };
    match result {
        // The command succeeded, but what it printed was lost: that is a failure too.
        Ok(exit::OK) if crate::output::output_failed() => exit::FAILURE,
        Ok(code) => code,
        Err(error) => {
            crate::logging::fail(log_format, &error);
            exit::FAILURE
        }
    }
}

/// Failures of the infrastructure: exit 1.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Failure {
    #[error("cannot open the event log at {url}: {source}")]
    Open {
        url: String,
        source: mmonboard_eventlog::StoreError,
    },
    #[error(transparent)]
    App(#[from] AppError),
    #[error(transparent)]
    Store(#[from] mmonboard_eventlog::StoreError),
    #[error(transparent)]
    Export(#[from] mmonboard_eventlog::ExportError),
    #[error("the relay: {0}")]
    Relay(String),
    #[error("cannot write the output: {0}")]
    Output(#[from] serde_json::Error),
    #[error("benchmark failed: {0}")]
    Bench(String),
    #[error(transparent)]
    Server(#[from] mmonboard_server::ServerError),
    #[error(transparent)]
    Projection(#[from] mmonboard_projections::ProjectionError),
    #[error(transparent)]
    Access(#[from] mmonboard_access::AccessError),
    #[error("Meta: {0}")]
    Meta(String),
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: std::net::SocketAddr,
        source: std::io::Error,
    },
}

pub(crate) async fn open(url: &str) -> Result<EventLog, Failure> {
    EventLog::open(url, &LogOptions::default())
        .await
        .map_err(|source| Failure::Open {
            url: mmonboard_eventlog::redact_database_url(url),
            source,
        })
}

/// For the commands that only read (`state`, `history`, `verify`): nothing is created or written, a missing
/// database is an error naming it, and a read-only copy works.
pub(crate) async fn open_read_only(url: &str) -> Result<EventLog, Failure> {
    EventLog::open_read_only(url, &LogOptions::default())
        .await
        .map_err(|source| Failure::Open {
            url: mmonboard_eventlog::redact_database_url(url),
            source,
        })
}

fn service(store: EventLog) -> OnboardingService<EventLog, SystemClock> {
    OnboardingService::new(store, SystemClock, DomainConfig::default())
}

/// ", head at position N with hash H" for a log or export that has a head, "" for an empty one.
pub(crate) fn head_text(head: Option<(u64, [u8; 32])>) -> String {
    head.map(|(position, hash)| {
        format!(
            ", head at position {position} with hash {}",
            hex::encode(hash)
        )
    })
    .unwrap_or_default()
}

pub(crate) fn print_json(value: &serde_json::Value) -> Result<(), Failure> {
    out!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

pub(crate) fn invalid_input(message: &str) -> Result<u8, Failure> {
    eprintln!("invalid input: {message}");
    print_json(&invalid_input_json(message))?;
    Ok(exit::INVALID_INPUT)
}

fn read_command(file: Option<&Path>) -> Result<OnboardingCommand, String> {
    let (source, text) = match file {
        None => ("standard input".to_owned(), read_stdin()?),
        Some(path) if path.as_os_str() == "-" => ("standard input".to_owned(), read_stdin()?),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|error| format!("cannot read command file {}: {error}", path.display()))?;
            (path.display().to_string(), text)
        }
    };
    if text.trim().is_empty() {
        return Err(format!(
            "no command in {source}: expected one JSON object with a \"type\" field"
        ));
    }
    serde_json::from_str(&text)
        .map_err(|error| format!("the command in {source} is not valid: {error}"))
}

fn read_stdin() -> Result<String, String> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|error| format!("cannot read standard input: {error}"))?;
    Ok(text)
}

async fn exec(
    database: &str,
    portfolio_id: &PortfolioId,
    command_file: Option<&Path>,
    command_id: Option<uuid::Uuid>,
    actor: String,
    correlation_id: Option<uuid::Uuid>,
) -> Result<u8, Failure> {
    let command = match read_command(command_file) {
        Ok(command) => command,
        Err(message) => return invalid_input(&message),
    };
    if actor.trim().is_empty() || actor.len() > 200 {
        return invalid_input("--actor must be 1 to 200 characters");
    }
    let mut context = CommandContext::new(actor);
    if let Some(command_id) = command_id {
        context = context.with_command_id(command_id);
    }
    if let Some(correlation_id) = correlation_id {
        context.correlation_id = correlation_id;
    }
    let service = service(open(database).await?);
    let outcome = service.execute(portfolio_id, &command, &context).await?;
    let code = match outcome {
        Ok(outcome) => {
            print_json(&accepted_json(&outcome, context.command_id))?;
            exit::OK
        }
        Err(refusal) => {
            // The refusal says "refused in state …" itself.
            eprintln!("{refusal}");
            print_json(&refusal_json(&refusal))?;
            exit::REFUSED
        }
    };
    service.into_store().close().await;
    Ok(code)
}

async fn state(
    database: &str,
    portfolio_id: &PortfolioId,
    as_of: Option<chrono::DateTime<chrono::Utc>>,
    as_json: bool,
) -> Result<u8, Failure> {
    let service = service(open_read_only(database).await?);
    let aggregate = match as_of {
        Some(as_of) => service.load_as_of(portfolio_id, as_of).await?,
        None => service.load(portfolio_id).await?,
    };
    if as_json {
        let mut value = serde_json::to_value(aggregate.view())?;
        if let (Some(as_of), serde_json::Value::Object(map)) = (as_of, &mut value) {
            map.insert("as_of".into(), json!(as_of));
        }
        print_json(&value)?;
    } else {
        if let Some(as_of) = as_of {
            out!(
                "as of {}",
                as_of.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            );
        }
        out_part!("{}", state_text(&aggregate));
    }
    service.into_store().close().await;
    Ok(exit::OK)
}

async fn history(database: &str, portfolio_id: &PortfolioId, as_json: bool) -> Result<u8, Failure> {
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

/// "1 event", "2 events".
pub(crate) fn counted(count: u64, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
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

/// The sample scenarios shipped with mmonboard (the files in `scenarios/`), for a demo from a fresh clone.
const SAMPLE_SCENARIOS: [(&str, &str); 7] = [
    (
        "happy_path",
        include_str!("../../../scenarios/happy_path.json"),
    ),
    ("obo_waba", include_str!("../../../scenarios/obo_waba.json")),
    (
        "unsupported_country",
        include_str!("../../../scenarios/unsupported_country.json"),
    ),
    (
        "restricted_waba",
        include_str!("../../../scenarios/restricted_waba.json"),
    ),
    (
        "business_app_number",
        include_str!("../../../scenarios/business_app_number.json"),
    ),
    (
        "restriction_after_enablement",
        include_str!("../../../scenarios/restriction_after_enablement.json"),
    ),
    (
        "duplicate_invitation",
        include_str!("../../../scenarios/duplicate_invitation.json"),
    ),
];

/// The shipped samples, parsed.
pub fn sample_scenarios() -> Result<Vec<Scenario>, String> {
    SAMPLE_SCENARIOS
        .iter()
        .map(|(name, text)| {
            Scenario::from_json(text).map_err(|error| format!("sample {name}: {error}"))
        })
        .collect()
}

/// The scenarios whose portfolio already has a history in the log at `database`, each with its first
/// event's time; `Err` names a scenario whose business id is not a portfolio id.
async fn earlier_run(
    database: &str,
    scenarios: &[Scenario],
) -> Result<Result<Vec<(String, chrono::DateTime<chrono::Utc>)>, String>, Failure> {
    // Every id is checked before the database is opened: invalid input opens nothing.
    let mut portfolios = Vec::with_capacity(scenarios.len());
    for scenario in scenarios {
        match PortfolioId::parse(&scenario.business.id) {
            Ok(portfolio) => portfolios.push((scenario.name.clone(), portfolio)),
            Err(error) => return Ok(Err(format!("scenario {}: {error}", scenario.name))),
        }
    }
    let store = open(database).await?;
    let mut earlier = Vec::new();
    for (name, portfolio) in portfolios {
        let stream = mmonboard_app::codec::stream_id(&portfolio);
        if let Some(first) = store.read_stream(&stream, 0).await?.first() {
            earlier.push((name, first.recorded_at));
        }
    }
    Ok(Ok(earlier))
}

/// The portfolio `demo --keep-serving` leaves for a person to walk through the console's enable flow.
const WALKTHROUGH_SCENARIO: &str = include_str!("../../../scenarios/console_walkthrough.json");

async fn run_demo(
    database: &str,
    files: &[std::path::PathBuf],
    time_factor: u32,
    keep_serving: bool,
) -> Result<u8, Failure> {
    let scenarios = if files.is_empty() {
        match sample_scenarios() {
            Ok(scenarios) => scenarios,
            Err(message) => return invalid_input(&message),
        }
    } else {
        let mut scenarios = Vec::with_capacity(files.len());
        for file in files {
            match Scenario::from_file(file) {
                Ok(scenario) => scenarios.push(scenario),
                Err(error) => return invalid_input(&error.to_string()),
            }
        }
        scenarios
    };
    let earlier = match earlier_run(database, &scenarios).await? {
        Ok(earlier) => earlier,
        Err(message) => return invalid_input(&message),
    };
    // With --keep-serving the simulator also knows a portfolio nobody onboards by script, for the console.
    let walkthrough = if keep_serving {
        match Scenario::from_json(WALKTHROUGH_SCENARIO) {
            Ok(scenario)
                if !scenarios
                    .iter()
                    .any(|s| s.business.id == scenario.business.id) =>
            {
                Some(scenario)
            }
            Ok(_) => None,
            Err(error) => return invalid_input(&format!("the walkthrough scenario: {error}")),
        }
    } else {
        None
    };
    let simulated: Vec<Scenario> = scenarios
        .iter()
        .cloned()
        .chain(walkthrough.clone())
        .collect();
    let mut flow = crate::flow::Flow::start(database, simulated, time_factor)
        .await
        .map_err(|error| Failure::Meta(error.to_string()))?;
    let console_token = if keep_serving {
        Some(
            flow.create_console_token()
                .await
                .map_err(|error| Failure::Meta(error.to_string()))?,
        )
    } else {
        None
    };
    // Offsets count from this run's start, or from an earlier run's first event when its history is replayed.
    let run_start = flow.now();
    let start = earlier
        .iter()
        .map(|(_, first)| *first)
        .fold(run_start, std::cmp::min);
    out!("mmonboard demo on {database}");
    out!(
        "  Meta simulator {} and mmonboard {} (API, signed webhooks, process manager), over real HTTP",
        flow.sim_base,
        flow.api_base
    );
    out!(
        "  time runs {time_factor}x faster: [+hh:mm:ss] is simulated time since the start; only the operator's own steps come from here"
    );
    if let Some((name, secret)) = &console_token {
        out!(
            "  web console: {}/sign-in#token={}  (the token {name}, role operator: it fills itself in)",
            flow.api_base,
            secret.expose()
        );
        if let Some(walkthrough) = &walkthrough {
            out!(
                "  then walk portfolio {} ({}) through the enable flow: {}/portfolios/{}/enable",
                walkthrough.business.id,
                walkthrough.business.name,
                flow.api_base,
                walkthrough.business.id
            );
        }
    }
    if !earlier.is_empty() {
        let names: Vec<&str> = earlier.iter().map(|(name, _)| name.as_str()).collect();
        out!(
            "  this log already holds {} of these portfolios from an earlier run ({}): their recorded history is shown, not run again;\n  \
             to watch them onboard again, remove that database or pass --database sqlite://another.db",
            earlier.len(),
            names.join(", "),
        );
    }
    out!();
    let width = scenarios.iter().map(|s| s.name.len()).max().unwrap_or(0);
    // The lines are printed as the events are recorded, so a table laid out at the end cannot align them:
    // the columns are as wide as the longest value they can hold, known before the first line.
    let event_width = mmonboard_domain::event::ALL_TYPE_NAMES
        .iter()
        .map(|name| name.len())
        .max()
        .unwrap_or(0);
    let actor_width = [
        "operator",
        mmonboard_process::ACTOR,
        mmonboard_server::WEBHOOK_ACTOR,
    ]
    .iter()
    .map(|actor| actor.len())
    .max()
    .unwrap_or(0);
    let flow = std::sync::Arc::new(flow);
    let mut runs = tokio::task::JoinSet::new();
    for scenario in scenarios.clone() {
        let flow = std::sync::Arc::clone(&flow);
        runs.spawn(async move {
            let name = scenario.name.clone();
            let mut print = |step: &crate::flow::Transition| {
                let offset = chrono::DateTime::parse_from_rfc3339(&step.at)
                    .map(|at| at.with_timezone(&chrono::Utc) - start)
                    .unwrap_or_default();
                let seconds = offset.num_seconds().max(0);
                let arrow = if step.from == step.to {
                    String::new()
                } else {
                    format!("{} -> {}", step.from, step.to)
                };
                let line = format!(
                    "[+{:02}:{:02}:{:02}] {name:<width$}  {:<event_width$}  {:<actor_width$}  {arrow}",
                    seconds / 3600,
                    seconds / 60 % 60,
                    seconds % 60,
                    step.event,
                    step.actor,
                );
                out!("{}", line.trim_end());
            };
            let outcome = flow
                .onboard(&scenario, std::time::Duration::from_secs(120), &mut print)
                .await;
            (scenario, outcome)
        });
    }
    let mut results = Vec::new();
    while let Some(joined) = runs.join_next().await {
        match joined {
            Ok(result) => results.push(result),
            Err(error) => return Err(Failure::Meta(format!("a scenario's run failed: {error}"))),
        }
    }
    results.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    let mut table = comfy_table::Table::new();
    table
        .load_style(comfy_table::presets::NOTHING)
        .set_content_arrangement(comfy_table::ContentArrangement::Disabled)
        .set_header(["scenario", "expected", "ended in", "result"]);
    let mut failed = 0;
    for (scenario, outcome) in &results {
        match outcome {
            Ok(state) => table.add_row([
                scenario.name.as_str(),
                scenario.expect.phase.as_str(),
                state["phase"].as_str().unwrap_or("?"),
                "as predicted",
            ]),
            Err(error) => {
                failed += 1;
                table.add_row([
                    scenario.name.clone(),
                    scenario.expect.phase.to_string(),
                    "-".to_owned(),
                    error.to_string(),
                ])
            }
        };
    }
    for column in table.column_iter_mut() {
        column.set_padding((0, 2));
    }
    out!();
    for line in table.lines() {
        out!("{}", line.trim_end());
    }
    let flow = std::sync::Arc::into_inner(flow)
        .ok_or_else(|| Failure::Meta("the demo's runs still hold the flow".into()))?;
    let elapsed = flow.now() - run_start;
    if keep_serving {
        // Listening before saying so: an interrupt right after the line still stops the demo cleanly.
        #[cfg(unix)]
        let mut interrupt =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
                .map_err(|error| Failure::Meta(format!("cannot listen for Ctrl-C: {error}")))?;
        out!(
            "\nstill serving the API and the web console at {}/ (press Ctrl-C to stop)",
            flow.api_base
        );
        #[cfg(unix)]
        interrupt.recv().await;
        #[cfg(not(unix))]
        tokio::signal::ctrl_c()
            .await
            .map_err(|error| Failure::Meta(format!("cannot wait for Ctrl-C: {error}")))?;
    }
    flow.shutdown()
        .await
        .map_err(|error| Failure::Meta(error.to_string()))?;
    let store = open(database).await?;
    let report = store.verify().await?;
    out!(
        "\n{} of {} portfolios ended as predicted in {} simulated minutes.",
        results.len() - failed,
        results.len(),
        elapsed.num_minutes(),
    );
    if let Some(broken) = &report.first_break {
        out!(
            "the log is broken at global position {}: {}",
            broken.global_position,
            broken.reason
        );
        return Ok(exit::LOG_BROKEN);
    }
    out!(
        "the log verifies: {} events in {} streams, hash chain intact.",
        report.events_checked,
        report.streams_checked
    );
    Ok(if failed == 0 { exit::OK } else { exit::FAILURE })
}

async fn bench(database: &str, as_json: bool, quick: bool, nats_url: &str) -> Result<u8, Failure> {
    // The bench never touches the log `--database` names: on SQLite it runs on a temporary file; on
    // PostgreSQL in a temporary database it creates on that server and drops afterwards.
    let postgres_server = match mmonboard_eventlog::Backend::of_url(database)? {
        mmonboard_eventlog::Backend::Sqlite => None,
        mmonboard_eventlog::Backend::Postgres => Some(database.to_owned()),
    };
    let options = mmonboard_bench::BenchOptions {
        scale: if quick { 0.1 } else { 1.0 },
        postgres_server,
        nats_url: Some(nats_url.to_owned()),
    };
    let report = mmonboard_bench::run(options, |line| eprintln!("{line}"))
        .await
        .map_err(|error| Failure::Bench(error.to_string()))?;
    if as_json {
        print_json(&report.to_json())?;
    } else {
        out_part!("{}", report.to_table());
    }
    Ok(exit::OK)
}

/// Resolves on Ctrl-C or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

/// The webhook secrets, from the environment only (never flags: those show in process lists).
pub(crate) fn webhook_config_from_env() -> Result<Option<mmonboard_server::WebhookConfig>, String> {
    let read = |name: &str| {
        std::env::var(name)
            .ok()
            .filter(|value| !value.trim().is_empty())
    };
    match (read("META_APP_SECRET"), read("META_WEBHOOK_VERIFY_TOKEN")) {
        (Some(app_secret), Some(verify_token)) => Ok(Some(mmonboard_server::WebhookConfig {
            app_secret,
            verify_token,
        })),
        (None, None) => Ok(None),
        (Some(_), None) => Err("META_APP_SECRET is set but META_WEBHOOK_VERIFY_TOKEN is not: Meta's webhooks need both".into()),
        (None, Some(_)) => Err("META_WEBHOOK_VERIFY_TOKEN is set but META_APP_SECRET is not: Meta's webhooks need both".into()),
    }
}

async fn bind(listen: std::net::SocketAddr) -> Result<tokio::net::TcpListener, Failure> {
    tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| Failure::Listen {
            address: listen,
            source,
        })
}

/// What `serve` is told about credentials, TLS and the metrics listener.
struct ServeAccess {
    access: mmonboard_server::AccessOptions,
    tls: Option<mmonboard_server::TlsFiles>,
    metrics_listen: Option<std::net::SocketAddr>,
    snapshot_every: u64,
    log_format: crate::logging::LogFormat,
    checkpoints: Option<mmonboard_server::CheckpointSetup>,
    relay: Option<mmonboard_relay::RelayOptions>,
    /// The OTLP collector traces go to (feature `otel`).
    #[cfg(feature = "otel")]
    otlp_endpoint: Option<String>,
}

async fn serve(
    database: &str,
    listen: std::net::SocketAddr,
    meta_base_url: Option<&str>,
    meta_api_version: &str,
    serve_access: ServeAccess,
) -> Result<u8, Failure> {
    let webhook = match webhook_config_from_env() {
        Ok(webhook) => webhook,
        Err(message) => return invalid_input(&message),
    };
    if let Some(Err(message)) = serve_access.relay.as_ref().map(|relay| relay.validate()) {
        return invalid_input(&message);
    }
    let process = match meta_base_url {
        None => None,
        Some(base_url) => {
            let config = match mmonboard_meta::GatewayConfig::from_env(base_url, meta_api_version) {
                Ok(config) => config,
                Err(error) => return invalid_input(&error.to_string()),
            };
            let gateway = mmonboard_meta::HttpGateway::new(config)
                .map_err(|error| Failure::Meta(error.to_string()))?;
            Some(mmonboard_server::ProcessSetup {
                gateway: std::sync::Arc::new(gateway),
                config: mmonboard_process::ProcessConfig::default(),
                options: mmonboard_process::ProcessOptions::default(),
            })
        }
    };
    // Held until `serve` returns: dropping it exports the last spans.
    #[cfg(feature = "otel")]
    let _traces = match crate::logging::init_with_traces(
        serve_access.log_format,
        serve_access.otlp_endpoint.as_deref(),
    ) {
        Ok(traces) => traces,
        Err(message) => return invalid_input(&message),
    };
    #[cfg(not(feature = "otel"))]
    crate::logging::init(serve_access.log_format);
    // The log must open for writing (migrated, writable), and someone must be able to sign in, before
    // anything says it is served.
    open(database).await?.close().await;
    if matches!(serve_access.access.mode, mmonboard_server::AuthMode::Tokens) {
        let tokens = mmonboard_access::TokenStore::open(database).await?;
        let usable = tokens.has_usable_token(chrono::Utc::now()).await;
        tokens.close().await;
        if !usable? {
            return Err(mmonboard_server::ServerError::NoTokens.into());
        }
    }
    let listener = bind(listen).await?;
    let metrics_listener = match serve_access.metrics_listen {
        Some(address) => Some(bind(address).await?),
        None => None,
    };
    let scheme = if serve_access.tls.is_some() {
        "https"
    } else {
        "http"
    };
    if let Ok(address) = listener.local_addr() {
        crate::logging::say(
            serve_access.log_format,
            format_args!(
                "mmonboard serving {scheme}://{address} on {}",
                mmonboard_eventlog::redact_database_url(database)
            ),
        );
    }
    if let Some(address) = metrics_listener
        .as_ref()
        .and_then(|listener| listener.local_addr().ok())
    {
        crate::logging::say(
            serve_access.log_format,
            format_args!("  /metrics without credentials on http://{address}"),
        );
    }
    if matches!(
        serve_access.access.mode,
        mmonboard_server::AuthMode::InsecureNoAuth
    ) {
        crate::logging::say(
            serve_access.log_format,
            format_args!(
                "  WARNING: --insecure-no-auth: no credentials are checked; anyone reaching the port may read and write"
            ),
        );
    }
    let meta = if process.is_some() {
        "driving onboardings through Meta"
    } else {
        "without a process manager (no --meta-base-url)"
    };
    let hooks = if webhook.is_some() {
        "Meta webhooks at /webhooks/meta"
    } else {
        "no webhooks (META_APP_SECRET unset)"
    };
    crate::logging::say(serve_access.log_format, format_args!("  {meta}; {hooks}"));
    if let Some(relay) = &serve_access.relay {
        crate::logging::say(
            serve_access.log_format,
            format_args!(
                "  relaying every event to the JetStream stream {} on {}",
                relay.stream, relay.nats_url
            ),
        );
    }
    mmonboard_server::run_with(
        listener,
        database.to_owned(),
        SystemClock,
        mmonboard_server::ServeOptions {
            webhook,
            process,
            access: serve_access.access,
            tls: serve_access.tls,
            metrics_listener,
            snapshot_every: serve_access.snapshot_every,
            checkpoints: serve_access.checkpoints,
            relay: serve_access.relay,
        },
        shutdown_signal(),
    )
    .await?;
    Ok(exit::OK)
}

const PROJECTION_NAMES: [&str; 4] = ["read_models", "status", "ad_accounts", "templates"];

async fn meta_sim(
    listen: std::net::SocketAddr,
    files: &[std::path::PathBuf],
    webhook_url: Option<&str>,
    time_factor: u32,
    log_format: crate::logging::LogFormat,
) -> Result<u8, Failure> {
    let mut scenarios = Vec::with_capacity(files.len());
    for file in files {
        match Scenario::from_file(file) {
            Ok(scenario) => scenarios.push(scenario),
            Err(error) => return invalid_input(&error.to_string()),
        }
    }
    let webhook_url = match webhook_url.map(url::Url::parse).transpose() {
        Ok(url) => url,
        Err(error) => return invalid_input(&format!("--webhook-url is not a URL: {error}")),
    };
    let read = |name: &str| {
        std::env::var(name)
            .ok()
            .filter(|value| !value.trim().is_empty())
    };
    let Some(access_token) = read("META_ACCESS_TOKEN") else {
        return invalid_input(
            "set META_ACCESS_TOKEN: the simulator accepts Graph API requests carrying that token",
        );
    };
    let Some(app_secret) = read("META_APP_SECRET") else {
        return invalid_input("set META_APP_SECRET: the simulator signs its webhooks with it");
    };
    let clock: std::sync::Arc<dyn Clock> = if time_factor > 1 {
        std::sync::Arc::new(mmonboard_app::AcceleratedClock::starting_at(
            chrono::Utc::now(),
            time_factor,
        ))
    } else {
        std::sync::Arc::new(SystemClock)
    };
    let config = mmonboard_metasim::SimConfig {
        webhook_url,
        ..mmonboard_metasim::SimConfig::new(access_token, app_secret)
    };
    let simulator = match mmonboard_metasim::Simulator::new(scenarios, clock, config) {
        Ok(simulator) => simulator,
        Err(error) => return invalid_input(&error.to_string()),
    };
    crate::logging::init(log_format);
    let listener = bind(listen).await?;
    if let Ok(address) = listener.local_addr() {
        crate::logging::say(
            log_format,
            format_args!(
                "mmonboard meta-sim serving http://{address} ({} scenario(s), time x{time_factor})",
                files.len()
            ),
        );
    }
    simulator
        .serve(listener, shutdown_signal())
        .await
        .map_err(|source| Failure::Listen {
            address: listen,
            source,
        })?;
    Ok(exit::OK)
}

async fn rebuild(database: &str, name: Option<&str>) -> Result<u8, Failure> {
    if let Some(name) = name
        && !PROJECTION_NAMES.contains(&name)
    {
        return invalid_input(&format!(
            "unknown projection {name:?}; known: {}",
            PROJECTION_NAMES.join(", ")
        ));
    }
    let store = std::sync::Arc::new(open(database).await?);
    let read_models = mmonboard_projections::ReadModels::open(database).await?;
    let mut projector = mmonboard_projections::Projector::new(
        std::sync::Arc::clone(&store),
        read_models.clone(),
        mmonboard_projections::ProjectorOptions::default(),
    );
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let started = std::time::Instant::now();
    let projected = projector
        .rebuild(|position, head| {
            if terminal && head > 0 {
                let done = (position * 40 / head) as usize;
                eprint!(
                    "\r[{}{}] {:>3}% {position}/{head} events",
                    "#".repeat(done),
                    " ".repeat(40 - done),
                    position * 100 / head
                );
            }
        })
        .await?;
    if terminal {
        eprintln!();
    }
    let seconds = started.elapsed().as_secs_f64();
    out!(
        "rebuilt read_models (status, ad_accounts, templates): {projected} events in {seconds:.2} s ({:.0} events/s)",
        projected as f64 / seconds.max(1e-9)
    );
    drop(projector);
    read_models.close().await;
    if let Ok(store) = std::sync::Arc::try_unwrap(store) {
        store.close().await;
    }
    Ok(exit::OK)
}

async fn projection_status(database: &str, as_json: bool) -> Result<u8, Failure> {
    let store = open(database).await?;
    let read_models = mmonboard_projections::ReadModels::open(database).await?;
    let head = store.head_position().await?;
    let checkpoint = read_models
        .checkpoint(mmonboard_projections::STATUS_PROJECTION)
        .await?;
    let lag = head.saturating_sub(checkpoint);
    if as_json {
        print_json(
            &json!({ "projections": [{ "name": mmonboard_projections::STATUS_PROJECTION, "head": head, "checkpoint": checkpoint, "lag": lag }] }),
        )?;
    } else {
        out!(
            "{:<14} {:>10} {:>10} {:>8}",
            "projection",
            "head",
            "checkpoint",
            "lag"
        );
        out!(
            "{:<14} {head:>10} {checkpoint:>10} {lag:>8}",
            mmonboard_projections::STATUS_PROJECTION
        );
    }
    read_models.close().await;
    store.close().await;
    Ok(exit::OK)
}
