//! What one simulated run looks like: drawn from its seed.

use core::time::Duration;

use tracklock_core::{Config, NoLoop, Text, Topology, TtlMode};

use super::rng::SimRng;
pub use super::server::RefuseKind;

const MS: u64 = 1_000_000;

/// Fault arrival rates, in events per simulated second (whole world).
#[derive(Debug, Clone, Default)]
pub struct FaultRates {
    /// A locker-node link partitions (heals after a while; TCP stalls).
    pub partition: f64,
    /// A connection resets (in-flight data partly lost).
    pub reset: f64,
    /// A node freezes for a while.
    pub node_pause: f64,
    /// A node restarts keeping its data.
    pub restart_keep: f64,
    /// A node restarts losing its data (kept down for a full lease: delayed restart).
    pub restart_lose: f64,
    /// A locker process freezes (bounded by `Params::locker_pause_max`).
    pub locker_pause: f64,
    /// The admin deletes, overwrites or shortens lock keys.
    pub admin_key: f64,
    /// The admin flushes a node's database.
    pub admin_flush: f64,
    /// The admin flushes a node's script cache.
    pub script_flush: f64,
    /// Cluster: a master with a replica is killed (down past the node
    /// timeout: its replica is promoted, with what it had replicated).
    pub kill_master: f64,
    /// Cluster: a replica takes over its master after catching up.
    pub manual_failover: f64,
    /// Cluster: the slot of a lock key migrates to another master.
    pub migration: f64,
    /// A node answers lock commands with an error for a while (`OOM`,
    /// `NOPERM`, `READONLY`, `LOADING`, `BUSY`, `MISCONF`).
    pub refuse: f64,
    /// A locker's event loop runs late for a while: what arrives from the
    /// network reaches its engine up to `Params::starve_lag_max` late
    /// (its clock and timers run on).
    pub starve: f64,
    /// Sentinel runs: the master is replaced by its replica, which has
    /// what was replicated (see [`SentinelParams`]).
    pub sentinel_switch: f64,
}

impl FaultRates {
    fn total(&self) -> f64 {
        self.partition
            + self.reset
            + self.node_pause
            + self.restart_keep
            + self.restart_lose
            + self.locker_pause
            + self.admin_key
            + self.admin_flush
            + self.script_flush
            + self.kill_master
            + self.manual_failover
            + self.migration
            + self.refuse
            + self.starve
            + self.sentinel_switch
    }
}

/// Everything that shapes one run. [`Params::random`] draws it from a seed;
/// tests may tweak fields before running.
#[derive(Debug, Clone)]
pub struct Params {
    /// The seed (also seeds the run's generator).
    pub seed: u64,
    /// A short name of the profile drawn.
    pub profile: &'static str,
    /// Engine configuration (the same for every locker).
    pub config: Config,
    /// Number of lockers (engines).
    pub lockers: usize,
    /// Workers per locker.
    pub workers: usize,
    /// Lock names.
    pub names: Vec<String>,
    /// Length of the active phase (faults and new locks), ns.
    pub active: u64,
    /// Largest clock rate error of any process, ppm (the safety bound is
    /// `config.drift_ppm / 2` each, so that any two differ by at most `drift_ppm`).
    pub clock_ppm: i64,
    /// Longest locker pause, ns (safety: below the margin).
    pub locker_pause_max: u64,
    /// Link latency: base drawn in `0..=latency_base` ns, jitter in `0..=latency_jitter`.
    pub latency_base: u64,
    /// See `latency_base`.
    pub latency_jitter: u64,
    /// Largest wall-clock offset of a node or locker (absolute TTLs), ms.
    pub wall_offset_ms: i64,
    /// Fault rates.
    pub faults: FaultRates,
    /// Workers sometimes force-lock.
    pub force: bool,
    /// Minimum down time of a data-losing restart, ns.
    pub lose_down_min: u64,
    /// This node's replies are mangled (hostile-bytes runs).
    pub hostile_node: Option<usize>,
    /// Probability that one reply batch of the hostile node is mangled.
    pub hostile_rate: f64,
    /// Mean think time of a worker between requests, ns.
    pub think_mean: u64,
    /// Run the lease and backing checks (stronger than mutual exclusion,
    /// and earlier); off to see mutual exclusion itself break.
    pub lease_checks: bool,
    /// A Redis Cluster run (`config.topology` is `Topology::Cluster`).
    pub cluster: Option<ClusterParams>,
    /// A Redis Sentinel run (single node, `config.follow_failover`).
    pub sentinel: Option<SentinelParams>,
    /// Exempt from mutual exclusion a holder that a failover left without a
    /// majority of its keys (asynchronous replication lost them: no lock
    /// can survive that). Off to see the checker catch it.
    pub failover_exemption: bool,
    /// Longest lag of a starved locker's network input, ns.
    pub starve_lag_max: u64,
    /// Error-reply kinds a `refuse` fault picks from.
    pub refuse_kinds: Vec<RefuseKind>,
    /// Every request is a `Try` (teeth: no waiter for the liveness check).
    pub try_only: bool,
    /// Crowd: locker 1 has only 100 workers, all on the first name.
    pub crowd: bool,
    /// Teeth only: a bug seeded on the world side for the checker to catch.
    pub bug: Option<Bug>,
}

/// A bug the teeth tests seed in the world (never the engine), to show the
/// checker catches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bug {
    /// `Failed` events reach the checker as `NotLocked`.
    FailedAsNotLocked,
    /// `NotLocked` events reach the checker as `Failed(Refused)` with an
    /// error no node sent.
    NotLockedAsRefused,
    /// `Failed` events are swallowed: the call never ends.
    SwallowFailed,
    /// `NotReleased` events are dropped.
    DropNotReleased,
    /// A `NotReleased` is made up before every `Released` of an acquired lock.
    SpuriousNotReleased,
    /// The nodes' release script answers 1 without deleting the key.
    ReleaseNoop,
    /// The nodes' fencing raise answers 1 without raising the counter.
    FenceRaiseNoop,
}

/// Every error-reply kind (`NOPERM` with each single command denied, and all).
pub fn all_refuse_kinds() -> Vec<RefuseKind> {
    vec![
        RefuseKind::Oom,
        RefuseKind::NoPerm(0b0001),
        RefuseKind::NoPerm(0b0010),
        RefuseKind::NoPerm(0b1100),
        RefuseKind::NoPerm(0b1111),
        RefuseKind::ReadOnly,
        RefuseKind::Loading,
        RefuseKind::Busy,
        RefuseKind::Misconf,
    ]
}

/// The shape of a simulated Redis Cluster.
#[derive(Debug, Clone)]
pub struct ClusterParams {
    /// Masters (shards).
    pub masters: usize,
    /// Per master: it has a replica (nodes `masters..` in shard order).
    pub replicas: Vec<bool>,
    /// Seed nodes each locker is given (a random subset, replicas too).
    pub seeds: u16,
    /// Failure detection: a dead master is flagged as failed this long
    /// (plus up to half of it) after it died, and its replica promoted
    /// 500–1000 ms later (Redis' election delay), ns.
    pub node_timeout: u64,
    /// Nodes a configuration change does not concern learn it within this, ns.
    pub gossip_max: u64,
    /// Replication delay of a write: `repl_base` plus up to `repl_jitter`, ns.
    pub repl_base: u64,
    /// See `repl_base`.
    pub repl_jitter: u64,
    /// Every node is Redis 6.2 (no `CLUSTER SHARDS`: the engine falls back
    /// to `CLUSTER SLOTS`).
    pub redis6: bool,
    /// `cluster-require-full-coverage yes`: `-CLUSTERDOWN` while a master
    /// is flagged as failed and not replaced yet.
    pub full_coverage: bool,
}

impl ClusterParams {
    /// Nodes in the cluster.
    pub fn nodes(&self) -> usize {
        self.masters + self.replicas.iter().filter(|r| **r).count()
    }
}

/// The shape of a Redis Sentinel run: one master whose replica copies it
/// every `sync_min..=sync_max` ns (a snapshot: a prefix of the master's
/// writes); a switch replaces the master's data with the last copy, or,
/// with probability `catch_up`, with everything (a failover after the
/// replica caught up).
#[derive(Debug, Clone)]
pub struct SentinelParams {
    /// Shortest replication period, ns.
    pub sync_min: u64,
    /// Longest replication period, ns.
    pub sync_max: u64,
    /// Probability that a switch loses nothing.
    pub catch_up: f64,
}

/// Seeds the draws of a sentinel run, apart from the standalone ones.
const SENTINEL_STREAM: u64 = 0x5e47_19e1_0000_0001;

/// Seeds the draws of a cluster run, apart from the standalone ones.
const CLUSTER_STREAM: u64 = 0xc105_7e12_5eed_0001;

/// Seeds the draws of error-reply and starvation faults.
const REFUSE_STREAM: u64 = 0x2ef0_5e00_57a2_0001;

/// Seeds the fencing draw. Chosen so that `sim_regressions`' seed 2086 of
/// `Params::random` keeps the unfenced run it was recorded with (the
/// same-run seeds get both kinds).
const FENCE_STREAM: u64 = 0xfe4c_e000_0000_000c;

/// Seeds the fairness draw (`Config::fair`), a stream of its own so every
/// other draw of a seed stays the same.
const FAIR_STREAM: u64 = 0xfa12_0000_0000_0001;

/// The HELLO versions nodes may report.
pub const VERSIONS: [&str; 3] = ["7.0.15", "7.2.4", "7.0.4"];

impl Params {
    /// The safe profile space: drift and pauses within the configured
    /// bounds; a quarter of the seeds run a Redis Cluster (the others run
    /// exactly as [`Params::standalone`] draws them).
    pub fn random(seed: u64) -> Params {
        let mut pick = SimRng::new(seed ^ CLUSTER_STREAM);
        let p = Params::standalone(seed);
        let p = if pick.chance(0.25) {
            p.into_cluster(&mut pick)
        } else {
            p
        };
        p.with_refusals(seed).with_fencing(seed).with_fair(seed)
    }

    /// Turns `Config::fair` on for a quarter of the seeds: pauses after
    /// releases must not break exclusion, stall a waiter or lose a wake-up.
    pub fn with_fair(mut self, seed: u64) -> Params {
        if SimRng::new(seed ^ FAIR_STREAM).chance(0.25) {
            self.config = self.config.with_fair(true);
            self.profile = Box::leak(format!("{}+fair", self.profile).into_boxed_str());
        }
        self
    }

    /// Turns fencing tokens on for half of the seeds (drawn from a stream
    /// of their own, so every other draw of a seed stays the same). The
    /// checker then also checks the token order (`check/fencing.rs`).
    pub fn with_fencing(mut self, seed: u64) -> Params {
        if SimRng::new(seed ^ FENCE_STREAM).chance(0.5) {
            self.config = self.config.with_fencing(true);
            self.profile = Box::leak(format!("{}+fencing", self.profile).into_boxed_str());
        }
        self
    }

    /// Adds error-reply windows and starved lockers to some of the
    /// profiles (drawn from their own stream, so that the rest of a seed's
    /// draws stay what [`Params::standalone`] and the cluster give).
    pub fn with_refusals(mut self, seed: u64) -> Params {
        let mut rng = SimRng::new(seed ^ REFUSE_STREAM);
        if self.profile.ends_with("calm") {
            return self;
        }
        let refuse = rng.chance(0.4);
        let starve = rng.chance(0.25);
        if refuse {
            self.faults.refuse = *rng.pick(&[0.3, 0.6, 1.0]);
            self.refuse_kinds = all_refuse_kinds();
        }
        if starve {
            self.faults.starve = *rng.pick(&[0.2, 0.5]);
            self.starve_lag_max = *rng.pick(&[20 * MS, 100 * MS, 300 * MS]);
        }
        let tag = match (refuse, starve) {
            (true, true) => "+refuse+starve",
            (true, false) => "+refuse",
            (false, true) => "+starve",
            (false, false) => return self,
        };
        self.profile = Box::leak(format!("{}{tag}", self.profile).into_boxed_str());
        self
    }

    /// Error replies everywhere: a single node or instances, every
    /// error-reply kind often, `Try` requests common (see `Bug`).
    pub fn refusals(seed: u64) -> Params {
        let mut p = Params::standalone(seed);
        p.profile = "refusals";
        p.faults = FaultRates {
            refuse: 3.0,
            ..FaultRates::default()
        };
        p.refuse_kinds = all_refuse_kinds();
        p.force = false;
        p.with_fencing(seed)
    }

    /// A crowd: one locker with 1,200 workers (each with a request at a
    /// time, mostly `Wait`) over 40 names, one with 100 on a single name,
    /// under error replies and starvation.
    pub fn crowd(seed: u64) -> Params {
        let mut p = Params::standalone(seed).with_refusals(seed);
        p.profile = "crowd";
        p.lockers = 2;
        p.workers = 1_200;
        p.crowd = true;
        p.names = (0..40).map(|i| format!("n{i}")).collect();
        p.active = 800 * MS;
        p.think_mean = 100 * MS;
        // The active phase is short (800 ms): at 0.5 and 0.3 a second, 20
        // seeds saw 4 error windows and 6 starvations in all; at 4 and 2 a
        // seed took up to 10 times longer. The world adds one of each to
        // every crowd run (`Ev::ForcedFault`), these rates add more.
        p.faults.refuse = 1.0;
        p.refuse_kinds = all_refuse_kinds();
        p.faults.starve = 0.6;
        p.starve_lag_max = 100 * MS;
        p
    }

    /// A Redis Cluster run for `seed`: the same run as [`Params::random`]
    /// gives when it picks a cluster for that seed.
    pub fn cluster(seed: u64) -> Params {
        let mut pick = SimRng::new(seed ^ CLUSTER_STREAM);
        let _ = pick.chance(0.25);
        Params::standalone(seed)
            .into_cluster(&mut pick)
            .with_fencing(seed)
    }

    /// Teeth for the cluster: one key per lock (`m = 1`), every master with
    /// a slow replica, masters killed often, and the failover exemption
    /// off. A failover that loses a held key's write hands the lock out
    /// twice; the checker must see it.
    pub fn cluster_teeth(seed: u64) -> Params {
        let kill_master = FaultRates {
            kill_master: 3.0,
            ..FaultRates::default()
        };
        let mut p = Params::cluster(seed).into_failover_teeth("cluster-teeth", kill_master);
        p.config = p.config.with_key_majority(1);
        let c = p.cluster.as_mut().expect("cluster");
        c.replicas = vec![true; c.masters];
        c.repl_base = 100 * MS;
        c.repl_jitter = 300 * MS;
        c.node_timeout = 200 * MS;
        p
    }

    /// A Redis Sentinel run for `seed`: a standalone draw on one node that
    /// follows failovers, with master switches (some losing what the
    /// replica had not copied yet) on top of the profile's faults.
    pub fn sentinel(seed: u64) -> Params {
        let mut p = Params::standalone(seed);
        let mut rng = SimRng::new(seed ^ SENTINEL_STREAM);
        p.profile = match p.profile {
            "calm" => "sentinel-calm",
            "network" => "sentinel-network",
            "nodes" => "sentinel-nodes",
            "admin" => "sentinel-admin",
            _ => "sentinel-chaos",
        };
        p.config = p
            .config
            .with_topology(Topology::Single)
            .with_follow_failover(true);
        // Wall clocks agree: with absolute TTLs, a node whose wall clock
        // lags keeps a key past the engine's "certainly expired" (which
        // allows for drift and the margin only). That is not about
        // Sentinel; the standalone runs cover offsets.
        p.wall_offset_ms = 0;
        p.faults.sentinel_switch = *rng.pick(&[0.3, 0.6, 1.0]);
        let sync_max = *rng.pick(&[MS, 10 * MS, 50 * MS, 300 * MS]);
        p.sentinel = Some(SentinelParams {
            sync_min: sync_max / 10,
            sync_max,
            catch_up: *rng.pick(&[0.0, 0.5, 0.9]),
        });
        p
    }

    /// Teeth for sentinel mode: a slow replica, switches often, nothing
    /// caught up, and the failover exemption off. A switch that loses a
    /// held lock's keys hands the lock out twice; the checker must see it.
    pub fn sentinel_teeth(seed: u64) -> Params {
        let switch = FaultRates {
            sentinel_switch: 3.0,
            ..FaultRates::default()
        };
        let mut p = Params::sentinel(seed).into_failover_teeth("sentinel-teeth", switch);
        p.sentinel = Some(SentinelParams {
            sync_min: 200 * MS,
            sync_max: 500 * MS,
            catch_up: 0.0,
        });
        p
    }

    /// What the failover teeth share: three lockers of two workers on one
    /// name with 2 s leases, `faults` only, no forcing, and mutual
    /// exclusion alone checked (no lease checks, no failover exemption).
    fn into_failover_teeth(mut self, profile: &'static str, faults: FaultRates) -> Params {
        self.profile = profile;
        self.config = self
            .config
            .with_validity(Duration::from_millis(2000))
            .with_extend_interval(None);
        self.lockers = 3;
        self.workers = 2;
        self.names = vec!["n0".into()];
        self.think_mean = 5 * MS;
        self.faults = faults;
        self.force = false;
        self.lease_checks = false;
        self.failover_exemption = false;
        self
    }

    /// Turns a standalone draw into a cluster run: 2–3 masters, most with
    /// a replica, database 0, the cluster faults on top of the profile's.
    fn into_cluster(mut self, rng: &mut SimRng) -> Params {
        let masters = rng.range(2, 3) as usize;
        let replicas: Vec<bool> = (0..masters).map(|_| rng.chance(0.8)).collect();
        let nodes = masters + replicas.iter().filter(|r| **r).count();
        let seeds = rng.range(1, nodes.min(3) as u64) as u16;
        self.config = self
            .config
            .with_topology(Topology::Cluster(seeds))
            .with_database(0);
        if rng.chance(0.2) {
            // Hash tags: every key of a lock in one slot, on one master.
            self.names = (0..self.names.len())
                .map(|i| format!("{{t}}n{i}"))
                .collect();
        }
        let planned = FaultRates {
            manual_failover: 0.2,
            migration: 0.4,
            ..FaultRates::default()
        };
        let (profile, extra) = match self.profile {
            "calm" => ("cluster-calm", planned),
            "network" => ("cluster-network", planned),
            "nodes" => (
                "cluster-nodes",
                FaultRates {
                    kill_master: 0.5,
                    manual_failover: 0.3,
                    migration: 0.4,
                    ..FaultRates::default()
                },
            ),
            "admin" => (
                "cluster-admin",
                FaultRates {
                    kill_master: 0.3,
                    ..planned
                },
            ),
            _ => (
                "cluster-chaos",
                FaultRates {
                    kill_master: 0.3,
                    manual_failover: 0.3,
                    migration: 0.5,
                    ..FaultRates::default()
                },
            ),
        };
        self.profile = profile;
        self.faults.kill_master = extra.kill_master;
        self.faults.manual_failover = extra.manual_failover;
        self.faults.migration = extra.migration;
        self.cluster = Some(ClusterParams {
            masters,
            replicas,
            seeds,
            node_timeout: *rng.pick(&[150 * MS, 300 * MS, 600 * MS, 1_000 * MS]),
            gossip_max: *rng.pick(&[0, 10 * MS, 100 * MS, 500 * MS]),
            repl_base: *rng.pick(&[100_000, MS, 10 * MS, 50 * MS]),
            repl_jitter: *rng.pick(&[0, MS, 20 * MS, 200 * MS]),
            redis6: rng.chance(0.1),
            full_coverage: rng.chance(0.5),
        });
        self
    }

    /// The standalone profile space (single node or independent instances).
    pub fn standalone(seed: u64) -> Params {
        let mut rng = SimRng::new(seed ^ 0x5157_0000_7061_7261);
        let (topology, nodes) = match rng.below(20) {
            0..=9 => (Topology::Single, 1),
            10..=16 => (Topology::Instances(3), 3),
            _ => (Topology::Instances(2), 2),
        };
        let majority = *rng.pick(&[1u8, 2, 2, 2, 3]);
        let validity = Duration::from_millis(*rng.pick(&[200u64, 500, 1000, 1000, 2000, 5000]));
        let extend_interval = if rng.chance(0.3) {
            Some(validity * rng.range(20, 70) as u32 / 100)
        } else {
            None
        };
        let drift_ppm = *rng.pick(&[0u32, 1_000, 10_000, 10_000, 20_000]);
        let margin = Duration::from_millis(*rng.pick(&[1u64, 2, 5, 5, 20, 50]));
        // Drawn in this order (the order of the former struct literal), so
        // recorded seeds replay the same.
        let config = Config::default()
            .with_prefix(
                Text::new(if rng.chance(0.8) {
                    "rueidislock"
                } else {
                    "app.locks"
                })
                .unwrap(),
            )
            .with_key_majority(majority)
            .with_validity(validity)
            .with_extend_interval(extend_interval)
            .with_try_next_after(Duration::from_millis(*rng.pick(&[5u64, 10, 20, 20, 50])))
            .with_drift_ppm(drift_ppm)
            .with_margin(margin)
            .with_noloop(*rng.pick(&[NoLoop::Auto, NoLoop::Auto, NoLoop::On, NoLoop::Off]))
            .with_client_caching(rng.chance(0.75))
            .with_ttl_mode(if rng.chance(0.2) {
                TtlMode::Absolute
            } else {
                TtlMode::Relative
            })
            .with_topology(topology)
            .with_username(None)
            .with_password(if rng.chance(0.3) {
                Text::new("sim-secret")
            } else {
                None
            })
            .with_client_name(if rng.chance(0.3) {
                Text::new("sim")
            } else {
                None
            })
            .with_database(if rng.chance(0.2) { 3 } else { 0 })
            .with_ping_interval(Duration::from_millis(*rng.pick(&[100u64, 300, 1000])))
            .with_local_handoff(*rng.pick(&[0u8, 0, 1, 3]));
        // Twice the ping interval: the handshake deadline the engine had
        // before it became a setting, so recorded seeds replay the same.
        let handshake_timeout = config.ping_interval() * 2;
        let mut config = config.with_handshake_timeout(handshake_timeout);
        let _ = nodes;
        let lockers = rng.range(2, 4) as usize;
        let workers = rng.range(1, 3) as usize;
        let names = (0..rng.range(1, 3)).map(|i| format!("n{i}")).collect();
        let clock_ppm = i64::from(drift_ppm / 2);
        // Pauses strictly below the margin as measured by the fastest clock.
        let margin_ns = margin.as_nanos() as u64;
        let locker_pause_max =
            (margin_ns as u128 * 1_000_000 / (1_000_000 + clock_ppm as u128)) as u64 - 1_000;
        let latency_base = *rng.pick(&[50_000u64, 500_000, 2 * MS, 5 * MS]);
        let latency_jitter = *rng.pick(&[0u64, 100_000, MS, 5 * MS]);
        // contract §4 (`tracklock_core::contract`): a key that has not answered within try_next_after counts
        // as failed, so with a round trip above it no attempt can ever
        // succeed (a livelock the simulator found). Keep it above the
        // largest round trip, as a deployment must.
        let rtt_max = 2 * (latency_base + latency_jitter);
        let try_next_after = config
            .try_next_after()
            .max(Duration::from_nanos(rtt_max + 2 * MS));
        config = config.with_try_next_after(try_next_after);
        let profile_pick = rng.below(10);
        let (profile, faults, force) = match profile_pick {
            0..=1 => ("calm", FaultRates::default(), false),
            2..=3 => (
                "network",
                FaultRates {
                    partition: 0.6,
                    reset: 0.6,
                    locker_pause: 1.0,
                    ..FaultRates::default()
                },
                false,
            ),
            4..=5 => (
                "nodes",
                FaultRates {
                    node_pause: 0.3,
                    restart_keep: 0.2,
                    restart_lose: 0.05,
                    script_flush: 0.2,
                    locker_pause: 0.5,
                    ..FaultRates::default()
                },
                false,
            ),
            6..=7 => (
                "admin",
                FaultRates {
                    admin_key: 1.0,
                    admin_flush: 0.1,
                    script_flush: 0.2,
                    ..FaultRates::default()
                },
                true,
            ),
            _ => (
                "chaos",
                FaultRates {
                    partition: 0.3,
                    reset: 0.3,
                    node_pause: 0.1,
                    restart_keep: 0.1,
                    restart_lose: 0.03,
                    locker_pause: 0.5,
                    admin_key: 0.3,
                    admin_flush: 0.03,
                    script_flush: 0.1,
                    ..FaultRates::default()
                },
                rng.chance(0.5),
            ),
        };
        let validity_ns = validity.as_nanos() as u64;
        Params {
            seed,
            profile,
            config,
            lockers,
            workers,
            names,
            active: rng.range(3, 6) * 1_000 * MS,
            clock_ppm,
            locker_pause_max,
            latency_base,
            latency_jitter,
            // Absolute TTLs need wall clocks that agree well within a lease.
            wall_offset_ms: if rng.chance(0.5) {
                0
            } else {
                (validity.as_millis() as i64 / 10).min(200)
            },
            faults,
            force,
            lose_down_min: validity_ns
                + validity_ns * u64::from(drift_ppm) / 1_000_000
                + margin_ns
                + 10 * MS,
            hostile_node: None,
            hostile_rate: 0.0,
            think_mean: 30 * MS,
            lease_checks: true,
            cluster: None,
            sentinel: None,
            failover_exemption: true,
            starve_lag_max: 0,
            refuse_kinds: Vec::new(),
            try_only: false,
            crowd: false,
            bug: None,
        }
    }

    /// A configuration outside the safety bounds: no margin, no drift
    /// allowance, clocks 2 % off and locker pauses of up to 300 ms. A lease
    /// cannot be safe here; the simulator must notice.
    pub fn broken(seed: u64) -> Params {
        let mut p = Params::standalone(seed);
        p.profile = "broken";
        p.config = p
            .config
            .with_margin(Duration::ZERO)
            .with_drift_ppm(0)
            .with_validity(Duration::from_millis(500))
            .with_extend_interval(None);
        p.clock_ppm = 20_000;
        p.locker_pause_max = 300 * MS;
        p.lose_down_min = 0;
        p.lockers = 3;
        p.names = vec!["n0".into()];
        p.faults = FaultRates {
            partition: 2.0,
            locker_pause: 4.0,
            ..FaultRates::default()
        };
        p.force = false;
        p
    }

    /// The hostile-bytes profile: two instances, node 1's replies mangled;
    /// node 0 holds a majority of every lock by itself (`m = 2`: keys 0 and 2).
    pub fn hostile(seed: u64) -> Params {
        let mut p = Params::standalone(seed);
        p.profile = "hostile";
        p.config = p
            .config
            .with_topology(Topology::Instances(2))
            .with_key_majority(2)
            .with_validity(Duration::from_millis(1000))
            .with_extend_interval(None);
        p.faults = FaultRates::default();
        p.force = false;
        p.hostile_node = Some(1);
        p.hostile_rate = 0.3;
        p.active = 3_000 * MS;
        p
    }

    /// Mean time between faults, ns (`None`: no faults).
    pub fn fault_interval(&self) -> Option<f64> {
        let t = self.faults.total();
        (t > 0.0).then(|| 1e9 / t)
    }
}
