//! `/metrics` scraped and parsed as a Prometheus server would, by a conformant OpenMetrics parser (every
//! family declared with its type, names and labels well formed, histograms complete, `# EOF` at the end),
//! and its counts compared with what the test did.

use openmetrics_parser::{MetricsExposition, OpenMetricsType, OpenMetricsValue};

use crate::support::{App, eligibility, spawn_app, start};

type Exposition = MetricsExposition<OpenMetricsType, OpenMetricsValue>;

async fn scrape(app: &App) -> (String, Exposition) {
    let response = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .expect("metrics answer");
    assert_eq!(response.status(), 200);
    assert!(
        response
            .headers()
            .get("content-type")
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with("application/openmetrics-text")),
        "{:?}",
        response.headers()
    );
    let text = response.text().await.expect("metrics text");
    // The parser refuses a `# UNIT` line on a histogram, which the OpenMetrics specification allows for every
    // type (and Prometheus reads): those lines are checked here and left out of what it parses.
    let (units, rest): (Vec<&str>, Vec<&str>) =
        text.lines().partition(|line| line.starts_with("# UNIT "));
    for unit in units {
        let (family, unit) = unit["# UNIT ".len()..]
            .split_once(' ')
            .expect("a unit line");
        assert!(family.ends_with(&format!("_{unit}")), "{family} in {unit}");
    }
    let parsed =
        openmetrics_parser::openmetrics::parse_openmetrics(&format!("{}\n", rest.join("\n")))
            .unwrap_or_else(|error| panic!("not valid OpenMetrics ({error:?}):\n{text}"));
    (text, parsed)
}

/// The value of the family's sample with these labels (a histogram's count of observations).
fn value(scrape: &Exposition, family: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let family = scrape.families.get(family)?;
    family
        .iter_samples()
        .find(|sample| {
            let set = sample.get_labelset().expect("a label set");
            labels
                .iter()
                .all(|(name, value)| set.get_label_value(name) == Some(*value))
        })
        .map(|sample| match &sample.value {
            OpenMetricsValue::Counter(counter) => counter.value.as_f64(),
            OpenMetricsValue::Gauge(number) | OpenMetricsValue::Unknown(number) => number.as_f64(),
            OpenMetricsValue::Histogram(histogram) => {
                histogram.count.map_or(f64::NAN, |count| count as f64)
            }
            OpenMetricsValue::Info => 1.0,
            other => panic!("unexpected {other:?}"),
        })
}

fn family_type(scrape: &Exposition, family: &str) -> Option<OpenMetricsType> {
    scrape.families.get(family).map(|family| family.family_type)
}

#[tokio::test]
async fn metrics_follow_the_commands_requests_and_appends() {
    let app = spawn_app().await;
    app.accept("123", start()).await;
    app.accept("123", eligibility()).await;
    let (status, _) = app.post("123", &start().to_string(), None).await;
    assert_eq!(status, 409, "starting twice is refused");
    let (status, _) = app
        .post("123", "{\"type\": \"no_such_command\"}", None)
        .await;
    assert_eq!(status, 400, "not a command");
    let (status, _) = app.get("/no/such/route").await;
    assert_eq!(status, 404);

    let (text, scrape) = scrape(&app).await;
    let commands = |outcome| {
        value(
            &scrape,
            "mmonboard_commands",
            &[("source", "api"), ("outcome", outcome)],
        )
    };
    assert_eq!(commands("accepted"), Some(2.0), "{text}");
    assert_eq!(commands("refused"), Some(1.0), "{text}");
    assert_eq!(commands("invalid"), Some(1.0), "{text}");
    let events = value(&scrape, "mmonboard_events_appended", &[]).expect("events");
    assert!(events >= 2.0, "{text}");
    assert_eq!(
        value(&scrape, "mmonboard_log_head_position", &[]),
        Some(events),
        "{text}"
    );
    // Two accepted commands: two appends, each in a group commit of at least one request.
    assert_eq!(
        value(&scrape, "mmonboard_append_duration_seconds", &[]),
        Some(2.0),
        "{text}"
    );
    let batches = value(&scrape, "mmonboard_append_batch_requests", &[]).expect("batches");
    assert!((1.0..=2.0).contains(&batches), "{text}");
    assert_eq!(
        value(&scrape, "mmonboard_append_batch_duration_seconds", &[]),
        Some(batches),
        "{text}"
    );
    assert_eq!(
        value(
            &scrape,
            "mmonboard_http_request_duration_seconds",
            &[
                ("method", "POST"),
                ("route", "/v1/portfolios/{portfolio_id}/commands"),
                ("status_class", "2xx"),
            ],
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        value(
            &scrape,
            "mmonboard_http_request_duration_seconds",
            &[
                ("method", "POST"),
                ("route", "/v1/portfolios/{portfolio_id}/commands"),
                ("status_class", "4xx"),
            ],
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        value(
            &scrape,
            "mmonboard_http_request_duration_seconds",
            &[("route", "unmatched"), ("status_class", "4xx")],
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(
            &scrape,
            "mmonboard_build",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        Some(1.0),
        "{text}"
    );
    for gauge in [
        "mmonboard_projection_lag_events",
        "mmonboard_event_stream_subscribers",
    ] {
        assert!(value(&scrape, gauge, &[]).is_some(), "{gauge}: {text}");
    }
    assert_eq!(
        value(
            &scrape,
            "mmonboard_meta_webhooks",
            &[("outcome", "refused")]
        ),
        Some(0.0),
        "{text}"
    );
    for (family, expected) in [
        ("mmonboard_commands", OpenMetricsType::Counter),
        (
            "mmonboard_http_request_duration_seconds",
            OpenMetricsType::Histogram,
        ),
        (
            "mmonboard_append_duration_seconds",
            OpenMetricsType::Histogram,
        ),
        ("mmonboard_log_head_position", OpenMetricsType::Gauge),
        ("mmonboard_build", OpenMetricsType::Info),
    ] {
        assert_eq!(
            family_type(&scrape, family),
            Some(expected),
            "{family}: {text}"
        );
    }
    assert!(
        text.contains("\n# UNIT mmonboard_http_request_duration_seconds seconds\n"),
        "{text}"
    );
    // No process manager here: its gauge is absent rather than a misleading 0.
    assert!(!text.contains("mmonboard_process_manager_active"), "{text}");
    app.shutdown().await;
}
