//! 1. Ten lockers × 100 lock/unlock rounds on one name: every round
//!    completes and there is never more than one holder.
//!
//! A negative control runs the same contention with a different prefix per
//! locker (so nothing excludes anything) and checks that the holder count
//! does see overlaps: the check has teeth.

use tracklock_tests::prelude::*;
use tracklock_tests::topo::contend;

const LOCKERS: usize = 10;
const ROUNDS: usize = 100;

async fn body<T: TestRt>(ctx: Ctx<T>) {
    let lockers = ctx.lockers(LOCKERS).await;
    let (done, max_seen) = contend::<T>(&lockers, "shared", ROUNDS).await;
    assert_eq!(done, LOCKERS * ROUNDS);
    assert_eq!(max_seen, 1, "two holders at once ({})", ctx.variant);
    let refs: Vec<&Locker<T::R>> = lockers.iter().collect();
    ctx.assert_clean(&refs).await;
}

matrix!(body);

async fn control<T: TestRt>(ctx: Ctx<T>) {
    let mut lockers = Vec::new();
    for i in 0..LOCKERS {
        lockers.push(ctx.connect_with(ctx.opts().prefix(format!("p{i}x"))).await);
    }
    let (done, max_seen) = contend::<T>(&lockers, "shared", 10).await;
    assert_eq!(done, LOCKERS * 10);
    assert!(max_seen > 1, "the holder count never saw an overlap");
}

#[test]
fn negative_control_unrelated_prefixes_overlap() {
    tracklock_tests::run::<TokioRt, _, _>(
        Topology::Server(&[]),
        Variant {
            mode: Mode::Noloop,
            caching: true,
        },
        tracklock_tests::SCENARIO_TIMEOUT,
        control::<TokioRt>,
    );
}
