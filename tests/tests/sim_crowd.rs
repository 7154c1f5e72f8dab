//! A crowd: one locker with 1,200 workers (a request each at a time, most
//! of them `Wait`) over 40 names and one with 100 workers on a single name,
//! under error replies and starvation, every invariant checked.
//! `TRACKLOCK_SIM_SEEDS=N` runs N seeds.

use tracklock_tests::sim::{batch, Params};

/// Seeds run by default (one seed: ~4 s in release; more with
/// `TRACKLOCK_SIM_SEEDS`).
const SEEDS: u64 = 1;

#[test]
fn sim_crowd_batch() {
    let stats = batch("sim_crowd", Params::crowd, 1 << 20, SEEDS);
    assert!(stats.requests >= 1_000 * stats.seeds, "{stats}");
}
