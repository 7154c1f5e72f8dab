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
#[non_exhaustive]
pub enum LockMode {
    /// Retry until acquired (`lock`).
    Wait,
    /// One attempt (`try_lock`): [`Event::NotLocked`] on failure.
    Try,
    /// Overwrite whoever holds it (`force_lock`).
    Force,
}

/// Why a held lock was lost.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LostReason {
    /// Fewer than a majority of keys still carry our value (deleted,
    /// overwritten, flushed, or forced by someone else — also by a
    /// `force_lock` of the same locker).
    KeysChanged,
    /// The local deadline passed without a successful extension.
    Expired,
    /// The locker was closed.
    Closed,
    /// The server refused to extend the keys (the last refusal is kept): the
    /// lease ran out, or the keys changed, while extensions were refused.
    Refused(ServerError),
}

impl fmt::Display for LostReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LostReason::KeysChanged => {
                f.write_str("a majority of the lock's keys was changed by someone else")
            }
            LostReason::Expired => f.write_str("the lease ran out before it could be extended"),
            LostReason::Closed => f.write_str("the locker was closed"),
            LostReason::Refused(e) => write!(f, "the lock could not be extended: {e}"),
        }
    }
}

impl core::error::Error for LostReason {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            LostReason::Refused(e) => Some(e),
            _ => None,
        }
    }
}

/// A command of a lock operation, as named in a [`ServerError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// The acquisition's `SET key value [NX] PX validity`.
    Set,
    /// The acquisition's `PTTL key` (reads the TTL and arms tracking).
    Pttl,
    /// The extend script (`EVALSHA`, `EVAL` after `NOSCRIPT`).
    Extend,
    /// The release script (`EVALSHA`, `EVAL` after `NOSCRIPT`).
    Release,
    /// A fencing script (`crate::fence`): the read that replaces `PTTL`
    /// behind a fenced `SET` (`EVAL`), or the counter raise (`EVALSHA`,
    /// `EVAL` after `NOSCRIPT`).
    Fence,
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Command::Set => "SET",
            Command::Pttl => "PTTL",
            Command::Extend => "the extend script (EVALSHA/EVAL)",
            Command::Release => "the release script (EVALSHA/EVAL)",
            Command::Fence => "a fencing script (EVAL/EVALSHA)",
        })
    }
}

/// An error reply from Redis to one of a lock's commands: never read as
/// "someone else holds it".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerError {
    /// The node that answered.
    pub node: NodeId,
    /// The command it refused.
    pub command: Command,
    /// The server's own text (`OOM command not allowed …`, `NOPERM …`).
    pub message: Text,
}

impl ServerError {
    /// True for conditions that pass by themselves and are retried while
    /// `lock` waits: `LOADING`, `BUSY`, `TRYAGAIN`, `CLUSTERDOWN`,
    /// `MASTERDOWN`. Everything else (`OOM`, `NOPERM`, `READONLY`,
    /// `MISCONF`, `WRONGTYPE`, `NOSCRIPT` after `EVAL`, …) ends the request.
    pub fn is_transient(&self) -> bool {
        is_transient(self.message.as_bytes())
    }
}

/// See [`ServerError::is_transient`]; `text` is an error reply's text.
pub(crate) fn is_transient(text: &[u8]) -> bool {
    let code = text.split(|&b| b == b' ').next().unwrap_or(b"");
    matches!(
        code,
        b"LOADING" | b"BUSY" | b"TRYAGAIN" | b"CLUSTERDOWN" | b"MASTERDOWN"
    )
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "node {} refused {}: {}",
            self.node.0, self.command, self.message
        )
    }
}

impl core::error::Error for ServerError {}

/// Why a lock request ended without the lock, other than
/// [`Event::NotLocked`] (someone else was seen holding it).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LockFailure {
    /// A server refused a command, and that keeps a majority out of reach.
    /// `lock` waits through transient refusals ([`ServerError::is_transient`]);
    /// `try_lock` and `force_lock` report them too.
    Refused(ServerError),
    /// Nodes holding a majority of the keys are not connected. `lock` waits
    /// for them unless `error` is a refusal of the handshake (a wrong
    /// password, a replica, …), which it reports while the locker keeps
    /// reconnecting; `try_lock` and `force_lock` report it at once.
    Unavailable {
        /// One of the missing nodes.
        node: NodeId,
        /// Why its last connection attempt failed, when it did.
        error: Option<NodeError>,
    },
    /// A majority answered only after the lease had already run out (the
    /// server or this process is far too slow for the validity).
    TooSlow,
    /// A fenced `try_lock`/`force_lock` got its keys, but they were deleted
    /// (or flushed) before their fencing counters could be raised, on every
    /// one of its attempts: someone keeps removing the lock's keys.
    KeysVanished,
}

impl fmt::Display for LockFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockFailure::Refused(e) => e.fmt(f),
            LockFailure::Unavailable { node, error: None } => {
                write!(f, "node {} is not connected", node.0)
            }
            LockFailure::Unavailable {
                node,
                error: Some(e),
            } => write!(f, "node {} is not connected: {e}", node.0),
            LockFailure::TooSlow => {
                f.write_str("a majority answered only after the lease had run out")
            }
            LockFailure::KeysVanished => f.write_str(
                "the lock's keys were deleted before its fencing counters were raised, on every attempt",
            ),
        }
    }
}

impl core::error::Error for LockFailure {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            LockFailure::Refused(e) => Some(e),
            LockFailure::Unavailable { error: Some(e), .. } => Some(e),
            _ => None,
        }
    }
}

/// Why a connection must be dropped, or could not be set up.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
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
    /// Single or instances mode, but the server is a read-only replica
    /// (its `HELLO` reply says `role: replica`).
    Replica,
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
                write!(
                    f,
                    "server does not support RESP3 (HELLO 3 failed: {t}); client-side caching \
                     needs it: turn caching off (client_caching(false)) to lock over RESP2"
                )
            }
            NodeError::Protocol(what) => write!(f, "protocol error: {what}"),
            NodeError::Unresponsive => f.write_str("server did not answer a ping in time"),
            NodeError::CapacityExceeded => f.write_str("engine capacity exceeded"),
            NodeError::Replica => f.write_str(
                "the server is a read-only replica; connect to its master (locks write keys)",
            ),
            NodeError::Topology(t) => write!(f, "topology mismatch: {t}"),
        }
    }
}

impl core::error::Error for NodeError {}

/// Why [`crate::Engine::lock`] refused a request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LockError {
    /// The engine was closed.
    Closed,
    /// The name is empty.
    EmptyName,
    /// The name is longer than [`crate::MAX_NAME_LEN`].
    NameTooLong,
    /// Too many locks or too long a name for the no-alloc capacities.
    CapacityExceeded,
}

impl fmt::Display for LockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LockError::Closed => "the locker is closed",
            LockError::EmptyName => "lock name must not be empty",
            LockError::NameTooLong => "lock name is longer than MAX_NAME_LEN (1 MiB)",
            LockError::CapacityExceeded => "engine capacity exceeded",
        })
    }
}

impl core::error::Error for LockError {}

/// An output of the engine, drained with [`crate::Engine::poll_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
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
    /// Cluster: `node` left the topology (the cluster stopped naming it).
    /// Stop serving it: drop its connection, do not reconnect, then call
    /// [`crate::Engine::handle_retired`] so that its id may serve a node
    /// added later.
    NodeRemoved {
        /// The retired node.
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
    /// A `Try` request failed: another holder was seen on enough keys
    /// that no majority can be had.
    NotLocked {
        /// The lock.
        id: LockId,
    },
    /// A request ended without the lock for a reason other than another
    /// holder (see [`LockFailure`]). Never for `Wait` requests on transient
    /// conditions: those retry with backoff.
    Failed {
        /// The lock.
        id: LockId,
        /// Why.
        error: LockFailure,
    },
    /// A held lock was lost; its remaining keys are being released.
    Lost {
        /// The lock.
        id: LockId,
        /// Why.
        reason: LostReason,
    },
    /// Comes right before [`Event::Released`] when a release was refused
    /// by the server: those keys stay until their TTL.
    NotReleased {
        /// The lock.
        id: LockId,
        /// The (last) refusal.
        error: ServerError,
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
