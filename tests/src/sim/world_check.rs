//! The world's side of the checker: the facts it may read, and the
//! observations it is fed, with what comes back (trace lines, violations,
//! prompt-loss re-checks) acted on.

use tracklock_core::NodeId;

use super::check::{Checker, Facts, Note, Obs, BACKOFF_MAX};
use super::server::{Entry, NodeState};
use super::world::{Ev, LinkState, World};
use super::Stats;

const MS: u64 = 1_000_000;

impl World {
    /// Feeds the checker; true when it reported a violation (the first
    /// one of the run fails it).
    pub(crate) fn observe(&mut self, obs: Obs<'_>) -> bool {
        // Out of `self` while it reads `self` as `Facts`.
        let mut chk = self.chk.take().expect("the checker is never re-entered");
        let notes = chk.observe(obs, self);
        self.chk = Some(chk);
        let mut violated = false;
        for note in notes {
            match note {
                Note::Trace(line) => self.log(|| line),
                Note::Violation(what) => {
                    violated = true;
                    self.fail(what);
                }
                Note::Recheck { at, index } => self.at(at, Ev::Prompt { index }),
            }
        }
        violated
    }

    /// True when a believer's value sits on a key stored at node `n`.
    pub(crate) fn held_on(&self, n: usize) -> bool {
        self.checker().held_on(n, self)
    }

    /// The run's counters, the checker's included.
    pub(crate) fn take_stats(&mut self) -> Stats {
        let mut stats = std::mem::take(&mut self.stats);
        // (Gone only if the checker itself panicked.)
        if let Some(chk) = &self.chk {
            chk.add_counts(&mut stats);
        }
        stats
    }

    fn checker(&self) -> &Checker {
        self.chk.as_ref().expect("the checker is in place")
    }
}

impl Facts for World {
    fn now(&self) -> u64 {
        self.now
    }

    fn clustered(&self) -> bool {
        self.cl.is_some()
    }

    fn node_count(&self) -> usize {
        self.nodes.len()
    }

    fn is_replica(&self, node: usize) -> bool {
        self.nodes[node].replica
    }

    fn key_nodes(&self, i: usize, key: &[u8]) -> Vec<usize> {
        World::key_nodes(self, i, key)
    }

    fn peek(&self, node: usize, key: &[u8]) -> Option<&Entry> {
        self.nodes[node].peek(self.p.config.database(), key, self.now)
    }

    fn live_keys(&self, node: usize) -> Vec<(Vec<u8>, Entry)> {
        self.nodes[node].live_keys(self.p.config.database(), self.now)
    }

    fn real_expiry(&self, node: usize, e: &Entry) -> u64 {
        World::real_expiry(self, node, e)
    }

    fn knows_script(&self, node: usize, script: &str) -> bool {
        self.nodes[node].knows_script(script)
    }

    fn nodes_disturb(&self) -> u64 {
        self.node_disturb.iter().sum()
    }

    fn locker_count(&self) -> usize {
        self.lockers.len()
    }

    /// Healthy: not paused, every connection up and ready, no partition,
    /// every node up. In a cluster: the same for every node the engine
    /// knows (bar dead ones), every current master up and reachable (one it
    /// has not learned since the configuration settled is the engine's
    /// problem), and the configuration settled long enough for the engine
    /// to have learned it.
    fn healthy(&self, l: usize) -> bool {
        let ls = &self.lockers[l];
        // Starved, or a node refused lately (a waiter may be backing off
        // for up to `BACKOFF_MAX`).
        if ls.paused
            || self.now < ls.starve_until
            || self.now < self.last_refuse_end + BACKOFF_MAX + 10 * MS
        {
            return false;
        }
        let Some(cl) = &self.cl else {
            return (0..ls.links.len()).all(|n| {
                matches!(ls.links[n], LinkState::Up(_))
                    && ls.engine.is_ready(NodeId(n as u16))
                    && !self.net.links[l][n].cut(self.now)
                    && self.nodes[n].state == NodeState::Up
            });
        };
        // Liveness needs some node the locker knows to be reachable: it
        // asks the nodes it knows (seeds, masters and, since seed 698 of
        // `sim_cluster` stalled a waiter for 2 s, replicas) for the
        // topology; a locker cut off from all of them cannot progress.
        let contact = (0..ls.links.len()).any(|e| {
            let n = ls.target[e];
            self.nodes[n].state == NodeState::Up && !self.net.links[l][n].cut(self.now)
        });
        // Every node it knows, master or not, may have its requests in
        // flight: a stalled or reconnecting one is a disturbance, as
        // outside a cluster (a dead one closed its connections at once).
        let known_ok = (0..ls.links.len()).all(|e| {
            let n = ls.target[e];
            self.nodes[n].state == NodeState::Down
                || ls.links[e] == LinkState::Retired
                || (matches!(ls.links[e], LinkState::Up(_))
                    && ls.engine.is_ready(NodeId(e as u16))
                    && !self.net.links[l][n].cut(self.now)
                    && self.nodes[n].state == NodeState::Up)
        });
        contact
            && known_ok
            && self.now >= cl.settled_at
            && cl.migration.is_none()
            && cl.latest().masters().iter().all(|&m| {
                self.nodes[m].state == NodeState::Up
                    && !self.net.links[l][m].cut(self.now)
                    && (0..ls.links.len()).all(|e| {
                        ls.target[e] != m
                            || ls.links[e] == LinkState::Retired
                            || (matches!(ls.links[e], LinkState::Up(_))
                                && ls.engine.is_ready(NodeId(e as u16)))
                    })
            })
    }

    fn locker_disturb(&self, l: usize) -> u64 {
        self.lockers[l].disturb
    }

    fn extend_refused_at(&self, l: usize) -> Option<u64> {
        self.lockers[l].extend_refused_at
    }

    fn engine_nodes(&self, l: usize) -> usize {
        self.lockers[l].links.len()
    }

    fn engine_node(&self, l: usize, e: usize) -> Option<usize> {
        self.lockers[l].target.get(e).copied()
    }

    fn engine_load(&self, l: usize) -> (usize, bool) {
        let e = &self.lockers[l].engine;
        (e.lock_count(), e.is_idle())
    }

    fn node_ready(&self, l: usize, e: usize) -> bool {
        self.lockers[l].engine.is_ready(NodeId(e as u16))
    }

    fn node_retired(&self, l: usize, e: usize) -> bool {
        self.lockers[l].engine.is_retired(NodeId(e as u16))
    }

    fn learned_at(&self, l: usize, e: usize) -> u64 {
        self.lockers[l].learned_at[e]
    }

    fn link(&self, l: usize, e: usize) -> LinkState {
        self.lockers[l].links[e]
    }
}
