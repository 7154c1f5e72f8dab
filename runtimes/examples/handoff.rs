//! Measures lock hand-off latency between tasks (one or two lockers).
//! `cargo run -p tracklock --features tokio --example handoff -- 127.0.0.1:6379 [lockers] [tasks] [rounds]`

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), tracklock::Error> {
    let args: Vec<String> = std::env::args().collect();
    let addr = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "127.0.0.1:6379".into());
    let n_lockers: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(2);
    let n_tasks: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(8);
    let rounds: usize = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(20);
    let mut lockers = Vec::new();
    for _ in 0..n_lockers {
        lockers
            .push(tracklock::tokio::Locker::connect(tracklock::Options::new(addr.clone())).await?);
    }
    let done = Arc::new(AtomicUsize::new(0));
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..n_tasks {
        let l = lockers[t % n_lockers].clone();
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..rounds {
                let g = l.lock("handoff").await.unwrap();
                g.unlock().await.unwrap();
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let n = done.load(Ordering::Relaxed);
    let el = t0.elapsed();
    println!(
        "{n_lockers} lockers, {n_tasks} tasks: {n} lock+unlock in {el:?} ({:?} each)",
        el / n as u32
    );
    for l in &lockers {
        l.close().await;
    }
    Ok(())
}
