//! The `Runtime` trait implemented outside the crate, as a user would for an
//! executor `tracklock` does not ship: async-io timers and sockets, tasks
//! spawned on an `async-executor` of the test's own (run by two threads),
//! never on a runtime `tracklock` knows. Against a real `redis-server`
//! (skipped when it is not installed): exclusion between two lockers,
//! release, loss on deleted keys, `with_lock`, close.

use std::io;
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use embedded_io_adapters::futures_03::FromFutures;
use smol::channel::{bounded, Sender};
use smol::{Async, Executor, Timer};
use tracklock::{Error, Locker, LostReason, Options, Runtime, Task};

/// An executor of our own and the threads running it.
#[derive(Clone)]
struct MyRuntime {
    executor: Arc<Executor<'static>>,
    spawned: Arc<AtomicUsize>,
}

impl Runtime for MyRuntime {
    type Sleep = Timer;
    type Stream = FromFutures<Async<TcpStream>>;

    fn sleep_until(&self, deadline: Instant) -> Timer {
        Timer::at(deadline)
    }

    async fn connect_tcp(&self, addr: &str) -> io::Result<Self::Stream> {
        // Name resolution blocks: off the executor.
        let addr = addr.to_owned();
        let addrs: Vec<_> =
            smol::unblock(move || addr.to_socket_addrs().map(Iterator::collect)).await?;
        let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
        for a in addrs {
            match Async::<TcpStream>::connect(a).await {
                Ok(stream) => {
                    stream.get_ref().set_nodelay(true)?;
                    return Ok(FromFutures::new(stream));
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn spawn(&self, task: Task<Self>) {
        self.spawned.fetch_add(1, Ordering::Relaxed);
        self.executor.spawn(task.run()).detach();
    }
}

/// Runs the executor on two threads until dropped.
struct Threads {
    stop: Sender<()>,
    threads: Vec<JoinHandle<()>>,
}

impl Threads {
    fn start(executor: &Arc<Executor<'static>>) -> Threads {
        let (stop, stopped) = bounded::<()>(1);
        let threads = (0..2)
            .map(|_| {
                let ex = executor.clone();
                let stopped = stopped.clone();
                std::thread::spawn(move || smol::block_on(ex.run(stopped.recv())).unwrap_or(()))
            })
            .collect();
        Threads { stop, threads }
    }
}

impl Drop for Threads {
    fn drop(&mut self) {
        self.stop.close();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    fn start() -> Option<Redis> {
        let port = TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let Ok(child) = child else {
            eprintln!("redis-server not found: skipping");
            return None;
        };
        let r = Redis { child, port };
        let t0 = Instant::now();
        while TcpStream::connect(r.addr()).is_err() {
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

    fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `fut`, or a panic after 10 s (so a hang fails the test).
async fn bounded_by<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    smol::future::or(fut, async {
        Timer::after(Duration::from_secs(10)).await;
        panic!("{what}: no answer within 10 s");
    })
    .await
}

/// A redis-server, the runtime, and the threads that run its executor;
/// `None` (the test is skipped) without `redis-server`.
fn start() -> Option<(Redis, MyRuntime, Threads)> {
    let redis = Redis::start()?;
    let rt = MyRuntime {
        executor: Arc::new(Executor::new()),
        spawned: Arc::new(AtomicUsize::new(0)),
    };
    let threads = Threads::start(&rt.executor);
    Some((redis, rt, threads))
}

#[test]
fn a_runtime_implemented_outside_the_crate_locks_and_unlocks() {
    let Some((redis, rt, threads)) = start() else {
        return;
    };
    let options = || {
        Options::new(redis.addr())
            .validity(Duration::from_secs(2))
            .connect_timeout(Duration::from_secs(5))
    };
    // The test's own thread only awaits; every driver runs on `rt`.
    smol::block_on(async {
        let a = bounded_by("connect a", Locker::connect_with(rt.clone(), options()))
            .await
            .unwrap();
        let b = bounded_by("connect b", Locker::connect_with(rt.clone(), options()))
            .await
            .unwrap();
        assert_eq!(
            rt.spawned.load(Ordering::Relaxed),
            2,
            "one driver per locker"
        );

        // Exclusion, then release.
        let guard = bounded_by("lock", a.lock("custom")).await.unwrap();
        assert!(guard.is_held());
        let r = bounded_by("try_lock held", b.try_lock("custom")).await;
        assert!(matches!(r, Err(Error::NotLocked)), "{r:?}");
        assert_eq!(redis.cli(&["EXISTS", "rueidislock:0:custom"]), "1");
        bounded_by("unlock", guard.unlock()).await.unwrap();
        let guard = bounded_by("try_lock free", b.try_lock("custom"))
            .await
            .unwrap();

        // Deleted keys: the holder is told (tracking invalidations reach
        // the driver on our executor).
        redis.cli(&[
            "DEL",
            "rueidislock:0:custom",
            "rueidislock:1:custom",
            "rueidislock:2:custom",
        ]);
        let reason = bounded_by("lost", guard.lost()).await;
        assert_eq!(reason, LostReason::KeysChanged);
        drop(guard);

        // A waiter is woken by the release of the other locker.
        let held = bounded_by("lock again", a.lock("custom")).await.unwrap();
        let waiter = b.clone();
        let waiting = rt
            .executor
            .spawn(async move { waiter.with_lock("custom", async { 7 }).await });
        Timer::after(Duration::from_millis(50)).await;
        bounded_by("unlock again", held.unlock()).await.unwrap();
        let out = bounded_by("with_lock", waiting).await.unwrap();
        assert!(matches!(out, Ok(7)), "{out:?}");

        bounded_by("close a", a.close()).await;
        bounded_by("close b", b.close()).await;
        assert_eq!(a.active_locks() + b.active_locks(), 0);
        let r = a.try_lock("custom").await;
        assert!(matches!(r, Err(Error::Closed)), "{r:?}");
    });
    drop(threads);
    assert_eq!(redis.cli(&["DBSIZE"]), "0", "no key left behind");
}

/// Bound of one call in `commands_leave_without_waiting_for_a_timer`: a
/// loopback round trip is tens of µs even on a busy machine, while a
/// command that waited for a timer there waits a minute.
const CALL_BOUND: Duration = Duration::from_secs(3);

/// A runtime that gives no socket writes every command from the node's
/// task, which is woken for it, except on a deep pipeline (hundreds of
/// replies outstanding), where the next reply brings it anyway. Either way
/// a command must leave at once, never wait for a timer: pings and
/// extensions are a minute away here, so one that did would miss
/// [`CALL_BOUND`]. Lone calls (idle connection), then 300 tasks at once
/// (1,800 commands in flight: the deep case), then lone calls again.
#[test]
fn commands_leave_without_waiting_for_a_timer() {
    let Some((redis, rt, threads)) = start() else {
        return;
    };
    let options = Options::new(redis.addr())
        .validity(Duration::from_secs(180))
        .ping_interval(Duration::from_secs(60));
    smol::block_on(async {
        let locker = bounded_by("connect", Locker::connect_with(rt.clone(), options))
            .await
            .unwrap();
        let pairs = |locker: Locker<MyRuntime>, name: String, n: usize| async move {
            for i in 0..n {
                let what = format!("{name} pair {i}");
                let guard = within(&what, locker.lock(&name)).await.unwrap();
                within(&what, guard.unlock()).await.unwrap();
            }
        };
        pairs(locker.clone(), "lone".into(), 20).await;
        let tasks: Vec<_> = (0..300)
            .map(|t| {
                rt.executor
                    .spawn(pairs(locker.clone(), format!("burst{t}"), 3))
            })
            .collect();
        for t in tasks {
            bounded_by("burst task", t).await;
        }
        pairs(locker.clone(), "lone".into(), 20).await;
        bounded_by("close", locker.close()).await;
    });
    drop(threads);
    assert_eq!(redis.cli(&["DBSIZE"]), "0", "no key left behind");
}

/// `fut`, which must end within [`CALL_BOUND`].
async fn within<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    let start = Instant::now();
    let out = bounded_by(what, fut).await;
    let took = start.elapsed();
    assert!(
        took < CALL_BOUND,
        "{what} took {took:?}: left waiting for a timer?"
    );
    out
}
