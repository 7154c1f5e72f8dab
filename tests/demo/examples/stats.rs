//! Printing a locker's counters periodically, as a metrics exporter would
//! read them: eight tasks contend for two names for three seconds while a
//! reporter prints `Locker::stats()` every second.
//!
//! ```text
//! cargo run --example stats                       # throwaway redis-server
//! REDIS_URL=redis://127.0.0.1:6379/0 cargo run --example stats
//! ```

use std::process::ExitCode;
use std::time::Duration;

use tracklock::{Options, Stats};
use tracklock_demo::{Redis, Want};

fn report(s: &Stats) {
    let e = &s.engine;
    println!(
        "acquired {} (attempts {}, failed {}), released {}, lost {} (expired {}, keys changed {}), \
         extensions {}, commands {}, bytes {}",
        e.acquired,
        e.attempts,
        e.failed_attempts,
        e.released,
        e.lost.total(),
        e.lost.expired,
        e.lost.keys_changed,
        e.extensions,
        e.commands,
        e.bytes_sent,
    );
    for n in &s.nodes {
        println!(
            "  {} {:?}: {} connects, {} failures, {} handshakes",
            n.addr, n.state, n.connects, n.failures, n.handshakes
        );
    }
}

fn main() -> ExitCode {
    let redis = match Redis::start(Want::default()) {
        Ok(r) => r,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(1);
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let opts = match Options::from_url(&redis.url()) {
            Ok(o) => o,
            Err(e) => {
                eprintln!("bad REDIS_URL: {e}");
                return ExitCode::from(1);
            }
        };
        let locker = match tracklock::tokio::Locker::connect(opts).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("cannot connect: {e}");
                return ExitCode::from(1);
            }
        };
        let until = tokio::time::Instant::now() + Duration::from_secs(3);
        let workers: Vec<_> = (0..8)
            .map(|i| {
                let l = locker.clone();
                tokio::spawn(async move {
                    let name = if i % 2 == 0 { "stats-a" } else { "stats-b" };
                    while tokio::time::Instant::now() < until {
                        if let Ok(g) = l.lock(name).await {
                            tokio::time::sleep(Duration::from_millis(5)).await;
                            let _ = g.unlock().await;
                        }
                    }
                })
            })
            .collect();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.tick().await;
        for _ in 0..3 {
            tick.tick().await;
            report(&locker.stats());
        }
        for w in workers {
            let _ = w.await;
        }
        report(&locker.stats());
        locker.close().await;
        ExitCode::SUCCESS
    })
}
