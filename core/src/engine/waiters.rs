//! Local requests on one name: first come, first served. Only the oldest
//! waiter attempts, and not while another request of this locker holds or
//! acquires the name; a release wakes the waiters, or hands the keys
//! straight to the oldest one.

use crate::event::{Event, LockMode};
use crate::lock::{Key, KeyState, LockPhase};
use crate::time::Instant;

use super::{Engine, ReqIdx};

impl Engine {
    /// Passes the keys of the lock in `req` (just unlocked, still valid, no
    /// request in flight) to the oldest local waiter of its name. False when
    /// there is none or the keys cannot move safely.
    pub(super) fn hand_off(&mut self, req: ReqIdx, now: Instant) -> bool {
        let from = self.requests.at(req);
        if now >= from.deadline || from.keys.iter().any(|k| k.inflight != 0) {
            return false;
        }
        let Some(to) = self
            .requests
            .indices()
            .filter(|&s| s != req && self.names_equal(req, s))
            .filter(|&s| {
                let l = self.requests.get(s);
                l.is_some_and(|l| {
                    l.phase == LockPhase::Waiting && l.mode == LockMode::Wait && l.settled()
                })
            })
            .min_by_key(|&s| self.requests.get(s).map_or(u64::MAX, |l| l.seq))
        else {
            return false;
        };
        let from = self.requests.at(req);
        let (keys, value) = (from.keys.clone(), from.value);
        let (t0, deadline, next_extend) = (from.t0, from.deadline, from.next_extend);
        let handoffs = from.handoffs.saturating_add(1);
        let target = self.requests.at(to);
        target.keys = keys;
        target.value = value;
        target.t0 = t0;
        target.deadline = deadline;
        target.next_extend = next_extend;
        target.handoffs = handoffs;
        target.phase = LockPhase::Held;
        target.wake = false;
        target.retry_at = None;
        let source = self.requests.at(req);
        for k in source.keys.iter_mut() {
            *k = Key::new(k.node, k.hash_slot);
        }
        let id = self.requests.id(to).expect("occupied");
        self.emit(Event::Acquired { id });
        true
    }

    /// Local waiters of the name of `req` wait for the release to land.
    pub(super) fn hold_back_waiters(&mut self, req: ReqIdx) {
        for s in self.requests.indices() {
            if s != req && self.names_equal(req, s) {
                let lock = self.requests.at(s);
                if lock.phase == LockPhase::Waiting {
                    lock.wake = false;
                    lock.retry_at = None;
                }
            }
        }
    }

    pub(super) fn same_name(&self, req: ReqIdx, name: &[u8]) -> bool {
        self.requests
            .get(req)
            .is_some_and(|l| l.name.as_bytes() == name)
    }

    pub(super) fn held_locally(&self, name: &[u8], except: ReqIdx) -> bool {
        self.requests.indices().any(|s| {
            s != except
                && self.same_name(s, name)
                && self
                    .requests
                    .get(s)
                    .is_some_and(|l| l.phase == LockPhase::Held)
        })
    }

    /// Wakes the local waiters on the name of the lock in `req`: it stopped
    /// holding or wanting it.
    pub(super) fn notify_name(&mut self, req: ReqIdx) {
        for s in self.requests.indices() {
            if s != req && self.names_equal(req, s) {
                let lock = self.requests.at(s);
                if matches!(lock.phase, LockPhase::Waiting | LockPhase::Acquiring) {
                    lock.wake = true;
                    self.dirty = true;
                }
            }
        }
    }

    /// True when both requests are for the same name.
    pub(super) fn names_equal(&self, a: ReqIdx, b: ReqIdx) -> bool {
        match (self.requests.get(a), self.requests.get(b)) {
            (Some(x), Some(y)) => x.name == y.name,
            _ => false,
        }
    }

    /// The waiting lock of the name of `req` that may attempt now: the
    /// oldest waiter, unless a local request holds or is acquiring the name.
    pub(super) fn leader_of(&self, req: ReqIdx) -> Option<ReqIdx> {
        let me = self.requests.get(req)?;
        let mut leader: Option<(u64, ReqIdx)> = None;
        for s in self.requests.indices() {
            let Some(o) = self.requests.get(s) else {
                continue;
            };
            if o.name != me.name {
                continue;
            }
            match o.phase {
                LockPhase::Held | LockPhase::Acquiring => return None,
                LockPhase::Waiting if leader.is_none_or(|(seq, _)| o.seq < seq) => {
                    leader = Some((o.seq, s));
                }
                LockPhase::Waiting | LockPhase::Draining => {}
            }
        }
        leader.map(|(_, s)| s)
    }

    /// After a forced takeover, the local holders of that name re-check at
    /// once: with `NOLOOP` our own overwrite never comes back as news.
    pub(super) fn recheck_other_holders(&mut self, req: ReqIdx) {
        for s in self.requests.indices() {
            if s != req && self.names_equal(req, s) {
                let lock = self.requests.at(s);
                if lock.phase == LockPhase::Held {
                    for k in lock
                        .keys
                        .iter_mut()
                        .filter(|k| k.state == KeyState::Held && k.inflight == 0)
                    {
                        k.verify = true;
                    }
                    self.dirty = true;
                }
            }
        }
    }
}
