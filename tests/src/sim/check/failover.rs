//! Cluster failovers: asynchronous replication loses writes, and a lock
//! whose keys no longer protect it as long as its holder believes is
//! *undermined* (see the module docs of `check`).

use std::collections::BTreeSet;

use super::{Checker, Facts, LostKey, ReqKey};
use crate::sim::keys::key_name;
use crate::sim::server::Writer;

impl Checker {
    /// A failover lost `lost`: requests of the writers learn which of their
    /// keys went; a believer is undermined when the loss brought forward
    /// the time until which its keys hold the name (fewer than `m` left, or
    /// the `m`-th latest expiry earlier: losing one key's extension is
    /// enough when the others' TTLs are older).
    pub(super) fn failover_loss(&mut self, lost: Vec<LostKey>, f: &dyn Facts) {
        let mut values = BTreeSet::new();
        for lk in &lost {
            let Writer::Locker(l) = lk.writer else {
                continue;
            };
            let Some((i, name)) = self.rules.parse_key(&lk.key) else {
                continue;
            };
            self.trace(|| {
                format!(
                    "lost by the failover: {} (L{l}{})",
                    String::from_utf8_lossy(&lk.key),
                    if lk.shortened { ", extension" } else { "" }
                )
            });
            for (k, r) in self.reqs.iter_mut() {
                if k.0 == l && r.name == name {
                    r.failover_lost.insert((i, lk.value.clone()), lk.expiry);
                }
            }
            values.insert(lk.value.clone());
        }
        for v in values {
            let Some(&key) = self.by_value.get(&v) else {
                continue;
            };
            let Some(r) = self.reqs.get(&key) else {
                continue;
            };
            if r.belief.is_none() {
                continue;
            }
            let name = r.name;
            let (after, before) = (
                self.protection(key, name, &v, false, f),
                self.protection(key, name, &v, true, f),
            );
            if after < before {
                self.undermine(key, after, before);
            }
        }
    }

    pub(super) fn undermine(&mut self, key: ReqKey, after: u64, before: u64) {
        self.tally.undermined += 1;
        self.trace(|| {
            format!(
                "L{} lock {:#x} undermined: its keys hold it until {:.3} ms instead of {:.3} ms",
                key.0,
                key.1,
                after as f64 / 1e6,
                before as f64 / 1e6
            )
        });
        if self.rules.failover_exemption {
            if let Some(r) = self.reqs.get_mut(&key) {
                r.tainted = true;
                r.data_lost = true;
            }
        }
    }

    /// At `Acquired`, for a request some of whose keys a failover lost
    /// meanwhile: `(after, before)` when the loss brought forward the time
    /// until which its value holds the name.
    pub(super) fn undermined_at_acquire(
        &self,
        l: usize,
        key: ReqKey,
        name: usize,
        f: &dyn Facts,
    ) -> Option<(u64, u64)> {
        let mut counts = self.values_of(l, name, f);
        for (i, v) in self.reqs[&key].failover_lost.keys() {
            let k = key_name(&self.rules.prefix, *i, &self.rules.names[name]);
            let there = f
                .key_nodes(*i, &k)
                .iter()
                .any(|&n| f.peek(n, &k).is_some_and(|e| &e.value == v));
            if !there {
                *counts.entry(v.clone()).or_default() += 1;
            }
        }
        let v = self.majority_value(counts)?;
        let (after, before) = (
            self.protection(key, name, &v, false, f),
            self.protection(key, name, &v, true, f),
        );
        (after < before).then_some((after, before))
    }
}
