//! 2. Deleting the held keys from an admin client makes `guard.lost()`
//!    resolve promptly (caching on: well within one extend interval; caching
//!    off: by the next extension) with `KeysChanged`.

use tracklock_tests::prelude::*;

async fn body<T: TestRt>(ctx: Ctx<T>) {
    let locker = ctx.connect().await;
    let keys = ctx.keys("victim");

    // Take the lock, let it settle for a moment (past the first
    // invalidations of our own writes), then delete every key.
    let guard = locker.lock("victim").await.expect("lock");
    for k in &keys {
        assert!(ctx.admin().exists(k), "{k} not written ({})", ctx.variant);
    }
    ctx.expect_held_for(&guard, Duration::from_millis(200))
        .await;
    let bound = ctx.loss_bound();
    assert_eq!(ctx.admin().del(&keys), 3);
    let (reason, took) = ctx.expect_lost(&guard, bound).await;
    assert_eq!(reason, LostReason::KeysChanged, "after {took:?}");
    assert!(!guard.is_held());
    // Losing releases nothing of someone else's and leaves no record once
    // the guard goes.
    guard
        .unlock()
        .await
        .expect("unlocking a lost lock succeeds");
    ctx.assert_clean(&[&locker]).await;

    // Deleting only a majority (2 of 3) is enough to lose it; deleting a
    // minority (1 of 3) is not.
    let guard = locker.lock("victim").await.expect("relock");
    ctx.expect_held_for(&guard, Duration::from_millis(100))
        .await;
    let bound = ctx.loss_bound();
    assert_eq!(ctx.admin().del(&keys[..2]), 2);
    let (reason, took) = ctx.expect_lost(&guard, bound).await;
    assert_eq!(reason, LostReason::KeysChanged, "after {took:?}");
    drop(guard);
    ctx.assert_clean(&[&locker]).await;

    let guard = locker.lock("victim").await.expect("relock");
    ctx.expect_held_for(&guard, Duration::from_millis(100))
        .await;
    assert_eq!(ctx.admin().del(&keys[..1]), 1);
    // One key lost, two still held: still a majority, through at least one
    // extension.
    ctx.expect_held_for(&guard, EXTEND_INTERVAL + Duration::from_millis(300))
        .await;
    guard.unlock().await.expect("unlock");
    ctx.assert_clean(&[&locker]).await;
    locker.close().await;
}

matrix!(body);
