//! Moving each request forward after an input: applying key replies,
//! keeping a held lock extended (and noticing when it is lost), releasing
//! what a finished request still has, and the pump that runs requests and
//! then starts the attempts that are due.

use crate::cluster::parse_redirect;
use crate::conn::{Echo, KeyOp};
use crate::event::{Command, Event, LockFailure, LockId, LockMode, LostReason, NodeError, NodeId};
use crate::lease::majority_deadline;
use crate::lock::{KeyState, LockPhase, ReplyRules};
use crate::resp::Frame;
use crate::time::Instant;

use super::send::{Op, Unsent, Via};
use super::{Engine, ReqIdx};

/// Pump rounds per input at most (see [`Engine::pump`]).
const MAX_ROUNDS: usize = 8;

impl Engine {
    /// The reply `frame` to key command `op` of request `id`, on `node`.
    pub(super) fn on_key_reply(
        &mut self,
        node: NodeId,
        id: LockId,
        k: u8,
        op: KeyOp,
        frame: Frame<'_>,
        now: Instant,
    ) -> Result<(), NodeError> {
        let Some(req) = self.requests.find(id) else {
            // A request outlives its replies, so this cannot happen; if it
            // does, the reply concerns nobody.
            return Ok(());
        };
        self.requests.mark(req);
        if self.config.fair {
            let sent = match op {
                KeyOp::AcquireSet => Some(self.requests.at(req).t0),
                KeyOp::Extend { sent, .. } => Some(sent),
                _ => None,
            };
            if let (Some(sent), Some(c)) = (sent, self.conn_mut(node)) {
                c.note_rtt(now.saturating_duration_since(sent));
            }
        }
        if let (true, Frame::Error(text)) = (self.is_cluster(), frame) {
            if let Some(r) = parse_redirect(text) {
                return self.on_redirect(node, req, k, op, r, now);
            }
        }
        if let (true, Frame::Error(text)) = (self.config.follow_failover, frame) {
            if text.starts_with(b"READONLY") {
                // Demoted by a failover: the reply says nothing about the
                // key. Dropping the connection puts everything sent on it
                // in doubt (this key included: nothing is in flight for it
                // once its reply is counted) and makes the runtime resolve
                // the new master.
                let key = self.requests.at(req).keys.get_mut(usize::from(k));
                if let Some(key) = key {
                    key.inflight = key.inflight.saturating_sub(1);
                }
                return Err(NodeError::Replica);
            }
        }
        if let (
            KeyOp::Extend { by_sha: true, .. }
            | KeyOp::Release { by_sha: true }
            | KeyOp::Raise { by_sha: true },
            Frame::Error(text),
        ) = (op, frame)
        {
            if text.starts_with(b"NOSCRIPT") {
                let sent = match op {
                    KeyOp::Extend { sent, .. } => sent,
                    _ => now,
                };
                let resent = match Op::of_script(op) {
                    Some(o) => self.write(req, usize::from(k), o, Via::Eval { node, sent }, now),
                    None => Ok(()),
                };
                return match resent {
                    Err(Unsent::NoRoom) => Err(NodeError::CapacityExceeded),
                    _ => Ok(()),
                };
            }
        }
        let rules = self.reply_rules();
        let lock = self.requests.at(req);
        let reply = lock
            .keys
            .get_mut(usize::from(k))
            .ok_or(NodeError::Protocol("reply for an unknown key"))?
            .on_reply(op, frame, now, &rules)?;
        if let Some((command, text)) = reply.refusal {
            // A fenced lock's `PTTL` is the fencing read script.
            let command = match command {
                Command::Pttl if lock.fenced => Command::Fence,
                c => c,
            };
            lock.record_error(node, command, text);
        }
        let caching = self.config.client_caching;
        if let Some(c) = self.conn_mut(node) {
            if reply.echo && caching && !c.noloop {
                c.echo = Some(Echo { id, key: k });
            }
        }
        if let Some((target, ask)) = reply.resend {
            self.resend_acquire(req, usize::from(k), target, ask, now);
        }
        if matches!(op, KeyOp::AcquireSet)
            && matches!(frame, Frame::Simple(b"OK"))
            && self.requests.at(req).mode == LockMode::Force
        {
            // A forced overwrite landed: local holders re-check now, even if
            // this request never becomes `Held` (cancelled or failed), since
            // our own write is no news to them on this connection.
            self.recheck_other_holders(req);
        }
        if matches!(op, KeyOp::Release { .. }) {
            // A local waiter's attempt may have been pipelined behind a
            // release that only took effect now (after `NOSCRIPT`), and our
            // own `DEL` is no news with `NOLOOP`: let it retry.
            self.notify_name(req);
        }
        Ok(())
    }

    /// The settings a key's reply is read with.
    pub(super) fn reply_rules(&self) -> ReplyRules {
        ReplyRules {
            validity: self.settings.validity,
            drift_ppm: self.config.drift_ppm,
            margin: self.config.margin,
            try_next_after: self.settings.try_next_after,
        }
    }

    /// Sends again an acquire whose `SET` was redirected, if its request
    /// still wants the key; otherwise the key is simply not ours.
    pub(super) fn resend_acquire(
        &mut self,
        req: ReqIdx,
        k: usize,
        target: NodeId,
        ask: bool,
        now: Instant,
    ) {
        let lock = self.requests.at(req);
        let live = !lock.ended && matches!(lock.phase, LockPhase::Acquiring | LockPhase::Held);
        let nx = !(lock.phase == LockPhase::Acquiring && lock.mode == LockMode::Force);
        let key = &mut lock.keys[k];
        key.state = KeyState::Free;
        key.taken_ttl = None;
        if live {
            let via = if ask { Via::Ask(target) } else { Via::Route };
            let _ = self.write(req, k, Op::Acquire { nx }, via, now);
        }
    }

    /// A held lock is lost: its holder hears why, its keys are released.
    pub(super) fn lose(&mut self, req: ReqIdx, reason: LostReason) {
        let id = self.requests.id(req).expect("occupied");
        self.set_phase(req, LockPhase::Draining);
        if !self.requests.at(req).ended {
            self.emit(Event::Lost { id, reason });
        }
        self.notify_name(req);
    }

    /// Moves the lock in `req` forward after any input.
    pub(super) fn progress(&mut self, req: ReqIdx, now: Instant) {
        let m = self.settings.majority;
        let phase = self.requests.at(req).phase;
        match phase {
            LockPhase::Acquiring => self.evaluate_attempt(req, now),
            LockPhase::Held => {
                let lock = self.requests.at(req);
                let live = lock
                    .keys
                    .iter()
                    .filter(|k| matches!(k.state, KeyState::Held))
                    .count();
                let deadline = majority_deadline(
                    lock.keys
                        .iter()
                        .filter(|k| k.state == KeyState::Held)
                        .map(|k| k.bound),
                    m,
                );
                let refused = lock
                    .keys
                    .iter()
                    .any(|k| k.extend_refused)
                    .then(|| lock.error.clone())
                    .flatten();
                let why = |plain: LostReason| refused.clone().map_or(plain, LostReason::Refused);
                match deadline {
                    _ if live < m => self.lose(req, why(LostReason::KeysChanged)),
                    Some(d) if d <= now => self.lose(req, why(LostReason::Expired)),
                    None => self.lose(req, why(LostReason::KeysChanged)),
                    Some(d) => {
                        lock.deadline = d;
                        self.extend_due(req, now);
                    }
                }
            }
            LockPhase::Waiting | LockPhase::Draining => {}
        }
        if matches!(
            self.requests.at(req).phase,
            LockPhase::Waiting | LockPhase::Draining
        ) {
            self.release_leftovers(req, now);
        }
        let lock = self.requests.at(req);
        if lock.phase == LockPhase::Draining && lock.ended && lock.settled() {
            let id = self.requests.id(req).expect("occupied");
            // Waiters held back until our release lands must hear of it
            // even when no release was needed (keys found lost, or in
            // doubt and expired): otherwise they wait forever.
            self.notify_name(req);
            let lock = self.requests.remove(req);
            self.names.leave(req);
            self.timers.set(req, None);
            if let Some(error) = lock
                .filter(|l| l.keys.iter().any(|k| k.release_refused))
                .and_then(|l| l.error)
            {
                self.emit(Event::NotReleased { id, error });
            }
            self.emit(Event::Released { id });
        }
    }

    /// Sends the periodic extension, re-checks and fill-ins that are due.
    pub(super) fn extend_due(&mut self, req: ReqIdx, now: Instant) {
        let periodic = now >= self.requests.at(req).next_extend;
        if periodic {
            let interval = self.settings.extend_interval;
            self.requests.at(req).next_extend = now.saturating_add(interval);
        }
        let always = self.settings.validity_ms.saturating_add(1);
        let recheck = self.settings.recheck_refresh_below;
        for k in 0..self.requests.at(req).keys.len() {
            let key = self.requests.at(req).keys[k];
            if key.inflight != 0 {
                continue;
            }
            match key.state {
                KeyState::Held if periodic => {
                    self.send(
                        req,
                        k,
                        Op::Extend {
                            refresh_below: always,
                        },
                        now,
                    );
                }
                KeyState::Held if key.verify && key.recheck_at.is_some_and(|t| now < t) => {}
                KeyState::Held if key.verify => {
                    // A retry is due once: if it cannot be sent, the key waits
                    // for its node like any other re-check.
                    self.requests.at(req).keys[k].recheck_at = None;
                    self.send(
                        req,
                        k,
                        Op::Extend {
                            refresh_below: recheck,
                        },
                        now,
                    );
                }
                // Hold as many keys as we can: take back a free key.
                KeyState::Free if periodic => {
                    self.send(req, k, Op::Acquire { nx: true }, now);
                }
                // A take-back (or a key of the winning attempt) whose
                // connection dropped mid-flight: settle it as
                // `release_leftovers` would, or it would stay in doubt
                // forever and its past `doubt_until` would keep
                // `poll_timeout` at a due instant (a busy loop).
                KeyState::Doubt if key.retry_later(now) => {}
                KeyState::Doubt if !self.send(req, k, Op::Release, now) => {
                    // Its node is down: the next try is when it is back (a
                    // past retry instant would keep `poll_timeout` due).
                    let key = &mut self.requests.at(req).keys[k];
                    key.recheck_at = None;
                    if now >= key.doubt_until {
                        key.state = KeyState::Free;
                    }
                }
                _ => {}
            }
        }
    }

    /// Releases keys a finished or failed request still has (or may have).
    pub(super) fn release_leftovers(&mut self, req: ReqIdx, now: Instant) {
        for k in 0..self.requests.at(req).keys.len() {
            let key = self.requests.at(req).keys[k];
            if key.inflight != 0 || key.retry_later(now) {
                continue;
            }
            let releasable = matches!(key.state, KeyState::Held | KeyState::Doubt);
            if releasable && !self.send(req, k, Op::Release, now) {
                // The node is down: the key stays in doubt until it is back
                // or certainly expired.
                let doubt_until = self.reply_rules().doubt_until(now);
                let key = &mut self.requests.at(req).keys[k];
                key.recheck_at = None;
                if key.state == KeyState::Held {
                    key.state = KeyState::Doubt;
                    key.doubt_until = doubt_until;
                } else if now >= key.doubt_until {
                    key.state = KeyState::Free;
                }
            }
        }
    }

    /// Runs the requests that have something to do (marked by an input or
    /// due by their timer) forward, then starts the attempts that are due.
    pub(super) fn pump(&mut self, now: Instant) {
        self.requests.undefer();
        while let Some(req) = self.timers.pop_due(now) {
            self.requests.mark(req);
        }
        // A round can give other requests something to do (a release wakes
        // a waiter, a takeover makes a holder re-check): they are marked
        // for the next round. Each mark needs a state change, so a few
        // rounds always suffice; the cap only guards against a cycle.
        for _ in 0..MAX_ROUNDS {
            if !self.requests.any_marked() {
                break;
            }
            self.pump_round(now);
        }
        self.settle_timers();
        self.maybe_discover(now);
    }

    /// Runs the marked requests forward (in index order), then starts the
    /// attempts that are due among them and those they marked (a waiter
    /// that a release woke), so an attempt is written behind the releases
    /// that made it possible.
    fn pump_round(&mut self, now: Instant) {
        let mut round = core::mem::take(&mut self.round);
        round.clear();
        self.requests.take_marked(&mut round);
        round.as_mut_slice().sort_unstable();
        for &req in round.as_slice() {
            if self.requests.get(req).is_some() {
                self.progress(req, now);
            }
        }
        let visited = round.len();
        for req in self.requests.marked() {
            if round.as_slice()[..visited].binary_search(&req).is_err() {
                // Distinct live indices: the slab's capacity is enough.
                let _ = round.push(req);
            }
        }
        round.as_mut_slice().sort_unstable();
        #[cfg(test)]
        {
            self.visits += visited + round.len();
        }
        let refusing = self.conns.as_slice().iter().any(|c| c.refusal.is_some());
        for &req in round.as_slice() {
            self.consider_attempt(req, now, refusing);
        }
        for &req in round.as_slice() {
            self.update_timer(req);
        }
        self.round = round;
    }

    /// Starts an attempt of `req` if it waits, is due (woken, or its retry
    /// instant passed) and nothing blocks it.
    fn consider_attempt(&mut self, req: ReqIdx, now: Instant, refusing: bool) {
        if self
            .requests
            .get(req)
            .is_none_or(|l| l.phase != LockPhase::Waiting)
        {
            return;
        }
        if refusing {
            // A server that refuses our handshake (a changed password)
            // will not let this request through by itself: end it with
            // the refusal; the connection keeps retrying meanwhile.
            if let Some((node, e)) = self.blocking_refusal(req) {
                let error = Some(e);
                self.fail_request(req, LockFailure::Unavailable { node, error });
                return;
            }
        }
        self.catch_up(req);
        let lock = self.requests.at(req);
        let retry_due = lock.retry_at.is_some_and(|r| r <= now);
        if !lock.wake && !retry_due {
            return;
        }
        let unblocked = lock.settled()
            && (lock.mode != LockMode::Wait || self.leader_of(req) == Some(req))
            && self.ready_keys(req) >= self.settings.majority;
        if unblocked {
            if let Some(until) = self.fair_pause(req, now) {
                // Still woken (or due) at `until`: its timer brings it back.
                self.requests.at(req).retry_at = Some(until);
                return;
            }
        }
        if unblocked && self.has_room(req) {
            self.start_attempt(req, now);
            return;
        }
        if unblocked {
            // Only transmit room is missing (no-alloc): look again at every
            // pump, as room comes back without an input of its own.
            self.requests.defer(req);
        }
        if retry_due {
            // Whatever blocks it (a local holder, an older waiter, a node
            // down, keys still settling) wakes it when it clears.
            let lock = self.requests.at(req);
            lock.retry_at = None;
            lock.wake = true;
        }
    }

    /// Files the next due instant of `req` in the timer table.
    fn update_timer(&mut self, req: ReqIdx) {
        // A hold-back that reached it lazily drops its retry instant.
        self.catch_up(req);
        let due = self.requests.get(req).and_then(|l| l.next_due());
        self.timers.set(req, due);
    }

    /// Brings the timers of the marked requests (not yet visited) up to
    /// date, so that `poll_timeout` reflects their state.
    pub(super) fn settle_timers(&mut self) {
        let mut marked = core::mem::take(&mut self.round);
        marked.clear();
        for req in self.requests.marked() {
            let _ = marked.push(req);
        }
        for &req in marked.as_slice() {
            self.update_timer(req);
        }
        self.round = marked;
    }
}
