//! The relay against the real NATS JetStream (each test with a stream and subjects of its own, deleted at
//! the end) and the log on both backends.

mod checkpoints;
mod consumer;
mod nats_down;
mod publish;
mod support;
