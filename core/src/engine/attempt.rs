//! Acquisition attempts: starting one (`SET NX` + `PTTL` on every key),
//! deciding it as soon as the majority is had or out of reach, and what a
//! failed attempt leads to (the end of the request, or a paced retry).

use core::time::Duration;

use rand_core::RngCore;

use crate::event::{Event, LockFailure, LockMode, NodeError, NodeId};
use crate::lease::majority_deadline;
use crate::lock::{KeyState, LockPhase, Outcome, Raise, VALUE_LEN};
use crate::time::Instant;

use super::send::Op;
use super::{Engine, ReqIdx, BACKOFF_MAX};

/// Fresh attempts of a fenced `Try`/`Force` request whose keys vanished.
const FENCE_RETRIES: u8 = 2;

/// Where the fencing step of an attempt stands.
enum Fence {
    /// Raises in flight.
    Pending,
    /// A majority of counters holds the token: grant.
    Raised,
    /// A majority is out of reach: the attempt failed.
    Failed,
}

impl Engine {
    /// True when every ready connection of the lock in `req` has room for a
    /// whole attempt (always, with `alloc`): a full buffer must delay the
    /// attempt, not count as a refusal.
    #[cfg(feature = "alloc")]
    pub(super) fn has_room(&self, _req: ReqIdx) -> bool {
        true
    }

    #[cfg(not(feature = "alloc"))]
    pub(super) fn has_room(&self, req: ReqIdx) -> bool {
        let Some(lock) = self.requests.get(req) else {
            return false;
        };
        // An acquire is two commands; its bytes are the key (twice), the
        // value and the fixed words, well under 96 bytes besides those.
        let name_len = self
            .names
            .of(req)
            .map_or(0, |n| self.names.text(n).as_bytes().len());
        let mut per_key = 96 + 2 * (self.config.prefix.as_bytes().len() + name_len) + VALUE_LEN;
        if lock.fenced {
            // The read script's body and the counter key (the key plus at
            // most 12 bytes).
            per_key += self.settings.fence_read.body.len()
                + 32
                + self.config.prefix.as_bytes().len()
                + name_len;
        }
        self.conns.as_slice().iter().enumerate().all(|(i, c)| {
            let keys = lock
                .keys
                .iter()
                .filter(|k| usize::from(k.node.0) == i)
                .count();
            !c.is_ready()
                || (c.expects.len() + 2 * keys <= crate::conn::EXPECT_CAP
                    && c.tx.len() + per_key * keys <= crate::conn::TX_CAP)
        })
    }

    pub(super) fn ready_keys(&self, req: ReqIdx) -> usize {
        let Some(lock) = self.requests.get(req) else {
            return 0;
        };
        lock.keys
            .iter()
            .filter(|k| self.route(k).is_some_and(|n| self.is_ready(n)))
            .count()
    }

    pub(super) fn start_attempt(&mut self, req: ReqIdx, now: Instant) {
        self.stats.attempts += 1;
        let mut value = [0u8; VALUE_LEN];
        self.rng.fill_bytes(&mut value);
        self.set_phase(req, LockPhase::Acquiring);
        let lock = self.requests.at(req);
        lock.value = value;
        lock.t0 = now;
        lock.wake = false;
        lock.retry_at = None;
        lock.error = None;
        lock.token = 0;
        lock.granted = None;
        let nx = lock.mode != LockMode::Force;
        let n = lock.keys.len();
        for k in 0..n {
            let key = &mut self.requests.at(req).keys[k];
            key.taken_ttl = None;
            key.set_ok = None;
            key.outcome = Outcome::None;
            key.counter = None;
            key.raise = Raise::None;
            self.send(req, k, Op::Acquire { nx }, now);
        }
        self.evaluate_attempt(req, now);
    }

    /// Decides an attempt as soon as the majority is had or out of reach.
    /// A key's part ends with its reply, or with its connection (whose own
    /// health check finds a server that stopped answering): time spent
    /// queued behind this locker's own traffic or a busy CPU never fails
    /// an attempt.
    pub(super) fn evaluate_attempt(&mut self, req: ReqIdx, now: Instant) {
        let m = self.settings.majority;
        let extend_interval = self.settings.extend_interval;
        let lock = self.requests.at(req);
        let held = lock.held_count();
        let pending = lock
            .keys
            .iter()
            .filter(|k| k.state == KeyState::Acquiring)
            .count();
        if held >= m {
            let deadline = majority_deadline(
                lock.keys
                    .iter()
                    .filter(|k| k.state == KeyState::Held)
                    .map(|k| k.bound),
                m,
            );
            match deadline {
                Some(d) if d > now => {
                    if self.requests.at(req).fenced {
                        match self.fence(req, now) {
                            Fence::Pending => return,
                            Fence::Failed => return self.attempt_failed(req, now, false),
                            Fence::Raised => {}
                        }
                    }
                    self.set_phase(req, LockPhase::Held);
                    let lock = self.requests.at(req);
                    if lock.fenced {
                        lock.granted = Some(lock.token);
                    }
                    lock.handoffs = 0;
                    lock.failures = 0;
                    lock.deadline = d;
                    lock.next_extend = lock.t0.saturating_add(extend_interval);
                    let mode = lock.mode;
                    let id = self.requests.id(req).expect("occupied");
                    self.emit(Event::Acquired { id });
                    // Another holder of the name besides this one.
                    let shared = self.names.of(req).is_some_and(|n| self.names.held(n) > 1);
                    if mode == LockMode::Force {
                        self.recheck_other_holders(req);
                    } else if shared {
                        // A local force took the name while this attempt
                        // was in flight: its overwrite of our keys is our
                        // own write on this connection (no invalidation with
                        // NOLOOP, an echo without), so re-check ourselves.
                        for k in self
                            .requests
                            .at(req)
                            .keys
                            .iter_mut()
                            .filter(|k| k.state == KeyState::Held && k.inflight == 0)
                        {
                            k.verify = true;
                        }
                    }
                }
                _ => self.attempt_failed(req, now, true),
            }
        } else if held + pending < m {
            // Out of reach. Whether it is "someone else holds it" may still
            // depend on replies in flight: wait for them unless they cannot
            // change the answer.
            let n = lock.keys.len();
            let taken = lock
                .keys
                .iter()
                .filter(|k| k.outcome == Outcome::Taken)
                .count();
            if pending == 0 || taken > n - m || taken + pending <= n - m {
                self.attempt_failed(req, now, false);
            }
        }
    }

    /// The fencing step of an attempt that holds a majority (see
    /// `crate::fence`): the first call raises the counters of the held keys
    /// to one more than the largest counter they had; the attempt is
    /// granted once a majority accepted, and fails once that is out of
    /// reach.
    fn fence(&mut self, req: ReqIdx, now: Instant) -> Fence {
        let m = self.settings.majority;
        let lock = self.requests.at(req);
        if lock.token == 0 {
            let held = || lock.keys.iter().filter(|k| k.state == KeyState::Held);
            // The counters read while each key was ours: a majority of
            // them is what orders this holder after every earlier one.
            if held().filter(|k| k.counter.is_some()).count() < m {
                return Fence::Failed;
            }
            let max = held().filter_map(|k| k.counter).max().unwrap_or(0);
            lock.token = max.saturating_add(1);
            for k in 0..lock.keys.len() {
                let key = self.requests.at(req).keys[k];
                if key.state == KeyState::Held
                    && key.inflight == 0
                    && !self.send(req, k, Op::Raise, now)
                {
                    self.requests.at(req).keys[k].raise = Raise::Failed;
                }
            }
        }
        let lock = self.requests.at(req);
        let count = |r: Raise| {
            lock.keys
                .iter()
                .filter(|k| k.state == KeyState::Held && k.raise == r)
                .count()
        };
        let (accepted, sent) = (count(Raise::Accepted), count(Raise::Sent));
        if accepted >= m {
            Fence::Raised
        } else if accepted + sent < m {
            Fence::Failed
        } else {
            Fence::Pending
        }
    }

    /// An attempt cannot reach a majority (`too_slow`: it did, after the
    /// lease ran out). `NotLocked` only when other holders were seen on
    /// enough keys; an error reply that keeps the majority out of reach ends
    /// any request; `Try`/`Force` report every other cause; `Wait` retries,
    /// woken by the holder's release when one was seen, else after a
    /// jittered backoff.
    pub(super) fn attempt_failed(&mut self, req: ReqIdx, now: Instant, too_slow: bool) {
        self.stats.failed_attempts += 1;
        let caching = self.config.client_caching;
        let tna = self.settings.try_next_after;
        let extend_interval = self.settings.extend_interval;
        let m = self.settings.majority;
        let id = self.requests.id(req).expect("occupied");
        let lock = self.requests.at(req);
        let n = lock.keys.len();
        let taken = lock
            .keys
            .iter()
            .filter(|k| k.outcome == Outcome::Taken)
            .count();
        let seen_holder = taken > n - m;
        let fatal = lock
            .keys
            .iter()
            .any(|k| k.outcome == Outcome::Refused(false));
        let transient = lock
            .keys
            .iter()
            .any(|k| k.outcome == Outcome::Refused(true));
        // A fenced attempt's keys can vanish (deleted, flushed) between its
        // `SET` and its raise, a round trip later: nobody holds the name,
        // and no node refused. `try_lock`/`force_lock` begin again (twice
        // at most) instead of reporting a failure that did not happen.
        let vanished = lock.fenced
            && lock.mode != LockMode::Wait
            && !too_slow
            && !fatal
            && !transient
            && !seen_holder
            && lock.keys.iter().any(|k| k.outcome == Outcome::Vanished);
        if vanished && lock.fence_retries < FENCE_RETRIES {
            lock.fence_retries += 1;
            self.set_phase(req, LockPhase::Waiting);
            let lock = self.requests.at(req);
            lock.retry_at = Some(now);
            lock.wake = true;
            self.notify_name(req);
            return;
        }
        let lock = self.requests.at(req);
        let failure = if seen_holder {
            None
        } else if vanished {
            // No node is missing and nobody was seen holding the name:
            // someone keeps deleting its keys.
            Some(LockFailure::KeysVanished)
        } else if fatal || (transient && lock.mode != LockMode::Wait) {
            lock.error.clone().map(LockFailure::Refused)
        } else if lock.mode == LockMode::Wait {
            None
        } else if too_slow {
            Some(LockFailure::TooSlow)
        } else {
            let missing = lock
                .keys
                .iter()
                .find(|k| k.state != KeyState::Held && k.outcome == Outcome::None)
                .or(lock.keys.first())
                .copied();
            let node = missing.map_or(NodeId(0), |k| self.route(&k).unwrap_or(k.node));
            Some(LockFailure::Unavailable {
                node,
                error: self.conn(node).and_then(|c| c.refusal.clone()),
            })
        };
        if let Some(error) = failure {
            self.fail_request(req, error);
            return;
        }
        if self.requests.at(req).mode != LockMode::Wait {
            self.set_phase(req, LockPhase::Draining);
            self.emit(Event::NotLocked { id });
            self.notify_name(req);
            return;
        }
        self.set_phase(req, LockPhase::Waiting);
        let lock = self.requests.at(req);
        // Keys we got (or may get) are released before the next attempt.
        let partial = lock
            .keys
            .iter()
            .any(|k| k.state == KeyState::Held || k.set_ok == Some(true));
        let mut fallback: Option<Duration> = None;
        for k in &lock.keys {
            match (k.state, k.taken_ttl) {
                (KeyState::Free, Some(t)) if t >= 0 => {
                    let t = Duration::from_millis(t as u64);
                    fallback = Some(fallback.map_or(t, |f| f.min(t)));
                }
                (KeyState::Free, Some(-1)) => {
                    fallback = Some(fallback.map_or(extend_interval, |f| f.min(extend_interval)));
                }
                (KeyState::Free, Some(-2)) => lock.wake = true,
                _ => {}
            }
        }
        let delay = if seen_holder && !partial {
            lock.failures = 0;
            if caching {
                // The holder's release or expiry wakes us (invalidation);
                // the timer is the fallback for a late active expiry.
                fallback
                    .unwrap_or(extend_interval)
                    .max(Duration::from_millis(1))
            } else {
                tna
            }
        } else if partial {
            // Partial success: contention on keys that come and go. Pace
            // retries (a random point in the upper half of
            // `try_next_after`, so racing lockers drift apart) instead of
            // chasing every invalidation.
            lock.wake = false;
            self.backoff(1)
        } else {
            // A transient refusal, a node down or a slow majority: back off
            // exponentially, with jitter, instead of spinning on a server
            // that says no.
            lock.failures = lock.failures.saturating_add(1);
            let failures = lock.failures;
            self.backoff(failures)
        };
        self.requests.at(req).retry_at = Some(now.saturating_add(delay));
        // Local waiters behind this one were blocked by its attempt.
        self.notify_name(req);
    }

    /// The wait before retry number `failures` (from 1): `try_next_after`
    /// doubling up to [`BACKOFF_MAX`], then a random point in its upper half,
    /// so lockers that failed together do not retry together.
    pub(super) fn backoff(&mut self, failures: u8) -> Duration {
        let base = self.settings.try_next_after;
        let exp = u32::from(failures.saturating_sub(1).min(16));
        let d = base
            .checked_mul(1 << exp)
            .unwrap_or(BACKOFF_MAX)
            .min(BACKOFF_MAX.max(base));
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let half = nanos / 2;
        let jitter = if half == 0 {
            0
        } else {
            self.rng.next_u64() % (half + 1)
        };
        Duration::from_nanos(half.saturating_add(jitter))
    }

    /// Ends a request without the lock; its keys are released.
    pub(super) fn fail_request(&mut self, req: ReqIdx, error: LockFailure) {
        let id = self.requests.id(req).expect("occupied");
        self.set_phase(req, LockPhase::Draining);
        if !self.requests.at(req).ended {
            self.emit(Event::Failed { id, error });
        }
        self.notify_name(req);
    }

    /// A handshake refusal (wrong password, a replica…) on nodes that keep
    /// a majority of the keys of the lock in `req` out of reach.
    pub(super) fn blocking_refusal(&self, req: ReqIdx) -> Option<(NodeId, NodeError)> {
        let lock = self.requests.get(req)?;
        let mut reachable = 0;
        let mut first = None;
        for k in &lock.keys {
            let refusal = self
                .route(k)
                .and_then(|n| Some((n, self.conn(n)?.refusal.as_ref()?)));
            match refusal {
                Some((n, e)) => {
                    first.get_or_insert((n, e.clone()));
                }
                None => reachable += 1,
            }
        }
        if reachable < self.settings.majority {
            first
        } else {
            None
        }
    }
}
