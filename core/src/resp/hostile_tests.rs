//! Hostile bytes against the reader, on stable: a seeded corpus of random
//! well-formed RESP3 frames, their prefixes, mutations and pure noise (the
//! `cargo fuzz` target `resp_parse` does the same with coverage guidance).
//!
//! The reader must never panic, never claim more bytes than it was given,
//! accept every well-formed frame whole and every strict prefix of it as
//! incomplete, and what it claims must parse again to the same frame.

extern crate std;

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

use tracklock_testkit::hostile::{mutate, random_frame, Dice};

use super::{parse, Frame};

/// The core's own seeded stream through the test kit's generator (the one
/// the simulator's mangling node uses too).
struct Rng(ChaCha8Rng);

impl Dice for Rng {
    fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    fn fill(&mut self, buf: &mut [u8]) {
        self.0.fill_bytes(buf);
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
        let mut noise = std::vec![0u8; rng.below(40) as usize];
        rng.fill(&mut noise);
        if let Ok(Some((f, n))) = parse(&noise) {
            assert!(n <= noise.len());
            walk(&f, 0);
        }
    }
}
