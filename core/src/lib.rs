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
//!   [`Engine::consume_transmit`] (with [`Engine::poll_output`] naming the
//!   nodes that got new bytes, so a runtime with one task per node wakes
//!   only those), [`Engine::poll_timeout`], [`Engine::poll_event`].
//!
//! Topologies ([`Topology`]): one node; independent instances (key `i` on
//! node `i mod n`); or a Redis Cluster, where the engine itself learns the
//! slot map (`CLUSTER SHARDS`/`SLOTS`), routes each key to its slot's master,
//! follows `MOVED`/`ASK`, asks the caller to connect to nodes it discovers
//! ([`Event::NodeAdded`], [`Engine::node_address`]) and to stop serving
//! nodes the cluster no longer names ([`Event::NodeRemoved`],
//! [`Engine::handle_retired`]).
//!
//! The same inputs give the same outputs byte for byte (randomness comes from a
//! caller-seeded generator), which is what the deterministic simulator relies on.
#![no_std]
#![forbid(unsafe_code)]

#[cfg(feature = "alloc")]
extern crate alloc;

mod cluster;
mod commands;
mod config;
mod conn;
pub mod contract;
mod engine;
mod event;
pub mod fence;
mod keys;
mod lease;
mod lock;
// The RESP3 reader and writer are internals; the fuzz targets (`fuzz/`,
// built with `--cfg fuzzing`) reach them directly, as quinn-proto's do.
mod quorum;
#[cfg(fuzzing)]
pub mod resp;
// Its items are `pub` for the fuzzing build above.
#[cfg(not(fuzzing))]
#[allow(unreachable_pub)]
mod resp;
mod routing;
mod scripts;
mod stats;
mod storage;
mod time;

pub use config::{Config, ConfigError, NoLoop, Topology, TtlMode};
pub use engine::Engine;
pub use event::{
    Command, Event, LockError, LockFailure, LockId, LockMode, LostReason, NodeError, NodeId,
    ServerError,
};
pub use fence::CounterKey;
pub use keys::MAX_MAJORITY;
pub use stats::{Losses, Stats};
pub use storage::Text;
pub use time::Instant;

/// The Redis Cluster hash slot (0..16384) of `key`: CRC16/XMODEM of the key,
/// or of its `{hash tag}` when it has one, as `CLUSTER KEYSLOT` computes it.
/// The keys of a lock are `{prefix}:{i}:{name}`; a tag in the name puts them
/// all in one slot, hence on one master.
pub fn key_slot(key: &[u8]) -> u16 {
    cluster::key_slot(&[key])
}

/// Longest lock name, in bytes. Every command repeats the name (a lock
/// writes `2m-1` keys, each with `SET` and `PTTL`), and invalidation pushes
/// carry it back, so a multi-megabyte name costs tens of megabytes per
/// attempt: such a name is a bug in the caller, refused with
/// [`LockError::NameTooLong`] before anything is sent.
pub const MAX_NAME_LEN: usize = 1 << 20;

/// How long a runtime lets the releases sent by [`Engine::close`] be
/// answered before it drops the connections anyway: 1 s. Keys whose release
/// is not answered by then expire by their TTL.
pub const CLOSE_GRACE: core::time::Duration = core::time::Duration::from_secs(1);

/// True when built with the `alloc` feature (growable storage), false in the
/// fixed-capacity build whose limits are in [`capacity`].
pub const ALLOC: bool = cfg!(feature = "alloc");

/// Fixed capacities of the build without the `alloc` feature. A lock
/// request beyond [`LOCKS`](capacity::LOCKS) or with a name longer than
/// [`TEXT`](capacity::TEXT) fails with [`LockError::CapacityExceeded`]; a
/// handshake that does not fit fails the connection with
/// [`NodeError::CapacityExceeded`]. A lock attempt that finds its
/// connection's transmit buffer or in-flight queue full is not sent: a
/// waiting `lock` retries later, but a `try_lock` is currently answered
/// [`Event::NotLocked`] (drain the transmit buffer after every call and
/// keep fewer than `IN_FLIGHT / (2 × keys)` attempts in flight to stay
/// clear of it). With `alloc` the collections grow and none of these is a
/// limit.
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
