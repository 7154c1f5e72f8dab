//! End-to-end checks of the public API against real `redis-server`s, named
//! `on_<runtime>::<check>`. Each body is written once, generic over the
//! runtime, and runs through the scenario runner, which gives it its
//! servers ([`Topology`]); the lockers use the default options unless a
//! check says otherwise.

use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracklock::{Error, Locker, LostReason, NodeError, Options};
use tracklock_tests::{
    free_port, lock_keys, scenario, timer_lateness, Admin, Ctx, RedisCluster, RedisServer, TestRt,
    Topology, Variant,
};

/// Overall bound on one check.
const LIMIT: Duration = Duration::from_secs(60);

/// `#[test]`s on runtime `$rt`, one per row `name on topology` (or
/// `name: body on topology` when the body is named otherwise), each running
/// the body of the parent module against the servers of `topology` with
/// the default options for at most [`LIMIT`].
macro_rules! e2e {
    ($rt:ident; $($name:ident $(: $body:ident)? on $topology:expr),+ $(,)?) => {
        // The body is the first of `$body` (when given) and `$name`.
        $(e2e!(@one $rt, $name, $topology, $($body)? $name);)+
    };
    (@one $rt:ident, $name:ident, $topology:expr, $body:ident $($_name:ident)?) => {
        scenario!($name, $rt, $topology, Variant::caching(true), LIMIT, super::$body);
    };
}

// ---- helpers -----------------------------------------------------------------

/// A locker with the default options.
async fn locker<T: TestRt>(addr: String) -> Locker<T::R> {
    T::connect(Options::new(addr)).await.unwrap()
}

/// Two lockers on the scenario's server.
async fn two_lockers<T: TestRt>(ctx: &Ctx<T>) -> (Locker<T::R>, Locker<T::R>) {
    let addr = ctx.server().addr();
    (locker::<T>(addr.clone()).await, locker::<T>(addr).await)
}

/// `with_lock` on `a` stops its future when `b` forces the lock away from
/// inside it: the loss is the outcome.
async fn with_lock_stops_on_force<T: TestRt>(a: &Locker<T::R>, b: &Locker<T::R>) {
    let b2 = b.clone();
    let out = a
        .with_lock("wl", async move {
            let _g = b2.force_lock("wl").await.unwrap();
            std::future::pending::<()>().await;
        })
        .await
        .unwrap();
    assert_eq!(out, Err(LostReason::KeysChanged));
}

/// Holds four names at once through `a`: their keys land on masters 0
/// and 1 both (the locker uses masters its seed did not name); then
/// releases them.
async fn locks_reach_masters_0_and_1<T: TestRt>(c: &RedisCluster, a: &Locker<T::R>) {
    let mut guards = Vec::new();
    for n in ["n0", "n1", "n2", "n3"] {
        guards.push(a.try_lock(n).await.unwrap());
    }
    assert_ne!(c.admin(0).dbsize(), 0);
    assert_ne!(c.admin(1).dbsize(), 0);
    for g in guards {
        g.unlock().await.unwrap();
    }
}

/// `EXISTS` of the three keys of `name`.
fn existing(admin: &Admin, name: &str) -> i64 {
    let keys = lock_keys("rueidislock", name, 2);
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    admin.cmd("EXISTS", &keys)
}

/// Waits until every server has a client connection named `name`.
fn wait_named(admins: &[Admin], name: &str) {
    let t0 = Instant::now();
    while !admins
        .iter()
        .all(|a| a.clients().iter().any(|c| c.name == name))
    {
        assert!(t0.elapsed() < Duration::from_secs(5), "no client {name}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The servers holding lock `name`'s key `i` (default prefix); a cluster
/// node that does not serve the key's slot (`MOVED`) does not hold it.
fn holders(admins: &[Admin], name: &str, i: usize) -> Vec<usize> {
    let key = format!("rueidislock:{i}:{name}");
    (0..admins.len())
        .filter(|&s| match admins[s].try_cmd::<i64>("EXISTS", &[&key]) {
            Ok(n) => n == 1,
            Err(e) if e.code() == Some("MOVED") => false,
            Err(e) => panic!("EXISTS {key} on server {s}: {e}"),
        })
        .collect()
}

/// The id of the connection named `victim`.
fn victim_id(admin: &Admin) -> Option<u64> {
    admin
        .clients()
        .into_iter()
        .find(|c| c.name == "victim")
        .map(|c| c.id)
}

/// How late a wake-up may be on this machine right now: four times the
/// slowest of five `PING` round trips (load comes in bursts). A bound such
/// as "told within the lease" allows it on top, for the timer's and the
/// test task's wake-ups on a busy machine.
fn wake_slack(admin: &Admin) -> Duration {
    admin.rtt().trips(1)
}

/// How soon a waiter must get a released lock (default options): 500 ms on
/// a quiet machine, three wake-up slacks when that is longer (the release,
/// the invalidation and the waiter's `SET`), capped at 2 s: the waiter's
/// fallback is the holder's remaining TTL, at least half the default 5 s
/// validity after an extension, so only the invalidation can meet the cap.
fn handoff_bound(admin: &Admin) -> Duration {
    admin
        .rtt()
        .at_least(Duration::from_millis(500), 3)
        .min(Duration::from_secs(2))
}

/// Options with every duration as large as it may be: connect timeout and
/// ping interval `Duration::MAX` (they saturate), validity `2^62` ms (the
/// largest Redis TTL accepted, far beyond the engine clock's range).
fn huge_options(addr: String) -> Options {
    Options::new(addr)
        .connect_timeout(Duration::MAX)
        .ping_interval(Duration::MAX)
        .validity(Duration::from_millis(i64::MAX as u64 / 2))
}

/// Sends `DEBUG SLEEP secs` on a connection of its own and returns once the
/// server sleeps (a `PING` on another connection stays unanswered for
/// 100 ms); the returned stream must outlive the sleep's use.
fn put_to_sleep(addr: &str, secs: u32) -> std::net::TcpStream {
    use std::io::{Read, Write};
    let mut sleeper = std::net::TcpStream::connect(addr).unwrap();
    sleeper
        .write_all(format!("DEBUG SLEEP {secs}\r\n").as_bytes())
        .unwrap();
    let t0 = Instant::now();
    loop {
        let mut probe = std::net::TcpStream::connect(addr).unwrap();
        probe.write_all(b"PING\r\n").unwrap();
        probe
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let mut buf = [0u8; 16];
        match probe.read(&mut buf) {
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return sleeper
            }
            other => assert!(
                t0.elapsed() < Duration::from_secs(2),
                "the server does not sleep: {other:?}"
            ),
        }
    }
}

/// Polls `cond` every 5 ms for at most 2 s; panics with `what`.
async fn within_2s<T: TestRt>(what: &str, mut cond: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !cond() {
        assert!(t0.elapsed() < Duration::from_secs(2), "{what}");
        T::sleep(Duration::from_millis(5)).await;
    }
}

// ---- bodies ------------------------------------------------------------------

async fn try_lock_excludes_and_unlock_frees<T: TestRt>(ctx: Ctx<T>) {
    let (a, b) = two_lockers(&ctx).await;
    let g = a.try_lock("x").await.unwrap();
    assert!(g.is_held());
    assert_eq!(g.name(), "x");
    assert!(matches!(b.try_lock("x").await, Err(Error::NotLocked)));
    // Same locker: refused too.
    assert!(matches!(a.try_lock("x").await, Err(Error::NotLocked)));
    g.unlock().await.unwrap();
    assert_eq!(existing(ctx.admin(), "x"), 0);
    let g = b.try_lock("x").await.unwrap();
    drop(g);
    within_2s::<T>("locks not cleaned up", || {
        b.active_locks() == 0 && a.active_locks() == 0
    })
    .await;
    assert!(matches!(a.try_lock("").await, Err(Error::InvalidName)));
    a.close().await;
    b.close().await;
    assert!(a.is_closed());
    assert!(matches!(a.lock("y").await, Err(Error::Closed)));
}

/// The glommio form: the second locker from a URL, `with_lock` at the end.
// Run on glommio only.
#[cfg_attr(not(feature = "glommio"), allow(dead_code))]
async fn try_lock_excludes_and_unlock_frees_from_url<T: TestRt>(ctx: Ctx<T>) {
    let addr = ctx.server().addr();
    let a = locker::<T>(addr.clone()).await;
    let b = T::connect(Options::from_url(&format!("redis://{addr}/0")).unwrap())
        .await
        .unwrap();
    let g = a.try_lock("x").await.unwrap();
    assert!(g.is_held());
    assert!(matches!(b.try_lock("x").await, Err(Error::NotLocked)));
    assert!(matches!(a.try_lock("x").await, Err(Error::NotLocked)));
    g.unlock().await.unwrap();
    assert_eq!(existing(ctx.admin(), "x"), 0);
    drop(b.try_lock("x").await.unwrap());
    within_2s::<T>("locks not cleaned up", || {
        a.active_locks() == 0 && b.active_locks() == 0
    })
    .await;
    assert_eq!(a.with_lock("wl", async { 7 }).await.unwrap(), Ok(7));
    a.close().await;
    b.close().await;
    assert!(matches!(a.lock("y").await, Err(Error::Closed)));
}

async fn waiter_is_woken_by_release<T: TestRt>(ctx: Ctx<T>) {
    let (a, b) = two_lockers(&ctx).await;
    let g = a.lock("w").await.unwrap();
    let waiter = T::spawn(async move {
        let g = b.lock("w").await.unwrap();
        let at = Instant::now();
        g.unlock().await.unwrap();
        b.close().await;
        at
    });
    T::sleep(Duration::from_millis(100)).await;
    let bound = handoff_bound(ctx.admin());
    let released = Instant::now();
    g.unlock().await.unwrap();
    let acquired = T::timeout(Duration::from_secs(5), waiter)
        .await
        .expect("waiter stuck");
    let lag = acquired.saturating_duration_since(released);
    assert!(lag < bound, "waiter took {lag:?} (bound {bound:?})");
    a.close().await;
}

/// The old holder is told, at once and for good; `with_lock` stops its
/// future when the lock is lost.
async fn force_lock_makes_holder_lose<T: TestRt>(ctx: Ctx<T>) {
    let (a, b) = two_lockers(&ctx).await;
    let g = a.lock("f").await.unwrap();
    let g2 = b.force_lock("f").await.unwrap();
    let reason = T::timeout(Duration::from_secs(2), g.lost())
        .await
        .expect("holder not told");
    assert_eq!(reason, LostReason::KeysChanged);
    assert!(!g.is_held());
    // lost() again resolves at once.
    assert_eq!(g.lost().await, LostReason::KeysChanged);
    assert!(g2.is_held());
    with_lock_stops_on_force::<T>(&a, &b).await;
    g.unlock().await.unwrap();
    g2.unlock().await.unwrap();
    a.close().await;
    b.close().await;
}

async fn with_lock_runs_and_stops_on_loss<T: TestRt>(ctx: Ctx<T>) {
    let addr = ctx.server().addr();
    let a = locker::<T>(addr.clone()).await;
    assert_eq!(a.with_lock("wl", async { 7 }).await.unwrap(), Ok(7));
    let b = locker::<T>(addr).await;
    with_lock_stops_on_force::<T>(&a, &b).await;
    a.close().await;
    b.close().await;
}

async fn dropping_a_pending_lock_cancels_it<T: TestRt>(ctx: Ctx<T>) {
    let (a, b) = two_lockers(&ctx).await;
    let g = a.lock("c").await.unwrap();
    let r1 = T::timeout(Duration::from_millis(100), b.lock("c")).await;
    assert!(r1.is_none(), "should still be waiting");
    within_2s::<T>("cancelled request leaked", || b.active_locks() == 0).await;
    g.unlock().await.unwrap();
    a.close().await;
    b.close().await;
}

async fn close_makes_holders_lose<T: TestRt>(ctx: Ctx<T>) {
    let (a, b) = two_lockers(&ctx).await;
    let g = a.lock("cl").await.unwrap();
    let a2 = a.clone();
    let pending = T::spawn(async move { a2.lock("cl").await.map(|_| ()) });
    T::sleep(Duration::from_millis(50)).await;
    let t0 = Instant::now();
    a.close().await;
    assert!(t0.elapsed() < Duration::from_millis(1500));
    assert_eq!(g.lost().await, LostReason::Closed);
    assert!(matches!(pending.await, Err(Error::Closed)));
    // The keys were released: another locker gets it at once.
    let g2 = b.try_lock("cl").await.unwrap();
    drop(g);
    g2.unlock().await.unwrap();
    b.close().await;
}

async fn survives_a_killed_connection<T: TestRt>(ctx: Ctx<T>) {
    let admin = ctx.admin();
    let a = T::connect(Options::new(ctx.server().addr()).client_name("victim"))
        .await
        .unwrap();
    let g = a.lock("k").await.unwrap();
    let id = victim_id(admin).expect("connection named victim");
    assert!(admin.client_kill_by_id(id));
    // Reconnected (a new connection id), and the held keys were re-verified
    // on it.
    let t0 = Instant::now();
    while victim_id(admin).is_none_or(|new_id| new_id == id) {
        assert!(t0.elapsed() < Duration::from_secs(5), "not reconnected");
        T::sleep(Duration::from_millis(10)).await;
    }
    let lost = T::timeout(Duration::from_millis(300), g.lost()).await;
    assert!(lost.is_none(), "lost after the reconnection: {lost:?}");
    assert!(g.is_held());
    g.unlock().await.unwrap();
    let g = T::timeout(Duration::from_secs(2), a.try_lock("k2"))
        .await
        .unwrap()
        .unwrap();
    g.unlock().await.unwrap();
    a.close().await;
}

async fn frozen_server_expires_the_holder_in_time<T: TestRt>(ctx: Ctx<T>) {
    let r = ctx.server();
    let validity = Duration::from_millis(600);
    let a = T::connect(
        Options::new(r.addr())
            .validity(validity)
            .ping_interval(Duration::from_millis(100))
            .connect_timeout(Duration::from_millis(300)),
    )
    .await
    .unwrap();
    let g = a.lock("frozen").await.unwrap();
    r.freeze();
    // No extension succeeds after this (the signal was sent).
    let frozen_at = Instant::now();
    let reason = T::timeout(Duration::from_secs(3), g.lost()).await;
    let after = frozen_at.elapsed();
    r.thaw();
    assert_eq!(reason.expect("holder never told"), LostReason::Expired);
    // Never later than the lease: at most one validity after the last
    // successful extension, which was sent before the freeze; plus the
    // wake-ups that tell the test, on a busy machine: the driver's timer
    // and the test's task (measured now, as the load comes in bursts).
    let slack = wake_slack(ctx.admin()) + timer_lateness();
    assert!(
        after <= validity + slack,
        "told after {after:?} (validity {validity:?}, wake-up slack {slack:?})"
    );
    assert!(!g.is_held());
    drop(g);
    // The locker recovers once the server answers again.
    let g = T::timeout(Duration::from_secs(5), a.lock("frozen"))
        .await
        .expect("no recovery")
        .unwrap();
    g.unlock().await.unwrap();
    a.close().await;
}

async fn waiter_survives_a_server_restart<T: TestRt>(ctx: Ctx<T>) {
    let r = ctx.server();
    let opts = || Options::new(r.addr()).validity(Duration::from_millis(800));
    let a = T::connect(opts()).await.unwrap();
    let b = T::connect(opts()).await.unwrap();
    let g = a.lock("rs").await.unwrap();
    let b2 = b.clone();
    let waiter = T::spawn(async move { b2.lock("rs").await.map(drop) });
    T::sleep(Duration::from_millis(50)).await;
    r.restart();
    // The restart wiped the keys: the holder learns it, the waiter gets it.
    let reason = T::timeout(Duration::from_secs(3), g.lost())
        .await
        .expect("holder never told");
    assert!(
        matches!(reason, LostReason::KeysChanged | LostReason::Expired),
        "{reason:?}"
    );
    T::timeout(Duration::from_secs(5), waiter)
        .await
        .expect("waiter stuck")
        .unwrap();
    drop(g);
    a.close().await;
    b.close().await;
}

async fn contention_is_mutually_exclusive<T: TestRt>(ctx: Ctx<T>) {
    let addr = ctx.server().addr();
    let lockers = [locker::<T>(addr.clone()).await, locker::<T>(addr).await];
    let inside = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for t in 0..8 {
        let l = lockers[t % 2].clone();
        let inside = inside.clone();
        let done = done.clone();
        tasks.push(T::spawn(async move {
            for _ in 0..15 {
                let g = l.lock("hot").await.unwrap();
                assert!(!inside.swap(true, Ordering::SeqCst), "two holders at once");
                futures_lite::future::yield_now().await;
                inside.store(false, Ordering::SeqCst);
                g.unlock().await.unwrap();
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        T::timeout(Duration::from_secs(20), t)
            .await
            .expect("contention stalled");
    }
    assert_eq!(done.load(Ordering::Relaxed), 8 * 15);
    for l in &lockers {
        assert_eq!(l.active_locks(), 0);
        l.close().await;
    }
}

/// A tokio runtime of the locker's own, shut down under a held lock, ends
/// every request. It runs on a thread of its own, outside the runner's
/// runtime (which it blocks meanwhile; the runner's watchdog bounds it).
async fn runtime_shutdown_ends_every_request<T: TestRt>(ctx: Ctx<T>) {
    let addr = ctx.server().addr();
    let own = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (locker, guard) = rt.block_on(async {
            let l = tracklock::tokio::Locker::connect(Options::new(addr))
                .await
                .unwrap();
            let g = l.lock("rt").await.unwrap();
            (l, g)
        });
        drop(rt);
        futures_lite::future::block_on(async {
            assert_eq!(guard.lost().await, LostReason::Closed);
            assert!(matches!(locker.try_lock("rt2").await, Err(Error::Closed)));
            locker.close().await;
            assert!(matches!(guard.unlock().await, Err(Error::Closed) | Ok(())));
        });
    });
    own.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
}

/// Nothing listening, a bad option, a wrong and a missing password, then
/// the right one (the server requires `sesame`).
async fn connect_errors<T: TestRt>(ctx: Ctx<T>) {
    let port = free_port().unwrap();
    match T::connect(Options::new(format!("127.0.0.1:{port}"))).await {
        Err(Error::Connect { addr, .. }) => assert_eq!(addr, format!("127.0.0.1:{port}")),
        other => panic!("expected Connect, got {other:?}"),
    }
    match T::connect(Options::new("127.0.0.1:1").key_majority(0)).await {
        Err(Error::Config(tracklock::ConfigError::MajorityZero)) => {}
        other => panic!("expected Config, got {other:?}"),
    }
    let addr = ctx.server().addr();
    match T::connect(Options::new(&addr).password("wrong")).await {
        Err(Error::Node {
            source: NodeError::Handshake(message),
            ..
        }) => assert!(message.as_str().contains("WRONGPASS"), "{message}"),
        other => panic!("expected Node(Handshake), got {other:?}"),
    }
    match T::connect(Options::new(&addr)).await {
        Err(Error::Node {
            source: NodeError::Handshake(message),
            ..
        }) => assert!(message.as_str().contains("NOAUTH"), "{message}"),
        other => panic!("expected Node(Handshake), got {other:?}"),
    }
    let a = T::connect(Options::new(&addr).password("sesame"))
        .await
        .unwrap();
    a.try_lock("p").await.unwrap().unlock().await.unwrap();
    a.close().await;
}

async fn instances_spread_keys_and_exclude<T: TestRt>(ctx: Ctx<T>) {
    let s = ctx.instances();
    let all: Vec<Admin> = (0..3).map(|i| s.admin(i)).collect();
    let opts = || Options::instances(s.addrs()).client_name("inst");
    let a = T::connect(opts()).await.unwrap();
    // `connect` returns once two instances are ready; the third finishes
    // its handshake a little later (on a busy machine, much later): until
    // then a lock writes two keys only.
    wait_named(&all, "inst");
    let deadline = Instant::now() + Duration::from_secs(10);
    let g = loop {
        let g = a.try_lock("x").await.unwrap();
        if (0..3).all(|i| holders(&all, "x", i) == [i]) || Instant::now() > deadline {
            break g;
        }
        g.unlock().await.unwrap();
        T::sleep(Duration::from_millis(20)).await;
    };
    for i in 0..3 {
        assert_eq!(holders(&all, "x", i), [i], "key {i}");
    }
    let b = T::connect(opts()).await.unwrap();
    assert!(matches!(b.try_lock("x").await, Err(Error::NotLocked)));
    g.unlock().await.unwrap();
    for i in 0..3 {
        assert!(holders(&all, "x", i).is_empty(), "key {i} left");
    }
    b.try_lock("x").await.unwrap().unlock().await.unwrap();
    a.close().await;
    b.close().await;
}

/// Two instances up, the third's port free: connect and lock on the
/// majority; the third comes up later and is used.
async fn instances_connect_with_one_down_and_pick_it_up_later<T: TestRt>(ctx: Ctx<T>) {
    let s = ctx.instances();
    let two: Vec<Admin> = (0..2).map(|i| s.admin(i)).collect();
    let down = free_port().unwrap();
    let addrs = [s.addr(0), s.addr(1), format!("127.0.0.1:{down}")];
    let opts = |name: &str| {
        Options::instances(addrs.clone())
            .client_name(name)
            .connect_timeout(Duration::from_secs(2))
    };
    let t0 = Instant::now();
    let a = T::connect(opts("inst1a")).await.unwrap();
    assert!(t0.elapsed() < Duration::from_secs(1));
    let g = a.lock("one-down").await.unwrap();
    assert!(g.is_held());
    assert_eq!(holders(&two, "one-down", 0), [0]);
    assert_eq!(holders(&two, "one-down", 1), [1]);
    let b = T::connect(opts("inst1b")).await.unwrap();
    assert!(matches!(
        b.try_lock("one-down").await,
        Err(Error::NotLocked)
    ));
    g.unlock().await.unwrap();
    // The third instance comes up: the drivers that failed their first
    // connection were retrying, and now use it.
    let r2 = RedisServer::try_start_on(down, &[]).expect("redis-server");
    wait_named(&[r2.admin()], "inst1a");
    T::sleep(Duration::from_millis(50)).await;
    let g = a.try_lock("later").await.unwrap();
    let three = [s.admin(0), s.admin(1), r2.admin()];
    assert_eq!(holders(&three, "later", 2), [2]);
    g.unlock().await.unwrap();
    a.close().await;
    b.close().await;
}

async fn instances_fail_fast_without_a_majority<T: TestRt>(ctx: Ctx<T>) {
    let (d0, d2) = (free_port().unwrap(), free_port().unwrap());
    let addrs = [
        format!("127.0.0.1:{d0}"),
        ctx.server().addr(),
        format!("127.0.0.1:{d2}"),
    ];
    let t0 = Instant::now();
    match T::connect(Options::instances(addrs)).await {
        Err(Error::Connect { addr, .. }) => assert_eq!(addr, format!("127.0.0.1:{d0}")),
        other => panic!("expected Connect, got {other:?}"),
    }
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
}

/// Two instances up, the third's port free: both lock on the majority.
async fn instances_with_one_down<T: TestRt>(ctx: Ctx<T>) {
    let s = ctx.instances();
    let two: Vec<Admin> = (0..2).map(|i| s.admin(i)).collect();
    let addrs = [
        s.addr(0),
        s.addr(1),
        format!("127.0.0.1:{}", free_port().unwrap()),
    ];
    let a = T::connect(Options::instances(addrs.clone())).await.unwrap();
    let b =
        T::connect(Options::from_url(&format!("redis+instances://{}", addrs.join(","))).unwrap())
            .await
            .unwrap();
    let g = a.lock("i").await.unwrap();
    assert_eq!(holders(&two, "i", 0), [0]);
    assert_eq!(holders(&two, "i", 1), [1]);
    assert!(matches!(b.try_lock("i").await, Err(Error::NotLocked)));
    g.unlock().await.unwrap();
    b.try_lock("i").await.unwrap().unlock().await.unwrap();
    a.close().await;
    b.close().await;
}

async fn multi_node_connect_times_out_naming_the_mode<T: TestRt>(ctx: Ctx<T>) {
    // A cluster node without slots: ready, but no slot has an owner.
    let node = RedisCluster::try_start_lone_node().expect("cluster node");
    let opts = Options::cluster([node.addr()]).connect_timeout(Duration::from_millis(300));
    match T::connect(opts).await {
        Err(Error::Connect { source, addr }) => {
            assert_eq!(source.kind(), std::io::ErrorKind::TimedOut);
            let msg = source.to_string();
            assert!(msg.contains("cluster mode"), "{msg}");
            assert!(msg.contains("1 of 1 nodes ready"), "{msg}");
            assert_eq!(addr, node.addr());
        }
        other => panic!("expected Connect, got {other:?}"),
    }
    // Two silent instances (TCP accepted, HELLO never answered): the
    // connect timeout and their handshake timeouts fall together, so either
    // reports it.
    let l1 = TcpListener::bind("127.0.0.1:0").unwrap();
    let l2 = TcpListener::bind("127.0.0.1:0").unwrap();
    let addrs = [
        ctx.server().addr(),
        l1.local_addr().unwrap().to_string(),
        l2.local_addr().unwrap().to_string(),
    ];
    let opts = Options::instances(addrs).connect_timeout(Duration::from_millis(300));
    let t0 = Instant::now();
    match T::connect(opts).await {
        Err(Error::Connect { source, .. }) => {
            assert_eq!(source.kind(), std::io::ErrorKind::TimedOut);
            let msg = source.to_string();
            assert!(
                msg.contains("instances mode") || msg.contains("handshake"),
                "{msg}"
            );
        }
        other => panic!("expected Connect, got {other:?}"),
    }
    assert!(t0.elapsed() < Duration::from_secs(2));
}

async fn wrong_mode_is_a_topology_error<T: TestRt>(ctx: Ctx<T>) {
    let node = RedisCluster::try_start_lone_node().expect("cluster node");
    let plain = ctx.server();
    match T::connect(Options::new(node.addr())).await {
        Err(Error::Node {
            addr,
            source: NodeError::Topology(message),
        }) => {
            assert_eq!(addr, node.addr());
            assert!(message.as_str().contains("cluster"), "{message}");
        }
        other => panic!("expected Node(Topology), got {other:?}"),
    }
    match T::connect(Options::cluster([plain.addr()])).await {
        Err(Error::Node {
            addr,
            source: NodeError::Topology(message),
        }) => {
            assert_eq!(addr, plain.addr());
            assert!(message.as_str().contains("standalone"), "{message}");
        }
        other => panic!("expected Node(Topology), got {other:?}"),
    }
    // Every seed must fail before `connect` does: the first is reported.
    let dead = format!("127.0.0.1:{}", free_port().unwrap());
    match T::connect(Options::cluster([plain.addr(), dead])).await {
        Err(Error::Node {
            addr,
            source: NodeError::Topology(_),
        }) => assert_eq!(addr, plain.addr()),
        other => panic!("expected Node(Topology), got {other:?}"),
    }
}

async fn one_node_cluster_locks<T: TestRt>(ctx: Ctx<T>) {
    let c = ctx.cluster();
    let node = [c.admin(0)];
    let a = T::connect(Options::from_url(&format!("redis+cluster://{}", c.addr(0))).unwrap())
        .await
        .unwrap();
    let b = T::connect(Options::cluster([c.addr(0)])).await.unwrap();
    let g = a.lock("c1").await.unwrap();
    for i in 0..3 {
        assert_eq!(holders(&node, "c1", i), [0], "key {i}");
    }
    assert!(matches!(b.try_lock("c1").await, Err(Error::NotLocked)));
    g.unlock().await.unwrap();
    b.try_lock("c1").await.unwrap().unlock().await.unwrap();
    a.close().await;
    b.close().await;
}

/// Seeded with the first master only, the locker finds the second; each
/// key lands on exactly one master, both get keys, nothing is left.
async fn cluster_connects_masters_beyond_the_seeds<T: TestRt>(ctx: Ctx<T>) {
    let c = ctx.cluster();
    let all: Vec<Admin> = (0..c.len()).map(|i| c.admin(i)).collect();
    let opts = || Options::cluster([c.addr(0)]).client_name("clu");
    let a = T::connect(opts()).await.unwrap();
    wait_named(&all, "clu");
    let b = T::connect(opts()).await.unwrap();
    let names = ["n0", "n1", "n2", "n3", "n4", "n5"];
    let mut guards = Vec::new();
    for n in names {
        guards.push(a.try_lock(n).await.unwrap());
        assert!(matches!(b.try_lock(n).await, Err(Error::NotLocked)), "{n}");
    }
    let mut per_node = [0usize; 2];
    for n in names {
        for i in 0..3 {
            let h = holders(&all, n, i);
            assert!(h.len() <= 1, "{n}:{i} on {h:?}");
            for s in h {
                per_node[s] += 1;
            }
        }
    }
    assert!(per_node[0] > 0 && per_node[1] > 0, "{per_node:?}");
    for g in guards {
        g.unlock().await.unwrap();
    }
    for admin in &all {
        assert_eq!(admin.dbsize(), 0);
    }
    a.close().await;
    b.close().await;
}

/// Seeded with the second master, after waiting for both connections.
async fn cluster_connects_masters_beyond_the_seed_named<T: TestRt>(ctx: Ctx<T>) {
    let c = ctx.cluster();
    let a = T::connect(Options::cluster([c.addr(1)]).client_name("clus"))
        .await
        .unwrap();
    wait_named(&[c.admin(0), c.admin(1)], "clus");
    locks_reach_masters_0_and_1::<T>(c, &a).await;
    a.close().await;
}

/// Seeded with the first master, locking at once: the driver of the
/// discovered master is spawned from a driver task.
// Run on glommio only.
#[cfg_attr(not(feature = "glommio"), allow(dead_code))]
async fn cluster_connects_masters_beyond_the_seed_at_once<T: TestRt>(ctx: Ctx<T>) {
    let c = ctx.cluster();
    let a = T::connect(Options::cluster([c.addr(0)]).client_name("clug"))
        .await
        .unwrap();
    locks_reach_masters_0_and_1::<T>(c, &a).await;
    a.close().await;
}

async fn connect_times_out_on_a_silent_server<T: TestRt>(_ctx: Ctx<T>) {
    // Accepts TCP but never answers HELLO.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let t0 = Instant::now();
    match T::connect(Options::new(addr).connect_timeout(Duration::from_millis(200))).await {
        Err(Error::Connect { source, .. }) => {
            assert_eq!(source.kind(), std::io::ErrorKind::TimedOut)
        }
        other => panic!("expected Connect, got {other:?}"),
    }
    assert!(t0.elapsed() < Duration::from_secs(2));
}

/// glommio's timers add their duration to `Instant::now()` unchecked: a
/// `Duration::MAX` connect timeout must not reach them as such.
async fn huge_durations_connect_and_lock<T: TestRt>(ctx: Ctx<T>) {
    let l = T::connect(huge_options(ctx.server().addr())).await.unwrap();
    let g = l.try_lock("huge").await.unwrap();
    let ttl = ctx.admin().pttl("rueidislock:0:huge");
    assert!(ttl > i64::MAX / 4, "pttl {ttl}");
    g.unlock().await.unwrap();
    l.close().await;
}

/// `connect_timeout` bounds TCP connect plus handshake: a server busy for
/// 3 s during the handshake is waited for with a 10 s timeout (it failed
/// after 2 s, twice the ping interval, before), and a 1 s timeout fails
/// with `TimedOut` after about 1 s.
async fn connect_timeout_bounds_connect_plus_handshake<T: TestRt>(ctx: Ctx<T>) {
    let addr = ctx.server().addr();
    // Headroom from measured full connects (TCP plus handshake, several
    // round trips) on this machine, generous for a busy one.
    let mut slowest = Duration::ZERO;
    for _ in 0..5 {
        let t0 = Instant::now();
        let l = locker::<T>(addr.clone()).await;
        slowest = slowest.max(t0.elapsed());
        l.close().await;
    }
    let headroom = Duration::from_millis(500) + slowest * 20;
    let _sleeper = put_to_sleep(&addr, 3);
    let timed = |timeout: Duration| {
        let addr = addr.clone();
        async move {
            let t0 = Instant::now();
            let result = T::connect(Options::new(addr).connect_timeout(timeout)).await;
            (result, t0.elapsed())
        }
    };
    let ((short, short_took), (long, long_took)) = futures_lite::future::zip(
        timed(Duration::from_secs(1)),
        timed(Duration::from_secs(10)),
    )
    .await;
    match short {
        Err(Error::Connect { source, .. }) => {
            assert_eq!(source.kind(), std::io::ErrorKind::TimedOut, "{source}")
        }
        other => panic!("1 s: expected a timed-out Connect error, got {other:?}"),
    }
    assert!(
        short_took >= Duration::from_millis(950) && short_took < Duration::from_secs(1) + headroom,
        "1 s timeout took {short_took:?} (headroom {headroom:?})"
    );
    let long = long.unwrap_or_else(|e| panic!("10 s: {e} after {long_took:?}"));
    assert!(long_took < Duration::from_secs(10), "{long_took:?}");
    long.try_lock("awake")
        .await
        .unwrap()
        .unlock()
        .await
        .unwrap();
    long.close().await;
}

/// A lock on one locker, a waiter spawned from another, `with_lock`, and
/// `close`.
async fn basics<T: TestRt>(ctx: Ctx<T>) {
    let addr = ctx.server().addr();
    let a = T::connect(Options::from_url(&format!("redis://{addr}/0")).unwrap())
        .await
        .unwrap();
    let b = locker::<T>(addr).await;
    let g = a.lock("s").await.unwrap();
    assert!(matches!(b.try_lock("s").await, Err(Error::NotLocked)));
    let b2 = b.clone();
    let waiter = T::spawn(async move { b2.lock("s").await.map(drop) });
    T::sleep(Duration::from_millis(50)).await;
    g.unlock().await.unwrap();
    waiter.await.unwrap();
    assert_eq!(a.with_lock("s2", async { 1 }).await.unwrap(), Ok(1));
    a.close().await;
    b.close().await;
    assert!(matches!(a.try_lock("s").await, Err(Error::Closed)));
}

// Run on glommio only.
#[cfg_attr(not(feature = "glommio"), allow(dead_code))]
async fn deleted_keys_lose_the_lock<T: TestRt>(ctx: Ctx<T>) {
    let a = locker::<T>(ctx.server().addr()).await;
    let g = a.lock("d").await.unwrap();
    ctx.admin().del(&["rueidislock:0:d", "rueidislock:1:d"]);
    let reason = T::timeout(Duration::from_secs(2), g.lost())
        .await
        .expect("holder not told");
    assert_eq!(reason, LostReason::KeysChanged);
    drop(g);
    a.close().await;
}

/// glommio leaks (never polls nor drops) tasks still pending when an
/// executor is dropped, so a locker must be closed inside its executor;
/// then every request ends, as on the other runtimes.
// Run on glommio only.
#[cfg_attr(not(feature = "glommio"), allow(dead_code))]
async fn close_inside_the_executor_ends_every_request<T: TestRt>(ctx: Ctx<T>) {
    let l = locker::<T>(ctx.server().addr()).await;
    let g = l.lock("rt").await.unwrap();
    let l2 = l.clone();
    let pending = T::spawn(async move { l2.lock("rt").await.map(drop) });
    T::sleep(Duration::from_millis(50)).await;
    l.close().await;
    assert_eq!(g.lost().await, LostReason::Closed);
    assert!(matches!(pending.await, Err(Error::Closed)));
    assert!(matches!(l.try_lock("rt2").await, Err(Error::Closed)));
    drop(g);
    assert_eq!(existing(ctx.admin(), "rt"), 0);
}

// ---- the tests -------------------------------------------------------------

const SERVER: Topology = Topology::Server(&[]);

mod on_tokio {
    use super::*;

    e2e! { TokioRt;
        try_lock_excludes_and_unlock_frees on SERVER,
        waiter_is_woken_by_release on SERVER,
        force_lock_makes_holder_lose on SERVER,
        with_lock_runs_and_stops_on_loss on SERVER,
        dropping_a_pending_lock_cancels_it on SERVER,
        close_makes_holders_lose on SERVER,
        survives_a_killed_connection on SERVER,
        frozen_server_expires_the_holder_in_time on SERVER,
        waiter_survives_a_server_restart on SERVER,
        contention_is_mutually_exclusive on SERVER,
        runtime_shutdown_ends_every_request on SERVER,
        connect_errors on Topology::Server(&["--requirepass", "sesame"]),
        instances_spread_keys_and_exclude on Topology::Instances(3),
        instances_connect_with_one_down_and_pick_it_up_later on Topology::Instances(2),
        instances_fail_fast_without_a_majority on SERVER,
        multi_node_connect_times_out_naming_the_mode on SERVER,
        wrong_mode_is_a_topology_error on SERVER,
        one_node_cluster_locks on Topology::cluster(1, 0),
        cluster_connects_masters_beyond_the_seeds on Topology::cluster(2, 0),
        connect_times_out_on_a_silent_server on Topology::Own,
        huge_durations_connect_and_lock on SERVER,
        connect_timeout_bounds_connect_plus_handshake
            on Topology::Server(&["--enable-debug-command", "yes"]),
    }
}

mod on_smol {
    use super::*;

    e2e! { SmolRt;
        basics on SERVER,
        huge_durations_connect_and_lock on SERVER,
        instances_with_one_down on Topology::Instances(2),
        cluster_connects_masters_beyond_the_seeds: cluster_connects_masters_beyond_the_seed_named
            on Topology::cluster(2, 0),
    }
}

#[cfg(feature = "glommio")]
mod on_glommio {
    use super::*;

    e2e! { GlommioRt;
        huge_durations_connect_and_lock on SERVER,
        try_lock_excludes_and_unlock_frees: try_lock_excludes_and_unlock_frees_from_url
            on SERVER,
        waiter_is_woken_by_release on SERVER,
        contention_is_mutually_exclusive on SERVER,
        force_lock_makes_holder_lose on SERVER,
        deleted_keys_lose_the_lock on SERVER,
        frozen_server_expires_the_holder_in_time on SERVER,
        close_inside_the_executor_ends_every_request on SERVER,
        cluster_connects_masters_beyond_the_seeds: cluster_connects_masters_beyond_the_seed_at_once
            on Topology::cluster(2, 0),
    }
}
