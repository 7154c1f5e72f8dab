//! The CI batch of the deterministic simulator: random profiles within the
//! safety bounds (drift within `drift_ppm`, locker pauses below the margin),
//! every claim of `tracklock_core::contract` §9 checked after every step; a quarter of the seeds run
//! a simulated Redis Cluster (`sim_cluster` runs only those).
//!
//! `TRACKLOCK_SIM_SEEDS=N` runs N seeds; `TRACKLOCK_SIM_SEED=S` replays one
//! seed with its full event trace.

use tracklock_tests::sim::{batch, Params};

/// Seeds run by default (sized for a debug build on two cores).
const SEEDS: u64 = 2_000;

#[test]
fn sim_safety_batch() {
    let stats = batch("sim_safety", Params::random, 0, SEEDS);
    assert!(
        stats.acquired > 0 || stats.seeds == 1,
        "the batch acquired nothing"
    );
}
