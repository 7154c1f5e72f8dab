//! The cost of an input does not grow with the number of requests: the
//! pump looks at the same few requests whether 10 or 1,000 others wait on
//! the same name, or hold locks of their own.

extern crate std;

use std::vec::Vec;

use super::tests::{acquired, events, feed, ms, names, ready, sent};
use super::*;

/// Requests the pump looked at while a held lock of `name` is released and
/// its oldest waiter takes it, with `waiters` waiting and `others` other
/// names held.
fn hand_over(waiters: usize, others: usize) -> usize {
    let mut e = ready(Config::default());
    for i in 0..others {
        acquired(&mut e, &std::format!("other{i}"), ms(0));
    }
    let holder = acquired(&mut e, "hot", ms(0));
    let queue: Vec<LockId> = (0..waiters)
        .map(|_| e.lock("hot", LockMode::Wait, ms(1)).unwrap())
        .collect();
    assert!(sent(&mut e).is_empty(), "waiters wait for the holder");
    let before = e.visits;
    e.unlock(holder, ms(2));
    let cmds = sent(&mut e);
    let evalsha = [&b"EVALSHA"[..]; 3];
    let attempt = [&b"SET"[..], b"PTTL", b"SET", b"PTTL", b"SET", b"PTTL"];
    if waiters == 0 {
        assert_eq!(names(&cmds), evalsha);
    } else {
        // The oldest waiter's attempt goes right behind the release.
        assert_eq!(names(&cmds), [&evalsha[..], &attempt[..]].concat());
    }
    feed(&mut e, ms(3), &b":1\r\n".repeat(3));
    feed(
        &mut e,
        ms(3),
        &b"+OK\r\n:5000\r\n".repeat(3 * waiters.min(1)),
    );
    let mut expected = std::vec![Event::Released { id: holder }];
    expected.extend(queue.first().map(|&id| Event::Acquired { id }));
    assert_eq!(events(&mut e), expected);
    assert!(e.poll_timeout().is_some());
    e.visits - before
}

#[test]
fn a_hand_over_on_a_hot_name_looks_at_a_few_requests() {
    let few = hand_over(10, 0);
    assert!(few <= 12, "{few} visits");
    assert_eq!(hand_over(1000, 0), few);
}

#[test]
fn a_release_looks_at_its_own_request_only() {
    let few = hand_over(0, 10);
    assert!(few <= 6, "{few} visits");
    assert_eq!(hand_over(0, 1000), few);
}
