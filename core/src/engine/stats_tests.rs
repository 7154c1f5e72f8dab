//! The counters of `Engine::stats` follow what the engine did.

extern crate std;

use super::tests::{acquired, events, feed, ms, ready, sent};
use super::*;

#[test]
fn stats_count_connections_commands_attempts_and_outcomes() {
    let mut e = ready(Config {
        ping_interval: core::time::Duration::from_secs(60),
        ..Config::default()
    });
    let s = e.stats();
    assert_eq!((s.connections, s.handshakes), (1, 1));
    assert_eq!(s.commands, 2, "HELLO and CLIENT TRACKING");
    assert!(s.bytes_sent > 0);
    let id = acquired(&mut e, "a", ms(0));
    let s = e.stats();
    assert_eq!((s.requests, s.attempts, s.acquired), (1, 1, 1));
    assert_eq!(s.commands, 2 + 6, "SET and PTTL per key");
    assert_eq!(e.held_keys(id), 3);

    // A `Try` that finds two keys held: one failed attempt, NotLocked.
    let other = e.lock("b", LockMode::Try, ms(1)).unwrap();
    sent(&mut e);
    feed(
        &mut e,
        ms(2),
        b"+OK\r\n:5000\r\n_\r\n:3000\r\n_\r\n:3000\r\n",
    );
    assert_eq!(events(&mut e), std::vec![Event::NotLocked { id: other }]);
    sent(&mut e);
    feed(&mut e, ms(3), b":1\r\n");
    let s = e.stats();
    assert_eq!((s.attempts, s.failed_attempts, s.not_locked), (2, 1, 1));
    assert_eq!(e.held_keys(other), 0, "never held");

    // Extensions go unanswered (no ping comes first): the lease runs out.
    let mut lost = None;
    for _ in 0..50 {
        let t = e.poll_timeout().unwrap();
        e.handle_timeout(t);
        lost = events(&mut e)
            .into_iter()
            .find(|ev| matches!(ev, Event::Lost { .. }));
        if lost.is_some() {
            break;
        }
    }
    assert_eq!(
        lost,
        Some(Event::Lost {
            id,
            reason: LostReason::Expired
        })
    );
    let extensions = e.stats().extensions;
    assert!(extensions >= 3, "one extension per key sent, {extensions}");
    let s = e.stats();
    assert_eq!((s.lost.expired, s.lost.total()), (1, 1));

    // The unanswered connection is dropped: a disconnection.
    e.handle_disconnected(NodeId(0), ms(60_001));
    assert_eq!(e.stats().disconnections, 1);
    let before = e.stats().bytes_sent;
    e.handle_connected(NodeId(0), ms(60_002));
    let hello = e.transmit(NodeId(0)).len() as u64;
    e.consume_transmit(NodeId(0), usize::MAX);
    let s = e.stats();
    assert_eq!(s.bytes_sent, before + hello, "counted as taken");
    assert_eq!(s.connections, 2);
}
