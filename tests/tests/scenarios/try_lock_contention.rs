//! 8. Ten lockers contend with `try_lock` only, sleeping 1 ms after each
//!    failed try, until each has succeeded `SUCCESSES` times (1000 successful
//!    rounds in total; the brief's "1000 rounds" split over the ten lockers
//!    so a combo stays around a few seconds). Never two holders.

use tracklock_tests::prelude::*;

const LOCKERS: usize = 10;
const SUCCESSES: usize = 100;

async fn body<T: TestRt>(ctx: Ctx<T>) {
    let lockers = ctx.lockers(LOCKERS).await;
    let holders = Arc::new(AtomicI32::new(0));
    let failures = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for (i, locker) in lockers.iter().enumerate() {
        let locker = locker.clone();
        let holders = holders.clone();
        let failures = failures.clone();
        tasks.push(T::spawn(async move {
            let mut ok = 0;
            while ok < SUCCESSES {
                match locker.try_lock("contended").await {
                    Ok(g) => {
                        let now = holders.fetch_add(1, Ordering::SeqCst) + 1;
                        assert_eq!(now, 1, "locker {i}: {now} holders at once");
                        futures_lite::future::yield_now().await;
                        holders.fetch_sub(1, Ordering::SeqCst);
                        g.unlock().await.expect("unlock");
                        ok += 1;
                    }
                    Err(Error::NotLocked) => {
                        failures.fetch_add(1, Ordering::Relaxed);
                        T::sleep(Duration::from_millis(1)).await;
                    }
                    Err(e) => panic!("locker {i}: try_lock failed: {e}"),
                }
            }
            ok
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await;
    }
    assert_eq!(total, LOCKERS * SUCCESSES);
    eprintln!(
        "{total} successes, {} NotLocked ({})",
        failures.load(Ordering::Relaxed),
        ctx.variant
    );
    let refs: Vec<&Locker<T::R>> = lockers.iter().collect();
    ctx.assert_clean(&refs).await;
}

matrix!(body);
