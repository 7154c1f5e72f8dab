//! Per-lock and per-key state, and how one key's reply moves it. The engine
//! drives every transition from (state, input); deadlines are data that its
//! timer table reads.

use core::time::Duration;

use crate::conn::KeyOp;
use crate::event::{is_transient, Command, LockMode, NodeError, NodeId, ServerError};
use crate::keys::MAX_KEYS;
use crate::lease::{doubt_until, key_bound};
use crate::resp::Frame;
use crate::storage::Text;
use crate::time::Instant;

/// Bytes of randomness in a lock value (Go's `rueidislock` uses 24 too).
pub(crate) const VALUE_LEN: usize = 24;

/// Where one key of a lock stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyState {
    /// Not ours: never acquired, refused, lost or released.
    Free,
    /// `SET` in flight.
    Acquiring,
    /// Ours until at least `bound`.
    Held,
    /// Release script in flight.
    Releasing,
    /// Maybe ours: a write was in flight when the connection dropped. Released
    /// as soon as the node is back, forgotten once certainly expired.
    Doubt,
}

/// How a key's part of the current attempt ended, when it did not end held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Outcome {
    /// Nothing to report (pending, held, or not attempted yet).
    #[default]
    None,
    /// `SET NX` found another holder's value.
    Taken,
    /// An error reply (`true`: a transient one).
    Refused(bool),
    /// Fenced: the key was ours, then gone before its counter was raised
    /// (deleted or flushed meanwhile).
    Vanished,
}

/// Where a key's fencing counter raise stands (`crate::fence`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Raise {
    /// Not sent in this attempt.
    #[default]
    None,
    /// In flight.
    Sent,
    /// The counter now holds the attempt's token.
    Accepted,
    /// Refused, redirected, not ours any more, or its connection dropped.
    Failed,
}

/// One key of a lock.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Key {
    pub(crate) state: KeyState,
    pub(crate) node: NodeId,
    /// Replies still expected for this key.
    pub(crate) inflight: u8,
    /// Held: certainly ours until this local instant.
    pub(crate) bound: Instant,
    /// When the acquire for this key left.
    pub(crate) sent: Instant,
    /// Reply to `SET`, waiting for the `PTTL` that follows.
    pub(crate) set_ok: Option<bool>,
    /// Refused: the holder's remaining TTL in ms (`-1` no TTL, `-2` gone),
    /// or `None` when the key failed for another reason (error, timeout, down).
    pub(crate) taken_ttl: Option<i64>,
    /// Doubt: certainly expired after this instant.
    pub(crate) doubt_until: Instant,
    /// Held: re-check as soon as the connection is ready.
    pub(crate) verify: bool,
    /// Held: a refused re-check is retried no sooner than this. Doubt: a
    /// release refused with a transient error is retried no sooner.
    pub(crate) recheck_at: Option<Instant>,
    /// How the current attempt went for this key.
    pub(crate) outcome: Outcome,
    /// The last extension of this key was refused by the server.
    pub(crate) extend_refused: bool,
    /// A release of this key was refused (cleared if a retry succeeds).
    pub(crate) release_refused: bool,
    /// Fenced: the counter read with this key's acquisition (`None`: not
    /// read, or the key was not ours when read).
    pub(crate) counter: Option<u64>,
    /// Fenced: the raise of this key's counter in the current attempt.
    pub(crate) raise: Raise,
    /// Cluster: the key's hash slot.
    pub(crate) hash_slot: u16,
    /// Cluster: redirects in a row (reset by any other reply).
    pub(crate) redirects: u8,
    /// Cluster: the `SET` was redirected to this node (`true`: by `ASK`);
    /// resent once the `PTTL` behind it is answered.
    pub(crate) redirect: Option<(NodeId, bool)>,
}

impl Key {
    pub(crate) fn new(node: NodeId, hash_slot: u16) -> Self {
        Key {
            hash_slot,
            counter: None,
            raise: Raise::None,
            recheck_at: None,
            redirects: 0,
            redirect: None,
            state: KeyState::Free,
            node,
            inflight: 0,
            bound: Instant::default(),
            sent: Instant::default(),
            set_ok: None,
            taken_ttl: None,
            doubt_until: Instant::default(),
            verify: false,
            outcome: Outcome::None,
            extend_refused: false,
            release_refused: false,
        }
    }

    /// A doubtful key whose release was refused, not due for a retry yet
    /// (forgotten once certainly expired).
    pub(crate) fn retry_later(&self, now: Instant) -> bool {
        self.state == KeyState::Doubt
            && now < self.doubt_until
            && self.recheck_at.is_some_and(|t| now < t)
    }

    /// Nothing in flight and nothing of ours left on the server.
    pub(crate) fn settled(&self) -> bool {
        self.inflight == 0 && self.state == KeyState::Free
    }
}

/// Where a lock request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LockPhase {
    /// Between attempts (`Wait` mode): waiting for a reason to retry.
    Waiting,
    /// An attempt is in flight.
    Acquiring,
    /// Acquired and being extended.
    Held,
    /// Finished (failed, lost, unlocked, cancelled or closed): remaining keys
    /// are being released.
    Draining,
}

/// One lock request. Its name lives in the engine's name index.
#[derive(Debug, Clone)]
pub(crate) struct Lock {
    pub(crate) mode: LockMode,
    pub(crate) phase: LockPhase,
    pub(crate) value: [u8; VALUE_LEN],
    pub(crate) keys: heapless::Vec<Key, MAX_KEYS>,
    /// Start of the current attempt.
    pub(crate) t0: Instant,
    /// Waiting: retry no later than this.
    pub(crate) retry_at: Option<Instant>,
    /// A reason to retry arrived (invalidation, local release, reconnect).
    pub(crate) wake: bool,
    /// Held: next periodic extension.
    pub(crate) next_extend: Instant,
    /// Held: the lease ends here unless extended.
    pub(crate) deadline: Instant,
    /// The application is done with it: report `Released` once settled.
    pub(crate) ended: bool,
    /// Consecutive local hand-offs that led to this holder.
    pub(crate) handoffs: u8,
    /// Consecutive failed attempts that were not "someone else holds it"
    /// (refusals, nodes down, partial majorities): the retry backoff grows
    /// with it.
    pub(crate) failures: u8,
    /// The last error reply to any of this request's commands.
    pub(crate) error: Option<ServerError>,
    /// Fenced `Try`/`Force`: attempts begun again because keys vanished
    /// under them.
    pub(crate) fence_retries: u8,
    /// Fencing tokens are on for this request (`crate::fence`).
    pub(crate) fenced: bool,
    /// Fenced: the token being raised in the current attempt (0: none yet).
    pub(crate) token: u64,
    /// Fenced: the token of the grant (kept until the request ends).
    pub(crate) granted: Option<u64>,
}

impl Lock {
    /// Keeps `text` as the request's error, unless it is transient and a
    /// refusal that ends the request is already kept: that is the one to
    /// report.
    pub(crate) fn record_error(&mut self, node: NodeId, command: Command, text: &[u8]) {
        if !is_transient(text) || self.error.as_ref().is_none_or(ServerError::is_transient) {
            self.error = Some(ServerError {
                node,
                command,
                message: Text::from_utf8_lossy_truncated(text),
            });
        }
    }

    pub(crate) fn held_count(&self) -> usize {
        self.keys
            .iter()
            .filter(|k| k.state == KeyState::Held)
            .count()
    }

    pub(crate) fn settled(&self) -> bool {
        self.keys.iter().all(Key::settled)
    }

    /// When the request next has something to do by itself (without an
    /// input): its lease deadline or next extension, its retry, or a key's
    /// re-check or certain expiry.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        let mut t: Option<Instant> = None;
        let mut at = |i: Instant| t = Some(t.map_or(i, |t| t.min(i)));
        match self.phase {
            LockPhase::Held => {
                at(self.deadline);
                at(self.next_extend);
            }
            LockPhase::Waiting => {
                if let Some(r) = self.retry_at {
                    at(r);
                }
            }
            LockPhase::Acquiring | LockPhase::Draining => {}
        }
        for k in &self.keys {
            // A doubtful key is settled by the extension pass (held) or the
            // leftovers pass (waiting, draining); during an attempt it waits
            // for the attempt to end, so its instant would be a deadline
            // nobody acts on (a busy loop; sim seed 2086).
            if k.state == KeyState::Doubt && k.inflight == 0 && self.phase != LockPhase::Acquiring {
                at(k.recheck_at.map_or(k.doubt_until, |r| r.min(k.doubt_until)));
            }
            if let (LockPhase::Held, KeyState::Held, true, 0, Some(t)) =
                (self.phase, k.state, k.verify, k.inflight, k.recheck_at)
            {
                at(t);
            }
        }
        t
    }
}

/// The settings a key's reply is read with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReplyRules {
    /// The TTL we write.
    pub(crate) validity: Duration,
    pub(crate) drift_ppm: u32,
    pub(crate) margin: Duration,
    /// How long a refused extension or release waits before its retry.
    pub(crate) try_next_after: Duration,
}

impl ReplyRules {
    /// When a key whose fate is unknown from `now` has certainly expired.
    pub(crate) fn doubt_until(&self, now: Instant) -> Instant {
        doubt_until(now, self.validity, self.drift_ppm, self.margin)
    }

    /// Until when a key is ours, given the TTL `t` a request sent at
    /// `sent` observed (never more than we wrote).
    fn bound(&self, sent: Instant, t: Duration) -> Instant {
        key_bound(sent, t.min(self.validity), self.drift_ppm, self.margin)
    }
}

/// What a key's reply asks of the engine beyond the key's own state.
#[derive(Debug, Default)]
pub(crate) struct KeyReply<'a> {
    /// Our write landed: without `NOLOOP` its invalidation comes back.
    pub(crate) echo: bool,
    /// The `SET` ahead of this `PTTL` was redirected to this node (`true`:
    /// by `ASK`): send the acquire again there.
    pub(crate) resend: Option<(NodeId, bool)>,
    /// An error reply, to keep as the request's error.
    pub(crate) refusal: Option<(Command, &'a [u8])>,
}

/// What the engine must send after a redirected key command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Follow {
    Nothing,
    /// Send the acquire again (`true`: behind `ASKING` to that node).
    Acquire(NodeId, bool),
    /// Re-check the key behind `ASKING` at this node.
    Extend(NodeId, u64),
    /// Release the key there (`None`: at the owner, once known); a release
    /// that cannot be sent leaves the key in doubt.
    Release(Option<NodeId>),
}

impl Key {
    /// Moves the key by the reply `frame` to `op` (neither a redirect nor
    /// `NOSCRIPT`, which the engine handles). `Err` for a reply of the
    /// wrong shape, which fails the connection.
    pub(crate) fn on_reply<'a>(
        &mut self,
        op: KeyOp,
        frame: Frame<'a>,
        now: Instant,
        rules: &ReplyRules,
    ) -> Result<KeyReply<'a>, NodeError> {
        let mut out = KeyReply::default();
        self.inflight = self.inflight.saturating_sub(1);
        self.redirects = 0;
        match op {
            // The `SET` ahead of this `PTTL` was redirected: this reply is
            // about a key we did not write; resend both to the right node.
            KeyOp::AcquireTtl if self.set_ok.is_none() && self.redirect.is_some() => {
                out.resend = self.redirect.take();
            }
            KeyOp::AcquireSet => match frame {
                Frame::Simple(b"OK") => {
                    out.echo = true;
                    self.set_ok = Some(true);
                }
                Frame::Null => {
                    self.set_ok = Some(false);
                    self.outcome = Outcome::Taken;
                }
                Frame::Error(text) => {
                    self.set_ok = Some(false);
                    self.outcome = Outcome::Refused(is_transient(text));
                    out.refusal = Some((Command::Set, text));
                }
                _ => return Err(NodeError::Protocol("unexpected reply to SET")),
            },
            KeyOp::AcquireTtl => {
                // Fenced: `{PTTL, counter}`, the counter -1 when the key
                // carried another value when read, -2 when it was gone.
                let mut other = false;
                let (ttl, counter) = match frame {
                    Frame::Int(t) => (Some(t), None),
                    Frame::Array(a) => match first_two(a.iter()) {
                        (Some(Frame::Int(t)), Some(Frame::Int(c))) => {
                            other = c == -1;
                            (Some(t), u64::try_from(c).ok())
                        }
                        _ => return Err(NodeError::Protocol("unexpected reply to the fence read")),
                    },
                    Frame::Error(_) => (None, None),
                    _ => return Err(NodeError::Protocol("unexpected reply to PTTL")),
                };
                let not_ours = matches!(frame, Frame::Array(_)) && counter.is_none();
                self.counter = counter;
                if self.state != KeyState::Acquiring {
                    // Answered after the attempt moved on: nothing to count.
                } else if self.set_ok == Some(true) {
                    // -1: someone removed the TTL; -2: deleted right after
                    // our SET. Count from what we wrote unless the server
                    // reports less.
                    match (ttl, frame) {
                        // Refused: the key is ours but tracking is not
                        // armed, so a change would go unnoticed. Not a key
                        // to count; released like a doubtful one.
                        (None, Frame::Error(text)) => {
                            self.doubt(rules.doubt_until(now));
                            self.outcome = Outcome::Refused(is_transient(text));
                            out.refusal = Some((Command::Pttl, text));
                        }
                        (Some(-2), _) => {
                            self.state = KeyState::Free;
                            if counter.is_none() && matches!(frame, Frame::Array(_)) {
                                self.outcome = Outcome::Vanished;
                            }
                        }
                        // Overwritten (a forced takeover: someone else's
                        // now) or deleted right after our `SET`.
                        _ if not_ours => {
                            self.state = KeyState::Free;
                            self.outcome = if other {
                                Outcome::Taken
                            } else {
                                Outcome::Vanished
                            };
                        }
                        (Some(t), _) if t >= 0 => {
                            self.state = KeyState::Held;
                            self.bound = rules.bound(self.sent, Duration::from_millis(t as u64));
                        }
                        _ => {
                            self.state = KeyState::Held;
                            self.bound = rules.bound(self.sent, rules.validity);
                        }
                    }
                } else {
                    self.state = KeyState::Free;
                    self.taken_ttl = if self.outcome == Outcome::Taken {
                        ttl
                    } else {
                        None
                    };
                }
            }
            KeyOp::Extend { sent, .. } => match frame {
                Frame::Array(a) => {
                    let mut it = a.iter();
                    let (Some(Frame::Int(t)), Some(Frame::Int(wrote))) = (it.next(), it.next())
                    else {
                        return Err(NodeError::Protocol("unexpected reply to the extend script"));
                    };
                    self.extend_refused = false;
                    if self.state == KeyState::Held {
                        if t > 0 {
                            // The newest observation is the truth (an admin
                            // may have shortened the TTL): replace, never max.
                            self.bound = rules.bound(sent, Duration::from_millis(t as u64));
                            out.echo = wrote == 1;
                        } else {
                            self.state = KeyState::Free;
                        }
                    }
                }
                // A refused extension (busy, out of memory, no permission,
                // CLUSTERDOWN…) leaves the lease as it was, and the script
                // did not run: tracking is not re-armed, so the key is
                // checked again after `try_next_after` (not at once: the
                // refusal may last). Should the lock be lost meanwhile, the
                // loss carries the refusal.
                Frame::Error(text) => {
                    self.extend_refused = true;
                    out.refusal = Some((Command::Extend, text));
                    if self.state == KeyState::Held {
                        self.verify = true;
                        self.recheck_at = Some(now.saturating_add(rules.try_next_after));
                    }
                }
                _ => return Err(NodeError::Protocol("unexpected reply to the extend script")),
            },
            KeyOp::Raise { .. } => match frame {
                Frame::Int(n) => {
                    if self.raise == Raise::Sent {
                        self.raise = if n == 1 {
                            Raise::Accepted
                        } else {
                            Raise::Failed
                        };
                    }
                    if n < 0 && self.state == KeyState::Held {
                        // Not ours any more: overwritten (-1, someone
                        // else's now) or gone (-2).
                        self.state = KeyState::Free;
                        self.outcome = if n == -1 {
                            Outcome::Taken
                        } else {
                            Outcome::Vanished
                        };
                    }
                }
                Frame::Error(text) => {
                    if self.raise == Raise::Sent {
                        self.raise = Raise::Failed;
                    }
                    self.outcome = Outcome::Refused(is_transient(text));
                    out.refusal = Some((Command::Fence, text));
                }
                _ => return Err(NodeError::Protocol("unexpected reply to the fence raise")),
            },
            KeyOp::Release { .. } => match frame {
                Frame::Int(n) => {
                    self.state = KeyState::Free;
                    self.release_refused = false;
                    out.echo = n == 1;
                }
                // A transient refusal is retried (after `try_next_after`)
                // until the key has certainly expired; any other leaves the
                // key to its TTL. Either way `unlock` learns of it unless a
                // retry succeeds.
                Frame::Error(text) => {
                    if !self.release_refused {
                        self.doubt_until = rules.doubt_until(now);
                    }
                    self.release_refused = true;
                    out.refusal = Some((Command::Release, text));
                    if is_transient(text) && now < self.doubt_until {
                        self.state = KeyState::Doubt;
                        self.recheck_at = Some(now.saturating_add(rules.try_next_after));
                    } else {
                        self.state = KeyState::Free;
                    }
                }
                _ => {
                    return Err(NodeError::Protocol(
                        "unexpected reply to the release script",
                    ))
                }
            },
        }
        Ok(out)
    }

    /// Counts a `MOVED`/`ASK` reply to `target`: where to follow it, or
    /// `None` once `max` redirects in a row make it look like a ping-pong
    /// between nodes that disagree.
    pub(crate) fn count_redirect(
        &mut self,
        target: NodeId,
        ask: bool,
        max: u8,
    ) -> Option<(NodeId, bool)> {
        self.inflight = self.inflight.saturating_sub(1);
        self.redirects = self.redirects.saturating_add(1);
        (self.redirects <= max).then_some((target, ask))
    }

    /// Moves the key after its command `op` was redirected (to `go`, or
    /// nowhere): the command did not run.
    pub(crate) fn on_redirect(
        &mut self,
        op: KeyOp,
        go: Option<(NodeId, bool)>,
        rules: &ReplyRules,
    ) -> Follow {
        match op {
            KeyOp::AcquireSet => {
                self.redirect = go;
                Follow::Nothing
            }
            KeyOp::AcquireTtl if self.state == KeyState::Acquiring => {
                match (self.set_ok, self.redirect.take()) {
                    (None, Some((t, ask))) => Follow::Acquire(t, ask),
                    // The slot moved between our `SET` and `PTTL`: the
                    // `SET` is answered, the TTL unknown.
                    (Some(true), _) => {
                        self.state = KeyState::Held;
                        self.bound = rules.bound(self.sent, rules.validity);
                        Follow::Nothing
                    }
                    _ => {
                        self.state = KeyState::Free;
                        self.taken_ttl = None;
                        Follow::Nothing
                    }
                }
            }
            KeyOp::AcquireTtl => Follow::Nothing,
            KeyOp::Extend { refresh_below, .. } if self.state == KeyState::Held => {
                self.verify = true;
                match go {
                    Some((t, true)) => Follow::Extend(t, refresh_below),
                    _ => Follow::Nothing,
                }
            }
            KeyOp::Extend { .. } => Follow::Nothing,
            // Not raised here: the attempt counts the key as failed (the
            // counter is only ever raised on the node that holds the key).
            KeyOp::Raise { .. } => {
                if self.raise == Raise::Sent {
                    self.raise = Raise::Failed;
                }
                Follow::Nothing
            }
            KeyOp::Release { .. } => Follow::Release(match go {
                Some((t, true)) => Some(t),
                _ => None,
            }),
        }
    }

    /// Maybe ours until `until` at the latest.
    pub(crate) fn doubt(&mut self, until: Instant) {
        self.state = KeyState::Doubt;
        self.doubt_until = until;
    }
}

/// The first two items of an iterator.
fn first_two<T>(mut it: impl Iterator<Item = T>) -> (Option<T>, Option<T>) {
    let first = it.next();
    (first, it.next())
}
