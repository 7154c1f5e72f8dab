//! How long a driver waits before it reconnects.

use std::time::Duration;

/// First reconnection delay (before jitter).
const BACKOFF_MIN: Duration = Duration::from_millis(10);
/// Longest reconnection delay.
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// A driver's reconnection delays, jittered so that drivers (of this
/// locker's nodes, and of other processes') do not reconnect in step.
pub(super) struct Backoff {
    /// xorshift64 state, never zero.
    rng: u64,
}

impl Backoff {
    /// Delays drawn from `seed`, made odd: from zero xorshift64 never moves.
    pub(super) fn new(seed: u64) -> Self {
        Backoff { rng: seed | 1 }
    }

    /// Jittered exponential backoff: a random delay in `[d/2, d]` with
    /// `d = min(10 ms * 2^attempt, 1 s)`.
    pub(super) fn delay(&mut self, attempt: u32) -> Duration {
        let d = BACKOFF_MIN
            .saturating_mul(1u32 << attempt.min(16))
            .min(BACKOFF_MAX);
        // xorshift64
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let frac = (self.rng >> 11) as f64 / (1u64 << 53) as f64;
        d.mul_f64(0.5 + frac / 2.0)
    }
}
