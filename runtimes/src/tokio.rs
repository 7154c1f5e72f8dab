//! The locker on tokio.
//!
//! Needs a tokio runtime with I/O and time enabled (`enable_all`, or
//! `#[tokio::main]`); the drivers run on that runtime.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::time::Instant;

use tokio::runtime::Handle;

use crate::{Error, Options, Runtime, Task};

/// The tokio [`Runtime`]: a handle to the tokio runtime the drivers run on.
#[derive(Debug, Clone)]
pub struct Tokio {
    handle: Handle,
}

impl Tokio {
    /// The tokio runtime this is called from; [`Error::NoRuntime`] outside
    /// one.
    pub fn current() -> Result<Tokio, Error> {
        Handle::try_current()
            .map(Tokio::from_handle)
            .map_err(|_| Error::NoRuntime("tokio"))
    }

    /// The tokio runtime of `handle` (it must have I/O and time enabled).
    pub fn from_handle(handle: Handle) -> Tokio {
        Tokio { handle }
    }
}

/// A [`crate::Locker`] on tokio.
pub type Locker = crate::Locker<Tokio>;
/// A [`crate::Guard`] on tokio.
pub type Guard = crate::Guard<Tokio>;

impl Runtime for Tokio {
    type Sleep = tokio::time::Sleep;
    type Stream = tracklock_transports::tcp::TokioTcp;

    fn now(&self) -> Instant {
        // Honours `tokio::time::pause`.
        tokio::time::Instant::now().into_std()
    }

    fn sleep_until(&self, deadline: Instant) -> Self::Sleep {
        let _context = self.handle.enter();
        tokio::time::sleep_until(deadline.into())
    }

    fn reset_sleep(&self, sleep: Pin<&mut Self::Sleep>, deadline: Instant) {
        sleep.reset(deadline.into());
    }

    async fn connect_tcp(&self, addr: &str) -> io::Result<Self::Stream> {
        tracklock_transports::tcp::connect_tokio(addr).await
    }

    #[cfg(unix)]
    fn socket(&self, stream: &Self::Stream) -> Option<std::os::fd::OwnedFd> {
        use std::os::fd::AsFd;
        stream.inner().as_fd().try_clone_to_owned().ok()
    }

    fn yield_now(&self) -> impl Future<Output = ()> {
        tokio::task::yield_now()
    }

    fn spawn(&self, task: Task<Self>) {
        drop(self.handle.spawn(task.run()));
    }
}

impl crate::Locker<Tokio> {
    /// Connects on the current tokio runtime, see
    /// [`Locker::connect_with`](crate::Locker::connect_with) (errors
    /// included). Outside a tokio runtime it fails with
    /// [`Error::NoRuntime`]; the runtime needs I/O and time enabled.
    pub async fn connect(options: Options) -> Result<Self, Error> {
        Self::connect_with(Tokio::current()?, options).await
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn connect_outside_a_runtime_is_an_error_not_a_panic() {
        let r = futures_lite::future::block_on(Locker::connect(Options::new("127.0.0.1:1")));
        assert!(matches!(&r, Err(Error::NoRuntime("tokio"))), "{r:?}");
    }

    #[tokio::test]
    async fn bad_options_fail_before_connecting() {
        let r = Locker::connect(Options::new("127.0.0.1:1").validity(Duration::ZERO)).await;
        assert!(matches!(r, Err(Error::Config(_))), "{r:?}");
    }

    #[test]
    fn handles_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Locker>();
        check::<Guard>();
        check::<Error>();
        check::<Options>();
        // `connect` can run in a spawned task.
        fn send<T: Send>(_: &T) {}
        send(&Locker::connect(Options::new("127.0.0.1:1")));
    }
}
