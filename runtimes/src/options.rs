//! Locker options: a builder over [`tracklock_core::Config`] plus the mode,
//! the addresses and the connection settings.

use std::fmt;
use std::time::Duration;

use tracklock_core::{Config, ConfigError, NoLoop, Text, Topology, TtlMode};

use crate::error::AddressError;
use crate::Error;

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
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Single => "single",
            Mode::Cluster => "cluster",
            Mode::Instances => "instances",
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
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `Config`'s `Debug` hides the password.
        f.debug_struct("Options")
            .field("mode", &self.mode)
            .field("addrs", &self.addrs)
            .field("config", &self.config)
            .finish()
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
        }
    }

    /// Parses `redis://[user[:password]@]host[:port][/db]` (port 6379 by
    /// default; user and password may be percent-encoded; IPv6 hosts in
    /// brackets). TLS (`rediss://`), Unix sockets and query parameters are
    /// not supported and are refused rather than ignored.
    ///
    /// A comma-separated host list picks a multi-node mode by scheme:
    /// `redis+cluster://h1:p1,h2:p2` for a Redis Cluster (seed nodes; the
    /// database must be 0) and `redis+instances://h1:p1,h2:p2,h3:p3` for
    /// independent instances. User, password and database apply to every
    /// node. `redis://` takes exactly one host.
    pub fn from_url(url: &str) -> Result<Options, Error> {
        let bad = |m: &str| Err(Error::InvalidUrl(m.to_owned()));
        let Some((scheme, rest)) = url.split_once("://") else {
            return bad("the URL must start with redis://");
        };
        let scheme = scheme.to_ascii_lowercase();
        let mode = match scheme.as_str() {
            "redis" => Mode::Single,
            "redis+cluster" => Mode::Cluster,
            "redis+instances" => Mode::Instances,
            "rediss" | "rediss+cluster" | "rediss+instances" => {
                return bad("TLS (rediss://) is not supported yet");
            }
            "unix" => return bad("Unix sockets (unix://) are not supported"),
            _ => {
                return bad(
                    "the URL must start with redis://, redis+cluster:// or redis+instances://",
                )
            }
        };
        if rest.contains(['?', '#']) {
            return bad("query parameters and fragments are not supported");
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        };
        let (userinfo, hosts) = match authority.rfind('@') {
            Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
            None => (None, authority),
        };
        let mut addrs = Vec::new();
        for hostport in hosts.split(',') {
            match url_host(hostport) {
                Ok(a) => addrs.push(a),
                Err(m) => return bad(m),
            }
        }
        if mode == Mode::Single && addrs.len() > 1 {
            return bad("a host list needs redis+cluster:// or redis+instances://");
        }
        let mut o = Options::with_mode(mode, addrs);
        if let Some(info) = userinfo {
            let (user, pass) = match info.split_once(':') {
                Some((u, p)) => (u, Some(p)),
                None => (info, None),
            };
            let Some(user) = percent_decode(user) else {
                return bad("bad percent-encoding in the user name");
            };
            if !user.is_empty() {
                o = o.username(user);
            }
            if let Some(pass) = pass {
                let Some(pass) = percent_decode(pass) else {
                    return bad("bad percent-encoding in the password");
                };
                o = o.password(pass);
            }
        }
        let db = path.trim_end_matches('/');
        if !db.is_empty() {
            match db.parse::<u32>() {
                Ok(db) => o = o.database(db),
                Err(_) => return bad("the path must be a database number, like /0"),
            }
        }
        if mode == Mode::Cluster && o.config.database() != 0 {
            return bad("a Redis Cluster has only database 0");
        }
        Ok(o)
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

    /// The first address (the server's in single mode), `host:port`; empty
    /// when the list is empty.
    pub fn address(&self) -> &str {
        self.addrs.first().map_or("", String::as_str)
    }

    /// Every address, in the order given: the server, the cluster seeds or
    /// the instances (instance `i` holds key `i mod n`).
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
            Mode::Single => Topology::Single,
            Mode::Cluster => Topology::Cluster(n16),
            Mode::Instances => Topology::Instances(n16),
        };
        // Named as the runtime's option, not as the engine's.
        if self.config.handshake_timeout() < Config::MIN_HANDSHAKE_TIMEOUT {
            return Err(ConfigError::ConnectTimeout.into());
        }
        let config = self.config.clone().with_topology(topology);
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
    let (host, port) = if let Some(v6) = addr.strip_prefix('[') {
        let Some((h, after)) = v6.split_once(']') else {
            return Err("unclosed '[' in the host");
        };
        let Some(p) = after.strip_prefix(':') else {
            return Err("expected host:port ([host]:port for IPv6)");
        };
        if h.is_empty() {
            return Err("the host is missing");
        }
        (h, p)
    } else {
        let Some((h, p)) = addr.rsplit_once(':') else {
            return Err("expected host:port (the port is missing)");
        };
        if h.contains(':') {
            return Err("IPv6 hosts go in brackets: [host]:port");
        }
        (h, p)
    };
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

/// One host of a URL's host list, as `host:port` (port 6379 by default).
fn url_host(hostport: &str) -> Result<String, &'static str> {
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let Some((h, after)) = v6.split_once(']') else {
            return Err("unclosed '[' in the host");
        };
        let port = match after {
            "" => None,
            p => match p.strip_prefix(':') {
                Some(p) => Some(p),
                None => return Err("unexpected text after the IPv6 host"),
            },
        };
        (format!("[{h}]"), port)
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (hostport.to_owned(), None),
        }
    };
    if host.is_empty() || host == "[]" {
        return Err("the host is missing");
    }
    let port = match port {
        None => 6379,
        Some(p) => match p.parse::<u16>() {
            Ok(p) if p != 0 => p,
            _ => return Err("the port must be a number from 1 to 65535"),
        },
    };
    Ok(format!("{host}:{port}"))
}

/// Decodes `%XX` escapes; `None` on a broken escape or non-UTF-8 result.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_err(o: Options) -> ConfigError {
        match o.to_config() {
            Err(Error::Config(e)) => e,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn defaults_match_go_rueidislock() {
        let o = Options::new("127.0.0.1:6379");
        assert_eq!(o.address(), "127.0.0.1:6379");
        let c = o.to_config().unwrap();
        assert_eq!(c.prefix(), "rueidislock");
        assert_eq!(c.key_majority(), 2);
        assert_eq!(c.validity(), Duration::from_secs(5));
        assert_eq!(c.effective_extend_interval(), Duration::from_millis(2500));
        assert_eq!(c.try_next_after(), Duration::from_millis(20));
        assert_eq!(c.drift_ppm(), 10_000);
        assert_eq!(c.margin(), Duration::from_millis(5));
        assert_eq!(c.noloop(), NoLoop::Auto);
        assert!(c.client_caching());
        assert_eq!(c.ttl_mode(), TtlMode::Relative);
        assert_eq!(c.ping_interval(), Duration::from_secs(1));
        assert_eq!(c.database(), 0);
        assert!(c.username().is_none() && c.password().is_none() && c.client_name().is_none());
        assert_eq!(o.connect_timeout_value(), Duration::from_secs(5));
    }

    #[test]
    fn setters_reach_the_config() {
        let c = Options::new("h:1")
            .username("u")
            .password("p")
            .database(3)
            .client_name("me")
            .prefix("locks")
            .key_majority(3)
            .validity(Duration::from_secs(10))
            .extend_interval(Duration::from_secs(2))
            .try_next_after(Duration::from_millis(50))
            .drift(0.02)
            .margin(Duration::from_millis(7))
            .noloop(NoLoop::On)
            .client_caching(false)
            .absolute_ttl(true)
            .ping_interval(Duration::from_millis(500))
            .connect_timeout(Duration::from_secs(1))
            .to_config()
            .unwrap();
        assert_eq!(c.username(), Some("u"));
        assert_eq!(c.password(), Some("p"));
        assert_eq!(c.database(), 3);
        assert_eq!(c.client_name(), Some("me"));
        assert_eq!(c.prefix(), "locks");
        assert_eq!(c.key_majority(), 3);
        assert_eq!(c.validity(), Duration::from_secs(10));
        assert_eq!(c.extend_interval(), Some(Duration::from_secs(2)));
        assert_eq!(c.try_next_after(), Duration::from_millis(50));
        assert_eq!(c.drift_ppm(), 20_000);
        assert_eq!(c.margin(), Duration::from_millis(7));
        assert_eq!(c.noloop(), NoLoop::On);
        assert!(!c.client_caching());
        assert_eq!(c.ttl_mode(), TtlMode::Absolute);
        assert_eq!(c.ping_interval(), Duration::from_millis(500));
    }

    #[test]
    fn validation_names_the_option() {
        let o = || Options::new("h:1");
        assert_eq!(config_err(o().key_majority(0)), ConfigError::MajorityZero);
        assert!(matches!(
            config_err(o().key_majority(200)),
            ConfigError::MajorityTooLarge(200)
        ));
        assert_eq!(
            config_err(o().validity(Duration::ZERO)),
            ConfigError::ValidityTooShort
        );
        assert_eq!(
            config_err(o().extend_interval(Duration::from_secs(5))),
            ConfigError::ExtendInterval
        );
        assert_eq!(
            config_err(o().extend_interval(Duration::ZERO)),
            ConfigError::ExtendInterval
        );
        assert_eq!(
            config_err(o().try_next_after(Duration::ZERO)),
            ConfigError::TryNextAfter
        );
        for d in [0.5, -0.1, f64::NAN, f64::INFINITY] {
            assert_eq!(config_err(o().drift(d)), ConfigError::Drift, "drift {d}");
        }
        assert_eq!(
            config_err(o().margin(Duration::from_secs(5))),
            ConfigError::MarginTooLarge
        );
        assert_eq!(config_err(o().prefix("")), ConfigError::EmptyPrefix);
        assert_eq!(config_err(o().prefix("a:")), ConfigError::AmbiguousPrefix);
        assert_eq!(
            config_err(o().username("u")),
            ConfigError::UsernameWithoutPassword
        );
        assert_eq!(
            config_err(o().ping_interval(Duration::ZERO)),
            ConfigError::PingInterval
        );
        let msg = o().key_majority(0).to_config().unwrap_err().to_string();
        assert!(msg.contains("key_majority"), "{msg}");
    }

    #[test]
    fn debug_hides_the_password() {
        let s = format!("{:?}", Options::new("h:1").password("hunter2"));
        assert!(!s.contains("hunter2"), "{s}");
        assert!(s.contains("<redacted>"));
    }

    #[test]
    fn url_full() {
        let o = Options::from_url("redis://alice:s%40cret@redis.example:6380/2").unwrap();
        assert_eq!(o.address(), "redis.example:6380");
        assert_eq!(o.config.username(), Some("alice"));
        assert_eq!(o.config.password(), Some("s@cret"));
        assert_eq!(o.config.database(), 2);
    }

    #[test]
    fn url_variants() {
        let o = Options::from_url("redis://localhost").unwrap();
        assert_eq!(o.address(), "localhost:6379");
        assert_eq!(o.config.database(), 0);
        assert!(o.config.username().is_none() && o.config.password().is_none());

        let o = Options::from_url("REDIS://127.0.0.1:7000/").unwrap();
        assert_eq!(o.address(), "127.0.0.1:7000");

        let o = Options::from_url("redis://:pw@h").unwrap();
        assert!(o.config.username().is_none());
        assert_eq!(o.config.password(), Some("pw"));

        let o = Options::from_url("redis://u:p:q@h/15").unwrap();
        assert_eq!(o.config.username(), Some("u"));
        assert_eq!(o.config.password(), Some("p:q"));
        assert_eq!(o.config.database(), 15);

        let o = Options::from_url("redis://[::1]:6390/1").unwrap();
        assert_eq!(o.address(), "[::1]:6390");
        let o = Options::from_url("redis://[::1]").unwrap();
        assert_eq!(o.address(), "[::1]:6379");

        // A user without a password parses, and is refused by validation.
        let o = Options::from_url("redis://bob@h").unwrap();
        assert_eq!(
            o.to_config().unwrap_err().to_string(),
            "invalid option: username is set but password is not"
        );
    }

    #[test]
    fn url_errors() {
        for url in [
            "",
            "localhost:6379",
            "http://h",
            "rediss://h",
            "unix:///tmp/redis.sock",
            "redis://",
            "redis://:6379",
            "redis://h:0",
            "redis://h:70000",
            "redis://h:port",
            "redis://h/db",
            "redis://h/-1",
            "redis://h?protocol=3",
            "redis://[::1",
            "redis://[::1]x",
            "redis://u:%zz@h",
            "redis://u:%f0%28@h",
        ] {
            match Options::from_url(url) {
                Err(Error::InvalidUrl(m)) => assert!(!m.is_empty()),
                other => panic!("{url:?}: expected InvalidUrl, got {other:?}"),
            }
        }
        // The message does not leak the password.
        let e = Options::from_url("redis://u:topsecret@h:bad").unwrap_err();
        assert!(!e.to_string().contains("topsecret"), "{e}");
    }

    fn address_err(o: Options) -> AddressError {
        match o.to_config() {
            Err(Error::Addresses(e)) => e,
            other => panic!("expected an address error, got {other:?}"),
        }
    }

    #[test]
    fn modes_set_the_topology() {
        let o = Options::new("h:1");
        assert_eq!(o.mode(), Mode::Single);
        assert_eq!(o.addresses(), ["h:1"]);
        assert_eq!(o.to_config().unwrap().topology(), Topology::Single);

        let o = Options::cluster(["a:7000", "b:7001"]);
        assert_eq!(o.mode(), Mode::Cluster);
        assert_eq!(o.address(), "a:7000");
        assert_eq!(o.addresses(), ["a:7000", "b:7001"]);
        assert_eq!(o.to_config().unwrap().topology(), Topology::Cluster(2));

        let o = Options::instances(vec![
            "a:1".to_owned(),
            "b:2".to_owned(),
            "[::1]:3".to_owned(),
        ]);
        assert_eq!(o.mode(), Mode::Instances);
        assert_eq!(o.to_config().unwrap().topology(), Topology::Instances(3));
        assert_eq!(
            o.endpoints().unwrap(),
            [("a".into(), 1), ("b".into(), 2), ("::1".into(), 3)]
        );
        let s = format!("{o:?}");
        assert!(s.contains("Instances") && s.contains("[::1]:3"), "{s}");
        assert_eq!(Mode::Cluster.to_string(), "cluster");
    }

    #[test]
    fn address_lists_are_checked() {
        assert_eq!(
            address_err(Options::cluster(Vec::<String>::new())),
            AddressError::Empty
        );
        assert_eq!(
            address_err(Options::instances(Vec::<&str>::new())),
            AddressError::Empty
        );
        assert_eq!(
            address_err(Options::cluster(["a:1", "b:2", "A:1"])),
            AddressError::Duplicate("A:1".into())
        );
        assert_eq!(
            address_err(Options::instances(["[::1]:1", "[::1]:1"])),
            AddressError::Duplicate("[::1]:1".into())
        );
        for bad in [
            "h", "h:", "h:0", "h:70000", "h:x", "h:+1", ":1", "::1:6379", "[::1", "[::1]", "[]:1",
            "[::1]x:1", "a b:1", "a,b:1", "",
        ] {
            match address_err(Options::new(bad)) {
                AddressError::Invalid { addr, reason } => {
                    assert_eq!(addr, bad);
                    assert!(!reason.is_empty());
                }
                other => panic!("{bad:?}: expected Invalid, got {other:?}"),
            }
            assert!(
                matches!(
                    address_err(Options::cluster(["ok:1", bad])),
                    AddressError::Invalid { .. }
                ),
                "{bad:?}"
            );
        }
        for good in ["h:1", "[::1]:6379", "redis.example:65535", "10.0.0.1:6379"] {
            Options::new(good).to_config().unwrap();
        }
        let many: Vec<String> = (0..=u32::from(u16::MAX))
            .map(|i| format!("h{i}:1"))
            .collect();
        assert_eq!(
            address_err(Options::cluster(many)),
            AddressError::TooMany(65536)
        );
    }

    #[test]
    fn instances_must_fit_the_keys() {
        let inst = |n: usize| Options::instances((0..n).map(|i| format!("h{i}:1")));
        // One instance: like a single server.
        inst(1).to_config().unwrap();
        // Two: the first holds 2 of the 3 keys.
        assert_eq!(
            address_err(inst(2)),
            AddressError::FragileInstances {
                instances: 2,
                keys: 3,
                majority: 2
            }
        );
        assert!(matches!(
            address_err(inst(2).key_majority(4)),
            AddressError::FragileInstances { .. }
        ));
        inst(3).to_config().unwrap();
        assert_eq!(
            address_err(inst(4)),
            AddressError::UnusedInstances {
                instances: 4,
                keys: 3
            }
        );
        for n in 3..=5 {
            inst(n).key_majority(3).to_config().unwrap();
        }
        assert!(matches!(
            address_err(inst(6).key_majority(3)),
            AddressError::UnusedInstances { .. }
        ));
        inst(1).key_majority(1).to_config().unwrap();
        assert!(matches!(
            address_err(inst(2).key_majority(1)),
            AddressError::UnusedInstances { .. }
        ));
        // A bad majority is reported as such, not as an address problem.
        assert_eq!(
            config_err(inst(3).key_majority(0)),
            ConfigError::MajorityZero
        );
    }

    #[test]
    fn cluster_needs_database_zero() {
        assert_eq!(
            config_err(Options::cluster(["a:1"]).database(1)),
            ConfigError::ClusterDatabase
        );
        Options::instances(["a:1", "b:1", "c:1"])
            .database(1)
            .to_config()
            .unwrap();
    }

    #[test]
    fn url_host_lists() {
        let o = Options::from_url("redis+cluster://a:7000,b:7001").unwrap();
        assert_eq!(o.mode(), Mode::Cluster);
        assert_eq!(o.addresses(), ["a:7000", "b:7001"]);
        assert_eq!(o.to_config().unwrap().topology(), Topology::Cluster(2));

        let o = Options::from_url("REDIS+CLUSTER://u:p%2Cw@[::1]:7000,b/0").unwrap();
        assert_eq!(o.mode(), Mode::Cluster);
        assert_eq!(o.addresses(), ["[::1]:7000", "b:6379"]);
        assert_eq!(o.config.username(), Some("u"));
        assert_eq!(o.config.password(), Some("p,w"));

        let o = Options::from_url("redis+instances://:pw@h1:1,h2,h3:3/2").unwrap();
        assert_eq!(o.mode(), Mode::Instances);
        assert_eq!(o.addresses(), ["h1:1", "h2:6379", "h3:3"]);
        assert_eq!(o.config.password(), Some("pw"));
        assert_eq!(o.config.database(), 2);
        assert_eq!(o.to_config().unwrap().topology(), Topology::Instances(3));

        // One host is fine in every mode.
        let o = Options::from_url("redis+cluster://seed").unwrap();
        assert_eq!(o.addresses(), ["seed:6379"]);
        let o = Options::from_url("redis://h").unwrap();
        assert_eq!(o.mode(), Mode::Single);

        // Parsed, then refused by validation.
        assert!(matches!(
            Options::from_url("redis+instances://a,b")
                .unwrap()
                .to_config(),
            Err(Error::Addresses(AddressError::FragileInstances { .. }))
        ));
        assert!(matches!(
            Options::from_url("redis+cluster://a,a")
                .unwrap()
                .to_config(),
            Err(Error::Addresses(AddressError::Duplicate(_)))
        ));

        for url in [
            "redis://a:1,b:2",
            "redis+cluster://a:1,,b:2",
            "redis+cluster://a:1,",
            "redis+cluster://",
            "redis+cluster://a:1,b:0",
            "redis+cluster://a:1/1",
            "redis+instances://a:1,[::1",
            "rediss+cluster://a:1",
            "redis+sentinel://a:1",
        ] {
            match Options::from_url(url) {
                Err(Error::InvalidUrl(m)) => assert!(!m.is_empty()),
                other => panic!("{url:?}: expected InvalidUrl, got {other:?}"),
            }
        }
    }
}
