//! The per-name index of local requests, so that every question about "the
//! other requests of this name" costs O(1), not a scan of every request:
//! - a hash table, name → entry (open addressing, linear probing, keyed
//!   SipHash so that chosen names cannot pile up in one probe run);
//! - per name, two intrusive lists threaded through a per-request link
//!   array: `waiting` (phase `Waiting`, oldest `seq` first, so its head is
//!   the leader) and `engaged` (`Acquiring` or `Held`), and a count of holders;
//! - per name, an event clock for wake-ups and hold-backs that reach every
//!   waiter: each request records the clock it last caught up with and
//!   applies what it missed when it is next looked at ([`Names::catch_up`]).
//!   Waking n waiters is then one increment, not n writes.
//!
//! The entry owns the name's text; requests refer to it. Without `alloc`
//! every table is fixed-size: at most [`LOCK_CAP`] names (one per request at
//! worst) in a table of twice as many buckets.

use core::hash::Hasher;

use crate::lock::LockPhase;
use crate::storage::{Full, Seq, Text};
use crate::time::Instant;

use super::{ReqIdx, LOCK_CAP};

/// No index (an empty list end, an empty bucket, a request in no list).
const NIL: u32 = u32::MAX;

/// Buckets in the no-alloc build: load factor at most 1/2.
const BUCKET_CAP: usize = 2 * LOCK_CAP;

/// Pauses (`Config::fair`) remembered after their name's entry went: a
/// locker that awaits its release before asking again leaves no request
/// of the name meanwhile. The latest this many are kept, whatever the
/// build: looking one up is a short scan, done only when an entry is made.
const RECENT_PAUSES: usize = 16;

/// Largest text storage (bytes) a freed name entry keeps for the next
/// name: enough for any usual lock name, and one huge name does not stay
/// allocated for good.
const RECYCLED_TEXT_MAX: usize = 256;

/// An entry of the index: one name that live requests have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NameIdx(u32);

#[derive(Debug, Clone, Copy)]
struct List {
    head: u32,
    tail: u32,
}

impl Default for List {
    fn default() -> Self {
        List {
            head: NIL,
            tail: NIL,
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Name {
    text: Text,
    hash: u64,
    /// Live requests of the name, in any phase; the entry goes at 0.
    members: u32,
    waiting: List,
    engaged: List,
    /// Requests of `engaged` in phase `Held`.
    held: u32,
    /// Ticks at every wake-up or hold-back of the name's waiters.
    clock: u64,
    /// The clock of the latest wake-up and of the latest hold-back.
    last_wake: u64,
    last_hold: u64,
    /// Waiters of the name attempt no earlier than this (`Config::fair`).
    fair_until: Option<Instant>,
}

/// Which list a request is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    None,
    Waiting,
    Engaged { held: bool },
}

impl Place {
    fn of(phase: LockPhase) -> Place {
        match phase {
            LockPhase::Waiting => Place::Waiting,
            LockPhase::Acquiring => Place::Engaged { held: false },
            LockPhase::Held => Place::Engaged { held: true },
            LockPhase::Draining => Place::None,
        }
    }
}

/// One request's place in the index.
#[derive(Debug, Clone, Copy)]
struct Link {
    name: u32,
    seq: u64,
    place: Place,
    prev: u32,
    next: u32,
    /// The name's clock when the request last caught up with it.
    seen: u64,
}

impl Default for Link {
    fn default() -> Self {
        Link {
            name: NIL,
            seq: 0,
            place: Place::None,
            prev: NIL,
            next: NIL,
            seen: 0,
        }
    }
}

/// What a request missed since it last caught up with its name's clock.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Missed {
    /// A hold-back reached it while it waited: no wake-up, no retry timer.
    pub(crate) held_back: bool,
    /// A wake-up reached it (after any hold-back).
    pub(crate) woken: bool,
}

/// The per-name index. See the module docs.
#[derive(Debug)]
pub(crate) struct Names {
    names: Seq<Name, LOCK_CAP>,
    /// Entries of `names` without members, to reuse.
    free: Seq<u32, LOCK_CAP>,
    /// Open addressing: entry index + 1, or 0 for an empty bucket. Its
    /// length is a power of two (or zero before the first name).
    buckets: Seq<u32, BUCKET_CAP>,
    /// Indexed by request.
    links: Seq<Link, LOCK_CAP>,
    /// SipHash keys, from the engine's seed.
    keys: (u64, u64),
    /// The latest pauses: `(name hash, until)`, a ring written at `next`.
    recent: [Option<(u64, Instant)>; RECENT_PAUSES],
    next: usize,
}

impl Names {
    pub(crate) fn new(seed: &[u8; 32]) -> Names {
        let word = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&seed[i..i + 8]);
            u64::from_le_bytes(b)
        };
        Names {
            names: Seq::default(),
            free: Seq::default(),
            buckets: Seq::default(),
            links: Seq::default(),
            // Not the words that seed the value generator as they are.
            keys: (
                word(16) ^ 0x736f_6d65_7073_6575,
                word(24) ^ 0x646f_7261_6e64_6f6d,
            ),
            recent: [None; RECENT_PAUSES],
            next: 0,
        }
    }

    fn hash(&self, name: &[u8]) -> u64 {
        // SipHash-2-4: deprecated in `core` only in favour of `std`'s
        // hasher, which a `no_std` crate cannot use.
        #[allow(deprecated)]
        let mut h = core::hash::SipHasher::new_with_keys(self.keys.0, self.keys.1);
        h.write(name);
        h.finish()
    }

    fn name(&self, n: u32) -> &Name {
        &self.names.as_slice()[n as usize]
    }

    fn name_mut(&mut self, n: u32) -> &mut Name {
        &mut self.names.as_mut_slice()[n as usize]
    }

    fn link(&self, req: ReqIdx) -> Link {
        self.links
            .as_slice()
            .get(req.get())
            .copied()
            .unwrap_or_default()
    }

    fn link_mut(&mut self, i: u32) -> &mut Link {
        &mut self.links.as_mut_slice()[i as usize]
    }

    /// The entry of `name`, if a live request has it.
    pub(crate) fn lookup(&self, name: &[u8]) -> Option<NameIdx> {
        let mask = self.buckets.len().checked_sub(1)?;
        let hash = self.hash(name);
        let mut b = hash as usize & mask;
        loop {
            let n = self.buckets.as_slice()[b].checked_sub(1)?;
            let e = self.name(n);
            if e.hash == hash && e.text.as_bytes() == name {
                return Some(NameIdx(n));
            }
            b = (b + 1) & mask;
        }
    }

    /// Enters request `req` (creation order `seq`, in `phase`) under `name`.
    /// Fails when a no-alloc table is full or the name does not fit.
    pub(crate) fn join(
        &mut self,
        req: ReqIdx,
        name: &str,
        seq: u64,
        phase: LockPhase,
    ) -> Result<NameIdx, Full> {
        while self.links.len() <= req.get() {
            self.links.push(Link::default())?;
        }
        let n = match self.lookup(name.as_bytes()) {
            Some(n) => n.0,
            None => self.create(name)?,
        };
        let clock = self.name(n).clock;
        self.name_mut(n).members += 1;
        *self.link_mut(req.get() as u32) = Link {
            name: n,
            seq,
            seen: clock,
            ..Link::default()
        };
        self.place(req, Place::of(phase));
        Ok(NameIdx(n))
    }

    fn create(&mut self, name: &str) -> Result<u32, Full> {
        if (self.names.len() - self.free.len() + 1) * 2 > self.buckets.len() {
            self.grow()?;
        }
        // A freed entry's text storage is reused: a name made and dropped
        // on every lock+unlock (a task on its own name) allocates nothing.
        let mut text = match self.free.as_slice().last() {
            Some(&n) => core::mem::take(&mut self.name_mut(n).text),
            None => Text::default(),
        };
        if !text.set(name) {
            return Err(Full);
        }
        let hash = self.hash(name.as_bytes());
        let fair_until = self
            .recent
            .iter()
            .flatten()
            .find(|r| r.0 == hash)
            .map(|r| r.1);
        let entry = Name {
            text,
            hash,
            fair_until,
            ..Name::default()
        };
        let n = match self.free.pop() {
            Some(n) => {
                *self.name_mut(n) = entry;
                n
            }
            None => {
                self.names.push(entry)?;
                self.names.len() as u32 - 1
            }
        };
        self.insert_bucket(n);
        Ok(n)
    }

    /// Doubles the bucket array (to its fixed size, without `alloc`).
    fn grow(&mut self) -> Result<(), Full> {
        let size = if cfg!(feature = "alloc") {
            (self.buckets.len() * 2).max(16)
        } else {
            BUCKET_CAP
        };
        if size <= self.buckets.len() {
            return Err(Full);
        }
        self.buckets.clear();
        for _ in 0..size {
            self.buckets.push(0)?;
        }
        for n in 0..self.names.len() as u32 {
            if self.name(n).members > 0 {
                self.insert_bucket(n);
            }
        }
        Ok(())
    }

    fn insert_bucket(&mut self, n: u32) {
        let mask = self.buckets.len() - 1;
        let mut b = self.name(n).hash as usize & mask;
        while self.buckets.as_slice()[b] != 0 {
            b = (b + 1) & mask;
        }
        self.buckets.as_mut_slice()[b] = n + 1;
    }

    /// Empties the bucket of `n`, shifting back the entries after it that
    /// would no longer be found (linear probing without tombstones).
    fn remove_bucket(&mut self, n: u32) {
        let mask = self.buckets.len() - 1;
        let mut hole = self.name(n).hash as usize & mask;
        while self.buckets.as_slice()[hole] != n + 1 {
            hole = (hole + 1) & mask;
        }
        let mut b = hole;
        loop {
            b = (b + 1) & mask;
            let m = self.buckets.as_slice()[b];
            if m == 0 {
                break;
            }
            let home = self.name(m - 1).hash as usize & mask;
            // `m` may fill the hole if its home is not in (hole, b].
            if (b.wrapping_sub(home) & mask) >= (b.wrapping_sub(hole) & mask) {
                self.buckets.as_mut_slice()[hole] = m;
                hole = b;
            }
        }
        self.buckets.as_mut_slice()[hole] = 0;
    }

    /// Takes request `req` out; the name goes with its last request.
    pub(crate) fn leave(&mut self, req: ReqIdx) {
        let link = self.link(req);
        if link.name == NIL {
            return;
        }
        self.unplace(req);
        let n = link.name;
        *self.link_mut(req.get() as u32) = Link::default();
        let left = {
            let e = self.name_mut(n);
            e.members -= 1;
            e.members
        };
        if left == 0 {
            self.remove_bucket(n);
            // Keeps the text's storage for the next name made here
            // (`create`), unless it is large.
            let mut text = core::mem::take(&mut self.name_mut(n).text);
            text.recycle(RECYCLED_TEXT_MAX);
            *self.name_mut(n) = Name {
                text,
                ..Name::default()
            };
            // Room for it exists: `free` holds at most every entry.
            let _ = self.free.push(n);
        }
    }

    /// Moves request `req` to the list of `phase`.
    pub(crate) fn set_phase(&mut self, req: ReqIdx, phase: LockPhase) {
        if self.link(req).name == NIL {
            return;
        }
        self.unplace(req);
        self.place(req, Place::of(phase));
    }

    fn unplace(&mut self, req: ReqIdx) {
        let link = self.link(req);
        let held = match link.place {
            Place::None => return,
            Place::Waiting => false,
            Place::Engaged { held } => held,
        };
        if link.prev != NIL {
            self.link_mut(link.prev).next = link.next;
        }
        if link.next != NIL {
            self.link_mut(link.next).prev = link.prev;
        }
        let e = self.name_mut(link.name);
        e.held -= u32::from(held);
        let list = match link.place {
            Place::Waiting => &mut e.waiting,
            _ => &mut e.engaged,
        };
        if link.prev == NIL {
            list.head = link.next;
        }
        if link.next == NIL {
            list.tail = link.prev;
        }
        let l = self.link_mut(req.get() as u32);
        l.place = Place::None;
        l.prev = NIL;
        l.next = NIL;
    }

    fn place(&mut self, req: ReqIdx, place: Place) {
        let i = req.get() as u32;
        let link = self.link(req);
        let n = link.name;
        // Waiters stay in creation order. A new request is the youngest (the
        // tail); one back from a failed attempt was the leader when it
        // started, so it goes at or near the head: the walk is short.
        let (mut prev, mut next) = (NIL, NIL);
        match place {
            Place::None => {}
            Place::Waiting => {
                let list = self.name(n).waiting;
                if list.tail == NIL || self.links.as_slice()[list.tail as usize].seq < link.seq {
                    prev = list.tail;
                } else {
                    next = list.head;
                    while next != NIL && self.links.as_slice()[next as usize].seq < link.seq {
                        prev = next;
                        next = self.links.as_slice()[next as usize].next;
                    }
                }
            }
            Place::Engaged { held } => {
                let e = self.name_mut(n);
                e.held += u32::from(held);
                prev = e.engaged.tail;
            }
        }
        let l = self.link_mut(i);
        l.place = place;
        l.prev = prev;
        l.next = next;
        if place == Place::None {
            return;
        }
        if prev != NIL {
            self.link_mut(prev).next = i;
        }
        if next != NIL {
            self.link_mut(next).prev = i;
        }
        let e = self.name_mut(n);
        let list = match place {
            Place::Waiting => &mut e.waiting,
            _ => &mut e.engaged,
        };
        if prev == NIL {
            list.head = i;
        }
        if next == NIL {
            list.tail = i;
        }
    }

    /// The name of request `req`.
    pub(crate) fn of(&self, req: ReqIdx) -> Option<NameIdx> {
        let n = self.link(req).name;
        (n != NIL).then_some(NameIdx(n))
    }

    /// The text of a name.
    pub(crate) fn text(&self, n: NameIdx) -> &Text {
        &self.name(n.0).text
    }

    /// Requests of `n` in phase `Held`.
    pub(crate) fn held(&self, n: NameIdx) -> u32 {
        self.name(n.0).held
    }

    /// The waiter of `n` that may attempt: the oldest one, unless a request
    /// of the name holds or acquires it.
    pub(crate) fn leader(&self, n: NameIdx) -> Option<ReqIdx> {
        let e = self.name(n.0);
        (e.engaged.head == NIL && e.waiting.head != NIL).then_some(ReqIdx::new(e.waiting.head))
    }

    /// The instant before which waiters of `n` do not attempt, if it is
    /// after `now` (`Config::fair`).
    pub(crate) fn paused(&self, n: NameIdx, now: Instant) -> Option<Instant> {
        self.name(n.0).fair_until.filter(|&t| t > now)
    }

    /// Waiters of `n` attempt no earlier than `until` (a later pause
    /// already set stays).
    pub(crate) fn pause(&mut self, n: NameIdx, until: Instant) {
        let e = self.name_mut(n.0);
        let until = e.fair_until.map_or(until, |t| t.max(until));
        e.fair_until = Some(until);
        let hash = e.hash;
        let slot = match self
            .recent
            .iter()
            .position(|r| r.is_some_and(|r| r.0 == hash))
        {
            Some(i) => i,
            None => {
                let i = self.next;
                self.next = (i + 1) % RECENT_PAUSES;
                i
            }
        };
        self.recent[slot] = Some((hash, until));
    }

    /// The oldest waiter of `n`.
    pub(crate) fn first_waiting(&self, n: NameIdx) -> Option<ReqIdx> {
        let head = self.name(n.0).waiting.head;
        (head != NIL).then_some(ReqIdx::new(head))
    }

    /// The first acquiring or holding request of `n`.
    pub(crate) fn first_engaged(&self, n: NameIdx) -> Option<ReqIdx> {
        let head = self.name(n.0).engaged.head;
        (head != NIL).then_some(ReqIdx::new(head))
    }

    /// The request after `req` in its list.
    pub(crate) fn next(&self, req: ReqIdx) -> Option<ReqIdx> {
        let next = self.link(req).next;
        (next != NIL).then_some(ReqIdx::new(next))
    }

    /// What request `req` (waiting if `waiting`) missed of its name's
    /// wake-ups and hold-backs; it is now caught up.
    pub(crate) fn catch_up(&mut self, req: ReqIdx, waiting: bool) -> Missed {
        let link = self.link(req);
        if link.name == NIL {
            return Missed::default();
        }
        let e = self.name(link.name);
        let (clock, last_wake, last_hold) = (e.clock, e.last_wake, e.last_hold);
        self.link_mut(req.get() as u32).seen = clock;
        let held_back = waiting && last_hold > link.seen;
        let woken = last_wake > link.seen && (!held_back || last_wake > last_hold);
        Missed { held_back, woken }
    }

    /// Wakes every request of `n`. `except`: one that is not woken (it
    /// catches up first: what it missed is returned).
    pub(crate) fn wake(&mut self, n: NameIdx, except: Option<(ReqIdx, bool)>) -> Missed {
        self.tick(n, except, true)
    }

    /// Holds back every waiter of `n` but `except` (see [`Names::wake`]):
    /// no wake-up and no retry timer until the next wake-up.
    pub(crate) fn hold_back(&mut self, n: NameIdx, except: (ReqIdx, bool)) -> Missed {
        self.tick(n, Some(except), false)
    }

    fn tick(&mut self, n: NameIdx, except: Option<(ReqIdx, bool)>, wake: bool) -> Missed {
        let missed = except.map_or(Missed::default(), |(r, waiting)| self.catch_up(r, waiting));
        let e = self.name_mut(n.0);
        e.clock += 1;
        let clock = e.clock;
        if wake {
            e.last_wake = clock;
        } else {
            e.last_hold = clock;
        }
        if let Some((r, _)) = except {
            self.link_mut(r.get() as u32).seen = clock;
        }
        missed
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use std::format;
    use std::vec::Vec;

    use super::*;

    fn r(i: u32) -> ReqIdx {
        ReqIdx::new(i)
    }

    fn waiting(names: &Names, n: NameIdx) -> Vec<u32> {
        let mut out = Vec::new();
        let mut cur = names.first_waiting(n);
        while let Some(x) = cur {
            out.push(x.get() as u32);
            cur = names.next(x);
        }
        out
    }

    #[test]
    fn waiters_stay_in_creation_order_and_the_oldest_leads() {
        let mut names = Names::new(&[1; 32]);
        let a = names.join(r(0), "a", 10, LockPhase::Waiting).unwrap();
        names.join(r(1), "a", 11, LockPhase::Waiting).unwrap();
        names.join(r(2), "a", 12, LockPhase::Waiting).unwrap();
        let b = names.join(r(3), "b", 13, LockPhase::Waiting).unwrap();
        assert_ne!(a, b);
        assert_eq!(waiting(&names, a), [0, 1, 2]);
        assert_eq!(names.leader(a), Some(r(0)));
        // The leader attempts: nobody leads meanwhile.
        names.set_phase(r(0), LockPhase::Acquiring);
        assert_eq!(names.leader(a), None);
        // It failed: back at the head, ahead of younger waiters.
        names.set_phase(r(0), LockPhase::Waiting);
        assert_eq!(waiting(&names, a), [0, 1, 2]);
        names.set_phase(r(1), LockPhase::Held);
        assert_eq!((names.leader(a), names.held(a)), (None, 1));
        names.set_phase(r(2), LockPhase::Acquiring);
        names.set_phase(r(1), LockPhase::Draining);
        names.set_phase(r(2), LockPhase::Waiting);
        assert_eq!(waiting(&names, a), [0, 2]);
        assert_eq!((names.leader(a), names.held(a)), (Some(r(0)), 0));
        assert_eq!(names.of(r(0)), names.of(r(2)));
        assert_ne!(names.of(r(0)), names.of(r(3)));
        assert_eq!(names.leader(b), Some(r(3)));
    }

    #[test]
    fn names_come_and_go() {
        let mut names = Names::new(&[2; 32]);
        for i in 0..40u32 {
            names
                .join(
                    r(i),
                    &format!("n{}", i % 20),
                    u64::from(i),
                    LockPhase::Waiting,
                )
                .unwrap();
        }
        for i in 0..40u32 {
            let n = names.lookup(format!("n{}", i % 20).as_bytes()).unwrap();
            assert_eq!(names.of(r(i)), Some(n));
            assert_eq!(names.text(n).as_str(), format!("n{}", i % 20));
        }
        for i in (0..40u32).filter(|i| i % 3 != 0) {
            names.leave(r(i));
        }
        for i in 0..20u32 {
            let live = (0..40).any(|j| j % 3 == 0 && j % 20 == i);
            assert_eq!(
                names.lookup(format!("n{i}").as_bytes()).is_some(),
                live,
                "n{i}"
            );
        }
        assert_eq!(names.lookup(b"other"), None);
    }

    #[test]
    fn wake_ups_and_hold_backs_reach_those_that_waited() {
        let mut names = Names::new(&[3; 32]);
        let n = names.join(r(0), "x", 0, LockPhase::Held).unwrap();
        names.join(r(1), "x", 1, LockPhase::Waiting).unwrap();
        names.join(r(2), "x", 2, LockPhase::Acquiring).unwrap();
        // Hold back, then wake: woken, and the retry timer is gone.
        names.hold_back(n, (r(0), false));
        names.wake(n, Some((r(0), false)));
        let both = Missed {
            held_back: true,
            woken: true,
        };
        assert_eq!(names.catch_up(r(1), true), both);
        assert_eq!(names.catch_up(r(1), true), Missed::default());
        // Wake, then hold back: not woken; an attempt in flight is not held
        // back.
        names.wake(n, None);
        names.hold_back(n, (r(0), false));
        let held = Missed {
            held_back: true,
            woken: false,
        };
        assert_eq!(names.catch_up(r(1), true), held);
        let woken = Missed {
            held_back: false,
            woken: true,
        };
        assert_eq!(names.catch_up(r(2), false), woken);
        // The one that wakes the others is not woken by it.
        assert_eq!(names.wake(n, Some((r(0), false))), Missed::default());
        assert_eq!(names.catch_up(r(0), false), Missed::default());
    }
}
