//! The one driver: the task that connects a node, moves bytes between the
//! engine and the socket, fires the engine's timers, and reconnects.
//!
//! Written once against [`Runtime`]; runtime modules only spawn it.
//!
//! # Shape
//!
//! Every public call (lock, unlock, drop of a guard, close) only mutates the
//! engine inside [`Inner::shared`] and raises the driver's [`Signal`]; the
//! driver then writes whatever the engine queued, so commands issued by many
//! tasks at once leave in one write.
//!
//! One task per node owns the stream (`embedded-io-async` `read` and `write`
//! both take `&mut self`). Each turn it takes the lock once: hands in the
//! bytes read, fires due timers, drains events (waking the futures they
//! concern), moves the engine's transmit into its own buffer and reads the
//! next deadline. Then, without the lock, it races one I/O step (write if
//! anything is queued, else flush, else read) against the signal and the
//! timer. Losing that race drops the pending `read`/`write` future; with the
//! `embedded-io-adapters` wrappers this loses no data, because their `read`
//! and `write` are one `poll_read`/`poll_write` of the inner stream, which
//! either completes or has consumed/written nothing.
//!
//! On EOF, an I/O error, an engine `CloseConnection` or a handshake that does
//! not finish within the connect timeout, the driver tells the engine
//! ([`Engine::handle_disconnected`]) and reconnects with jittered exponential
//! backoff (10 ms doubling to 1 s), still firing the engine's timers and
//! serving wake-ups meanwhile: lock deadlines run on while disconnected.
//!
//! # Nodes
//!
//! The locker starts one driver per configured node. In cluster mode the
//! engine may add nodes at run time ([`Event::NodeAdded`]): the event is
//! recorded under the lock, and the driver that drained it spawns the new
//! node's driver after releasing the lock, through the runtime's spawn
//! function ([`Inner::spawn`]). A first connection that fails ends the
//! driver in single mode (`connect` reports it); in the multi-node modes the
//! driver keeps retrying, since the other nodes may be enough.

use std::collections::HashMap;
use std::future::{poll_fn, Future};
use std::io;
use std::marker::PhantomData;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use atomic_waker::AtomicWaker;
use embedded_io_async::{Read, Write};
use futures_lite::future::or;
use tracklock_core::{
    Engine, Event, Instant, LockFailure, LockId, LostReason, NodeError, NodeId, ServerError,
};

use crate::runtime::{deadline_after, MAX_WAIT};
use crate::{Error, Mode, Runtime};

/// How long [`Inner::begin_close`] lets releases be answered.
const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// First reconnection delay (before jitter).
const BACKOFF_MIN: Duration = Duration::from_millis(10);
/// Longest reconnection delay.
const BACKOFF_MAX: Duration = Duration::from_secs(1);
/// Initial size of the read buffer; it doubles when a frame does not fit.
const RX_INITIAL: usize = 8 * 1024;
/// A reply that does not fit this is refused (protocol error).
const RX_MAX: usize = 16 * 1024 * 1024;

/// State shared by the public handles and the drivers of one locker.
pub(crate) struct Inner {
    shared: Mutex<Shared>,
    /// One per node (index = node id); grows when the engine adds a node.
    /// Never locked together with [`Inner::shared`].
    signals: RwLock<Vec<Arc<Signal>>>,
    mode: Mode,
    /// The configured addresses (for messages).
    addrs: Box<[String]>,
    origin: std::time::Instant,
    clock: fn() -> std::time::Instant,
    /// Spawns the driver of a node on the runtime: must call [`run`] for
    /// the node (even when the runtime refuses the task), whose driver
    /// state balances the `running` count reserved for it.
    spawn: fn(Arc<Inner>, usize),
    connect_timeout: Duration,
    /// Seeds the drivers' backoff jitter.
    jitter: u64,
}

/// A driver's wake-up: a flag plus the driver task's waker.
struct Signal {
    flag: AtomicBool,
    waker: AtomicWaker,
}

impl Signal {
    fn new() -> Arc<Signal> {
        Arc::new(Signal {
            flag: AtomicBool::new(false),
            waker: AtomicWaker::new(),
        })
    }

    fn notify(&self) {
        self.flag.store(true, Ordering::Release);
        self.waker.wake();
    }

    fn poll(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.flag.swap(false, Ordering::Acquire) {
            return Poll::Ready(());
        }
        self.waker.register(cx.waker());
        if self.flag.swap(false, Ordering::Acquire) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// What the public futures of one lock request wait on.
pub(crate) struct Slot {
    pub(crate) state: State,
    /// [`Event::Released`] arrived (after an explicit unlock).
    pub(crate) released: bool,
    /// [`Event::NotReleased`]: a release was refused.
    pub(crate) release_error: Option<ServerError>,
    /// The lock future, then the unlock future.
    pub(crate) waker: Option<Waker>,
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
    fn new() -> Self {
        Slot {
            state: State::Pending,
            released: false,
            release_error: None,
            waker: None,
            lost_wakers: Vec::new(),
        }
    }

    fn wake_into(&mut self, out: &mut Vec<Waker>) {
        out.extend(self.waker.take());
        out.extend(
            self.lost_wakers
                .iter_mut()
                .filter_map(|e| e.as_mut()?.take()),
        );
    }
}

#[derive(Default)]
struct NodeState {
    /// `host:port`.
    addr: String,
    /// A driver was (or is about to be) spawned for the node.
    has_driver: bool,
    /// Times the handshake finished on this node.
    ready_count: u64,
    /// The engine asked to drop this node's connection.
    close_request: Option<NodeError>,
    /// The first connection failed before any handshake finished.
    failed_first: bool,
    /// Why, until `connect` takes it to report.
    first_error: Option<Error>,
}

impl NodeState {
    /// A configured node (its driver is spawned with the locker).
    fn new(addr: String) -> NodeState {
        NodeState {
            addr,
            has_driver: true,
            ..NodeState::default()
        }
    }

    /// Failed its first connection and never became ready since.
    fn is_failed(&self) -> bool {
        self.failed_first && self.ready_count == 0
    }
}

/// Everything behind the mutex.
pub(crate) struct Shared {
    pub(crate) engine: Engine,
    pub(crate) slots: HashMap<LockId, Slot>,
    nodes: Vec<NodeState>,
    /// `close` was called (or every handle dropped).
    closing: bool,
    close_deadline: Option<Instant>,
    /// Drivers still running.
    running: usize,
    /// Every driver has exited.
    stopped: bool,
    /// Nodes the engine added whose driver is not spawned yet.
    added: Vec<usize>,
    /// The latest connection failure of any node (for `connect`'s timeout).
    last_error: Option<String>,
    startup_waker: Option<Waker>,
    close_wakers: Vec<Waker>,
    /// Scratch list of wakers to wake, reused.
    wakers: Vec<Waker>,
}

impl Shared {
    /// Drains the engine's events into the slots, collecting wakers in
    /// `self.wakers`.
    fn dispatch(&mut self) {
        while let Some(event) = self.engine.poll_event() {
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
                    }
                }
                Event::NodeAdded { node } => {
                    let idx = usize::from(node.0);
                    while self.nodes.len() <= idx {
                        self.nodes.push(NodeState::default());
                    }
                    if !self.nodes[idx].has_driver {
                        self.nodes[idx].has_driver = true;
                        self.nodes[idx].addr = self
                            .engine
                            .node_address(node)
                            .map(|(host, port)| join_host_port(host, port))
                            .unwrap_or_default();
                        self.added.push(idx);
                    }
                }
                Event::Acquired { id } => self.set_state(id, State::Held),
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
                // Events of a newer core that this version does not use.
                _ => {}
            }
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

    /// The error a caller gets for `failure`, naming the node's address.
    pub(crate) fn failure_error(&self, failure: LockFailure) -> Error {
        let addr = |node: NodeId| {
            self.nodes
                .get(usize::from(node.0))
                .map_or_else(|| format!("node {}", node.0), |n| n.addr.clone())
        };
        match failure {
            LockFailure::Refused(e) => Error::Refused {
                addr: addr(e.node),
                command: e.command,
                message: e.message.as_str().to_owned(),
            },
            LockFailure::Unavailable {
                node,
                error: Some(e),
            } => Error::from_node(&addr(node), e),
            LockFailure::Unavailable { node, error: None } => {
                Error::Unavailable { addr: addr(node) }
            }
            LockFailure::TooSlow => Error::TooSlow,
            // `LockFailure` is non-exhaustive: a future cause still ends the call.
            other => Error::Protocol {
                addr: String::new(),
                message: other.to_string(),
            },
        }
    }

    /// The error of a refused release.
    pub(crate) fn release_error(&self, e: &ServerError) -> Error {
        Error::NotReleased {
            addr: self
                .nodes
                .get(usize::from(e.node.0))
                .map_or_else(|| format!("node {}", e.node.0), |n| n.addr.clone()),
            message: e.message.as_str().to_owned(),
        }
    }

    /// Fires the engine's timers if one is due; true if it did (the driver
    /// may then have something to send).
    pub(crate) fn poke(&mut self, now: Instant) -> bool {
        let due = self.engine.poll_timeout().is_some_and(|t| t <= now);
        if due {
            self.engine.handle_timeout(now);
        }
        due
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

    /// Adds a lock request's slot.
    pub(crate) fn insert(&mut self, id: LockId) {
        self.slots.insert(id, Slot::new());
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
    fn take_added(&mut self) -> Vec<usize> {
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

    /// `connect` cannot succeed any more: the error to report (that of the
    /// lowest failed node), else `None`.
    fn startup_failure(&mut self) -> Option<Error> {
        let nodes = &self.nodes;
        let failed = |node: NodeId| {
            nodes
                .get(usize::from(node.0))
                .is_some_and(NodeState::is_failed)
        };
        if self.engine.can_become_usable(failed) {
            return None;
        }
        let failed = self.nodes.iter_mut().filter(|n| n.is_failed());
        let first = failed.filter_map(|n| n.first_error.take()).next();
        Some(first.unwrap_or_else(|| Error::Connect {
            addr: String::new(),
            source: io::Error::other("the first connections failed"),
        }))
    }

    fn should_stop(&self, now: Instant) -> bool {
        self.closing && (self.engine.is_idle() || self.close_deadline.is_none_or(|d| now >= d))
    }

    fn earliest(&self) -> Option<Instant> {
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
}

/// What [`Inner::new`] needs besides the engine.
pub(crate) struct Setup {
    pub(crate) mode: Mode,
    /// Node `i` lives at `addrs[i]` (`host:port`).
    pub(crate) addrs: Box<[String]>,
    pub(crate) clock: fn() -> std::time::Instant,
    pub(crate) spawn: fn(Arc<Inner>, usize),
    pub(crate) connect_timeout: Duration,
    pub(crate) jitter: u64,
}

impl Inner {
    /// Shared state for `engine`; no driver is spawned yet (see
    /// [`Inner::spawn_drivers`]).
    pub(crate) fn new(engine: Engine, setup: Setup) -> Inner {
        let n = engine.node_count();
        let origin = (setup.clock)();
        let mut shared = Shared {
            engine,
            slots: HashMap::new(),
            nodes: (0..n)
                .map(|i| NodeState::new(setup.addrs.get(i).cloned().unwrap_or_default()))
                .collect(),
            closing: false,
            close_deadline: None,
            running: n,
            stopped: false,
            added: Vec::new(),
            last_error: None,
            startup_waker: None,
            close_wakers: Vec::new(),
            wakers: Vec::new(),
        };
        shared
            .engine
            .set_unix_time(Instant::from_nanos(0), unix_ms());
        Inner {
            shared: Mutex::new(shared),
            signals: RwLock::new((0..n).map(|_| Signal::new()).collect()),
            mode: setup.mode,
            addrs: setup.addrs,
            origin,
            clock: setup.clock,
            spawn: setup.spawn,
            connect_timeout: setup.connect_timeout,
            jitter: setup.jitter,
        }
    }

    /// Spawns the drivers of the nodes the engine started with (their
    /// `running` count is reserved by [`Inner::new`]).
    pub(crate) fn spawn_drivers(self: &Arc<Self>) {
        let n = self.lock().nodes.len();
        for i in 0..n {
            (self.spawn)(self.clone(), i);
        }
    }

    /// Spawns the drivers of added nodes (outside the shared lock).
    fn spawn_added(self: &Arc<Self>, added: Vec<usize>) {
        let Some(&max) = added.iter().max() else {
            return;
        };
        {
            let mut signals = self.signals.write().unwrap_or_else(PoisonError::into_inner);
            while signals.len() <= max {
                signals.push(Signal::new());
            }
        }
        for idx in added {
            (self.spawn)(self.clone(), idx);
        }
    }

    fn signal(&self, idx: usize) -> Arc<Signal> {
        let signals = self.signals.read().unwrap_or_else(PoisonError::into_inner);
        signals.get(idx).cloned().unwrap_or_else(Signal::new)
    }

    /// The engine's `now`.
    pub(crate) fn now(&self) -> Instant {
        let d = (self.clock)().saturating_duration_since(self.origin);
        Instant::from_nanos(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }

    /// `t` on the runtime's clock (the far future saturates).
    fn to_std(&self, t: Instant) -> std::time::Instant {
        deadline_after(self.origin, Duration::from_nanos(t.as_nanos()))
    }

    /// Locks the shared state (a panic elsewhere does not poison it for us:
    /// the engine never panics mid-update on its own inputs).
    pub(crate) fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wakes every driver: the engine may have something to send or a new
    /// deadline.
    pub(crate) fn notify_drivers(&self) {
        let signals = self.signals.read().unwrap_or_else(PoisonError::into_inner);
        for s in signals.iter() {
            s.notify();
        }
    }

    /// Wakes every driver but `idx`'s.
    fn notify_others(&self, idx: usize) {
        let signals = self.signals.read().unwrap_or_else(PoisonError::into_inner);
        for (i, s) in signals.iter().enumerate() {
            if i != idx {
                s.notify();
            }
        }
    }

    /// The mode.
    pub(crate) fn mode(&self) -> Mode {
        self.mode
    }

    /// The configured addresses.
    pub(crate) fn addresses(&self) -> &[String] {
        &self.addrs
    }

    /// Starts closing: holders lose, pending requests end, the drivers stop
    /// once the releases are answered or [`CLOSE_GRACE`] passed.
    pub(crate) fn begin_close(&self) {
        {
            let mut sh = self.lock();
            if !sh.closing {
                let now = self.now();
                sh.closing = true;
                sh.close_deadline = Some(now.saturating_add(CLOSE_GRACE));
                sh.engine.close(now);
                sh.settle();
            }
        }
        self.notify_drivers();
    }

    /// Polls the start-up: `Ok` once the engine is usable (enough nodes
    /// ready to acquire a lock), an error once it cannot become usable
    /// because first connections failed (single: the node's; instances: the
    /// failed ones carry too many keys; cluster: every seed failed).
    pub(crate) fn poll_startup(&self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let mut sh = self.lock();
        let result = if sh.engine.is_usable() {
            Ok(())
        } else if let Some(e) = sh.startup_failure() {
            Err(e)
        } else if sh.stopped || sh.closing {
            Err(Error::Closed)
        } else {
            sh.startup_waker = Some(cx.waker().clone());
            return Poll::Pending;
        };
        sh.startup_waker = None;
        Poll::Ready(result)
    }

    /// `connect`'s error when the engine is not usable within `timeout`.
    pub(crate) fn startup_timeout(&self, timeout: Duration) -> Error {
        let mut sh = self.lock();
        sh.startup_waker = None;
        let ready = (0..sh.nodes.len())
            .filter(|&i| sh.engine.is_ready(NodeId(i as u16)))
            .count();
        let total = sh.nodes.len();
        let last = sh
            .last_error
            .as_deref()
            .map(|e| format!("; last error: {e}"))
            .unwrap_or_default();
        let message = match self.mode {
            Mode::Single => format!("not connected within {timeout:?}"),
            Mode::Instances => format!(
                "instances mode: not usable within {timeout:?} \
                 ({ready} of {total} instances ready, a lock needs its key majority{last})"
            ),
            _ => format!(
                "cluster mode: not usable within {timeout:?} (needs the slot map and a majority \
                 of its masters ready; {ready} of {total} nodes ready{last})"
            ),
        };
        Error::Connect {
            addr: self.addrs.join(","),
            source: io::Error::new(io::ErrorKind::TimedOut, message),
        }
    }
}

/// `host:port`, with IPv6 hosts in brackets.
fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Why a connection ended.
enum Cause {
    Io(io::Error),
    Eof,
    Node(NodeError),
    TooLarge,
}

impl Cause {
    fn into_error(self, addr: &str) -> Error {
        let connect = |kind, msg: &str| Error::Connect {
            addr: addr.to_owned(),
            source: io::Error::new(kind, msg.to_owned()),
        };
        match self {
            Cause::Io(source) => Error::Connect {
                addr: addr.to_owned(),
                source,
            },
            Cause::Eof => connect(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection during the handshake",
            ),
            Cause::Node(e) => Error::from_node(addr, e),
            Cause::TooLarge => Error::Protocol {
                addr: addr.to_owned(),
                message: format!("a reply exceeded {RX_MAX} bytes"),
            },
        }
    }
}

/// What a turn under the lock decided.
enum Turn {
    /// Go on; sleep until this deadline at the latest.
    Go(Option<std::time::Instant>),
    /// The engine asked to drop the connection.
    Close(NodeError),
    /// The locker is closed and settled: exit.
    Stop,
}

/// One step of I/O (or a wake-up) outside the lock.
enum Io {
    Tick,
    Wrote(io::Result<usize>),
    Flushed(io::Result<()>),
    Read(io::Result<usize>),
}

/// The driver of node `idx`. Runs until the locker is closed and settled.
///
/// The driver state is built before the future is first polled, so even a
/// future dropped unpolled (a runtime shutting down, or refusing the task)
/// counts as exited.
pub(crate) fn run<R: Runtime>(inner: Arc<Inner>, idx: usize) -> impl Future<Output = ()> {
    let addr = inner
        .lock()
        .nodes
        .get(idx)
        .map(|n| n.addr.clone())
        .unwrap_or_default();
    let jitter_seed = inner
        .jitter
        .wrapping_add(idx as u64)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut driver = Driver::<R> {
        node: NodeId(u16::try_from(idx).unwrap_or(u16::MAX)),
        idx,
        signal: inner.signal(idx),
        addr,
        connect_timeout: inner.connect_timeout,
        rx: Vec::new(),
        filled: 0,
        fresh: false,
        tx: Vec::new(),
        tx_pos: 0,
        need_flush: false,
        handshake_deadline: None,
        wrote_at: None,
        wakers: Vec::new(),
        rng: jitter_seed | 1,
        inner,
        _rt: PhantomData,
    };
    async move { driver.run().await }
}

struct Driver<R: Runtime> {
    inner: Arc<Inner>,
    node: NodeId,
    idx: usize,
    /// This driver's wake-up.
    signal: Arc<Signal>,
    /// `host:port` of the node.
    addr: String,
    connect_timeout: Duration,
    /// Read buffer: `rx[..filled]` holds bytes not consumed by the engine.
    rx: Vec<u8>,
    filled: usize,
    /// `rx` holds bytes the engine has not seen yet.
    fresh: bool,
    /// Bytes taken from the engine, `tx[tx_pos..]` not written yet.
    tx: Vec<u8>,
    tx_pos: usize,
    need_flush: bool,
    /// The handshake must finish by then: the connect timeout after the
    /// TCP connect started.
    handshake_deadline: Option<Instant>,
    /// When bytes were last written, not told to the engine yet.
    wrote_at: Option<Instant>,
    /// Wakers collected under the lock, woken after it.
    wakers: Vec<Waker>,
    rng: u64,
    _rt: PhantomData<fn() -> R>,
}

impl<R: Runtime> Driver<R> {
    async fn run(&mut self) {
        let addr = self.addr.clone();
        let mut attempt: u32 = 0;
        loop {
            // The connect timeout bounds TCP connect plus handshake: both
            // count from here (saturating for huge timeouts).
            let started = self.inner.now();
            let connect = R::connect(&addr, self.connect_timeout.min(MAX_WAIT));
            let cause = match self.service_until(connect).await {
                None => return,
                Some(Err(e)) => Cause::Io(e),
                Some(Ok(mut stream)) => {
                    let readies = self.ready_count();
                    {
                        let mut sh = self.inner.lock();
                        let now = self.inner.now();
                        sh.engine.handle_connected(self.node, now);
                        self.handshake_deadline =
                            Some(started.saturating_add(self.connect_timeout));
                    }
                    self.reset_buffers();
                    let exit = self.serve(&mut stream).await;
                    drop(stream);
                    self.reset_buffers();
                    let node = self.node;
                    self.with_lock(|sh, now| sh.engine.handle_disconnected(node, now));
                    if self.ready_count() != readies {
                        attempt = 0;
                    }
                    match exit {
                        None => return,
                        Some(cause) => cause,
                    }
                }
            };
            let error = cause.into_error(&addr);
            let first = {
                let mut sh = self.inner.lock();
                sh.last_error = Some(error.to_string());
                let n = &mut sh.nodes[self.idx];
                let first = n.ready_count == 0;
                if first && !n.failed_first {
                    // `connect` reports it when it makes success impossible.
                    n.failed_first = true;
                    n.first_error = Some(error);
                }
                if let Some(w) = sh.startup_waker.take() {
                    w.wake();
                }
                first
            };
            if first && self.inner.mode == Mode::Single {
                // `connect` fails: nobody needs this node any more.
                return;
            }
            let delay = self.backoff(attempt);
            attempt = attempt.saturating_add(1);
            let sleep = R::sleep_until(deadline_after(R::now(), delay));
            if self.service_until(sleep).await.is_none() {
                return;
            }
        }
    }

    fn ready_count(&self) -> u64 {
        self.inner.lock().nodes[self.idx].ready_count
    }

    fn reset_buffers(&mut self) {
        if self.rx.is_empty() {
            self.rx = vec![0; RX_INITIAL];
            self.tx = Vec::with_capacity(RX_INITIAL);
        }
        self.filled = 0;
        self.fresh = false;
        self.tx.clear();
        self.tx_pos = 0;
        self.need_flush = false;
        self.wrote_at = None;
    }

    /// Jittered exponential backoff: a random delay in `[d/2, d]` with
    /// `d = min(10 ms * 2^attempt, 1 s)`.
    fn backoff(&mut self, attempt: u32) -> Duration {
        let d = BACKOFF_MIN
            .saturating_mul(1u32 << attempt.min(16))
            .min(BACKOFF_MAX);
        // xorshift64
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let frac = (self.rng >> 11) as f64 / (1u64 << 53) as f64;
        d.mul_f64(0.5 + frac / 2.0)
    }

    /// Runs `f` on the engine, then dispatches its events and wakes them.
    fn with_lock(&mut self, f: impl FnOnce(&mut Shared, Instant)) {
        let added = {
            let mut sh = self.inner.lock();
            let now = self.inner.now();
            f(&mut sh, now);
            sh.dispatch();
            std::mem::swap(&mut sh.wakers, &mut self.wakers);
            sh.take_added()
        };
        for w in self.wakers.drain(..) {
            w.wake();
        }
        self.inner.spawn_added(added);
    }

    /// One turn under the lock: bytes in, timers, events, bytes out.
    fn turn(&mut self, connected: bool) -> Turn {
        let mut notify_others = false;
        let (turn, added) = {
            let mut sh = self.inner.lock();
            let sh = &mut *sh;
            let now = self.inner.now();
            sh.engine.set_unix_time(now, unix_ms());
            if connected && self.fresh {
                self.fresh = false;
                let mut off = 0;
                while off < self.filled {
                    let n = sh
                        .engine
                        .handle_bytes(self.node, now, &self.rx[off..self.filled]);
                    if n == 0 {
                        break;
                    }
                    off += n.min(self.filled - off);
                }
                self.rx.copy_within(off..self.filled, 0);
                self.filled -= off;
            }
            if let Some(t) = self.wrote_at.take() {
                sh.engine.handle_written(self.node, t);
            }
            sh.poke(now);
            sh.dispatch();
            let added = sh.take_added();
            if sh.startup_waker.is_some() && sh.engine.is_usable() {
                // Usable without a `NodeReady` (a cluster's slot map arrived).
                sh.wakers.extend(sh.startup_waker.take());
            }
            let close = sh.nodes[self.idx].close_request.take();
            let ready = sh.engine.is_ready(self.node);
            if ready {
                self.handshake_deadline = None;
            }
            let turn = if sh.should_stop(now) {
                Turn::Stop
            } else if !connected {
                // No connection: nothing to close, nothing to write.
                Turn::Go(sh.earliest().map(|t| self.inner.to_std(t)))
            } else if let Some(e) = close {
                Turn::Close(e)
            } else if self.handshake_deadline.is_some_and(|d| now >= d) {
                Turn::Close(NodeError::Unresponsive)
            } else {
                let out = sh.engine.transmit(self.node);
                if !out.is_empty() {
                    let n = out.len();
                    self.tx.extend_from_slice(out);
                    sh.engine.consume_transmit(self.node, n);
                }
                let t = match (sh.earliest(), self.handshake_deadline) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                Turn::Go(t.map(|t| self.inner.to_std(t)))
            };
            if sh.nodes.len() > 1 {
                notify_others = (0..sh.nodes.len()).any(|i| {
                    i != self.idx
                        && (sh.nodes[i].close_request.is_some()
                            || !sh.engine.transmit(NodeId(i as u16)).is_empty())
                });
            }
            std::mem::swap(&mut sh.wakers, &mut self.wakers);
            (turn, added)
        };
        for w in self.wakers.drain(..) {
            w.wake();
        }
        if notify_others {
            self.inner.notify_others(self.idx);
        }
        self.inner.spawn_added(added);
        turn
    }

    /// Awaits `fut` (a connect attempt or a backoff sleep) while serving the
    /// engine's timers and wake-ups. `None` when the locker stopped.
    async fn service_until<F: Future>(&mut self, fut: F) -> Option<F::Output> {
        let mut fut = pin!(fut);
        loop {
            let deadline = match self.turn(false) {
                Turn::Stop => return None,
                Turn::Go(d) => d,
                Turn::Close(_) => None,
            };
            let signal = self.signal.clone();
            let signal = &*signal;
            let done = or(async { Some(fut.as_mut().await) }, async {
                wait::<R>(signal, deadline).await;
                None
            })
            .await;
            if done.is_some() {
                return done;
            }
        }
    }

    /// Serves one connection. `None` when the locker stopped, else why the
    /// connection ended.
    async fn serve(&mut self, stream: &mut R::Stream) -> Option<Cause> {
        let signal = self.signal.clone();
        let signal = &*signal;
        loop {
            let deadline = match self.turn(true) {
                Turn::Stop => return None,
                Turn::Close(e) => return Some(Cause::Node(e)),
                Turn::Go(d) => d,
            };
            // The timer and the signal stay armed across the I/O steps
            // below; only a wake-up, a deadline or new bytes need a turn.
            let mut tick = pin!(wait::<R>(signal, deadline));
            loop {
                if self.filled == self.rx.len() {
                    if self.rx.len() >= RX_MAX {
                        return Some(Cause::TooLarge);
                    }
                    let len = (self.rx.len() * 2).clamp(RX_INITIAL, RX_MAX);
                    self.rx.resize(len, 0);
                }
                let io = async {
                    if self.tx_pos < self.tx.len() {
                        Io::Wrote(stream.write(&self.tx[self.tx_pos..]).await)
                    } else if self.need_flush {
                        Io::Flushed(stream.flush().await)
                    } else {
                        Io::Read(stream.read(&mut self.rx[self.filled..]).await)
                    }
                };
                // I/O first: after this process was starved, the replies
                // waiting in the socket must reach the engine before a due
                // ping deadline calls a live server unresponsive. A ready
                // read still ends in a turn, which fires the due timers.
                let step = or(io, async {
                    tick.as_mut().await;
                    Io::Tick
                })
                .await;
                match step {
                    Io::Tick => break,
                    // A stream that accepts nothing is as good as closed
                    // (looping on it would spin).
                    Io::Wrote(Ok(0)) => return Some(Cause::Eof),
                    Io::Wrote(Ok(n)) => {
                        self.wrote_at = Some(self.inner.now());
                        self.tx_pos += n;
                        if self.tx_pos >= self.tx.len() {
                            self.tx.clear();
                            self.tx_pos = 0;
                            self.need_flush = true;
                        }
                    }
                    Io::Flushed(Ok(())) => self.need_flush = false,
                    Io::Read(Ok(0)) => return Some(Cause::Eof),
                    Io::Read(Ok(n)) => {
                        self.filled += n;
                        self.fresh = true;
                        break;
                    }
                    Io::Wrote(Err(e)) | Io::Flushed(Err(e)) | Io::Read(Err(e)) => {
                        return Some(Cause::Io(e));
                    }
                }
            }
        }
    }
}

impl<R: Runtime> Drop for Driver<R> {
    /// The last driver to exit (or to be dropped with its runtime) ends
    /// every request still waiting, so no public future hangs.
    fn drop(&mut self) {
        let mut sh = self.inner.lock();
        let sh = &mut *sh;
        sh.running = sh.running.saturating_sub(1);
        if sh.running > 0 {
            return;
        }
        sh.stopped = true;
        sh.closing = true;
        if !sh.engine.is_closed() {
            let now = self.inner.now();
            sh.engine.close(now);
        }
        sh.dispatch();
        for slot in sh.slots.values_mut() {
            match slot.state {
                State::Pending => slot.state = State::Closed,
                State::Held => slot.state = State::Lost(LostReason::Closed),
                _ => {}
            }
            slot.wake_into(&mut sh.wakers);
        }
        sh.wakers.extend(sh.startup_waker.take());
        sh.wakers.append(&mut sh.close_wakers);
        for w in sh.wakers.drain(..) {
            w.wake();
        }
    }
}

/// Resolves when `signal` is raised or `deadline` passes.
async fn wait<R: Runtime>(signal: &Signal, deadline: Option<std::time::Instant>) {
    let woken = poll_fn(|cx| signal.poll(cx));
    match deadline {
        Some(d) => {
            or(woken, async {
                R::sleep_until(d).await;
            })
            .await
        }
        None => woken.await,
    }
}
