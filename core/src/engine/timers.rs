//! The timer table: each request's next due instant (its lease deadline,
//! next extension, retry, or a key's re-check), in an indexed binary
//! min-heap. `poll_timeout` reads the earliest in O(1); setting, moving or
//! dropping a request's instant costs O(log n). Each request has at most
//! one entry, so the heap never holds stale entries and its size is bounded
//! by the number of requests (the no-alloc capacity).

use crate::storage::Seq;
use crate::time::Instant;

use super::{ReqIdx, LOCK_CAP};

/// Due instants of requests, earliest first.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    /// `(instant, request)`, a binary heap ordered by both (the request
    /// breaks ties, so the order does not depend on insertion history).
    heap: Seq<(Instant, ReqIdx), LOCK_CAP>,
    /// Per request: its position in `heap` plus one; 0 when it has none.
    pos: Seq<u32, LOCK_CAP>,
}

impl Timers {
    /// The earliest due instant.
    pub(crate) fn first(&self) -> Option<Instant> {
        self.heap.as_slice().first().map(|&(at, _)| at)
    }

    /// Takes the request of the earliest instant if it is due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<ReqIdx> {
        let &(at, req) = self.heap.as_slice().first()?;
        if at > now {
            return None;
        }
        self.remove(0);
        Some(req)
    }

    /// Sets (or, with `None`, drops) the due instant of `req`.
    pub(crate) fn set(&mut self, req: ReqIdx, at: Option<Instant>) {
        let i = req.get();
        while self.pos.len() <= i {
            // The request slab has the same capacity: this fits.
            if self.pos.push(0).is_err() {
                return;
            }
        }
        let at_pos = self.pos.as_slice()[i];
        match (at, at_pos) {
            (None, 0) => {}
            (None, p) => self.remove(p as usize - 1),
            (Some(t), 0) => {
                if self.heap.push((t, req)).is_err() {
                    return;
                }
                let last = self.heap.len() - 1;
                self.pos.as_mut_slice()[i] = last as u32 + 1;
                self.sift_up(last);
            }
            (Some(t), p) => {
                let p = p as usize - 1;
                self.heap.as_mut_slice()[p].0 = t;
                let p = self.sift_up(p);
                self.sift_down(p);
            }
        }
    }

    fn remove(&mut self, p: usize) {
        let last = self.heap.len() - 1;
        self.swap(p, last);
        if let Some((_, gone)) = self.heap.pop() {
            self.pos.as_mut_slice()[gone.get()] = 0;
        }
        if p < self.heap.len() {
            let p = self.sift_up(p);
            self.sift_down(p);
        }
    }

    fn swap(&mut self, a: usize, b: usize) {
        let heap = self.heap.as_mut_slice();
        heap.swap(a, b);
        let (ra, rb) = (heap[a].1, heap[b].1);
        let pos = self.pos.as_mut_slice();
        pos[ra.get()] = a as u32 + 1;
        pos[rb.get()] = b as u32 + 1;
    }

    fn sift_up(&mut self, mut p: usize) -> usize {
        while p > 0 {
            let parent = (p - 1) / 2;
            if self.heap.as_slice()[parent] <= self.heap.as_slice()[p] {
                break;
            }
            self.swap(p, parent);
            p = parent;
        }
        p
    }

    fn sift_down(&mut self, mut p: usize) {
        let heap_len = self.heap.len();
        loop {
            let (l, r) = (2 * p + 1, 2 * p + 2);
            let mut least = p;
            for c in [l, r] {
                if c < heap_len && self.heap.as_slice()[c] < self.heap.as_slice()[least] {
                    least = c;
                }
            }
            if least == p {
                return;
            }
            self.swap(p, least);
            p = least;
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use std::vec::Vec;

    use super::*;

    fn t(n: u64) -> Instant {
        Instant::from_nanos(n)
    }

    /// Against a plain list, under a deterministic mix of sets, moves and
    /// drops.
    #[test]
    fn the_earliest_comes_first() {
        let mut timers = Timers::default();
        let mut model: Vec<Option<u64>> = std::vec![None; 40];
        let mut x: u64 = 7;
        for step in 0..4000u64 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let req = ((x >> 33) % 40) as u32;
            let at = (!(x >> 40).is_multiple_of(5)).then_some((x >> 20) % 1000);
            timers.set(ReqIdx::new(req), at.map(t));
            model[req as usize] = at;
            let expected = model.iter().flatten().min().copied();
            assert_eq!(timers.first(), expected.map(t), "step {step}");
            if step % 97 == 0 {
                let now = (x >> 10) % 1000;
                while let Some(r) = timers.pop_due(t(now)) {
                    let due = model[r.get()].take();
                    assert!(due.is_some_and(|d| d <= now), "step {step}");
                }
                assert!(model.iter().flatten().all(|&d| d > now));
            }
        }
    }
}
