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
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let _ = tracing_subscriber::registry()
        .with(filter())
        .with(log_lines(format))
        .try_init();
}

fn filter() -> tracing_subscriber::EnvFilter {
    tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_FILTER))
}

/// The layer writing log lines to standard error in `format`.
fn log_lines<S>(format: LogFormat) -> Box<dyn tracing_subscriber::Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    use tracing_subscriber::Layer;
    let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    match format {
        LogFormat::Text => layer
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .boxed(),
        LogFormat::Json => layer
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .boxed(),
    }
}

/// OpenTelemetry traces (feature `otel`): the spans of HTTP requests, the commands they decide, the appends
/// that record them, and the process manager's steps with their Meta calls, exported in batches over
/// OTLP/HTTP (protobuf) to `<endpoint>/v1/traces`, as `OTEL_EXPORTER_OTLP_ENDPOINT` means it. Dropping the
/// value flushes and stops the exporter.
#[cfg(feature = "otel")]
pub struct Traces {
    provider: opentelemetry_sdk::trace::SdkTracerProvider,
}

#[cfg(feature = "otel")]
impl Drop for Traces {
    fn drop(&mut self) {
        if let Err(error) = self.provider.shutdown() {
            eprintln!("warning: the last traces were not exported: {error}");
        }
    }
}

/// The service name traces carry (`service.name`).
#[cfg(feature = "otel")]
pub const SERVICE_NAME: &str = "mmonboard";

/// Installs the global subscriber with log lines in `format` and, given an OTLP endpoint, the trace
/// exporter. A bad endpoint is an error naming it, before anything runs.
#[cfg(feature = "otel")]
pub fn init_with_traces(
    format: LogFormat,
    endpoint: Option<&str>,
) -> Result<Option<Traces>, String> {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_otlp::WithExportConfig as _;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let Some(endpoint) = endpoint else {
        init(format);
        return Ok(None);
    };
    let traces_url = traces_url(endpoint)?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(traces_url.as_str())
        .build()
        .map_err(|error| format!("the OTLP endpoint {endpoint:?}: {error}"))?;
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(SERVICE_NAME)
                .build(),
        )
        .build();
    let tracer = provider.tracer(SERVICE_NAME);
    let _ = tracing_subscriber::registry()
        .with(filter())
        .with(log_lines(format))
        .with(tracing_opentelemetry::layer().with_tracer(tracer))
        .try_init();
    Ok(Some(Traces { provider }))
}

/// `--otlp-endpoint`'s check, at parse time: an http(s) URL of a collector.
#[cfg(feature = "otel")]
pub fn parse_otlp_endpoint(endpoint: &str) -> Result<String, String> {
    traces_url(endpoint).map(|_| endpoint.to_owned())
}

/// `<endpoint>/v1/traces` for an `http://` or `https://` base URL.
#[cfg(feature = "otel")]
fn traces_url(endpoint: &str) -> Result<url::Url, String> {
    let base = url::Url::parse(endpoint).map_err(|error| {
        format!(
            "the OTLP endpoint {endpoint:?} is not a URL ({error}): give e.g. http://127.0.0.1:4318"
        )
    })?;
    if !matches!(base.scheme(), "http" | "https") || base.host_str().is_none() {
        return Err(format!(
            "the OTLP endpoint {endpoint:?} must be an http:// or https:// URL of a collector (OTLP/HTTP), e.g. \
             http://127.0.0.1:4318"
        ));
    }
    let path = format!("{}/v1/traces", base.path().trim_end_matches('/'));
    let mut traces = base;
    traces.set_path(&path);
    Ok(traces)
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

#[cfg(all(test, feature = "otel"))]
mod tests {
    use super::*;

    #[test]
    fn the_traces_path_is_appended_to_the_collector_url() {
        for (endpoint, expected) in [
            ("http://127.0.0.1:4318", "http://127.0.0.1:4318/v1/traces"),
            ("http://collector:4318/", "http://collector:4318/v1/traces"),
            (
                "https://otel.example/otlp",
                "https://otel.example/otlp/v1/traces",
            ),
        ] {
            assert_eq!(traces_url(endpoint).expect(endpoint).as_str(), expected);
        }
        for bad in ["", "collector:4318", "grpc://collector:4317", "http://"] {
            let error = traces_url(bad).expect_err(bad);
            assert!(error.contains("OTLP endpoint"), "{error}");
        }
    }
}
