//! Hostile bytes against the reader, on stable: a seeded corpus of random
//! well-formed RESP3 frames, their prefixes, mutations and pure noise (the
//! `cargo fuzz` target `resp_parse` does the same with coverage guidance).
//!
//! The reader must never panic, never claim more bytes than it was given,
//! accept every well-formed frame whole and every strict prefix of it as
//! incomplete, and what it claims must parse again to the same frame.

extern crate std;

use std::format;
use std::vec::Vec;

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

use super::{parse, Frame};

struct Rng(ChaCha8Rng);

impl Rng {
    /// Uniform in `0..n` (0 when `n` is 0).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.0.next_u64()) * u128::from(n)) >> 64) as u64
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    fn bytes(&mut self, n: u64) -> Vec<u8> {
        let mut b = std::vec![0u8; self.below(n) as usize];
        self.0.fill_bytes(&mut b);
        b
    }
}

const WORDS: [&[u8]; 10] = [
    b"OK",
    b"invalidate",
    b"rueidislock:0:n0",
    b"NOSCRIPT No matching script",
    b"7.0.15",
    b"",
    b"\r\n",
    b"-1",
    b"PONG",
    b"version",
];

fn word(rng: &mut Rng) -> Vec<u8> {
    if rng.chance(60) {
        rng.pick(&WORDS).to_vec()
    } else {
        rng.bytes(12)
    }
}

fn line(rng: &mut Rng) -> Vec<u8> {
    word(rng)
        .into_iter()
        .filter(|b| *b != b'\r' && *b != b'\n')
        .collect()
}

/// A random well-formed frame of any type, nested up to `depth`.
fn random_frame(rng: &mut Rng, depth: u32) -> Vec<u8> {
    let mut out = Vec::new();
    match rng.below(if depth == 0 { 9 } else { 14 }) {
        0 | 1 => {
            out.push(if rng.chance(50) { b'+' } else { b'-' });
            out.extend(line(rng));
            out.extend_from_slice(b"\r\n");
        }
        2 => {
            let v = *rng.pick(&[0, -3, 12_345, i64::MAX, i64::MIN]);
            out.extend_from_slice(format!(":{v}\r\n").as_bytes());
        }
        3 => {
            let w = word(rng);
            out.extend_from_slice(format!("${}\r\n", w.len()).as_bytes());
            out.extend_from_slice(&w);
            out.extend_from_slice(b"\r\n");
        }
        4 => out.extend_from_slice(b"_\r\n"),
        5 => out.extend_from_slice(b"#t\r\n"),
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
            for _ in 0..items {
                out.extend(random_frame(rng, depth - 1));
            }
            if tag == b'|' {
                // An attribute precedes a real frame.
                out.extend(random_frame(rng, depth - 1));
            }
        }
    }
    out
}

/// Flips, overwrites, truncates, inserts or splices.
fn mutate(rng: &mut Rng, bytes: &mut Vec<u8>) {
    for _ in 0..=rng.below(2) {
        let len = bytes.len() as u64;
        match rng.below(6) {
            0 if len > 0 => {
                let i = rng.below(len) as usize;
                bytes[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len) as usize;
                bytes[i] = *rng.pick(b"+-:$*%~>_#,(=!|\r\n0123456789");
            }
            2 if len > 0 => bytes.truncate(rng.below(len) as usize),
            3 => {
                let i = rng.below(len + 1) as usize;
                let extra = rng.bytes(8);
                bytes.splice(i..i, extra);
            }
            4 => {
                let f = random_frame(rng, 3);
                let i = if rng.chance(50) { 0 } else { bytes.len() };
                bytes.splice(i..i, f);
            }
            _ => {
                // Lengths and counts lie.
                if let Some(i) = bytes.iter().position(u8::is_ascii_digit) {
                    bytes[i] = b'9';
                }
            }
        }
    }
}

/// Visits every element of every aggregate (the iterator re-parses).
fn walk(f: &Frame<'_>, depth: usize) {
    assert!(depth < 64, "runaway nesting");
    if let Some(a) = f.as_aggregate() {
        let mut n = 0;
        for item in a.iter() {
            n += 1;
            walk(&item, depth + 1);
        }
        assert_eq!(n, a.len());
    }
}

#[test]
fn hostile_corpus() {
    let mut rng = Rng(ChaCha8Rng::seed_from_u64(0x0bad_b17e5));
    for i in 0..5_000 {
        let frame = random_frame(&mut rng, 4);
        let show = |b: &[u8]| std::string::String::from_utf8_lossy(b).into_owned();
        match parse(&frame) {
            Ok(Some((f, n))) => {
                assert_eq!(n, frame.len(), "case {i}: {}", show(&frame));
                walk(&f, 0);
            }
            other => panic!("case {i}: well-formed {} gave {other:?}", show(&frame)),
        }
        let cut = rng.below(frame.len() as u64) as usize;
        assert!(
            matches!(parse(&frame[..cut]), Ok(None)),
            "case {i}: prefix {cut} of {}",
            show(&frame)
        );
        let mut bytes = frame.clone();
        mutate(&mut rng, &mut bytes);
        if let Ok(Some((f, n))) = parse(&bytes) {
            assert!(n > 0 && n <= bytes.len(), "case {i}");
            walk(&f, 0);
            assert_eq!(parse(&bytes[..n]), Ok(Some((f, n))), "case {i}");
        }
        let noise = rng.bytes(40);
        if let Ok(Some((f, n))) = parse(&noise) {
            assert!(n <= noise.len());
            walk(&f, 0);
        }
    }
}
