//! What the nodes hold of a lock, read through [`Facts`].

use std::collections::BTreeMap;

use super::{Checker, Facts, ReqKey};
use crate::sim::keys::key_name;
use crate::sim::server::Writer;

impl Checker {
    /// `(node, key)` for every key of `name` and every node it may be on
    /// (two while its cluster slot migrates: it is on one of them).
    pub(super) fn names_keys(&self, name: usize, f: &dyn Facts) -> Vec<(usize, Vec<u8>)> {
        let mut out = Vec::new();
        for i in 0..self.rules.keys {
            let key = key_name(&self.rules.prefix, i, &self.rules.names[name]);
            for n in f.key_nodes(i, &key) {
                out.push((n, key.clone()));
            }
        }
        out
    }

    /// How many keys of `name` carry `value` right now.
    pub(super) fn backing(&self, name: usize, value: &[u8], f: &dyn Facts) -> usize {
        self.names_keys(name, f)
            .iter()
            .filter(|(n, k)| f.peek(*n, k).is_some_and(|e| e.value == value))
            .count()
    }

    /// Some key of `name` is live on some node.
    pub(super) fn any_key(&self, name: usize, f: &dyn Facts) -> bool {
        self.names_keys(name, f)
            .iter()
            .any(|(n, k)| f.peek(*n, k).is_some())
    }

    /// How many keys of `name` carry each value written by locker `l`.
    pub(super) fn values_of(
        &self,
        l: usize,
        name: usize,
        f: &dyn Facts,
    ) -> BTreeMap<Vec<u8>, usize> {
        let mut counts: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
        for (n, k) in self.names_keys(name, f) {
            if let Some(e) = f.peek(n, &k) {
                if e.writer == Writer::Locker(l) {
                    *counts.entry(e.value.clone()).or_default() += 1;
                }
            }
        }
        counts
    }

    /// The value of `counts` on a majority of keys (the one on most; the
    /// last of equals).
    pub(super) fn majority_value(&self, counts: BTreeMap<Vec<u8>, usize>) -> Option<Vec<u8>> {
        let m = self.rules.majority;
        counts
            .into_iter()
            .filter(|(_, c)| *c >= m)
            .max_by_key(|(_, c)| *c)
            .map(|(v, _)| v)
    }

    /// Until when `value` holds `name`: the `m`-th latest real expiry of
    /// the keys carrying it (0 with fewer than `m`). With `restore`, the keys
    /// a failover lost for request `req` count as they were before.
    pub(super) fn protection(
        &self,
        req: ReqKey,
        name: usize,
        value: &[u8],
        restore: bool,
        f: &dyn Facts,
    ) -> u64 {
        let lost = &self.reqs[&req].failover_lost;
        let mut expiries: Vec<u64> = (0..self.rules.keys)
            .map(|i| {
                let key = key_name(&self.rules.prefix, i, &self.rules.names[name]);
                let now = f
                    .key_nodes(i, &key)
                    .into_iter()
                    .find_map(|n| {
                        f.peek(n, &key)
                            .filter(|e| e.value == value)
                            .map(|e| f.real_expiry(n, e))
                    })
                    .unwrap_or(0);
                let before = match restore {
                    true => lost.get(&(i, value.to_vec())).copied().unwrap_or(0),
                    false => 0,
                };
                now.max(before)
            })
            .collect();
        expiries.sort_unstable_by(|a, b| b.cmp(a));
        expiries.get(self.rules.majority - 1).copied().unwrap_or(0)
    }

    /// True when a believer's value sits on a key stored at node `n`.
    pub(crate) fn held_on(&self, n: usize, f: &dyn Facts) -> bool {
        self.reqs.values().any(|r| {
            let Some(v) = r.value.as_ref().filter(|_| r.belief.is_some()) else {
                return false;
            };
            self.names_keys(r.name, f)
                .iter()
                .any(|(node, k)| *node == n && f.peek(n, k).is_some_and(|e| &e.value == v))
        })
    }
}
