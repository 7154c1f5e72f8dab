//! [`Guard`]: a held lock, and the future of [`Guard::lost`].

use std::fmt;
use std::future::{poll_fn, Future};
use std::task::{Context, Poll};

use tracklock_core::{LockId, LostReason};

use crate::guard_name::Name;
use crate::inner::Inner;
use crate::shared::State;
use crate::{Error, Locker, Runtime};

/// A held lock. Keys are extended in the background while it lives; the
/// lock is released by [`Guard::unlock`] or, in the background, on drop.
///
/// Holding a guard does not prove the lock is still held: check
/// [`Guard::is_held`] or race your work against [`Guard::lost`] (or use
/// [`Locker::with_lock`]).
///
/// ```no_run
/// # #[cfg(feature = "tokio")]
/// # async fn f(locker: tracklock::tokio::Locker) -> Result<(), tracklock::Error> {
/// # async fn step(_: u32) {}
/// let guard = locker.lock("reindex").await?;
/// for i in 0..100 {
///     // Stop at once when the lock is lost (keys deleted, lease ran out).
///     tokio::select! {
///         reason = guard.lost() => {
///             eprintln!("{} lost: {reason}", guard.name());
///             return Ok(());
///         }
///         () = step(i) => {}
///     }
/// }
/// assert!(guard.is_held());
/// guard.unlock().await?; // or drop it: released in the background
/// # Ok(()) }
/// ```
pub struct Guard<R: Runtime> {
    locker: Locker<R>,
    id: LockId,
    name: Name,
    token: Option<u64>,
    /// False once `unlock` took over the release.
    armed: bool,
}

impl<R: Runtime> Guard<R> {
    /// `buf`: a spare buffer for a long name (see [`Name::new`]).
    pub(crate) fn new(
        locker: Locker<R>,
        id: LockId,
        name: &str,
        buf: Option<String>,
        token: Option<u64>,
    ) -> Self {
        Guard {
            locker,
            id,
            name: Name::new(name, buf),
            token,
            armed: true,
        }
    }
}

impl<R: Runtime> fmt::Debug for Guard<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guard")
            .field("name", &self.name())
            .field("held", &self.is_held())
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

impl<R: Runtime> Guard<R> {
    /// The lock's name.
    pub fn name(&self) -> &str {
        self.name.as_str()
    }

    /// The lock's fencing token with [`Options::fencing`](crate::Options::fencing)
    /// on, `None` otherwise. Every holder of this name whose acquisition
    /// began after this guard was handed out gets a larger token, as long
    /// as a majority of the name's counters keep their values (the
    /// argument and the faults that break it: `tracklock_core::fence`, and
    /// the README's "Fencing tokens"). Pass it with every write to the
    /// resource the lock protects, and have the resource refuse a token
    /// smaller than the largest it has seen: a holder that lost the lock
    /// without knowing it (paused past its lease) is then refused.
    pub fn token(&self) -> Option<u64> {
        self.token
    }

    /// True while the lock is held (not lost, not released). Fires a due
    /// deadline itself, so it never answers late.
    pub fn is_held(&self) -> bool {
        let inner = self.locker.inner();
        let mut sh = inner.lock();
        sh.poke(inner.now());
        sh.settle();
        inner.wake_drivers(&mut sh, None);
        sh.slots
            .get(&self.id)
            .is_some_and(|s| s.state == State::Held)
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
            inner.wake_drivers(&mut sh, None);
        }
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
        if let Some(buf) = self.name.take_buf() {
            sh.name_bufs.keep(buf);
        }
        if self.armed {
            let now = inner.now();
            sh.engine.unlock(self.id, now);
            sh.settle();
            inner.wake_drivers(&mut sh, None);
        }
    }
}

/// The future of [`Guard::lost`].
struct Lost<'a, R: Runtime> {
    inner: &'a Inner<R>,
    id: LockId,
    /// Index of this future's entry in the slot's `lost_wakers`.
    entry: Option<usize>,
}

impl<R: Runtime> Future for Lost<'_, R> {
    type Output = LostReason;

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<LostReason> {
        let this = &mut *self;
        let mut sh = this.inner.lock();
        sh.poke(this.inner.now());
        sh.settle();
        this.inner.wake_drivers(&mut sh, None);
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

impl<R: Runtime> Drop for Lost<'_, R> {
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
