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

/// True when built with the `alloc` feature (growable storage), false in the
/// fixed-capacity build whose limits are in [`capacity`].
pub const ALLOC: bool = cfg!(feature = "alloc");

/// Fixed capacities of the build without the `alloc` feature. A request
/// that would exceed one fails with [`LockError::CapacityExceeded`] (locks,
/// name length) or [`NodeError::CapacityExceeded`] (a connection's queues);
/// a full transmit buffer only delays commands until the caller drains it.
/// With `alloc` the collections grow and these are not limits.
pub mod capacity {
    /// Live lock requests per engine (pending, held or releasing).
    pub const LOCKS: usize = crate::engine::LOCK_CAP;
    /// Nodes (connections) per engine.
    pub const NODES: usize = crate::engine::NODE_CAP;
    /// Events not yet taken with `Engine::poll_event`; drain after every
    /// call to stay far below it.
    pub const EVENTS: usize = crate::engine::EVENT_CAP;
    /// Bytes waiting in one connection's transmit buffer.
    pub const TRANSMIT: usize = crate::conn::TX_CAP;
    /// Replies one connection may wait for (commands in flight).
    pub const IN_FLIGHT: usize = crate::conn::EXPECT_CAP;
    /// Longest lock name, prefix, user name, password or client name, in
    /// bytes.
    pub const TEXT: usize = crate::storage::TEXT_CAP;
}
