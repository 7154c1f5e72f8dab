//! Timing bounds that hold on a busy machine.
//!
//! A bound such as "the holder is told within 500 ms" or "the TTL is near
//! the validity after 500 ms" silently assumes a quiet machine: on a loaded
//! 2-core CI runner every wake-up (the server's, the locker's driver, the
//! test's own task) can wait for a CPU. [`Rtt`] measures round trips to the
//! server under test right now (a few `PING`s), so that a bound can say how
//! many round trips it allows instead of how many milliseconds.
//!
//! Use it where a test waits for something that takes round trips (an
//! invalidation, a re-extension, a hand-off): `rtt.at_least(base, n)` keeps
//! the quiet-machine bound `base` and grows it only when `n` round trips at
//! the measured rate (with [`HEADROOM`]) take longer. A bound that must stay
//! short for the test to keep its teeth (shorter than the next periodic
//! extension, say) is capped by the test, which then says so when it fails.

use std::time::{Duration, Instant};

/// `PING`s per measurement.
pub const RTT_SAMPLES: u32 = 5;

/// Headroom over the slowest measured round trip: a bound of `n` round
/// trips allows `n * HEADROOM` times the slowest sample (load comes in
/// bursts; a few samples see only part of it).
pub const HEADROOM: u32 = 4;

/// Round trips to a server, measured now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rtt {
    /// The slowest sample.
    pub max: Duration,
    /// The fastest sample.
    pub min: Duration,
}

impl Rtt {
    /// Times [`RTT_SAMPLES`] calls of `round_trip` (each one request and
    /// its reply, e.g. an admin `PING`).
    pub fn measure(mut round_trip: impl FnMut()) -> Rtt {
        let mut max = Duration::ZERO;
        let mut min = Duration::MAX;
        for _ in 0..RTT_SAMPLES {
            let start = Instant::now();
            round_trip();
            let took = start.elapsed();
            max = max.max(took);
            min = min.min(took);
        }
        Rtt { max, min }
    }

    /// The slower of two measurements (sample by sample bounds).
    pub fn worst(self, other: Rtt) -> Rtt {
        Rtt {
            max: self.max.max(other.max),
            min: self.min.min(other.min),
        }
    }

    /// `n` round trips at the slowest measured rate, times [`HEADROOM`].
    pub fn trips(self, n: u32) -> Duration {
        self.max * n * HEADROOM
    }

    /// `base` (the quiet-machine bound), or [`Rtt::trips`]`(n)` when that
    /// is longer.
    pub fn at_least(self, base: Duration, n: u32) -> Duration {
        base.max(self.trips(n))
    }
}

impl std::fmt::Display for Rtt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "rtt {:?}..{:?} over {RTT_SAMPLES} PINGs",
            self.min, self.max
        )
    }
}

/// How late a thread's timer wake-up is on this machine right now: the
/// slowest of [`RTT_SAMPLES`] 1 ms sleeps' overshoot, times [`HEADROOM`].
/// A locker learns of an expired lease from a timer; on a busy machine that
/// wake-up waits for a CPU, which a `PING` round trip need not show.
pub fn timer_lateness() -> Duration {
    const NAP: Duration = Duration::from_millis(1);
    let mut worst = Duration::ZERO;
    for _ in 0..RTT_SAMPLES {
        let start = Instant::now();
        std::thread::sleep(NAP);
        worst = worst.max(start.elapsed().saturating_sub(NAP));
    }
    worst * HEADROOM
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_grow_with_the_slowest_sample_only() {
        let mut n = 0u64;
        let rtt = Rtt::measure(|| {
            n += 1;
            std::thread::sleep(Duration::from_millis(if n == 3 { 8 } else { 1 }));
        });
        assert_eq!(n, u64::from(RTT_SAMPLES));
        assert!(rtt.max >= Duration::from_millis(8), "{rtt}");
        assert!(
            rtt.min >= Duration::from_millis(1) && rtt.min < rtt.max,
            "{rtt}"
        );
        assert_eq!(rtt.trips(2), rtt.max * 2 * HEADROOM);
        let base = Duration::from_secs(10);
        assert_eq!(rtt.at_least(base, 1), base);
        assert_eq!(rtt.at_least(Duration::ZERO, 1), rtt.trips(1));
    }
}
