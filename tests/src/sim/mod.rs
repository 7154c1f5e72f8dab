//! Deterministic simulation of tracklock (FoundationDB style, shaped like
//! quinn-proto's test `Pair`): the real, unmodified [`tracklock_core::Engine`]
//! against simulated Redis nodes, network and clocks.
//!
//! - [`server`]: Redis 7.0 nodes speaking RESP3 bytes (keyspace with ms TTLs
//!   on a drifting clock, lazy and sampled active expiry, client tracking
//!   with one-shot invalidations and own-write echoes, the engine's scripts
//!   executed natively, `NOSCRIPT` after restarts and `SCRIPT FLUSH`, an admin,
//!   windows of error replies: `OOM`, `NOPERM`, `READONLY`, `LOADING`,
//!   `BUSY`, `MISCONF`).
//! - [`net`]: per-connection FIFO pipes with latency and jitter, partitions
//!   that stall and heal, closes and resets that lose in-flight data.
//! - [`world`]: lockers (engines with drifting clocks and their own seeds),
//!   workers that lock (`Wait`/`Try`/`Force`), hold, unlock and cancel, the
//!   fault injector (partitions, resets, node pauses and restarts with and
//!   without data, locker pauses, starved lockers whose network input
//!   reaches the engine late, error-reply windows, admin
//!   deletes/overwrites/`PEXPIRE`/flushes)
//!   and the discrete-event loop: time jumps to the next event, and the
//!   world calls `handle_timeout` exactly at each engine's `poll_timeout`.
//! - [`cluster`]: Redis Cluster mode (hash slots, configuration versions
//!   seen through lagging per-node views, `MOVED`/`ASK`, `CLUSTER SHARDS`
//!   and `SLOTS`); the world adds asynchronous replication, failover after
//!   a node timeout, manual failover and slot migration.
//! - [`check`] (module docs list the invariants): the oracle of the
//!   behaviour contract (`tracklock_core::contract` §9), fed observations
//!   by the world as they happen and reading the rest through a narrow
//!   read-only view (`check::Facts`).
//!
//! One seed reproduces one run exactly: every choice comes from one
//! [`SimRng`] seeded with it, collections are ordered, and engines get
//! seeds drawn from it. On a violation the seed is re-run with tracing on,
//! the last events are printed with the seed and the replay command.
//!
//! Environment: `TRACKLOCK_SIM_SEEDS=N` sets a batch's seed count,
//! `TRACKLOCK_SIM_BASE=B` shifts its first seed by `B`;
//! `TRACKLOCK_SIM_SEED=S` replays one seed with its full trace printed.

pub mod check;
pub mod clock;
pub mod cluster;
pub mod hostile;
mod keys;
pub mod net;
pub mod params;
pub mod rng;
pub mod server;
pub mod world;
mod world_check;
mod world_cluster;
mod world_sentinel;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

pub use params::{Bug, FaultRates, Params, RefuseKind, SentinelParams};
pub use rng::SimRng;
pub use world::World;

/// Counters of one run, or summed over a batch.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Seeds run.
    pub seeds: u64,
    /// Simulated time, ns.
    pub simulated_ns: u64,
    /// Discrete events processed.
    pub steps: u64,
    /// Engine events drained.
    pub events: u64,
    /// Network messages (chunks) sent.
    pub messages: u64,
    /// Lock requests made.
    pub requests: u64,
    /// `Acquired` events.
    pub acquired: u64,
    /// `NotLocked` events.
    pub not_locked: u64,
    /// `Failed` events (refusals, nodes unavailable, too slow).
    pub failed: u64,
    /// `NotReleased` events (refused releases).
    pub not_released: u64,
    /// `Failed` events by cause.
    pub failures: BTreeMap<String, u64>,
    /// Unlocks and cancellations by workers.
    pub unlocks: u64,
    /// `Lost` events by reason.
    pub lost: BTreeMap<String, u64>,
    /// Faults injected by kind.
    pub faults: BTreeMap<&'static str, u64>,
    /// Connections the engines asked to close.
    pub closes: u64,
    /// Prompt-loss checks that ran to their deadline or were satisfied.
    pub prompt_checked: u64,
    /// Prompt-loss checks skipped (locker or nodes disturbed).
    pub prompt_skipped: u64,
    /// Liveness samples where a waiter was healthy and the name free.
    pub liveness_samples: u64,
    /// Keys written by bytes still in flight after their connection was dropped.
    pub orphan_writes: u64,
    /// Reply batches mangled by a hostile node.
    pub mangled: u64,
    /// Local hand-offs seen.
    pub handoffs: u64,
    /// Pairs of fenced grants whose token order the checker compared.
    pub fence_checked: u64,
    /// Redis Cluster counters (redirects, topology queries, nodes learned,
    /// keys lost by failovers...).
    pub cluster: BTreeMap<&'static str, u64>,
}

impl Stats {
    /// Adds `o` into `self`.
    pub fn merge(&mut self, o: &Stats) {
        self.seeds += o.seeds;
        self.simulated_ns += o.simulated_ns;
        self.steps += o.steps;
        self.events += o.events;
        self.messages += o.messages;
        self.requests += o.requests;
        self.acquired += o.acquired;
        self.not_locked += o.not_locked;
        self.failed += o.failed;
        self.not_released += o.not_released;
        add_counts(&mut self.failures, &o.failures);
        self.unlocks += o.unlocks;
        add_counts(&mut self.lost, &o.lost);
        add_counts(&mut self.faults, &o.faults);
        self.closes += o.closes;
        self.prompt_checked += o.prompt_checked;
        self.prompt_skipped += o.prompt_skipped;
        self.liveness_samples += o.liveness_samples;
        self.orphan_writes += o.orphan_writes;
        self.mangled += o.mangled;
        self.handoffs += o.handoffs;
        self.fence_checked += o.fence_checked;
        add_counts(&mut self.cluster, &o.cluster);
    }
}

/// Adds every count of `from` to the same key's count in `into`.
fn add_counts<K: Ord + Clone>(into: &mut BTreeMap<K, u64>, from: &BTreeMap<K, u64>) {
    for (k, v) in from {
        *into.entry(k.clone()).or_default() += v;
    }
}

impl Stats {
    /// Panics unless every fault kind in `kinds` was injected in the batch.
    pub fn assert_faults_seen(&self, kinds: &[&str]) {
        self.assert_seen(&self.faults, kinds);
    }

    /// Panics unless every Redis Cluster counter in `counters` moved.
    pub fn assert_cluster_seen(&self, counters: &[&str]) {
        self.assert_seen(&self.cluster, counters);
    }

    fn assert_seen(&self, counts: &BTreeMap<&'static str, u64>, names: &[&str]) {
        for name in names {
            assert!(
                counts.get(name).copied().unwrap_or(0) > 0,
                "no {name} in the batch: {self}"
            );
        }
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "seeds {}, simulated {:.1} s, steps {}, engine events {}, messages {}",
            self.seeds,
            self.simulated_ns as f64 / 1e9,
            self.steps,
            self.events,
            self.messages
        )?;
        writeln!(
            f,
            "requests {}, acquired {}, not locked {}, failed {}, not released {}, unlocks/cancels {}, lost {:?}, connection closes {}",
            self.requests,
            self.acquired,
            self.not_locked,
            self.failed,
            self.not_released,
            self.unlocks,
            self.lost,
            self.closes
        )?;
        if !self.failures.is_empty() {
            writeln!(f, "failed by cause {:?}", self.failures)?;
        }
        writeln!(f, "faults {:?}", self.faults)?;
        write!(
            f,
            "prompt-loss checks {} (skipped {}), liveness samples {}, orphan writes {}, mangled batches {}, local hand-offs {}, fenced grant pairs checked {}",
            self.prompt_checked,
            self.prompt_skipped,
            self.liveness_samples,
            self.orphan_writes,
            self.mangled,
            self.handoffs,
            self.fence_checked
        )?;
        if !self.cluster.is_empty() {
            write!(f, "\ncluster {:?}", self.cluster)?;
        }
        Ok(())
    }
}

/// A violation, with what is needed to replay it.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The seed.
    pub seed: u64,
    /// Its profile.
    pub profile: &'static str,
    /// What went wrong.
    pub what: String,
    /// The last events before it (from a traced replay).
    pub trace: Vec<String>,
    /// The traced replay failed the same way.
    pub replayed: bool,
}

impl Failure {
    /// The report: seed, violation, last events and how to replay.
    pub fn report(&self, test: &str) -> String {
        let tail: Vec<&String> = self.trace.iter().rev().take(200).collect();
        let mut s = format!(
            "simulation seed {} (profile {}) violated: {}\n--- last {} events ---\n",
            self.seed,
            self.profile,
            self.what,
            tail.len()
        );
        for line in tail.into_iter().rev() {
            s.push_str(line);
            s.push('\n');
        }
        if !self.replayed {
            s.push_str("WARNING: the traced replay did not fail the same way (non-determinism)\n");
        }
        s.push_str(&format!(
            "replay: TRACKLOCK_SIM_SEED={} cargo test -p tracklock-tests --test {test} -- --nocapture\n",
            self.seed
        ));
        s
    }
}

/// Runs `params` once; `Err` holds the violation.
pub fn run(params: Params) -> Result<Stats, String> {
    run_traced(params, false, false).0
}

/// Runs `params` once, optionally tracing (and echoing) every event.
pub fn run_traced(
    params: Params,
    tracing: bool,
    echo: bool,
) -> (Result<Stats, String>, Vec<String>) {
    let mut w = World::new(params, tracing, echo);
    // A panic (in the engine or the simulator) is reported as a violation.
    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| w.run()));
    if let Err(p) = ran {
        let msg = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "non-string panic".into());
        w.failure.get_or_insert(format!("panic: {msg}"));
    }
    let mut stats = w.take_stats();
    stats.simulated_ns = w.now;
    let trace = w.trace.drain(..).collect();
    match w.failure.take() {
        Some(f) => (Err(f), trace),
        None => (Ok(stats), trace),
    }
}

/// Runs one seed; on a violation re-runs it traced to collect the events.
pub fn check_seed(make: fn(u64) -> Params, seed: u64) -> Result<Stats, Failure> {
    let p = make(seed);
    let profile = p.profile;
    match run(p) {
        Ok(s) => Ok(s),
        Err(what) => {
            let (again, trace) = run_traced(make(seed), true, false);
            Err(Failure {
                seed,
                profile,
                replayed: again.as_ref().err() == Some(&what),
                what,
                trace,
            })
        }
    }
}

/// The violation of the first of seeds `0..seeds` that `make` fails on.
pub fn first_violation(make: fn(u64) -> Params, seeds: u64) -> Option<Failure> {
    (0..seeds).find_map(|seed| check_seed(make, seed).err())
}

/// The first of seeds `0..seeds` that `make` fails on, for teeth tests: it
/// must be a mutual-exclusion violation and replay to itself, traced and
/// untraced. `why` says what should have broken when no seed fails.
/// `test` names the test binary for the report.
pub fn first_exclusion_violation(
    test: &str,
    make: fn(u64) -> Params,
    seeds: u64,
    why: &str,
) -> Failure {
    let f = first_violation(make, seeds)
        .unwrap_or_else(|| panic!("no violation in {seeds} seeds {why}"));
    assert!(
        f.what.starts_with("mutual exclusion"),
        "expected a mutual-exclusion violation, got: {}",
        f.report(test)
    );
    println!("found after {} seeds:\n{}", f.seed + 1, f.report(test));
    assert!(f.replayed, "the traced replay differed");
    let again = run(make(f.seed)).expect_err("the seed must fail again");
    assert_eq!(again, f.what, "the seed replays to the same violation");
    f
}

/// Teeth of the failover exemption: `make` draws runs with it off, where a
/// failover that loses a held lock's keys lets a second locker take the
/// name. The first such violation ([`first_exclusion_violation`]) must
/// pass with the exemption on, and the exemption must have come into play.
pub fn failover_loss_breaks_exclusion(test: &str, make: fn(u64) -> Params, seeds: u64, why: &str) {
    let f = first_exclusion_violation(test, make, seeds, why);
    let mut exempt = make(f.seed);
    exempt.failover_exemption = true;
    let stats = run(exempt).unwrap_or_else(|e| panic!("with the exemption: {e}"));
    assert!(
        stats.cluster.get("undermined").copied().unwrap_or(0) > 0,
        "the exemption did not come into play: {stats}"
    );
}

/// Reads a `u64` environment variable.
pub fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// Runs a batch of seeds `base..base+count` on a few threads (or replays
/// `TRACKLOCK_SIM_SEED` traced), prints a summary, and panics with the
/// failing seed's report on the first violation. `test` names the test
/// binary for the replay command.
pub fn batch(test: &str, make: fn(u64) -> Params, base: u64, default_seeds: u64) -> Stats {
    if let Some(seed) = env_u64("TRACKLOCK_SIM_SEED") {
        let p = make(seed);
        println!("replaying seed {seed}: {p:#?}");
        let profile = p.profile;
        let (r, trace) = run_traced(p, true, true);
        match r {
            Ok(s) => {
                println!("seed {seed} passed\n{s}");
                return s;
            }
            Err(what) => {
                let f = Failure {
                    seed,
                    profile,
                    what,
                    trace,
                    replayed: true,
                };
                panic!("{}", f.report(test));
            }
        }
    }
    let count = env_u64("TRACKLOCK_SIM_SEEDS").unwrap_or(default_seeds);
    // `TRACKLOCK_SIM_BASE=B` shifts the batch (soaks past a known failure).
    let base = base + env_u64("TRACKLOCK_SIM_BASE").unwrap_or(0);
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 4);
    let verbose = env_u64("TRACKLOCK_SIM_VERBOSE").is_some();
    let next = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let total = Mutex::new(Stats::default());
    let failure: Mutex<Option<Failure>> = Mutex::new(None);
    let started = std::time::Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut mine = Stats::default();
                while !stop.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count {
                        break;
                    }
                    let t0 = std::time::Instant::now();
                    let r = check_seed(make, base + i);
                    if verbose {
                        println!("seed {} took {:?}", base + i, t0.elapsed());
                    }
                    match r {
                        Ok(st) => mine.merge(&st),
                        Err(f) => {
                            stop.store(true, Ordering::Relaxed);
                            let mut slot = failure.lock().unwrap();
                            if slot.as_ref().is_none_or(|g| f.seed < g.seed) {
                                *slot = Some(f);
                            }
                        }
                    }
                }
                total.lock().unwrap().merge(&mine);
            });
        }
    });
    let elapsed = started.elapsed().as_secs_f64();
    let stats = total.into_inner().unwrap();
    println!(
        "{test}: {} seeds in {elapsed:.2} s ({:.0} seeds/s, {threads} threads)\n{stats}",
        stats.seeds,
        stats.seeds as f64 / elapsed.max(1e-9)
    );
    if let Some(f) = failure.into_inner().unwrap() {
        panic!("{}", f.report(test));
    }
    stats
}
