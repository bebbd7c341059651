//! The subcommands, one module each; `run` dispatches to them and `shared` holds what they have in common.
//! Each returns its exit code; input is fully checked before the database is opened, so invalid input never
//! touches the log.

mod audit;
#[cfg(feature = "bench")]
mod bench;
#[cfg(feature = "simulator")]
mod demo;
mod exec;
mod history;
#[cfg(feature = "simulator")]
mod meta_sim;
mod projections;
mod relay;
mod report;
mod serve;
mod shared;
mod shell;
mod snapshots;
mod state;
mod tokens;

#[cfg(feature = "simulator")]
pub use demo::sample_scenarios;
pub(crate) use shared::{
    Failure, bind, counted, head_text, invalid_input, open, open_read_only, print_json, service,
    shutdown_signal, webhook_config_from_env,
};

use crate::{Cli, Command, ProjectionsAction, SnapshotsAction, TokensAction, exit};

/// Run one invocation; returns the process exit code.
pub async fn run(cli: Cli) -> u8 {
    let database = cli.database;
    let log_format = cli.log_format;
    let result = match cli.command {
        Command::Exec {
            portfolio,
            command_file,
            command_id,
            actor,
            correlation_id,
        } => {
            exec::exec(
                &database,
                &portfolio,
                command_file.as_deref(),
                command_id,
                actor,
                correlation_id,
            )
            .await
        }
        Command::State {
            portfolio,
            as_of,
            json,
        } => state::state(&database, &portfolio, as_of, json).await,
        Command::History { portfolio, json } => history::history(&database, &portfolio, json).await,
        Command::Verify {
            json,
            file,
            expect_head,
            trusted_keys,
        } => audit::verify(&database, file.as_deref(), json, expect_head, &trusted_keys).await,
        Command::Report {
            portfolio,
            out,
            file,
            trusted_keys,
        } => report::report(&database, &portfolio, &out, file.as_deref(), &trusted_keys).await,
        Command::Checkpoint { signing_key, json } => {
            audit::checkpoint(&database, &signing_key, json).await
        }
        Command::Keys {
            action: crate::KeysAction::Generate { out },
        } => audit::generate_key(&out),
        Command::Export { after, to, out } => audit::export(&database, after, to, out).await,
        Command::Import { file } => audit::import(&database, &file).await,
        #[cfg(feature = "simulator")]
        Command::Demo {
            scenarios,
            time_factor,
            keep_serving,
        } => demo::run_demo(&database, &scenarios, time_factor, keep_serving).await,
        #[cfg(feature = "bench")]
        Command::Bench {
            json,
            quick,
            nats_url,
        } => bench::bench(&database, json, quick, &nats_url).await,
        Command::Relay {
            nats_url,
            from_position,
            stream,
            subject_prefix,
            lease_ttl,
        } => {
            let mut options = mmonboard_relay::RelayOptions::new(nats_url);
            options.lease = mmonboard_process::LeaseOptions {
                ttl: lease_ttl,
                renew_every: lease_ttl / 3,
            };
            options.from_position = from_position;
            options.stream = stream;
            options.subject_prefix = subject_prefix;
            relay::relay(&database, options, log_format).await
        }
        Command::Serve(args) => serve::run(&database, log_format, args).await,
        Command::Tokens {
            action:
                TokensAction::Create {
                    name,
                    role,
                    expires_in,
                },
        } => tokens::create(&database, &name, &role, expires_in.as_deref()).await,
        Command::Tokens {
            action: TokensAction::List { json },
        } => tokens::list(&database, json).await,
        Command::Tokens {
            action: TokensAction::Revoke { name },
        } => tokens::revoke(&database, &name).await,
        #[cfg(feature = "simulator")]
        Command::MetaSim {
            listen,
            scenarios,
            webhook_url,
            time_factor,
        } => {
            meta_sim::meta_sim(
                listen,
                &scenarios,
                webhook_url.as_deref(),
                time_factor,
                log_format,
            )
            .await
        }
        Command::Projections {
            action: ProjectionsAction::Rebuild { name },
        } => projections::rebuild(&database, name.as_deref()).await,
        Command::Projections {
            action: ProjectionsAction::Status { json },
        } => projections::projection_status(&database, json).await,
        Command::Snapshots {
            action: SnapshotsAction::Rebuild { every, json },
        } => snapshots::rebuild(&database, every, json).await,
        Command::Snapshots {
            action: SnapshotsAction::Clear { json },
        } => snapshots::clear(&database, json).await,
        Command::Completions { shell } => Ok(shell::completions(shell)),
        Command::Man { dir } => Ok(shell::man(dir.as_deref())),
    };
    match result {
        // The command succeeded, but what it printed was lost: that is a failure too.
        Ok(exit::OK) if crate::output::output_failed() => exit::FAILURE,
        Ok(code) => code,
        Err(error) => {
            crate::logging::fail(log_format, &error);
            exit::FAILURE
        }
    }
}
