//! Fenced acquisitions on scripted bytes: the read travels with the
//! acquisition, the raise needs a majority, and every failure is the truth.

extern crate std;

use std::boxed::Box;
use std::vec::Vec;

use super::tests::{events, feed, ms, names, ready, sent};
use super::*;
use crate::{Command, LockFailure};

fn fenced() -> Config {
    Config::default().with_fencing(true)
}

/// `{ttl, counter}`, the fenced read's reply.
fn read(ttl: i64, counter: i64) -> Vec<u8> {
    std::format!("*2\r\n:{ttl}\r\n:{counter}\r\n").into_bytes()
}

/// Replies `SET` with `set` and the read with `{5000, counters[i]}`.
fn acquire_replies(set: &[u8], counters: [i64; 3]) -> Vec<u8> {
    let mut v = Vec::new();
    for c in counters {
        v.extend_from_slice(set);
        v.extend_from_slice(&read(5000, c));
    }
    v
}

fn raise_replies(r: [&[u8]; 3]) -> Vec<u8> {
    r.concat()
}

/// A fenced request whose `SET`s and reads were sent.
fn requested(mode: LockMode) -> (Box<Engine>, LockId) {
    let mut e = ready(fenced());
    let id = e.lock("a", mode, ms(0)).unwrap();
    let cmds = sent(&mut e);
    assert_eq!(
        names(&cmds),
        [&b"SET"[..], b"EVAL", b"SET", b"EVAL", b"SET", b"EVAL"]
    );
    // The `SET` is the unfenced one; the read names the key and its counter.
    assert_eq!(cmds[0][1], b"rueidislock:0:a");
    assert_eq!(cmds[1][2], b"2");
    assert_eq!(cmds[1][3], b"rueidislock:0:a");
    assert_eq!(cmds[1][4], b"{rueidislock:0:a}:fence");
    (e, id)
}

#[test]
fn the_token_is_one_more_than_the_largest_counter_read() {
    let (mut e, id) = requested(LockMode::Wait);
    // Key 2's counter is missing (0).
    feed(&mut e, ms(1), &acquire_replies(b"+OK\r\n", [3, 7, 0]));
    assert!(events(&mut e).is_empty(), "not granted before the raise");
    assert_eq!(e.token(id), None);
    let cmds = sent(&mut e);
    assert_eq!(names(&cmds), [&b"EVALSHA"[..]; 3]);
    for (i, c) in cmds.iter().enumerate() {
        assert_eq!(c[2], b"2");
        assert_eq!(c[3], std::format!("rueidislock:{i}:a").as_bytes());
        assert_eq!(c[6], b"8", "raised to max + 1");
    }
    feed(&mut e, ms(2), &raise_replies([b":1\r\n"; 3]));
    assert_eq!(events(&mut e), std::vec![Event::Acquired { id }]);
    assert_eq!(e.token(id), Some(8));
}

#[test]
fn a_majority_of_raises_is_enough() {
    let (mut e, id) = requested(LockMode::Wait);
    feed(&mut e, ms(1), &acquire_replies(b"+OK\r\n", [1, 1, 1]));
    sent(&mut e);
    feed(&mut e, ms(2), b":1\r\n:1\r\n");
    assert_eq!(events(&mut e), std::vec![Event::Acquired { id }]);
    assert_eq!(e.token(id), Some(2));
}

#[test]
fn fewer_than_a_majority_raised_is_a_lost_attempt() {
    // Try: two keys overwritten between the read and the raise (a forced
    // takeover): someone else holds it.
    let (mut e, id) = requested(LockMode::Try);
    feed(&mut e, ms(1), &acquire_replies(b"+OK\r\n", [4, 4, 4]));
    sent(&mut e);
    feed(
        &mut e,
        ms(2),
        &raise_replies([b":1\r\n", b":-1\r\n", b":-1\r\n"]),
    );
    assert_eq!(events(&mut e), std::vec![Event::NotLocked { id }]);
    assert_eq!(e.token(id), None);
    let cmds = sent(&mut e);
    assert_eq!(
        names(&cmds),
        [&b"EVALSHA"[..]],
        "the one key we hold is released"
    );

    // Wait: the attempt is retried, and the token is read again.
    let (mut e, id) = requested(LockMode::Wait);
    feed(&mut e, ms(1), &acquire_replies(b"+OK\r\n", [4, 4, 4]));
    sent(&mut e);
    feed(
        &mut e,
        ms(2),
        &raise_replies([b":1\r\n", b":0\r\n", b":-1\r\n"]),
    );
    assert!(events(&mut e).is_empty(), "lock() keeps waiting");
    assert_eq!(names(&sent(&mut e)), [&b"EVALSHA"[..], b"EVALSHA"]);
    feed(&mut e, ms(3), b":1\r\n:0\r\n");
    let at = e.poll_timeout().expect("a retry is scheduled");
    e.handle_timeout(at);
    assert_eq!(
        names(&sent(&mut e)),
        [&b"SET"[..], b"EVAL", b"SET", b"EVAL", b"SET", b"EVAL"]
    );
    let now = at.saturating_add(Duration::from_millis(1));
    feed(&mut e, now, &acquire_replies(b"+OK\r\n", [5, 4, 9]));
    assert_eq!(sent(&mut e)[0][6], b"10");
    feed(&mut e, now, &raise_replies([b":1\r\n"; 3]));
    assert_eq!(events(&mut e), std::vec![Event::Acquired { id }]);
    assert_eq!(e.token(id), Some(10));
}

#[test]
fn a_key_lost_before_the_read_does_not_count() {
    // Key 0 was overwritten right after our SET (read says -1): the other
    // two are a majority and decide the token alone.
    let (mut e, id) = requested(LockMode::Wait);
    feed(&mut e, ms(1), &acquire_replies(b"+OK\r\n", [-1, 2, 3]));
    let cmds = sent(&mut e);
    assert_eq!(names(&cmds), [&b"EVALSHA"[..]; 2]);
    assert_eq!(cmds[0][6], b"4");
    feed(&mut e, ms(2), &raise_replies([b":1\r\n", b":1\r\n", b""]));
    assert_eq!(events(&mut e), std::vec![Event::Acquired { id }]);
    assert_eq!(e.token(id), Some(4));
}

#[test]
fn error_replies_are_refusals_never_someone_else() {
    const NOPERM: &[u8] = b"-NOPERM this user has no permissions to run the 'evalsha' command\r\n";
    for mode in [LockMode::Try, LockMode::Force] {
        let mut e = ready(fenced());
        let id = e.lock("a", mode, ms(0)).unwrap();
        sent(&mut e);
        feed(&mut e, ms(1), &acquire_replies(b"+OK\r\n", [0, 0, 0]));
        sent(&mut e);
        feed(&mut e, ms(2), &raise_replies([b":1\r\n", NOPERM, NOPERM]));
        match &events(&mut e)[..] {
            [Event::Failed {
                id: f,
                error: LockFailure::Refused(err),
            }] => {
                assert_eq!(*f, id);
                assert_eq!(err.command, Command::Fence);
                assert!(err.message.as_str().starts_with("NOPERM"));
            }
            other => panic!("{mode:?}: {other:?}"),
        }
    }
    // A counter that is not a number: the read script's error.
    let (mut e, id) = requested(LockMode::Try);
    let bad: &[u8] = b"-ERR tracklock: fencing counter is not a whole number\r\n";
    let mut v = Vec::new();
    for _ in 0..3 {
        v.extend_from_slice(b"+OK\r\n");
        v.extend_from_slice(bad);
    }
    feed(&mut e, ms(1), &v);
    match &events(&mut e)[..] {
        [Event::Failed {
            error: LockFailure::Refused(err),
            ..
        }] => assert_eq!(err.command, Command::Fence),
        other => panic!("{other:?}"),
    }
    assert_eq!(e.token(id), None);
}

#[test]
fn noscript_resends_the_raise_by_eval() {
    let (mut e, id) = requested(LockMode::Wait);
    feed(&mut e, ms(1), &acquire_replies(b"+OK\r\n", [0, 0, 0]));
    sent(&mut e);
    let noscript: &[u8] = b"-NOSCRIPT No matching script. Please use EVAL.\r\n";
    feed(&mut e, ms(2), &raise_replies([noscript; 3]));
    let cmds = sent(&mut e);
    assert_eq!(names(&cmds), [&b"EVAL"[..]; 3]);
    assert_eq!(cmds[0][6], b"1");
    feed(&mut e, ms(3), &raise_replies([b":1\r\n"; 3]));
    assert_eq!(events(&mut e), std::vec![Event::Acquired { id }]);
    assert_eq!(e.token(id), Some(1));
}

#[test]
fn fenced_locks_are_never_handed_off() {
    let mut e = ready(fenced().with_local_handoff(8));
    let a = e.lock("a", LockMode::Wait, ms(0)).unwrap();
    sent(&mut e);
    feed(&mut e, ms(1), &acquire_replies(b"+OK\r\n", [0, 0, 0]));
    sent(&mut e);
    feed(&mut e, ms(1), &raise_replies([b":1\r\n"; 3]));
    assert_eq!(events(&mut e), std::vec![Event::Acquired { id: a }]);
    let b = e.lock("a", LockMode::Wait, ms(2)).unwrap();
    assert!(sent(&mut e).is_empty());
    e.unlock(a, ms(3));
    assert!(events(&mut e).is_empty(), "no hand-off");
    let cmds = sent(&mut e);
    assert_eq!(
        names(&cmds),
        [
            &b"EVALSHA"[..],
            b"EVALSHA",
            b"EVALSHA",
            b"SET",
            b"EVAL",
            b"SET",
            b"EVAL",
            b"SET",
            b"EVAL"
        ],
        "released to Redis, the waiter acquires through it"
    );
    let mut v = b":1\r\n:1\r\n:1\r\n".to_vec();
    v.extend_from_slice(&acquire_replies(b"+OK\r\n", [1, 1, 1]));
    feed(&mut e, ms(4), &v);
    assert_eq!(events(&mut e), std::vec![Event::Released { id: a }]);
    assert_eq!(sent(&mut e)[0][6], b"2");
    feed(&mut e, ms(4), &raise_replies([b":1\r\n"; 3]));
    assert_eq!(events(&mut e), std::vec![Event::Acquired { id: b }]);
    assert_eq!(e.token(b), Some(2));
}

#[test]
fn unfenced_locks_have_no_token() {
    let mut e = ready(Config::default());
    let id = super::tests::acquired(&mut e, "a", ms(0));
    assert_eq!(e.token(id), None);
}

#[test]
fn keys_vanishing_before_the_raise_begin_a_try_again() {
    // A flush between our `SET` and our raise: nobody holds the name and
    // no node refused, so `try_lock` begins again instead of failing.
    let (mut e, id) = requested(LockMode::Try);
    feed(&mut e, ms(1), &acquire_replies(b"+OK\r\n", [2, 2, 2]));
    sent(&mut e);
    feed(&mut e, ms(2), &raise_replies([b":-2\r\n"; 3]));
    assert!(events(&mut e).is_empty(), "not a failure");
    assert_eq!(
        names(&sent(&mut e)),
        [&b"SET"[..], b"EVAL", b"SET", b"EVAL", b"SET", b"EVAL"],
        "a fresh attempt (nothing of ours left to release)"
    );
    feed(&mut e, ms(3), &acquire_replies(b"+OK\r\n", [0, 0, 2]));
    assert_eq!(sent(&mut e)[0][6], b"3");
    feed(&mut e, ms(3), &raise_replies([b":1\r\n"; 3]));
    assert_eq!(events(&mut e), std::vec![Event::Acquired { id }]);
    assert_eq!(e.token(id), Some(3));

    // Keys that keep vanishing: after two fresh attempts the request ends
    // (never as "held by someone else").
    let (mut e, id) = requested(LockMode::Force);
    for round in 0..3 {
        feed(&mut e, ms(1), &acquire_replies(b"+OK\r\n", [0, 0, 0]));
        assert_eq!(names(&sent(&mut e)), [&b"EVALSHA"[..]; 3]);
        feed(&mut e, ms(1), &raise_replies([b":-2\r\n"; 3]));
        let ev = events(&mut e);
        if round < 2 {
            assert!(ev.is_empty(), "round {round}: {ev:?}");
            assert_eq!(
                names(&sent(&mut e)).len(),
                6,
                "round {round}: a fresh attempt"
            );
        } else {
            match &ev[..] {
                [Event::Failed { id: f, error }] => {
                    assert_eq!(*f, id);
                    assert_eq!(*error, LockFailure::KeysVanished);
                }
                other => panic!("{other:?}"),
            }
        }
    }
}
