//! Access control over HTTP: every row of the matrix with every role and every kind of credential, spoofing
//! attempts, the actor recorded for each kind of caller, revocation through the cache, and the limits.

use std::num::NonZeroU32;
use std::time::Duration;

use chrono::TimeDelta;
use mmonboard_access::{MATRIX, Role};
use mmonboard_server::{AccessOptions, AuthMode, DEFAULT_REFRESH, RateLimit};
use serde_json::{Value, json};

use crate::support::*;

/// What a request carries.
#[derive(Debug, Clone, Copy)]
enum Credential {
    None,
    Bad,
    Revoked,
    Expired,
    Valid,
}

/// One request for a row of the matrix; `n` keeps the writes apart (a fresh portfolio, a fresh token name).
fn request_for(
    app: &App,
    client: &reqwest::Client,
    rule: &mmonboard_access::Rule,
    n: usize,
) -> reqwest::RequestBuilder {
    let portfolio = format!("{}", 5_000_000_000u64 + n as u64);
    let path = rule
        .path
        .replace("{portfolio_id}", &portfolio)
        .replace("{name}", &format!("absent-{n}"));
    let url = match rule.endpoint {
        mmonboard_access::Endpoint::Route => format!(
            "{}{path}?portfolio_id={portfolio}&waba_id=1001&kind=utility",
            app.base
        ),
        _ => format!("{}{path}", app.base),
    };
    let method = rule.method.parse().expect("a method");
    let request = client.request(method, url);
    match rule.endpoint {
        mmonboard_access::Endpoint::SendOperatorCommand => request
            .header("content-type", "application/json")
            .body(start().to_string()),
        mmonboard_access::Endpoint::SendRecorderCommand => request
            .header("content-type", "application/json")
            .body(eligibility().to_string()),
        mmonboard_access::Endpoint::CreateToken => {
            request.json(&json!({"name": format!("made-{n}"), "role": "subscriber"}))
        }
        _ => request,
    }
}

#[tokio::test]
async fn every_endpoint_every_role_every_credential() {
    let app = spawn_app().await;
    let mut clients = Vec::new();
    for role in Role::ALL {
        let valid = app
            .token(&format!("valid-{role}"), role.as_str(), None)
            .await;
        let revoked = app
            .token(&format!("revoked-{role}"), role.as_str(), None)
            .await;
        let expired = app
            .token(&format!("expired-{role}"), role.as_str(), Some("1h"))
            .await;
        let response = app
            .client
            .delete(format!("{}/v1/tokens/revoked-{role}", app.base))
            .send()
            .await
            .expect("a response");
        assert_eq!(response.status(), 204);
        clients.push((role, Credential::Valid, client_with(&valid)));
        clients.push((role, Credential::Revoked, client_with(&revoked)));
        clients.push((role, Credential::Expired, client_with(&expired)));
    }
    clients.push((Role::Admin, Credential::None, reqwest::Client::new()));
    clients.push((
        Role::Admin,
        Credential::Bad,
        client_with("mmo_0000000000000000000000000000000000000000000000000000000000000000"),
    ));
    app.clock.advance(TimeDelta::hours(2));

    let mut n = 0;
    let mut checked = 0;
    for rule in MATRIX {
        for (role, credential, client) in &clients {
            n += 1;
            let response = request_for(&app, client, rule, n)
                .send()
                .await
                .expect("a response");
            let status = response.status().as_u16();
            let challenge = response
                .headers()
                .get("www-authenticate")
                .map(|value| value.to_str().unwrap_or_default().to_owned());
            let case = format!(
                "{} {} as {role} with {credential:?}",
                rule.method, rule.path
            );
            if rule.endpoint == mmonboard_access::Endpoint::EventStream && status == 200 {
                drop(response); // the live stream stays open; its status is the answer
                checked += 1;
                continue;
            }
            let body: Value = response.json().await.unwrap_or(Value::Null);
            match credential {
                Credential::Valid if rule.roles.contains(role) => {
                    assert!(
                        status != 401 && status != 403 && status < 500,
                        "{case}: {status} {body}"
                    );
                }
                Credential::Valid => {
                    assert_eq!(
                        (status, body["code"].as_str()),
                        (403, Some("forbidden")),
                        "{case}"
                    );
                    let message = body["message"].as_str().unwrap_or_default();
                    // It names the roles that may (for the command endpoint, before the command is
                    // read: every role that may send some command).
                    assert!(
                        rule.roles
                            .iter()
                            .all(|allowed| message.contains(allowed.as_str())),
                        "{case}: {message}"
                    );
                }
                Credential::None | Credential::Bad | Credential::Revoked | Credential::Expired => {
                    let code = match credential {
                        Credential::None => "missing_credentials",
                        Credential::Bad => "invalid_token",
                        Credential::Revoked => "token_revoked",
                        _ => "token_expired",
                    };
                    assert_eq!((status, body["code"].as_str()), (401, Some(code)), "{case}");
                    assert!(
                        challenge
                            .as_deref()
                            .is_some_and(|value| value.starts_with("Bearer")),
                        "{case}: {challenge:?}"
                    );
                }
            }
            checked += 1;
        }
    }
    assert_eq!(checked, MATRIX.len() * (Role::ALL.len() * 3 + 2));
    app.shutdown().await;
}

#[tokio::test]
async fn open_endpoints_stay_open_and_unlisted_v1_routes_need_a_token() {
    let app = spawn_app().await;
    for path in ["/healthz", "/readyz", "/openapi.json"] {
        let response = app
            .anonymous
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .expect("a response");
        assert_eq!(response.status(), 200, "{path}");
    }
    let (status, ready) = app.get("/readyz").await;
    assert_eq!((status, ready["auth"].as_str()), (200, Some("tokens")));
    let response = app
        .anonymous
        .get(format!("{}/v1/nothing-here", app.base))
        .send()
        .await
        .expect("a response");
    assert_eq!(response.status(), 401);
    let (status, _) = app.get("/v1/nothing-here").await;
    assert_eq!(status, 404);
    app.shutdown().await;
}

#[tokio::test]
async fn the_actor_is_whoever_authenticated_and_cannot_be_claimed() {
    let app = spawn_app().await;
    let portfolio = "5100000001";
    let operator = client_with(&app.token("alice", "operator", None).await);
    let recorder = client_with(&app.token("meta-desk", "recorder", None).await);
    let auditor = client_with(&app.token("carol", "auditor", None).await);

    let (status, _) = app
        .post_with(&operator, portfolio, &start().to_string())
        .await;
    assert_eq!(status, 201);
    // A claimed actor is refused, and nothing is appended.
    let head = app.head().await;
    let response = operator
        .post(format!("{}/v1/portfolios/{portfolio}/commands", app.base))
        .header("X-Actor", "meta-webhook")
        .header("Content-Type", "application/json")
        .body(json!({"type": "review_permissions", "reviewed_by": "3001"}).to_string())
        .send()
        .await
        .expect("a response");
    assert_eq!(response.status(), 400);
    assert_eq!(app.head().await, head);
    // An operator cannot record what Meta reported; a recorder cannot take the operator's steps.
    let (status, body) = app
        .post_with(&operator, portfolio, &eligibility().to_string())
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("forbidden")),
        "{body}"
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("recorder")
    );
    let review = json!({"type": "review_permissions", "reviewed_by": "3001"}).to_string();
    let (status, body) = app.post_with(&recorder, portfolio, &review).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("forbidden")),
        "{body}"
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("operator or admin")
    );
    // An auditor writes nothing at all.
    let (status, _) = app.post_with(&auditor, portfolio, &review).await;
    assert_eq!(status, 403);
    assert_eq!(app.head().await, head);

    let (status, _) = app
        .post_with(&recorder, portfolio, &eligibility().to_string())
        .await;
    assert_eq!(status, 201);
    let (status, _) = app.post_with(&operator, portfolio, &review).await;
    assert_eq!(status, 201);
    app.accept(portfolio, json!({"type": "submit_business_info", "business_name": "Acme", "website": "https://acme.example"}))
        .await;

    let history: Value = auditor
        .get(format!("{}/v1/portfolios/{portfolio}/history", app.base))
        .send()
        .await
        .expect("a response")
        .json()
        .await
        .expect("JSON");
    let actors: Vec<&str> = history
        .as_array()
        .expect("entries")
        .iter()
        .map(|entry| entry["metadata"]["actor"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        actors,
        [
            "alice (operator)",
            "meta-desk (recorder)",
            "alice (operator)",
            "test-admin (admin)"
        ]
    );
    app.shutdown().await;
}

#[tokio::test]
async fn a_revocation_elsewhere_takes_effect_within_the_refresh_interval() {
    let app = spawn_app().await;
    let token = app.token("leaving", "auditor", None).await;
    let client = client_with(&token);
    let events = format!("{}/v1/events", app.base);
    assert_eq!(
        client
            .get(&events)
            .send()
            .await
            .expect("a response")
            .status(),
        200
    );

    // Revoked by another process (the CLI, another server): this server's copy still lets it in ...
    let store = mmonboard_access::TokenStore::open(&app.url)
        .await
        .expect("the store opens");
    store
        .revoke(
            &mmonboard_access::TokenName::parse("leaving").expect("a name"),
            app.clock_now(),
        )
        .await
        .expect("revoked");
    assert_eq!(
        client
            .get(&events)
            .send()
            .await
            .expect("a response")
            .status(),
        200
    );
    // ... until its copy is one refresh interval old.
    app.clock.advance(DEFAULT_REFRESH);
    let response = client.get(&events).send().await.expect("a response");
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["code"], "token_revoked");

    // A token created elsewhere is found at its first use (past the miss-reload spacing).
    let issued = store
        .create(
            &mmonboard_access::TokenName::parse("joining").expect("a name"),
            Role::Subscriber,
            app.clock_now(),
            None,
        )
        .await
        .expect("created");
    app.clock.advance(TimeDelta::seconds(1));
    let response = client_with(issued.secret.expose())
        .get(&events)
        .send()
        .await
        .expect("a response");
    assert_eq!(response.status(), 200);
    store.close().await;

    // Last use is written back: the list shows it.
    app.clock.advance(DEFAULT_REFRESH);
    let (_, listed) = app.get("/v1/tokens").await;
    let joining = listed
        .as_array()
        .expect("tokens")
        .iter()
        .find(|token| token["name"] == "joining")
        .cloned()
        .expect("listed");
    assert!(joining["last_used_at"].is_string(), "{joining}");
    assert!(joining.get("token").is_none() && !listed.to_string().contains("mmo_"));
    app.shutdown().await;
}

#[tokio::test]
async fn a_token_past_its_rate_limit_gets_429_with_retry_after_and_others_are_untouched() {
    let app = spawn_app_with_access(AccessOptions {
        rate_limit: RateLimit {
            replenish_every: Duration::from_secs(3600),
            burst: NonZeroU32::new(3).expect("non-zero"),
        },
        ..AccessOptions::default()
    })
    .await;
    // The admin token has spent one request creating this one.
    let other = client_with(&app.token("other", "auditor", None).await);
    let events = format!("{}/v1/events", app.base);
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let response = app.client.get(&events).send().await.expect("a response");
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            let after: u64 = response.headers()["retry-after"]
                .to_str()
                .expect("text")
                .parse()
                .expect("seconds");
            assert!(after >= 1);
            let body: Value = response.json().await.expect("JSON");
            assert_eq!(body["code"], "rate_limited");
        }
    }
    assert_eq!(statuses, [200, 200, 429]);
    assert_eq!(
        other
            .get(&events)
            .send()
            .await
            .expect("a response")
            .status(),
        200
    );
    app.shutdown().await;
}

#[tokio::test]
async fn past_the_in_flight_limit_requests_are_shed_with_503() {
    let app = spawn_app_with_access(AccessOptions {
        max_in_flight: 1,
        ..AccessOptions::default()
    })
    .await;
    // A command whose body never finishes holds the only slot.
    let (_hold, body) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(1);
    let stream = futures_util::stream::unfold(body, |mut body| async move {
        body.recv().await.map(|chunk| (chunk, body))
    });
    let slow = app
        .client
        .post(format!("{}/v1/portfolios/5200000001/commands", app.base))
        .header("content-type", "application/json")
        .header("content-length", "1000")
        .body(reqwest::Body::wrap_stream(stream))
        .send();
    let slow = tokio::spawn(slow);
    let shed = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let response = app
                .anonymous
                .get(format!("{}/healthz", app.base))
                .send()
                .await;
            if let Ok(response) = response
                && response.status() == 503
            {
                return response;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("a request was shed before the deadline");
    assert!(shed.headers().contains_key("retry-after"));
    let body: Value = shed.json().await.expect("JSON");
    assert_eq!(body["code"], "overloaded");
    slow.abort();
    app.shutdown().await;
}

#[tokio::test]
async fn serve_refuses_to_start_without_a_token_and_insecure_mode_says_so() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite://{}", dir.path().join("log.db").display());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let refused = mmonboard_server::run(
        listener,
        url.clone(),
        mmonboard_app::ManualClock::starting_at(start_time()),
        async {},
    )
    .await;
    let error = refused.expect_err("no token, no start");
    assert!(matches!(error, mmonboard_server::ServerError::NoTokens));
    assert!(
        error.to_string().contains("mmonboard tokens create"),
        "{error}"
    );

    let app = spawn_app_with_access(AccessOptions {
        mode: AuthMode::InsecureNoAuth,
        ..AccessOptions::default()
    })
    .await;
    let (status, ready) = app.get("/readyz").await;
    assert_eq!(
        (status, ready["auth"].as_str()),
        (200, Some("insecure-no-auth"))
    );
    assert!(ready["warning"].is_string());
    let portfolio = "5300000001";
    let (status, body) = app
        .post_with(&app.anonymous, portfolio, &start().to_string())
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        body["events"][0]["metadata"]["actor"],
        "unauthenticated (admin)"
    );
    app.shutdown().await;
}
