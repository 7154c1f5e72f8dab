//! Simulated clocks: every process reads real time through a constant rate
//! error (drift, in parts per million) and an offset.

/// A monotonic clock running at `1 + ppm / 1e6` times real speed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    /// Rate error in parts per million (positive: runs fast).
    pub ppm: i64,
    /// Reading at real time zero, in nanoseconds.
    pub offset: u64,
}

impl Clock {
    /// A clock with the given rate error and offset.
    pub fn new(ppm: i64, offset: u64) -> Self {
        assert!(ppm > -500_000 && ppm < 500_000, "drift out of range");
        Clock { ppm, offset }
    }

    /// The clock's reading (ns) at real time `real` (ns).
    pub fn at(&self, real: u64) -> u64 {
        let r = i128::from(real);
        let skew = (r * i128::from(self.ppm)).div_euclid(1_000_000);
        (i128::from(self.offset) + r + skew).clamp(0, i128::from(u64::MAX)) as u64
    }

    /// The earliest real time at which the clock reads at least `local`.
    pub fn real_at(&self, local: u64) -> u64 {
        if local <= self.offset {
            return 0;
        }
        // Far-future readings (saturated deadlines) map to the far future.
        if local >= u64::MAX / 4 {
            return u64::MAX / 4;
        }
        let d = i128::from(local - self.offset);
        let mut r = (d * 1_000_000 / (1_000_000 + i128::from(self.ppm))).max(0) as u64;
        while self.at(r) < local {
            r += 1;
        }
        while r > 0 && self.at(r - 1) >= local {
            r -= 1;
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverse() {
        for ppm in [-20_000, -1, 0, 1, 7_777, 20_000] {
            let c = Clock::new(ppm, 123_456_789);
            for real in [0u64, 1, 999, 1_000_000, 987_654_321_012] {
                let l = c.at(real);
                let r = c.real_at(l);
                assert!(r <= real && c.at(r) >= l, "{ppm} {real}");
            }
        }
    }
}
