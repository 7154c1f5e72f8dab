//! The request slab: every live lock request, addressed by a [`ReqIdx`].
//!
//! A [`LockId`] is an index plus a generation; the index is reused once its
//! request is gone, the generation never, so a stale id finds nothing.

use crate::event::{LockError, LockId};
use crate::lock::Lock;
use crate::storage::Seq;

use super::LOCK_CAP;

/// Index of a request in the slab (not a Redis hash slot, not a driver slot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct ReqIdx(u32);

impl ReqIdx {
    pub(crate) fn get(self) -> usize {
        self.0 as usize
    }
}

#[derive(Debug, Clone)]
struct Entry {
    generation: u32,
    lock: Option<Lock>,
}

/// Live lock requests.
#[derive(Debug, Default)]
pub(crate) struct Requests {
    entries: Seq<Entry, LOCK_CAP>,
    live: usize,
}

impl Requests {
    /// Number of live requests.
    pub(crate) fn live(&self) -> usize {
        self.live
    }

    /// Stores `lock` in the lowest free index.
    pub(crate) fn insert(&mut self, lock: Lock) -> Result<LockId, LockError> {
        let free = self
            .entries
            .as_slice()
            .iter()
            .position(|e| e.lock.is_none());
        let i = match free {
            Some(i) => i,
            None => {
                self.entries
                    .push(Entry {
                        generation: 0,
                        lock: None,
                    })
                    .map_err(|_| LockError::CapacityExceeded)?;
                self.entries.len() - 1
            }
        };
        let e = &mut self.entries.as_mut_slice()[i];
        e.generation = e.generation.wrapping_add(1);
        e.lock = Some(lock);
        self.live += 1;
        Ok(LockId {
            slot: i as u32,
            generation: e.generation,
        })
    }

    /// Takes the request out; its index is free again.
    pub(crate) fn remove(&mut self, req: ReqIdx) -> Option<Lock> {
        let lock = self.entries.as_mut_slice().get_mut(req.get())?.lock.take();
        if lock.is_some() {
            self.live -= 1;
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

    /// Every live request, mutably.
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = &mut Lock> {
        self.entries
            .as_mut_slice()
            .iter_mut()
            .filter_map(|e| e.lock.as_mut())
    }
}
