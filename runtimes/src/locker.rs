//! The public, runtime-generic [`Locker`] and [`Guard`].

use std::fmt;
use std::future::{poll_fn, Future};
use std::marker::PhantomData;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_lite::future::or;
use tracklock_core::{Engine, LockId, LockMode, LostReason, NodeId};

use crate::driver::{Inner, Setup, State};
use crate::runtime::deadline_after;
use crate::{Error, Mode, Options, Runtime};

/// A distributed lock client: one connection per Redis node, shared by every
/// lock taken through it. Cheap to clone (an `Arc`); the connection closes
/// when [`Locker::close`] is called or the last clone and guard are dropped.
///
/// Get one from `tracklock::tokio::Locker::connect`,
/// `tracklock::smol::Locker::connect` or `tracklock::glommio::Locker::connect`.
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
    handle: Arc<Handle>,
    _rt: PhantomData<fn() -> R>,
}

/// Closes the locker when the last public handle goes away (the drivers only
/// hold [`Inner`]).
struct Handle {
    inner: Arc<Inner>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.inner.begin_close();
    }
}

impl<R: Runtime> Clone for Locker<R> {
    fn clone(&self) -> Self {
        Locker {
            handle: self.handle.clone(),
            _rt: PhantomData,
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
    fn inner(&self) -> &Inner {
        &self.handle.inner
    }

    /// Builds the locker and spawns one driver per configured node with
    /// `spawn` (which also spawns the nodes a cluster adds later). The
    /// runtime module then awaits [`Locker::ready`].
    pub(crate) fn start(options: &Options, spawn: fn(Arc<Inner>, usize)) -> Result<Self, Error> {
        let config = options.to_config()?;
        let endpoints = options.endpoints()?;
        let mut seed = [0u8; 40];
        getrandom::fill(&mut seed).map_err(|e| Error::Connect {
            addr: options.address().to_owned(),
            source: std::io::Error::other(format!("no random seed for lock values: {e}")),
        })?;
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
        let inner = Arc::new(Inner::new(
            engine,
            Setup {
                mode: options.mode(),
                addrs: options.addresses().into(),
                clock: R::now,
                spawn,
                connect_timeout: options.connect_timeout_value(),
                jitter,
            },
        ));
        inner.spawn_drivers();
        Ok(Locker {
            handle: Arc::new(Handle { inner }),
            _rt: PhantomData,
        })
    }

    /// Waits until the locker is usable (see the runtime's `connect`), for
    /// at most `timeout` (a huge one saturates at about 100 years).
    pub(crate) async fn ready(&self, timeout: Duration) -> Result<(), Error> {
        let deadline = deadline_after(R::now(), timeout);
        let inner = self.inner();
        or(poll_fn(|cx| inner.poll_startup(cx)), async {
            R::sleep_until(deadline).await;
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
    /// password) with [`Error::Server`], while the locker keeps reconnecting.
    ///
    /// Not reentrant, like `tokio::sync::Mutex`: a second `lock` of a name
    /// this locker already holds waits until that guard is released (so
    /// awaiting it while holding the guard never returns); `try_lock`
    /// returns [`Error::NotLocked`] at once; `force_lock` takes it, and the
    /// old guard's [`Guard::is_held`] is false from that call on.
    ///
    /// Dropping the future cancels the request; keys it had taken are
    /// released. Errors: [`Error::InvalidName`], [`Error::Closed`],
    /// [`Error::Refused`], [`Error::Server`], [`Error::TooSlow`].
    pub async fn lock(&self, name: &str) -> Result<Guard<R>, Error> {
        self.acquire(name, LockMode::Wait).await
    }

    /// Makes one attempt at `name`: [`Error::NotLocked`] only when another
    /// holder was seen on enough keys that no majority could be had. Any
    /// other failure is its own error: [`Error::Refused`] (an error reply,
    /// transient ones included), [`Error::Unavailable`] (a needed node is
    /// reconnecting), [`Error::Server`] (its handshake is refused),
    /// [`Error::TooSlow`].
    pub async fn try_lock(&self, name: &str) -> Result<Guard<R>, Error> {
        self.acquire(name, LockMode::Try).await
    }

    /// Takes `name` whoever holds it (the holder is told its lock is lost).
    /// Never [`Error::NotLocked`]: it takes the lock or returns the real
    /// error, as [`Locker::try_lock`] does.
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

    async fn acquire(&self, name: &str, mode: LockMode) -> Result<Guard<R>, Error> {
        if name.is_empty() {
            return Err(Error::InvalidName);
        }
        let inner = self.inner();
        let id = {
            let mut sh = inner.lock();
            let now = inner.now();
            let id = sh.engine.lock(name, mode, now).map_err(Error::from_lock)?;
            sh.insert(id);
            sh.settle();
            id
        };
        inner.notify_drivers();
        let mut pending = Pending {
            inner,
            id,
            armed: true,
        };
        poll_fn(|cx| pending.poll(cx)).await?;
        Ok(Guard {
            locker: self.clone(),
            id,
            name: Name::new(name),
            armed: true,
        })
    }
}

/// A lock request not decided yet; dropping it cancels the request.
struct Pending<'a> {
    inner: &'a Inner,
    id: LockId,
    armed: bool,
}

impl Pending<'_> {
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
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
                if let Some(s) = sh.slots.get_mut(&self.id) {
                    s.waker = None;
                }
                self.armed = false;
                return Poll::Ready(Ok(()));
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
        drop(sh);
        self.inner.notify_drivers();
        Poll::Ready(result)
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if self.armed {
            let mut sh = self.inner.lock();
            sh.slots.remove(&self.id);
            let now = self.inner.now();
            sh.engine.unlock(self.id, now);
            sh.settle();
            drop(sh);
            self.inner.notify_drivers();
        }
    }
}

/// A held lock. Keys are extended in the background while it lives; the
/// lock is released by [`Guard::unlock`] or, in the background, on drop.
///
/// Holding a guard does not prove the lock is still held: check
/// [`Guard::is_held`] or race your work against [`Guard::lost`] (or use
/// [`Locker::with_lock`]).
pub struct Guard<R: Runtime> {
    locker: Locker<R>,
    id: LockId,
    name: Name,
    /// False once `unlock` took over the release.
    armed: bool,
}

impl<R: Runtime> fmt::Debug for Guard<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guard")
            .field("name", &self.name())
            .field("held", &self.is_held())
            .finish_non_exhaustive()
    }
}

impl<R: Runtime> Guard<R> {
    /// The lock's name.
    pub fn name(&self) -> &str {
        self.name.as_str()
    }

    /// True while the lock is held (not lost, not released). Fires a due
    /// deadline itself, so it never answers late.
    pub fn is_held(&self) -> bool {
        let inner = self.locker.inner();
        let mut sh = inner.lock();
        let fired = sh.poke(inner.now());
        sh.settle();
        let held = sh
            .slots
            .get(&self.id)
            .is_some_and(|s| s.state == State::Held);
        drop(sh);
        if fired {
            inner.notify_drivers();
        }
        held
    }

    /// Resolves with the reason when the lock is lost (at once if it is lost
    /// already). Cancel-safe, and may be awaited any number of times, also
    /// concurrently.
    pub fn lost(&self) -> impl Future<Output = LostReason> + '_ {
        Lost {
            inner: self.locker.inner(),
            id: self.id,
            entry: None,
        }
    }

    /// Releases every key and returns once the server answered. Releasing a
    /// lock that was lost already succeeds too. [`Error::NotReleased`] when
    /// the server refused a release (e.g. an ACL without `DEL`): those keys
    /// stay until their TTL. [`Error::Closed`] when the locker stopped
    /// before the release was confirmed.
    pub async fn unlock(mut self) -> Result<(), Error> {
        self.armed = false;
        let inner = self.locker.inner();
        {
            let mut sh = inner.lock();
            let now = inner.now();
            sh.engine.unlock(self.id, now);
            sh.settle();
        }
        inner.notify_drivers();
        let id = self.id;
        poll_fn(|cx| {
            let mut sh = inner.lock();
            match sh.slots.get(&id) {
                Some(s) if s.released => Poll::Ready(match &s.release_error {
                    Some(e) => Err(sh.release_error(e)),
                    None => Ok(()),
                }),
                Some(_) if !sh.is_stopped() => {
                    sh.register(id, cx.waker());
                    Poll::Pending
                }
                _ => Poll::Ready(Err(Error::Closed)),
            }
        })
        .await
        // `self` drops here and removes the slot.
    }
}

impl<R: Runtime> Drop for Guard<R> {
    fn drop(&mut self) {
        let inner = self.locker.inner();
        let mut sh = inner.lock();
        sh.slots.remove(&self.id);
        if self.armed {
            let now = inner.now();
            sh.engine.unlock(self.id, now);
            sh.settle();
            drop(sh);
            inner.notify_drivers();
        }
    }
}

/// The future of [`Guard::lost`].
struct Lost<'a> {
    inner: &'a Inner,
    id: LockId,
    /// Index of this future's entry in the slot's `lost_wakers`.
    entry: Option<usize>,
}

impl Future for Lost<'_> {
    type Output = LostReason;

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<LostReason> {
        let this = &mut *self;
        let mut sh = this.inner.lock();
        if sh.poke(this.inner.now()) {
            this.inner.notify_drivers();
        }
        sh.settle();
        let Some(slot) = sh.slots.get_mut(&this.id) else {
            return Poll::Ready(LostReason::Closed);
        };
        let reason = match &slot.state {
            State::Held | State::Pending => None,
            State::Lost(reason) => Some(reason.clone()),
            State::NotLocked | State::Failed(_) | State::Closed => Some(LostReason::Closed),
        };
        let wakers = &mut slot.lost_wakers;
        if let Some(reason) = reason {
            if let Some(e) = this.entry.take().and_then(|i| wakers.get_mut(i)) {
                *e = None;
            }
            return Poll::Ready(reason);
        }
        match this.entry.and_then(|i| wakers.get_mut(i)) {
            Some(Some(Some(w))) if w.will_wake(cx.waker()) => {}
            Some(e) => *e = Some(Some(cx.waker().clone())),
            None => {
                let waker = Some(Some(cx.waker().clone()));
                let i = match wakers.iter().position(Option::is_none) {
                    Some(i) => {
                        wakers[i] = waker;
                        i
                    }
                    None => {
                        wakers.push(waker);
                        wakers.len() - 1
                    }
                };
                this.entry = Some(i);
            }
        }
        Poll::Pending
    }
}

impl Drop for Lost<'_> {
    fn drop(&mut self) {
        if let Some(i) = self.entry {
            let mut sh = self.inner.lock();
            if let Some(w) = sh
                .slots
                .get_mut(&self.id)
                .and_then(|s| s.lost_wakers.get_mut(i))
            {
                *w = None;
            }
        }
    }
}

/// A guard's copy of its lock name: inline up to [`Name::INLINE`] bytes, so
/// the common short name costs no allocation.
enum Name {
    Inline { len: u8, buf: [u8; Name::INLINE] },
    Heap(Box<str>),
}

impl Name {
    const INLINE: usize = 46;

    fn new(s: &str) -> Name {
        if s.len() <= Self::INLINE {
            let mut buf = [0; Self::INLINE];
            buf[..s.len()].copy_from_slice(s.as_bytes());
            Name::Inline {
                len: s.len() as u8,
                buf,
            }
        } else {
            Name::Heap(s.into())
        }
    }

    fn as_str(&self) -> &str {
        match self {
            // Copied from a `&str` whole, so always valid UTF-8.
            Name::Inline { len, buf } => {
                std::str::from_utf8(&buf[..usize::from(*len)]).unwrap_or("")
            }
            Name::Heap(s) => s,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Name;

    #[test]
    fn names_round_trip() {
        for s in [
            "a",
            "ünïcødé",
            &"x".repeat(Name::INLINE),
            &"y".repeat(Name::INLINE + 1),
        ] {
            assert_eq!(Name::new(s).as_str(), s);
        }
        assert!(matches!(
            Name::new(&"z".repeat(Name::INLINE)),
            Name::Inline { .. }
        ));
        assert!(matches!(
            Name::new(&"z".repeat(Name::INLINE + 1)),
            Name::Heap(_)
        ));
    }
}
