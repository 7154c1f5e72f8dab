//! The per-node task: connects its node, moves bytes between the engine and
//! the socket, fires the engine's timers, and reconnects. Written once
//! against [`Runtime`]; runtimes only spawn it (as a [`Task`]).
//!
//! One task per node owns the stream (`embedded-io-async` `read` and `write`
//! both take `&mut self`). Each turn it takes the lock once: hands in the
//! bytes read, fires due timers, drains events (waking the futures they
//! concern), sends the engine's transmit on the socket's duplicate where
//! the connection has one ([`crate::direct`]; other tasks send there too
//! while the connection is idle), moves what is left into its own buffer,
//! notes whether the connection is idle (or its pipeline deep: then nobody
//! wakes it for new commands, the next reply will), and reads the next
//! deadline. Woken to write while replies are outstanding, it first lets
//! the other ready tasks run ([`Runtime::yield_now`]) so that their
//! commands join the same write. Then,
//! without the lock, it races one I/O step (write if anything is queued,
//! else flush, else read) against its signal and the timer. Losing that
//! race drops the pending `read`/`write` future, which [`Runtime::Stream`]
//! requires to lose no data.
//!
//! On EOF, an I/O error, an engine `CloseConnection` or a handshake that does
//! not finish within the connect timeout, the driver tells the engine
//! ([`tracklock_core::Engine::handle_disconnected`]) and reconnects with
//! jittered exponential backoff (10 ms doubling to 1 s), still firing the
//! engine's timers and serving wake-ups meanwhile: lock deadlines run on
//! while disconnected.
//!
//! In cluster mode the engine may add nodes at run time
//! ([`tracklock_core::Event::NodeAdded`]): the driver that drained the
//! event spawns the new node's driver after releasing the lock. A first
//! connection that fails ends the driver in single mode (`connect` reports
//! it); in the multi-node modes the driver keeps retrying, since the other
//! nodes may be enough.
//!
//! In sentinel mode the driver asks the sentinels for the master before
//! every connection attempt ([`crate::sentinel`]) and polls their
//! `+switch-master` subscription beside its own work. A first attempt ends
//! `connect` only for a misconfiguration (no master named, a refused
//! handshake, TLS); a replica or a master not up yet is what a failover
//! looks like, and is retried until the connect timeout.
//!
//! Its parts: [`conn`] opens a connection (the runtime's stream, or TLS
//! over it), [`cause`] says why one ended and which [`Error`] a failed
//! attempt reports, [`timer`] is the timer a driver keeps across turns,
//! and [`backoff`] spaces its reconnection attempts.
//!
//! [`Task`]: crate::Task
//! [`Error`]: crate::Error

mod backoff;
mod cause;
pub(crate) mod conn;
mod timer;

use std::future::Future;
use std::io;
use std::pin::pin;
use std::sync::Arc;
use std::task::Waker;
use std::time::Duration;

use embedded_io_async::{Read, Write};
use futures_lite::future::or;
use tracklock_core::{Instant, NodeError, NodeId};

use self::backoff::Backoff;
use self::cause::Cause;
use self::conn::{connect, Conn};
use self::timer::Timer;
use crate::direct::Direct;
use crate::inner::{unix_ms, Inner, Signal};
use crate::runtime::deadline_after;
use crate::sentinel::Sentinels;
use crate::shared::Shared;
use crate::{Mode, Runtime};

/// Initial size of the read buffer; it doubles when a frame does not fit.
const RX_INITIAL: usize = 8 * 1024;
/// A reply that does not fit this is refused (protocol error).
const RX_MAX: usize = 16 * 1024 * 1024;

/// What a turn under the lock decided.
enum Turn {
    /// Go on; sleep until this deadline at the latest.
    Go(Option<std::time::Instant>),
    /// The engine asked to drop the connection.
    Close(NodeError),
    /// The handshake did not finish within the connect timeout.
    HandshakeTimeout,
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

/// The driver of one node. Runs until the locker is closed and settled, or
/// the engine retires the node.
pub(crate) struct Driver<R: Runtime> {
    inner: Arc<Inner<R>>,
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
    /// `tx` (or its flush) holds the node's bytes: the node's `backlog` is
    /// raised until they are out.
    backlog: bool,
    /// The handshake must finish by then: the connect timeout after the
    /// TCP connect started.
    handshake_deadline: Option<Instant>,
    /// The current connection received bytes; `first` holds its first two.
    got_bytes: bool,
    first: [u8; 2],
    /// When bytes were last written, not told to the engine yet.
    wrote_at: Option<Instant>,
    /// Wakers collected under the lock, woken after it.
    wakers: Vec<Waker>,
    backoff: Backoff,
    /// The engine retired the node: the driver exits for good.
    retired: bool,
    /// Replies were outstanding when the last turn ended.
    busy: bool,
    /// The node connection's span, a child of the locker's.
    #[cfg(feature = "tracing")]
    pub(crate) span: tracing::Span,
}

impl<R: Runtime> Driver<R> {
    /// The driver of node `idx`, whose `running` count the caller reserved.
    ///
    /// Built before its future is first polled, so that even a task dropped
    /// unpolled (a runtime shutting down, or refusing it) counts as exited.
    pub(crate) fn new(inner: Arc<Inner<R>>, idx: usize) -> Self {
        let sh = inner.lock();
        let addr = sh
            .nodes
            .get(idx)
            .map(|n| n.addr.clone())
            .unwrap_or_default();
        #[cfg(feature = "tracing")]
        let span = tracing::debug_span!(parent: &sh.span, "tracklock.node", %addr);
        drop(sh);
        let jitter_seed = inner
            .jitter
            .wrapping_add(idx as u64)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
        Driver {
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
            backlog: false,
            handshake_deadline: None,
            got_bytes: false,
            first: [0; 2],
            wrote_at: None,
            wakers: Vec::new(),
            backoff: Backoff::new(jitter_seed),
            retired: false,
            busy: false,
            #[cfg(feature = "tracing")]
            span,
            inner,
        }
    }

    /// The node's `host:port`.
    pub(crate) fn addr(&self) -> &str {
        &self.addr
    }

    /// Serves the node until the locker is closed and settled; in sentinel
    /// mode, follows the sentinels' `+switch-master` meanwhile.
    pub(crate) async fn run(&mut self) {
        match self.inner.sentinel.clone() {
            Some(s) => {
                let (inner, idx) = (self.inner.clone(), self.idx);
                or(self.run_node(Some(&s)), s.follow(&inner, idx)).await;
            }
            None => self.run_node(None).await,
        }
    }

    /// The master the sentinels name, which becomes the node's address.
    async fn resolve(&mut self, sentinels: &Sentinels) -> Option<Result<String, Cause>> {
        let inner = self.inner.clone();
        let master = match self
            .service_until(sentinels.resolve(&inner, self.connect_timeout))
            .await?
        {
            Ok(m) => m,
            Err(e) => return Some(Err(Cause::Resolve(e))),
        };
        if master != self.addr {
            #[cfg(feature = "tracing")]
            tracing::info!(master = %master, "sentinel: master resolved");
            self.addr.clone_from(&master);
            self.inner.lock().nodes[self.idx].addr.clone_from(&master);
        }
        Some(Ok(master))
    }

    async fn run_node(&mut self, sentinels: Option<&Sentinels>) {
        // The connect future borrows the runtime while `self` serves.
        let inner = self.inner.clone();
        let mut attempt: u32 = 0;
        loop {
            let resolved = match sentinels {
                Some(s) => match self.resolve(s).await {
                    None => return,
                    Some(r) => r,
                },
                None => Ok(self.addr.clone()),
            };
            let addr = match &resolved {
                Ok(a) => a.clone(),
                Err(_) => inner.addresses().join(","),
            };
            // The connect timeout bounds TCP connect plus handshake: both
            // count from here (saturating for huge timeouts).
            let started = self.inner.now();
            let cause = match resolved {
                Err(cause) => cause,
                Ok(addr) => match self
                    .service_until(connect(&inner, self.idx, &addr, self.connect_timeout))
                    .await
                {
                    None => return,
                    Some(Err(e)) => e,
                    // The master switched while this connected to the old one.
                    Some(Ok(_)) if sentinels.is_some_and(|s| s.moved_from(&addr)) => {
                        Cause::Node(NodeError::Replica)
                    }
                    Some(Ok(mut stream)) => {
                        let readies = self.ready_count();
                        {
                            let mut sh = self.inner.lock();
                            let now = self.inner.now();
                            sh.nodes[self.idx].connects += 1;
                            sh.nodes[self.idx].connected = true;
                            sh.nodes[self.idx].set_direct(self.direct_of(&stream));
                            #[cfg(feature = "tracing")]
                            tracing::debug!(attempt, "connected");
                            sh.engine.handle_connected(self.node, now);
                            self.handshake_deadline =
                                Some(started.saturating_add(self.connect_timeout));
                        }
                        self.reset_buffers();
                        let mut exit = self.serve(&mut stream).await;
                        if matches!(stream, Conn::Plain(_)) && self.handshake_deadline.is_some() {
                            exit = exit.map(|c| c.plain_on_tls(self.got_bytes, self.first));
                        }
                        // Nobody sends on the socket once it is closed.
                        self.inner.lock().nodes[self.idx].set_direct(None);
                        drop(stream);
                        self.reset_buffers();
                        let (node, idx) = (self.node, self.idx);
                        self.with_lock(|sh, now| {
                            sh.nodes[idx].connected = false;
                            sh.engine.handle_disconnected(node, now);
                        });
                        if self.ready_count() != readies {
                            attempt = 0;
                        }
                        match exit {
                            None => return,
                            Some(cause) => cause,
                        }
                    }
                },
            };
            let mode = self.inner.mode();
            let ends_startup = match mode {
                Mode::Single => true,
                Mode::Sentinel => cause.ends_sentinel_startup(),
                _ => false,
            };
            let error = cause.into_error(&addr);
            let message = error.to_string();
            let first = {
                let mut sh = self.inner.lock();
                sh.last_error = Some(message.clone());
                let n = &mut sh.nodes[self.idx];
                n.failures += 1;
                let first = n.ready_count == 0;
                if first && !n.failed_first && (mode != Mode::Sentinel || ends_startup) {
                    // `connect` reports it when it makes success impossible.
                    n.failed_first = true;
                    n.first_error = Some(error);
                }
                if let Some(w) = sh.startup_waker.take() {
                    w.wake();
                }
                first
            };
            if first && ends_startup && matches!(mode, Mode::Single | Mode::Sentinel) {
                // `connect` fails: nobody needs this node any more.
                return;
            }
            let delay = self.backoff.delay(attempt);
            #[cfg(feature = "tracing")]
            tracing::warn!(
                error = %message,
                retry_in = ?delay,
                attempt,
                "connection failed; reconnecting"
            );
            attempt = attempt.saturating_add(1);
            let sleep = inner.rt.sleep_until(deadline_after(inner.rt.now(), delay));
            if self.service_until(sleep).await.is_none() {
                return;
            }
        }
    }

    /// The socket of a plain connection, for direct writes
    /// ([`crate::direct`]); TLS bytes go through the driver's session.
    fn direct_of(&self, stream: &Conn<R::Stream>) -> Option<Direct> {
        match stream {
            #[cfg(unix)]
            Conn::Plain(s) => self.inner.rt.socket(s).map(Direct::new),
            #[allow(unreachable_patterns)]
            _ => None,
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
        self.got_bytes = false;
        self.first = [0; 2];
        self.tx.clear();
        self.tx_pos = 0;
        self.need_flush = false;
        self.backlog = false;
        self.busy = false;
        self.wrote_at = None;
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
            #[cfg(feature = "tracing")]
            sh.trace_counters();
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
            } else if sh.engine.is_retired(self.node) {
                // Gone from the cluster: close, and never dial it again.
                #[cfg(feature = "tracing")]
                tracing::info!("node retired: closing, not reconnecting");
                self.retired = true;
                Turn::Stop
            } else if !connected {
                // No connection: nothing to close, nothing to write.
                Turn::Go(sh.earliest().map(|t| self.inner.to_std(t)))
            } else if let Some(e) = close {
                Turn::Close(e)
            } else if self.handshake_deadline.is_some_and(|d| now >= d) {
                Turn::HandshakeTimeout
            } else {
                let n = &mut sh.nodes[self.idx];
                if !n.spill.is_empty() {
                    // What a direct `send` left: before anything queued
                    // later (`backlog` keeps direct writes off until out).
                    self.tx.extend_from_slice(&n.spill);
                    n.spill.clear();
                    self.backlog = true;
                }
                if !sh.write_direct(self.idx, now, true) {
                    let out = sh.engine.transmit(self.node);
                    if !out.is_empty() {
                        let n = out.len();
                        self.tx.extend_from_slice(out);
                        sh.engine.consume_transmit(self.node, n);
                        self.backlog = true;
                        sh.nodes[self.idx].backlog = true;
                    }
                }
                self.busy = sh.note_idle(self.idx);
                let t = match (sh.earliest(), self.handshake_deadline) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                Turn::Go(t.map(|t| self.inner.to_std(t)))
            };
            // Every driver arms a timer for the engine's deadline; this one
            // now sleeps until it.
            sh.armed = sh.earliest();
            self.inner.wake_drivers(sh, Some(self.idx));
            std::mem::swap(&mut sh.wakers, &mut self.wakers);
            (turn, added)
        };
        for w in self.wakers.drain(..) {
            w.wake();
        }
        self.inner.spawn_added(added);
        turn
    }

    /// Awaits `fut` (a connect attempt or a backoff sleep) while serving the
    /// engine's timers and wake-ups. `None` when the locker stopped.
    async fn service_until<F: Future>(&mut self, fut: F) -> Option<F::Output> {
        let mut fut = pin!(fut);
        let mut timer = Timer::<R>::new();
        loop {
            let deadline = match self.turn(false) {
                Turn::Stop => return None,
                Turn::Go(d) => d,
                Turn::Close(_) | Turn::HandshakeTimeout => None,
            };
            let signal = self.signal.clone();
            let signal = &*signal;
            timer.arm(&self.inner.rt, deadline);
            let done = or(async { Some(fut.as_mut().await) }, async {
                timer.wait(signal).await;
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
    async fn serve(&mut self, stream: &mut Conn<R::Stream>) -> Option<Cause> {
        let signal = self.signal.clone();
        let signal = &*signal;
        let mut timer = Timer::<R>::new();
        let mut woken = false;
        loop {
            if std::mem::take(&mut woken) && self.busy {
                // Woken to write while replies are outstanding: the tasks
                // those replies woke queue their commands first, and they
                // all leave in this turn's one write (`Runtime::yield_now`).
                self.inner.rt.yield_now().await;
            }
            let deadline = match self.turn(true) {
                Turn::Stop => return None,
                // The engine's own handshake bound equals the connect
                // timeout: a handshake that timed out is reported as one,
                // whichever bound noticed first.
                Turn::Close(NodeError::Unresponsive) if self.handshake_deadline.is_some() => {
                    return Some(Cause::HandshakeTimeout)
                }
                Turn::Close(e) => return Some(Cause::Node(e)),
                Turn::HandshakeTimeout => return Some(Cause::HandshakeTimeout),
                Turn::Go(d) => d,
            };
            // The timer and the signal stay armed across the I/O steps
            // below; only a wake-up, a deadline or new bytes need a turn.
            timer.arm(&self.inner.rt, deadline);
            let mut tick = pin!(timer.wait(signal));
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
                    Io::Tick => {
                        #[cfg(feature = "timeline")]
                        crate::timeline::record(crate::timeline::Kind::DriverWoken);
                        woken = true;
                        break;
                    }
                    // A stream that accepts nothing is as good as closed
                    // (looping on it would spin).
                    Io::Wrote(Ok(0)) => return Some(Cause::Eof),
                    Io::Wrote(Ok(n)) => {
                        #[cfg(feature = "timeline")]
                        crate::timeline::record(crate::timeline::Kind::Wrote);
                        self.wrote_at = Some(self.inner.now());
                        self.tx_pos += n;
                        if self.tx_pos >= self.tx.len() {
                            self.tx.clear();
                            self.tx_pos = 0;
                            self.need_flush = true;
                        }
                    }
                    Io::Flushed(Ok(())) => {
                        self.need_flush = false;
                        if self.backlog && self.tx.is_empty() {
                            // Direct writes may go on (rare: only when the
                            // socket once took less than was queued).
                            self.backlog = false;
                            self.inner.lock().nodes[self.idx].backlog = false;
                        }
                    }
                    Io::Read(Ok(0)) => return Some(Cause::Eof),
                    Io::Read(Ok(n)) => {
                        #[cfg(feature = "timeline")]
                        crate::timeline::record(crate::timeline::Kind::Read);
                        if !self.got_bytes {
                            self.got_bytes = true;
                            let b = &self.rx[self.filled..self.filled + n];
                            self.first = [b[0], b.get(1).copied().unwrap_or(0)];
                        }
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
        sh.running = sh.running.saturating_sub(1);
        if let Some(n) = sh.nodes.get_mut(self.idx) {
            // Dropped mid-connection (its runtime shut down): close the
            // socket's duplicate too.
            n.set_direct(None);
        }
        if self.retired {
            sh.retired(self.idx);
            // Its timer is gone: another driver re-arms it.
            self.inner.wake_drivers(&mut sh, Some(self.idx));
        }
        if sh.running == 0 {
            let now = self.inner.now();
            sh.stop(now);
        }
    }
}
