//! The trait an async runtime implements to run lockers, and the task it is
//! asked to spawn.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::time::{Duration, Instant};

use futures_lite::future::or;

use crate::driver::Driver;

/// What a locker needs from an async runtime: a clock, timers, TCP connect
/// and spawning. `tracklock` implements it for tokio, smol and glommio
/// (features `tokio`, `smol`, `glommio`); implement it to run lockers on
/// another executor and connect with [`Locker::connect_with`].
///
/// A locker runs one task per Redis node (its [driver](Task)): it connects,
/// moves bytes between the protocol engine and the socket, fires the
/// engine's timers and reconnects with backoff. Everything else (lock,
/// unlock, guards) only updates shared state and wakes those tasks, so the
/// runtime is called from them and from [`Locker::connect_with`].
///
/// Nothing here requires `Send` of the runtime's futures or streams: a
/// runtime whose tasks are `!Send` (glommio) spawns them locally. A runtime
/// with `Send` types gets `Send` lockers, guards and futures. The runtime
/// value itself is shared by the locker's tasks, hence `Send + Sync`; keep
/// it cheap (a handle to the executor, or nothing).
///
/// [`Locker::connect_with`]: crate::Locker::connect_with
///
/// # Implementing it
///
/// A runtime on async-io timers and sockets that spawns on an executor of
/// its own (`runtimes/tests/custom_runtime.rs` runs this one against a real
/// server):
///
/// ```no_run
/// use std::net::{TcpStream, ToSocketAddrs};
/// use std::sync::Arc;
/// use std::{io, time::Instant};
///
/// use embedded_io_adapters::futures_03::FromFutures;
/// use smol::{Async, Executor, Timer};
/// use tracklock::{Locker, Options, Runtime, Task};
///
/// struct MyRuntime(Arc<Executor<'static>>);
///
/// impl Runtime for MyRuntime {
///     type Sleep = Timer;
///     type Stream = FromFutures<Async<TcpStream>>;
///
///     fn sleep_until(&self, deadline: Instant) -> Timer {
///         Timer::at(deadline)
///     }
///
///     async fn connect_tcp(&self, addr: &str) -> io::Result<Self::Stream> {
///         let addr = addr.to_owned();
///         let sa = smol::unblock(move || addr.to_socket_addrs()).await?.next();
///         let sa = sa.ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address"))?;
///         let stream = Async::<TcpStream>::connect(sa).await?;
///         stream.get_ref().set_nodelay(true)?;
///         Ok(FromFutures::new(stream))
///     }
///
///     fn spawn(&self, task: Task<Self>) {
///         self.0.spawn(task.run()).detach();
///     }
/// }
///
/// # fn main() -> Result<(), tracklock::Error> {
/// let executor = Arc::new(Executor::new());
/// // ... threads running `executor.run(...)` ...
/// let locker = smol::block_on(Locker::connect_with(
///     MyRuntime(executor.clone()),
///     Options::new("127.0.0.1:6379"),
/// ))?;
/// # Ok(()) }
/// ```
pub trait Runtime: Sized + Send + Sync + 'static {
    /// A timer future, resolving at the deadline given to
    /// [`Runtime::sleep_until`]. Its output is ignored.
    type Sleep: Future;
    /// A connected, bidirectional byte stream.
    ///
    /// Dropping a pending `read` or `write` future of it must lose no data:
    /// the driver drops them whenever a timer or a wake-up wins a race. The
    /// `embedded-io-adapters` wrappers of tokio and `futures` streams have
    /// this property (each call is one `poll_read`/`poll_write`, which
    /// either completes or has done nothing). Disable Nagle's algorithm
    /// (`TCP_NODELAY`): lock commands are small and latency-bound.
    type Stream: embedded_io_async::Read<Error = io::Error>
        + embedded_io_async::Write<Error = io::Error>;

    /// The runtime's monotonic clock; [`Runtime::sleep_until`] deadlines are
    /// on it. Defaults to [`Instant::now`] (tokio overrides it, so that
    /// `tokio::time::pause` applies).
    fn now(&self) -> Instant {
        Instant::now()
    }

    /// A future resolving at `deadline` (or soon after; at once if it
    /// passed). Deadlines are at most about a century away (longer waits
    /// are cut), but a runtime whose timers take a duration must still not
    /// overflow when adding it to its own clock.
    fn sleep_until(&self, deadline: Instant) -> Self::Sleep;

    /// Moves `sleep` (made by [`Runtime::sleep_until`], pending or already
    /// fired) to `deadline`: it resolves then, as a new one would. A driver
    /// keeps one timer per connection and moves it whenever the engine's
    /// next deadline changes, so its turns allocate nothing for timers.
    ///
    /// The default replaces the timer with a new one; override it when the
    /// runtime's timers can be re-armed in place (tokio `Sleep::reset`,
    /// async-io `Timer::set_at`, glommio `Timer::reset`).
    fn reset_sleep(&self, mut sleep: Pin<&mut Self::Sleep>, deadline: Instant) {
        sleep.set(self.sleep_until(deadline));
    }

    /// Opens a TCP connection to `addr` (`host:port`, IPv6 hosts in
    /// brackets; host names resolved as the runtime resolves them). No
    /// timeout is needed: the locker bounds the attempt by its connect
    /// timeout and drops the future when it passes.
    fn connect_tcp(&self, addr: &str) -> impl Future<Output = io::Result<Self::Stream>>;

    /// A duplicate of `stream`'s socket (a `dup`ed descriptor), or `None`
    /// (the default).
    ///
    /// With it, the task that queues a command (a `lock`, an `unlock`, a
    /// guard dropped, or another node's driver) sends it at once with a
    /// non-blocking `send` instead of waking the node's driver to write it:
    /// one task wake-up less per request and per contended hand-off. Only
    /// what the socket does not take at once goes through the stream. The
    /// locker sends on the duplicate only while the driver has no bytes of
    /// its own pending on the stream (written and flushed), and closes it
    /// when the connection ends, so a stream that buffers writes must have
    /// sent them when `flush` returns. Without it (and always over TLS)
    /// every byte goes through the stream.
    #[cfg(unix)]
    fn socket(&self, stream: &Self::Stream) -> Option<std::os::fd::OwnedFd> {
        let _ = stream;
        None
    }

    /// Lets the executor run the other tasks that are ready before the
    /// caller goes on; the default does not wait.
    ///
    /// A node's task calls it when it was woken to write while replies are
    /// outstanding: tasks that are ready then (often woken by those
    /// replies) queue their commands first, and all of them leave in one
    /// write. Worth implementing where a woken task runs before the ones
    /// already queued (tokio's LIFO slot): `tokio::task::yield_now`.
    fn yield_now(&self) -> impl Future<Output = ()> {
        std::future::ready(())
    }

    /// Spawns `task`: poll [`Task::run`]'s future to completion on the
    /// runtime (detached: nobody awaits it). Called by
    /// [`Locker::connect_with`](crate::Locker::connect_with) for each
    /// configured node, and by a running task when a Redis Cluster adds a
    /// node.
    ///
    /// A runtime that cannot spawn (it is shutting down) may drop the task
    /// or its future: that counts as the task having exited, and once every
    /// task of a locker has, its pending calls end with
    /// [`Error::Closed`](crate::Error::Closed).
    fn spawn(&self, task: Task<Self>);
}

/// The task of one Redis node of a locker, handed to [`Runtime::spawn`].
///
/// It ends once the locker is closed (by [`Locker::close`], or when every
/// handle and guard is dropped) and its releases are answered or gave up.
///
/// [`Locker::close`]: crate::Locker::close
pub struct Task<R: Runtime> {
    driver: Driver<R>,
}

impl<R: Runtime> Task<R> {
    pub(crate) fn new(driver: Driver<R>) -> Self {
        Task { driver }
    }

    /// The task's future, to be polled to completion on the runtime. It is
    /// `Send` when the runtime's [`Runtime::Stream`], [`Runtime::Sleep`] and
    /// [`Runtime::connect_tcp`] future are.
    pub fn run(self) -> impl Future<Output = ()> + 'static {
        let mut driver = self.driver;
        #[cfg(feature = "tracing")]
        let span = driver.span.clone();
        let run = async move { driver.run().await };
        #[cfg(feature = "tracing")]
        let run = tracing::Instrument::instrument(run, span);
        run
    }
}

impl<R: Runtime> fmt::Debug for Task<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task")
            .field("addr", &self.driver.addr())
            .finish_non_exhaustive()
    }
}

/// Connects to `addr` with the runtime, failing with
/// [`io::ErrorKind::TimedOut`] after `timeout`: the one connect-with-timeout
/// of every runtime.
pub(crate) async fn connect_within<R: Runtime>(
    rt: &R,
    addr: &str,
    timeout: Duration,
) -> io::Result<R::Stream> {
    let deadline = deadline_after(rt.now(), timeout);
    or(rt.connect_tcp(addr), async {
        rt.sleep_until(deadline).await;
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("TCP connect timed out after {timeout:?}"),
        ))
    })
    .await
}

/// The longest wait handed to a runtime's clock or timers: about 100 years.
/// Longer durations (up to [`Duration::MAX`]) are cut to it, so no
/// deadline overflows [`Instant`] or a runtime's timer arithmetic; a timer
/// that fires after a century only makes the driver look again.
pub(crate) const MAX_WAIT: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// `now + d`, with `d` cut to [`MAX_WAIT`] (and, on a platform whose
/// [`Instant`] cannot reach that far, to what it can): never panics.
pub(crate) fn deadline_after(now: Instant, d: Duration) -> Instant {
    let mut d = d.min(MAX_WAIT);
    loop {
        if let Some(t) = now.checked_add(d) {
            return t;
        }
        d /= 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_saturate() {
        let now = Instant::now();
        assert_eq!(deadline_after(now, Duration::ZERO), now);
        assert_eq!(
            deadline_after(now, Duration::from_secs(1)),
            now + Duration::from_secs(1)
        );
        for d in [MAX_WAIT, Duration::from_millis(u64::MAX), Duration::MAX] {
            assert_eq!(deadline_after(now, d), now + MAX_WAIT);
        }
    }
}
