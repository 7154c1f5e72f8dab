//! 15. Bad input gives typed errors, never a panic: empty name, majority 0,
//!     extend interval >= validity, wrong password, no password, nothing
//!     listening.

use tracklock::NodeError;
use tracklock_tests::prelude::*;

async fn body<T: TestRt>(ctx: Ctx<T>) {
    let l = ctx.connect().await;
    assert_err!(l.lock("").await, Error::InvalidName);
    assert_err!(l.try_lock("").await, Error::InvalidName);
    assert_err!(l.force_lock("").await, Error::InvalidName);
    assert_err!(l.with_lock("", async {}).await, Error::InvalidName);
    assert_eq!(l.active_locks(), 0);
    assert!(ctx.lock_keys_present().is_empty());

    assert_err!(
        T::connect(ctx.opts().key_majority(0)).await,
        Error::Config(ConfigError::MajorityZero)
    );
    assert_err!(
        T::connect(ctx.opts().extend_interval(VALIDITY)).await,
        Error::Config(ConfigError::ExtendInterval)
    );
    assert_err!(
        T::connect(ctx.opts().extend_interval(VALIDITY * 2)).await,
        Error::Config(ConfigError::ExtendInterval)
    );
    assert_err!(
        T::connect(ctx.opts().prefix("")).await,
        Error::Config(ConfigError::EmptyPrefix)
    );

    // Wrong password / no password against a server that requires one.
    let secured = RedisServer::start_with(&["--requirepass", "right"]);
    let opts = ctx
        .variant
        .apply(Options::new(secured.addr()).validity(VALIDITY));
    match T::connect(opts.clone().password("wrong")).await {
        Err(Error::Node {
            addr,
            source: NodeError::Handshake(message),
        }) => {
            assert_eq!(addr, secured.addr());
            assert!(message.as_str().contains("WRONGPASS"), "{message}");
        }
        other => panic!(
            "wrong password: expected a refused handshake, got {:?}",
            other.map(|_| ())
        ),
    }
    match T::connect(opts.clone()).await {
        Err(Error::Node {
            source: NodeError::Handshake(message),
            ..
        }) => {
            assert!(message.as_str().contains("NOAUTH"), "{message}")
        }
        other => panic!(
            "no password: expected a refused handshake, got {:?}",
            other.map(|_| ())
        ),
    }
    let ok = T::connect(opts.password("right"))
        .await
        .expect("right password");
    let g = ok.lock("pw").await.expect("lock");
    g.unlock().await.expect("unlock");

    // Nothing listening.
    let port = tracklock_tests::free_port().expect("port");
    let addr = format!("127.0.0.1:{port}");
    let opts = ctx
        .variant
        .apply(Options::new(addr.clone()).connect_timeout(Duration::from_secs(2)));
    let start = Instant::now();
    match T::connect(opts).await {
        Err(e @ Error::Connect { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains(&addr), "{msg}");
        }
        other => panic!(
            "nothing listening: expected Connect error, got {:?}",
            other.map(|_| ())
        ),
    }
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "took {:?}",
        start.elapsed()
    );

    // A URL that cannot work.
    assert!(Options::from_url("http://x").is_err());
}

matrix!(body);
