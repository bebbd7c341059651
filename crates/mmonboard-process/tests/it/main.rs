//! The process manager against an in-memory Meta (the end-to-end runs over HTTP against the simulator are in
//! the root crate's tests): every step, timers that survive a restart and fire once, a restart in the middle
//! that repeats nothing, and Meta's failures turned into a visible stall.

mod fake;
mod manager;
mod storage;
