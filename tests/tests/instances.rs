//! Independent-instance quorums on real servers: 3 standalone
//! `redis-server`s, key `i` on instance `i mod 3`, each on tokio and smol
//! with caching on and off. Every test name contains `instances`:
//! `cargo test -p tracklock-tests instances`.

use std::time::Duration;

use tracklock::LostReason;
use tracklock_tests::topo::*;
use tracklock_tests::{variants, Ctx, RedisInstances, TestRt, Topology};

/// The value under key `i` of `name`, read from instance `i`.
fn values(s: &RedisInstances, name: &str) -> Vec<Option<Vec<u8>>> {
    keys(name)
        .iter()
        .enumerate()
        .map(|(i, k)| s.admin(i % s.len()).get(k))
        .collect()
}

mod instances_majority_and_exclusion {
    use super::*;

    /// Keys land on instance `i mod 3`, one value everywhere; 10 lockers ×
    /// 100 rounds never overlap; nothing is left behind.
    async fn body<T: TestRt>(ctx: Ctx<T>) {
        let s = ctx.instances().clone();
        let name = fresh("inst");
        let l = connect::<T>(ctx.opts()).await;
        let g = lock_within::<T>(&l, &name, Duration::from_secs(5)).await;
        one_value_everywhere::<T>(|| values(&s, &name)).await;
        for (i, k) in keys(&name).iter().enumerate() {
            for j in (0..3).filter(|&j| j != i) {
                assert!(s.admin(j).get(k).is_none(), "{k} only on instance {i}");
            }
        }
        g.unlock().await.expect("unlock");
        assert!(values(&s, &name).iter().all(Option::is_none));

        let mut lockers = vec![l];
        lockers.extend(connect_n::<T>(&ctx.opts(), 9).await);
        let name = fresh("inst-excl");
        assert_exclusive::<T>(&lockers, &name, 100).await;
        no_keys_left::<T>(|| values(&s, &name)).await;
        close_all(&lockers).await;
    }

    variants!(Topology::SharedInstances, body, Duration::from_secs(120));
}

mod instances_waiter_woken {
    use super::*;

    /// A waiter is woken by the release (invalidations from the instances
    /// it tracks), well before its fallback timer (10 s TTL).
    async fn body<T: TestRt>(ctx: Ctx<T>) {
        let s = ctx.instances().clone();
        let name = fresh("inst-wake");
        waiter_woken_by_release::<T>(ctx.opts(), &name, &s.admin(0), ctx.variant).await;
    }

    variants!(Topology::SharedInstances, body, Duration::from_secs(60));
}

mod instances_one_killed {
    use super::*;

    /// One instance dies while held: the holder keeps the lock (two of
    /// three keys), new locks still succeed, a second death loses it, and
    /// restarted instances are used again. A locker connecting while one
    /// instance is down connects and locks.
    async fn body<T: TestRt>(ctx: Ctx<T>) {
        let s = ctx.instances().clone();
        let l = connect::<T>(ctx.opts()).await;
        let name = fresh("kill");
        let g = lock_within::<T>(&l, &name, Duration::from_secs(5)).await;

        s.kill(0);
        expect_held_for::<T>(&g, VALIDITY * 2).await;
        let other = fresh("kill-other");
        let g2 = lock_within::<T>(&l, &other, Duration::from_secs(5)).await;
        g2.unlock().await.expect("unlock");
        let late = connect::<T>(ctx.opts()).await;
        let g3 = lock_within::<T>(&late, &fresh("late"), Duration::from_secs(5)).await;
        g3.unlock().await.expect("unlock");

        s.kill(1);
        let (reason, after) = expect_lost::<T>(&g, VALIDITY + Duration::from_secs(2)).await;
        assert_eq!(reason, LostReason::Expired, "after {after:?}");
        drop(g);

        s.restart(0);
        s.restart(1);
        let again = fresh("kill-again");
        let g = lock_within::<T>(&l, &again, Duration::from_secs(10)).await;
        eventually::<T>(Duration::from_secs(5), "every instance used again", || {
            values(&s, &again).iter().all(Option::is_some)
        })
        .await;
        g.unlock().await.expect("unlock");
        no_keys_left::<T>(|| values(&s, &again)).await;
        l.close().await;
        late.close().await;
    }

    variants!(Topology::Instances(3), body, Duration::from_secs(60));
}
