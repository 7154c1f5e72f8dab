//! The bounds of a [`Config`], the values derived from it, and their check.

use core::time::Duration;

use super::{Config, ConfigError, Topology};
use crate::keys::MAX_MAJORITY;

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

    /// Default [`Config::handshake_timeout`] (and runtime connect timeout,
    /// and a firmware device's handshake bound): 5 s.
    pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

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
