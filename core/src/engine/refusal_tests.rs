//! Error replies, slow replies and refused handshakes, on scripted bytes:
//! every request ends with the truth.

extern crate std;

use std::vec::Vec;

use super::tests::{acquired, events, feed, ms, names, ready, requested, sent, HELLO_7015, N0};
use super::*;
use crate::{Command, LockFailure, ServerError};

const OOM: &[u8] = b"-OOM command not allowed when used memory > 'maxmemory'.\r\n";
const LOADING: &[u8] = b"-LOADING Redis is loading the dataset in memory\r\n";
const NOPERM: &[u8] = b"-NOPERM this user has no permissions to run the 'evalsha' command\r\n";

/// Replies `set` to each of the three `SET`s, and `pttl` to each `PTTL`.
fn replies(set: [&[u8]; 3], pttl: [&[u8]; 3]) -> Vec<u8> {
    let mut v = Vec::new();
    for i in 0..3 {
        v.extend_from_slice(set[i]);
        v.extend_from_slice(pttl[i]);
    }
    v
}

fn refused(id: LockId, command: Command, message: &[u8]) -> Event {
    let text = core::str::from_utf8(&message[1..message.len() - 2]).unwrap();
    Event::Failed {
        id,
        error: LockFailure::Refused(ServerError {
            node: N0,
            command,
            message: Text::from_str_truncated(text),
        }),
    }
}

#[test]
fn an_error_reply_to_set_is_not_someone_else_holding_it() {
    for mode in [LockMode::Try, LockMode::Force, LockMode::Wait] {
        let (mut e, id) = requested(mode);
        feed(&mut e, ms(1), &replies([OOM; 3], [b":-2\r\n"; 3]));
        assert_eq!(
            events(&mut e),
            std::vec![refused(id, Command::Set, OOM)],
            "{mode:?}"
        );
        e.unlock(id, ms(2));
        assert!(sent(&mut e).is_empty(), "nothing of ours to release");
        assert_eq!(events(&mut e), std::vec![Event::Released { id }]);
    }
}

#[test]
fn not_locked_needs_a_holder_seen_on_enough_keys() {
    // One key held by someone else, two refused: no majority was ever
    // possible because of the refusals, so the refusal is the answer.
    let (mut e, id) = requested(LockMode::Try);
    feed(
        &mut e,
        ms(1),
        &replies(
            [b"$-1\r\n"[..].as_ref(), OOM, OOM],
            [b":4000\r\n", b":-2\r\n", b":-2\r\n"],
        ),
    );
    assert_eq!(events(&mut e), std::vec![refused(id, Command::Set, OOM)]);

    // Two keys held by someone else: that is `NotLocked`, whatever the third.
    let (mut e, id) = requested(LockMode::Try);
    feed(
        &mut e,
        ms(1),
        &replies(
            [b"$-1\r\n", b"$-1\r\n", OOM],
            [b":4000\r\n", b":4000\r\n", b":-2\r\n"],
        ),
    );
    assert_eq!(events(&mut e), std::vec![Event::NotLocked { id }]);
}

#[test]
fn a_refused_pttl_fails_the_attempt_and_releases_the_key() {
    let (mut e, id) = requested(LockMode::Try);
    let noperm_pttl: &[u8] = b"-NOPERM this user has no permissions to run the 'pttl' command\r\n";
    feed(
        &mut e,
        ms(1),
        &replies([b"+OK\r\n"; 3], [noperm_pttl, noperm_pttl, b":5000\r\n"]),
    );
    assert_eq!(
        events(&mut e),
        std::vec![refused(id, Command::Pttl, noperm_pttl)]
    );
    assert_eq!(
        names(&sent(&mut e)),
        [&b"EVALSHA"[..]; 3],
        "every key we wrote is released"
    );
}

#[test]
fn transient_refusals_back_off_while_lock_waits_and_end_try_lock() {
    let mut e = ready(Config::default());
    let t = e.lock("t", LockMode::Try, ms(0)).unwrap();
    sent(&mut e);
    feed(&mut e, ms(1), &replies([LOADING; 3], [LOADING; 3]));
    assert_eq!(events(&mut e), std::vec![refused(t, Command::Set, LOADING)]);

    let id = e.lock("a", LockMode::Wait, ms(10)).unwrap();
    let mut now = 10;
    let mut gaps = Vec::new();
    for _ in 0..8 {
        let cmds = sent(&mut e);
        assert_eq!(names(&cmds).iter().filter(|c| **c == b"SET").count(), 3);
        feed(&mut e, ms(now), &replies([LOADING; 3], [LOADING; 3]));
        assert!(events(&mut e).is_empty(), "lock() waits through LOADING");
        let at = e.poll_timeout().expect("a retry is scheduled");
        let gap = at.saturating_duration_since(ms(now));
        assert!(sent(&mut e).is_empty(), "no retry before the backoff");
        gaps.push(gap);
        now += u64::try_from(gap.as_millis()).unwrap() + 1;
        e.handle_timeout(ms(now));
    }
    // try_next_after (20 ms) doubling to 1 s, each in its upper half.
    for (i, g) in gaps.iter().enumerate() {
        let full = Duration::from_millis(20 << i.min(16)).min(BACKOFF_MAX);
        assert!(*g >= full / 2 && *g <= full, "retry {i}: {g:?} vs {full:?}");
    }
    assert!(gaps[7] >= Duration::from_millis(500), "{gaps:?}");
    sent(&mut e);
    feed(
        &mut e,
        ms(now),
        &replies([b"+OK\r\n"; 3], [b":5000\r\n"; 3]),
    );
    assert_eq!(events(&mut e), std::vec![Event::Acquired { id }]);
}

#[test]
fn a_slow_reply_never_fails_an_attempt() {
    // The server (or this process) is slow: 2 s for the replies, far past
    // `try_next_after`. The attempt ends with the replies, not a timer.
    let mut e = ready(Config::default());
    let f = e.lock("f", LockMode::Force, ms(0)).unwrap();
    let t = e.lock("t", LockMode::Try, ms(0)).unwrap();
    sent(&mut e);
    assert!(
        e.poll_timeout().is_none_or(|at| at >= ms(1000)),
        "no attempt timer"
    );
    e.handle_timeout(ms(500));
    assert!(events(&mut e).is_empty());
    let mut r = replies([b"+OK\r\n"; 3], [b":5000\r\n"; 3]);
    r.extend_from_slice(&replies([b"+OK\r\n"; 3], [b":5000\r\n"; 3]));
    // The ping the idle-looking connection sent at 1 s is answered too.
    e.handle_timeout(ms(1000));
    if names(&sent(&mut e)) == [&b"PING"[..]] {
        r.extend_from_slice(b"+PONG\r\n");
    }
    feed(&mut e, ms(1500), &r);
    assert_eq!(
        events(&mut e),
        std::vec![Event::Acquired { id: f }, Event::Acquired { id: t }]
    );
}

#[test]
fn a_majority_that_comes_after_the_lease_is_too_slow_not_not_locked() {
    let config = Config {
        validity: Duration::from_millis(100),
        ping_interval: Duration::from_secs(10),
        ..Config::default()
    };
    let mut e = ready(config);
    let id = e.lock("a", LockMode::Force, ms(0)).unwrap();
    sent(&mut e);
    feed(&mut e, ms(200), &replies([b"+OK\r\n"; 3], [b":100\r\n"; 3]));
    assert_eq!(
        events(&mut e),
        std::vec![Event::Failed {
            id,
            error: LockFailure::TooSlow
        }]
    );
}

#[test]
fn a_refused_release_is_reported_before_released() {
    let mut e = ready(Config::default());
    let id = acquired(&mut e, "a", ms(0));
    e.unlock(id, ms(1));
    assert_eq!(names(&sent(&mut e)), [&b"EVALSHA"[..]; 3]);
    let noperm: &[u8] = b"-NOPERM this user has no permissions to run the 'del' command\r\n";
    feed(&mut e, ms(2), &noperm.repeat(3));
    let ev = events(&mut e);
    assert_eq!(
        ev,
        std::vec![
            Event::NotReleased {
                id,
                error: ServerError {
                    node: N0,
                    command: Command::Release,
                    message: Text::from_str_truncated(
                        "NOPERM this user has no permissions to run the 'del' command"
                    ),
                }
            },
            Event::Released { id }
        ]
    );
    assert!(
        sent(&mut e).is_empty(),
        "a permanent refusal is not retried"
    );
}

#[test]
fn a_transiently_refused_release_is_retried_and_then_ok() {
    let mut e = ready(Config::default());
    let id = acquired(&mut e, "a", ms(0));
    e.unlock(id, ms(1));
    sent(&mut e);
    feed(&mut e, ms(2), &LOADING.repeat(3));
    assert!(events(&mut e).is_empty());
    assert!(sent(&mut e).is_empty(), "not at once");
    let at = e.poll_timeout().unwrap();
    assert!(at > ms(2) && at <= ms(30), "{at:?}");
    e.handle_timeout(at);
    assert_eq!(names(&sent(&mut e)), [&b"EVALSHA"[..]; 3]);
    feed(&mut e, at, &b":1\r\n".repeat(3));
    assert_eq!(events(&mut e), std::vec![Event::Released { id }]);
}

#[test]
fn a_refused_extension_is_the_reason_of_the_loss() {
    let mut e = ready(Config {
        ping_interval: Duration::from_secs(60),
        ..Config::default()
    });
    let id = acquired(&mut e, "a", ms(0));
    // The periodic extension at validity / 2 is refused on every key...
    e.handle_timeout(ms(2500));
    assert_eq!(names(&sent(&mut e)), [&b"EVALSHA"[..]; 3]);
    feed(&mut e, ms(2501), &NOPERM.repeat(3));
    assert!(events(&mut e).is_empty(), "still held until the deadline");
    // ...and so is every re-check, until the lease runs out.
    let mut now = 2501;
    while now < 6000 {
        let at = e.poll_timeout().unwrap();
        now = u64::try_from(at.saturating_duration_since(ms(0)).as_millis()).unwrap() + 1;
        e.handle_timeout(ms(now));
        let n = names(&sent(&mut e)).len();
        feed(&mut e, ms(now), &NOPERM.repeat(n));
        let ev = events(&mut e);
        if !ev.is_empty() {
            assert_eq!(
                ev,
                std::vec![Event::Lost {
                    id,
                    reason: LostReason::Refused(ServerError {
                        node: N0,
                        command: Command::Extend,
                        message: Text::from_str_truncated(
                            "NOPERM this user has no permissions to run the 'evalsha' command"
                        ),
                    })
                }]
            );
            assert!(now < 5000, "lost no later than the lease: {now}");
            return;
        }
    }
    panic!("never lost");
}

#[test]
fn single_mode_refuses_a_replica() {
    let mut e = Engine::new(Config::default(), [7; 32]).unwrap();
    e.handle_connected(N0, ms(0));
    sent(&mut e);
    let hello = std::str::from_utf8(HELLO_7015)
        .unwrap()
        .replace("$6\r\nmaster\r\n", "$7\r\nreplica\r\n");
    feed(&mut e, ms(0), hello.as_bytes());
    assert_eq!(
        events(&mut e),
        std::vec![Event::CloseConnection {
            node: N0,
            error: NodeError::Replica
        }]
    );
    assert!(!e.is_ready(N0));
}

#[test]
fn a_refused_handshake_ends_waiting_requests_and_a_good_one_clears_it() {
    let config = Config {
        password: Text::new("old"),
        ..Config::default()
    };
    let mut e = ready(config);
    let held = acquired(&mut e, "a", ms(0));
    let w = e.lock("a", LockMode::Wait, ms(1)).unwrap();
    assert!(sent(&mut e).is_empty(), "waits behind the local holder");
    e.handle_disconnected(N0, ms(2));
    // The password changed meanwhile.
    e.handle_connected(N0, ms(3));
    sent(&mut e);
    let wrongpass: &[u8] = b"-WRONGPASS invalid username-password pair or user is disabled.\r\n";
    feed(&mut e, ms(4), wrongpass);
    let error = NodeError::Handshake(Text::from_str_truncated(
        "WRONGPASS invalid username-password pair or user is disabled.",
    ));
    let ev = events(&mut e);
    assert!(
        ev.contains(&Event::Failed {
            id: w,
            error: LockFailure::Unavailable {
                node: N0,
                error: Some(error.clone())
            }
        }),
        "{ev:?}"
    );
    // A new request fails at once too; a try_lock says why.
    let w2 = e.lock("b", LockMode::Wait, ms(5)).unwrap();
    let t = e.lock("c", LockMode::Try, ms(5)).unwrap();
    let ev = events(&mut e);
    for id in [w2, t] {
        assert!(
            ev.contains(&Event::Failed {
                id,
                error: LockFailure::Unavailable {
                    node: N0,
                    error: Some(error.clone())
                }
            }),
            "{ev:?}"
        );
    }
    // Fixed on the server: the next handshake clears the refusal.
    e.handle_connected(N0, ms(6));
    sent(&mut e);
    feed(&mut e, ms(6), HELLO_7015);
    feed(&mut e, ms(6), b"+OK\r\n");
    events(&mut e);
    let ok = e.lock("d", LockMode::Wait, ms(7)).unwrap();
    let cmds = sent(&mut e);
    assert!(names(&cmds).contains(&&b"SET"[..]), "{:?}", names(&cmds));
    let _ = (held, ok);
}

#[test]
fn a_name_over_the_limit_is_refused_before_anything_is_sent() {
    let mut e = ready(Config::default());
    let long = "x".repeat(crate::MAX_NAME_LEN + 1);
    assert_eq!(
        e.lock(&long, LockMode::Wait, ms(0)),
        Err(LockError::NameTooLong)
    );
    assert!(sent(&mut e).is_empty());
    if crate::ALLOC {
        // (The no-alloc build stores names of up to `TEXT_CAP` bytes.)
        let at_limit = "x".repeat(crate::MAX_NAME_LEN);
        assert!(e.lock(&at_limit, LockMode::Try, ms(0)).is_ok());
        assert_eq!(names(&sent(&mut e)).len(), 6);
    }
}

#[test]
fn not_locked_waits_for_the_replies_that_decide_it() {
    // Instances: key 2's node is down, keys 0 and 1 are taken. The first
    // "taken" alone already puts the majority out of reach, but only the
    // second shows a holder on enough keys: the answer is `NotLocked`.
    let config = Config {
        topology: Topology::Instances(3),
        ..Config::default()
    };
    let mut e = Engine::new(config, [7; 32]).unwrap();
    for n in 0..2u16 {
        let node = NodeId(n);
        e.handle_connected(node, ms(0));
        let b = e.transmit(node).len();
        e.consume_transmit(node, b);
        e.handle_bytes(node, ms(0), HELLO_7015);
        e.handle_bytes(node, ms(0), b"+OK\r\n");
        let b = e.transmit(node).len();
        e.consume_transmit(node, b);
    }
    events(&mut e);
    let id = e.lock("x", LockMode::Try, ms(1)).unwrap();
    for n in 0..2u16 {
        let b = e.transmit(NodeId(n)).len();
        e.consume_transmit(NodeId(n), b);
    }
    e.handle_bytes(NodeId(0), ms(2), b"_\r\n:4000\r\n");
    assert!(events(&mut e).is_empty(), "undecided until key 1 answers");
    e.handle_bytes(NodeId(1), ms(2), b"_\r\n:4000\r\n");
    assert_eq!(events(&mut e), std::vec![Event::NotLocked { id }]);
}

#[test]
fn a_long_write_is_a_sign_of_life() {
    let mut e = ready(Config::default());
    // 1 s idle: a ping goes out (behind, say, 100 MiB still being written).
    e.handle_timeout(ms(1000));
    assert_eq!(names(&sent(&mut e)), [&b"PING"[..]]);
    // The server keeps reading our bytes for 3 s before it can answer.
    for t in (1100..=3000).step_by(100) {
        e.handle_written(N0, ms(t));
        e.handle_timeout(ms(t));
        assert!(
            events(&mut e).is_empty(),
            "dropped at {t} ms while the server was reading"
        );
    }
    feed(&mut e, ms(3100), b"+PONG\r\n");
    // Silence without writes is still caught.
    e.handle_timeout(ms(4100));
    assert_eq!(names(&sent(&mut e)), [&b"PING"[..]]);
    e.handle_timeout(ms(5200));
    assert_eq!(
        events(&mut e),
        std::vec![Event::CloseConnection {
            node: N0,
            error: NodeError::Unresponsive
        }]
    );
}
