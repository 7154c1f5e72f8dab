//! The oracle: the invariants of the behaviour contract
//! (`tracklock_core::contract` §9), checked as the run goes.
//!
//! The checker is separate from what it checks. The world feeds it
//! observations (`Obs`) as they happen (a request made, an engine event, an
//! error reply or a `SET NX` miss at a node, a key's value going away, a
//! failover's losses, admin interference, a worker's unlock, the periodic
//! tick) and answers narrow read-only questions through `Facts` (what a
//! node holds now, whether a locker is healthy, disturbance counters). It
//! keeps its own record of requests and beliefs, never touches the world's
//! state or its random generator, and hands back notes (`Note`): trace lines,
//! violations, and prompt-loss re-checks for the world to schedule.
//!
//! **Belief.** A worker believes it holds a lock from the engine's
//! `Acquired` until it sees `Lost` or calls `unlock`. The world calls
//! `handle_timeout` exactly at `poll_timeout` (except while the locker
//! process is paused), so a belief lasts exactly as long as the engine lets it.
//!
//! **Interference.** Admin writes to a name's keys and force-locks take a
//! lock away by design: every request of that name alive at the time of an
//! admin write, and every request whose life overlaps a force request of
//! the same name (other than that force request), is *tainted*. Tainted
//! guards are exempt from mutual exclusion and the lease check; they are
//! what the prompt-loss check is about.
//!
//! **Data loss.** A node restarting without its data stays down for a
//! whole lease first (a delayed restart), so nothing it held can be taken
//! twice; the requests whose keys it held are only exempt from the lease
//! check. A cluster failover cannot wait: the promoted replica lacks the
//! writes it had not received yet. A lock's keys hold its name until the
//! `m`-th latest of their expiries; a request for which a failover brings
//! that time forward (keys gone, or an extension lost: with staggered TTLs
//! one lost extension of `2m-1` keys is enough) is *undermined*: exempt
//! like a tainted one (`failover_exemption`; off, the checker must catch
//! the double grant).
//!
//! The checks, by module:
//! - `exclusion`, mutual exclusion: at every `Acquired`, no other
//!   untainted guard of the name believes (at that same real instant);
//!   backing: an untainted `Acquired` finds a majority of the name's keys
//!   carrying one value written by that locker on the nodes;
//! - `loss`, lease: a key value of an untainted believer never expires at
//!   a node (on the node's own clock) while it leaves fewer than `m` keys
//!   with that value — the engine's local deadline must come first;
//!   prompt loss: a believer whose value is deleted or overwritten below
//!   the majority sees `Lost` within one invalidation plus one round trip
//!   (caching on) or one extend interval plus a round trip (caching off),
//!   unless something disturbed its locker or the nodes meanwhile;
//! - `progress`, liveness: a name with a `Wait` request pending is never
//!   free (no believer, no live key) with every involved locker healthy for
//!   longer than a stated bound; every call ends within `calls_bound` of
//!   the last thing in its way (see `Checker::calls_end`);
//! - `leaks`, no leaks: once every engine settled, no key written by a
//!   locker remains (before any TTL could have run out), and once past
//!   every TTL nothing remains and every engine is idle;
//! - `answers`, `NotLocked` witnessed: a `SET NX` of that locker for that
//!   name found another value on more than `n - m` keys while the request
//!   was alive (nodes report it), or another request of the locker held
//!   the name; `Failed(Refused(e))` only when node `e.node` sent the error
//!   reply `e` to that locker for that name while the request was alive; no
//!   `Failed` at all for a request that saw no error reply, made with its
//!   locker healthy and undisturbed until then (standalone);
//!   `NotReleased` only after a node refused a release script of that
//!   locker and name; `Released` without it only with no live key left
//!   carrying the lock's value (untainted, not handed off); and, with a
//!   hostile node, no `Lost` while the honest nodes hold the majority.
//!
//! Error replies and requests are matched by locker and name (values of
//! failed attempts are unknown): with several requests of one name in one
//! locker these checks are weaker, never wrong.

mod answers;
mod exclusion;
mod facts;
mod failover;
mod fencing;
mod leaks;
mod loss;
mod nodes;
mod obs;
mod progress;
mod rules;
mod tally;

use std::collections::{BTreeMap, BTreeSet};

use tracklock_core::{LockId, LockMode};

pub(crate) use facts::Facts;
pub(crate) use obs::{LostKey, Note, Obs};
pub(crate) use rules::{Rules, BACKOFF_MAX};
use tally::Tally;

use crate::sim::server::Cause;

/// A request: `(locker, lock id)`.
type ReqKey = (usize, u64);

fn req_key(l: usize, id: LockId) -> ReqKey {
    (l, id.as_u64())
}

/// What the checker knows of one request.
#[derive(Debug)]
struct Req {
    name: usize,
    mode: LockMode,
    tainted: bool,
    ended: bool,
    belief: Option<u64>,
    acquired: bool,
    value: Option<Vec<u8>>,
    data_lost: bool,
    /// The request this one's lease was handed off to (local hand-off).
    successor: Option<ReqKey>,
    /// `(key index, value)` of this locker's keys of the name that a
    /// failover lost while the request was alive, with the real time the
    /// key would have expired at before.
    failover_lost: BTreeMap<(usize, Vec<u8>), u64>,
    /// Error replies nodes sent to this locker for this name while the
    /// request was alive: `(node, message, release script)`.
    refusals: Vec<(usize, String, bool)>,
    /// Key indexes on which a `SET NX` of this locker for this name found
    /// another value while the request was alive (and not yet acquired).
    taken: BTreeSet<usize>,
    /// `NotReleased` was seen.
    not_released: bool,
    /// Healthy when made, with the locker's and the nodes' disturbance
    /// counters then.
    healthy_start: bool,
    disturb_start: (u64, u64),
    /// Since when the call has been pending with nothing in its way
    /// (see `Checker::calls_end`), and the counters seen then.
    clock_from: u64,
    disturb_seen: (u64, u64),
    /// When the request was made, and the fencing epoch then.
    asked: u64,
    fence_epoch: u64,
}

/// A pending prompt-loss check: the holder's majority was taken at
/// `since`, with these disturbance counters.
#[derive(Debug)]
struct Prompt {
    req: ReqKey,
    since: u64,
    locker_disturb: u64,
    nodes_disturb: u64,
}

/// The oracle of one run.
#[derive(Debug)]
pub(crate) struct Checker {
    rules: Rules,
    tracing: bool,
    reqs: BTreeMap<ReqKey, Req>,
    by_value: BTreeMap<Vec<u8>, ReqKey>,
    /// Indexed by the `index` of `Obs::PromptDue`.
    prompts: Vec<Option<Prompt>>,
    /// Per name: since when it has been free with healthy waiters.
    stuck: Vec<Option<u64>>,
    data_loss: bool,
    /// Set while a worker unlocks a held request: an `Acquired` of the same
    /// name in the same locker during that call is a local hand-off.
    handoff_from: Option<ReqKey>,
    /// Values whose release a node refused (their keys are marked orphan
    /// for the leak check, but `released` still sees them).
    refused_values: BTreeSet<Vec<u8>>,
    tally: Tally,
    /// Fencing: counters may have been lost this many times.
    fence_epoch: u64,
    /// Fencing: per name, the clean grants of the current epoch.
    grants: BTreeMap<usize, Vec<fencing::FencedGrant>>,
    /// What to hand back from the current observation.
    notes: Vec<Note>,
}

impl Checker {
    /// A checker for a run under `rules`; `tracing` asks for trace lines.
    pub(crate) fn new(rules: Rules, tracing: bool) -> Self {
        Checker {
            stuck: vec![None; rules.names.len()],
            rules,
            tracing,
            reqs: BTreeMap::new(),
            by_value: BTreeMap::new(),
            prompts: Vec::new(),
            data_loss: false,
            handoff_from: None,
            refused_values: BTreeSet::new(),
            tally: Tally::default(),
            fence_epoch: 0,
            grants: BTreeMap::new(),
            notes: Vec::new(),
        }
    }

    /// Takes in one observation, with `facts` for the state it happened
    /// in; returns what the world must log, fail or schedule, in order.
    pub(crate) fn observe(&mut self, obs: Obs<'_>, facts: &dyn Facts) -> Vec<Note> {
        match obs {
            Obs::Requested { l, id, name, mode } => self.requested(l, id, name, mode, facts),
            Obs::Acquired { l, id, token } => {
                self.fenced_grant(l, id, token, facts.now());
                self.acquired(l, id, facts);
            }
            Obs::NotLocked { l, id } => self.not_locked(l, id),
            Obs::Failed { l, id, error } => self.failed(l, id, error, facts),
            Obs::NotReleased { l, id } => self.not_released(l, id),
            Obs::Released { l, id } => {
                self.released(l, id, facts);
                self.forget(l, id);
            }
            Obs::Lost { l, id, reason } => self.lost(l, id, reason, facts),
            Obs::Ended { l, id } => self.belief_end(l, id),
            Obs::Unlocking { l, id } => {
                self.belief_end(l, id);
                self.handoff_from = Some(req_key(l, id));
            }
            Obs::Unlocked => self.handoff_from = None,
            Obs::Refused(r) => self.refused(r),
            Obs::Taken { l, key } => self.taken(l, key),
            Obs::Keyspace(changes) => {
                if changes.iter().any(|c| c.cause == Cause::DataLoss) {
                    self.counters_lost();
                }
                self.settle_prompts(facts);
                for ch in changes {
                    // How many keys with this value the same command removed.
                    let together = changes
                        .iter()
                        .filter(|c| c.old_value == ch.old_value)
                        .count();
                    self.change(ch, together, facts);
                }
            }
            Obs::FailoverLoss(lost) => {
                self.counters_lost();
                self.failover_loss(lost, facts);
            }
            Obs::ReleaseRefused { value } => {
                self.refused_values.insert(value.to_vec());
            }
            Obs::AdminWrite { name } => self.taint(|r| r.name == name),
            // (Every request, not only those with a key there: tainting
            // too many only weakens the checks.)
            Obs::AdminFlush => {
                self.counters_lost();
                self.taint(|_| true);
            }
            Obs::PromptDue { index } => self.prompt_due(index, facts),
            Obs::Tick => {
                self.liveness(facts);
                self.calls_end(facts);
            }
            Obs::Settled => self.no_leaks(facts),
            Obs::PastTtls => self.final_check(facts),
        }
        std::mem::take(&mut self.notes)
    }

    /// Adds the checker's counters to the run's.
    pub(crate) fn add_counts(&self, stats: &mut super::Stats) {
        self.tally.add_to(stats);
    }

    fn fail(&mut self, what: String) {
        self.notes.push(Note::Violation(what));
    }

    /// A trace line (formatted only when tracing).
    fn trace(&mut self, f: impl FnOnce() -> String) {
        if self.tracing {
            self.notes.push(Note::Trace(f()));
        }
    }

    fn taint(&mut self, which: impl Fn(&Req) -> bool) {
        for r in self.reqs.values_mut().filter(|r| which(r)) {
            r.tainted = true;
        }
    }

    /// A request was made.
    fn requested(&mut self, l: usize, id: LockId, name: usize, mode: LockMode, f: &dyn Facts) {
        let force_alive = self
            .reqs
            .values()
            .any(|r| r.name == name && r.mode == LockMode::Force);
        if mode == LockMode::Force {
            self.taint(|r| r.name == name);
        }
        // A lying node can hand out its key twice: no mutual exclusion
        // across a hostile node, only the checks of `sim_hostile_bytes`.
        let hostile = self.rules.hostile_node.is_some();
        let disturb = (f.locker_disturb(l), f.nodes_disturb());
        self.reqs.insert(
            req_key(l, id),
            Req {
                name,
                mode,
                tainted: force_alive || hostile,
                ended: false,
                belief: None,
                acquired: false,
                value: None,
                data_lost: false,
                successor: None,
                failover_lost: BTreeMap::new(),
                refusals: Vec::new(),
                taken: BTreeSet::new(),
                not_released: false,
                healthy_start: f.healthy(l),
                disturb_start: disturb,
                clock_from: f.now(),
                disturb_seen: disturb,
                asked: f.now(),
                fence_epoch: self.fence_epoch,
            },
        );
    }

    /// The worker stopped believing (`Lost` seen, or unlock called).
    fn belief_end(&mut self, l: usize, id: LockId) {
        if let Some(r) = self.reqs.get_mut(&req_key(l, id)) {
            r.belief = None;
            r.ended = true;
        }
    }

    /// The engine forgot the request.
    fn forget(&mut self, l: usize, id: LockId) {
        let key = req_key(l, id);
        if let Some(r) = self.reqs.remove(&key) {
            // A local hand-off passes the value on: only forget our own mapping.
            if let Some(v) = r.value {
                if self.by_value.get(&v) == Some(&key) {
                    self.by_value.remove(&v);
                }
            }
        }
    }
}
