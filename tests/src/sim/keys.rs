//! Lock keys as the engine names them (`{prefix}:{i}:{name}`), both ways:
//! the world writes and routes them, the checker reads them back.

/// Key `i` of lock `name`.
pub(crate) fn key_name(prefix: &str, i: usize, name: &str) -> Vec<u8> {
    format!("{prefix}:{i}:{name}").into_bytes()
}

/// `(key index, name index)` of a lock key of one of `names`.
pub(crate) fn parse_lock_key(prefix: &str, names: &[String], key: &[u8]) -> Option<(usize, usize)> {
    let rest = key.strip_prefix(prefix.as_bytes())?;
    let rest = rest.strip_prefix(b":")?;
    let colon = rest.iter().position(|&b| b == b':')?;
    let i: usize = std::str::from_utf8(&rest[..colon]).ok()?.parse().ok()?;
    let name = &rest[colon + 1..];
    let n = names.iter().position(|x| x.as_bytes() == name)?;
    Some((i, n))
}

/// The fencing counter of key `i` of lock `name` (`tracklock_core::fence`).
pub(crate) fn counter_name(prefix: &str, i: usize, name: &str) -> Vec<u8> {
    let key = key_name(prefix, i, name);
    let c = tracklock_core::CounterKey::of(&key);
    [c.head(), &key[..], c.tail()].concat()
}
