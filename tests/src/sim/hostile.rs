//! Hostile bytes: random RESP3 frames and mutations of real replies (the
//! test kit's generator, shared with the core reader's unit tests).

pub use tracklock_testkit::hostile::{mutate, random_frame};

use super::rng::SimRng;

/// What the hostile node does to one reply batch.
pub fn mangle(rng: &mut SimRng, bytes: &mut Vec<u8>) {
    mutate(rng, bytes);
}
