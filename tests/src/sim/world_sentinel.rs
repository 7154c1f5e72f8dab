//! Redis Sentinel in the simulator: one master (node 0) whose replica
//! copies it now and then (so it holds a prefix of the master's writes),
//! and switches that replace the master by that replica under the same
//! node id — its data becomes the copy, every connection drops, and the
//! engines (which follow failovers) reconnect to the new master. What the
//! copy lacked is reported to the checker as a failover loss, judged as in
//! the cluster runs.

use std::collections::BTreeMap;

use super::check::Obs;
use super::server::{Entry, Fx};
use super::world::{Ev, World};

/// A node's stored data: database → key → entry.
pub(crate) type NodeData = BTreeMap<u32, BTreeMap<Vec<u8>, Entry>>;

/// The node Sentinel watches (sentinel runs have only one).
const MASTER: usize = 0;

impl World {
    /// Schedules the replica's first copy (sentinel runs only: the others
    /// draw nothing here, so their seeds replay as before).
    pub(crate) fn init_sentinel(&mut self) {
        if self.p.sentinel.is_some() {
            self.sentinel_replica = Some(self.nodes[MASTER].dump());
            self.next_sentinel_sync();
        }
    }

    fn next_sentinel_sync(&mut self) {
        let Some(sp) = self.p.sentinel.clone() else {
            return;
        };
        let t = self.now + self.rng.range(sp.sync_min, sp.sync_max.max(sp.sync_min));
        self.at(t, Ev::SentinelSync);
    }

    /// The replica copies the master (while the master is up: a dead one
    /// sends nothing).
    pub(crate) fn sentinel_sync(&mut self) {
        if self.nodes[MASTER].state != super::server::NodeState::Down {
            self.sentinel_replica = Some(self.nodes[MASTER].dump());
        }
        self.next_sentinel_sync();
    }

    /// Fault: Sentinel promotes the replica. Its data (the last copy, or
    /// everything when it caught up first) replaces the master's; keys the
    /// master held that the copy lacks, or holds with an earlier expiry,
    /// are lost; values only the copy has come back as orphans. Every
    /// connection drops; the node is up at once (the new master).
    pub(crate) fn sentinel_switch(&mut self) {
        let Some(sp) = self.p.sentinel.clone() else {
            return;
        };
        // A master that is down stays so: a data-losing restart's safety
        // rests on its delay (the other faults cover a dead master).
        if self.nodes[MASTER].state == super::server::NodeState::Down {
            return;
        }
        let caught_up = self.rng.chance(sp.catch_up);
        let copy = if caught_up {
            self.nodes[MASTER].dump()
        } else {
            self.sentinel_replica.take().unwrap_or_default()
        };
        let db = self.p.config.database();
        let now = self.now;
        let prefix = self.p.config.prefix().as_bytes().to_vec();
        let live = |e: &Entry| self.real_expiry(MASTER, e) > now;
        let in_copy = |key: &[u8]| copy.get(&db).and_then(|m| m.get(key)).filter(|e| live(e));
        let mut lost = Vec::new();
        for (key, e) in self.nodes[MASTER].live_keys(db, now) {
            if !key.starts_with(&prefix) {
                continue;
            }
            let copy = in_copy(&key).map(|c| (MASTER, c));
            lost.extend(self.lost_in_failover(key, e, MASTER, copy));
        }
        let orphans: Vec<Vec<u8>> = copy
            .get(&db)
            .map(|m| {
                m.iter()
                    .filter(|(k, c)| {
                        live(c)
                            && self.nodes[MASTER]
                                .peek(db, k, now)
                                .is_none_or(|e| e.value != c.value || e.orphan)
                    })
                    .map(|(k, _)| k.clone())
                    .collect()
            })
            .unwrap_or_default();
        let held = self.held_on(MASTER);
        self.count("sentinel_switch");
        if held {
            self.count("sentinel_switch_while_held");
        }
        *self.stats.cluster.entry("failover_lost_keys").or_default() += lost.len() as u64;
        self.log(|| {
            format!(
                "FAULT sentinel switch: the replica replaces node {MASTER} ({}; {} lock keys lost)",
                if caught_up { "caught up" } else { "as copied" },
                lost.len()
            )
        });
        // The old master's connections drop (its clients, tracking and
        // scripts go with it), and the replica takes its place at once.
        self.crash_node(MASTER, true);
        self.node_epoch[MASTER] += 1;
        self.nodes[MASTER].state = super::server::NodeState::Up;
        self.nodes[MASTER].refuse = None;
        let mut fx = Fx::default();
        self.nodes[MASTER].load(copy, &mut fx);
        for key in orphans {
            self.nodes[MASTER].mark_orphan(db, &key, &mut fx);
        }
        self.apply_fx(fx);
        self.sentinel_replica = Some(self.nodes[MASTER].dump());
        self.observe(Obs::FailoverLoss(lost));
    }
}
