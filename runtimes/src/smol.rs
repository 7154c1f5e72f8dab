//! The locker on smol (async-io).
//!
//! Sockets and timers are driven by async-io's reactor, so the locker works
//! from any executor; the driver runs on `smol::spawn` (smol's global
//! executor).

use std::io;
use std::time::{Duration, Instant};

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

impl crate::Locker<Smol> {
    /// Connects to Redis and returns once the connection is ready (handshake
    /// done), within [`Options::connect_timeout`]. Errors:
    /// [`Error::Config`] for bad options, [`Error::Connect`] when the server
    /// cannot be reached, [`Error::Server`] when it refuses the handshake.
    pub async fn connect(options: Options) -> Result<Self, Error> {
        let (locker, drivers) = Self::start(&options)?;
        for driver in drivers {
            smol::spawn(driver).detach();
        }
        locker.ready(options.connect_timeout_value()).await?;
        Ok(locker)
    }
}
