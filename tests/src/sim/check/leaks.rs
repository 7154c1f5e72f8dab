//! Nothing left behind: no lock key once every engine settled, nothing at
//! all past every TTL, and every engine idle and connected at the end.

use super::rules::MS;
use super::{Checker, Facts};
use crate::sim::server::Writer;
use crate::sim::world::LinkState;

impl Checker {
    /// After every engine settled: no key written by a locker remains.
    pub(super) fn no_leaks(&mut self, f: &dyn Facts) {
        for n in 0..f.node_count() {
            // A replica only mirrors its master.
            if Some(n) == self.rules.hostile_node || f.is_replica(n) {
                continue;
            }
            for (k, e) in f.live_keys(n) {
                if self.rules.is_counter(&k) {
                    continue;
                }
                if f.clustered() && !f.key_nodes(0, &k).contains(&n) {
                    // A stale copy in a slot the node does not serve.
                    continue;
                }
                if let Writer::Locker(l) = e.writer {
                    if e.orphan {
                        // Written by bytes that were still in flight (or
                        // buffered by a paused node) after the engine had
                        // dropped the connection: reported, not a violation.
                        self.tally.orphan_writes += 1;
                        continue;
                    }
                    self.fail(format!(
                        "leak: {} (written by L{l}) remains on node {n} after every engine settled",
                        String::from_utf8_lossy(&k)
                    ));
                    return;
                }
            }
        }
    }

    /// Past every TTL: nothing remains, every engine idle.
    pub(super) fn final_check(&mut self, f: &dyn Facts) {
        for n in 0..f.node_count() {
            let left = f
                .live_keys(n)
                .into_iter()
                .find(|(k, _)| !self.rules.is_counter(k));
            if let Some((k, _)) = left {
                self.fail(format!(
                    "leak: {} remains on node {n} past every TTL",
                    String::from_utf8_lossy(&k)
                ));
                return;
            }
        }
        for l in 0..f.locker_count() {
            let (c, i) = f.engine_load(l);
            if c != 0 || !i {
                self.fail(format!("L{l}: lock_count {c}, idle {i} at the end"));
                return;
            }
            // Everything healed long ago: every connection is usable again
            // (but a cluster engine may just have learned a node from its
            // periodic topology query: give the handshake a second).
            // Retired nodes excepted (the world retires exactly those).
            for n in 0..f.engine_nodes(l) {
                let retired = f.link(l, n) == LinkState::Retired;
                if retired != f.node_retired(l, n) {
                    self.fail(format!("L{l}: node {n} retired by one side only"));
                    return;
                }
                let fresh = f.now() < f.learned_at(l, n) + 1_000 * MS;
                if !retired && !f.node_ready(l, n) && !fresh {
                    let link = f.link(l, n);
                    self.fail(format!(
                        "L{l}: node {n} is not ready at the end (link {link:?}), long after everything healed"
                    ));
                    return;
                }
            }
        }
    }
}
