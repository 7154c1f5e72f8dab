//! 3. `force_lock`, from the same locker and from another one, takes the
//!    lock; the previous holder's `lost()` resolves.

use tracklock_tests::prelude::*;

async fn body<T: TestRt>(ctx: Ctx<T>) {
    let a = ctx.connect().await;
    let b = ctx.connect().await;
    let c = ctx.connect().await;
    let bound = ctx.loss_bound();

    // Another locker forces.
    let old = a.lock("f").await.expect("lock");
    ctx.expect_held_for(&old, Duration::from_millis(100)).await;
    let new = b.force_lock("f").await.expect("force from another locker");
    assert!(new.is_held());
    let (reason, took) = ctx.expect_lost(&old, bound).await;
    assert_eq!(reason, LostReason::KeysChanged, "after {took:?}");
    assert!(!old.is_held());
    // The old holder's release must not touch the new holder's keys.
    old.unlock().await.expect("unlock of a lost lock");
    for k in ctx.keys("f") {
        assert!(ctx.admin().exists(&k), "{k} removed by the old holder");
    }
    assert_err!(c.try_lock("f").await, Error::NotLocked);
    ctx.expect_held_for(&new, Duration::from_millis(200)).await;

    // The same locker forces over its own guard.
    let newer = b.force_lock("f").await.expect("force from the same locker");
    let (reason, took) = ctx.expect_lost(&new, bound).await;
    assert_eq!(reason, LostReason::KeysChanged, "after {took:?}");
    drop(new);
    ctx.expect_held_for(&newer, EXTEND_INTERVAL + Duration::from_millis(300))
        .await;
    assert_err!(a.try_lock("f").await, Error::NotLocked);

    // Forcing a free name just takes it.
    let free = a.force_lock("free").await.expect("force a free name");
    assert!(free.is_held());
    free.unlock().await.expect("unlock");
    newer.unlock().await.expect("unlock");
    ctx.assert_clean(&[&a, &b, &c]).await;
}

matrix!(body);
