//! The locker on smol (async-io).
//!
//! Sockets and timers are driven by async-io's reactor, so the locker works
//! from any executor; the driver runs on `smol::spawn` (smol's global
//! executor).

use std::io;
use std::pin::Pin;
use std::time::Instant;

use crate::{Error, Options, Runtime, Task};

/// The smol [`Runtime`]: async-io's reactor and timers, smol's global
/// executor.
#[derive(Debug, Clone, Copy, Default)]
pub struct Smol;

/// A [`crate::Locker`] on smol.
pub type Locker = crate::Locker<Smol>;
/// A [`crate::Guard`] on smol.
pub type Guard = crate::Guard<Smol>;

impl Runtime for Smol {
    type Sleep = async_io::Timer;
    type Stream = tracklock_transports::tcp::SmolTcp;

    fn sleep_until(&self, deadline: Instant) -> Self::Sleep {
        async_io::Timer::at(deadline)
    }

    fn reset_sleep(&self, sleep: Pin<&mut Self::Sleep>, deadline: Instant) {
        sleep.get_mut().set_at(deadline);
    }

    async fn connect_tcp(&self, addr: &str) -> io::Result<Self::Stream> {
        tracklock_transports::tcp::connect_smol(addr).await
    }

    #[cfg(unix)]
    fn socket(&self, stream: &Self::Stream) -> Option<std::os::fd::OwnedFd> {
        use std::os::fd::AsFd;
        stream.inner().as_fd().try_clone_to_owned().ok()
    }

    fn spawn(&self, task: Task<Self>) {
        smol::spawn(task.run()).detach();
    }
}

impl crate::Locker<Smol> {
    /// Connects on smol, see
    /// [`Locker::connect_with`](crate::Locker::connect_with) (errors
    /// included). Works from any executor: the drivers run on smol's
    /// global executor.
    pub async fn connect(options: Options) -> Result<Self, Error> {
        Self::connect_with(Smol, options).await
    }
}
