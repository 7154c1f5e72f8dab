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

/// `d * (1 - ppm / 1e6)`, zero for `ppm >= 1e6` (exact in nanoseconds;
/// never overflows, whatever `d`).
pub(crate) fn shrink(d: Duration, drift_ppm: u32) -> Duration {
    let nanos = d.as_nanos();
    let kept = nanos.saturating_sub(nanos * u128::from(drift_ppm) / 1_000_000);
    from_nanos_saturating(kept)
}

/// `d * (1 + ppm / 1e6)`, saturating at [`Duration::MAX`].
pub(crate) fn stretch(d: Duration, drift_ppm: u32) -> Duration {
    let nanos = d.as_nanos();
    // `nanos < 2^94` and `ppm < 2^32`: the product fits `u128`.
    let grown = nanos.saturating_add(nanos * u128::from(drift_ppm) / 1_000_000);
    from_nanos_saturating(grown)
}

/// A duration of `nanos` nanoseconds, [`Duration::MAX`] when it is longer.
fn from_nanos_saturating(nanos: u128) -> Duration {
    const NANOS_PER_SEC: u128 = 1_000_000_000;
    match u64::try_from(nanos / NANOS_PER_SEC) {
        // The remainder is below 10^9, so it fits `u32`.
        Ok(secs) => Duration::new(secs, (nanos % NANOS_PER_SEC) as u32),
        Err(_) => Duration::MAX,
    }
}

/// The local instant until which a key with server TTL `ttl`, observed by a
/// request sent at `sent`, is certainly still alive (`sent` itself when the
/// margin eats the whole TTL).
///
/// The lease is computed as a [`Duration`] before it is added: adding the
/// TTL first and taking the margin off afterwards would lose the lease when
/// the sum saturates at the end of [`Instant`]'s range (huge settings, or a
/// far-future clock).
pub(crate) fn key_bound(sent: Instant, ttl: Duration, drift_ppm: u32, margin: Duration) -> Instant {
    sent.saturating_add(shrink(ttl, drift_ppm).saturating_sub(margin))
}

/// The local instant after which a key whose fate is unknown from `now`
/// (its write or release was in flight when the connection dropped) has
/// certainly expired: a full lease on the fastest clock, plus the margin.
pub(crate) fn doubt_until(
    now: Instant,
    validity: Duration,
    drift_ppm: u32,
    margin: Duration,
) -> Instant {
    now.saturating_add(stretch(validity, drift_ppm))
        .saturating_add(margin)
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

    #[test]
    fn huge_durations_saturate() {
        assert_eq!(stretch(Duration::MAX, 10_000), Duration::MAX);
        assert_eq!(stretch(Duration::MAX, u32::MAX), Duration::MAX);
        assert_eq!(shrink(Duration::MAX, 0), Duration::MAX);
        // Beyond `u64::MAX` nanoseconds the result stays exact.
        let long = Duration::from_secs(1 << 40);
        assert_eq!(shrink(long, 500_000), Duration::from_secs(1 << 39));
        assert_eq!(stretch(long, 500_000), Duration::from_secs(3 << 39));
        assert_eq!(shrink(Duration::from_secs(1), 1_000_000), Duration::ZERO);
        assert_eq!(shrink(Duration::from_secs(1), u32::MAX), Duration::ZERO);
        let t = Instant::from_nanos(u64::MAX - 1);
        assert_eq!(
            key_bound(t, Duration::MAX, 10_000, Duration::ZERO),
            Instant::from_nanos(u64::MAX)
        );
        assert_eq!(
            key_bound(Instant::from_nanos(7), Duration::ZERO, 0, Duration::MAX),
            Instant::from_nanos(7)
        );
        // Near the end of the range the lease survives the saturation.
        assert_eq!(
            key_bound(t, Duration::from_secs(1), 0, Duration::from_millis(5)),
            Instant::from_nanos(u64::MAX)
        );
        assert_eq!(
            key_bound(
                Instant::from_nanos(0),
                Duration::from_secs(u64::MAX),
                0,
                Duration::from_secs(u64::MAX / 2)
            ),
            Instant::from_nanos(u64::MAX)
        );
    }
}
