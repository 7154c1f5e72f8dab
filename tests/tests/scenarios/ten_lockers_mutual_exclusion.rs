//! 1. Ten lockers × 100 lock/unlock rounds on one name: every round
//!    completes and there is never more than one holder.
//!
//! A negative control runs the same contention with a different prefix per
//! locker (so nothing excludes anything) and checks that the holder count
//! does see overlaps: the check has teeth.

use tracklock_tests::prelude::*;

const LOCKERS: usize = 10;
const ROUNDS: usize = 100;

/// Every locker takes `name` `rounds` times, holding it for about a
/// millisecond; returns the completed rounds and the most holders seen at
/// once (counted on entry, before the guard's own checks).
async fn contend<T: TestRt>(lockers: &[Locker<T::R>], rounds: usize) -> (usize, i32) {
    let holders = Arc::new(AtomicI32::new(0));
    let max_seen = Arc::new(AtomicI32::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for (i, locker) in lockers.iter().enumerate() {
        let locker = locker.clone();
        let holders = holders.clone();
        let max_seen = max_seen.clone();
        let done = done.clone();
        tasks.push(T::spawn(async move {
            for r in 0..rounds {
                let guard = match locker.lock("shared").await {
                    Ok(g) => g,
                    Err(e) => panic!("locker {i} round {r}: lock failed: {e}"),
                };
                let now = holders.fetch_add(1, Ordering::SeqCst) + 1;
                max_seen.fetch_max(now, Ordering::SeqCst);
                assert!(
                    guard.is_held(),
                    "locker {i} round {r}: fresh guard not held"
                );
                futures_lite::future::yield_now().await;
                T::sleep(Duration::from_millis(1)).await;
                max_seen.fetch_max(holders.load(Ordering::SeqCst), Ordering::SeqCst);
                holders.fetch_sub(1, Ordering::SeqCst);
                guard
                    .unlock()
                    .await
                    .unwrap_or_else(|e| panic!("locker {i} round {r}: unlock failed: {e}"));
                done.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    for t in tasks {
        t.await;
    }
    (done.load(Ordering::SeqCst), max_seen.load(Ordering::SeqCst))
}

async fn body<T: TestRt>(ctx: Ctx<T>) {
    let lockers = ctx.lockers(LOCKERS).await;
    let (done, max_seen) = contend::<T>(&lockers, ROUNDS).await;
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
    let (done, max_seen) = contend::<T>(&lockers, 10).await;
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
