//! Medians, ratios, the printed table, the targets and the CSV.

use std::fmt::Write as _;

use crate::workload::{Scenario, Window};

/// One library on one runtime in one scenario, with its timed windows.
pub struct Row {
    /// The scenario.
    pub scenario: Scenario,
    /// Runtime label.
    pub runtime: &'static str,
    /// Library id.
    pub library: &'static str,
    /// A peer (not tracklock).
    pub peer: bool,
    /// The timed windows (warm-up excluded).
    pub windows: Vec<Window>,
}

/// The median of `v` (mean of the middle two for even lengths).
pub fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The `p`-quantile (0..=1, nearest rank) of sorted `v`.
pub fn quantile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

impl Row {
    /// Median over the windows of ops/s.
    pub fn ops_per_s(&self) -> f64 {
        median(self.windows.iter().map(Window::ops_per_s).collect())
    }

    /// Wall-clock time per operation across all tasks (Go's `ns/op` under
    /// `RunParallel`): `1e9 / ops_per_s`.
    pub fn ns_per_op(&self) -> f64 {
        1e9 / self.ops_per_s()
    }

    /// Median over the windows of allocations per operation.
    pub fn allocs_per_op(&self) -> f64 {
        median(self.windows.iter().map(Window::allocs_per_op).collect())
    }

    /// Median over the windows of the busiest task's share of the pairs.
    pub fn top_share(&self) -> f64 {
        median(self.windows.iter().map(|w| w.top_share).collect())
    }

    /// (max − min) / median of the windows' ops/s: how noisy the row was.
    pub fn spread(&self) -> f64 {
        let v: Vec<f64> = self.windows.iter().map(Window::ops_per_s).collect();
        let max = v.iter().copied().fold(f64::MIN, f64::max);
        let min = v.iter().copied().fold(f64::MAX, f64::min);
        (max - min) / median(v)
    }

    /// Hand-off latency quantiles (ns) over all windows' samples, with the
    /// sample count.
    pub fn handoff(&self) -> Option<(u64, u64, usize)> {
        let mut all: Vec<u64> = self
            .windows
            .iter()
            .flat_map(|w| w.handoffs.iter().copied())
            .collect();
        all.sort_unstable();
        Some((quantile(&all, 0.5)?, quantile(&all, 0.99)?, all.len()))
    }
}

/// Round-trip times measured in the run (ns).
pub struct Rtt {
    /// PING on a `redis` crate multiplexed connection from a tokio task.
    pub client: f64,
    /// PING on a blocking std socket (the floor: no runtime involved).
    pub raw: f64,
}

/// All results of the run.
pub struct Report {
    /// Every row, in run order.
    pub rows: Vec<Row>,
    /// Round-trip times.
    pub rtt: Rtt,
}

fn fmt_us(ns: f64) -> String {
    if ns >= 10_000_000.0 {
        format!("{:.0}ms", ns / 1e6)
    } else if ns >= 100_000.0 {
        format!("{:.0}µs", ns / 1e3)
    } else {
        format!("{:.1}µs", ns / 1e3)
    }
}

impl Report {
    /// Best peer ops/s in `scenario` (peers run on tokio).
    pub fn best_peer(&self, scenario: Scenario) -> Option<(&Row, f64)> {
        self.rows
            .iter()
            .filter(|r| r.peer && r.scenario == scenario)
            .map(|r| (r, r.ops_per_s()))
            .max_by(|a, b| a.1.total_cmp(&b.1))
    }

    /// `row`'s ops/s over the best peer's in its scenario.
    pub fn ratio(&self, row: &Row) -> Option<f64> {
        self.best_peer(row.scenario)
            .map(|(_, best)| row.ops_per_s() / best)
    }

    fn find(&self, scenario: Scenario, runtime: &str, library: &str) -> Option<&Row> {
        self.rows
            .iter()
            .find(|r| r.scenario == scenario && r.runtime == runtime && r.library == library)
    }

    fn runtimes(&self) -> Vec<&'static str> {
        let mut v: Vec<&'static str> = Vec::new();
        for r in self.rows.iter().filter(|r| !r.peer) {
            if !v.contains(&r.runtime) {
                v.push(r.runtime);
            }
        }
        v
    }

    fn scenarios(&self) -> Vec<Scenario> {
        Scenario::ALL
            .into_iter()
            .filter(|s| self.rows.iter().any(|r| r.scenario == *s))
            .collect()
    }

    /// The results table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let rtt = self.rtt.client;
        let _ = writeln!(
            out,
            "{:<17} {:<8} {:<20} {:>9} {:>9} {:>9} {:>8} {:>7} {:>7} {:>5} {:>17} {:>17}",
            "scenario",
            "runtime",
            "library",
            "ops/s",
            "ns/op",
            "allocs/op",
            "vs peer",
            "RTT/op",
            "spread",
            "top",
            "hand-off p50",
            "hand-off p99"
        );
        for sc in self.scenarios() {
            let _ = writeln!(out, "{}", "-".repeat(148));
            for r in self.rows.iter().filter(|r| r.scenario == sc) {
                let ratio = self.ratio(r).map_or("-".into(), |x| format!("{x:.2}x"));
                let (p50, p99) = match r.handoff() {
                    Some((p50, p99, _)) => (
                        format!("{} {:.1}RTT", fmt_us(p50 as f64), p50 as f64 / rtt),
                        format!("{} {:.1}RTT", fmt_us(p99 as f64), p99 as f64 / rtt),
                    ),
                    None => ("-".into(), "-".into()),
                };
                let _ = writeln!(
                    out,
                    "{:<17} {:<8} {:<20} {:>9.0} {:>9.0} {:>9.2} {:>8} {:>7.2} {:>6.0}% {:>4.0}% {:>17} {:>17}",
                    sc.name(),
                    r.runtime,
                    r.library,
                    r.ops_per_s(),
                    r.ns_per_op(),
                    r.allocs_per_op(),
                    ratio,
                    r.ns_per_op() / rtt,
                    r.spread() * 100.0,
                    r.top_share() * 100.0,
                    p50,
                    p99
                );
            }
        }
        out
    }

    /// The targets, each with the measured value and PASS / MISS. Never
    /// asserted: the numbers are noisy on a shared machine.
    pub fn targets(&self, main: &str, handoff_lib: &str) -> String {
        let mut out = String::new();
        let rts = self.runtimes();
        let rtt = self.rtt.client;
        let verdict = |ok: bool| if ok { "PASS" } else { "MISS" };
        let _ = writeln!(
            out,
            "Targets (library {main}; measured in this run, never asserted):"
        );
        for (sc, want) in [(Scenario::Contended, 1.5), (Scenario::Uncontended, 1.2)] {
            let Some((best, best_ops)) = self.best_peer(sc) else {
                continue;
            };
            let mut line = format!(
                "  {:<18} ops/s >= {want}x best peer ({} {:.0}/s, its busiest task {:.0}%):",
                sc.name(),
                best.library,
                best_ops,
                best.top_share() * 100.0
            );
            for rt in &rts {
                if let Some(r) = self.find(sc, rt, main) {
                    let x = r.ops_per_s() / best_ops;
                    let _ = write!(line, "  {rt} {x:.2}x {}", verdict(x >= want));
                }
            }
            let _ = writeln!(out, "{line}");
        }
        if let Some(sc) = self
            .scenarios()
            .into_iter()
            .find(|s| *s == Scenario::ContendedLockers)
        {
            let mut line = format!(
                "  {:<18} hand-off p50 <= 2 RTT (RTT {}):",
                sc.name(),
                fmt_us(rtt)
            );
            for rt in &rts {
                if let Some((p50, _, n)) = self.find(sc, rt, main).and_then(Row::handoff) {
                    let x = p50 as f64 / rtt;
                    let _ = write!(line, "  {rt} {x:.2} RTT {} (n={n})", verdict(x <= 2.0));
                }
            }
            let _ = writeln!(out, "{line}");
        }
        let mut line =
            "  allocations per lock+unlock <= 2 (worst scenario, every tracklock row):".to_owned();
        for rt in &rts {
            let worst = self
                .rows
                .iter()
                .filter(|r| !r.peer && r.runtime == *rt)
                .map(|r| (r.allocs_per_op(), r.scenario.name(), r.library))
                .max_by(|a, b| a.0.total_cmp(&b.0));
            if let Some((a, sc, lib)) = worst {
                let _ = write!(line, "  {rt} {a:.2} ({sc}, {lib}) {}", verdict(a <= 2.0));
            }
        }
        let _ = writeln!(out, "{line}");
        if rts.len() > 1 {
            let _ = writeln!(
                out,
                "  each runtime within 1.3x of the fastest runtime (fastest ops/s / this runtime's):"
            );
            for sc in self.scenarios() {
                let found: Vec<(&str, f64)> = rts
                    .iter()
                    .filter_map(|rt| self.find(sc, rt, main).map(|r| (*rt, r.ops_per_s())))
                    .collect();
                let fastest = found.iter().map(|x| x.1).fold(0.0, f64::max);
                let mut line = format!("    {:<18}", sc.name());
                for (rt, ops) in &found {
                    let x = fastest / ops;
                    let _ = write!(line, "  {rt} {x:.2}x {}", verdict(x <= 1.3));
                }
                let _ = writeln!(out, "{line}");
            }
        }
        if self.scenarios().contains(&Scenario::Contended) {
            let mut line = "  contended: round trips per hand-off = 1 / (ops/s x RTT):".to_owned();
            for rt in &rts {
                if let Some(r) = self.find(Scenario::Contended, rt, main) {
                    let _ = write!(line, "  {rt} {:.2}", 1e9 / (r.ops_per_s() * rtt));
                }
            }
            let _ = writeln!(out, "{line}");
            let mut line = format!("  (informational) contended with {handoff_lib}:");
            let before = line.len();
            for rt in &rts {
                if let Some(r) = self.find(Scenario::Contended, rt, handoff_lib) {
                    let _ = write!(
                        line,
                        "  {rt} {:.0}/s = {} best peer, {:.2} RTT per op",
                        r.ops_per_s(),
                        self.ratio(r).map_or("-".into(), |x| format!("{x:.2}x")),
                        1e9 / (r.ops_per_s() * rtt)
                    );
                }
            }
            if line.len() > before {
                let _ = writeln!(out, "{line}");
            }
        }
        out
    }

    /// CSV: `runtime,scenario,library,ops_per_s,ns_per_op,allocs_per_op,ratio_to_best_peer`.
    pub fn csv(&self) -> String {
        let mut out = String::from(
            "runtime,scenario,library,ops_per_s,ns_per_op,allocs_per_op,ratio_to_best_peer\n",
        );
        for r in &self.rows {
            let ratio = self.ratio(r).map_or(String::new(), |x| format!("{x:.4}"));
            let _ = writeln!(
                out,
                "{},{},{},{:.1},{:.1},{:.3},{}",
                r.runtime,
                r.scenario.name(),
                r.library,
                r.ops_per_s(),
                r.ns_per_op(),
                r.allocs_per_op(),
                ratio
            );
        }
        out
    }
}
