//! The `tracing` feature against a real `redis-server`: a locker's spans
//! and events, captured by a fmt subscriber, tell what it saw — the
//! connection, a lock acquired (keys, time taken), lost (reason) and
//! released, and a connection failure with its reconnection.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracing_subscriber::fmt::MakeWriter;
use tracklock::tokio::Locker;
use tracklock::{LostReason, Options};
use tracklock_testkit::RedisServer;

/// Everything the subscriber writes, kept for the assertions.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

/// Waits until the captured text contains `what`.
async fn until_logged(out: &Captured, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !out.text().contains(what) {
        assert!(
            Instant::now() < deadline,
            "never logged {what:?}:\n{}",
            out.text()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[test]
fn tracing_tells_connections_and_lock_events() {
    let redis = RedisServer::start();
    let out = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(out.clone())
        .with_ansi(false)
        .finish();
    // A current-thread runtime: the drivers run on this thread, where the
    // subscriber is the default.
    let _default = tracing::subscriber::set_default(subscriber);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let l = Locker::connect(Options::new(redis.addr())).await.unwrap();
        let g = l.lock("traced").await.unwrap();
        until_logged(&out, "acquired").await;
        let admin = redis.admin();
        for i in 0..3 {
            let _: i64 = admin.cmd("DEL", &[&format!("rueidislock:{i}:traced")]);
        }
        assert_eq!(g.lost().await, LostReason::KeysChanged);
        until_logged(&out, "lock lost").await;
        drop(g);
        l.lock("traced").await.unwrap().unlock().await.unwrap();
        until_logged(&out, "released").await;
        let _: i64 = admin.cmd("CLIENT", &["KILL", "SKIPME", "yes", "TYPE", "normal"]);
        until_logged(&out, "connection failed; reconnecting").await;
        l.close().await;
    });
    let text = out.text();
    let line = |what: &str| {
        text.lines()
            .find(|l| l.contains(what))
            .unwrap_or_else(|| panic!("no {what:?} in:\n{text}"))
            .to_owned()
    };
    let span = format!("tracklock{{mode=single addrs=[\"{}\"]}}", redis.addr());
    let connected = line("connected");
    assert!(connected.contains(&span), "{connected}");
    assert!(connected.contains("tracklock.node{addr="), "{connected}");
    let acquired = line("acquired");
    assert!(acquired.contains("DEBUG"), "{acquired}");
    assert!(acquired.contains("name=\"traced\""), "{acquired}");
    assert!(acquired.contains("keys=3"), "{acquired}");
    assert!(acquired.contains("took=Some("), "{acquired}");
    let lost = line("lock lost");
    assert!(lost.contains("WARN"), "{lost}");
    assert!(
        lost.contains("reason=a majority of the lock's keys was changed"),
        "{lost}"
    );
    let failed = line("connection failed; reconnecting");
    assert!(failed.contains("retry_in="), "{failed}");
    // Nothing above debug on the hot path: lock, extend, release.
    for l in text
        .lines()
        .filter(|l| l.contains("INFO") || l.contains("WARN"))
    {
        assert!(
            l.contains("lock lost") || l.contains("connection failed"),
            "unexpected loud event: {l}"
        );
    }
}
