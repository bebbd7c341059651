//! Black-box tests of the HTTP service: the real server on port 0 with a fresh database and a clock the
//! test controls.

mod api;
mod edges;
mod idempotency;
mod stream;
mod support;
mod webhook;
