//! The deterministic simulator against a simulated Redis Cluster: 2–3
//! masters, most with an asynchronously replicated replica, seeds that are
//! a random subset of the nodes, masters killed (their replica promoted
//! with what it had), manual failovers, slot migrations of lock keys
//! (`MOVED`, `ASK`), on top of the usual network, node and admin faults.
//!
//! `TRACKLOCK_SIM_SEEDS=N` runs N seeds; `TRACKLOCK_SIM_SEED=S` replays one
//! seed with its full event trace.

use tracklock_tests::sim::{batch, failover_loss_breaks_exclusion, Params};

/// Seeds run by default (sized for a debug build on two cores).
const SEEDS: u64 = 600;

#[test]
fn sim_cluster_batch() {
    let stats = batch("sim_cluster", Params::cluster, 0, SEEDS);
    if stats.seeds < 50 {
        return;
    }
    assert!(stats.acquired > 0, "the batch acquired nothing");
    stats.assert_faults_seen(&[
        "failover",
        "failover_while_held",
        "manual_failover",
        "migration",
    ]);
    stats.assert_cluster_seen(&[
        "moved",
        "ask",
        "asking",
        "clusterdown",
        "cluster_slots",
        "node_added",
        "failover_lost_keys",
    ]);
}

/// Seeds the teeth test tries before giving up.
const TEETH_SEEDS: u64 = 200;

/// Teeth: with one key per lock and slow replicas, a failover that loses
/// a held key's write lets a second locker take the name. With the
/// failover exemption off, the checker must report that double grant; the
/// seed must replay to it; and with the exemption on (the guarantee as
/// stated: a lock keeping a majority of its keys is safe) the same seed
/// passes. (The replay command the report prints uses `Params::cluster`;
/// replay a seed of this test with `Params::cluster_teeth`.)
#[test]
fn sim_cluster_teeth_failover_loss_breaks_exclusion() {
    failover_loss_breaks_exclusion(
        "sim_cluster",
        Params::cluster_teeth,
        TEETH_SEEDS,
        "with failovers losing held keys",
    );
}
