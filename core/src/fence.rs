//! Fencing tokens: a number handed out with every fenced lock, larger for
//! every later holder, so that a resource can refuse a holder that lost
//! the lock and does not know it yet (a process paused past its lease).
//!
//! **Layout.** Every lock key `K` has a counter key `C(K)` in `K`'s hash
//! slot ([`CounterKey`]). Counters are plain integers without a TTL; they
//! only grow.
//!
//! **Protocol** (only with [`crate::Config::fencing`]; unfenced locks send
//! exactly what they always did).
//! 1. Acquisition still pipelines `SET K v NX PX t` per key, but the `PTTL K`
//!    behind it becomes a script (`EVAL`, `scripts::FENCE_READ`) that returns
//!    `PTTL K` *and*, when `K` still carries `v`, the value of `C(K)`. No
//!    extra round trip: the read travels with the acquisition.
//! 2. Once a majority of keys is ours, the token candidate is `t = max + 1`
//!    over the counters read from the keys we hold. A second script
//!    (`scripts::FENCE_RAISE`) sets `C(K) = t` on each held key, only while
//!    `K` still carries `v` and only if `C(K) < t`.
//! 3. The lock is granted with token `t` once a majority of counters
//!    accepted the raise. Fewer than a majority is a failed attempt like a
//!    contended one: its keys are released and a `Wait` request retries.
//!    A `Try`/`Force` request reports [`crate::Event::NotLocked`] when
//!    another value took the keys (another `force_lock`), the error reply
//!    when a node refused; keys that merely vanished (deleted, flushed:
//!    nobody holds the name) make it begin again, twice at most.
//!
//! **Guarantee.** If holder `B` started acquiring after holder `A` was
//! granted its lock (in particular: whenever `B` was granted after `A`
//! unlocked, lost or was forced out), then `token(B) > token(A)`, as long
//! as a majority of the name's counters keep their values. Sketch: `A`
//! raised the counters of a majority `S` while holding their keys, before
//! its grant. `B` read the counters of a majority `R` while holding their
//! keys. `S` and `R` intersect in a key `K`; `A`'s value was on `K` when
//! `A` raised `C(K)`, and `B`'s `SET` on `K` came after `A`'s grant, so
//! after `A`'s value left `K` (values are fresh per attempt, so `A`'s
//! value never comes back). `B`'s read of `C(K)` followed its own `SET`
//! while its value was still there, hence after `A`'s raise: `B` read at
//! least `token(A)` and took `max + 1`. Counters never decrease, so no
//! later write undoes this.
//!
//! **What breaks it** is what breaks the lock itself: losing a majority of
//! one name's counters (a `FLUSHALL`, deleting them, a node restarted
//! without persistence holding a majority of them), or a failover whose
//! asynchronous replication lost counter writes on a majority of them.
//! Tokens are exact up to 2^53 (Lua numbers), far beyond any count of
//! acquisitions.
//!
//! **Mixed fleets.** Go's `rueidislock` and unfenced tracklock lockers
//! exclude fenced ones as before (same keys, same `SET NX`) but never touch
//! counters: tokens order the fenced holders only.
//!
//! **Local hand-off** passes keys without a round trip, so it cannot raise
//! counters: fenced locks never hand off (`Config::local_handoff` is
//! ignored for them); the next local waiter acquires through Redis.

use crate::cluster::{crc16, has_hash_tag};

/// The suffix of a counter key whose lock key has a hash tag, or no `}`.
const SUFFIX: &[u8] = b":fence";
/// The suffix of the other counter keys, before the four slot-fixing bytes.
const SOLVED: &[u8] = b":fence:";
/// A slot-fixing byte is `BASE | nibble`: `@`, `A` … `O`, never a brace.
const BASE: u8 = 0x40;

/// How the counter key of a lock key `K` is formed: `head + K + tail`,
/// always in `K`'s hash slot.
///
/// - `K` has a hash tag: `K:fence` (the tag still decides the slot);
/// - `K` is not empty and has no `}`: `{K}:fence` (the tag is `K` itself, and a key without a
///   tag hashes whole);
/// - otherwise (a `}` but no valid tag, e.g. `a}b` or `x{}y}`):
///   `K:fence:` plus four bytes from `@`..`O` chosen so that the counter
///   hashes to `K`'s slot. CRC16 is linear: the low four bits of the four
///   bytes move the CRC by a linear map whose low 14 bits have full rank,
///   so every slot is reached (solved, not searched; checked for every
///   slot by a unit test).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CounterKey {
    open: bool,
    tail: [u8; 11],
    tail_len: u8,
}

impl CounterKey {
    /// The counter key of lock key `key`.
    pub fn of(key: &[u8]) -> CounterKey {
        CounterKey::of_parts(&[key])
    }

    /// The counter key of the lock key made of `parts` concatenated.
    pub(crate) fn of_parts(parts: &[&[u8]]) -> CounterKey {
        let mut tail = [0u8; 11];
        let tagged = has_hash_tag(parts);
        let empty = parts.iter().all(|p| p.is_empty());
        // `{}` is no tag: an empty key takes the solved layout.
        if tagged || !(empty || parts.iter().any(|p| p.contains(&b'}'))) {
            let suffix: &[u8] = if tagged { SUFFIX } else { CLOSED_SUFFIX };
            tail[..suffix.len()].copy_from_slice(suffix);
            return CounterKey {
                open: !tagged,
                tail,
                tail_len: suffix.len() as u8,
            };
        }
        tail[..SOLVED.len()].copy_from_slice(SOLVED);
        let base = [BASE; 4];
        let c0 = crc16(parts.iter().copied().chain([SOLVED, &base[..]]));
        let target = crc16(parts.iter().copied()) & MASK;
        let nibbles = solve((c0 ^ target) & MASK);
        for (i, b) in tail[SOLVED.len()..].iter_mut().enumerate() {
            *b = BASE | ((nibbles >> (4 * (3 - i))) & 0xf) as u8;
        }
        CounterKey {
            open: false,
            tail,
            tail_len: (SOLVED.len() + 4) as u8,
        }
    }

    /// What goes before the lock key (`{` or nothing).
    pub fn head(&self) -> &'static [u8] {
        if self.open {
            b"{"
        } else {
            b""
        }
    }

    /// What goes after the lock key (`}:fence`, `:fence`, or `:fence:` and
    /// four bytes).
    pub fn tail(&self) -> &[u8] {
        &self.tail[..usize::from(self.tail_len)]
    }
}

/// The suffix of a counter key `{K}`.
const CLOSED_SUFFIX: &[u8] = b"}:fence";

/// Slot bits of a CRC.
const MASK: u16 = 0x3fff;

/// The CRC change made by setting bit `j` (0..16, high nibble first) of the
/// four slot-fixing nibbles: with a zero initial value and no final xor,
/// CRC16/XMODEM is linear in the message, and leading bytes do not change
/// the effect of a difference in the last four.
const fn column(j: usize) -> u16 {
    let byte = j / 4;
    let bit = 3 - (j % 4);
    let mut msg = [0u8; 4];
    msg[byte] = 1 << bit;
    const_crc16(&msg)
}

const fn const_crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    let mut i = 0;
    while i < bytes.len() {
        crc ^= (bytes[i] as u16) << 8;
        let mut b = 0;
        while b < 8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
            b += 1;
        }
        i += 1;
    }
    crc
}

/// Row-reduced basis of the slot bits: `(value, nibble bits)` pairs, each
/// with a distinct leading bit; `ROWS` of them.
const fn basis() -> ([(u16, u16); 16], usize) {
    let mut rows = [(0u16, 0u16); 16];
    let mut n = 0;
    let mut j = 0;
    while j < 16 {
        let mut v = column(j) & MASK;
        let mut combo = 1u16 << (15 - j);
        let mut r = 0;
        while r < n {
            let lead = 1u16 << (15 - rows[r].0.leading_zeros());
            if v & lead != 0 {
                v ^= rows[r].0;
                combo ^= rows[r].1;
            }
            r += 1;
        }
        if v != 0 {
            // Keep the basis reduced: clear the new leading bit elsewhere.
            let lead = 1u16 << (15 - v.leading_zeros());
            let mut r = 0;
            while r < n {
                if rows[r].0 & lead != 0 {
                    rows[r].0 ^= v;
                    rows[r].1 ^= combo;
                }
                r += 1;
            }
            rows[n] = (v, combo);
            n += 1;
        }
        j += 1;
    }
    (rows, n)
}

const BASIS: ([(u16, u16); 16], usize) = basis();

// The proof that every slot is reachable: 14 independent slot bits.
const _: () = assert!(BASIS.1 == 14);

/// The nibble bits whose CRC change has slot bits `delta`.
fn solve(delta: u16) -> u16 {
    let (rows, n) = BASIS;
    let mut d = delta;
    let mut x = 0;
    for &(v, combo) in &rows[..n] {
        let lead = 1u16 << (15 - v.leading_zeros());
        if d & lead != 0 {
            d ^= v;
            x ^= combo;
        }
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::key_slot;
    use rand_chacha::ChaCha8Rng;
    use rand_core::{RngCore, SeedableRng};

    fn counter(key: &[u8]) -> heapless::Vec<u8, 600> {
        let c = CounterKey::of(key);
        let mut v = heapless::Vec::new();
        v.extend_from_slice(c.head()).unwrap();
        v.extend_from_slice(key).unwrap();
        v.extend_from_slice(c.tail()).unwrap();
        v
    }

    #[test]
    fn layouts() {
        assert_eq!(&counter(b"p:0:{a}b")[..], b"p:0:{a}b:fence");
        assert_eq!(&counter(b"p:0:name")[..], b"{p:0:name}:fence");
        assert_eq!(&counter(b"p:0:a{b")[..], b"{p:0:a{b}:fence");
        let c = counter(b"p:0:a}b");
        assert!(c.starts_with(b"p:0:a}b:fence:") && c.len() == b"p:0:a}b:fence:".len() + 4);
        assert!(!c.contains(&b'{'));
    }

    #[test]
    fn every_slot_is_reachable() {
        // The solver for each of the 16 384 slot differences.
        for delta in 0..=MASK {
            let x = solve(delta);
            let mut change = 0u16;
            for j in 0..16 {
                if x & (1 << (15 - j)) != 0 {
                    change ^= column(j);
                }
            }
            assert_eq!(change & MASK, delta);
        }
    }

    #[test]
    fn counter_shares_the_slot_of_hostile_keys() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let alphabet = b"{}{}{}ab:01\x00\xff";
        for _ in 0..200_000 {
            let len = (rng.next_u32() % 24) as usize;
            let mut key = heapless::Vec::<u8, 32>::new();
            for _ in 0..len {
                let b = alphabet[(rng.next_u32() as usize) % alphabet.len()];
                key.push(b).unwrap();
            }
            let c = counter(&key);
            assert_eq!(key_slot(&[&c]), key_slot(&[&key]), "{:?}", &key[..]);
            assert_ne!(&c[..], &key[..]);
        }
    }

    #[test]
    fn parts_and_whole_agree() {
        let whole = CounterKey::of(b"rueidislock:1:x}{y");
        let parts = CounterKey::of_parts(&[b"rueidislock", b":", b"1", b":", b"x}{y"]);
        assert_eq!(whole, parts);
    }
}
