//! Black-box tests of the `mmonboard` command line: the contract scripts rely on (subcommands, JSON shapes,
//! exit codes), run against the real binary on a fresh database per test.

mod audit;
mod cli;
mod console_demo;
mod crash;
mod docs;
mod e2e;
mod logs;
mod relay;
mod report;
mod support;
mod tokens;
#[cfg(feature = "otel")]
mod traces;
