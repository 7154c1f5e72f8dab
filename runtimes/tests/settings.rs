//! Settings that cannot hurt, at the `Options` level: every duration option,
//! from zero to `Duration::MAX`, is either refused by `to_config` with a
//! typed `Error::Config` naming it, or gives a configuration whose engine
//! never panics, from instant 0 to the end of the clock.

use std::time::Duration;

use tracklock::{ConfigError, Error, Options};
use tracklock_core::{Engine, Instant, NodeId};
use tracklock_testkit::edge_durations;

type Setter = fn(Options, Duration) -> Options;

/// Every `Duration` setter of `Options`, by the name its errors use.
fn options() -> Vec<(&'static str, Setter)> {
    vec![
        ("validity", Options::validity),
        ("extend_interval", Options::extend_interval),
        ("try_next_after", Options::try_next_after),
        ("margin", Options::margin),
        ("ping_interval", Options::ping_interval),
        ("connect_timeout", Options::connect_timeout),
    ]
}

fn at(nanos: u64) -> Instant {
    Instant::from_nanos(nanos)
}

/// Connects, times out, reconnects and closes an engine at `start` and
/// later instants up to the last one.
fn drive(engine: &mut Engine, start: u64) {
    let n = NodeId(0);
    engine.handle_connected(n, at(start));
    for t in [
        start,
        start.saturating_add(1_000_000_000),
        u64::MAX / 2,
        u64::MAX,
    ] {
        if t < start {
            continue;
        }
        let _ = engine.poll_timeout();
        engine.handle_timeout(at(t));
        while engine.poll_event().is_some() {}
        engine.consume_transmit(n, engine.transmit(n).len());
        if !engine.is_ready(n) {
            engine.handle_disconnected(n, at(t));
            engine.handle_connected(n, at(t));
        }
        let _ = engine.lock("x", tracklock_core::LockMode::Try, at(t));
    }
    engine.close(at(u64::MAX));
    let _ = engine.poll_timeout();
}

#[test]
fn every_duration_option_is_refused_by_name_or_never_panics() {
    let mut accepted = 0;
    let mut refused = 0;
    for (name, set) in options() {
        for d in edge_durations() {
            let o = set(Options::new("127.0.0.1:6379"), d);
            match o.to_config() {
                Ok(config) => {
                    accepted += 1;
                    if name == "connect_timeout" {
                        assert_eq!(config.handshake_timeout(), d, "set from connect_timeout");
                    }
                    for start in [0, 1, u64::MAX / 2, u64::MAX - 1, u64::MAX] {
                        let mut engine = Engine::new(config.clone(), [3; 32]).unwrap();
                        drive(&mut engine, start);
                    }
                }
                Err(e @ Error::Config(_)) => {
                    refused += 1;
                    let msg = e.to_string();
                    assert!(
                        msg.contains(name),
                        "{name}({d:?}): {msg:?} does not name it"
                    );
                }
                Err(other) => panic!("{name}({d:?}): not a config error: {other:?}"),
            }
        }
    }
    assert!(
        accepted >= 15 && refused >= 15,
        "{accepted} accepted, {refused} refused"
    );
}

#[test]
fn bounds_per_option() {
    let o = || Options::new("127.0.0.1:6379");
    let err = |o: Options| match o.to_config() {
        Err(Error::Config(e)) => e,
        other => panic!("expected a config error, got {other:?}"),
    };
    let ms = Duration::from_millis;
    let us = Duration::from_micros;
    for d in [Duration::ZERO, Duration::from_nanos(1), us(999)] {
        assert_eq!(err(o().connect_timeout(d)), ConfigError::ConnectTimeout);
    }
    assert_eq!(
        o().connect_timeout(ms(1))
            .to_config()
            .unwrap()
            .handshake_timeout(),
        ms(1)
    );
    for d in [Duration::ZERO, us(1), ms(9)] {
        assert_eq!(err(o().ping_interval(d)), ConfigError::PingInterval);
    }
    o().ping_interval(ms(10)).to_config().unwrap();
    o().ping_interval(Duration::MAX).to_config().unwrap();
    for d in [Duration::ZERO, us(1), us(999)] {
        assert_eq!(err(o().extend_interval(d)), ConfigError::ExtendInterval);
        assert_eq!(err(o().try_next_after(d)), ConfigError::TryNextAfter);
    }
    o().extend_interval(ms(1)).to_config().unwrap();
    o().try_next_after(ms(1)).to_config().unwrap();
    assert!(matches!(
        err(o().validity(ms(15))),
        ConfigError::LeaseTooShort { .. }
    ));
    assert!(matches!(
        err(o().margin(ms(4900))),
        ConfigError::ExtendAfterLease { .. }
    ));
    assert_eq!(
        err(o().validity(Duration::MAX)),
        ConfigError::ValidityTooLong
    );
    let msg = o()
        .connect_timeout(Duration::ZERO)
        .to_config()
        .unwrap_err()
        .to_string();
    assert_eq!(msg, "invalid option: connect_timeout must be at least 1ms");
}
