//! Real-Redis test harness of tracklock.
//!
//! - [`RedisServer`]: a throwaway `redis-server` per test (free loopback
//!   port, no persistence, own directory; killed on drop; restartable).
//! - [`RedisCluster`]: a real Redis Cluster (masters, replicas, failovers,
//!   slot migrations) built from such servers; [`RedisInstances`]: N
//!   independent servers. Both have a `shared()` form for non-destructive
//!   tests (the servers of `.ci/run`, or one private set per test process).
//! - [`Admin`]: an independent admin connection (the `redis` crate) that
//!   deletes, expires, flushes and kills behind the locker's back.
//! - [`TestRt`] with [`TokioRt`], [`SmolRt`] and [`GlommioRt`]: the runtimes
//!   of the matrix.
//! - [`Rtt`]: round trips measured now, for timing bounds that hold on a
//!   busy machine.
//! - [`matrix!`]: one `#[test]` per runtime × mode × caching combination for
//!   a scenario body `async fn body<T: TestRt>(ctx: Ctx<T>)`.
//!
//! The scenarios themselves live in `tests/tests/scenarios/`, the demo in
//! `tests/examples/demo.rs`. Everything needs `redis-server` on PATH
//! (`apt-get install redis-server`); nothing is mocked.

mod admin;
mod cluster;
mod instances;
mod matrix;
mod rt;
mod rtt;
mod server;
pub mod sim;

/// The README's Rust snippets, compiled as doctests exactly as printed
/// (`rust,no_run`: they need a server at the address they name).
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeSnippets;

pub use admin::{Admin, Client};
pub use cluster::{
    ClusterNode, RedisCluster, Role, CLUSTER_ENV, DEFAULT_NODE_TIMEOUT, SETTLE_TIMEOUT, SLOTS,
};
pub use instances::{RedisInstances, INSTANCES_ENV, SHARED_INSTANCES};
pub use matrix::{
    error_kind, lock_keys, run, run_with_timeout, Ctx, Mode, Variant, EXTEND_INTERVAL,
    SCENARIO_TIMEOUT, VALIDITY,
};
pub use rt::{GlommioRt, SmolRt, Task, TestRt, TokioRt};
pub use rtt::{Rtt, HEADROOM, RTT_SAMPLES};
pub use server::{free_port, is_installed, RedisServer, StartError, INSTALL_HINT};

/// What a scenario file needs, in one `use`.
pub mod prelude {
    pub use crate::{
        assert_err, lock_keys, matrix, Admin, Ctx, GlommioRt, Mode, RedisServer, Rtt, SmolRt, Task,
        TestRt, TokioRt, Variant, EXTEND_INTERVAL, VALIDITY,
    };
    pub use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
    pub use std::sync::Arc;
    pub use std::time::{Duration, Instant};
    pub use tracklock::{ConfigError, Error, Guard, Locker, LostReason, NoLoop, Options};
}
