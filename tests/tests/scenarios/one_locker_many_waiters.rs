//! 9. Many waiters (ten tasks) of ONE locker on one name all get the lock in
//!    turn and none is left waiting after the last unlock; then the Go
//!    README benchmark shape: ten tasks, one locker, one name, 20,000
//!    lock/unlock rounds in total, within the time limit.

use tracklock_tests::prelude::*;

const TASKS: usize = 10;
const ROUNDS_EACH: usize = 20;
const BENCH_ROUNDS: usize = 20_000;

async fn rounds<T: TestRt>(
    locker: &Locker<T::R>,
    holders: Arc<AtomicI32>,
    per_task: usize,
    sleep: bool,
) -> Duration {
    let mut tasks = Vec::new();
    let start = Instant::now();
    for i in 0..TASKS {
        let locker = locker.clone();
        let holders = holders.clone();
        tasks.push(T::spawn(async move {
            for r in 0..per_task {
                let g = locker
                    .lock("bench")
                    .await
                    .unwrap_or_else(|e| panic!("task {i} round {r}: {e}"));
                let now = holders.fetch_add(1, Ordering::SeqCst) + 1;
                assert_eq!(now, 1, "task {i} round {r}: {now} holders at once");
                if sleep {
                    T::sleep(Duration::from_millis(1)).await;
                }
                holders.fetch_sub(1, Ordering::SeqCst);
                g.unlock().await.expect("unlock");
            }
        }));
    }
    for t in tasks {
        t.await;
    }
    start.elapsed()
}

async fn body<T: TestRt>(ctx: Ctx<T>) {
    let locker = ctx.connect().await;
    let holders = Arc::new(AtomicI32::new(0));
    rounds::<T>(&locker, holders.clone(), ROUNDS_EACH, true).await;
    ctx.assert_clean(&[&locker]).await;

    let took = rounds::<T>(&locker, holders, BENCH_ROUNDS / TASKS, false).await;
    eprintln!(
        "{BENCH_ROUNDS} rounds in {took:?} ({:.0}/s, {})",
        BENCH_ROUNDS as f64 / took.as_secs_f64(),
        ctx.variant
    );
    ctx.assert_clean(&[&locker]).await;
}

matrix!(body, Duration::from_secs(120));
