//! Bench-only instrumentation (feature `timeline`, off by default and
//! compiled out without it): timestamps of the locker's socket writes
//! (the driver's, or direct ones from the caller's task) and reads, and of
//! the drivers' wake-ups, so a benchmark can lay out where one lock
//! hand-off spends its time. Not a stable API.
//!
//! Recording is off until [`start`]; each record is one atomic increment
//! and one atomic store into a fixed ring, so it does not allocate.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A driver woke up (its signal or timer) and starts a turn.
    DriverWoken = 1,
    /// Bytes were written to a node's socket (by its driver, or directly
    /// by the task that queued them).
    Wrote = 2,
    /// A driver read bytes from its socket.
    Read = 3,
    /// The caller got a lock (recorded by the benchmark).
    Acquired = 4,
    /// The caller calls unlock (recorded by the benchmark).
    Unlock = 5,
}

const KINDS: [Kind; 5] = [
    Kind::DriverWoken,
    Kind::Wrote,
    Kind::Read,
    Kind::Acquired,
    Kind::Unlock,
];

/// Records kept; later ones are dropped.
const CAP: usize = 1 << 18;

static ON: AtomicBool = AtomicBool::new(false);
static NEXT: AtomicUsize = AtomicUsize::new(0);
static RING: [AtomicU64; CAP] = [const { AtomicU64::new(0) }; CAP];

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Clears the ring and starts recording.
pub fn start() {
    epoch();
    NEXT.store(0, Ordering::SeqCst);
    ON.store(true, Ordering::SeqCst);
}

/// Stops recording and returns the records, `(nanoseconds since the
/// process's first record, kind)`, sorted by time.
pub fn stop() -> Vec<(u64, Kind)> {
    ON.store(false, Ordering::SeqCst);
    let n = NEXT.load(Ordering::SeqCst).min(CAP);
    let mut v: Vec<(u64, Kind)> = RING[..n]
        .iter()
        .filter_map(|slot| {
            let x = slot.load(Ordering::Relaxed);
            let kind = KINDS.iter().copied().find(|k| *k as u64 == x & 7)?;
            Some((x >> 3, kind))
        })
        .collect();
    v.sort_unstable_by_key(|r| r.0);
    v
}

/// Records `kind` now, when recording.
#[inline]
pub fn record(kind: Kind) {
    if !ON.load(Ordering::Relaxed) {
        return;
    }
    let t = epoch().elapsed().as_nanos() as u64;
    let i = NEXT.fetch_add(1, Ordering::Relaxed);
    if let Some(slot) = RING.get(i) {
        slot.store(t << 3 | kind as u64, Ordering::Relaxed);
    }
}
