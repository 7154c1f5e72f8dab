//! 11. `close()`: holders' `lost()` resolves with `Closed` and their keys
//!     are released; waiters and later calls get `Err(Closed)`.

use tracklock_tests::prelude::*;

async fn body<T: TestRt>(ctx: Ctx<T>) {
    let a = ctx.connect().await;
    let b = ctx.connect().await;
    let held = a.lock("c").await.expect("lock");
    let other = a.lock("c2").await.expect("lock");
    let foreign = b.lock("w").await.expect("lock");
    // One waiter on a name held by another locker, one on a name held by
    // this locker.
    let w1 = {
        let a = a.clone();
        T::spawn(async move { a.lock("w").await.map(|_| ()) })
    };
    let w2 = {
        let a = a.clone();
        T::spawn(async move { a.lock("c").await.map(|_| ()) })
    };
    ctx.sleep(Duration::from_millis(200)).await;
    assert!(!w1.is_finished() && !w2.is_finished());
    assert!(!a.is_closed());

    T::timeout(Duration::from_secs(5), a.close())
        .await
        .expect("close() returns");
    assert!(a.is_closed());
    for g in [&held, &other] {
        let (reason, _) = ctx.expect_lost(g, Duration::from_millis(200)).await;
        assert_eq!(reason, LostReason::Closed);
        assert!(!g.is_held());
    }
    for w in [w1, w2] {
        let r = T::timeout(Duration::from_secs(1), w)
            .await
            .expect("waiter returns after close");
        assert_err!(r, Error::Closed);
    }
    assert_err!(a.lock("new").await, Error::Closed);
    assert_err!(a.try_lock("new").await, Error::Closed);
    assert_err!(a.force_lock("new").await, Error::Closed);
    assert_err!(a.with_lock("new", async {}).await, Error::Closed);
    // A second close is harmless; unlocking after close does not hang.
    T::timeout(Duration::from_secs(2), a.close())
        .await
        .expect("second close");
    let _ = T::timeout(Duration::from_secs(2), held.unlock())
        .await
        .expect("unlock after close returns");
    drop(other);

    // The closed locker's keys were released: the other locker takes them
    // at once, and its own lock was untouched.
    assert!(foreign.is_held());
    let g = b.try_lock("c").await.expect("released by close");
    g.unlock().await.expect("unlock");
    foreign.unlock().await.expect("unlock");
    ctx.assert_clean(&[&b]).await;
    // The closed locker tracks nothing.
    assert_eq!(a.active_locks(), 0);
}

matrix!(body);
