//! What one simulated run looks like: drawn from its seed.

use core::time::Duration;

use tracklock_core::{Config, NoLoop, Text, Topology, TtlMode};

use super::rng::SimRng;

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
}

/// The HELLO versions nodes may report.
pub const VERSIONS: [&str; 3] = ["7.0.15", "7.2.4", "7.0.4"];

impl Params {
    /// The safe profile space: drift and pauses within the configured bounds.
    pub fn random(seed: u64) -> Params {
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
        let config = Config {
            prefix: Text::new(if rng.chance(0.8) {
                "rueidislock"
            } else {
                "app.locks"
            })
            .unwrap(),
            key_majority: majority,
            validity,
            extend_interval,
            try_next_after: Duration::from_millis(*rng.pick(&[5u64, 10, 20, 20, 50])),
            drift_ppm,
            margin,
            noloop: *rng.pick(&[NoLoop::Auto, NoLoop::Auto, NoLoop::On, NoLoop::Off]),
            client_caching: rng.chance(0.75),
            ttl_mode: if rng.chance(0.2) {
                TtlMode::Absolute
            } else {
                TtlMode::Relative
            },
            topology,
            username: None,
            password: if rng.chance(0.3) {
                Text::new("sim-secret")
            } else {
                None
            },
            client_name: if rng.chance(0.3) {
                Text::new("sim")
            } else {
                None
            },
            database: if rng.chance(0.2) { 3 } else { 0 },
            ping_interval: Duration::from_millis(*rng.pick(&[100u64, 300, 1000])),
            local_handoff: *rng.pick(&[0u8, 0, 1, 3]),
        };
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
        // SPEC §4: a key that has not answered within try_next_after counts
        // as failed, so with a round trip above it no attempt can ever
        // succeed (a livelock the simulator found). Keep it above the
        // largest round trip, as a deployment must.
        let rtt_max = 2 * (latency_base + latency_jitter);
        let mut config = config;
        config.try_next_after = config
            .try_next_after
            .max(Duration::from_nanos(rtt_max + 2 * MS));
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
        }
    }

    /// A configuration outside the safety bounds: no margin, no drift
    /// allowance, clocks 2 % off and locker pauses of up to 300 ms. A lease
    /// cannot be safe here; the simulator must notice.
    pub fn broken(seed: u64) -> Params {
        let mut p = Params::random(seed);
        p.profile = "broken";
        p.config.margin = Duration::ZERO;
        p.config.drift_ppm = 0;
        p.config.validity = Duration::from_millis(500);
        p.config.extend_interval = None;
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
        let mut p = Params::random(seed);
        p.profile = "hostile";
        p.config.topology = Topology::Instances(2);
        p.config.key_majority = 2;
        p.config.validity = Duration::from_millis(1000);
        p.config.extend_interval = None;
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
