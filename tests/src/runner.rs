//! The one scenario runner, parametrised by topology: a scenario body
//! `async fn body<T: TestRt>(ctx: Ctx<T>)` runs on runtime `T` for one
//! [`Variant`] against the servers its [`Topology`] names (a private
//! server, a private or the shared cluster, private or shared instances,
//! or none), in its own thread, with an overall time limit and a watchdog
//! that kills the private servers when the body blocks. The macros
//! [`matrix!`], [`variants!`], [`tokio_and_smol!`], [`each_runtime!`],
//! [`scenarios!`] and [`scenario!`] turn a body into `#[test]`s, one per
//! runtime × variant.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracklock::{Error, Guard, Locker, LostReason, NoLoop, Options};

use tracklock_testkit::{lock_keys, Admin, RedisCluster, RedisInstances, RedisServer, Rtt};

use crate::rt::TestRt;

/// TTL written on every key by [`Ctx::opts`] (short, so the suites are
/// fast; long enough that a loaded 2-core CI machine does not miss
/// extensions).
pub const VALIDITY: Duration = Duration::from_secs(2);
/// The default extend interval that follows from [`VALIDITY`].
pub const EXTEND_INTERVAL: Duration = Duration::from_secs(1);
/// Default overall bound on one scenario.
pub const SCENARIO_TIMEOUT: Duration = Duration::from_secs(60);

/// Which servers a test runs against; the runner starts (or attaches to)
/// them before the body and hands them over in [`Ctx`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topology {
    /// A private `redis-server` with these extra arguments
    /// ([`Ctx::server`], [`Ctx::admin`]).
    Server(&'static [&'static str]),
    /// A private Redis Cluster, for tests that kill, fail over or migrate
    /// ([`Ctx::cluster`]; [`Topology::cluster`] is the short form).
    Cluster {
        /// Masters.
        masters: usize,
        /// Replicas of each master.
        replicas: usize,
    },
    /// The cluster shared by the non-destructive tests
    /// ([`RedisCluster::shared`]).
    SharedCluster,
    /// Private independent servers ([`Ctx::instances`]).
    Instances(usize),
    /// The instances shared by the non-destructive tests
    /// ([`RedisInstances::shared`]).
    SharedInstances,
    /// None: the body starts what it needs.
    Own,
}

impl Topology {
    /// [`Topology::Cluster`] with `masters` masters of `replicas` replicas each.
    pub const fn cluster(masters: usize, replicas: usize) -> Topology {
        Topology::Cluster { masters, replicas }
    }
}

/// The servers of one test, as the runner started them.
#[derive(Clone)]
enum Servers {
    Server(Arc<RedisServer>, Arc<Admin>),
    Cluster(Arc<RedisCluster>),
    Instances(Arc<RedisInstances>),
    Own,
}

impl Servers {
    fn start(topology: Topology) -> Servers {
        match topology {
            Topology::Server(args) => {
                let server = Arc::new(RedisServer::start_with(args));
                let admin = Arc::new(server.admin());
                Servers::Server(server, admin)
            }
            Topology::Cluster { masters, replicas } => {
                Servers::Cluster(Arc::new(RedisCluster::start(masters, replicas)))
            }
            Topology::SharedCluster => Servers::Cluster(RedisCluster::shared()),
            Topology::Instances(n) => Servers::Instances(Arc::new(RedisInstances::start(n))),
            Topology::SharedInstances => Servers::Instances(RedisInstances::shared()),
            Topology::Own => Servers::Own,
        }
    }

    /// Kills the private servers (the watchdog's last resort against a
    /// blocked body); shared ones are left alone.
    fn kill(&self) {
        match self {
            Servers::Server(s, _) => s.kill(),
            Servers::Cluster(c) if !c.is_shared() => (0..c.len()).for_each(|i| c.kill(i)),
            Servers::Instances(s) if !s.is_shared() => (0..s.len()).for_each(|i| s.kill(i)),
            _ => {}
        }
    }
}

impl fmt::Debug for Servers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Servers::Server(s, _) => s.fmt(f),
            Servers::Cluster(c) => c.fmt(f),
            Servers::Instances(s) => s.fmt(f),
            Servers::Own => f.write_str("Own"),
        }
    }
}

/// How the locker tracks keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The defaults: `NOLOOP` automatic, relative TTLs.
    Default,
    /// `CLIENT TRACKING` without `NOLOOP` (own writes echo back).
    Tracking,
    /// `CLIENT TRACKING ... NOLOOP`.
    Noloop,
    /// Absolute TTLs (`PXAT`/`PEXPIREAT`, Go's default), `NOLOOP` automatic.
    Absolute,
}

/// The options under test (the runtime is the type parameter).
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
            Mode::Default => "default",
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
    /// The defaults with caching on or off.
    pub fn caching(caching: bool) -> Variant {
        Variant {
            mode: Mode::Default,
            caching,
        }
    }

    /// Applies this variant to `opts`.
    pub fn apply(self, opts: Options) -> Options {
        let opts = match self.mode {
            Mode::Default => opts,
            Mode::Tracking => opts.noloop(NoLoop::Off),
            Mode::Noloop => opts.noloop(NoLoop::On),
            Mode::Absolute => opts.absolute_ttl(true),
        };
        opts.client_caching(self.caching)
    }

    /// How soon a holder must notice that someone else changed its keys,
    /// on a quiet machine: an invalidation round trip with caching on
    /// (bounded generously at a quarter of the validity, which is still well
    /// within one extend interval); with caching off, the validity: the
    /// next extension finds the change within an extend interval and a
    /// round trip, and no later than the local deadline (contract §5),
    /// which an extension sent just before the change may have moved to a
    /// validity after it. [`Ctx::loss_bound`] is the same on a busy machine.
    pub fn loss_bound(self) -> Duration {
        if self.caching {
            VALIDITY / 4
        } else {
            VALIDITY
        }
    }

    /// [`Variant::loss_bound`] with the round trips it allows at the rate
    /// `rtt` measured: caching on, the push and the re-check (with the
    /// wake-ups around them) are three round trips, capped at three
    /// quarters of the extend interval so that only an invalidation can
    /// meet it; caching off, the validity (see [`Variant::loss_bound`]; a
    /// loss told later would be the lease running out, not the extension
    /// finding the change; a busy machine that delays the extension's reply
    /// past the deadline makes it `Expired`, which the scenarios reject).
    pub fn loss_bound_at(self, rtt: Rtt) -> Duration {
        if self.caching {
            rtt.at_least(self.loss_bound(), 3)
                .min(EXTEND_INTERVAL * 3 / 4)
        } else {
            self.loss_bound()
        }
    }
}

/// Everything a scenario body gets: the variant and the servers of its
/// [`Topology`]. Cheap to clone; `Send`, so tasks can take a copy.
pub struct Ctx<T: TestRt> {
    /// The combination under test.
    pub variant: Variant,
    servers: Servers,
    _rt: PhantomData<fn() -> T>,
}

impl<T: TestRt> Clone for Ctx<T> {
    fn clone(&self) -> Self {
        Ctx {
            variant: self.variant,
            servers: self.servers.clone(),
            _rt: PhantomData,
        }
    }
}

impl<T: TestRt> fmt::Debug for Ctx<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ctx")
            .field("runtime", &T::NAME)
            .field("variant", &self.variant)
            .field("servers", &self.servers)
            .finish()
    }
}

impl<T: TestRt> Ctx<T> {
    /// This test's own server ([`Topology::Server`]; panics otherwise).
    pub fn server(&self) -> &Arc<RedisServer> {
        match &self.servers {
            Servers::Server(s, _) => s,
            other => panic!("Ctx::server: the topology is {other:?}, not Topology::Server"),
        }
    }

    /// An admin connection to [`Ctx::server`].
    pub fn admin(&self) -> &Arc<Admin> {
        match &self.servers {
            Servers::Server(_, a) => a,
            other => panic!("Ctx::admin: the topology is {other:?}, not Topology::Server"),
        }
    }

    /// This test's cluster ([`Topology::Cluster`] or
    /// [`Topology::SharedCluster`]; panics otherwise).
    pub fn cluster(&self) -> &Arc<RedisCluster> {
        match &self.servers {
            Servers::Cluster(c) => c,
            other => panic!("Ctx::cluster: the topology is {other:?}, not a cluster"),
        }
    }

    /// This test's instances ([`Topology::Instances`] or
    /// [`Topology::SharedInstances`]; panics otherwise).
    pub fn instances(&self) -> &Arc<RedisInstances> {
        match &self.servers {
            Servers::Instances(s) => s,
            other => panic!("Ctx::instances: the topology is {other:?}, not instances"),
        }
    }

    /// Options for this test's servers: single, cluster or instances mode
    /// by topology (password when the server has one), validity
    /// [`VALIDITY`], the default extend interval, the variant applied.
    /// Panics for [`Topology::Own`].
    pub fn opts(&self) -> Options {
        let o = match &self.servers {
            Servers::Server(s, _) => {
                let o = Options::new(s.addr());
                match s.password() {
                    Some(p) => o.password(p),
                    None => o,
                }
            }
            Servers::Cluster(c) => Options::cluster(c.seeds()),
            Servers::Instances(s) => Options::instances(s.addrs()),
            Servers::Own => panic!("Ctx::opts: Topology::Own has no servers"),
        };
        self.variant.apply(o.validity(VALIDITY))
    }

    /// Connects a locker with [`Ctx::opts`]; panics on failure.
    pub async fn connect(&self) -> Locker<T::R> {
        self.connect_with(self.opts()).await
    }

    /// Connects a locker with `opts`; panics on failure.
    pub async fn connect_with(&self, opts: Options) -> Locker<T::R> {
        crate::topo::connect::<T>(opts).await
    }

    /// `n` lockers with [`Ctx::opts`].
    pub async fn lockers(&self, n: usize) -> Vec<Locker<T::R>> {
        crate::topo::connect_n::<T>(&self.opts(), n).await
    }

    /// The keys of lock `name` with the default prefix and majority.
    pub fn keys(&self, name: &str) -> Vec<String> {
        lock_keys("rueidislock", name, 2)
    }

    /// Every key under the default prefix currently in Redis.
    pub fn lock_keys_present(&self) -> Vec<String> {
        self.admin().keys("rueidislock:*")
    }

    /// Round trips to this test's server (the first node or instance),
    /// measured now (see [`Rtt`]).
    pub fn rtt(&self) -> Rtt {
        match &self.servers {
            Servers::Server(_, a) => a.rtt(),
            Servers::Cluster(c) => c.admin(0).rtt(),
            Servers::Instances(s) => s.admin(0).rtt(),
            Servers::Own => panic!("Ctx::rtt: Topology::Own has no servers"),
        }
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
        let admin = self.admin().clone();
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
    /// how long it took, panics when it did not resolve. The variant is in
    /// the test thread's name, which every panic message shows.
    pub async fn expect_lost(
        &self,
        guard: &Guard<T::R>,
        within: Duration,
    ) -> (LostReason, Duration) {
        crate::topo::expect_lost::<T>(guard, within).await
    }

    /// Asserts that `guard.lost()` does NOT resolve within `d` and the guard
    /// still reports held.
    pub async fn expect_held_for(&self, guard: &Guard<T::R>, d: Duration) {
        crate::topo::expect_held_for::<T>(guard, d).await
    }

    /// Locks `name` within `within`, panicking on error or time-out.
    pub async fn lock_within(&self, l: &Locker<T::R>, name: &str, within: Duration) -> Guard<T::R> {
        crate::topo::lock_within::<T>(l, name, within).await
    }
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

/// Runs one test: starts (or attaches to) the servers of `topology`, runs
/// `body` on runtime `T` in its own thread for at most `limit`, kills the
/// private servers if the body blocks even past that (a thread that cannot
/// reach its timer), and re-raises the body's panic.
pub fn run<T, F, Fut>(topology: Topology, variant: Variant, limit: Duration, body: F)
where
    T: TestRt,
    F: FnOnce(Ctx<T>) -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let servers = Servers::start(topology);
    let label = format!("{}_{variant}", T::NAME);
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let ctx = Ctx::<T> {
        variant,
        servers: servers.clone(),
        _rt: PhantomData,
    };
    let thread = std::thread::Builder::new()
        .name(label.clone())
        .spawn(move || {
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
            servers.kill();
            panic!("scenario thread blocked past {limit:?}; private servers killed");
        }
    }
}

/// One `#[test]` named `$name` (attributes such as `#[cfg(…)]` may come
/// first): `$body::<$rt>` through [`run`] with a topology, a variant and a
/// time limit. The building block of the other macros; use it directly for
/// a test of its own name.
#[macro_export]
macro_rules! scenario {
    ($(#[$attr:meta])* $name:ident, $rt:ident, $topology:expr, $variant:expr, $limit:expr, $body:path) => {
        $(#[$attr])*
        #[test]
        fn $name() {
            $crate::run::<$crate::$rt, _, _>($topology, $variant, $limit, $body);
        }
    };
}

/// The single-server matrix: one `#[test]` per runtime × mode × caching
/// for a scenario body, each with its own server ([`Topology::Server`]),
/// named `<runtime>_<mode>_<caching>` (e.g. `tokio_noloop_cache_on`), in
/// the current module. An optional second argument overrides the time
/// limit (a `Duration`). The glommio tests need the `glommio` feature.
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
        $crate::matrix!(@one #[cfg(feature = "glommio")] glommio_tracking_cache_on, GlommioRt, Tracking, true, $body, $limit);
        $crate::matrix!(@one #[cfg(feature = "glommio")] glommio_tracking_cache_off, GlommioRt, Tracking, false, $body, $limit);
        $crate::matrix!(@one #[cfg(feature = "glommio")] glommio_noloop_cache_on, GlommioRt, Noloop, true, $body, $limit);
        $crate::matrix!(@one #[cfg(feature = "glommio")] glommio_noloop_cache_off, GlommioRt, Noloop, false, $body, $limit);
        $crate::matrix!(@one #[cfg(feature = "glommio")] glommio_absolute_cache_on, GlommioRt, Absolute, true, $body, $limit);
        $crate::matrix!(@one #[cfg(feature = "glommio")] glommio_absolute_cache_off, GlommioRt, Absolute, false, $body, $limit);
    };
    (@one $(#[$attr:meta])* $name:ident, $rt:ident, $mode:ident, $caching:expr, $body:ident, $limit:expr) => {
        $crate::scenario!(
            $(#[$attr])* $name,
            $rt,
            $crate::Topology::Server(&[]),
            $crate::Variant {
                mode: $crate::Mode::$mode,
                caching: $caching,
            },
            $limit,
            $body
        );
    };
}

/// Several `#[test]`s of one body on one topology, one per row
/// `name: Runtime, variant` (attributes such as `#[cfg(…)]` may lead a
/// row). The lists below are made of it; use it directly for a
/// combination of its own, e.g.
/// `scenarios!(Topology::cluster(3, 1), body, LIMIT; tokio_cache_on: TokioRt, Variant::caching(true));`.
#[macro_export]
macro_rules! scenarios {
    ($topology:expr, $body:path, $limit:expr;
     $($(#[$attr:meta])* $name:ident: $rt:ident, $variant:expr);+ $(;)?) => {
        $($crate::scenario!($(#[$attr])* $name, $rt, $topology, $variant, $limit, $body);)+
    };
}

/// One `#[test]` per runtime {tokio, smol} × caching {on, off}, named
/// `tokio_cache_on`, `tokio_cache_off`, `smol_cache_on`, `smol_cache_off`,
/// for a body on `$topology` with the default mode (the cluster and
/// instances suites).
#[macro_export]
macro_rules! variants {
    ($topology:expr, $body:ident, $limit:expr) => {
        $crate::scenarios!($topology, $body, $limit;
            tokio_cache_on: TokioRt, $crate::Variant::caching(true);
            tokio_cache_off: TokioRt, $crate::Variant::caching(false);
            smol_cache_on: SmolRt, $crate::Variant::caching(true);
            smol_cache_off: SmolRt, $crate::Variant::caching(false));
    };
}

/// Two `#[test]`s, `tokio` and `smol`, for a body on `$topology` with the
/// default options (the refusals and sentinel suites).
#[macro_export]
macro_rules! tokio_and_smol {
    ($topology:expr, $body:ident, $limit:expr) => {
        $crate::scenarios!($topology, $body, $limit;
            tokio: TokioRt, $crate::Variant::caching(true);
            smol: SmolRt, $crate::Variant::caching(true));
    };
}

/// Three `#[test]`s, `tokio`, `smol` and (feature `glommio`) `glommio`, for
/// a body on `$topology` with the default options (the TLS and sentinel
/// suites).
#[macro_export]
macro_rules! each_runtime {
    ($topology:expr, $body:ident, $limit:expr) => {
        $crate::tokio_and_smol!($topology, $body, $limit);
        $crate::scenarios!($topology, $body, $limit;
            #[cfg(feature = "glommio")] glommio: GlommioRt, $crate::Variant::caching(true));
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
        Error::Tls { .. } => "Tls",
        Error::TlsSetup { .. } => "TlsSetup",
        _ => "other",
    }
}
