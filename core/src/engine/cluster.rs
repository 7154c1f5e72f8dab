//! Redis Cluster: topology discovery (`CLUSTER SHARDS`, or `CLUSTER SLOTS`
//! before Redis 7), `MOVED`/`ASK` redirects, and routing keys to their hash
//! slot's master. The slot map itself is `crate::cluster::SlotMap`.

use core::time::Duration;

use crate::cluster::{self, Addr, Listed, Range, Redirect, SlotMap, RANGE_CAP};
use crate::commands;
use crate::conn::{Conn, Expect, KeyOp, Membership};
use crate::event::{Event, NodeError, NodeId};
use crate::lock::{Follow, Key, KeyState, LockPhase};
use crate::resp::Frame;
use crate::storage::{Seq, Text};
use crate::time::Instant;

use super::send::{Op, Via};
use super::{Engine, ReqIdx, NODE_CAP};

/// Cluster: topology queries are at least this far apart.
const REFRESH_MIN: Duration = Duration::from_millis(100);
/// Cluster: topology query period while a slot owner is unreachable (a
/// failover is probably under way: learn the new master quickly).
const REFRESH_DOWN: Duration = Duration::from_millis(250);
/// Cluster: topology query period otherwise (changes that no reply
/// reveals, such as a manual failover, are noticed within this).
const REFRESH_IDLE: Duration = Duration::from_secs(10);
/// Cluster: redirects in a row for one key before the slot's owner is
/// forgotten until the next topology query (nodes that disagree during a
/// failover must not make us ping-pong).
pub(super) const MAX_REDIRECTS: u8 = 4;
/// Cluster: a node absent from this many topology replies in a row is
/// retired. One reply is not enough: a node that just joined may not have
/// heard of every other node yet.
pub(super) const RETIRE_AFTER: u8 = 2;

/// Cluster topology discovery.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Discovery {
    /// The map must be queried again.
    pub(super) stale: bool,
    /// A query is in flight on this node.
    pub(super) inflight: Option<NodeId>,
    /// When the last query left.
    pub(super) last: Option<Instant>,
    /// Where the next query starts looking for a ready node (round robin).
    pub(super) turn: usize,
}

impl Engine {
    pub(super) fn is_cluster(&self) -> bool {
        matches!(self.config.topology, crate::config::Topology::Cluster(_))
    }

    /// The slot map is known and a majority of the masters serving slots
    /// are ready.
    pub(crate) fn masters_usable(&self) -> bool {
        let mut owners = 0usize;
        let mut ready = 0usize;
        let ranges = self.map.ranges();
        for (i, r) in ranges.iter().enumerate() {
            if ranges[..i].iter().any(|o| o.node == r.node) {
                continue;
            }
            owners += 1;
            if self.is_ready(r.node) {
                ready += 1;
            }
        }
        owners > 0 && ready * 2 > owners
    }

    /// A `MOVED` or `ASK` reply to a key operation: the command did not run.
    pub(super) fn on_redirect(
        &mut self,
        node: NodeId,
        req: ReqIdx,
        k: u8,
        op: KeyOp,
        r: Redirect<'_>,
        now: Instant,
    ) -> Result<(), NodeError> {
        let host = if r.host.is_empty() {
            match self.node_address(node) {
                Some((h, _)) => Text::from_str_truncated(h),
                None => return Err(NodeError::Protocol("redirect to an unknown host")),
            }
        } else {
            Text::from_utf8_lossy_truncated(r.host)
        };
        let target = self.node_for(host, r.port)?;
        let rules = self.reply_rules();
        let k = usize::from(k);
        let go = self
            .requests
            .at(req)
            .keys
            .get_mut(k)
            .ok_or(NodeError::Protocol("reply for an unknown key"))?
            .count_redirect(target, r.ask, MAX_REDIRECTS);
        if !r.ask {
            if go.is_none() || !self.map.set_owner(r.slot, target) {
                self.map.forget(r.slot);
            }
            self.discovery.stale = true;
        }
        match self.requests.at(req).keys[k].on_redirect(op, go, &rules) {
            Follow::Nothing => {}
            Follow::Acquire(t, ask) => self.resend_acquire(req, k, t, ask, now),
            Follow::Extend(t, refresh_below) => {
                let _ = self.write(req, k, Op::Extend { refresh_below }, Via::Ask(t), now);
            }
            Follow::Release(at) => {
                let sent =
                    at.is_some_and(|t| self.write(req, k, Op::Release, Via::Ask(t), now).is_ok());
                if !sent {
                    // Released (again) by `release_leftovers` at the owner.
                    self.requests.at(req).keys[k].doubt(rules.doubt_until(now));
                }
            }
        }
        if !r.ask {
            self.reroute();
        }
        self.requests.mark(req);
        Ok(())
    }

    /// The node at `host:port`, if known (retired nodes have no address).
    fn node_at(&self, host: &Text, port: u16) -> Option<NodeId> {
        self.addrs
            .as_slice()
            .iter()
            .position(|a| {
                a.as_ref()
                    .is_some_and(|a| a.host == *host && a.port == port)
            })
            .map(|i| NodeId(i as u16))
    }

    /// The node at `host:port`, added (and announced) when new: in the id
    /// of a node the caller released, else a new one.
    pub(super) fn node_for(&mut self, host: Text, port: u16) -> Result<NodeId, NodeError> {
        if let Some(node) = self.node_at(&host, port) {
            return Ok(node);
        }
        let vacant = self
            .conns
            .as_slice()
            .iter()
            .position(|c| c.membership == Membership::Vacant);
        let node = if let Some(i) = vacant {
            // The old node's commands stay counted.
            let old = core::mem::take(&mut self.conns.as_mut_slice()[i]);
            self.stats.commands += old.commands;
            self.addrs.as_mut_slice()[i] = Some(Addr { host, port });
            NodeId(i as u16)
        } else {
            let id = u16::try_from(self.conns.len()).map_err(|_| NodeError::CapacityExceeded)?;
            if id == u16::MAX
                || self.conns.push(Conn::default()).is_err()
                || self.addrs.push(Some(Addr { host, port })).is_err()
            {
                return Err(NodeError::CapacityExceeded);
            }
            NodeId(id)
        };
        self.emit(Event::NodeAdded { node });
        Ok(node)
    }

    /// After a topology reply: nodes it did not name, again, leave. What
    /// was in flight on them is in doubt, as after a dropped connection;
    /// held keys are checked at their slot's owner by `reroute`.
    fn retire_unlisted(&mut self, now: Instant) {
        for i in 0..self.conns.len() {
            let c = &mut self.conns.as_mut_slice()[i];
            if c.membership != Membership::Member {
                continue;
            }
            if core::mem::take(&mut c.listed) {
                c.absent = 0;
                continue;
            }
            c.absent = c.absent.saturating_add(1);
            if c.absent < RETIRE_AFTER {
                continue;
            }
            let node = NodeId(i as u16);
            self.drop_connection(node, now);
            if let Some(c) = self.conn_mut(node) {
                c.membership = Membership::Retired;
                c.refusal = None;
            }
            self.addrs.as_mut_slice()[i] = None;
            self.emit(Event::NodeRemoved { node });
            self.requests.mark_all();
        }
    }

    /// Marks the node at `host:port`, if known, as named by the reply.
    fn mark_listed(&mut self, host: &Text, port: u16) -> bool {
        let Some(node) = self.node_at(host, port) else {
            return false;
        };
        if let Some(c) = self.conn_mut(node) {
            c.listed = true;
        }
        true
    }

    /// After the slot map changed: held keys whose slot moved are checked
    /// on the new owner (which also starts tracking them there); waiters
    /// retry, since a node they needed may be reachable now.
    pub(super) fn reroute(&mut self) {
        for req in self.requests.indices() {
            let Engine { requests, map, .. } = self;
            let Some(lock) = requests.get_mut(req) else {
                continue;
            };
            for key in lock.keys.iter_mut() {
                if key.inflight == 0
                    && key.state == KeyState::Held
                    && map.owner(key.hash_slot) != Some(key.node)
                {
                    key.verify = true;
                }
            }
            if lock.phase == LockPhase::Waiting {
                self.wake_one(req);
            }
        }
        self.requests.mark_all();
    }

    /// Reply to a topology query on `node`.
    pub(super) fn on_topology(
        &mut self,
        node: NodeId,
        shards: bool,
        frame: Frame<'_>,
        now: Instant,
    ) -> Result<(), NodeError> {
        if let Frame::Error(text) = frame {
            if shards {
                // Before Redis 7.0: ask the older way, on the same node.
                let c = self
                    .conn_mut(node)
                    .ok_or(NodeError::Protocol("unknown node"))?;
                c.no_shards = true;
                if commands::cluster_topology(&mut c.tx, false).is_ok()
                    && c.expect(Expect::Topology { shards: false })
                {
                    self.note_output(node);
                    return Ok(());
                }
                return Err(NodeError::CapacityExceeded);
            }
            self.discovery.inflight = None;
            self.discovery.stale = true;
            return Err(NodeError::Topology(Text::from_utf8_lossy_truncated(text)));
        }
        self.discovery.inflight = None;
        for c in self.conns.as_mut_slice() {
            c.listed = false;
        }
        let asked = self
            .addrs
            .as_slice()
            .get(usize::from(node.0))
            .and_then(|a| a.as_ref().map(|a| a.host.clone()));
        let mut list: Seq<Range, RANGE_CAP> = Seq::default();
        let mut failed = None;
        // Replicas are remembered after the masters, and only while there is
        // room: they serve no key, only topology queries once every master
        // we know is gone.
        let mut others: Seq<Addr, NODE_CAP> = Seq::default();
        let tls = self.config.tls_ports;
        let mut add = |listed: Listed, host: &[u8], port: u16| {
            let host = if host.is_empty() {
                match &asked {
                    Some(h) => h.clone(),
                    // Nobody told us where the asked node is: the range
                    // stays unowned until another node describes it.
                    None => return,
                }
            } else {
                Text::from_utf8_lossy_truncated(host)
            };
            let (start, end) = match listed {
                Listed::Serves(start, end) => (start, end),
                Listed::Member => {
                    if !self.mark_listed(&host, port) {
                        let _ = others.push(Addr { host, port });
                    }
                    return;
                }
                Listed::Failed => {
                    self.mark_listed(&host, port);
                    return;
                }
            };
            match self.node_for(host, port) {
                Ok(n) => {
                    if let Some(c) = self.conn_mut(n) {
                        c.listed = true;
                    }
                    if list
                        .push(Range {
                            start,
                            end,
                            node: n,
                        })
                        .is_err()
                    {
                        failed = Some(NodeError::CapacityExceeded);
                    }
                }
                Err(e) => failed = Some(e),
            }
        };
        let parsed = if shards {
            cluster::parse_shards(frame, tls, &mut add)
        } else {
            cluster::parse_slots(frame, &mut add)
        };
        parsed.map_err(NodeError::Protocol)?;
        if let Some(e) = failed {
            return Err(e);
        }
        for a in others.as_slice() {
            if let Ok(n) = self.node_for(a.host.clone(), a.port) {
                if let Some(c) = self.conn_mut(n) {
                    c.listed = true;
                }
            }
        }
        if list.as_slice().is_empty() {
            // A cluster still forming (or losing every master): ask again,
            // and retire nobody on the word of a node that knows no master.
            self.discovery.stale = true;
            return Ok(());
        }
        self.map = SlotMap::from_ranges(list);
        self.retire_unlisted(now);
        self.reroute();
        Ok(())
    }

    /// Sends a topology query when one is due and a node is ready.
    pub(super) fn maybe_discover(&mut self, now: Instant) {
        let d = self.discovery;
        if !self.is_cluster() || d.inflight.is_some() || !d.stale {
            return;
        }
        if d.last.is_some_and(|l| now < l.saturating_add(REFRESH_MIN)) {
            return;
        }
        let n = self.conns.len();
        for j in 0..n {
            let i = (d.turn + j) % n;
            let c = &mut self.conns.as_mut_slice()[i];
            if !c.is_ready() {
                continue;
            }
            let shards = !c.no_shards;
            if commands::cluster_topology(&mut c.tx, shards).is_ok()
                && c.expect(Expect::Topology { shards })
            {
                self.outbox.note(NodeId(i as u16), c);
                self.discovery = Discovery {
                    stale: false,
                    inflight: Some(NodeId(i as u16)),
                    last: Some(now),
                    turn: i + 1,
                };
            }
            return;
        }
    }

    /// How long after the last topology query the next one is due.
    pub(super) fn refresh_period(&self) -> Duration {
        if self.map.is_empty() || self.map.ranges().iter().any(|r| !self.is_ready(r.node)) {
            REFRESH_DOWN
        } else {
            REFRESH_IDLE
        }
    }

    /// When [`Engine::maybe_discover`] has something to do, if ever.
    pub(super) fn discovery_timeout(&self) -> Option<Instant> {
        let d = self.discovery;
        if !self.is_cluster()
            || d.inflight.is_some()
            || !self.conns.as_slice().iter().any(Conn::is_ready)
        {
            return None;
        }
        let last = d.last?;
        Some(last.saturating_add(if d.stale {
            REFRESH_MIN
        } else {
            self.refresh_period()
        }))
    }

    /// The node key `key` goes to next: its slot's owner in a cluster.
    pub(super) fn route(&self, key: &Key) -> Option<NodeId> {
        if self.is_cluster() {
            self.map.owner(key.hash_slot)
        } else {
            Some(key.node)
        }
    }
}
