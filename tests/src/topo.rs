//! What the multi-node suites (`cluster`, `instances`, `refusals`, `e2e`)
//! share: contention, name pickers on a cluster's slot map, and waits
//! generic over the runtime.

use std::fmt::Display;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracklock::{Guard, Locker, LostReason, Options};
use tracklock_testkit::{Admin, RedisCluster, Rtt};

use crate::rt::TestRt;
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

/// A fresh name whose three keys live on three different masters.
pub fn spread_name(c: &RedisCluster, stem: &str) -> String {
    let owners = Owners::of(c);
    (0..10_000)
        .map(|_| fresh(stem))
        .find(|name| {
            let o = owners.of_name(name);
            o[0] != o[1] && o[1] != o[2] && o[0] != o[2]
        })
        .unwrap_or_else(|| {
            let n = fresh(stem);
            panic!(
                "no name spread over three masters; map {:?}; e.g. {n}: {:?}",
                owners.0,
                owners.of_name(&n)
            )
        })
}

/// A fresh name whose keys 0 and 1 share a master and key 2 lives on
/// another: losing that master loses the lock.
pub fn clumped_name(c: &RedisCluster, stem: &str) -> String {
    let owners = Owners::of(c);
    (0..10_000)
        .map(|_| fresh(stem))
        .find(|name| {
            let o = owners.of_name(name);
            o[0] == o[1] && o[2] != o[0]
        })
        .unwrap_or_else(|| panic!("no clumped name; map {:?}", owners.0))
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
        let w = waiter.clone();
        let n = name.to_owned();
        let waiting = T::spawn(async move {
            let g = w.lock(&n).await.expect("waiter lock");
            let at = Instant::now();
            g.unlock().await.expect("waiter unlock");
            at
        });
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
