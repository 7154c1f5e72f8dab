//! Key naming: `{prefix}:{i}:{name}`, the layout Go's `rueidislock` uses.

use crate::config::ConfigError;

/// Largest supported `key_majority` (so at most `2 * 8 - 1 = 15` keys per lock).
pub const MAX_MAJORITY: usize = 8;
/// Largest number of keys per lock.
pub const MAX_KEYS: usize = 2 * MAX_MAJORITY - 1;

/// The decimal digits of key index `i` (`i < MAX_KEYS`, so at most two).
pub(crate) fn index_digits(i: u8, buf: &mut [u8; 2]) -> &[u8] {
    if i < 10 {
        buf[0] = b'0' + i;
        &buf[..1]
    } else {
        buf[0] = b'0' + i / 10;
        buf[1] = b'0' + i % 10;
        &buf[..2]
    }
}

/// The parts whose concatenation is the key `prefix:i:name`.
pub(crate) fn key_parts<'a>(
    prefix: &'a [u8],
    i: u8,
    name: &'a [u8],
    digits: &'a mut [u8; 2],
) -> [&'a [u8]; 5] {
    [prefix, b":", index_digits(i, digits), b":", name]
}

/// Splits a key back into `(index, name)` when it has our prefix.
pub(crate) fn parse_key<'a>(prefix: &[u8], key: &'a [u8]) -> Option<(u8, &'a [u8])> {
    let rest = key.strip_prefix(prefix)?.strip_prefix(b":")?;
    let colon = rest.iter().position(|&b| b == b':')?;
    let (digits, name) = (&rest[..colon], &rest[colon + 1..]);
    if digits.is_empty() || digits.len() > 2 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let i = digits.iter().fold(0u8, |acc, d| acc * 10 + (d - b'0'));
    if usize::from(i) >= MAX_KEYS || name.is_empty() {
        return None;
    }
    Some((i, name))
}

/// Rejects prefixes that make key names ambiguous: an empty prefix, one
/// ending in `:`, or one ending in `:<digits>` (then `a:1` + `:0:x` and
/// `a` + `:1:0:x`-style names collide when parsed back).
pub(crate) fn validate_prefix(prefix: &str) -> Result<(), ConfigError> {
    if prefix.is_empty() {
        return Err(ConfigError::EmptyPrefix);
    }
    if prefix.ends_with(':') {
        return Err(ConfigError::AmbiguousPrefix);
    }
    if let Some(pos) = prefix.rfind(':') {
        let tail = &prefix[pos + 1..];
        if !tail.is_empty() && tail.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ConfigError::AmbiguousPrefix);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut d = [0; 2];
        let parts = key_parts(b"rueidislock", 12, b"my:lock", &mut d);
        let key: heapless::Vec<u8, 64> = parts.iter().flat_map(|p| p.iter().copied()).collect();
        assert_eq!(&key[..], b"rueidislock:12:my:lock");
        assert_eq!(parse_key(b"rueidislock", &key), Some((12, &b"my:lock"[..])));
    }

    #[test]
    fn rejects_foreign_keys() {
        assert_eq!(parse_key(b"p", b"q:0:x"), None);
        assert_eq!(parse_key(b"p", b"p:x:y"), None);
        assert_eq!(parse_key(b"p", b"p:0:"), None);
        assert_eq!(parse_key(b"p", b"p:99:y"), None);
        assert_eq!(parse_key(b"p", b"px:0:y"), None);
        assert_eq!(parse_key(b"p", b"p:0"), None);
    }

    #[test]
    fn prefix_rules() {
        assert!(validate_prefix("rueidislock").is_ok());
        assert!(validate_prefix("app:locks").is_ok());
        assert_eq!(validate_prefix(""), Err(ConfigError::EmptyPrefix));
        assert_eq!(validate_prefix("a:"), Err(ConfigError::AmbiguousPrefix));
        assert_eq!(validate_prefix("a:12"), Err(ConfigError::AmbiguousPrefix));
    }
}
