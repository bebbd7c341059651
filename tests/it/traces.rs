//! `serve --otlp-endpoint`: OpenTelemetry traces reach an OTLP/HTTP collector, one trace per request, with
//! the command it decided and the append that recorded it as its descendants. The collector is a route of
//! the test's own that decodes what the exporter posts with the OTLP protobuf types.

use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

use crate::logs::{json_line, read_lines};
use crate::support::Workspace;

/// A collector on a free port; every span it is sent arrives on the receiver.
async fn collector() -> (String, tokio::sync::mpsc::UnboundedReceiver<Span>) {
    let (spans, received) = tokio::sync::mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::body::Bytes| {
            let spans = spans.clone();
            async move {
                let request = ExportTraceServiceRequest::decode(body)
                    .expect("the exporter posts an OTLP protobuf request");
                for resource in request.resource_spans {
                    for scope in resource.scope_spans {
                        for span in scope.spans {
                            let _ = spans.send(span);
                        }
                    }
                }
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port for the collector");
    let address = listener.local_addr().expect("its address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{address}"), received)
}

/// The span of the request that posted the command (not of another request such as a probe).
fn is_the_command_request(span: &Span) -> bool {
    span.name == "request"
        && span.attributes.iter().any(|attribute| {
            attribute.key == "route"
                && format!("{:?}", attribute.value)
                    .contains("/v1/portfolios/{portfolio_id}/commands")
        })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_its_command_and_its_append_are_one_trace() {
    let (endpoint, mut received) = collector().await;
    let workspace = Workspace::new();
    let mut child = workspace.spawn(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--insecure-no-auth",
            "--log-format",
            "json",
            "--otlp-endpoint",
            &endpoint,
        ],
        "",
    );
    let lines = read_lines(child.stderr.take().expect("stderr"));
    let address = loop {
        let line = lines
            .recv_timeout(Duration::from_secs(60))
            .expect("the server logs that it listens before the deadline");
        let value = json_line(&line);
        if value["fields"]["message"] == "mmonboard listening" {
            break value["fields"]["address"]
                .as_str()
                .expect("the address")
                .to_owned();
        }
    };
    let answer = reqwest::Client::new()
        .post(format!("http://{address}/v1/portfolios/123/commands"))
        .header("content-type", "application/json")
        .body(r#"{"type": "start_onboarding"}"#)
        .send()
        .await
        .expect("an answer");
    assert_eq!(answer.status(), 201);
    // At shutdown the exporter sends what it holds.
    let stopped = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(stopped.success());
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("the wait")
        .expect("the server exits");
    assert!(status.success(), "{status}");

    let mut spans = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let find = |spans: &[Span], name: &str| spans.iter().find(|span| span.name == name).cloned();
    while find(&spans, "append").is_none()
        || find(&spans, "command").is_none()
        || !spans.iter().any(is_the_command_request)
    {
        match tokio::time::timeout_at(deadline, received.recv()).await {
            Ok(Some(span)) => spans.push(span),
            _ => panic!(
                "the collector did not get a request, a command and an append span: {:?}",
                spans.iter().map(|span| &span.name).collect::<Vec<_>>()
            ),
        }
    }
    let request = spans
        .iter()
        .find(|span| is_the_command_request(span))
        .expect("the request's span");
    let command = find(&spans, "command").expect("the command's span");
    let append = find(&spans, "append").expect("the append's span");
    assert_eq!(
        command.trace_id, request.trace_id,
        "the command is in the request's trace"
    );
    assert_eq!(
        append.trace_id, request.trace_id,
        "the append is in the request's trace"
    );
    assert_eq!(
        command.parent_span_id, request.span_id,
        "the request is the command's parent"
    );
    assert_eq!(
        append.parent_span_id, command.span_id,
        "the command is the append's parent"
    );
    let attribute = |span: &Span, key: &str| {
        span.attributes
            .iter()
            .find(|a| a.key == key)
            .and_then(|a| a.value.as_ref())
            .map(|value| format!("{value:?}"))
    };
    assert!(
        attribute(&command, "command").is_some_and(|value| value.contains("start_onboarding")),
        "{command:?}"
    );
    assert!(
        attribute(&command, "portfolio_id").is_some_and(|value| value.contains("123")),
        "{command:?}"
    );
    assert!(
        attribute(&append, "stream_id").is_some_and(|value| value.contains("portfolio-123")),
        "{append:?}"
    );
}

#[test]
fn a_bad_endpoint_is_refused_naming_it() {
    let workspace = Workspace::new();
    let run = workspace.run(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--insecure-no-auth",
            "--otlp-endpoint",
            "collector:4318",
        ],
        "",
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("OTLP endpoint"), "{}", run.stderr);
    assert!(run.stderr.contains("collector:4318"), "{}", run.stderr);
}
