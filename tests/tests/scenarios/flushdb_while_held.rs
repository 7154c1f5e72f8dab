//! 12. `FLUSHDB` while held: the holder is told it lost the lock; waiters
//!     get it; new locks still work. Also `FLUSHALL`.

use tracklock_tests::prelude::*;

async fn body<T: TestRt>(ctx: Ctx<T>) {
    let a = ctx.connect().await;
    let b = ctx.connect().await;
    let bound = ctx.loss_bound();

    let g = a.lock("flushed").await.expect("lock");
    let waiter = {
        let b = b.clone();
        T::spawn(async move {
            let g = b.lock("flushed").await.expect("waiter");
            g.unlock().await.expect("unlock");
        })
    };
    ctx.expect_held_for(&g, Duration::from_millis(200)).await;
    ctx.admin().flushdb();
    let (reason, took) = ctx.expect_lost(&g, bound).await;
    assert_eq!(reason, LostReason::KeysChanged, "after {took:?}");
    T::timeout(Duration::from_secs(2), waiter)
        .await
        .expect("the waiter gets the flushed lock");
    drop(g);

    // A new lock on another name works and is held across an extension.
    let g = a.lock("other").await.expect("lock after flush");
    ctx.expect_held_for(&g, EXTEND_INTERVAL + Duration::from_millis(300))
        .await;
    g.unlock().await.expect("unlock");

    // FLUSHALL, with two holders on two lockers.
    let g1 = a.lock("one").await.expect("lock");
    let g2 = b.lock("two").await.expect("lock");
    ctx.admin().flushall();
    for g in [&g1, &g2] {
        let (reason, took) = ctx.expect_lost(g, bound).await;
        assert_eq!(reason, LostReason::KeysChanged, "after {took:?}");
    }
    drop((g1, g2));
    let g = b.try_lock("one").await.expect("free after flushall");
    g.unlock().await.expect("unlock");
    ctx.assert_clean(&[&a, &b]).await;
}

matrix!(body);
