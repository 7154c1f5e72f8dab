//! The Redis commands the engine sends, written straight into a connection's
//! transmit buffer.

use crate::fence::CounterKey;
use crate::keys::key_parts;
use crate::resp::{array_header, bulk, bulk_concat, bulk_uint, Full, Sink};
use crate::scripts::Script;

/// A lock key, written as `prefix:i:name` without building it first.
#[derive(Clone, Copy)]
pub(crate) struct KeyRef<'a> {
    pub(crate) prefix: &'a [u8],
    pub(crate) index: u8,
    pub(crate) name: &'a [u8],
}

impl KeyRef<'_> {
    fn write(&self, out: &mut impl Sink) -> Result<(), Full> {
        let mut digits = [0u8; 2];
        bulk_concat(
            out,
            &key_parts(self.prefix, self.index, self.name, &mut digits),
        )
    }

    /// The key's fencing counter (`crate::fence`), in the key's slot.
    fn write_counter(&self, out: &mut impl Sink) -> Result<(), Full> {
        let mut digits = [0u8; 2];
        let [a, b, c, d, e] = key_parts(self.prefix, self.index, self.name, &mut digits);
        let counter = CounterKey::of_parts(&[a, b, c, d, e]);
        bulk_concat(out, &[counter.head(), a, b, c, d, e, counter.tail()])
    }
}

/// How a TTL is written.
#[derive(Clone, Copy)]
pub(crate) enum Ttl {
    /// `PX ms`.
    Relative(u64),
    /// `PXAT unix_ms`.
    Absolute(u64),
}

/// `SET key value [NX] PX|PXAT t` then `PTTL key` (the read re-arms tracking
/// after our own write and reports the TTL the server holds), or with
/// `fence` that script (`EVAL`, so that no `NOSCRIPT` can split the pair)
/// reading the TTL and the key's fencing counter. With `asking` (a cluster
/// `ASK` redirect) each command is preceded by `ASKING`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn acquire(
    out: &mut impl Sink,
    key: KeyRef<'_>,
    value: &[u8],
    nx: bool,
    ttl: Ttl,
    asking: bool,
    fence: Option<&Script>,
) -> Result<(), Full> {
    if asking {
        self::asking(out)?;
    }
    array_header(out, if nx { 6 } else { 5 })?;
    bulk(out, b"SET")?;
    key.write(out)?;
    bulk(out, value)?;
    if nx {
        bulk(out, b"NX")?;
    }
    match ttl {
        Ttl::Relative(ms) => {
            bulk(out, b"PX")?;
            bulk_uint(out, ms)?;
        }
        Ttl::Absolute(ms) => {
            bulk(out, b"PXAT")?;
            bulk_uint(out, ms)?;
        }
    }
    if asking {
        self::asking(out)?;
    }
    if let Some(read) = fence {
        return fenced_script(out, read, false, key, value, &[]);
    }
    array_header(out, 2)?;
    bulk(out, b"PTTL")?;
    key.write(out)
}

/// `EVALSHA sha 2 key counter value args...` (or `EVAL body ...`): a
/// fencing script over the key and its counter.
pub(crate) fn fenced_script(
    out: &mut impl Sink,
    script: &Script,
    by_sha: bool,
    key: KeyRef<'_>,
    value: &[u8],
    numbers: &[u64],
) -> Result<(), Full> {
    script_over(out, script, by_sha, key, true, value, numbers)
}

/// `ASKING`: the next command may touch a slot being imported.
pub(crate) fn asking(out: &mut impl Sink) -> Result<(), Full> {
    array_header(out, 1)?;
    bulk(out, b"ASKING")
}

/// `CLUSTER SHARDS` (Redis >= 7.0) or `CLUSTER SLOTS`.
pub(crate) fn cluster_topology(out: &mut impl Sink, shards: bool) -> Result<(), Full> {
    array_header(out, 2)?;
    bulk(out, b"CLUSTER")?;
    bulk(out, if shards { b"SHARDS" } else { b"SLOTS" })
}

/// `EVALSHA sha 1 key args...`, or `EVAL body 1 key args...`.
pub(crate) fn script(
    out: &mut impl Sink,
    script: &Script,
    by_sha: bool,
    key: KeyRef<'_>,
    value: &[u8],
    numbers: &[u64],
) -> Result<(), Full> {
    script_over(out, script, by_sha, key, false, value, numbers)
}

/// A script call over `key` (and its fencing counter when `counter`).
fn script_over(
    out: &mut impl Sink,
    script: &Script,
    by_sha: bool,
    key: KeyRef<'_>,
    counter: bool,
    value: &[u8],
    numbers: &[u64],
) -> Result<(), Full> {
    let keys = if counter { 2 } else { 1 };
    array_header(out, 4 + keys + numbers.len())?;
    if by_sha {
        bulk(out, b"EVALSHA")?;
        bulk(out, &script.sha)?;
    } else {
        bulk(out, b"EVAL")?;
        bulk(out, script.body.as_bytes())?;
    }
    bulk_uint(out, keys as u64)?;
    key.write(out)?;
    if counter {
        key.write_counter(out)?;
    }
    bulk(out, value)?;
    for &n in numbers {
        bulk_uint(out, n)?;
    }
    Ok(())
}

/// `HELLO 3 [AUTH user pass] [SETNAME name]`.
pub(crate) fn hello(
    out: &mut impl Sink,
    auth: Option<(&[u8], &[u8])>,
    name: Option<&[u8]>,
) -> Result<(), Full> {
    let n = 2 + if auth.is_some() { 3 } else { 0 } + if name.is_some() { 2 } else { 0 };
    array_header(out, n)?;
    bulk(out, b"HELLO")?;
    bulk(out, b"3")?;
    if let Some((user, pass)) = auth {
        bulk(out, b"AUTH")?;
        bulk(out, user)?;
        bulk(out, pass)?;
    }
    if let Some(name) = name {
        bulk(out, b"SETNAME")?;
        bulk(out, name)?;
    }
    Ok(())
}

/// `AUTH [user] pass` (RESP2 servers; Redis 5 knows only `AUTH pass`).
pub(crate) fn auth(out: &mut impl Sink, user: Option<&[u8]>, pass: &[u8]) -> Result<(), Full> {
    array_header(out, if user.is_some() { 3 } else { 2 })?;
    bulk(out, b"AUTH")?;
    if let Some(user) = user {
        bulk(out, user)?;
    }
    bulk(out, pass)
}

/// `CLIENT SETNAME name`.
pub(crate) fn setname(out: &mut impl Sink, name: &[u8]) -> Result<(), Full> {
    array_header(out, 3)?;
    bulk(out, b"CLIENT")?;
    bulk(out, b"SETNAME")?;
    bulk(out, name)
}

/// `SELECT db`.
pub(crate) fn select(out: &mut impl Sink, db: u32) -> Result<(), Full> {
    array_header(out, 2)?;
    bulk(out, b"SELECT")?;
    bulk_uint(out, u64::from(db))
}

/// `CLIENT TRACKING ON OPTOUT [NOLOOP]`.
pub(crate) fn tracking(out: &mut impl Sink, noloop: bool) -> Result<(), Full> {
    array_header(out, if noloop { 5 } else { 4 })?;
    bulk(out, b"CLIENT")?;
    bulk(out, b"TRACKING")?;
    bulk(out, b"ON")?;
    bulk(out, b"OPTOUT")?;
    if noloop {
        bulk(out, b"NOLOOP")?;
    }
    Ok(())
}

/// `PING`.
pub(crate) fn ping(out: &mut impl Sink) -> Result<(), Full> {
    array_header(out, 1)?;
    bulk(out, b"PING")
}
