//! Teeth: the simulator must catch a known-unsafe configuration. With no
//! safety margin, no drift allowance, clocks 2 % off and locker pauses of
//! up to 300 ms, no lease can be safe; the simulator has to find two
//! holders of one name at one instant within a bounded number of seeds,
//! and the failing seed has to replay to the very same violation.

use tracklock_tests::sim::{first_exclusion_violation, first_violation, Params};

/// Seeds tried before giving up.
const MAX_SEEDS: u64 = 300;

fn broken_me_only(seed: u64) -> Params {
    let mut p = Params::broken(seed);
    // Only mutual exclusion: the lease check would flag the bad lease earlier.
    p.lease_checks = false;
    p
}

#[test]
fn sim_teeth_broken_config_violates_mutual_exclusion() {
    first_exclusion_violation(
        "sim_teeth",
        broken_me_only,
        MAX_SEEDS,
        "of a configuration that cannot be safe",
    );
}

#[test]
fn sim_teeth_broken_config_violates_the_lease_check() {
    let f = first_violation(Params::broken, MAX_SEEDS)
        .expect("the lease check catches the broken configuration");
    println!("{}", f.report("sim_teeth"));
    assert!(
        f.what.starts_with("lease") || f.what.starts_with("mutual exclusion"),
        "{}",
        f.what
    );
}
