//! 7. `try_lock` on a held name is `Err(NotLocked)`, from another locker and
//!    from the holder's own; after a `force_lock`, `try_lock` is `NotLocked`
//!    again; a failed `try_lock` leaves nothing.

use tracklock_tests::prelude::*;

async fn body<T: TestRt>(ctx: Ctx<T>) {
    let a = ctx.connect().await;
    let b = ctx.connect().await;
    let g = a.try_lock("t").await.expect("free name");
    // Acquired at the majority: the last key's write may still be landing.
    let read = || -> Vec<_> { ctx.keys("t").iter().map(|k| ctx.admin().get(k)).collect() };
    let start = std::time::Instant::now();
    while read().iter().any(Option::is_none) {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the third key never landed"
        );
        ctx.sleep(Duration::from_millis(5)).await;
    }
    let values = read();
    assert_err!(b.try_lock("t").await, Error::NotLocked);
    assert_err!(a.try_lock("t").await, Error::NotLocked);
    assert_eq!(b.active_locks(), 0);
    assert_eq!(a.active_locks(), 1);
    assert_eq!(values, read(), "a failed try_lock changed the keys");
    assert!(g.is_held());

    let f = b.force_lock("t").await.expect("force");
    assert_err!(a.try_lock("t").await, Error::NotLocked);
    assert_err!(b.try_lock("t").await, Error::NotLocked);
    let (reason, _) = ctx.expect_lost(&g, ctx.loss_bound()).await;
    assert_eq!(reason, LostReason::KeysChanged);
    drop(g);
    f.unlock().await.expect("unlock");
    let g = a.try_lock("t").await.expect("free after unlock");
    g.unlock().await.expect("unlock");
    ctx.assert_clean(&[&a, &b]).await;
}

matrix!(body);
