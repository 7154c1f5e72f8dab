//! Per-lock and per-key state. Every transition is made by the engine from
//! (state, input); deadlines are data that `poll_timeout` reads.

use crate::event::{LockMode, NodeId, ServerError};
use crate::keys::MAX_KEYS;
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

/// One lock request.
#[derive(Debug, Clone)]
pub(crate) struct Lock {
    pub(crate) name: Text,
    pub(crate) mode: LockMode,
    /// Creation order, for first-come-first-served among local waiters.
    pub(crate) seq: u64,
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
}

impl Lock {
    pub(crate) fn held_count(&self) -> usize {
        self.keys
            .iter()
            .filter(|k| k.state == KeyState::Held)
            .count()
    }

    pub(crate) fn settled(&self) -> bool {
        self.keys.iter().all(Key::settled)
    }
}
