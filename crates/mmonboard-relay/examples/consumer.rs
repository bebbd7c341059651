//! An example consumer of mmonboard's events in NATS JetStream, for other teams to copy: it keeps a tiny
//! projection (which portfolios went live) from a durable pull consumer with a subject filter, and survives
//! restarts without losing an event or applying one twice.
//!
//! The rules it shows:
//! - A durable consumer (`--durable`) remembers what was acknowledged, so a restart continues where the
//!   last run stopped; the subject filter (`mmonboard.onboarding.*.sync_completed`) leaves the rest of the
//!   stream on the server.
//! - Apply, save, then acknowledge. A crash between the save and the acknowledgement makes JetStream
//!   deliver the message again (after `ack_wait`); the projection remembers the last global position it
//!   applied (the `Mmonboard-Position` header) and skips anything at or below it, so nothing is applied
//!   twice. Positions only grow along one subject filter, so one number is all the dedup state needed.
//!
//! Run it beside `mmonboard serve --nats-url nats://127.0.0.1:4222`:
//!
//! ```text
//! cargo run -p mmonboard-relay --example consumer -- --nats-url nats://127.0.0.1:4222 --state live.json
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Where to read and where to keep the projection.
#[derive(Debug, Clone)]
pub struct Config {
    pub nats_url: String,
    pub stream: String,
    /// e.g. `mmonboard.onboarding.*.sync_completed`
    pub filter_subject: String,
    /// The durable consumer's name: one per projection.
    pub durable: String,
    /// The projection's file (JSON, replaced atomically).
    pub state: PathBuf,
    /// How long JetStream waits for an acknowledgement before delivering a message again.
    pub ack_wait: Duration,
}

/// The projection: the portfolios that went live (with the position of that event), and how far it got.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LivePortfolios {
    /// The global position of the last event applied.
    pub last_position: u64,
    /// Portfolio id → position of its `sync_completed`.
    pub live: BTreeMap<String, u64>,
    /// Deliveries skipped because they were applied before (redeliveries after a crash).
    pub skipped: u64,
}

impl LivePortfolios {
    pub fn load(path: &Path) -> Result<Self, Error> {
        match std::fs::read(path) {
            Ok(bytes) => Ok(serde_json::from_slice(&bytes).map_err(|error| {
                format!("the projection {} is not readable: {error}", path.display())
            })?),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(error) => Err(format!("cannot read {}: {error}", path.display()).into()),
        }
    }

    /// Written to a temporary file and renamed over the old one, so a crash leaves one or the other.
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        let temporary = path.with_extension("tmp");
        std::fs::write(&temporary, serde_json::to_vec_pretty(self)?)?;
        std::fs::rename(&temporary, path)?;
        Ok(())
    }

    /// Apply one event; false when it was applied before.
    pub fn apply(&mut self, position: u64, portfolio_id: &str) -> bool {
        if position <= self.last_position {
            self.skipped += 1;
            return false;
        }
        self.live.insert(portfolio_id.to_owned(), position);
        self.last_position = position;
        true
    }
}

/// Consume until `done` says so (never, for a service). `crash_after`: stop right after applying and saving
/// that many deliveries, before acknowledging the last one, as a crash would (for the example's test).
pub async fn consume(
    config: &Config,
    done: impl Fn(&LivePortfolios) -> bool,
    crash_after: Option<usize>,
) -> Result<LivePortfolios, Error> {
    let mut state = LivePortfolios::load(&config.state)?;
    let client = async_nats::connect(config.nats_url.as_str()).await?;
    let context = jetstream::new(client);
    let stream = context.get_stream(&config.stream).await?;
    let consumer: consumer::PullConsumer = stream
        .get_or_create_consumer(
            &config.durable,
            consumer::pull::Config {
                durable_name: Some(config.durable.clone()),
                filter_subject: config.filter_subject.clone(),
                ack_policy: consumer::AckPolicy::Explicit,
                ack_wait: config.ack_wait,
                deliver_policy: consumer::DeliverPolicy::All,
                ..Default::default()
            },
        )
        .await?;
    if done(&state) {
        return Ok(state);
    }
    let mut messages = consumer.messages().await?;
    let mut handled = 0;
    while let Some(message) = messages.next().await {
        let message = message?;
        let position: u64 = message
            .headers
            .as_ref()
            .and_then(|headers| headers.get(mmonboard_relay::POSITION_HEADER))
            .and_then(|value| value.as_str().parse().ok())
            .ok_or("a message without the Mmonboard-Position header")?;
        // The body is the CloudEvent; its `subject` is the portfolio id.
        let event: serde_json::Value = serde_json::from_slice(&message.payload)?;
        let portfolio_id = event["subject"]
            .as_str()
            .ok_or("a CloudEvent without a subject")?;
        // Applied or skipped as applied before, the projection is saved before the acknowledgement.
        state.apply(position, portfolio_id);
        state.save(&config.state)?;
        handled += 1;
        if crash_after == Some(handled) {
            return Ok(state);
        }
        // Confirmed by the server, so that a restart right after does not see it again.
        message.double_ack().await?;
        if done(&state) {
            return Ok(state);
        }
    }
    Err("the consumer's message stream ended".into())
}

fn argument(arguments: &[String], name: &str) -> Option<String> {
    arguments
        .iter()
        .position(|argument| argument == name)
        .and_then(|index| arguments.get(index + 1))
        .cloned()
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let arguments: Vec<String> = std::env::args().collect();
    let config = Config {
        nats_url: argument(&arguments, "--nats-url")
            .unwrap_or_else(|| "nats://127.0.0.1:4222".to_owned()),
        stream: argument(&arguments, "--stream")
            .unwrap_or_else(|| mmonboard_relay::DEFAULT_STREAM.to_owned()),
        filter_subject: argument(&arguments, "--filter").unwrap_or_else(|| {
            format!(
                "{}.*.sync_completed",
                mmonboard_relay::DEFAULT_SUBJECT_PREFIX
            )
        }),
        durable: argument(&arguments, "--durable").unwrap_or_else(|| "live-portfolios".to_owned()),
        state: argument(&arguments, "--state")
            .map_or_else(|| PathBuf::from("live-portfolios.json"), PathBuf::from),
        ack_wait: Duration::from_secs(30),
    };
    tokio::select! {
        outcome = consume(&config, |_| false, None) => { outcome?; }
        _ = tokio::signal::ctrl_c() => {}
    }
    let state = LivePortfolios::load(&config.state)?;
    println!(
        "{} portfolios live, last position {}",
        state.live.len(),
        state.last_position
    );
    Ok(())
}
