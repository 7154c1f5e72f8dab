//! Redis Sentinel mode against real sentinels ([`RedisSentinel`]: a master,
//! a replica, three sentinels with a 1 s `down-after-milliseconds`): the
//! master resolved through the sentinels, failovers (forced and by killing
//! the master) followed, locks kept when replicated and reported lost when
//! not, restarted sentinels, passwords, and the typed errors. Every test's
//! path contains `sentinel`: `cargo test -p tracklock-tests sentinel`.
//!
//! Each test starts its own deployment, so they run in parallel. The kit's
//! blocking helpers (failovers take seconds) run on a helper thread
//! ([`off`]), never on the runtime's.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tracklock::{Error, Guard, Locker, LostReason, Mode, Options, SentinelFailure};
use tracklock_testkit::{free_port, RedisSentinel, SentinelSetup, TlsCerts, FAILOVER_TIMEOUT};
use tracklock_tests::topo::*;
use tracklock_tests::{each_runtime, tokio_and_smol, Ctx, TestRt, Topology};

/// Validity of the locks held through a failover: a switch (detection
/// after 1 s, election, promotion, reconnection) takes a few seconds on a
/// busy machine, and a held lock must outlive it.
const FAILOVER_VALIDITY: Duration = Duration::from_secs(20);
/// Connect timeout of the tests (also bounds each failing `connect`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Slack over a bound for a busy machine.
const SLACK: Duration = Duration::from_secs(5);

/// Runs the kit's blocking `f` on a helper thread while the runtime keeps
/// serving the lockers.
async fn off<T: TestRt, R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    let handle = std::thread::spawn(f);
    while !handle.is_finished() {
        T::sleep(Duration::from_millis(20)).await;
    }
    handle
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
}

/// Runs the kit's blocking `f` on deployment `s` ([`off`]).
async fn blocking<T: TestRt, R: Send + 'static>(
    s: &Arc<RedisSentinel>,
    f: impl FnOnce(&RedisSentinel) -> R + Send + 'static,
) -> R {
    let s = s.clone();
    off::<T, _>(move || f(&s)).await
}

/// A forced failover once the replica caught up; the new master's address.
async fn replicated_failover<T: TestRt>(s: &Arc<RedisSentinel>) -> String {
    blocking::<T, _>(s, |s| {
        s.wait_replicated();
        s.failover()
    })
    .await
}

/// Two lockers of `s`, the first holding a fresh name from `stem`.
async fn first_holds<T: TestRt>(
    s: &RedisSentinel,
    stem: &str,
) -> (Locker<T::R>, Locker<T::R>, String, Guard<T::R>) {
    let a = connect::<T>(opts(s)).await;
    let b = connect::<T>(opts(s)).await;
    let name = fresh(stem);
    let g = lock_within::<T>(&a, &name, Duration::from_secs(5)).await;
    (a, b, name, g)
}

async fn deployment<T: TestRt>(setup: SentinelSetup) -> Arc<RedisSentinel> {
    off::<T, _>(move || Arc::new(RedisSentinel::start(setup))).await
}

fn opts(s: &RedisSentinel) -> Options {
    Options::from_url(&s.url())
        .expect("sentinel URL")
        .connect_timeout(CONNECT_TIMEOUT)
        .validity(FAILOVER_VALIDITY)
}

/// The address the locker's only node is connected to now.
fn node_addr<R: tracklock::Runtime>(l: &Locker<R>) -> String {
    l.stats().nodes[0].addr.clone()
}

/// How many of `name`'s keys the data node at `addr` holds.
fn keys_on(s: &RedisSentinel, addr: &str, name: &str) -> usize {
    let a = s.data_at(addr).admin();
    keys(name).iter().filter(|k| a.get(k).is_some()).count()
}

/// Waits until the locker's node is connected to `addr` and a lock can be
/// taken there.
async fn follows<T: TestRt>(l: &Locker<T::R>, addr: &str) {
    let start = Instant::now();
    loop {
        if node_addr(l) == addr {
            if let Ok(g) = l.try_lock(&fresh("sentinel-probe")).await {
                g.unlock().await.expect("unlock the probe");
                return;
            }
        }
        assert!(
            start.elapsed() < FAILOVER_TIMEOUT,
            "the locker did not follow the switch to {addr} (at {:?})",
            node_addr(l)
        );
        T::sleep(Duration::from_millis(50)).await;
    }
}

/// `waiter` cannot take `name` (held by `g`), and a task of it that asks
/// for `name` still waits 200 ms later; `g`'s unlock must get it the lock
/// well before the validity (so by the release, not by expiry).
async fn waiter_served<T: TestRt>(waiter: &Locker<T::R>, g: Guard<T::R>, name: &str) {
    assert!(matches!(waiter.try_lock(name).await, Err(Error::NotLocked)));
    let waiting = spawn_waiter::<T>(waiter, name);
    T::sleep(Duration::from_millis(200)).await;
    assert!(
        !waiting.is_finished(),
        "the waiter waits while the lock is held"
    );
    g.unlock().await.expect("unlock");
    let within = FAILOVER_VALIDITY / 4;
    assert!(
        T::timeout(within, waiting).await.is_some(),
        "the waiter was not served within {within:?} of the release"
    );
}

/// `connect` must fail within the connect timeout (plus slack).
async fn connect_fails<T: TestRt>(o: Options) -> Error {
    connect_fails_within::<T>(o, CONNECT_TIMEOUT, SLACK).await
}

/// Waits until the idle locker `l` uses `new`: the sentinels'
/// `+switch-master` (or the demoted master dropping the connection) moves
/// the connection before any write of its own is refused.
async fn switched_while_idle<T: TestRt>(l: &Locker<T::R>, new: &str) {
    let start = Instant::now();
    while node_addr(l) != new {
        assert!(
            start.elapsed() < FAILOVER_VALIDITY / 4,
            "the idle locker still uses {} after the switch to {new}",
            node_addr(l)
        );
        T::sleep(Duration::from_millis(20)).await;
    }
}

mod sentinel_lock_and_wait {
    use super::*;

    /// Through the sentinels: the master is found (the node's address is
    /// the master's), locks exclude each other, a waiter is served when
    /// the holder unlocks.
    async fn body<T: TestRt>(_: Ctx<T>) {
        let s = deployment::<T>(SentinelSetup::default()).await;
        assert_eq!(opts(&s).mode(), Mode::Sentinel);
        let (a, b, name, g) = first_holds::<T>(&s, "sentinel-wait").await;
        let master = s.client_addr(s.master());
        assert_eq!(node_addr(&a), master);
        assert!(
            keys_on(&s, &master, &name) >= 2,
            "the keys are on the master"
        );
        waiter_served::<T>(&b, g, &name).await;
        close_all(&[a, b]).await;
    }

    each_runtime!(Topology::Own, body, Duration::from_secs(90));
}

mod sentinel_failover_keeps_replicated_lock {
    use super::*;

    /// `SENTINEL FAILOVER` while a replicated lock is held: the locker
    /// follows the switch, the holder keeps the lock (its keys are on the
    /// new master), a waiter of another locker is served there once the
    /// holder unlocks.
    async fn body<T: TestRt>(_: Ctx<T>) {
        let s = deployment::<T>(SentinelSetup::default()).await;
        let (a, b, name, g) = first_holds::<T>(&s, "sentinel-kept").await;
        let new = replicated_failover::<T>(&s).await;
        switched_while_idle::<T>(&b, &new).await;
        follows::<T>(&a, &new).await;
        follows::<T>(&b, &new).await;
        assert!(g.is_held(), "the replicated lock is kept");
        assert!(
            keys_on(&s, &new, &name) >= 2,
            "the keys are on the new master"
        );
        // An extension period passes on the new master without a loss.
        expect_held_for::<T>(&g, FAILOVER_VALIDITY / 4).await;
        waiter_served::<T>(&b, g, &name).await;
        close_all(&[a, b]).await;
    }

    each_runtime!(Topology::Own, body, Duration::from_secs(120));
}

mod sentinel_master_killed {
    use super::*;

    /// The master is killed while a replicated lock is held and another
    /// locker waits for it: the sentinels promote the replica, both lockers
    /// follow, the holder keeps the lock and the waiter gets it after the
    /// unlock. Then the old master comes back (as a replica), the sentinels
    /// are restarted, and a second failover is followed too.
    async fn body<T: TestRt>(_: Ctx<T>) {
        let s = deployment::<T>(SentinelSetup::default()).await;
        let (a, b, name, g) = first_holds::<T>(&s, "sentinel-killed").await;
        let waiter = {
            let b = b.clone();
            let name = name.clone();
            T::spawn(async move { b.lock(&name).await.map(|g| g.name().to_owned()) })
        };
        let (old, new) = blocking::<T, _>(&s, |s| {
            s.wait_replicated();
            let old = s.client_addr(s.master());
            (old, s.kill_master())
        })
        .await;
        follows::<T>(&a, &new).await;
        assert!(g.is_held(), "the replicated lock is kept");
        g.unlock().await.expect("unlock on the new master");
        let got = T::timeout(Duration::from_secs(10), waiter)
            .await
            .expect("the waiter is served after the switch");
        assert_eq!(got.expect("the waiter's lock"), name);

        let newer = blocking::<T, _>(&s, move |s| {
            s.restart_old(&old);
            s.restart_sentinels();
            s.failover()
        })
        .await;
        assert_eq!(newer, old_addr_check(&s, &newer));
        follows::<T>(&a, &newer).await;
        follows::<T>(&b, &newer).await;
        close_all(&[a, b]).await;
    }

    /// The new master is one of the deployment's data nodes.
    fn old_addr_check(s: &RedisSentinel, addr: &str) -> String {
        s.client_addr(s.data_at(addr))
    }

    each_runtime!(Topology::Own, body, Duration::from_secs(150));
}

mod sentinel_unreplicated_lock_lost {
    use super::*;

    /// The replica is cut off before the lock is taken, then the master is
    /// killed: the new master never had the keys, and the holder is told
    /// the lock is lost (its keys changed) once it reconnects there; the
    /// name can be locked again on the new master.
    async fn body<T: TestRt>(_: Ctx<T>) {
        let setup = SentinelSetup {
            data_password: Some("data-pw".into()),
            ..SentinelSetup::default()
        };
        let s = deployment::<T>(setup).await;
        let a = connect::<T>(opts(&s)).await;
        blocking::<T, _>(&s, |s| s.cut_replica()).await;
        let name = fresh("sentinel-lost");
        let g = lock_within::<T>(&a, &name, Duration::from_secs(5)).await;
        let new = blocking::<T, _>(&s, |s| s.kill_master()).await;
        assert_eq!(keys_on(&s, &new, &name), 0, "the new master lacks the keys");
        let (reason, _) = expect_lost::<T>(&g, FAILOVER_TIMEOUT).await;
        assert_eq!(reason, LostReason::KeysChanged);
        follows::<T>(&a, &new).await;
        let g = lock_within::<T>(&a, &name, Duration::from_secs(5)).await;
        g.unlock().await.expect("unlock");
        a.close().await;
    }

    each_runtime!(Topology::Own, body, Duration::from_secs(120));
}

mod sentinel_passwords_and_errors {
    use super::*;

    /// Sentinels with their own password and data nodes with another: the
    /// right pair works (from the URL, and from the builder); a wrong
    /// sentinel password, an unknown master name and sentinels that are
    /// all down are typed errors within the connect timeout.
    async fn body<T: TestRt>(_: Ctx<T>) {
        let setup = SentinelSetup {
            data_password: Some("data-pw".into()),
            sentinel_password: Some("sentinel-pw".into()),
            ..SentinelSetup::default()
        };
        let s = deployment::<T>(setup).await;
        let l = connect::<T>(opts(&s)).await;
        let g = lock_within::<T>(&l, &fresh("sentinel-pw"), Duration::from_secs(5)).await;
        g.unlock().await.expect("unlock");
        l.close().await;

        let built = Options::sentinel(RedisSentinel::MASTER, s.sentinel_addrs())
            .sentinel_password("sentinel-pw")
            .password("data-pw");
        let l = connect::<T>(built.clone()).await;
        l.close().await;

        let e = connect_fails::<T>(
            Options::sentinel(RedisSentinel::MASTER, s.sentinel_addrs())
                .sentinel_password("wrong")
                .password("data-pw"),
        )
        .await;
        match &e {
            Error::Sentinel {
                failure: SentinelFailure::Refused(text),
                ..
            } => assert!(
                text.contains("WRONGPASS") || text.contains("invalid"),
                "{e}"
            ),
            other => panic!("wrong sentinel password: {other:?}"),
        }

        let e = connect_fails::<T>(
            Options::sentinel("no-such-master", s.sentinel_addrs())
                .sentinel_password("sentinel-pw"),
        )
        .await;
        assert!(
            matches!(
                e,
                Error::Sentinel {
                    failure: SentinelFailure::UnknownMaster,
                    ..
                }
            ),
            "unknown master: {e:?}"
        );

        // The data password is the data node's, not the sentinels'.
        let e = connect_fails::<T>(
            Options::sentinel(RedisSentinel::MASTER, s.sentinel_addrs())
                .sentinel_password("sentinel-pw")
                .password("wrong"),
        )
        .await;
        assert!(
            matches!(e, Error::Node { .. }),
            "wrong data password: {e:?}"
        );

        // A sentinel that is down, and one that does not answer (frozen),
        // are skipped: each gets its share of the connect timeout.
        let dead = format!("127.0.0.1:{}", free_port().expect("a free port"));
        let mut list = vec![dead, s.client_addr(s.sentinel(0))];
        list.extend(s.sentinel_addrs().into_iter().skip(1));
        let master = s.client_addr(s.master());
        blocking::<T, _>(&s, |s| s.sentinel(0).freeze()).await;
        let start = Instant::now();
        let l = connect::<T>(
            Options::sentinel(RedisSentinel::MASTER, list)
                .sentinel_password("sentinel-pw")
                .password("data-pw")
                .connect_timeout(CONNECT_TIMEOUT),
        )
        .await;
        assert!(start.elapsed() < CONNECT_TIMEOUT + SLACK);
        assert_eq!(node_addr(&l), master);
        l.close().await;
        blocking::<T, _>(&s, |s| s.sentinel(0).thaw()).await;

        let dead: Vec<String> = (0..2)
            .map(|_| format!("127.0.0.1:{}", free_port().expect("a free port")))
            .collect();
        let e = connect_fails::<T>(Options::sentinel(RedisSentinel::MASTER, dead)).await;
        assert!(
            matches!(
                e,
                Error::Sentinel {
                    failure: SentinelFailure::Unreachable(_),
                    ..
                }
            ),
            "no sentinel up: {e:?}"
        );
    }

    tokio_and_smol!(Topology::Own, body, Duration::from_secs(90));
}

mod sentinel_tls {
    use super::*;

    /// `rediss+sentinel://`: TLS to the sentinels (their TLS ports) and to
    /// the master they name (its TLS port, as the sentinels monitor it over
    /// TLS), verified against the kit's CA; a forced failover is followed
    /// over TLS with the lock kept.
    async fn body<T: TestRt>(_: Ctx<T>) {
        let certs = Arc::new(off::<T, _>(TlsCerts::generate).await);
        let setup = SentinelSetup {
            tls: Some(certs.clone()),
            ..SentinelSetup::default()
        };
        let s = deployment::<T>(setup).await;
        assert!(s.url().starts_with("rediss+sentinel://"), "{}", s.url());
        let o = opts(&s).tls_ca_file(certs.ca_cert());
        assert!(o.is_tls());
        let a = connect::<T>(o).await;
        let master = s.client_addr(s.master());
        assert_eq!(node_addr(&a), master, "the master's TLS port");
        let name = fresh("sentinel-tls");
        let g = lock_within::<T>(&a, &name, Duration::from_secs(5)).await;
        assert!(keys_on(&s, &master, &name) >= 2);
        let new = replicated_failover::<T>(&s).await;
        follows::<T>(&a, &new).await;
        assert!(g.is_held(), "the replicated lock is kept");
        g.unlock().await.expect("unlock over TLS");
        a.close().await;
    }

    tokio_and_smol!(Topology::Own, body, Duration::from_secs(120));
}

mod sentinel_subscription_moves_past_a_frozen_sentinel {
    use super::*;

    /// The sentinel the failover follower subscribed to (the first that
    /// answered) freezes: its pings go unanswered, the follower moves to
    /// the next sentinel, and an idle locker still follows a failover
    /// before any write of its own is refused.
    async fn body<T: TestRt>(_: Ctx<T>) {
        let s = deployment::<T>(SentinelSetup::default()).await;
        let ping = Duration::from_millis(200);
        let a = connect::<T>(opts(&s).ping_interval(ping)).await;
        blocking::<T, _>(&s, |s| s.freeze_sentinel(0)).await;
        // Unanswered for two ping intervals, then the next sentinel.
        T::sleep(ping * 5).await;
        let new = blocking::<T, _>(&s, |s| s.failover()).await;
        switched_while_idle::<T>(&a, &new).await;
        follows::<T>(&a, &new).await;
        blocking::<T, _>(&s, |s| s.thaw_sentinel(0)).await;
        a.close().await;
    }

    tokio_and_smol!(Topology::Own, body, Duration::from_secs(90));
}
