//! The `mmonboard` binary: parse the arguments, start the runtime, run. Everything else is in `mmonboard-cli`.

use std::process::ExitCode;

use clap::Parser;

/// See the root Cargo.toml for why not the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = mmonboard_cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(mmonboard_cli::exit::FAILURE);
        }
    };
    ExitCode::from(runtime.block_on(mmonboard_cli::run(cli)))
}
