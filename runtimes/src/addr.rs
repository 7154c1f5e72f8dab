//! `host:port` text, with IPv6 hosts in brackets, joined and taken apart
//! in one place for the options, the sentinel client and the logs.

use std::fmt::Display;

/// `host:port`, with a host that contains `:` (IPv6) put in brackets
/// unless it already is: `join_host_port("::1", 6379)` is `"[::1]:6379"`.
///
/// The port is any `Display`, so text read off the wire (a sentinel's
/// reply) is joined as it came.
pub fn join_host_port(host: &str, port: impl Display) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// `host[:port]` cut after its host: the host (an IPv6 one without its
/// brackets), whether it was in brackets, and what follows it: `""`,
/// `:port`, or, after a `]`, stray text. Whether a port is required, and
/// what else is refused, is the caller's rule.
pub(crate) fn cut_host(s: &str) -> Result<(&str, bool, &str), &'static str> {
    match s.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((host, rest)) => Ok((host, true, rest)),
            None => Err("unclosed '[' in the host"),
        },
        None => Ok(match s.rfind(':') {
            Some(i) => (&s[..i], false, &s[i..]),
            None => (s, false, ""),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join() {
        assert_eq!(join_host_port("10.0.0.1", 6379), "10.0.0.1:6379");
        assert_eq!(join_host_port("redis.example", 1), "redis.example:1");
        assert_eq!(join_host_port("::1", 6379), "[::1]:6379");
        assert_eq!(join_host_port("fe80::1%eth0", 7), "[fe80::1%eth0]:7");
        assert_eq!(join_host_port("[::1]", 6379), "[::1]:6379");
        assert_eq!(join_host_port("::1", "26379"), "[::1]:26379");
    }

    #[test]
    fn cut() {
        assert_eq!(cut_host("h:1"), Ok(("h", false, ":1")));
        assert_eq!(cut_host("h"), Ok(("h", false, "")));
        assert_eq!(cut_host("a:b:c"), Ok(("a:b", false, ":c")));
        assert_eq!(cut_host("[::1]:6379"), Ok(("::1", true, ":6379")));
        assert_eq!(cut_host("[::1]"), Ok(("::1", true, "")));
        assert_eq!(cut_host("[::1]x:1"), Ok(("::1", true, "x:1")));
        assert_eq!(cut_host("[]"), Ok(("", true, "")));
        assert_eq!(cut_host("[::1"), Err("unclosed '[' in the host"));
        // A host joined and cut again is the same host.
        for host in ["10.0.0.1", "redis.example", "::1"] {
            let joined = join_host_port(host, 6379);
            assert_eq!(cut_host(&joined), Ok((host, host.contains(':'), ":6379")));
        }
    }
}
