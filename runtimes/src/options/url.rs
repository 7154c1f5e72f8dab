//! [`Options::from_url`]: `redis://`, `redis+cluster://`,
//! `redis+instances://` and `redis+sentinel://` URLs.

use super::{Mode, Options};
use crate::addr::cut_host;
use crate::Error;

impl Options {
    /// Parses `redis://[user[:password]@]host[:port][/db]` (port 6379 by
    /// default; user and password may be percent-encoded; IPv6 hosts in
    /// brackets). Unix sockets and query parameters are not supported and
    /// are refused rather than ignored.
    ///
    /// `rediss://`, `rediss+cluster://` and `rediss+instances://` are the
    /// same with TLS ([`Options::tls`], platform root certificates; add a CA
    /// or a client certificate with the setters). Without the `tls` feature
    /// they fail with [`Error::TlsNotEnabled`].
    ///
    /// A comma-separated host list picks a multi-node mode by scheme:
    /// `redis+cluster://h1:p1,h2:p2` for a Redis Cluster (seed nodes; the
    /// database must be 0) and `redis+instances://h1:p1,h2:p2,h3:p3` for
    /// independent instances. User, password and database apply to every
    /// node. `redis://` takes exactly one host.
    ///
    /// `redis+sentinel://[user[:password]@]h1:p1,h2:p2/master_name[/db]`
    /// (and `rediss+sentinel://` with TLS to the sentinels and the data
    /// node) is [`Options::sentinel`]: the hosts are sentinels (port 26379
    /// by default), the first path segment is the master name, user and
    /// password are the data node's. The sentinels' own `AUTH` goes in the
    /// only query parameters accepted, `sentinel_username` and
    /// `sentinel_password` (percent-encoded):
    /// `redis+sentinel://:data-pw@s1,s2/mymaster?sentinel_password=s-pw`.
    ///
    /// ```
    /// use tracklock::{Mode, Options};
    ///
    /// let o = Options::from_url("redis+sentinel://s1,s2:26380/mymaster/2?sentinel_password=pw")?;
    /// assert_eq!(o.mode(), Mode::Sentinel);
    /// assert_eq!(o.sentinel_master(), Some("mymaster"));
    /// assert_eq!(o.addresses(), ["s1:26379", "s2:26380"]);
    /// # Ok::<(), tracklock::Error>(())
    /// ```
    pub fn from_url(url: &str) -> Result<Options, Error> {
        let bad = |m: &str| Err(Error::InvalidUrl(m.to_owned()));
        let Some((scheme, rest)) = url.split_once("://") else {
            return bad("the URL must start with redis://");
        };
        let scheme = scheme.to_ascii_lowercase();
        let (mode, tls) = match scheme.as_str() {
            "redis" => (Mode::Single, false),
            "redis+cluster" => (Mode::Cluster, false),
            "redis+instances" => (Mode::Instances, false),
            "rediss" => (Mode::Single, true),
            "rediss+cluster" => (Mode::Cluster, true),
            "rediss+instances" => (Mode::Instances, true),
            "redis+sentinel" => (Mode::Sentinel, false),
            "rediss+sentinel" => (Mode::Sentinel, true),
            "unix" => return bad("Unix sockets (unix://) are not supported"),
            _ => {
                return bad(
                    "the URL must start with redis://, redis+cluster://, redis+instances:// \
                     or redis+sentinel:// (rediss… for TLS)",
                )
            }
        };
        #[cfg(not(feature = "tls"))]
        if tls {
            return Err(Error::TlsNotEnabled);
        }
        if rest.contains('#') {
            return bad("fragments are not supported");
        }
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) if mode == Mode::Sentinel => (r, Some(q)),
            Some(_) => {
                return bad("query parameters are not supported (only sentinel URLs take some)")
            }
            None => (rest, None),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        };
        let (userinfo, hosts) = match authority.rfind('@') {
            Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
            None => (None, authority),
        };
        let default_port = if mode == Mode::Sentinel { 26379 } else { 6379 };
        let mut addrs = Vec::new();
        for hostport in hosts.split(',') {
            match url_host(hostport, default_port) {
                Ok(a) => addrs.push(a),
                Err(m) => return bad(m),
            }
        }
        if mode == Mode::Single && addrs.len() > 1 {
            return bad("a host list needs redis+cluster:// or redis+instances://");
        }
        let (master, path) = if mode == Mode::Sentinel {
            let (name, db) = path.split_once('/').unwrap_or((path, ""));
            let Some(name) = percent_decode(name).filter(|n| !n.is_empty()) else {
                return bad("a sentinel URL needs the master name as its path: /master_name");
            };
            (Some(name), db)
        } else {
            (None, path)
        };
        let mut o = match master {
            Some(m) => Options::sentinel(m, addrs),
            None => Options::with_mode(mode, addrs),
        };
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let Some(v) = percent_decode(v) else {
                return bad("bad percent-encoding in a query parameter");
            };
            o = match k {
                "sentinel_username" => o.sentinel_username(v),
                "sentinel_password" => o.sentinel_password(v),
                _ => {
                    return bad(
                        "unknown query parameter (sentinel URLs take sentinel_username and \
                         sentinel_password)",
                    )
                }
            };
        }
        #[cfg(feature = "tls")]
        if tls {
            o = o.tls(true);
        }
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
}

/// One host of a URL's host list, as `host:port` (`default_port` when
/// none is given).
fn url_host(hostport: &str, default_port: u16) -> Result<String, &'static str> {
    let (host, _, rest) = cut_host(hostport)?;
    let port = match rest {
        "" => None,
        r => match r.strip_prefix(':') {
            Some(p) => Some(p),
            None => return Err("unexpected text after the IPv6 host"),
        },
    };
    if host.is_empty() {
        return Err("the host is missing");
    }
    let port = match port {
        None => default_port,
        Some(p) => match p.parse::<u16>() {
            Ok(p) if p != 0 => p,
            _ => return Err("the port must be a number from 1 to 65535"),
        },
    };
    // The host as written: an unbracketed one with a `:` is left for
    // validation to refuse, not bracketed here into a valid address.
    let written = &hostport[..hostport.len() - rest.len()];
    Ok(format!("{written}:{port}"))
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
