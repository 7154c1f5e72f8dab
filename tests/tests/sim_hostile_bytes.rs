//! Hostile bytes, on stable: simulated runs where one node's replies are
//! mangled (random RESP3 frames and mutations) while the engine holds
//! locks. The engine must never panic and a lock whose majority lives on the
//! honest node must never be lost. (Mutual exclusion is not checked here: a
//! node that lies about its key can hand it out twice, which no quorum lock
//! survives.) The reader alone gets the same treatment in `tracklock-core`'s
//! unit tests (`resp::hostile_tests`) and in the `cargo fuzz` targets in
//! `fuzz/`.

use tracklock_tests::sim::{batch, env_u64, Params};

#[test]
fn sim_hostile_bytes_engine_with_a_mangling_node() {
    let seeds = env_u64("TRACKLOCK_SIM_SEEDS").map_or(300, |n| n / 5);
    let stats = batch("sim_hostile_bytes", Params::hostile, 1 << 40, seeds);
    assert!(stats.mangled > 0, "nothing was mangled");
    assert!(stats.acquired > 0, "nothing was acquired");
}
