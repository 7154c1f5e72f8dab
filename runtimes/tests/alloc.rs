//! Allocations per lock + unlock in steady state (one test per binary: the
//! counting allocator is global).

#![cfg(feature = "tokio")]

use tracklock_testkit::alloc::{count, Counting};
use tracklock_testkit::{RedisServer, StartError};

#[global_allocator]
static A: Counting = Counting;

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
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let locker = tracklock::tokio::Locker::connect(tracklock::Options::new(redis.addr()))
            .await
            .unwrap();
        let round = || async {
            let g = locker.lock("alloc").await.unwrap();
            g.unlock().await.unwrap();
        };
        for _ in 0..200 {
            round().await;
        }
        const N: u64 = 500;
        let before = count();
        for _ in 0..N {
            round().await;
        }
        let per = (count() - before) as f64 / N as f64;
        println!("allocations per lock+unlock: {per:.2}");
        assert!(per <= 2.05, "{per} allocations per lock+unlock");
        locker.close().await;
    });
}
