//! Key prefixes: two different valid prefixes never produce the same key
//! `{prefix}:{i}:{name}`, checked by brute force over short prefixes and
//! names (the rule and its proof are on `ConfigError::AmbiguousPrefix`).

use std::collections::HashMap;

use tracklock_core::{Config, ConfigError, Text};

/// The prefix check, through the public validation.
fn validate_prefix(p: &str) -> Result<(), ConfigError> {
    Config::default()
        .with_prefix(Text::new(p).expect("fits"))
        .validate()
}

/// Every string over `alphabet` of length `1..=max`.
fn strings(alphabet: &[u8], max: usize) -> Vec<String> {
    let mut all = Vec::new();
    let mut level = vec![String::new()];
    for _ in 0..max {
        let mut next = Vec::new();
        for s in &level {
            for &c in alphabet {
                let mut t = s.clone();
                t.push(c as char);
                next.push(t);
            }
        }
        all.extend(next.iter().cloned());
        level = next;
    }
    all
}

/// Every way to read `key` as `{prefix}:{i}:{name}` with a real index
/// (`0..15`, written without leading zeros) and a non-empty name.
/// (Plain loops: this runs for millions of keys in unoptimized tests.)
fn readings<'k>(key: &'k str, mut f: impl FnMut(&'k str, u8, &'k str)) {
    let b = key.as_bytes();
    let mut p = 1;
    while p < b.len() {
        if b[p] == b':' {
            let mut end = p + 1;
            let mut i: u32 = 0;
            while end < b.len() && b[end].is_ascii_digit() && end - p <= 2 {
                i = i * 10 + u32::from(b[end] - b'0');
                end += 1;
            }
            let digits = end - p - 1;
            let canonical = digits == 1 || (digits == 2 && b[p + 1] != b'0');
            if canonical && i < 15 && end + 1 < b.len() && b[end] == b':' {
                f(&key[..p], i as u8, &key[end + 1..]);
            }
        }
        p += 1;
    }
}

fn parses(key: &str) -> Vec<(&str, u8, &str)> {
    let mut out = Vec::new();
    readings(key, |p, i, n| out.push((p, i, n)));
    out
}

#[test]
fn different_valid_prefixes_never_share_a_key() {
    // Every prefix of up to 5 characters over `ab01:`; names: every one of
    // up to 4 characters over the same alphabet, plus those of 5 over
    // `a0:`, since names of 5 are needed to see the collision the old rule
    // let through (`a` + `a:0:a` against `a:0:a` + `a`).
    let alphabet = b"ab01:";
    let prefixes = strings(alphabet, 5);
    let mut names = strings(alphabet, 4);
    names.extend(strings(b"a0:", 5).into_iter().filter(|n| n.len() == 5));
    let mut verdicts: HashMap<String, bool> = HashMap::new();
    let mut is_valid = |p: &str| match verdicts.get(p) {
        Some(&v) => v,
        None => {
            let v = validate_prefix(p).is_ok();
            verdicts.insert(p.to_owned(), v);
            v
        }
    };
    let valid: Vec<&str> = prefixes
        .iter()
        .map(String::as_str)
        .filter(|p| is_valid(p))
        .collect();
    assert!(valid.len() > 2000, "{} valid prefixes", valid.len());
    let mut key = String::new();
    let mut keys = 0u64;
    for &p1 in &valid {
        for i in [0u8, 1, 10] {
            key.clear();
            key.push_str(p1);
            key.push(':');
            key.push_str(&i.to_string());
            key.push(':');
            let head = key.len();
            for n1 in &names {
                key.truncate(head);
                key.push_str(n1);
                keys += 1;
                // Comparing with every key of every other valid prefix
                // (whatever its index and name) comes down to reading this
                // key back every possible way: an equal key of `p2` is one
                // of those readings.
                readings(&key, |p2, j, n2| {
                    if p2.len() != p1.len() && is_valid(p2) {
                        panic!(
                            "{p1:?} (key {i}, name {n1:?}) and {p2:?} (key {j}, name {n2:?}) \
                             both produce the same key"
                        );
                    }
                });
            }
        }
    }
    assert!(keys > 6_000_000, "{keys} keys");

    // The collision the rule exists for.
    assert_eq!(validate_prefix("a:0:b"), Err(ConfigError::AmbiguousPrefix));
    assert!(parses("a:0:b:0:x").contains(&("a", 0, "b:0:x")));
    assert!(parses("a:0:b:0:x").contains(&("a:0:b", 0, "x")));
    for ok in ["rueidislock", "app:locks", "7:a", "a:b1:c", "a::b", ":a"] {
        assert_eq!(validate_prefix(ok), Ok(()), "{ok}");
    }
    for bad in ["a:", "a:0", "a:12", "a:0:b", "x:1:y:z", "a::1:b"] {
        assert_eq!(
            validate_prefix(bad),
            Err(ConfigError::AmbiguousPrefix),
            "{bad}"
        );
    }
    assert_eq!(validate_prefix(""), Err(ConfigError::EmptyPrefix));
}
