//! The simulator's handle, its configuration, what it records, and the background task that fires scheduled
//! things and sends webhooks.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use mmonboard_app::Clock;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::scenario::{Scenario, ScenarioError};
use crate::world::World;

/// How a webhook delivery that was not acknowledged is sent again. Real time: the receiver is a real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Redelivery {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for Redelivery {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
        }
    }
}

impl Redelivery {
    /// The wait after failed attempt `attempt` (1-based): doubling from `initial_backoff`, capped.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

/// Meta's default page size for an edge.
pub const DEFAULT_PAGE_SIZE: usize = 25;

/// How the simulator runs.
#[derive(Clone)]
pub struct SimConfig {
    /// Graph API requests must carry `Authorization: Bearer <access_token>`; others get 401 with error 190.
    pub access_token: String,
    /// Webhook deliveries are signed with it (`X-Hub-Signature-256`).
    pub app_secret: String,
    /// Where webhooks are POSTed; `None`: they are only recorded.
    pub webhook_url: Option<url::Url>,
    pub redelivery: Redelivery,
    /// How often (real time) the background task looks at the clock for scheduled things that are due.
    pub tick: Duration,
    /// The most entries of an edge on one page (Meta's default is 25); `?limit=` asks for fewer.
    pub page_size: usize,
}

impl SimConfig {
    /// A configuration with the defaults: no webhook URL, [`Redelivery::default`], a 20 ms tick, pages of 25.
    pub fn new(access_token: impl Into<String>, app_secret: impl Into<String>) -> Self {
        Self {
            access_token: access_token.into(),
            app_secret: app_secret.into(),
            webhook_url: None,
            redelivery: Redelivery::default(),
            tick: Duration::from_millis(20),
            page_size: DEFAULT_PAGE_SIZE,
        }
    }
}

impl fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimConfig")
            .field("access_token", &"<redacted>")
            .field("app_secret", &"<redacted>")
            .field(
                "webhook_url",
                &self.webhook_url.as_ref().map(url::Url::as_str),
            )
            .field("redelivery", &self.redelivery)
            .field("tick", &self.tick)
            .field("page_size", &self.page_size)
            .finish()
    }
}

/// A Graph API request the simulator received (control routes under `/sim/` are not recorded).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedRequest {
    /// `GET` or `POST`.
    pub method: String,
    /// The path without the version prefix, e.g. `/4100000001/onboard_partners_to_mm_lite` (the whole path
    /// when it had no valid version).
    pub path: String,
    /// When it arrived, in simulated time.
    pub at: DateTime<Utc>,
    /// The HTTP status it was answered with.
    pub status: u16,
}

/// One webhook delivery and how it went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// 1, 2, … in the order the deliveries were made.
    pub id: u64,
    /// The WABA it is about (`entry[0].id`); deliveries are sent in order per WABA.
    pub waba_id: String,
    /// `account_update` or `template_category_update`.
    pub field: String,
    /// The simulated time of the change (`entry[0].time`).
    pub at: DateTime<Utc>,
    /// The exact bytes sent, every attempt the same (UTF-8 JSON).
    pub body: String,
    /// HTTP attempts made so far (0 when no webhook URL is configured).
    pub attempts: u32,
    /// The receiver answered a 2xx.
    pub acknowledged: bool,
    /// The status of the last attempt; `None` before the first or when the connection failed.
    pub last_status: Option<u16>,
    /// Why the last attempt failed to get an answer, if it did.
    pub last_error: Option<String>,
}

/// A fault planted with `POST /sim/faults`: the next `count` Graph API requests with `method` whose path
/// (without the version prefix) contains `path_contains` fail with HTTP `status` and Graph error `code`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// `GET` or `POST`.
    pub method: String,
    pub path_contains: String,
    #[serde(default = "Fault::default_status")]
    pub status: u16,
    #[serde(default = "Fault::default_code")]
    pub code: i64,
    #[serde(default = "Fault::default_count")]
    pub count: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Apply the request first, then answer with the error anyway: a write whose outcome the caller cannot know.
    #[serde(default)]
    pub drop: bool,
}

impl Fault {
    fn default_status() -> u16 {
        500
    }
    fn default_code() -> i64 {
        1
    }
    fn default_count() -> u32 {
        1
    }
}

pub(crate) struct Inner {
    pub world: Mutex<World>,
    pub clock: Arc<dyn Clock>,
    pub config: SimConfig,
    /// Woken when a delivery was queued.
    pub queued: Notify,
}

/// The simulated Meta. Clones share it.
#[derive(Clone)]
pub struct Simulator {
    pub(crate) inner: Arc<Inner>,
}

impl fmt::Debug for Simulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Simulator")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Simulator {
    /// A simulator serving every scenario at once. Each is checked again, and no Graph object id (business,
    /// WABA, phone number, template) may appear twice across them: the error names the id and both places.
    pub fn new(
        scenarios: Vec<Scenario>,
        clock: Arc<dyn Clock>,
        config: SimConfig,
    ) -> Result<Self, ScenarioError> {
        let mut seen: BTreeMap<String, (&'static str, String)> = BTreeMap::new();
        for scenario in &scenarios {
            scenario.validate()?;
            for (kind, id) in scenario.object_ids() {
                let here = format!("{} ({kind})", scenario.origin());
                if let Some((first_kind, first)) = seen.get(id) {
                    // The same template listed twice inside one scenario is as wrong as across two.
                    return Err(ScenarioError::DuplicateId {
                        kind: if *first_kind == kind { kind } else { "object" },
                        id: id.to_owned(),
                        first: first.clone(),
                        second: here,
                    });
                }
                seen.insert(id.to_owned(), (kind, here));
            }
        }
        let world = World::new(scenarios, clock.now(), config.webhook_url.is_some());
        Ok(Self {
            inner: Arc::new(Inner {
                world: Mutex::new(world),
                clock,
                config,
                queued: Notify::new(),
            }),
        })
    }

    /// Every Graph API request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.world().requests.clone()
    }

    /// Every webhook delivery made so far, in order, with how it went.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.world().deliveries.clone()
    }

    /// Serve [`Simulator::router`] on `listener` and run the background task (scheduled things, webhook
    /// deliveries and redeliveries) until `shutdown` completes.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let background = tokio::spawn(self.clone().background(stopped));
        let served = axum::serve(listener, self.router())
            .with_graceful_shutdown(async move {
                shutdown.await;
                let _ = stop.send(true);
            })
            .await;
        // The sender is gone once `serve` returns, however it ended: the background task stops.
        let _ = background.await;
        served
    }

    pub(crate) fn world(&self) -> MutexGuard<'_, World> {
        self.inner
            .world
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    /// Run `change` on the world brought up to the clock's now, then wake the sender if deliveries were queued.
    pub(crate) fn with_world<T>(&self, change: impl FnOnce(&mut World, DateTime<Utc>) -> T) -> T {
        let now = self.now();
        let (result, queued) = {
            let mut world = self.world();
            let before = world.deliveries.len();
            world.catch_up(now);
            let result = change(&mut world, now);
            (result, world.deliveries.len() > before)
        };
        if queued {
            self.inner.queued.notify_one();
        }
        result
    }

    async fn background(self, mut stopped: tokio::sync::watch::Receiver<bool>) {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .user_agent("facebookexternalua")
            .build()
            .unwrap_or_default();
        let mut tick = tokio::time::interval(self.inner.config.tick.max(Duration::from_millis(1)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut senders = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                changed = stopped.changed() => if changed.is_err() || *stopped.borrow() { break },
                _ = tick.tick() => {}
                () = self.inner.queued.notified() => {}
            }
            self.with_world(|_, _| ());
            let Some(url) = self.inner.config.webhook_url.clone() else {
                continue;
            };
            let idle: Vec<String> = {
                let mut world = self.world();
                let waiting: Vec<String> = world
                    .outbox
                    .iter()
                    .filter(|(waba_id, queue)| !queue.is_empty() && !world.busy.contains(*waba_id))
                    .map(|(waba_id, _)| waba_id.clone())
                    .collect();
                world.busy.extend(waiting.iter().cloned());
                waiting
            };
            for waba_id in idle {
                senders.spawn(
                    self.clone()
                        .send_outbox(client.clone(), url.clone(), waba_id),
                );
            }
            while senders.try_join_next().is_some() {}
        }
        senders.abort_all();
        while senders.join_next().await.is_some() {}
        self.world().busy.clear();
    }

    /// Send one WABA's queued deliveries in order, each until acknowledged or out of attempts.
    async fn send_outbox(self, client: reqwest::Client, url: url::Url, waba_id: String) {
        let redelivery = self.inner.config.redelivery;
        loop {
            let next = {
                let mut world = self.world();
                match world
                    .outbox
                    .get(&waba_id)
                    .and_then(|queue| queue.front().copied())
                {
                    Some(index) => (index, world.deliveries[index].body.clone()),
                    None => {
                        world.busy.remove(&waba_id);
                        return;
                    }
                }
            };
            let (index, body) = next;
            let signature = mmonboard_meta::webhook::sign(
                self.inner.config.app_secret.as_bytes(),
                body.as_bytes(),
            );
            for attempt in 1..=redelivery.max_attempts.max(1) {
                let answer = client
                    .post(url.clone())
                    .header("content-type", "application/json")
                    .header(mmonboard_meta::webhook::SIGNATURE_HEADER, &signature)
                    .body(body.clone())
                    .send()
                    .await;
                let acknowledged = {
                    let mut world = self.world();
                    let delivery = &mut world.deliveries[index];
                    delivery.attempts = attempt;
                    match &answer {
                        Ok(response) => {
                            delivery.last_status = Some(response.status().as_u16());
                            delivery.last_error = None;
                            delivery.acknowledged = response.status().is_success();
                        }
                        Err(error) => {
                            delivery.last_status = None;
                            delivery.last_error = Some(error.to_string());
                        }
                    }
                    delivery.acknowledged
                };
                if acknowledged {
                    break;
                }
                if attempt < redelivery.max_attempts {
                    tracing::debug!(
                        delivery = index + 1,
                        attempt,
                        "webhook not acknowledged; sending it again"
                    );
                    tokio::time::sleep(redelivery.backoff(attempt)).await;
                } else {
                    tracing::warn!(
                        delivery = index + 1,
                        attempt,
                        "webhook never acknowledged; giving up"
                    );
                }
            }
            self.world()
                .outbox
                .get_mut(&waba_id)
                .and_then(|queue| queue.pop_front());
        }
    }
}
