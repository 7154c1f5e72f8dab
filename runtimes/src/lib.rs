//! **tracklock**: a Redis distributed lock driven by client-side caching
//! (RESP3 `CLIENT TRACKING` invalidations), wire-compatible with Go's
//! `rueidislock`.
//!
//! A lock on `name` is `m` of `2m-1` keys `{prefix}:{i}:{name}` (default
//! `m = 2`, prefix `rueidislock`), written with a TTL and extended in the
//! background while held. Waiters are woken by the server's invalidation of
//! those keys instead of polling, and a holder is told it lost the lock no
//! later than its local deadline.
//!
//! Pick a runtime with a feature: `tokio` gives `tracklock::tokio::Locker`,
//! `smol` gives `tracklock::smol::Locker`, `glommio` (Linux, io_uring) gives
//! `tracklock::glommio::Locker`; all are the generic [`Locker`] with the same
//! API. Another executor runs lockers by implementing [`Runtime`].
//!
//! ```no_run
//! # #[cfg(feature = "tokio")]
//! # async fn f() -> Result<(), tracklock::Error> {
//! let locker = tracklock::tokio::Locker::connect(tracklock::Options::new("127.0.0.1:6379")).await?;
//! let guard = locker.lock("my_lock").await?;
//! tokio::select! { reason = guard.lost() => eprintln!("lost: {reason}"), _ = work() => {} }
//! guard.unlock().await?;
//! locker.close().await;
//! # Ok(()) }
//! # async fn work() {}
//! ```
//!
//! ```no_run
//! # #[cfg(feature = "smol")]
//! # fn f() -> Result<(), tracklock::Error> { smol::block_on(async {
//! let locker = tracklock::smol::Locker::connect(tracklock::Options::from_url("redis://127.0.0.1:6379/0")?).await?;
//! let out = locker.with_lock("my_lock", async { work().await }).await?;
//! if let Err(reason) = out { eprintln!("lock lost, work stopped: {reason}") }
//! locker.close().await;
//! # Ok(()) }) }
//! # async fn work() {}
//! ```
//!
//! ```no_run
//! # #[cfg(feature = "glommio")]
//! # fn f() {
//! use glommio::{LocalExecutorBuilder, Placement};
//! // A small io_memory keeps glommio within a low `ulimit -l`.
//! let ex = LocalExecutorBuilder::new(Placement::Unbound).io_memory(256 << 10).make().unwrap();
//! ex.run(async {
//!     let locker = tracklock::glommio::Locker::connect(tracklock::Options::new("127.0.0.1:6379")).await?;
//!     let guard = locker.lock("my_lock").await?;
//!     futures_lite::future::or(async { guard.lost().await; }, work()).await;
//!     guard.unlock().await?;
//!     locker.close().await;
//!     Ok::<_, tracklock::Error>(())
//! }).unwrap();
//! # }
//! # async fn work() {}
//! ```
//!
//! # Modes
//!
//! [`Options`] picks where a lock's keys live ([`Mode`]):
//!
//! - [`Options::new`] (`redis://host:port`): one server holds every key.
//! - [`Options::instances`] (`redis+instances://h1:p1,h2:p2,h3:p3`):
//!   independent servers, key `i` on instance `i mod n`, so a lock needs a
//!   majority of instances (with the default 2 of 3 keys on 3 instances, any
//!   one may be down).
//! - [`Options::cluster`] (`redis+cluster://h1:p1,h2:p2`): a Redis Cluster
//!   reached through seed nodes; each key goes to the master owning its hash
//!   slot, masters beyond the seeds are discovered and connected, and slot
//!   moves (`MOVED`/`ASK`) are followed.
//!
//! `connect` returns once enough nodes are ready to take a lock (see
//! [Connecting](Locker#connecting)); a server of the wrong kind for the mode
//! is reported as [`Error::Node`] with [`NodeError::Topology`] (or
//! [`NodeError::Replica`]), an address list unfit for the mode as
//! [`Error::Addresses`].
//!
//! ```no_run
//! # #[cfg(feature = "tokio")]
//! # async fn f() -> Result<(), tracklock::Error> {
//! use tracklock::{tokio::Locker, Options};
//! let locker = Locker::connect(Options::cluster(["10.0.0.1:7000", "10.0.0.2:7000"])).await?;
//! let same = Options::from_url("redis+cluster://10.0.0.1:7000,10.0.0.2:7000")?;
//! # drop((locker, same));
//! # Ok(()) }
//! ```
//!
//! # Architecture
//!
//! The protocol lives in the sans-I/O engine of `tracklock-core`. This crate
//! adds one generic driver task per Redis connection ([`Task`]), written
//! once against the small [`Runtime`] trait; the `tokio`, `smol` and
//! `glommio` modules only supply a clock, timers, a TCP connect (from
//! `tracklock-transports`) and a spawn (`glommio::spawn_local` for glommio,
//! whose tasks are `!Send`), which drivers also use to start the driver of
//! a cluster master discovered at run time. Every call on a [`Locker`] or
//! [`Guard`] only updates the engine under a short mutex and wakes the
//! drivers, so commands from many tasks leave in one write.
//!
//! Lock values come from a generator seeded once per locker from the
//! operating system (`getrandom`).
#![cfg_attr(docsrs, feature(doc_cfg))]
// Without a runtime feature nothing spawns the driver.
#![cfg_attr(
    not(any(feature = "tokio", feature = "smol", feature = "glommio")),
    allow(dead_code)
)]

mod addr;
mod direct;
mod driver;
mod error;
mod guard;
mod guard_name;
mod inner;
mod locker;
mod options;
mod runtime;
mod sentinel;
mod shared;
mod startup;
mod stats;
#[cfg(feature = "timeline")]
#[doc(hidden)]
pub mod timeline;
#[cfg(feature = "tls")]
mod tls;

#[cfg(feature = "glommio")]
pub mod glommio;
#[cfg(feature = "smol")]
pub mod smol;
#[cfg(feature = "tokio")]
pub mod tokio;

pub use addr::join_host_port;
pub use error::{AddressError, Error, SentinelFailure, TlsFailure};
pub use guard::Guard;
pub use locker::Locker;
pub use options::{Mode, Options};
pub use runtime::{Runtime, Task};
pub use stats::{ConnectionState, EngineStats, Losses, NodeStats, Stats};
pub use tracklock_core::{Command, ConfigError, LostReason, NoLoop, NodeError};
