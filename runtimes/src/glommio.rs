//! The locker on glommio (Linux, io_uring, thread-per-core).
//!
//! glommio tasks are `!Send` and bound to the thread of their executor: the
//! drivers run on [`glommio::spawn_local`] on the executor that calls
//! [`Locker::connect`](crate::Locker::connect), and the locker's sockets and
//! timers belong to that executor. The [`Locker`] and [`Guard`] handles are
//! still `Send + Sync` (they only touch the shared engine), but the I/O only
//! makes progress while that executor runs, so use them from its thread.
//!
//! Close lockers ([`crate::Locker::close`]) before their executor finishes:
//! glommio neither polls nor drops the tasks still pending when an executor
//! is dropped, so drivers left running leak with it (their sockets stay
//! open until the process exits, keys expire on their own, and futures of
//! the locker's handles never resolve). On tokio the runtime's shutdown ends
//! them instead.
//!
//! glommio registers `io_memory` (default 10 MiB) of I/O memory per
//! executor, which kernels may count against `ulimit -l` (locked memory).
//! The locker needs only a few KiB of it: where the limit is small and the
//! process lacks `CAP_IPC_LOCK`, build executors with a small
//! `LocalExecutorBuilder::io_memory` and `ring_depth`, as the tests do
//! (256 KiB, 32).

use std::io;
use std::pin::Pin;
use std::time::Instant;

use crate::runtime::MAX_WAIT;
use crate::{Error, Options, Runtime, Task};

/// The glommio [`Runtime`]: the glommio executor of the calling thread.
#[derive(Debug, Clone, Copy, Default)]
pub struct Glommio;

/// A [`crate::Locker`] on glommio.
pub type Locker = crate::Locker<Glommio>;
/// A [`crate::Guard`] on glommio.
pub type Guard = crate::Guard<Glommio>;

impl Runtime for Glommio {
    type Sleep = glommio::timer::Timer;
    type Stream = tracklock_transports::tcp::GlommioTcp;

    fn sleep_until(&self, deadline: Instant) -> Self::Sleep {
        glommio::timer::Timer::new(until(deadline))
    }

    fn reset_sleep(&self, sleep: Pin<&mut Self::Sleep>, deadline: Instant) {
        sleep.get_mut().reset(until(deadline));
    }

    async fn connect_tcp(&self, addr: &str) -> io::Result<Self::Stream> {
        tracklock_transports::tcp::connect_glommio(addr).await
    }

    fn socket(&self, stream: &Self::Stream) -> Option<std::os::fd::OwnedFd> {
        use std::os::fd::{AsRawFd, BorrowedFd};
        let fd = stream.inner().as_raw_fd();
        // SAFETY: glommio's stream owns `fd` and is borrowed for this whole
        // call, so the descriptor is open; it is only duplicated here (the
        // duplicate is owned), never closed. glommio's `TcpStream` offers
        // `AsRawFd` but not `AsFd`, hence the raw borrow.
        #[allow(unsafe_code)]
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        fd.try_clone_to_owned().ok()
    }

    /// Spawns on the current glommio executor: `connect` runs on it, and so
    /// do the drivers that spawn the nodes a cluster adds.
    fn spawn(&self, task: Task<Self>) {
        glommio::spawn_local(task.run()).detach();
    }
}

/// The wait until `deadline`, cut so that glommio's unchecked
/// `Instant::now() + duration` cannot overflow.
fn until(deadline: Instant) -> std::time::Duration {
    deadline
        .saturating_duration_since(Instant::now())
        .min(MAX_WAIT)
}

impl crate::Locker<Glommio> {
    /// Connects on the current glommio executor, see
    /// [`Locker::connect_with`](crate::Locker::connect_with) (errors
    /// included).
    ///
    /// # Panics
    ///
    /// Outside a glommio executor (like every glommio call): the drivers are
    /// spawned on the current one with `glommio::spawn_local`.
    pub async fn connect(options: Options) -> Result<Self, Error> {
        Self::connect_with(Glommio, options).await
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn executor() -> glommio::LocalExecutor {
        glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .io_memory(256 << 10)
            .ring_depth(32)
            .make()
            .expect("glommio executor (io_uring)")
    }

    #[test]
    fn bad_options_fail_before_connecting() {
        executor().run(async {
            let r = Locker::connect(Options::new("127.0.0.1:1").validity(Duration::ZERO)).await;
            assert!(matches!(r, Err(Error::Config(_))), "{r:?}");
        });
    }

    #[test]
    fn refused_connection_is_a_connect_error() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        executor().run(async move {
            let r = Locker::connect(Options::new(format!("127.0.0.1:{port}"))).await;
            assert!(matches!(r, Err(Error::Connect { .. })), "{r:?}");
        });
    }

    #[test]
    fn handles_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Locker>();
        check::<Guard>();
    }
}
