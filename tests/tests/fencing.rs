//! Fencing tokens on real servers: one server, three independent
//! instances (one killed and restarted meanwhile) and a cluster (a master
//! killed and failed over meanwhile). Ten lockers contend for one name,
//! some rounds by `force_lock`; every grant records when its call began,
//! when it returned and its token, and the guarantee is checked on all of
//! them: a holder whose call began after another's returned has a larger
//! token. Names carry `{` and `}` so the counter keys' slot rule is
//! exercised (a counter outside its key's slot is a `CROSSSLOT` refusal in
//! a cluster). Every test name contains `fencing`:
//! `cargo test -p tracklock-tests fencing`.
//!
//! Rounds: 100 per locker with caching on (about 5 s a test on a quiet
//! machine, under 20 s with two busy loops on two cores), 25 with caching
//! off, where every hand-over waits for a poll.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracklock::{Error, Locker};
use tracklock_core::CounterKey;
use tracklock_tests::topo::*;
use tracklock_tests::{scenarios, variants, Ctx, TestRt, Topology, Variant};

/// One grant: when the call began, when it returned, the token.
#[derive(Debug, Clone, Copy)]
struct Grant {
    asked: Instant,
    granted: Instant,
    token: u64,
    forced: bool,
}

/// Names with braces in every position that matters for the slot rule.
fn hostile_names(stem: &str) -> [String; 3] {
    [
        // A hash tag: every key (and counter) in one slot.
        format!("{{{}}}-fencing", fresh(stem)),
        // `}` without a tag: the counter's slot is solved for.
        format!("{}}}x{{-fencing", fresh(stem)),
        // `{` without `}`: the counter is `{key}:fence`.
        format!("{}-{{fencing", fresh(stem)),
    ]
}

/// The counter key of lock key `key`.
fn counter_key(key: &str) -> String {
    let c = CounterKey::of(key.as_bytes());
    let bytes = [c.head(), key.as_bytes(), c.tail()].concat();
    String::from_utf8(bytes).expect("counter keys of UTF-8 keys are UTF-8")
}

/// Checks the guarantee over `grants`: whoever began after a grant had
/// returned holds a larger token. Returns how many ordered pairs that was.
fn check_order(grants: &[Grant]) -> usize {
    let mut by_grant = grants.to_vec();
    by_grant.sort_by_key(|g| g.granted);
    // The largest token among the first i grants.
    let mut prefix_max = vec![0u64];
    for g in &by_grant {
        prefix_max.push((*prefix_max.last().unwrap()).max(g.token));
    }
    let mut pairs = 0;
    for b in grants {
        let earlier = by_grant.partition_point(|a| a.granted < b.asked);
        pairs += earlier;
        let max = prefix_max[earlier];
        assert!(
            max < b.token,
            "a grant that began after earlier grants returned has token {} <= {max} (forced: {}); \
             {} grants, {earlier} before it",
            b.token,
            b.forced,
            grants.len()
        );
    }
    pairs
}

/// Ten lockers take `name` `rounds` times each, holding it about a
/// millisecond; locker 0 forces every fifth round. `disrupt` runs on a
/// thread of its own with the count of finished rounds and the total.
/// Returns the grants and how many forced attempts were refused or found
/// a node unavailable (and were tried again).
async fn contend_fenced<T: TestRt>(
    lockers: &[Locker<T::R>],
    name: &str,
    rounds: usize,
    disrupt: impl FnOnce(Arc<AtomicUsize>, usize) + Send + 'static,
) -> (Vec<Grant>, usize) {
    let grants = Arc::new(Mutex::new(Vec::new()));
    let done = Arc::new(AtomicUsize::new(0));
    let retries = Arc::new(AtomicUsize::new(0));
    let total = lockers.len() * rounds;
    let disruptor = {
        let done = done.clone();
        std::thread::spawn(move || disrupt(done, total))
    };
    let mut tasks = Vec::new();
    for (i, locker) in lockers.iter().enumerate() {
        let (locker, grants, done) = (locker.clone(), grants.clone(), done.clone());
        let retries = retries.clone();
        let name = name.to_owned();
        tasks.push(T::spawn(async move {
            for r in 0..rounds {
                let forced = i == 0 && r % 5 == 4;
                let (asked, result) = loop {
                    let asked = Instant::now();
                    if !forced {
                        break (asked, locker.lock(&name).await);
                    }
                    // One attempt: while a node is down or failing over it
                    // may be refused or find the node unavailable; that is
                    // reported (and counted), then tried again.
                    match locker.force_lock(&name).await {
                        Err(
                            Error::Refused { .. }
                            | Error::Unavailable { .. }
                            | Error::TooSlow
                            | Error::NotLocked,
                        ) => {
                            retries.fetch_add(1, Ordering::SeqCst);
                            T::sleep(Duration::from_millis(20)).await;
                        }
                        other => break (asked, other),
                    }
                };
                let granted = Instant::now();
                let guard = result.unwrap_or_else(|e| panic!("locker {i} round {r}: {e} ({e:?})"));
                let token = guard.token().unwrap_or_else(|| {
                    panic!("locker {i} round {r}: a fenced guard without a token")
                });
                grants.lock().unwrap().push(Grant {
                    asked,
                    granted,
                    token,
                    forced,
                });
                T::sleep(Duration::from_millis(1)).await;
                // A holder forced out meanwhile releases nothing of the
                // new holder's (compare-and-delete); an error is a refusal.
                match guard.unlock().await {
                    Ok(()) | Err(Error::NotReleased { .. }) => {}
                    Err(e) => panic!("locker {i} round {r}: unlock: {e}"),
                }
                done.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    for t in tasks {
        t.await;
    }
    disruptor.join().expect("the disrupting thread");
    let grants = Arc::try_unwrap(grants).unwrap().into_inner().unwrap();
    (grants, retries.load(Ordering::SeqCst))
}

/// Waits (on a plain thread) until `done` reaches `n`.
fn wait_rounds(done: &AtomicUsize, n: usize) {
    let start = Instant::now();
    while done.load(Ordering::SeqCst) < n {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "contention stalled"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn rounds<T: TestRt>(ctx: &Ctx<T>) -> usize {
    if ctx.variant.caching {
        100
    } else {
        25
    }
}

/// Runs the contention on each hostile name with fenced lockers, checks
/// the order, and that a counter of each name holds the largest token.
async fn fenced_names<T: TestRt>(
    ctx: &Ctx<T>,
    names: &[String],
    counter: impl Fn(&str) -> Option<Vec<u8>>,
    disrupt: impl Fn(Arc<AtomicUsize>, usize) + Send + Sync + Clone + 'static,
    quiet: bool,
) {
    let lockers = connect_n::<T>(&ctx.opts().fencing(true), 10).await;
    for name in names {
        let (grants, retries) =
            contend_fenced::<T>(&lockers, name, rounds(ctx), disrupt.clone()).await;
        if quiet {
            assert_eq!(retries, 0, "{name}: a forced attempt failed with no fault");
        }
        assert_eq!(grants.len(), 10 * rounds(ctx));
        let pairs = check_order(&grants);
        assert!(
            pairs > grants.len(),
            "the check compared grants ({pairs} pairs)"
        );
        assert!(grants.iter().any(|g| g.forced));
        let max = grants.iter().map(|g| g.token).max().unwrap();
        let stored: Vec<Option<u64>> = keys(name)
            .iter()
            .map(|k| {
                counter(&counter_key(k))
                    .map(|v| String::from_utf8(v).unwrap().parse::<u64>().unwrap())
            })
            .collect();
        assert!(
            stored.iter().filter(|c| **c == Some(max)).count() >= 1,
            "{name}: the largest token {max} is stored in a counter: {stored:?}"
        );
        assert!(
            stored.iter().all(|c| c.is_none_or(|c| c <= max)),
            "{name}: no counter beyond the largest token: {stored:?}"
        );
    }
    close_all(&lockers).await;
}

mod fencing_single {
    use super::*;

    /// One server: tokens follow acquisition order, forced takeovers too.
    async fn body<T: TestRt>(ctx: Ctx<T>) {
        let admin = ctx.admin().clone();
        let names = hostile_names("single");
        fenced_names(&ctx, &names, move |k| admin.get(k), |_, _| {}, true).await;
    }

    variants!(Topology::Server(&[]), body, Duration::from_secs(150));
}

mod fencing_instances_node_loss {
    use super::*;

    /// Three instances; instance 1 is killed a third of the way through and
    /// restarted (empty) at two thirds: its counters start again from
    /// nothing, the other two keep the order.
    async fn body<T: TestRt>(ctx: Ctx<T>) {
        let s = ctx.instances().clone();
        let names = hostile_names("inst");
        let read = s.clone();
        let disrupt = move |done: Arc<AtomicUsize>, total: usize| {
            wait_rounds(&done, total / 3);
            s.kill(1);
            wait_rounds(&done, 2 * total / 3);
            s.restart(1);
        };
        fenced_names(
            &ctx,
            &names,
            move |k| {
                // Key i (and its counter) on instance i mod 3.
                let i: usize = k
                    .trim_start_matches('{')
                    .split(':')
                    .nth(1)
                    .and_then(|d| d.parse().ok())
                    .expect("a lock key's counter");
                read.admin(i % 3).get(k)
            },
            disrupt,
            false,
        )
        .await;
    }

    variants!(Topology::Instances(3), body, Duration::from_secs(180));
}

mod fencing_cluster_failover {
    use super::*;

    /// A cluster of three masters with a replica each; the master of the
    /// first name's key 0 is killed a third of the way through and its
    /// replica takes over. Counters live in their keys' slots (no
    /// `CROSSSLOT`), and the order holds across the failover.
    async fn body<T: TestRt>(ctx: Ctx<T>) {
        let c = ctx.cluster().clone();
        partial_coverage(&c);
        // The first name (the one contended during the failover) has its
        // three keys on three masters, so the failover can lose at most
        // one of its counters' latest writes: a minority.
        let owners = Owners::of(&c);
        let names = (0..10_000)
            .map(|_| hostile_names("cluster"))
            .map(|[tagged, solved, open]| [solved, open, tagged])
            .find(|n| is_spread(&owners.of_name(&n[0])))
            .expect("a name spread over three masters");
        let victim = c.owner_of(&keys(&names[0])[0]);
        let once = Arc::new(AtomicBool::new(false));
        let chaos = c.clone();
        let disrupt = move |done: Arc<AtomicUsize>, total: usize| {
            if once.swap(true, Ordering::SeqCst) {
                return;
            }
            wait_rounds(&done, total / 3);
            chaos.kill(victim);
            chaos.wait_for_failover_of(victim);
        };
        let read = c.clone();
        fenced_names(&ctx, &names, move |k| read.get(k), disrupt, false).await;
    }

    // Caching on only: a cluster with failover is slow to set up, so the
    // caching-off variant is left to the other topologies.
    scenarios!(Topology::cluster(3, 1), body, Duration::from_secs(180);
        tokio_cache_on: TokioRt, Variant::caching(true);
        smol_cache_on: SmolRt, Variant::caching(true));
}

mod fencing_unfenced {
    use super::*;

    /// Without `fencing`, guards have no token and no counter is written.
    async fn body<T: TestRt>(ctx: Ctx<T>) {
        let l = connect::<T>(ctx.opts()).await;
        let name = hostile_names("plain")[1].clone();
        let g = lock_within::<T>(&l, &name, Duration::from_secs(5)).await;
        assert_eq!(g.token(), None);
        g.unlock().await.expect("unlock");
        for k in keys(&name) {
            assert_eq!(ctx.admin().get(&counter_key(&k)), None);
        }
        l.close().await;
    }

    variants!(Topology::Server(&[]), body, Duration::from_secs(60));
}

mod fencing_local_waiters {
    use super::*;

    /// Tasks of one locker with local hand-off configured: fenced locks
    /// still go through Redis, each grant with a larger token.
    async fn body<T: TestRt>(ctx: Ctx<T>) {
        let l = connect::<T>(ctx.opts().fencing(true).local_handoff(8)).await;
        let lockers = vec![l.clone(); 10];
        let name = hostile_names("local")[0].clone();
        let (grants, retries) = contend_fenced::<T>(&lockers, &name, 20, |_, _| {}).await;
        assert_eq!(retries, 0);
        check_order(&grants);
        let mut tokens: Vec<u64> = grants.iter().map(|g| g.token).collect();
        tokens.sort_unstable();
        tokens.dedup();
        assert_eq!(tokens.len(), grants.len(), "every grant has its own token");
        l.close().await;
    }

    variants!(Topology::Server(&[]), body, Duration::from_secs(120));
}
