//! Per-node connection state: handshake progress, the queue of replies we
//! expect (Redis answers in request order), the transmit buffer, liveness.

use core::time::Duration;

use crate::engine::NODE_CAP;
use crate::event::{LockId, NodeError, NodeId};
use crate::storage::{Bytes, Fifo};
use crate::time::Instant;

/// Transmit buffer capacity in the no-alloc build.
pub(crate) const TX_CAP: usize = 8192;
/// Outstanding replies per connection in the no-alloc build.
pub(crate) const EXPECT_CAP: usize = 256;

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum ConnPhase {
    /// No connection (never connected, dropped, or told to close).
    #[default]
    Down,
    /// `HELLO` and friends are in flight.
    Handshake,
    /// Lock commands may be sent.
    Ready,
}

/// What a lock operation's reply means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyOp {
    /// Reply to `SET ... NX`.
    AcquireSet,
    /// Reply to the `PTTL` that follows it.
    AcquireTtl,
    /// Reply to the extend script, sent at `sent`.
    Extend {
        /// When the request left (the lease is counted from here).
        sent: Instant,
        /// Sent by `EVALSHA` (a `NOSCRIPT` reply means: resend by `EVAL`).
        by_sha: bool,
        /// The refresh threshold it was sent with.
        refresh_below: u64,
    },
    /// Reply to the fencing raise script (`crate::fence`).
    Raise {
        /// Sent by `EVALSHA`.
        by_sha: bool,
    },
    /// Reply to the release script.
    Release {
        /// Sent by `EVALSHA`.
        by_sha: bool,
    },
}

/// One reply we are waiting for, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expect {
    Hello,
    Select,
    Tracking,
    /// `AUTH`, `CLIENT SETNAME` or a `PING` of the RESP2 handshake.
    Setup,
    /// A reply to drop unread: the `SELECT` pipelined behind a `HELLO` the
    /// server refused (the RESP2 handshake selects again after `AUTH`).
    Ignore,
    Ping,
    /// `ASKING` before a redirected command.
    Asking,
    /// A topology query: `CLUSTER SHARDS` (true) or `CLUSTER SLOTS`.
    Topology {
        shards: bool,
    },
    Op {
        id: LockId,
        key: u8,
        op: KeyOp,
    },
}

/// A key written by the reply just processed: the invalidation Redis sends
/// right behind that reply (own-write echo, without `NOLOOP`) is not news.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Echo {
    pub(crate) id: LockId,
    pub(crate) key: u8,
}

/// Whether a node is still part of the topology (cluster mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Membership {
    #[default]
    Member,
    /// Gone from the cluster's topology: announced by `NodeRemoved`, not
    /// dialled or used; its id is not reused until the caller confirms it
    /// stopped serving it.
    Retired,
    /// Retired and released by the caller: the id may serve a new node.
    Vacant,
}

/// One node connection.
#[derive(Debug, Default)]
pub(crate) struct Conn {
    pub(crate) membership: Membership,
    /// Named by the topology reply being read.
    pub(crate) listed: bool,
    /// Topology replies in a row that did not name the node.
    pub(crate) absent: u8,
    /// The node is in the [`Outbox`].
    pub(crate) queued: bool,
    /// Commands written to this node (kept across connections).
    pub(crate) commands: u64,
    pub(crate) phase: ConnPhase,
    pub(crate) tx: Bytes<TX_CAP>,
    pub(crate) expects: Fifo<Expect, EXPECT_CAP>,
    /// `NOLOOP` is on for this connection.
    pub(crate) noloop: bool,
    pub(crate) last_rx: Instant,
    pub(crate) ping_sent: Option<Instant>,
    pub(crate) echo: Option<Echo>,
    /// The server refused `CLUSTER SHARDS` (before 7.0): ask `CLUSTER SLOTS`.
    pub(crate) no_shards: bool,
    /// The server refused `HELLO 3` (Redis 5, some proxies): with caching
    /// off, handshakes use RESP2 (`AUTH`, `CLIENT SETNAME`, `SELECT`).
    pub(crate) resp2: bool,
    /// The last handshake failed with a refusal that will not pass by
    /// itself (wrong password, a replica, the wrong mode): requests that
    /// need this node end with it. Kept across resets, cleared by a
    /// finished handshake.
    pub(crate) refusal: Option<NodeError>,
    /// Smoothed round trip of key commands (request written to reply
    /// read), for [`crate::Config::fair`]; kept across connections.
    pub(crate) rtt: Option<Duration>,
}

impl Conn {
    /// Records that the command just written expects `e` as its reply;
    /// false when the no-alloc queue is full.
    pub(crate) fn expect(&mut self, e: Expect) -> bool {
        let ok = self.expects.push_back(e).is_ok();
        self.commands += u64::from(ok);
        ok
    }

    /// Folds a round-trip `sample` into [`Conn::rtt`] (weight 1/8, as
    /// TCP's smoothed RTT: one slow reply moves it little).
    pub(crate) fn note_rtt(&mut self, sample: Duration) {
        self.rtt = Some(match self.rtt {
            None => sample,
            Some(r) => (r * 7 + sample) / 8,
        });
    }

    /// True while a handshake reply is outstanding.
    pub(crate) fn in_handshake(&self) -> bool {
        self.expects.iter().any(|e| {
            matches!(
                e,
                Expect::Hello | Expect::Select | Expect::Tracking | Expect::Setup
            )
        })
    }

    pub(crate) fn is_ready(&self) -> bool {
        self.phase == ConnPhase::Ready
    }

    /// Forgets everything about the connection that was.
    pub(crate) fn reset(&mut self, phase: ConnPhase, now: Instant) {
        self.phase = phase;
        self.tx.clear();
        self.expects.clear();
        self.last_rx = now;
        self.ping_sent = None;
        self.echo = None;
    }
}

/// The nodes whose transmit buffer got bytes the caller was not told of:
/// a runtime wakes only their tasks instead of looking at every node.
/// Each node is in it at most once, so it never needs more than one entry
/// per node.
#[derive(Debug, Default)]
pub(crate) struct Outbox(Fifo<NodeId, NODE_CAP>);

impl Outbox {
    /// `node` (connection `c`) may have new bytes to send.
    pub(crate) fn note(&mut self, node: NodeId, c: &mut Conn) {
        if !c.queued && !c.tx.as_slice().is_empty() && self.0.push_back(node).is_ok() {
            c.queued = true;
        }
    }

    /// The next node with output, taken out of the box.
    pub(crate) fn pop(&mut self) -> Option<NodeId> {
        self.0.pop_front()
    }
}

/// True when a `HELLO` reply's `version` is at least 7.0.5, the first release
/// where `NOLOOP` also covers writes made by scripts (redis/redis#11052).
pub(crate) fn version_supports_noloop(version: &[u8]) -> bool {
    let mut parts = version.split(|&b| b == b'.').map(|p| {
        p.iter()
            .take_while(|b| b.is_ascii_digit())
            .fold(0u32, |acc, d| {
                acc.saturating_mul(10).saturating_add(u32::from(d - b'0'))
            })
    });
    let major = parts.next().unwrap_or(0);
    let minor = parts.next().unwrap_or(0);
    let patch = parts.next().unwrap_or(0);
    (major, minor, patch) >= (7, 0, 5)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noloop_versions() {
        assert!(version_supports_noloop(b"7.0.5"));
        assert!(version_supports_noloop(b"7.0.15"));
        assert!(version_supports_noloop(b"7.2.4"));
        assert!(version_supports_noloop(b"8.0.0"));
        assert!(!version_supports_noloop(b"7.0.4"));
        assert!(!version_supports_noloop(b"6.2.14"));
        assert!(!version_supports_noloop(b"garbage"));
    }
}
