//! End-to-end checks of the public API against a real `redis-server`
//! (started on a free loopback port; skipped when it is not installed).

#![cfg(any(feature = "tokio", feature = "smol", feature = "glommio"))]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[allow(unused_imports)]
use tracklock::{Error, LostReason, NodeError, Options};

struct Redis {
    child: Child,
    port: u16,
    /// A cluster node's config file, removed on drop.
    conf: Option<std::path::PathBuf>,
}

impl Redis {
    /// Starts a server on a free port; if another process took the port
    /// first, our child exits (bind failure) and another port is tried.
    fn start(extra: &[&str]) -> Option<Redis> {
        Self::start_with(|_| (extra.iter().map(|s| s.to_string()).collect(), None))
    }

    /// Like [`Redis::start`], with arguments made for the chosen port.
    #[allow(dead_code)]
    fn start_with(
        extra: impl Fn(u16) -> (Vec<String>, Option<std::path::PathBuf>),
    ) -> Option<Redis> {
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .ok()?
                .local_addr()
                .ok()?
                .port();
            let (args, conf) = extra(port);
            let mut r = Self::start_on(port, &args)?;
            r.conf = conf;
            std::thread::sleep(Duration::from_millis(50));
            if r.child.try_wait().ok().flatten().is_none() {
                return Some(r);
            }
        }
        panic!("could not start redis-server on a free port");
    }

    /// A cluster-enabled server (no slots, knows no other node yet).
    #[allow(dead_code)]
    fn start_cluster_node() -> Option<Redis> {
        Self::start_with(|port| {
            let conf = std::env::temp_dir().join(format!(
                "tracklock-e2e-{}-{port}-nodes.conf",
                std::process::id()
            ));
            let _ = std::fs::remove_file(&conf);
            let args = [
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                &conf.to_string_lossy(),
                "--cluster-port",
                &free_port().to_string(),
            ]
            .map(String::from)
            .to_vec();
            (args, Some(conf))
        })
    }

    fn start_on(port: u16, extra: &[String]) -> Option<Redis> {
        let mut cmd = Command::new("redis-server");
        cmd.args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        let child = match cmd.spawn() {
            Ok(c) => c,
            Err(_) => {
                eprintln!("redis-server not found: skipping");
                return None;
            }
        };
        let r = Redis {
            child,
            port,
            conf: None,
        };
        let t0 = Instant::now();
        while std::net::TcpStream::connect(r.addr()).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        Some(r)
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    #[allow(dead_code)]
    fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Redis {
    #[allow(dead_code)]
    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "kill {sig}");
    }

    /// Stops the server and starts a new one on the same port.
    #[allow(dead_code)]
    fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let port = self.port.to_string();
        self.child = Command::new("redis-server")
            .args([
                "--port",
                &port,
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let t0 = Instant::now();
        while std::net::TcpStream::connect(self.addr()).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "redis-server did not restart"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(conf) = &self.conf {
            let _ = std::fs::remove_file(conf);
        }
    }
}

/// A Redis Cluster of `n` masters (no replicas), the slots split evenly in
/// node order, once every node reports `cluster_state:ok`.
#[allow(dead_code)]
fn cluster(n: usize) -> Option<Vec<Redis>> {
    let nodes = (0..n)
        .map(|_| Redis::start_cluster_node())
        .collect::<Option<Vec<_>>>()?;
    for (i, r) in nodes.iter().enumerate() {
        let (from, to) = (16384 * i / n, 16384 * (i + 1) / n - 1);
        let ok = r.cli(&[
            "cluster",
            "addslotsrange",
            &from.to_string(),
            &to.to_string(),
        ]);
        assert_eq!(ok, "OK", "addslotsrange");
    }
    for r in &nodes[1..] {
        let bus = r.cli(&["config", "get", "cluster-port"]);
        let bus = bus.lines().nth(1).expect("cluster-port").to_owned();
        let ok = nodes[0].cli(&["cluster", "meet", "127.0.0.1", &r.port.to_string(), &bus]);
        assert_eq!(ok, "OK", "cluster meet");
    }
    let t0 = Instant::now();
    while !nodes
        .iter()
        .all(|r| r.cli(&["cluster", "info"]).contains("cluster_state:ok"))
    {
        assert!(t0.elapsed() < Duration::from_secs(10), "cluster not ok");
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(nodes)
}

/// Waits until every server has a client connection named `name`.
#[allow(dead_code)]
fn wait_named(servers: &[&Redis], name: &str) {
    let t0 = Instant::now();
    let pattern = format!(" name={name} ");
    while !servers
        .iter()
        .all(|r| r.cli(&["client", "list"]).contains(&pattern))
    {
        assert!(t0.elapsed() < Duration::from_secs(5), "no client {name}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The instances holding lock `name`'s key `i` (default prefix).
#[allow(dead_code)]
fn holders(servers: &[&Redis], name: &str, i: usize) -> Vec<usize> {
    let key = format!("rueidislock:{i}:{name}");
    (0..servers.len())
        .filter(|&s| servers[s].cli(&["exists", &key]) == "1")
        .collect()
}

#[allow(dead_code)]
fn victim_id(r: &Redis) -> Option<String> {
    let list = r.cli(&["client", "list"]);
    let line = list.lines().find(|l| l.contains(" name=victim "))?;
    let id = line.split(' ').find_map(|f| f.strip_prefix("id="))?;
    Some(id.to_owned())
}

/// How late a wake-up may be on this machine right now: four times the
/// slowest of five `PING` round trips to `r` (load comes in bursts). A
/// bound such as "told within the lease" allows it on top, for the timer's
/// and the test task's wake-ups on a busy machine.
#[allow(dead_code)]
fn wake_slack(r: &Redis) -> Duration {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(r.addr()).expect("connect for PING");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.set_nodelay(true).unwrap();
    let mut max = Duration::ZERO;
    for _ in 0..5 {
        let t0 = Instant::now();
        s.write_all(b"PING\r\n").unwrap();
        let mut reply = [0u8; 7];
        s.read_exact(&mut reply).expect("PONG");
        assert_eq!(&reply, b"+PONG\r\n");
        max = max.max(t0.elapsed());
    }
    max * 4
}

/// How soon a waiter must get a released lock (default options): 500 ms on
/// a quiet machine, three wake-up slacks when that is longer (the release,
/// the invalidation and the waiter's `SET`), capped at 2 s: the waiter's
/// fallback is the holder's remaining TTL, at least half the default 5 s
/// validity after an extension, so only the invalidation can meet the cap.
#[allow(dead_code)]
fn handoff_bound(r: &Redis) -> Duration {
    Duration::from_millis(500)
        .max(wake_slack(r) * 3)
        .min(Duration::from_secs(2))
}

#[allow(dead_code)]
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Options with every duration as large as it may be: connect timeout and
/// ping interval `Duration::MAX` (they saturate), validity `2^62` ms (the
/// largest Redis TTL accepted, far beyond the engine clock's range).
#[allow(dead_code)]
fn huge_options(addr: String) -> Options {
    Options::new(addr)
        .connect_timeout(Duration::MAX)
        .ping_interval(Duration::MAX)
        .validity(Duration::from_millis(i64::MAX as u64 / 2))
}

/// Sends `DEBUG SLEEP secs` on a connection of its own and returns once the
/// server sleeps (a `PING` on another connection stays unanswered for
/// 100 ms); the returned stream must outlive the sleep's use.
#[allow(dead_code)]
fn put_to_sleep(r: &Redis, secs: u32) -> std::net::TcpStream {
    use std::io::{Read, Write};
    let mut sleeper = std::net::TcpStream::connect(r.addr()).unwrap();
    sleeper
        .write_all(format!("DEBUG SLEEP {secs}\r\n").as_bytes())
        .unwrap();
    let t0 = Instant::now();
    loop {
        let mut probe = std::net::TcpStream::connect(r.addr()).unwrap();
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

#[cfg(feature = "tokio")]
mod on_tokio {
    use super::*;
    use tracklock::tokio::Locker;

    async fn locker(r: &Redis) -> Locker {
        Locker::connect(Options::new(r.addr())).await.unwrap()
    }

    #[tokio::test]
    async fn try_lock_excludes_and_unlock_frees() {
        let Some(r) = Redis::start(&[]) else { return };
        let a = locker(&r).await;
        let b = locker(&r).await;
        let g = a.try_lock("x").await.unwrap();
        assert!(g.is_held());
        assert_eq!(g.name(), "x");
        assert!(matches!(b.try_lock("x").await, Err(Error::NotLocked)));
        // Same locker: refused too.
        assert!(matches!(a.try_lock("x").await, Err(Error::NotLocked)));
        g.unlock().await.unwrap();
        assert_eq!(
            r.cli(&[
                "exists",
                "rueidislock:0:x",
                "rueidislock:1:x",
                "rueidislock:2:x"
            ]),
            "0"
        );
        let g = b.try_lock("x").await.unwrap();
        drop(g);
        let t0 = Instant::now();
        while b.active_locks() != 0 || a.active_locks() != 0 {
            assert!(
                t0.elapsed() < Duration::from_secs(2),
                "locks not cleaned up"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(matches!(a.try_lock("").await, Err(Error::InvalidName)));
        a.close().await;
        b.close().await;
        assert!(a.is_closed());
        assert!(matches!(a.lock("y").await, Err(Error::Closed)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn waiter_is_woken_by_release() {
        let Some(r) = Redis::start(&[]) else { return };
        let a = locker(&r).await;
        let b = locker(&r).await;
        let g = a.lock("w").await.unwrap();
        let waiter = tokio::spawn(async move {
            let g = b.lock("w").await.unwrap();
            let at = Instant::now();
            g.unlock().await.unwrap();
            b.close().await;
            at
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        let bound = handoff_bound(&r);
        let released = Instant::now();
        g.unlock().await.unwrap();
        let acquired = waiter.await.unwrap();
        let lag = acquired.saturating_duration_since(released);
        assert!(lag < bound, "waiter took {lag:?} (bound {bound:?})");
        a.close().await;
    }

    #[tokio::test]
    async fn force_lock_makes_holder_lose() {
        let Some(r) = Redis::start(&[]) else { return };
        let a = locker(&r).await;
        let b = locker(&r).await;
        let g = a.lock("f").await.unwrap();
        let g2 = b.force_lock("f").await.unwrap();
        let reason = tokio::time::timeout(Duration::from_secs(2), g.lost())
            .await
            .expect("holder not told");
        assert_eq!(reason, LostReason::KeysChanged);
        assert!(!g.is_held());
        // lost() again resolves at once.
        assert_eq!(g.lost().await, LostReason::KeysChanged);
        assert!(g2.is_held());
        g.unlock().await.unwrap();
        g2.unlock().await.unwrap();
        a.close().await;
        b.close().await;
    }

    #[tokio::test]
    async fn with_lock_runs_and_stops_on_loss() {
        let Some(r) = Redis::start(&[]) else { return };
        let a = locker(&r).await;
        assert_eq!(a.with_lock("wl", async { 7 }).await.unwrap(), Ok(7));
        let b = locker(&r).await;
        let b2 = b.clone();
        let out = a
            .with_lock("wl", async move {
                let _g = b2.force_lock("wl").await.unwrap();
                std::future::pending::<()>().await;
            })
            .await
            .unwrap();
        assert_eq!(out, Err(LostReason::KeysChanged));
        a.close().await;
        b.close().await;
    }

    #[tokio::test]
    async fn dropping_a_pending_lock_cancels_it() {
        let Some(r) = Redis::start(&[]) else { return };
        let a = locker(&r).await;
        let b = locker(&r).await;
        let g = a.lock("c").await.unwrap();
        let r1 = tokio::time::timeout(Duration::from_millis(100), b.lock("c")).await;
        assert!(r1.is_err(), "should still be waiting");
        let t0 = Instant::now();
        while b.active_locks() != 0 {
            assert!(
                t0.elapsed() < Duration::from_secs(2),
                "cancelled request leaked"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        g.unlock().await.unwrap();
        a.close().await;
        b.close().await;
    }

    #[tokio::test]
    async fn close_makes_holders_lose() {
        let Some(r) = Redis::start(&[]) else { return };
        let a = locker(&r).await;
        let b = locker(&r).await;
        let g = a.lock("cl").await.unwrap();
        let a2 = a.clone();
        let pending = tokio::spawn(async move { a2.lock("cl").await.map(|_| ()) });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let t0 = Instant::now();
        a.close().await;
        assert!(t0.elapsed() < Duration::from_millis(1500));
        assert_eq!(g.lost().await, LostReason::Closed);
        assert!(matches!(pending.await.unwrap(), Err(Error::Closed)));
        // The keys were released: another locker gets it at once.
        let g2 = b.try_lock("cl").await.unwrap();
        drop(g);
        g2.unlock().await.unwrap();
        b.close().await;
    }

    #[tokio::test]
    async fn survives_a_killed_connection() {
        let Some(r) = Redis::start(&[]) else { return };
        let a = Locker::connect(Options::new(r.addr()).client_name("victim"))
            .await
            .unwrap();
        let g = a.lock("k").await.unwrap();
        let id = victim_id(&r).expect("connection named victim");
        assert_eq!(r.cli(&["client", "kill", "id", &id]), "1");
        // Reconnected (a new connection id), and the held keys were
        // re-verified on it.
        let t0 = Instant::now();
        while victim_id(&r).is_none_or(|new_id| new_id == id) {
            assert!(t0.elapsed() < Duration::from_secs(5), "not reconnected");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let lost = tokio::time::timeout(Duration::from_millis(300), g.lost()).await;
        assert!(lost.is_err(), "lost after the reconnection: {lost:?}");
        assert!(g.is_held());
        g.unlock().await.unwrap();
        let g = tokio::time::timeout(Duration::from_secs(2), a.try_lock("k2"))
            .await
            .unwrap()
            .unwrap();
        g.unlock().await.unwrap();
        a.close().await;
    }

    #[tokio::test]
    async fn frozen_server_expires_the_holder_in_time() {
        let Some(r) = Redis::start(&[]) else { return };
        let validity = Duration::from_millis(600);
        let a = Locker::connect(
            Options::new(r.addr())
                .validity(validity)
                .ping_interval(Duration::from_millis(100))
                .connect_timeout(Duration::from_millis(300)),
        )
        .await
        .unwrap();
        let g = a.lock("frozen").await.unwrap();
        r.signal("-STOP");
        // No extension succeeds after this (the signal was sent).
        let frozen_at = Instant::now();
        let reason = tokio::time::timeout(Duration::from_secs(3), g.lost()).await;
        let after = frozen_at.elapsed();
        r.signal("-CONT");
        assert_eq!(reason.expect("holder never told"), LostReason::Expired);
        // Never later than the lease: at most one validity after the last
        // successful extension, which was sent before the freeze; plus the
        // wake-ups that tell the test, on a busy machine.
        let slack = wake_slack(&r);
        assert!(
            after <= validity + slack,
            "told after {after:?} (validity {validity:?}, wake-up slack {slack:?})"
        );
        assert!(!g.is_held());
        drop(g);
        // The locker recovers once the server answers again.
        let g = tokio::time::timeout(Duration::from_secs(5), a.lock("frozen"))
            .await
            .expect("no recovery")
            .unwrap();
        g.unlock().await.unwrap();
        a.close().await;
    }

    #[tokio::test]
    async fn waiter_survives_a_server_restart() {
        let Some(mut r) = Redis::start(&[]) else {
            return;
        };
        let opts = || Options::new(r.addr()).validity(Duration::from_millis(800));
        let a = Locker::connect(opts()).await.unwrap();
        let b = Locker::connect(opts()).await.unwrap();
        let g = a.lock("rs").await.unwrap();
        let b2 = b.clone();
        let waiter = tokio::spawn(async move { b2.lock("rs").await.map(drop) });
        tokio::time::sleep(Duration::from_millis(50)).await;
        r.restart();
        // The restart wiped the keys: the holder learns it, the waiter gets it.
        let reason = tokio::time::timeout(Duration::from_secs(3), g.lost())
            .await
            .expect("holder never told");
        assert!(
            matches!(reason, LostReason::KeysChanged | LostReason::Expired),
            "{reason:?}"
        );
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("waiter stuck")
            .unwrap()
            .unwrap();
        drop(g);
        a.close().await;
        b.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn contention_is_mutually_exclusive() {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        use std::sync::Arc;
        let Some(r) = Redis::start(&[]) else { return };
        let lockers = [locker(&r).await, locker(&r).await];
        let inside = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for t in 0..8 {
            let l = lockers[t % 2].clone();
            let inside = inside.clone();
            let done = done.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..15 {
                    let g = l.lock("hot").await.unwrap();
                    assert!(!inside.swap(true, Ordering::SeqCst), "two holders at once");
                    tokio::task::yield_now().await;
                    inside.store(false, Ordering::SeqCst);
                    g.unlock().await.unwrap();
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        for t in tasks {
            tokio::time::timeout(Duration::from_secs(20), t)
                .await
                .expect("contention stalled")
                .unwrap();
        }
        assert_eq!(done.load(Ordering::Relaxed), 8 * 15);
        for l in &lockers {
            assert_eq!(l.active_locks(), 0);
            l.close().await;
        }
    }

    #[test]
    fn runtime_shutdown_ends_every_request() {
        let Some(r) = Redis::start(&[]) else { return };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (locker, guard) = rt.block_on(async {
            let l = locker(&r).await;
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
    }

    #[tokio::test]
    async fn connect_errors() {
        let port = free_port();
        match Locker::connect(Options::new(format!("127.0.0.1:{port}"))).await {
            Err(Error::Connect { addr, .. }) => assert_eq!(addr, format!("127.0.0.1:{port}")),
            other => panic!("expected Connect, got {other:?}"),
        }
        match Locker::connect(Options::new("127.0.0.1:1").key_majority(0)).await {
            Err(Error::Config(tracklock::ConfigError::MajorityZero)) => {}
            other => panic!("expected Config, got {other:?}"),
        }
        let Some(r) = Redis::start(&["--requirepass", "sesame"]) else {
            return;
        };
        match Locker::connect(Options::new(r.addr()).password("wrong")).await {
            Err(Error::Node {
                source: NodeError::Handshake(message),
                ..
            }) => assert!(message.as_str().contains("WRONGPASS"), "{message}"),
            other => panic!("expected Node(Handshake), got {other:?}"),
        }
        match Locker::connect(Options::new(r.addr())).await {
            Err(Error::Node {
                source: NodeError::Handshake(message),
                ..
            }) => assert!(message.as_str().contains("NOAUTH"), "{message}"),
            other => panic!("expected Node(Handshake), got {other:?}"),
        }
        let a = Locker::connect(Options::new(r.addr()).password("sesame"))
            .await
            .unwrap();
        a.try_lock("p").await.unwrap().unlock().await.unwrap();
        a.close().await;
    }

    // Multi-threaded: `wait_named` blocks its thread.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn instances_spread_keys_and_exclude() {
        let (Some(r0), Some(r1), Some(r2)) =
            (Redis::start(&[]), Redis::start(&[]), Redis::start(&[]))
        else {
            return;
        };
        let all = [&r0, &r1, &r2];
        let opts = || Options::instances(all.map(|r| r.addr())).client_name("inst");
        let a = Locker::connect(opts()).await.unwrap();
        // `connect` returns once two instances are ready; let the third
        // finish its handshake so every key is written.
        wait_named(&all, "inst");
        tokio::time::sleep(Duration::from_millis(50)).await;
        let g = a.try_lock("x").await.unwrap();
        for i in 0..3 {
            assert_eq!(holders(&all, "x", i), [i], "key {i}");
        }
        let b = Locker::connect(opts()).await.unwrap();
        assert!(matches!(b.try_lock("x").await, Err(Error::NotLocked)));
        g.unlock().await.unwrap();
        for i in 0..3 {
            assert!(holders(&all, "x", i).is_empty(), "key {i} left");
        }
        b.try_lock("x").await.unwrap().unlock().await.unwrap();
        a.close().await;
        b.close().await;
    }

    // Multi-threaded: `wait_named` blocks its thread.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn instances_connect_with_one_down_and_pick_it_up_later() {
        let (Some(r0), Some(r1)) = (Redis::start(&[]), Redis::start(&[])) else {
            return;
        };
        let down = free_port();
        let addrs = [r0.addr(), r1.addr(), format!("127.0.0.1:{down}")];
        let opts = |name: &str| {
            Options::instances(addrs.clone())
                .client_name(name)
                .connect_timeout(Duration::from_secs(2))
        };
        let t0 = Instant::now();
        let a = Locker::connect(opts("inst1a")).await.unwrap();
        assert!(t0.elapsed() < Duration::from_secs(1));
        let g = a.lock("one-down").await.unwrap();
        assert!(g.is_held());
        assert_eq!(holders(&[&r0, &r1], "one-down", 0), [0]);
        assert_eq!(holders(&[&r0, &r1], "one-down", 1), [1]);
        let b = Locker::connect(opts("inst1b")).await.unwrap();
        assert!(matches!(
            b.try_lock("one-down").await,
            Err(Error::NotLocked)
        ));
        g.unlock().await.unwrap();
        // The third instance comes up: the drivers that failed their first
        // connection were retrying, and now use it.
        let r2 = Redis::start_on(down, &[]).expect("redis-server");
        wait_named(&[&r2], "inst1a");
        tokio::time::sleep(Duration::from_millis(50)).await;
        let g = a.try_lock("later").await.unwrap();
        assert_eq!(holders(&[&r0, &r1, &r2], "later", 2), [2]);
        g.unlock().await.unwrap();
        a.close().await;
        b.close().await;
    }

    #[tokio::test]
    async fn instances_fail_fast_without_a_majority() {
        let Some(r) = Redis::start(&[]) else { return };
        let (d0, d2) = (free_port(), free_port());
        let addrs = [
            format!("127.0.0.1:{d0}"),
            r.addr(),
            format!("127.0.0.1:{d2}"),
        ];
        let t0 = Instant::now();
        match Locker::connect(Options::instances(addrs)).await {
            Err(Error::Connect { addr, .. }) => assert_eq!(addr, format!("127.0.0.1:{d0}")),
            other => panic!("expected Connect, got {other:?}"),
        }
        assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    }

    #[tokio::test]
    async fn multi_node_connect_times_out_naming_the_mode() {
        // A cluster node without slots: ready, but no slot has an owner.
        let (Some(node), Some(r)) = (Redis::start_cluster_node(), Redis::start(&[])) else {
            return;
        };
        let opts = Options::cluster([node.addr()]).connect_timeout(Duration::from_millis(300));
        match Locker::connect(opts).await {
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
        // connect timeout and their handshake timeouts fall together, so
        // either reports it.
        let l1 = TcpListener::bind("127.0.0.1:0").unwrap();
        let l2 = TcpListener::bind("127.0.0.1:0").unwrap();
        let addrs = [
            r.addr(),
            l1.local_addr().unwrap().to_string(),
            l2.local_addr().unwrap().to_string(),
        ];
        let opts = Options::instances(addrs).connect_timeout(Duration::from_millis(300));
        let t0 = Instant::now();
        match Locker::connect(opts).await {
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

    #[tokio::test]
    async fn wrong_mode_is_a_topology_error() {
        let (Some(node), Some(plain)) = (Redis::start_cluster_node(), Redis::start(&[])) else {
            return;
        };
        match Locker::connect(Options::new(node.addr())).await {
            Err(Error::Node {
                addr,
                source: NodeError::Topology(message),
            }) => {
                assert_eq!(addr, node.addr());
                assert!(message.as_str().contains("cluster"), "{message}");
            }
            other => panic!("expected Node(Topology), got {other:?}"),
        }
        match Locker::connect(Options::cluster([plain.addr()])).await {
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
        let dead = format!("127.0.0.1:{}", free_port());
        match Locker::connect(Options::cluster([plain.addr(), dead])).await {
            Err(Error::Node {
                addr,
                source: NodeError::Topology(_),
            }) => assert_eq!(addr, plain.addr()),
            other => panic!("expected Node(Topology), got {other:?}"),
        }
    }

    #[tokio::test]
    async fn one_node_cluster_locks() {
        let Some(nodes) = cluster(1) else { return };
        let r = &nodes[0];
        let a =
            Locker::connect(Options::from_url(&format!("redis+cluster://{}", r.addr())).unwrap())
                .await
                .unwrap();
        let b = Locker::connect(Options::cluster([r.addr()])).await.unwrap();
        let g = a.lock("c1").await.unwrap();
        for i in 0..3 {
            assert_eq!(holders(&[r], "c1", i), [0], "key {i}");
        }
        assert!(matches!(b.try_lock("c1").await, Err(Error::NotLocked)));
        g.unlock().await.unwrap();
        b.try_lock("c1").await.unwrap().unlock().await.unwrap();
        a.close().await;
        b.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cluster_connects_masters_beyond_the_seeds() {
        let Some(nodes) = cluster(2) else { return };
        let all: Vec<&Redis> = nodes.iter().collect();
        // Seed: the first master only; the second is discovered.
        let opts = || Options::cluster([nodes[0].addr()]).client_name("clu");
        let a = Locker::connect(opts()).await.unwrap();
        wait_named(&all, "clu");
        let b = Locker::connect(opts()).await.unwrap();
        let names = ["n0", "n1", "n2", "n3", "n4", "n5"];
        let mut guards = Vec::new();
        for n in names {
            guards.push(a.try_lock(n).await.unwrap());
            assert!(matches!(b.try_lock(n).await, Err(Error::NotLocked)), "{n}");
        }
        // Keys landed on both masters (each key on exactly one).
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
        for r in &nodes {
            assert_eq!(r.cli(&["dbsize"]), "0");
        }
        a.close().await;
        b.close().await;
    }

    #[tokio::test]
    async fn connect_times_out_on_a_silent_server() {
        // Accepts TCP but never answers HELLO.
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let t0 = Instant::now();
        match Locker::connect(Options::new(addr).connect_timeout(Duration::from_millis(200))).await
        {
            Err(Error::Connect { source, .. }) => {
                assert_eq!(source.kind(), std::io::ErrorKind::TimedOut)
            }
            other => panic!("expected Connect, got {other:?}"),
        }
        assert!(t0.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn huge_durations_connect_and_lock() {
        let Some(r) = Redis::start(&[]) else { return };
        let l = Locker::connect(huge_options(r.addr())).await.unwrap();
        let g = l.try_lock("huge").await.unwrap();
        let ttl: i64 = r.cli(&["pttl", "rueidislock:0:huge"]).parse().unwrap();
        assert!(ttl > i64::MAX / 4, "pttl {ttl}");
        g.unlock().await.unwrap();
        l.close().await;
    }

    /// `connect_timeout` bounds TCP connect plus handshake: a server busy
    /// for 3 s during the handshake is waited for with a 10 s timeout (it
    /// failed after 2 s, twice the ping interval, before), and a 1 s
    /// timeout fails with `TimedOut` after about 1 s.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn connect_timeout_bounds_connect_plus_handshake() {
        let Some(r) = Redis::start(&["--enable-debug-command", "yes"]) else {
            return;
        };
        // Headroom from measured full connects (TCP plus handshake, several
        // round trips) on this machine, generous for a busy one.
        let mut slowest = Duration::ZERO;
        for _ in 0..5 {
            let t0 = Instant::now();
            let l = Locker::connect(Options::new(r.addr())).await.unwrap();
            slowest = slowest.max(t0.elapsed());
            l.close().await;
        }
        let headroom = Duration::from_millis(500) + slowest * 20;
        let _sleeper = put_to_sleep(&r, 3);
        let timed = |timeout: Duration| {
            let addr = r.addr();
            async move {
                let t0 = Instant::now();
                let result = Locker::connect(Options::new(addr).connect_timeout(timeout)).await;
                (result, t0.elapsed())
            }
        };
        let ((short, short_took), (long, long_took)) = tokio::join!(
            timed(Duration::from_secs(1)),
            timed(Duration::from_secs(10))
        );
        match short {
            Err(Error::Connect { source, .. }) => {
                assert_eq!(source.kind(), std::io::ErrorKind::TimedOut, "{source}")
            }
            other => panic!("1 s: expected a timed-out Connect error, got {other:?}"),
        }
        assert!(
            short_took >= Duration::from_millis(950)
                && short_took < Duration::from_secs(1) + headroom,
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
}

#[cfg(feature = "smol")]
mod on_smol {
    use super::*;
    use tracklock::smol::Locker;

    #[test]
    fn basics() {
        let Some(r) = Redis::start(&[]) else { return };
        smol::block_on(async {
            let a = Locker::connect(Options::from_url(&format!("redis://{}/0", r.addr())).unwrap())
                .await
                .unwrap();
            let b = Locker::connect(Options::new(r.addr())).await.unwrap();
            let g = a.lock("s").await.unwrap();
            assert!(matches!(b.try_lock("s").await, Err(Error::NotLocked)));
            let b2 = b.clone();
            let waiter = smol::spawn(async move { b2.lock("s").await.map(drop) });
            async_io::Timer::after(Duration::from_millis(50)).await;
            g.unlock().await.unwrap();
            waiter.await.unwrap();
            assert_eq!(a.with_lock("s2", async { 1 }).await.unwrap(), Ok(1));
            a.close().await;
            b.close().await;
            assert!(matches!(a.try_lock("s").await, Err(Error::Closed)));
        });
    }

    #[test]
    fn huge_durations_connect_and_lock() {
        let Some(r) = Redis::start(&[]) else { return };
        smol::block_on(async {
            let l = Locker::connect(huge_options(r.addr())).await.unwrap();
            l.try_lock("huge").await.unwrap().unlock().await.unwrap();
            l.close().await;
        });
    }

    #[test]
    fn instances_with_one_down() {
        let (Some(r0), Some(r1)) = (Redis::start(&[]), Redis::start(&[])) else {
            return;
        };
        let addrs = [r0.addr(), r1.addr(), format!("127.0.0.1:{}", free_port())];
        smol::block_on(async {
            let a = Locker::connect(Options::instances(addrs.clone()))
                .await
                .unwrap();
            let b = Locker::connect(
                Options::from_url(&format!("redis+instances://{}", addrs.join(","))).unwrap(),
            )
            .await
            .unwrap();
            let g = a.lock("i").await.unwrap();
            assert_eq!(holders(&[&r0, &r1], "i", 0), [0]);
            assert_eq!(holders(&[&r0, &r1], "i", 1), [1]);
            assert!(matches!(b.try_lock("i").await, Err(Error::NotLocked)));
            g.unlock().await.unwrap();
            b.try_lock("i").await.unwrap().unlock().await.unwrap();
            a.close().await;
            b.close().await;
        });
    }

    #[test]
    fn cluster_connects_masters_beyond_the_seeds() {
        let Some(nodes) = cluster(2) else { return };
        smol::block_on(async {
            let a = Locker::connect(Options::cluster([nodes[1].addr()]).client_name("clus"))
                .await
                .unwrap();
            wait_named(&[&nodes[0], &nodes[1]], "clus");
            let mut guards = Vec::new();
            for n in ["n0", "n1", "n2", "n3"] {
                guards.push(a.try_lock(n).await.unwrap());
            }
            assert_ne!(nodes[0].cli(&["dbsize"]), "0");
            assert_ne!(nodes[1].cli(&["dbsize"]), "0");
            for g in guards {
                g.unlock().await.unwrap();
            }
            a.close().await;
        });
    }
}

#[cfg(feature = "glommio")]
mod on_glommio {
    use super::*;
    use futures_lite::future;
    use glommio::timer::Timer;
    use std::cell::Cell;
    use std::rc::Rc;
    use tracklock::glommio::Locker;

    /// Runs `fut` on a fresh glommio executor on this thread. A small
    /// `io_memory` and ring keep it within a low `ulimit -l` (glommio's
    /// default is 10 MiB of locked memory per executor).
    fn run<T>(fut: impl std::future::Future<Output = T>) -> T {
        glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .io_memory(256 << 10)
            .ring_depth(32)
            .make()
            .expect("glommio executor (needs io_uring)")
            .run(fut)
    }

    async fn sleep(d: Duration) {
        Timer::new(d).await;
    }

    async fn timeout<T>(d: Duration, fut: impl std::future::Future<Output = T>) -> Option<T> {
        future::or(async { Some(fut.await) }, async {
            sleep(d).await;
            None
        })
        .await
    }

    async fn locker(r: &Redis) -> Locker {
        Locker::connect(Options::new(r.addr())).await.unwrap()
    }

    /// glommio's timers add their duration to `Instant::now()` unchecked:
    /// a `Duration::MAX` connect timeout must not reach them as such.
    #[test]
    fn huge_durations_connect_and_lock() {
        let Some(r) = Redis::start(&[]) else { return };
        run(async {
            let l = Locker::connect(huge_options(r.addr())).await.unwrap();
            l.try_lock("huge").await.unwrap().unlock().await.unwrap();
            l.close().await;
        });
    }

    #[test]
    fn try_lock_excludes_and_unlock_frees() {
        let Some(r) = Redis::start(&[]) else { return };
        run(async {
            let a = locker(&r).await;
            let b = Locker::connect(Options::from_url(&format!("redis://{}/0", r.addr())).unwrap())
                .await
                .unwrap();
            let g = a.try_lock("x").await.unwrap();
            assert!(g.is_held());
            assert!(matches!(b.try_lock("x").await, Err(Error::NotLocked)));
            assert!(matches!(a.try_lock("x").await, Err(Error::NotLocked)));
            g.unlock().await.unwrap();
            assert_eq!(
                r.cli(&[
                    "exists",
                    "rueidislock:0:x",
                    "rueidislock:1:x",
                    "rueidislock:2:x"
                ]),
                "0"
            );
            drop(b.try_lock("x").await.unwrap());
            let t0 = Instant::now();
            while a.active_locks() != 0 || b.active_locks() != 0 {
                assert!(
                    t0.elapsed() < Duration::from_secs(2),
                    "locks not cleaned up"
                );
                sleep(Duration::from_millis(5)).await;
            }
            assert_eq!(a.with_lock("wl", async { 7 }).await.unwrap(), Ok(7));
            a.close().await;
            b.close().await;
            assert!(matches!(a.lock("y").await, Err(Error::Closed)));
        });
    }

    #[test]
    fn waiter_is_woken_by_release() {
        let Some(r) = Redis::start(&[]) else { return };
        run(async {
            let a = locker(&r).await;
            let b = locker(&r).await;
            let g = a.lock("w").await.unwrap();
            let waiter = glommio::spawn_local(async move {
                let g = b.lock("w").await.unwrap();
                let at = Instant::now();
                g.unlock().await.unwrap();
                b.close().await;
                at
            });
            sleep(Duration::from_millis(100)).await;
            let bound = handoff_bound(&r);
            let released = Instant::now();
            g.unlock().await.unwrap();
            let acquired = timeout(Duration::from_secs(5), waiter)
                .await
                .expect("waiter stuck");
            let lag = acquired.saturating_duration_since(released);
            assert!(lag < bound, "waiter took {lag:?} (bound {bound:?})");
            a.close().await;
        });
    }

    #[test]
    fn contention_is_mutually_exclusive() {
        let Some(r) = Redis::start(&[]) else { return };
        run(async {
            let lockers = [locker(&r).await, locker(&r).await];
            // One thread: a `Cell` is enough to see two holders at once.
            let inside = Rc::new(Cell::new(false));
            let done = Rc::new(Cell::new(0usize));
            let mut tasks = Vec::new();
            for t in 0..8 {
                let l = lockers[t % 2].clone();
                let (inside, done) = (inside.clone(), done.clone());
                tasks.push(glommio::spawn_local(async move {
                    for _ in 0..15 {
                        let g = l.lock("hot").await.unwrap();
                        assert!(!inside.replace(true), "two holders at once");
                        future::yield_now().await;
                        inside.set(false);
                        g.unlock().await.unwrap();
                        done.set(done.get() + 1);
                    }
                }));
            }
            for t in tasks {
                timeout(Duration::from_secs(20), t)
                    .await
                    .expect("contention stalled");
            }
            assert_eq!(done.get(), 8 * 15);
            for l in &lockers {
                assert_eq!(l.active_locks(), 0);
                l.close().await;
            }
        });
    }

    #[test]
    fn force_lock_makes_holder_lose() {
        let Some(r) = Redis::start(&[]) else { return };
        run(async {
            let a = locker(&r).await;
            let b = locker(&r).await;
            let g = a.lock("f").await.unwrap();
            let g2 = b.force_lock("f").await.unwrap();
            let reason = timeout(Duration::from_secs(2), g.lost())
                .await
                .expect("holder not told");
            assert_eq!(reason, LostReason::KeysChanged);
            assert!(!g.is_held());
            assert!(g2.is_held());
            // with_lock stops its future when the lock is lost.
            let b2 = b.clone();
            let out = a
                .with_lock("wl", async move {
                    let _g = b2.force_lock("wl").await.unwrap();
                    std::future::pending::<()>().await;
                })
                .await
                .unwrap();
            assert_eq!(out, Err(LostReason::KeysChanged));
            g.unlock().await.unwrap();
            g2.unlock().await.unwrap();
            a.close().await;
            b.close().await;
        });
    }

    #[test]
    fn deleted_keys_lose_the_lock() {
        let Some(r) = Redis::start(&[]) else { return };
        run(async {
            let a = locker(&r).await;
            let g = a.lock("d").await.unwrap();
            r.cli(&["del", "rueidislock:0:d", "rueidislock:1:d"]);
            let reason = timeout(Duration::from_secs(2), g.lost())
                .await
                .expect("holder not told");
            assert_eq!(reason, LostReason::KeysChanged);
            drop(g);
            a.close().await;
        });
    }

    #[test]
    fn frozen_server_expires_the_holder_in_time() {
        let Some(r) = Redis::start(&[]) else { return };
        let validity = Duration::from_millis(600);
        run(async {
            let a = Locker::connect(
                Options::new(r.addr())
                    .validity(validity)
                    .ping_interval(Duration::from_millis(100))
                    .connect_timeout(Duration::from_millis(300)),
            )
            .await
            .unwrap();
            let g = a.lock("frozen").await.unwrap();
            r.signal("-STOP");
            // No extension succeeds after this (the signal was sent).
            let frozen_at = Instant::now();
            let reason = timeout(Duration::from_secs(3), g.lost()).await;
            let after = frozen_at.elapsed();
            r.signal("-CONT");
            assert_eq!(reason.expect("holder never told"), LostReason::Expired);
            // Within the lease, plus the wake-ups on a busy machine.
            let slack = wake_slack(&r);
            assert!(
                after <= validity + slack,
                "told after {after:?} (validity {validity:?}, wake-up slack {slack:?})"
            );
            drop(g);
            let g = timeout(Duration::from_secs(5), a.lock("frozen"))
                .await
                .expect("no recovery")
                .unwrap();
            g.unlock().await.unwrap();
            a.close().await;
        });
    }

    /// glommio leaks (never polls nor drops) tasks still pending when an
    /// executor is dropped, so a locker must be closed inside its executor;
    /// then every request ends, as on the other runtimes.
    #[test]
    fn close_inside_the_executor_ends_every_request() {
        let Some(r) = Redis::start(&[]) else { return };
        run(async {
            let l = locker(&r).await;
            let g = l.lock("rt").await.unwrap();
            let l2 = l.clone();
            let pending = glommio::spawn_local(async move { l2.lock("rt").await.map(drop) });
            sleep(Duration::from_millis(50)).await;
            l.close().await;
            assert_eq!(g.lost().await, LostReason::Closed);
            assert!(matches!(pending.await, Err(Error::Closed)));
            assert!(matches!(l.try_lock("rt2").await, Err(Error::Closed)));
            drop(g);
        });
        assert_eq!(
            r.cli(&[
                "exists",
                "rueidislock:0:rt",
                "rueidislock:1:rt",
                "rueidislock:2:rt"
            ]),
            "0"
        );
    }

    /// The driver of a discovered master is spawned from a driver task,
    /// with `glommio::spawn_local`.
    #[test]
    fn cluster_connects_masters_beyond_the_seeds() {
        let Some(nodes) = cluster(2) else { return };
        run(async {
            let a = Locker::connect(Options::cluster([nodes[0].addr()]).client_name("clug"))
                .await
                .unwrap();
            let mut guards = Vec::new();
            for n in ["n0", "n1", "n2", "n3"] {
                guards.push(a.try_lock(n).await.unwrap());
            }
            assert_ne!(nodes[0].cli(&["dbsize"]), "0");
            assert_ne!(nodes[1].cli(&["dbsize"]), "0");
            for g in guards {
                g.unlock().await.unwrap();
            }
            a.close().await;
        });
    }
}
