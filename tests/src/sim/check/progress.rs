//! Progress: a free name with healthy waiters gets taken (liveness), and
//! every call ends once nothing is in its way.

use tracklock_core::LockMode;

use super::{Checker, Facts};

impl Checker {
    pub(super) fn liveness(&mut self, f: &dyn Facts) {
        if self.rules.hostile_node.is_some() {
            return;
        }
        for name in 0..self.rules.names.len() {
            let waiters: Vec<usize> = self
                .reqs
                .iter()
                .filter(|(_, r)| {
                    r.name == name && r.mode == LockMode::Wait && !r.ended && !r.acquired
                })
                .map(|(k, _)| k.0)
                .collect();
            let free = !self.believed(name) && !self.any_key(name, f);
            let ok = waiters.is_empty() || !free || !waiters.iter().all(|&l| f.healthy(l));
            if ok {
                self.stuck[name] = None;
                continue;
            }
            self.tally.liveness_samples += 1;
            let now = f.now();
            let since = *self.stuck[name].get_or_insert(now);
            let bound = self.rules.liveness_bound();
            if now - since > bound {
                self.fail(format!(
                    "liveness: {:?} has been free for {:.1} ms with healthy waiters (lockers {waiters:?}) and nobody acquired it (bound {:.1} ms)",
                    self.rules.names[name],
                    (now - since) as f64 / 1e6,
                    bound as f64 / 1e6
                ));
                return;
            }
        }
    }

    /// Some worker believes it holds `name`.
    fn believed(&self, name: usize) -> bool {
        self.reqs
            .values()
            .any(|r| r.name == name && r.belief.is_some())
    }

    /// Every call ends (`Acquired`, `NotLocked`, `Failed`, `Closed`, or a
    /// cancel) within `calls_bound` of the last moment something was in its
    /// way: its locker unhealthy (paused, starved, a link down, a node down
    /// or refusing, an error-reply window less than `BACKOFF_MAX` ago) or
    /// disturbed, any node disturbed, or, for `Wait`, the name held (a
    /// believer, or a live key of the name anywhere).
    pub(super) fn calls_end(&mut self, f: &dyn Facts) {
        if self.rules.hostile_node.is_some() {
            return;
        }
        let busy: Vec<bool> = (0..self.rules.names.len())
            .map(|name| self.believed(name) || self.any_key(name, f))
            .collect();
        let healthy: Vec<bool> = (0..f.locker_count()).map(|l| f.healthy(l)).collect();
        let nodes = f.nodes_disturb();
        let bound = self.rules.calls_bound();
        let now = f.now();
        let mut late = None;
        for (k, r) in self.reqs.iter_mut() {
            if r.ended || r.acquired {
                continue;
            }
            let d = (f.locker_disturb(k.0), nodes);
            let blocked = !healthy[k.0] || (r.mode == LockMode::Wait && busy[r.name]);
            if blocked || d != r.disturb_seen {
                r.clock_from = now;
                r.disturb_seen = d;
            } else if now - r.clock_from > bound && late.is_none() {
                late = Some((*k, r.name, r.mode, now - r.clock_from));
            }
        }
        if let Some((k, name, mode, d)) = late {
            self.fail(format!(
                "every call ends: seed {} L{} lock {:#x} ({:?}, {mode:?}) still pending {:.1} ms after the last thing in its way (bound {:.1} ms)",
                self.rules.seed,
                k.0,
                k.1,
                self.rules.names[name],
                d as f64 / 1e6,
                bound as f64 / 1e6
            ));
        }
    }
}
