//! The life of each node connection: the handshake (`HELLO`, `SELECT`,
//! `CLIENT TRACKING`), liveness pings, reply frames and invalidation pushes,
//! and what losing a connection means for the keys that went through it.

use crate::commands;
use crate::config::{Config, NoLoop};
use crate::conn::{self, Conn, ConnPhase, Expect, KeyOp};
use crate::event::{is_transient, Event, NodeError, NodeId};
use crate::keys::parse_key;
use crate::lock::{KeyState, LockPhase, Raise};
use crate::resp::{self, Frame};
use crate::storage::Text;
use crate::time::Instant;

use super::{Engine, ReqIdx};

impl Engine {
    /// Handshakes that take too long fail; idle ready connections are
    /// pinged, and fail when the ping goes unanswered.
    pub(super) fn check_links(&mut self, now: Instant) {
        for i in 0..self.conns.len() {
            let node = NodeId(i as u16);
            let c = &mut self.conns.as_mut_slice()[i];
            let interval = self.config.ping_interval;
            if c.phase == ConnPhase::Handshake {
                // A server that never finishes answering the handshake (or
                // sent half a frame) would otherwise hold the node forever.
                if now >= c.last_rx.saturating_add(self.config.handshake_timeout) {
                    self.fail_connection(node, now, NodeError::Unresponsive);
                }
                continue;
            }
            if c.phase != ConnPhase::Ready {
                continue;
            }
            match c.ping_sent {
                Some(sent) if now >= sent.max(c.last_rx).saturating_add(interval) => {
                    self.fail_connection(node, now, NodeError::Unresponsive);
                }
                Some(_) => {}
                None => {
                    // Not a guard: writing the ping borrows `c` mutably.
                    let idle = now >= c.last_rx.saturating_add(interval);
                    if idle && commands::ping(&mut c.tx).is_ok() && c.expect(Expect::Ping) {
                        c.ping_sent = Some(now);
                        self.outbox.note(node, c);
                    }
                }
            }
        }
    }

    /// When [`Engine::check_links`] has something to do.
    pub(super) fn link_timeout(&self) -> Option<Instant> {
        let mut t: Option<Instant> = None;
        let mut at = |i: Instant| t = Some(t.map_or(i, |t| t.min(i)));
        for c in self.conns.as_slice() {
            if c.phase == ConnPhase::Handshake {
                at(c.last_rx.saturating_add(self.config.handshake_timeout));
            }
            if c.phase == ConnPhase::Ready {
                match c.ping_sent {
                    Some(sent) => at(sent
                        .max(c.last_rx)
                        .saturating_add(self.config.ping_interval)),
                    None => at(c.last_rx.saturating_add(self.config.ping_interval)),
                }
            }
        }
        t
    }

    pub(super) fn fail_connection(&mut self, node: NodeId, now: Instant, error: NodeError) {
        let handshake = self
            .conn(node)
            .is_some_and(|c| c.phase == ConnPhase::Handshake);
        self.drop_connection(node, now);
        // Following failovers, a replica is a master being replaced: the
        // runtime resolves the master again, and requests wait for it.
        let failover = self.config.follow_failover && error == NodeError::Replica;
        if handshake && is_refusal(&error) && !failover {
            if let Some(c) = self.conn_mut(node) {
                c.refusal = Some(error.clone());
            }
            // Waiting requests that need the node end with the refusal.
            self.requests.mark_all();
        }
        self.emit(Event::CloseConnection { node, error });
    }

    /// Everything in flight on `node` has an unknown outcome now.
    pub(super) fn drop_connection(&mut self, node: NodeId, now: Instant) {
        let Some(c) = self.conn_mut(node) else { return };
        if c.phase == ConnPhase::Down {
            return;
        }
        let mut expects = core::mem::take(&mut c.expects);
        c.reset(ConnPhase::Down, now);
        self.stats.disconnections += 1;
        let doubt_until = self.reply_rules().doubt_until(now);
        while let Some(e) = expects.pop_front() {
            let Expect::Op { id, key: k, op } = e else {
                continue;
            };
            let Some(req) = self.requests.find(id) else {
                continue;
            };
            self.requests.mark(req);
            let key = &mut self.requests.at(req).keys[usize::from(k)];
            key.inflight = key.inflight.saturating_sub(1);
            match op {
                KeyOp::AcquireSet | KeyOp::AcquireTtl | KeyOp::Release { .. } => {
                    if matches!(key.state, KeyState::Acquiring | KeyState::Releasing) {
                        key.state = KeyState::Doubt;
                        key.doubt_until = doubt_until;
                    }
                }
                KeyOp::Extend { .. } => key.verify = true,
                KeyOp::Raise { .. } => {
                    key.verify = true;
                    key.raise = Raise::Failed;
                }
            }
        }
        for req in self.requests.indices() {
            let Some(lock) = self.requests.get_mut(req) else {
                continue;
            };
            let mut touched = false;
            for key in lock.keys.iter_mut().filter(|k| k.node == node) {
                touched = true;
                if key.state == KeyState::Held {
                    key.verify = true;
                }
                // The reply that failed the connection was already taken off
                // the queue: its key is mid-write with nothing in flight.
                if key.inflight == 0
                    && matches!(key.state, KeyState::Acquiring | KeyState::Releasing)
                {
                    key.state = KeyState::Doubt;
                    key.doubt_until = doubt_until;
                }
            }
            self.touched(req, touched);
        }
        if self.discovery.inflight == Some(node) {
            self.discovery.inflight = None;
            self.discovery.stale = true;
        }
        if self.map.ranges().iter().any(|r| r.node == node) {
            // A master is gone: a replica may be taking over.
            self.discovery.stale = true;
        }
    }

    pub(super) fn on_frame(
        &mut self,
        node: NodeId,
        frame: Frame<'_>,
        now: Instant,
    ) -> Result<(), NodeError> {
        if let Frame::Push(items) = frame {
            return self.on_push(node, items, now);
        }
        let c = self
            .conn_mut(node)
            .ok_or(NodeError::Protocol("unknown node"))?;
        c.echo = None;
        let expect = c
            .expects
            .pop_front()
            .ok_or(NodeError::Protocol("reply without a request"))?;
        match expect {
            Expect::Hello => self.on_hello(node, frame, now),
            // Whatever it says: the RESP2 handshake that follows decides.
            Expect::Ignore => Ok(()),
            Expect::Select | Expect::Tracking | Expect::Setup => match frame {
                Frame::Error(text) => {
                    Err(NodeError::Handshake(Text::from_utf8_lossy_truncated(text)))
                }
                Frame::Simple(_) => self.handshake_step(node, now),
                _ => Err(NodeError::Protocol(
                    "unexpected reply to a handshake command",
                )),
            },
            Expect::Ping => {
                if let Some(c) = self.conn_mut(node) {
                    c.ping_sent = None;
                }
                Ok(())
            }
            // Its error, if any, is repeated by the command it precedes.
            Expect::Asking => Ok(()),
            Expect::Topology { shards } => self.on_topology(node, shards, frame, now),
            Expect::Op { id, key, op } => self.on_key_reply(node, id, key, op, frame, now),
        }
    }

    /// `HELLO 3` was refused and caching is off: the connection goes on
    /// in RESP2. The replies still due on it (the `SELECT` pipelined behind
    /// the `HELLO`, refused without `AUTH`) are dropped unread, and the
    /// RESP2 handshake selects again after authenticating. Later
    /// connections to the node start in RESP2.
    fn fall_back_to_resp2(&mut self, node: NodeId) -> Result<(), NodeError> {
        let config = &self.config;
        let c = self
            .conns
            .as_mut_slice()
            .get_mut(usize::from(node.0))
            .ok_or(NodeError::Protocol("unknown node"))?;
        c.resp2 = true;
        // Only handshake replies can be due: nothing else is sent before
        // the connection is ready.
        let mut due = 0;
        while c.expects.pop_front().is_some() {
            due += 1;
        }
        let mut ok = true;
        for _ in 0..due {
            ok = ok && c.expect(Expect::Ignore);
        }
        if !(ok && write_resp2_handshake(c, config)) {
            return Err(NodeError::CapacityExceeded);
        }
        self.note_output(node);
        Ok(())
    }

    pub(super) fn on_hello(
        &mut self,
        node: NodeId,
        frame: Frame<'_>,
        now: Instant,
    ) -> Result<(), NodeError> {
        let map = match frame {
            Frame::Map(map) => map,
            Frame::Error(text) => {
                let t = Text::from_utf8_lossy_truncated(text);
                let no_resp3 =
                    text.starts_with(b"NOPROTO") || text.starts_with(b"ERR unknown command");
                if no_resp3 && !self.config.client_caching {
                    return self.fall_back_to_resp2(node);
                }
                return Err(if no_resp3 {
                    NodeError::Resp3Unsupported(t)
                } else {
                    NodeError::Handshake(t)
                });
            }
            _ => {
                return Err(NodeError::Resp3Unsupported(Text::from_str_truncated(
                    "HELLO reply is not a map",
                )))
            }
        };
        let mut version: &[u8] = b"";
        let mut mode: &[u8] = b"";
        let mut role: &[u8] = b"";
        let mut items = map.iter();
        while let (Some(k), Some(v)) = (items.next(), items.next()) {
            match (k.as_bytes(), v.as_bytes()) {
                (Some(b"version"), Some(v)) => version = v,
                (Some(b"mode"), Some(v)) => mode = v,
                (Some(b"role"), Some(v)) => role = v,
                _ => {}
            }
        }
        match (self.is_cluster(), mode) {
            (true, b"standalone") => {
                return Err(NodeError::Topology(Text::from_str_truncated(
                    "cluster mode, but the server is a standalone Redis (not a cluster node)",
                )))
            }
            (false, b"cluster") => {
                return Err(NodeError::Topology(Text::from_str_truncated(
                    "the server is a Redis Cluster node: use cluster mode",
                )))
            }
            _ => {}
        }
        if !self.is_cluster() && (role == b"replica" || role == b"slave") {
            // Every write would be refused with READONLY.
            return Err(NodeError::Replica);
        }
        let noloop = match self.config.noloop {
            NoLoop::On => true,
            NoLoop::Off => false,
            NoLoop::Auto => conn::version_supports_noloop(version),
        };
        let caching = self.config.client_caching;
        let c = self
            .conn_mut(node)
            .ok_or(NodeError::Protocol("unknown node"))?;
        c.noloop = caching && noloop;
        if caching {
            let ok = commands::tracking(&mut c.tx, noloop).is_ok() && c.expect(Expect::Tracking);
            if !ok {
                return Err(NodeError::CapacityExceeded);
            }
        }
        self.note_output(node);
        self.handshake_step(node, now)
    }

    /// Marks the connection ready once no handshake reply is outstanding.
    pub(super) fn handshake_step(&mut self, node: NodeId, now: Instant) -> Result<(), NodeError> {
        let c = self
            .conn_mut(node)
            .ok_or(NodeError::Protocol("unknown node"))?;
        if c.phase != ConnPhase::Handshake {
            return Err(NodeError::Protocol("handshake reply after the handshake"));
        }
        if c.in_handshake() {
            return Ok(());
        }
        c.phase = ConnPhase::Ready;
        c.last_rx = now;
        c.refusal = None;
        self.emit(Event::NodeReady { node });
        // Tracking (if any) starts empty: holders re-verify, waiters retry.
        self.on_flush(node);
        // Any request may route a key to it (the slot map may name it, a
        // refusal it had is gone).
        self.requests.mark_all();
        Ok(())
    }

    pub(super) fn on_push(
        &mut self,
        node: NodeId,
        items: resp::Aggregate<'_>,
        now: Instant,
    ) -> Result<(), NodeError> {
        let mut it = items.iter();
        let (Some(Frame::Bulk(kind) | Frame::Simple(kind)), Some(keys)) = (it.next(), it.next())
        else {
            return Ok(());
        };
        if kind != b"invalidate" {
            return Ok(());
        }
        match keys {
            Frame::Null => {
                self.on_flush(node);
                Ok(())
            }
            Frame::Array(keys) | Frame::Set(keys) => {
                for key in keys.iter() {
                    if let Frame::Bulk(key) | Frame::Simple(key) = key {
                        self.on_invalidate(node, key, now);
                    }
                }
                Ok(())
            }
            _ => Err(NodeError::Protocol("malformed invalidation")),
        }
    }

    /// `FLUSHDB`/`FLUSHALL` (or tracking overflow): anything may have changed.
    /// Also what a fresh connection means: nothing of `node` is tracked.
    /// Keys with a request in flight need no re-check: that request's reply
    /// reflects the change (it was answered after it).
    pub(super) fn on_flush(&mut self, node: NodeId) {
        for req in self.requests.indices() {
            let Some(lock) = self.requests.get_mut(req) else {
                continue;
            };
            let mut touched = false;
            for key in lock.keys.iter_mut().filter(|k| k.node == node) {
                touched = true;
                if key.state == KeyState::Held && key.inflight == 0 {
                    key.verify = true;
                }
            }
            self.touched(req, touched);
        }
    }

    /// After a change on a node that `req` has keys on: it gets a visit,
    /// and a reason to retry if it wants the lock.
    fn touched(&mut self, req: ReqIdx, touched: bool) {
        let Some(lock) = self.requests.get(req) else {
            return;
        };
        if touched {
            if matches!(lock.phase, LockPhase::Waiting | LockPhase::Acquiring) {
                self.wake_one(req);
            }
            self.requests.mark(req);
        }
    }

    pub(super) fn on_invalidate(&mut self, node: NodeId, key: &[u8], _now: Instant) {
        let Some((index, name)) = parse_key(self.config.prefix.as_bytes(), key) else {
            return;
        };
        if let Some(echo) = self.conn(node).and_then(|c| c.echo) {
            if echo.key == index
                && self
                    .requests
                    .find(echo.id)
                    .and_then(|r| self.names.of(r))
                    .is_some_and(|n| self.names.text(n).as_bytes() == name)
            {
                // Our own write coming back (no NOLOOP): not news.
                if let Some(c) = self.conn_mut(node) {
                    c.echo = None;
                }
                return;
            }
        }
        let Some(n) = self.names.lookup(name) else {
            return;
        };
        // Holders re-check the key. A key of an attempt may already be
        // answered (`Held`): a change to it now must be re-checked once the
        // attempt succeeds, or the lock would count a key it lost. With a
        // request in flight, its script ran after the change (the push came
        // first), so it reports it.
        let mut next = self.names.first_engaged(n);
        while let Some(req) = next {
            next = self.names.next(req);
            let lock = self.requests.at(req);
            if let Some(k) = lock.keys.get_mut(usize::from(index)) {
                if k.node == node && k.state == KeyState::Held && k.inflight == 0 {
                    k.verify = true;
                    self.requests.mark(req);
                }
            }
        }
        // Waiters (and attempts, once they end) retry.
        self.names.wake(n, None);
        if let Some(leader) = self.names.leader(n) {
            self.requests.mark(leader);
        }
    }
}

/// A handshake failure that will not pass by itself: requests that need
/// the node end with it instead of waiting.
fn is_refusal(e: &NodeError) -> bool {
    match e {
        NodeError::Handshake(text) => !is_transient(text.as_bytes()),
        NodeError::Resp3Unsupported(_) | NodeError::Topology(_) | NodeError::Replica => true,
        NodeError::Protocol(_) | NodeError::Unresponsive | NodeError::CapacityExceeded => false,
    }
}

/// Writes `HELLO 3` (with `AUTH` and `SETNAME` as configured), then `SELECT`
/// when a database is configured. False when the no-alloc buffers are full.
pub(super) fn write_hello(c: &mut Conn, cfg: &Config) -> bool {
    let auth = cfg.password.as_ref().map(|p| {
        let user = cfg
            .username
            .as_ref()
            .map_or(&b"default"[..], Text::as_bytes);
        (user, p.as_bytes())
    });
    let name = cfg.client_name.as_ref().map(Text::as_bytes);
    let mut ok = commands::hello(&mut c.tx, auth, name).is_ok() && c.expect(Expect::Hello);
    if cfg.database != 0 {
        ok = ok && commands::select(&mut c.tx, cfg.database).is_ok() && c.expect(Expect::Select);
    }
    ok
}

/// Writes the RESP2 handshake of a server without `HELLO 3`: `AUTH`,
/// `CLIENT SETNAME` and `SELECT` as configured, or a `PING` when none is
/// (the connection is ready once they are answered).
pub(super) fn write_resp2_handshake(c: &mut Conn, cfg: &Config) -> bool {
    let mut ok = true;
    let mut any = false;
    if let Some(pass) = &cfg.password {
        let user = cfg.username.as_ref().map(Text::as_bytes);
        ok = ok && commands::auth(&mut c.tx, user, pass.as_bytes()).is_ok();
        ok = ok && c.expect(Expect::Setup);
        any = true;
    }
    if let Some(name) = &cfg.client_name {
        ok = ok && commands::setname(&mut c.tx, name.as_bytes()).is_ok();
        ok = ok && c.expect(Expect::Setup);
        any = true;
    }
    if cfg.database != 0 {
        ok = ok && commands::select(&mut c.tx, cfg.database).is_ok();
        ok = ok && c.expect(Expect::Select);
        any = true;
    }
    if !any {
        ok = ok && commands::ping(&mut c.tx).is_ok() && c.expect(Expect::Setup);
    }
    ok
}
