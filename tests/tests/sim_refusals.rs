//! Error replies everywhere (`OOM`, `NOPERM`, `READONLY`, `LOADING`,
//! `BUSY`, `MISCONF` windows, three a second): every invariant, including
//! the ones about `NotLocked`, `Failed`, `NotReleased` and calls ending.

use tracklock_tests::sim::{batch, Params};

/// Seeds run by default.
const SEEDS: u64 = 200;

#[test]
fn sim_refusals_batch() {
    let stats = batch("sim_refusals", Params::refusals, 1 << 30, SEEDS);
    assert!(stats.failed > 0 && stats.not_released > 0, "{stats}");
    if stats.seeds < 50 {
        return;
    }
    stats.assert_faults_seen(&[
        "refuse_oom",
        "refuse_noperm",
        "refuse_readonly",
        "refuse_loading",
        "refuse_busy",
        "refuse_misconf",
    ]);
}
