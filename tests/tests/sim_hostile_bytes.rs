//! Hostile bytes, on stable: a seeded corpus of random and mutated RESP3
//! for the reader, and simulated runs where one node's replies are mangled
//! while the engine holds locks (the `cargo fuzz` targets in `fuzz/` do the
//! same with coverage guidance on nightly).
//!
//! The reader must never panic, never claim more bytes than it was given,
//! accept every well-formed frame whole and every strict prefix of it as
//! incomplete. The engine must never panic and a lock whose majority lives
//! on the honest node must never be lost. (Mutual exclusion is not checked
//! here: a node that lies about its key can hand it out twice, which no
//! quorum lock survives.)

use tracklock_core::resp::{parse, Frame};
use tracklock_tests::sim::hostile::{mutate, random_frame};
use tracklock_tests::sim::{batch, env_u64, Params, SimRng};

/// Visits every element of every aggregate (the iterator re-parses).
fn walk(f: &Frame<'_>, depth: usize) -> usize {
    assert!(depth < 64, "runaway nesting");
    match f.as_aggregate() {
        Some(a) => {
            let mut n = 0;
            for item in a.iter() {
                n += 1 + walk(&item, depth + 1);
            }
            assert!(n >= a.len().min(1) || a.is_empty());
            n
        }
        None => 0,
    }
}

#[test]
fn sim_hostile_bytes_reader_corpus() {
    let count = env_u64("TRACKLOCK_SIM_SEEDS").unwrap_or(5_000);
    let mut rng = SimRng::new(0x0bad_b17e5);
    for i in 0..count {
        let frame = random_frame(&mut rng, 4);
        // A well-formed frame parses whole; every strict prefix is incomplete.
        match parse(&frame) {
            Ok(Some((f, n))) => {
                assert_eq!(
                    n,
                    frame.len(),
                    "case {i}: {:?}",
                    String::from_utf8_lossy(&frame)
                );
                walk(&f, 0);
            }
            other => panic!(
                "case {i}: well-formed {:?} gave {other:?}",
                String::from_utf8_lossy(&frame)
            ),
        }
        let cut = rng.below(frame.len() as u64) as usize;
        assert!(
            matches!(parse(&frame[..cut]), Ok(None)),
            "case {i}: prefix {cut} of {:?}",
            String::from_utf8_lossy(&frame)
        );
        // Mutations: no panic, never more than given, and what is claimed
        // parses again to the same frame.
        let mut bytes = frame.clone();
        mutate(&mut rng, &mut bytes);
        if let Ok(Some((f, n))) = parse(&bytes) {
            assert!(n > 0 && n <= bytes.len(), "case {i}");
            walk(&f, 0);
            let again = parse(&bytes[..n]).expect("claimed bytes reparse");
            assert_eq!(again, Some((f, n)), "case {i}");
        }
        // Pure noise.
        let mut noise = vec![0u8; rng.below(40) as usize];
        rng.fill(&mut noise);
        if let Ok(Some((f, n))) = parse(&noise) {
            assert!(n <= noise.len());
            walk(&f, 0);
        }
    }
}

#[test]
fn sim_hostile_bytes_engine_with_a_mangling_node() {
    let seeds = env_u64("TRACKLOCK_SIM_SEEDS").map_or(300, |n| n / 5);
    let stats = batch("sim_hostile_bytes", Params::hostile, 1 << 40, seeds);
    assert!(stats.mangled > 0, "nothing was mangled");
    assert!(stats.acquired > 0, "nothing was acquired");
}
