//! `spawn_app`: the real server on port 0, a fresh database, a manual clock, and a clean shutdown. The app's
//! client sends the admin token created before the start (`App::admin_token`); `App::anonymous` sends none.

#![allow(dead_code)]

use std::time::Duration;

use chrono::{TimeZone, Utc};
use futures_util::StreamExt;
use mmonboard_app::ManualClock;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub struct App {
    pub base: String,
    pub url: String,
    pub clock: ManualClock,
    /// Sends `Authorization: Bearer <admin_token>` with every request.
    pub client: reqwest::Client,
    /// Sends no credential.
    pub anonymous: reqwest::Client,
    pub admin_token: String,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<Result<(), mmonboard_server::ServerError>>>,
    _dir: tempfile::TempDir,
}

pub const APP_SECRET: &str = "test-app-secret";
pub const VERIFY_TOKEN: &str = "test-verify-token";

pub async fn spawn_app() -> App {
    spawn(None).await
}

/// The server with these access options (limits, refresh interval, mode).
pub async fn spawn_app_with_access(access: mmonboard_server::AccessOptions) -> App {
    spawn_with(None, access).await
}

/// Creates the database's log and a token in it, as `mmonboard tokens create` does; the secret.
pub async fn create_token(
    url: &str,
    name: &str,
    role: mmonboard_access::Role,
    created_at: chrono::DateTime<Utc>,
    expires_at: Option<chrono::DateTime<Utc>>,
) -> String {
    mmonboard_eventlog::EventLog::open(url, &mmonboard_eventlog::LogOptions::default())
        .await
        .expect("the log opens")
        .close()
        .await;
    let store = mmonboard_access::TokenStore::open(url)
        .await
        .expect("the token store opens");
    let issued = store
        .create(
            &mmonboard_access::TokenName::parse(name).expect("a token name"),
            role,
            created_at,
            expires_at,
        )
        .await
        .expect("the token is created");
    store.close().await;
    issued.secret.expose().to_owned()
}

/// A client that sends `token` with every request.
pub fn client_with(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        reqwest::header::HeaderValue::from_str(&format!("Bearer {token}")).expect("a header"),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .expect("a client")
}

pub fn start_time() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0)
        .single()
        .expect("a time")
}

/// The server with Meta's webhooks configured (`APP_SECRET`, `VERIFY_TOKEN`).
pub async fn spawn_app_with_webhooks() -> App {
    spawn(Some(mmonboard_server::WebhookConfig {
        app_secret: APP_SECRET.into(),
        verify_token: VERIFY_TOKEN.into(),
    }))
    .await
}

async fn spawn(webhook: Option<mmonboard_server::WebhookConfig>) -> App {
    spawn_with(webhook, mmonboard_server::AccessOptions::default()).await
}

async fn spawn_with(
    webhook: Option<mmonboard_server::WebhookConfig>,
    access: mmonboard_server::AccessOptions,
) -> App {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite://{}", dir.path().join("log.db").display());
    let admin_token = create_token(
        &url,
        "test-admin",
        mmonboard_access::Role::Admin,
        start_time(),
        None,
    )
    .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port");
    let base = format!("http://{}", listener.local_addr().expect("an address"));
    let clock = ManualClock::starting_at(start_time());
    let (stop, stopped) = oneshot::channel::<()>();
    let options = mmonboard_server::ServeOptions::<mmonboard_meta::HttpGateway> {
        webhook,
        access,
        ..Default::default()
    };
    let server = tokio::spawn(mmonboard_server::run_with(
        listener,
        url.clone(),
        clock.clone(),
        options,
        async move {
            let _ = stopped.await;
        },
    ));
    let app = App {
        base,
        url,
        clock,
        client: client_with(&admin_token),
        anonymous: reqwest::Client::new(),
        admin_token,
        stop: Some(stop),
        server: Some(server),
        _dir: dir,
    };
    app.await_ready().await;
    app
}

impl App {
    async fn await_ready(&self) {
        tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                if let Ok(response) = self
                    .client
                    .get(format!("{}/readyz", self.base))
                    .send()
                    .await
                    && response.status() == 200
                {
                    return;
                }
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the server became ready before the deadline");
    }

    /// Creates a token over the HTTP API with the admin token; its secret.
    pub async fn token(&self, name: &str, role: &str, expires_in: Option<&str>) -> String {
        let response = self
            .client
            .post(format!("{}/v1/tokens", self.base))
            .json(&json!({"name": name, "role": role, "expires_in": expires_in}))
            .send()
            .await
            .expect("a response");
        assert_eq!(response.status(), 201, "the token {name} was not created");
        let body: Value = response.json().await.expect("JSON");
        body["token"].as_str().expect("the token").to_owned()
    }

    /// POSTs a command with `client`'s credential.
    pub async fn post_with(
        &self,
        client: &reqwest::Client,
        portfolio: &str,
        body: &str,
    ) -> (u16, Value) {
        let response = client
            .post(format!("{}/v1/portfolios/{portfolio}/commands", self.base))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .expect("a response");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn post(&self, portfolio: &str, body: &str, key: Option<&str>) -> (u16, Value) {
        let mut request = self
            .client
            .post(format!("{}/v1/portfolios/{portfolio}/commands", self.base))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        let response = request.send().await.expect("a response");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn accept(&self, portfolio: &str, command: Value) -> Value {
        let (status, body) = self.post(portfolio, &command.to_string(), None).await;
        assert_eq!(status, 201, "{command} was not accepted: {body}");
        body
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("a response");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub fn clock_now(&self) -> chrono::DateTime<Utc> {
        use mmonboard_app::Clock;
        self.clock.now()
    }

    pub async fn head(&self) -> u64 {
        self.get("/v1/events?limit=1").await.1["head"]
            .as_u64()
            .expect("head")
    }

    /// Stop the server and wait for it to finish cleanly; the database's directory is handed back so the
    /// files outlive the server.
    pub async fn shutdown(mut self) -> tempfile::TempDir {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server
                .await
                .expect("the server task")
                .expect("a clean shutdown");
        }
        std::mem::replace(
            &mut self._dir,
            tempfile::tempdir().expect("a temporary directory"),
        )
    }
}

pub fn start() -> Value {
    json!({"type": "start_onboarding"})
}

pub fn eligibility() -> Value {
    json!({"type": "check_eligibility", "facts": {"business_country": "BR", "enable_offered": true, "wabas": [{
        "waba_id": "1001", "ownership_type": "CLIENT_OWNED", "account_status": "ACTIVE", "tax_country": "BR",
        "phone_numbers": [{"phone_number_id": "2001", "country": "BR", "registered_on_cloud_api": true, "uses_business_app": false}]}]}})
}

/// Take `portfolio` to terms pending.
pub async fn up_to_terms(app: &App, portfolio: &str) {
    app.accept(portfolio, start()).await;
    app.accept(portfolio, eligibility()).await;
    app.accept(
        portfolio,
        json!({"type": "review_permissions", "reviewed_by": "3001"}),
    )
    .await;
    app.accept(portfolio, json!({"type": "submit_business_info", "business_name": "Acme", "website": "https://acme.example"})).await;
}

/// Take `portfolio` to live with marketing template 7001 changed (its mirror still syncing).
pub async fn live_with_template(app: &App, portfolio: &str) {
    up_to_terms(app, portfolio).await;
    app.accept(portfolio, json!({"type": "accept_terms", "accepted_by": "3001", "role": "ADMIN", "terms_version": "v1"})).await;
    app.accept(
        portfolio,
        json!({"type": "connect", "ad_accounts": [{"waba_id": "1001", "ad_account_id": "8001"}]}),
    )
    .await;
    app.accept(portfolio, json!({"type": "start_config_sync"}))
        .await;
    app.clock.advance(chrono::TimeDelta::minutes(15));
    app.accept(portfolio, json!({"type": "complete_sync"}))
        .await;
    app.accept(
        portfolio,
        json!({"type": "change_template", "waba_id": "1001", "template_id": "7001", "name": "offer",
        "language": "en_US", "category": "MARKETING"}),
    )
    .await;
}

/// A live SSE connection, parsed (by eventsource-stream) into (id, CloudEvent) pairs.
pub struct EventStream {
    events: std::pin::Pin<
        Box<
            dyn futures_util::Stream<
                    Item = Result<
                        eventsource_stream::Event,
                        eventsource_stream::EventStreamError<reqwest::Error>,
                    >,
                > + Send,
        >,
    >,
}

impl EventStream {
    pub async fn connect(app: &App, last_event_id: Option<u64>) -> Self {
        Self::connect_to(app, "/v1/events/stream", last_event_id).await
    }

    /// The stream at `path` (with its filters).
    pub async fn connect_to(app: &App, path: &str, last_event_id: Option<u64>) -> Self {
        use eventsource_stream::Eventsource;
        let mut request = app.client.get(format!("{}{path}", app.base));
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id.to_string());
        }
        let response = request.send().await.expect("the stream opens");
        assert_eq!(response.status(), 200);
        Self {
            events: Box::pin(response.bytes_stream().eventsource()),
        }
    }

    /// The next event, or a panic after the deadline. Keep-alive comments are no events: the parser skips
    /// them.
    pub async fn next(&mut self) -> (u64, Value) {
        let event = tokio::time::timeout(Duration::from_secs(30), self.events.next())
            .await
            .expect("an event before the deadline")
            .expect("the stream stays open")
            .expect("a well-formed server-sent event");
        let id = event.id.parse::<u64>().expect("a numeric event id");
        (
            id,
            serde_json::from_str(&event.data).expect("CloudEvent JSON"),
        )
    }
}

/// Polls `check` until it holds, failing after a minute.
pub async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} before the deadline"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Serve options without credentials, for tests whose subject is not access control.
pub fn without_credentials() -> mmonboard_server::ServeOptions<mmonboard_meta::HttpGateway> {
    mmonboard_server::ServeOptions {
        access: mmonboard_server::AccessOptions {
            mode: mmonboard_server::AuthMode::InsecureNoAuth,
            ..mmonboard_server::AccessOptions::default()
        },
        ..mmonboard_server::ServeOptions::default()
    }
}
