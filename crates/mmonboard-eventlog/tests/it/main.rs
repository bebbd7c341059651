//! Integration tests of the event log, one binary: the shared conformance suite and every
//! backend-neutral promise (group commit, concurrency, crashes, tampering, the skip test) run on
//! both backends, plus what only one backend has (SQLite's file lock and busy timeout,
//! PostgreSQL's NOTIFY listener and cross-backend hashes).

mod batch;
mod busy;
mod checkpoints;
mod concurrency;
mod conformance;
mod crash;
mod export;
mod large;
mod open;
mod postgres;
mod signed;
mod skip;
mod snapshots;
mod subscription;
mod support;
mod tamper;
mod tamper_matrix;
mod verify_live;
