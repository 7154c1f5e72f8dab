//! A no-alloc, single-task driver for firmware: one [`Engine`], one Redis
//! connection over any [`embedded_io_async`] stream, a caller-supplied
//! [`Clock`] and [`Delay`]. Available without `std` (and works with the
//! core built without `alloc`).
//!
//! ```ignore
//! let mut device: Device<'_, _, _, _, 1024> = Device::new(&mut engine, stream, clock, delay);
//! device.handshake().await?;
//! let lock = device.lock("pump").await?;
//! match device.run_until(&lock, run_the_pump()).await? {
//!     Outcome::Done(()) => {}
//!     Outcome::Lost(reason) => { /* stop actuating: someone else may hold it */ }
//! }
//! device.unlock(lock).await?;
//! ```
//!
//! Nothing runs in the background: the engine only hears the server, fires
//! its timers and extends held locks while one of the device's async methods
//! is being awaited. Hold a lock inside [`Device::run_until`], which drives
//! the connection and the timers while it polls your work, and stops polling
//! the work the moment the lock is lost (at the latest at its local
//! deadline). Work that blocks the task without yielding stalls all of it.
//!
//! Requirements on the parts:
//! - the stream's `read` and `write` must be cancel-safe (a dropped pending
//!   call lost no data), as the `embedded-io-adapters` wrappers of
//!   tokio/futures streams and the usual embedded TCP sockets are: a pending
//!   read is dropped whenever a timer or the work wins the race;
//! - TLS is the stream's business: the device speaks RESP over whatever it
//!   is given, so a TLS client connection that implements
//!   `embedded_io_async::{Read, Write}` (for example `embedded-tls`'s
//!   `TlsConnection`, opened over the TCP socket before
//!   [`Device::handshake`]) goes in place of the socket. It must be
//!   cancel-safe too: a TLS stream whose `read` keeps the partial record it
//!   was decrypting in the connection (not in the future) is;
//! - the [`Clock`] is monotonic and the [`Delay`] counts on the same clock
//!   (for example `embassy_time::Instant::now()` and `Timer::at`);
//! - the engine has a single node ([`tracklock_core::Topology::Single`], the
//!   default).
//!
//! On a connection failure every method returns an error, the engine is
//! told, and the device is disconnected: give it a new stream with
//! [`Device::reconnect`]. Held locks survive a short outage (their keys are
//! re-checked after the new handshake) unless their deadline passes first.
//!
//! Dropping a pending [`Device::lock`] future is safe: the abandoned request
//! is ended (its keys released) by the next call on the device, or expires.
//!
//! Memory: the engine (about 220 KiB without `alloc`, most of it the
//! per-node buffers of its 8 node slots; keep it in a `static`) plus the
//! `RX`-byte receive buffer. Nothing is allocated: the host test counts
//! zero allocations inside the engine and the device.

use core::fmt;
use core::future::{poll_fn, Future};
use core::pin::{pin, Pin};
use core::task::Poll;
use core::time::Duration;

use embedded_io_async::{Read, Write};
use tracklock_core::{
    Engine, Event, Instant, LockError, LockFailure, LockId, LockMode, LostReason, NodeError,
    NodeId, ServerError, CLOSE_GRACE,
};

const NODE: NodeId = NodeId(0);
/// Lost locks remembered for a later [`Device::run_until`]: one per lock
/// the engine can hold without `alloc`.
const LOST_MEMORY: usize = tracklock_core::capacity::LOCKS;

/// The device's monotonic clock, in the engine's [`Instant`]s (nanoseconds
/// since any origin). Implemented by every `Fn() -> Instant`.
pub trait Clock {
    /// Now.
    fn now(&self) -> Instant;
}

impl<F: Fn() -> Instant> Clock for F {
    fn now(&self) -> Instant {
        self()
    }
}

/// An async timer on the same timeline as the [`Clock`].
pub trait Delay {
    /// Resolves at `deadline` or soon after (at once if it passed). It is
    /// dropped unfinished whenever I/O wins the race, so it must not leave
    /// anything armed behind.
    fn delay_until(&mut self, deadline: Instant) -> impl Future<Output = ()>;
}

/// A lock held through a [`Device`]. Not `Clone`: [`Device::unlock`]
/// consumes it.
#[derive(Debug, PartialEq, Eq)]
pub struct HeldLock {
    id: LockId,
    token: Option<u64>,
}

impl HeldLock {
    /// The engine's id of the lock.
    pub fn id(&self) -> LockId {
        self.id
    }

    /// The fencing token of the grant when the engine's configuration has
    /// `fencing` on (`tracklock_core::fence`), `None` otherwise.
    pub fn token(&self) -> Option<u64> {
        self.token
    }
}

/// How [`Device::run_until`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome<T> {
    /// The work finished while the lock was held; its output.
    Done(T),
    /// The lock was lost first; the work was dropped at its last `.await`.
    Lost(LostReason),
}

/// Why a device call failed. `E` is the stream's error.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error<E> {
    /// The stream failed; the device is now disconnected.
    Io(E),
    /// The server closed the connection; the device is now disconnected.
    Eof,
    /// The engine dropped the connection (handshake refused, protocol
    /// error, unanswered ping, capacity); the device is now disconnected.
    Node(NodeError),
    /// The handshake did not finish in time; the device is now disconnected.
    Timeout,
    /// A reply did not fit the receive buffer (raise `RX`); the device is
    /// now disconnected.
    FrameTooLarge,
    /// No connection: call [`Device::handshake`] or [`Device::reconnect`].
    NotConnected,
    /// The engine has more than one node; a device drives exactly one.
    Topology,
    /// The engine refused the request (empty name, capacity, closed).
    Lock(LockError),
    /// `try_lock`: someone else holds the lock.
    NotLocked,
    /// The request ended without the lock for another reason: a server
    /// refusal (`OOM`, `NOPERM`, `READONLY`…), the node unavailable, or a
    /// majority that came after the lease (see [`LockFailure`]).
    Failed(LockFailure),
    /// `unlock`: the server refused the release; the keys stay until
    /// their TTL.
    NotReleased(ServerError),
    /// The engine was closed before the request was decided.
    Closed,
}

impl<E: fmt::Debug> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "stream error: {e:?}"),
            Error::Eof => f.write_str("the server closed the connection"),
            Error::Node(e) => write!(f, "connection dropped: {e}"),
            Error::Timeout => f.write_str("the handshake timed out"),
            Error::FrameTooLarge => f.write_str("a reply exceeded the receive buffer"),
            Error::NotConnected => f.write_str("not connected"),
            Error::Topology => f.write_str("a device drives an engine of exactly one node"),
            Error::Lock(e) => write!(f, "lock request refused: {e}"),
            Error::NotLocked => f.write_str("the lock is held by someone else"),
            Error::Failed(e) => write!(f, "lock request failed: {e}"),
            Error::NotReleased(e) => {
                write!(f, "release refused (the keys stay until their TTL): {e}")
            }
            Error::Closed => f.write_str("the engine is closed"),
        }
    }
}

impl<E: fmt::Debug> core::error::Error for Error<E> {}

/// What [`Device::drive`] waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Goal {
    Ready,
    Decided(LockId),
    Released(LockId),
    Held(LockId),
    Idle,
}

/// How [`Device::drive`] ended.
enum Reached<T> {
    Goal,
    Work(T),
    Lost(LostReason),
}

/// One I/O step that completed.
enum IoDone {
    Wrote(usize),
    Flushed,
    Read(usize),
}

/// Which racer won.
enum Wake<T, E> {
    Io(Result<IoDone, E>),
    Timer,
    Work(T),
}

/// The single-task driver. `RX` is the receive buffer size: it must hold
/// the largest single reply (the `HELLO` reply, a few hundred bytes without
/// modules; 1024 is plenty for lock traffic).
pub struct Device<'e, S, C, D, const RX: usize> {
    engine: &'e mut Engine,
    stream: S,
    clock: C,
    delay: D,
    rx: [u8; RX],
    filled: usize,
    connected: bool,
    need_flush: bool,
    handshake_timeout: Duration,
    /// A `lock` whose future was dropped before it was decided.
    abandoned: Option<LockId>,
    lost: [Option<(LockId, LostReason)>; LOST_MEMORY],
    lost_next: usize,
}

impl<S, C, D, const RX: usize> fmt::Debug for Device<'_, S, C, D, RX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Device")
            .field("connected", &self.connected)
            .field("buffered", &self.filled)
            .finish_non_exhaustive()
    }
}

impl<'e, S, C, D, const RX: usize> Device<'e, S, C, D, RX>
where
    S: Read + Write,
    C: Clock,
    D: Delay,
{
    /// A device over `stream` (freshly connected, nothing sent yet). Call
    /// [`Device::handshake`] next.
    pub fn new(engine: &'e mut Engine, stream: S, clock: C, delay: D) -> Self {
        let handshake_timeout = engine.config().handshake_timeout();
        Device {
            engine,
            stream,
            clock,
            delay,
            rx: [0; RX],
            filled: 0,
            connected: false,
            need_flush: false,
            handshake_timeout,
            abandoned: None,
            lost: [const { None }; LOST_MEMORY],
            lost_next: 0,
        }
    }

    /// Bounds [`Device::handshake`] (default: the engine's
    /// [`Config::handshake_timeout`](tracklock_core::Config::handshake_timeout),
    /// 5 s unless set).
    pub fn set_handshake_timeout(&mut self, timeout: Duration) {
        self.handshake_timeout = timeout;
    }

    /// The engine (to read its state, or to call
    /// [`Engine::set_unix_time`] for absolute TTLs).
    pub fn engine(&mut self) -> &mut Engine {
        self.engine
    }

    /// The stream.
    pub fn stream(&mut self) -> &mut S {
        &mut self.stream
    }

    /// True between a successful handshake and a connection failure.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// Runs the handshake (`HELLO 3`, `AUTH`, `SELECT`, `CLIENT TRACKING`)
    /// on the current stream.
    pub async fn handshake(&mut self) -> Result<(), Error<S::Error>> {
        if self.engine.node_count() != 1 {
            return Err(Error::Topology);
        }
        let now = self.clock.now();
        self.filled = 0;
        self.need_flush = false;
        self.engine.handle_connected(NODE, now);
        self.connected = true;
        let limit = now.saturating_add(self.handshake_timeout);
        self.drive(
            Goal::Ready,
            Some(limit),
            pin!(core::future::pending::<()>()),
        )
        .await
        .map(|_| ())
    }

    /// Replaces a failed stream with a new, connected one and runs the
    /// handshake on it.
    pub async fn reconnect(&mut self, stream: S) -> Result<(), Error<S::Error>> {
        self.disconnect();
        self.stream = stream;
        self.handshake().await
    }

    /// Acquires `name`, waiting as long as it takes (woken by the holder's
    /// release or expiry through client-side caching).
    pub async fn lock(&mut self, name: &str) -> Result<HeldLock, Error<S::Error>> {
        self.acquire(name, LockMode::Wait).await
    }

    /// One attempt at `name`: [`Error::NotLocked`] when someone holds it.
    pub async fn try_lock(&mut self, name: &str) -> Result<HeldLock, Error<S::Error>> {
        self.acquire(name, LockMode::Try).await
    }

    /// Takes `name` whoever holds it.
    pub async fn force_lock(&mut self, name: &str) -> Result<HeldLock, Error<S::Error>> {
        self.acquire(name, LockMode::Force).await
    }

    async fn acquire(&mut self, name: &str, mode: LockMode) -> Result<HeldLock, Error<S::Error>> {
        self.end_abandoned();
        if !self.connected {
            return Err(Error::NotConnected);
        }
        let now = self.clock.now();
        let id = self.engine.lock(name, mode, now).map_err(Error::Lock)?;
        self.abandoned = Some(id);
        let r = self
            .drive(Goal::Decided(id), None, pin!(core::future::pending::<()>()))
            .await;
        self.abandoned = None;
        match r {
            Ok(_) => Ok(HeldLock {
                id,
                token: self.engine.token(id),
            }),
            Err(e) => {
                // A refused or failed request still needs ending.
                let now = self.clock.now();
                self.engine.unlock(id, now);
                Err(e)
            }
        }
    }

    /// True while `lock` is held. Reads what the server already sent and
    /// fires due deadlines first, so it never answers late. While
    /// disconnected it answers from the lock's deadline alone.
    pub async fn is_held(&mut self, lock: &HeldLock) -> bool {
        if self.connected {
            return matches!(self.run_until(lock, async {}).await, Ok(Outcome::Done(())));
        }
        let now = self.clock.now();
        self.fire_timers(now);
        self.collect_lost();
        self.engine.is_held(lock.id)
    }

    /// Runs `work` while driving the connection and the lock's extensions.
    /// Returns [`Outcome::Done`] with its output, or [`Outcome::Lost`] as
    /// soon as the lock is lost (keys changed on the server, or the local
    /// deadline passed without a successful extension), dropping `work`.
    ///
    /// A connection failure ends it with the error and drops `work` too
    /// (without a connection the lock cannot be extended). The lock may
    /// still be held for a while: [`Device::reconnect`], then run again;
    /// a lock that was lost meanwhile answers [`Outcome::Lost`] at once.
    pub async fn run_until<W: Future>(
        &mut self,
        lock: &HeldLock,
        work: W,
    ) -> Result<Outcome<W::Output>, Error<S::Error>> {
        self.end_abandoned();
        if let Some(reason) = self.lost_reason(lock.id) {
            return Ok(Outcome::Lost(reason));
        }
        if !self.connected {
            return Err(Error::NotConnected);
        }
        match self.drive(Goal::Held(lock.id), None, pin!(work)).await? {
            Reached::Work(out) => Ok(Outcome::Done(out)),
            Reached::Lost(reason) => Ok(Outcome::Lost(reason)),
            // Not a goal of `Held`.
            Reached::Goal => Ok(Outcome::Lost(LostReason::Closed)),
        }
    }

    /// Releases `lock` (also fine after it was lost) and returns once the
    /// server confirmed. While disconnected it returns
    /// [`Error::NotConnected`], and the engine sends the release after the
    /// next [`Device::reconnect`] (or the keys expire on their own).
    pub async fn unlock(&mut self, lock: HeldLock) -> Result<(), Error<S::Error>> {
        self.end_abandoned();
        let now = self.clock.now();
        self.engine.unlock(lock.id, now);
        self.forget_lost(lock.id);
        if !self.connected {
            return Err(Error::NotConnected);
        }
        self.drive(
            Goal::Released(lock.id),
            None,
            pin!(core::future::pending::<()>()),
        )
        .await
        .map(|_| ())
    }

    /// Closes the engine: every held lock is lost and released; returns once
    /// the releases are answered (or after [`CLOSE_GRACE`], a second).
    pub async fn close(&mut self) -> Result<(), Error<S::Error>> {
        self.end_abandoned();
        let now = self.clock.now();
        self.engine.close(now);
        if !self.connected {
            return Ok(());
        }
        let limit = now.saturating_add(CLOSE_GRACE);
        match self
            .drive(Goal::Idle, Some(limit), pin!(core::future::pending::<()>()))
            .await
        {
            Ok(_) | Err(Error::Timeout) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn end_abandoned(&mut self) {
        if let Some(id) = self.abandoned.take() {
            let now = self.clock.now();
            self.engine.unlock(id, now);
        }
    }

    fn fire_timers(&mut self, now: Instant) {
        if self.engine.poll_timeout().is_some_and(|t| t <= now) {
            self.engine.handle_timeout(now);
        }
    }

    /// Drains events, keeping only the lost locks (outside `drive`).
    fn collect_lost(&mut self) {
        while let Some(ev) = self.engine.poll_event() {
            if let Event::Lost { id, reason } = ev {
                self.remember_lost(id, reason);
            }
        }
    }

    fn remember_lost(&mut self, id: LockId, reason: LostReason) {
        self.lost[self.lost_next] = Some((id, reason));
        self.lost_next = (self.lost_next + 1) % LOST_MEMORY;
    }

    fn lost_reason(&self, id: LockId) -> Option<LostReason> {
        self.lost
            .iter()
            .find_map(|e| e.as_ref().filter(|(i, _)| *i == id).map(|(_, r)| r.clone()))
    }

    fn forget_lost(&mut self, id: LockId) {
        for e in &mut self.lost {
            if e.as_ref().is_some_and(|(i, _)| *i == id) {
                *e = None;
            }
        }
    }

    /// Hands the engine whatever the server already sent, without waiting
    /// (an idle device must not mistake an unread ping reply for silence).
    async fn read_ready(&mut self) -> Result<(), Error<S::Error>> {
        loop {
            if self.filled == RX {
                return Err(self.fail(Error::FrameTooLarge));
            }
            let Device {
                stream, rx, filled, ..
            } = self;
            let r = poll_fn(|cx| {
                let read = pin!(stream.read(&mut rx[*filled..]));
                match read.poll(cx) {
                    Poll::Ready(r) => Poll::Ready(Some(r)),
                    Poll::Pending => Poll::Ready(None),
                }
            })
            .await;
            match r {
                None => return Ok(()),
                Some(Err(e)) => return Err(self.fail(Error::Io(e))),
                Some(Ok(0)) => return Err(self.fail(Error::Eof)),
                Some(Ok(n)) => self.received(n),
            }
        }
    }

    /// `n` more bytes are in the receive buffer.
    fn received(&mut self, n: usize) {
        self.filled += n;
        let now = self.clock.now();
        let used = self
            .engine
            .handle_bytes(NODE, now, &self.rx[..self.filled])
            .min(self.filled);
        self.rx.copy_within(used..self.filled, 0);
        self.filled -= used;
    }

    fn disconnect(&mut self) {
        if self.connected {
            self.connected = false;
            let now = self.clock.now();
            self.engine.handle_disconnected(NODE, now);
            self.collect_lost();
        }
        self.filled = 0;
        self.need_flush = false;
    }

    fn fail(&mut self, e: Error<S::Error>) -> Error<S::Error> {
        self.disconnect();
        e
    }

    /// The loop: fire timers, dispatch events, then race one I/O step
    /// (write, else flush, else read) against the next deadline and `work`.
    async fn drive<W: Future>(
        &mut self,
        goal: Goal,
        limit: Option<Instant>,
        mut work: Pin<&mut W>,
    ) -> Result<Reached<W::Output>, Error<S::Error>> {
        if self.connected {
            self.read_ready().await?;
        }
        let mut refused = None;
        loop {
            let now = self.clock.now();
            self.fire_timers(now);
            let mut reached = goal == Goal::Idle && self.engine.is_idle();
            while let Some(ev) = self.engine.poll_event() {
                match ev {
                    Event::CloseConnection { error, .. } => {
                        return Err(self.fail(Error::Node(error)))
                    }
                    Event::NodeReady { .. } => reached |= goal == Goal::Ready,
                    Event::Acquired { id } => reached |= goal == Goal::Decided(id),
                    Event::NotLocked { id } if goal == Goal::Decided(id) => {
                        return Err(Error::NotLocked)
                    }
                    Event::Failed { id, error } if goal == Goal::Decided(id) => {
                        return Err(Error::Failed(error))
                    }
                    Event::Closed { id } if goal == Goal::Decided(id) => return Err(Error::Closed),
                    Event::NotReleased { id, error } if goal == Goal::Released(id) => {
                        refused = Some(error);
                    }
                    Event::Released { id } if goal == Goal::Released(id) => {
                        if let Some(e) = refused.take() {
                            return Err(Error::NotReleased(e));
                        }
                        reached = true;
                    }
                    Event::Lost { id, reason } => {
                        self.remember_lost(id, reason.clone());
                        if goal == Goal::Held(id) {
                            return Ok(Reached::Lost(reason));
                        }
                    }
                    _ => {}
                }
            }
            if let Goal::Held(id) = goal {
                if !self.engine.is_held(id) {
                    // Lost earlier and its reason forgotten (more lost
                    // locks than remembered): the lease is the safe guess.
                    let reason = self.lost_reason(id).unwrap_or(LostReason::Expired);
                    return Ok(Reached::Lost(reason));
                }
            }
            if reached {
                return Ok(Reached::Goal);
            }
            if limit.is_some_and(|l| now >= l) {
                return Err(self.fail(Error::Timeout));
            }
            let deadline = match (self.engine.poll_timeout(), limit) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if self.filled == RX {
                return Err(self.fail(Error::FrameTooLarge));
            }
            let wake = {
                let Device {
                    engine,
                    stream,
                    delay,
                    rx,
                    filled,
                    need_flush,
                    ..
                } = &mut *self;
                let tx = engine.transmit(NODE);
                let mut io = pin!(async {
                    if !tx.is_empty() {
                        stream.write(tx).await.map(IoDone::Wrote)
                    } else if *need_flush {
                        stream.flush().await.map(|()| IoDone::Flushed)
                    } else {
                        stream.read(&mut rx[*filled..]).await.map(IoDone::Read)
                    }
                });
                let mut timer = pin!(async {
                    match deadline {
                        Some(d) => delay.delay_until(d).await,
                        None => core::future::pending().await,
                    }
                });
                poll_fn(|cx| {
                    if let Poll::Ready(r) = io.as_mut().poll(cx) {
                        return Poll::Ready(Wake::Io(r));
                    }
                    if timer.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(Wake::Timer);
                    }
                    if let Poll::Ready(out) = work.as_mut().poll(cx) {
                        return Poll::Ready(Wake::Work(out));
                    }
                    Poll::Pending
                })
                .await
            };
            match wake {
                Wake::Timer => {}
                Wake::Work(out) => return Ok(Reached::Work(out)),
                Wake::Io(Err(e)) => return Err(self.fail(Error::Io(e))),
                Wake::Io(Ok(IoDone::Wrote(0))) => return Err(self.fail(Error::Eof)),
                Wake::Io(Ok(IoDone::Wrote(n))) => {
                    self.engine.consume_transmit(NODE, n);
                    self.need_flush = true;
                }
                Wake::Io(Ok(IoDone::Flushed)) => self.need_flush = false,
                Wake::Io(Ok(IoDone::Read(0))) => return Err(self.fail(Error::Eof)),
                Wake::Io(Ok(IoDone::Read(n))) => self.received(n),
            }
        }
    }
}
