//! `Acquired`: mutual exclusion and backing, and local hand-offs, which
//! pass a lease on from one request to the next.

use tracklock_core::LockId;

use super::{req_key, Checker, Facts, ReqKey};

impl Checker {
    pub(super) fn acquired(&mut self, l: usize, id: LockId, f: &dyn Facts) {
        let key = req_key(l, id);
        let Some(req) = self.reqs.get(&key) else {
            self.fail(format!("L{l}: Acquired for a request never made ({id:?})"));
            return;
        };
        let (name, mut tainted) = (req.name, req.tainted);
        let from = self
            .handoff_from
            .filter(|from| from.0 == l && self.reqs.get(from).is_some_and(|r| r.name == name));
        if let Some(from) = from {
            tainted = self.hand_off(from, key, f.now());
        }
        // Keys of this attempt lost by a failover before it was answered.
        if from.is_none() && !self.reqs[&key].failover_lost.is_empty() {
            if let Some((after, before)) = self.undermined_at_acquire(l, key, name, f) {
                self.undermine(key, after, before);
                tainted = self.reqs[&key].tainted;
            }
        }
        // Mutual exclusion.
        let others: Vec<(ReqKey, bool)> = self
            .reqs
            .iter()
            .filter(|(k, r)| **k != key && r.name == name && r.belief.is_some())
            .map(|(k, r)| (*k, r.tainted))
            .collect();
        for (other, other_tainted) in others {
            if !tainted && !other_tainted {
                self.fail(format!(
                    "mutual exclusion: L{l} acquired {:?} ({id:?}) while L{} (lock {:#x}) still believes it holds it",
                    self.rules.names[name], other.0, other.1
                ));
                return;
            }
        }
        if from.is_some() {
            return;
        }
        // Which value is ours: a majority of the name's keys written by this locker.
        let m = self.rules.majority;
        let value = self.majority_value(self.values_of(l, name, f));
        if value.is_none()
            && !tainted
            && !self.data_loss
            && self.rules.hostile_node.is_none()
            && self.rules.lease_checks
        {
            self.fail(format!(
                "backing: L{l} acquired {:?} ({id:?}) but fewer than {m} of its keys carry one value of L{l}",
                self.rules.names[name]
            ));
            return;
        }
        let req = self.reqs.get_mut(&key).expect("present");
        req.belief = Some(f.now());
        req.acquired = true;
        if let Some(v) = value {
            req.value = Some(v.clone());
            self.by_value.insert(v, key);
        }
    }

    /// A local hand-off passes the lease of `from` on to `to`, with
    /// everything it carries; returns whether `to` is now tainted.
    fn hand_off(&mut self, from: ReqKey, to: ReqKey, now: u64) -> bool {
        self.tally.handoffs += 1;
        let (t, v, d, lost, refusals) = {
            let r = &self.reqs[&from];
            (
                r.tainted,
                r.value.clone(),
                r.data_lost,
                r.failover_lost.clone(),
                r.refusals.clone(),
            )
        };
        self.reqs.get_mut(&from).expect("present").successor = Some(to);
        let req = self.reqs.get_mut(&to).expect("present");
        req.tainted |= t;
        req.data_lost = d;
        req.failover_lost.extend(lost);
        // The keys move on with their history: a release refused
        // before the hand-off is reported by the successor.
        req.refusals.extend(refusals);
        req.value = v.clone();
        req.belief = Some(now);
        req.acquired = true;
        let tainted = req.tainted;
        if let Some(v) = v {
            self.by_value.insert(v, to);
        }
        tainted
    }
}
