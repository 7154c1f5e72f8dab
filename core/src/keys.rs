//! Key naming: `{prefix}:{i}:{name}`, the layout Go's `rueidislock` uses.

use crate::config::ConfigError;

/// Largest supported `key_majority` (so at most `2 * 8 - 1 = 15` keys per lock).
pub const MAX_MAJORITY: usize = 8;
/// Largest number of keys per lock.
pub(crate) const MAX_KEYS: usize = 2 * MAX_MAJORITY - 1;

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

/// Checks a key prefix.
///
/// The rule: the prefix is not empty, does not end with `:`, and none of its
/// `:`-separated segments other than the first is a non-empty string of
/// ASCII digits (`rueidislock`, `app:locks`, `7:a`, `a:b1` pass; `a:0:b`,
/// `a:12` and `a:` do not).
///
/// The guarantee: two different valid prefixes `P1`, `P2` never produce the
/// same key `{P}:{i}:{name}`, for any indices and names. Proof: say
/// `P1:i:n1 == P2:j:n2` with `P1 != P2`. If neither prefix starts the other,
/// the keys differ inside the shorter one; so say `P2 = P1 + r`, `r` not
/// empty. In the key, `P1` is followed by `:`, the digits of `i` (at least
/// one) and `:` again, so `r` is `:` plus `k` of those digits, and maybe
/// more. `r == ":"` is impossible (the key has a digit where `P2` is
/// followed by `:`). If `P2` ends within the digits, its last segment is
/// `k >= 1` digits; if it goes on, the next character is the `:` after the
/// index, so the digits of `i` form a whole segment of `P2`. Either way
/// `P2` has an all-digit segment after its first, which the rule forbids.
/// (The trailing-`:` rule is not needed for the guarantee; it is kept for
/// clarity.)
///
/// With one prefix, different `(i, name)` give different keys too: the
/// index is digits ended by the first `:` after the prefix.
pub(crate) fn validate_prefix(prefix: &str) -> Result<(), ConfigError> {
    if prefix.is_empty() {
        return Err(ConfigError::EmptyPrefix);
    }
    if prefix.ends_with(':') {
        return Err(ConfigError::AmbiguousPrefix);
    }
    let digits = |seg: &str| !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit());
    if prefix.split(':').skip(1).any(digits) {
        return Err(ConfigError::AmbiguousPrefix);
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
        assert_eq!(validate_prefix("a:0:b"), Err(ConfigError::AmbiguousPrefix));
        assert_eq!(validate_prefix("a::1:b"), Err(ConfigError::AmbiguousPrefix));
        assert!(validate_prefix("7:a").is_ok());
        assert!(validate_prefix("12").is_ok());
        assert!(validate_prefix("a:b1:c").is_ok());
        assert!(validate_prefix("a::b").is_ok());
        assert!(validate_prefix(":a").is_ok());
    }
}
