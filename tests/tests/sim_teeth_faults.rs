//! Teeth for the invariants about error replies and call outcomes: each
//! test seeds a bug on the world side (`Params::bug`: an engine event
//! rewritten before the checker sees it, or a node whose release script
//! lies) and shows the checker catches it within a bounded number of seeds,
//! naming the seed and the locker.

use tracklock_tests::sim::{first_violation, Bug, Params};

/// Seeds tried before giving up.
const MAX_SEEDS: u64 = 200;

fn catches(make: fn(u64) -> Params, prefix: &str) {
    let f = first_violation(make, MAX_SEEDS)
        .unwrap_or_else(|| panic!("no violation in {MAX_SEEDS} seeds"));
    println!("{}", f.report("sim_teeth_faults"));
    assert!(
        f.what.starts_with(prefix),
        "expected {prefix:?}, got: {}",
        f.what
    );
    assert!(f.what.contains(&format!("seed {}", f.seed)), "{}", f.what);
    assert!(f.what.contains(" L"), "names the locker: {}", f.what);
    assert!(f.replayed, "the traced replay differed");
}

fn with(seed: u64, bug: Bug) -> Params {
    let mut p = Params::refusals(seed);
    p.bug = Some(bug);
    p
}

#[test]
fn sim_teeth_failed_as_not_locked_is_caught() {
    catches(
        |s| with(s, Bug::FailedAsNotLocked),
        "no NotLocked without a witnessed holder",
    );
}

#[test]
fn sim_teeth_made_up_refusal_is_caught() {
    catches(
        |s| with(s, Bug::NotLockedAsRefused),
        "Failed(Refused) without that refusal",
    );
}

#[test]
fn sim_teeth_swallowed_failure_never_ends_the_call() {
    // `Try` only: a swallowed `Wait` is caught by the liveness check first.
    catches(
        |s| {
            let mut p = with(s, Bug::SwallowFailed);
            p.try_only = true;
            p
        },
        "every call ends",
    );
}

#[test]
fn sim_teeth_dropped_not_released_is_caught() {
    catches(|s| with(s, Bug::DropNotReleased), "unlock");
}

#[test]
fn sim_teeth_spurious_not_released_is_caught() {
    catches(
        |s| with(s, Bug::SpuriousNotReleased),
        "NotReleased without a refused release",
    );
}

#[test]
fn sim_teeth_release_that_deletes_nothing_is_caught() {
    catches(|s| with(s, Bug::ReleaseNoop), "unlock");
}

#[test]
fn sim_teeth_fencing_raise_that_raises_nothing_is_caught() {
    // The nodes' raise answers "raised" and leaves the counter: every
    // holder reads the same counters, so tokens stop growing.
    catches(
        |s| {
            let mut p = Params::random(s);
            p.config = p.config.with_fencing(true);
            p.bug = Some(Bug::FenceRaiseNoop);
            p
        },
        "fencing:",
    );
}
