//! Fairness across lockers (`Options::fair`) on a real server: three
//! lockers (each its own connection, as three processes would be) take one
//! name in turn until 300 grants were made, each asking again as soon as
//! it released. The grant order is recorded while the lock is held.
//! Without the option the releaser's next `SET` travels right behind its
//! own release and often wins again; with it, the releaser waits about
//! two round trips, so a locker that waits is served soon. Every test name
//! contains `fair`: `cargo test -p tracklock-tests --test fair`.
//!
//! The bounds asserted with the option on: no locker is granted more than
//! [`MAX_RUN`] times in a row, and no locker waits through more than
//! [`MAX_GAP`] grants to others. Without the option the same numbers are
//! printed, not asserted (they depend on scheduling): there one locker
//! typically starves while the other two alternate (measured: gaps of 72
//! to 295 grants, 2 to 32 grants of 300 for the starved one; with the
//! option gaps of 10 to 18 and runs of at most 2, also with two busy loops
//! on two cores).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracklock::Locker;
use tracklock_tests::topo::fresh;
use tracklock_tests::{scenario, Ctx, TestRt, Topology, Variant};

/// Lockers contending.
const LOCKERS: usize = 3;
/// Grants per run.
const GRANTS: usize = 300;
/// The longest run of one locker's grants allowed with the option on.
/// The releaser's pause ends two of its measured round trips after its
/// unlock (capped at `try_next_after`, 20 ms): it wins again only if no
/// other locker's `SET` reached the server by then. On a busy machine a
/// woken locker can miss that now and then; runs of 2 were the most seen.
const MAX_RUN: usize = 8;
/// The most grants to others a waiting locker may sit through with the
/// option on: the pause does not order the other two, so one can lose a
/// few races in a row; 18 was the most seen (under load), the unfair runs
/// showed 72 and more.
const MAX_GAP: usize = 60;

/// What one run showed.
#[derive(Debug)]
struct Spread {
    /// Grants per locker.
    per_locker: [usize; LOCKERS],
    /// The longest run of grants to one locker.
    max_run: usize,
    /// The most grants in a row that went to others while a locker waited
    /// (each asks again at once, so it always waits when not holding).
    max_gap: usize,
    /// Mean time per grant.
    per_grant: Duration,
}

/// `GRANTS` grants among `lockers` on `name`, each holding for 1 ms.
async fn run<T: TestRt>(lockers: &[Locker<T::R>], name: &str) -> Spread {
    let order = Arc::new(Mutex::new(Vec::with_capacity(GRANTS + LOCKERS)));
    let taken = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (i, locker) in lockers.iter().enumerate() {
        let (locker, order, taken) = (locker.clone(), order.clone(), taken.clone());
        let name = name.to_owned();
        tasks.push(T::spawn(async move {
            while taken.load(Ordering::SeqCst) < GRANTS {
                let guard = locker
                    .lock(&name)
                    .await
                    .unwrap_or_else(|e| panic!("locker {i}: lock failed: {e}"));
                // Recorded while held: the vector's order is the grant order.
                order.lock().unwrap().push(i);
                taken.fetch_add(1, Ordering::SeqCst);
                T::sleep(Duration::from_millis(1)).await;
                guard
                    .unlock()
                    .await
                    .unwrap_or_else(|e| panic!("locker {i}: unlock failed: {e}"));
            }
        }));
    }
    for t in tasks {
        t.await;
    }
    let elapsed = start.elapsed();
    let order = Arc::try_unwrap(order).unwrap().into_inner().unwrap();
    // Tasks that were waiting when the count was reached add a grant each.
    assert!(
        (GRANTS..GRANTS + LOCKERS).contains(&order.len()),
        "{} grants",
        order.len()
    );
    let order = &order[..GRANTS];
    let mut per_locker = [0; LOCKERS];
    let (mut max_run, mut current) = (0, 0);
    for (k, &i) in order.iter().enumerate() {
        per_locker[i] += 1;
        current = if k > 0 && order[k - 1] == i {
            current + 1
        } else {
            1
        };
        max_run = max_run.max(current);
    }
    let mut max_gap = 0;
    for i in 0..LOCKERS {
        let mut gap = 0;
        for &j in order {
            gap = if j == i { 0 } else { gap + 1 };
            max_gap = max_gap.max(gap);
        }
    }
    Spread {
        per_locker,
        max_run,
        max_gap,
        per_grant: elapsed / GRANTS as u32,
    }
}

mod fair_single {
    use super::*;

    /// The same contention without and with the option; the first is
    /// reported, the second asserted.
    async fn body<T: TestRt>(ctx: Ctx<T>) {
        let mut unfair = Vec::new();
        let mut fair = Vec::new();
        for _ in 0..LOCKERS {
            unfair.push(ctx.connect().await);
            fair.push(ctx.connect_with(ctx.opts().fair(true)).await);
        }
        let off = run::<T>(&unfair, &fresh("fair-off")).await;
        let on = run::<T>(&fair, &fresh("fair-on")).await;
        eprintln!(
            "fair off: {off:?}\nfair on:  {on:?}\nper grant (1 ms held): off {:?}, on {:?}; \
             round trip now: {:?}",
            off.per_grant,
            on.per_grant,
            ctx.rtt()
        );
        assert!(
            on.max_run <= MAX_RUN,
            "with fair on a locker was granted {} times in a row: {on:?}",
            on.max_run
        );
        assert!(
            on.max_gap <= MAX_GAP,
            "with fair on a locker waited through {} grants to others: {on:?}",
            on.max_gap
        );
        assert!(
            on.per_locker.iter().all(|&n| n > 0),
            "every locker was served: {on:?}"
        );
        for l in unfair.iter().chain(&fair) {
            l.close().await;
        }
    }

    scenario!(
        fair_tokio,
        TokioRt,
        Topology::Server(&[]),
        Variant::caching(true),
        Duration::from_secs(120),
        body
    );
}
