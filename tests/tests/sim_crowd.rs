//! A crowd: one locker with 1,200 workers (a request each at a time, most
//! of them `Wait`) over 40 names and one with 100 workers on a single name,
//! under error replies and starvation (at least one error window and one
//! starved locker in every run), every invariant checked.
//! `TRACKLOCK_SIM_SEEDS=N` runs N seeds.

use tracklock_tests::sim::{batch, env_u64, Params};

/// Seeds run by default (the default seed: 44 s in debug; a seed takes
/// 16-73 s in release, on two cores at load average ~10; more with
/// `TRACKLOCK_SIM_SEEDS`).
const SEEDS: u64 = 1;

#[test]
fn sim_crowd_batch() {
    let stats = batch("sim_crowd", Params::crowd, 1 << 20, SEEDS);
    assert!(stats.requests >= 1_000 * stats.seeds, "{stats}");
    if env_u64("TRACKLOCK_SIM_SEED").is_some() {
        return;
    }
    let refusals: u64 = stats
        .faults
        .iter()
        .filter(|(k, _)| k.starts_with("refuse_"))
        .map(|(_, v)| v)
        .sum();
    assert!(refusals > 0, "no error-reply window in the batch: {stats}");
    assert!(
        stats.faults.get("starve").copied().unwrap_or(0) > 0,
        "no starved locker in the batch: {stats}"
    );
}
