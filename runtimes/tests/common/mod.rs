//! What the tokio tests against a real `redis-server` open with.

use tracklock_testkit::RedisServer;

/// A `redis-server` started with extra `args`, and a multi-threaded tokio
/// runtime (two workers, I/O and time) to run the test on; `None` (the
/// test is skipped) when `redis-server` is not installed.
pub(crate) fn redis_and_tokio(args: &[&str]) -> Option<(RedisServer, tokio::runtime::Runtime)> {
    let redis = RedisServer::start_or_skip(args)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    Some((redis, rt))
}
