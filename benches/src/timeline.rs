//! `--timeline` (feature `timeline`): where one contended hand-off of
//! `tracklock-m1` spends its time, per runtime, from timestamps of the
//! workers (lock returned, unlock called) and of the drivers (woken, socket
//! written, socket read).
//!
//! One hand-off, with one locker and one name: the holder calls `unlock`
//! (U); the driver wakes (K) and writes the release with the next waiter's
//! acquisition pipelined behind it (W); it reads the replies (R); the next
//! holder's `lock` returns (A) and it calls `unlock` (the next U).

use std::fmt::Write as _;

use tracklock::timeline::Kind;

use crate::report::median;

/// Medians (ns) of the hand-off's segments, and how many hand-offs.
pub(crate) struct Breakdown {
    /// Unlock called → driver woken.
    pub unlock_to_woken: f64,
    /// Driver woken → bytes written.
    pub woken_to_written: f64,
    /// Written → replies read (network and server).
    pub written_to_read: f64,
    /// Read → next holder's lock returned.
    pub read_to_acquired: f64,
    /// Lock returned → its unlock called.
    pub acquired_to_unlock: f64,
    /// Driver writes per hand-off (all writes / hand-offs).
    pub writes_per_handoff: f64,
    /// Driver reads per hand-off.
    pub reads_per_handoff: f64,
    /// Hand-offs found.
    pub n: usize,
}

/// Finds the hand-offs in `recs` (sorted by time).
pub(crate) fn analyse(recs: &[(u64, Kind)]) -> Option<Breakdown> {
    let next = |from: usize, kind: Kind| {
        recs[from..]
            .iter()
            .position(|r| r.1 == kind)
            .map(|p| from + p)
    };
    let (mut uk, mut kw, mut wr, mut ra, mut au) = (vec![], vec![], vec![], vec![], vec![]);
    let mut i = next(0, Kind::Unlock)?;
    while let Some(w) = next(i, Kind::Wrote) {
        // The wake-up that led to the write: the last one before it.
        let k = recs[i..w].iter().rposition(|r| r.1 == Kind::DriverWoken);
        let Some(r) = next(w, Kind::Read) else { break };
        let Some(a) = next(r, Kind::Acquired) else {
            break;
        };
        let Some(u) = next(a, Kind::Unlock) else {
            break;
        };
        let t = |j: usize| recs[j].0 as f64;
        if let Some(k) = k {
            uk.push(t(i + k) - t(i));
            kw.push(t(w) - t(i + k));
        }
        wr.push(t(r) - t(w));
        ra.push(t(a) - t(r));
        au.push(t(u) - t(a));
        i = u;
    }
    let n = wr.len();
    if n == 0 {
        return None;
    }
    let count = |kind: Kind| recs.iter().filter(|r| r.1 == kind).count() as f64;
    let handoffs = count(Kind::Unlock).max(1.0);
    Some(Breakdown {
        unlock_to_woken: median(uk),
        woken_to_written: median(kw),
        written_to_read: median(wr),
        read_to_acquired: median(ra),
        acquired_to_unlock: median(au),
        writes_per_handoff: count(Kind::Wrote) / handoffs,
        reads_per_handoff: count(Kind::Read) / handoffs,
        n,
    })
}

/// The breakdowns as a table, in µs and in round trips (`rtt`, ns).
pub(crate) fn table(rows: &[(&str, &str, Breakdown)], rtt: f64) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Hand-off timeline (contended, one locker; medians, µs / RTT; RTT {:.1}µs):",
        rtt / 1e3
    );
    let _ = writeln!(
        out,
        "{:<8} {:<18} {:>15} {:>15} {:>15} {:>15} {:>15} {:>13} {:>7} {:>7}",
        "runtime",
        "library",
        "unlock→woken",
        "woken→written",
        "written→read",
        "read→acquired",
        "acquired→unlock",
        "sum",
        "wr/ho",
        "rd/ho"
    );
    for (rt, lib, b) in rows {
        let f = |ns: f64| format!("{:.1} {:.2}", ns / 1e3, ns / rtt);
        let sum = b.unlock_to_woken
            + b.woken_to_written
            + b.written_to_read
            + b.read_to_acquired
            + b.acquired_to_unlock;
        let _ = writeln!(
            out,
            "{:<8} {:<18} {:>15} {:>15} {:>15} {:>15} {:>15} {:>13} {:>7.2} {:>7.2}",
            rt,
            lib,
            f(b.unlock_to_woken),
            f(b.woken_to_written),
            f(b.written_to_read),
            f(b.read_to_acquired),
            f(b.acquired_to_unlock),
            f(sum),
            b.writes_per_handoff,
            b.reads_per_handoff
        );
        let _ = b.n;
    }
    out
}
