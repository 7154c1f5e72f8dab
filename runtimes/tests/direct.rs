//! Writes from the calling task (`runtimes/src/direct.rs`) against a real
//! `redis-server`, on every runtime built: commands sent on the socket's
//! duplicate never overtake bytes the driver still holds when the socket
//! is full, and closing a locker really closes its connection (the
//! duplicate included). On tokio's multi-threaded scheduler, threads that
//! send on one connection at once (each after releasing the locker's
//! mutex) keep its byte stream whole.

#![cfg(any(feature = "tokio", feature = "smol", feature = "glommio"))]

use std::future::Future;
use std::time::{Duration, Instant};

use tracklock::{Locker, Options, Runtime};
use tracklock_testkit::RedisServer;

#[cfg(feature = "tokio")]
mod common;

/// Tasks, rounds and name length of the back-pressure test: 48 tasks × 3
/// keys × 2 commands naming a 48 KiB key are ~14 MB per round, more than
/// loopback socket buffers hold, so while the server is frozen the driver
/// is left holding bytes the socket did not take.
const TASKS: usize = 48;
const ROUNDS: usize = 3;
const NAME_LEN: usize = 48 * 1024;
/// The server stays frozen this long: well inside the 1 s ping interval,
/// so the connection is not given up meanwhile.
const FREEZE: Duration = Duration::from_millis(300);

/// Polls every future until all are done.
async fn join_all<F: Future<Output = Result<(), String>>>(futs: Vec<F>) -> Vec<String> {
    let mut futs: Vec<_> = futs.into_iter().map(|f| Some(Box::pin(f))).collect();
    let mut errors = Vec::new();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for slot in futs.iter_mut() {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(r) => {
                        errors.extend(r.err());
                        *slot = None;
                    }
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    errors
}

/// Every task locks and unlocks its own long name `ROUNDS` times, the first
/// round queued while the server is frozen. Byte streams that interleaved
/// would make the server answer a protocol error and drop the connection.
async fn order_kept_when_the_socket_fills<R: Runtime>(
    locker: &Locker<R>,
    redis: &RedisServer,
    sleep: impl Fn(Duration) -> R::Sleep,
) {
    let errors_before = error_replies(redis);
    let names: Vec<String> = (0..TASKS)
        .map(|i| format!("{i:03}-{}", "x".repeat(NAME_LEN)))
        .collect();
    redis.freeze();
    let tasks: Vec<_> = names
        .iter()
        .map(|n| async move {
            for round in 0..ROUNDS {
                let g = locker
                    .lock(n)
                    .await
                    .map_err(|e| format!("lock, round {round}: {e}"))?;
                g.unlock()
                    .await
                    .map_err(|e| format!("unlock, round {round}: {e}"))?;
            }
            Ok(())
        })
        .collect();
    let thaw = async {
        sleep(FREEZE).await;
        redis.thaw();
    };
    let ((), errors) = futures_lite::future::zip(thaw, join_all(tasks)).await;
    redis.thaw();
    assert!(
        errors.is_empty(),
        "{} failed: {:?}",
        errors.len(),
        &errors[..1]
    );
    let node = &locker.stats().nodes[0];
    assert_eq!(node.connects, 1, "the connection was dropped: {node:?}");
    assert_eq!(
        error_replies(redis),
        errors_before,
        "the server refused bytes"
    );
    let keys: i64 = redis.admin().cmd("DBSIZE", &[]);
    assert_eq!(keys, 0, "every lock was released");
}

/// Error replies of the server other than `NOSCRIPT` (the first
/// `EVALSHA` of each script is answered so, and falls back to `EVAL`), from
/// `INFO errorstats` (`errorstat_<PREFIX>:count=N`).
fn error_replies(redis: &RedisServer) -> u64 {
    let info: String = redis.admin().cmd("INFO", &["errorstats"]);
    info.lines()
        .filter_map(|l| l.strip_prefix("errorstat_"))
        .filter(|l| !l.starts_with("NOSCRIPT:"))
        .filter_map(|l| {
            l.split("count=")
                .nth(1)?
                .split(',')
                .next()?
                .trim()
                .parse::<u64>()
                .ok()
        })
        .sum()
}

/// Connections the server lists under `name`.
fn clients_named(redis: &RedisServer, name: &str) -> usize {
    let list: String = redis.admin().cmd("CLIENT", &["LIST"]);
    list.lines()
        .filter(|l| l.split(' ').any(|f| f == format!("name={name}")))
        .count()
}

/// After `close`, with the locker handle still alive, the server sees the
/// connection gone: nothing (such as the socket's duplicate) keeps it open.
async fn close_closes_the_socket<R: Runtime>(
    locker: Locker<R>,
    redis: &RedisServer,
    name: &str,
    sleep: impl Fn(Duration) -> R::Sleep,
) {
    let g = locker.lock("direct-close").await.unwrap();
    g.unlock().await.unwrap();
    assert_eq!(clients_named(redis, name), 1);
    locker.close().await;
    // The server notices a closed socket within a round trip; a second is
    // hundreds of them, even on a busy machine.
    let deadline = Instant::now() + Duration::from_secs(5);
    while clients_named(redis, name) != 0 {
        assert!(
            Instant::now() < deadline,
            "the connection is still open 5 s after close"
        );
        sleep(Duration::from_millis(20)).await;
    }
    drop(locker);
}

/// Both checks on one runtime: `connect` opens a locker, `sleep` is its
/// timer; locker names carry `runtime` so the server tells them apart.
async fn both<R: Runtime, F: Future<Output = Result<Locker<R>, tracklock::Error>>>(
    redis: &RedisServer,
    runtime: &str,
    connect: impl Fn(Options) -> F,
    sleep: impl Fn(Duration) -> R::Sleep + Copy,
) {
    let opts = |name: &str| {
        Options::new(redis.addr())
            .client_name(name)
            .validity(Duration::from_secs(30))
    };
    let locker = connect(opts(&format!("order-{runtime}"))).await.unwrap();
    order_kept_when_the_socket_fills(&locker, redis, sleep).await;
    locker.close().await;
    let name = format!("close-{runtime}");
    let locker = connect(opts(&name)).await.unwrap();
    close_closes_the_socket(locker, redis, &name, sleep).await;
}

#[cfg(feature = "tokio")]
#[test]
fn direct_writes_tokio() {
    let Some((redis, rt)) = common::redis_and_tokio(&[]) else {
        return;
    };
    rt.block_on(both(
        &redis,
        "tokio",
        tracklock::tokio::Locker::connect,
        tokio::time::sleep,
    ));
}

/// Tasks and pairs per task of the concurrent-senders test.
#[cfg(feature = "tokio")]
const SENDERS: usize = 64;
#[cfg(feature = "tokio")]
const SENDER_PAIRS: usize = 400;

/// 64 tasks spawned over 4 worker threads lock and unlock (own names, and
/// one name all share) on one connection: their `send`s run outside the
/// locker's mutex, so several threads write at once and commands queued
/// during a `send` are taken by its sender. Bytes that interleaved or were
/// lost would show as error replies, a dropped connection, or a call that
/// does not end.
#[cfg(feature = "tokio")]
#[test]
fn concurrent_senders_keep_the_stream_whole() {
    let Some(redis) = RedisServer::start_or_skip(&[]) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let errors_before = error_replies(&redis);
    rt.block_on(async {
        let locker = tracklock::tokio::Locker::connect(
            Options::new(redis.addr()).validity(Duration::from_secs(30)),
        )
        .await
        .unwrap();
        let tasks: Vec<_> = (0..SENDERS)
            .map(|i| {
                let locker = locker.clone();
                tokio::spawn(async move {
                    let name = if i % 4 == 0 {
                        "senders-shared".to_owned()
                    } else {
                        format!("senders-{i}")
                    };
                    for pair in 0..SENDER_PAIRS {
                        let g = locker
                            .lock(&name)
                            .await
                            .map_err(|e| format!("task {i} lock {pair}: {e}"))?;
                        g.unlock()
                            .await
                            .map_err(|e| format!("task {i} unlock {pair}: {e}"))?;
                    }
                    Ok::<(), String>(())
                })
            })
            .collect();
        // Generous: the whole run takes a second or two on a busy machine.
        let all = tokio::time::timeout(Duration::from_secs(120), async {
            let mut failed = Vec::new();
            for t in tasks {
                if let Err(e) = t.await.unwrap() {
                    failed.push(e);
                }
            }
            failed
        })
        .await
        .expect("every call ends");
        assert!(all.is_empty(), "{} failed: {:?}", all.len(), &all[..1]);
        let node = &locker.stats().nodes[0];
        assert_eq!(node.connects, 1, "the connection was dropped: {node:?}");
        assert_eq!(locker.active_locks(), 0);
        locker.close().await;
    });
    assert_eq!(
        error_replies(&redis),
        errors_before,
        "the server refused bytes"
    );
    let keys: i64 = redis.admin().cmd("DBSIZE", &[]);
    assert_eq!(keys, 0, "every lock was released");
}

#[cfg(feature = "smol")]
#[test]
fn direct_writes_smol() {
    let Some(redis) = RedisServer::start_or_skip(&[]) else {
        return;
    };
    smol::block_on(both(
        &redis,
        "smol",
        tracklock::smol::Locker::connect,
        async_io::Timer::after,
    ));
}

#[cfg(feature = "glommio")]
#[test]
fn direct_writes_glommio() {
    let Some(redis) = RedisServer::start_or_skip(&[]) else {
        return;
    };
    let ex = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .make()
        .expect("glommio executor (io_uring)");
    ex.run(both(
        &redis,
        "glommio",
        tracklock::glommio::Locker::connect,
        glommio::timer::Timer::new,
    ));
}
