//! `tracklock status NAME`: every key of the lock, its value and TTL, and
//! whether a majority of them carries one value.

use std::fmt::Write as _;
use std::process::ExitCode;

use redis::Value;
use serde_json::json;
use tracklock::Options;

use crate::args::{StatusArgs, Target};
use crate::exit::{Failure, NOT_HELD, UNAVAILABLE};
use crate::route::{error_text, Nodes};

/// One key as read.
#[derive(Debug)]
pub(crate) struct Key {
    pub(crate) key: String,
    /// The server that answered (or was asked, on error).
    pub(crate) node: Option<String>,
    pub(crate) value: Option<Vec<u8>>,
    /// `PTTL`: `None` when the key does not exist, -1 when it has no TTL.
    pub(crate) pttl_ms: Option<i64>,
    pub(crate) error: Option<String>,
}

/// Every key of one lock.
#[derive(Debug)]
pub(crate) struct Report {
    pub(crate) name: String,
    pub(crate) prefix: String,
    pub(crate) majority: usize,
    pub(crate) keys: Vec<Key>,
}

/// The keys `{prefix}:{i}:{name}`, `i` in `0..2m-1`, as the library
/// writes them.
pub(crate) fn key_names(
    options: &Options,
    name: &str,
) -> Result<(String, usize, Vec<String>), Failure> {
    let config = options
        .to_config()
        .map_err(|e| Failure::from_lock_error(&e))?;
    let prefix = config.prefix().to_owned();
    let keys = (0..config.key_count())
        .map(|i| format!("{prefix}:{i}:{name}"))
        .collect();
    Ok((prefix, usize::from(config.key_majority()), keys))
}

/// Reads every key (`GET` and `PTTL` in one pipeline per key).
pub(crate) fn read(target: &Target, name: &str) -> Result<Report, Failure> {
    let options = &target.options;
    let (prefix, majority, names) = key_names(options, name)?;
    let mut nodes = Nodes::new(target)?;
    let keys = names
        .into_iter()
        .enumerate()
        .map(|(i, key)| {
            let read = nodes.send(i, redis::pipe().cmd("GET").arg(&key).cmd("PTTL").arg(&key));
            let mut out = Key {
                key,
                node: None,
                value: None,
                pttl_ms: None,
                error: None,
            };
            match read {
                Err(e) => out.error = Some(e),
                Ok((node, replies)) => {
                    out.node = Some(node);
                    // An error reply is the key's error, never a value
                    // (nor "no key"): "not held" needs every key read.
                    match (replies.iter().find_map(error_text), replies.as_slice()) {
                        (Some(e), _) => out.error = Some(e),
                        (None, [Value::BulkString(v), Value::Int(t)]) => {
                            out.value = Some(v.clone());
                            out.pttl_ms = (*t != -2).then_some(*t);
                        }
                        // No such key.
                        (None, [Value::Nil, _]) => {}
                        (None, other) => out.error = Some(format!("unexpected replies {other:?}")),
                    }
                }
            }
            out
        })
        .collect();
    Ok(Report {
        name: name.to_owned(),
        prefix,
        majority,
        keys,
    })
}

impl Report {
    /// The value a majority of keys carries: the holder's.
    pub(crate) fn holder(&self) -> Option<&[u8]> {
        let values = self.keys.iter().filter_map(|k| k.value.as_deref());
        values
            .clone()
            .find(|v| values.clone().filter(|w| w == v).count() >= self.majority)
    }

    /// How long the holder keeps a majority: the `m`-th longest TTL of its
    /// keys (`None`: not held, or keys without a TTL).
    pub(crate) fn expires_in_ms(&self) -> Option<i64> {
        let holder = self.holder()?;
        let mut ttls: Vec<i64> = self
            .keys
            .iter()
            .filter(|k| k.value.as_deref() == Some(holder))
            .filter_map(|k| k.pttl_ms.filter(|t| *t >= 0))
            .collect();
        ttls.sort_unstable_by(|a, b| b.cmp(a));
        ttls.get(self.majority - 1).copied()
    }

    /// Whether every key was read (so "not held" is an answer).
    pub(crate) fn complete(&self) -> bool {
        self.keys.iter().all(|k| k.error.is_none())
    }

    /// The exit code: 0 held, 1 not held, 69 when unreadable keys leave
    /// it open.
    pub(crate) fn exit_code(&self) -> u8 {
        if self.holder().is_some() {
            0
        } else if self.complete() {
            NOT_HELD
        } else {
            UNAVAILABLE
        }
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        json!({
            "name": self.name,
            "prefix": self.prefix,
            "majority": self.majority,
            "held": self.holder().is_some(),
            "holder_hex": self.holder().map(hex),
            "expires_in_ms": self.expires_in_ms(),
            "complete": self.complete(),
            "keys": self.keys.iter().map(|k| json!({
                "key": k.key,
                "node": k.node,
                "value_hex": k.value.as_deref().map(hex),
                "value_utf8": k.value.as_deref().map(String::from_utf8_lossy),
                "pttl_ms": k.pttl_ms,
                "error": k.error,
            })).collect::<Vec<_>>(),
        })
    }

    pub(crate) fn text(&self) -> String {
        let mut s = String::new();
        let n = self.keys.len();
        let _ = match self.holder() {
            Some(v) => {
                let carried = self
                    .keys
                    .iter()
                    .filter(|k| k.value.as_deref() == Some(v))
                    .count();
                let left = match self.expires_in_ms() {
                    Some(ms) => format!("{ms} ms left"),
                    None => "no TTL".to_owned(),
                };
                writeln!(
                    s,
                    "{}: held ({carried} of {n} keys carry {}; {left})",
                    self.name,
                    shown(v)
                )
            }
            None if self.complete() => writeln!(s, "{}: not held", self.name),
            None => writeln!(s, "{}: unknown (some keys could not be read)", self.name),
        };
        for k in &self.keys {
            let _ = write!(s, "  {}  {}  ", k.key, k.node.as_deref().unwrap_or("-"));
            let _ = match (&k.error, &k.value, k.pttl_ms) {
                (Some(e), _, _) => writeln!(s, "error: {e}"),
                (None, None, _) => writeln!(s, "(no key)"),
                (None, Some(v), Some(-1)) => writeln!(s, "{}  no TTL", shown(v)),
                (None, Some(v), Some(t)) => writeln!(s, "{}  {t} ms", shown(v)),
                (None, Some(v), None) => writeln!(s, "{}", shown(v)),
            };
        }
        s
    }
}

/// Lowercase hex.
pub(crate) fn hex(b: &[u8]) -> String {
    b.iter()
        .fold(String::with_capacity(2 * b.len()), |mut s, x| {
            let _ = write!(s, "{x:02x}");
            s
        })
}

/// Printable ASCII as it is (quoted), anything else (tracklock's values
/// are 24 random bytes) in hex.
fn shown(v: &[u8]) -> String {
    if !v.is_empty() && v.iter().all(|b| (0x20..0x7f).contains(b)) {
        format!("{:?}", String::from_utf8_lossy(v))
    } else {
        hex(v)
    }
}

pub(crate) fn status(target: &Target, args: &StatusArgs) -> Result<ExitCode, Failure> {
    let report = read(target, &args.name)?;
    if args.json {
        println!("{}", report.json());
    } else {
        print!("{}", report.text());
    }
    Ok(ExitCode::from(report.exit_code()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(value: Option<&[u8]>, pttl: Option<i64>) -> Key {
        Key {
            key: "k".into(),
            node: Some("n".into()),
            value: value.map(<[u8]>::to_vec),
            pttl_ms: pttl,
            error: None,
        }
    }

    #[test]
    fn cli_majority_decides() {
        let mut r = Report {
            name: "x".into(),
            prefix: "p".into(),
            majority: 2,
            keys: vec![
                key(Some(b"a"), Some(900)),
                key(Some(b"b"), Some(100)),
                key(Some(b"a"), Some(500)),
            ],
        };
        assert_eq!(r.holder(), Some(&b"a"[..]));
        assert_eq!(r.expires_in_ms(), Some(500));
        assert_eq!(r.exit_code(), 0);
        r.keys[2] = key(None, None);
        assert_eq!(r.holder(), None);
        assert_eq!(r.exit_code(), NOT_HELD);
        r.keys[2].error = Some("down".into());
        assert_eq!(r.exit_code(), UNAVAILABLE);
        assert!(r.text().contains("error: down"), "{}", r.text());
    }

    #[test]
    fn cli_values_shown() {
        assert_eq!(hex(&[0, 0xab]), "00ab");
        assert_eq!(shown(b"abc"), "\"abc\"");
        assert_eq!(shown(&[1, 2]), "0102");
        assert_eq!(shown(b""), "");
    }
}
