//! Hostile bytes: random well-formed RESP3 frames and mutations of them,
//! for the core reader's unit tests and the simulator's mangling node. The
//! caller brings the randomness ([`Dice`]), so each keeps its own seeded
//! generator and a seed replays.

/// A seeded source of random draws. Only [`Dice::next_u64`] and
/// [`Dice::fill`] are required; the simulator's generator takes every
/// other draw from here too, so the same seed gives the same bytes
/// wherever it is used.
pub trait Dice {
    /// A uniformly random `u64`.
    fn next_u64(&mut self) -> u64;

    /// Fills `buf` with random bytes.
    fn fill(&mut self, buf: &mut [u8]);

    /// Uniform in `0..n` (`0`, drawing nothing, when `n` is `0`).
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        // Multiply-shift: unbiased enough for tests, and branch-free.
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..=hi` (`lo` when `hi <= lo`).
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        lo + self.below(hi - lo + 1)
    }

    /// Uniform in `lo..=hi` for signed values.
    fn range_i64(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        lo + self.below((hi - lo) as u64 + 1) as i64
    }

    /// Uniform in `[0, 1)`.
    fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `p`.
    fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }

    /// A uniformly chosen element of a non-empty slice.
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

const WORDS: [&[u8]; 12] = [
    b"OK",
    b"invalidate",
    b"rueidislock:0:n0",
    b"rueidislock:1:n0",
    b"rueidislock:2:n1",
    b"NOSCRIPT No matching script",
    b"version",
    b"7.0.15",
    b"",
    b"\r\n",
    b"-1",
    b"PONG",
];

fn word(rng: &mut impl Dice) -> Vec<u8> {
    if rng.chance(0.6) {
        rng.pick(&WORDS).to_vec()
    } else {
        let mut b = vec![0u8; rng.below(12) as usize];
        rng.fill(&mut b);
        b
    }
}

/// A random, well-formed RESP3 frame (any type, nested up to `depth`).
pub fn random_frame(rng: &mut impl Dice, depth: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let kinds = if depth == 0 { 9 } else { 14 };
    match rng.below(kinds) {
        0 => {
            out.push(b'+');
            out.extend(word(rng).into_iter().filter(|b| *b != b'\r' && *b != b'\n'));
            out.extend_from_slice(b"\r\n");
        }
        1 => {
            out.push(b'-');
            out.extend(word(rng).into_iter().filter(|b| *b != b'\r' && *b != b'\n'));
            out.extend_from_slice(b"\r\n");
        }
        2 => {
            let v = match rng.below(4) {
                0 => rng.range_i64(-3, 3),
                1 => rng.range_i64(-10_000, 10_000),
                2 => i64::MAX,
                _ => i64::MIN,
            };
            out.extend_from_slice(format!(":{v}\r\n").as_bytes());
        }
        3 => {
            let w = word(rng);
            out.extend_from_slice(format!("${}\r\n", w.len()).as_bytes());
            out.extend_from_slice(&w);
            out.extend_from_slice(b"\r\n");
        }
        4 => out.extend_from_slice(b"_\r\n"),
        5 => out.extend_from_slice(if rng.chance(0.5) {
            b"#t\r\n"
        } else {
            b"#f\r\n"
        }),
        6 => out.extend_from_slice(b",1.5\r\n"),
        7 => out.extend_from_slice(b"(12345678901234567890\r\n"),
        8 => {
            let w = word(rng);
            out.extend_from_slice(format!("={}\r\ntxt:", w.len() + 4).as_bytes());
            out.extend_from_slice(&w);
            out.extend_from_slice(b"\r\n");
        }
        k => {
            let tag = [b'*', b'~', b'%', b'>', b'|'][(k - 9) as usize];
            let n = rng.below(4);
            let items = if tag == b'%' || tag == b'|' { 2 * n } else { n };
            out.push(tag);
            out.extend_from_slice(format!("{n}\r\n").as_bytes());
            if tag == b'>' && n >= 1 && rng.chance(0.7) {
                // A plausible invalidation.
                out.extend_from_slice(b"$10\r\ninvalidate\r\n");
                for _ in 1..items {
                    out.extend(random_frame(rng, depth - 1));
                }
            } else {
                for _ in 0..items {
                    out.extend(random_frame(rng, depth - 1));
                }
            }
            if tag == b'|' {
                // An attribute precedes a real frame.
                out.extend(random_frame(rng, depth - 1));
            }
        }
    }
    out
}

/// Mutates `bytes` in place: flips, truncations, insertions, splices of
/// random frames, or a complete replacement.
pub fn mutate(rng: &mut impl Dice, bytes: &mut Vec<u8>) {
    for _ in 0..rng.range(1, 3) {
        let len = bytes.len();
        match rng.below(8) {
            0 if len > 0 => {
                let i = rng.below(len as u64) as usize;
                bytes[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len as u64) as usize;
                bytes[i] = *rng.pick(b"+-:$*%~>_#,(=!|\r\n0123456789");
            }
            2 if len > 0 => bytes.truncate(rng.below(len as u64) as usize),
            3 => {
                let i = rng.below(len as u64 + 1) as usize;
                let mut extra = vec![0u8; rng.range(1, 8) as usize];
                rng.fill(&mut extra);
                bytes.splice(i..i, extra);
            }
            4 => {
                let f = random_frame(rng, 3);
                let i = if rng.chance(0.5) { 0 } else { len };
                bytes.splice(i..i, f);
            }
            5 if len > 2 => {
                let a = rng.below(len as u64) as usize;
                let b = rng.below(len as u64) as usize;
                let (a, b) = (a.min(b), a.max(b));
                let dup = bytes[a..b].to_vec();
                bytes.splice(b..b, dup);
            }
            6 => *bytes = random_frame(rng, 3),
            _ => {
                // Swap a digit for a larger one (lengths and counts lie).
                if let Some(i) = bytes.iter().position(|b| b.is_ascii_digit()) {
                    bytes[i] = b'9';
                }
            }
        }
    }
}
