//! Every answer of the engine has its cause: `NotLocked` a witnessed
//! holder, `Failed(Refused)` an error reply actually sent, `NotReleased` a
//! refused release, `Released` no key left behind, `Lost` (with a hostile
//! node) a majority actually gone. Nodes report the error replies and the
//! `SET NX` misses as they happen.

use tracklock_core::{LockFailure, LockId, LostReason};

use super::{req_key, Checker, Facts};
use crate::sim::server::Refusal;

impl Checker {
    /// A node sent an error reply to a lock command of locker `r.locker`:
    /// every live request of that locker and name may have caused it.
    pub(super) fn refused(&mut self, r: Refusal) {
        let Some((_, name)) = self.rules.parse_key(&r.key) else {
            return;
        };
        for (_, q) in self.reqs.range_mut((r.locker, 0)..=(r.locker, u64::MAX)) {
            if q.name == name {
                q.refusals.push((r.node, r.message.clone(), r.release));
            }
        }
    }

    /// A `SET NX` of locker `l` found another value on `key`.
    pub(super) fn taken(&mut self, l: usize, key: &[u8]) {
        let Some((i, name)) = self.rules.parse_key(key) else {
            return;
        };
        for (_, q) in self.reqs.range_mut((l, 0)..=(l, u64::MAX)) {
            if q.name == name && !q.acquired && !q.ended {
                q.taken.insert(i);
            }
        }
    }

    /// `NotLocked`: another holder was witnessed on more than `n - m` of
    /// the name's keys during the attempt (a `SET NX` that found another
    /// value), or held it in this very locker (`Try` is then answered
    /// without asking the servers).
    pub(super) fn not_locked(&mut self, l: usize, id: LockId) {
        if self.rules.hostile_node.is_some() {
            return;
        }
        let key = req_key(l, id);
        let Some(r) = self.reqs.get(&key) else {
            return;
        };
        let (n, m) = (self.rules.keys, self.rules.majority);
        let name = r.name;
        let seen = r.taken.len();
        let local = self
            .reqs
            .range((l, 0)..=(l, u64::MAX))
            .any(|(k, q)| *k != key && q.name == name && q.belief.is_some());
        if seen > n - m || local {
            return;
        }
        let what = format!(
            "no NotLocked without a witnessed holder: seed {} L{l} got NotLocked for {:?} ({id:?}, {:?}) but a SET NX found another value on only {seen} of its {n} keys (needs more than {})",
            self.rules.seed,
            self.rules.names[name],
            r.mode,
            n - m
        );
        self.fail(what);
    }

    /// `Failed`: a `Refused(e)` names an error reply the node actually sent
    /// to this locker for this name while the request was alive; and no
    /// `Failed` at all for a request that saw no error reply, made while
    /// its locker was healthy and left undisturbed since (standalone).
    pub(super) fn failed(&mut self, l: usize, id: LockId, error: &LockFailure, f: &dyn Facts) {
        if self.rules.hostile_node.is_some() {
            return;
        }
        let Some(r) = self.reqs.get(&req_key(l, id)) else {
            return;
        };
        let name = self.rules.names[r.name].clone();
        let seed = self.rules.seed;
        if let LockFailure::Refused(e) = error {
            let node = f
                .engine_node(l, usize::from(e.node.0))
                .unwrap_or(usize::MAX);
            let msg = e.message.as_str();
            let sent = r
                .refusals
                .iter()
                .any(|(n, text, _)| *n == node && text.starts_with(msg));
            if !sent {
                let seen: Vec<String> = r
                    .refusals
                    .iter()
                    .map(|(n, t, _)| {
                        format!("node {n}: {}", t.chars().take(40).collect::<String>())
                    })
                    .collect();
                self.fail(format!(
                    "Failed(Refused) without that refusal: seed {seed} L{l} {id:?} ({name:?}) failed with {e} but node {node} sent no such error reply for it (error replies seen: {seen:?})"
                ));
                return;
            }
        }
        let undisturbed = !f.clustered()
            && r.refusals.is_empty()
            && r.healthy_start
            && (f.locker_disturb(l), f.nodes_disturb()) == r.disturb_start
            && f.healthy(l);
        if undisturbed {
            self.fail(format!(
                "Failed without a cause: seed {seed} L{l} {id:?} ({name:?}) failed with {error} though no node refused it and every node was up and connected since it was made"
            ));
        }
    }

    /// `NotReleased` only when a release script was refused.
    pub(super) fn not_released(&mut self, l: usize, id: LockId) {
        let hostile = self.rules.hostile_node.is_some();
        let Some(r) = self.reqs.get_mut(&req_key(l, id)) else {
            return;
        };
        r.not_released = true;
        if hostile || r.refusals.iter().any(|x| x.2) {
            return;
        }
        let name = &self.rules.names[r.name];
        let what = format!(
            "NotReleased without a refused release: seed {} L{l} {id:?} ({name:?}): no node refused its release script",
            self.rules.seed
        );
        self.fail(what);
    }

    /// `Released` without `NotReleased`: no key carrying the request's value
    /// is still live (written by the engine itself; keys written by bytes
    /// it had abandoned are orphans, not its doing).
    pub(super) fn released(&mut self, l: usize, id: LockId, f: &dyn Facts) {
        let key = req_key(l, id);
        if self.rules.hostile_node.is_some() {
            return;
        }
        let Some(r) = self.reqs.get(&key) else {
            return;
        };
        // (A tainted request's value may be misread: a force request of
        // the same locker writes keys "of this locker" too.)
        if r.not_released || r.successor.is_some() || r.tainted {
            return;
        }
        let Some(v) = r.value.clone() else {
            return;
        };
        if self.by_value.get(&v) != Some(&key) {
            return;
        }
        let name = r.name;
        for (n, k) in self.names_keys(name, f) {
            let Some(e) = f.peek(n, &k) else {
                continue;
            };
            if e.value != v || (e.orphan && !self.refused_values.contains(&v)) {
                continue;
            }
            let left = f.real_expiry(n, e).saturating_sub(f.now());
            self.fail(format!(
                "unlock: seed {} L{l} {id:?} ({:?}) ended with Released and no NotReleased, but {} on node {n} still carries its value ({:.3} ms left)",
                self.rules.seed,
                self.rules.names[name],
                String::from_utf8_lossy(&k),
                left as f64 / 1e6
            ));
            return;
        }
    }

    /// `Lost`: with a hostile node, a lock whose majority lives on the
    /// honest, healthy nodes must not be lost to garbage from the other
    /// one. The worker stops believing either way.
    pub(super) fn lost(&mut self, l: usize, id: LockId, reason: LostReason, f: &dyn Facts) {
        if self.rules.hostile_node.is_some()
            && reason != LostReason::Closed
            && self.honest_majority(l, id, f)
        {
            self.fail(format!(
                "hostile bytes: L{l} lost {id:?} ({reason:?}) though the honest node holds its majority"
            ));
            return;
        }
        self.belief_end(l, id);
    }

    /// True when the request's value sits on a majority of its keys on
    /// nodes other than the hostile one.
    fn honest_majority(&self, l: usize, id: LockId, f: &dyn Facts) -> bool {
        let Some(r) = self.reqs.get(&req_key(l, id)) else {
            return false;
        };
        let Some(v) = r.value.as_ref() else {
            return false;
        };
        let honest = self
            .names_keys(r.name, f)
            .iter()
            .filter(|(n, k)| {
                Some(*n) != self.rules.hostile_node && f.peek(*n, k).is_some_and(|e| &e.value == v)
            })
            .count();
        honest >= self.rules.majority
    }
}
