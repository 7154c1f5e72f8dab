//! The public, runtime-generic [`Locker`]: connecting, acquiring, closing.

use std::fmt;
use std::future::{poll_fn, Future};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_lite::future::or;
use tracklock_core::{Engine, LockId, LockMode, LostReason, NodeId};

use crate::guard_name::Name;
use crate::inner::Inner;
use crate::runtime::deadline_after;
use crate::shared::State;
use crate::{Error, Guard, Mode, Options, Runtime, Stats};

/// A distributed lock client: one connection per Redis node, shared by every
/// lock taken through it. Cheap to clone (an `Arc`); the connection closes
/// when [`Locker::close`] is called or the last clone and guard are dropped.
///
/// Get one from `tracklock::tokio::Locker::connect`,
/// `tracklock::smol::Locker::connect` or `tracklock::glommio::Locker::connect`
/// (features `tokio`, `smol`, `glommio`), or from [`Locker::connect_with`]
/// on a [`Runtime`] of your own.
///
/// ```no_run
/// # #[cfg(feature = "tokio")]
/// # async fn f() -> Result<(), tracklock::Error> {
/// use std::time::Duration;
/// use tracklock::{tokio::Locker, Error, Options};
///
/// let locker = Locker::connect(Options::new("127.0.0.1:6379").validity(Duration::from_secs(10))).await?;
///
/// // Wait for the lock, work while holding it, release it.
/// let guard = locker.lock("invoices").await?;
/// // ... work ...
/// guard.unlock().await?;
///
/// // One attempt: `NotLocked` when someone else holds it.
/// match locker.try_lock("invoices").await {
///     Ok(guard) => drop(guard), // released in the background
///     Err(Error::NotLocked) => println!("busy, try later"),
///     Err(e) => return Err(e),
/// }
///
/// // Work that stops the moment the lock is lost.
/// match locker.with_lock("invoices", async { 42 }).await? {
///     Ok(n) => println!("done: {n}"),
///     Err(reason) => println!("lock lost, work dropped: {reason}"),
/// }
/// locker.close().await;
/// # Ok(()) }
/// ```
///
/// # Connecting
///
/// `connect` returns once the locker is *usable*, i.e. a lock can be
/// acquired, within [`Options::connect_timeout`]; nodes not connected yet
/// keep connecting (and every node reconnects with backoff when it drops).
///
/// - [`Mode::Single`]: once the server finished the handshake. The first
///   failure is returned at once.
/// - [`Mode::Instances`]: once the ready instances hold a majority of a
///   lock's keys (2 of 3 instances with the default majority). It fails at
///   once, with the error of the first failed instance, when the instances
///   whose first connection failed hold too many keys for that; failed
///   instances keep being retried in the background otherwise.
/// - [`Mode::Cluster`]: once the slot map is known and a majority of the
///   masters owning slots are ready (masters the seeds do not cover are
///   discovered and connected). It fails at once, with the first seed's
///   error, when every seed's first connection failed.
///
/// Otherwise it fails with [`Error::Connect`] (kind `TimedOut`, the message
/// naming the mode and the last connection error) when the timeout passes.
pub struct Locker<R: Runtime> {
    handle: Arc<Handle<R>>,
}

/// Closes the locker when the last public handle goes away (the drivers only
/// hold [`Inner`]).
struct Handle<R: Runtime> {
    inner: Arc<Inner<R>>,
}

impl<R: Runtime> Drop for Handle<R> {
    fn drop(&mut self) {
        self.inner.begin_close();
    }
}

impl<R: Runtime> Clone for Locker<R> {
    fn clone(&self) -> Self {
        Locker {
            handle: self.handle.clone(),
        }
    }
}

impl<R: Runtime> fmt::Debug for Locker<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Locker")
            .field("mode", &self.inner().mode())
            .field("addrs", &self.inner().addresses())
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

impl<R: Runtime> Locker<R> {
    pub(crate) fn inner(&self) -> &Inner<R> {
        &self.handle.inner
    }

    /// Connects on `runtime` and returns once the locker is usable, within
    /// [`Options::connect_timeout`]; what "usable" means per mode, and when
    /// it fails early, is under [Connecting](Locker#connecting). The
    /// runtime modules' `connect` (`tracklock::tokio::Locker::connect`, …)
    /// call this with their runtime; call it yourself with your own
    /// [`Runtime`].
    ///
    /// Errors: [`Error::Config`] or [`Error::Addresses`] for bad options,
    /// [`Error::Connect`] when servers cannot be reached (or not in time),
    /// [`Error::Node`] when one refuses the handshake or is of the wrong
    /// kind for the mode, [`Error::Entropy`] without a random seed.
    pub async fn connect_with(runtime: R, options: Options) -> Result<Self, Error> {
        let locker = Self::start(runtime, &options)?;
        locker.ready(options.connect_timeout_value()).await?;
        Ok(locker)
    }

    /// Builds the locker and spawns one driver per configured node.
    fn start(runtime: R, options: &Options) -> Result<Self, Error> {
        let config = options.to_config()?;
        let endpoints = options.endpoints()?;
        #[cfg(feature = "tls")]
        let tls = options.tls_connector()?;
        let mut seed = [0u8; 40];
        getrandom::fill(&mut seed).map_err(|e| Error::Entropy(e.into()))?;
        let mut engine_seed = [0u8; 32];
        engine_seed.copy_from_slice(&seed[..32]);
        let mut jitter = [0u8; 8];
        jitter.copy_from_slice(&seed[32..]);
        let jitter = u64::from_le_bytes(jitter);
        let mut engine = Engine::new(config, engine_seed)?;
        if options.mode() == Mode::Cluster {
            // Seeds first: a master found at a seed's address reuses it.
            for (i, (host, port)) in endpoints.iter().enumerate() {
                engine.set_node_address(NodeId(i as u16), host, *port)?;
            }
        }
        let addrs = options.addresses().into();
        #[allow(unused_mut)]
        let mut inner = Inner::new(runtime, engine, options.mode(), addrs, jitter);
        #[cfg(feature = "tls")]
        {
            inner.tls = tls;
        }
        if let Some(settings) = options.sentinel_settings() {
            let sentinels = options.addresses().to_vec();
            inner.sentinel = Some(crate::sentinel::Sentinels::new(settings.clone(), sentinels));
            // Unknown until the sentinels name it.
            inner.lock().nodes[0].addr.clear();
        }
        let inner = Arc::new(inner);
        inner.spawn_drivers();
        Ok(Locker {
            handle: Arc::new(Handle { inner }),
        })
    }

    /// Waits until the locker is usable, for at most `timeout` (a huge one
    /// saturates at about 100 years).
    async fn ready(&self, timeout: Duration) -> Result<(), Error> {
        let inner = self.inner();
        let deadline = deadline_after(inner.rt.now(), timeout);
        or(poll_fn(|cx| inner.poll_startup(cx)), async {
            inner.rt.sleep_until(deadline).await;
            Err(inner.startup_timeout(timeout))
        })
        .await
    }

    /// Acquires `name`, waiting as long as it takes (woken by the holder's
    /// release or expiry, never by polling when client-side caching is on).
    ///
    /// It waits through what passes by itself: another holder, a node being
    /// reconnected, transient server conditions (`LOADING`, `BUSY`,
    /// `TRYAGAIN`, `CLUSTERDOWN`, `MASTERDOWN`, retried with jittered
    /// backoff from `try_next_after` up to 1 s). It does not wait on a
    /// server that keeps refusing: an error reply that keeps a majority out
    /// of reach ends it with [`Error::Refused`] (`OOM`, `NOPERM`,
    /// `READONLY`, `MISCONF`, `WRONGTYPE`…, naming the server, the command
    /// and its text), and a refused handshake on reconnect (a changed
    /// password) with [`Error::Node`], while the locker keeps reconnecting.
    ///
    /// Not reentrant, like `tokio::sync::Mutex`: a second `lock` of a name
    /// this locker already holds waits until that guard is released (so
    /// awaiting it while holding the guard never returns); `try_lock`
    /// returns [`Error::NotLocked`] at once; `force_lock` takes it, and the
    /// old guard's [`Guard::is_held`] is false from that call on.
    ///
    /// Dropping the future cancels the request; keys it had taken are
    /// released. Errors: [`Error::InvalidName`], [`Error::NameTooLong`],
    /// [`Error::Closed`], [`Error::Refused`], [`Error::Node`],
    /// [`Error::TooSlow`].
    pub async fn lock(&self, name: &str) -> Result<Guard<R>, Error> {
        self.acquire(name, LockMode::Wait).await
    }

    /// Makes one attempt at `name`: [`Error::NotLocked`] only when another
    /// holder was seen on enough keys that no majority could be had. Any
    /// other failure is its own error: [`Error::Refused`] (an error reply,
    /// transient ones included), [`Error::Unavailable`] (a needed node is
    /// reconnecting), [`Error::Node`] (its handshake is refused),
    /// [`Error::TooSlow`], and with fencing [`Error::KeysVanished`].
    pub async fn try_lock(&self, name: &str) -> Result<Guard<R>, Error> {
        self.acquire(name, LockMode::Try).await
    }

    /// Takes `name` whoever holds it (the holder is told its lock is lost).
    /// Never [`Error::NotLocked`] without fencing: it takes the lock or
    /// returns the real error, as [`Locker::try_lock`] does. With fencing,
    /// [`Error::NotLocked`] when another `force_lock` overwrote its keys
    /// before its counters were raised.
    pub async fn force_lock(&self, name: &str) -> Result<Guard<R>, Error> {
        self.acquire(name, LockMode::Force).await
    }

    /// Acquires `name` (like [`Locker::lock`]), runs `fut` while the lock is
    /// held, then unlocks. If the lock is lost first, `fut` is dropped (it
    /// stops at its current `.await`) and the reason is returned as
    /// `Ok(Err(reason))`.
    pub async fn with_lock<F: Future>(
        &self,
        name: &str,
        fut: F,
    ) -> Result<Result<F::Output, LostReason>, Error> {
        let guard = self.lock(name).await?;
        let result = or(async { Err(guard.lost().await) }, async { Ok(fut.await) }).await;
        // The result stands whatever the release says (a closed locker has
        // released already).
        let _ = guard.unlock().await;
        Ok(result)
    }

    /// Closes the locker: holders lose their locks ([`LostReason::Closed`])
    /// and their keys are released, pending and later requests fail with
    /// [`Error::Closed`]. Returns once the releases are answered (or after
    /// about a second without an answer) and the connections are closed.
    pub async fn close(&self) {
        let inner = self.inner();
        inner.begin_close();
        poll_fn(|cx| {
            if inner.lock().wait_stopped(cx.waker()) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
    }

    /// True once [`Locker::close`] was called (or the locker stopped).
    pub fn is_closed(&self) -> bool {
        self.inner().lock().is_closing()
    }

    /// Number of lock requests the engine still tracks (pending, held, or
    /// releasing). Zero once every guard is released and every cancelled
    /// request is settled; meant for tests and metrics.
    pub fn active_locks(&self) -> usize {
        self.inner().lock().engine.lock_count()
    }

    /// A snapshot of the locker's counters (attempts, outcomes, losses by
    /// reason, extensions, commands and bytes sent) and of each node's
    /// connection, for a metrics exporter.
    pub fn stats(&self) -> Stats {
        self.inner().lock().stats()
    }

    async fn acquire(&self, name: &str, mode: LockMode) -> Result<Guard<R>, Error> {
        if name.is_empty() {
            return Err(Error::InvalidName);
        }
        let inner = self.inner();
        let id = {
            let mut sh = inner.lock();
            let now = inner.now();
            let id = sh.engine.lock(name, mode, now).map_err(Error::from_lock)?;
            sh.insert(id, name);
            sh.settle();
            inner.wake_drivers(&mut sh, None);
            id
        };
        let mut pending = Pending {
            inner,
            id,
            long_name: Name::is_long(name),
            armed: true,
        };
        let grant = poll_fn(|cx| pending.poll(cx)).await?;
        Ok(Guard::new(
            self.clone(),
            id,
            name,
            grant.name_buf,
            grant.token,
        ))
    }
}

/// What [`Pending`] hands to the new guard.
struct Grant {
    /// The fencing token (`None` when not fenced).
    token: Option<u64>,
    /// For a long name, a spare buffer for the guard's copy of it.
    name_buf: Option<String>,
}

/// A lock request not decided yet; dropping it cancels the request.
struct Pending<'a, R: Runtime> {
    inner: &'a Inner<R>,
    id: LockId,
    /// The guard will need a buffer for the name: taken from the spares
    /// under the lock this future holds anyway when the grant comes.
    long_name: bool,
    armed: bool,
}

impl<R: Runtime> Pending<'_, R> {
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Result<Grant, Error>> {
        if !self.armed {
            return Poll::Ready(Err(Error::Closed));
        }
        let mut sh = self.inner.lock();
        let state = sh
            .slots
            .get(&self.id)
            .map_or(State::Closed, |s| s.state.clone());
        let result = match state {
            State::Pending => {
                if sh.is_stopped() {
                    Err(Error::Closed)
                } else {
                    sh.register(self.id, cx.waker());
                    return Poll::Pending;
                }
            }
            // Acquired (and maybe lost already: the guard reports it).
            State::Held | State::Lost(_) => {
                let token = sh.slots.get_mut(&self.id).and_then(|s| {
                    s.waker = None;
                    s.token
                });
                self.armed = false;
                let buf = if self.long_name {
                    sh.name_bufs.take()
                } else {
                    None
                };
                return Poll::Ready(Ok(Grant {
                    token,
                    name_buf: buf,
                }));
            }
            State::NotLocked => Err(Error::NotLocked),
            State::Failed(failure) => Err(sh.failure_error(failure)),
            State::Closed => Err(Error::Closed),
        };
        // A failed request still needs ending so the engine forgets it.
        self.armed = false;
        sh.slots.remove(&self.id);
        let now = self.inner.now();
        sh.engine.unlock(self.id, now);
        sh.settle();
        self.inner.wake_drivers(&mut sh, None);
        Poll::Ready(result)
    }
}

impl<R: Runtime> Drop for Pending<'_, R> {
    fn drop(&mut self) {
        if self.armed {
            let mut sh = self.inner.lock();
            sh.slots.remove(&self.id);
            let now = self.inner.now();
            sh.engine.unlock(self.id, now);
            sh.settle();
            self.inner.wake_drivers(&mut sh, None);
        }
    }
}
