//! What [`crate::Locker::stats`] returns: the engine's counters plus, per
//! node, its address, its connection state and the driver's connection
//! counts. A snapshot, taken under the locker's lock in one go.

pub use tracklock_core::{Losses, Stats as EngineStats};

/// A snapshot of a locker's counters, for a metrics exporter.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Lock attempts and outcomes, losses by reason, extensions, commands
    /// and bytes sent, connections and handshakes.
    pub engine: EngineStats,
    /// One entry per node in node-id order: the configured ones first,
    /// then (cluster) the discovered ones, retired ones included.
    pub nodes: Vec<NodeStats>,
}

/// One node's connection.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeStats {
    /// `host:port`.
    pub addr: String,
    /// Where its connection is.
    pub state: ConnectionState,
    /// TCP connections opened to it.
    pub connects: u64,
    /// Connections (or connection attempts) that ended with an error; each
    /// is followed by a reconnection after a backoff.
    pub failures: u64,
    /// Handshakes finished on it.
    pub handshakes: u64,
}

/// Where a node's connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionState {
    /// Not connected: connecting, or waiting to reconnect.
    Down,
    /// Connected, handshake under way.
    Handshake,
    /// Ready for lock commands.
    Ready,
    /// Cluster: the node left the topology and is no longer served.
    Retired,
}
