//! Real Redis Cluster scenarios (3 masters; 3 replicas where a failover is
//! needed), each on tokio and smol with caching on and off. Every test name
//! contains `cluster`: `cargo test -p tracklock-tests cluster`.
//!
//! The runner hands every scenario its cluster: non-destructive ones share
//! one (`Topology::SharedCluster`: the one `.ci/run` started, named by
//! `TRACKLOCK_CLUSTER`, else one per test process); the ones that kill,
//! fail over or migrate get a private one (`Topology::Cluster`).

use std::time::{Duration, Instant};

use tracklock::{Error, LostReason, Options};
use tracklock_tests::topo::*;
use tracklock_tests::{
    scenario, scenarios, variants, Ctx, RedisCluster, TestRt, Topology, Variant,
};

/// The value stored under each key of `name`, read from its owner.
fn values(c: &RedisCluster, name: &str) -> Vec<Option<Vec<u8>>> {
    keys(name).iter().map(|k| c.get(k)).collect()
}

mod cluster_majority_and_exclusion {
    use super::*;

    /// The default majority (2 of 3 keys) is taken across the masters that
    /// own the keys' slots; 10 lockers × 100 rounds never overlap.
    async fn body<T: TestRt>(ctx: Ctx<T>) {
        let c = ctx.cluster().clone();
        let name = spread_name(&c, "spread");
        let l = connect::<T>(ctx.opts()).await;
        let g = lock_within::<T>(&l, &name, Duration::from_secs(5)).await;
        one_value_everywhere::<T>(|| values(&c, &name)).await;
        let owners: Vec<usize> = keys(&name).iter().map(|k| c.owner_of(k)).collect();
        for (k, o) in keys(&name).iter().zip(&owners) {
            assert!(
                c.get_local(*o, k).expect("owner answers").is_some(),
                "{k} lives on its slot owner {o}"
            );
        }
        g.unlock().await.expect("unlock");
        assert!(
            values(&c, &name).iter().all(Option::is_none),
            "released everywhere"
        );

        let mut lockers = vec![l];
        lockers.extend(connect_n::<T>(&ctx.opts(), 9).await);
        let name = fresh("exclusion");
        assert_exclusive::<T>(&lockers, &name, 100).await;
        for l in &lockers {
            eventually::<T>(Duration::from_secs(3), "locker idle", || {
                l.active_locks() == 0
            })
            .await;
        }
        no_keys_left::<T>(|| values(&c, &name)).await;
        close_all(&lockers).await;
    }

    variants!(Topology::SharedCluster, body, Duration::from_secs(120));
}

mod cluster_waiter_woken_across_nodes {
    use super::*;

    /// A waiter is woken by a release whose keys live on the other masters,
    /// long before its fallback timer (the holder's TTL, 10 s here).
    async fn body<T: TestRt>(ctx: Ctx<T>) {
        let c = ctx.cluster().clone();
        let name = spread_name(&c, "wake");
        waiter_woken_by_release::<T>(ctx.opts(), &name, &c.admin(0), ctx.variant).await;
    }

    variants!(Topology::SharedCluster, body, Duration::from_secs(60));
}

mod cluster_master_killed {
    use super::*;

    /// A master without replica dies while two locks are held: the lock with
    /// one key there keeps its majority, the lock with two keys there is
    /// told it lost; new locks on names with a majority on live masters
    /// still succeed; the restarted master is used again.
    async fn body<T: TestRt>(ctx: Ctx<T>) {
        let c = ctx.cluster().clone();
        partial_coverage(&c);
        let l = connect::<T>(ctx.opts()).await;
        let clump = clumped_name(&c, "clump");
        let victim = c.owner_of(&keys(&clump)[0]);
        // A spread name has exactly one key on the victim.
        let spread = spread_name(&c, "spread");
        let keeps = lock_within::<T>(&l, &spread, Duration::from_secs(5)).await;
        let loses = lock_within::<T>(&l, &clump, Duration::from_secs(5)).await;

        c.kill(victim);
        let (reason, after) = expect_lost::<T>(&loses, VALIDITY + Duration::from_secs(2)).await;
        assert!(
            matches!(reason, LostReason::Expired | LostReason::KeysChanged),
            "{reason:?} after {after:?}"
        );
        expect_held_for::<T>(&keeps, VALIDITY * 2).await;
        let other = spread_name(&c, "later");
        let g = lock_within::<T>(&l, &other, Duration::from_secs(5)).await;
        g.unlock().await.expect("unlock");
        drop(loses);

        c.restart(victim);
        c.wait_settled();
        partial_coverage(&c);
        // The restarted master is used again: its key of a new lock is
        // written there, and the holder takes its key back.
        let again = spread_name(&c, "again");
        let g = lock_within::<T>(&l, &again, Duration::from_secs(10)).await;
        let on_victim = keys(&again)
            .into_iter()
            .find(|k| c.owner_of(k) == victim)
            .expect("a key on the victim");
        eventually::<T>(
            Duration::from_secs(5),
            "key written on the restarted master",
            || c.get_local(victim, &on_victim).ok().flatten().is_some(),
        )
        .await;
        let back = keys(&spread)
            .into_iter()
            .find(|k| c.owner_of(k) == victim)
            .expect("a key on the victim");
        eventually::<T>(
            VALIDITY * 2,
            "holder re-took its key on the restarted master",
            || c.get_local(victim, &back).ok().flatten().is_some(),
        )
        .await;
        assert!(keeps.is_held());
        g.unlock().await.expect("unlock");
        keeps.unlock().await.expect("unlock");
        for name in [&spread, &clump, &other, &again] {
            no_keys_left::<T>(|| values(&c, name)).await;
        }
        l.close().await;
    }

    variants!(Topology::cluster(3, 0), body, Duration::from_secs(90));
}

mod cluster_failover_keeps_lock {
    use super::*;

    /// A master is killed and its replica takes over while the lock is
    /// held: the holder keeps it throughout and goes on extending its key
    /// on the new master.
    async fn body<T: TestRt>(ctx: Ctx<T>) {
        let c = ctx.cluster().clone();
        // Without it the live masters refuse every command (CLUSTERDOWN)
        // until the replica took over, and no lock survives a failover.
        partial_coverage(&c);
        let l = connect::<T>(ctx.opts()).await;
        let name = spread_name(&c, "failover");
        let g = lock_within::<T>(&l, &name, Duration::from_secs(5)).await;
        let k0 = keys(&name)[0].clone();
        let victim = c.owner_of(&k0);
        // Let the key reach the replica.
        let _: i64 = c.admin(victim).cmd("WAIT", &["1", "2000"]);
        c.kill(victim);
        let promoted = c.wait_for_failover_of(victim);
        expect_held_for::<T>(&g, VALIDITY * 2).await;
        let value = c.get(&keys(&name)[1]);
        assert_eq!(c.owner_of(&k0), promoted);
        assert_eq!(c.get(&k0), value, "the key survived on the new master");
        // Still extended there: after a whole validity its TTL is fresh.
        T::sleep(VALIDITY).await;
        let ttl = c.pttl(&k0);
        assert!(ttl > 0, "key extended on the new master (pttl {ttl})");
        assert!(g.is_held());
        let other = spread_name(&c, "after");
        let g2 = lock_within::<T>(&l, &other, Duration::from_secs(5)).await;
        g2.unlock().await.expect("unlock");
        g.unlock().await.expect("unlock");
        no_keys_left::<T>(|| values(&c, &name)).await;
        l.close().await;
    }

    variants!(Topology::cluster(3, 1), body, Duration::from_secs(90));
}

mod cluster_manual_failover {
    use super::*;

    /// `CLUSTER FAILOVER` on a replica while held: the holder re-verifies on
    /// the new master and keeps the lock when the data is there, and loses
    /// it when the promoted replica lacks a majority of the keys.
    async fn body<T: TestRt>(ctx: Ctx<T>) {
        let c = ctx.cluster().clone();
        let l = connect::<T>(ctx.opts()).await;

        let name = spread_name(&c, "manual");
        let g = lock_within::<T>(&l, &name, Duration::from_secs(5)).await;
        let k1 = keys(&name)[1].clone();
        let old = c.owner_of(&k1);
        let r = c.replica_of(old).expect("replica");
        c.manual_failover(r);
        assert_eq!(c.owner_of(&k1), r);
        expect_held_for::<T>(&g, VALIDITY * 2).await;
        let ttl = c.pttl(&k1);
        assert!(ttl > 0, "key extended on the new master (pttl {ttl})");
        g.unlock().await.expect("unlock");

        // Keys 0 and 1 on one master whose replica lost them.
        let clump = clumped_name(&c, "diverged");
        let g = lock_within::<T>(&l, &clump, Duration::from_secs(5)).await;
        let ks = keys(&clump);
        let m = c.owner_of(&ks[0]);
        let r = c.replica_of(m).expect("replica");
        c.make_replica_diverge_by_deleting_keys(r, &[ks[0].as_str(), ks[1].as_str()]);
        c.manual_failover(r);
        let (reason, after) = expect_lost::<T>(&g, VALIDITY + Duration::from_secs(12)).await;
        assert!(
            matches!(reason, LostReason::KeysChanged | LostReason::Expired),
            "{reason:?} after {after:?}"
        );
        drop(g);
        let again = lock_within::<T>(&l, &clump, Duration::from_secs(5)).await;
        again.unlock().await.expect("unlock");
        l.close().await;
    }

    variants!(Topology::cluster(3, 1), body, Duration::from_secs(120));
}

mod cluster_slot_migration {
    use super::*;

    /// The slot of a held key migrates to another master: during the move
    /// the holder follows `ASK`, after it `MOVED`; the lock is kept, the key
    /// is extended on its new owner, a waiter gets the lock after the
    /// release, and nothing is left behind.
    async fn body<T: TestRt>(ctx: Ctx<T>) {
        let c = ctx.cluster().clone();
        let l = connect::<T>(ctx.opts()).await;
        let waiter = connect::<T>(ctx.opts()).await;
        let name = spread_name(&c, "migrate");
        let g = lock_within::<T>(&l, &name, Duration::from_secs(5)).await;
        let k0 = keys(&name)[0].clone();
        let slot = c.slot_of(&k0);
        let from = c.owner_of(&k0);
        let to = (0..c.len()).find(|&i| i != from).expect("another master");

        c.begin_migration(slot, from, to);
        assert!(c.migrate_keys(slot, from, to) >= 1, "the key moved");
        // Mid-migration: extensions reach the key through ASK.
        expect_held_for::<T>(&g, VALIDITY).await;
        c.finish_migration(slot, to);
        expect_held_for::<T>(&g, VALIDITY).await;
        assert_eq!(c.owner_of(&k0), to);
        let ttl = c.pttl(&k0);
        assert!(ttl > 0, "key extended on its new owner (pttl {ttl})");

        let waiting = spawn_waiter::<T>(&waiter, &name);
        T::sleep(Duration::from_millis(100)).await;
        g.unlock().await.expect("unlock");
        if T::timeout(Duration::from_secs(5), waiting).await.is_none() {
            panic!("waiter hung after the release");
        }
        no_keys_left::<T>(|| values(&c, &name)).await;
        l.close().await;
        waiter.close().await;
    }

    variants!(Topology::cluster(3, 0), body, Duration::from_secs(90));
}

mod cluster_retires_forgotten_nodes {
    use super::*;

    use std::net::TcpListener;
    use std::sync::{Arc, Mutex};

    /// How long a driver that still serves a node can go without dialling
    /// it: its reconnection backoff tops out at 1 s (jittered down), so
    /// four seconds of silence mean nobody dials.
    const QUIET: Duration = Duration::from_secs(4);

    /// A replica is killed and forgotten by the cluster (what IP churn
    /// looks like from the client): the locker stops dialling its address
    /// once two topology queries no longer name it (≤ 2 × the 10 s refresh
    /// period), and locks go on working.
    async fn body<T: TestRt>(ctx: Ctx<T>) {
        let c = ctx.cluster().clone();
        let l = connect::<T>(ctx.opts()).await;
        let name = spread_name(&c, "retire");
        lock_within::<T>(&l, &name, Duration::from_secs(5))
            .await
            .unlock()
            .await
            .expect("unlock");
        let r = c.replica_of(0).expect("a replica");
        let (port, id) = (c.port(r), c.id(r).to_owned());
        c.kill(r);
        for i in (0..c.len()).filter(|&i| i != r) {
            let _: String = c.admin(i).cmd("CLUSTER", &["FORGET", &id]);
        }
        // Whoever dials the dead replica's address now reaches this
        // listener, which counts and drops the connections.
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("rebind the port");
        listener.set_nonblocking(true).expect("nonblocking");
        let dials = Arc::new(Mutex::new(Vec::<Instant>::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let counter = {
            let (dials, stop) = (dials.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    match listener.accept() {
                        Ok(_) => dials.lock().unwrap().push(Instant::now()),
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        };
        let start = Instant::now();
        let limit = Duration::from_secs(45);
        eventually::<T>(limit, "the forgotten replica's address goes quiet", || {
            let last = dials.lock().unwrap().last().copied().unwrap_or(start);
            last.elapsed() >= QUIET && !dials.lock().unwrap().is_empty()
        })
        .await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        counter.join().expect("counter thread");
        let n = dials.lock().unwrap().len();
        assert!(n >= 1, "the address was dialled before the retirement");
        let addr = format!("127.0.0.1:{port}");
        let stats = l.stats();
        let node = stats.nodes.iter().find(|n| n.addr == addr);
        assert_eq!(
            node.map(|n| n.state),
            Some(tracklock::ConnectionState::Retired),
            "{:?}",
            stats.nodes
        );
        lock_within::<T>(&l, &name, Duration::from_secs(5))
            .await
            .unlock()
            .await
            .expect("unlock after the retirement");
        l.close().await;
    }

    scenarios!(Topology::cluster(3, 1), body, Duration::from_secs(120);
        tokio_cache_on: TokioRt, Variant::caching(true);
        smol_cache_off: SmolRt, Variant::caching(false));
}

mod cluster_errors {
    use super::*;

    async fn standalone_seed<T: TestRt>(ctx: Ctx<T>) {
        let r = T::connect(Options::cluster([ctx.server().addr()])).await;
        assert!(
            matches!(
                r,
                Err(Error::Node {
                    source: tracklock::NodeError::Topology(_),
                    ..
                })
            ),
            "{r:?}"
        );
    }

    scenario!(
        cluster_mode_against_a_standalone_server_is_a_typed_error,
        TokioRt,
        Topology::Server(&[]),
        Variant::caching(true),
        tracklock_tests::SCENARIO_TIMEOUT,
        standalone_seed
    );

    async fn cluster_node<T: TestRt>(ctx: Ctx<T>) {
        let r = T::connect(Options::new(ctx.cluster().addr(0))).await;
        assert!(
            matches!(
                r,
                Err(Error::Node {
                    source: tracklock::NodeError::Topology(_),
                    ..
                })
            ),
            "{r:?}"
        );
    }

    scenario!(
        single_mode_against_a_cluster_node_is_a_typed_error,
        SmolRt,
        Topology::SharedCluster,
        Variant::caching(true),
        tracklock_tests::SCENARIO_TIMEOUT,
        cluster_node
    );
}

mod cluster_slots {
    use super::*;

    /// The engine's hash slots are the server's (`CLUSTER KEYSLOT`), hash
    /// tags included.
    #[test]
    fn cluster_key_slots_match_the_server() {
        let c = RedisCluster::shared();
        for name in [
            "x",
            "tracklock-demo",
            "{tag}a",
            "a{tag}b",
            "{}x",
            "{{x}}",
            "é✓",
        ] {
            for k in keys(name) {
                assert_eq!(tracklock_core::key_slot(k.as_bytes()), c.slot_of(&k), "{k}");
            }
        }
    }
}
