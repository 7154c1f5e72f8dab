//! What the suites on their own servers (`cluster`, `instances`,
//! `fencing`, `sentinel`, `tls`, `refusals`, `e2e`) share: connecting and
//! closing lockers, contention, waiters, name pickers on a cluster's slot
//! map, and waits generic over the runtime.

use std::fmt::Display;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracklock::{Error, Guard, Locker, LostReason, Options};
use tracklock_testkit::{Admin, RedisCluster, Rtt};

use crate::rt::{Task, TestRt};
pub use crate::runner::VALIDITY;

pub use tracklock_testkit::fresh;

/// How soon a waiter must be woken by a release when the holder's validity
/// is 10 s: 1.5 s on a quiet machine, or three round trips (the release, the
/// invalidation, the waiter's `SET`) at the rate `rtt` measured, with
/// headroom, when that is longer; capped at 4 s, well before the waiter's
/// fallback (the holder's TTL, at least 5 s after an extension), so that
/// only a wake-up by the release can meet it.
pub fn handoff_bound(rtt: Rtt) -> Duration {
    rtt.at_least(Duration::from_millis(1500), 3)
        .min(Duration::from_secs(4))
}

/// Options shared by the suites.
pub fn tune(o: Options, caching: bool) -> Options {
    o.validity(VALIDITY).client_caching(caching)
}

/// Connects on `T`, panicking with the error.
pub async fn connect<T: TestRt>(opts: Options) -> Locker<T::R> {
    match T::connect(opts).await {
        Ok(l) => l,
        Err(e) => panic!("connect failed: {e} ({e:?})"),
    }
}

/// `n` lockers connected with `opts`, one after the other.
pub async fn connect_n<T: TestRt>(opts: &Options, n: usize) -> Vec<Locker<T::R>> {
    let mut lockers = Vec::with_capacity(n);
    for _ in 0..n {
        lockers.push(connect::<T>(opts.clone()).await);
    }
    lockers
}

/// Closes every locker of `lockers`.
pub async fn close_all<R: tracklock::Runtime>(lockers: &[Locker<R>]) {
    for l in lockers {
        l.close().await;
    }
}

/// `connect` with `opts` and a connect timeout of `timeout` must fail
/// within it (plus `slack` for a busy machine); returns the error.
pub async fn connect_fails_within<T: TestRt>(
    opts: Options,
    timeout: Duration,
    slack: Duration,
) -> Error {
    let start = Instant::now();
    let r = T::timeout(timeout + slack, T::connect(opts.connect_timeout(timeout))).await;
    let took = start.elapsed();
    match r {
        None => panic!("connect hung past the connect timeout ({took:?})"),
        Some(Ok(l)) => {
            l.close().await;
            panic!("connect succeeded where it must fail")
        }
        Some(Err(e)) => {
            assert!(took < timeout + slack, "failed only after {took:?}: {e}");
            e
        }
    }
}

/// The keys of `name` (default prefix, majority 2).
pub fn keys(name: &str) -> Vec<String> {
    tracklock_testkit::default_keys(name)
}

/// Which node serves which slots, read once from the cluster.
pub struct Owners(pub Vec<(u16, u16, usize)>);

impl Owners {
    /// The slot map of `c` now.
    pub fn of(c: &RedisCluster) -> Owners {
        Owners(
            c.slot_map()
                .into_iter()
                .map(|(a, b, id)| {
                    let i = c
                        .index_of(&id)
                        .unwrap_or_else(|| panic!("node {id} of the slot map is unknown"));
                    (a, b, i)
                })
                .collect(),
        )
    }

    /// The node serving `key`.
    pub fn of_key(&self, key: &str) -> usize {
        let slot = tracklock_core::key_slot(key.as_bytes());
        self.0
            .iter()
            .find(|(a, b, _)| (*a..=*b).contains(&slot))
            .map(|r| r.2)
            .unwrap_or_else(|| panic!("slot {slot} is not served"))
    }

    /// The nodes serving the keys of `name`.
    pub fn of_name(&self, name: &str) -> Vec<usize> {
        keys(name).iter().map(|k| self.of_key(k)).collect()
    }
}

/// True when the three keys of a name live on three different masters
/// (`owners`: [`Owners::of_name`]).
pub fn is_spread(owners: &[usize]) -> bool {
    owners[0] != owners[1] && owners[1] != owners[2] && owners[0] != owners[2]
}

/// A fresh name whose three keys live on three different masters.
pub fn spread_name(c: &RedisCluster, stem: &str) -> String {
    placed_name(c, stem, "spread over three masters", is_spread)
}

/// A fresh name whose keys 0 and 1 share a master and key 2 lives on
/// another: losing that master loses the lock.
pub fn clumped_name(c: &RedisCluster, stem: &str) -> String {
    placed_name(c, stem, "clumped", |o| o[0] == o[1] && o[2] != o[0])
}

/// A fresh name from `stem` whose key owners on `c` satisfy `placed`;
/// panics, with the slot map and an example, when 10,000 names do not.
fn placed_name(
    c: &RedisCluster,
    stem: &str,
    what: &str,
    placed: impl Fn(&[usize]) -> bool,
) -> String {
    let owners = Owners::of(c);
    (0..10_000)
        .map(|_| fresh(stem))
        .find(|name| placed(&owners.of_name(name)))
        .unwrap_or_else(|| {
            let n = fresh(stem);
            panic!(
                "no {what} name; map {:?}; e.g. {n}: {:?}",
                owners.0,
                owners.of_name(&n)
            )
        })
}

/// Lets every running node of `c` accept commands for the slots it serves
/// even while some slots have no live master: what a lock majority needs
/// to survive a lost master (and the live masters to answer at all until
/// a replica took over).
pub fn partial_coverage(c: &RedisCluster) {
    for i in 0..c.len() {
        if c.is_running(i) {
            let _: String = c
                .admin(i)
                .cmd("CONFIG", &["SET", "cluster-require-full-coverage", "no"]);
        }
    }
}

/// Every locker takes `name` `rounds` times, holding it about a
/// millisecond; returns completed rounds and the most holders seen at once
/// (counted on entry, before the guard's own checks).
pub async fn contend<T: TestRt>(
    lockers: &[Locker<T::R>],
    name: &str,
    rounds: usize,
) -> (usize, i32) {
    let holders = Arc::new(AtomicI32::new(0));
    let max_seen = Arc::new(AtomicI32::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for (i, locker) in lockers.iter().enumerate() {
        let locker = locker.clone();
        let (holders, max_seen, done) = (holders.clone(), max_seen.clone(), done.clone());
        let name = name.to_owned();
        tasks.push(T::spawn(async move {
            for r in 0..rounds {
                let guard = match locker.lock(&name).await {
                    Ok(g) => g,
                    Err(e) => panic!("locker {i} round {r}: lock failed: {e}"),
                };
                let now = holders.fetch_add(1, Ordering::SeqCst) + 1;
                max_seen.fetch_max(now, Ordering::SeqCst);
                assert!(
                    guard.is_held(),
                    "locker {i} round {r}: fresh guard not held"
                );
                // Other tasks run while this one holds: an overlap shows.
                futures_lite::future::yield_now().await;
                T::sleep(Duration::from_millis(1)).await;
                max_seen.fetch_max(holders.load(Ordering::SeqCst), Ordering::SeqCst);
                holders.fetch_sub(1, Ordering::SeqCst);
                guard
                    .unlock()
                    .await
                    .unwrap_or_else(|e| panic!("locker {i} round {r}: unlock failed: {e}"));
                done.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    for t in tasks {
        t.await;
    }
    (done.load(Ordering::SeqCst), max_seen.load(Ordering::SeqCst))
}

/// [`contend`] asserting that every round of every locker completed and
/// that no two holders ever overlapped.
pub async fn assert_exclusive<T: TestRt>(lockers: &[Locker<T::R>], name: &str, rounds: usize) {
    let (done, max_seen) = contend::<T>(lockers, name, rounds).await;
    assert_eq!(done, lockers.len() * rounds, "rounds completed");
    assert_eq!(max_seen, 1, "two holders at once");
}

/// A task of `l` that waits for `name`, unlocks it at once and returns
/// when it got it.
pub fn spawn_waiter<T: TestRt>(l: &Locker<T::R>, name: &str) -> Task<Instant> {
    let l = l.clone();
    let name = name.to_owned();
    T::spawn(async move {
        let g = l.lock(&name).await.expect("the waiter's lock");
        let at = Instant::now();
        g.unlock().await.expect("the waiter's unlock");
        at
    })
}

/// A holder and a waiter connected with `opts` at a validity of 10 s (what
/// [`handoff_bound`] assumes), three times: the holder takes `name`, a task
/// of the waiter asks for it and still waits 200 ms later, and the release
/// must wake it within [`handoff_bound`] at the round trips `admin`
/// measures then; `context` goes into the failure message.
pub async fn waiter_woken_by_release<T: TestRt>(
    opts: Options,
    name: &str,
    admin: &Admin,
    context: impl Display,
) {
    let opts = opts.validity(Duration::from_secs(10));
    let holder = connect::<T>(opts.clone()).await;
    let waiter = connect::<T>(opts).await;
    for _ in 0..3 {
        let g = lock_within::<T>(&holder, name, Duration::from_secs(5)).await;
        let waiting = spawn_waiter::<T>(&waiter, name);
        T::sleep(Duration::from_millis(200)).await;
        assert!(
            !waiting.is_finished(),
            "the waiter waits while the lock is held"
        );
        let bound = handoff_bound(admin.rtt());
        let released = Instant::now();
        g.unlock().await.expect("unlock");
        let waited = waiting.await.saturating_duration_since(released);
        assert!(
            waited < bound,
            "waiter took {waited:?} after the release (bound {bound:?}, {context})"
        );
    }
    holder.close().await;
    waiter.close().await;
}

/// Locks `name` within `within`.
pub async fn lock_within<T: TestRt>(l: &Locker<T::R>, name: &str, within: Duration) -> Guard<T::R> {
    match T::timeout(within, l.lock(name)).await {
        Some(Ok(g)) => g,
        Some(Err(e)) => panic!("lock({name:?}) failed: {e}"),
        None => panic!("lock({name:?}) not acquired within {within:?}"),
    }
}

/// Asserts `guard` is not told of a loss for `d` and is still held.
pub async fn expect_held_for<T: TestRt>(guard: &Guard<T::R>, d: Duration) {
    if let Some(r) = T::timeout(d, guard.lost()).await {
        panic!(
            "guard {:?} lost ({r:?}) while it should be held",
            guard.name()
        );
    }
    assert!(guard.is_held(), "guard {:?} not held", guard.name());
}

/// Awaits the loss of `guard` for at most `within`.
pub async fn expect_lost<T: TestRt>(
    guard: &Guard<T::R>,
    within: Duration,
) -> (LostReason, Duration) {
    let start = Instant::now();
    match T::timeout(within, guard.lost()).await {
        Some(r) => (r, start.elapsed()),
        None => panic!(
            "guard {:?} not told it lost within {within:?}; held={}",
            guard.name(),
            guard.is_held()
        ),
    }
}

/// Waits (2 s at most) until every key of a lock just acquired holds a
/// value (acquired at the majority, the last key's reply may still be on
/// its way), then asserts that they all hold the same one; `values` as
/// for [`no_keys_left`].
pub async fn one_value_everywhere<T: TestRt>(values: impl Fn() -> Vec<Option<Vec<u8>>>) {
    eventually::<T>(Duration::from_secs(2), "every key written", || {
        values().iter().all(Option::is_some)
    })
    .await;
    let v = values();
    assert!(
        v.windows(2).all(|w| w[0] == w[1]),
        "one value on every key: {v:?}"
    );
}

/// Waits (3 s at most) until every key of a lock is gone; `values` reads
/// what each key holds (from wherever the suite's topology keeps it).
pub async fn no_keys_left<T: TestRt>(values: impl Fn() -> Vec<Option<Vec<u8>>>) {
    eventually::<T>(Duration::from_secs(3), "no keys left", || {
        values().iter().all(Option::is_none)
    })
    .await;
}

/// Polls `cond` every 20 ms for at most `within`; panics with `what`.
pub async fn eventually<T: TestRt>(within: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        if start.elapsed() > within {
            panic!("not within {within:?}: {what}");
        }
        T::sleep(Duration::from_millis(20)).await;
    }
}
