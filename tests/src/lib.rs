//! Real-Redis suites of tracklock: the runtimes and the one scenario
//! runner, on top of the test kit (`tracklock-testkit`, re-exported here).
//!
//! - The kit: [`RedisServer`] (a throwaway `redis-server`), [`RedisCluster`]
//!   and [`RedisInstances`] (with `shared()` forms for non-destructive
//!   tests: the servers of `.ci/run`, or one private set per test process),
//!   [`Admin`] (an independent connection that deletes, expires, flushes
//!   and kills behind the locker's back), [`Rtt`] (round trips measured
//!   now, for timing bounds that hold on a busy machine).
//! - [`TestRt`] with [`TokioRt`], [`SmolRt`] and (feature `glommio`, on by
//!   default, Linux) `GlommioRt`: the runtimes a body runs on.
//! - [`run`]: the scenario runner, parametrised by [`Topology`] (a private
//!   server, a private or the shared cluster, instances, or none) and
//!   [`Variant`]; [`matrix!`], [`variants!`], [`tokio_and_smol!`],
//!   [`each_runtime!`], [`scenarios!`], [`scenario!`] make the `#[test]`s.
//! - [`topo`]: contention, cluster name pickers and runtime-generic waits.
//!
//! The scenarios live in `tests/tests/`. Everything needs `redis-server`
//! on PATH (`apt-get install redis-server`); nothing is mocked.

mod rt;
mod runner;
pub mod sim;
pub mod topo;

/// The README's Rust snippets, compiled as doctests exactly as printed
/// (`rust,no_run`: they need a server at the address they name).
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeSnippets;

#[cfg(feature = "glommio")]
pub use rt::GlommioRt;
pub use rt::{SmolRt, Task, TestRt, TokioRt};
pub use runner::{
    error_kind, run, Ctx, Mode, Topology, Variant, EXTEND_INTERVAL, SCENARIO_TIMEOUT, VALIDITY,
};
pub use tracklock_testkit::timer_lateness;
pub use tracklock_testkit::{
    default_keys, free_port, fresh, lock_keys, Admin, Client, ClusterNode, RedisCluster,
    RedisInstances, RedisServer, Role, Rtt, StartError, TlsCerts, CLUSTER_ENV, INSTALL_HINT,
    INSTANCES_ENV, SLOTS,
};

/// What a scenario file needs, in one `use`.
pub mod prelude {
    #[cfg(feature = "glommio")]
    pub use crate::GlommioRt;
    pub use crate::{
        assert_err, lock_keys, matrix, Admin, Ctx, Mode, RedisServer, Rtt, SmolRt, Task, TestRt,
        TokioRt, Topology, Variant, EXTEND_INTERVAL, VALIDITY,
    };
    pub use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
    pub use std::sync::Arc;
    pub use std::time::{Duration, Instant};
    pub use tracklock::{ConfigError, Error, Guard, Locker, LostReason, NoLoop, Options};
}
