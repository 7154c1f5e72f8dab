//! The simulator's one source of randomness: a seeded ChaCha8 stream.

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use tracklock_testkit::hostile::Dice;

/// A seeded pseudo-random generator with the few draws the simulator needs.
/// The same seed always gives the same sequence, on every platform.
#[derive(Debug, Clone)]
pub struct SimRng(ChaCha8Rng);

impl SimRng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        SimRng(ChaCha8Rng::seed_from_u64(seed))
    }

    /// A uniformly random `u64`.
    pub fn u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in `0..n` (`0` when `n` is `0`).
    pub fn below(&mut self, n: u64) -> u64 {
        Dice::below(self, n)
    }

    /// Uniform in `lo..=hi` (`lo` when `hi <= lo`).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        Dice::range(self, lo, hi)
    }

    /// Uniform in `lo..=hi` for signed values.
    pub fn range_i64(&mut self, lo: i64, hi: i64) -> i64 {
        Dice::range_i64(self, lo, hi)
    }

    /// Uniform in `[0, 1)`.
    pub fn f64(&mut self) -> f64 {
        Dice::f64(self)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        Dice::chance(self, p)
    }

    /// Exponentially distributed with the given mean (for Poisson arrivals).
    pub fn exp(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.f64()).ln()
    }

    /// A uniformly chosen element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        Dice::pick(self, items)
    }

    /// Fills `buf` with random bytes.
    pub fn fill(&mut self, buf: &mut [u8]) {
        self.0.fill_bytes(buf);
    }

    /// 32 random bytes, e.g. to seed an engine.
    pub fn seed32(&mut self) -> [u8; 32] {
        let mut s = [0u8; 32];
        self.fill(&mut s);
        s
    }
}

/// The draws themselves live in the test kit, shared with the hostile-bytes
/// generator there: one implementation, so a seed means the same stream.
impl Dice for SimRng {
    fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    fn fill(&mut self, buf: &mut [u8]) {
        self.0.fill_bytes(buf);
    }
}
