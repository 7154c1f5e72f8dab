//! Locker configuration: the [`Config`] type, its accessors, and the
//! enums its options take. Bounds and validation are in `validate`, the
//! errors in `error`.

use core::fmt;
use core::time::Duration;

use crate::storage::Text;

mod error;
mod validate;

pub use error::ConfigError;

/// Whether `CLIENT TRACKING` is switched on with `NOLOOP`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NoLoop {
    /// On when the server's `HELLO` reply reports version >= 7.0.5.
    #[default]
    Auto,
    /// Always send `NOLOOP`.
    On,
    /// Never send `NOLOOP`: own writes echo back as invalidations.
    Off,
}

/// How key lifetimes are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TtlMode {
    /// `PX` / `PEXPIRE`: independent of the client's and server's wall clocks.
    #[default]
    Relative,
    /// `PXAT` / `PEXPIREAT` from the caller-provided wall clock, as Go's
    /// `rueidislock` does by default. Needs [`crate::Engine::set_unix_time`].
    Absolute,
}

/// Which nodes hold the keys of a lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Topology {
    /// One Redis node: every key lives on node 0.
    #[default]
    Single,
    /// Independent standalone instances: key `i` lives on node `i mod n`.
    Instances(u16),
    /// A Redis Cluster reached through this many seed nodes (node ids
    /// `0..n`, addresses given with [`crate::Engine::set_node_address`]).
    /// Each key goes to the master owning its hash slot; masters the seeds
    /// do not cover are added at run time ([`crate::Event::NodeAdded`]).
    Cluster(u16),
}

/// Everything the engine needs to know about one locker.
///
/// Build it from [`Config::default`] with the `with_*` setters, read it with
/// the getters of the same names; [`Config::validate`] checks it (the engine
/// validates again on construction, so a bad value is an error there, never
/// a panic later). Setters store what they are given: bounds are only
/// checked by `validate`.
///
/// ```
/// use core::time::Duration;
/// use tracklock_core::{Config, Text, Topology};
///
/// let config = Config::default()
///     .with_topology(Topology::Instances(3))
///     .with_validity(Duration::from_secs(10))
///     .with_prefix(Text::new("app:locks").expect("fits"));
/// assert_eq!(config.validate(), Ok(()));
/// assert_eq!(config.key_count(), 3);
/// assert_eq!(config.prefix(), "app:locks");
/// ```
#[derive(Clone)]
pub struct Config {
    pub(crate) prefix: Text,
    pub(crate) key_majority: u8,
    pub(crate) validity: Duration,
    pub(crate) extend_interval: Option<Duration>,
    pub(crate) try_next_after: Duration,
    pub(crate) drift_ppm: u32,
    pub(crate) margin: Duration,
    pub(crate) noloop: NoLoop,
    pub(crate) client_caching: bool,
    pub(crate) ttl_mode: TtlMode,
    pub(crate) topology: Topology,
    pub(crate) username: Option<Text>,
    pub(crate) password: Option<Text>,
    pub(crate) client_name: Option<Text>,
    pub(crate) database: u32,
    pub(crate) ping_interval: Duration,
    pub(crate) handshake_timeout: Duration,
    pub(crate) local_handoff: u8,
    pub(crate) tls_ports: bool,
    pub(crate) fencing: bool,
    pub(crate) follow_failover: bool,
    pub(crate) fair: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            prefix: Text::from_str_truncated("rueidislock"),
            key_majority: 2,
            validity: Duration::from_secs(5),
            extend_interval: None,
            try_next_after: Duration::from_millis(20),
            drift_ppm: 10_000,
            margin: Duration::from_millis(5),
            noloop: NoLoop::Auto,
            client_caching: true,
            ttl_mode: TtlMode::Relative,
            topology: Topology::Single,
            username: None,
            password: None,
            client_name: None,
            database: 0,
            ping_interval: Duration::from_secs(1),
            handshake_timeout: Config::DEFAULT_HANDSHAKE_TIMEOUT,
            local_handoff: 0,
            tls_ports: false,
            fencing: false,
            follow_failover: false,
            fair: false,
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("prefix", &self.prefix)
            .field("key_majority", &self.key_majority)
            .field("validity", &self.validity)
            .field("extend_interval", &self.extend_interval)
            .field("try_next_after", &self.try_next_after)
            .field("drift_ppm", &self.drift_ppm)
            .field("margin", &self.margin)
            .field("noloop", &self.noloop)
            .field("client_caching", &self.client_caching)
            .field("ttl_mode", &self.ttl_mode)
            .field("topology", &self.topology)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("client_name", &self.client_name)
            .field("database", &self.database)
            .field("ping_interval", &self.ping_interval)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("local_handoff", &self.local_handoff)
            .field("tls_ports", &self.tls_ports)
            .field("fencing", &self.fencing)
            .field("follow_failover", &self.follow_failover)
            .field("fair", &self.fair)
            .finish()
    }
}

/// A getter and a `with_*` setter per option, documented once.
macro_rules! options {
    ($(
        $(#[$doc:meta])*
        $name:ident, $with:ident: $ty:ty;
    )*) => {
        impl Config {
            $(
                $(#[$doc])*
                pub fn $name(&self) -> $ty {
                    self.$name
                }

                #[doc = concat!("Sets [`Config::", stringify!($name), "`].")]
                #[must_use]
                pub fn $with(mut self, value: $ty) -> Self {
                    self.$name = value;
                    self
                }
            )*
        }
    };
}

options! {
    /// `m`: a lock is held while `m` of its `2m-1` keys are held. Default
    /// 2; from 1 to [`crate::MAX_MAJORITY`].
    key_majority, with_key_majority: u8;
    /// TTL written on every key. Default 5 s; from 1 ms to `2^62` ms (it
    /// must fit a Redis TTL), and long enough that the lease left after
    /// drift and margin is at least [`Config::MIN_LEASE`].
    validity, with_validity: Duration;
    /// Period of automatic extension; `None` (the default) means
    /// `validity / 2`. At least [`Config::MIN_EXTEND_INTERVAL`] and shorter
    /// than the lease (validity after drift and margin), or locks expire
    /// before their first extension.
    extend_interval, with_extend_interval: Option<Duration>;
    /// The poll period with client-side caching off, the pace of retries
    /// after a contended attempt, and the first step of the backoff after a
    /// failed one. Not an attempt timeout: attempts end with their replies.
    /// Default 20 ms; at least [`Config::MIN_TRY_NEXT_AFTER`] and shorter
    /// than `validity`.
    try_next_after, with_try_next_after: Duration;
    /// Bound on the relative clock-rate error between client and server,
    /// in parts per million. Default 10 000 (1 %); below 500 000.
    drift_ppm, with_drift_ppm: u32;
    /// Safety margin taken off every lease (scheduling pauses). Default
    /// 5 ms; the lease left must be at least [`Config::MIN_LEASE`].
    margin, with_margin: Duration;
    /// Whether `CLIENT TRACKING` uses `NOLOOP`. Default [`NoLoop::Auto`].
    noloop, with_noloop: NoLoop;
    /// Client-side caching (tracking): waiters are woken by invalidations
    /// instead of polling every `try_next_after`. Default true.
    client_caching, with_client_caching: bool;
    /// How TTLs are written. Default [`TtlMode::Relative`].
    ttl_mode, with_ttl_mode: TtlMode;
    /// Which nodes hold the keys. Default [`Topology::Single`].
    topology, with_topology: Topology;
    /// Database selected after the handshake. Default 0 (the only one a
    /// Redis Cluster has).
    database, with_database: u32;
    /// An idle connection is pinged after this long; a ping unanswered for
    /// as long again closes the connection. Default 1 s; at least
    /// [`Config::MIN_PING_INTERVAL`]; a huge value saturates (never
    /// pinged).
    ping_interval, with_ping_interval: Duration;
    /// A connection still in its handshake (`HELLO`, `SELECT`, ...) is
    /// closed with [`crate::NodeError::Unresponsive`] once this long passed
    /// since it opened or since its last reply bytes. Default
    /// [`Config::DEFAULT_HANDSHAKE_TIMEOUT`]; at least
    /// [`Config::MIN_HANDSHAKE_TIMEOUT`]; a huge value saturates (never
    /// closed). Runtimes set it from their connect timeout and bound TCP
    /// connect plus handshake themselves.
    handshake_timeout, with_handshake_timeout: Duration;
    /// Local hand-off: when a request of this locker waits for a name that
    /// is being unlocked, the held keys pass straight to it (no server round
    /// trip) up to this many consecutive times, then the lock is released to
    /// Redis so other lockers compete. 0 (the default) turns it off.
    local_handoff, with_local_handoff: u8;
    /// The connections use TLS (the transport's business; the engine only
    /// reads topology replies for it): cluster nodes discovered from
    /// `CLUSTER SHARDS` are dialled at their `tls-port` (the `port` field
    /// of a node started with `tls-cluster yes` is its plain port, if it
    /// has one). A node listed without a `tls-port` is dialled at its
    /// `port`. `CLUSTER SLOTS` and redirections need nothing: a TLS client
    /// is told TLS ports there. Default false.
    tls_ports, with_tls_ports: bool;
    /// Fencing tokens (see [`crate::fence`]): every granted lock gets a
    /// token ([`crate::Engine::token`]) larger than that of every holder
    /// granted before its acquisition began. Costs one more round trip per
    /// acquisition and one counter key per lock key (never expiring).
    /// Fenced locks are never handed off locally. Default false: the wire
    /// traffic is then exactly that of Go's `rueidislock`.
    fencing, with_fencing: bool;
    /// The single node's address is resolved anew at every connection (Redis
    /// Sentinel), so a `READONLY` reply or a replica at the handshake means
    /// a failover is under way, not a misconfiguration: the connection is
    /// dropped (what was in flight on it is in doubt, holders re-verify
    /// their keys on the next connection) and requests wait for the
    /// reconnection instead of failing with the refusal. Default false.
    follow_failover, with_follow_failover: bool;
    /// Fairness across lockers: after this locker releases a name to Redis,
    /// its own next attempt on that name (a waiting `Wait` request, or one
    /// made right after) waits two round trips from the unlock: the
    /// release's own and one more, so other lockers, woken by the
    /// release's invalidation, reach the server first. The round trip is
    /// the engine's smoothed measure of its key replies per node (the
    /// slowest node of the lock), capped at `try_next_after`. Without it
    /// the releaser's next `SET` travels right behind its own release and
    /// usually wins again. Local hand-offs are not releases to Redis:
    /// [`Config::local_handoff`] keeps its budget, and the pause follows
    /// the release that ends it. `try_lock` and `force_lock` are never
    /// delayed. The pause lives with the name's entry, so it is forgotten
    /// once no request of this locker has the name. Costs up to two round
    /// trips per re-acquisition by the same locker; nothing on the wire.
    /// Default false.
    fair, with_fair: bool;
}

impl Config {
    /// Key prefix; keys are `{prefix}:{i}:{name}`. Default `rueidislock`
    /// (Go `rueidislock`'s). Not empty, and see
    /// [`ConfigError::AmbiguousPrefix`] for the segments it may have.
    pub fn prefix(&self) -> &str {
        self.prefix.as_str()
    }

    /// Sets [`Config::prefix`].
    #[must_use]
    pub fn with_prefix(mut self, prefix: Text) -> Self {
        self.prefix = prefix;
        self
    }

    /// `AUTH` user name (ACL); needs a password. Default none.
    pub fn username(&self) -> Option<&str> {
        self.username.as_ref().map(Text::as_str)
    }

    /// Sets [`Config::username`].
    #[must_use]
    pub fn with_username(mut self, username: Option<Text>) -> Self {
        self.username = username;
        self
    }

    /// `AUTH` password (of the `default` user unless a user name is set).
    /// Default none. [`Config`]'s `Debug` does not show it.
    pub fn password(&self) -> Option<&str> {
        self.password.as_ref().map(Text::as_str)
    }

    /// Sets [`Config::password`].
    #[must_use]
    pub fn with_password(mut self, password: Option<Text>) -> Self {
        self.password = password;
        self
    }

    /// Connection name sent with `HELLO ... SETNAME`. Default none.
    pub fn client_name(&self) -> Option<&str> {
        self.client_name.as_ref().map(Text::as_str)
    }

    /// Sets [`Config::client_name`].
    #[must_use]
    pub fn with_client_name(mut self, client_name: Option<Text>) -> Self {
        self.client_name = client_name;
        self
    }
}
