//! tracklock demo: four workers contend for one lock, then a forced
//! takeover, then a loss caused by an administrator deleting the keys.
//!
//! ```text
//! cargo run --example demo                       # throwaway redis-server
//! cargo run --example demo -- --cluster          # throwaway 3-master Redis Cluster
//! cargo run --example demo -- --tls              # throwaway redis-server over TLS
//! cargo run --example demo -- --tls --cluster    # throwaway Redis Cluster over TLS
//! REDIS_URL=redis://127.0.0.1:6379/0 cargo run --example demo
//! REDIS_URL=redis+cluster://127.0.0.1:7000,127.0.0.1:7001 cargo run --example demo
//! ```
//!
//! Without `REDIS_URL` it starts its own `redis-server` on a free port (and
//! stops it at the end); `--cluster` (or `TRACKLOCK_DEMO_CLUSTER=1`) starts a
//! throwaway Redis Cluster of 3 masters and 3 replicas on loopback ports
//! instead, and the lock's keys then live on different masters. `--tls`
//! (or `TRACKLOCK_DEMO_TLS=1`) makes the throwaway servers speak TLS with
//! certificates of a throwaway CA (made with `openssl`), and the lockers
//! connect with `rediss://` and verify them against that CA.
//! `redis-server` must be on PATH. The throwaway servers come from the
//! test kit (`tracklock_demo::Redis`); the demo itself is tracklock on
//! tokio.

use std::error::Error as StdError;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracklock::{LostReason, Options};
use tracklock_demo::{run_example, Redis, Want};

type Locker = tracklock::tokio::Locker;

const WORKERS: usize = 4;
const ROUNDS: usize = 5;
const NAME: &str = "tracklock-demo";

#[derive(Default)]
struct Stats {
    rounds: usize,
    handoffs: usize,
    holders: usize,
    max_holders: usize,
    last: Option<usize>,
}

fn main() -> ExitCode {
    let flag = |arg: &str, env: &str| {
        std::env::args().skip(1).any(|a| a == arg) || std::env::var(env).is_ok_and(|v| v == "1")
    };
    let want = Want {
        cluster: flag("--cluster", "TRACKLOCK_DEMO_CLUSTER"),
        tls: flag("--tls", "TRACKLOCK_DEMO_TLS"),
    };
    run_example(want, "demo", demo)
}

/// The keys of lock `name` with the default prefix and majority:
/// `rueidislock:{0,1,2}:{name}`.
fn lock_keys(name: &str) -> Vec<String> {
    (0..3).map(|i| format!("rueidislock:{i}:{name}")).collect()
}

async fn demo(redis: &Redis) -> Result<bool, Box<dyn StdError>> {
    let mut opts = Options::from_url(&redis.url())?.validity(Duration::from_secs(2));
    if let Some(ca) = redis.ca_file() {
        opts = opts.tls_ca_file(ca);
    }
    println!(
        "mode: {}{}",
        opts.mode(),
        if opts.is_tls() { " over TLS" } else { "" }
    );
    let mut lockers = Vec::new();
    for i in 0..WORKERS {
        lockers.push(Locker::connect(opts.clone().client_name(format!("demo-worker-{i}"))).await?);
    }
    println!(
        "{WORKERS} workers connected; lock name {NAME:?}, keys {:?}",
        lock_keys(NAME)
    );

    // 1. Contention: every worker takes the lock ROUNDS times.
    println!("\n== {WORKERS} workers x {ROUNDS} rounds ==");
    let stats = Arc::new(Mutex::new(Stats::default()));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (i, locker) in lockers.iter().enumerate() {
        let locker = locker.clone();
        let stats = stats.clone();
        tasks.push(tokio::spawn(async move {
            for round in 1..=ROUNDS {
                let asked = Instant::now();
                let guard = locker.lock(NAME).await?;
                {
                    let mut s = stats.lock().expect("stats");
                    s.holders += 1;
                    s.max_holders = s.max_holders.max(s.holders);
                    let from = match s.last.replace(i) {
                        Some(prev) if prev != i => {
                            s.handoffs += 1;
                            format!("handed off from worker {prev}")
                        }
                        Some(_) => "kept by the same worker".to_owned(),
                        None => "first holder".to_owned(),
                    };
                    println!(
                        "  [{:>5} ms] worker {i} holds it (round {round}), waited {} ms, {from}",
                        start.elapsed().as_millis(),
                        asked.elapsed().as_millis()
                    );
                }
                tokio::time::sleep(Duration::from_millis(30)).await;
                {
                    let mut s = stats.lock().expect("stats");
                    s.holders -= 1;
                    s.rounds += 1;
                }
                guard.unlock().await?;
            }
            Ok::<(), tracklock::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }

    // 2. Forced takeover.
    println!("\n== forced takeover ==");
    let old = lockers[0].lock(NAME).await?;
    println!("  worker 0 holds {NAME:?}");
    let taken = Instant::now();
    let new = lockers[1].force_lock(NAME).await?;
    println!("  worker 1 called force_lock and holds it");
    let forced = match tokio::time::timeout(Duration::from_secs(5), old.lost()).await {
        Ok(reason) => {
            println!(
                "  worker 0 was told it lost the lock after {} ms: {reason}",
                taken.elapsed().as_millis()
            );
            reason == LostReason::KeysChanged
        }
        Err(_) => {
            println!("  worker 0 was NOT told it lost the lock within 5 s");
            false
        }
    };
    old.unlock().await?;

    // 3. An administrator deletes the keys behind the holder's back.
    println!("\n== keys deleted by an admin ==");
    let deleted = redis.delete(&lock_keys(NAME))?;
    let at = Instant::now();
    println!("  admin: DEL of the lock's keys removed {deleted} keys");
    let lost = match tokio::time::timeout(Duration::from_secs(5), new.lost()).await {
        Ok(reason) => {
            println!(
                "  worker 1 was told it lost the lock after {} ms: {reason}",
                at.elapsed().as_millis()
            );
            reason == LostReason::KeysChanged
        }
        Err(_) => {
            println!("  worker 1 was NOT told it lost the lock within 5 s");
            false
        }
    };
    drop(new);
    let g = lockers[2].try_lock(NAME).await?;
    println!("  worker 2 can take the lock right away");
    g.unlock().await?;
    if !fencing_refuses_a_stale_write(redis, &opts).await? {
        return Ok(false);
    }

    for l in &lockers {
        l.close().await;
    }
    let s = stats.lock().expect("stats");
    println!("\n== summary ==");
    println!(
        "  rounds:            {} (expected {})",
        s.rounds,
        WORKERS * ROUNDS
    );
    println!("  hand-offs:         {}", s.handoffs);
    println!("  max holders seen:  {}", s.max_holders);
    println!(
        "  forced takeover:   {}",
        if forced {
            "old holder told"
        } else {
            "NOT NOTICED"
        }
    );
    println!(
        "  deleted keys:      {}",
        if lost { "holder told" } else { "NOT NOTICED" }
    );
    let ok = s.rounds == WORKERS * ROUNDS && s.max_holders == 1 && forced && lost;
    println!("  result:            {}", if ok { "ok" } else { "FAILED" });
    Ok(ok)
}

/// Step 4, fencing tokens: a holder whose lease ran out while it was
/// paused (simulated by deleting its keys) writes late with its old token,
/// and the resource (`Redis::write_if_newer`) refuses it. True when it did.
async fn fencing_refuses_a_stale_write(
    redis: &Redis,
    opts: &Options,
) -> Result<bool, Box<dyn StdError>> {
    println!("\n== fencing tokens: a paused holder's late write ==");
    let (name, ledger) = ("tracklock-demo-fenced", "tracklock-demo:ledger");
    let a = Locker::connect(opts.clone().fencing(true)).await?;
    let b = Locker::connect(opts.clone().fencing(true)).await?;
    let ga = a.lock(name).await?;
    let ta = ga.token().ok_or("fencing is on, yet no token")?;
    let first = redis.write_if_newer(ledger, ta, "A")?;
    println!("  worker A holds it with token {ta} and writes (taken: {first}), then pauses");
    redis.delete(&lock_keys(name))?;
    println!("  (its lease runs out while it is paused: here an admin deletes its keys)");
    let gb = b.lock(name).await?;
    let tb = gb.token().ok_or("fencing is on, yet no token")?;
    let second = redis.write_if_newer(ledger, tb, "B")?;
    println!("  worker B takes the lock with token {tb} and writes (taken: {second})");
    let late = redis.write_if_newer(ledger, ta, "A, late")?;
    println!(
        "  worker A wakes up and writes with token {ta}: {}",
        if late {
            "TAKEN (not fenced!)"
        } else {
            "refused"
        }
    );
    gb.unlock().await?;
    drop(ga);
    a.close().await;
    b.close().await;
    Ok(first && second && !late)
}
