//! Engine transitions, driven by scripted server bytes.

extern crate std;

use std::boxed::Box;
use std::vec::Vec;

use super::*;
use crate::resp::{parse, Frame};
use crate::{LockFailure, NoLoop};

pub(super) const N0: NodeId = NodeId(0);
pub(super) const HELLO_7015: &[u8] = b"%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n$5\r\nproto\r\n:3\r\n$2\r\nid\r\n:3\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n";
const HELLO_62: &[u8] = b"%2\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n6.2.14\r\n";

pub(super) fn ms(n: u64) -> Instant {
    Instant::from_nanos(n * 1_000_000)
}

/// Every command in `bytes`, as lists of arguments.
fn commands(mut bytes: &[u8]) -> Vec<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let (frame, n) = parse(bytes).unwrap().expect("complete command");
        let Frame::Array(args) = frame else {
            panic!(
                "command is not an array: {frame:?} in {:?}",
                core::str::from_utf8(bytes)
            )
        };
        out.push(
            args.iter()
                .map(|a| match a {
                    Frame::Bulk(b) => b.to_vec(),
                    other => panic!("argument {other:?}"),
                })
                .collect(),
        );
        bytes = &bytes[n..];
    }
    out
}

pub(super) fn sent(e: &mut Engine) -> Vec<Vec<Vec<u8>>> {
    let bytes = e.transmit(N0).to_vec();
    e.consume_transmit(N0, bytes.len());
    commands(&bytes)
}

pub(super) fn names(cmds: &[Vec<Vec<u8>>]) -> Vec<&[u8]> {
    cmds.iter().map(|c| &c[0][..]).collect()
}

pub(super) fn feed(e: &mut Engine, now: Instant, bytes: &[u8]) {
    assert_eq!(
        e.handle_bytes(N0, now, bytes),
        bytes.len(),
        "all bytes consumed"
    );
}

pub(super) fn events(e: &mut Engine) -> Vec<Event> {
    core::iter::from_fn(|| e.poll_event()).collect()
}

pub(super) fn invalidate(key: &str) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(b">2\r\n$10\r\ninvalidate\r\n*1\r\n$");
    v.extend_from_slice(std::format!("{}\r\n{}\r\n", key.len(), key).as_bytes());
    v
}

/// A ready engine, boxed: the no-alloc engine is a quarter megabyte, and
/// debug builds copy a returned value through several frames.
pub(super) fn ready(config: Config) -> Box<Engine> {
    let mut e = Box::new(Engine::new(config, [7; 32]).unwrap());
    e.handle_connected(N0, ms(0));
    let hello = sent(&mut e);
    assert_eq!(hello[0][..2], [b"HELLO".to_vec(), b"3".to_vec()]);
    feed(&mut e, ms(0), HELLO_7015);
    let tracking = sent(&mut e);
    assert_eq!(
        tracking,
        std::vec![["CLIENT", "TRACKING", "ON", "OPTOUT", "NOLOOP"]
            .map(|s| s.as_bytes().to_vec())
            .to_vec()]
    );
    feed(&mut e, ms(0), b"+OK\r\n");
    assert_eq!(events(&mut e), std::vec![Event::NodeReady { node: N0 }]);
    assert!(e.is_ready(N0));
    e
}

/// A ready engine (see [`ready`]) with a request for `a` in `mode` made at
/// 0 ms, its commands taken.
pub(super) fn requested(mode: LockMode) -> (Box<Engine>, LockId) {
    let mut e = ready(Config::default());
    let id = e.lock("a", mode, ms(0)).unwrap();
    sent(&mut e);
    (e, id)
}

/// The error of the one event left: node 0's connection closed.
fn close_error(e: &mut Engine) -> NodeError {
    match <[Event; 1]>::try_from(events(e)) {
        Ok([Event::CloseConnection { node, error }]) => {
            assert_eq!(node, N0);
            error
        }
        other => panic!("expected node 0's connection closed, got {other:?}"),
    }
}

pub(super) fn acquired(e: &mut Engine, name: &str, now: Instant) -> LockId {
    acquired_at(e, name, now, now)
}

/// Like [`acquired`], with the replies arriving at `answered` (the engine
/// measures that round trip).
pub(super) fn acquired_at(e: &mut Engine, name: &str, asked: Instant, answered: Instant) -> LockId {
    let id = e.lock(name, LockMode::Wait, asked).unwrap();
    let cmds = sent(e);
    assert_eq!(
        names(&cmds),
        [&b"SET"[..], b"PTTL", b"SET", b"PTTL", b"SET", b"PTTL"]
    );
    feed(e, answered, &b"+OK\r\n:5000\r\n".repeat(3));
    assert_eq!(events(e), std::vec![Event::Acquired { id }]);
    id
}

#[test]
fn replies_pending_counts_what_is_asked_until_answered() {
    let mut e = ready(Config::default());
    assert_eq!(e.replies_pending(N0), 0, "idle after the handshake");
    e.lock("a", LockMode::Wait, ms(0)).unwrap();
    assert_eq!(
        e.replies_pending(N0),
        6,
        "queued commands count before they are sent"
    );
    sent(&mut e);
    feed(&mut e, ms(1), &b"+OK\r\n:5000\r\n".repeat(2));
    assert_eq!(e.replies_pending(N0), 2);
    feed(&mut e, ms(1), b"+OK\r\n:5000\r\n");
    assert_eq!(e.replies_pending(N0), 0);
    assert_eq!(e.replies_pending(NodeId(9)), 0, "an unknown node");
}

#[test]
fn handshake_without_noloop_on_old_server_and_with_auth_and_db() {
    let config = Config {
        password: Text::new("secret"),
        database: 3,
        client_name: Text::new("me"),
        ..Config::default()
    };
    let mut e = Engine::new(config, [1; 32]).unwrap();
    e.handle_connected(N0, ms(0));
    let cmds = sent(&mut e);
    let hello: Vec<&[u8]> = cmds[0].iter().map(|a| &a[..]).collect();
    assert_eq!(
        hello,
        [
            &b"HELLO"[..],
            b"3",
            b"AUTH",
            b"default",
            b"secret",
            b"SETNAME",
            b"me"
        ]
    );
    assert_eq!(cmds[1], [b"SELECT".to_vec(), b"3".to_vec()]);
    feed(&mut e, ms(1), HELLO_62);
    let tracking = sent(&mut e);
    assert_eq!(tracking[0].len(), 4, "no NOLOOP before 7.0.5");
    feed(&mut e, ms(1), b"+OK\r\n+OK\r\n");
    assert_eq!(events(&mut e), std::vec![Event::NodeReady { node: N0 }]);
}

#[test]
fn refused_handshake_closes_with_the_server_text() {
    let config = Config {
        password: Text::new("bad"),
        ..Config::default()
    };
    let mut e = Engine::new(config, [1; 32]).unwrap();
    e.handle_connected(N0, ms(0));
    sent(&mut e);
    feed(
        &mut e,
        ms(1),
        b"-WRONGPASS invalid username-password pair\r\n",
    );
    let ev = events(&mut e);
    assert!(
        matches!(&ev[..], [Event::CloseConnection { error: NodeError::Handshake(t), .. }] if t.as_str().starts_with("WRONGPASS"))
    );
    assert!(!e.is_ready(N0));
}

#[test]
fn resp2_only_server_is_reported() {
    let mut e = Engine::new(Config::default(), [1; 32]).unwrap();
    e.handle_connected(N0, ms(0));
    sent(&mut e);
    feed(&mut e, ms(1), b"-NOPROTO unsupported protocol version\r\n");
    assert!(matches!(
        close_error(&mut e),
        NodeError::Resp3Unsupported(_)
    ));
}

#[test]
fn uncontended_lock_is_one_pipelined_write_and_one_reply_batch() {
    let mut e = ready(Config::default());
    let id = e.lock("a", LockMode::Wait, ms(10)).unwrap();
    let cmds = sent(&mut e);
    assert_eq!(cmds.len(), 6);
    assert_eq!(&cmds[0][1], b"rueidislock:0:a");
    assert_eq!(
        &cmds[0][3..],
        [b"NX".to_vec(), b"PX".to_vec(), b"5000".to_vec()]
    );
    assert_eq!(&cmds[4][1], b"rueidislock:2:a");
    assert_eq!(cmds[0][2].len(), VALUE_LEN);
    // Two keys are a majority: acquired before the third reply.
    feed(&mut e, ms(11), &b"+OK\r\n:5000\r\n".repeat(2));
    assert_eq!(events(&mut e), std::vec![Event::Acquired { id }]);
    assert!(e.is_held(id));
    feed(&mut e, ms(11), b"+OK\r\n:5000\r\n");
    assert!(events(&mut e).is_empty());
    // Deadline: 10 ms + 5 s * 0.99 - 5 ms; next extension at 2.5 s.
    assert_eq!(e.poll_timeout(), Some(ms(1011)), "ping first");
    e.unlock(id, ms(20));
    let cmds = sent(&mut e);
    assert_eq!(names(&cmds), [&b"EVALSHA"[..]; 3]);
    feed(&mut e, ms(21), &b":1\r\n".repeat(3));
    assert_eq!(events(&mut e), std::vec![Event::Released { id }]);
    assert_eq!(e.lock_count(), 0);
    assert!(e.is_idle());
}

#[test]
fn try_lock_fails_on_majority_refused_and_releases_what_it_got() {
    let (mut e, id) = requested(LockMode::Try);
    feed(
        &mut e,
        ms(1),
        b"+OK\r\n:5000\r\n_\r\n:3000\r\n_\r\n:3000\r\n",
    );
    let ev = events(&mut e);
    assert_eq!(ev, std::vec![Event::NotLocked { id }]);
    let cmds = sent(&mut e);
    assert_eq!(
        names(&cmds),
        [&b"EVALSHA"[..]],
        "release of the one key we got"
    );
    assert_eq!(&cmds[0][3], b"rueidislock:0:a");
    e.unlock(id, ms(2));
    feed(&mut e, ms(3), b":1\r\n");
    assert_eq!(events(&mut e), std::vec![Event::Released { id }]);
    assert_eq!(e.lock_count(), 0);
}

#[test]
fn waiter_retries_on_invalidation_and_falls_back_to_holder_ttl() {
    let (mut e, id) = requested(LockMode::Wait);
    feed(&mut e, ms(1), &b"_\r\n:3000\r\n".repeat(3));
    assert!(events(&mut e).is_empty());
    assert!(sent(&mut e).is_empty(), "waits");
    // The fallback timer sits at the holder's remaining TTL (after the ping).
    e.handle_timeout(ms(1001));
    assert_eq!(names(&sent(&mut e)), [&b"PING"[..]]);
    feed(&mut e, ms(1002), b"+PONG\r\n");
    assert_eq!(e.poll_timeout(), Some(ms(2002)));
    e.handle_timeout(ms(2002));
    sent(&mut e);
    feed(&mut e, ms(2003), b"+PONG\r\n");
    assert_eq!(e.poll_timeout(), Some(ms(3001)));
    feed(&mut e, ms(50), &invalidate("rueidislock:1:a"));
    let cmds = sent(&mut e);
    assert_eq!(names(&cmds).len(), 6, "retried at once");
    feed(&mut e, ms(51), &b"+OK\r\n:5000\r\n".repeat(3));
    assert_eq!(events(&mut e), std::vec![Event::Acquired { id }]);
}

#[test]
fn invalidations_for_other_names_and_prefixes_are_ignored() {
    let (mut e, _id) = requested(LockMode::Wait);
    feed(&mut e, ms(1), &b"_\r\n:3000\r\n".repeat(3));
    feed(&mut e, ms(2), &invalidate("rueidislock:1:b"));
    feed(&mut e, ms(2), &invalidate("other:1:a"));
    feed(&mut e, ms(2), &invalidate("garbage"));
    assert!(sent(&mut e).is_empty());
}

#[test]
fn deleted_keys_make_the_holder_lose_after_one_round_trip() {
    let mut e = ready(Config::default());
    let id = acquired(&mut e, "a", ms(0));
    for i in 0..3 {
        feed(
            &mut e,
            ms(100),
            &invalidate(&std::format!("rueidislock:{i}:a")),
        );
    }
    let cmds = sent(&mut e);
    assert_eq!(names(&cmds), [&b"EVALSHA"[..]; 3], "one re-check per key");
    feed(&mut e, ms(101), b"*2\r\n:0\r\n:0\r\n*2\r\n:0\r\n:0\r\n");
    assert_eq!(
        events(&mut e),
        std::vec![Event::Lost {
            id,
            reason: LostReason::KeysChanged
        }]
    );
    assert!(!e.is_held(id));
}

#[test]
fn shortened_ttl_is_refreshed_and_the_lease_follows_the_server() {
    let mut e = ready(Config::default());
    let id = acquired(&mut e, "a", ms(0));
    feed(&mut e, ms(100), &invalidate("rueidislock:0:a"));
    let cmds = sent(&mut e);
    // refresh_below = 5000 - 2500 / 2
    assert_eq!(&cmds[0][5..], [b"5000".to_vec(), b"3750".to_vec()]);
    feed(&mut e, ms(101), b"*2\r\n:5000\r\n:1\r\n");
    assert!(e.is_held(id));
    assert!(events(&mut e).is_empty());
}

#[test]
fn lease_runs_out_without_extension_replies() {
    let config = Config {
        validity: Duration::from_millis(1000),
        ..Config::default()
    };
    let mut e = ready(config);
    let id = acquired(&mut e, "a", ms(0));
    e.handle_timeout(ms(500));
    let cmds = sent(&mut e);
    assert_eq!(names(&cmds).iter().filter(|c| **c == b"EVALSHA").count(), 3);
    // 1000 * 0.99 - 5 = 985 ms
    e.handle_timeout(ms(984));
    assert!(e.is_held(id));
    e.handle_timeout(ms(985));
    assert_eq!(
        events(&mut e),
        std::vec![Event::Lost {
            id,
            reason: LostReason::Expired
        }]
    );
}

#[test]
fn extension_moves_the_deadline_from_its_send_time() {
    let config = Config {
        validity: Duration::from_millis(1000),
        ..Config::default()
    };
    let mut e = ready(config);
    let id = acquired(&mut e, "a", ms(0));
    e.handle_timeout(ms(500));
    sent(&mut e);
    feed(&mut e, ms(510), &b"*2\r\n:1000\r\n:1\r\n".repeat(3));
    e.handle_timeout(ms(1400));
    assert!(e.is_held(id), "deadline is now 500 + 985 ms");
    assert!(events(&mut e).is_empty());
}

#[test]
fn noscript_falls_back_to_eval() {
    let mut e = ready(Config::default());
    let id = acquired(&mut e, "a", ms(0));
    e.unlock(id, ms(1));
    sent(&mut e);
    feed(
        &mut e,
        ms(2),
        &b"-NOSCRIPT No matching script\r\n".repeat(3),
    );
    let cmds = sent(&mut e);
    assert_eq!(names(&cmds), [&b"EVAL"[..]; 3]);
    assert_eq!(cmds[0][1], scripts::RELEASE.as_bytes());
    feed(&mut e, ms(3), &b":1\r\n".repeat(3));
    assert_eq!(events(&mut e), std::vec![Event::Released { id }]);
}

#[test]
fn local_waiter_is_pipelined_behind_the_release() {
    let mut e = ready(Config::default());
    let a = acquired(&mut e, "a", ms(0));
    let b = e.lock("a", LockMode::Wait, ms(1)).unwrap();
    assert!(sent(&mut e).is_empty(), "no attempt while held locally");
    e.unlock(a, ms(2));
    let cmds = sent(&mut e);
    assert_eq!(
        names(&cmds),
        [
            &b"EVALSHA"[..],
            b"EVALSHA",
            b"EVALSHA",
            b"SET",
            b"PTTL",
            b"SET",
            b"PTTL",
            b"SET",
            b"PTTL"
        ]
    );
    feed(&mut e, ms(3), &b":1\r\n".repeat(3));
    feed(&mut e, ms(3), &b"+OK\r\n:5000\r\n".repeat(3));
    assert_eq!(
        events(&mut e),
        std::vec![Event::Released { id: a }, Event::Acquired { id: b }]
    );
}

#[test]
fn local_waiters_are_served_in_order() {
    let mut e = ready(Config::default());
    let a = acquired(&mut e, "a", ms(0));
    let b = e.lock("a", LockMode::Wait, ms(1)).unwrap();
    let c = e.lock("a", LockMode::Wait, ms(2)).unwrap();
    e.unlock(a, ms(3));
    sent(&mut e);
    feed(&mut e, ms(4), &b":1\r\n".repeat(3));
    feed(&mut e, ms(4), &b"+OK\r\n:5000\r\n".repeat(3));
    let ev = events(&mut e);
    assert!(ev.contains(&Event::Acquired { id: b }));
    assert!(!ev.contains(&Event::Acquired { id: c }));
    assert!(sent(&mut e).is_empty(), "c waits for b");
    e.unlock(b, ms(5));
    let cmds = sent(&mut e);
    assert_eq!(names(&cmds).iter().filter(|c| **c == b"SET").count(), 3);
}

#[test]
fn cancelled_attempt_releases_keys_that_arrive_later() {
    let (mut e, id) = requested(LockMode::Wait);
    e.unlock(id, ms(1));
    assert!(sent(&mut e).is_empty());
    feed(&mut e, ms(2), &b"+OK\r\n:5000\r\n".repeat(3));
    assert!(
        events(&mut e).is_empty(),
        "no Acquired for a cancelled request"
    );
    assert_eq!(names(&sent(&mut e)), [&b"EVALSHA"[..]; 3]);
    feed(&mut e, ms(3), &b":1\r\n".repeat(3));
    assert_eq!(events(&mut e), std::vec![Event::Released { id }]);
    assert_eq!(e.lock_count(), 0);
}

#[test]
fn disconnect_mid_acquire_releases_after_reconnect() {
    let (mut e, id) = requested(LockMode::Try);
    e.handle_disconnected(N0, ms(1));
    assert_eq!(
        events(&mut e),
        std::vec![Event::Failed {
            id,
            error: LockFailure::Unavailable {
                node: N0,
                error: None
            }
        }],
        "a lost connection is not \"someone else holds it\""
    );
    e.unlock(id, ms(1));
    assert_eq!(e.lock_count(), 1, "keys in doubt are remembered");
    e.handle_connected(N0, ms(2));
    sent(&mut e);
    feed(&mut e, ms(3), HELLO_7015);
    feed(&mut e, ms(3), b"+OK\r\n");
    let cmds = sent(&mut e);
    assert_eq!(
        names(&cmds)[1..],
        [&b"EVALSHA"[..]; 3],
        "tracking, then releases"
    );
    feed(&mut e, ms(4), &b":0\r\n".repeat(3));
    let ev = events(&mut e);
    assert!(ev.contains(&Event::Released { id }));
}

#[test]
fn holder_reverifies_after_reconnect() {
    let mut e = ready(Config::default());
    let id = acquired(&mut e, "a", ms(0));
    e.handle_disconnected(N0, ms(10));
    assert!(e.is_held(id), "the lease still stands");
    e.handle_connected(N0, ms(20));
    sent(&mut e);
    feed(&mut e, ms(21), HELLO_7015);
    feed(&mut e, ms(21), b"+OK\r\n");
    let cmds = sent(&mut e);
    assert_eq!(names(&cmds)[1..], [&b"EVALSHA"[..]; 3]);
    feed(&mut e, ms(22), &b"*2\r\n:0\r\n:0\r\n".repeat(3));
    let ev = events(&mut e);
    assert!(
        ev.contains(&Event::Lost {
            id,
            reason: LostReason::KeysChanged
        }),
        "{ev:?}"
    );
}

#[test]
fn flush_makes_holders_recheck_and_waiters_retry() {
    let mut e = ready(Config::default());
    let id = acquired(&mut e, "a", ms(0));
    feed(&mut e, ms(5), b">2\r\n$10\r\ninvalidate\r\n_\r\n");
    assert_eq!(names(&sent(&mut e)), [&b"EVALSHA"[..]; 3]);
    feed(&mut e, ms(6), &b"*2\r\n:0\r\n:0\r\n".repeat(2));
    assert_eq!(
        events(&mut e),
        std::vec![Event::Lost {
            id,
            reason: LostReason::KeysChanged
        }]
    );
}

#[test]
fn own_write_echo_is_not_news_without_noloop() {
    let config = Config {
        noloop: NoLoop::Off,
        ..Config::default()
    };
    let mut e = Engine::new(config, [7; 32]).unwrap();
    e.handle_connected(N0, ms(0));
    sent(&mut e);
    feed(&mut e, ms(0), HELLO_7015);
    assert_eq!(sent(&mut e)[0].len(), 4);
    feed(&mut e, ms(0), b"+OK\r\n");
    events(&mut e);
    let id = e.lock("a", LockMode::Wait, ms(0)).unwrap();
    sent(&mut e);
    let mut replies = Vec::new();
    for i in 0..3 {
        replies.extend_from_slice(b"+OK\r\n");
        replies.extend_from_slice(&invalidate(&std::format!("rueidislock:{i}:a")));
        replies.extend_from_slice(b":5000\r\n");
    }
    feed(&mut e, ms(1), &replies);
    assert_eq!(events(&mut e), std::vec![Event::Acquired { id }]);
    assert!(sent(&mut e).is_empty(), "echoes trigger no re-check");
    // A foreign change right after is news.
    feed(&mut e, ms(2), &invalidate("rueidislock:0:a"));
    assert_eq!(names(&sent(&mut e)), [&b"EVALSHA"[..]]);
}

#[test]
fn force_takes_over_and_local_holder_learns_it() {
    let mut e = ready(Config::default());
    let a = acquired(&mut e, "a", ms(0));
    let f = e.lock("a", LockMode::Force, ms(1)).unwrap();
    // The local holder loses at once, not one round trip later.
    assert!(!e.is_held(a));
    assert_eq!(
        events(&mut e),
        std::vec![Event::Lost {
            id: a,
            reason: LostReason::KeysChanged
        }]
    );
    let cmds = sent(&mut e);
    assert_eq!(cmds[0].len(), 5, "SET without NX");
    assert_eq!(
        names(&cmds),
        [
            &b"SET"[..],
            b"PTTL",
            b"SET",
            b"PTTL",
            b"SET",
            b"PTTL",
            b"EVALSHA",
            b"EVALSHA",
            b"EVALSHA"
        ],
        "the old holder's releases queue behind the overwrite"
    );
    e.unlock(a, ms(1));
    let mut replies = b"+OK\r\n:5000\r\n".repeat(3);
    replies.extend_from_slice(&b":0\r\n".repeat(3));
    feed(&mut e, ms(2), &replies);
    let ev = events(&mut e);
    assert!(ev.contains(&Event::Acquired { id: f }), "{ev:?}");
    assert!(ev.contains(&Event::Released { id: a }), "{ev:?}");
    assert!(e.is_held(f));
}

#[test]
fn try_lock_held_locally_is_refused_without_a_round_trip() {
    let mut e = ready(Config::default());
    let _a = acquired(&mut e, "a", ms(0));
    let t = e.lock("a", LockMode::Try, ms(1)).unwrap();
    assert_eq!(events(&mut e), std::vec![Event::NotLocked { id: t }]);
    assert!(sent(&mut e).is_empty());
}

#[test]
fn close_tells_holders_and_waiters_and_refuses_new_requests() {
    let mut e = ready(Config::default());
    let a = acquired(&mut e, "a", ms(0));
    let w = e.lock("a", LockMode::Wait, ms(1)).unwrap();
    e.close(ms(2));
    let ev = events(&mut e);
    assert!(ev.contains(&Event::Lost {
        id: a,
        reason: LostReason::Closed
    }));
    assert!(ev.contains(&Event::Closed { id: w }));
    assert_eq!(e.lock("b", LockMode::Wait, ms(3)), Err(LockError::Closed));
    assert!(!e.is_idle());
    feed(&mut e, ms(4), &b":1\r\n".repeat(3));
    assert!(e.is_idle());
}

#[test]
fn malformed_bytes_close_the_connection_and_keep_other_state() {
    let mut e = ready(Config::default());
    let id = acquired(&mut e, "a", ms(0));
    feed(&mut e, ms(1), b"?garbage\r\n");
    assert!(matches!(close_error(&mut e), NodeError::Protocol(_)));
    assert!(e.is_held(id), "the lease is unaffected until it runs out");
}

#[test]
fn reply_of_the_wrong_shape_is_a_protocol_error() {
    let (mut e, _) = requested(LockMode::Wait);
    feed(&mut e, ms(1), b":12\r\n");
    assert!(matches!(close_error(&mut e), NodeError::Protocol(_)));
}

#[test]
fn unresponsive_server_is_detected_by_ping() {
    let mut e = ready(Config::default());
    e.handle_timeout(ms(1000));
    assert_eq!(names(&sent(&mut e)), [&b"PING"[..]]);
    e.handle_timeout(ms(1999));
    assert!(events(&mut e).is_empty());
    e.handle_timeout(ms(2000));
    assert!(matches!(close_error(&mut e), NodeError::Unresponsive));
}

#[test]
fn caching_off_polls_every_try_next_after() {
    let config = Config {
        client_caching: false,
        ..Config::default()
    };
    let mut e = Engine::new(config, [7; 32]).unwrap();
    e.handle_connected(N0, ms(0));
    sent(&mut e);
    feed(&mut e, ms(0), HELLO_7015);
    assert!(sent(&mut e).is_empty(), "no tracking");
    events(&mut e);
    assert!(e.is_ready(N0));
    e.lock("a", LockMode::Wait, ms(0)).unwrap();
    sent(&mut e);
    feed(&mut e, ms(1), &b"_\r\n:3000\r\n".repeat(3));
    assert_eq!(e.poll_timeout(), Some(ms(21)));
    e.handle_timeout(ms(21));
    assert_eq!(names(&sent(&mut e)).len(), 6);
}

#[test]
fn absolute_ttls_use_the_wall_clock() {
    let config = Config {
        ttl_mode: TtlMode::Absolute,
        ..Config::default()
    };
    let mut e = ready(config);
    e.set_unix_time(ms(0), 1_700_000_000_000);
    e.lock("a", LockMode::Wait, ms(10)).unwrap();
    let cmds = sent(&mut e);
    assert_eq!(&cmds[0][4..], [b"PXAT".to_vec(), b"1700000005010".to_vec()]);
}

#[test]
fn same_seed_same_bytes() {
    let run = || {
        let mut e = ready(Config::default());
        e.lock("a", LockMode::Wait, ms(0)).unwrap();
        e.transmit(N0).to_vec()
    };
    assert_eq!(run(), run());
}

#[test]
fn waiter_racing_a_noscript_release_retries_when_the_release_lands() {
    let mut e = ready(Config::default());
    let a = acquired(&mut e, "a", ms(0));
    let b = e.lock("a", LockMode::Wait, ms(1)).unwrap();
    e.unlock(a, ms(2));
    sent(&mut e);
    // The scripts are gone: the releases fail, the pipelined SETs too.
    feed(
        &mut e,
        ms(3),
        &b"-NOSCRIPT No matching script\r\n".repeat(3),
    );
    feed(&mut e, ms(3), &b"_\r\n:4000\r\n".repeat(3));
    assert_eq!(names(&sent(&mut e)), [&b"EVAL"[..]; 3]);
    feed(&mut e, ms(4), &b":1\r\n".repeat(3));
    assert_eq!(events(&mut e), std::vec![Event::Released { id: a }]);
    assert_eq!(
        names(&sent(&mut e))
            .iter()
            .filter(|c| **c == b"SET")
            .count(),
        3,
        "retried at once, not at the old key's TTL"
    );
    feed(&mut e, ms(5), &b"+OK\r\n:5000\r\n".repeat(3));
    assert_eq!(events(&mut e), std::vec![Event::Acquired { id: b }]);
}

#[test]
fn local_handoff_passes_keys_without_a_round_trip_then_yields() {
    let config = Config {
        local_handoff: 2,
        ..Config::default()
    };
    let mut e = ready(config);
    let a = acquired(&mut e, "a", ms(0));
    let b = e.lock("a", LockMode::Wait, ms(1)).unwrap();
    let c = e.lock("a", LockMode::Wait, ms(1)).unwrap();
    let d = e.lock("a", LockMode::Wait, ms(1)).unwrap();
    e.unlock(a, ms(2));
    assert_eq!(
        events(&mut e),
        std::vec![Event::Acquired { id: b }, Event::Released { id: a }]
    );
    assert!(sent(&mut e).is_empty(), "no server round trip");
    assert!(e.is_held(b) && !e.is_held(a));
    e.unlock(b, ms(3));
    assert_eq!(
        events(&mut e),
        std::vec![Event::Acquired { id: c }, Event::Released { id: b }]
    );
    // The new holder keeps extending the same keys.
    e.handle_timeout(ms(2500));
    assert_eq!(
        names(&sent(&mut e))
            .iter()
            .filter(|n| **n == b"EVALSHA")
            .count(),
        3
    );
    feed(&mut e, ms(2501), b"+PONG\r\n");
    feed(&mut e, ms(2501), &b"*2\r\n:5000\r\n:1\r\n".repeat(3));
    assert!(e.is_held(c));
    // Budget spent: released to Redis, and d tries only once that landed.
    e.unlock(c, ms(2600));
    assert_eq!(names(&sent(&mut e)), [&b"EVALSHA"[..]; 3]);
    feed(&mut e, ms(2601), &b":1\r\n".repeat(3));
    assert_eq!(events(&mut e), std::vec![Event::Released { id: c }]);
    assert_eq!(
        names(&sent(&mut e))
            .iter()
            .filter(|n| **n == b"SET")
            .count(),
        3
    );
    feed(&mut e, ms(2602), &b"+OK\r\n:5000\r\n".repeat(3));
    assert_eq!(events(&mut e), std::vec![Event::Acquired { id: d }]);
}
