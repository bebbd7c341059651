//! Integration tests of the event log, one binary: the shared conformance suite run against
//! the SQLite store, plus what only SQLite has (processes sharing a file, its write lock,
//! tampering with the file, group commit).

mod batch;
mod busy;
mod concurrency;
mod conformance;
mod crash;
mod large;
mod open;
mod skip;
mod subscription;
mod support;
mod tamper;
