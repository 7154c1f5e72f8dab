//! 14. `SCRIPT FLUSH` while running: extension (`EVALSHA` falls back to
//!     `EVAL` on `NOSCRIPT`), unlock and new locks keep working.

use tracklock_tests::prelude::*;

async fn body<T: TestRt>(ctx: Ctx<T>) {
    let a = ctx.connect().await;
    let b = ctx.connect().await;
    // Warm the script cache: a full round with an extension.
    let g = a.lock("s").await.expect("lock");
    ctx.expect_held_for(&g, EXTEND_INTERVAL + Duration::from_millis(300))
        .await;
    ctx.admin().script_flush();
    // The next extensions must still work.
    ctx.expect_held_for(&g, EXTEND_INTERVAL * 2 + Duration::from_millis(300))
        .await;
    for k in ctx.keys("s") {
        let ttl = ctx.admin().pttl(&k);
        assert!(ttl > 0, "{k}: TTL {ttl} after SCRIPT FLUSH");
    }
    ctx.admin().script_flush();
    // Release after a flush removes the keys.
    g.unlock().await.expect("unlock after SCRIPT FLUSH");
    assert!(ctx.lock_keys_present().is_empty(), "release did not run");

    // A waiter is handed the lock across a flush; a failed attempt cleans
    // up after a flush.
    let g = a.lock("s").await.expect("lock");
    let waiter = {
        let b = b.clone();
        T::spawn(async move { b.lock("s").await.expect("waiter") })
    };
    ctx.admin().script_flush();
    assert_err!(b.try_lock("s").await, Error::NotLocked);
    ctx.admin().script_flush();
    g.unlock().await.expect("unlock");
    let g = T::timeout(Duration::from_secs(2), waiter)
        .await
        .expect("waiter acquires after the flush");
    ctx.admin().script_flush();
    let old = g;
    let bound = ctx.loss_bound();
    let forced = a.force_lock("s").await.expect("force after flush");
    let (reason, _) = ctx.expect_lost(&old, bound).await;
    assert_eq!(reason, LostReason::KeysChanged);
    drop(old);
    ctx.admin().script_flush();
    forced.unlock().await.expect("unlock");
    ctx.assert_clean(&[&a, &b]).await;
}

matrix!(body);
