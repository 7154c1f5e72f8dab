//! Sans-I/O engine of **tracklock**, a Redis distributed lock driven by
//! client-side caching (RESP3 `CLIENT TRACKING` invalidations).
//!
//! The [`Engine`] owns the protocol state of every lock of one locker and of
//! every node connection. It performs no I/O, reads no clock and spawns
//! nothing: the caller hands in bytes, connection changes and the current
//! monotonic [`Instant`], and drains what the engine wants done.
//!
//! Method kinds, in the style of `quinn-proto`:
//! - inputs: [`Engine::handle_connected`], [`Engine::handle_bytes`],
//!   [`Engine::handle_disconnected`], [`Engine::handle_timeout`];
//! - commands: [`Engine::lock`], [`Engine::unlock`], [`Engine::close`];
//! - outputs, drained after every input or command: [`Engine::transmit`] /
//!   [`Engine::consume_transmit`], [`Engine::poll_timeout`],
//!   [`Engine::poll_event`].
//!
//! The same inputs give the same outputs byte for byte (randomness comes from a
//! caller-seeded generator), which is what the deterministic simulator relies on.
#![no_std]
#![forbid(unsafe_code)]

#[cfg(feature = "alloc")]
extern crate alloc;

mod commands;
mod config;
mod conn;
mod engine;
mod event;
mod keys;
mod lease;
mod lock;
pub mod resp;
mod routing;
mod scripts;
mod storage;
mod time;

pub use config::{Config, ConfigError, NoLoop, Topology, TtlMode};
pub use engine::Engine;
pub use event::{Event, LockError, LockId, LockMode, LostReason, NodeError, NodeId};
pub use keys::MAX_MAJORITY;
pub use storage::Text;
pub use time::Instant;
