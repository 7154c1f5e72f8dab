//! Lease arithmetic: how long a key is certainly ours, on the local clock.
//!
//! A key written with TTL `t` by a request sent at local time `s` expires on
//! the server no earlier than `s + t` of server time. With clock rates that
//! differ by at most `drift`, that is no earlier than `s + t * (1 - drift)` of
//! local time; taking `margin` off covers scheduling pauses. A lock holds
//! while a majority of its keys are within their bound, so the lock's
//! deadline is the `m`-th latest key bound.

use core::time::Duration;

use crate::time::Instant;

/// `d * (1 - ppm / 1e6)`.
pub(crate) fn shrink(d: Duration, drift_ppm: u32) -> Duration {
    let nanos = d.as_nanos();
    let kept = nanos - nanos * u128::from(drift_ppm) / 1_000_000;
    Duration::from_nanos(u64::try_from(kept).unwrap_or(u64::MAX))
}

/// `d * (1 + ppm / 1e6)`.
pub(crate) fn stretch(d: Duration, drift_ppm: u32) -> Duration {
    let nanos = d.as_nanos();
    let grown = nanos + nanos * u128::from(drift_ppm) / 1_000_000;
    Duration::from_nanos(u64::try_from(grown).unwrap_or(u64::MAX))
}

/// The local instant until which a key with server TTL `ttl`, observed by a
/// request sent at `sent`, is certainly still alive.
pub(crate) fn key_bound(sent: Instant, ttl: Duration, drift_ppm: u32, margin: Duration) -> Instant {
    sent.saturating_add(shrink(ttl, drift_ppm))
        .saturating_sub(margin)
}

/// The `m`-th latest of `bounds` (the lock's deadline), or `None` when fewer
/// than `m` bounds are given.
pub(crate) fn majority_deadline(
    bounds: impl Iterator<Item = Instant>,
    m: usize,
) -> Option<Instant> {
    let mut top: heapless::Vec<Instant, { crate::keys::MAX_KEYS }> = heapless::Vec::new();
    for b in bounds {
        // At most MAX_KEYS bounds exist; ignore any excess rather than panic.
        let _ = top.push(b);
    }
    if top.len() < m || m == 0 {
        return None;
    }
    top.sort_unstable_by(|a, b| b.cmp(a));
    Some(top[m - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drift_and_margin() {
        let b = key_bound(
            Instant::from_nanos(1_000_000_000),
            Duration::from_secs(5),
            10_000,
            Duration::from_millis(5),
        );
        // 1 s + 4.95 s - 5 ms
        assert_eq!(b, Instant::from_nanos(5_945_000_000));
        assert_eq!(
            stretch(Duration::from_secs(1), 10_000),
            Duration::from_millis(1010)
        );
    }

    #[test]
    fn majority() {
        let b = [5u64, 9, 7].map(Instant::from_nanos);
        assert_eq!(
            majority_deadline(b.iter().copied(), 2),
            Some(Instant::from_nanos(7))
        );
        assert_eq!(
            majority_deadline(b.iter().copied(), 1),
            Some(Instant::from_nanos(9))
        );
        assert_eq!(majority_deadline(b[..1].iter().copied(), 2), None);
    }
}
