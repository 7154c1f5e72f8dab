//! A believer's value going away at a node: the lease check (it must not
//! expire first) and the prompt-loss check (the holder must learn of it
//! soon).

use super::{Checker, Facts, Note, Prompt, ReqKey};
use crate::sim::server::{Cause, Change};

impl Checker {
    /// A value went away at a node; `together`: how many keys with that
    /// value the same command removed.
    pub(super) fn change(&mut self, ch: &Change, together: usize, f: &dyn Facts) {
        if f.clustered() && !f.key_nodes(0, &ch.key).contains(&ch.node) {
            // A stale copy on a node that no longer serves the key's slot
            // (a lost replication of a migration's deletion): nobody reads it.
            return;
        }
        if ch.cause == Cause::DataLoss {
            self.data_loss = true;
        }
        let Some(&key) = self.by_value.get(&ch.old_value) else {
            return;
        };
        let Some(req) = self.reqs.get(&key) else {
            return;
        };
        if req.belief.is_none() {
            return;
        }
        let (name, tainted) = (req.name, req.tainted);
        let value = req.value.clone().expect("mapped");
        if ch.cause == Cause::DataLoss {
            // A delayed restart keeps this safe, but the lease no longer
            // matches what the nodes hold: exempt it from the lease check.
            if let Some(r) = self.reqs.get_mut(&key) {
                r.data_lost = true;
            }
            return;
        }
        let m = self.rules.majority;
        let backing = self.backing(name, &value, f);
        if backing >= m {
            return;
        }
        match ch.cause {
            Cause::DataLoss => {
                if let Some(r) = self.reqs.get_mut(&key) {
                    r.data_lost = true;
                }
            }
            Cause::Expired => {
                let data_lost = self.reqs[&key].data_lost;
                if !tainted
                    && !data_lost
                    && self.rules.hostile_node.is_none()
                    && self.rules.lease_checks
                {
                    self.fail(format!(
                        "lease: {} expired at node {} while L{} (lock {:#x}) still believes it holds {:?} ({backing} of {m} keys left)",
                        String::from_utf8_lossy(&ch.key),
                        ch.node,
                        key.0,
                        key.1,
                        self.rules.names[name]
                    ));
                }
            }
            Cause::Written(_) => {
                // The majority was whole right before this write: earlier
                // checks of this holder are settled (it took keys back).
                if backing + together >= m {
                    for i in 0..self.prompts.len() {
                        let Some(start) = self.prompts[i].as_ref().map(|p| p.req) else {
                            continue;
                        };
                        if self.chain_end(start) == key {
                            self.prompts[i] = None;
                            self.tally.prompt_checked += 1;
                        }
                    }
                }
                let l = key.0;
                if self.rules.hostile_node.is_some()
                    || !f.healthy(l)
                    || self.tracking_doubtful(l, f)
                {
                    self.tally.prompt_skipped += 1;
                    return;
                }
                let bound = self.prompt_bound(name, f);
                let now = f.now();
                self.trace(|| {
                    format!(
                        "check: prompt loss for L{} lock {:#x} by {:.3} ms ({} of {m} keys left after {})",
                        key.0,
                        key.1,
                        (now + bound) as f64 / 1e6,
                        backing,
                        String::from_utf8_lossy(&ch.key)
                    )
                });
                let index = self.prompts.len();
                self.prompts.push(Some(Prompt {
                    req: key,
                    since: now,
                    locker_disturb: f.locker_disturb(l),
                    nodes_disturb: f.nodes_disturb(),
                }));
                self.notes.push(Note::Recheck {
                    at: now + bound,
                    index,
                });
            }
        }
    }

    /// An extend script refused (`-CLUSTERDOWN`) did not run, so it did
    /// not re-arm the holder's tracking of the key; the engine retries it
    /// after `try_next_after` (it used to wait for the next periodic
    /// extension: seed 76924 of `sim_cluster`, an admin `DEL` unnoticed).
    /// Prompt-loss checks skip a locker until that retry had time to land.
    fn tracking_doubtful(&self, l: usize, f: &dyn Facts) -> bool {
        let Some(at) = f.extend_refused_at(l) else {
            return false;
        };
        f.now() < at + self.rules.extend_retry_window()
    }

    /// Pending prompt-loss checks whose holder has a whole majority again
    /// (it took keys back) are settled.
    pub(super) fn settle_prompts(&mut self, f: &dyn Facts) {
        let m = self.rules.majority;
        for i in 0..self.prompts.len() {
            let Some(start) = self.prompts[i].as_ref().map(|p| p.req) else {
                continue;
            };
            let at = self.chain_end(start);
            let whole = self
                .reqs
                .get(&at)
                .and_then(|r| r.value.as_ref().map(|v| (r.name, v.clone())))
                .is_some_and(|(name, v)| self.backing(name, &v, f) >= m);
            if whole {
                self.prompts[i] = None;
                self.tally.prompt_checked += 1;
            }
        }
    }

    /// The request a lease ended up with, following local hand-offs.
    fn chain_end(&self, mut at: ReqKey) -> ReqKey {
        while let Some(next) = self.reqs.get(&at).and_then(|r| r.successor) {
            at = next;
        }
        at
    }

    /// The prompt-loss bound for `name` as its nodes are now.
    fn prompt_bound(&self, name: usize, f: &dyn Facts) -> u64 {
        let script = self.rules.extend_script;
        let cold = self
            .names_keys(name, f)
            .iter()
            .any(|(n, _)| !f.knows_script(*n, script));
        self.rules.prompt_bound(cold)
    }

    pub(super) fn prompt_due(&mut self, index: usize, f: &dyn Facts) {
        let Some(p) = self.prompts.get_mut(index).and_then(Option::take) else {
            return;
        };
        let at = self.chain_end(p.req);
        let Some(req) = self.reqs.get(&at) else {
            self.tally.prompt_checked += 1;
            return;
        };
        if req.belief.is_none() {
            self.tally.prompt_checked += 1;
            return;
        }
        // Told, or it took a majority back meanwhile (periodic extension
        // re-takes free keys): either way its belief is backed again.
        if let Some(v) = req.value.clone() {
            if self.backing(req.name, &v, f) >= self.rules.majority {
                self.tally.prompt_checked += 1;
                return;
            }
        }
        let l = at.0;
        // (See `tracking_doubtful`: a re-check refused meanwhile.)
        let refused = f.extend_refused_at(l).is_some_and(|t| t >= p.since);
        if f.locker_disturb(l) != p.locker_disturb
            || f.nodes_disturb() != p.nodes_disturb
            || refused
        {
            self.tally.prompt_skipped += 1;
            return;
        }
        let name = &self.rules.names[req.name];
        let what = format!(
            "prompt loss: L{l} (lock {:#x}) still believes it holds {name:?} {:.3} ms after its majority was taken",
            at.1,
            (f.now() - p.since) as f64 / 1e6,
        );
        self.fail(what);
    }
}
