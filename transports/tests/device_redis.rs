//! The firmware path on the host: [`Device`] over a tokio TCP stream (through
//! `embedded-io-adapters`) against a real `redis-server` started on a free
//! loopback port (skipped when it is not installed), with a counting
//! allocator that must stay at zero while the core and the device run.
//!
//! Counting is per thread and switched on only while a device future (or
//! `Engine::new`) is being polled, and off again inside the platform parts
//! handed to the device (the tokio stream, clock, timer and the work
//! future): what is counted is exactly tracklock's code.
//!
//! `cargo test -p tracklock-transports` builds `tracklock-core` without its
//! `alloc` feature (nothing in this package's graph enables it), so this is
//! the heapless engine. A workspace-wide build (`cargo test --workspace`)
//! unifies features with `tracklock`, which enables `alloc`; the test then
//! still runs, but only reports the count (it says so on stderr).

use std::future::Future;
use std::time::Duration;

use embedded_io_adapters::tokio_1::FromTokio;
use tracklock_core::{Config, Engine, Instant, LostReason};
use tracklock_testkit::alloc::{counted_on_this_thread, counting, with_counting, Counting};
use tracklock_testkit::{Admin, RedisServer};
use tracklock_transports::device::{Clock, Delay, Device, Error, Outcome};

// ---- counting allocator ---------------------------------------------------

#[global_allocator]
static A: Counting = Counting;

/// A device call: counted.
fn counted<F: Future>(f: F) -> impl Future<Output = F::Output> {
    counting(true, f)
}

/// Platform code the device calls into: not counted.
fn uncounted<F: Future>(f: F) -> impl Future<Output = F::Output> {
    counting(false, f)
}

// ---- the platform parts, not counted --------------------------------------

/// A tokio TCP stream through `embedded-io-adapters`, its calls not counted.
struct Platform(FromTokio<tokio::net::TcpStream>);

impl embedded_io_async::ErrorType for Platform {
    type Error = std::io::Error;
}

impl embedded_io_async::Read for Platform {
    async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        uncounted(self.0.read(buf)).await
    }
}

impl embedded_io_async::Write for Platform {
    async fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        uncounted(self.0.write(buf)).await
    }
    async fn flush(&mut self) -> std::io::Result<()> {
        uncounted(self.0.flush()).await
    }
}

async fn connect(addr: &str) -> Platform {
    let s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    Platform(FromTokio::new(s))
}

/// The engine's clock: nanoseconds since the origin.
struct HostClock(std::time::Instant);

impl Clock for HostClock {
    fn now(&self) -> Instant {
        with_counting(false, || {
            Instant::from_nanos(self.0.elapsed().as_nanos() as u64)
        })
    }
}

/// tokio's timer on the same timeline.
struct TokioDelay(std::time::Instant);

impl Delay for TokioDelay {
    fn delay_until(&mut self, deadline: Instant) -> impl Future<Output = ()> {
        let when = self.0 + Duration::from_nanos(deadline.as_nanos());
        uncounted(async move { tokio::time::sleep_until(when.into()).await })
    }
}

async fn sleep(d: Duration) {
    uncounted(tokio::time::sleep(d)).await
}

// ---- a throwaway redis-server ---------------------------------------------

/// `EXISTS` of `keys`.
fn existing(admin: &Admin, keys: &[&str]) -> i64 {
    admin.cmd("EXISTS", keys)
}

/// How late a wake-up may be on this machine right now: four times the
/// slowest of five `PING` round trips (load comes in bursts). Bounds such
/// as "told within the lease" allow it on top.
fn wake_slack(admin: &Admin) -> Duration {
    admin.rtt().trips(1)
}

/// Runs `body` against a throwaway server on a current-thread tokio
/// runtime, in a thread with room for two heapless engines on its stack;
/// skipped when `redis-server` is not installed.
fn on_redis(body: impl AsyncFnOnce(&RedisServer) + Send) {
    let Some(redis) = RedisServer::start_or_skip(&[]) else {
        return;
    };
    let redis = &redis;
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .stack_size(64 << 20)
            .spawn_scoped(s, || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap()
                    .block_on(body(redis))
            })
            .unwrap()
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

fn keys(name: &str) -> [String; 3] {
    [0, 1, 2].map(|i| format!("rueidislock:{i}:{name}"))
}

/// The allocation verdict: zero in the no-alloc build.
fn check_no_allocations(what: &str) {
    let n = counted_on_this_thread();
    eprintln!(
        "{what}: {n} allocation(s) inside tracklock calls (core built {} alloc); Engine is {} bytes",
        if tracklock_core::ALLOC { "with" } else { "without" },
        std::mem::size_of::<Engine>()
    );
    if tracklock_core::ALLOC {
        eprintln!(
            "{what}: tracklock-core was built with `alloc` (features unified with the \
             workspace); allocation count not asserted. Run `cargo test -p tracklock-transports` \
             for the no-alloc check."
        );
    } else {
        assert_eq!(n, 0, "{what}: the no-alloc core or device allocated");
    }
}

type Dev<'e> = Device<'e, Platform, HostClock, TokioDelay, 1024>;

fn device(engine: &mut Engine, stream: Platform, t0: std::time::Instant) -> Dev<'_> {
    Device::new(engine, stream, HostClock(t0), TokioDelay(t0))
}

fn engine(config: &Config, seed: u8) -> Engine {
    with_counting(true, || Engine::new(config.clone(), [seed; 32])).unwrap()
}

// ---- scenarios --------------------------------------------------------------

/// Handshake, lock, exclusion, extension while working, release that wakes
/// a waiter, loss by deleted keys, loss by expiry (frozen server), close.
#[test]
fn lock_extend_lose_and_release_without_allocating() {
    on_redis(async |redis: &RedisServer| {
        let admin = redis.admin();
        let t0 = std::time::Instant::now();
        let validity = Duration::from_millis(800);
        let config = Config::default().with_validity(validity);
        let mut ea = engine(&config, 1);
        let mut eb = engine(&config, 2);
        let mut a = device(&mut ea, connect(&redis.addr()).await, t0);
        let mut b = device(&mut eb, connect(&redis.addr()).await, t0);
        counted(a.handshake()).await.unwrap();
        counted(b.handshake()).await.unwrap();
        assert!(a.is_connected() && b.is_connected());

        // Exclusion.
        let la = counted(a.lock("pump")).await.unwrap();
        let k = keys("pump");
        assert_eq!(existing(&admin, &[&k[0], &k[1], &k[2]]), 3);
        assert!(matches!(
            counted(b.try_lock("pump")).await,
            Err(Error::NotLocked)
        ));
        assert!(matches!(
            counted(a.try_lock("")).await,
            Err(Error::Lock(tracklock_core::LockError::EmptyName))
        ));

        // Kept extended across 2.5 validities while the work runs.
        let work = async {
            sleep(validity * 5 / 2).await;
            7
        };
        let out = counted(a.run_until(&la, uncounted(work))).await.unwrap();
        assert_eq!(out, Outcome::Done(7));
        assert!(counted(a.is_held(&la)).await);
        let pttl = admin.pttl(&k[0]);
        assert!(pttl > 0, "key expired under a held lock: {pttl}");

        // The release wakes the waiter on the other device at once.
        let released = std::cell::Cell::new(None);
        let (ra, lb) = tokio::join!(
            counted(async {
                sleep(Duration::from_millis(100)).await;
                let r = a.unlock(la).await;
                released.set(Some(std::time::Instant::now()));
                r
            }),
            counted(b.lock("pump")),
        );
        ra.unwrap();
        let lb = lb.unwrap();
        let lag = released.get().unwrap().elapsed();
        assert!(lag < Duration::from_millis(500), "waiter took {lag:?}");

        // Loss: someone deletes two of the three keys.
        let deleter_admin = redis.admin();
        let deleter = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            let k = keys("pump");
            assert_eq!(deleter_admin.del(&k[..2]), 2);
            // The keys are gone by now (the reply came).
            std::time::Instant::now()
        });
        let out = counted(b.run_until(&lb, std::future::pending::<()>()))
            .await
            .unwrap();
        let told = std::time::Instant::now();
        let deleted = deleter.join().unwrap();
        assert_eq!(out, Outcome::Lost(LostReason::KeysChanged));
        // Promptly after the deletion (measured from its reply).
        let slack = wake_slack(&admin);
        let took = told.saturating_duration_since(deleted);
        assert!(
            took < validity / 2 + slack,
            "told {took:?} after the deletion (wake-up slack {slack:?})"
        );
        // A lost lock answers at once from then on, and releases cleanly.
        assert_eq!(
            counted(b.run_until(&lb, async { 1 })).await.unwrap(),
            Outcome::Lost(LostReason::KeysChanged)
        );
        counted(b.unlock(lb)).await.unwrap();
        assert_eq!(existing(&admin, &[&k[0], &k[1], &k[2]]), 0);

        // Loss by expiry: the server freezes, no extension gets through.
        let la = counted(a.lock("valve")).await.unwrap();
        redis.freeze();
        let frozen = std::time::Instant::now();
        let out = counted(a.run_until(&la, std::future::pending::<()>())).await;
        let after = frozen.elapsed();
        redis.thaw();
        assert_eq!(out.unwrap(), Outcome::Lost(LostReason::Expired));
        // Within the lease (its last extension was sent before the freeze),
        // plus the wake-ups on a busy machine.
        let slack = wake_slack(&admin);
        assert!(
            after <= validity + slack,
            "told after {after:?} (validity {validity:?}, wake-up slack {slack:?})"
        );
        assert!(!counted(a.is_held(&la)).await);
        counted(a.unlock(la)).await.unwrap();

        counted(a.close()).await.unwrap();
        counted(b.close()).await.unwrap();
        check_no_allocations("lock/extend/lose/release");
    });
}

/// The connection is killed under a held lock: the device reports it, a
/// new stream is handed in, and the lock is still held (its keys were
/// re-checked after the handshake).
#[test]
fn reconnect_keeps_a_held_lock() {
    on_redis(async |redis: &RedisServer| {
        let admin = redis.admin();
        let t0 = std::time::Instant::now();
        let config = Config::default().with_client_name(tracklock_core::Text::new("device"));
        let mut e = engine(&config, 3);
        let mut d = device(&mut e, connect(&redis.addr()).await, t0);
        counted(d.handshake()).await.unwrap();
        let l = counted(d.lock("door")).await.unwrap();
        // SKIPME yes: every connection but the admin's, the device's.
        assert_eq!(admin.client_kill_normal(), 1);
        let out = counted(d.run_until(&l, std::future::pending::<()>())).await;
        assert!(matches!(out, Err(Error::Eof | Error::Io(_))), "{out:?}");
        assert!(!d.is_connected());
        assert!(
            counted(d.is_held(&l)).await,
            "a short outage keeps the lease"
        );
        let stream = connect(&redis.addr()).await;
        counted(d.reconnect(stream)).await.unwrap();
        let out = counted(d.run_until(&l, async {
            sleep(Duration::from_millis(300)).await;
        }))
        .await
        .unwrap();
        assert_eq!(out, Outcome::Done(()));
        counted(d.unlock(l)).await.unwrap();
        assert!(!admin.exists("rueidislock:0:door"));
        counted(d.close()).await.unwrap();
        check_no_allocations("reconnect");
    });
}

/// Fenced locks through the device: each grant a larger token, the same
/// counter keys as the library's, no allocation.
#[test]
fn fencing_tokens_grow_without_allocating() {
    on_redis(async |redis: &RedisServer| {
        let admin = redis.admin();
        let t0 = std::time::Instant::now();
        let config = Config::default().with_fencing(true);
        let mut ea = engine(&config, 4);
        let mut eb = engine(&config, 5);
        let mut a = device(&mut ea, connect(&redis.addr()).await, t0);
        let mut b = device(&mut eb, connect(&redis.addr()).await, t0);
        counted(a.handshake()).await.unwrap();
        counted(b.handshake()).await.unwrap();
        let mut last = 0;
        for round in 0..4 {
            let d = if round % 2 == 0 { &mut a } else { &mut b };
            let l = counted(d.lock("gate{x}")).await.unwrap();
            let token = l.token().expect("a fenced lock has a token");
            assert!(token > last, "round {round}: token {token} after {last}");
            last = token;
            counted(d.unlock(l)).await.unwrap();
        }
        let counter: Option<Vec<u8>> = admin.get("rueidislock:0:gate{x}:fence");
        assert_eq!(counter, Some(last.to_string().into_bytes()));
        counted(a.close()).await.unwrap();
        counted(b.close()).await.unwrap();
        check_no_allocations("fencing");
    });
}
