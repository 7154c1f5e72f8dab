//! 4. An admin `PEXPIRE key 100` on every held key.
//!
//! Caching on: the invalidation makes the holder re-extend at once, so the
//! lock is kept: after 500 ms the guard is held and every key has a TTL near
//! the validity again.
//!
//! Caching off: no invalidation arrives, so the keys expire after 100 ms;
//! the holder must not go on believing: it learns it lost the lock at its
//! next extension (`KeysChanged`), and nobody else was locked out.

use tracklock_tests::prelude::*;

async fn body<T: TestRt>(ctx: Ctx<T>) {
    let locker = ctx.connect().await;
    let other = ctx.connect().await;
    let keys = ctx.keys("ttl");
    let guard = locker.lock("ttl").await.expect("lock");
    ctx.expect_held_for(&guard, Duration::from_millis(150))
        .await;
    for k in &keys {
        assert!(ctx.admin.pexpire(k, 100), "{k} missing");
    }
    if ctx.variant.caching {
        ctx.expect_held_for(&guard, Duration::from_millis(500))
            .await;
        let validity = VALIDITY.as_millis() as i64;
        for k in &keys {
            let ttl = ctx.admin.pttl(k);
            assert!(
                ttl > validity / 2 && ttl <= validity,
                "{k}: TTL {ttl} ms, expected near {validity} ms ({})",
                ctx.variant
            );
        }
        assert_err!(other.try_lock("ttl").await, Error::NotLocked);
        // And it keeps holding through the next periodic extension.
        ctx.expect_held_for(&guard, EXTEND_INTERVAL).await;
        guard.unlock().await.expect("unlock");
    } else {
        let (reason, took) = ctx.expect_lost(&guard, ctx.variant.loss_bound()).await;
        assert_eq!(reason, LostReason::KeysChanged, "after {took:?}");
        for k in &keys {
            assert!(!ctx.admin.exists(k), "{k} still there");
        }
        drop(guard);
        let g = other.try_lock("ttl").await.expect("free after expiry");
        g.unlock().await.expect("unlock");
    }
    ctx.assert_clean(&[&locker, &other]).await;
}

matrix!(body);
