//! The whole flow over real HTTP: the Meta simulator and `serve` (API, webhooks, process manager) each on a
//! port of their own, sharing one accelerated clock, and an operator who does only what a person does (start,
//! review the permissions, confirm the business information Meta has on file) through the API. Everything
//! else (eligibility, OBO transfers, the terms request, connection, the sync windows, template mirrors,
//! restrictions and re-checks) comes from Meta: nothing is typed by hand. `mmonboard demo` and the end-to-end
//! tests both run it.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use mmonboard_app::{AcceleratedClock, Clock};
use mmonboard_domain::ids::PortfolioId;
use mmonboard_meta::http::AccessToken;
use mmonboard_meta::{GatewayConfig, HttpGateway, MetaGateway};
use mmonboard_metasim::{Scenario, SimConfig, Simulator};
use mmonboard_process::{LeaseOptions, ProcessConfig, ProcessOptions};
use mmonboard_server::{AccessOptions, ProcessSetup, RateLimit, ServeOptions, WebhookConfig};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The secrets the simulator and the server share in a flow (they never leave the process).
const ACCESS_TOKEN: &str = "mmonboard-flow-access-token";
const APP_SECRET: &str = "mmonboard-flow-app-secret";
const VERIFY_TOKEN: &str = "mmonboard-flow-verify-token";
/// The operator who reviews the permissions (a Meta user id of the provider).
pub const OPERATOR: &str = "106000000000001";

#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error("cannot listen: {0}")]
    Listen(#[from] std::io::Error),
    #[error("the Meta gateway: {0}")]
    Meta(String),
    #[error("the API answered {status} to {what}: {body}")]
    Api {
        what: String,
        status: u16,
        body: Value,
    },
    #[error("cannot reach the API: {0}")]
    Http(#[from] reqwest::Error),
    #[error(
        "portfolio {portfolio} of scenario {scenario} did not reach {expected} within {seconds} s (it is {phase}; waiting for: {waiting})"
    )]
    Timeout {
        scenario: String,
        portfolio: String,
        expected: String,
        phase: String,
        waiting: String,
        seconds: u64,
    },
    #[error("the server stopped: {0}")]
    Server(String),
    #[error(transparent)]
    Access(#[from] mmonboard_access::AccessError),
    #[error("the event log: {0}")]
    Store(String),
}

/// Creates the token the flow's operator drives the server with (a fresh name each run: names are never
/// reused), creating the database and its log first if this is its first use.
async fn create_operator_token(
    database_url: &str,
) -> Result<(mmonboard_access::TokenName, mmonboard_access::TokenSecret), FlowError> {
    mmonboard_eventlog::EventLog::open(database_url, &mmonboard_eventlog::LogOptions::default())
        .await
        .map_err(|error| FlowError::Store(error.to_string()))?
        .close()
        .await;
    let store = mmonboard_access::TokenStore::open(database_url).await?;
    let suffix = uuid::Uuid::now_v7().simple().to_string();
    let name = mmonboard_access::TokenName::parse(&format!("demo-operator-{}", &suffix[20..]))?;
    let created = store
        .create(&name, mmonboard_access::Role::Operator, Utc::now(), None)
        .await;
    store.close().await;
    Ok((name, created?.secret))
}

fn bearer(secret: &mmonboard_access::TokenSecret) -> Result<reqwest::header::HeaderMap, String> {
    let mut headers = reqwest::header::HeaderMap::new();
    let value = reqwest::header::HeaderValue::from_str(&format!("Bearer {}", secret.expose()))
        .map_err(|error| format!("the token is not a header value: {error}"))?;
    headers.insert(reqwest::header::AUTHORIZATION, value);
    Ok(headers)
}

struct Running {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), String>>,
}

impl Running {
    async fn stop(self) -> Result<(), FlowError> {
        let _ = self.stop.send(());
        match self.task.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(FlowError::Server(error)),
            Err(error) => Err(FlowError::Server(error.to_string())),
        }
    }
}

/// How long, in real time, a flow may take before its accelerated clock would reach the wall clock (from
/// there on it runs at real speed): the demo's and the end-to-end tests' deadlines fit in it.
pub const FLOW_REAL_BUDGET: Duration = Duration::from_secs(180);

/// A running simulator and server.
pub struct Flow {
    pub clock: AcceleratedClock,
    pub sim: Simulator,
    pub sim_base: String,
    pub api_base: String,
    api_address: SocketAddr,
    database_url: String,
    client: reqwest::Client,
    gateway: Arc<HttpGateway>,
    process: ProcessConfig,
    sim_running: Option<Running>,
    server_running: Option<Running>,
    /// More servers on the same database (`start_replica`), as a deployment with several instances runs.
    replicas: Vec<Running>,
    /// The operator's token, created for this flow and revoked when it shuts down.
    operator_token: mmonboard_access::TokenName,
    /// Tokens handed to people (the web console's), revoked when the flow shuts down too.
    console_tokens: Vec<mmonboard_access::TokenName>,
}

/// One line of what happened, for people: the event, who recorded it and the transition.
#[derive(Debug, Clone)]
pub struct Transition {
    pub portfolio: String,
    pub at: String,
    pub event: String,
    pub actor: String,
    pub from: String,
    pub to: String,
}

impl Flow {
    /// Start the simulator with `scenarios` and the server on `database_url`, both on free local ports,
    /// with time running `time_factor` times faster than real time, from a start in the past (see
    /// [`FLOW_REAL_BUDGET`]).
    pub async fn start(
        database_url: &str,
        scenarios: Vec<Scenario>,
        time_factor: u32,
    ) -> Result<Self, FlowError> {
        Self::start_paged(
            database_url,
            scenarios,
            time_factor,
            mmonboard_metasim::DEFAULT_PAGE_SIZE,
        )
        .await
    }

    /// [`Flow::start`] with the simulator answering at most `page_size` entries of an edge per page.
    pub async fn start_paged(
        database_url: &str,
        scenarios: Vec<Scenario>,
        time_factor: u32,
        page_size: usize,
    ) -> Result<Self, FlowError> {
        // Started in the past so that everything the run records lies before the real time it ends at: the
        // database can then be served on the wall clock and taken further.
        let clock = AcceleratedClock::ending_by_now(time_factor, FLOW_REAL_BUDGET);
        let (operator_token, secret) = create_operator_token(database_url).await?;
        let api_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let api_address = api_listener.local_addr()?;
        let api_base = format!("http://{api_address}");
        let sim_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let sim_base = format!("http://{}", sim_listener.local_addr()?);

        let mut sim_config = SimConfig {
            webhook_url: Some(
                url::Url::parse(&format!("{api_base}/webhooks/meta"))
                    .map_err(|error| FlowError::Meta(error.to_string()))?,
            ),
            page_size,
            ..SimConfig::new(ACCESS_TOKEN, APP_SECRET)
        };
        sim_config.redelivery.max_attempts = 12;
        let clock_for_sim: Arc<dyn Clock> = Arc::new(clock.clone());
        let sim = Simulator::new(scenarios, clock_for_sim, sim_config)
            .map_err(|error| FlowError::Meta(error.to_string()))?;
        let (stop, stopped) = oneshot::channel::<()>();
        let serving = sim.clone();
        let task = tokio::spawn(async move {
            serving
                .serve(sim_listener, async move {
                    let _ = stopped.await;
                })
                .await
                .map_err(|error| error.to_string())
        });
        let sim_running = Running { stop, task };

        let mut config = GatewayConfig::new(&sim_base, "v23.0", AccessToken::new(ACCESS_TOKEN))
            .map_err(|error| FlowError::Meta(error.to_string()))?;
        config.timeout = Duration::from_secs(5);
        config.retry.initial_backoff = Duration::from_millis(20);
        let gateway =
            Arc::new(HttpGateway::new(config).map_err(|error| FlowError::Meta(error.to_string()))?);
        let mut flow = Self {
            clock,
            sim,
            sim_base,
            api_base,
            api_address,
            database_url: database_url.to_owned(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .default_headers(bearer(&secret).map_err(FlowError::Server)?)
                .build()?,
            gateway,
            process: ProcessConfig::default(),
            sim_running: Some(sim_running),
            server_running: None,
            replicas: Vec::new(),
            operator_token,
            console_tokens: Vec::new(),
        };
        flow.start_server_on(api_listener).await?;
        Ok(flow)
    }

    async fn start_server_on(
        &mut self,
        listener: tokio::net::TcpListener,
    ) -> Result<(), FlowError> {
        let base = format!("http://{}", listener.local_addr()?);
        self.server_running = Some(self.serve(listener, &base).await?);
        Ok(())
    }

    /// Start one more server (API, webhooks and process manager) on the same database, on a free port, as a
    /// second instance of a deployment; its base URL. Of the process managers, only the lease holder acts.
    pub async fn start_replica(&mut self) -> Result<String, FlowError> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let running = self.serve(listener, &base).await?;
        self.replicas.push(running);
        Ok(base)
    }

    /// What `/readyz` of the server at `base` says of its process manager: `active`, `standby` or nothing.
    pub async fn process_manager_role(&self, base: &str) -> Result<Option<String>, FlowError> {
        let body: Value = self
            .client
            .get(format!("{base}/readyz"))
            .send()
            .await?
            .json()
            .await?;
        Ok(body["process_manager"].as_str().map(str::to_owned))
    }

    async fn serve(
        &self,
        listener: tokio::net::TcpListener,
        base: &str,
    ) -> Result<Running, FlowError> {
        let options = ServeOptions {
            webhook: Some(WebhookConfig {
                app_secret: APP_SECRET.into(),
                verify_token: VERIFY_TOKEN.into(),
            }),
            process: Some(ProcessSetup {
                gateway: Arc::clone(&self.gateway),
                config: self.process.clone(),
                options: ProcessOptions {
                    tick: Duration::from_millis(20),
                    // Real time: a stopped instance's standby takes over within half a second.
                    lease: LeaseOptions {
                        ttl: Duration::from_secs(3),
                        renew_every: Duration::from_millis(500),
                    },
                    ..ProcessOptions::default()
                },
            }),
            access: AccessOptions {
                // The flow's one client polls every portfolio's state every 20 ms: no per-token limit
                // a real deployment would set fits it.
                rate_limit: RateLimit::per_second(NonZeroU32::MAX, NonZeroU32::MAX),
                ..AccessOptions::default()
            },
            ..ServeOptions::default()
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(mmonboard_server::run_with(
            listener,
            self.database_url.clone(),
            self.clock.clone(),
            options,
            async move {
                let _ = stopped.await;
            },
        ));
        let task = tokio::spawn(async move {
            match task.await {
                Ok(result) => result.map_err(|error| error.to_string()),
                Err(error) => Err(error.to_string()),
            }
        });
        let running = Running { stop, task };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(response) = self.client.get(format!("{base}/readyz")).send().await
                && response.status().is_success()
            {
                return Ok(running);
            }
            if tokio::time::Instant::now() > deadline {
                return Err(FlowError::Server("not ready within 30 s".into()));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stop the server (API, webhooks and process manager) as a deployment would: the simulator keeps going,
    /// and its webhooks fail until the server is back.
    pub async fn stop_server(&mut self) -> Result<(), FlowError> {
        match self.server_running.take() {
            Some(running) => running.stop().await,
            None => Ok(()),
        }
    }

    /// Start the server again on the same address and database.
    pub async fn restart_server(&mut self) -> Result<(), FlowError> {
        self.stop_server().await?;
        let listener = tokio::net::TcpListener::bind(self.api_address).await?;
        self.start_server_on(listener).await
    }

    /// Stop everything.
    pub async fn shutdown(mut self) -> Result<(), FlowError> {
        self.stop_server().await?;
        for replica in std::mem::take(&mut self.replicas) {
            replica.stop().await?;
        }
        if let Some(running) = self.sim_running.take() {
            running.stop().await?;
        }
        // The operator's token is of no use once the flow is over: leave no credential behind.
        let store = mmonboard_access::TokenStore::open(&self.database_url).await?;
        let mut revoked = store.revoke(&self.operator_token, Utc::now()).await;
        for name in &self.console_tokens {
            if revoked.is_ok() {
                revoked = store.revoke(name, Utc::now()).await;
            }
        }
        store.close().await;
        revoked?;
        Ok(())
    }

    /// An operator token for a person to sign in to the web console with (a fresh name), revoked with the
    /// flow's own at shutdown.
    pub async fn create_console_token(
        &mut self,
    ) -> Result<(mmonboard_access::TokenName, mmonboard_access::TokenSecret), FlowError> {
        let store = mmonboard_access::TokenStore::open(&self.database_url).await?;
        let suffix = uuid::Uuid::now_v7().simple().to_string();
        let name = mmonboard_access::TokenName::parse(&format!("console-{}", &suffix[20..]))?;
        let created = store
            .create(&name, mmonboard_access::Role::Operator, Utc::now(), None)
            .await;
        store.close().await;
        let created = created?;
        self.console_tokens.push(name.clone());
        Ok((name, created.secret))
    }

    /// The actor the operator's steps are recorded with: its token's name and role.
    pub fn operator_actor(&self) -> String {
        format!("{} (operator)", self.operator_token)
    }

    /// A client that sends the flow's operator token (for reads beside the flow's own).
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    async fn post_command(
        &self,
        api_base: &str,
        portfolio: &str,
        key: &str,
        command: Value,
    ) -> Result<(u16, Value), FlowError> {
        let response = self
            .client
            .post(format!("{api_base}/v1/portfolios/{portfolio}/commands"))
            .header("Idempotency-Key", key)
            .json(&command)
            .send()
            .await?;
        let status = response.status().as_u16();
        Ok((status, response.json().await.unwrap_or(Value::Null)))
    }

    /// The operator's step; accepted, or refused because the portfolio already moved on (a repeat after a restart).
    async fn operator(
        &self,
        api_base: &str,
        portfolio: &str,
        key: &str,
        command: Value,
    ) -> Result<(), FlowError> {
        let (status, body) = self
            .post_command(api_base, portfolio, key, command.clone())
            .await?;
        if matches!(status, 200 | 201 | 409 | 422) {
            Ok(())
        } else {
            Err(FlowError::Api {
                what: command["type"].as_str().unwrap_or("a command").to_owned(),
                status,
                body,
            })
        }
    }

    async fn get(&self, path: &str) -> Result<Value, FlowError> {
        let response = self
            .client
            .get(format!("{}{path}", self.api_base))
            .send()
            .await?;
        let status = response.status().as_u16();
        let body = response.json().await.unwrap_or(Value::Null);
        if status == 200 {
            Ok(body)
        } else {
            Err(FlowError::Api {
                what: path.to_owned(),
                status,
                body,
            })
        }
    }

    /// The portfolio's state as the API shows it.
    pub async fn state(&self, portfolio: &str) -> Result<Value, FlowError> {
        self.get(&format!("/v1/portfolios/{portfolio}")).await
    }

    /// The portfolio's history as the API shows it.
    pub async fn history(&self, portfolio: &str) -> Result<Vec<Value>, FlowError> {
        Ok(self
            .get(&format!("/v1/portfolios/{portfolio}/history"))
            .await?
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// Onboard the scenario's portfolio as its operator, until it ends where the scenario expects (or the
    /// deadline, real time, passes). `on_transition` sees every event as it is recorded. Returns the final state.
    pub async fn onboard(
        &self,
        scenario: &Scenario,
        deadline: Duration,
        on_transition: &mut (dyn FnMut(&Transition) + Send),
    ) -> Result<Value, FlowError> {
        self.onboard_via(&self.api_base, scenario, deadline, on_transition)
            .await
    }

    /// `onboard`, with the operator's commands sent to the instance at `api_base` (one of several sharing the
    /// database); the flow's progress is read from the first.
    pub async fn onboard_via(
        &self,
        api_base: &str,
        scenario: &Scenario,
        deadline: Duration,
        on_transition: &mut (dyn FnMut(&Transition) + Send),
    ) -> Result<Value, FlowError> {
        let portfolio = scenario.business.id.to_string();
        let started = tokio::time::Instant::now();
        self.operator(
            api_base,
            &portfolio,
            "operator-start",
            json!({"type": "start_onboarding"}),
        )
        .await?;
        let mut seen = 0;
        loop {
            let history = self.history(&portfolio).await?;
            for entry in history.iter().skip(seen) {
                on_transition(&transition(&portfolio, entry));
            }
            seen = history.len();
            let state = self.state(&portfolio).await?;
            let phase = state["phase"].as_str().unwrap_or_default().to_owned();
            match phase.as_str() {
                "reviewing_permissions" => {
                    self.operator(
                        api_base,
                        &portfolio,
                        "operator-review",
                        json!({"type": "review_permissions", "reviewed_by": OPERATOR}),
                    )
                    .await?;
                    continue;
                }
                "entering_business_info" => {
                    // The operator confirms what Meta has on file for the business: no fact typed by hand.
                    let id = PortfolioId::parse(&portfolio)
                        .map_err(|error| FlowError::Meta(error.to_string()))?;
                    let business = self
                        .gateway
                        .business(&id)
                        .await
                        .map_err(|error| FlowError::Meta(error.to_string()))?;
                    let website = business.website.ok_or_else(|| {
                        FlowError::Meta(format!(
                            "Meta has no website on file for business {portfolio}"
                        ))
                    })?;
                    self.operator(
                        api_base,
                        &portfolio,
                        "operator-business-info",
                        json!({"type": "submit_business_info", "business_name": business.name, "website": website}),
                    )
                    .await?;
                    continue;
                }
                _ => {}
            }
            let waiting = unmet(scenario, &state, &history, &phase);
            if waiting.is_empty() {
                return Ok(state);
            }
            if started.elapsed() > deadline {
                return Err(FlowError::Timeout {
                    scenario: scenario.name.clone(),
                    portfolio,
                    expected: scenario.expect.phase.to_string(),
                    phase,
                    waiting: waiting.join("; "),
                    seconds: deadline.as_secs(),
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The simulated time now.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }
}

fn transition(portfolio: &str, entry: &Value) -> Transition {
    let text = |value: &Value| value.as_str().unwrap_or_default().to_owned();
    Transition {
        portfolio: portfolio.to_owned(),
        at: text(&entry["data"]["at"]),
        event: text(&entry["type"]),
        actor: text(&entry["metadata"]["actor"]),
        from: text(&entry["transition"]["from"]),
        to: text(&entry["transition"]["to"]),
    }
}

/// What still stands between the portfolio and the scenario's expected end; empty when it is there.
pub fn unmet(scenario: &Scenario, state: &Value, history: &[Value], phase: &str) -> Vec<String> {
    let mut waiting = Vec::new();
    let expect = &scenario.expect;
    if phase != expect.phase.as_str() {
        waiting.push(format!("phase {}", expect.phase));
    }
    for waba in &expect.routable_wabas {
        if state["wabas"][waba.as_str()]["routing"]["status"] != "onboarded" {
            waiting.push(format!("WABA {waba} onboarded"));
        }
    }
    let recorded = |type_name: &str| history.iter().any(|entry| entry["type"] == type_name);
    if let Some(Value::Array(events)) = expect.other.get("events") {
        for event in events.iter().filter_map(Value::as_str) {
            if !recorded(event) {
                waiting.push(format!("a {event} event"));
            }
        }
    }
    if phase == "live"
        && let Some(templates) = state["templates"].as_object()
    {
        for (id, template) in templates {
            if template["category"] == "MARKETING" && template["mirror_synced_at"].is_null() {
                waiting.push(format!("template {id}'s mirror synced"));
            }
        }
    }
    waiting
}
