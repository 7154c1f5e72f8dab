//! Medians, ratios, the printed table, the targets and the CSV.

use std::fmt::Write as _;

use crate::workload::{hist_quantile, Scenario, Window, HIST_BUCKETS};

/// One library on one runtime in one scenario, with its timed windows.
pub(crate) struct Row {
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
pub(crate) fn median(mut v: Vec<f64>) -> f64 {
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
pub(crate) fn quantile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

impl Row {
    /// Median over the windows of ops/s.
    pub(crate) fn ops_per_s(&self) -> f64 {
        median(self.windows.iter().map(Window::ops_per_s).collect())
    }

    /// Wall-clock time per operation across all tasks (Go's `ns/op` under
    /// `RunParallel`): `1e9 / ops_per_s`.
    pub(crate) fn ns_per_op(&self) -> f64 {
        1e9 / self.ops_per_s()
    }

    /// Median over the windows of allocations per operation.
    pub(crate) fn allocs_per_op(&self) -> f64 {
        median(self.windows.iter().map(Window::allocs_per_op).collect())
    }

    /// Median over the windows of server commands per operation.
    pub(crate) fn server_cmds_per_op(&self) -> Option<f64> {
        let v: Option<Vec<f64>> = self
            .windows
            .iter()
            .map(Window::server_cmds_per_op)
            .collect();
        v.filter(|v| !v.is_empty()).map(median)
    }

    /// Medians over the windows of client and server CPU per operation, µs.
    pub(crate) fn cpu_us_per_op(&self) -> (f64, Option<f64>) {
        let client = median(
            self.windows
                .iter()
                .map(Window::client_cpu_us_per_op)
                .collect(),
        );
        let server: Option<Vec<f64>> = self
            .windows
            .iter()
            .map(Window::server_cpu_us_per_op)
            .collect();
        (client, server.filter(|v| !v.is_empty()).map(median))
    }

    /// Median over the windows of the busiest task's share of the pairs.
    pub(crate) fn top_share(&self) -> f64 {
        median(self.windows.iter().map(|w| w.top_share).collect())
    }

    /// (max − min) / median of the windows' ops/s: how noisy the row was.
    pub(crate) fn spread(&self) -> f64 {
        let v: Vec<f64> = self.windows.iter().map(Window::ops_per_s).collect();
        let max = v.iter().copied().fold(f64::MIN, f64::max);
        let min = v.iter().copied().fold(f64::MAX, f64::min);
        (max - min) / median(v)
    }

    /// False when a window had tasks that did not return within the grace
    /// period (cancelled) or completed no pair at all: the row did not
    /// finish, and shows `n/a`.
    pub(crate) fn finished(&self) -> bool {
        !self.windows.is_empty() && self.windows.iter().all(|w| w.stuck == 0 && w.ops > 0)
    }

    /// `p`-quantile (ns) of one lock+unlock, over every pair of the timed
    /// windows and every lock wait given up at a window's end (counted with
    /// the time it had waited). `true` when more than `1 - p` of the samples
    /// are such waits: the quantile is then only a lower bound.
    pub(crate) fn latency(&self, p: f64) -> Option<(u64, bool)> {
        let mut all = vec![0u64; HIST_BUCKETS];
        for w in &self.windows {
            for (a, b) in all.iter_mut().zip(&w.latency) {
                *a += b;
            }
        }
        let total: u64 = all.iter().sum();
        let lower = self.gave_up() as f64 > (1.0 - p) * total as f64;
        hist_quantile(&all, p).map(|ns| (ns, lower))
    }

    /// Lock waits given up at the windows' ends.
    pub(crate) fn gave_up(&self) -> u64 {
        self.windows.iter().map(|w| w.gave_up).sum()
    }

    /// Failed calls over the timed windows.
    pub(crate) fn errors(&self) -> u64 {
        self.windows.iter().map(|w| w.errors).sum()
    }

    /// The first failed call's text.
    pub(crate) fn first_error(&self) -> Option<&str> {
        self.windows.iter().find_map(|w| w.first_error.as_deref())
    }

    /// Tasks per window.
    pub(crate) fn tasks(&self) -> usize {
        self.windows.first().map_or(0, |w| w.tasks)
    }

    /// Fewest tasks that completed at least one pair, over the windows.
    pub(crate) fn tasks_done(&self) -> usize {
        self.windows.iter().map(|w| w.tasks_done).min().unwrap_or(0)
    }

    /// Fewest pairs of one task in any window.
    pub(crate) fn min_task_ops(&self) -> u64 {
        self.windows
            .iter()
            .map(|w| w.min_task_ops)
            .min()
            .unwrap_or(0)
    }

    /// Most pairs of one task in any window.
    pub(crate) fn max_task_ops(&self) -> u64 {
        self.windows
            .iter()
            .map(|w| w.max_task_ops)
            .max()
            .unwrap_or(0)
    }

    /// Most tasks cancelled after the grace period in one window.
    pub(crate) fn stuck(&self) -> usize {
        self.windows.iter().map(|w| w.stuck).max().unwrap_or(0)
    }

    /// Hand-off latency quantiles (ns) over all windows' samples, with the
    /// sample count.
    pub(crate) fn handoff(&self) -> Option<(u64, u64, usize)> {
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
pub(crate) struct Rtt {
    /// PING on a `redis` crate multiplexed connection from a tokio task.
    pub client: f64,
    /// PING on a blocking std socket (the floor: no runtime involved).
    pub raw: f64,
}

/// All results of the run.
pub(crate) struct Report {
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

/// A latency quantile, `>=` when it is only a lower bound.
fn fmt_lat(q: Option<(u64, bool)>) -> String {
    match q {
        None => "-".into(),
        Some((ns, false)) => fmt_us(ns as f64),
        Some((ns, true)) => format!(">={}", fmt_us(ns as f64)),
    }
}

impl Report {
    /// Best peer ops/s in `scenario` (peers run on tokio; peers that did
    /// not finish are left out).
    pub(crate) fn best_peer(&self, scenario: Scenario) -> Option<(&Row, f64)> {
        self.rows
            .iter()
            .filter(|r| r.peer && r.scenario == scenario && r.finished())
            .map(|r| (r, r.ops_per_s()))
            .max_by(|a, b| a.1.total_cmp(&b.1))
    }

    /// `row`'s ops/s over the best peer's in its scenario (none for a row
    /// that did not finish).
    pub(crate) fn ratio(&self, row: &Row) -> Option<f64> {
        if !row.finished() {
            return None;
        }
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
    pub(crate) fn table(&self) -> String {
        let mut out = String::new();
        let rtt = self.rtt.client;
        let _ = writeln!(
            out,
            "{:<17} {:<8} {:<20} {:>9} {:>9} {:>9} {:>7} {:>13} {:>8} {:>7} {:>9} {:>7} {:>5} {:>6} {:>17} {:>17}",
            "scenario",
            "runtime",
            "library",
            "ops/s",
            "ns/op",
            "allocs/op",
            "cmds/op",
            "cpu µs/op",
            "vs peer",
            "RTT/op",
            "p99",
            "spread",
            "top",
            "errors",
            "hand-off p50",
            "hand-off p99"
        );
        for sc in self.scenarios() {
            let _ = writeln!(out, "{}", "-".repeat(187));
            for r in self.rows.iter().filter(|r| r.scenario == sc) {
                let ratio = self.ratio(r).map_or("-".into(), |x| format!("{x:.2}x"));
                let (p50, p99) = match r.handoff() {
                    Some((p50, p99, _)) => (
                        format!("{} {:.1}RTT", fmt_us(p50 as f64), p50 as f64 / rtt),
                        format!("{} {:.1}RTT", fmt_us(p99 as f64), p99 as f64 / rtt),
                    ),
                    None => ("-".into(), "-".into()),
                };
                let lat99 = fmt_lat(r.latency(0.99));
                let cpu = match r.cpu_us_per_op() {
                    (c, Some(s)) => format!("{c:.1}+{s:.1}"),
                    (c, None) => format!("{c:.1}+-"),
                };
                let (ops, nsop, rttop) = if r.finished() {
                    (
                        format!("{:.0}", r.ops_per_s()),
                        format!("{:.0}", r.ns_per_op()),
                        format!("{:.2}", r.ns_per_op() / rtt),
                    )
                } else {
                    ("n/a".into(), "n/a".into(), "n/a".into())
                };
                let _ = writeln!(
                    out,
                    "{:<17} {:<8} {:<20} {:>9} {:>9} {:>9.2} {:>7} {:>13} {:>8} {:>7} {:>9} {:>6.0}% {:>4.0}% {:>6} {:>17} {:>17}",
                    sc.name(),
                    r.runtime,
                    r.library,
                    ops,
                    nsop,
                    r.allocs_per_op(),
                    r.server_cmds_per_op()
                        .map_or("-".into(), |c| format!("{c:.2}")),
                    cpu,
                    ratio,
                    rttop,
                    lat99,
                    r.spread() * 100.0,
                    r.top_share() * 100.0,
                    r.errors(),
                    p50,
                    p99
                );
            }
        }
        out
    }

    /// Per-task progress of the many-task scenarios, and every row that
    /// errored or did not finish, with its first error.
    pub(crate) fn progress(&self) -> String {
        let mut out = String::new();
        let rows: Vec<&Row> = self
            .rows
            .iter()
            .filter(|r| r.scenario.is_many() || r.errors() > 0 || !r.finished())
            .collect();
        if rows.is_empty() {
            return out;
        }
        let _ = writeln!(
            out,
            "Per-task progress (done = tasks with >= 1 lock+unlock, worst window; ops/task: fewest and \
             most of one task in any window;\ngave up = lock waits dropped at windows' ends (all windows); \
             stuck = tasks cancelled after the grace period past a\nwindow's end, worst window; \
             p50 of one lock+unlock, >= when more than half the samples are given-up waits):"
        );
        let _ = writeln!(
            out,
            "{:<17} {:<8} {:<20} {:>6} {:>11} {:>15} {:>7} {:>5} {:>6} {:>9}  status",
            "scenario",
            "runtime",
            "library",
            "tasks",
            "done",
            "ops/task",
            "gave up",
            "stuck",
            "errors",
            "p50",
        );
        for r in rows {
            let status = if !r.finished() {
                let measured = if r.windows.iter().all(|w| w.ops > 0) {
                    format!("{:.0} ops/s measured", r.ops_per_s())
                } else {
                    "a window completed no pair".into()
                };
                format!("DID NOT FINISH ({measured})")
            } else if r.tasks_done() < r.tasks() {
                "some tasks made no progress in a window".into()
            } else {
                "ok".into()
            };
            let err = r
                .first_error()
                .map_or(String::new(), |e| format!("; first error: {e}"));
            let _ = writeln!(
                out,
                "{:<17} {:<8} {:<20} {:>6} {:>11} {:>15} {:>7} {:>5} {:>6} {:>9}  {status}{err}",
                r.scenario.name(),
                r.runtime,
                r.library,
                r.tasks(),
                format!("{}/{}", r.tasks_done(), r.tasks()),
                format!("{}..{}", r.min_task_ops(), r.max_task_ops()),
                r.gave_up(),
                r.stuck(),
                r.errors(),
                fmt_lat(r.latency(0.5)),
            );
        }
        out
    }

    /// The project's goals for tracklock (issue 13), each with the measured
    /// value and `met` / `not yet`. Never asserted: the numbers are noisy
    /// on a shared machine, and a goal not reached yet is work to do, not a
    /// failed run.
    pub(crate) fn targets(&self, main: &str, handoff_lib: &str) -> String {
        let mut out = String::new();
        let rts = self.runtimes();
        let rtt = self.rtt.client;
        let verdict = |ok: bool| if ok { "met" } else { "not yet" };
        let _ = writeln!(
            out,
            "Goals (the project's performance goals for {main}, not pass/fail checks of this run: \
             `not yet` marks a goal still being worked on; measured here, never asserted):"
        );
        for (sc, want) in [(Scenario::Contended, 2.5), (Scenario::Uncontended, 1.2)] {
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
            "  allocations per lock+unlock <= 2 (worst scenario, every plain tracklock row; -tls rows \
             add rustls's own):"
                .to_owned();
        for rt in &rts {
            let worst = self
                .rows
                .iter()
                .filter(|r| !r.peer && r.runtime == *rt && !r.library.ends_with("-tls"))
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
            let mut line = format!("  contended with {handoff_lib}: ops/s >= 20x best peer:");
            let before = line.len();
            for rt in &rts {
                if let Some(r) = self.find(Scenario::Contended, rt, handoff_lib) {
                    let x = self.ratio(r);
                    let _ = write!(
                        line,
                        "  {rt} {:.0}/s = {} {}, {:.2} RTT per op",
                        r.ops_per_s(),
                        x.map_or("-".into(), |x| format!("{x:.2}x")),
                        verdict(x.is_some_and(|x| x >= 20.0)),
                        1e9 / (r.ops_per_s() * rtt)
                    );
                }
            }
            if line.len() > before {
                let _ = writeln!(out, "{line}");
            }
        }
        let (many, un) = (Scenario::Many, Scenario::Uncontended);
        if self.scenarios().contains(&many) && self.scenarios().contains(&un) {
            let mut line = format!(
                "  {:<18} ops/s >= half the {} row's:",
                many.name(),
                un.name()
            );
            for rt in &rts {
                if let (Some(m), Some(u)) = (self.find(many, rt, main), self.find(un, rt, main)) {
                    let x = m.ops_per_s() / u.ops_per_s();
                    let _ = write!(line, "  {rt} {x:.2}x {}", verdict(x >= 0.5));
                }
            }
            let _ = writeln!(out, "{line}");
        }
        out
    }

    /// CSV: `runtime,scenario,library,ops_per_s,ns_per_op,allocs_per_op,ratio_to_best_peer,
    /// p99_latency_us,p99_is_lower_bound,gave_up,errors,tasks,tasks_done,min_task_ops,
    /// max_task_ops,stuck,rtt_us,handoff_p50_rtt,handoff_p99_rtt,server_cmds_per_op,top,
    /// client_cpu_us_per_op,server_cpu_us_per_op`.
    /// A row that did not finish has empty `ops_per_s`, `ns_per_op` and ratio; the
    /// hand-off columns are empty outside `contended-lockers`. `rtt_us` is the run's
    /// round trip (the same on every row), `top` the busiest task's share (0..1).
    pub(crate) fn csv(&self) -> String {
        let mut out = String::from(
            "runtime,scenario,library,ops_per_s,ns_per_op,allocs_per_op,ratio_to_best_peer,\
             p99_latency_us,p99_is_lower_bound,gave_up,errors,tasks,tasks_done,min_task_ops,\
             max_task_ops,stuck,rtt_us,handoff_p50_rtt,handoff_p99_rtt,server_cmds_per_op,top,\
             client_cpu_us_per_op,server_cpu_us_per_op\n",
        );
        let rtt = self.rtt.client;
        for r in &self.rows {
            let ratio = self.ratio(r).map_or(String::new(), |x| format!("{x:.4}"));
            let (ops, nsop) = if r.finished() {
                (
                    format!("{:.1}", r.ops_per_s()),
                    format!("{:.1}", r.ns_per_op()),
                )
            } else {
                (String::new(), String::new())
            };
            let (p99, p99_lower) = r
                .latency(0.99)
                .map_or((String::new(), false), |(ns, lower)| {
                    (format!("{:.1}", ns as f64 / 1e3), lower)
                });
            let (h50, h99) = r
                .handoff()
                .map_or((String::new(), String::new()), |(a, b, _)| {
                    (
                        format!("{:.2}", a as f64 / rtt),
                        format!("{:.2}", b as f64 / rtt),
                    )
                });
            let cmds = r
                .server_cmds_per_op()
                .map_or(String::new(), |c| format!("{c:.3}"));
            let (ccpu, scpu) = r.cpu_us_per_op();
            let scpu = scpu.map_or(String::new(), |c| format!("{c:.2}"));
            let _ = writeln!(
                out,
                "{},{},{},{},{},{:.3},{},{},{},{},{},{},{},{},{},{},{:.1},{},{},{},{:.3},{:.2},{}",
                r.runtime,
                r.scenario.name(),
                r.library,
                ops,
                nsop,
                r.allocs_per_op(),
                ratio,
                p99,
                p99_lower,
                r.gave_up(),
                r.errors(),
                r.tasks(),
                r.tasks_done(),
                r.min_task_ops(),
                r.max_task_ops(),
                r.stuck(),
                rtt / 1e3,
                h50,
                h99,
                cmds,
                r.top_share(),
                ccpu,
                scpu
            );
        }
        out
    }
}
