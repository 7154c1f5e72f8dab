//! `follow_failover` (Redis Sentinel): a `READONLY` reply or a replica at
//! the handshake means the master is being replaced. The connection is
//! dropped and requests wait for the next one, where held keys are
//! verified again; without the option both stay refusals.

extern crate std;

use std::vec::Vec;

use super::tests::{acquired, events, feed, ms, names, ready, sent, HELLO_7015, N0};
use super::*;
use crate::{Command, LockFailure, LostReason, ServerError};

const READONLY: &[u8] = b"-READONLY You can't write against a read only replica.\r\n";

fn following() -> Config {
    Config::default().with_follow_failover(true)
}

/// Reconnects node 0 to a master and finishes the handshake.
fn reconnect(e: &mut Engine, now: Instant) {
    e.handle_disconnected(N0, now);
    e.handle_connected(N0, now);
    sent(e);
    feed(e, now, HELLO_7015);
    sent(e);
    feed(e, now, b"+OK\r\n");
    assert!(e.is_ready(N0));
}

#[test]
fn readonly_to_an_acquire_drops_the_connection_and_the_request_retries() {
    for mode in [LockMode::Wait, LockMode::Try] {
        let mut e = ready(following());
        let id = e.lock("a", mode, ms(0)).unwrap();
        sent(&mut e);
        feed(&mut e, ms(1), READONLY);
        assert_eq!(
            events(&mut e),
            std::vec![Event::CloseConnection {
                node: N0,
                error: NodeError::Replica
            }],
            "{mode:?}: no refusal reaches the request"
        );
        reconnect(&mut e, ms(2));
        let ev = events(&mut e);
        if mode == LockMode::Try {
            // The in-doubt keys are released before a new attempt; a
            // `Try` ends with the truth of the new master.
            assert!(
                !ev.iter().any(|e| matches!(
                    e,
                    Event::Failed {
                        error: LockFailure::Refused(_),
                        ..
                    }
                )),
                "{ev:?}"
            );
            continue;
        }
        assert!(
            !ev.iter().any(|e| matches!(e, Event::Failed { .. })),
            "{ev:?}"
        );
        let mut now = 2;
        // Releases of the in-doubt keys, then a new attempt, on the new
        // master; answer whatever comes until the lock is acquired.
        for _ in 0..50 {
            now += 50;
            e.handle_timeout(ms(now));
            let cmds = sent(&mut e);
            let mut replies = Vec::new();
            for c in names(&cmds) {
                replies.extend_from_slice(match c {
                    b"SET" => b"+OK\r\n",
                    b"PTTL" => b":5000\r\n",
                    _ => b":0\r\n",
                });
            }
            feed(&mut e, ms(now), &replies);
            if events(&mut e).contains(&Event::Acquired { id }) {
                return;
            }
        }
        panic!("not acquired on the new master");
    }
}

#[test]
fn without_the_option_readonly_is_a_refusal() {
    let mut e = ready(Config::default());
    let id = e.lock("a", LockMode::Wait, ms(0)).unwrap();
    sent(&mut e);
    let mut replies = Vec::new();
    for _ in 0..3 {
        replies.extend_from_slice(READONLY);
        replies.extend_from_slice(b":-2\r\n");
    }
    feed(&mut e, ms(1), &replies);
    let text = core::str::from_utf8(&READONLY[1..READONLY.len() - 2]).unwrap();
    assert_eq!(
        events(&mut e),
        std::vec![Event::Failed {
            id,
            error: LockFailure::Refused(ServerError {
                node: N0,
                command: Command::Set,
                message: Text::from_str_truncated(text),
            })
        }]
    );
}

#[test]
fn readonly_to_an_extension_makes_the_holder_verify_on_the_new_master() {
    let mut e = ready(following());
    let id = acquired(&mut e, "a", ms(0));
    // The extension (at validity / 2) is refused: the master was demoted.
    e.handle_timeout(ms(2500));
    let cmds = sent(&mut e);
    let names = names(&cmds);
    let first = names.iter().position(|c| *c == b"EVALSHA");
    let first = first.expect("the extension is sent");
    // Whatever precedes it (a ping) is answered normally.
    feed(&mut e, ms(2501), &b"+PONG\r\n".repeat(first));
    feed(&mut e, ms(2501), READONLY);
    assert_eq!(
        events(&mut e),
        std::vec![Event::CloseConnection {
            node: N0,
            error: NodeError::Replica
        }]
    );
    // The new master lacks the keys: the holder learns it there.
    reconnect(&mut e, ms(2600));
    let cmds = sent(&mut e);
    assert!(
        !cmds.is_empty(),
        "the held keys are verified on the new master"
    );
    let mut replies = Vec::new();
    for _ in &cmds {
        replies.extend_from_slice(b"*2\r\n:-2\r\n:0\r\n");
    }
    feed(&mut e, ms(2601), &replies);
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
fn a_replica_at_the_handshake_does_not_end_waiting_requests() {
    let mut e = Engine::new(following(), [7; 32]).unwrap();
    let id = e.lock("a", LockMode::Wait, ms(0)).unwrap();
    e.handle_connected(N0, ms(0));
    sent(&mut e);
    let hello = std::str::from_utf8(HELLO_7015)
        .unwrap()
        .replace("$6\r\nmaster\r\n", "$7\r\nreplica\r\n");
    feed(&mut e, ms(1), hello.as_bytes());
    assert_eq!(
        events(&mut e),
        std::vec![Event::CloseConnection {
            node: N0,
            error: NodeError::Replica
        }],
        "the request {id:?} keeps waiting for the master"
    );
    reconnect(&mut e, ms(2));
    let cmds = sent(&mut e);
    assert_eq!(names(&cmds).iter().filter(|c| **c == b"SET").count(), 3);
}
