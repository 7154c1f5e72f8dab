//! Settings that cannot hurt: every duration option, from zero to
//! `Duration::MAX`, is either refused by validation with an error naming it
//! (and its bound), or accepted and then never makes the engine panic, even
//! at far-future instants.

use std::time::Duration;

use redis_protocol::resp3::decode::complete::decode;
use redis_protocol::resp3::types::OwnedFrame;
use tracklock_core::{
    Config, ConfigError, Engine, Event, Instant, LockMode, NodeId, Topology, TtlMode,
};
use tracklock_testkit::edge_durations;

const N0: NodeId = NodeId(0);

const HELLO_7015: &[u8] = b"%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n$5\r\nproto\r\n:3\r\n$2\r\nid\r\n:3\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n";

/// Instants the engine is driven at: the origin, ordinary ones, and the far
/// future up to the very last nanosecond.
fn instants() -> Vec<Instant> {
    [
        0,
        1,
        1_000_000,
        1_000_000_000,
        u64::MAX / 2,
        u64::MAX - 1_000_000_000,
        u64::MAX - 1,
        u64::MAX,
    ]
    .map(Instant::from_nanos)
    .to_vec()
}

type Setter = fn(Config, Duration) -> Config;

/// Every duration option of [`Config`], by name.
fn fields() -> Vec<(&'static str, Setter)> {
    vec![
        ("validity", Config::with_validity),
        ("extend_interval", |c, d| c.with_extend_interval(Some(d))),
        ("try_next_after", Config::with_try_next_after),
        ("margin", Config::with_margin),
        ("ping_interval", Config::with_ping_interval),
        ("handshake_timeout", Config::with_handshake_timeout),
    ]
}

/// Answers every command the engine queued for node 0 the way a healthy
/// Redis 7.0.15 would (enough for the handshake and lock acquisition);
/// returns the events that followed.
fn answer(e: &mut Engine, now: Instant, validity_ms: u64) -> Vec<Event> {
    let mut events = Vec::new();
    for _ in 0..8 {
        events.extend(std::iter::from_fn(|| e.poll_event()));
        let out = e.transmit(N0).to_vec();
        if out.is_empty() {
            break;
        }
        e.consume_transmit(N0, out.len());
        let mut replies = Vec::new();
        let mut rest = &out[..];
        // `redis-protocol` reads the commands: the engine's own reader is
        // private.
        while let Ok(Some((frame, n))) = decode(rest) {
            rest = &rest[n..];
            let OwnedFrame::Array { data: args, .. } = frame else {
                panic!("not a command: {frame:?}");
            };
            let name = match args.first() {
                Some(OwnedFrame::BlobString { data, .. }) => data.to_ascii_uppercase(),
                _ => Vec::new(),
            };
            match &name[..] {
                b"HELLO" => replies.extend_from_slice(HELLO_7015),
                b"PTTL" => replies.extend_from_slice(format!(":{validity_ms}\r\n").as_bytes()),
                // The extend script (key, value, TTL, refresh bound):
                // `{remaining TTL, refreshed}`.
                b"EVALSHA" | b"EVAL" if args.len() == 7 => {
                    replies.extend_from_slice(format!("*2\r\n:{validity_ms}\r\n:1\r\n").as_bytes())
                }
                // The release script: keys deleted.
                b"EVALSHA" | b"EVAL" => replies.extend_from_slice(b":1\r\n"),
                _ => replies.extend_from_slice(b"+OK\r\n"),
            }
        }
        let mut off = 0;
        while off < replies.len() {
            let n = e.handle_bytes(N0, now, &replies[off..]);
            if n == 0 {
                break;
            }
            off += n;
        }
    }
    events.extend(std::iter::from_fn(|| e.poll_event()));
    events
}

/// Drives a fresh engine through connect, handshake, a lock and its timers,
/// starting at `start`: nothing may panic. Below the last instant the
/// handshake and the lock succeed; at it, every deadline has saturated to
/// "now", so they need not.
fn drive(config: &Config, start: Instant) {
    let room = start < Instant::from_nanos(u64::MAX);
    let validity_ms = u64::try_from(config.validity().as_millis()).unwrap_or(u64::MAX);
    let mut e = Engine::new(config.clone(), [9; 32]).expect("validated config");
    e.set_unix_time(start, 1_700_000_000_000);
    e.handle_connected(N0, start);
    let _ = e.poll_timeout();
    e.handle_timeout(start);
    let events = answer(&mut e, start, validity_ms);
    assert!(
        !room || events.contains(&Event::NodeReady { node: N0 }),
        "{config:?} at {start:?}: {events:?}"
    );
    let id = e.lock("walk", LockMode::Wait, start).expect("lock request");
    let _ = e.lock("other", LockMode::Try, start);
    let events = answer(&mut e, start, validity_ms);
    assert!(
        !room || events.contains(&Event::Acquired { id }),
        "{config:?} at {start:?}: {events:?}"
    );
    for t in instants().into_iter().filter(|&t| t >= start) {
        for _ in 0..3 {
            match e.poll_timeout() {
                Some(d) if d <= t => e.handle_timeout(d),
                _ => break,
            }
            answer(&mut e, t, validity_ms);
        }
        e.handle_timeout(t);
        for ev in answer(&mut e, t, validity_ms) {
            if let Event::CloseConnection { node, .. } = ev {
                e.handle_disconnected(node, t);
                e.handle_connected(node, t);
                answer(&mut e, t, validity_ms);
            }
        }
        let _ = e.poll_timeout();
    }
    // A handshake that never gets an answer, from the far future too.
    e.handle_disconnected(N0, start);
    e.handle_connected(N0, start);
    let _ = e.poll_timeout();
    e.handle_timeout(Instant::from_nanos(u64::MAX));
    let _ = e.poll_timeout();
    e.close(Instant::from_nanos(u64::MAX));
    let _ = e.poll_timeout();
}

fn variants() -> Vec<Config> {
    let base = Config::default();
    vec![
        base.clone(),
        base.clone()
            .with_ttl_mode(TtlMode::Absolute)
            .with_client_caching(false),
        base.with_key_majority(3)
            .with_topology(Topology::Instances(1))
            .with_drift_ppm(0)
            .with_margin(Duration::ZERO),
    ]
}

#[test]
fn every_duration_option_is_refused_by_name_or_never_panics() {
    let mut accepted = 0;
    let mut refused = 0;
    for base in variants() {
        for (name, set) in fields() {
            for d in edge_durations() {
                let c = set(base.clone(), d);
                match c.validate() {
                    Ok(()) => {
                        accepted += 1;
                        for start in [0, 1_000_000_000, u64::MAX / 2, u64::MAX - 1, u64::MAX] {
                            drive(&c, Instant::from_nanos(start));
                        }
                    }
                    Err(err) => {
                        refused += 1;
                        let msg = err.to_string();
                        assert!(
                            msg.contains(name),
                            "{name} = {d:?}: {msg:?} does not name it"
                        );
                        assert_eq!(
                            Engine::new(c.clone(), [0; 32]).err(),
                            Some(err),
                            "{name} = {d:?}: the engine validates the same way"
                        );
                    }
                }
            }
        }
    }
    // Both sides of the walk are exercised.
    assert!(
        accepted > 20 && refused > 20,
        "{accepted} accepted, {refused} refused"
    );
}

#[test]
fn huge_durations_are_accepted_where_they_can_work() {
    let huge = Duration::MAX;
    let valid_max = Duration::from_millis(i64::MAX as u64 / 2);
    let ok = |c: Config| {
        c.validate().unwrap();
        drive(&c, Instant::from_nanos(0));
        drive(&c, Instant::from_nanos(u64::MAX));
    };
    ok(Config::default()
        .with_ping_interval(huge)
        .with_handshake_timeout(huge));
    ok(Config::default().with_validity(valid_max));
    ok(Config::default()
        .with_validity(valid_max)
        .with_extend_interval(Some(valid_max / 3))
        .with_try_next_after(valid_max / 4)
        .with_margin(valid_max / 5)
        .with_ttl_mode(TtlMode::Absolute));
    let too_long = |c: Config| assert_eq!(c.validate(), Err(ConfigError::ValidityTooLong));
    too_long(Config::default().with_validity(valid_max + Duration::from_millis(1)));
    too_long(Config::default().with_validity(huge));
}

#[test]
fn lower_bounds_are_exact() {
    let d = Config::default();
    let ms = Duration::from_millis;
    let ns = Duration::from_nanos;
    let check = |c: Config, want: Option<ConfigError>| {
        assert_eq!(c.validate().err(), want, "{c:?}");
    };
    let min = Config::MIN_PING_INTERVAL;
    check(d.clone().with_ping_interval(min), None);
    check(
        d.clone().with_ping_interval(min - ns(1)),
        Some(ConfigError::PingInterval),
    );
    let min = Config::MIN_HANDSHAKE_TIMEOUT;
    check(d.clone().with_handshake_timeout(min), None);
    for t in [min - ns(1), Duration::ZERO] {
        check(
            d.clone().with_handshake_timeout(t),
            Some(ConfigError::HandshakeTimeout),
        );
    }
    let min = Config::MIN_EXTEND_INTERVAL;
    check(d.clone().with_extend_interval(Some(min)), None);
    check(
        d.clone().with_extend_interval(Some(min - ns(1))),
        Some(ConfigError::ExtendInterval),
    );
    let min = Config::MIN_TRY_NEXT_AFTER;
    check(d.clone().with_try_next_after(min), None);
    check(
        d.clone().with_try_next_after(min - ns(1)),
        Some(ConfigError::TryNextAfter),
    );

    // The lease: validity 20 ms, no drift, margin 10 ms leaves exactly the
    // minimum (the default extend interval, 10 ms, is not below it).
    let lease = |margin: Duration, ext: Option<Duration>| {
        d.clone()
            .with_validity(ms(20))
            .with_drift_ppm(0)
            .with_margin(margin)
            .with_extend_interval(ext)
            .with_try_next_after(ms(5))
    };
    assert_eq!(lease(ms(10), None).lease(), Config::MIN_LEASE);
    check(
        lease(ms(10), None),
        Some(ConfigError::ExtendAfterLease {
            extend_interval: ms(10),
            lease: ms(10),
        }),
    );
    check(lease(ms(10), Some(ms(9))), None);
    check(
        lease(ms(10) + ns(1), Some(ms(9))),
        Some(ConfigError::LeaseTooShort {
            lease: ms(10) - ns(1),
        }),
    );
    check(
        lease(ms(20), Some(ms(9))),
        Some(ConfigError::MarginTooLarge),
    );
    // 100 µs of lease (`lock()` might never return): refused.
    let tiny = d
        .clone()
        .with_validity(ms(5))
        .with_margin(ms(5) - Duration::from_micros(100))
        .with_drift_ppm(0);
    check(
        tiny,
        Some(ConfigError::LeaseTooShort {
            lease: Duration::from_micros(100),
        }),
    );
    // The default extend interval (validity / 2) after the lease: a large
    // drift and margin expire every lock before its first extension.
    check(
        d.clone().with_drift_ppm(400_000).with_margin(ms(500)),
        Some(ConfigError::ExtendAfterLease {
            extend_interval: ms(2500),
            lease: ms(2500),
        }),
    );
    // Defaults are valid and majority 0 neither panics nor validates.
    check(d.clone(), None);
    let zero = d.with_key_majority(0);
    assert_eq!(zero.key_count(), 0);
    check(zero, Some(ConfigError::MajorityZero));
}

#[test]
fn messages_name_the_option_and_the_bound() {
    let cases = [
        (
            ConfigError::PingInterval,
            "ping_interval must be at least 10ms",
        ),
        (
            ConfigError::HandshakeTimeout,
            "handshake_timeout must be at least 1ms",
        ),
        (
            ConfigError::ConnectTimeout,
            "connect_timeout must be at least 1ms",
        ),
        (
            ConfigError::ExtendInterval,
            "extend_interval must be at least 1ms and shorter than validity",
        ),
        (
            ConfigError::TryNextAfter,
            "try_next_after must be at least 1ms and shorter than validity",
        ),
    ];
    for (e, want) in cases {
        assert_eq!(e.to_string(), want);
    }
    let e = ConfigError::LeaseTooShort {
        lease: Duration::from_micros(100),
    };
    let msg = e.to_string();
    assert!(
        msg.contains("validity") && msg.contains("100µs") && msg.contains("10ms"),
        "{msg}"
    );
    let e = ConfigError::ExtendAfterLease {
        extend_interval: Duration::from_secs(3),
        lease: Duration::from_secs(2),
    };
    let msg = e.to_string();
    assert!(
        msg.contains("extend_interval 3s") && msg.contains("lease of 2s"),
        "{msg}"
    );
    let msg = ConfigError::AmbiguousPrefix.to_string();
    assert!(msg.contains("prefix") && msg.contains("digits"), "{msg}");
}
