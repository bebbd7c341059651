//! The command-line contract.

use crate::support::{PORTFOLIO, Workspace, eligibility_command, finish, up_to_terms};

#[test]
fn an_accepted_command_prints_its_events_and_exits_0() {
    let workspace = Workspace::new();
    let output = workspace.accept(PORTFOLIO, r#"{"type":"start_onboarding"}"#);
    assert_eq!(output["outcome"], "accepted");
    assert_eq!(output["phase"], "checking_eligibility");
    assert_eq!(output["version"], 1);
    let event = &output["events"][0];
    assert_eq!(event["type"], "onboarding_started");
    assert_eq!(event["global_position"], 1);
    assert_eq!(event["stream_version"], 1);
    assert_eq!(event["data"]["portfolio_id"], PORTFOLIO);
    assert_eq!(event["metadata"]["actor"], "cli");
    assert_eq!(event["hash"].as_str().map(str::len), Some(64));
}

#[test]
fn the_command_can_come_from_a_file() {
    let workspace = Workspace::new();
    let file = workspace.database_path().with_file_name("command.json");
    std::fs::write(&file, r#"{"type":"start_onboarding"}"#).expect("command file written");
    let run = workspace.run(
        &[
            "exec",
            "--portfolio",
            PORTFOLIO,
            "--command-file",
            file.to_str().expect("utf-8"),
        ],
        "",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["events"][0]["type"], "onboarding_started");
}

#[test]
fn a_refused_command_exits_3_with_the_reason_and_appends_nothing() {
    let workspace = Workspace::new();
    up_to_terms(&workspace);
    let before = workspace.event_count();
    let run = workspace.exec(
        PORTFOLIO,
        r#"{"type":"accept_terms","accepted_by":"3002","role":"EMPLOYEE","terms_version":"2025-07"}"#,
    );
    assert_eq!(
        run.code, 3,
        "stdout: {}\nstderr: {}",
        run.stdout, run.stderr
    );
    assert!(
        run.stderr
            .contains("terms can only be accepted by a portfolio admin"),
        "stderr: {}",
        run.stderr
    );
    assert!(
        run.stderr.starts_with("refused in state terms_pending: "),
        "said once: {}",
        run.stderr
    );
    let body = run.json();
    assert_eq!(body["outcome"], "refused");
    assert_eq!(body["code"], "terms_require_admin");
    assert_eq!(body["state"], "terms_pending");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|message| message.contains("portfolio admin"))
    );
    assert_eq!(workspace.event_count(), before);
}

#[test]
fn malformed_json_exits_2_and_does_not_create_the_database() {
    let workspace = Workspace::new();
    let run = workspace.exec(PORTFOLIO, r#"{"type": "start_onboarding""#);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("invalid input"),
        "stderr: {}",
        run.stderr
    );
    assert_eq!(run.json()["code"], "invalid_input");
    assert!(
        !workspace.database_path().exists(),
        "invalid input must not touch the database"
    );
}

#[test]
fn bad_input_exits_2_naming_what_was_wrong_and_leaves_the_log_unchanged() {
    let workspace = Workspace::new();
    workspace.accept(PORTFOLIO, r#"{"type":"start_onboarding"}"#);
    let before = workspace.event_count();
    let cases = [
        (
            r#"{"type":"launch_rockets"}"#,
            "unknown variant `launch_rockets`",
        ),
        (
            r#"{"type":"request_obo_migration","waba_id":"12x4"}"#,
            "invalid WABA id \"12x4\"",
        ),
        (
            r#"{"type":"submit_business_info","business_name":"Acme","website":"ftp://acme"}"#,
            "invalid website",
        ),
        (
            r#"{"type":"review_permissions"}"#,
            "missing field `reviewed_by`",
        ),
        (
            r#"{"type":"start_onboarding","extra":1}"#,
            "unknown field `extra`",
        ),
        (r#"{"facts":{}}"#, "missing field `type`"),
        ("", "no command"),
    ];
    for (input, expected) in cases {
        let run = workspace.exec(PORTFOLIO, input);
        assert_eq!(run.code, 2, "input {input:?}: stderr {}", run.stderr);
        assert!(
            run.stderr.contains(expected),
            "input {input:?}: expected {expected:?} in stderr {}",
            run.stderr
        );
    }
    assert_eq!(workspace.event_count(), before);
}

#[test]
fn an_invalid_portfolio_id_exits_2() {
    let workspace = Workspace::new();
    let run = workspace.run(
        &["exec", "--portfolio", "acme"],
        r#"{"type":"start_onboarding"}"#,
    );
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("invalid portfolio id \"acme\""),
        "stderr: {}",
        run.stderr
    );
    assert!(!workspace.database_path().exists());
}

#[test]
fn the_same_command_id_twice_returns_the_original_outcome_and_appends_nothing() {
    let workspace = Workspace::new();
    let command_id = "0192f0c1-0000-7000-8000-000000000001";
    let args = ["exec", "--portfolio", PORTFOLIO, "--command-id", command_id];
    let first = workspace.run(&args, r#"{"type":"start_onboarding"}"#);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let second = workspace.run(&args, r#"{"type":"start_onboarding"}"#);
    assert_eq!(
        second.code, 0,
        "a retry is not a refusal: {}",
        second.stderr
    );
    let (first, second) = (first.json(), second.json());
    assert_eq!(first["already_applied"], false);
    assert_eq!(second["already_applied"], true);
    assert_eq!(first["events"], second["events"]);
    assert_eq!(workspace.event_count(), 1);
}

#[test]
fn state_shows_now_and_as_of_a_past_time() {
    let workspace = Workspace::new();
    let started = workspace.accept(PORTFOLIO, r#"{"type":"start_onboarding"}"#);
    let started_at = started["events"][0]["recorded_at"]
        .as_str()
        .expect("recorded_at")
        .to_owned();
    workspace.accept(PORTFOLIO, &eligibility_command());

    let now = workspace.run(&["state", "--portfolio", PORTFOLIO, "--json"], "");
    assert_eq!(now.code, 0, "{}", now.stderr);
    let now = now.json();
    assert_eq!(now["phase"], "reviewing_permissions");
    assert_eq!(now["version"], 2);
    assert_eq!(now["stage"], "preparing");

    let then = workspace.run(
        &[
            "state",
            "--portfolio",
            PORTFOLIO,
            "--as-of",
            &started_at,
            "--json",
        ],
        "",
    );
    assert_eq!(then.code, 0, "{}", then.stderr);
    assert_eq!(then.json()["phase"], "checking_eligibility");
    assert_eq!(then.json()["version"], 1);

    let text = workspace.run(&["state", "--portfolio", PORTFOLIO], "");
    assert!(
        text.stdout.contains("reviewing_permissions"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains("WABA 1001: eligible"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains("(stage preparing)"),
        "the stage as the API names it: {}",
        text.stdout
    );

    let bad_time = workspace.run(
        &["state", "--portfolio", PORTFOLIO, "--as-of", "yesterday"],
        "",
    );
    assert_eq!(bad_time.code, 2);
    assert!(bad_time.stderr.contains("RFC 3339"), "{}", bad_time.stderr);
}

#[test]
fn a_portfolio_without_history_is_not_started() {
    let workspace = Workspace::new();
    let other = workspace.run(
        &["exec", "--portfolio", "41"],
        r#"{"type":"start_onboarding"}"#,
    );
    assert_eq!(other.code, 0, "{}", other.stderr);
    let run = workspace.run(&["state", "--portfolio", "42", "--json"], "");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["phase"], "not_started");
    assert_eq!(run.json()["version"], 0);
}

#[test]
fn history_lists_every_event_with_its_transition() {
    let workspace = Workspace::new();
    up_to_terms(&workspace);
    let run = workspace.run(&["history", "--portfolio", PORTFOLIO, "--json"], "");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let history = run.json();
    let entries = history.as_array().expect("an array");
    assert_eq!(entries.len(), 4);
    assert_eq!(entries[0]["type"], "onboarding_started");
    assert_eq!(entries[0]["transition"]["from"], "not_started");
    assert_eq!(entries[0]["transition"]["to"], "checking_eligibility");
    assert_eq!(entries[3]["transition"]["to"], "terms_pending");
    for (index, entry) in entries.iter().enumerate() {
        assert_eq!(entry["stream_version"], index as u64 + 1);
        assert_eq!(entry["metadata"]["actor"], "cli");
    }
    let text = workspace.run(&["history", "--portfolio", PORTFOLIO], "");
    assert!(
        text.stdout
            .contains("entering_business_info -> terms_pending"),
        "{}",
        text.stdout
    );
}

/// Run `mmonboard --database <tmp> args...` with its standard output a pipe whose reader has already gone
/// (as `… | head` after `head` exits): every write fails with a broken pipe, deterministically.
fn run_into_a_closed_pipe(workspace: &Workspace, args: &[&str]) -> (Option<i32>, String) {
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_mmonboard"))
        .arg("--database")
        .arg(workspace.database_url())
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("mmonboard runs");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_reader_that_goes_away_ends_the_output_quietly_with_the_commands_own_exit_code() {
    let workspace = Workspace::new();
    up_to_terms(&workspace);
    let (code, stderr) = run_into_a_closed_pipe(&workspace, &["history", "--portfolio", PORTFOLIO]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.is_empty(), "nothing to say on stderr: {stderr}");

    // A refused command still says so through its exit code, and appends nothing.
    let before = workspace.event_count();
    let command = workspace.path("refused.json");
    std::fs::write(
        &command,
        r#"{"type":"accept_terms","accepted_by":"3002","role":"EMPLOYEE","terms_version":"2025-07"}"#,
    )
    .expect("command file written");
    let command = command.display().to_string();
    let (code, stderr) = run_into_a_closed_pipe(
        &workspace,
        &["exec", "--portfolio", PORTFOLIO, "--command-file", &command],
    );
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("portfolio admin"), "{stderr}");
    assert_eq!(workspace.event_count(), before);
}

#[test]
fn verify_passes_on_an_intact_log_and_names_the_first_tampered_position() {
    let workspace = Workspace::new();
    up_to_terms(&workspace);
    let intact = workspace.run(&["verify"], "");
    assert_eq!(intact.code, 0, "{}", intact.stderr);
    assert!(
        intact.stdout.contains("log intact: 4 events in 1 stream,"),
        "{}",
        intact.stdout
    );

    tamper(&workspace, 3);
    let broken = workspace.run(&["verify"], "");
    assert_eq!(
        broken.code, 4,
        "stdout: {}\nstderr: {}",
        broken.stdout, broken.stderr
    );
    assert!(
        broken.stderr.contains("global position 3"),
        "stderr: {}",
        broken.stderr
    );
    let json = workspace.run(&["verify", "--json"], "");
    assert_eq!(json.code, 4);
    assert_eq!(json.json()["first_break"]["global_position"], 3);
    assert_eq!(json.json()["intact"], false);
}

/// Change one stored payload behind the log's back, as an attacker with the file would.
fn tamper(workspace: &Workspace, position: i64) {
    use sqlx::Connection;
    let url = workspace.database_url();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let mut connection = sqlx::SqliteConnection::connect(&url).await.expect("the database opens");
        let triggers: Vec<(String,)> = sqlx::query_as("SELECT name FROM sqlite_master WHERE type = 'trigger'")
            .fetch_all(&mut connection)
            .await
            .expect("triggers listed");
        for (trigger,) in triggers {
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP TRIGGER \"{trigger}\"")))
                .execute(&mut connection)
                .await
                .expect("trigger dropped");
        }
        let changed = sqlx::query("UPDATE events SET payload = replace(payload, '3001', '3009') WHERE global_position = ?")
            .bind(position)
            .execute(&mut connection)
            .await
            .expect("row updated");
        assert_eq!(changed.rows_affected(), 1);
    });
}

/// Who may record a fact Meta tells both by webhook and when asked.
const FROM_META: &[&str] = &["meta-webhook", "process-manager"];

/// One event line of the demo: `[+hh:mm:ss] scenario  event  actor  transition`.
struct DemoRow<'a> {
    scenario: &'a str,
    event: &'a str,
    actor: &'a str,
    /// Where the actor starts on the line: the same on every line when the columns are aligned.
    actor_column: usize,
}

fn demo_rows(stdout: &str) -> impl Iterator<Item = DemoRow<'_>> {
    stdout
        .lines()
        .filter(|line| line.starts_with("[+"))
        .filter_map(|line| {
            let mut words = line.split_whitespace().skip(1);
            let scenario = words.next()?;
            let event = words.next()?;
            let actor = words.next()?;
            let after_event = line.find(event)? + event.len();
            let actor_column = after_event + line[after_event..].find(actor)?;
            Some(DemoRow {
                scenario,
                event,
                actor,
                actor_column,
            })
        })
}

#[test]
fn the_demo_onboards_the_samples_through_the_simulator_as_domain_md_predicts() {
    let workspace = Workspace::new();
    // At half the demo's default speed: the restriction sample is only recorded if the flow reaches the
    // end of its sync before Meta lifts it (50 simulated minutes after the signature), and a busy machine's
    // second is that many fewer simulated minutes.
    let run = workspace.run(&["demo", "--time-factor", "300"], "");
    assert_eq!(
        run.code, 0,
        "stdout: {}\nstderr: {}",
        run.stdout, run.stderr
    );
    assert!(
        run.stdout.contains("7 of 7 portfolios ended as predicted"),
        "{}",
        run.stdout
    );
    // Every step of the flow came from Meta (the process manager or a webhook), none typed by hand. Where
    // Meta tells a fact both ways, either may record it: the process manager reads the terms 10 simulated
    // minutes after the request when the webhook is late, and finds a restriction that came before the WABA
    // was onboarded as the sync completes. Time runs 300 times faster, so which comes first depends on how
    // busy the machine is.
    const MANAGER: &[&str] = &["process-manager"];
    for (event, recorders) in [
        ("eligibility_checked", MANAGER),
        ("obo_waba_migrated", MANAGER),
        ("terms_requested", MANAGER),
        ("terms_signed", FROM_META),
        ("connected", MANAGER),
        ("sync_completed", MANAGER),
        ("waba_restricted", FROM_META),
        ("waba_reinstated", MANAGER),
    ] {
        let actors: Vec<&str> = demo_rows(&run.stdout)
            .filter(|row| row.event == event)
            .map(|row| row.actor)
            .collect();
        assert!(
            !actors.is_empty() && actors.iter().all(|actor| recorders.contains(actor)),
            "{event} recorded by {actors:?} in:\n{}",
            run.stdout
        );
    }
    // Once the portfolio is live, only the webhook tells of a restriction (a portfolio's rows come in its
    // history's order).
    let rows: Vec<DemoRow<'_>> = demo_rows(&run.stdout)
        .filter(|row| row.scenario == "restriction_after_enablement")
        .collect();
    let live_at = rows.iter().position(|row| row.event == "sync_completed");
    for (index, row) in rows.iter().enumerate() {
        if row.event == "waba_restricted" && live_at.is_some_and(|live| index > live) {
            assert_eq!(row.actor, "meta-webhook", "{}", run.stdout);
        }
    }
    // The columns stay in line, the longest event name included.
    let actor_columns: std::collections::BTreeSet<usize> =
        demo_rows(&run.stdout).map(|row| row.actor_column).collect();
    assert_eq!(actor_columns.len(), 1, "{}", run.stdout);
    assert!(
        demo_rows(&run.stdout).any(|row| row.event == "business_information_submitted"),
        "{}",
        run.stdout
    );
    assert!(
        workspace.event_count() >= 50,
        "{} events",
        workspace.event_count()
    );
    let verify = workspace.run(&["verify"], "");
    assert_eq!(verify.code, 0, "{}", verify.stdout);

    // Run again on the same log: the portfolios are onboarded once; their recorded history is shown.
    let events = workspace.event_count();
    let again = workspace.run(&["demo"], "");
    assert_eq!(again.code, 0, "{}\n{}", again.stdout, again.stderr);
    assert!(
        again
            .stdout
            .contains("this log already holds 7 of these portfolios from an earlier run"),
        "{}",
        again.stdout
    );
    assert!(
        again
            .stdout
            .contains("7 of 7 portfolios ended as predicted"),
        "{}",
        again.stdout
    );
    // The recorded history is shown, recorders and all (the terms came by webhook or by the terms poll).
    assert!(
        demo_rows(&again.stdout)
            .any(|row| row.event == "terms_signed" && FROM_META.contains(&row.actor)),
        "the recorded history is shown: {}",
        again.stdout
    );
    assert_eq!(workspace.event_count(), events, "nothing appended again");
    // The demo's history ends before the real time it finished at, so the database goes on with the wall
    // clock: a command now is accepted on a sample portfolio, not refused as earlier than its last event.
    let change = r#"{"type":"change_template","waba_id":"4110000001","template_id":"4999000001","name":"after_the_demo","language":"en_US","category":"MARKETING"}"#;
    let later = workspace.exec("4100000001", change);
    assert_eq!(later.code, 0, "{}\n{}", later.stdout, later.stderr);
}

#[test]
fn many_processes_writing_one_database_at_once_lose_nothing_and_never_see_a_lock_error() {
    let workspace = Workspace::new();
    up_to_terms(&workspace);
    let resubmit = r#"{"type":"submit_business_info","business_name":"Acme Two","website":"https://acme.example"}"#;
    let mut children = Vec::new();
    for round in 0..3 {
        for _ in 0..6 {
            // Same portfolio from many processes: appends conflict and are retried, none is lost.
            children.push(workspace.spawn(&["exec", "--portfolio", PORTFOLIO], resubmit));
        }
        for other in 0..2 {
            let portfolio = format!("77{round}{other}");
            children.push(workspace.spawn(
                &["exec", "--portfolio", &portfolio],
                r#"{"type":"start_onboarding"}"#,
            ));
        }
    }
    for child in children {
        let run = finish(child);
        assert_eq!(
            run.code, 0,
            "stdout: {}\nstderr: {}",
            run.stdout, run.stderr
        );
        assert!(!run.stderr.contains("locked"), "{}", run.stderr);
    }
    assert_eq!(workspace.event_count(), 4 + 18 + 6);
    let history = workspace
        .run(&["history", "--portfolio", PORTFOLIO, "--json"], "")
        .json();
    let versions: Vec<u64> = history
        .as_array()
        .expect("an array")
        .iter()
        .filter_map(|entry| entry["stream_version"].as_u64())
        .collect();
    assert_eq!(versions, (1..=22).collect::<Vec<_>>());
}

#[test]
fn the_read_models_are_rebuilt_from_the_log_and_report_their_lag() {
    let workspace = Workspace::new();
    up_to_terms(&workspace);
    let before = workspace.run(&["projections", "status", "--json"], "");
    assert_eq!(before.code, 0, "{}", before.stderr);
    assert_eq!(
        before.json()["projections"][0]["lag"],
        4,
        "nothing projected yet"
    );
    let rebuilt = workspace.run(&["projections", "rebuild"], "");
    assert_eq!(rebuilt.code, 0, "{}", rebuilt.stderr);
    assert!(
        rebuilt.stdout.contains("rebuilt read_models"),
        "{}",
        rebuilt.stdout
    );
    let after = workspace
        .run(&["projections", "status", "--json"], "")
        .json();
    assert_eq!(
        (
            after["projections"][0]["checkpoint"].as_u64(),
            after["projections"][0]["lag"].as_u64()
        ),
        (Some(4), Some(0))
    );
    let unknown = workspace.run(&["projections", "rebuild", "nonsense"], "");
    assert_eq!(unknown.code, 2);
    assert!(
        unknown.stderr.contains("unknown projection \"nonsense\""),
        "{}",
        unknown.stderr
    );
}

#[test]
fn snapshots_are_rebuilt_and_cleared_without_changing_any_state() {
    let workspace = Workspace::new();
    up_to_terms(&workspace);
    let before = workspace.run(&["state", "--portfolio", PORTFOLIO, "--json"], "");
    assert_eq!(before.code, 0, "{}", before.stderr);
    let rebuilt = workspace.run(&["snapshots", "rebuild", "--every", "4", "--json"], "");
    assert_eq!(rebuilt.code, 0, "{}", rebuilt.stderr);
    assert_eq!(rebuilt.json()["events_folded"], 4);
    assert_eq!(rebuilt.json()["snapshots_stored"], 1);
    let longer = workspace.run(&["snapshots", "rebuild", "--every", "5", "--json"], "");
    assert_eq!(longer.json()["snapshots_stored"], 0, "{}", longer.stdout);
    // Snapshots are a cache: the state read after a rebuild or a clear is the same.
    let after = workspace.run(&["state", "--portfolio", PORTFOLIO, "--json"], "");
    assert_eq!(after.json(), before.json());
    let cleared = workspace.run(&["snapshots", "clear", "--json"], "");
    assert_eq!(cleared.code, 0, "{}", cleared.stderr);
    assert_eq!(cleared.json()["snapshots_deleted"], 1);
    assert_eq!(
        workspace
            .run(&["state", "--portfolio", PORTFOLIO, "--json"], "")
            .json(),
        before.json()
    );
    let zero = workspace.run(&["snapshots", "rebuild", "--every", "0"], "");
    assert_eq!(zero.code, 2, "{}", zero.stderr);
    assert!(zero.stderr.contains("--every"), "{}", zero.stderr);
}

#[test]
fn meta_settings_that_cannot_work_are_refused_before_anything_starts() {
    let workspace = Workspace::new();
    // Webhooks need both secrets.
    let run = workspace.run_with_env(
        &["serve", "--listen", "127.0.0.1:0"],
        &[("META_APP_SECRET", "s")],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("META_WEBHOOK_VERIFY_TOKEN"),
        "{}",
        run.stderr
    );
    // The process manager needs a token for Meta, and a URL it can use.
    let run = workspace.run_with_env(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--meta-base-url",
            "http://127.0.0.1:9",
        ],
        &[],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("META_ACCESS_TOKEN"), "{}", run.stderr);
    let run = workspace.run_with_env(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--meta-base-url",
            "graph.facebook.com",
        ],
        &[("META_ACCESS_TOKEN", "t")],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("graph.facebook.com"), "{}", run.stderr);
    assert!(!workspace.database_path().exists(), "nothing was opened");

    // A scenario that is not valid names the file and what is wrong with it.
    let scenario = workspace.path("bad.json");
    std::fs::write(
        &scenario,
        r#"{"name": "bad", "expect": {"phase": "live"}, "business": {"id": "12ab", "name": "X", "country": "BR", "wabas": []}}"#,
    )
    .expect("written");
    let scenario = scenario.display().to_string();
    for args in [
        vec![
            "meta-sim",
            "--listen",
            "127.0.0.1:0",
            "--scenario",
            scenario.as_str(),
        ],
        vec!["demo", "--scenario", scenario.as_str()],
    ] {
        let run = workspace.run_with_env(
            &args,
            &[("META_ACCESS_TOKEN", "t"), ("META_APP_SECRET", "s")],
        );
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains("bad.json"), "{}", run.stderr);
        assert!(run.stderr.contains("12ab"), "{}", run.stderr);
    }
    let run = workspace.run_with_env(&["demo", "--scenario", "missing.json"], &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("missing.json"), "{}", run.stderr);
    assert!(!workspace.database_path().exists(), "nothing was opened");
}

#[test]
fn every_option_and_the_environment_each_command_reads_are_in_its_help() {
    let workspace = Workspace::new();
    for (command, mentions) in [
        ("exec", &["--portfolio <PORTFOLIO>  "][..]),
        ("state", &["--portfolio <PORTFOLIO>  ", "--json  "][..]),
        ("history", &["--portfolio <PORTFOLIO>  ", "--json  "][..]),
        ("verify", &["--json  "][..]),
        (
            "serve",
            &[
                "META_ACCESS_TOKEN",
                "META_APP_SECRET",
                "META_WEBHOOK_VERIFY_TOKEN",
                "RUST_LOG",
            ][..],
        ),
        (
            "meta-sim",
            &["META_ACCESS_TOKEN", "META_APP_SECRET", "RUST_LOG"][..],
        ),
    ] {
        let run = workspace.run(&[command, "--help"], "");
        assert_eq!(run.code, 0, "{}", run.stderr);
        for mention in mentions {
            let name = mention.trim_end();
            let lines: Vec<&str> = run.stdout.lines().collect();
            let index = lines
                .iter()
                .position(|line| line.trim_start().starts_with(name))
                .unwrap_or_else(|| panic!("{command} --help names {name}:\n{}", run.stdout));
            if mention.ends_with("  ") {
                // Its help text follows on its line, or on the next one when clap lays help out long.
                let same_line = lines[index].trim_start()[name.len()..].trim();
                let next_line = lines.get(index + 1).map_or("", |line| line.trim());
                assert!(
                    !same_line.is_empty() || !(next_line.is_empty() || next_line.starts_with('-')),
                    "{command} --help explains {name}:\n{}",
                    run.stdout
                );
            }
        }
    }
}

/// A mistyped path is not an empty log: the read-only commands say there is none, and create nothing.
#[test]
fn reading_commands_on_a_missing_database_say_so_and_create_nothing() {
    let workspace = Workspace::new();
    for args in [
        &["verify"][..],
        &["state", "--portfolio", "42"][..],
        &["history", "--portfolio", "42"][..],
    ] {
        let run = workspace.run(args, "");
        assert_eq!(run.code, 1, "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.contains("there is no event log at")
                && run.stderr.contains("does not exist"),
            "{args:?}: {}",
            run.stderr
        );
        assert!(
            !workspace.database_path().exists(),
            "{args:?} created the database"
        );
    }
}

/// An auditor's copy on a read-only filesystem: `verify`, `state` and `history` read it; `serve` refuses to
/// start, saying why, before it claims to serve anything. Mounting needs root (CI runs as root); elsewhere the
/// test is skipped with a notice, except under `CI=true`.
#[test]
fn a_read_only_copy_can_be_verified_and_read_but_not_served() {
    let workspace = Workspace::new();
    up_to_terms(&workspace);
    let mount_point = workspace.path("read-only");
    std::fs::create_dir(&mount_point).expect("the mount point");
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=8m", "tmpfs"])
        .arg(&mount_point)
        .status()
        .is_ok_and(|status| status.success());
    if !mounted {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI=true but a tmpfs cannot be mounted here (the read-only copy test needs root)"
        );
        eprintln!("notice: skipping the read-only copy test: cannot mount a tmpfs (needs root)");
        return;
    }
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.0)
                .status();
        }
    }
    let _unmount = Unmount(mount_point.clone());
    // The copy an auditor takes: the database file alone (its WAL checkpointed into it by a clean close).
    std::fs::copy(workspace.database_path(), mount_point.join("log.db")).expect("the copy");
    let remounted = std::process::Command::new("mount")
        .args(["-o", "remount,ro"])
        .arg(&mount_point)
        .status()
        .expect("mount runs");
    assert!(remounted.success(), "the copy's filesystem is read-only");
    let copy = format!("sqlite://{}", mount_point.join("log.db").display());
    let on_copy = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_mmonboard"))
            .arg("--database")
            .arg(&copy)
            .args(args)
            .env_remove("MMONBOARD_DATABASE_URL")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("the mmonboard binary runs");
        crate::support::Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    };

    let verify = on_copy(&["verify"]);
    assert_eq!(verify.code, 0, "{}", verify.stderr);
    assert!(
        verify.stdout.contains("log intact: 4 events"),
        "{}",
        verify.stdout
    );
    let state = on_copy(&["state", "--portfolio", crate::support::PORTFOLIO, "--json"]);
    assert_eq!(state.code, 0, "{}", state.stderr);
    assert_eq!(state.json()["phase"], "terms_pending");
    let history = on_copy(&["history", "--portfolio", crate::support::PORTFOLIO]);
    assert_eq!(history.code, 0, "{}", history.stderr);

    let serve = on_copy(&["serve", "--listen", "127.0.0.1:0", "--insecure-no-auth"]);
    assert_eq!(serve.code, 1, "{}", serve.stderr);
    assert!(serve.stderr.contains("read-only"), "{}", serve.stderr);
    assert!(!serve.stderr.contains("serving"), "{}", serve.stderr);
}

/// `serve` with no token to sign in with refuses to start, and says how to create the first, before it
/// claims to serve anything.
#[test]
fn serve_without_any_token_refuses_before_it_claims_to_serve() {
    let workspace = Workspace::new();
    let run = workspace.run(&["serve", "--listen", "127.0.0.1:0"], "");
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("mmonboard tokens create"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("serving"), "{}", run.stderr);
}

/// The completion scripts come from the parser's own definitions: each names every subcommand, and bash
/// loads its script and registers it for `mmonboard`.
#[test]
fn completions_for_bash_zsh_and_fish_name_every_subcommand() {
    let workspace = Workspace::new();
    for shell in ["bash", "zsh", "fish"] {
        let run = workspace.run(&["completions", shell], "");
        assert_eq!(run.code, 0, "{shell}: {}", run.stderr);
        for subcommand in ["exec", "serve", "meta-sim", "tokens", "completions", "man"] {
            assert!(
                run.stdout.contains(subcommand),
                "{shell} lacks {subcommand}"
            );
        }
    }
    let script = workspace.path("mmonboard.bash");
    std::fs::write(&script, workspace.run(&["completions", "bash"], "").stdout).expect("written");
    let loaded = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {} && complete -p mmonboard",
            script.display()
        ))
        .output()
        .expect("bash runs");
    assert!(
        String::from_utf8_lossy(&loaded.stdout).contains("-F _mmonboard mmonboard"),
        "{loaded:?}"
    );
    let unknown = workspace.run(&["completions", "tcsh"], "");
    assert_eq!(unknown.code, 2, "{}", unknown.stderr);
    assert!(unknown.stderr.contains("bash"), "{}", unknown.stderr);
}

/// `man` prints the page, or writes one per command into a directory that must exist.
#[test]
fn the_man_pages_are_generated_from_the_same_definitions() {
    let workspace = Workspace::new();
    let page = workspace.run(&["man"], "");
    assert_eq!(page.code, 0, "{}", page.stderr);
    assert!(page.stdout.contains(".TH mmonboard 1"), "{}", page.stdout);
    assert!(page.stdout.contains("log\\-format"), "{}", page.stdout);
    let dir = workspace.path("man1");
    std::fs::create_dir(&dir).expect("a directory");
    let written = workspace.run(&["man", "--dir", dir.to_str().expect("a path")], "");
    assert_eq!(written.code, 0, "{}", written.stderr);
    for name in [
        "mmonboard.1",
        "mmonboard-serve.1",
        "mmonboard-tokens-create.1",
    ] {
        let text = std::fs::read_to_string(dir.join(name))
            .unwrap_or_else(|error| panic!("{name}: {error}"));
        assert!(text.contains(".TH"), "{name}");
    }
    let missing = workspace.run(&["man", "--dir", "/no/such/directory"], "");
    assert_eq!(missing.code, 2, "{}", missing.stderr);
    assert!(
        missing.stderr.contains("/no/such/directory"),
        "{}",
        missing.stderr
    );
}
