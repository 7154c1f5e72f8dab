//! The tiny trait that lets one driver run on any async runtime.

use std::future::Future;
use std::io;
use std::time::{Duration, Instant};

/// What the generic driver needs from an async runtime: a clock, a timer and
/// a way to open a byte stream.
///
/// Spawning is deliberately not part of it: each runtime module spawns the
/// driver its own way, so runtimes whose tasks are `!Send` (glommio) fit the
/// same trait. Nothing here requires `Send` either; a runtime whose types are
/// `Send` gets `Send` drivers and lockers.
pub trait Runtime: Sized + 'static {
    /// A timer future, resolving at the deadline given to
    /// [`Runtime::sleep_until`].
    type Sleep: Future;
    /// A connected, bidirectional byte stream. Dropping a pending `read` or
    /// `write` future of it must lose no data (true of the
    /// `embedded-io-adapters` wrappers of std streams).
    type Stream: embedded_io_async::Read<Error = io::Error>
        + embedded_io_async::Write<Error = io::Error>;

    /// The runtime's monotonic clock (tokio's honours `time::pause`).
    fn now() -> Instant;

    /// A future resolving at `deadline` (or soon after).
    fn sleep_until(deadline: Instant) -> Self::Sleep;

    /// Opens a stream to `addr` (`host:port`), failing with
    /// [`io::ErrorKind::TimedOut`] after `timeout`.
    fn connect(addr: &str, timeout: Duration) -> impl Future<Output = io::Result<Self::Stream>>;
}
