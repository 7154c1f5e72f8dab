//! Local requests on one name: first come, first served. Only the oldest
//! waiter attempts, and not while another request of this locker holds or
//! acquires the name; a release wakes the waiters, or hands the keys
//! straight to the oldest one. Every question here is answered by the name
//! index (`names`) in O(1), or by walking the few requests that hold or
//! acquire the name.

use crate::event::{Event, LockMode};
use crate::lock::{Key, KeyState, Lock, LockPhase};
use crate::time::Instant;

use core::time::Duration;

use super::names::Missed;
use super::{Engine, ReqIdx};

/// The round trip assumed by `Config::fair` for a node not yet measured.
const FAIR_FALLBACK_RTT: Duration = Duration::from_millis(1);

impl Engine {
    /// Moves `req` to `phase`. The name index follows; the request, and its
    /// name's leader (which may have changed), get a visit.
    pub(super) fn set_phase(&mut self, req: ReqIdx, phase: LockPhase) {
        self.catch_up(req);
        self.requests.at(req).phase = phase;
        self.names.set_phase(req, phase);
        self.requests.mark(req);
        self.mark_leader(req);
    }

    /// Applies the wake-ups and hold-backs of its name that `req` missed;
    /// needed before its `wake`, `retry_at` or phase is read or written.
    pub(super) fn catch_up(&mut self, req: ReqIdx) {
        let Some(lock) = self.requests.get_mut(req) else {
            return;
        };
        let missed = self.names.catch_up(req, lock.phase == LockPhase::Waiting);
        apply(lock, missed);
    }

    /// Gives `req` a reason to retry (its node came back or was flushed,
    /// the slot map changed).
    pub(super) fn wake_one(&mut self, req: ReqIdx) {
        self.catch_up(req);
        if let Some(lock) = self.requests.get_mut(req) {
            lock.wake = true;
        }
    }

    /// Visits the leader of the name of `req`, if any.
    fn mark_leader(&mut self, req: ReqIdx) {
        if let Some(leader) = self.leader_of(req) {
            self.requests.mark(leader);
        }
    }

    /// The waiting request of the name of `req` that may attempt now: the
    /// oldest waiter, unless a local request holds or is acquiring the name.
    pub(super) fn leader_of(&self, req: ReqIdx) -> Option<ReqIdx> {
        self.names.leader(self.names.of(req)?)
    }

    /// Passes the keys of the lock in `req` (just unlocked, still valid, no
    /// request in flight) to the oldest local waiter of its name. False when
    /// there is none or the keys cannot move safely.
    pub(super) fn hand_off(&mut self, req: ReqIdx, now: Instant) -> bool {
        let from = self.requests.at(req);
        if now >= from.deadline || from.keys.iter().any(|k| k.inflight != 0) {
            return false;
        }
        // Waiters that cannot take keys (a `try_lock` waiting for transmit
        // room, keys still settling) are rare: the walk is short.
        let mut next = self.names.of(req).and_then(|n| self.names.first_waiting(n));
        let to = loop {
            let Some(w) = next else {
                return false;
            };
            next = self.names.next(w);
            if self
                .requests
                .get(w)
                .is_some_and(|l| l.mode == LockMode::Wait && l.settled())
            {
                break w;
            }
        };
        let from = self.requests.at(req);
        let (keys, value) = (from.keys.clone(), from.value);
        let (t0, deadline, next_extend) = (from.t0, from.deadline, from.next_extend);
        let handoffs = from.handoffs.saturating_add(1);
        self.set_phase(to, LockPhase::Held);
        let target = self.requests.at(to);
        target.keys = keys;
        target.value = value;
        target.t0 = t0;
        target.deadline = deadline;
        target.next_extend = next_extend;
        target.handoffs = handoffs;
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

    /// `Config::fair`: the lock in `req` is being released to Redis at
    /// `now`; this locker's waiters of its name attempt only after the
    /// release's round trip and one more, so that other lockers, woken by
    /// its invalidation, reach the server first. The round trip is the
    /// smoothed one of the slowest node of the lock's keys; the pause is
    /// capped at `try_next_after` (a stalled reply must not hold waiters
    /// back long) and is a timer, so no wake-up is needed to end it.
    pub(super) fn pause_name(&mut self, req: ReqIdx, now: Instant) {
        let Some(n) = self.names.of(req) else {
            return;
        };
        let Some(lock) = self.requests.get(req) else {
            return;
        };
        let rtt = lock
            .keys
            .iter()
            .filter_map(|k| self.conn(self.route(k)?)?.rtt)
            .max()
            // Never in practice: a released lock was acquired, and the
            // replies of that attempt were measured.
            .unwrap_or(FAIR_FALLBACK_RTT);
        let pause = rtt.saturating_mul(2).min(self.settings.try_next_after);
        self.names.pause(n, now.saturating_add(pause));
    }

    /// The instant before which `req`, a `Wait` request, must not attempt
    /// (`Config::fair`), if it is after `now`.
    pub(super) fn fair_pause(&self, req: ReqIdx, now: Instant) -> Option<Instant> {
        let lock = self.requests.get(req)?;
        if !self.config.fair || lock.mode != LockMode::Wait {
            return None;
        }
        self.names.paused(self.names.of(req)?, now)
    }

    /// Local waiters of the name of `req` wait for the release to land: no
    /// wake-up, no retry timer, until the next wake-up of the name.
    pub(super) fn hold_back_waiters(&mut self, req: ReqIdx) {
        let Some(n) = self.names.of(req) else {
            return;
        };
        let waiting = self.requests.at(req).phase == LockPhase::Waiting;
        let missed = self.names.hold_back(n, (req, waiting));
        apply(self.requests.at(req), missed);
    }

    /// Wakes the local waiters on the name of the lock in `req`: it stopped
    /// holding or wanting it.
    pub(super) fn notify_name(&mut self, req: ReqIdx) {
        let Some(n) = self.names.of(req) else {
            return;
        };
        let waiting = self.requests.at(req).phase == LockPhase::Waiting;
        let missed = self.names.wake(n, Some((req, waiting)));
        apply(self.requests.at(req), missed);
        self.mark_leader(req);
    }

    /// After a forced takeover, the local holders of that name re-check at
    /// once: with `NOLOOP` our own overwrite never comes back as news.
    pub(super) fn recheck_other_holders(&mut self, req: ReqIdx) {
        let mut next = self.names.of(req).and_then(|n| self.names.first_engaged(n));
        while let Some(other) = next {
            next = self.names.next(other);
            let lock = self.requests.at(other);
            if other != req && lock.phase == LockPhase::Held {
                for k in lock
                    .keys
                    .iter_mut()
                    .filter(|k| k.state == KeyState::Held && k.inflight == 0)
                {
                    k.verify = true;
                }
                self.requests.mark(other);
            }
        }
    }
}

/// Applies what a request missed of its name's wake-ups and hold-backs.
fn apply(lock: &mut Lock, missed: Missed) {
    if missed.held_back {
        lock.wake = false;
        lock.retry_at = None;
    }
    if missed.woken {
        lock.wake = true;
    }
}
