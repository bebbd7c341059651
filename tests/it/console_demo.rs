//! `mmonboard demo --keep-serving`: the flow runs, then the server (API and web console) keeps serving with the
//! console's address and a token printed, until the process is interrupted; then it stops cleanly.

use std::io::{BufRead, BufReader};
use std::sync::mpsc;
use std::time::Duration;

use crate::support::Workspace;

const DEADLINE: Duration = Duration::from_secs(120);

#[test]
fn demo_keep_serving_leaves_the_console_up_with_a_token_to_sign_in_until_interrupted() {
    let workspace = Workspace::new();
    let scenario = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/happy_path.json");
    let mut child = workspace.spawn(&["demo", "--keep-serving", "--scenario", scenario], "");
    let stdout = child.stdout.take().expect("stdout");
    let (lines, received) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let mut printed = Vec::new();
    let mut console = None;
    while !printed
        .iter()
        .any(|line: &String| line.starts_with("still serving"))
    {
        let line = received.recv_timeout(DEADLINE).unwrap_or_else(|_| {
            panic!(
                "the demo did not keep serving; it printed:\n{}",
                printed.join("\n")
            )
        });
        if let Some(rest) = line.trim().strip_prefix("web console: ") {
            console = rest.split_whitespace().next().map(str::to_owned);
        }
        printed.push(line);
    }
    let console = console.expect("the console's address was printed");
    let (address, token) = console
        .split_once("/sign-in#token=")
        .expect("an address with a token");
    assert!(token.starts_with("mmo_"), "{token}");
    assert!(
        printed
            .iter()
            .any(|line| line.contains("/portfolios/4900000001/enable")),
        "the walkthrough portfolio is offered: {printed:?}"
    );

    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("a client");
        let signed_in = client
            .post(format!("{address}/sign-in"))
            .header("origin", address)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("token={token}"))
            .send()
            .await
            .expect("the console answers");
        assert_eq!(signed_in.status(), 303);
        let cookie = signed_in
            .headers()
            .get("set-cookie")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(';').next())
            .expect("the session cookie")
            .to_owned();
        let page = |path: &str| {
            client
                .get(format!("{address}{path}"))
                .header("cookie", &cookie)
                .send()
        };
        let portfolios = page("/").await.expect("the portfolios page");
        assert_eq!(portfolios.status(), 200);
        let html = portfolios.text().await.expect("HTML");
        assert!(html.contains("4100000001"), "the sample is listed");
        assert!(html.contains(r#"data-phase="live""#), "and live");
        let walkthrough = page("/portfolios/4900000001/enable")
            .await
            .expect("the walkthrough portfolio's page")
            .text()
            .await
            .expect("HTML");
        assert!(walkthrough.contains(r#"id="enable""#), "an Enable button");
    });

    let interrupted = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(interrupted.success());
    let status = child.wait().expect("the demo ends");
    reader.join().expect("the reader ends");
    let rest: Vec<String> = received.try_iter().collect();
    assert_eq!(status.code(), Some(0), "{}", rest.join("\n"));
    assert!(
        rest.iter().any(|line| line.contains("the log verifies")),
        "{rest:?}"
    );
}
