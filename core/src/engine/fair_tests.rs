//! `Config::fair`: after a release to Redis, this locker's next attempt on
//! the name waits two measured round trips (capped at `try_next_after`).

extern crate std;

use std::boxed::Box;

use super::tests::{acquired_at, events, feed, invalidate, ms, names, ready, sent};
use super::*;

fn sets(e: &mut Engine) -> usize {
    names(&sent(e)).iter().filter(|c| **c == b"SET").count()
}

/// A ready engine (fair if `fair`) whose lock on `a` was answered 2 ms
/// after it was sent (a measured round trip of 2 ms), and a `Wait`
/// request queued behind it.
fn held_with_waiter(config: Config) -> (Box<Engine>, LockId, LockId) {
    let mut e = ready(config);
    let a = acquired_at(&mut e, "a", ms(0), ms(2));
    let b = e.lock("a", LockMode::Wait, ms(3)).unwrap();
    assert_eq!(sets(&mut e), 0, "a local holder blocks it");
    (e, a, b)
}

#[test]
fn off_the_waiter_attempts_right_behind_the_release() {
    let (mut e, a, _) = held_with_waiter(Config::default());
    e.unlock(a, ms(10));
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
}

#[test]
fn on_the_waiter_attempts_two_round_trips_after_the_unlock() {
    let (mut e, a, b) = held_with_waiter(Config::default().with_fair(true));
    e.unlock(a, ms(10));
    assert_eq!(names(&sent(&mut e)), [&b"EVALSHA"[..]; 3]);
    // Two round trips of 2 ms from the unlock: its timer says when.
    assert_eq!(e.poll_timeout(), Some(ms(14)));
    feed(&mut e, ms(11), &b":1\r\n".repeat(3));
    assert_eq!(events(&mut e), std::vec![Event::Released { id: a }]);
    assert_eq!(
        sets(&mut e),
        0,
        "the release landing does not end the pause"
    );
    e.handle_timeout(ms(13));
    assert_eq!(sets(&mut e), 0);
    e.handle_timeout(ms(14));
    assert_eq!(sets(&mut e), 3);
    feed(&mut e, ms(15), &b"+OK\r\n:5000\r\n".repeat(3));
    assert_eq!(events(&mut e), std::vec![Event::Acquired { id: b }]);
}

#[test]
fn a_request_made_right_after_the_unlock_waits_too_but_try_lock_does_not() {
    let mut e = ready(Config::default().with_fair(true));
    let a = acquired_at(&mut e, "a", ms(0), ms(2));
    e.unlock(a, ms(10));
    let c = e.lock("a", LockMode::Wait, ms(10)).unwrap();
    assert_eq!(names(&sent(&mut e)), [&b"EVALSHA"[..]; 3]);
    let t = e.lock("a", LockMode::Try, ms(10)).unwrap();
    assert_eq!(sets(&mut e), 3, "try_lock answers now");
    feed(&mut e, ms(11), &b":1\r\n".repeat(3));
    feed(&mut e, ms(12), &b"+OK\r\n:5000\r\n".repeat(3));
    assert_eq!(
        events(&mut e),
        std::vec![Event::Released { id: a }, Event::Acquired { id: t }]
    );
    e.unlock(t, ms(12));
    sent(&mut e);
    feed(&mut e, ms(12), &b":1\r\n".repeat(3));
    assert_eq!(events(&mut e), std::vec![Event::Released { id: t }]);
    // The try lock's release paused the name again (its round trip was
    // measured at 2 ms too): 12 + 4 ms.
    e.handle_timeout(ms(15));
    assert_eq!(sets(&mut e), 0);
    e.handle_timeout(ms(16));
    assert_eq!(sets(&mut e), 3);
    feed(&mut e, ms(17), &b"+OK\r\n:5000\r\n".repeat(3));
    assert_eq!(events(&mut e), std::vec![Event::Acquired { id: c }]);
}

#[test]
fn an_invalidation_during_the_pause_is_not_lost() {
    let (mut e, a, b) = held_with_waiter(Config::default().with_fair(true));
    e.unlock(a, ms(10));
    sent(&mut e);
    feed(&mut e, ms(11), &b":1\r\n".repeat(3));
    events(&mut e);
    // Another locker took and released a key meanwhile.
    feed(&mut e, ms(12), &invalidate("rueidislock:0:a"));
    assert_eq!(sets(&mut e), 0, "still paused");
    e.handle_timeout(ms(14));
    assert_eq!(sets(&mut e), 3);
    // Another locker holds it now: the waiter waits for its release ...
    feed(&mut e, ms(15), &b"$-1\r\n:3000\r\n".repeat(3));
    assert!(events(&mut e).is_empty());
    assert_eq!(sets(&mut e), 0);
    // ... and retries at once when it comes: the pause is over.
    feed(&mut e, ms(20), &invalidate("rueidislock:1:a"));
    assert_eq!(sets(&mut e), 3);
    feed(&mut e, ms(21), &b"+OK\r\n:5000\r\n".repeat(3));
    assert_eq!(events(&mut e), std::vec![Event::Acquired { id: b }]);
}

#[test]
fn the_pause_is_capped_at_try_next_after() {
    let mut e = ready(Config::default().with_fair(true));
    // A stalled reply: a 900 ms round trip.
    let a = acquired_at(&mut e, "a", ms(0), ms(900));
    let b = e.lock("a", LockMode::Wait, ms(900)).unwrap();
    e.unlock(a, ms(1000));
    assert_eq!(names(&sent(&mut e)), [&b"EVALSHA"[..]; 3]);
    feed(&mut e, ms(1001), &b":1\r\n".repeat(3));
    events(&mut e);
    e.handle_timeout(ms(1019));
    assert_eq!(sets(&mut e), 0);
    e.handle_timeout(ms(1020));
    assert_eq!(
        sets(&mut e),
        3,
        "paused for try_next_after (20 ms), no more"
    );
    feed(&mut e, ms(1021), &b"+OK\r\n:5000\r\n".repeat(3));
    assert_eq!(events(&mut e), std::vec![Event::Acquired { id: b }]);
}

#[test]
fn local_hand_offs_are_not_paused_the_release_that_ends_them_is() {
    let config = Config::default().with_fair(true).with_local_handoff(1);
    let (mut e, a, b) = held_with_waiter(config);
    let c = e.lock("a", LockMode::Wait, ms(3)).unwrap();
    e.unlock(a, ms(10));
    assert_eq!(
        events(&mut e),
        std::vec![Event::Acquired { id: b }, Event::Released { id: a }]
    );
    assert!(sent(&mut e).is_empty(), "handed off, not released");
    // Budget spent: released to Redis; c waits for it to land, then for
    // the pause (two round trips of 2 ms from the unlock at 20 ms).
    e.unlock(b, ms(20));
    assert_eq!(names(&sent(&mut e)), [&b"EVALSHA"[..]; 3]);
    feed(&mut e, ms(21), &b":1\r\n".repeat(3));
    assert_eq!(events(&mut e), std::vec![Event::Released { id: b }]);
    assert_eq!(sets(&mut e), 0);
    e.handle_timeout(ms(24));
    assert_eq!(sets(&mut e), 3);
    feed(&mut e, ms(25), &b"+OK\r\n:5000\r\n".repeat(3));
    assert_eq!(events(&mut e), std::vec![Event::Acquired { id: c }]);
}

#[test]
fn a_request_made_after_the_release_landed_waits_too() {
    let mut e = ready(Config::default().with_fair(true));
    let a = acquired_at(&mut e, "a", ms(0), ms(2));
    e.unlock(a, ms(10));
    sent(&mut e);
    feed(&mut e, ms(11), &b":1\r\n".repeat(3));
    assert_eq!(events(&mut e), std::vec![Event::Released { id: a }]);
    assert_eq!(e.lock_count(), 0, "no request of the name is left");
    // A release of another name does not pause this one.
    let o = e.lock("other", LockMode::Wait, ms(11)).unwrap();
    assert_eq!(sets(&mut e), 3);
    // Asked again after its release landed (as `unlock().await` then
    // `lock()` does): still paused until 10 + 4 ms.
    let b = e.lock("a", LockMode::Wait, ms(12)).unwrap();
    assert_eq!(sets(&mut e), 0);
    e.handle_timeout(ms(14));
    assert_eq!(sets(&mut e), 3);
    feed(&mut e, ms(15), &b"+OK\r\n:5000\r\n".repeat(6));
    assert_eq!(
        events(&mut e),
        std::vec![Event::Acquired { id: o }, Event::Acquired { id: b }]
    );
}
