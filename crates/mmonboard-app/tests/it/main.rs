//! The application layer against the real SQLite log: the command path, idempotency, concurrency, as-of
//! reads, history, and the aggregate cache staying right when another process writes.

mod service;
mod snapshots;
mod stored_model;
