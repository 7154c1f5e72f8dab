//! Allocations per lock + unlock in steady state, on every runtime built,
//! in four workloads: one task, one task on a long name (past a guard's
//! inline copy), tasks contending for one name, tasks on names of their
//! own (all on one locker). One test per binary: the
//! counting allocator is global, so the runtimes run one after the other.

#![cfg(any(feature = "tokio", feature = "smol", feature = "glommio"))]

use std::future::Future;
use std::rc::Rc;

use tracklock::{Locker, Options, Runtime};
use tracklock_testkit::alloc::{count, Counting};
use tracklock_testkit::{RedisServer, StartError};

#[global_allocator]
static A: Counting = Counting;

/// The bound per lock + unlock on tokio, every workload: 0.00–0.01 is
/// measured, with or without the `tracing` feature (which copied each
/// lock's name for its events even with no subscriber: 1.00 per pair) and
/// the names index reusing a freed entry's text (2.00 before); either
/// regression is one per pair, which this bound catches. The project's
/// goal is 2.
#[cfg(feature = "tokio")]
const BOUND: f64 = 0.5;
/// Ceilings on smol and glommio, whose reactors allocate on every park
/// whatever tracklock does: async-io splits its timer map (one node per
/// reactor turn while any timer is pending) and collects wakers in a fresh
/// `Vec`; glommio does the same split and builds two preemption-timer
/// `Source`s per sleep and one `Source` per read that waits. The count thus
/// follows how often the executor parks (about 8 to 13 per pair on smol and
/// 19 to 25 on glommio in the one-task loop on 2 busy cores). These
/// ceilings catch tracklock adding per-turn allocations on top (a new timer
/// or buffer per turn adds one per turn, several per pair), not the goal.
#[cfg(feature = "smol")]
const SMOL_CEILING: f64 = 24.0;
#[cfg(feature = "glommio")]
const GLOMMIO_CEILING: f64 = 40.0;
/// Tasks of the multi-task workloads.
const TASKS: usize = 4;
/// Pairs per task before counting, and counted.
const WARM: usize = 200;
const PAIRS: usize = 300;

/// `TASKS` task futures each doing `pairs` lock + unlock on `name(task)`,
/// joined without spawning (the joining allocates nothing per pair).
async fn rounds<R: Runtime>(locker: &Locker<R>, pairs: usize, shared: bool) {
    let names: Vec<String> = (0..TASKS)
        .map(|i| {
            if shared {
                "alloc-one".into()
            } else {
                format!("alloc-{i}")
            }
        })
        .collect();
    let tasks: Vec<_> = names
        .iter()
        .map(|n| async move {
            for _ in 0..pairs {
                let g = locker.lock(n).await.unwrap();
                g.unlock().await.unwrap();
            }
        })
        .collect();
    join_all(tasks).await;
}

/// Polls every future until all are done (no allocation per poll).
async fn join_all<F: Future<Output = ()>>(futs: Vec<F>) {
    let mut futs: Vec<_> = futs.into_iter().map(|f| Some(Box::pin(f))).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for slot in futs.iter_mut() {
            if let Some(f) = slot {
                if f.as_mut().poll(cx).is_ready() {
                    *slot = None;
                } else {
                    pending = true;
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await
}

/// Allocations per pair in each workload, as `(workload, per pair)`.
async fn measure<R: Runtime>(locker: &Locker<R>) -> Vec<(&'static str, f64)> {
    let mut out = Vec::new();
    // One task.
    for _ in 0..WARM {
        let g = locker.lock("alloc-single").await.unwrap();
        g.unlock().await.unwrap();
    }
    let before = count();
    for _ in 0..PAIRS {
        let g = locker.lock("alloc-single").await.unwrap();
        g.unlock().await.unwrap();
    }
    out.push(("one task", (count() - before) as f64 / PAIRS as f64));
    // A name too long for a guard's inline copy (a prefix and a UUID).
    let long = "alloc-long:0b4f7c52-9a3e-4d1b-8f6a-2c7e9d1a5b38:shard-7";
    for _ in 0..WARM {
        let g = locker.lock(long).await.unwrap();
        g.unlock().await.unwrap();
    }
    let before = count();
    for _ in 0..PAIRS {
        let g = locker.lock(long).await.unwrap();
        g.unlock().await.unwrap();
    }
    out.push(("long name", (count() - before) as f64 / PAIRS as f64));
    for (label, shared) in [("contended", true), ("own names", false)] {
        rounds(locker, WARM / TASKS, shared).await;
        let before = count();
        rounds(locker, PAIRS, shared).await;
        // The workload's own vectors and boxes are counted too: a handful,
        // spread over all pairs.
        let per = (count() - before) as f64 / (PAIRS * TASKS) as f64;
        out.push((label, per));
    }
    out
}

fn report(runtime: &str, bound: f64, results: &[(&'static str, f64)], failures: &mut Vec<String>) {
    for (workload, per) in results {
        println!("{runtime:8} {workload:10} {per:.2} allocations per lock+unlock");
        if *per > bound {
            failures.push(format!("{runtime} {workload}: {per:.2} > {bound}"));
        }
    }
}

#[test]
fn steady_state_allocations_per_lock_unlock() {
    let redis = match RedisServer::try_start() {
        Ok(r) => r,
        Err(StartError::NotInstalled) => {
            eprintln!("redis-server not found: skipping");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let addr = Rc::new(redis.addr());
    let mut failures = Vec::new();

    #[cfg(feature = "tokio")]
    {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let r = rt.block_on(async {
            let locker = tracklock::tokio::Locker::connect(Options::new(addr.as_str()))
                .await
                .unwrap();
            let r = measure(&locker).await;
            locker.close().await;
            r
        });
        report("tokio", BOUND, &r, &mut failures);
    }

    #[cfg(feature = "smol")]
    {
        let r = smol::block_on(async {
            let locker = tracklock::smol::Locker::connect(Options::new(addr.as_str()))
                .await
                .unwrap();
            let r = measure(&locker).await;
            locker.close().await;
            r
        });
        report("smol", SMOL_CEILING, &r, &mut failures);
    }

    #[cfg(feature = "glommio")]
    {
        let ex = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .io_memory(256 << 10)
            .ring_depth(32)
            .make()
            .expect("glommio executor (io_uring)");
        let addr = addr.as_str().to_owned();
        let r = ex.run(async move {
            let locker = tracklock::glommio::Locker::connect(Options::new(addr))
                .await
                .unwrap();
            let r = measure(&locker).await;
            locker.close().await;
            r
        });
        report("glommio", GLOMMIO_CEILING, &r, &mut failures);
    }

    assert!(failures.is_empty(), "over the bound: {failures:?}");
}
