//! The subcommands. Each returns its exit code; input is fully checked before the database is opened, so
//! invalid input never touches the log.

use std::io::Read;
use std::path::Path;

use mmonboard_app::demo::{self, DemoStep};
use mmonboard_app::{AppError, Clock, CommandContext, ManualClock, OnboardingService, SystemClock};
use mmonboard_domain::ids::PortfolioId;
use mmonboard_domain::{DomainConfig, OnboardingCommand};
use mmonboard_eventlog::{EventStore, SqliteEventStore, SqliteOptions};
use serde_json::json;

use mmonboard_app::json::{accepted_json, history_entry_json};

use crate::output::{invalid_input_json, refusal_json, state_text};
use crate::{Cli, Command, ProjectionsAction, exit};

/// Run one invocation; returns the process exit code.
pub async fn run(cli: Cli) -> u8 {
    let database = cli.database;
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
        Command::Verify { json } => verify(&database, json).await,
        Command::Demo => run_demo(&database).await,
        Command::Bench { json, quick } => bench(json, quick).await,
        Command::Serve { listen } => serve(&database, listen).await,
        Command::Projections {
            action: ProjectionsAction::Rebuild { name },
        } => rebuild(&database, name.as_deref()).await,
        Command::Projections {
            action: ProjectionsAction::Status { json },
        } => projection_status(&database, json).await,
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error}");
            exit::FAILURE
        }
    }
}

/// Failures of the infrastructure: exit 1.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("cannot open the event log at {url}: {source}")]
    Open {
        url: String,
        source: mmonboard_eventlog::StoreError,
    },
    #[error(transparent)]
    App(#[from] AppError),
    #[error(transparent)]
    Store(#[from] mmonboard_eventlog::StoreError),
    #[error("cannot write the output: {0}")]
    Output(#[from] serde_json::Error),
    #[error("benchmark failed: {0}")]
    Bench(String),
    #[error("the demo script is invalid: {0}")]
    Demo(mmonboard_domain::InvalidValue),
    #[error(transparent)]
    Server(#[from] mmonboard_server::ServerError),
    #[error(transparent)]
    Projection(#[from] mmonboard_projections::ProjectionError),
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: std::net::SocketAddr,
        source: std::io::Error,
    },
}

async fn open(url: &str) -> Result<SqliteEventStore, Failure> {
    SqliteEventStore::open(url, SqliteOptions::default())
        .await
        .map_err(|source| Failure::Open {
            url: url.to_owned(),
            source,
        })
}

fn service(store: SqliteEventStore) -> OnboardingService<SqliteEventStore, SystemClock> {
    OnboardingService::new(store, SystemClock, DomainConfig::default())
}

fn print_json(value: &serde_json::Value) -> Result<(), Failure> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

fn invalid_input(message: &str) -> Result<u8, Failure> {
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
            eprintln!("refused: {refusal}");
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
    let service = service(open(database).await?);
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
            println!(
                "as of {}",
                as_of.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            );
        }
        print!("{}", state_text(&aggregate));
    }
    service.into_store().close().await;
    Ok(exit::OK)
}

async fn history(database: &str, portfolio_id: &PortfolioId, as_json: bool) -> Result<u8, Failure> {
    let service = service(open(database).await?);
    let entries = service.history(portfolio_id).await?;
    if as_json {
        print_json(&json!(
            entries.iter().map(history_entry_json).collect::<Vec<_>>()
        ))?;
    } else if entries.is_empty() {
        println!("portfolio {portfolio_id} has no recorded events");
    } else {
        println!(
            "{:>8} {:>4}  {:<27} {:<16} {:<31} transition",
            "position", "ver", "recorded at", "actor", "event"
        );
        for entry in &entries {
            let recorded = &entry.logged.recorded;
            let transition = if entry.phase_before == entry.phase_after {
                format!("(stays {})", entry.phase_after)
            } else {
                format!("{} -> {}", entry.phase_before, entry.phase_after)
            };
            println!(
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
fn counted(count: u64, noun: &str) -> String {
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

async fn verify(database: &str, as_json: bool) -> Result<u8, Failure> {
    let store = open(database).await?;
    let report = store.verify().await?;
    store.close().await;
    let head = report
        .head
        .map(|(position, hash)| json!({ "global_position": position, "hash": hex::encode(hash) }));
    let code = match &report.first_break {
        None => exit::OK,
        Some(_) => exit::LOG_BROKEN,
    };
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
        }))?;
    }
    match &report.first_break {
        None => {
            if !as_json {
                let head_text = report
                    .head
                    .map(|(position, hash)| {
                        format!(
                            ", head at position {position} with hash {}",
                            hex::encode(hash)
                        )
                    })
                    .unwrap_or_default();
                println!(
                    "log intact: {} in {}{head_text}",
                    counted(report.events_checked, "event"),
                    counted(report.streams_checked, "stream")
                );
            }
        }
        Some(found) => {
            eprintln!(
                "log broken at global position {}: {}",
                found.global_position, found.reason
            );
        }
    }
    Ok(code)
}

async fn run_demo(database: &str) -> Result<u8, Failure> {
    let steps = demo::script().map_err(Failure::Demo)?;
    let store = open(database).await?;
    let clock = ManualClock::starting_at(chrono::Utc::now());
    let start = clock.now();
    let service = OnboardingService::new(store, clock.clone(), DomainConfig::default());
    let portfolio_id = demo::fresh_portfolio_id();
    println!("mmonboard demo: portfolio {portfolio_id} on {database}");
    println!(
        "(time is simulated: the 15-minute windows pass instantly; [+mm:ss] is time since the start)\n"
    );
    let mut unexpected = 0;
    for (
        index,
        DemoStep {
            narration,
            advance,
            command,
            expect_refusal,
        },
    ) in steps.iter().enumerate()
    {
        clock.advance(*advance);
        let elapsed = clock.now() - start;
        let stamp = format!(
            "[+{:02}:{:02}]",
            elapsed.num_minutes(),
            elapsed.num_seconds() % 60
        );
        println!("{stamp} {:>2}. {narration}", index + 1);
        let context = CommandContext::new("demo");
        match service.execute(&portfolio_id, command, &context).await? {
            Ok(outcome) => {
                let names: Vec<&str> = outcome
                    .events
                    .iter()
                    .map(|logged| logged.recorded.event_type.as_str())
                    .collect();
                println!(
                    "           {} -> now {} (version {})",
                    names.join(", "),
                    outcome.phase,
                    outcome.version
                );
                if *expect_refusal {
                    unexpected += 1;
                    println!("           (expected a refusal here)");
                }
            }
            Err(refusal) => {
                println!("           refused [{}]: {}", refusal.code(), refusal.rule);
                if !expect_refusal {
                    unexpected += 1;
                }
            }
        }
    }
    let aggregate = service.load(&portfolio_id).await?;
    let report = service.store().verify().await?;
    println!(
        "\nportfolio {portfolio_id} is {} after {} events.",
        aggregate.phase(),
        aggregate.version()
    );
    match &report.first_break {
        None => println!(
            "hash chain intact over all {} events of the log.",
            report.events_checked
        ),
        Some(found) => println!(
            "hash chain broken at position {}: {}",
            found.global_position, found.reason
        ),
    }
    let database_flag = if database == crate::DEFAULT_DATABASE_URL {
        String::new()
    } else {
        format!(" --database {database}")
    };
    println!("\nLook closer:");
    println!("  mmonboard{database_flag} state --portfolio {portfolio_id}");
    println!("  mmonboard{database_flag} history --portfolio {portfolio_id}");
    println!("  mmonboard{database_flag} verify");
    service.into_store().close().await;
    if unexpected > 0 || report.first_break.is_some() {
        eprintln!("error: the demo did not go as scripted ({unexpected} unexpected outcomes)");
        return Ok(exit::FAILURE);
    }
    Ok(exit::OK)
}

async fn bench(as_json: bool, quick: bool) -> Result<u8, Failure> {
    let options = mmonboard_bench::BenchOptions {
        scale: if quick { 0.1 } else { 1.0 },
    };
    let report = mmonboard_bench::run(options, |line| eprintln!("{line}"))
        .await
        .map_err(|error| Failure::Bench(error.to_string()))?;
    if as_json {
        print_json(&report.to_json())?;
    } else {
        print!("{}", report.to_table());
    }
    Ok(exit::OK)
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
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

async fn serve(database: &str, listen: std::net::SocketAddr) -> Result<u8, Failure> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tower_http=warn,sqlx=warn"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .try_init();
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| Failure::Listen {
            address: listen,
            source,
        })?;
    if let Ok(address) = listener.local_addr() {
        eprintln!("mmonboard serving http://{address} on {database}");
    }
    mmonboard_server::run(
        listener,
        database.to_owned(),
        SystemClock,
        shutdown_signal(),
    )
    .await?;
    Ok(exit::OK)
}

const PROJECTION_NAMES: [&str; 4] = ["read_models", "status", "ad_accounts", "templates"];

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
    println!(
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
        println!(
            "{:<14} {:>10} {:>10} {:>8}",
            "projection", "head", "checkpoint", "lag"
        );
        println!(
            "{:<14} {head:>10} {checkpoint:>10} {lag:>8}",
            mmonboard_projections::STATUS_PROJECTION
        );
    }
    read_models.close().await;
    store.close().await;
    Ok(exit::OK)
}
