//! 10. After unlock (explicit, by drop, after a failed try, after a loss)
//!     no `rueidislock:*` key remains and `active_locks()` is 0.

use tracklock_tests::prelude::*;

async fn body<T: TestRt>(ctx: Ctx<T>) {
    let a = ctx.connect().await;
    let b = ctx.connect().await;
    assert_eq!(a.active_locks(), 0);

    // Explicit unlock: the keys are gone when it returns.
    let g = a.lock("x").await.expect("lock");
    assert_eq!(ctx.lock_keys_present(), ctx.keys("x"));
    assert_eq!(a.active_locks(), 1);
    g.unlock().await.expect("unlock");
    assert!(
        ctx.lock_keys_present().is_empty(),
        "keys left right after unlock"
    );
    assert_eq!(a.active_locks(), 0);

    // Dropped guards release in the background.
    let g1 = a.lock("x").await.expect("lock");
    let g2 = a.lock("y").await.expect("lock");
    let g3 = b.lock("z").await.expect("lock");
    assert_eq!(ctx.lock_keys_present().len(), 9);
    drop((g1, g2, g3));
    ctx.assert_clean(&[&a, &b]).await;

    // A failed try_lock and a lost lock leave nothing either.
    let g = a.lock("x").await.expect("lock");
    assert_err!(b.try_lock("x").await, Error::NotLocked);
    assert_eq!(b.active_locks(), 0);
    let bound = ctx.loss_bound();
    ctx.admin().del(&ctx.keys("x")[..2]);
    let _ = ctx.expect_lost(&g, bound).await;
    drop(g);
    ctx.assert_clean(&[&a, &b]).await;

    // Many names at once.
    let mut guards = Vec::new();
    for i in 0..20 {
        guards.push(a.lock(&format!("n{i}")).await.expect("lock"));
    }
    assert_eq!(a.active_locks(), 20);
    assert_eq!(ctx.lock_keys_present().len(), 60);
    for g in guards {
        g.unlock().await.expect("unlock");
    }
    assert!(ctx.lock_keys_present().is_empty());
    assert_eq!(a.active_locks(), 0);
}

matrix!(body);
