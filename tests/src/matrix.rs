//! The variant matrix: runtime × mode × caching, one `#[test]` per combo,
//! each with its own `redis-server`, a watchdog and an overall timeout.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracklock::{Error, Guard, Locker, LostReason, NoLoop, Options};

use crate::admin::Admin;
use crate::rt::TestRt;
use crate::rtt::Rtt;
use crate::server::RedisServer;

/// TTL written on every key in the matrix (short, so the suite is fast; long
/// enough that a loaded 2-core CI machine does not miss extensions).
pub const VALIDITY: Duration = Duration::from_secs(2);
/// The default extend interval that follows from [`VALIDITY`].
pub const EXTEND_INTERVAL: Duration = Duration::from_secs(1);
/// With caching off, how long after the next extension a holder may learn
/// of a change to its keys on a quiet machine.
const LOSS_SLACK: Duration = Duration::from_millis(750);
/// Default overall bound on one scenario.
pub const SCENARIO_TIMEOUT: Duration = Duration::from_secs(60);

/// How the locker tracks keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `CLIENT TRACKING` without `NOLOOP` (own writes echo back).
    Tracking,
    /// `CLIENT TRACKING ... NOLOOP`.
    Noloop,
    /// Absolute TTLs (`PXAT`/`PEXPIREAT`, Go's default), `NOLOOP` automatic.
    Absolute,
}

/// One combination of the matrix (the runtime is the type parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Variant {
    /// Tracking mode.
    pub mode: Mode,
    /// Client-side caching on (invalidation-driven) or off (polling).
    pub caching: bool,
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = match self.mode {
            Mode::Tracking => "tracking",
            Mode::Noloop => "noloop",
            Mode::Absolute => "absolute",
        };
        let cache = if self.caching {
            "cache_on"
        } else {
            "cache_off"
        };
        write!(f, "{mode}_{cache}")
    }
}

impl Variant {
    /// Applies this variant to `opts`.
    pub fn apply(self, opts: Options) -> Options {
        let opts = match self.mode {
            Mode::Tracking => opts.noloop(NoLoop::Off),
            Mode::Noloop => opts.noloop(NoLoop::On),
            Mode::Absolute => opts.absolute_ttl(true),
        };
        opts.client_caching(self.caching)
    }

    /// How soon a holder must notice that someone else changed its keys,
    /// on a quiet machine: an invalidation round trip with caching on
    /// (bounded generously at a quarter of the validity, which is still well
    /// within one extend interval), the next extension plus slack with
    /// caching off. [`Ctx::loss_bound`] is the same on a busy machine.
    pub fn loss_bound(self) -> Duration {
        if self.caching {
            VALIDITY / 4
        } else {
            EXTEND_INTERVAL + LOSS_SLACK
        }
    }

    /// [`Variant::loss_bound`] with the round trips it allows at the rate
    /// `rtt` measured: caching on, the push and the re-check (with the
    /// wake-ups around them) are three round trips, capped at three
    /// quarters of the extend interval so that only an invalidation can
    /// meet it; caching off, the next extension's reply and the wake-ups
    /// are two, capped at the validity (a loss told later would be the
    /// lease running out, not the extension finding the change).
    pub fn loss_bound_at(self, rtt: Rtt) -> Duration {
        if self.caching {
            rtt.at_least(self.loss_bound(), 3)
                .min(EXTEND_INTERVAL * 3 / 4)
        } else {
            (EXTEND_INTERVAL + rtt.at_least(LOSS_SLACK, 2)).min(VALIDITY)
        }
    }
}

/// Everything a scenario body gets: its server, an admin connection and the
/// variant. Cheap to clone; `Send`, so tasks can take a copy.
pub struct Ctx<T: TestRt> {
    /// This test's own server.
    pub server: Arc<RedisServer>,
    /// An admin connection to it.
    pub admin: Arc<Admin>,
    /// The combination under test.
    pub variant: Variant,
    _rt: PhantomData<fn() -> T>,
}

impl<T: TestRt> Clone for Ctx<T> {
    fn clone(&self) -> Self {
        Ctx {
            server: self.server.clone(),
            admin: self.admin.clone(),
            variant: self.variant,
            _rt: PhantomData,
        }
    }
}

impl<T: TestRt> fmt::Debug for Ctx<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ctx")
            .field("runtime", &T::NAME)
            .field("variant", &self.variant)
            .field("server", &self.server)
            .finish()
    }
}

impl<T: TestRt> Ctx<T> {
    /// A context for `server` (opens an admin connection).
    pub fn new(server: Arc<RedisServer>, variant: Variant) -> Ctx<T> {
        let admin = Arc::new(server.admin());
        Ctx {
            server,
            admin,
            variant,
            _rt: PhantomData,
        }
    }

    /// The matrix options for this server: the variant applied, validity
    /// [`VALIDITY`], the default extend interval, password when the server
    /// has one.
    pub fn opts(&self) -> Options {
        let mut o = Options::new(self.server.addr()).validity(VALIDITY);
        if let Some(p) = self.server.password() {
            o = o.password(p);
        }
        self.variant.apply(o)
    }

    /// Connects a locker with [`Ctx::opts`]; panics on failure.
    pub async fn connect(&self) -> Locker<T::R> {
        self.connect_with(self.opts()).await
    }

    /// Connects a locker with `opts`; panics on failure.
    pub async fn connect_with(&self, opts: Options) -> Locker<T::R> {
        match T::connect(opts).await {
            Ok(l) => l,
            Err(e) => panic!("connect failed: {e} ({e:?})"),
        }
    }

    /// `n` lockers with [`Ctx::opts`].
    pub async fn lockers(&self, n: usize) -> Vec<Locker<T::R>> {
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(self.connect().await);
        }
        v
    }

    /// The keys of lock `name` with the default prefix and majority.
    pub fn keys(&self, name: &str) -> Vec<String> {
        lock_keys("rueidislock", name, 2)
    }

    /// Every key under the default prefix currently in Redis.
    pub fn lock_keys_present(&self) -> Vec<String> {
        self.admin.keys("rueidislock:*")
    }

    /// Round trips to this test's server, measured now (see [`crate::Rtt`]).
    pub fn rtt(&self) -> crate::Rtt {
        self.admin.rtt()
    }

    /// How soon a holder must notice that someone else changed its keys,
    /// with the round trips to this server measured now
    /// ([`Variant::loss_bound_at`]).
    pub fn loss_bound(&self) -> Duration {
        self.variant.loss_bound_at(self.rtt())
    }

    /// Sleeps on the test runtime.
    pub async fn sleep(&self, d: Duration) {
        T::sleep(d).await
    }

    /// Waits until `cond` holds, checking every 10 ms, for at most `within`;
    /// panics with `what` otherwise.
    pub async fn eventually(&self, within: Duration, what: &str, mut cond: impl FnMut() -> bool) {
        let start = Instant::now();
        loop {
            if cond() {
                return;
            }
            if start.elapsed() > within {
                panic!("not within {within:?}: {what} ({})", self.variant);
            }
            T::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until no lock key is left and every given locker tracks no
    /// lock, within two seconds (background releases take a round trip).
    pub async fn assert_clean(&self, lockers: &[&Locker<T::R>]) {
        let admin = self.admin.clone();
        self.eventually(Duration::from_secs(2), "no rueidislock:* keys left", || {
            admin.keys("rueidislock:*").is_empty()
        })
        .await;
        for (i, l) in lockers.iter().enumerate() {
            self.eventually(
                Duration::from_secs(2),
                &format!("locker {i}: active_locks() == 0"),
                || l.active_locks() == 0,
            )
            .await;
        }
    }

    /// Awaits `guard.lost()` for at most `within`; returns the reason and
    /// how long it took, panics when it did not resolve.
    pub async fn expect_lost(
        &self,
        guard: &Guard<T::R>,
        within: Duration,
    ) -> (LostReason, Duration) {
        let start = Instant::now();
        match T::timeout(within, guard.lost()).await {
            Some(r) => (r, start.elapsed()),
            None => panic!(
                "guard {:?} not told it lost within {within:?} ({}); held={}",
                guard.name(),
                self.variant,
                guard.is_held()
            ),
        }
    }

    /// Asserts that `guard.lost()` does NOT resolve within `d` and the guard
    /// still reports held.
    pub async fn expect_held_for(&self, guard: &Guard<T::R>, d: Duration) {
        if let Some(r) = T::timeout(d, guard.lost()).await {
            panic!(
                "guard {:?} lost ({r:?}) while it should be held ({})",
                guard.name(),
                self.variant
            );
        }
        assert!(
            guard.is_held(),
            "guard {:?} not held ({})",
            guard.name(),
            self.variant
        );
    }

    /// Locks `name` within `within`, panicking on error or time-out.
    pub async fn lock_within(&self, l: &Locker<T::R>, name: &str, within: Duration) -> Guard<T::R> {
        match T::timeout(within, l.lock(name)).await {
            Some(Ok(g)) => g,
            Some(Err(e)) => panic!("lock({name:?}) failed: {e} ({})", self.variant),
            None => panic!(
                "lock({name:?}) not acquired within {within:?} ({})",
                self.variant
            ),
        }
    }
}

/// The `2m-1` keys of lock `name`: `{prefix}:{i}:{name}`.
pub fn lock_keys(prefix: &str, name: &str, majority: u8) -> Vec<String> {
    (0..(2 * majority as usize - 1))
        .map(|i| format!("{prefix}:{i}:{name}"))
        .collect()
}

/// Asserts a result is the given error variant pattern, with the whole
/// value in the message.
#[macro_export]
macro_rules! assert_err {
    ($e:expr, $p:pat) => {
        match $e {
            Err($p) => {}
            other => panic!(
                "expected Err({}), got {:?}",
                stringify!($p),
                other.as_ref().map(|_| "Ok(..)")
            ),
        }
    };
}

/// Runs one combo: starts a server, runs `body` on runtime `T` in its own
/// thread with [`SCENARIO_TIMEOUT`], kills the server if the body hangs even
/// past that (a blocked thread), and re-raises the body's panic.
pub fn run<T, F, Fut>(variant: Variant, body: F)
where
    T: TestRt,
    F: FnOnce(Ctx<T>) -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    run_with_timeout::<T, F, Fut>(variant, SCENARIO_TIMEOUT, body)
}

/// [`run`] with another overall time limit.
pub fn run_with_timeout<T, F, Fut>(variant: Variant, limit: Duration, body: F)
where
    T: TestRt,
    F: FnOnce(Ctx<T>) -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let server = Arc::new(RedisServer::start());
    let label = format!("{}_{variant}", T::NAME);
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let srv = server.clone();
    let thread = std::thread::Builder::new()
        .name(label.clone())
        .spawn(move || {
            let ctx = Ctx::<T>::new(srv, variant);
            let out = T::block_on(T::timeout(limit, body(ctx)));
            let _ = done_tx.send(());
            if out.is_none() {
                panic!("scenario {label} did not finish within {limit:?} (hang?)");
            }
        })
        .expect("spawn scenario thread");
    // The body's own timeout fires first; this only catches a blocked
    // thread that cannot reach its timer.
    match done_rx.recv_timeout(limit + Duration::from_secs(15)) {
        Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => {
            if let Err(panic) = thread.join() {
                std::panic::resume_unwind(panic);
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            server.kill();
            panic!("scenario thread blocked past {limit:?}; server killed");
        }
    }
}

/// Defines the 18 matrix tests for a scenario body
/// `async fn body<T: TestRt>(ctx: Ctx<T>)`, named
/// `<runtime>_<mode>_<caching>` (e.g. `tokio_noloop_cache_on`), in the
/// current module. An optional second argument overrides the time limit
/// (a `Duration`).
#[macro_export]
macro_rules! matrix {
    ($body:ident) => {
        $crate::matrix!($body, $crate::SCENARIO_TIMEOUT);
    };
    ($body:ident, $limit:expr) => {
        $crate::matrix!(@one tokio_tracking_cache_on, TokioRt, Tracking, true, $body, $limit);
        $crate::matrix!(@one tokio_tracking_cache_off, TokioRt, Tracking, false, $body, $limit);
        $crate::matrix!(@one tokio_noloop_cache_on, TokioRt, Noloop, true, $body, $limit);
        $crate::matrix!(@one tokio_noloop_cache_off, TokioRt, Noloop, false, $body, $limit);
        $crate::matrix!(@one tokio_absolute_cache_on, TokioRt, Absolute, true, $body, $limit);
        $crate::matrix!(@one tokio_absolute_cache_off, TokioRt, Absolute, false, $body, $limit);
        $crate::matrix!(@one smol_tracking_cache_on, SmolRt, Tracking, true, $body, $limit);
        $crate::matrix!(@one smol_tracking_cache_off, SmolRt, Tracking, false, $body, $limit);
        $crate::matrix!(@one smol_noloop_cache_on, SmolRt, Noloop, true, $body, $limit);
        $crate::matrix!(@one smol_noloop_cache_off, SmolRt, Noloop, false, $body, $limit);
        $crate::matrix!(@one smol_absolute_cache_on, SmolRt, Absolute, true, $body, $limit);
        $crate::matrix!(@one smol_absolute_cache_off, SmolRt, Absolute, false, $body, $limit);
        $crate::matrix!(@one glommio_tracking_cache_on, GlommioRt, Tracking, true, $body, $limit);
        $crate::matrix!(@one glommio_tracking_cache_off, GlommioRt, Tracking, false, $body, $limit);
        $crate::matrix!(@one glommio_noloop_cache_on, GlommioRt, Noloop, true, $body, $limit);
        $crate::matrix!(@one glommio_noloop_cache_off, GlommioRt, Noloop, false, $body, $limit);
        $crate::matrix!(@one glommio_absolute_cache_on, GlommioRt, Absolute, true, $body, $limit);
        $crate::matrix!(@one glommio_absolute_cache_off, GlommioRt, Absolute, false, $body, $limit);
    };
    (@one $name:ident, $rt:ident, $mode:ident, $caching:expr, $body:ident, $limit:expr) => {
        #[test]
        fn $name() {
            $crate::run_with_timeout::<$crate::$rt, _, _>(
                $crate::Variant {
                    mode: $crate::Mode::$mode,
                    caching: $caching,
                },
                $limit,
                $body::<$crate::$rt>,
            );
        }
    };
}

/// An error's variant name, for messages.
pub fn error_kind(e: &Error) -> &'static str {
    match e {
        Error::NotLocked => "NotLocked",
        Error::Closed => "Closed",
        Error::Config(_) => "Config",
        Error::InvalidName => "InvalidName",
        Error::Connect { .. } => "Connect",
        Error::Node { .. } => "Node",
        _ => "other",
    }
}
