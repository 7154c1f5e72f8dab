//! A real Redis Cluster on `127.0.0.1`, built from [`RedisServer`]s with
//! plain `CLUSTER` commands (no `redis-cli`), for tests that need slots,
//! redirections, failovers and slot migrations.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use crate::admin::Admin;
use crate::instances::{env_addrs, reap_on_exit};
use crate::offload::blocking;
use crate::resp::{self, Conn, FromValue, Value};
use crate::server::{free_port, signal, RedisServer, StartError};
use crate::tls::TlsCerts;

/// Environment variable naming the nodes of an already running cluster
/// (comma-separated `127.0.0.1:PORT`) for [`RedisCluster::shared`].
pub const CLUSTER_ENV: &str = "TRACKLOCK_CLUSTER";

/// The number of hash slots.
pub const SLOTS: u16 = 16384;

/// Default `cluster-node-timeout`: failovers take a few seconds.
pub const DEFAULT_NODE_TIMEOUT: Duration = Duration::from_millis(1000);

/// Bound on every wait for the cluster to settle (formation, failover,
/// migration).
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);

/// How often the waits poll.
const POLL: Duration = Duration::from_millis(25);
/// Bound on connecting to a node (a dead one refuses at once).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Keys moved per `MIGRATE`.
const MIGRATE_BATCH: usize = 100;
/// Flags of a `CLUSTER NODES` line that mean "not (yet) a healthy member".
const BAD_FLAGS: [&str; 4] = ["fail", "fail?", "handshake", "noaddr"];

/// What a node currently is, by its own account (`ROLE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Serves slots (or could).
    Master,
    /// Replicates a master.
    Replica,
    /// Not reachable (killed, or not answering).
    Down,
}

/// One node, as [`RedisCluster::nodes`] sees it right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterNode {
    /// Its index in the cluster (stable for the cluster's life).
    pub index: usize,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// The client port.
    pub port: u16,
    /// The node id (`CLUSTER MYID`; kept across restarts in `nodes.conf`).
    pub id: String,
    /// Its current role.
    pub role: Role,
}

/// One slot range of the slot map and the id of the master serving it.
type Range = (u16, u16, String);

/// A running Redis Cluster on `127.0.0.1`: `masters` masters sharing the
/// 16384 slots evenly, each with `replicas_per_master` replicas. Node `i`
/// for `i < masters` starts as master `i`; node `masters + k` starts as a
/// replica of master `k % masters`. Indices stay valid across failovers
/// (roles change, indices don't).
///
/// Every node is a [`RedisServer`] started with `--cluster-enabled yes`, its
/// `nodes.conf` in its own directory, a free `--cluster-port`,
/// `--cluster-replica-validity-factor 0` (a replica always may fail over)
/// `--cluster-allow-replica-migration no` (replicas stay where they were
/// put) and `--repl-diskless-sync-delay 0` (a replica syncs at once).
/// Persistence is off: a restarted node comes back empty and
/// resynchronises.
///
/// All methods take `&self`, so the cluster can be shared in an `Arc` with
/// a watchdog. Commands for a key are routed to the node owning its slot
/// (by the slot map of a live node, following `MOVED`/`ASK`): cluster nodes
/// refuse keys they do not serve. Dropping it kills every node and removes
/// the directories.
pub struct RedisCluster {
    nodes: Vec<Node>,
    masters: usize,
    /// Attached to a cluster this process does not own.
    shared: bool,
    /// Slot ranges a master served when [`RedisCluster::kill`] killed it,
    /// for [`RedisCluster::wait_for_failover_of`].
    killed_slots: Mutex<HashMap<usize, Vec<(u16, u16)>>>,
    /// Nodes stopped by [`RedisCluster::freeze`].
    frozen: Mutex<HashSet<usize>>,
    /// A TLS cluster's certificates (dropped after the nodes).
    tls: Option<TlsCerts>,
}

struct Node {
    port: u16,
    id: String,
    /// `None` when attached.
    server: Option<RedisServer>,
    con: Mutex<Option<Conn>>,
}

impl fmt::Debug for RedisCluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisCluster")
            .field(
                "ports",
                &self.nodes.iter().map(|n| n.port).collect::<Vec<_>>(),
            )
            .field("masters", &self.masters)
            .field("shared", &self.shared)
            .finish_non_exhaustive()
    }
}

/// What one live node says about the cluster.
#[derive(Debug)]
struct View {
    index: usize,
    state_ok: bool,
    map: Vec<Range>,
    role: Role,
    /// A replica's master port and whether its link is up.
    master: Option<(u16, bool)>,
    /// `CLUSTER NODES`: id → (port, flags).
    members: HashMap<String, (u16, Vec<String>)>,
}

impl RedisCluster {
    /// Starts and forms a cluster (see the type's documentation) with the
    /// default node timeout. Panics with every node's view and log when it
    /// does not settle within [`SETTLE_TIMEOUT`].
    pub fn start(masters: usize, replicas_per_master: usize) -> RedisCluster {
        RedisCluster::start_with_timeout(masters, replicas_per_master, DEFAULT_NODE_TIMEOUT)
    }

    /// Like [`RedisCluster::start`] with `cluster-node-timeout` set to
    /// `node_timeout` (failure detection and failover scale with it).
    pub fn start_with_timeout(
        masters: usize,
        replicas_per_master: usize,
        node_timeout: Duration,
    ) -> RedisCluster {
        RedisCluster::try_start_with_timeout(masters, replicas_per_master, node_timeout)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like [`RedisCluster::start`], but returns the error.
    pub fn try_start(
        masters: usize,
        replicas_per_master: usize,
    ) -> Result<RedisCluster, StartError> {
        RedisCluster::try_start_with_timeout(masters, replicas_per_master, DEFAULT_NODE_TIMEOUT)
    }

    /// Like [`RedisCluster::start_with_timeout`], but returns the error.
    pub fn try_start_with_timeout(
        masters: usize,
        replicas_per_master: usize,
        node_timeout: Duration,
    ) -> Result<RedisCluster, StartError> {
        RedisCluster::try_start_inner(masters, replicas_per_master, node_timeout, None)
    }

    /// Like [`RedisCluster::try_start`] over TLS: fresh [`TlsCerts`]
    /// ([`RedisCluster::tls_certs`]), every node with a TLS port
    /// ([`RedisCluster::tls_port`]) besides its plain one (used by the
    /// kit's own admin connections), `--tls-cluster yes` (the cluster bus
    /// over TLS; nodes announce their TLS ports to TLS clients) and
    /// `--tls-replication yes`. Clients need no certificate.
    pub fn try_start_tls(
        masters: usize,
        replicas_per_master: usize,
    ) -> Result<RedisCluster, StartError> {
        let certs = TlsCerts::try_generate().map_err(StartError::Failed)?;
        RedisCluster::try_start_inner(
            masters,
            replicas_per_master,
            DEFAULT_NODE_TIMEOUT,
            Some(certs),
        )
    }

    /// The certificates of a TLS cluster.
    pub fn tls_certs(&self) -> Option<&TlsCerts> {
        self.tls.as_ref()
    }

    /// The TLS port of node `i` of a TLS cluster.
    pub fn tls_port(&self, i: usize) -> Option<u16> {
        self.nodes[i].server.as_ref()?.tls_port()
    }

    /// `127.0.0.1:TLS_PORT` of every node of a TLS cluster (seeds for a TLS
    /// client).
    pub fn tls_seeds(&self) -> Vec<String> {
        (0..self.nodes.len())
            .filter_map(|i| self.tls_port(i).map(|p| format!("127.0.0.1:{p}")))
            .collect()
    }

    fn try_start_inner(
        masters: usize,
        replicas_per_master: usize,
        node_timeout: Duration,
        tls: Option<TlsCerts>,
    ) -> Result<RedisCluster, StartError> {
        assert!(
            (1..=SLOTS as usize).contains(&masters),
            "a cluster needs 1..=16384 masters, not {masters}"
        );
        let total = masters * (1 + replicas_per_master);
        let timeout_ms = node_timeout.as_millis().max(1).to_string();
        let mut nodes = Vec::with_capacity(total);
        let mut bus_ports = Vec::with_capacity(total);
        for _ in 0..total {
            let mut bus = 0;
            let server = RedisServer::try_start_with_fn(|port, dir| {
                bus = free_bus_port(port);
                let mut args = cluster_args(dir, bus, &timeout_ms);
                if let Some(certs) = &tls {
                    let mut tls_port = free_bus_port(port);
                    while tls_port == bus {
                        tls_port = free_bus_port(port);
                    }
                    args.extend(certs.server_args(tls_port, false, false));
                    args.extend(
                        ["--tls-cluster", "yes", "--tls-replication", "yes"].map(String::from),
                    );
                }
                args
            })?;
            nodes.push(Node {
                port: server.port(),
                id: String::new(),
                server: Some(server),
                con: Mutex::new(None),
            });
            bus_ports.push(bus);
        }
        let mut cluster = RedisCluster {
            nodes,
            masters,
            shared: false,
            killed_slots: Mutex::new(HashMap::new()),
            frozen: Mutex::new(HashSet::new()),
            tls,
        };
        cluster
            .form(replicas_per_master, &bus_ports)
            .map_err(|e| StartError::Failed(format!("cluster did not form: {e}")))?;
        Ok(cluster)
    }

    /// A cluster-enabled server on its own: it knows no other node and
    /// serves no slot (a node before it joins a cluster).
    pub fn try_start_lone_node() -> Result<RedisServer, StartError> {
        let timeout_ms = DEFAULT_NODE_TIMEOUT.as_millis().to_string();
        RedisServer::try_start_with_fn(|port, dir| {
            cluster_args(dir, free_bus_port(port), &timeout_ms)
        })
    }

    /// Attaches to a running cluster (one `127.0.0.1:PORT` per node, all of
    /// them) without owning it: [`RedisCluster::kill`],
    /// [`RedisCluster::restart`] and every other helper that changes the
    /// topology panic. Waits until it is settled.
    pub fn attach(addrs: &[String]) -> Result<RedisCluster, String> {
        let mut nodes = Vec::new();
        for a in addrs {
            let (host, port) = a
                .rsplit_once(':')
                .ok_or_else(|| format!("{a:?} is not host:port"))?;
            if host != "127.0.0.1" && host != "localhost" {
                return Err(format!("{a}: only 127.0.0.1 clusters are supported"));
            }
            let port: u16 = port.parse().map_err(|_| format!("{a:?}: bad port"))?;
            nodes.push(Node {
                port,
                id: String::new(),
                server: None,
                con: Mutex::new(None),
            });
        }
        let mut cluster = RedisCluster {
            nodes,
            masters: 0,
            shared: true,
            killed_slots: Mutex::new(HashMap::new()),
            frozen: Mutex::new(HashSet::new()),
            tls: None,
        };
        for i in 0..cluster.nodes.len() {
            let id: String = cluster
                .run(i, &cmd("CLUSTER", &["MYID"]))
                .map_err(|e| format!("{}: CLUSTER MYID: {e}", cluster.addr(i)))?;
            cluster.nodes[i].id = id;
        }
        cluster.wait_settled_inner(None)?;
        cluster.masters = cluster.master_addrs().len();
        Ok(cluster)
    }

    /// The cluster shared by every non-destructive test of this process:
    /// the one named by [`CLUSTER_ENV`] when it is set (a 3-master,
    /// 3-replica cluster started by `.ci/run` through
    /// `examples/servers.rs`), otherwise a private `start(3, 1)` started on
    /// first use and killed when the test process exits. Never change its
    /// topology or flush it (other tests use it at the same time; use
    /// distinct key names): destructive tests call [`RedisCluster::start`].
    pub fn shared() -> Arc<RedisCluster> {
        static SHARED: OnceLock<Arc<RedisCluster>> = OnceLock::new();
        SHARED
            .get_or_init(|| {
                Arc::new(match env_addrs(CLUSTER_ENV) {
                    Some(addrs) => RedisCluster::attach(&addrs).unwrap_or_else(|e| {
                        panic!("cannot attach to the cluster in {CLUSTER_ENV}: {e}")
                    }),
                    None => {
                        let mut c = RedisCluster::start(3, 1);
                        c.reap_on_exit();
                        // Owned, but shared by concurrent tests: no topology
                        // changes either.
                        c.shared = true;
                        c
                    }
                })
            })
            .clone()
    }

    /// Makes sure the nodes die with this process even if the cluster is
    /// never dropped (a `static`, or a process killed by a signal): a
    /// watcher process SIGKILLs them and removes their directories once
    /// this process is gone. It knows the current processes only: a node
    /// restarted afterwards is not covered.
    pub fn reap_on_exit(&self) {
        reap_on_exit(self.nodes.iter().filter_map(|n| n.server.as_ref()));
    }

    /// True for [`RedisCluster::shared`]: topology changes panic.
    pub fn is_shared(&self) -> bool {
        self.shared
    }

    // ----- nodes -----------------------------------------------------------

    /// How many nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True when there are no nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// How many masters it was formed (or found) with.
    pub fn masters(&self) -> usize {
        self.masters
    }

    /// Every node with its current role (asked of the node itself).
    pub fn nodes(&self) -> Vec<ClusterNode> {
        (0..self.len())
            .map(|i| ClusterNode {
                index: i,
                addr: self.addr(i),
                port: self.port(i),
                id: self.id(i).to_owned(),
                role: self.role(i),
            })
            .collect()
    }

    /// Node `i`'s `127.0.0.1:PORT`.
    pub fn addr(&self, i: usize) -> String {
        format!("127.0.0.1:{}", self.nodes[i].port)
    }

    /// Node `i`'s client port.
    pub fn port(&self, i: usize) -> u16 {
        self.nodes[i].port
    }

    /// Node `i`'s id.
    pub fn id(&self, i: usize) -> &str {
        &self.nodes[i].id
    }

    /// The index of the node with this id or `127.0.0.1:PORT` address.
    pub fn index_of(&self, id_or_addr: &str) -> Option<usize> {
        let port = id_or_addr
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse::<u16>().ok());
        self.nodes
            .iter()
            .position(|n| n.id == id_or_addr || Some(n.port) == port)
    }

    /// Node `i`'s current role, by its own `ROLE` ([`Role::Down`] when it
    /// does not answer or is frozen).
    pub fn role(&self, i: usize) -> Role {
        if self.is_frozen(i) {
            return Role::Down;
        }
        self.run::<Value>(i, &cmd("ROLE", &[]))
            .map(|v| parse_role(&v).0)
            .unwrap_or(Role::Down)
    }

    /// Every node address (what a cluster client takes as seeds).
    pub fn seeds(&self) -> Vec<String> {
        (0..self.len()).map(|i| self.addr(i)).collect()
    }

    /// The addresses of the masters currently serving slots, in slot order,
    /// by the slot map of a live node.
    pub fn master_addrs(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (_, _, id) in self.slot_map() {
            let i = self.index_by_id(&id);
            let a = self.addr(i);
            if !out.contains(&a) {
                out.push(a);
            }
        }
        out
    }

    /// A new admin connection to node `i` (it answers only for its own
    /// slots; use [`RedisCluster::admin_for_key`] for a key).
    pub fn admin(&self, i: usize) -> Admin {
        Admin::connect(&format!("redis://127.0.0.1:{}/0", self.nodes[i].port))
    }

    /// True while node `i` runs (when attached: while it answers `PING`).
    pub fn is_running(&self, i: usize) -> bool {
        match &self.nodes[i].server {
            Some(s) => s.is_running(),
            None => self.run::<String>(i, &cmd("PING", &[])).is_ok(),
        }
    }

    /// Node `i`'s directory (its `nodes.conf` and `redis.log`); `None`
    /// when attached.
    pub fn dir(&self, i: usize) -> Option<&Path> {
        self.nodes[i].server.as_ref().map(RedisServer::dir)
    }

    /// Node `i`'s log so far (empty when attached).
    pub fn log(&self, i: usize) -> String {
        self.nodes[i]
            .server
            .as_ref()
            .map(RedisServer::log)
            .unwrap_or_default()
    }

    /// The live replicas of node `m` (nodes whose `ROLE` names `m` as their
    /// master).
    pub fn replicas_of(&self, m: usize) -> Vec<usize> {
        (0..self.len())
            .filter(|&i| i != m && self.is_reachable(i))
            .filter(|&i| {
                self.run::<Value>(i, &cmd("ROLE", &[]))
                    .is_ok_and(|v| parse_role(&v).1.is_some_and(|(p, _)| p == self.port(m)))
            })
            .collect()
    }

    /// The first live replica of node `m`, if any.
    pub fn replica_of(&self, m: usize) -> Option<usize> {
        self.replicas_of(m).into_iter().next()
    }

    // ----- keys ------------------------------------------------------------

    /// The hash slot of `key` (`CLUSTER KEYSLOT` on a live node).
    pub fn slot_of(&self, key: &str) -> u16 {
        self.on_live_node("CLUSTER KEYSLOT", |i| {
            self.run::<i64>(i, &cmd("CLUSTER", &["KEYSLOT", key]))
        }) as u16
    }

    /// The index of the node serving `slot`, by the slot map of a live node.
    pub fn owner_of_slot(&self, slot: u16) -> usize {
        let map = self.slot_map();
        let id = map
            .iter()
            .find(|(a, b, _)| (*a..=*b).contains(&slot))
            .map(|(_, _, id)| id.clone())
            .unwrap_or_else(|| panic!("slot {slot} is not served; map: {map:?}"));
        self.index_by_id(&id)
    }

    /// The index of the node serving `key`'s slot.
    pub fn owner_of(&self, key: &str) -> usize {
        self.owner_of_slot(self.slot_of(key))
    }

    /// An admin connection to the node serving `key` (it stays connected to
    /// that node: after a failover or migration ask again).
    pub fn admin_for_key(&self, key: &str) -> Admin {
        self.admin(self.owner_of(key))
    }

    /// The slot map (`CLUSTER SLOTS`) of a live node: `(first, last,
    /// master id)`, sorted, adjacent ranges of one master merged.
    pub fn slot_map(&self) -> Vec<(u16, u16, String)> {
        self.on_live_node("CLUSTER SLOTS", |i| self.slot_map_of(i))
    }

    /// Runs `args` (the whole command line after the name) on the node
    /// serving `key`, following `MOVED` and `ASK` redirections and retrying
    /// `TRYAGAIN` briefly; returns any other error.
    pub fn try_cmd_for_key<T: FromValue + Send>(
        &self,
        key: &str,
        name: &str,
        args: &[&str],
    ) -> resp::Result<T> {
        let c = cmd(name, args);
        let mut node = self.owner_of(key);
        let mut asking = false;
        let mut tries = 0;
        loop {
            tries += 1;
            let result = if asking {
                // `ASKING` applies to the next command of the same
                // connection, which `with_con` holds for both.
                self.with_con(node, |con| {
                    con.cmd::<(), _>(&["ASKING"])?;
                    con.cmd::<T, _>(&c)
                })
            } else {
                self.run::<T>(node, &c)
            };
            let e = match result {
                Ok(v) => return Ok(v),
                Err(e) if tries < 50 => e,
                Err(e) => return Err(e),
            };
            let target = e.redirect().and_then(|addr| self.index_of(addr));
            match (e.code(), target) {
                (Some(code @ ("MOVED" | "ASK")), Some(j)) => {
                    asking = code == "ASK";
                    node = j;
                }
                (Some("TRYAGAIN"), _) => std::thread::sleep(POLL),
                _ => return Err(e),
            }
        }
    }

    /// Like [`RedisCluster::try_cmd_for_key`], panicking on error.
    pub fn cmd_for_key<T: FromValue + Send>(&self, key: &str, name: &str, args: &[&str]) -> T {
        self.try_cmd_for_key(key, name, args)
            .unwrap_or_else(|e| panic!("cluster {name} {args:?} failed: {e}"))
    }

    /// `GET key` on its owner.
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.cmd_for_key(key, "GET", &[key])
    }

    /// `SET key value` on its owner.
    pub fn set(&self, key: &str, value: &str) {
        let _: String = self.cmd_for_key(key, "SET", &[key, value]);
    }

    /// `DEL key` on its owner: true when it existed.
    pub fn del(&self, key: &str) -> bool {
        self.cmd_for_key::<i64>(key, "DEL", &[key]) == 1
    }

    /// `PTTL key` on its owner (-2: missing, -1: no TTL).
    pub fn pttl(&self, key: &str) -> i64 {
        self.cmd_for_key(key, "PTTL", &[key])
    }

    /// `EXISTS key` on its owner.
    pub fn exists(&self, key: &str) -> bool {
        self.cmd_for_key::<i64>(key, "EXISTS", &[key]) == 1
    }

    /// `GET key` on node `i` itself, master or replica (`READONLY` first,
    /// so a replica answers from its own copy): what that node would serve
    /// if it were promoted now. `MOVED` if `i` does not hold the slot.
    pub fn get_local(&self, i: usize, key: &str) -> resp::Result<Option<Vec<u8>>> {
        self.with_con(i, |con| {
            con.cmd::<(), _>(&["READONLY"])?;
            let v = con.cmd::<Option<Vec<u8>>, _>(&["GET", key]);
            con.cmd::<(), _>(&["READWRITE"])?;
            v
        })
    }

    // ----- processes -------------------------------------------------------

    /// SIGKILLs node `i`, keeping its directory and `nodes.conf` so that
    /// [`RedisCluster::restart`] brings back the same node. Remembers the
    /// slots it served for [`RedisCluster::wait_for_failover_of`].
    pub fn kill(&self, i: usize) {
        let server = self.owned_server("kill", i);
        if server.is_running() && !self.is_frozen(i) {
            self.remember_slots(i);
        }
        server.kill();
        self.frozen().remove(&i);
        *self.con(i) = None;
    }

    /// SIGSTOPs node `i`: it keeps its sockets but answers nothing (a
    /// stalled or partitioned node), until [`RedisCluster::thaw`]. The waits
    /// and helpers skip it (its [`RedisCluster::role`] is
    /// [`Role::Down`]); [`RedisCluster::wait_for_failover_of`] works as
    /// after a kill. Commands sent to it meanwhile wait for the thaw.
    pub fn freeze(&self, i: usize) {
        let server = self.owned_server("freeze", i);
        let pid = server.pid().expect("freeze: node is not running");
        if !self.is_frozen(i) {
            self.remember_slots(i);
        }
        signal("-STOP", pid);
        self.frozen().insert(i);
    }

    /// SIGCONTs node `i` after [`RedisCluster::freeze`]. It carries on
    /// where it stopped (a demoted master learns it only from the gossip
    /// it reads now); [`RedisCluster::wait_settled`] waits for the cluster
    /// to take it back.
    pub fn thaw(&self, i: usize) {
        let server = self.owned_server("thaw", i);
        if let Some(pid) = server.pid() {
            signal("-CONT", pid);
        }
        self.frozen().remove(&i);
    }

    /// True between [`RedisCluster::freeze`] and [`RedisCluster::thaw`].
    pub fn is_frozen(&self, i: usize) -> bool {
        self.frozen().contains(&i)
    }

    /// Starts node `i` again on the same port and cluster port with the
    /// same `nodes.conf` (it rejoins with the same id; an old master whose
    /// slots were taken over comes back as a replica), empty. Waits until
    /// it answers `PING`; [`RedisCluster::wait_settled`] waits for the
    /// cluster to take it back.
    pub fn restart(&self, i: usize) {
        let server = self.owned_server("restart", i);
        *self.con(i) = None;
        server.restart();
        self.frozen().remove(&i);
    }

    // ----- topology --------------------------------------------------------

    /// Waits until every live node says `cluster_state:ok`, all agree on a
    /// slot map covering every slot and served by live masters only, every
    /// live replica of a live master has its link up, and every live node
    /// sees every other live node healthy in its role. Panics with each
    /// node's view and log after [`SETTLE_TIMEOUT`].
    pub fn wait_settled(&self) {
        if let Err(e) = self.wait_settled_inner(None) {
            panic!("cluster did not settle: {e}");
        }
    }

    /// After master `i` was killed (or frozen): waits until one of its replicas serves
    /// every slot `i` served and the cluster is settled (see
    /// [`RedisCluster::wait_settled`]); returns the new master's index.
    /// Panics with every node's view and log after [`SETTLE_TIMEOUT`].
    pub fn wait_for_failover_of(&self, i: usize) -> usize {
        let served = match self.killed().get(&i).cloned() {
            Some(s) => s,
            None => {
                let id = self.id(i).to_owned();
                self.slot_map()
                    .into_iter()
                    .filter(|(_, _, o)| *o == id)
                    .map(|(a, b, _)| (a, b))
                    .collect()
            }
        };
        assert!(
            !served.is_empty(),
            "wait_for_failover_of({i}): node {i} served no slots when it was killed"
        );
        match self.wait_settled_inner(Some((i, &served))) {
            Ok(Some(j)) => {
                self.killed().remove(&i);
                j
            }
            Ok(None) => unreachable!("a failover wait returns the new master"),
            Err(e) => panic!("no failover of node {i}: {e}"),
        }
    }

    /// `CLUSTER FAILOVER` on replica `r`; waits until `r` is master and the
    /// cluster is settled (its old master then replicates it).
    pub fn manual_failover(&self, r: usize) {
        self.not_shared("manual_failover");
        assert_eq!(self.role(r), Role::Replica, "node {r} is not a replica");
        let _: String = self.admin_cmd(r, "CLUSTER", &["FAILOVER"]);
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        while self.role(r) != Role::Master {
            if Instant::now() >= deadline {
                panic!(
                    "node {r} not master {SETTLE_TIMEOUT:?} after CLUSTER FAILOVER\n{}",
                    self.diagnostics()
                );
            }
            std::thread::sleep(POLL);
        }
        self.wait_settled();
    }

    /// Moves `slot` from node `from` to node `to` with its keys, the
    /// standard way ([`RedisCluster::begin_migration`],
    /// [`RedisCluster::migrate_keys`], [`RedisCluster::finish_migration`]),
    /// and waits until every live node agrees.
    pub fn migrate_slot(&self, slot: u16, from: usize, to: usize) {
        self.begin_migration(slot, from, to);
        self.migrate_keys(slot, from, to);
        self.finish_migration(slot, to);
    }

    /// `CLUSTER SETSLOT slot IMPORTING` on `to`, then `MIGRATING` on
    /// `from`. From now on `from` answers `ASK` for keys of the slot it no
    /// longer has, and `to` serves them only after `ASKING`.
    pub fn begin_migration(&self, slot: u16, from: usize, to: usize) {
        self.not_shared("begin_migration");
        let s = slot.to_string();
        let _: String = self.admin_cmd(to, "CLUSTER", &["SETSLOT", &s, "IMPORTING", self.id(from)]);
        let _: String = self.admin_cmd(from, "CLUSTER", &["SETSLOT", &s, "MIGRATING", self.id(to)]);
    }

    /// Moves every key of `slot` from `from` to `to` (`CLUSTER
    /// GETKEYSINSLOT` and `MIGRATE ... KEYS`, in batches); returns how many.
    pub fn migrate_keys(&self, slot: u16, from: usize, to: usize) -> usize {
        self.not_shared("migrate_keys");
        let s = slot.to_string();
        let batch = MIGRATE_BATCH.to_string();
        let port = self.port(to).to_string();
        let mut moved = 0;
        loop {
            let keys: Vec<String> = self.admin_cmd(from, "CLUSTER", &["GETKEYSINSLOT", &s, &batch]);
            if keys.is_empty() {
                return moved;
            }
            let mut args = vec!["127.0.0.1", &port, "", "0", "5000", "KEYS"];
            args.extend(keys.iter().map(String::as_str));
            let _: Value = self.admin_cmd(from, "MIGRATE", &args);
            moved += keys.len();
        }
    }

    /// `CLUSTER SETSLOT slot NODE <to>` on `to`, then on every other live
    /// master (the source among them); waits until the cluster is settled
    /// with `to` serving `slot`.
    pub fn finish_migration(&self, slot: u16, to: usize) {
        self.not_shared("finish_migration");
        let s = slot.to_string();
        let _: String = self.admin_cmd(to, "CLUSTER", &["SETSLOT", &s, "NODE", self.id(to)]);
        for i in 0..self.len() {
            if i != to && self.is_reachable(i) && self.role(i) == Role::Master {
                let _: String = self.admin_cmd(i, "CLUSTER", &["SETSLOT", &s, "NODE", self.id(to)]);
            }
        }
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        loop {
            self.wait_settled();
            if self.owner_of_slot(slot) == to {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "slot {slot} not on node {to} after SETSLOT NODE\n{}",
                    self.diagnostics()
                );
            }
            std::thread::sleep(POLL);
        }
    }

    /// Makes replica `r` lack `key` while its master keeps it, so that a
    /// later failover promotes a node without it. See
    /// [`RedisCluster::make_replica_diverge_by_deleting_keys`].
    pub fn make_replica_diverge_by_deleting(&self, r: usize, key: &str) {
        self.make_replica_diverge_by_deleting_keys(r, &[key]);
    }

    /// Makes replica `r` lack `keys` while its master keeps them, so that a
    /// later failover promotes a node without them.
    ///
    /// A cluster replica refuses writes to its master's slots (`MOVED`,
    /// even with `replica-read-only no`), and scripts cannot touch them
    /// either; only key-less commands run. So: `replica-read-only no`,
    /// `FLUSHALL SYNC` on the replica, then every other key of the master
    /// is copied again through the replication stream (a script per key on
    /// the master: `DUMP` + `RESTORE ... REPLACE ABSTTL`, atomic, its value
    /// and expiry unchanged; tracking clients of the master get
    /// invalidations for those keys), `WAIT` for the master's replicas, and
    /// `replica-read-only yes` again. Panics when `r` still has one of
    /// `keys` at the end. A later write that sets one of `keys` on the
    /// master reaches the replica as usual (a `PEXPIRE` does not bring it
    /// back).
    pub fn make_replica_diverge_by_deleting_keys(&self, r: usize, keys: &[&str]) {
        self.not_shared("make_replica_diverge_by_deleting_keys");
        let m = self.master_of_replica(r);
        let replicas = self.replicas_of(m).len();
        let _: String = self.admin_cmd(r, "CONFIG", &["SET", "replica-read-only", "no"]);
        let _: String = self.admin_cmd(r, "FLUSHALL", &["SYNC"]);
        let all: Vec<String> = self.admin_cmd(m, "KEYS", &["*"]);
        for k in all.iter().filter(|k| !keys.contains(&k.as_str())) {
            let _: Value = self.admin_cmd(m, "EVAL", &[COPY_SCRIPT, "1", k]);
        }
        let acked: i64 = self.admin_cmd(m, "WAIT", &[&replicas.to_string(), "5000"]);
        let _: String = self.admin_cmd(r, "CONFIG", &["SET", "replica-read-only", "yes"]);
        assert!(
            acked >= replicas as i64,
            "only {acked} of {replicas} replicas of node {m} caught up"
        );
        for key in keys {
            let still: Option<Vec<u8>> = self
                .get_local(r, key)
                .unwrap_or_else(|e| panic!("GET {key} on replica {r}: {e}"));
            assert!(
                still.is_none(),
                "replica {r} still has {key} (written again on node {m} meanwhile?)"
            );
        }
    }

    /// Holds back replica `r`'s replication stream (`CLIENT PAUSE ms
    /// WRITE` on it) for at most `max`: writes to its master meanwhile are
    /// not applied on `r`, and are lost if `r` is promoted before
    /// [`RedisCluster::release_replication`] (a promoted replica drops
    /// what it had not applied). Side effects on `r` while held: no key
    /// expires or is evicted, and writes sent to it block (even once it is
    /// master).
    pub fn hold_replication(&self, r: usize, max: Duration) {
        self.not_shared("hold_replication");
        self.master_of_replica(r);
        let ms = max.as_millis().max(1).to_string();
        let _: String = self.admin_cmd(r, "CLIENT", &["PAUSE", &ms, "WRITE"]);
    }

    /// Ends [`RedisCluster::hold_replication`] (`CLIENT UNPAUSE`).
    pub fn release_replication(&self, r: usize) {
        let _: String = self.admin_cmd(r, "CLIENT", &["UNPAUSE"]);
    }

    /// Every node's view of the cluster (`CLUSTER NODES`, `CLUSTER INFO`
    /// state, `ROLE`) and the tail of its log, for failure messages.
    pub fn diagnostics(&self) -> String {
        let mut out = String::new();
        for i in 0..self.len() {
            out.push_str(&format!(
                "--- node {i} {} id {} running={} frozen={}\n",
                self.addr(i),
                self.id(i),
                self.is_running(i),
                self.is_frozen(i)
            ));
            if self.is_reachable(i) {
                match self.run::<String>(i, &cmd("CLUSTER", &["NODES"])) {
                    Ok(t) => out.push_str(&t),
                    Err(e) => out.push_str(&format!("CLUSTER NODES: {e}\n")),
                }
                if let Ok(t) = self.run::<String>(i, &cmd("CLUSTER", &["INFO"])) {
                    out.extend(t.lines().filter(|l| l.starts_with("cluster_state")));
                    out.push('\n');
                }
            }
            let log = self.log(i);
            let lines: Vec<&str> = log.lines().collect();
            out.push_str("log tail:\n");
            for l in &lines[lines.len().saturating_sub(15)..] {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }

    // ----- internals -------------------------------------------------------

    fn form(&mut self, replicas_per_master: usize, bus_ports: &[u16]) -> Result<(), String> {
        let n = self.len();
        for i in 0..n {
            let id: String = self
                .run(i, &cmd("CLUSTER", &["MYID"]))
                .map_err(|e| format!("node {i}: CLUSTER MYID: {e}"))?;
            self.nodes[i].id = id;
            let epoch = (i + 1).to_string();
            self.run::<String>(i, &cmd("CLUSTER", &["SET-CONFIG-EPOCH", &epoch]))
                .map_err(|e| format!("node {i}: SET-CONFIG-EPOCH: {e}"))?;
        }
        let masters = self.masters;
        for m in 0..masters {
            let first = (m * SLOTS as usize / masters).to_string();
            let last = ((m + 1) * SLOTS as usize / masters - 1).to_string();
            self.run::<String>(m, &cmd("CLUSTER", &["ADDSLOTSRANGE", &first, &last]))
                .map_err(|e| format!("node {m}: ADDSLOTSRANGE {first} {last}: {e}"))?;
        }
        // Everyone meets everyone: faster than waiting for gossip.
        for i in 0..n {
            for (j, bus) in bus_ports.iter().enumerate().skip(i + 1) {
                let port = self.port(j).to_string();
                let meet = cmd("CLUSTER", &["MEET", "127.0.0.1", &port, &bus.to_string()]);
                self.run::<String>(i, &meet)
                    .map_err(|e| format!("node {i}: CLUSTER MEET node {j}: {e}"))?;
            }
        }
        // Everyone knows everyone before replicas are told whom to follow.
        // (A new master reports `cluster_state:ok` only 2 s after start-up,
        // Redis' rejoin delay: that, not gossip, is most of the formation.)
        let ids: Vec<String> = self.nodes.iter().map(|x| x.id.clone()).collect();
        self.poll("every node to know every other", || {
            for i in 0..n {
                let v = self.view(i).map_err(|e| format!("node {i}: {e}"))?;
                for id in &ids {
                    match v.members.get(id) {
                        Some((_, flags)) if !bad(flags) => {}
                        other => return Err(format!("node {i} sees {id} as {other:?}")),
                    }
                }
            }
            Ok(())
        })?;
        for k in 0..masters * replicas_per_master {
            let (r, m) = (masters + k, k % masters);
            let master_id = self.nodes[m].id.clone();
            self.poll(&format!("node {r} to replicate node {m}"), || {
                self.run::<String>(r, &cmd("CLUSTER", &["REPLICATE", &master_id]))
                    .map(drop)
                    .map_err(|e| e.to_string())
            })?;
        }
        self.wait_settled_inner(None).map(drop)
    }

    /// The settle wait; with `failover = Some((dead, ranges))` it also
    /// waits until one live master other than `dead` serves all `ranges`,
    /// and returns it.
    fn wait_settled_inner(
        &self,
        failover: Option<(usize, &[(u16, u16)])>,
    ) -> Result<Option<usize>, String> {
        self.poll("the cluster to settle", || {
            let live: Vec<usize> = (0..self.len()).filter(|&i| self.is_reachable(i)).collect();
            let views = live
                .iter()
                .map(|&i| self.view(i).map_err(|e| format!("node {i}: {e}")))
                .collect::<Result<Vec<_>, _>>()?;
            self.check_settled(&views)?;
            let Some((dead, ranges)) = failover else {
                return Ok(None);
            };
            let map = &views[0].map;
            let owners: Vec<usize> = ranges
                .iter()
                .flat_map(|&(a, b)| {
                    map.iter()
                        .filter(move |(x, y, _)| *x <= b && *y >= a)
                        .map(|(_, _, id)| self.index_by_id(id))
                })
                .collect();
            match owners.first() {
                Some(&j) if j != dead && owners.iter().all(|&o| o == j) => Ok(Some(j)),
                _ => Err(format!(
                    "slots {ranges:?} of node {dead} still served by {owners:?}"
                )),
            }
        })
    }

    fn check_settled(&self, views: &[View]) -> Result<(), String> {
        let first = views.first().ok_or("no live node")?;
        let live: HashMap<u16, &View> = views.iter().map(|v| (self.port(v.index), v)).collect();
        for v in views {
            let i = v.index;
            if !v.state_ok {
                return Err(format!("node {i}: cluster_state is not ok"));
            }
            if v.map != first.map {
                return Err(format!(
                    "node {i} and node {} disagree on the slot map: {:?} vs {:?}",
                    first.index, v.map, first.map
                ));
            }
            if let Some((port, up)) = v.master {
                if live.contains_key(&port) && !up {
                    return Err(format!("node {i}: replication link to {port} is not up"));
                }
            }
            for w in views {
                let id = self.id(w.index);
                let Some((_, flags)) = v.members.get(id) else {
                    return Err(format!("node {i} does not know node {}", w.index));
                };
                if bad(flags) {
                    return Err(format!("node {i} sees node {} as {flags:?}", w.index));
                }
                let says_master = flags.iter().any(|f| f == "master");
                if says_master != (w.role == Role::Master) {
                    return Err(format!(
                        "node {i} sees node {} as {flags:?}, it says {:?}",
                        w.index, w.role
                    ));
                }
            }
        }
        let mut next = 0u32;
        for (a, b, id) in &first.map {
            if u32::from(*a) != next {
                return Err(format!("slots {next}..{a} are not served"));
            }
            next = u32::from(*b) + 1;
            let o = self
                .index_of(id)
                .ok_or_else(|| format!("unknown node {id}"))?;
            match live.get(&self.port(o)) {
                Some(w) if w.role == Role::Master => {}
                _ => {
                    return Err(format!(
                        "slots {a}-{b} served by node {o}, not a live master"
                    ))
                }
            }
        }
        if next != u32::from(SLOTS) {
            return Err(format!("slots {next}..16383 are not served"));
        }
        Ok(())
    }

    fn view(&self, i: usize) -> resp::Result<View> {
        let info: String = self.run(i, &cmd("CLUSTER", &["INFO"]))?;
        let role: Value = self.run(i, &cmd("ROLE", &[]))?;
        let nodes: String = self.run(i, &cmd("CLUSTER", &["NODES"]))?;
        let (role, master) = parse_role(&role);
        Ok(View {
            index: i,
            state_ok: info.lines().any(|l| l.trim() == "cluster_state:ok"),
            map: self.slot_map_of(i)?,
            role,
            master,
            members: parse_nodes(&nodes),
        })
    }

    fn slot_map_of(&self, i: usize) -> resp::Result<Vec<Range>> {
        let v: Value = self.run(i, &cmd("CLUSTER", &["SLOTS"]))?;
        Ok(parse_slots(&v))
    }

    /// The slot map of the first live node other than `except` that answers.
    fn try_slot_map_excluding(&self, except: Option<usize>) -> Option<Vec<Range>> {
        (0..self.len())
            .filter(|&i| Some(i) != except && !self.is_frozen(i))
            .find_map(|i| self.slot_map_of(i).ok())
    }

    /// `f` on the first node that answers; panics when none does.
    fn on_live_node<T>(&self, what: &str, f: impl Fn(usize) -> resp::Result<T>) -> T {
        let mut errors = Vec::new();
        for i in (0..self.len()).filter(|&i| !self.is_frozen(i)) {
            match f(i) {
                Ok(v) => return v,
                Err(e) => errors.push(format!("node {i}: {e}")),
            }
        }
        panic!("{what}: no node answered: {errors:?}");
    }

    fn index_by_id(&self, id: &str) -> usize {
        self.nodes
            .iter()
            .position(|n| n.id == id)
            .unwrap_or_else(|| panic!("node id {id} is not one of this cluster's nodes"))
    }

    fn master_of_replica(&self, r: usize) -> usize {
        let role: Value = self.admin_cmd(r, "ROLE", &[]);
        match parse_role(&role) {
            (Role::Replica, Some((port, _))) => self
                .nodes
                .iter()
                .position(|n| n.port == port)
                .unwrap_or_else(|| panic!("node {r} replicates unknown port {port}")),
            other => panic!("node {r} is not a replica: {other:?}"),
        }
    }

    /// A command on node `i`, panicking with the command on error.
    fn admin_cmd<T: FromValue + Send>(&self, i: usize, name: &str, args: &[&str]) -> T {
        self.run(i, &cmd(name, args))
            .unwrap_or_else(|e| panic!("node {i} ({}): {name} {args:?}: {e}", self.addr(i)))
    }

    fn poll<T>(&self, what: &str, mut f: impl FnMut() -> Result<T, String>) -> Result<T, String> {
        let start = Instant::now();
        loop {
            match f() {
                Ok(v) => return Ok(v),
                Err(e) if start.elapsed() >= SETTLE_TIMEOUT => {
                    return Err(format!(
                        "waited {SETTLE_TIMEOUT:?} for {what}; last: {e}\n{}",
                        self.diagnostics()
                    ));
                }
                Err(_) => std::thread::sleep(POLL),
            }
        }
    }

    fn run<T: FromValue + Send>(&self, i: usize, c: &[String]) -> resp::Result<T> {
        self.with_con(i, |con| con.cmd(c))
    }

    /// `f` on node `i`'s cached connection, opened on demand; after a
    /// connection error it reconnects and retries once.
    fn with_con<T: Send>(
        &self,
        i: usize,
        f: impl Fn(&mut Conn) -> resp::Result<T> + Send + Sync,
    ) -> resp::Result<T> {
        let addr = self.addr(i);
        let mut guard = self.con(i);
        let slot: &mut Option<Conn> = &mut guard;
        blocking(move || {
            let mut tries = 0;
            loop {
                tries += 1;
                if slot.is_none() {
                    *slot = Some(Conn::connect_timeout(&addr, CONNECT_TIMEOUT)?);
                }
                match f(slot.as_mut().expect("just opened")) {
                    Err(e) if e.is_connection_error() => {
                        *slot = None;
                        if tries >= 2 {
                            return Err(e);
                        }
                    }
                    result => return result,
                }
            }
        })
    }

    fn con(&self, i: usize) -> MutexGuard<'_, Option<Conn>> {
        self.nodes[i].con.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Running and not frozen.
    fn is_reachable(&self, i: usize) -> bool {
        !self.is_frozen(i) && self.is_running(i)
    }

    /// Records the slots node `i` serves, before it is killed or frozen.
    fn remember_slots(&self, i: usize) {
        let id = self.id(i).to_owned();
        let served: Vec<(u16, u16)> = self
            .try_slot_map_excluding(None)
            .unwrap_or_default()
            .into_iter()
            .filter(|(_, _, owner)| *owner == id)
            .map(|(a, b, _)| (a, b))
            .collect();
        if !served.is_empty() {
            self.killed().insert(i, served);
        }
    }

    fn frozen(&self) -> MutexGuard<'_, HashSet<usize>> {
        self.frozen.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn killed(&self) -> MutexGuard<'_, HashMap<usize, Vec<(u16, u16)>>> {
        self.killed_slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn not_shared(&self, what: &str) {
        assert!(
            !self.shared,
            "RedisCluster::{what} on the shared cluster ({CLUSTER_ENV} or RedisCluster::shared): \
             other tests use it concurrently; destructive tests must use RedisCluster::start"
        );
    }

    fn owned_server(&self, what: &str, i: usize) -> &RedisServer {
        self.not_shared(what);
        self.nodes[i]
            .server
            .as_ref()
            .unwrap_or_else(|| panic!("RedisCluster::{what}: node {i} is not owned"))
    }
}

/// Copies `KEYS[1]` onto itself (same value, same absolute expiry) so that
/// the write reaches the replicas again.
const COPY_SCRIPT: &str = "local d = redis.call('DUMP', KEYS[1]) \
     if not d then return 0 end \
     local t = redis.call('PEXPIRETIME', KEYS[1]) \
     if t < 0 then t = 0 end \
     redis.call('RESTORE', KEYS[1], t, d, 'REPLACE', 'ABSTTL') \
     return 1";

/// The extra arguments of a cluster node.
fn cluster_args(dir: &Path, bus: u16, timeout_ms: &str) -> Vec<String> {
    [
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        &dir.join("nodes.conf").display().to_string(),
        "--cluster-port",
        &bus.to_string(),
        "--cluster-node-timeout",
        timeout_ms,
        "--cluster-replica-validity-factor",
        "0",
        "--cluster-allow-replica-migration",
        "no",
        // A replica's full sync starts at once, not after the default 5 s
        // wait for more replicas.
        "--repl-diskless-sync-delay",
        "0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// A free port for the cluster bus, other than the client port.
fn free_bus_port(client: u16) -> u16 {
    loop {
        match free_port() {
            Ok(p) if p != client => return p,
            Ok(_) => {}
            Err(e) => panic!("no free port for the cluster bus: {e}"),
        }
    }
}

fn cmd(name: &str, args: &[&str]) -> Vec<String> {
    std::iter::once(name)
        .chain(args.iter().copied())
        .map(str::to_owned)
        .collect()
}

fn bad(flags: &[String]) -> bool {
    flags.iter().any(|f| BAD_FLAGS.contains(&f.as_str()))
}

fn text(v: &Value) -> Option<String> {
    v.text()
}

fn int(v: &Value) -> Option<i64> {
    v.int()
}

/// `ROLE`: the role, and for a replica its master's port and whether the
/// link is up (`connected`).
fn parse_role(v: &Value) -> (Role, Option<(u16, bool)>) {
    let Value::Array(items) = v else {
        return (Role::Down, None);
    };
    match items.first().and_then(text).as_deref() {
        Some("master") => (Role::Master, None),
        Some("slave") => {
            let port = items.get(2).and_then(int).unwrap_or(0) as u16;
            let up = items.get(3).and_then(text).as_deref() == Some("connected");
            (Role::Replica, Some((port, up)))
        }
        _ => (Role::Down, None),
    }
}

/// `CLUSTER SLOTS` → sorted ranges, adjacent ranges of one master merged.
fn parse_slots(v: &Value) -> Vec<Range> {
    let mut out: Vec<Range> = Vec::new();
    if let Value::Array(ranges) = v {
        for r in ranges {
            let Value::Array(r) = r else { continue };
            let (Some(a), Some(b)) = (r.first().and_then(int), r.get(1).and_then(int)) else {
                continue;
            };
            let Some(Value::Array(master)) = r.get(2) else {
                continue;
            };
            let Some(id) = master.get(2).and_then(text) else {
                continue;
            };
            out.push((a as u16, b as u16, id));
        }
    }
    out.sort();
    let mut merged: Vec<Range> = Vec::with_capacity(out.len());
    for r in out {
        match merged.last_mut() {
            Some(last) if last.2 == r.2 && u32::from(last.1) + 1 == u32::from(r.0) => last.1 = r.1,
            _ => merged.push(r),
        }
    }
    merged
}

/// `CLUSTER NODES` → id → (port, flags).
fn parse_nodes(text: &str) -> HashMap<String, (u16, Vec<String>)> {
    text.lines()
        .filter_map(|line| {
            let mut f = line.split(' ');
            let id = f.next()?.to_owned();
            let addr = f.next()?;
            let flags = f.next()?.split(',').map(str::to_owned).collect();
            let hostport = addr.split('@').next()?;
            let port = hostport.rsplit_once(':')?.1.parse().ok()?;
            Some((id, (port, flags)))
        })
        .collect()
}
