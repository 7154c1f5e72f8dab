//! The simulated world: lockers (real engines) with their workers and
//! clocks, nodes, the network, faults, and the discrete-event loop.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};

use tracklock_core::{
    Command, Engine, Event, Instant, LockFailure, LockId, LockMode, NodeId, ServerError, Text,
    Topology,
};

use super::check::{Checker, Obs, Rules};
use super::clock::Clock;
use super::cluster;
use super::hostile;
use super::keys::key_name;
use super::net::{Link, Msg, Net};
use super::params::{Bug, Params, RefuseKind, VERSIONS};
use super::rng::SimRng;
use super::server::{Fx, Node, NodeState, UNIX_BASE_MS};
use super::world_cluster::ClusterWorld;
use super::world_sentinel::NodeData;
use super::Stats;

const MS: u64 = 1_000_000;

/// A scheduled happening.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Ev {
    Pipe {
        conn: u64,
        up: bool,
    },
    Timeout {
        locker: usize,
        gen: u64,
    },
    Worker {
        locker: usize,
        worker: usize,
        gen: u64,
    },
    /// `node` is the engine's node id here and in `Connected`.
    Connect {
        locker: usize,
        node: usize,
    },
    Connected {
        locker: usize,
        node: usize,
        conn: u64,
    },
    NodeTick {
        node: usize,
    },
    NodeUp {
        node: usize,
        epoch: u64,
    },
    NodeResume {
        node: usize,
        epoch: u64,
    },
    LockerResume {
        locker: usize,
        epoch: u64,
    },
    /// Cluster: `node` adopts configuration `version` (gossip).
    Adopt {
        node: usize,
        version: usize,
    },
    /// Cluster: a shard's replication stream delivers.
    Repl {
        shard: usize,
        epoch: u64,
    },
    /// Cluster: failure detection for master `node`, dead since `since`.
    FailoverCheck {
        node: usize,
        since: u64,
    },
    /// Cluster: the slot migration in progress moves on.
    Migrate,
    /// Sentinel: the replica copies the master.
    SentinelSync,
    /// A starved locker's event loop gets to what arrived from `node`.
    Feed {
        locker: usize,
        node: usize,
        conn: u64,
    },
    /// A locker's starvation ends.
    StarveEnd {
        locker: usize,
        epoch: u64,
    },
    /// A node's error-reply window ends.
    RefuseEnd {
        node: usize,
    },
    Fault,
    /// A fault of a given kind (an index of `inject_fault`'s weights).
    ForcedFault {
        kind: usize,
    },
    Prompt {
        index: usize,
    },
    Liveness,
    EndActive,
    DrainCheck,
    FinalCheck,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LinkState {
    Down,
    Connecting(u64),
    Up(u64),
    /// The engine retired the node (`NodeRemoved`): never dialled again
    /// unless the engine gives its id to a new node.
    Retired,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WState {
    Idle,
    Requesting { id: LockId, mode: LockMode },
    Holding { id: LockId },
    Stopped,
}

#[derive(Debug)]
pub(crate) struct Worker {
    pub(crate) state: WState,
    pub(crate) gen: u64,
    pub(crate) next_at: u64,
}

/// A locker. The per-node vectors are indexed by the engine's node ids;
/// `target` maps them to simulated nodes (the identity unless clustered).
pub(crate) struct LockerSim {
    pub(crate) engine: Engine,
    pub(crate) clock: Clock,
    pub(crate) target: Vec<usize>,
    pub(crate) links: Vec<LinkState>,
    pub(crate) rx: Vec<Vec<u8>>,
    pub(crate) paused: bool,
    pub(crate) pause_epoch: u64,
    pub(crate) pending_disc: Vec<bool>,
    pub(crate) pending_conn: Vec<bool>,
    pub(crate) retry_connect: Vec<bool>,
    /// When the engine learned each node (0: from the start).
    pub(crate) learned_at: Vec<u64>,
    /// Cluster: the last time one of its extend scripts was refused
    /// (`CLUSTERDOWN`), if ever.
    pub(crate) extend_refused_at: Option<u64>,
    pub(crate) timeout_gen: u64,
    pub(crate) timeout_at: Option<u64>,
    pub(crate) workers: Vec<Worker>,
    pub(crate) by_id: BTreeMap<u64, usize>,
    pub(crate) closed: bool,
    /// Bumped whenever something disturbs this locker (for prompt-loss checks).
    pub(crate) disturb: u64,
    /// Starved until then (real ns): network input reaches the engine late.
    pub(crate) starve_until: u64,
    /// The largest lag while starved, ns.
    pub(crate) starve_lag: u64,
    /// When the latest delayed input is handed in (keeps them in order).
    pub(crate) feed_at: u64,
    pub(crate) starve_epoch: u64,
}

/// Where the run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Active,
    Drain,
    Final,
    Done,
}

/// One simulated run.
pub struct World {
    pub(crate) p: Params,
    pub(crate) now: u64,
    pub(crate) rng: SimRng,
    queue: BinaryHeap<Reverse<(u64, u64, Ev)>>,
    seq: u64,
    pub(crate) lockers: Vec<LockerSim>,
    pub(crate) nodes: Vec<Node>,
    pub(crate) node_epoch: Vec<u64>,
    pub(crate) node_disturb: Vec<u64>,
    pub(crate) net: Net,
    /// The oracle (out of its place only while it observes).
    pub(crate) chk: Option<Checker>,
    pub(crate) stats: Stats,
    pub(crate) phase: Phase,
    pub(crate) drain_started: u64,
    /// The first violation: stops the run.
    pub failure: Option<String>,
    /// Trace: when on, every event is formatted into `trace` (and printed if `echo`).
    pub(crate) tracing: bool,
    pub(crate) echo: bool,
    pub(crate) trace: VecDeque<String>,
    /// Redis Cluster state (cluster runs).
    pub(crate) cl: Option<ClusterWorld>,
    /// Sentinel runs: the replica's copy of the master's data.
    pub(crate) sentinel_replica: Option<NodeData>,
    /// When the latest error-reply window ends (or ended), real ns.
    pub(crate) last_refuse_end: u64,
}

/// A short name of a `Failed` cause, for the counters.
fn failure_kind(e: &LockFailure) -> String {
    match e {
        LockFailure::Refused(e) => {
            let code = e.message.as_str().split(' ').next().unwrap_or("");
            format!("Refused({code}, {:?})", e.command)
        }
        LockFailure::Unavailable { error: None, .. } => "Unavailable".into(),
        LockFailure::Unavailable { .. } => "Unavailable(refused)".into(),
        _ => format!("{e:?}"),
    }
}

/// The node holding key `i` (as `tracklock_core`'s routing does) outside
/// a cluster.
pub(crate) fn node_of(topology: Topology, i: usize) -> usize {
    match topology {
        Topology::Instances(n) => i % usize::from(n.max(1)),
        // Single, and clusters, which place keys by slot: see
        // `World::key_nodes`.
        _ => 0,
    }
}

impl World {
    /// Builds the world for `p`; `tracing` keeps a formatted event trace.
    pub fn new(p: Params, tracing: bool, echo: bool) -> World {
        let mut rng = SimRng::new(p.seed);
        let node_count = p
            .cluster
            .as_ref()
            .map_or(p.config.node_count(), |c| c.nodes());
        let ppm = p.clock_ppm;
        let password = p.config.password().map(str::to_string);
        let prefix = p.config.prefix().as_bytes().to_vec();
        let nodes: Vec<Node> = (0..node_count)
            .map(|i| {
                let clock = Clock::new(rng.range_i64(-ppm, ppm), rng.range(0, 1_000) * MS);
                let version = rng.pick::<&str>(&VERSIONS);
                let mut n = Node::new(i, clock, version, password.clone());
                n.wall_offset_ms = rng.range_i64(-p.wall_offset_ms, p.wall_offset_ms);
                n.trace = tracing;
                n.prefix = prefix.clone();
                n.bug_release_noop = p.bug == Some(super::params::Bug::ReleaseNoop);
                n.bug_fence_noop = p.bug == Some(super::params::Bug::FenceRaiseNoop);
                n
            })
            .collect();
        let mut links = Vec::new();
        let mut lat_max = 0;
        for _ in 0..p.lockers {
            let mut row = Vec::new();
            for _ in 0..node_count {
                let l = Link::new(
                    rng.range(10_000, p.latency_base),
                    rng.range(0, p.latency_jitter),
                );
                lat_max = lat_max.max(l.max_latency());
                row.push(l);
            }
            links.push(row);
        }
        let mut lockers = Vec::new();
        for _ in 0..p.lockers {
            let clock = Clock::new(rng.range_i64(-ppm, ppm), rng.range(0, 10_000) * MS);
            let mut engine = Engine::new(p.config.clone(), rng.seed32()).expect("valid config");
            let wall = UNIX_BASE_MS
                .saturating_add_signed(rng.range_i64(-p.wall_offset_ms, p.wall_offset_ms));
            engine.set_unix_time(Instant::from_nanos(clock.at(0)), wall);
            let target: Vec<usize> = if p.cluster.is_some() {
                // Seeds: a random subset of the nodes, replicas included.
                let mut all: Vec<usize> = (0..node_count).collect();
                for i in (1..all.len()).rev() {
                    let j = rng.below(i as u64 + 1) as usize;
                    all.swap(i, j);
                }
                all.truncate(engine.node_count());
                for (e, &n) in all.iter().enumerate() {
                    engine
                        .set_node_address(NodeId(e as u16), &cluster::host(n), cluster::port(n))
                        .expect("seed address");
                }
                all
            } else {
                (0..node_count).collect()
            };
            let engine_nodes = target.len();
            lockers.push(LockerSim {
                engine,
                clock,
                target,
                links: vec![LinkState::Down; engine_nodes],
                rx: vec![Vec::new(); engine_nodes],
                paused: false,
                pause_epoch: 0,
                pending_disc: vec![false; engine_nodes],
                pending_conn: vec![false; engine_nodes],
                retry_connect: vec![false; engine_nodes],
                learned_at: vec![0; engine_nodes],
                extend_refused_at: None,
                timeout_gen: 0,
                timeout_at: None,
                workers: (0..if p.crowd && lockers.len() == 1 {
                    100
                } else {
                    p.workers
                })
                    .map(|_| Worker {
                        state: WState::Idle,
                        gen: 0,
                        next_at: 0,
                    })
                    .collect(),
                by_id: BTreeMap::new(),
                closed: false,
                disturb: 0,
                starve_until: 0,
                starve_lag: 0,
                feed_at: 0,
                starve_epoch: 0,
            });
        }
        let mut w = World {
            now: 0,
            rng,
            queue: BinaryHeap::new(),
            seq: 0,
            lockers,
            nodes,
            node_epoch: vec![0; node_count],
            node_disturb: vec![0; node_count],
            net: Net::new(links),
            chk: Some(Checker::new(Rules::new(&p, lat_max), tracing)),
            stats: Stats::default(),
            phase: Phase::Active,
            drain_started: 0,
            failure: None,
            tracing,
            echo,
            trace: VecDeque::new(),
            cl: None,
            sentinel_replica: None,
            last_refuse_end: 0,
            p,
        };
        w.stats.seeds = 1;
        w.init_cluster();
        w.init_sentinel();
        w
    }

    // ---- plumbing ----------------------------------------------------------

    pub(crate) fn at(&mut self, t: u64, ev: Ev) {
        self.seq += 1;
        self.queue.push(Reverse((t.max(self.now), self.seq, ev)));
    }

    /// Appends a trace line (formatted only when tracing).
    pub(crate) fn log(&mut self, f: impl FnOnce() -> String) {
        if self.tracing {
            let line = format!("{:>10.3}ms {}", self.now as f64 / 1e6, f());
            if self.echo {
                println!("{line}");
            }
            if self.trace.len() >= 400 {
                self.trace.pop_front();
            }
            self.trace.push_back(line);
        }
    }

    pub(crate) fn fail(&mut self, what: String) {
        if self.failure.is_none() {
            let line = format!("VIOLATION at {:.3} ms: {what}", self.now as f64 / 1e6);
            self.log(|| line.clone());
            self.failure = Some(what);
        }
    }

    pub(crate) fn local(&self, l: usize) -> Instant {
        Instant::from_nanos(self.lockers[l].clock.at(self.now))
    }

    fn validity_ns(&self) -> u64 {
        self.p.config.validity().as_nanos() as u64
    }

    /// Runs the world to the end (or the first violation).
    pub fn run(&mut self) {
        for l in 0..self.lockers.len() {
            for e in 0..self.lockers[l].links.len() {
                let t = self.rng.range(0, MS);
                self.at(t, Ev::Connect { locker: l, node: e });
            }
            for w in 0..self.lockers[l].workers.len() {
                let t = self.rng.range(MS, 20 * MS);
                self.schedule_worker(l, w, t);
            }
        }
        for n in 0..self.nodes.len() {
            let t = self.rng.range(0, 100 * MS);
            self.at(t, Ev::NodeTick { node: n });
        }
        if let Some(mean) = self.p.fault_interval() {
            let t = self.rng.exp(mean) as u64 + 50 * MS;
            self.at(t, Ev::Fault);
        }
        if self.p.crowd {
            // A crowd's active phase is short: one error-reply window and
            // one starved locker in it for sure, on top of the drawn faults.
            for kind in [12, 13] {
                let t = self
                    .rng
                    .range(50 * MS, (self.p.active * 3 / 4).max(51 * MS));
                self.at(t, Ev::ForcedFault { kind });
            }
        }
        self.at(20 * MS, Ev::Liveness);
        self.at(self.p.active, Ev::EndActive);
        let hard_stop = self.p.active + 120_000 * MS;
        let mut same_instant = 0u32;
        while let Some(Reverse((t, _, ev))) = self.queue.pop() {
            if self.failure.is_some() || self.phase == Phase::Done {
                break;
            }
            if t > hard_stop {
                self.fail("the run did not finish within its time limit".into());
                break;
            }
            if t == self.now {
                same_instant += 1;
                if same_instant > 100_000 {
                    let timeouts: Vec<Option<Instant>> = self
                        .lockers
                        .iter()
                        .map(|l| l.engine.poll_timeout())
                        .collect();
                    let locals: Vec<Instant> =
                        (0..self.lockers.len()).map(|l| self.local(l)).collect();
                    for l in 0..self.lockers.len() {
                        if timeouts[l].is_some_and(|t| t <= locals[l]) {
                            let state = format!("{:#?}", self.lockers[l].engine);
                            self.log(|| format!("L{l} engine state: {state}"));
                        }
                    }
                    self.fail(format!(
                        "time stands still: 100000 steps at one instant (last {ev:?}; poll_timeout {timeouts:?}, now {locals:?})"
                    ));
                    break;
                }
            } else {
                same_instant = 0;
            }
            self.now = t;
            self.stats.steps += 1;
            self.handle(ev);
        }
        if self.failure.is_none() && self.phase != Phase::Done {
            self.fail(format!("the event queue ran dry in phase {:?}", self.phase));
        }
        self.collect_cluster_stats();
    }

    fn handle(&mut self, ev: Ev) {
        match ev {
            Ev::Pipe { conn, up } => self.on_pipe(conn, up),
            Ev::Timeout { locker, gen } => {
                let ls = &mut self.lockers[locker];
                if ls.timeout_gen == gen && ls.paused {
                    // Handled when the process resumes.
                    ls.timeout_at = None;
                } else if ls.timeout_gen == gen {
                    self.lockers[locker].timeout_at = None;
                    let now = self.local(locker);
                    self.lockers[locker].engine.handle_timeout(now);
                    self.after_engine(locker);
                }
            }
            Ev::Worker {
                locker,
                worker,
                gen,
            } => {
                if self.lockers[locker].workers[worker].gen == gen && !self.lockers[locker].paused {
                    self.worker_act(locker, worker);
                }
            }
            Ev::Connect { locker, node } => self.on_connect(locker, node),
            Ev::Connected { locker, node, conn } => self.on_connected(locker, node, conn),
            Ev::NodeTick { node } => {
                let mut fx = Fx::default();
                // Now and then a cycle is skipped: expiry invalidations come late.
                if self.rng.chance(0.7) {
                    self.nodes[node].active_expire(self.now, &mut self.rng, &mut fx);
                }
                self.apply_fx(fx);
                let t = self.now + self.rng.range(50 * MS, 150 * MS);
                self.at(t, Ev::NodeTick { node });
            }
            Ev::NodeUp { node, epoch } => {
                if self.node_epoch[node] == epoch && self.nodes[node].state == NodeState::Down {
                    self.nodes[node].state = NodeState::Up;
                    self.node_disturb[node] += 1;
                    self.log(|| format!("node {node} is back up"));
                    if self.cl.is_some() {
                        self.cluster_node_up(node);
                    }
                }
            }
            Ev::Adopt { node, version } => self.adopt(node, version),
            Ev::Repl { shard, epoch } => self.deliver_repl(shard, epoch),
            Ev::FailoverCheck { node, since } => self.failover_check(node, since),
            Ev::Migrate => self.migrate_step(),
            Ev::SentinelSync => self.sentinel_sync(),
            Ev::Feed { locker, node, conn } => {
                let ls = &self.lockers[locker];
                if ls.links[node] == LinkState::Up(conn) && !ls.paused && !ls.pending_conn[node] {
                    self.feed(locker, node);
                }
            }
            Ev::StarveEnd { locker, epoch } => {
                if self.lockers[locker].starve_epoch == epoch {
                    self.end_starve(locker);
                }
            }
            Ev::RefuseEnd { node } => {
                if self.nodes[node]
                    .refuse
                    .is_some_and(|(_, until)| until <= self.now)
                {
                    self.end_refuse(node);
                }
            }
            Ev::NodeResume { node, epoch } => {
                if self.node_epoch[node] == epoch && self.nodes[node].state == NodeState::Paused {
                    let mut fx = Fx::default();
                    self.nodes[node].resume(self.now, &mut fx);
                    self.node_disturb[node] += 1;
                    self.log(|| format!("node {node} resumes"));
                    self.apply_fx(fx);
                }
            }
            Ev::LockerResume { locker, epoch } => {
                if self.lockers[locker].pause_epoch == epoch && self.lockers[locker].paused {
                    self.resume_locker(locker);
                }
            }
            Ev::ForcedFault { kind } => {
                if self.phase == Phase::Active {
                    self.inject_fault(Some(kind));
                }
            }
            Ev::Fault => {
                if self.phase == Phase::Active {
                    self.inject_fault(None);
                    if let Some(mean) = self.p.fault_interval() {
                        let t = self.now + self.rng.exp(mean) as u64 + 1;
                        self.at(t, Ev::Fault);
                    }
                }
            }
            Ev::Prompt { index } => {
                self.observe(Obs::PromptDue { index });
            }
            Ev::Liveness => {
                self.observe(Obs::Tick);
                if self.phase == Phase::Active || self.phase == Phase::Drain {
                    let t = self.now + 20 * MS;
                    self.at(t, Ev::Liveness);
                }
            }
            Ev::EndActive => self.start_drain(),
            Ev::DrainCheck => self.drain_check(),
            Ev::FinalCheck => {
                if !self.observe(Obs::PastTtls) {
                    self.phase = Phase::Done;
                    self.log(|| "run complete".into());
                }
            }
        }
    }

    // ---- network ------------------------------------------------------------

    /// Sends bytes down a pipe, split into a few chunks at random points.
    pub(crate) fn send_bytes(&mut self, conn: u64, up: bool, bytes: Vec<u8>) {
        let mut chunks = Vec::new();
        let mut rest = &bytes[..];
        while rest.len() > 1 && self.rng.chance(0.3) {
            let cut = self.rng.range(1, rest.len() as u64 - 1) as usize;
            chunks.push(rest[..cut].to_vec());
            rest = &rest[cut..];
        }
        chunks.push(rest.to_vec());
        for c in chunks {
            self.stats.messages += 1;
            if let Some(t) = self
                .net
                .send(conn, up, Msg::Data(c), self.now, &mut self.rng)
            {
                self.at(t, Ev::Pipe { conn, up });
            }
        }
    }

    fn send_eof(&mut self, conn: u64, up: bool) {
        if let Some(t) = self.net.send(conn, up, Msg::Eof, self.now, &mut self.rng) {
            self.at(t, Ev::Pipe { conn, up });
        }
    }

    fn on_pipe(&mut self, conn: u64, up: bool) {
        let now = self.now;
        let Some(c) = self.net.conns.get_mut(&conn) else {
            return;
        };
        let (locker, node, enode) = (c.locker, c.node, c.enode);
        let pipe = if up { &mut c.up } else { &mut c.down };
        let Some(&(at, _)) = pipe.q.front() else {
            pipe.scheduled = false;
            return;
        };
        if at > now {
            self.at(at, Ev::Pipe { conn, up });
            return;
        }
        let link = self.net.links[locker][node].clone();
        if link.cut(now) {
            // TCP keeps retrying: the bytes arrive after the partition heals.
            let t = link.partitioned_until + link.latency(&mut self.rng);
            self.at(t, Ev::Pipe { conn, up });
            return;
        }
        let c = self.net.conns.get_mut(&conn).expect("checked");
        let pipe = if up { &mut c.up } else { &mut c.down };
        let (_, msg) = pipe.q.pop_front().expect("head");
        let next = pipe.q.front().map(|x| x.0);
        if next.is_none() {
            pipe.scheduled = false;
        }
        let (client_open, server_open) = (c.client_open, c.server_open);
        if let Some(next) = next {
            self.at(next.max(now), Ev::Pipe { conn, up });
        }
        if up {
            if !server_open || self.nodes[node].state == NodeState::Down {
                return;
            }
            match msg {
                Msg::Data(bytes) => {
                    let mut fx = Fx::default();
                    self.nodes[node].receive(conn, &bytes, now, &mut fx);
                    self.apply_fx(fx);
                }
                Msg::Eof => {
                    self.nodes[node].disconnect(conn);
                    if let Some(c) = self.net.conns.get_mut(&conn) {
                        c.server_open = false;
                    }
                }
            }
        } else if client_open {
            match msg {
                Msg::Data(bytes) => self.locker_rx(locker, enode, conn, bytes),
                Msg::Eof => self.locker_eof(locker, enode, conn),
            }
        }
        self.net.reap(conn);
    }

    /// Routes what a node produced.
    pub(crate) fn apply_fx(&mut self, mut fx: Fx) {
        for line in fx.log {
            self.log(|| line);
        }
        for (node, op) in std::mem::take(&mut fx.repl) {
            self.enqueue_repl(node, op);
        }
        for (key, value) in std::mem::take(&mut fx.refused_releases) {
            self.release_refused(&key, &value);
        }
        for l in std::mem::take(&mut fx.refused_extends) {
            self.lockers[l].extend_refused_at = Some(self.now);
            *self.stats.cluster.entry("extend_refused").or_default() += 1;
        }
        for r in std::mem::take(&mut fx.refusals) {
            self.observe(Obs::Refused(r));
        }
        for (l, key) in std::mem::take(&mut fx.taken) {
            self.observe(Obs::Taken { l, key: &key });
        }
        for e in fx.errors {
            self.fail(format!("contract: {e}"));
        }
        for (conn, mut bytes) in fx.out {
            let node = self.net.conns.get(&conn).map(|c| c.node);
            // The hostile node turns honest once the active phase ends.
            if node.is_some()
                && node == self.p.hostile_node
                && self.phase == Phase::Active
                && self.rng.chance(self.p.hostile_rate)
            {
                hostile::mangle(&mut self.rng, &mut bytes);
                self.stats.mangled += 1;
                self.log(|| format!("hostile node mangles a reply batch on c{conn}"));
            }
            if self.net.conns.get(&conn).is_some_and(|c| c.server_open) {
                self.send_bytes(conn, false, bytes);
            }
        }
        for conn in fx.closed {
            self.server_close(conn);
        }
        self.observe(Obs::Keyspace(&fx.changes));
    }

    fn server_close(&mut self, conn: u64) {
        let Some(c) = self.net.conns.get_mut(&conn) else {
            return;
        };
        if !c.server_open {
            return;
        }
        c.server_open = false;
        c.up.drop_data();
        let node = c.node;
        self.nodes[node].disconnect(conn);
        self.send_eof(conn, false);
    }

    // ---- lockers --------------------------------------------------------------

    /// Locker `l` connects to its engine's node `e`.
    fn on_connect(&mut self, l: usize, e: usize) {
        if self.lockers[l].links[e] != LinkState::Down {
            return;
        }
        if self.lockers[l].paused {
            self.lockers[l].retry_connect[e] = true;
            return;
        }
        let n = self.lockers[l].target[e];
        let reachable =
            self.nodes[n].state != NodeState::Down && !self.net.links[l][n].cut(self.now);
        if !reachable {
            let t = self.now + self.rng.range(10 * MS, 100 * MS);
            self.at(t, Ev::Connect { locker: l, node: e });
            return;
        }
        let conn = self.net.open(l, n, e);
        self.nodes[n].connect(conn, l);
        self.lockers[l].links[e] = LinkState::Connecting(conn);
        let link = &self.net.links[l][n];
        let rtt = link.latency(&mut self.rng) + link.latency(&mut self.rng);
        self.at(
            self.now + rtt,
            Ev::Connected {
                locker: l,
                node: e,
                conn,
            },
        );
    }

    fn on_connected(&mut self, l: usize, e: usize, conn: u64) {
        if self.lockers[l].links[e] != LinkState::Connecting(conn) {
            return;
        }
        let n = self.lockers[l].target[e];
        let alive = self.nodes[n].has_client(conn) && !self.net.links[l][n].cut(self.now);
        if !alive {
            self.client_close(l, e, conn);
            return;
        }
        self.lockers[l].links[e] = LinkState::Up(conn);
        self.log(|| {
            if e == n {
                format!("L{l} connected to node {n} (c{conn})")
            } else {
                format!("L{l} connected to node {n} as its node {e} (c{conn})")
            }
        });
        if self.lockers[l].paused {
            self.lockers[l].pending_conn[e] = true;
            return;
        }
        let now = self.local(l);
        self.lockers[l]
            .engine
            .handle_connected(NodeId(e as u16), now);
        self.after_engine(l);
    }

    /// The client side drops the connection (to its engine's node `e`) and
    /// schedules a reconnect.
    pub(crate) fn client_close(&mut self, l: usize, e: usize, conn: u64) {
        let n = self.lockers[l].target[e];
        self.nodes[n].orphan(conn);
        if let Some(c) = self.net.conns.get_mut(&conn) {
            c.client_open = false;
            c.down.q.clear();
            if self.net.links[l][n].cut(self.now) {
                c.up.drop_data();
            }
        }
        self.send_eof(conn, true);
        self.net.reap(conn);
        let ls = &mut self.lockers[l];
        ls.links[e] = LinkState::Down;
        ls.rx[e].clear();
        ls.pending_conn[e] = false;
        ls.disturb += 1;
        let t = self.now + self.rng.range(MS, 50 * MS);
        self.at(t, Ev::Connect { locker: l, node: e });
    }

    fn locker_rx(&mut self, l: usize, n: usize, conn: u64, bytes: Vec<u8>) {
        if self.lockers[l].links[n] != LinkState::Up(conn) {
            return;
        }
        self.lockers[l].rx[n].extend_from_slice(&bytes);
        if self.now < self.lockers[l].starve_until {
            // The event loop gets to it late, in order.
            let lag = self.rng.range(0, self.lockers[l].starve_lag);
            let t = (self.now + lag).max(self.lockers[l].feed_at);
            self.lockers[l].feed_at = t;
            self.at(
                t,
                Ev::Feed {
                    locker: l,
                    node: n,
                    conn,
                },
            );
            return;
        }
        if !self.lockers[l].paused && !self.lockers[l].pending_conn[n] {
            self.feed(l, n);
        }
    }

    /// Hands what arrived from the engine's node `n` to the engine.
    fn feed(&mut self, l: usize, n: usize) {
        if self.lockers[l].rx[n].is_empty() {
            return;
        }
        let now = self.local(l);
        let ls = &mut self.lockers[l];
        let buf = std::mem::take(&mut ls.rx[n]);
        let used = ls.engine.handle_bytes(NodeId(n as u16), now, &buf);
        if used > buf.len() {
            self.fail(format!(
                "handle_bytes consumed {used} of {} bytes",
                buf.len()
            ));
            return;
        }
        if matches!(self.lockers[l].links[n], LinkState::Up(_)) {
            self.lockers[l].rx[n] = buf[used..].to_vec();
        }
        self.after_engine(l);
    }

    fn locker_eof(&mut self, l: usize, n: usize, conn: u64) {
        match self.lockers[l].links[n] {
            LinkState::Up(c) if c == conn => {
                self.log(|| format!("L{l} sees c{conn} to node {n} closed by the server"));
                self.lose_conn(l, n, conn);
            }
            LinkState::Connecting(c) if c == conn => self.client_close(l, n, conn),
            _ => {}
        }
    }

    /// Connection `conn` of locker `l` to its engine's node `n`, up until
    /// now, is gone. A paused process learns it when it resumes, unless a
    /// connect it has not seen yet was pending too: then the engine never
    /// knew that connection.
    fn lose_conn(&mut self, l: usize, n: usize, conn: u64) {
        // (`client_close` clears the pending connect.)
        let pending_conn = self.lockers[l].pending_conn[n];
        self.client_close(l, n, conn);
        if self.lockers[l].paused {
            if !pending_conn {
                self.lockers[l].pending_disc[n] = true;
            }
        } else {
            let now = self.local(l);
            self.lockers[l]
                .engine
                .handle_disconnected(NodeId(n as u16), now);
            self.after_engine(l);
        }
    }

    fn resume_locker(&mut self, l: usize) {
        self.lockers[l].paused = false;
        self.lockers[l].disturb += 1;
        self.log(|| format!("L{l} resumes"));
        let timeout_first = self.rng.chance(0.5);
        if timeout_first {
            self.resume_timeout(l);
        }
        let mut order: Vec<usize> = (0..self.lockers[l].links.len()).collect();
        for i in (1..order.len()).rev() {
            let j = self.rng.below(i as u64 + 1) as usize;
            order.swap(i, j);
        }
        for n in order {
            if std::mem::take(&mut self.lockers[l].pending_disc[n]) {
                let now = self.local(l);
                self.lockers[l]
                    .engine
                    .handle_disconnected(NodeId(n as u16), now);
                self.after_engine(l);
            }
            if std::mem::take(&mut self.lockers[l].pending_conn[n]) {
                let now = self.local(l);
                self.lockers[l]
                    .engine
                    .handle_connected(NodeId(n as u16), now);
                self.after_engine(l);
            }
            if std::mem::take(&mut self.lockers[l].retry_connect[n]) {
                self.at(self.now, Ev::Connect { locker: l, node: n });
            }
            self.feed(l, n);
        }
        if !timeout_first {
            self.resume_timeout(l);
        }
        for w in 0..self.lockers[l].workers.len() {
            let t = self.lockers[l].workers[w].next_at;
            self.schedule_worker(l, w, t);
        }
    }

    fn resume_timeout(&mut self, l: usize) {
        let due = self.lockers[l]
            .engine
            .poll_timeout()
            .is_some_and(|t| t <= self.local(l));
        if due {
            let now = self.local(l);
            self.lockers[l].engine.handle_timeout(now);
        }
        self.after_engine(l);
    }

    /// Drains the engine's events and transmits; reschedules its timeout.
    pub(crate) fn after_engine(&mut self, l: usize) {
        while let Some(ev) = self.lockers[l].engine.poll_event() {
            self.stats.events += 1;
            self.on_engine_event(l, ev);
            if self.failure.is_some() {
                return;
            }
        }
        // Every node written to since the last drain must be announced,
        // or a runtime that wakes only those nodes' tasks would stall.
        let announced: Vec<usize> = std::iter::from_fn(|| self.lockers[l].engine.poll_output())
            .map(|node| usize::from(node.0))
            .collect();
        for n in 0..self.lockers[l].links.len() {
            let bytes = self.lockers[l].engine.transmit(NodeId(n as u16)).to_vec();
            if bytes.is_empty() {
                continue;
            }
            if !announced.contains(&n) {
                self.fail(format!(
                    "engine L{l} wrote to node {n} without announcing it (poll_output)"
                ));
                return;
            }
            self.lockers[l]
                .engine
                .consume_transmit(NodeId(n as u16), bytes.len());
            match self.lockers[l].links[n] {
                LinkState::Up(conn) => self.send_bytes(conn, true, bytes),
                // The socket died while the process was paused; the write
                // fails and the disconnect is handed in right after.
                LinkState::Down if self.lockers[l].pending_disc[n] => {}
                other => self.fail(format!(
                    "engine L{l} wrote {} bytes to node {n} while its connection is {other:?}",
                    bytes.len()
                )),
            }
        }
        let next = self.lockers[l]
            .engine
            .poll_timeout()
            .map(|t| self.lockers[l].clock.real_at(t.as_nanos()).max(self.now));
        if next != self.lockers[l].timeout_at {
            let ls = &mut self.lockers[l];
            ls.timeout_at = next;
            ls.timeout_gen += 1;
            let gen = ls.timeout_gen;
            if let Some(t) = next {
                self.at(t, Ev::Timeout { locker: l, gen });
            }
        }
    }

    /// Teeth: a bug seeded on the world side rewrites an engine event
    /// before the checker sees it (`None`: swallowed).
    fn seeded_bug(&mut self, l: usize, ev: Event) -> Option<Event> {
        let Some(bug) = self.p.bug else {
            return Some(ev);
        };
        let out = match (bug, ev.clone()) {
            (Bug::FailedAsNotLocked, Event::Failed { id, .. }) => Some(Event::NotLocked { id }),
            (Bug::NotLockedAsRefused, Event::NotLocked { id }) => Some(Event::Failed {
                id,
                error: LockFailure::Refused(ServerError {
                    node: NodeId(0),
                    command: Command::Set,
                    message: Text::new("ERR made up by the world").expect("text"),
                }),
            }),
            (Bug::SwallowFailed, Event::Failed { .. })
            | (Bug::DropNotReleased, Event::NotReleased { .. }) => None,
            _ => Some(ev.clone()),
        };
        if out.as_ref() != Some(&ev) {
            self.log(|| format!("L{l} BUG {bug:?} rewrites {ev:?} into {out:?}"));
        }
        out
    }

    fn on_engine_event(&mut self, l: usize, ev: Event) {
        self.log(|| format!("L{l} event {ev:?}"));
        let Some(ev) = self.seeded_bug(l, ev) else {
            return;
        };
        match ev {
            Event::NodeReady { .. } => {}
            Event::NodeAdded { node } => self.on_node_added(l, node),
            Event::NodeRemoved { node } => self.on_node_removed(l, node),
            Event::CloseConnection { node, error } => {
                self.stats.closes += 1;
                let n = usize::from(node.0);
                if let LinkState::Up(conn) | LinkState::Connecting(conn) = self.lockers[l].links[n]
                {
                    let _ = error;
                    self.client_close(l, n, conn);
                }
            }
            Event::Acquired { id } => {
                self.stats.acquired += 1;
                let Some(&w) = self.lockers[l].by_id.get(&id.as_u64()) else {
                    self.fail(format!("L{l}: Acquired for unknown {id:?}"));
                    return;
                };
                match self.lockers[l].workers[w].state {
                    WState::Requesting { id: rid, .. } if rid == id => {}
                    s => {
                        self.fail(format!("L{l}: Acquired for {id:?} but worker {w} is {s:?}"));
                        return;
                    }
                }
                self.lockers[l].workers[w].state = WState::Holding { id };
                let token = self.lockers[l].engine.token(id);
                self.observe(Obs::Acquired { l, id, token });
                let v = self.validity_ns();
                let hold = match self.rng.below(20) {
                    0..=13 => self.rng.range(MS, 100 * MS),
                    14..=18 => self.rng.range(100 * MS, v),
                    _ => self.rng.range(v, 3 * v),
                };
                let t = self.now + hold;
                self.schedule_worker(l, w, t);
            }
            Event::NotLocked { id } | Event::Closed { id } | Event::Failed { id, .. } => {
                match &ev {
                    Event::NotLocked { .. } => {
                        self.stats.not_locked += 1;
                        self.observe(Obs::NotLocked { l, id });
                    }
                    Event::Failed { error, .. } => {
                        self.stats.failed += 1;
                        *self.stats.failures.entry(failure_kind(error)).or_default() += 1;
                        self.observe(Obs::Failed { l, id, error });
                    }
                    _ => {}
                }
                self.end_request(l, id);
            }
            Event::NotReleased { id, .. } => {
                self.stats.not_released += 1;
                self.observe(Obs::NotReleased { l, id });
            }
            Event::Lost { id, reason } => {
                *self.stats.lost.entry(format!("{reason:?}")).or_default() += 1;
                if self.observe(Obs::Lost { l, id, reason }) {
                    return;
                }
                self.end_request(l, id);
            }
            Event::Released { id } => {
                if self.p.bug == Some(Bug::SpuriousNotReleased) {
                    let fake = Event::NotReleased {
                        id,
                        error: ServerError {
                            node: NodeId(0),
                            command: Command::Release,
                            message: Text::new("ERR made up by the world").expect("text"),
                        },
                    };
                    self.log(|| format!("L{l} BUG SpuriousNotReleased: {fake:?}"));
                    self.on_engine_event(l, fake);
                    if self.failure.is_some() {
                        return;
                    }
                }
                self.observe(Obs::Released { l, id });
                self.lockers[l].by_id.remove(&id.as_u64());
            }
            other => self.fail(format!(
                "L{l}: an event the simulator does not know: {other:?}"
            )),
        }
    }

    /// The worker owning `id` is done with it: unlock (ends belief, frees
    /// the slot once settled) and go idle.
    fn end_request(&mut self, l: usize, id: LockId) {
        let Some(&w) = self.lockers[l].by_id.get(&id.as_u64()) else {
            return;
        };
        let now = self.local(l);
        self.observe(Obs::Ended { l, id });
        self.lockers[l].engine.unlock(id, now);
        self.lockers[l].workers[w].state = if self.phase == Phase::Active {
            WState::Idle
        } else {
            WState::Stopped
        };
        let t = self.now + self.rng.exp(self.p.think_mean as f64) as u64;
        self.schedule_worker(l, w, t);
    }

    fn schedule_worker(&mut self, l: usize, w: usize, t: u64) {
        let wk = &mut self.lockers[l].workers[w];
        wk.gen += 1;
        wk.next_at = t;
        let gen = wk.gen;
        self.at(
            t,
            Ev::Worker {
                locker: l,
                worker: w,
                gen,
            },
        );
    }

    fn worker_act(&mut self, l: usize, w: usize) {
        let state = self.lockers[l].workers[w].state;
        let now = self.local(l);
        match state {
            WState::Idle if self.phase == Phase::Active && !self.lockers[l].closed => {
                let name_i = self.rng.below(self.p.names.len() as u64) as usize;
                let name_i = if self.p.crowd && l == 1 { 0 } else { name_i };
                let mode = match self.rng.below(100) {
                    _ if self.p.try_only => LockMode::Try,
                    0..=74 => LockMode::Wait,
                    75..=94 => LockMode::Try,
                    _ if self.p.force => LockMode::Force,
                    _ => LockMode::Wait,
                };
                let name = self.p.names[name_i].clone();
                match self.lockers[l].engine.lock(&name, mode, now) {
                    Ok(id) => {
                        self.stats.requests += 1;
                        self.log(|| format!("L{l} w{w} lock({name}, {mode:?}) -> {id:?}"));
                        self.lockers[l].by_id.insert(id.as_u64(), w);
                        self.lockers[l].workers[w].state = WState::Requesting { id, mode };
                        self.observe(Obs::Requested {
                            l,
                            id,
                            name: name_i,
                            mode,
                        });
                        if mode == LockMode::Wait && self.rng.chance(0.15) {
                            let t = self.now + self.rng.range(MS, 2 * self.validity_ns());
                            self.schedule_worker(l, w, t);
                        }
                        self.after_engine(l);
                    }
                    Err(e) => self.fail(format!("L{l}: lock refused: {e}")),
                }
            }
            WState::Idle => self.lockers[l].workers[w].state = WState::Stopped,
            WState::Requesting { id, .. } | WState::Holding { id } => {
                self.log(|| format!("L{l} w{w} unlock({id:?})"));
                self.stats.unlocks += 1;
                self.observe(Obs::Unlocking { l, id });
                self.lockers[l].engine.unlock(id, now);
                self.lockers[l].workers[w].state = if self.phase == Phase::Active {
                    WState::Idle
                } else {
                    WState::Stopped
                };
                let t = self.now + self.rng.exp(self.p.think_mean as f64) as u64;
                self.schedule_worker(l, w, t);
                self.after_engine(l);
                self.observe(Obs::Unlocked);
            }
            WState::Stopped => {}
        }
    }

    // ---- faults -------------------------------------------------------------

    /// Injects a fault of a kind drawn from the rates, or of kind `forced`.
    fn inject_fault(&mut self, forced: Option<usize>) {
        let f = self.p.faults.clone();
        let weights = [
            f.partition,
            f.reset,
            f.node_pause,
            f.restart_keep,
            f.restart_lose,
            f.locker_pause,
            f.admin_key,
            f.admin_flush,
            f.script_flush,
            f.kill_master,
            f.manual_failover,
            f.migration,
            f.refuse,
            f.starve,
            f.sentinel_switch,
        ];
        let total: f64 = weights.iter().sum();
        let mut x = self.rng.f64() * total;
        let mut kind = 0;
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                kind = i;
                break;
            }
            x -= w;
        }
        let kind = forced.unwrap_or(kind);
        let l = self.rng.below(self.lockers.len() as u64) as usize;
        let n = self.rng.below(self.nodes.len() as u64) as usize;
        let v = self.validity_ns();
        match kind {
            0 => {
                let d = match self.rng.below(3) {
                    0 => self.rng.range(MS, 50 * MS),
                    1 => self.rng.range(50 * MS, 1_000 * MS),
                    _ => self.rng.range(1_000 * MS, 3_000 * MS),
                };
                self.count("partition");
                self.log(|| {
                    format!(
                        "FAULT partition L{l} <-> node {n} for {:.1} ms",
                        d as f64 / 1e6
                    )
                });
                let link = &mut self.net.links[l][n];
                link.partitioned_until = link.partitioned_until.max(self.now + d);
                self.lockers[l].disturb += 1;
                self.node_disturb[n] += 1;
                // Data of connections the client already closed is lost (RST).
                let now = self.now;
                for c in self.net.conns.values_mut() {
                    if c.locker == l && c.node == n && !c.client_open {
                        c.up.drop_data();
                    }
                }
                let _ = now;
            }
            1 => {
                // The engine's id of node `n` (the same outside a cluster).
                let ls = &self.lockers[l];
                let Some(n) = (0..ls.target.len())
                    .position(|e| ls.target[e] == n && ls.links[e] != LinkState::Retired)
                else {
                    return;
                };
                let conn = match self.lockers[l].links[n] {
                    LinkState::Up(c) | LinkState::Connecting(c) => c,
                    LinkState::Down | LinkState::Retired => return,
                };
                self.count("reset");
                self.log(|| format!("FAULT reset of L{l} <-> node {n} (c{conn})"));
                if let Some(c) = self.net.conns.get_mut(&conn) {
                    let data = c.up.q.iter().filter(|(_, m)| *m != Msg::Eof).count();
                    let keep = self.rng.range(0, data as u64) as usize;
                    let mut i = 0;
                    c.up.q.retain(|(_, m)| {
                        i += 1;
                        *m == Msg::Eof || i <= keep
                    });
                }
                if matches!(self.lockers[l].links[n], LinkState::Up(_)) {
                    self.lose_conn(l, n, conn);
                } else {
                    self.client_close(l, n, conn);
                }
            }
            2 => {
                if self.nodes[n].state != NodeState::Up {
                    return;
                }
                let d = match &self.p.cluster {
                    // A longer freeze would be a failure: Redis fails the
                    // master over (see `kill_master`).
                    Some(c) => self.rng.range(MS, c.node_timeout * 9 / 10),
                    None => self.rng.range(MS, 2_000 * MS),
                };
                self.count("node_pause");
                self.log(|| format!("FAULT node {n} pauses for {:.1} ms", d as f64 / 1e6));
                self.nodes[n].state = NodeState::Paused;
                self.node_disturb[n] += 1;
                self.node_epoch[n] += 1;
                let epoch = self.node_epoch[n];
                self.at(self.now + d, Ev::NodeResume { node: n, epoch });
            }
            3 | 4 => {
                if self.nodes[n].state == NodeState::Down || self.migrating_node(n) {
                    return;
                }
                let keep = kind == 3;
                let d = if keep {
                    self.rng.range(MS, 2_000 * MS)
                } else {
                    self.p.lose_down_min + self.rng.range(0, v)
                };
                self.count(if keep { "restart_keep" } else { "restart_lose" });
                self.crash_for(n, keep, d, || format!("node {n} restarts"));
            }
            5 => {
                if self.lockers[l].paused || self.p.locker_pause_max == 0 {
                    return;
                }
                let d = self
                    .rng
                    .range(self.p.locker_pause_max / 4, self.p.locker_pause_max);
                self.count("locker_pause");
                self.log(|| format!("FAULT L{l} pauses for {:.3} ms", d as f64 / 1e6));
                self.lockers[l].paused = true;
                self.lockers[l].disturb += 1;
                self.lockers[l].pause_epoch += 1;
                let epoch = self.lockers[l].pause_epoch;
                self.at(self.now + d, Ev::LockerResume { locker: l, epoch });
            }
            6 => self.admin_key_op(),
            7 => {
                if self.nodes[n].state != NodeState::Up || self.nodes[n].replica {
                    return;
                }
                self.count("admin_flushdb");
                self.log(|| format!("FAULT admin FLUSHDB on node {n}"));
                self.observe(Obs::AdminFlush);
                let db = self.p.config.database().to_string();
                let mut fx = Fx::default();
                self.nodes[n].admin(&[b"SELECT", db.as_bytes()], self.now, &mut fx);
                self.nodes[n].admin(&[b"FLUSHDB"], self.now, &mut fx);
                self.apply_fx(fx);
            }
            9 => self.kill_master(),
            10 => self.manual_failover(),
            11 => self.start_migration(),
            12 => {
                if self.nodes[n].refuse.is_some() || self.p.refuse_kinds.is_empty() {
                    return;
                }
                let kind = *self.rng.pick(&self.p.refuse_kinds);
                let d = match self.rng.below(3) {
                    0 => self.rng.range(MS, 50 * MS),
                    1 => self.rng.range(50 * MS, 500 * MS),
                    _ => self.rng.range(500 * MS, 2 * v.max(1_000 * MS)),
                };
                self.count(match kind {
                    RefuseKind::Oom => "refuse_oom",
                    RefuseKind::NoPerm(_) => "refuse_noperm",
                    RefuseKind::ReadOnly => "refuse_readonly",
                    RefuseKind::Loading => "refuse_loading",
                    RefuseKind::Busy => "refuse_busy",
                    RefuseKind::Misconf => "refuse_misconf",
                });
                self.log(|| {
                    format!(
                        "FAULT node {n} refuses ({kind:?}) for {:.1} ms",
                        d as f64 / 1e6
                    )
                });
                self.nodes[n].refuse = Some((kind, self.now + d));
                self.node_disturb[n] += 1;
                self.last_refuse_end = self.last_refuse_end.max(self.now + d);
                self.at(self.now + d, Ev::RefuseEnd { node: n });
            }
            14 => self.sentinel_switch(),
            13 => {
                if self.now < self.lockers[l].starve_until || self.p.starve_lag_max == 0 {
                    return;
                }
                let d = self.rng.range(50 * MS, 2_000 * MS);
                let lag = self
                    .rng
                    .range(self.p.starve_lag_max / 4, self.p.starve_lag_max);
                self.count("starve");
                self.log(|| {
                    format!(
                        "FAULT L{l} starves for {:.1} ms (input up to {:.1} ms late)",
                        d as f64 / 1e6,
                        lag as f64 / 1e6
                    )
                });
                let ls = &mut self.lockers[l];
                ls.starve_until = self.now + d;
                ls.starve_lag = lag;
                ls.disturb += 1;
                ls.starve_epoch += 1;
                let epoch = ls.starve_epoch;
                self.at(self.now + d, Ev::StarveEnd { locker: l, epoch });
            }
            _ => {
                if self.nodes[n].state != NodeState::Up {
                    return;
                }
                self.count("script_flush");
                // The next script costs a NOSCRIPT round trip more.
                self.node_disturb[n] += 1;
                self.log(|| format!("FAULT admin SCRIPT FLUSH on node {n}"));
                let mut fx = Fx::default();
                self.nodes[n].admin(&[b"SCRIPT", b"FLUSH"], self.now, &mut fx);
                self.apply_fx(fx);
            }
        }
    }

    fn end_starve(&mut self, l: usize) {
        let ls = &mut self.lockers[l];
        if ls.starve_until == 0 {
            return;
        }
        ls.starve_until = 0;
        ls.starve_epoch += 1;
        ls.disturb += 1;
        self.log(|| format!("L{l} is no longer starved"));
    }

    fn end_refuse(&mut self, n: usize) {
        if self.nodes[n].refuse.take().is_some() {
            self.node_disturb[n] += 1;
            self.last_refuse_end = self.last_refuse_end.max(self.now);
            self.log(|| format!("node {n} no longer refuses"));
        }
    }

    pub(crate) fn count(&mut self, kind: &'static str) {
        *self.stats.faults.entry(kind).or_default() += 1;
    }

    /// Crashes node `n` (keeping its data or not) and brings it back up
    /// `d` ns from now, unless its epoch moved on meanwhile; `what` says
    /// what happens to it, for the trace.
    pub(crate) fn crash_for(
        &mut self,
        n: usize,
        keep: bool,
        d: u64,
        what: impl FnOnce() -> String,
    ) {
        self.log(|| {
            format!(
                "FAULT {} ({} data), down {:.1} ms",
                what(),
                if keep { "keeping" } else { "losing" },
                d as f64 / 1e6
            )
        });
        self.crash_node(n, keep);
        self.node_epoch[n] += 1;
        let epoch = self.node_epoch[n];
        self.at(self.now + d, Ev::NodeUp { node: n, epoch });
    }

    pub(crate) fn crash_node(&mut self, n: usize, keep: bool) {
        let mut fx = Fx::default();
        if self.cl.is_some() {
            // The data stays in the struct until the node restarts (its
            // replica may be promoted meanwhile, compared against it).
            self.nodes[n].crash(true, &mut fx);
            self.cluster_node_down(n, keep);
        } else {
            self.nodes[n].crash(keep, &mut fx);
        }
        self.node_disturb[n] += 1;
        let conns: Vec<u64> = self
            .net
            .conns
            .iter()
            .filter(|(_, c)| c.node == n && c.server_open)
            .map(|(&id, _)| id)
            .collect();
        for conn in conns {
            if let Some(c) = self.net.conns.get_mut(&conn) {
                c.server_open = false;
                c.up.q.clear();
                c.up.scheduled = false;
            }
            self.send_eof(conn, false);
        }
        self.apply_fx(fx);
    }

    fn admin_key_op(&mut self) {
        let name_i = self.rng.below(self.p.names.len() as u64) as usize;
        let name = self.p.names[name_i].clone();
        let keys = self.p.config.key_count();
        let prefix = self.p.config.prefix().to_string();
        let db = self.p.config.database().to_string();
        let v_ms = self.validity_ns() / MS;
        let op = self.rng.below(4);
        let targets: Vec<usize> = if op == 1 {
            (0..keys).collect()
        } else {
            vec![self.rng.below(keys as u64) as usize]
        };
        self.observe(Obs::AdminWrite { name: name_i });
        for i in targets {
            // Each command's effects are checked before the next runs.
            let mut fx = Fx::default();
            let key = key_name(&prefix, i, &name);
            let n = self.key_node(i, &key);
            if self.nodes[n].state != NodeState::Up {
                continue;
            }
            let now = self.now;
            self.nodes[n].admin(&[b"SELECT", db.as_bytes()], now, &mut fx);
            match op {
                0 | 1 => {
                    self.count("admin_del");
                    self.log(|| {
                        format!(
                            "FAULT admin DEL {} on node {n}",
                            String::from_utf8_lossy(&key)
                        )
                    });
                    self.nodes[n].admin(&[b"DEL", &key], now, &mut fx);
                }
                2 => {
                    self.count("admin_overwrite");
                    let ttl = self.rng.range(1, v_ms.max(2)).to_string();
                    self.log(|| {
                        format!(
                            "FAULT admin SET {} PX {ttl} on node {n}",
                            String::from_utf8_lossy(&key)
                        )
                    });
                    self.nodes[n].admin(
                        &[b"SET", &key, b"admin-value", b"PX", ttl.as_bytes()],
                        now,
                        &mut fx,
                    );
                }
                _ => {
                    self.count("admin_pexpire");
                    let ttl = self.rng.range(1, v_ms.max(2)).to_string();
                    self.log(|| {
                        format!(
                            "FAULT admin PEXPIRE {} {ttl} on node {n}",
                            String::from_utf8_lossy(&key)
                        )
                    });
                    self.nodes[n].admin(&[b"PEXPIRE", &key, ttl.as_bytes()], now, &mut fx);
                }
            }
            self.apply_fx(fx);
        }
    }

    // ---- drain --------------------------------------------------------------

    fn start_drain(&mut self) {
        self.phase = Phase::Drain;
        self.drain_started = self.now;
        self.log(|| "END of the active phase: healing, releasing, draining".into());
        for l in 0..self.lockers.len() {
            for n in 0..self.nodes.len() {
                let link = &mut self.net.links[l][n];
                link.partitioned_until = link.partitioned_until.min(self.now);
            }
            if self.lockers[l].paused {
                self.lockers[l].pause_epoch += 1;
                self.resume_locker(l);
            }
            self.end_starve(l);
        }
        for n in 0..self.nodes.len() {
            self.end_refuse(n);
        }
        for n in 0..self.nodes.len() {
            if self.nodes[n].state == NodeState::Paused {
                let mut fx = Fx::default();
                self.nodes[n].resume(self.now, &mut fx);
                self.apply_fx(fx);
            }
            // Data-losing restarts keep their minimum down time; others end now.
        }
        // Half the lockers close, the others let their workers finish.
        for l in 0..self.lockers.len() {
            if self.rng.chance(0.3) {
                self.lockers[l].closed = true;
                let now = self.local(l);
                self.log(|| format!("L{l} close()"));
                self.lockers[l].engine.close(now);
                self.after_engine(l);
            }
            for w in 0..self.lockers[l].workers.len() {
                match self.lockers[l].workers[w].state {
                    WState::Idle => self.lockers[l].workers[w].state = WState::Stopped,
                    WState::Requesting { mode, .. } => {
                        // Pending requests are cancelled soon; held ones run their course.
                        let _ = mode;
                        let t = self.now + self.rng.range(0, 10 * MS);
                        self.schedule_worker(l, w, t);
                    }
                    _ => {}
                }
            }
        }
        self.at(self.now + 10 * MS, Ev::DrainCheck);
    }

    fn drain_check(&mut self) {
        let all_up = self.nodes.iter().all(|n| n.state == NodeState::Up) && self.cluster_settled();
        let settled = self.lockers.iter().all(|l| {
            l.engine.lock_count() == 0 && l.workers.iter().all(|w| w.state == WState::Stopped)
        });
        if all_up && settled && self.net.quiet() {
            self.observe(Obs::Settled);
            self.phase = Phase::Final;
            let v = self.validity_ns();
            let wait = 2 * v + 500 * MS;
            self.log(|| "all engines settled; waiting past every TTL".into());
            self.at(self.now + wait, Ev::FinalCheck);
            return;
        }
        let limit = 4 * self.validity_ns() + self.p.lose_down_min + 10_000 * MS;
        if self.now > self.drain_started + limit {
            let counts: Vec<usize> = self.lockers.iter().map(|l| l.engine.lock_count()).collect();
            for l in 0..self.lockers.len() {
                if self.lockers[l].engine.lock_count() > 0 {
                    let state = format!("{:#?}", self.lockers[l].engine);
                    self.log(|| format!("L{l} engine state: {state}"));
                }
            }
            self.fail(format!(
                "engines did not settle {:.0} ms after the active phase (lock counts {counts:?}, nodes up {all_up})",
                limit as f64 / 1e6
            ));
            return;
        }
        self.at(self.now + 10 * MS, Ev::DrainCheck);
    }
}
