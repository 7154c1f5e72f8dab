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
    /// TTL written on every key. Default 5 s.
    pub validity: Duration,
    /// Period of automatic extension. `None` means `validity / 2`.
    pub extend_interval: Option<Duration>,
    /// How long one key's attempt may take; also the poll period with
    /// client-side caching off. Default 20 ms.
    pub try_next_after: Duration,
    /// Bound on the relative clock-rate error between client and server,
    /// in parts per million. Default 10 000 (1 %).
    pub drift_ppm: u32,
    /// Safety margin taken off every lease. Default 5 ms.
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
    /// long again closes the connection. Default 1 s.
    pub ping_interval: Duration,
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
            local_handoff: 0,
        }
    }
}

/// A configuration value that cannot work, naming the option.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// `key_majority` is 0.
    MajorityZero,
    /// `key_majority` above [`MAX_MAJORITY`].
    MajorityTooLarge(u8),
    /// `validity` is zero or below one millisecond.
    ValidityTooShort,
    /// `validity` does not fit a Redis millisecond TTL.
    ValidityTooLong,
    /// `extend_interval` is zero or not below `validity`.
    ExtendInterval,
    /// `try_next_after` is zero or not below `validity`.
    TryNextAfter,
    /// `drift_ppm` must be below 500 000 (50 %).
    Drift,
    /// `validity` after drift and margin leaves no lease at all.
    MarginTooLarge,
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
    /// `ping_interval` is zero.
    PingInterval,
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
            ConfigError::ValidityTooLong => f.write_str("validity does not fit a Redis TTL"),
            ConfigError::ExtendInterval => {
                f.write_str("extend_interval must be non-zero and shorter than validity")
            }
            ConfigError::TryNextAfter => {
                f.write_str("try_next_after must be non-zero and shorter than validity")
            }
            ConfigError::Drift => f.write_str("drift must be below 50%"),
            ConfigError::MarginTooLarge => {
                f.write_str("margin (plus drift) leaves no lease within validity")
            }
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
            ConfigError::PingInterval => f.write_str("ping_interval must be non-zero"),
            ConfigError::EmptyName => f.write_str("lock name must not be empty"),
            ConfigError::TooLong => f.write_str("name or prefix exceeds the configured capacity"),
        }
    }
}

impl core::error::Error for ConfigError {}

impl Config {
    /// Number of keys per lock, `2m - 1`.
    pub fn key_count(&self) -> usize {
        usize::from(self.key_majority) * 2 - 1
    }

    /// The effective extend interval.
    pub fn effective_extend_interval(&self) -> Duration {
        self.extend_interval.unwrap_or(self.validity / 2)
    }

    /// Number of nodes the engine manages.
    pub fn node_count(&self) -> usize {
        match self.topology {
            Topology::Single => 1,
            Topology::Instances(n) | Topology::Cluster(n) => usize::from(n),
        }
    }

    /// Checks every option; the first problem found is returned.
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
        let ext = self.effective_extend_interval();
        if ext.is_zero() || ext >= self.validity {
            return Err(ConfigError::ExtendInterval);
        }
        if self.try_next_after.is_zero() || self.try_next_after >= self.validity {
            return Err(ConfigError::TryNextAfter);
        }
        if self.drift_ppm >= 500_000 {
            return Err(ConfigError::Drift);
        }
        if crate::lease::shrink(self.validity, self.drift_ppm) <= self.margin {
            return Err(ConfigError::MarginTooLarge);
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
        if self.ping_interval.is_zero() {
            return Err(ConfigError::PingInterval);
        }
        Ok(())
    }
}
