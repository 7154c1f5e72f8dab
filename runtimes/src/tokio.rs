//! The locker on tokio.
//!
//! Needs a tokio runtime with I/O and time enabled (`enable_all`, or
//! `#[tokio::main]`); the driver runs on `tokio::spawn`.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::driver::Inner;
use crate::{Error, Options, Runtime};

/// The tokio [`Runtime`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Tokio;

/// A [`crate::Locker`] on tokio.
pub type Locker = crate::Locker<Tokio>;
/// A [`crate::Guard`] on tokio.
pub type Guard = crate::Guard<Tokio>;

impl Runtime for Tokio {
    type Sleep = tokio::time::Sleep;
    type Stream = tracklock_transports::tcp::TokioTcp;

    fn now() -> Instant {
        tokio::time::Instant::now().into_std()
    }

    fn sleep_until(deadline: Instant) -> Self::Sleep {
        tokio::time::sleep_until(deadline.into())
    }

    async fn connect(addr: &str, timeout: Duration) -> io::Result<Self::Stream> {
        match tokio::time::timeout(timeout, tracklock_transports::tcp::connect_tokio(addr)).await {
            Ok(r) => r,
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("TCP connect timed out after {timeout:?}"),
            )),
        }
    }
}

/// Spawns the driver of a node on the current tokio runtime: `connect`
/// spawns the first ones, drivers (inside the runtime) the nodes a cluster
/// adds. Outside a runtime the driver is dropped, which counts as exited.
fn spawn(inner: Arc<Inner>, idx: usize) {
    let driver = crate::driver::run::<Tokio>(inner, idx);
    if let Ok(handle) = tokio::runtime::Handle::try_current() {
        drop(handle.spawn(driver));
    }
}

impl crate::Locker<Tokio> {
    /// Connects and returns once the locker is usable, within
    /// [`Options::connect_timeout`]; what "usable" means per mode, and when
    /// it fails early, is under [Connecting](crate::Locker#connecting).
    /// Errors: [`Error::Config`] or [`Error::Addresses`] for bad options,
    /// [`Error::Connect`] when servers cannot be reached (or not in time),
    /// [`Error::Server`] when one refuses the handshake,
    /// [`Error::Topology`] when one is of the wrong kind for the mode.
    ///
    /// Must be called inside a tokio runtime with I/O and time enabled
    /// (outside any runtime it fails with [`Error::Connect`]).
    pub async fn connect(options: Options) -> Result<Self, Error> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::Connect {
                addr: options.address().to_owned(),
                source: io::Error::other("not inside a tokio runtime"),
            });
        }
        let locker = Self::start(&options, spawn)?;
        locker.ready(options.connect_timeout_value()).await?;
        Ok(locker)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_outside_a_runtime_is_an_error_not_a_panic() {
        let r = futures_lite::future::block_on(Locker::connect(Options::new("127.0.0.1:1")));
        assert!(
            matches!(&r, Err(Error::Connect { source, .. }) if source.to_string().contains("tokio")),
            "{r:?}"
        );
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
