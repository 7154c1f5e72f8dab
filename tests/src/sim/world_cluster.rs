//! The world's side of a simulated Redis Cluster: configuration versions
//! and gossip, asynchronous replication, failure detection and failover,
//! manual failover, slot migration, and the engines' `NodeAdded`.

use std::collections::VecDeque;
use std::rc::Rc;

use tracklock_core::NodeId;

use super::check::{LostKey, Obs};
use super::cluster::{self, key_slot, NodeCluster, Topo};
use super::keys::{key_name, parse_lock_key};
use super::server::{Entry, Fx, NodeState, ReplOp};
use super::world::{node_of, Ev, LinkState, World};

const MS: u64 = 1_000_000;

/// The replication stream of one shard, master to replica.
#[derive(Debug, Default)]
pub(crate) struct ReplQueue {
    /// `(arrival, master that wrote, op)`, arrivals non-decreasing.
    q: VecDeque<(u64, usize, ReplOp)>,
    /// Bumped when the stream is cut (deliveries of the old one are void).
    epoch: u64,
    scheduled: bool,
    last: u64,
}

/// A slot migration in progress.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Migration {
    pub(crate) slot: u16,
    pub(crate) to: usize,
    pub(crate) src: usize,
    pub(crate) dst: usize,
}

/// Cluster state of the world.
#[derive(Debug)]
pub(crate) struct ClusterWorld {
    /// Every configuration version; the last is the truth.
    pub(crate) versions: Vec<Rc<Topo>>,
    /// The version each node has adopted.
    view: Vec<usize>,
    pub(crate) migration: Option<Migration>,
    repl: Vec<ReplQueue>,
    /// Per node: restarts without its data.
    lose_on_restart: Vec<bool>,
    /// Per node: when it last crashed (failure detection is per crash).
    down_since: Vec<u64>,
    /// Engines may not know the configuration before this (liveness and
    /// prompt-loss checks wait for it).
    pub(crate) settled_at: u64,
    /// How long an engine may take to learn a change that no reply reveals
    /// at once (a manual failover, a migration): until its next extension
    /// meets a redirect, plus the gossip delay.
    settle: u64,
    /// How long it may take to learn a failover: the engine re-queries
    /// every 250 ms while a slot owner's connection is down.
    settle_quick: u64,
}

impl ClusterWorld {
    /// The current configuration.
    pub(crate) fn latest(&self) -> &Rc<Topo> {
        self.versions.last().expect("a version")
    }
}

impl World {
    /// Sets the nodes up as a cluster (cluster runs only; draws nothing).
    pub(crate) fn init_cluster(&mut self) {
        let Some(cp) = self.p.cluster.clone() else {
            return;
        };
        let topo = Rc::new(Topo::initial(cp.masters, &cp.replicas));
        assert_eq!(topo.failed.len(), self.nodes.len(), "cluster node count");
        for (n, node) in self.nodes.iter_mut().enumerate() {
            if cp.redis6 {
                node.version = "6.2.14";
            }
            node.replica = !topo.is_master(n);
            node.cluster = Some(NodeCluster {
                topo: topo.clone(),
                migrating: None,
                importing: None,
                seven: !cp.redis6,
                shard_ids: node.version.starts_with("7.2"),
                full_coverage: cp.full_coverage,
            });
        }
        let extend = self.p.config.effective_extend_interval().as_nanos() as u64;
        let settle =
            extend + extend * 2 * self.p.clock_ppm as u64 / 1_000_000 + cp.gossip_max + 1_000 * MS;
        let settle_quick = cp.gossip_max + 750 * MS;
        self.cl = Some(ClusterWorld {
            view: vec![0; self.nodes.len()],
            versions: vec![topo],
            migration: None,
            repl: (0..cp.masters).map(|_| ReplQueue::default()).collect(),
            lose_on_restart: vec![false; self.nodes.len()],
            down_since: vec![0; self.nodes.len()],
            settled_at: 0,
            settle,
            settle_quick,
        });
    }

    fn cp(&self) -> &super::params::ClusterParams {
        self.p.cluster.as_ref().expect("cluster run")
    }

    fn cw(&mut self) -> &mut ClusterWorld {
        self.cl.as_mut().expect("cluster run")
    }

    // ---- where keys live ----------------------------------------------------

    /// The nodes key `i` (named `key`) may live on: its owner (source and
    /// target while its slot migrates); node `node_of` outside a cluster.
    pub(crate) fn key_nodes(&self, i: usize, key: &[u8]) -> Vec<usize> {
        let Some(cl) = &self.cl else {
            return vec![node_of(self.p.config.topology(), i)];
        };
        let slot = key_slot(key);
        match cl.migration {
            Some(m) if m.slot == slot => vec![m.src, m.dst],
            _ => vec![cl.latest().owner_node(slot)],
        }
    }

    /// The node key `i` lives on (or would be written to) now.
    pub(crate) fn key_node(&self, i: usize, key: &[u8]) -> usize {
        let nodes = self.key_nodes(i, key);
        let db = self.p.config.database();
        match nodes[..] {
            [src, dst] if self.nodes[src].stored(db, key).is_none() => dst,
            _ => nodes[0],
        }
    }

    /// True when `n` takes part in the migration in progress.
    pub(crate) fn migrating_node(&self, n: usize) -> bool {
        self.cl
            .as_ref()
            .and_then(|c| c.migration)
            .is_some_and(|m| m.src == n || m.dst == n)
    }

    /// No migration in progress (or not a cluster).
    pub(crate) fn cluster_settled(&self) -> bool {
        self.cl.as_ref().is_none_or(|c| c.migration.is_none())
    }

    /// A release was refused (`CLUSTERDOWN`): the engine leaves the key to
    /// expire, so it is no leak (counted as an orphan write).
    pub(crate) fn release_refused(&mut self, key: &[u8], value: &[u8]) {
        *self.stats.cluster.entry("release_refused").or_default() += 1;
        let db = self.p.config.database();
        // (The key index only matters outside a cluster.)
        let i = parse_lock_key(self.p.config.prefix(), &self.p.names, key).map_or(0, |(i, _)| i);
        for n in self.key_nodes(i, key) {
            if self.nodes[n]
                .stored(db, key)
                .is_some_and(|e| e.value == value)
            {
                self.observe(Obs::ReleaseRefused { value });
                let mut fx = Fx::default();
                self.nodes[n].mark_orphan(db, key, &mut fx);
                self.apply_fx(fx);
            }
        }
    }

    // ---- engines ------------------------------------------------------------

    /// An engine learned of a node: connect to the address it names.
    pub(crate) fn on_node_added(&mut self, l: usize, node: NodeId) {
        let e = usize::from(node.0);
        let addr = self.lockers[l]
            .engine
            .node_address(node)
            .map(|(h, p)| (h.to_string(), p));
        let found = addr
            .as_ref()
            .and_then(|(h, p)| cluster::node_at(h, *p, self.nodes.len()));
        let Some(n) = found else {
            self.fail(format!(
                "L{l}: NodeAdded {e} at {addr:?}, which no node listens on"
            ));
            return;
        };
        let ls = &self.lockers[l];
        // A new id, or that of a node retired (and released) before.
        let reused = ls.links.get(e) == Some(&LinkState::Retired);
        if e != ls.target.len() && !reused {
            self.fail(format!(
                "L{l}: NodeAdded {e} but the engine had {} nodes",
                ls.target.len()
            ));
            return;
        }
        if (0..ls.target.len()).any(|i| ls.target[i] == n && ls.links[i] != LinkState::Retired) {
            self.fail(format!(
                "L{l}: NodeAdded {e} at {}, an address it already has",
                cluster::addr(n)
            ));
            return;
        }
        let ls = &mut self.lockers[l];
        if reused {
            ls.target[e] = n;
            ls.links[e] = LinkState::Down;
            ls.rx[e].clear();
            ls.pending_disc[e] = false;
            ls.pending_conn[e] = false;
            ls.retry_connect[e] = false;
            ls.learned_at[e] = self.now;
        } else {
            ls.target.push(n);
            ls.links.push(LinkState::Down);
            ls.rx.push(Vec::new());
            ls.pending_disc.push(false);
            ls.pending_conn.push(false);
            ls.retry_connect.push(false);
            ls.learned_at.push(self.now);
        }
        *self.stats.cluster.entry("node_added").or_default() += 1;
        self.log(|| format!("L{l} learns node {n} as its node {e}"));
        let t = self.now + self.rng.range(0, MS);
        self.at(t, Ev::Connect { locker: l, node: e });
    }

    /// An engine retired a node the topology stopped naming: drop the
    /// connection for good and release the id, as a runtime's driver does.
    pub(crate) fn on_node_removed(&mut self, l: usize, node: NodeId) {
        let e = usize::from(node.0);
        let Some(&link) = self.lockers[l].links.get(e) else {
            self.fail(format!("L{l}: NodeRemoved {e}, a node it never had"));
            return;
        };
        if let LinkState::Up(conn) | LinkState::Connecting(conn) = link {
            self.client_close(l, e, conn);
        }
        let ls = &mut self.lockers[l];
        ls.links[e] = LinkState::Retired;
        ls.pending_disc[e] = false;
        ls.pending_conn[e] = false;
        ls.retry_connect[e] = false;
        ls.engine.handle_retired(node);
        *self.stats.cluster.entry("node_removed").or_default() += 1;
        let n = self.lockers[l].target[e];
        self.log(|| format!("L{l} retires its node {e} (node {n})"));
    }

    // ---- configuration --------------------------------------------------------

    /// A new configuration: `involved` nodes adopt it now, the others within
    /// the gossip delay. `quick`: engines learn it by themselves soon (a
    /// master died: they re-query the map every 250 ms meanwhile).
    fn publish(&mut self, mut topo: Topo, involved: &[usize], quick: bool) {
        let v = self.cw().versions.len();
        topo.version = v;
        self.cw().versions.push(Rc::new(topo));
        let gossip = self.cp().gossip_max;
        for n in 0..self.nodes.len() {
            if involved.contains(&n) {
                self.adopt(n, v);
            } else {
                let t = self.now + self.rng.range(0, gossip);
                self.at(
                    t,
                    Ev::Adopt {
                        node: n,
                        version: v,
                    },
                );
            }
        }
        let now = self.now;
        let cw = self.cw();
        let settle = if quick { cw.settle_quick } else { cw.settle };
        cw.settled_at = cw.settled_at.max(now + settle);
    }

    /// Node `n` adopts version `v` (never an older one).
    pub(crate) fn adopt(&mut self, n: usize, v: usize) {
        let cw = self.cl.as_mut().expect("cluster run");
        if cw.view[n] >= v {
            return;
        }
        cw.view[n] = v;
        let topo = cw.versions[v].clone();
        let node = &mut self.nodes[n];
        node.replica = !topo.is_master(n);
        if let Some(c) = node.cluster.as_mut() {
            c.topo = topo;
        }
    }

    fn latest(&self) -> Rc<Topo> {
        self.cl.as_ref().expect("cluster run").latest().clone()
    }

    // ---- replication ----------------------------------------------------------

    /// `e` (on `from`'s clock) as `to` stores it: expiring at the same real
    /// instant, never earlier (Redis replicates absolute expiry times; the
    /// wall clocks are taken to agree).
    fn convert(&self, from: usize, to: usize, mut e: Entry) -> Entry {
        if let Some(x) = e.expire_ms {
            let real = self.nodes[from].real_at_ms(x.saturating_add(1));
            e.expire_ms = Some(self.nodes[to].now_ms(real));
        }
        e
    }

    /// The real time at which `e` expires at node `n` (`u64::MAX`: never).
    pub(crate) fn real_expiry(&self, n: usize, e: &Entry) -> u64 {
        e.expire_ms
            .map_or(u64::MAX, |x| self.nodes[n].real_at_ms(x.saturating_add(1)))
    }

    /// What a failover that puts `copy` (an entry as on node `c`, or
    /// nothing) in place of live entry `e` of `key` on master `m` makes of
    /// it: `None` when the copy keeps it (the same value, expiring no
    /// earlier); else the lost key, `shortened` when only its expiry came
    /// earlier.
    pub(crate) fn lost_in_failover(
        &self,
        key: Vec<u8>,
        e: Entry,
        m: usize,
        copy: Option<(usize, &Entry)>,
    ) -> Option<LostKey> {
        let expiry = self.real_expiry(m, &e);
        let shortened = match copy {
            None => false,
            Some((_, ce)) if ce.value != e.value => false,
            Some((c, ce)) => {
                if self.real_expiry(c, ce) >= expiry {
                    return None;
                }
                true
            }
        };
        Some(LostKey {
            key,
            value: e.value,
            writer: e.writer,
            shortened,
            expiry,
        })
    }

    /// A master changed a key: its replica applies it after the replication delay.
    pub(crate) fn enqueue_repl(&mut self, master: usize, op: ReplOp) {
        let topo = self.latest();
        let Some(s) = topo.shard_of_master(master) else {
            return;
        };
        let Some(r) = topo.shards[s].replica else {
            return;
        };
        if self.nodes[r].state == NodeState::Down {
            // Lost for it: it resynchronises when it is back.
            return;
        }
        let (base, jitter) = (self.cp().repl_base, self.cp().repl_jitter);
        let lag = base + self.rng.below(jitter + 1);
        let now = self.now;
        let q = &mut self.cw().repl[s];
        let at = (now + lag).max(q.last);
        q.last = at;
        q.q.push_back((at, master, op));
        if !q.scheduled {
            q.scheduled = true;
            let epoch = q.epoch;
            self.at(at, Ev::Repl { shard: s, epoch });
        }
    }

    /// Applies one replicated change at replica `r`.
    fn apply_repl(&mut self, from: usize, r: usize, op: ReplOp) {
        let op = match op {
            ReplOp::Key { db, key, entry } => ReplOp::Key {
                db,
                key,
                entry: entry.map(|e| self.convert(from, r, e)),
            },
            other => other,
        };
        let mut fx = Fx::default();
        self.nodes[r].apply(op, &mut fx);
        self.apply_fx(fx);
    }

    pub(crate) fn deliver_repl(&mut self, s: usize, epoch: u64) {
        if self.cw().repl[s].epoch != epoch {
            return;
        }
        self.cw().repl[s].scheduled = false;
        let replica = self.latest().shards[s].replica;
        loop {
            let now = self.now;
            let q = &mut self.cw().repl[s];
            match q.q.front() {
                Some(&(at, ..)) if at <= now => {}
                Some(&(at, ..)) => {
                    q.scheduled = true;
                    self.at(at, Ev::Repl { shard: s, epoch });
                    return;
                }
                None => return,
            }
            let (_, from, op) = q.q.pop_front().expect("front");
            if let Some(r) = replica.filter(|&r| self.nodes[r].state != NodeState::Down) {
                self.apply_repl(from, r, op);
            }
        }
    }

    /// Cuts shard `s`'s replication stream (what was in flight is lost).
    fn cut_repl(&mut self, s: usize) {
        let q = &mut self.cw().repl[s];
        q.q.clear();
        q.epoch += 1;
        q.scheduled = false;
    }

    /// The replica catches up with everything in flight (manual failover).
    fn catch_up(&mut self, s: usize, r: usize) {
        let ops: Vec<(u64, usize, ReplOp)> = self.cw().repl[s].q.drain(..).collect();
        self.cut_repl(s);
        for (_, from, op) in ops {
            self.apply_repl(from, r, op);
        }
    }

    /// Full resynchronisation of replica `r` from master `m`.
    fn resync(&mut self, m: usize, r: usize) {
        if let Some(s) = self.latest().shard_of_master(m) {
            self.cut_repl(s);
        }
        let mut data = self.nodes[m].dump();
        for db in data.values_mut() {
            let entries = std::mem::take(db);
            for (k, e) in entries {
                let e = self.convert(m, r, e);
                db.insert(k, e);
            }
        }
        let mut fx = Fx::default();
        self.nodes[r].load(data, &mut fx);
        self.apply_fx(fx);
        self.log(|| format!("node {r} resynchronises from node {m}"));
    }

    // ---- failures ---------------------------------------------------------------

    /// Node `n` crashed (its data kept in memory until it restarts).
    pub(crate) fn cluster_node_down(&mut self, n: usize, keep: bool) {
        self.cw().lose_on_restart[n] = !keep;
        let since = self.now;
        self.cw().down_since[n] = since;
        let topo = self.latest();
        if let Some(s) = topo.shard_of_master(n) {
            // Writes not yet replicated are lost with it (unless it
            // comes back before it is replaced).
            self.cut_repl(s);
            let nt = self.cp().node_timeout;
            let t = self.now + nt + self.rng.range(0, nt / 2);
            self.at(t, Ev::FailoverCheck { node: n, since });
        }
    }

    /// Node `n` restarted.
    pub(crate) fn cluster_node_up(&mut self, n: usize) {
        let v = self.cw().versions.len() - 1;
        self.adopt(n, v);
        let lose = std::mem::take(&mut self.cw().lose_on_restart[n]);
        let topo = self.latest();
        if let Some(s) = topo.shards.iter().position(|s| s.stale == Some(n)) {
            // Replaced while down: it rejoins as its successor's replica.
            let mut t = (*topo).clone();
            let master = t.shards[s].master;
            t.shards[s].stale = None;
            t.shards[s].replica = Some(n);
            t.failed[n] = false;
            self.log(|| format!("node {n} rejoins as a replica of node {master}"));
            self.publish(t, &[n, master], true);
            self.after_rejoin(master, n, lose);
        } else if let Some(s) = topo.shard_of_master(n) {
            if topo.failed[n] {
                let mut t = (*topo).clone();
                t.failed[n] = false;
                self.publish(t, &[n], true);
            }
            if lose {
                let mut fx = Fx::default();
                self.nodes[n].wipe(&mut fx);
                self.apply_fx(fx);
            }
            if let Some(r) = topo.shards[s].replica {
                if self.nodes[r].state != NodeState::Down {
                    self.resync(n, r);
                }
            }
        } else if let Some(s) = topo.shard_of(n) {
            let master = topo.shards[s].master;
            self.after_rejoin(master, n, lose);
        }
    }

    fn after_rejoin(&mut self, master: usize, n: usize, lose: bool) {
        if self.nodes[master].state != NodeState::Down {
            self.resync(master, n);
        } else if lose {
            let mut fx = Fx::default();
            self.nodes[n].wipe(&mut fx);
            self.apply_fx(fx);
        }
    }

    /// Failure detection for master `n` (down since a node timeout ago):
    /// its replica, if up, is promoted; otherwise it is flagged as failed
    /// and checked again.
    pub(crate) fn failover_check(&mut self, n: usize, since: u64) {
        if self.nodes[n].state != NodeState::Down || self.cw().down_since[n] != since {
            return;
        }
        let topo = self.latest();
        let Some(s) = topo.shard_of_master(n) else {
            return;
        };
        if !topo.failed[n] {
            // Flagged as failed everywhere (within the gossip delay); the
            // replica's election takes 500 ms plus up to 500 ms.
            let mut t = (*topo).clone();
            t.failed[n] = true;
            self.log(|| format!("master node {n} flagged as failed"));
            self.publish(t, &[], true);
            let t = self.now + 500 * MS + self.rng.range(0, 500 * MS);
            self.at(t, Ev::FailoverCheck { node: n, since });
            return;
        }
        match topo.shards[s].replica {
            Some(r) if self.nodes[r].state == NodeState::Up => self.promote(s),
            _ => self.at(self.now + 100 * MS, Ev::FailoverCheck { node: n, since }),
        }
    }

    /// The replica of shard `s` takes over its dead master, with the data
    /// it has. Keys the master held that it lacks (or holds with an older
    /// value or an earlier expiry) are lost; values it holds that the
    /// master had replaced come back (as orphans: nobody waits for them).
    fn promote(&mut self, s: usize) {
        let topo = self.latest();
        let m = topo.shards[s].master;
        let r = topo.shards[s].replica.expect("a replica");
        let db = self.p.config.database();
        let now = self.now;
        let prefix = self.p.config.prefix().as_bytes().to_vec();
        let mut lost = Vec::new();
        for (key, e) in self.nodes[m].live_keys(db, now) {
            // Only keys of its slots (a stale copy elsewhere is nobody's).
            if !key.starts_with(&prefix) || topo.owner_node(key_slot(&key)) != m {
                continue;
            }
            let copy = self.nodes[r].peek(db, &key, now).map(|re| (r, re));
            lost.extend(self.lost_in_failover(key, e, m, copy));
        }
        for (key, re) in self.nodes[r].live_keys(db, now) {
            let orphan = match self.nodes[m].peek(db, &key, now) {
                Some(e) => e.value != re.value || e.orphan,
                None => true,
            };
            if orphan {
                let mut fx = Fx::default();
                self.nodes[r].mark_orphan(db, &key, &mut fx);
                self.apply_fx(fx);
            }
        }
        let held = self.held_on(m);
        self.cut_repl(s);
        let mut t = (*topo).clone();
        t.shards[s] = cluster::ShardTopo {
            master: r,
            replica: None,
            stale: Some(m),
        };
        t.failed[m] = true;
        t.failed[r] = false;
        self.count("failover");
        if held {
            self.count("failover_while_held");
        }
        *self.stats.cluster.entry("failover_lost_keys").or_default() += lost.len() as u64;
        self.log(|| {
            format!(
                "FAILOVER node {r} replaces dead master {m} ({} lock keys lost)",
                lost.len()
            )
        });
        self.publish(t, &[r], true);
        self.node_disturb[m] += 1;
        self.node_disturb[r] += 1;
        self.observe(Obs::FailoverLoss(lost));
    }

    /// Fault: a master with a replica is killed, down past the node timeout.
    pub(crate) fn kill_master(&mut self) {
        let topo = self.latest();
        let candidates: Vec<usize> = topo
            .shards
            .iter()
            .filter(|s| {
                s.replica.is_some()
                    && self.nodes[s.master].state != NodeState::Down
                    && !self.migrating_node(s.master)
            })
            .map(|s| s.master)
            .collect();
        if candidates.is_empty() {
            return;
        }
        let m = *self.rng.pick(&candidates);
        let keep = self.rng.chance(0.5);
        let nt = self.cp().node_timeout;
        // Past detection (up to 1.5 node timeouts) and election (up to 1 s).
        let mut d = self.rng.range(2 * nt + 1_000 * MS, 2 * nt + 3_000 * MS);
        if !keep {
            // If it is not replaced after all, it must stay away a lease.
            let v = self.p.config.validity().as_nanos() as u64;
            d = d.max(self.p.lose_down_min + self.rng.range(0, v));
        }
        self.count("kill_master");
        self.crash_for(m, keep, d, || format!("master node {m} killed"));
    }

    /// Fault: a replica catches up and takes over its master (no loss).
    pub(crate) fn manual_failover(&mut self) {
        let topo = self.latest();
        let candidates: Vec<usize> = (0..topo.shards.len())
            .filter(|&s| {
                let sh = &topo.shards[s];
                sh.replica.is_some_and(|r| {
                    self.nodes[r].state == NodeState::Up
                        && self.nodes[sh.master].state == NodeState::Up
                        && !self.migrating_node(sh.master)
                })
            })
            .collect();
        if candidates.is_empty() {
            return;
        }
        let s = *self.rng.pick(&candidates);
        let m = topo.shards[s].master;
        let r = topo.shards[s].replica.expect("filtered");
        self.catch_up(s, r);
        let mut t = (*topo).clone();
        t.shards[s].master = r;
        t.shards[s].replica = Some(m);
        self.count("manual_failover");
        if self.held_on(m) {
            self.count("manual_failover_while_held");
        }
        self.log(|| format!("FAULT manual failover: node {r} takes over from node {m}"));
        self.publish(t, &[m, r], false);
        self.node_disturb[m] += 1;
        self.node_disturb[r] += 1;
    }

    /// Fault: the slot of a lock key starts migrating to another master.
    pub(crate) fn start_migration(&mut self) {
        if self.cw().migration.is_some() {
            return;
        }
        let name = self.rng.below(self.p.names.len() as u64) as usize;
        let k = self.rng.below(self.p.config.key_count() as u64) as usize;
        let key = key_name(self.p.config.prefix(), k, &self.p.names[name]);
        let slot = key_slot(&key);
        let topo = self.latest();
        let from = usize::from(topo.owner[usize::from(slot)]);
        let others: Vec<usize> = (0..topo.shards.len()).filter(|&s| s != from).collect();
        if others.is_empty() {
            return;
        }
        let to = *self.rng.pick(&others);
        let (src, dst) = (topo.shards[from].master, topo.shards[to].master);
        if self.nodes[src].state != NodeState::Up || self.nodes[dst].state != NodeState::Up {
            return;
        }
        if let Some(c) = self.nodes[src].cluster.as_mut() {
            c.migrating = Some((slot, dst));
        }
        if let Some(c) = self.nodes[dst].cluster.as_mut() {
            c.importing = Some((slot, src));
        }
        self.cw().migration = Some(Migration { slot, to, src, dst });
        self.count("migration");
        if self.held_on(src) {
            self.count("migration_while_held");
        }
        self.log(|| {
            format!(
                "FAULT slot {slot} ({}) migrates from node {src} to node {dst}",
                String::from_utf8_lossy(&key)
            )
        });
        self.node_disturb[src] += 1;
        self.node_disturb[dst] += 1;
        let now = self.now;
        let cw = self.cw();
        cw.settled_at = cw.settled_at.max(now + cw.settle);
        let t = self.now + self.rng.range(MS, 20 * MS);
        self.at(t, Ev::Migrate);
    }

    /// The migration moves one key (`MIGRATE`), or ends (`SETSLOT NODE`)
    /// once the source has none left in the slot.
    pub(crate) fn migrate_step(&mut self) {
        let Some(m) = self.cw().migration else {
            return;
        };
        if self.nodes[m.src].state != NodeState::Up || self.nodes[m.dst].state != NodeState::Up {
            self.at(self.now + 10 * MS, Ev::Migrate);
            return;
        }
        let db = self.p.config.database();
        if let Some(key) = self.nodes[m.src].keys_in_slot(db, m.slot).first().cloned() {
            let mut fx = Fx::default();
            if let Some(e) = self.nodes[m.src].take_key(db, &key, self.now, &mut fx) {
                let e = self.convert(m.src, m.dst, e);
                self.nodes[m.dst].put_key(db, &key, e, &mut fx);
                *self.stats.cluster.entry("migrated_keys").or_default() += 1;
                self.log(|| {
                    format!(
                        "MIGRATE {} from node {} to node {}",
                        String::from_utf8_lossy(&key),
                        m.src,
                        m.dst
                    )
                });
            }
            self.apply_fx(fx);
            let t = self.now + self.rng.range(MS, 20 * MS);
            self.at(t, Ev::Migrate);
            return;
        }
        let mut t = (*self.latest()).clone();
        t.owner[usize::from(m.slot)] = m.to as u8;
        for n in [m.src, m.dst] {
            if let Some(c) = self.nodes[n].cluster.as_mut() {
                c.migrating = None;
                c.importing = None;
            }
        }
        self.cw().migration = None;
        self.log(|| format!("slot {} now served by node {}", m.slot, m.dst));
        self.publish(t, &[m.src, m.dst], false);
        self.node_disturb[m.src] += 1;
        self.node_disturb[m.dst] += 1;
    }

    /// Sums the nodes' cluster counters into the stats (end of the run).
    pub(crate) fn collect_cluster_stats(&mut self) {
        if self.cl.is_none() {
            return;
        }
        let names = [
            "moved",
            "ask",
            "asking",
            "cluster_shards",
            "cluster_slots",
            "clusterdown",
        ];
        for n in 0..self.nodes.len() {
            for (i, name) in names.iter().enumerate() {
                *self.stats.cluster.entry(name).or_default() += self.nodes[n].cluster_counts[i];
            }
        }
        *self.stats.cluster.entry("versions").or_default() +=
            self.cl.as_ref().map_or(0, |c| c.versions.len() as u64 - 1);
    }
}
