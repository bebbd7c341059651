//! `mmonboard bench`: the event log measured on a fresh temporary database against raw baselines.

use super::{Failure, print_json};
use crate::exit;

pub(super) async fn bench(
    database: &str,
    as_json: bool,
    quick: bool,
    nats_url: &str,
) -> Result<u8, Failure> {
    // The bench never touches the log `--database` names: on SQLite it runs on a temporary file; on
    // PostgreSQL in a temporary database it creates on that server and drops afterwards.
    let postgres_server = match mmonboard_eventlog::Backend::of_url(database)? {
        mmonboard_eventlog::Backend::Sqlite => None,
        mmonboard_eventlog::Backend::Postgres => Some(database.to_owned()),
    };
    let options = mmonboard_bench::BenchOptions {
        scale: if quick { 0.1 } else { 1.0 },
        postgres_server,
        nats_url: Some(nats_url.to_owned()),
    };
    let report = mmonboard_bench::run(options, |line| eprintln!("{line}"))
        .await
        .map_err(|error| Failure::Bench(error.to_string()))?;
    if as_json {
        print_json(&report.to_json())?;
    } else {
        out_part!("{}", report.to_table());
    }
    Ok(exit::OK)
}
