//! The locker on smol (async-io).
//!
//! Sockets and timers are driven by async-io's reactor, so the locker works
//! from any executor; the driver runs on `smol::spawn` (smol's global
//! executor).

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::driver::Inner;
use crate::{Error, Options, Runtime};

/// The smol [`Runtime`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Smol;

/// A [`crate::Locker`] on smol.
pub type Locker = crate::Locker<Smol>;
/// A [`crate::Guard`] on smol.
pub type Guard = crate::Guard<Smol>;

impl Runtime for Smol {
    type Sleep = async_io::Timer;
    type Stream = tracklock_transports::tcp::SmolTcp;

    fn now() -> Instant {
        Instant::now()
    }

    fn sleep_until(deadline: Instant) -> Self::Sleep {
        async_io::Timer::at(deadline)
    }

    async fn connect(addr: &str, timeout: Duration) -> io::Result<Self::Stream> {
        futures_lite::future::or(tracklock_transports::tcp::connect_smol(addr), async {
            async_io::Timer::after(timeout).await;
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("TCP connect timed out after {timeout:?}"),
            ))
        })
        .await
    }
}

/// Spawns the driver of a node on smol's global executor (the first ones
/// from `connect`, the nodes a cluster adds from a driver).
fn spawn(inner: Arc<Inner>, idx: usize) {
    smol::spawn(crate::driver::run::<Smol>(inner, idx)).detach();
}

impl crate::Locker<Smol> {
    /// Connects and returns once the locker is usable, within
    /// [`Options::connect_timeout`]; what "usable" means per mode, and when
    /// it fails early, is under [Connecting](crate::Locker#connecting).
    /// Errors: [`Error::Config`] or [`Error::Addresses`] for bad options,
    /// [`Error::Connect`] when servers cannot be reached (or not in time),
    /// [`Error::Server`] when one refuses the handshake,
    /// [`Error::Topology`] when one is of the wrong kind for the mode.
    pub async fn connect(options: Options) -> Result<Self, Error> {
        let locker = Self::start(&options, spawn)?;
        locker.ready(options.connect_timeout_value()).await?;
        Ok(locker)
    }
}
