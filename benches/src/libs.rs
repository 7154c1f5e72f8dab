//! The locks under test behind one small trait, so a worker loop is
//! monomorphised per library (no boxed future per operation, which would
//! show up in the allocation counts).

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis::aio::MultiplexedConnection;

/// Lease written by the peers (tracklock's default validity is the same 5 s).
pub(crate) const TTL: Duration = Duration::from_secs(5);

/// A distributed lock as the workers use it: `lock` waits until the lock is
/// held, `unlock` returns once the server confirmed the release. Errors are
/// returned as text; the worker counts them and goes on (the table shows the
/// count and the first message of each row).
pub(crate) trait LockLib: Send + Sync + 'static {
    /// What `lock` hands back and `unlock` consumes.
    type Guard: Send + 'static;

    /// Acquires `name`, waiting (however the library waits) until it is held.
    fn lock<'a>(
        &'a self,
        name: &'a str,
    ) -> impl Future<Output = Result<Self::Guard, String>> + Send + 'a;

    /// Releases `name` and waits for the server's answer.
    fn unlock<'a>(
        &'a self,
        name: &'a str,
        guard: Self::Guard,
    ) -> impl Future<Output = Result<(), String>> + Send + 'a;

    /// Closes connections at the end of the run.
    fn close(&self) -> impl Future<Output = ()> + '_ {
        async {}
    }
}

/// tracklock on any runtime.
pub(crate) struct Tracklock<R: tracklock::Runtime>(pub tracklock::Locker<R>);

impl<R> LockLib for Tracklock<R>
where
    R: tracklock::Runtime,
    tracklock::Locker<R>: Send + Sync,
    tracklock::Guard<R>: Send,
{
    type Guard = tracklock::Guard<R>;

    async fn lock<'a>(&'a self, name: &'a str) -> Result<Self::Guard, String> {
        self.0.lock(name).await.map_err(|e| format!("lock: {e}"))
    }

    async fn unlock<'a>(&'a self, _name: &'a str, guard: Self::Guard) -> Result<(), String> {
        guard.unlock().await.map_err(|e| format!("unlock: {e}"))
    }

    fn close(&self) -> impl Future<Output = ()> + '_ {
        self.0.close()
    }
}

/// rslock (Redlock on the `redis` crate), given the one server.
pub(crate) struct Rslock(pub rslock::LockManager);

impl Rslock {
    /// A lock manager for `url` with rslock's default retries (3 attempts,
    /// random 0..200 ms between them) or `retry = (count, delay)`.
    pub(crate) fn new(url: &str, retry: Option<(u32, Duration)>) -> Rslock {
        let mut m = rslock::LockManager::new(vec![url.to_owned()]);
        if let Some((count, delay)) = retry {
            m.set_retry(count, delay);
        }
        Rslock(m)
    }
}

impl LockLib for Rslock {
    type Guard = rslock::LockGuard;

    async fn lock<'a>(&'a self, name: &'a str) -> Result<Self::Guard, String> {
        // `acquire` loops over `lock` (with its retries) until it wins.
        self.0
            .acquire(name.as_bytes(), TTL)
            .await
            .map_err(|e| format!("acquire: {e}"))
    }

    async fn unlock<'a>(&'a self, _name: &'a str, guard: Self::Guard) -> Result<(), String> {
        // Best effort by design: rslock reports no release failure.
        guard.release().await;
        Ok(())
    }
}

/// Compare-and-delete, the usual single-key release.
const RELEASE: &str = r#"if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) else return 0 end"#;

/// The lock most code bases hand-roll on the `redis` crate: `SET key val NX
/// PX 5000` on one multiplexed connection, retried at once on failure;
/// released with a Lua compare-and-delete (`EVALSHA`, `EVAL` on `NOSCRIPT`).
pub(crate) struct SetNx {
    conn: MultiplexedConnection,
    release: redis::Script,
    seed: u64,
    seq: AtomicU64,
}

impl SetNx {
    /// Opens a multiplexed connection to `url`.
    pub(crate) async fn connect(url: &str, seed: u64) -> SetNx {
        let client = redis::Client::open(url).expect("redis URL");
        let conn = client
            .get_multiplexed_async_connection()
            .await
            .expect("redis connection");
        SetNx {
            conn,
            release: redis::Script::new(RELEASE),
            seed,
            seq: AtomicU64::new(0),
        }
    }
}

/// A held [`SetNx`] lock: the value we wrote.
pub(crate) struct SetNxGuard {
    value: u64,
}

impl LockLib for SetNx {
    type Guard = SetNxGuard;

    async fn lock<'a>(&'a self, name: &'a str) -> Result<Self::Guard, String> {
        let value = self.seed ^ self.seq.fetch_add(1, Ordering::Relaxed);
        let mut conn = self.conn.clone();
        let ttl_ms = TTL.as_millis() as u64;
        loop {
            let reply: redis::Value = redis::cmd("SET")
                .arg(name)
                .arg(value)
                .arg("NX")
                .arg("PX")
                .arg(ttl_ms)
                .query_async(&mut conn)
                .await
                .map_err(|e| format!("SET NX: {e}"))?;
            if matches!(reply, redis::Value::Okay) {
                return Ok(SetNxGuard { value });
            }
        }
    }

    async fn unlock<'a>(&'a self, name: &'a str, guard: Self::Guard) -> Result<(), String> {
        let mut conn = self.conn.clone();
        let _: i64 = self
            .release
            .key(name)
            .arg(guard.value)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| format!("release: {e}"))?;
        Ok(())
    }
}
