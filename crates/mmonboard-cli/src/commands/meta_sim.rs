//! `mmonboard meta-sim`: a simulator of the part of Meta's Graph API mmonboard speaks to, from scenario files.

use mmonboard_app::{Clock, SystemClock};
use mmonboard_metasim::Scenario;

use super::{Failure, bind, invalid_input, shutdown_signal};
use crate::exit;

pub(super) async fn meta_sim(
    listen: std::net::SocketAddr,
    files: &[std::path::PathBuf],
    webhook_url: Option<&str>,
    time_factor: u32,
    log_format: crate::logging::LogFormat,
) -> Result<u8, Failure> {
    let mut scenarios = Vec::with_capacity(files.len());
    for file in files {
        match Scenario::from_file(file) {
            Ok(scenario) => scenarios.push(scenario),
            Err(error) => return invalid_input(&error.to_string()),
        }
    }
    let webhook_url = match webhook_url.map(url::Url::parse).transpose() {
        Ok(url) => url,
        Err(error) => return invalid_input(&format!("--webhook-url is not a URL: {error}")),
    };
    let read = |name: &str| {
        std::env::var(name)
            .ok()
            .filter(|value| !value.trim().is_empty())
    };
    let Some(access_token) = read("META_ACCESS_TOKEN") else {
        return invalid_input(
            "set META_ACCESS_TOKEN: the simulator accepts Graph API requests carrying that token",
        );
    };
    let Some(app_secret) = read("META_APP_SECRET") else {
        return invalid_input("set META_APP_SECRET: the simulator signs its webhooks with it");
    };
    let clock: std::sync::Arc<dyn Clock> = if time_factor > 1 {
        std::sync::Arc::new(mmonboard_app::AcceleratedClock::starting_at(
            chrono::Utc::now(),
            time_factor,
        ))
    } else {
        std::sync::Arc::new(SystemClock)
    };
    let config = mmonboard_metasim::SimConfig {
        webhook_url,
        ..mmonboard_metasim::SimConfig::new(access_token, app_secret)
    };
    let simulator = match mmonboard_metasim::Simulator::new(scenarios, clock, config) {
        Ok(simulator) => simulator,
        Err(error) => return invalid_input(&error.to_string()),
    };
    crate::logging::init(log_format);
    let listener = bind(listen).await?;
    if let Ok(address) = listener.local_addr() {
        crate::logging::say(
            log_format,
            format_args!(
                "mmonboard meta-sim serving http://{address} ({} scenario(s), time x{time_factor})",
                files.len()
            ),
        );
    }
    simulator
        .serve(listener, shutdown_signal())
        .await
        .map_err(|source| Failure::Listen {
            address: listen,
            source,
        })?;
    Ok(exit::OK)
}
