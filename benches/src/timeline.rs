//! `--timeline` (feature `timeline`): where one contended hand-off of
//! `tracklock-m1` spends its time, per runtime, from timestamps of the
//! workers (lock returned, unlock called) and of the locker's socket writes
//! and reads (and the drivers' wake-ups).
//!
//! One hand-off, with one locker and one name: the holder calls `unlock`
//! (U); the release, with the next waiter's acquisition pipelined behind it,
//! is written (W) — from the holder's own task when the socket takes it at
//! once, else by the node's driver after a wake-up (K); the driver reads the
//! replies (R); the next holder's `lock` returns (A) and it calls `unlock`
//! (the next U).

use std::fmt::Write as _;

use tracklock::timeline::Kind;

use crate::report::median;

/// Medians (ns) of the hand-off's segments, and how many hand-offs.
pub(crate) struct Breakdown {
    /// Unlock called → bytes written.
    pub unlock_to_written: f64,
    /// Share of hand-offs whose write waited for a driver wake-up.
    pub via_driver: f64,
    /// Written → replies read (network and server).
    pub written_to_read: f64,
    /// Read → next holder's lock returned.
    pub read_to_acquired: f64,
    /// Lock returned → its unlock called.
    pub acquired_to_unlock: f64,
    /// Socket writes per hand-off (all writes / hand-offs).
    pub writes_per_handoff: f64,
    /// Socket reads per hand-off.
    pub reads_per_handoff: f64,
    /// Driver wake-ups by its signal or timer per hand-off (not by a read).
    pub wakes_per_handoff: f64,
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
    let (mut uw, mut wr, mut ra, mut au) = (vec![], vec![], vec![], vec![]);
    let mut woken = 0usize;
    let mut i = next(0, Kind::Unlock)?;
    while let Some(w) = next(i, Kind::Wrote) {
        let Some(r) = next(w, Kind::Read) else { break };
        let Some(a) = next(r, Kind::Acquired) else {
            break;
        };
        let Some(u) = next(a, Kind::Unlock) else {
            break;
        };
        let t = |j: usize| recs[j].0 as f64;
        if recs[i..w].iter().any(|r| r.1 == Kind::DriverWoken) {
            woken += 1;
        }
        uw.push(t(w) - t(i));
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
        unlock_to_written: median(uw),
        via_driver: woken as f64 / n as f64,
        written_to_read: median(wr),
        read_to_acquired: median(ra),
        acquired_to_unlock: median(au),
        writes_per_handoff: count(Kind::Wrote) / handoffs,
        reads_per_handoff: count(Kind::Read) / handoffs,
        wakes_per_handoff: count(Kind::DriverWoken) / handoffs,
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
        "{:<8} {:<18} {:>15} {:>11} {:>15} {:>15} {:>15} {:>13} {:>7} {:>7} {:>7}",
        "runtime",
        "library",
        "unlock→written",
        "via driver",
        "written→read",
        "read→acquired",
        "acquired→unlock",
        "sum",
        "wr/ho",
        "rd/ho",
        "wk/ho"
    );
    for (rt, lib, b) in rows {
        let f = |ns: f64| format!("{:.1} {:.2}", ns / 1e3, ns / rtt);
        let sum =
            b.unlock_to_written + b.written_to_read + b.read_to_acquired + b.acquired_to_unlock;
        let _ = writeln!(
            out,
            "{:<8} {:<18} {:>15} {:>10.0}% {:>15} {:>15} {:>15} {:>13} {:>7.2} {:>7.2} {:>7.2}",
            rt,
            lib,
            f(b.unlock_to_written),
            b.via_driver * 100.0,
            f(b.written_to_read),
            f(b.read_to_acquired),
            f(b.acquired_to_unlock),
            f(sum),
            b.writes_per_handoff,
            b.reads_per_handoff,
            b.wakes_per_handoff
        );
        let _ = b.n;
    }
    out
}
