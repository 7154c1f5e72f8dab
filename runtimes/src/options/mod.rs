//! Locker options: a builder over [`tracklock_core::Config`] plus the mode,
//! the addresses and the connection settings.

use std::fmt;
use std::time::Duration;

use tracklock_core::{Config, ConfigError, NoLoop, Text, Topology, TtlMode};

use crate::addr::cut_host;
use crate::error::AddressError;
use crate::Error;

mod sentinel;
mod url;

pub(crate) use sentinel::SentinelSettings;

/// Which Redis deployment a locker talks to, and so where a lock's keys
/// live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mode {
    /// One standalone server ([`Options::new`]): every key on it.
    Single,
    /// A Redis Cluster reached through seed nodes ([`Options::cluster`]):
    /// each key on the master owning its hash slot; the other masters are
    /// discovered and connected on the fly.
    Cluster,
    /// Independent standalone servers ([`Options::instances`]): key `i` of
    /// a lock on instance `i mod n`, so a lock survives the loss of any
    /// instance whose keys are not needed for its majority.
    Instances,
    /// One master found through Redis Sentinel ([`Options::sentinel`]):
    /// every key on it, like [`Mode::Single`]; the master is asked of the
    /// sentinels at every connection, and failovers are followed.
    Sentinel,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Single => "single",
            Mode::Cluster => "cluster",
            Mode::Instances => "instances",
            Mode::Sentinel => "sentinel",
        })
    }
}

/// How to reach Redis and how locks behave. Build with [`Options::new`]
/// (one server), [`Options::cluster`], [`Options::instances`] or
/// [`Options::from_url`] and the setters; every value is checked when the
/// locker connects (or by [`Options::to_config`]).
///
/// The lock settings are a [`tracklock_core::Config`], which the setters
/// fill in; the mode, the addresses and the connect timeout are the
/// runtime's part. The defaults make a locker mutually exclusive with Go
/// `rueidislock` lockers that use the default prefix and majority.
///
/// ```
/// use std::time::Duration;
/// use tracklock::{Error, Options};
///
/// let options = Options::new("127.0.0.1:6379")
///     .prefix("app:locks")
///     .validity(Duration::from_secs(10))
///     .client_name("billing");
/// assert_eq!(options.to_config()?.validity(), Duration::from_secs(10));
///
/// // Bad values are refused with an error naming the option.
/// let bad = Options::new("127.0.0.1:6379").validity(Duration::ZERO);
/// assert!(matches!(bad.to_config(), Err(Error::Config(_))));
///
/// let from_url = Options::from_url("redis://:secret@127.0.0.1:6379/2")?;
/// assert_eq!(from_url.address(), "127.0.0.1:6379");
/// # Ok::<(), Error>(())
/// ```
#[derive(Clone)]
pub struct Options {
    mode: Mode,
    addrs: Vec<String>,
    /// Every lock setting; its topology is derived from `mode` and `addrs`
    /// by [`Options::to_config`], and its handshake timeout is the connect
    /// timeout.
    config: Config,
    /// TLS, when on.
    #[cfg(feature = "tls")]
    tls: Option<crate::tls::TlsSettings>,
    /// Sentinel mode: the master name and the sentinels' own `AUTH`.
    sentinel: Option<SentinelSettings>,
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `Config`'s `Debug` hides the password.
        let mut f = f.debug_struct("Options");
        f.field("mode", &self.mode)
            .field("addrs", &self.addrs)
            .field("config", &self.config);
        #[cfg(feature = "tls")]
        f.field("tls", &self.tls);
        f.field("sentinel", &self.sentinel);
        f.finish()
    }
}

/// `s` as the engine's text. The runtimes build the core with `alloc`, where
/// a [`Text`] holds any string whole (nothing is truncated).
fn text(s: impl Into<String>) -> Text {
    Text::from_str_truncated(&s.into())
}

/// `drift` (a fraction) in parts per million. A fraction outside
/// `0.0..0.5`, or not a number, maps to a value that
/// [`Config::validate`] refuses with [`ConfigError::Drift`].
fn drift_ppm(drift: f64) -> u32 {
    if drift.is_finite() && (0.0..0.5).contains(&drift) {
        // At most 499 999 by the range check.
        (drift * 1e6).round().min(499_999.0) as u32
    } else {
        u32::MAX
    }
}

impl Options {
    /// Options for the one Redis server at `addr` (`host:port`, IPv6 hosts
    /// in brackets), with every other value at its default.
    pub fn new(addr: impl Into<String>) -> Options {
        Options::with_mode(Mode::Single, vec![addr.into()])
    }

    /// Options for a Redis Cluster reached through `seeds` (`host:port`
    /// each; one reachable seed is enough, more give a choice when some are
    /// down). The masters are learned from the cluster; the database must
    /// stay 0.
    pub fn cluster<I, S>(seeds: I) -> Options
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Options::with_mode(Mode::Cluster, seeds.into_iter().map(Into::into).collect())
    }

    /// Options for independent standalone servers at `addrs` (`host:port`
    /// each): key `i` of a lock lives on `addrs[i mod n]`, so with `n`
    /// instances and the default majority of 2 of 3 keys, a lock survives
    /// the loss of one instance when `n` is 3.
    ///
    /// Checked when connecting: at most `2 * key_majority - 1` instances
    /// (more would hold no key), and, with more than one, no instance may
    /// hold a majority of a lock's keys (two instances never work: the
    /// first would hold `m` of the `2m-1` keys). One instance is accepted
    /// and behaves like [`Options::new`].
    pub fn instances<I, S>(addrs: I) -> Options
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Options::with_mode(Mode::Instances, addrs.into_iter().map(Into::into).collect())
    }

    fn with_mode(mode: Mode, addrs: Vec<String>) -> Options {
        Options {
            mode,
            addrs,
            config: Config::default(),
            #[cfg(feature = "tls")]
            tls: None,
            sentinel: None,
        }
    }

    /// `AUTH` user name (ACL); needs a password too.
    pub fn username(mut self, v: impl Into<String>) -> Self {
        self.config = self.config.with_username(Some(text(v)));
        self
    }

    /// `AUTH` password (with the `default` user unless a user name is set).
    pub fn password(mut self, v: impl Into<String>) -> Self {
        self.config = self.config.with_password(Some(text(v)));
        self
    }

    /// Database selected after the handshake (default 0). Tracking is global
    /// across databases; the key layout is per database. A Redis Cluster has
    /// only database 0.
    pub fn database(mut self, v: u32) -> Self {
        self.config = self.config.with_database(v);
        self
    }

    /// Connection name (`CLIENT SETNAME`, sent with `HELLO`).
    pub fn client_name(mut self, v: impl Into<String>) -> Self {
        self.config = self.config.with_client_name(Some(text(v)));
        self
    }

    /// Key prefix: keys are `{prefix}:{i}:{name}` (default `rueidislock`).
    ///
    /// Checked when connecting: not empty, no trailing `:`, and no
    /// `:`-separated segment other than the first made only of ASCII digits
    /// (`app:locks` and `7:a` pass; `a:0:b`, `a:12` and `a:` are refused
    /// with [`ConfigError::AmbiguousPrefix`]). With that rule two different
    /// prefixes never produce the same key, whatever the lock names: lockers
    /// with different prefixes never contend (`a:0:b` would share key
    /// `a:0:b:0:x` with the name `b:0:x` under prefix `a`).
    pub fn prefix(mut self, v: impl Into<String>) -> Self {
        self.config = self.config.with_prefix(text(v));
        self
    }

    /// `m`: a lock is held while `m` of its `2m-1` keys are held (default 2).
    pub fn key_majority(mut self, v: u8) -> Self {
        self.config = self.config.with_key_majority(v);
        self
    }

    /// TTL written on every key (default 5 s). Checked when connecting: at
    /// most `2^62` ms (a Redis TTL), and long enough that the lease left
    /// after drift and margin is at least 10 ms
    /// ([`Config::MIN_LEASE`](tracklock_core::Config::MIN_LEASE)).
    pub fn validity(mut self, v: Duration) -> Self {
        self.config = self.config.with_validity(v);
        self
    }

    /// Period of automatic extension (default `validity / 2`). Checked when
    /// connecting: at least 1 ms, and shorter than the lease (validity
    /// after drift and margin), or locks would expire before their first
    /// extension.
    pub fn extend_interval(mut self, v: Duration) -> Self {
        self.config = self.config.with_extend_interval(Some(v));
        self
    }

    /// The poll period with client-side caching off, the pace of retries
    /// after a contended attempt, and the first step of the backoff after a
    /// failed one (doubling to 1 s, jittered) (default 20 ms). It does not
    /// bound how long an attempt may take: an attempt ends with its replies,
    /// or with its connection, whose health check (`ping_interval`) finds a
    /// server that stopped answering.
    pub fn try_next_after(mut self, v: Duration) -> Self {
        self.config = self.config.with_try_next_after(v);
        self
    }

    /// Bound on the relative clock-rate error between client and server, as
    /// a fraction (default 0.01, i.e. 1 %; must be in `0.0..0.5`).
    pub fn drift(mut self, v: f64) -> Self {
        self.config = self.config.with_drift_ppm(drift_ppm(v));
        self
    }

    /// Safety margin taken off every lease (default 5 ms). Checked when
    /// connecting: the lease left must be at least 10 ms.
    pub fn margin(mut self, v: Duration) -> Self {
        self.config = self.config.with_margin(v);
        self
    }

    /// Whether tracking uses `NOLOOP` (default [`NoLoop::Auto`]: on for
    /// Redis >= 7.0.5).
    pub fn noloop(mut self, v: NoLoop) -> Self {
        self.config = self.config.with_noloop(v);
        self
    }

    /// Client-side caching (invalidation-driven waiting); turn off for
    /// providers without `CLIENT TRACKING`, waiters then poll every
    /// `try_next_after` (default true).
    pub fn client_caching(mut self, v: bool) -> Self {
        self.config = self.config.with_client_caching(v);
        self
    }

    /// Absolute TTLs (`PXAT`/`PEXPIREAT`, as Go's `rueidislock` writes) from
    /// this machine's wall clock instead of relative ones (default false).
    pub fn absolute_ttl(mut self, v: bool) -> Self {
        self.config = self.config.with_ttl_mode(if v {
            TtlMode::Absolute
        } else {
            TtlMode::Relative
        });
        self
    }

    /// An idle connection is pinged after this long, and dropped when the
    /// ping stays unanswered as long again (default 1 s). Checked when
    /// connecting: at least 10 ms; a huge value saturates (never pinged).
    pub fn ping_interval(mut self, v: Duration) -> Self {
        self.config = self.config.with_ping_interval(v);
        self
    }

    /// Local hand-off (default 0, off): when a task of this locker waits for
    /// a name that is being unlocked, the held keys pass straight to it with
    /// no server round trip (they stay held and extended), at most `max`
    /// consecutive times; then the lock is released to Redis and other
    /// lockers get their chance, so none is starved.
    pub fn local_handoff(mut self, max: u8) -> Self {
        self.config = self.config.with_local_handoff(max);
        self
    }

    /// Fairness across lockers (default off): after this locker releases
    /// a name to Redis, its own next waiting `lock` of that name (a task
    /// already queued or one that asks right after) waits about two round
    /// trips from the unlock (the release's own and one more, as measured
    /// on its connections, at most [`Options::try_next_after`]), so other
    /// lockers woken by the release reach the server first. Without it the
    /// releaser's next `SET` travels right behind its own release and
    /// usually wins again. `try_lock` and `force_lock` are never delayed;
    /// local hand-offs ([`Options::local_handoff`]) are not releases to
    /// Redis and keep their budget. Costs latency on re-acquisition by the
    /// same locker, nothing on the wire.
    pub fn fair(mut self, on: bool) -> Self {
        self.config = self.config.with_fair(on);
        self
    }

    /// Fencing tokens (default off): every guard carries a token
    /// ([`Guard::token`](crate::Guard::token)) larger than that of every
    /// holder of the name granted before its acquisition began, as long as
    /// a majority of the name's counter keys survive. Costs one more round
    /// trip per acquisition (the read of the counters travels with the
    /// `SET NX`; raising them is the extra trip) and one counter key per
    /// lock key that never expires. Fenced locks are never handed off
    /// locally ([`Options::local_handoff`] is ignored for them). Off, the
    /// locker sends exactly what Go's `rueidislock` sends.
    pub fn fencing(mut self, on: bool) -> Self {
        self.config = self.config.with_fencing(on);
        self
    }

    /// Bound on TCP connect plus handshake together, for the first
    /// connection and every reconnection attempt (default 5 s); `connect`
    /// itself returns within it. Checked when connecting: at least 1 ms
    /// ([`ConfigError::ConnectTimeout`]); a huge value, up to
    /// [`Duration::MAX`], saturates (waits for about a century).
    pub fn connect_timeout(mut self, v: Duration) -> Self {
        // The driver bounds TCP connect plus handshake by it; the engine's
        // own handshake bound must not cut it shorter.
        self.config = self.config.with_handshake_timeout(v);
        self
    }

    /// TLS on every connection (feature `tls`), verified against the
    /// platform's root certificates unless a CA is set
    /// ([`Options::tls_ca_file`], [`Options::tls_ca_pem`]); `false` turns
    /// it off again, with every TLS setting. The `rediss://` URL schemes
    /// turn it on. Each connection verifies the host of the address it
    /// dials (a Redis Cluster's discovered nodes included), or
    /// [`Options::tls_server_name`].
    #[cfg(feature = "tls")]
    pub fn tls(mut self, on: bool) -> Self {
        self.tls = on.then(|| self.tls.take().unwrap_or_default());
        self
    }

    #[cfg(feature = "tls")]
    fn tls_mut(&mut self) -> &mut crate::tls::TlsSettings {
        self.tls.get_or_insert_with(Default::default)
    }

    /// Trusts the certificate authorities of the PEM file at `path` (read
    /// when connecting; one or more `CERTIFICATE` sections), instead of the
    /// platform's roots (unless [`Options::tls_platform_roots`] says both).
    /// May be called more than once. Turns TLS on.
    #[cfg(feature = "tls")]
    pub fn tls_ca_file(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.tls_mut().cas.push(crate::tls::Pem::File(path.into()));
        self
    }

    /// Like [`Options::tls_ca_file`], with the PEM text itself.
    #[cfg(feature = "tls")]
    pub fn tls_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.tls_mut().cas.push(crate::tls::Pem::Bytes(pem.into()));
        self
    }

    /// Whether the platform's root certificates are trusted (loaded with
    /// `rustls-native-certs` when connecting). Default: yes, unless a CA is
    /// set. Turns TLS on.
    #[cfg(feature = "tls")]
    pub fn tls_platform_roots(mut self, on: bool) -> Self {
        self.tls_mut().platform_roots = Some(on);
        self
    }

    /// Mutual TLS: presents the certificate chain of the PEM file `cert`
    /// and the private key of the PEM file `key` (PKCS#8, PKCS#1 or SEC1),
    /// for servers with `tls-auth-clients yes`. Read when connecting. Turns
    /// TLS on.
    #[cfg(feature = "tls")]
    pub fn tls_client_cert_files(
        mut self,
        cert: impl Into<std::path::PathBuf>,
        key: impl Into<std::path::PathBuf>,
    ) -> Self {
        self.tls_mut().client = Some((
            crate::tls::Pem::File(cert.into()),
            crate::tls::Pem::File(key.into()),
        ));
        self
    }

    /// Like [`Options::tls_client_cert_files`], with the PEM texts.
    #[cfg(feature = "tls")]
    pub fn tls_client_cert_pem(
        mut self,
        cert: impl Into<Vec<u8>>,
        key: impl Into<Vec<u8>>,
    ) -> Self {
        self.tls_mut().client = Some((
            crate::tls::Pem::Bytes(cert.into()),
            crate::tls::Pem::Bytes(key.into()),
        ));
        self
    }

    /// The name every server's certificate is verified against, instead of
    /// the host of the address dialled: for connecting by IP address to a
    /// server whose certificate names only host names (or a cluster whose
    /// nodes share one certificate). A DNS name or an IP address. Turns
    /// TLS on.
    #[cfg(feature = "tls")]
    pub fn tls_server_name(mut self, name: impl Into<String>) -> Self {
        self.tls_mut().server_name = Some(name.into());
        self
    }

    /// **Dangerous**: accepts any server certificate, whoever signed it and
    /// whatever name it has (the connection is encrypted, but to anyone who
    /// answers). For tests against throwaway servers only; off by default.
    /// Turns TLS on.
    #[cfg(feature = "tls")]
    pub fn danger_accept_invalid_certificates(mut self, yes: bool) -> Self {
        self.tls_mut().danger_accept_invalid = yes;
        self
    }

    /// Whether connections use TLS.
    pub fn is_tls(&self) -> bool {
        #[cfg(feature = "tls")]
        return self.tls.is_some();
        #[cfg(not(feature = "tls"))]
        false
    }

    /// The TLS connector, built from the settings (PEM files read now).
    #[cfg(feature = "tls")]
    pub(crate) fn tls_connector(&self) -> Result<Option<crate::tls::Connector>, Error> {
        self.tls.as_ref().map(|t| t.connector()).transpose()
    }

    /// The first address (the server's in single mode), `host:port`; empty
    /// when the list is empty.
    pub fn address(&self) -> &str {
        self.addrs.first().map_or("", String::as_str)
    }

    /// Every address, in the order given: the server, the cluster seeds,
    /// the instances (instance `i` holds key `i mod n`) or the sentinels.
    pub fn addresses(&self) -> &[String] {
        &self.addrs
    }

    /// The mode chosen by the constructor (or the URL scheme).
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Each address split into host (IPv6 without brackets) and port, after
    /// checking the list against the mode.
    pub(crate) fn endpoints(&self) -> Result<Vec<(String, u16)>, AddressError> {
        if self.addrs.is_empty() {
            return Err(AddressError::Empty);
        }
        if self.addrs.len() > usize::from(u16::MAX) {
            return Err(AddressError::TooMany(self.addrs.len()));
        }
        self.check_sentinel()?;
        if self.mode == Mode::Single && self.addrs.len() > 1 {
            return Err(AddressError::TooMany(self.addrs.len()));
        }
        let mut out: Vec<(String, u16)> = Vec::with_capacity(self.addrs.len());
        for a in &self.addrs {
            let (host, port) = split_addr(a).map_err(|reason| AddressError::Invalid {
                addr: a.clone(),
                reason,
            })?;
            if out
                .iter()
                .any(|(h, p)| *p == port && h.eq_ignore_ascii_case(host))
            {
                return Err(AddressError::Duplicate(a.clone()));
            }
            out.push((host.to_owned(), port));
        }
        Ok(out)
    }

    pub(crate) fn connect_timeout_value(&self) -> Duration {
        self.config.handshake_timeout()
    }

    /// The engine configuration, after checking every option; the error
    /// names the option at fault: [`Error::Addresses`] for the address list
    /// (empty, malformed, duplicated, or unfit for the mode and majority),
    /// [`Error::Config`] for the rest (including a non-zero database in
    /// cluster mode). Durations have lower bounds (see each setter;
    /// `try_next_after` must be at least 1 ms and shorter than validity)
    /// and saturate above: none, up to [`Duration::MAX`], makes anything
    /// panic. The engine's handshake timeout is the connect timeout.
    pub fn to_config(&self) -> Result<Config, Error> {
        let n = self.endpoints()?.len();
        // Fits: `endpoints` refuses more than `u16::MAX` addresses.
        let n16 = u16::try_from(n).unwrap_or(u16::MAX);
        let topology = match self.mode {
            Mode::Single | Mode::Sentinel => Topology::Single,
            Mode::Cluster => Topology::Cluster(n16),
            Mode::Instances => Topology::Instances(n16),
        };
        // Named as the runtime's option, not as the engine's.
        if self.config.handshake_timeout() < Config::MIN_HANDSHAKE_TIMEOUT {
            return Err(ConfigError::ConnectTimeout.into());
        }
        let config = self
            .config
            .clone()
            .with_topology(topology)
            .with_tls_ports(self.is_tls())
            .with_follow_failover(self.mode == Mode::Sentinel);
        config.validate()?;
        if self.mode == Mode::Instances {
            check_instances(n, usize::from(config.key_majority()))?;
        }
        Ok(config)
    }
}

/// With `n` instances and `2m-1` keys per lock (key `i` on instance
/// `i mod n`): every instance must hold a key, and (from two instances on)
/// losing the busiest instance must leave a majority.
fn check_instances(n: usize, majority: usize) -> Result<(), AddressError> {
    let keys = 2 * majority - 1;
    if n > keys {
        return Err(AddressError::UnusedInstances { instances: n, keys });
    }
    let busiest = keys.div_ceil(n);
    if n > 1 && busiest >= majority {
        return Err(AddressError::FragileInstances {
            instances: n,
            keys,
            majority,
        });
    }
    Ok(())
}

/// Splits `host:port` (IPv6 hosts in brackets) into the bare host and the
/// port; the error says what is wrong.
pub(crate) fn split_addr(addr: &str) -> Result<(&str, u16), &'static str> {
    let (host, bracketed, rest) = cut_host(addr)?;
    let Some(port) = rest.strip_prefix(':') else {
        return Err(if bracketed {
            "expected host:port ([host]:port for IPv6)"
        } else {
            "expected host:port (the port is missing)"
        });
    };
    if !bracketed && host.contains(':') {
        return Err("IPv6 hosts go in brackets: [host]:port");
    }
    if host.is_empty() {
        return Err("the host is missing");
    }
    if host
        .bytes()
        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control() || b"/,@[]".contains(&b))
    {
        return Err("the host has a character no host name has");
    }
    match port.parse::<u16>() {
        // `parse` takes a leading `+`; a port is digits only.
        Ok(p) if p != 0 && port.bytes().all(|b| b.is_ascii_digit()) => Ok((host, p)),
        _ => Err("the port must be a number from 1 to 65535"),
    }
}

#[cfg(test)]
mod tests;
