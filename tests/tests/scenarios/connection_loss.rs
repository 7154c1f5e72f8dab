//! 13. Connection loss while a lock is held and waiters wait.
//!
//! - `CLIENT KILL` of every locker connection: the lockers reconnect,
//!   nothing hangs, the holder (whose keys survived) keeps the lock, the
//!   waiter does not get it while it is held and gets it after the unlock.
//! - A `redis-server` restart (all data lost): the holder learns it lost the
//!   lock, the waiters eventually acquire, and new locks work.

use tracklock_tests::prelude::*;

/// Reconnection plus re-verification must fit in one validity.
const RECOVER: Duration = Duration::from_secs(5);

/// A task that waits for `name`, checks it holds it, and unlocks it.
fn spawn_waiter<T: TestRt>(l: &Locker<T::R>, name: &'static str) -> Task<()> {
    let l = l.clone();
    T::spawn(async move {
        let g = l.lock(name).await.expect("waiter lock");
        assert!(g.is_held());
        T::sleep(Duration::from_millis(20)).await;
        assert!(g.is_held());
        g.unlock().await.expect("waiter unlock");
    })
}

async fn body<T: TestRt>(ctx: Ctx<T>) {
    let a = ctx.connect_with(ctx.opts().client_name("tl-holder")).await;
    let b = ctx.connect_with(ctx.opts().client_name("tl-waiter")).await;
    let names = |admin: &Admin| {
        let mut v: Vec<String> = admin
            .clients()
            .into_iter()
            .map(|c| c.name)
            .filter(|n| n.starts_with("tl-"))
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(ctx.admin()), ["tl-holder", "tl-waiter"]);

    // CLIENT KILL: keys survive, so the holder keeps the lock.
    let g = a.lock("k").await.expect("lock");
    let waiter = spawn_waiter::<T>(&b, "k");
    let same_locker_waiter = spawn_waiter::<T>(&a, "k");
    ctx.sleep(Duration::from_millis(100)).await;
    assert!(ctx.admin().client_kill_normal() >= 2);
    let admin = ctx.admin().clone();
    ctx.eventually(RECOVER, "both lockers reconnected", || {
        names(&admin) == ["tl-holder", "tl-waiter"]
    })
    .await;
    // Through reconnection and at least one extension after it.
    ctx.expect_held_for(&g, EXTEND_INTERVAL + Duration::from_millis(500))
        .await;
    assert!(
        !waiter.is_finished(),
        "waiter got a held lock after CLIENT KILL"
    );
    assert!(!same_locker_waiter.is_finished());
    // Kill by name too, only the holder's connection this time.
    assert_eq!(ctx.admin().client_kill_by_name("tl-holder"), 1);
    ctx.expect_held_for(&g, EXTEND_INTERVAL + Duration::from_millis(500))
        .await;
    assert!(!waiter.is_finished());
    g.unlock().await.expect("unlock after reconnect");
    // Both waiters get it in turn.
    for (who, w) in [
        ("other locker", waiter),
        ("same locker", same_locker_waiter),
    ] {
        T::timeout(RECOVER, w)
            .await
            .unwrap_or_else(|| panic!("{who} waiter never acquired"));
    }
    ctx.assert_clean(&[&a, &b]).await;

    // Restart: every key is gone.
    let g = a.lock("r").await.expect("lock");
    let waiter = spawn_waiter::<T>(&b, "r");
    let same_locker_waiter = spawn_waiter::<T>(&a, "r");
    ctx.sleep(Duration::from_millis(100)).await;
    ctx.server().restart();
    let (reason, took) = ctx.expect_lost(&g, VALIDITY + Duration::from_secs(1)).await;
    assert!(
        matches!(reason, LostReason::KeysChanged | LostReason::Expired),
        "{reason:?} after {took:?}"
    );
    drop(g);
    for (who, w) in [
        ("other locker", waiter),
        ("same locker", same_locker_waiter),
    ] {
        T::timeout(RECOVER, w)
            .await
            .unwrap_or_else(|| panic!("{who} waiter never acquired after restart"));
    }
    let g = ctx.lock_within(&a, "after", RECOVER).await;
    g.unlock().await.expect("unlock");
    ctx.assert_clean(&[&a, &b]).await;
    assert!(!a.is_closed() && !b.is_closed());
}

matrix!(body);
