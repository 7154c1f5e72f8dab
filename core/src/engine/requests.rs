//! The request slab, and the queue of requests that have something to do.
//!
//! A [`LockId`] is an index plus a generation; the lowest free index is
//! reused (a min-heap of free indices, O(log n)), the generation never, so
//! a stale id finds nothing.
//!
//! The ready queue is what makes the pump cost O(requests touched) instead
//! of O(requests): every input marks the requests it changed (a reply, an
//! invalidation of their name, a timer of theirs), and the pump visits only
//! those. Requests whose next step waits for transmit room (no-alloc only)
//! are deferred to every following pump, as the old full scan did.

use crate::event::{LockError, LockId};
use crate::lock::Lock;
use crate::storage::{Fifo, MinHeap, Seq};

use super::LOCK_CAP;

/// Index of a request in the slab (not a Redis hash slot, not a driver slot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct ReqIdx(u32);

impl ReqIdx {
    pub(crate) fn new(i: u32) -> ReqIdx {
        ReqIdx(i)
    }

    pub(crate) fn get(self) -> usize {
        self.0 as usize
    }
}

#[derive(Debug, Clone)]
struct Entry {
    generation: u32,
    lock: Option<Lock>,
    /// In `ready`.
    queued: bool,
    /// In `later`.
    deferred: bool,
}

/// Live lock requests.
#[derive(Debug, Default)]
pub(crate) struct Requests {
    entries: Seq<Entry, LOCK_CAP>,
    live: usize,
    /// Indices of `entries` without a request.
    free: MinHeap<u32, LOCK_CAP>,
    /// Requests to visit in the next pump round, each once.
    ready: Fifo<ReqIdx, LOCK_CAP>,
    /// Requests to visit in every pump until their step fits.
    later: Seq<ReqIdx, LOCK_CAP>,
}

impl Requests {
    /// Number of live requests.
    pub(crate) fn live(&self) -> usize {
        self.live
    }

    /// Stores `lock` in the lowest free index.
    pub(crate) fn insert(&mut self, lock: Lock) -> Result<ReqIdx, LockError> {
        let i = match self.free.pop() {
            Some(i) => i as usize,
            None => {
                self.entries
                    .push(Entry {
                        generation: 0,
                        lock: None,
                        queued: false,
                        deferred: false,
                    })
                    .map_err(|_| LockError::CapacityExceeded)?;
                self.entries.len() - 1
            }
        };
        let e = &mut self.entries.as_mut_slice()[i];
        e.generation = e.generation.wrapping_add(1);
        e.lock = Some(lock);
        self.live += 1;
        Ok(ReqIdx(i as u32))
    }

    /// Takes the request out; its index is free again.
    pub(crate) fn remove(&mut self, req: ReqIdx) -> Option<Lock> {
        let lock = self.entries.as_mut_slice().get_mut(req.get())?.lock.take();
        if lock.is_some() {
            self.live -= 1;
            // Room exists: at most every index is free.
            let _ = self.free.push(req.0);
        }
        lock
    }

    /// The live request `id` names.
    pub(crate) fn find(&self, id: LockId) -> Option<ReqIdx> {
        let e = self.entries.as_slice().get(id.slot as usize)?;
        (e.generation == id.generation && e.lock.is_some()).then_some(ReqIdx(id.slot))
    }

    /// The id of the live request at `req`.
    pub(crate) fn id(&self, req: ReqIdx) -> Option<LockId> {
        let e = self.entries.as_slice().get(req.get())?;
        e.lock.as_ref()?;
        Some(LockId {
            slot: req.0,
            generation: e.generation,
        })
    }

    pub(crate) fn get(&self, req: ReqIdx) -> Option<&Lock> {
        self.entries.as_slice().get(req.get())?.lock.as_ref()
    }

    pub(crate) fn get_mut(&mut self, req: ReqIdx) -> Option<&mut Lock> {
        self.entries
            .as_mut_slice()
            .get_mut(req.get())?
            .lock
            .as_mut()
    }

    /// The request at an index known to be live (an engine invariant, not
    /// something an input can break).
    pub(crate) fn at(&mut self, req: ReqIdx) -> &mut Lock {
        self.get_mut(req).expect("request index checked to be live")
    }

    /// Every index the slab has handed out, live or free, in order.
    pub(crate) fn indices(&self) -> impl Iterator<Item = ReqIdx> {
        (0..self.entries.len() as u32).map(ReqIdx)
    }

    /// Every live request.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Lock> {
        self.entries
            .as_slice()
            .iter()
            .filter_map(|e| e.lock.as_ref())
    }

    /// `req` has something to do: the next pump round visits it.
    pub(crate) fn mark(&mut self, req: ReqIdx) {
        let Some(e) = self.entries.as_mut_slice().get_mut(req.get()) else {
            return;
        };
        if e.lock.is_some() && !e.queued {
            e.queued = true;
            // Each index is queued at most once: this fits.
            let _ = self.ready.push_back(req);
        }
    }

    /// Every request has something to do (a connection came or went, the
    /// slot map changed).
    pub(crate) fn mark_all(&mut self) {
        for req in self.indices() {
            self.mark(req);
        }
    }

    /// `req` waits for transmit room: every pump visits it until it fits.
    pub(crate) fn defer(&mut self, req: ReqIdx) {
        let Some(e) = self.entries.as_mut_slice().get_mut(req.get()) else {
            return;
        };
        if !e.deferred {
            e.deferred = true;
            let _ = self.later.push(req);
        }
    }

    /// Marks the deferred requests again (at the start of a pump).
    pub(crate) fn undefer(&mut self) {
        while let Some(req) = self.later.pop() {
            self.entries.as_mut_slice()[req.get()].deferred = false;
            self.mark(req);
        }
    }

    /// True when some request is marked.
    pub(crate) fn any_marked(&self) -> bool {
        !self.ready.is_empty()
    }

    /// Moves the marked requests to `out`; marking them again queues them
    /// for the round after.
    pub(crate) fn take_marked(&mut self, out: &mut Seq<ReqIdx, LOCK_CAP>) {
        while let Some(req) = self.ready.pop_front() {
            self.entries.as_mut_slice()[req.get()].queued = false;
            let _ = out.push(req);
        }
    }

    /// The requests marked since the last [`Requests::take_marked`].
    pub(crate) fn marked(&self) -> impl Iterator<Item = ReqIdx> + '_ {
        self.ready.iter().copied()
    }
}
