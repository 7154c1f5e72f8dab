//! What the engine reports to its caller.

use core::fmt;

use crate::storage::Text;

/// Index of a Redis node (connection) in the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub u16);

/// Identifies one lock request for its whole life. Slots are reused, the
/// generation is not, so a stale id never names a newer lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LockId {
    pub(crate) slot: u32,
    pub(crate) generation: u32,
}

impl LockId {
    /// A compact number, unique among live locks (for maps and logs).
    pub fn as_u64(self) -> u64 {
        (u64::from(self.generation) << 32) | u64::from(self.slot)
    }
}

/// How a lock request behaves when the lock is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// Retry until acquired (`lock`).
    Wait,
    /// One attempt (`try_lock`): [`Event::NotLocked`] on failure.
    Try,
    /// Overwrite whoever holds it (`force_lock`).
    Force,
}

/// Why a held lock was lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LostReason {
    /// Fewer than a majority of keys still carry our value (deleted,
    /// overwritten, flushed or forced by someone else).
    KeysChanged,
    /// The local deadline passed without a successful extension.
    Expired,
    /// The locker was closed.
    Closed,
}

impl fmt::Display for LostReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LostReason::KeysChanged => "a majority of the lock's keys was changed by someone else",
            LostReason::Expired => "the lease ran out before it could be extended",
            LostReason::Closed => "the locker was closed",
        })
    }
}

/// Why a connection must be dropped, or could not be set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeError {
    /// The server answered the handshake with an error (its own text).
    Handshake(Text),
    /// The server does not speak RESP3.
    Resp3Unsupported(Text),
    /// The server sent bytes that are not valid RESP3, or a reply that does
    /// not fit the request it answers.
    Protocol(&'static str),
    /// A ping went unanswered.
    Unresponsive,
    /// An engine capacity was exceeded (no-alloc build).
    CapacityExceeded,
    /// The server's mode does not match the configured topology (a cluster
    /// node in single/instances mode, or a standalone server in cluster
    /// mode), or it refused to describe the cluster.
    Topology(Text),
}

impl fmt::Display for NodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeError::Handshake(t) => write!(f, "handshake refused by server: {t}"),
            NodeError::Resp3Unsupported(t) => {
                write!(f, "server does not support RESP3 (HELLO 3 failed: {t})")
            }
            NodeError::Protocol(what) => write!(f, "protocol error: {what}"),
            NodeError::Unresponsive => f.write_str("server did not answer a ping in time"),
            NodeError::CapacityExceeded => f.write_str("engine capacity exceeded"),
            NodeError::Topology(t) => write!(f, "topology mismatch: {t}"),
        }
    }
}

/// Why [`crate::Engine::lock`] refused a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockError {
    /// The engine was closed.
    Closed,
    /// The name is empty.
    EmptyName,
    /// Too many locks or too long a name for the no-alloc capacities.
    CapacityExceeded,
}

impl fmt::Display for LockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LockError::Closed => "the locker is closed",
            LockError::EmptyName => "lock name must not be empty",
            LockError::CapacityExceeded => "engine capacity exceeded",
        })
    }
}

/// An output of the engine, drained with [`crate::Engine::poll_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The handshake on `node` finished; locks can use it.
    NodeReady {
        /// The node.
        node: NodeId,
    },
    /// Cluster: the engine learned of a new node (a master no seed covers).
    /// Open a connection to [`crate::Engine::node_address`] and serve it
    /// like the others.
    NodeAdded {
        /// The new node.
        node: NodeId,
    },
    /// The caller must drop the connection to `node` (and later reconnect,
    /// then call [`crate::Engine::handle_connected`]).
    CloseConnection {
        /// The node.
        node: NodeId,
        /// Why.
        error: NodeError,
    },
    /// The lock is held.
    Acquired {
        /// The lock.
        id: LockId,
    },
    /// A `Try` request failed: the lock is held by someone else.
    NotLocked {
        /// The lock.
        id: LockId,
    },
    /// A held lock was lost; its remaining keys are being released.
    Lost {
        /// The lock.
        id: LockId,
        /// Why.
        reason: LostReason,
    },
    /// An `unlock` finished: every key is released (or certainly expired).
    Released {
        /// The lock.
        id: LockId,
    },
    /// A request that had not acquired yet ended because the engine closed.
    Closed {
        /// The lock.
        id: LockId,
    },
}
