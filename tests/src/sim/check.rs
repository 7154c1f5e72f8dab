//! The invariants of the behaviour contract (`tracklock_core::contract` §9), checked as the run goes.
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
//! The checks:
//! - mutual exclusion: at every `Acquired`, no other untainted guard of the
//!   name believes (at that same real instant);
//! - backing: an untainted `Acquired` finds a majority of the name's keys
//!   carrying one value written by that locker on the nodes;
//! - lease: a key value of an untainted believer never expires at a node
//!   (on the node's own clock) while it leaves fewer than `m` keys with that
//!   value — the engine's local deadline must come first;
//! - prompt loss: a believer whose value is deleted or overwritten below the
//!   majority sees `Lost` within one invalidation plus one round trip
//!   (caching on) or one extend interval plus a round trip (caching off),
//!   unless something disturbed its locker or the nodes meanwhile;
//! - liveness: a name with a `Wait` request pending is never free (no
//!   believer, no live key) with every involved locker healthy for longer
//!   than a stated bound;
//! - no leaks: once every engine settled, no key written by a locker
//!   remains (before any TTL could have run out), and once past every TTL
//!   nothing remains and every engine is idle;
//! - `NotLocked` witnessed: a `SET NX` of that locker for that name found
//!   another value on more than `n - m` keys while the request was alive
//!   (nodes report it), or another request of the locker held the name;
//! - `Failed(Refused(e))` only when node `e.node` sent the error reply `e`
//!   to that locker for that name while the request was alive; no `Failed`
//!   at all for a request that saw no error reply, made with its locker
//!   healthy and undisturbed until then (standalone);
//! - `NotReleased` only after a node refused a release script of that
//!   locker and name; `Released` without it only with no live key left
//!   carrying the lock's value (untainted, not handed off);
//! - every call ends within `calls_bound` of the last thing in its way
//!   (see `check_calls_end`).
//!
//! Error replies and requests are matched by locker and name (values of
//! failed attempts are unknown): with several requests of one name in one
//! locker these checks are weaker, never wrong.

use std::collections::{BTreeMap, BTreeSet};

use tracklock_core::{LockFailure, LockId, LockMode, NodeId};

use super::keys::{key_name, parse_lock_key};
use super::server::{Cause, Change, NodeState, Refusal, Writer, EXTEND_PX, EXTEND_PXAT};
use super::world::{LinkState, Phase, World};

const MS: u64 = 1_000_000;

/// The engine's largest backoff between attempts (`BACKOFF_MAX`), ns.
pub(crate) const BACKOFF_MAX: u64 = 1_000 * MS;

#[derive(Debug)]
pub(crate) struct Req {
    name: usize,
    mode: LockMode,
    tainted: bool,
    ended: bool,
    belief: Option<u64>,
    acquired: bool,
    value: Option<Vec<u8>>,
    data_lost: bool,
    /// The request this one's lease was handed off to (local hand-off).
    successor: Option<(usize, u64)>,
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
    /// (see `check_calls_end`), and the counters seen then.
    clock_from: u64,
    disturb_seen: (u64, u64),
}

/// A lock key a failover lost: the old master held it, the promoted
/// replica does not (or with an earlier expiry: `shortened`).
#[derive(Debug, Clone)]
pub(crate) struct LostKey {
    pub(crate) key: Vec<u8>,
    pub(crate) value: Vec<u8>,
    pub(crate) writer: Writer,
    pub(crate) shortened: bool,
    /// When it would have expired at the old master (real time).
    pub(crate) expiry: u64,
}

#[derive(Debug)]
struct Prompt {
    req: (usize, u64),
    since: u64,
    locker_disturb: u64,
    nodes_disturb: u64,
}

/// Bookkeeping of the checks.
#[derive(Debug)]
pub(crate) struct Checker {
    reqs: BTreeMap<(usize, u64), Req>,
    by_value: BTreeMap<Vec<u8>, (usize, u64)>,
    prompts: Vec<Option<Prompt>>,
    stuck: Vec<Option<u64>>,
    data_loss: bool,
    /// Set while a worker unlocks a held request: an `Acquired` of the same
    /// name in the same locker during that call is a local hand-off.
    pub(crate) handoff_from: Option<(usize, u64)>,
    /// Values whose release a node refused (their keys are marked orphan
    /// for the leak check, but `check_released` still sees them).
    pub(crate) refused_values: BTreeSet<Vec<u8>>,
}

impl Checker {
    pub(crate) fn new(names: usize) -> Self {
        Checker {
            reqs: BTreeMap::new(),
            by_value: BTreeMap::new(),
            prompts: Vec::new(),
            stuck: vec![None; names],
            data_loss: false,
            handoff_from: None,
            refused_values: BTreeSet::new(),
        }
    }
}

impl World {
    fn key_of(&self, l: usize, id: LockId) -> (usize, u64) {
        (l, id.as_u64())
    }

    /// A request was made.
    pub(crate) fn on_request_id(&mut self, l: usize, id: LockId, name: usize, mode: LockMode) {
        let force_alive = self
            .chk
            .reqs
            .values()
            .any(|r| r.name == name && r.mode == LockMode::Force);
        if mode == LockMode::Force {
            for r in self.chk.reqs.values_mut().filter(|r| r.name == name) {
                r.tainted = true;
            }
        }
        let key = self.key_of(l, id);
        // A lying node can hand out its key twice: no mutual exclusion
        // across a hostile node, only the checks of `sim_hostile_bytes`.
        let hostile = self.p.hostile_node.is_some();
        let disturb = (self.lockers[l].disturb, self.node_disturb.iter().sum());
        let healthy_start = self.healthy(l);
        self.chk.reqs.insert(
            key,
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
                healthy_start,
                disturb_start: disturb,
                clock_from: self.now,
                disturb_seen: disturb,
            },
        );
    }

    /// A node sent an error reply to a lock command of locker `r.locker`:
    /// every live request of that locker and name may have caused it.
    pub(crate) fn on_refusal(&mut self, r: Refusal) {
        let Some((_, name)) = self.parse_lock_key(&r.key) else {
            return;
        };
        for (k, q) in self
            .chk
            .reqs
            .range_mut((r.locker, 0)..=(r.locker, u64::MAX))
        {
            let _ = k;
            if q.name == name {
                q.refusals.push((r.node, r.message.clone(), r.release));
            }
        }
    }

    /// A `SET NX` of locker `l` found another value on `key`.
    pub(crate) fn on_taken(&mut self, l: usize, key: &[u8]) {
        let Some((i, name)) = self.parse_lock_key(key) else {
            return;
        };
        for (_, q) in self.chk.reqs.range_mut((l, 0)..=(l, u64::MAX)) {
            if q.name == name && !q.acquired && !q.ended {
                q.taken.insert(i);
            }
        }
    }

    /// `NotLocked`: another holder was witnessed on more than `n - m` of
    /// the name's keys during the attempt (a `SET NX` that found another
    /// value), or held it in this very locker (`Try` is then answered
    /// without asking the servers).
    pub(crate) fn check_not_locked(&mut self, l: usize, id: LockId) {
        if self.p.hostile_node.is_some() {
            return;
        }
        let key = self.key_of(l, id);
        let Some(r) = self.chk.reqs.get(&key) else {
            return;
        };
        let n = self.p.config.key_count();
        let m = usize::from(self.p.config.key_majority());
        let name = r.name;
        let seen = r.taken.len();
        let local = self
            .chk
            .reqs
            .range((l, 0)..=(l, u64::MAX))
            .any(|(k, q)| *k != key && q.name == name && q.belief.is_some());
        if seen > n - m || local {
            return;
        }
        self.fail(format!(
            "no NotLocked without a witnessed holder: seed {} L{l} got NotLocked for {:?} ({id:?}, {:?}) but a SET NX found another value on only {seen} of its {n} keys (needs more than {})",
            self.p.seed,
            self.p.names[name],
            r.mode,
            n - m
        ));
    }

    /// `Failed`: a `Refused(e)` names an error reply the node actually sent
    /// to this locker for this name while the request was alive; and no
    /// `Failed` at all for a request that saw no error reply, made while
    /// its locker was healthy and left undisturbed since (standalone).
    pub(crate) fn check_failed(&mut self, l: usize, id: LockId, error: &LockFailure) {
        if self.p.hostile_node.is_some() {
            return;
        }
        let key = self.key_of(l, id);
        let Some(r) = self.chk.reqs.get(&key) else {
            return;
        };
        let name = self.p.names[r.name].clone();
        if let LockFailure::Refused(e) = error {
            let node = self.lockers[l]
                .target
                .get(usize::from(e.node.0))
                .copied()
                .unwrap_or(usize::MAX);
            let msg = e.message.as_str();
            let sent = r
                .refusals
                .iter()
                .any(|(n, text, _)| *n == node && text.starts_with(msg));
            if !sent {
                let seen: Vec<String> = r
                    .refusals
                    .iter()
                    .map(|(n, t, _)| {
                        format!("node {n}: {}", t.chars().take(40).collect::<String>())
                    })
                    .collect();
                self.fail(format!(
                    "Failed(Refused) without that refusal: seed {} L{l} {id:?} ({name:?}) failed with {e} but node {node} sent no such error reply for it (error replies seen: {seen:?})",
                    self.p.seed
                ));
                return;
            }
        }
        let disturb = (
            self.lockers[l].disturb,
            self.node_disturb.iter().sum::<u64>(),
        );
        let undisturbed = self.cl.is_none()
            && r.refusals.is_empty()
            && r.healthy_start
            && disturb == r.disturb_start
            && self.healthy(l);
        if undisturbed {
            self.fail(format!(
                "Failed without a cause: seed {} L{l} {id:?} ({name:?}) failed with {error} though no node refused it and every node was up and connected since it was made",
                self.p.seed
            ));
        }
    }

    /// `NotReleased` only when a release script was refused.
    pub(crate) fn check_not_released(&mut self, l: usize, id: LockId) {
        let key = self.key_of(l, id);
        let hostile = self.p.hostile_node.is_some();
        let Some(r) = self.chk.reqs.get_mut(&key) else {
            return;
        };
        r.not_released = true;
        if hostile || r.refusals.iter().any(|x| x.2) {
            return;
        }
        let name = self.p.names[r.name].clone();
        self.fail(format!(
            "NotReleased without a refused release: seed {} L{l} {id:?} ({name:?}): no node refused its release script",
            self.p.seed
        ));
    }

    /// `Released` without `NotReleased`: no key carrying the request's value
    /// is still live (written by the engine itself; keys written by bytes
    /// it had abandoned are orphans, not its doing).
    pub(crate) fn check_released(&mut self, l: usize, id: LockId) {
        let key = self.key_of(l, id);
        if self.p.hostile_node.is_some() {
            return;
        }
        let Some(r) = self.chk.reqs.get(&key) else {
            return;
        };
        // (A tainted request's value may be misread: a force request of
        // the same locker writes keys "of this locker" too.)
        if r.not_released || r.successor.is_some() || r.tainted {
            return;
        }
        let Some(v) = r.value.clone() else {
            return;
        };
        if self.chk.by_value.get(&v) != Some(&key) {
            return;
        }
        let name = r.name;
        let db = self.p.config.database();
        for (n, k) in self.names_keys(name) {
            let Some(e) = self.nodes[n].peek(db, &k, self.now) else {
                continue;
            };
            if e.value != v || (e.orphan && !self.chk.refused_values.contains(&v)) {
                continue;
            }
            let left = self.real_expiry(n, e).saturating_sub(self.now);
            self.fail(format!(
                "unlock: seed {} L{l} {id:?} ({:?}) ended with Released and no NotReleased, but {} on node {n} still carries its value ({:.3} ms left)",
                self.p.seed,
                self.p.names[name],
                String::from_utf8_lossy(&k),
                left as f64 / 1e6
            ));
            return;
        }
    }

    /// How long a call may stay pending once nothing is in its way: the
    /// largest backoff, a lease, a few round trips, a reconnect and slack.
    pub(crate) fn calls_bound(&self) -> u64 {
        let tna = self.p.config.try_next_after().as_nanos() as u64;
        let v = self.p.config.validity().as_nanos() as u64;
        BACKOFF_MAX
            + v
            + v * 4 * self.p.clock_ppm as u64 / 1_000_000
            + 4 * tna
            + 10 * self.lat_max
            + 50 * MS
            + 100 * MS
    }

    /// Every call ends (`Acquired`, `NotLocked`, `Failed`, `Closed`, or a
    /// cancel) within `calls_bound` of the last moment something was in its
    /// way: its locker unhealthy (paused, starved, a link down, a node down
    /// or refusing, an error-reply window less than `BACKOFF_MAX` ago) or
    /// disturbed, any node disturbed, or, for `Wait`, the name held (a
    /// believer, or a live key of the name anywhere).
    pub(crate) fn check_calls_end(&mut self) {
        if self.p.hostile_node.is_some() {
            return;
        }
        let db = self.p.config.database();
        let busy: Vec<bool> = (0..self.p.names.len())
            .map(|name| {
                self.chk
                    .reqs
                    .values()
                    .any(|r| r.name == name && r.belief.is_some())
                    || self
                        .names_keys(name)
                        .iter()
                        .any(|(n, k)| self.nodes[*n].peek(db, k, self.now).is_some())
            })
            .collect();
        let healthy: Vec<bool> = (0..self.lockers.len()).map(|l| self.healthy(l)).collect();
        let nodes: u64 = self.node_disturb.iter().sum();
        let bound = self.calls_bound();
        let now = self.now;
        let mut late = None;
        for (k, r) in self.chk.reqs.iter_mut() {
            if r.ended || r.acquired {
                continue;
            }
            let d = (self.lockers[k.0].disturb, nodes);
            let blocked = !healthy[k.0] || (r.mode == LockMode::Wait && busy[r.name]);
            if blocked || d != r.disturb_seen {
                r.clock_from = now;
                r.disturb_seen = d;
            } else if now - r.clock_from > bound && late.is_none() {
                late = Some((*k, r.name, r.mode, now - r.clock_from));
            }
        }
        if let Some((k, name, mode, d)) = late {
            self.fail(format!(
                "every call ends: seed {} L{} lock {:#x} ({:?}, {mode:?}) still pending {:.1} ms after the last thing in its way (bound {:.1} ms)",
                self.p.seed,
                k.0,
                k.1,
                self.p.names[name],
                d as f64 / 1e6,
                bound as f64 / 1e6
            ));
        }
    }

    /// True when the request's value sits on a majority of its keys on
    /// nodes other than the hostile one.
    pub(crate) fn honest_majority(&self, l: usize, id: LockId) -> bool {
        let Some(r) = self.chk.reqs.get(&self.key_of(l, id)) else {
            return false;
        };
        let Some(v) = r.value.as_ref() else {
            return false;
        };
        let db = self.p.config.database();
        let honest = self
            .names_keys(r.name)
            .iter()
            .filter(|(n, k)| {
                Some(*n) != self.p.hostile_node
                    && self.nodes[*n]
                        .peek(db, k, self.now)
                        .is_some_and(|e| &e.value == v)
            })
            .count();
        honest >= usize::from(self.p.config.key_majority())
    }

    /// Admin writes to a name: every live request of it is tainted.
    pub(crate) fn taint_name(&mut self, name: usize) {
        for r in self.chk.reqs.values_mut().filter(|r| r.name == name) {
            r.tainted = true;
        }
    }

    /// Admin flushes a node: every request with a key there is tainted.
    pub(crate) fn taint_node(&mut self, _node: usize) {
        for r in self.chk.reqs.values_mut() {
            r.tainted = true;
        }
    }

    /// `(node, key)` for every key of `name` and every node it may be on
    /// (two while its cluster slot migrates: it is on one of them).
    fn names_keys(&self, name: usize) -> Vec<(usize, Vec<u8>)> {
        let prefix = self.p.config.prefix();
        let mut out = Vec::new();
        for i in 0..self.p.config.key_count() {
            let key = key_name(prefix, i, &self.p.names[name]);
            for n in self.key_nodes(i, &key) {
                out.push((n, key.clone()));
            }
        }
        out
    }

    /// Until when `value` holds `name`: the `m`-th latest real expiry of
    /// the keys carrying it (0 with fewer than `m`). With `restore`, the keys
    /// a failover lost for request `req` count as they were before.
    fn protection(&self, req: (usize, u64), name: usize, value: &[u8], restore: bool) -> u64 {
        let db = self.p.config.database();
        let prefix = self.p.config.prefix();
        let lost = &self.chk.reqs[&req].failover_lost;
        let mut expiries: Vec<u64> = (0..self.p.config.key_count())
            .map(|i| {
                let key = key_name(prefix, i, &self.p.names[name]);
                let now = self
                    .key_nodes(i, &key)
                    .into_iter()
                    .find_map(|n| {
                        self.nodes[n]
                            .peek(db, &key, self.now)
                            .filter(|e| e.value == value)
                            .map(|e| self.real_expiry(n, e))
                    })
                    .unwrap_or(0);
                let before = match restore {
                    true => lost.get(&(i, value.to_vec())).copied().unwrap_or(0),
                    false => 0,
                };
                now.max(before)
            })
            .collect();
        expiries.sort_unstable_by(|a, b| b.cmp(a));
        let m = usize::from(self.p.config.key_majority());
        expiries.get(m - 1).copied().unwrap_or(0)
    }

    /// `(key index, name)` of a lock key.
    pub(crate) fn parse_lock_key(&self, key: &[u8]) -> Option<(usize, usize)> {
        parse_lock_key(self.p.config.prefix(), &self.p.names, key)
    }

    /// True when a believer's value sits on a key stored at node `n`.
    pub(crate) fn held_on(&self, n: usize) -> bool {
        let db = self.p.config.database();
        self.chk.reqs.values().any(|r| {
            let Some(v) = r.value.as_ref().filter(|_| r.belief.is_some()) else {
                return false;
            };
            self.names_keys(r.name).iter().any(|(node, k)| {
                *node == n
                    && self.nodes[n]
                        .peek(db, k, self.now)
                        .is_some_and(|e| &e.value == v)
            })
        })
    }

    /// A failover lost `lost`: requests of the writers learn which of their
    /// keys went; a believer is undermined when the loss brought forward
    /// the time until which its keys hold the name (fewer than `m` left, or
    /// the `m`-th latest expiry earlier: losing one key's extension is
    /// enough when the others' TTLs are older).
    pub(crate) fn on_failover_loss(&mut self, lost: Vec<LostKey>) {
        let mut values = BTreeSet::new();
        for lk in &lost {
            let Writer::Locker(l) = lk.writer else {
                continue;
            };
            let Some((i, name)) = self.parse_lock_key(&lk.key) else {
                continue;
            };
            let line = format!(
                "lost by the failover: {} (L{l}{})",
                String::from_utf8_lossy(&lk.key),
                if lk.shortened { ", extension" } else { "" }
            );
            self.log(|| line);
            for (k, r) in self.chk.reqs.iter_mut() {
                if k.0 == l && r.name == name {
                    r.failover_lost.insert((i, lk.value.clone()), lk.expiry);
                }
            }
            values.insert(lk.value.clone());
        }
        for v in values {
            let Some(&key) = self.chk.by_value.get(&v) else {
                continue;
            };
            let Some(r) = self.chk.reqs.get(&key) else {
                continue;
            };
            if r.belief.is_none() {
                continue;
            }
            let name = r.name;
            let (after, before) = (
                self.protection(key, name, &v, false),
                self.protection(key, name, &v, true),
            );
            if after < before {
                self.undermine(key, after, before);
            }
        }
    }

    fn undermine(&mut self, key: (usize, u64), after: u64, before: u64) {
        *self.stats.cluster.entry("undermined").or_default() += 1;
        self.log(|| {
            format!(
                "L{} lock {:#x} undermined: its keys hold it until {:.3} ms instead of {:.3} ms",
                key.0,
                key.1,
                after as f64 / 1e6,
                before as f64 / 1e6
            )
        });
        if self.p.failover_exemption {
            if let Some(r) = self.chk.reqs.get_mut(&key) {
                r.tainted = true;
                r.data_lost = true;
            }
        }
    }

    /// At `Acquired`, for a request some of whose keys a failover lost
    /// meanwhile: `(after, before)` when the loss brought forward the time
    /// until which its value holds the name.
    fn undermined_at_acquire(
        &self,
        l: usize,
        key: (usize, u64),
        name: usize,
    ) -> Option<(u64, u64)> {
        let r = &self.chk.reqs[&key];
        let db = self.p.config.database();
        let mut counts: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
        for (n, k) in self.names_keys(name) {
            if let Some(e) = self.nodes[n].peek(db, &k, self.now) {
                if e.writer == Writer::Locker(l) {
                    *counts.entry(e.value.clone()).or_default() += 1;
                }
            }
        }
        let prefix = self.p.config.prefix();
        for (i, v) in r.failover_lost.keys() {
            let k = key_name(prefix, *i, &self.p.names[name]);
            let there = self.key_nodes(*i, &k).iter().any(|&n| {
                self.nodes[n]
                    .peek(db, &k, self.now)
                    .is_some_and(|e| &e.value == v)
            });
            if !there {
                *counts.entry(v.clone()).or_default() += 1;
            }
        }
        let m = usize::from(self.p.config.key_majority());
        let (v, _) = counts
            .into_iter()
            .filter(|(_, c)| *c >= m)
            .max_by_key(|(_, c)| *c)?;
        let (after, before) = (
            self.protection(key, name, &v, false),
            self.protection(key, name, &v, true),
        );
        (after < before).then_some((after, before))
    }

    /// How many keys of `name` carry `value` right now.
    fn backing(&self, name: usize, value: &[u8]) -> usize {
        let db = self.p.config.database();
        self.names_keys(name)
            .iter()
            .filter(|(n, k)| {
                self.nodes[*n]
                    .peek(db, k, self.now)
                    .is_some_and(|e| e.value == value)
            })
            .count()
    }

    pub(crate) fn on_acquired(&mut self, l: usize, id: LockId) {
        let key = self.key_of(l, id);
        let Some(req) = self.chk.reqs.get(&key) else {
            self.fail(format!("L{l}: Acquired for a request never made ({id:?})"));
            return;
        };
        let (name, mut tainted) = (req.name, req.tainted);
        // A local hand-off passes the lease on, with everything it carries.
        let from = self
            .chk
            .handoff_from
            .filter(|f| f.0 == l && self.chk.reqs.get(f).is_some_and(|r| r.name == name));
        if let Some(from) = from {
            self.stats.handoffs += 1;
            let (t, v, d, lost, refusals) = {
                let r = &self.chk.reqs[&from];
                (
                    r.tainted,
                    r.value.clone(),
                    r.data_lost,
                    r.failover_lost.clone(),
                    r.refusals.clone(),
                )
            };
            tainted |= t;
            self.chk.reqs.get_mut(&from).expect("present").successor = Some(key);
            let req = self.chk.reqs.get_mut(&key).expect("present");
            req.tainted = tainted;
            req.data_lost = d;
            req.failover_lost.extend(lost);
            // The keys move on with their history: a release refused
            // before the hand-off is reported by the successor.
            req.refusals.extend(refusals);
            req.value = v.clone();
            req.belief = Some(self.now);
            req.acquired = true;
            if let Some(v) = v {
                self.chk.by_value.insert(v, key);
            }
        }
        // Keys of this attempt lost by a failover before it was answered.
        if from.is_none() && !self.chk.reqs[&key].failover_lost.is_empty() {
            if let Some((after, before)) = self.undermined_at_acquire(l, key, name) {
                self.undermine(key, after, before);
                tainted = self.chk.reqs[&key].tainted;
            }
        }
        // Mutual exclusion.
        let others: Vec<((usize, u64), bool)> = self
            .chk
            .reqs
            .iter()
            .filter(|(k, r)| **k != key && r.name == name && r.belief.is_some())
            .map(|(k, r)| (*k, r.tainted))
            .collect();
        for (other, other_tainted) in others {
            if !tainted && !other_tainted {
                self.fail(format!(
                    "mutual exclusion: L{l} acquired {:?} ({id:?}) while L{} (lock {:#x}) still believes it holds it",
                    self.p.names[name], other.0, other.1
                ));
                return;
            }
        }
        if from.is_some() {
            return;
        }
        // Which value is ours: a majority of the name's keys written by this locker.
        let db = self.p.config.database();
        let mut counts: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
        for (n, k) in self.names_keys(name) {
            if let Some(e) = self.nodes[n].peek(db, &k, self.now) {
                if e.writer == Writer::Locker(l) {
                    *counts.entry(e.value.clone()).or_default() += 1;
                }
            }
        }
        let m = usize::from(self.p.config.key_majority());
        let value = counts
            .into_iter()
            .filter(|(_, c)| *c >= m)
            .max_by_key(|(_, c)| *c)
            .map(|(v, _)| v);
        if value.is_none()
            && !tainted
            && !self.chk.data_loss
            && self.p.hostile_node.is_none()
            && self.p.lease_checks
        {
            self.fail(format!(
                "backing: L{l} acquired {:?} ({id:?}) but fewer than {m} of its keys carry one value of L{l}",
                self.p.names[name]
            ));
            return;
        }
        let req = self.chk.reqs.get_mut(&key).expect("present");
        req.belief = Some(self.now);
        req.acquired = true;
        if let Some(v) = value {
            req.value = Some(v.clone());
            self.chk.by_value.insert(v, key);
        }
    }

    /// The worker stopped believing (Lost seen, or unlock called).
    pub(crate) fn on_belief_end(&mut self, l: usize, id: LockId) {
        let key = self.key_of(l, id);
        if let Some(r) = self.chk.reqs.get_mut(&key) {
            r.belief = None;
            r.ended = true;
        }
    }

    /// The engine forgot the request.
    pub(crate) fn on_released(&mut self, l: usize, id: LockId) {
        let key = self.key_of(l, id);
        if let Some(r) = self.chk.reqs.remove(&key) {
            // A local hand-off passes the value on: only forget our own mapping.
            if let Some(v) = r.value {
                if self.chk.by_value.get(&v) == Some(&key) {
                    self.chk.by_value.remove(&v);
                }
            }
        }
    }

    /// Healthy: not paused, every connection up and ready, no partition,
    /// every node up. In a cluster: the same for every node the engine
    /// knows (bar dead ones), every current master up and reachable (one it
    /// has not learned since the configuration settled is the engine's
    /// problem), and the configuration settled long enough for the engine
    /// to have learned it.
    pub(crate) fn healthy(&self, l: usize) -> bool {
        let ls = &self.lockers[l];
        // Starved, or a node refused lately (a waiter may be backing off
        // for up to `BACKOFF_MAX`).
        if ls.paused
            || self.now < ls.starve_until
            || self.now < self.last_refuse_end + BACKOFF_MAX + 10 * MS
        {
            return false;
        }
        let Some(cl) = &self.cl else {
            return (0..ls.links.len()).all(|n| {
                matches!(ls.links[n], LinkState::Up(_))
                    && ls.engine.is_ready(NodeId(n as u16))
                    && !self.net.links[l][n].cut(self.now)
                    && self.nodes[n].state == NodeState::Up
            });
        };
        // Liveness needs some node the locker knows to be reachable: it
        // asks the nodes it knows (seeds, masters and, since seed 698 of
        // `sim_cluster` stalled a waiter for 2 s, replicas) for the
        // topology; a locker cut off from all of them cannot progress.
        let contact = (0..ls.links.len()).any(|e| {
            let n = ls.target[e];
            self.nodes[n].state == NodeState::Up && !self.net.links[l][n].cut(self.now)
        });
        // Every node it knows, master or not, may have its requests in
        // flight: a stalled or reconnecting one is a disturbance, as
        // outside a cluster (a dead one closed its connections at once).
        let known_ok = (0..ls.links.len()).all(|e| {
            let n = ls.target[e];
            self.nodes[n].state == NodeState::Down
                || (matches!(ls.links[e], LinkState::Up(_))
                    && ls.engine.is_ready(NodeId(e as u16))
                    && !self.net.links[l][n].cut(self.now)
                    && self.nodes[n].state == NodeState::Up)
        });
        contact
            && known_ok
            && self.now >= cl.settled_at
            && cl.migration.is_none()
            && cl.latest().masters().iter().all(|&m| {
                self.nodes[m].state == NodeState::Up
                    && !self.net.links[l][m].cut(self.now)
                    && (0..ls.links.len()).all(|e| {
                        ls.target[e] != m
                            || (matches!(ls.links[e], LinkState::Up(_))
                                && ls.engine.is_ready(NodeId(e as u16)))
                    })
            })
    }

    /// A value went away at a node.
    pub(crate) fn on_change(&mut self, ch: Change, removed_together: usize) {
        if self.cl.is_some() && !self.key_nodes(0, &ch.key).contains(&ch.node) {
            // A stale copy on a node that no longer serves the key's slot
            // (a lost replication of a migration's deletion): nobody reads it.
            return;
        }
        if ch.cause == Cause::DataLoss {
            self.chk.data_loss = true;
        }
        let Some(&key) = self.chk.by_value.get(&ch.old_value) else {
            return;
        };
        let Some(req) = self.chk.reqs.get(&key) else {
            return;
        };
        if req.belief.is_none() {
            return;
        }
        let (name, tainted) = (req.name, req.tainted);
        let value = req.value.clone().expect("mapped");
        if ch.cause == Cause::DataLoss {
            // A delayed restart keeps this safe, but the lease no longer
            // matches what the nodes hold: exempt it from the lease check.
            if let Some(r) = self.chk.reqs.get_mut(&key) {
                r.data_lost = true;
            }
            return;
        }
        let m = usize::from(self.p.config.key_majority());
        let backing = self.backing(name, &value);
        if backing >= m {
            return;
        }
        match ch.cause {
            Cause::DataLoss => {
                if let Some(r) = self.chk.reqs.get_mut(&key) {
                    r.data_lost = true;
                }
            }
            Cause::Expired => {
                let data_lost = self.chk.reqs[&key].data_lost;
                if !tainted && !data_lost && self.p.hostile_node.is_none() && self.p.lease_checks {
                    self.fail(format!(
                        "lease: {} expired at node {} while L{} (lock {:#x}) still believes it holds {:?} ({backing} of {m} keys left)",
                        String::from_utf8_lossy(&ch.key),
                        ch.node,
                        key.0,
                        key.1,
                        self.p.names[name]
                    ));
                }
            }
            Cause::Written(_) => {
                // The majority was whole right before this write: earlier
                // checks of this holder are settled (it took keys back).
                if backing + removed_together >= m {
                    for i in 0..self.chk.prompts.len() {
                        let Some(start) = self.chk.prompts[i].as_ref().map(|p| p.req) else {
                            continue;
                        };
                        if self.chain_end(start) == key {
                            self.chk.prompts[i] = None;
                            self.stats.prompt_checked += 1;
                        }
                    }
                }
                let l = key.0;
                if self.p.hostile_node.is_some() || !self.healthy(l) || self.tracking_doubtful(l) {
                    self.stats.prompt_skipped += 1;
                    return;
                }
                let bound = self.prompt_bound(name);
                let msg = format!(
                    "check: prompt loss for L{} lock {:#x} by {:.3} ms ({} of {m} keys left after {})",
                    key.0,
                    key.1,
                    (self.now + bound) as f64 / 1e6,
                    backing,
                    String::from_utf8_lossy(&ch.key)
                );
                self.log(|| msg);
                let index = self.chk.prompts.len();
                let nodes_disturb = self.node_disturb.iter().sum();
                self.chk.prompts.push(Some(Prompt {
                    req: key,
                    since: self.now,
                    locker_disturb: self.lockers[l].disturb,
                    nodes_disturb,
                }));
                self.at(self.now + bound, Ev::Prompt { index });
            }
        }
    }

    /// An extend script refused (`-CLUSTERDOWN`) did not run, so it did
    /// not re-arm the holder's tracking of the key; the engine retries it
    /// after `try_next_after` (it used to wait for the next periodic
    /// extension: seed 76924 of `sim_cluster`, an admin `DEL` unnoticed).
    /// Prompt-loss checks skip a locker until that retry had time to land.
    fn tracking_doubtful(&self, l: usize) -> bool {
        let Some(at) = self.lockers[l].extend_refused_at else {
            return false;
        };
        let i = self.p.config.try_next_after().as_nanos() as u64;
        let window = i + i * 2 * self.p.clock_ppm as u64 / 1_000_000 + 3 * self.lat_max + 2 * MS;
        self.now < at + window
    }

    /// Pending prompt-loss checks whose holder has a whole majority again
    /// (it took keys back) are settled.
    pub(crate) fn settle_prompts(&mut self) {
        let m = usize::from(self.p.config.key_majority());
        for i in 0..self.chk.prompts.len() {
            let Some(start) = self.chk.prompts[i].as_ref().map(|p| p.req) else {
                continue;
            };
            let at = self.chain_end(start);
            let whole = self
                .chk
                .reqs
                .get(&at)
                .and_then(|r| r.value.as_ref().map(|v| (r.name, v.clone())))
                .is_some_and(|(name, v)| self.backing(name, &v) >= m);
            if whole {
                self.chk.prompts[i] = None;
                self.stats.prompt_checked += 1;
            }
        }
    }

    /// The request a lease ended up with, following local hand-offs.
    fn chain_end(&self, mut at: (usize, u64)) -> (usize, u64) {
        while let Some(next) = self.chk.reqs.get(&at).and_then(|r| r.successor) {
            at = next;
        }
        at
    }

    /// How long a holder may take to learn that its majority was taken:
    /// the invalidation, one round trip (plus one more when a node lost its
    /// script cache: `NOSCRIPT`, then `EVAL`), and slack for processing.
    pub(crate) fn prompt_bound(&self, name: usize) -> u64 {
        let script = match self.p.config.ttl_mode() {
            tracklock_core::TtlMode::Relative => EXTEND_PX,
            tracklock_core::TtlMode::Absolute => EXTEND_PXAT,
        };
        let cold = self
            .names_keys(name)
            .iter()
            .any(|(n, _)| !self.nodes[*n].knows_script(script));
        let rtt = (if cold { 5 } else { 3 }) * self.lat_max + 2 * MS;
        if self.p.config.client_caching() {
            rtt
        } else {
            let i = self.p.config.effective_extend_interval().as_nanos() as u64;
            i + i * 2 * self.p.clock_ppm as u64 / 1_000_000 + rtt
        }
    }

    pub(crate) fn check_prompt(&mut self, index: usize) {
        let Some(p) = self.chk.prompts.get_mut(index).and_then(Option::take) else {
            return;
        };
        let at = self.chain_end(p.req);
        let Some(req) = self.chk.reqs.get(&at) else {
            self.stats.prompt_checked += 1;
            return;
        };
        if req.belief.is_none() {
            self.stats.prompt_checked += 1;
            return;
        }
        // Told, or it took a majority back meanwhile (periodic extension
        // re-takes free keys): either way its belief is backed again.
        if let Some(v) = req.value.clone() {
            if self.backing(req.name, &v) >= usize::from(self.p.config.key_majority()) {
                self.stats.prompt_checked += 1;
                return;
            }
        }
        let l = at.0;
        let nodes_disturb: u64 = self.node_disturb.iter().sum();
        // (See `tracking_doubtful`: a re-check refused meanwhile.)
        let refused = self.lockers[l]
            .extend_refused_at
            .is_some_and(|t| t >= p.since);
        if self.lockers[l].disturb != p.locker_disturb
            || nodes_disturb != p.nodes_disturb
            || refused
        {
            self.stats.prompt_skipped += 1;
            return;
        }
        self.fail(format!(
            "prompt loss: L{l} (lock {:#x}) still believes it holds {:?} {:.3} ms after its majority was taken",
            at.1,
            self.p.names[req.name],
            (self.now - p.since) as f64 / 1e6,
        ));
    }

    /// How long a free name may go with a healthy waiter not acquiring it.
    pub(crate) fn liveness_bound(&self) -> u64 {
        let tna = self.p.config.try_next_after().as_nanos() as u64;
        let v = self.p.config.validity().as_nanos() as u64;
        4 * tna + v * 4 * self.p.clock_ppm as u64 / 1_000_000 + 10 * self.lat_max + 100 * MS
    }

    pub(crate) fn check_liveness(&mut self) {
        if self.p.hostile_node.is_some() {
            return;
        }
        for name in 0..self.p.names.len() {
            let waiters: Vec<usize> = self
                .chk
                .reqs
                .iter()
                .filter(|(_, r)| {
                    r.name == name && r.mode == LockMode::Wait && !r.ended && !r.acquired
                })
                .map(|(k, _)| k.0)
                .collect();
            let believed = self
                .chk
                .reqs
                .values()
                .any(|r| r.name == name && r.belief.is_some());
            let db = self.p.config.database();
            let free = !believed
                && self
                    .names_keys(name)
                    .iter()
                    .all(|(n, k)| self.nodes[*n].peek(db, k, self.now).is_none());
            let ok = waiters.is_empty() || !free || !waiters.iter().all(|&l| self.healthy(l));
            if ok {
                self.chk.stuck[name] = None;
                continue;
            }
            self.stats.liveness_samples += 1;
            let since = *self.chk.stuck[name].get_or_insert(self.now);
            let bound = self.liveness_bound();
            if self.now - since > bound {
                self.fail(format!(
                    "liveness: {:?} has been free for {:.1} ms with healthy waiters (lockers {waiters:?}) and nobody acquired it (bound {:.1} ms)",
                    self.p.names[name],
                    (self.now - since) as f64 / 1e6,
                    bound as f64 / 1e6
                ));
                return;
            }
        }
    }

    /// After every engine settled: no key written by a locker remains.
    pub(crate) fn check_no_leaks(&mut self) {
        let db = self.p.config.database();
        for n in 0..self.nodes.len() {
            // A replica only mirrors its master.
            if Some(n) == self.p.hostile_node || self.nodes[n].replica {
                continue;
            }
            for (k, e) in self.nodes[n].live_keys(db, self.now) {
                if self.cl.is_some() && !self.key_nodes(0, &k).contains(&n) {
                    // A stale copy in a slot the node does not serve.
                    continue;
                }
                if let Writer::Locker(l) = e.writer {
                    if e.orphan {
                        // Written by bytes that were still in flight (or
                        // buffered by a paused node) after the engine had
                        // dropped the connection: reported, not a violation.
                        self.stats.orphan_writes += 1;
                        continue;
                    }
                    self.fail(format!(
                        "leak: {} (written by L{l}) remains on node {n} after every engine settled",
                        String::from_utf8_lossy(&k)
                    ));
                    return;
                }
            }
        }
    }

    /// Past every TTL: nothing remains, every engine idle.
    pub(crate) fn final_check(&mut self) {
        let db = self.p.config.database();
        for n in 0..self.nodes.len() {
            if let Some((k, _)) = self.nodes[n].live_keys(db, self.now).into_iter().next() {
                self.fail(format!(
                    "leak: {} remains on node {n} past every TTL",
                    String::from_utf8_lossy(&k)
                ));
                return;
            }
        }
        for l in 0..self.lockers.len() {
            let e = &self.lockers[l].engine;
            if e.lock_count() != 0 || !e.is_idle() {
                let (c, i) = (e.lock_count(), e.is_idle());
                self.fail(format!("L{l}: lock_count {c}, idle {i} at the end"));
                return;
            }
            // Everything healed long ago: every connection is usable again
            // (but a cluster engine may just have learned a node from its
            // periodic topology query: give the handshake a second).
            for n in 0..self.lockers[l].links.len() {
                let fresh = self.now < self.lockers[l].learned_at[n] + 1_000 * MS;
                if !e.is_ready(NodeId(n as u16)) && !fresh {
                    let link = self.lockers[l].links[n];
                    self.fail(format!(
                        "L{l}: node {n} is not ready at the end (link {link:?}), long after everything healed"
                    ));
                    return;
                }
            }
        }
        self.phase = Phase::Done;
        self.log(|| "run complete".into());
    }
}

use super::world::Ev;
