//! `mmonboard demo`: the sample portfolios onboarded end to end through the Meta simulator, over real HTTP,
//! with accelerated time (`crate::flow` runs the simulator and the server).

use mmonboard_eventlog::EventStore;
use mmonboard_metasim::Scenario;

use super::{Failure, invalid_input, open};
use crate::exit;

/// The sample scenarios shipped with mmonboard (the files in `scenarios/`), for a demo from a fresh clone.
const SAMPLE_SCENARIOS: [(&str, &str); 7] = [
    (
        "happy_path",
        include_str!("../../../../scenarios/happy_path.json"),
    ),
    (
        "obo_waba",
        include_str!("../../../../scenarios/obo_waba.json"),
    ),
    (
        "unsupported_country",
        include_str!("../../../../scenarios/unsupported_country.json"),
    ),
    (
        "restricted_waba",
        include_str!("../../../../scenarios/restricted_waba.json"),
    ),
    (
        "business_app_number",
        include_str!("../../../../scenarios/business_app_number.json"),
    ),
    (
        "restriction_after_enablement",
        include_str!("../../../../scenarios/restriction_after_enablement.json"),
    ),
    (
        "duplicate_invitation",
        include_str!("../../../../scenarios/duplicate_invitation.json"),
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
/// event's time. (Every scenario's business id is a portfolio id, checked as its file was read: invalid
/// input opens nothing.)
async fn earlier_run(
    database: &str,
    scenarios: &[Scenario],
) -> Result<Vec<(String, chrono::DateTime<chrono::Utc>)>, Failure> {
    let store = open(database).await?;
    let mut earlier = Vec::new();
    for scenario in scenarios {
        let stream = mmonboard_app::codec::stream_id(&scenario.business.id);
        if let Some(first) = store.read_stream(&stream, 0).await?.first() {
            earlier.push((scenario.name.clone(), first.recorded_at));
        }
    }
    Ok(earlier)
}

/// The portfolio `demo --keep-serving` leaves for a person to walk through the console's enable flow.
const WALKTHROUGH_SCENARIO: &str = include_str!("../../../../scenarios/console_walkthrough.json");

pub(super) async fn run_demo(
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
    let earlier = earlier_run(database, &scenarios).await?;
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
