//! Locker configuration and its validation.

use core::fmt;
use core::time::Duration;

use crate::keys::MAX_MAJORITY;
use crate::storage::Text;

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

/// Everything the engine needs to know about one locker. Build it with
/// [`Config::default`] and the setters, then [`Config::validate`] (the engine
/// validates again on construction).
#[derive(Debug, Clone)]
pub struct Config {
    /// Key prefix; keys are `{prefix}:{i}:{name}`. Default `rueidislock`.
    pub prefix: Text,
    /// `m`: a lock is held while `m` of `2m-1` keys are held. Default 2.
    pub key_majority: u8,
    /// TTL written on every key. Default 5 s; from 1 ms to `2^62` ms (it
    /// must fit a Redis TTL), and long enough that the lease left after
    /// drift and margin is at least [`Config::MIN_LEASE`].
    pub validity: Duration,
    /// Period of automatic extension. `None` means `validity / 2`. At least
    /// [`Config::MIN_EXTEND_INTERVAL`] and shorter than the lease (validity
    /// after drift and margin), or locks expire before their first
    /// extension.
    pub extend_interval: Option<Duration>,
    /// The poll period with client-side caching off, the pace of retries
    /// after a contended attempt, and the first step of the backoff after a
    /// failed one. Not an attempt timeout: attempts end with their replies.
    /// Default 20 ms.
    pub try_next_after: Duration,
    /// Bound on the relative clock-rate error between client and server,
    /// in parts per million. Default 10 000 (1 %).
    pub drift_ppm: u32,
    /// Safety margin taken off every lease. Default 5 ms; the lease left
    /// must be at least [`Config::MIN_LEASE`].
    pub margin: Duration,
    /// `NOLOOP` choice. Default [`NoLoop::Auto`].
    pub noloop: NoLoop,
    /// Client-side caching (tracking) on. Default true.
    pub client_caching: bool,
    /// TTL writing mode. Default [`TtlMode::Relative`].
    pub ttl_mode: TtlMode,
    /// Which nodes hold the keys.
    pub topology: Topology,
    /// `AUTH` username (needs a password).
    pub username: Option<Text>,
    /// `AUTH` password.
    pub password: Option<Text>,
    /// Connection name sent with `HELLO ... SETNAME`.
    pub client_name: Option<Text>,
    /// Database selected after the handshake.
    pub database: u32,
    /// An idle connection is pinged after this long; a ping unanswered for as
    /// long again closes the connection. Default 1 s; at least
    /// [`Config::MIN_PING_INTERVAL`]; any larger value works (a huge one
    /// saturates: the connection is then never pinged).
    pub ping_interval: Duration,
    /// A connection still in its handshake (`HELLO`, `SELECT`, ...) is closed
    /// with [`crate::NodeError::Unresponsive`] once this long passed since it
    /// opened or since its last reply bytes. Default 5 s; at least
    /// [`Config::MIN_HANDSHAKE_TIMEOUT`]; a huge value saturates (never
    /// closed). Runtimes set it from their connect timeout and bound TCP
    /// connect plus handshake themselves.
    pub handshake_timeout: Duration,
    /// Local hand-off: when a request of this locker waits for a name that is
    /// being unlocked, pass the held keys straight to it (no server round
    /// trip) up to this many consecutive times, then release to Redis and let
    /// other lockers compete. 0 (the default) turns it off.
    pub local_handoff: u8,
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
            handshake_timeout: Duration::from_secs(5),
            local_handoff: 0,
        }
    }
}

/// A configuration value that cannot work, naming the option (and the
/// bound it breaks).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// `key_majority` is 0.
    MajorityZero,
    /// `key_majority` above [`MAX_MAJORITY`].
    MajorityTooLarge(u8),
    /// `validity` is zero or below one millisecond.
    ValidityTooShort,
    /// `validity` above `2^62` ms: it does not fit a Redis millisecond TTL
    /// (with room for an absolute one).
    ValidityTooLong,
    /// `extend_interval` is below [`Config::MIN_EXTEND_INTERVAL`] or not
    /// below `validity`.
    ExtendInterval,
    /// `extend_interval` (or its default, `validity / 2`) is not shorter than
    /// the lease left of `validity` after drift and margin: every lock would
    /// expire before its first extension.
    ExtendAfterLease {
        /// The effective extend interval.
        extend_interval: Duration,
        /// The lease: `validity` after drift, minus `margin`.
        lease: Duration,
    },
    /// `try_next_after` is below [`Config::MIN_TRY_NEXT_AFTER`] or not
    /// below `validity`.
    TryNextAfter,
    /// `drift_ppm` must be below 500 000 (50 %).
    Drift,
    /// `validity` after drift and margin leaves no lease at all.
    MarginTooLarge,
    /// `validity` after drift and margin leaves a lease shorter than
    /// [`Config::MIN_LEASE`].
    LeaseTooShort {
        /// The lease: `validity` after drift, minus `margin`.
        lease: Duration,
    },
    /// `prefix` is empty.
    EmptyPrefix,
    /// `prefix` ends with `:` or has a `:`-separated segment other than the
    /// first made only of ASCII digits (like `a:0:b` or `a:12`). Such a
    /// prefix can produce the same key as another prefix (`a:0:b:0:x` is
    /// also key 0 of name `b:0:x` under prefix `a`); with the rule, two
    /// different valid prefixes never produce the same key
    /// `{prefix}:{i}:{name}`, whatever the names.
    AmbiguousPrefix,
    /// A password-less username.
    UsernameWithoutPassword,
    /// `Topology::Instances(0)`.
    NoInstances,
    /// `Topology::Cluster(0)`: no seed node to discover the cluster from.
    NoSeeds,
    /// A database other than 0 with a Redis Cluster (it only has db 0).
    ClusterDatabase,
    /// `ping_interval` is below [`Config::MIN_PING_INTERVAL`].
    PingInterval,
    /// `handshake_timeout` is below [`Config::MIN_HANDSHAKE_TIMEOUT`].
    HandshakeTimeout,
    /// A runtime's connect timeout (TCP connect plus handshake, which sets
    /// `handshake_timeout`) is below [`Config::MIN_HANDSHAKE_TIMEOUT`].
    /// Reported by runtimes (the `tracklock` crate's
    /// `Options::connect_timeout`), never by [`Config::validate`].
    ConnectTimeout,
    /// A lock name is empty.
    EmptyName,
    /// A lock name or the prefix does not fit the no-alloc capacity.
    TooLong,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::MajorityZero => f.write_str("key_majority must be at least 1"),
            ConfigError::MajorityTooLarge(m) => {
                write!(f, "key_majority {m} is above the maximum {MAX_MAJORITY}")
            }
            ConfigError::ValidityTooShort => f.write_str("validity must be at least 1 ms"),
            ConfigError::ValidityTooLong => f.write_str(
                "validity must be at most 2^62 ms (it must fit a Redis millisecond TTL)",
            ),
            ConfigError::ExtendInterval => write!(
                f,
                "extend_interval must be at least {:?} and shorter than validity",
                Config::MIN_EXTEND_INTERVAL
            ),
            ConfigError::ExtendAfterLease {
                extend_interval,
                lease,
            } => write!(
                f,
                "extend_interval {extend_interval:?} (validity / 2 unless set) must be shorter \
                 than the lease of {lease:?} left of validity after drift and margin \
                 (locks would expire before their first extension)"
            ),
            ConfigError::TryNextAfter => write!(
                f,
                "try_next_after must be at least {:?} and shorter than validity",
                Config::MIN_TRY_NEXT_AFTER
            ),
            ConfigError::Drift => f.write_str("drift must be at least 0 and below 50%"),
            ConfigError::MarginTooLarge => {
                f.write_str("margin (plus drift) leaves no lease within validity")
            }
            ConfigError::LeaseTooShort { lease } => write!(
                f,
                "validity after drift and margin leaves a lease of {lease:?}, below the \
                 minimum {:?} (raise validity or lower margin or drift)",
                Config::MIN_LEASE
            ),
            ConfigError::EmptyPrefix => f.write_str("prefix must not be empty"),
            ConfigError::AmbiguousPrefix => f.write_str(
                "prefix must not end with ':' nor have a ':'-separated segment other than the \
                 first made only of digits (like \"a:0:b\"): such a prefix can produce the same \
                 key as another prefix",
            ),
            ConfigError::UsernameWithoutPassword => {
                f.write_str("username is set but password is not")
            }
            ConfigError::NoInstances => f.write_str("instances topology needs at least one node"),
            ConfigError::NoSeeds => f.write_str("cluster topology needs at least one seed node"),
            ConfigError::ClusterDatabase => {
                f.write_str("a Redis Cluster has only database 0; database must be 0")
            }
            ConfigError::PingInterval => write!(
                f,
                "ping_interval must be at least {:?}",
                Config::MIN_PING_INTERVAL
            ),
            ConfigError::HandshakeTimeout => write!(
                f,
                "handshake_timeout must be at least {:?}",
                Config::MIN_HANDSHAKE_TIMEOUT
            ),
            ConfigError::ConnectTimeout => write!(
                f,
                "connect_timeout must be at least {:?}",
                Config::MIN_HANDSHAKE_TIMEOUT
            ),
            ConfigError::EmptyName => f.write_str("lock name must not be empty"),
            ConfigError::TooLong => f.write_str("name or prefix exceeds the configured capacity"),
        }
    }
}

impl core::error::Error for ConfigError {}

impl Config {
    /// Shortest [`Config::ping_interval`]: 10 ms. It is also how long a ping
    /// may stay unanswered, so it must exceed a round trip plus the
    /// scheduling delays of a loaded host; below that a healthy server is
    /// dropped and reconnected over and over (at 1 ns every connection was).
    pub const MIN_PING_INTERVAL: Duration = Duration::from_millis(10);

    /// Shortest effective [`Config::extend_interval`]: 1 ms. Redis TTLs have
    /// millisecond resolution, so extending more often cannot move a key's
    /// expiry any further; it only adds load (one command per key and
    /// interval: at 1 ms with the default majority, 3 000 commands per second
    /// for one held lock, already far beyond any use; at 1 ns the engine
    /// sent about 180 000 per second).
    pub const MIN_EXTEND_INTERVAL: Duration = Duration::from_millis(1);

    /// Shortest [`Config::try_next_after`] (which must also be shorter than
    /// `validity`): 1 ms, the resolution of Redis TTLs and of the runtimes'
    /// timers. It paces polling with client-side caching off and retries
    /// after a failed attempt: below it they become a busy loop.
    pub const MIN_TRY_NEXT_AFTER: Duration = Duration::from_millis(1);

    /// Shortest lease accepted: what is left of [`Config::validity`] after
    /// drift and [`Config::margin`], 10 ms. A lock only counts as held if a
    /// majority of its keys is acquired, replies in hand, before the lease
    /// (counted from when the requests were sent) runs out, and an
    /// extension must likewise be answered within it. That takes a round
    /// trip plus task scheduling; with a lease of 100 µs it fails on nearly
    /// every attempt on a loaded host or over any network, so `lock()` may
    /// never return. 10 ms leaves room for a few milliseconds of round trip
    /// and scheduling (ten ticks of the 1 ms timer and TTL resolution); real
    /// deployments want far more (the default lease is about 4.9 s).
    pub const MIN_LEASE: Duration = Duration::from_millis(10);

    /// Shortest [`Config::handshake_timeout`] (and runtime connect timeout):
    /// 1 ms. A handshake is at least one round trip (`HELLO`); below a
    /// millisecond it fails on any network and on a loaded host.
    pub const MIN_HANDSHAKE_TIMEOUT: Duration = Duration::from_millis(1);

    /// Number of keys per lock, `2m - 1` (0 for the invalid majority 0).
    pub fn key_count(&self) -> usize {
        (usize::from(self.key_majority) * 2).saturating_sub(1)
    }

    /// The effective extend interval.
    pub fn effective_extend_interval(&self) -> Duration {
        self.extend_interval.unwrap_or(self.validity / 2)
    }

    /// The lease: how long a key written with TTL `validity` is certainly
    /// held on the local clock, `validity` after drift minus `margin`
    /// (zero when the margin eats it all).
    pub fn lease(&self) -> Duration {
        crate::lease::shrink(self.validity, self.drift_ppm).saturating_sub(self.margin)
    }

    /// Number of nodes the engine manages.
    pub fn node_count(&self) -> usize {
        match self.topology {
            Topology::Single => 1,
            Topology::Instances(n) | Topology::Cluster(n) => usize::from(n),
        }
    }

    /// Checks every option; the first problem found is returned.
    ///
    /// Every duration has a lower bound (see the `MIN_*` constants and the
    /// field docs); upper bounds exist only where a larger value cannot
    /// work: `validity` must fit a Redis TTL and `extend_interval` and
    /// `try_next_after` must be shorter than it. Larger values, up to
    /// [`Duration::MAX`], are accepted and saturate in the engine's
    /// arithmetic (a deadline beyond the range of [`crate::Instant`] is the
    /// far future), never overflow.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.key_majority == 0 {
            return Err(ConfigError::MajorityZero);
        }
        if usize::from(self.key_majority) > MAX_MAJORITY {
            return Err(ConfigError::MajorityTooLarge(self.key_majority));
        }
        if self.validity < Duration::from_millis(1) {
            return Err(ConfigError::ValidityTooShort);
        }
        if self.validity.as_millis() > i64::MAX as u128 / 2 {
            return Err(ConfigError::ValidityTooLong);
        }
        if self.drift_ppm >= 500_000 {
            return Err(ConfigError::Drift);
        }
        if crate::lease::shrink(self.validity, self.drift_ppm) <= self.margin {
            return Err(ConfigError::MarginTooLarge);
        }
        let lease = self.lease();
        if lease < Self::MIN_LEASE {
            return Err(ConfigError::LeaseTooShort { lease });
        }
        let ext = self.effective_extend_interval();
        if ext < Self::MIN_EXTEND_INTERVAL || ext >= self.validity {
            return Err(ConfigError::ExtendInterval);
        }
        if ext >= lease {
            return Err(ConfigError::ExtendAfterLease {
                extend_interval: ext,
                lease,
            });
        }
        if self.try_next_after < Self::MIN_TRY_NEXT_AFTER || self.try_next_after >= self.validity {
            return Err(ConfigError::TryNextAfter);
        }
        crate::keys::validate_prefix(self.prefix.as_str())?;
        if self.username.is_some() && self.password.is_none() {
            return Err(ConfigError::UsernameWithoutPassword);
        }
        if self.topology == Topology::Instances(0) {
            return Err(ConfigError::NoInstances);
        }
        if self.topology == Topology::Cluster(0) {
            return Err(ConfigError::NoSeeds);
        }
        if matches!(self.topology, Topology::Cluster(_)) && self.database != 0 {
            return Err(ConfigError::ClusterDatabase);
        }
        if self.ping_interval < Self::MIN_PING_INTERVAL {
            return Err(ConfigError::PingInterval);
        }
        if self.handshake_timeout < Self::MIN_HANDSHAKE_TIMEOUT {
            return Err(ConfigError::HandshakeTimeout);
        }
        Ok(())
    }
}
