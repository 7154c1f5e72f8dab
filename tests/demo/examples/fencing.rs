//! Fencing tokens: a holder that lost the lock without knowing it (paused
//! past its lease) has its late write refused by the resource.
//!
//! ```text
//! cargo run --example fencing                    # throwaway redis-server
//! REDIS_URL=redis://127.0.0.1:6379/0 cargo run --example fencing
//! ```
//!
//! The resource is a Redis hash updated by a Lua script only when the
//! writer's token is at least the largest it has taken
//! (`tracklock_demo::Redis::write_if_newer`). Worker A takes the lock and
//! writes; then A "pauses": its keys are deleted while it sleeps, as if its
//! lease had run out during a stop-the-world pause. Worker B takes the
//! lock (a larger token) and writes. A wakes up and writes with its old
//! token, as a paused process that checked the lock before its pause
//! would: the resource refuses it. Exits 0 when that is what happened.

use std::error::Error as StdError;
use std::process::ExitCode;
use std::time::Duration;

use tracklock::Options;
use tracklock_demo::{run_example, Redis, Want};

type Locker = tracklock::tokio::Locker;

const NAME: &str = "fencing-demo";
const LEDGER: &str = "fencing-demo:ledger";

fn main() -> ExitCode {
    run_example(Want::default(), "fencing example", fencing)
}

async fn fencing(redis: &Redis) -> Result<bool, Box<dyn StdError>> {
    let opts = Options::from_url(&redis.url())?
        .validity(Duration::from_secs(2))
        .fencing(true);
    let a = Locker::connect(opts.clone().client_name("fencing-a")).await?;
    let b = Locker::connect(opts.client_name("fencing-b")).await?;

    let ga = a.lock(NAME).await?;
    let ta = ga.token().ok_or("fencing is on, yet no token")?;
    println!("A holds {NAME:?} with token {ta}");
    let first = redis.write_if_newer(LEDGER, ta, "written by A")?;
    println!("A writes with token {ta}: {}", verdict(first));

    println!("A pauses; meanwhile its lease runs out (its keys are deleted here)");
    let keys: Vec<String> = (0..3).map(|i| format!("rueidislock:{i}:{NAME}")).collect();
    redis.delete(&keys)?;

    let gb = b.lock(NAME).await?;
    let tb = gb.token().ok_or("fencing is on, yet no token")?;
    println!("B holds {NAME:?} with token {tb}");
    let second = redis.write_if_newer(LEDGER, tb, "written by B")?;
    println!("B writes with token {tb}: {}", verdict(second));

    println!("A wakes up and writes with its old token {ta}, unaware");
    let late = redis.write_if_newer(LEDGER, ta, "late write by A")?;
    println!("A writes with token {ta}: {}", verdict(late));

    gb.unlock().await?;
    drop(ga);
    a.close().await;
    b.close().await;
    let ok = first && second && !late && tb > ta;
    println!(
        "{}",
        if ok {
            "ok: the stale holder's write was refused"
        } else {
            "FAILED: the tokens did not fence the stale write"
        }
    );
    Ok(ok)
}

fn verdict(taken: bool) -> &'static str {
    if taken {
        "taken"
    } else {
        "REFUSED (an older token)"
    }
}
