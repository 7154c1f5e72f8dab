use std::time::Duration;

/// The values every duration option is walked with in the settings tests
/// of the core and of `Options`: zero, each unit, and the far end, where
/// every deadline derived from them saturates.
pub fn edge_durations() -> Vec<Duration> {
    vec![
        Duration::ZERO,
        Duration::from_nanos(1),
        Duration::from_micros(1),
        Duration::from_millis(1),
        Duration::from_secs(1),
        // The longest valid validity: far beyond the `u64` nanoseconds of
        // the engine's `Instant`.
        Duration::from_millis(i64::MAX as u64 / 2),
        Duration::from_millis(u64::MAX),
        Duration::MAX,
    ]
}
