//! [`Options::from_url`]: `redis://`, `redis+cluster://` and
//! `redis+instances://` URLs.

use super::{Mode, Options};
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
            "unix" => return bad("Unix sockets (unix://) are not supported"),
            _ => {
                return bad(
                    "the URL must start with redis://, redis+cluster:// or redis+instances:// \
                     (rediss… for TLS)",
                )
            }
        };
        #[cfg(not(feature = "tls"))]
        if tls {
            return Err(Error::TlsNotEnabled);
        }
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
