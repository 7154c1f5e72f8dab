//! What the checker knows of the run before it starts: the lock
//! configuration, the names, which checks apply, and the time bounds
//! derived from them.

use tracklock_core::TtlMode;

use crate::sim::keys::{counter_name, parse_lock_key};
use crate::sim::params::Params;
use crate::sim::server::{EXTEND_PX, EXTEND_PXAT};

pub(super) const MS: u64 = 1_000_000;

/// The engine's largest backoff between attempts (`BACKOFF_MAX`), ns.
pub(crate) const BACKOFF_MAX: u64 = 1_000 * MS;

/// The run's parameters as far as the checks go.
#[derive(Debug)]
pub(crate) struct Rules {
    pub(super) seed: u64,
    pub(super) names: Vec<String>,
    pub(super) prefix: String,
    /// Keys per lock (`n`) and the majority (`m`).
    pub(super) keys: usize,
    pub(super) majority: usize,
    /// Replies of this node are mangled: it may hand a key out twice.
    pub(super) hostile_node: Option<usize>,
    pub(super) lease_checks: bool,
    pub(super) failover_exemption: bool,
    pub(super) client_caching: bool,
    /// The extend script the engine runs.
    pub(super) extend_script: &'static str,
    pub(super) extend_interval: u64,
    pub(super) try_next_after: u64,
    pub(super) validity: u64,
    pub(super) clock_ppm: u64,
    /// The largest one-way latency of any link.
    pub(super) lat_max: u64,
    /// Fencing tokens are on (`Config::fencing`).
    pub(super) fencing: bool,
}

impl Rules {
    pub(crate) fn new(p: &Params, lat_max: u64) -> Rules {
        let c = &p.config;
        Rules {
            seed: p.seed,
            names: p.names.clone(),
            prefix: c.prefix().to_string(),
            keys: c.key_count(),
            majority: usize::from(c.key_majority()),
            hostile_node: p.hostile_node,
            lease_checks: p.lease_checks,
            failover_exemption: p.failover_exemption,
            client_caching: c.client_caching(),
            extend_script: match c.ttl_mode() {
                TtlMode::Relative => EXTEND_PX,
                TtlMode::Absolute => EXTEND_PXAT,
            },
            extend_interval: c.effective_extend_interval().as_nanos() as u64,
            try_next_after: c.try_next_after().as_nanos() as u64,
            validity: c.validity().as_nanos() as u64,
            clock_ppm: p.clock_ppm as u64,
            lat_max,
            fencing: c.fencing(),
        }
    }

    /// `(key index, name)` of a lock key.
    pub(super) fn parse_key(&self, key: &[u8]) -> Option<(usize, usize)> {
        parse_lock_key(&self.prefix, &self.names, key)
    }

    /// True for the fencing counter of a key of one of the names: counters
    /// never expire, so they are no leak.
    pub(super) fn is_counter(&self, key: &[u8]) -> bool {
        self.names
            .iter()
            .any(|name| (0..self.keys).any(|i| counter_name(&self.prefix, i, name) == key))
    }

    /// `i` stretched by the largest rate difference of two clocks.
    fn drifted(&self, i: u64) -> u64 {
        i + i * 2 * self.clock_ppm / 1_000_000
    }

    /// How long a holder may take to learn that its majority was taken:
    /// the invalidation, one round trip (plus one more when a node lost its
    /// script cache, `cold`: `NOSCRIPT`, then `EVAL`), and slack for
    /// processing; without caching, the next periodic extension too.
    pub(super) fn prompt_bound(&self, cold: bool) -> u64 {
        let rtt = (if cold { 5 } else { 3 }) * self.lat_max + 2 * MS;
        if self.client_caching {
            rtt
        } else {
            self.drifted(self.extend_interval) + rtt
        }
    }

    /// How long after a refused extend script the engine's retry may take
    /// to land (see `Checker::tracking_doubtful`).
    pub(super) fn extend_retry_window(&self) -> u64 {
        self.drifted(self.try_next_after) + 3 * self.lat_max + 2 * MS
    }

    /// How long a free name may go with a healthy waiter not acquiring it.
    pub(super) fn liveness_bound(&self) -> u64 {
        let (tna, v) = (self.try_next_after, self.validity);
        4 * tna + v * 4 * self.clock_ppm / 1_000_000 + 10 * self.lat_max + 100 * MS
    }

    /// How long a call may stay pending once nothing is in its way: the
    /// largest backoff, a lease, a few round trips, a reconnect and slack.
    pub(super) fn calls_bound(&self) -> u64 {
        let (tna, v) = (self.try_next_after, self.validity);
        BACKOFF_MAX
            + v
            + v * 4 * self.clock_ppm / 1_000_000
            + 4 * tna
            + 10 * self.lat_max
            + 50 * MS
            + 100 * MS
    }
}
