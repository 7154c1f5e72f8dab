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
