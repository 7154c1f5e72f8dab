//! What a locker keeps behind its mutex: the engine, one slot per lock
//! request (what the public futures wait on), and one record per node (what
//! its driver and `connect` need to know). Events drained from the engine
//! are turned into slot states here.

use std::collections::HashMap;
use std::sync::Arc;
use std::task::Waker;

use tracklock_core::{
    Engine, Event, Instant, LockFailure, LockId, LostReason, NodeError, NodeId, ServerError,
};

use crate::addr::join_host_port;
use crate::direct::{Claim, Direct};
use crate::guard_name::NameBufs;
use crate::stats::{ConnectionState, NodeStats, Stats};
use crate::Error;

/// Everything behind the mutex of [`crate::inner::Inner`].
pub(crate) struct Shared {
    pub(crate) engine: Engine,
    pub(crate) slots: HashMap<LockId, Slot>,
    pub(crate) nodes: Vec<NodeState>,
    /// `close` was called (or every handle dropped).
    pub(crate) closing: bool,
    pub(crate) close_deadline: Option<Instant>,
    /// Drivers still running.
    pub(crate) running: usize,
    /// Every driver has exited.
    pub(crate) stopped: bool,
    /// Nodes the engine added whose driver is not spawned yet.
    added: Vec<usize>,
    /// Nodes whose driver must look at a close request or a retirement.
    pub(crate) node_news: Vec<usize>,
    /// The engine deadline the drivers last armed their timers for.
    pub(crate) armed: Option<Instant>,
    /// The latest connection failure of any node (for `connect`'s timeout).
    pub(crate) last_error: Option<String>,
    pub(crate) startup_waker: Option<Waker>,
    pub(crate) close_wakers: Vec<Waker>,
    /// Scratch list of wakers to wake, reused.
    pub(crate) wakers: Vec<Waker>,
    /// Spare buffers for the guards of long names.
    pub(crate) name_bufs: NameBufs,
    /// The locker's span: lock events are its children.
    #[cfg(feature = "tracing")]
    pub(crate) span: tracing::Span,
    /// The engine's counters at the last trace of their changes.
    #[cfg(feature = "tracing")]
    traced: tracklock_core::Stats,
}

/// What the public futures of one lock request wait on.
pub(crate) struct Slot {
    pub(crate) state: State,
    /// [`Event::Released`] arrived (after an explicit unlock).
    pub(crate) released: bool,
    /// [`Event::NotReleased`]: a release was refused.
    pub(crate) release_error: Option<ServerError>,
    /// The fencing token of the grant (fenced lockers only).
    pub(crate) token: Option<u64>,
    /// The lock future, then the unlock future.
    pub(crate) waker: Option<Waker>,
    /// The lock's name and when it was asked for (for its events); the
    /// name stays empty when no subscriber took lock events at the time.
    #[cfg(feature = "tracing")]
    name: String,
    #[cfg(feature = "tracing")]
    since: std::time::Instant,
    /// One entry per live `Guard::lost` future, `None` marking a free one.
    /// An entry stays taken (`Some(None)`) after its waker was woken, until
    /// its future completes or is dropped.
    pub(crate) lost_wakers: Vec<Option<Option<Waker>>>,
}

/// A lock request as the public API sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum State {
    Pending,
    Held,
    Lost(LostReason),
    NotLocked,
    Failed(LockFailure),
    Closed,
}

impl Slot {
    fn new(name: &str) -> Self {
        #[cfg(not(feature = "tracing"))]
        let _ = name;
        Slot {
            state: State::Pending,
            released: false,
            release_error: None,
            token: None,
            waker: None,
            lost_wakers: Vec::new(),
            // Only a subscriber that takes this module's lock events reads
            // the name: with none (or a quieter one) the copy would be the
            // one allocation per lock+unlock the feature costs otherwise.
            #[cfg(feature = "tracing")]
            name: if tracing::enabled!(tracing::Level::WARN) {
                name.to_owned()
            } else {
                String::new()
            },
            #[cfg(feature = "tracing")]
            since: std::time::Instant::now(),
        }
    }

    pub(crate) fn wake_into(&mut self, out: &mut Vec<Waker>) {
        out.extend(self.waker.take());
        out.extend(
            self.lost_wakers
                .iter_mut()
                .filter_map(|e| e.as_mut()?.take()),
        );
    }
}

/// What the locker knows of one node, besides the engine.
#[derive(Default)]
pub(crate) struct NodeState {
    /// `host:port`.
    pub(crate) addr: String,
    /// A driver was (or is about to be) spawned for the node.
    has_driver: bool,
    /// Times the handshake finished on this node.
    pub(crate) ready_count: u64,
    /// A TCP connection is open.
    pub(crate) connected: bool,
    /// TCP connections opened.
    pub(crate) connects: u64,
    /// Connections or attempts that ended with an error.
    pub(crate) failures: u64,
    /// The engine asked to drop this node's connection.
    pub(crate) close_request: Option<NodeError>,
    /// The first connection failed before any handshake finished.
    pub(crate) failed_first: bool,
    /// Why, until `connect` takes it to report.
    pub(crate) first_error: Option<Error>,
    /// The TLS handshake is under way (so a startup timeout now is a TLS
    /// handshake timeout).
    pub(crate) tls_handshaking: bool,
    /// The open connection's socket, for writes from the task that queued
    /// them ([`crate::direct`]).
    direct: Option<Arc<Direct>>,
    /// Bytes a direct `send` did not take: the driver writes them first
    /// (`backlog` is raised meanwhile).
    pub(crate) spill: Vec<u8>,
    /// The driver holds bytes of this node it has not written and flushed
    /// yet: no direct write may overtake them.
    pub(crate) backlog: bool,
    /// No reply was outstanding when the driver last looked, and nothing
    /// was sent since: the next command may leave at once from any task.
    /// Otherwise commands go to the driver, which sends everything queued
    /// meanwhile in one write.
    pub(crate) idle: bool,
    /// At least [`DEEP_PIPELINE`] replies were outstanding when the
    /// driver last turned: the next one is certain to come soon and give
    /// it a turn, so nobody wakes it for new commands
    /// ([`Shared::needs_driver`]).
    pub(crate) deep: bool,
}

/// Replies outstanding from which new commands wait for the next reply
/// instead of waking the driver ([`Shared::needs_driver`]). Far above what
/// a handful of tasks keeps in flight (10 tasks on 3 keys: 60), where
/// holding commands back cost throughput in the bench (the server's
/// pipeline ran dry between batches), and far below what hundreds do.
const DEEP_PIPELINE: usize = 128;

impl NodeState {
    /// A configured node (its driver is spawned with the locker).
    pub(crate) fn new(addr: String) -> NodeState {
        NodeState {
            addr,
            has_driver: true,
            ..NodeState::default()
        }
    }

    /// A connection opened (`Some`: with a socket for direct writes) or
    /// ended (`None`).
    pub(crate) fn set_direct(&mut self, direct: Option<Direct>) {
        self.direct = direct.map(Arc::new);
        self.spill.clear();
        self.backlog = false;
        self.idle = false;
        self.deep = false;
    }

    /// Failed its first connection and never became ready since.
    pub(crate) fn is_failed(&self) -> bool {
        self.failed_first && self.ready_count == 0
    }
}

impl Shared {
    /// The state of a locker whose engine has `nodes[i]` at node id `i`;
    /// one driver per node is counted as running.
    pub(crate) fn new(
        engine: Engine,
        nodes: Vec<NodeState>,
        #[cfg(feature = "tracing")] span: tracing::Span,
    ) -> Shared {
        Shared {
            engine,
            slots: HashMap::new(),
            running: nodes.len(),
            nodes,
            closing: false,
            close_deadline: None,
            stopped: false,
            added: Vec::new(),
            node_news: Vec::new(),
            armed: None,
            last_error: None,
            startup_waker: None,
            close_wakers: Vec::new(),
            wakers: Vec::new(),
            name_bufs: NameBufs::default(),
            #[cfg(feature = "tracing")]
            span,
            #[cfg(feature = "tracing")]
            traced: tracklock_core::Stats::default(),
        }
    }

    /// Drains the engine's events into the slots, collecting wakers in
    /// `self.wakers`.
    pub(crate) fn dispatch(&mut self) {
        while let Some(event) = self.engine.poll_event() {
            #[cfg(feature = "tracing")]
            self.trace(&event);
            match event {
                Event::NodeReady { node } => {
                    if let Some(n) = self.nodes.get_mut(usize::from(node.0)) {
                        n.ready_count += 1;
                    }
                    self.wakers.extend(self.startup_waker.take());
                }
                Event::CloseConnection { node, error } => {
                    if let Some(n) = self.nodes.get_mut(usize::from(node.0)) {
                        n.close_request = Some(error);
                        self.node_news.push(usize::from(node.0));
                    }
                }
                Event::NodeAdded { node } => self.add_node(node),
                // Its driver sees `Engine::is_retired` and exits.
                Event::NodeRemoved { node } => self.node_news.push(usize::from(node.0)),
                Event::Acquired { id } => {
                    let token = self.engine.token(id);
                    if let Some(slot) = self.slots.get_mut(&id) {
                        slot.token = token;
                    }
                    self.set_state(id, State::Held);
                }
                Event::NotLocked { id } => self.set_state(id, State::NotLocked),
                Event::Failed { id, error } => self.set_state(id, State::Failed(error)),
                Event::NotReleased { id, error } => {
                    if let Some(slot) = self.slots.get_mut(&id) {
                        slot.release_error = Some(error);
                    }
                }
                Event::Closed { id } => self.set_state(id, State::Closed),
                Event::Lost { id, reason } => self.set_state(id, State::Lost(reason)),
                Event::Released { id } => {
                    if let Some(slot) = self.slots.get_mut(&id) {
                        slot.released = true;
                        self.wakers.extend(slot.waker.take());
                    }
                }
                // An event a newer core added: nothing here waits on it.
                _ => {}
            }
        }
    }

    /// Records a node a cluster added (possibly in the id of a retired
    /// one whose driver exited); its driver is spawned after the lock is
    /// released ([`Shared::take_added`]).
    fn add_node(&mut self, node: NodeId) {
        let idx = usize::from(node.0);
        while self.nodes.len() <= idx {
            self.nodes.push(NodeState::default());
        }
        if !self.nodes[idx].has_driver {
            let addr = self
                .engine
                .node_address(node)
                .map(|(host, port)| join_host_port(host, port))
                .unwrap_or_default();
            self.nodes[idx] = NodeState::new(addr);
            self.added.push(idx);
        }
    }

    /// Takes what the engine queued for node `idx` to send from this
    /// thread once the mutex is released, when its connection allows it
    /// ([`crate::direct`]). True when nothing is left for the node's driver
    /// to write (the bytes were staged here, or the thread sending on the
    /// connection now takes them next).
    ///
    /// `driver`: the node's own driver calls. Any other caller sends only
    /// while the connection is idle, no reply outstanding (Nagle's rule,
    /// without its delay): that is the latency-bound case (a lone request,
    /// a hand-off), while the commands of many busy tasks still leave
    /// together in the driver's next write instead of one `send` each.
    pub(crate) fn write_direct(&mut self, idx: usize, now: Instant, driver: bool) -> bool {
        let (Some(n), Ok(id)) = (self.nodes.get_mut(idx), u16::try_from(idx)) else {
            return false;
        };
        if n.backlog || !(driver || n.idle) {
            return false;
        }
        let Some(d) = &n.direct else {
            return false;
        };
        if self.engine.transmit(NodeId(id)).is_empty() {
            return true;
        }
        n.idle = false;
        if d.claim() == Claim::Busy {
            // The thread sending on it now takes these next.
            return true;
        }
        crate::direct::stage(&mut self.engine, NodeId(id), d, now)
    }

    /// A direct `send` on node `idx`'s connection `direct` left `rest`
    /// unsent: the driver writes it before anything queued later. Nothing
    /// when the connection is gone already.
    pub(crate) fn spill(&mut self, idx: usize, direct: &Arc<Direct>, rest: &[u8]) {
        if let Some(n) = self.nodes.get_mut(idx) {
            if n.direct.as_ref().is_some_and(|d| Arc::ptr_eq(d, direct)) {
                n.spill.extend_from_slice(rest);
                n.backlog = true;
            }
        }
    }

    /// What was queued for node `idx` while its claim holder was sending,
    /// into `out`. False when `direct` is no longer the node's connection.
    pub(crate) fn take_more(
        &mut self,
        idx: usize,
        direct: &Arc<Direct>,
        out: &mut Vec<u8>,
        now: Instant,
    ) -> bool {
        let current = self
            .nodes
            .get(idx)
            .and_then(|n| n.direct.as_ref())
            .is_some_and(|d| Arc::ptr_eq(d, direct));
        let Ok(id) = u16::try_from(idx) else {
            return false;
        };
        if current {
            crate::direct::take_queued(&mut self.engine, NodeId(id), out, now);
        }
        current
    }

    /// Whether commands just queued for node `idx` need its driver woken
    /// (a direct write did not take them). Not on a deep pipeline
    /// ([`NodeState::deep`]): the next reply is due anyway and gives the
    /// driver a turn, and everything queued until then leaves in that
    /// turn's one write. Nagle's rule (hold small writes while earlier ones
    /// are unanswered) with the answers as its clock and only where many
    /// are unanswered: on a multi-threaded executor the driver otherwise
    /// runs beside the tasks and sends their commands a few at a time
    /// (README, "Many tasks on one locker").
    pub(crate) fn needs_driver(&self, idx: usize) -> bool {
        self.nodes.get(idx).is_none_or(|n| !n.deep)
    }

    /// The driver of node `idx` ends its turn: whether the connection is
    /// idle now (every reply in, nothing queued). True when replies are
    /// outstanding.
    pub(crate) fn note_idle(&mut self, idx: usize) -> bool {
        let Ok(id) = u16::try_from(idx) else {
            return false;
        };
        let pending = self.engine.replies_pending(NodeId(id));
        let idle = pending == 0;
        if let Some(n) = self.nodes.get_mut(idx) {
            n.idle = idle && n.direct.is_some();
            // Everything queued was just written or handed to the driver's
            // own buffer: what is pending is on the wire, or soon will be,
            // so its replies are coming.
            n.deep = pending >= DEEP_PIPELINE;
        }
        !idle
    }

    /// The driver of retired node `idx` exited: the engine may give the
    /// id to a new node, and the timer it may have armed is gone.
    pub(crate) fn retired(&mut self, idx: usize) {
        if let Some(n) = self.nodes.get_mut(idx) {
            n.has_driver = false;
        }
        if let Ok(id) = u16::try_from(idx) {
            self.engine.handle_retired(NodeId(id));
        }
        self.armed = None;
    }

    /// A snapshot of the counters ([`crate::Locker::stats`]).
    pub(crate) fn stats(&self) -> Stats {
        let nodes = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let id = NodeId(u16::try_from(i).unwrap_or(u16::MAX));
                let state = if self.engine.is_retired(id) {
                    ConnectionState::Retired
                } else if self.engine.is_ready(id) {
                    ConnectionState::Ready
                } else if n.connected {
                    ConnectionState::Handshake
                } else {
                    ConnectionState::Down
                };
                NodeStats {
                    addr: n.addr.clone(),
                    state,
                    connects: n.connects,
                    failures: n.failures,
                    handshakes: n.ready_count,
                }
            })
            .collect();
        Stats {
            engine: self.engine.stats(),
            nodes,
        }
    }

    /// The engine's next deadline is earlier than the one the drivers
    /// armed (or they armed none).
    pub(crate) fn deadline_moved_earlier(&self) -> bool {
        match (self.earliest(), self.armed) {
            (Some(t), Some(armed)) => t < armed,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }

    fn set_state(&mut self, id: LockId, state: State) {
        // Events for requests nobody waits on any more are dropped.
        if let Some(slot) = self.slots.get_mut(&id) {
            if !matches!(slot.state, State::Lost(_)) {
                slot.state = state;
            }
            slot.wake_into(&mut self.wakers);
        }
    }

    /// The address of `node` for messages.
    pub(crate) fn addr(&self, node: NodeId) -> String {
        self.nodes
            .get(usize::from(node.0))
            .map_or_else(|| format!("node {}", node.0), |n| n.addr.clone())
    }

    /// The error a caller gets for `failure`, naming the node's address.
    pub(crate) fn failure_error(&self, failure: LockFailure) -> Error {
        match failure {
            LockFailure::Refused(e) => Error::Refused {
                addr: self.addr(e.node),
                command: e.command,
                message: e.message.as_str().to_owned(),
            },
            LockFailure::Unavailable {
                node,
                error: Some(source),
            } => Error::Node {
                addr: self.addr(node),
                source,
            },
            LockFailure::Unavailable { node, error: None } => Error::Unavailable {
                addr: self.addr(node),
            },
            LockFailure::TooSlow => Error::TooSlow,
            LockFailure::KeysVanished => Error::KeysVanished,
            // A failure a newer core added: still the end of the call.
            other => Error::Other(Box::new(other)),
        }
    }

    /// The error of a refused release.
    pub(crate) fn release_error(&self, e: &ServerError) -> Error {
        Error::NotReleased {
            addr: self.addr(e.node),
            message: e.message.as_str().to_owned(),
        }
    }

    /// Fires the engine's timers if one is due.
    pub(crate) fn poke(&mut self, now: Instant) {
        if self.engine.poll_timeout().is_some_and(|t| t <= now) {
            self.engine.handle_timeout(now);
        }
    }

    /// Dispatches events and wakes their futures (API side, under the lock).
    pub(crate) fn settle(&mut self) {
        self.dispatch();
        for w in self.wakers.drain(..) {
            w.wake();
        }
    }

    /// Registers `waker` as the slot's main waker.
    pub(crate) fn register(&mut self, id: LockId, waker: &Waker) {
        if let Some(slot) = self.slots.get_mut(&id) {
            match &slot.waker {
                Some(w) if w.will_wake(waker) => {}
                _ => slot.waker = Some(waker.clone()),
            }
        }
    }

    /// Adds the slot of a lock request on `name`.
    pub(crate) fn insert(&mut self, id: LockId, name: &str) {
        self.slots.insert(id, Slot::new(name));
    }

    /// True once every driver exited: nothing will be answered any more.
    pub(crate) fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// True after `close` (or when the drivers stopped).
    pub(crate) fn is_closing(&self) -> bool {
        self.closing || self.engine.is_closed()
    }

    /// Takes the added nodes to spawn drivers for, reserving their
    /// `running` count (none while closing: they would stop at once).
    pub(crate) fn take_added(&mut self) -> Vec<usize> {
        if self.added.is_empty() {
            return Vec::new();
        }
        let added = std::mem::take(&mut self.added);
        if self.closing || self.stopped {
            return Vec::new();
        }
        self.running += added.len();
        added
    }

    /// The drivers may exit: closing, and the releases are answered or the
    /// close grace ran out.
    pub(crate) fn should_stop(&self, now: Instant) -> bool {
        self.closing && (self.engine.is_idle() || self.close_deadline.is_none_or(|d| now >= d))
    }

    /// The next instant a driver must look at the engine.
    pub(crate) fn earliest(&self) -> Option<Instant> {
        let t = self.engine.poll_timeout();
        match (t, self.close_deadline.filter(|_| self.closing)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Registers a `close` waiter; true when the drivers already stopped.
    pub(crate) fn wait_stopped(&mut self, waker: &Waker) -> bool {
        if self.stopped {
            return true;
        }
        if !self.close_wakers.iter().any(|w| w.will_wake(waker)) {
            self.close_wakers.push(waker.clone());
        }
        false
    }

    /// The last driver exited (or was dropped with its runtime): every
    /// request still waiting ends, so no public future hangs.
    pub(crate) fn stop(&mut self, now: Instant) {
        self.stopped = true;
        self.closing = true;
        if !self.engine.is_closed() {
            self.engine.close(now);
        }
        self.dispatch();
        for slot in self.slots.values_mut() {
            match slot.state {
                State::Pending => slot.state = State::Closed,
                State::Held => slot.state = State::Lost(LostReason::Closed),
                _ => {}
            }
            slot.wake_into(&mut self.wakers);
        }
        self.wakers.extend(self.startup_waker.take());
        self.wakers.append(&mut self.close_wakers);
        for w in self.wakers.drain(..) {
            w.wake();
        }
    }
}

#[cfg(feature = "tracing")]
impl Shared {
    /// The `tracing` event of an engine event, in the locker's span.
    fn trace(&self, event: &Event) {
        let lock = |id: &LockId| {
            let slot = self.slots.get(id);
            (id.as_u64(), slot.map_or("", |s| s.name.as_str()), slot)
        };
        let parent = &self.span;
        match event {
            Event::NodeReady { node } => {
                tracing::debug!(parent: parent, addr = %self.addr(*node), "node ready");
            }
            Event::NodeAdded { node } => {
                let addr = self
                    .engine
                    .node_address(*node)
                    .map(|(h, p)| join_host_port(h, p))
                    .unwrap_or_default();
                tracing::info!(parent: parent, %addr, "cluster node discovered");
            }
            Event::NodeRemoved { node } => {
                tracing::info!(parent: parent, addr = %self.addr(*node), "cluster node retired");
            }
            Event::Acquired { id } => {
                let (lock, name, slot) = lock(id);
                let took = slot.map(|s| s.since.elapsed());
                let keys = self.engine.held_keys(*id);
                tracing::debug!(parent: parent, lock, name, keys, ?took, "acquired");
            }
            Event::NotLocked { id } => {
                let (lock, name, _) = lock(id);
                tracing::debug!(parent: parent, lock, name, "not locked: held elsewhere");
            }
            Event::Failed { id, error } => {
                let (lock, name, _) = lock(id);
                tracing::info!(parent: parent, lock, name, %error, "lock request failed");
            }
            Event::Lost { id, reason } => {
                let (lock, name, _) = lock(id);
                tracing::warn!(parent: parent, lock, name, %reason, "lock lost");
            }
            Event::NotReleased { id, error } => {
                let (lock, name, _) = lock(id);
                tracing::warn!(parent: parent, lock, name, %error, "release refused");
            }
            Event::Released { id } => {
                let (lock, name, _) = lock(id);
                tracing::debug!(parent: parent, lock, name, "released");
            }
            _ => {}
        }
    }

    /// Traces what the engine's counters say happened since the last call:
    /// extensions and failed attempts, which have no event of their own.
    pub(crate) fn trace_counters(&mut self) {
        let now = self.engine.stats();
        let before = std::mem::replace(&mut self.traced, now);
        let extended = now.extensions - before.extensions;
        if extended > 0 {
            tracing::trace!(parent: &self.span, extended, "extensions sent");
        }
        let failed = now.failed_attempts - before.failed_attempts;
        if failed > 0 {
            tracing::debug!(parent: &self.span, failed, "lock attempts failed");
        }
    }
}
