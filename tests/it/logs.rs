//! `serve --log-format json`: every line on standard error is one JSON object, the request lines carry the
//! request id (the caller's `X-Request-Id`, returned in the answer) and the portfolio and command ids.

use std::io::BufRead;
use std::time::Duration;

use serde_json::Value;

use crate::support::Workspace;

/// Lines of the child's standard error, read on a thread of their own as they come.
pub(crate) fn read_lines(stderr: std::process::ChildStderr) -> std::sync::mpsc::Receiver<String> {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { return };
            if sender.send(line).is_err() {
                return;
            }
        }
    });
    receiver
}

pub(crate) fn json_line(line: &str) -> Value {
    let value: Value = serde_json::from_str(line)
        .unwrap_or_else(|error| panic!("not one JSON object ({error}): {line:?}"));
    assert!(value.is_object(), "not an object: {line}");
    value
}

#[tokio::test(flavor = "multi_thread")]
async fn json_logs_are_one_object_a_line_with_the_request_and_command_ids() {
    let workspace = Workspace::new();
    let mut child = workspace.spawn(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--insecure-no-auth",
            "--log-format",
            "json",
        ],
        "",
    );
    let lines = read_lines(child.stderr.take().expect("stderr"));
    let mut seen = Vec::new();
    // The address the server took: from its "listening" line.
    let address = loop {
        let line = lines
            .recv_timeout(Duration::from_secs(60))
            .expect("the server logs that it listens before the deadline");
        let value = json_line(&line);
        seen.push(value.clone());
        if value["fields"]["message"] == "mmonboard listening" {
            break value["fields"]["address"]
                .as_str()
                .expect("the address")
                .to_owned();
        }
    };
    let client = reqwest::Client::new();
    let answer = client
        .post(format!("http://{address}/v1/portfolios/123/commands"))
        .header("content-type", "application/json")
        .header("x-request-id", "test-request-7")
        .body(r#"{"type": "start_onboarding"}"#)
        .send()
        .await
        .expect("an answer");
    assert_eq!(answer.status(), 201);
    assert_eq!(
        answer
            .headers()
            .get("x-request-id")
            .and_then(|value| value.to_str().ok()),
        Some("test-request-7"),
        "the caller's request id comes back"
    );
    let command_id = answer.json::<Value>().await.expect("JSON")["command_id"]
        .as_str()
        .expect("a command id")
        .to_owned();
    let generated = client
        .get(format!("http://{address}/healthz"))
        .send()
        .await
        .expect("an answer");
    let generated = generated
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
        .expect("a request id is generated when the caller sends none");
    assert!(uuid::Uuid::parse_str(&generated).is_ok(), "{generated}");

    let stopped = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(stopped.success());
    let status = child.wait().expect("the server exits");
    assert!(status.success(), "{status}");
    seen.extend(lines.iter().map(|line| json_line(&line)));

    let request_line = seen
        .iter()
        .find(|line| {
            line["span"]["request_id"] == "test-request-7"
                && line["fields"]["message"] == "finished processing request"
        })
        .unwrap_or_else(|| panic!("the command's request line: {seen:#?}"));
    assert_eq!(request_line["level"], "INFO");
    assert_eq!(request_line["fields"]["status"], 201);
    assert_eq!(request_line["span"]["portfolio_id"], "123");
    assert_eq!(request_line["span"]["command_id"], command_id.as_str());
    assert_eq!(
        request_line["span"]["route"],
        "/v1/portfolios/{portfolio_id}/commands"
    );
    assert!(
        seen.iter()
            .any(|line| line["span"]["request_id"] == generated.as_str()),
        "the generated id is logged too: {seen:#?}"
    );
}
