//! Black-box tests of the `mmonboard` command line: the contract scripts rely on (subcommands, JSON shapes,
//! exit codes), run against the real binary on a fresh database per test.

mod audit;
mod cli;
mod crash;
mod console_demo;
mod docs;
mod e2e;
mod logs;
mod report;
mod relay;
mod support;
mod tokens;
