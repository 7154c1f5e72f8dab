//! Why a [`Config`] cannot work.

use core::fmt;
use core::time::Duration;

use super::Config;
use crate::keys::MAX_MAJORITY;

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
    /// More nodes than the engine can manage
    /// ([`crate::capacity::NODES`] without `alloc`, 65 535 with it).
    TooManyNodes,
    /// [`crate::Engine::set_node_address`] for a node the engine does not
    /// have.
    NoSuchNode,
    /// A text (a host name) longer than the no-alloc build stores
    /// ([`crate::capacity::TEXT`]).
    TextTooLong,
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
            ConfigError::TooManyNodes => f.write_str("more nodes than the engine can manage"),
            ConfigError::NoSuchNode => f.write_str("no such node"),
            ConfigError::TextTooLong => {
                f.write_str("a text is longer than the no-alloc build stores (capacity::TEXT)")
            }
        }
    }
}

impl core::error::Error for ConfigError {}
