//! A server without `HELLO 3` (here a Redis 7 with the command renamed
//! away, as on Redis 5 or behind some proxies), for real: with caching off
//! the locker speaks RESP2 (`AUTH`, `CLIENT SETNAME`, `SELECT`) and locks,
//! excludes and releases as usual; with caching on `connect` fails with a
//! typed error that says to turn caching off.

#![cfg(feature = "tokio")]

use std::time::Duration;

use tracklock::tokio::Locker;
use tracklock::{Error, NodeError, Options};

mod common;

#[test]
fn resp2_server_works_with_caching_off_and_is_refused_with_it_on() {
    let args = [
        "--rename-command",
        "HELLO",
        "\"\"",
        "--requirepass",
        "sesame",
    ];
    let Some((redis, rt)) = common::redis_and_tokio(&args) else {
        return;
    };
    rt.block_on(async {
        let opts = || {
            Options::new(redis.addr())
                .password("sesame")
                .database(3)
                .client_name("resp2")
        };
        match Locker::connect(opts()).await {
            Err(Error::Node {
                source: NodeError::Resp3Unsupported(_),
                ..
            }) => {}
            other => panic!("expected Resp3Unsupported, got {other:?}"),
        }
        let e = Locker::connect(opts()).await.unwrap_err();
        assert!(e.to_string().contains("client_caching(false)"), "{e}");

        let a = Locker::connect(opts().client_caching(false)).await.unwrap();
        let b = Locker::connect(opts().client_caching(false)).await.unwrap();
        let g = a.lock("r2").await.unwrap();
        assert!(matches!(b.try_lock("r2").await, Err(Error::NotLocked)));
        // The keys are in database 3, written by a client named `resp2`.
        let admin = redis.admin();
        let _: String = admin.cmd("SELECT", &["3"]);
        let held: i64 = admin.cmd(
            "EXISTS",
            &["rueidislock:0:r2", "rueidislock:1:r2", "rueidislock:2:r2"],
        );
        assert_eq!(held, 3);
        let list: String = admin.cmd("CLIENT", &["LIST"]);
        assert!(list.contains("name=resp2"), "{list}");
        // A waiter polls (no tracking) and gets the lock after the release.
        let waiter = tokio::spawn({
            let b = b.clone();
            async move { b.lock("r2").await.map(|g| g.name().to_owned()) }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        g.unlock().await.unwrap();
        let got = tokio::time::timeout(Duration::from_secs(10), waiter)
            .await
            .expect("waiter got the lock")
            .unwrap();
        assert_eq!(got.unwrap(), "r2");
        a.close().await;
        b.close().await;
    });
}
