//! `Locker::stats` against a real `redis-server` (skipped when it is not
//! installed): the counters follow what the locker did, and a killed
//! connection shows up as a failure, a reconnection and a second handshake.

#![cfg(feature = "tokio")]

use std::time::{Duration, Instant};

use tracklock::tokio::Locker;
use tracklock::{ConnectionState, Error, LostReason, Options};

mod common;

#[test]
fn stats_follow_locks_losses_and_reconnections() {
    let Some((redis, rt)) = common::redis_and_tokio(&[]) else {
        return;
    };
    rt.block_on(async {
        let opts = || Options::new(redis.addr()).client_name("stats");
        let a = Locker::connect(opts()).await.unwrap();
        let b = Locker::connect(Options::new(redis.addr())).await.unwrap();
        let s = a.stats();
        assert_eq!(s.nodes.len(), 1);
        assert_eq!(s.nodes[0].addr, redis.addr());
        assert_eq!(s.nodes[0].state, ConnectionState::Ready);
        assert_eq!((s.nodes[0].connects, s.nodes[0].handshakes), (1, 1));
        assert_eq!(s.engine.handshakes, 1);

        let g = a.lock("s").await.unwrap();
        assert!(matches!(b.try_lock("s").await, Err(Error::NotLocked)));
        assert_eq!(b.stats().engine.not_locked, 1);
        g.unlock().await.unwrap();
        let s = a.stats();
        assert_eq!((s.engine.requests, s.engine.acquired), (1, 1));
        assert_eq!(s.engine.released, 1);
        assert!(s.engine.commands >= 2 + 6 + 3, "{:?}", s.engine);
        assert!(s.engine.bytes_sent > 0);

        // Keys deleted by someone else: a loss by `KeysChanged`.
        let g = a.lock("s").await.unwrap();
        let admin = redis.admin();
        for i in 0..3 {
            let _: i64 = admin.cmd("DEL", &[&format!("rueidislock:{i}:s")]);
        }
        assert_eq!(g.lost().await, LostReason::KeysChanged);
        assert_eq!(a.stats().engine.lost.keys_changed, 1);
        drop(g);

        // The server drops the connection: a failure, then a reconnection
        // and a second handshake.
        let _: i64 = admin.cmd("CLIENT", &["KILL", "SKIPME", "yes", "TYPE", "normal"]);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let n = &a.stats().nodes[0];
            if n.handshakes >= 2 && n.state == ConnectionState::Ready {
                assert!(n.failures >= 1 && n.connects >= 2, "{n:?}");
                break;
            }
            assert!(Instant::now() < deadline, "no reconnection: {n:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(a.stats().engine.disconnections, 1);
        a.lock("s").await.unwrap().unlock().await.unwrap();
        a.close().await;
        b.close().await;
    });
}
