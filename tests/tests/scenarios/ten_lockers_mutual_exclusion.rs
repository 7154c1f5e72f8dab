//! 1. Ten lockers × 100 lock/unlock rounds on one name: every round
//!    completes and there is never more than one holder.

use tracklock_tests::prelude::*;

const LOCKERS: usize = 10;
const ROUNDS: usize = 100;

async fn body<T: TestRt>(ctx: Ctx<T>) {
    let lockers = ctx.lockers(LOCKERS).await;
    let holders = Arc::new(AtomicI32::new(0));
    let rounds = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for (i, locker) in lockers.iter().enumerate() {
        let locker = locker.clone();
        let holders = holders.clone();
        let rounds = rounds.clone();
        tasks.push(T::spawn(async move {
            for r in 0..ROUNDS {
                let guard = match locker.lock("shared").await {
                    Ok(g) => g,
                    Err(e) => panic!("locker {i} round {r}: lock failed: {e}"),
                };
                let now = holders.fetch_add(1, Ordering::SeqCst) + 1;
                assert_eq!(now, 1, "locker {i} round {r}: {now} holders at once");
                assert!(
                    guard.is_held(),
                    "locker {i} round {r}: fresh guard not held"
                );
                futures_lite::future::yield_now().await;
                T::sleep(Duration::from_millis(1)).await;
                assert_eq!(holders.load(Ordering::SeqCst), 1, "locker {i} round {r}");
                holders.fetch_sub(1, Ordering::SeqCst);
                guard
                    .unlock()
                    .await
                    .unwrap_or_else(|e| panic!("locker {i} round {r}: unlock failed: {e}"));
                rounds.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    for t in tasks {
        t.await;
    }
    assert_eq!(rounds.load(Ordering::SeqCst), LOCKERS * ROUNDS);
    let refs: Vec<&Locker<T::R>> = lockers.iter().collect();
    ctx.assert_clean(&refs).await;
}

matrix!(body);
