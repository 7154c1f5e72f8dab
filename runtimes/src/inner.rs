//! The state one locker's handles and drivers share: the engine behind a
//! mutex ([`Shared`]), one wake-up [`Signal`] per driver, and the runtime
//! that spawns the drivers and tells the time.
//!
//! Every public call (lock, unlock, drop of a guard, close) mutates the
//! engine under the mutex, sends what it queued on the node's socket as the
//! mutex is released, where the connection allows it ([`crate::direct`],
//! [`Locked`]), and raises the signals of the drivers left with work; those
//! then write whatever the engine queued meanwhile in one write.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use atomic_waker::AtomicWaker;
use tracklock_core::{Engine, Instant, CLOSE_GRACE};

use crate::driver::Driver;
use crate::runtime::{deadline_after, Task};
use crate::shared::{NodeState, Shared};
use crate::{Mode, Runtime};

/// State shared by the public handles and the drivers of one locker.
pub(crate) struct Inner<R: Runtime> {
    shared: Mutex<Shared>,
    /// One per node (index = node id); grows when the engine adds a node.
    /// Read-locked after [`Inner::shared`] at times, never before it.
    signals: RwLock<Vec<Arc<Signal>>>,
    pub(crate) rt: R,
    mode: Mode,
    /// The configured addresses (for messages).
    addrs: Box<[String]>,
    /// The runtime's instant that is the engine's instant 0.
    origin: std::time::Instant,
    /// Bounds TCP connect plus handshake (the engine's handshake timeout).
    pub(crate) connect_timeout: Duration,
    /// Seeds the drivers' backoff jitter.
    pub(crate) jitter: u64,
    /// TLS for every connection, when on.
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<crate::tls::Connector>,
    /// Sentinel mode: where to ask for the master.
    pub(crate) sentinel: Option<Arc<crate::sentinel::Sentinels>>,
}

/// The locked shared state. Dropping it releases the mutex first, then
/// sends the bytes staged for direct writes under it
/// ([`crate::direct::send_staged`]), so no `send` runs under the mutex.
pub(crate) struct Locked<'a, R: Runtime> {
    // Fields drop in order: the mutex is released before the send.
    guard: MutexGuard<'a, Shared>,
    _send: SendStaged<'a, R>,
}

/// Sends the staged bytes when dropped (after [`Locked`]'s guard).
struct SendStaged<'a, R: Runtime>(&'a Inner<R>);

impl<R: Runtime> std::ops::Deref for Locked<'_, R> {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.guard
    }
}

impl<R: Runtime> std::ops::DerefMut for Locked<'_, R> {
    fn deref_mut(&mut self) -> &mut Shared {
        &mut self.guard
    }
}

impl<R: Runtime> Drop for SendStaged<'_, R> {
    fn drop(&mut self) {
        let inner = self.0;
        crate::direct::send_staged(
            &inner.shared,
            || inner.now(),
            |node| {
                let signals = inner.signals.read().unwrap_or_else(PoisonError::into_inner);
                if let Some(s) = signals.get(node) {
                    s.notify();
                }
            },
        );
    }
}

/// A driver's wake-up: a flag plus the driver task's waker.
pub(crate) struct Signal {
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

    /// Ready (and reset) once [`Signal::notify`] was called.
    pub(crate) fn poll(&self, cx: &mut Context<'_>) -> Poll<()> {
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

impl<R: Runtime> Inner<R> {
    /// Shared state for `engine`, whose node `i` lives at `addrs[i]`; no
    /// driver is spawned yet (see [`Inner::spawn_drivers`]).
    pub(crate) fn new(
        rt: R,
        engine: Engine,
        mode: Mode,
        addrs: Box<[String]>,
        jitter: u64,
    ) -> Self {
        let n = engine.node_count();
        let origin = rt.now();
        let connect_timeout = engine.config().handshake_timeout();
        let nodes = (0..n)
            .map(|i| NodeState::new(addrs.get(i).cloned().unwrap_or_default()))
            .collect();
        let mut shared = Shared::new(
            engine,
            nodes,
            #[cfg(feature = "tracing")]
            tracing::info_span!("tracklock", %mode, addrs = ?addrs),
        );
        shared
            .engine
            .set_unix_time(Instant::from_nanos(0), unix_ms());
        Inner {
            shared: Mutex::new(shared),
            signals: RwLock::new((0..n).map(|_| Signal::new()).collect()),
            rt,
            mode,
            addrs,
            origin,
            connect_timeout,
            jitter,
            #[cfg(feature = "tls")]
            tls: None,
            sentinel: None,
        }
    }

    /// Spawns the drivers of the nodes the engine started with (their
    /// `running` count is reserved by [`Inner::new`]).
    pub(crate) fn spawn_drivers(self: &Arc<Self>) {
        let n = self.lock().nodes.len();
        for i in 0..n {
            self.rt.spawn(Task::new(Driver::new(self.clone(), i)));
        }
    }

    /// Spawns the drivers of added nodes (outside the shared lock; their
    /// `running` count is reserved by [`Shared::take_added`]).
    pub(crate) fn spawn_added(self: &Arc<Self>, added: Vec<usize>) {
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
            self.rt.spawn(Task::new(Driver::new(self.clone(), idx)));
        }
    }

    pub(crate) fn signal(&self, idx: usize) -> Arc<Signal> {
        let signals = self.signals.read().unwrap_or_else(PoisonError::into_inner);
        signals.get(idx).cloned().unwrap_or_else(Signal::new)
    }

    /// The engine's `now`.
    pub(crate) fn now(&self) -> Instant {
        let d = self.rt.now().saturating_duration_since(self.origin);
        Instant::from_nanos(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }

    /// `t` on the runtime's clock (the far future saturates).
    pub(crate) fn to_std(&self, t: Instant) -> std::time::Instant {
        deadline_after(self.origin, Duration::from_nanos(t.as_nanos()))
    }

    /// Locks the shared state (a panic elsewhere does not poison it for us:
    /// the engine never panics mid-update on its own inputs). Bytes staged
    /// for direct writes meanwhile are sent when the guard drops.
    pub(crate) fn lock(&self) -> Locked<'_, R> {
        Locked {
            guard: self.shared.lock().unwrap_or_else(PoisonError::into_inner),
            _send: SendStaged(self),
        }
    }

    /// Wakes every driver (closing).
    pub(crate) fn notify_drivers(&self) {
        let signals = self.signals.read().unwrap_or_else(PoisonError::into_inner);
        for s in signals.iter() {
            s.notify();
        }
    }

    /// After the engine changed (under the shared lock): sends the nodes'
    /// new output from here where their connection allows it
    /// ([`crate::direct`]), and wakes only the drivers with something left
    /// to do: the nodes with output not sent
    /// ([`tracklock_core::Engine::poll_output`]), a close request or a
    /// retirement. When none of those wakes a driver but the engine's next
    /// deadline moved earlier than the one the drivers sleep until, every
    /// driver is woken (rare: the first to turn re-arms the timer). `except`
    /// is the driver calling, which turns anyway.
    pub(crate) fn wake_drivers(&self, sh: &mut Shared, except: Option<usize>) {
        let signals = self.signals.read().unwrap_or_else(PoisonError::into_inner);
        let mut woke = false;
        let mut wake = |i: usize| {
            woke = true;
            if Some(i) != except {
                if let Some(s) = signals.get(i) {
                    s.notify();
                }
            }
        };
        let mut now = None;
        while let Some(node) = sh.engine.poll_output() {
            let i = usize::from(node.0);
            // The caller sends it itself when it can; the driver of the
            // node (`except`) writes its own in its turn.
            if Some(i) != except
                && (sh.write_direct(i, *now.get_or_insert_with(|| self.now()), false)
                    || !sh.needs_driver(i))
            {
                continue;
            }
            wake(i);
        }
        for &i in &sh.node_news {
            wake(i);
        }
        sh.node_news.clear();
        if !woke && sh.deadline_moved_earlier() {
            for (i, s) in signals.iter().enumerate() {
                if Some(i) != except {
                    s.notify();
                }
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
}

/// The wall clock in Unix milliseconds (for absolute TTLs).
pub(crate) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
