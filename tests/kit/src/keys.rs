//! Fixtures: the keys of a lock and fresh names.

use std::sync::atomic::{AtomicUsize, Ordering};

/// The `2m-1` keys of lock `name`: `{prefix}:{i}:{name}`.
pub fn lock_keys(prefix: &str, name: &str, majority: u8) -> Vec<String> {
    (0..(2 * usize::from(majority)).saturating_sub(1))
        .map(|i| format!("{prefix}:{i}:{name}"))
        .collect()
}

/// The keys of `name` with the default prefix (`rueidislock`) and
/// majority (2).
pub fn default_keys(name: &str) -> Vec<String> {
    lock_keys("rueidislock", name, 2)
}

/// A fresh name (unique per process and call) starting with `stem`.
///
/// Its length varies: the three keys of a name differ in one byte only, so
/// (CRC16 being linear) their cluster slots differ by XOR masks fixed by the
/// name's length, and for some lengths no name spreads over three masters.
pub fn fresh(stem: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    format!("{stem}-{}-{n}{}", std::process::id(), "_".repeat(n % 11))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_a_lock() {
        assert_eq!(
            default_keys("n"),
            ["rueidislock:0:n", "rueidislock:1:n", "rueidislock:2:n"]
        );
        assert_eq!(lock_keys("p", "n", 1), ["p:0:n"]);
        assert!(lock_keys("p", "n", 0).is_empty());
        assert_ne!(fresh("a"), fresh("a"));
    }
}
