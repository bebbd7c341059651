//! Black-box tests of the HTTP service: the real server on port 0 with a fresh database and a clock the
//! test controls.

mod access;
mod api;
mod audit;
mod console;
mod disk_full;
mod edges;
mod filters;
mod idempotency;
mod metrics;
mod openapi;
mod recovery;
mod stream;
mod support;
mod transport;
mod webhook;
