//! The test kit of tracklock, shared by every crate's tests, the benches
//! and the demo. Standard library only: no async runtime, no Redis client
//! crate, nothing of tracklock (so it can judge what the lock wrote).
//!
//! - [`RedisServer`]: the one `redis-server` starter — a throwaway server on a
//!   free loopback port (no persistence, own directory; killed on drop;
//!   restartable, freezable), with any extra configuration (`--requirepass`,
//!   `--maxmemory-policy`, `--replicaof`, …).
//! - [`RedisCluster`]: a real Redis Cluster of N masters and R replicas
//!   each, formed and settled (failovers, restarts, slot migrations,
//!   divergent replicas); [`RedisInstances`]: N independent servers;
//!   [`RedisSentinel`]: a master, a replica and three sentinels, with
//!   forced and real failovers. Both
//!   have a `shared()` form for non-destructive tests (the servers named by
//!   [`CLUSTER_ENV`] / [`INSTANCES_ENV`], or one private set per process).
//! - [`Admin`]: an independent admin connection ([`resp`], a small sync
//!   RESP2 client over `std::net::TcpStream`, whose reader the simulator's
//!   Redis uses too).
//! - [`TlsCerts`]: a throwaway CA and certificates (made with the `openssl`
//!   tool) for TLS servers ([`RedisServer::try_start_tls`],
//!   [`RedisCluster::try_start_tls`]).
//! - [`alloc::Counting`]: the counting global allocator.
//! - [`hostile`]: random RESP3 frames and their mutations, for the core
//!   reader's tests and the simulator's mangling node.
//! - [`Rtt`]: round trips measured now, for timing bounds that hold on a
//!   busy machine; [`lock_keys`] and [`fresh`] names; [`edge_durations`]
//!   for the settings tests.
//!
//! Everything that starts a server needs `redis-server` on PATH
//! ([`INSTALL_HINT`]).

mod admin;
pub mod alloc;
mod cluster;
mod durations;
pub mod hostile;
mod instances;
mod keys;
pub mod offload;
pub mod resp;
mod rtt;
mod sentinel;
mod server;
mod tls;

pub use admin::{Admin, Client};
pub use cluster::{
    ClusterNode, RedisCluster, Role, CLUSTER_ENV, DEFAULT_NODE_TIMEOUT, SETTLE_TIMEOUT, SLOTS,
};
pub use durations::edge_durations;
pub use instances::{RedisInstances, INSTANCES_ENV, SHARED_INSTANCES};
pub use keys::{default_keys, fresh, lock_keys};
pub use rtt::{timer_lateness, Rtt, HEADROOM, RTT_SAMPLES};
pub use sentinel::{RedisSentinel, SentinelSetup, FAILOVER_TIMEOUT, SENTINEL_DOWN_AFTER};
pub use server::{free_port, is_installed, version, RedisServer, StartError, INSTALL_HINT};
pub use tls::TlsCerts;
