//! `HttpGateway` against a stub Graph API: Meta's error codes become typed kinds, reads are retried a bounded
//! number of times and only when asking again can help, and writes are sent once, never replayed: an unknown
//! outcome is settled by reading the object back.

use std::time::Duration;

use backon::BackoffBuilder;
use mmonboard_meta::{
    MetaError, MetaErrorKind, MetaGateway, OboIntentOutcome, RetryPolicy, TermsRequestOutcome,
};
use serde_json::json;

use crate::fixtures::{
    OBO_WABA, business, business_path, obo_intent_path, obo_waba, obo_waba_node, portfolio,
    shared_waba_node, terms_path, waba_path,
};
use crate::stub::{
    ATTEMPTS, Answer, HANG_TIMEOUT, Stub, gateway, graph_error, impatient_gateway, ok,
};

// ---------------------------------------------------------------------------------------------------------
// 1. Every error code DOMAIN.md names, and the others the gateway types.

/// `(HTTP status, Graph API code, kind, retryable)`.
const ERROR_TABLE: &[(u16, i64, MetaErrorKind, bool)] = &[
    // DOMAIN.md, "Templates and the mirrored ad account".
    (400, 131009, MetaErrorKind::NotSyncedYet, true),
    (400, 134101, MetaErrorKind::NotSyncedYet, true),
    (500, 134102, MetaErrorKind::NotOnboarded, true),
    (400, 100, MetaErrorKind::InvalidParameter, false),
    (400, 131055, MetaErrorKind::OnlyMarketingTemplates, false),
    (400, 134100, MetaErrorKind::OnlyMarketingTemplates, false),
    (400, 1752041, MetaErrorKind::AlreadyInvited, false),
    // The token, rate limits and Meta's own failures.
    (401, 190, MetaErrorKind::InvalidToken, false),
    (400, 4, MetaErrorKind::RateLimited, true),
    (403, 17, MetaErrorKind::RateLimited, true),
    (400, 32, MetaErrorKind::RateLimited, true),
    (400, 613, MetaErrorKind::RateLimited, true),
    (400, 80007, MetaErrorKind::RateLimited, true),
    (400, 130429, MetaErrorKind::RateLimited, true),
    (429, 999_999, MetaErrorKind::RateLimited, true),
    (500, 1, MetaErrorKind::Transient, true),
    (503, 2, MetaErrorKind::Transient, true),
    (502, 999_999, MetaErrorKind::Transient, true),
    (403, 10, MetaErrorKind::PermissionDenied, false),
    (403, 200, MetaErrorKind::PermissionDenied, false),
    (400, 999_999, MetaErrorKind::Other, false),
];

#[tokio::test]
async fn every_meta_error_code_maps_to_its_kind_and_retryability() {
    for &(status, code, kind, retryable) in ERROR_TABLE {
        let stub = Stub::start().await;
        stub.on("GET", &waba_path(OBO_WABA), [graph_error(status, code)]);
        let failure = gateway(&stub)
            .waba(&obo_waba())
            .await
            .expect_err("Meta refused");
        let MetaError::Graph {
            operation,
            status: seen_status,
            code: seen_code,
            subcode,
            message,
            fbtrace_id,
            kind: seen_kind,
        } = &failure
        else {
            panic!("{status}/{code}: not a Graph error: {failure:?}");
        };
        assert_eq!(
            (*seen_status, *seen_code, *seen_kind),
            (status, code, kind),
            "{failure}"
        );
        assert_eq!(operation, &format!("reading WABA {OBO_WABA}"));
        assert_eq!(message, &format!("(#{code}) stub error {code}"));
        assert_eq!(*subcode, Some(2_494_010));
        assert_eq!(fbtrace_id.as_deref(), Some(&*format!("Atrace{code}")));
        assert_eq!(failure.kind(), Some(kind));
        assert_eq!(kind.is_retryable(), retryable, "{code}: the kind");
        assert_eq!(failure.is_retryable(), retryable, "{code}: the error");
        assert_eq!(kind, MetaErrorKind::from_code(code, status));
        let shown = failure.to_string();
        assert!(
            shown.contains(&format!("HTTP {status}"))
                && shown.contains(&format!("error {code}"))
                && shown.contains(kind.describe()),
            "{shown}"
        );
        // A read is asked again only when that can help, and then exactly up to the attempts allowed.
        let expected = if retryable { ATTEMPTS as usize } else { 1 };
        assert_eq!(
            stub.count("GET", &waba_path(OBO_WABA)),
            expected,
            "{status}/{code}: {:?}",
            stub.seen()
        );
    }
}

#[test]
fn the_kind_depends_on_the_http_status_only_for_codes_it_does_not_know() {
    // A known code keeps its meaning whatever the status; an unknown one is read from the status.
    assert_eq!(
        MetaErrorKind::from_code(134102, 400),
        MetaErrorKind::NotOnboarded
    );
    assert_eq!(
        MetaErrorKind::from_code(100, 500),
        MetaErrorKind::InvalidParameter
    );
    assert_eq!(
        MetaErrorKind::from_code(190, 429),
        MetaErrorKind::InvalidToken
    );
    assert_eq!(
        MetaErrorKind::from_code(12345, 429),
        MetaErrorKind::RateLimited
    );
    assert_eq!(
        MetaErrorKind::from_code(12345, 599),
        MetaErrorKind::Transient
    );
    assert_eq!(MetaErrorKind::from_code(12345, 404), MetaErrorKind::Other);
}

// ---------------------------------------------------------------------------------------------------------
// 2. Reads: retried on 429, 5xx and timeouts, a bounded number of times; never on a 4xx.

#[tokio::test]
async fn a_read_is_retried_on_429_and_5xx_and_succeeds_when_meta_recovers() {
    let failures = [
        graph_error(429, 4),
        graph_error(429, 999_999),
        graph_error(400, 80007),
        graph_error(500, 1),
        graph_error(503, 2),
        graph_error(500, 134102),
        Answer::Text(502, "<html>Bad Gateway</html>"),
    ];
    for failure in failures {
        // Recovers on the last attempt allowed: every attempt is used, none more.
        let stub = Stub::start().await;
        let mut script = vec![failure.clone(); ATTEMPTS as usize - 1];
        script.push(ok(business("NOT_STARTED")));
        stub.on("GET", &business_path(), script);
        let snapshot = gateway(&stub)
            .business(&portfolio())
            .await
            .unwrap_or_else(|error| panic!("{failure:?}: the last attempt succeeds: {error}"));
        assert_eq!(snapshot.name, "Loja Aurora");
        assert_eq!(
            stub.count("GET", &business_path()),
            ATTEMPTS as usize,
            "{failure:?}"
        );

        // Recovers at once: one retry, and no request after the success.
        let stub = Stub::start().await;
        stub.on(
            "GET",
            &business_path(),
            [failure.clone(), ok(business("NOT_STARTED"))],
        );
        gateway(&stub)
            .business(&portfolio())
            .await
            .unwrap_or_else(|error| panic!("{failure:?}: the retry succeeds: {error}"));
        assert_eq!(stub.count("GET", &business_path()), 2, "{failure:?}");
    }
}

#[tokio::test]
async fn a_read_that_meta_never_answers_times_out_and_is_retried() {
    let stub = Stub::start().await;
    stub.on(
        "GET",
        &business_path(),
        [Answer::Hang, ok(business("REQUEST_SENT"))],
    );
    let snapshot = impatient_gateway(&stub, 2)
        .business(&portfolio())
        .await
        .expect("the second attempt is answered");
    assert_eq!(snapshot.terms_status.as_str(), "REQUEST_SENT");
    assert_eq!(stub.count("GET", &business_path()), 2);
}

#[tokio::test]
async fn a_read_gives_up_after_max_attempts_with_the_last_error() {
    // Three different failures: the error returned is the third one's.
    let stub = Stub::start().await;
    stub.on(
        "GET",
        &waba_path(OBO_WABA),
        [
            graph_error(503, 2),
            graph_error(500, 1),
            graph_error(429, 130429),
            ok(shared_waba_node()),
        ],
    );
    let failure = gateway(&stub)
        .waba(&obo_waba())
        .await
        .expect_err("gives up before Meta recovers");
    assert!(
        matches!(
            failure,
            MetaError::Graph {
                status: 429,
                code: 130429,
                kind: MetaErrorKind::RateLimited,
                ..
            }
        ),
        "{failure:?}"
    );
    assert!(failure.is_retryable(), "the caller may try again later");
    assert_eq!(stub.count("GET", &waba_path(OBO_WABA)), ATTEMPTS as usize);

    // A non-JSON 5xx every time: the last error is the unexpected answer, retryable.
    let stub = Stub::start().await;
    stub.on(
        "GET",
        &waba_path(OBO_WABA),
        [Answer::Text(502, "<html>Bad Gateway</html>")],
    );
    let failure = gateway(&stub)
        .waba(&obo_waba())
        .await
        .expect_err("gives up");
    assert!(
        matches!(&failure, MetaError::UnexpectedAnswer { status: 502, message, .. } if message.contains("Bad Gateway")),
        "{failure:?}"
    );
    assert!(failure.is_retryable());
    assert_eq!(stub.count("GET", &waba_path(OBO_WABA)), ATTEMPTS as usize);
}

#[tokio::test]
async fn a_read_that_always_hangs_gives_up_with_a_timeout() {
    let stub = Stub::start().await;
    stub.on("GET", &business_path(), [Answer::Hang]);
    let failure = impatient_gateway(&stub, 2)
        .business(&portfolio())
        .await
        .expect_err("gives up");
    match &failure {
        MetaError::Timeout {
            operation,
            timeout_ms,
        } => {
            assert_eq!(*timeout_ms, HANG_TIMEOUT.as_millis() as u64);
            assert!(operation.contains("4100000001"), "{operation}");
        }
        other => panic!("not a timeout: {other:?}"),
    }
    assert!(failure.is_retryable());
    assert_eq!(stub.count("GET", &business_path()), 2);
}

#[tokio::test]
async fn a_body_that_never_completes_is_a_timeout_too() {
    let (base, requests) = crate::stub::start_stalling_body().await;
    let failure = crate::stub::gateway_with(&base, HANG_TIMEOUT, 2)
        .business(&portfolio())
        .await
        .expect_err("the body never ends");
    assert!(matches!(failure, MetaError::Timeout { .. }), "{failure:?}");
    assert_eq!(*requests.lock().expect("the counter"), 2);
}

#[tokio::test]
async fn a_read_meta_cannot_be_reached_for_is_retried_then_a_transport_error() {
    let base = crate::stub::closed_base().await;
    let failure = crate::stub::gateway_with(&base, Duration::from_secs(2), ATTEMPTS)
        .business(&portfolio())
        .await
        .expect_err("nothing listens");
    assert!(
        matches!(&failure, MetaError::Transport { operation, .. } if operation.contains("4100000001")),
        "{failure:?}"
    );
    assert!(failure.is_retryable());
}

#[tokio::test]
async fn a_read_refused_with_a_4xx_is_asked_once() {
    for (status, code) in [
        (400, 100),
        (401, 190),
        (403, 10),
        (400, 131055),
        (400, 1752041),
    ] {
        let stub = Stub::start().await;
        stub.on(
            "GET",
            &business_path(),
            [graph_error(status, code), ok(business("NOT_STARTED"))],
        );
        let failure = gateway(&stub)
            .business(&portfolio())
            .await
            .expect_err("a refusal is final");
        assert_eq!(failure.kind(), Some(MetaErrorKind::from_code(code, status)));
        assert!(!failure.is_retryable(), "{code}");
        assert_eq!(stub.count("GET", &business_path()), 1, "{code}");
    }
    // A 4xx that is not even Meta's JSON: final too.
    let stub = Stub::start().await;
    stub.on(
        "GET",
        &business_path(),
        [Answer::Text(404, "Not Found"), ok(business("NOT_STARTED"))],
    );
    let failure = gateway(&stub)
        .business(&portfolio())
        .await
        .expect_err("a refusal is final");
    assert!(
        matches!(failure, MetaError::UnexpectedAnswer { status: 404, .. }),
        "{failure:?}"
    );
    assert!(!failure.is_retryable());
    assert_eq!(stub.count("GET", &business_path()), 1);
}

#[test]
fn the_backoff_doubles_from_the_initial_wait_up_to_the_cap_with_jitter_once_per_retry() {
    let policy = RetryPolicy {
        max_attempts: 6,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
    };
    // Each wait is the doubling schedule's, lengthened by a jitter of up to as much again.
    for _ in 0..100 {
        let waits: Vec<Duration> = policy.backoff().build().collect();
        assert_eq!(
            waits.len(),
            5,
            "one wait between each two of the 6 attempts"
        );
        for (wait, base) in waits.iter().zip([1, 2, 4, 5, 5]) {
            let base = Duration::from_millis(base);
            assert!(
                *wait >= base && *wait <= base * 2,
                "{waits:?}: {wait:?} is not within {base:?} and twice that"
            );
        }
    }
    let single = RetryPolicy {
        max_attempts: 1,
        ..policy
    };
    assert_eq!(single.backoff().build().count(), 0, "one attempt: no retry");
    let default = RetryPolicy::default();
    assert_eq!(default.max_attempts, 4);
    let waits: Vec<Duration> = default.backoff().build().collect();
    assert_eq!(waits.len(), 3);
    assert!(waits[0] >= Duration::from_millis(200) && waits[0] <= Duration::from_millis(400));
}

// ---------------------------------------------------------------------------------------------------------
// 3. Writes: one POST, whatever the answer; an unknown outcome is read back.

#[tokio::test]
async fn a_terms_request_answered_is_sent_once_and_nothing_is_read_back() {
    let stub = Stub::start().await;
    stub.on(
        "POST",
        &terms_path(),
        [ok(json!({"request_id": "mmreq-1"}))],
    );
    let outcome = gateway(&stub)
        .request_terms(&portfolio())
        .await
        .expect("sent");
    assert_eq!(
        outcome,
        TermsRequestOutcome::Sent {
            request_id: "mmreq-1".into()
        }
    );
    assert_eq!(
        (stub.count("POST", &terms_path()), stub.count_method("GET")),
        (1, 0)
    );
}

#[tokio::test]
async fn error_1752041_on_a_terms_request_means_already_invited_without_reading_back() {
    for status in [400, 403, 500] {
        let stub = Stub::start().await;
        stub.on("POST", &terms_path(), [graph_error(status, 1752041)]);
        let outcome = gateway(&stub)
            .request_terms(&portfolio())
            .await
            .expect("an invitation is out");
        assert_eq!(outcome, TermsRequestOutcome::AlreadyInvited, "{status}");
        assert_eq!(stub.count("POST", &terms_path()), 1, "{status}");
        assert_eq!(
            stub.count_method("GET"),
            0,
            "{status}: nothing to read back"
        );
    }
}

#[tokio::test]
async fn a_terms_request_answered_5xx_is_read_back_never_replayed() {
    // (the portfolio's terms status read back, what the gateway returns)
    let cases = [
        ("REQUEST_SENT", Some(TermsRequestOutcome::SentAnswerLost)),
        (
            "TERM_OF_SERVICE_SIGNED",
            Some(TermsRequestOutcome::SentAnswerLost),
        ),
        ("NOT_STARTED", None),
        ("SOMETHING_NEW", None),
    ];
    let unknown_outcomes = [
        graph_error(500, 1),
        graph_error(503, 2),
        Answer::Text(502, "<html>Bad Gateway</html>"),
    ];
    for failure in unknown_outcomes {
        for (status, expected) in &cases {
            let stub = Stub::start().await;
            stub.on("POST", &terms_path(), [failure.clone()]).on(
                "GET",
                &business_path(),
                [ok(business(status))],
            );
            let result = gateway(&stub).request_terms(&portfolio()).await;
            match (expected, &result) {
                (Some(expected), Ok(outcome)) => assert_eq!(outcome, expected),
                (None, Err(MetaError::WriteNotApplied { operation, cause })) => {
                    assert!(operation.contains("4100000001"), "{operation}");
                    assert!(
                        cause.contains("HTTP 5"),
                        "the cause names the answer: {cause}"
                    );
                }
                _ => panic!("{failure:?} then {status}: {result:?}"),
            }
            if let Err(error) = &result {
                assert!(error.is_retryable(), "the caller may ask again later");
            }
            assert_eq!(
                stub.count("POST", &terms_path()),
                1,
                "{failure:?}/{status}: never replayed"
            );
            assert_eq!(
                stub.count("GET", &business_path()),
                1,
                "{failure:?}/{status}"
            );
        }
    }
}

#[tokio::test]
async fn a_terms_request_that_times_out_is_read_back_never_replayed() {
    for (status, invited) in [("REQUEST_SENT", true), ("NOT_STARTED", false)] {
        let stub = Stub::start().await;
        stub.on("POST", &terms_path(), [Answer::Hang]).on(
            "GET",
            &business_path(),
            [ok(business(status))],
        );
        let result = impatient_gateway(&stub, ATTEMPTS)
            .request_terms(&portfolio())
            .await;
        if invited {
            assert_eq!(
                result.expect("read back"),
                TermsRequestOutcome::SentAnswerLost
            );
        } else {
            let failure = result.expect_err("not applied");
            assert!(
                matches!(&failure, MetaError::WriteNotApplied { cause, .. } if cause.contains("no answer from Meta")),
                "{failure:?}"
            );
        }
        assert_eq!(stub.count("POST", &terms_path()), 1, "{status}");
        assert_eq!(stub.count("GET", &business_path()), 1, "{status}");
    }
}

#[tokio::test]
async fn a_terms_request_refused_with_a_4xx_is_neither_replayed_nor_read_back() {
    for (status, code) in [(401, 190), (400, 100), (429, 4), (400, 80007)] {
        let stub = Stub::start().await;
        stub.on("POST", &terms_path(), [graph_error(status, code)])
            .on("GET", &business_path(), [ok(business("REQUEST_SENT"))]);
        let failure = gateway(&stub)
            .request_terms(&portfolio())
            .await
            .expect_err("refused");
        assert_eq!(
            failure.kind(),
            Some(MetaErrorKind::from_code(code, status)),
            "{code}"
        );
        assert_eq!(
            (stub.count_method("POST"), stub.count_method("GET")),
            (1, 0),
            "{code}: Meta said no; a rate limit is retried by the caller, later"
        );
    }
}

#[tokio::test]
async fn an_obo_transfer_answered_is_sent_once() {
    let stub = Stub::start().await;
    stub.on("POST", &obo_intent_path(), [ok(json!({"success": true}))]);
    assert_eq!(
        gateway(&stub)
            .set_obo_mobility_intent(&obo_waba())
            .await
            .expect("requested"),
        OboIntentOutcome::Requested
    );
    assert_eq!(
        (
            stub.count("POST", &obo_intent_path()),
            stub.count_method("GET")
        ),
        (1, 0)
    );
}

#[tokio::test]
async fn an_obo_transfer_answered_5xx_is_read_back_never_replayed() {
    let mut completed = obo_waba_node(false);
    completed["ownership_type"] = json!("CLIENT_OWNED");
    // (the WABA read back, AlreadyRequested or WriteNotApplied)
    let cases = [
        (obo_waba_node(true), true),
        (completed, true),
        (obo_waba_node(false), false),
    ];
    for failure in [graph_error(500, 1), graph_error(503, 2)] {
        for (node, requested) in &cases {
            let stub = Stub::start().await;
            stub.on("POST", &obo_intent_path(), [failure.clone()]).on(
                "GET",
                &waba_path(OBO_WABA),
                [ok(node.clone())],
            );
            let result = gateway(&stub).set_obo_mobility_intent(&obo_waba()).await;
            if *requested {
                assert_eq!(
                    result.expect("read back"),
                    OboIntentOutcome::AlreadyRequested
                );
            } else {
                let failure = result.expect_err("not applied");
                assert!(
                    matches!(&failure, MetaError::WriteNotApplied { operation, .. } if operation.contains(OBO_WABA)),
                    "{failure:?}"
                );
                assert!(failure.is_retryable());
            }
            assert_eq!(stub.count("POST", &obo_intent_path()), 1, "never replayed");
            assert_eq!(stub.count("GET", &waba_path(OBO_WABA)), 1);
        }
    }
}

#[tokio::test]
async fn an_obo_transfer_that_times_out_is_read_back_never_replayed() {
    for (transfer_started, requested) in [(true, true), (false, false)] {
        let stub = Stub::start().await;
        stub.on("POST", &obo_intent_path(), [Answer::Hang]).on(
            "GET",
            &waba_path(OBO_WABA),
            [ok(obo_waba_node(transfer_started))],
        );
        let result = impatient_gateway(&stub, ATTEMPTS)
            .set_obo_mobility_intent(&obo_waba())
            .await;
        if requested {
            assert_eq!(
                result.expect("read back"),
                OboIntentOutcome::AlreadyRequested
            );
        } else {
            let failure = result.expect_err("not applied");
            assert!(
                matches!(&failure, MetaError::WriteNotApplied { cause, .. } if cause.contains("no answer")),
                "{failure:?}"
            );
        }
        assert_eq!(stub.count("POST", &obo_intent_path()), 1);
        assert_eq!(stub.count("GET", &waba_path(OBO_WABA)), 1);
    }
}

#[tokio::test]
async fn the_read_back_of_a_write_is_a_read_and_is_retried_but_the_write_is_not() {
    let stub = Stub::start().await;
    stub.on("POST", &obo_intent_path(), [graph_error(500, 1)])
        .on(
            "GET",
            &waba_path(OBO_WABA),
            [graph_error(503, 2), ok(obo_waba_node(true))],
        );
    assert_eq!(
        gateway(&stub)
            .set_obo_mobility_intent(&obo_waba())
            .await
            .expect("read back on the second try"),
        OboIntentOutcome::AlreadyRequested
    );
    assert_eq!(stub.count("POST", &obo_intent_path()), 1);
    assert_eq!(stub.count("GET", &waba_path(OBO_WABA)), 2);

    // When the read back fails too, its error is returned: the write's outcome stays unknown, the caller
    // reads again before writing again.
    let stub = Stub::start().await;
    stub.on("POST", &terms_path(), [graph_error(500, 1)]).on(
        "GET",
        &business_path(),
        [graph_error(503, 2)],
    );
    let failure = gateway(&stub)
        .request_terms(&portfolio())
        .await
        .expect_err("nothing known");
    assert!(
        matches!(failure, MetaError::Graph { status: 503, .. }),
        "{failure:?}"
    );
    assert!(failure.is_retryable());
    assert_eq!(stub.count("POST", &terms_path()), 1);
    assert_eq!(stub.count("GET", &business_path()), ATTEMPTS as usize);
}

#[tokio::test]
async fn an_obo_transfer_refused_with_a_4xx_is_neither_replayed_nor_read_back() {
    let stub = Stub::start().await;
    stub.on("POST", &obo_intent_path(), [graph_error(400, 100)])
        .on("GET", &waba_path(OBO_WABA), [ok(obo_waba_node(true))]);
    let failure = gateway(&stub)
        .set_obo_mobility_intent(&obo_waba())
        .await
        .expect_err("refused");
    assert_eq!(failure.kind(), Some(MetaErrorKind::InvalidParameter));
    assert!(!failure.is_retryable());
    assert_eq!(
        (stub.count_method("POST"), stub.count_method("GET")),
        (1, 0)
    );
}
