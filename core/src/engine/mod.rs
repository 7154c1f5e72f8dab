//! The engine: owns every lock of one locker and every node connection's
//! protocol state, and turns inputs into transmits, timeouts and events.
//!
//! How the pieces fit:
//! - Acquisition pipelines `SET key value NX PX validity` + `PTTL key` for all
//!   `2m-1` keys at once (one round trip per node). The `PTTL` both reports
//!   the TTL the server holds and re-arms tracking after our own write.
//! - A lock's deadline is the `m`-th latest per-key bound (see `lease`), so a
//!   holder is never told late, whatever mix of keys it holds.
//! - Local waiters on one name queue first-come-first-served: only the
//!   oldest waiter attempts, and not while another request of this locker
//!   holds or is acquiring the name. A local release queues the next
//!   waiter's attempt right behind the release on the same connection.
//! - Invalidations wake waiters and make holders re-check the key with the
//!   extend script, which refreshes the TTL only when it is short: the echo of
//!   our own write (without `NOLOOP`) is recognised and skipped, and even if
//!   it were not, the re-check would not write again, so nothing loops.
//!
//! Cost per input: the pump visits only the requests the input marked (a
//! reply of theirs, an invalidation of their name, their timer) and the
//! ones those visits mark in turn; questions about the other requests of a
//! name go to the name index; `poll_timeout` reads the earliest entry of the
//! timer table. So an event costs O(1) or O(log n) in the number of
//! requests, except connection-wide ones (a node lost, back or flushed, the
//! slot map changed), which visit every request as they concern them all.
//!
//! Files, by job (the public methods stay here, as the one place that lists
//! what the engine does):
//! - `link`: one connection's life, handshake to loss, and the frames and
//!   invalidation pushes it delivers;
//! - `send`: the one write path of key commands;
//! - `progress`: moving a request after an input (key replies, extension,
//!   release) and the pump;
//! - `attempt`: starting, deciding and retrying acquisition attempts;
//! - `waiters`: the requests of one name (leader, wake-ups, hand-off);
//! - `cluster`: topology discovery, redirects, routing;
//! - `requests`, `names`, `timers`: the data structures (the request slab
//!   with its ready queue, the per-name index, the timer table).
//!
//! Per-key reply transitions live with the key (`crate::lock`).

use core::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

use crate::cluster::{key_slot, Addr, SlotMap};
use crate::config::{Config, ConfigError, Topology, TtlMode};
use crate::conn::{Conn, ConnPhase, Membership, Outbox};
use crate::event::{Event, LockError, LockId, LockMode, LostReason, NodeError, NodeId};
use crate::keys::key_parts;
use crate::lock::{Key, Lock, LockPhase, VALUE_LEN};
use crate::resp;
use crate::routing::node_of;
use crate::scripts::{self, Script};
use crate::stats::Stats;
use crate::storage::{Fifo, Seq, Text};
use crate::time::Instant;

use cluster::Discovery;
use names::Names;
use requests::{ReqIdx, Requests};
use timers::Timers;

/// Live lock requests in the no-alloc build.
pub(crate) const LOCK_CAP: usize = 64;
/// Nodes in the no-alloc build.
pub(crate) const NODE_CAP: usize = 8;
/// Undrained events in the no-alloc build.
pub(crate) const EVENT_CAP: usize = 128;

/// Longest wait between attempts that failed for a reason other than a
/// holder (refusals, nodes down): retries back off to this.
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Values derived once from the configuration.
#[derive(Debug, Clone)]
struct Settings {
    majority: usize,
    keys: usize,
    validity: Duration,
    validity_ms: u64,
    extend_interval: Duration,
    try_next_after: Duration,
    /// Invalidation re-checks refresh the TTL only below this many ms.
    recheck_refresh_below: u64,
    extend: Script,
    release: Script,
    fence_read: Script,
    fence_raise: Script,
}

/// The sans-I/O lock engine of one locker. See the crate docs.
#[derive(Debug)]
pub struct Engine {
    config: Config,
    /// Values derived once from `config`.
    settings: Settings,
    rng: ChaCha8Rng,
    requests: Requests,
    /// The requests of each name.
    names: Names,
    /// When each request next has something to do by itself.
    timers: Timers,
    /// The requests of the current pump round (kept to reuse its memory).
    round: Seq<ReqIdx, LOCK_CAP>,
    /// Requests the pump looked at, for tests of the cost of an input.
    #[cfg(test)]
    visits: usize,
    conns: Seq<Conn, NODE_CAP>,
    /// Nodes with output the caller was not told of ([`Engine::poll_output`]).
    outbox: Outbox,
    /// Where each node listens, when known (cluster seeds once told, nodes
    /// the engine discovered always).
    addrs: Seq<Option<Addr>, NODE_CAP>,
    /// Cluster: which master serves which slots.
    map: SlotMap,
    discovery: Discovery,
    events: Fifo<Event, EVENT_CAP>,
    stats: Stats,
    closed: bool,
    next_seq: u64,
    /// `(local instant, unix ms at that instant)` for absolute TTLs.
    unix: Option<(Instant, u64)>,
}

impl Engine {
    /// Creates an engine; `seed` seeds the generator of lock values.
    pub fn new(config: Config, seed: [u8; 32]) -> Result<Engine, ConfigError> {
        config.validate()?;
        let validity_ms = u64::try_from(config.validity.as_millis()).unwrap_or(u64::MAX);
        let extend_interval = config.effective_extend_interval();
        let half_interval_ms = u64::try_from(extend_interval.as_millis() / 2).unwrap_or(0);
        let settings = Settings {
            majority: usize::from(config.key_majority),
            keys: config.key_count(),
            validity: config.validity,
            validity_ms,
            extend_interval,
            try_next_after: config.try_next_after,
            recheck_refresh_below: validity_ms.saturating_sub(half_interval_ms).max(1),
            extend: Script::new(match config.ttl_mode {
                TtlMode::Relative => scripts::EXTEND_PX,
                TtlMode::Absolute => scripts::EXTEND_PXAT,
            }),
            release: Script::new(scripts::RELEASE),
            fence_read: Script::new(scripts::FENCE_READ),
            fence_raise: Script::new(scripts::FENCE_RAISE),
        };
        let mut conns = Seq::default();
        let mut addrs = Seq::default();
        for _ in 0..config.node_count() {
            conns
                .push(Conn::default())
                .map_err(|_| ConfigError::TooManyNodes)?;
            addrs.push(None).map_err(|_| ConfigError::TooManyNodes)?;
        }
        let discovery = Discovery {
            stale: matches!(config.topology, Topology::Cluster(_)),
            ..Discovery::default()
        };
        Ok(Engine {
            config,
            settings,
            rng: ChaCha8Rng::from_seed(seed),
            requests: Requests::default(),
            names: Names::new(&seed),
            timers: Timers::default(),
            round: Seq::default(),
            #[cfg(test)]
            visits: 0,
            conns,
            outbox: Outbox::default(),
            addrs,
            map: SlotMap::default(),
            discovery,
            events: Fifo::default(),
            stats: Stats::default(),
            closed: false,
            next_seq: 0,
            unix: None,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Number of nodes (connections) the caller must maintain.
    pub fn node_count(&self) -> usize {
        self.conns.len()
    }

    /// Tells the engine where `node` listens. In cluster mode, do this for
    /// every seed: a master the topology names at the same address then
    /// reuses the seed's connection instead of getting a new node. Fails
    /// when `node` does not exist or the host does not fit the no-alloc
    /// capacity.
    pub fn set_node_address(
        &mut self,
        node: NodeId,
        host: &str,
        port: u16,
    ) -> Result<(), ConfigError> {
        let host = Text::new(host).ok_or(ConfigError::TextTooLong)?;
        let entry = self
            .addrs
            .as_mut_slice()
            .get_mut(usize::from(node.0))
            .ok_or(ConfigError::NoSuchNode)?;
        *entry = Some(Addr { host, port });
        Ok(())
    }

    /// Where `node` listens, if known: `(host, port)`. Always known for the
    /// nodes announced by [`Event::NodeAdded`].
    pub fn node_address(&self, node: NodeId) -> Option<(&str, u16)> {
        self.addrs
            .as_slice()
            .get(usize::from(node.0))?
            .as_ref()
            .map(|a| (a.host.as_str(), a.port))
    }

    /// True once `node` left a cluster's topology ([`Event::NodeRemoved`]):
    /// do not connect it any more.
    pub fn is_retired(&self, node: NodeId) -> bool {
        self.conn(node)
            .is_some_and(|c| c.membership != Membership::Member)
    }

    /// The caller stopped serving a node announced by [`Event::NodeRemoved`]
    /// (its connection is closed and will not be reopened): its id may be
    /// given to a node added later. Ignored for other nodes.
    pub fn handle_retired(&mut self, node: NodeId) {
        if let Some(c) = self.conn_mut(node) {
            if c.membership == Membership::Retired {
                c.membership = Membership::Vacant;
            }
        }
    }

    /// Tells the engine the wall-clock time (Unix ms) at `now`; needed for
    /// absolute TTLs (without it they fall back to relative ones).
    pub fn set_unix_time(&mut self, now: Instant, unix_ms: u64) {
        self.unix = Some((now, unix_ms));
    }

    /// A fresh connection to `node` is open; the handshake starts.
    pub fn handle_connected(&mut self, node: NodeId, now: Instant) {
        if self.conn(node).is_some_and(|c| c.phase != ConnPhase::Down) {
            self.drop_connection(node, now);
        }
        let Some(c) = self.conns.as_mut_slice().get_mut(usize::from(node.0)) else {
            return;
        };
        if c.membership != Membership::Member {
            // Retired: the connection stays down, its bytes are ignored.
            return;
        }
        c.reset(ConnPhase::Handshake, now);
        self.stats.connections += 1;
        let ok = if c.resp2 && !self.config.client_caching {
            link::write_resp2_handshake(c, &self.config)
        } else {
            link::write_hello(c, &self.config)
        };
        if ok {
            self.note_output(node);
        } else {
            self.fail_connection(node, now, NodeError::CapacityExceeded);
        }
        // No pump here (as ever): the requests the drop changed are visited
        // at the next input, but their timers must be right meanwhile.
        self.settle_timers();
    }

    /// Bytes read from `node`. Returns how many were consumed (complete
    /// frames); keep the rest and hand them in again with more bytes.
    pub fn handle_bytes(&mut self, node: NodeId, now: Instant, bytes: &[u8]) -> usize {
        match self.conn(node) {
            Some(c) if c.phase != ConnPhase::Down => {}
            _ => return bytes.len(),
        }
        if !bytes.is_empty() {
            if let Some(c) = self.conn_mut(node) {
                c.last_rx = now;
            }
        }
        let mut used = 0;
        while used < bytes.len() {
            match resp::parse(&bytes[used..]) {
                Ok(None) => break,
                Ok(Some((frame, n))) => {
                    used += n;
                    if let Err(e) = self.on_frame(node, frame, now) {
                        self.fail_connection(node, now, e);
                        used = bytes.len();
                        break;
                    }
                    if self.conn(node).is_none_or(|c| c.phase == ConnPhase::Down) {
                        used = bytes.len();
                        break;
                    }
                }
                Err(_) => {
                    self.fail_connection(node, now, NodeError::Protocol("malformed RESP3"));
                    used = bytes.len();
                    break;
                }
            }
        }
        // Also after a failure: requests that needed the node move on.
        self.pump(now);
        used
    }

    /// Bytes of [`Engine::transmit`] reached `node`'s socket at `now`: the
    /// server is reading, a sign of life like a reply. Without it a long
    /// write (a pipeline of thousands of commands) would outlast the ping
    /// deadline and drop a healthy connection.
    pub fn handle_written(&mut self, node: NodeId, now: Instant) {
        if let Some(c) = self.conn_mut(node) {
            if c.phase != ConnPhase::Down && now > c.last_rx {
                c.last_rx = now;
            }
        }
    }

    /// The connection to `node` is gone.
    pub fn handle_disconnected(&mut self, node: NodeId, now: Instant) {
        self.drop_connection(node, now);
        self.pump(now);
    }

    /// Time passed; call at (or after) [`Engine::poll_timeout`].
    pub fn handle_timeout(&mut self, now: Instant) {
        self.check_links(now);
        if self.is_cluster()
            && self
                .discovery
                .last
                .is_some_and(|l| now >= l.saturating_add(self.refresh_period()))
        {
            self.discovery.stale = true;
        }
        self.pump(now);
    }

    /// Starts a lock request on `name`.
    pub fn lock(&mut self, name: &str, mode: LockMode, now: Instant) -> Result<LockId, LockError> {
        if self.closed {
            return Err(LockError::Closed);
        }
        if name.is_empty() {
            return Err(LockError::EmptyName);
        }
        if name.len() > crate::MAX_NAME_LEN {
            return Err(LockError::NameTooLong);
        }
        // Checked up front (no-alloc): the name index stores it only when
        // it is new, after the request has its place.
        if Text::capacity() < name.len() {
            return Err(LockError::CapacityExceeded);
        }
        let mut keys = heapless::Vec::new();
        for i in 0..self.settings.keys {
            let (node, hash_slot) = match self.config.topology {
                Topology::Cluster(_) => {
                    let mut digits = [0u8; 2];
                    let parts = key_parts(
                        self.config.prefix.as_bytes(),
                        i as u8,
                        name.as_bytes(),
                        &mut digits,
                    );
                    let hash_slot = key_slot(&parts);
                    let owner = self.map.owner(hash_slot);
                    (owner.unwrap_or(NodeId(u16::MAX)), hash_slot)
                }
                t => (node_of(t, i as u8, name.as_bytes()), 0),
            };
            keys.push(Key::new(node, hash_slot))
                .map_err(|_| LockError::CapacityExceeded)?;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let lock = Lock {
            mode,
            phase: LockPhase::Waiting,
            value: [0; VALUE_LEN],
            keys,
            t0: now,
            retry_at: None,
            wake: true,
            next_extend: now,
            deadline: now,
            ended: false,
            handoffs: 0,
            failures: 0,
            error: None,
            fence_retries: 0,
            fenced: self.config.fencing,
            token: 0,
            granted: None,
        };
        let req = self.requests.insert(lock)?;
        let Ok(n) = self.names.join(req, name, seq, LockPhase::Waiting) else {
            self.requests.remove(req);
            return Err(LockError::CapacityExceeded);
        };
        let id = self.requests.id(req).ok_or(LockError::CapacityExceeded)?;
        self.stats.requests += 1;
        self.requests.mark(req);
        if mode == LockMode::Try && self.names.held(n) > 0 {
            // Another request of this locker holds it: the server would refuse.
            self.set_phase(req, LockPhase::Draining);
            self.emit(Event::NotLocked { id });
            self.pump(now);
            return Ok(id);
        }
        if mode == LockMode::Force {
            // The holders of this name in this locker lose it now, not when
            // the overwrite is answered: `is_held` must not lag behind the
            // caller's own `force_lock`. Their releases queue behind our
            // `SET`s on the same connections, so they delete nothing of ours.
            let mut next = self.names.first_engaged(n);
            while let Some(other) = next {
                next = self.names.next(other);
                if self.requests.at(other).phase == LockPhase::Held {
                    self.lose(other, LostReason::KeysChanged);
                }
            }
        }
        if mode != LockMode::Wait && self.has_room(req) {
            self.start_attempt(req, now);
        }
        // Otherwise (no-alloc, buffers full) the attempt waits in `pump`
        // for room instead of failing without asking the server.
        self.pump(now);
        Ok(id)
    }

    /// Ends a request: cancels it if pending, releases it if held. Emits
    /// [`Event::Released`] once every key is released or certainly expired.
    pub fn unlock(&mut self, id: LockId, now: Instant) {
        let Some(req) = self.requests.find(id) else {
            return;
        };
        let max_handoffs = self.config.local_handoff;
        self.requests.mark(req);
        let lock = self.requests.at(req);
        lock.ended = true;
        let was_held = lock.phase == LockPhase::Held;
        let handoffs = lock.handoffs;
        let fenced = lock.fenced;
        if lock.phase != LockPhase::Draining {
            self.set_phase(req, LockPhase::Draining);
            // A hand-off cannot raise the fencing counters: fenced locks
            // go through Redis (`crate::fence`).
            if was_held && max_handoffs > 0 && !fenced {
                if handoffs < max_handoffs && self.hand_off(req, now) {
                    self.pump(now);
                    return;
                }
                // Budget spent: release to Redis and let local waiters try
                // only once the release landed, when other lockers hear of
                // it too, so they are not starved.
                self.hold_back_waiters(req);
            } else {
                self.notify_name(req);
            }
            if was_held && self.config.fair {
                self.pause_name(req, now);
            }
        }
        self.pump(now);
    }

    /// Closes the engine: holders lose, pending requests end with
    /// [`Event::Closed`], later requests are refused.
    pub fn close(&mut self, now: Instant) {
        self.closed = true;
        for req in self.requests.indices() {
            let Some(id) = self.requests.id(req) else {
                continue;
            };
            let lock = self.requests.at(req);
            let event = match lock.phase {
                LockPhase::Held => Some(Event::Lost {
                    id,
                    reason: LostReason::Closed,
                }),
                LockPhase::Waiting | LockPhase::Acquiring => Some(Event::Closed { id }),
                LockPhase::Draining => None,
            };
            let ended = lock.ended;
            self.set_phase(req, LockPhase::Draining);
            if let (Some(e), false) = (event, ended) {
                self.emit(e);
            }
        }
        self.pump(now);
    }

    /// True after [`Engine::close`].
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// True when nothing is in flight and no key of ours is left to release:
    /// after [`Engine::close`], the connections can be dropped.
    pub fn is_idle(&self) -> bool {
        self.requests
            .iter()
            .all(|l| l.phase == LockPhase::Draining && l.settled())
    }

    /// Number of live lock requests (including ones still releasing).
    pub fn lock_count(&self) -> usize {
        self.requests.live()
    }

    /// True while `id` is held (acquired and not lost or released).
    pub fn is_held(&self, id: LockId) -> bool {
        self.requests
            .find(id)
            .and_then(|req| self.requests.get(req))
            .is_some_and(|l| l.phase == LockPhase::Held)
    }

    /// The fencing token of `id` (see [`crate::fence`]): `Some` once a
    /// fenced request was granted ([`Event::Acquired`]), until it is
    /// forgotten ([`Event::Released`]); `None` for unfenced or pending
    /// requests and unknown ids.
    pub fn token(&self, id: LockId) -> Option<u64> {
        self.requests
            .find(id)
            .and_then(|req| self.requests.get(req))
            .and_then(|l| l.granted)
    }

    /// How many of the lock's keys carry its value as far as the engine
    /// knows (at least the majority while it is held; 0 for an unknown id).
    pub fn held_keys(&self, id: LockId) -> usize {
        self.requests
            .find(id)
            .and_then(|req| self.requests.get(req))
            .map_or(0, |l| {
                l.keys
                    .iter()
                    .filter(|k| k.state == crate::lock::KeyState::Held)
                    .count()
            })
    }

    /// Replies the engine still expects from `node`: for commands written
    /// and for those still in [`Engine::transmit`]. Zero means the
    /// connection is idle, so a runtime may send the next command at once
    /// rather than batch it (Nagle's rule).
    pub fn replies_pending(&self, node: NodeId) -> usize {
        self.conn(node).map_or(0, |c| c.expects.len())
    }

    /// True when `node` finished its handshake.
    pub fn is_ready(&self, node: NodeId) -> bool {
        self.conn(node).is_some_and(Conn::is_ready)
    }

    /// Bytes the engine wants written to `node`.
    pub fn transmit(&self, node: NodeId) -> &[u8] {
        self.conn(node).map_or(&[], |c| c.tx.as_slice())
    }

    /// The next node whose [`Engine::transmit`] got bytes since it was last
    /// returned here: a runtime that serves each node in its own task wakes
    /// only those tasks after an input, instead of every one. Cheap: the
    /// engine queues a node when it writes to it, nothing is scanned. A
    /// node may be returned whose output was taken meanwhile.
    pub fn poll_output(&mut self) -> Option<NodeId> {
        while let Some(node) = self.outbox.pop() {
            let Some(c) = self.conn_mut(node) else {
                continue;
            };
            c.queued = false;
            if !c.tx.as_slice().is_empty() {
                return Some(node);
            }
        }
        None
    }

    /// Puts `node` in the outbox if it has output (after a write to it).
    pub(super) fn note_output(&mut self, node: NodeId) {
        if let Some(c) = self.conns.as_mut_slice().get_mut(usize::from(node.0)) {
            self.outbox.note(node, c);
        }
    }

    /// `n` bytes of [`Engine::transmit`] were written.
    pub fn consume_transmit(&mut self, node: NodeId, n: usize) {
        if let Some(c) = self.conn_mut(node) {
            let n = n.min(c.tx.as_slice().len());
            c.tx.consume(n);
            self.stats.bytes_sent += n as u64;
        }
    }

    /// What the engine did so far (counters for metrics).
    pub fn stats(&self) -> Stats {
        let commands = self
            .conns
            .as_slice()
            .iter()
            .map(|c| c.commands)
            .sum::<u64>();
        Stats {
            commands: self.stats.commands + commands,
            ..self.stats
        }
    }

    /// The earliest instant at which [`Engine::handle_timeout`] must be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut t: Option<Instant> = None;
        let mut at = |i: Instant| t = Some(t.map_or(i, |t| t.min(i)));
        if let Some(l) = self.link_timeout() {
            at(l);
        }
        if let Some(d) = self.discovery_timeout() {
            at(d);
        }
        if let Some(r) = self.timers.first() {
            at(r);
        }
        t
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    // ---- storage helpers -------------------------------------------------

    fn conn(&self, node: NodeId) -> Option<&Conn> {
        self.conns.as_slice().get(usize::from(node.0))
    }

    fn conn_mut(&mut self, node: NodeId) -> Option<&mut Conn> {
        self.conns.as_mut_slice().get_mut(usize::from(node.0))
    }

    fn emit(&mut self, e: Event) {
        self.stats.on_event(&e);
        // Only the no-alloc build can fill up; its capacity is sized so a
        // caller that drains after every call never gets there.
        let _ = self.events.push_back(e);
    }
}

mod attempt;
mod cluster;
mod link;
mod names;
mod progress;
mod requests;
mod send;
mod timers;
mod waiters;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod cluster_tests;

#[cfg(test)]
mod fair_tests;

#[cfg(test)]
mod fence_tests;

#[cfg(test)]
mod failover_tests;

#[cfg(test)]
mod refusal_tests;

// Needs more requests than the no-alloc capacity.
#[cfg(test)]
mod resp2_tests;
#[cfg(all(test, feature = "alloc"))]
mod scale_tests;
#[cfg(test)]
mod stats_tests;
