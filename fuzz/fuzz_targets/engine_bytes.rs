//! The engine fed arbitrary server bytes on node 1 after a valid handshake,
//! with locks in various states. Two instances, `m = 2`: keys 0 and 2 of
//! every lock live on node 0, which answers honestly, so garbage on node 1
//! must never panic the engine nor cost the held lock.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tracklock_core::{Config, Engine, Event, Instant, LockMode, NodeId, Topology};

const HELLO: &[u8] = b"%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n$5\r\nproto\r\n:3\r\n$2\r\nid\r\n:3\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n";
const N0: NodeId = NodeId(0);
const N1: NodeId = NodeId(1);

fn ms(n: u64) -> Instant {
    Instant::from_nanos(n * 1_000_000)
}

fn drain(e: &mut Engine, node: NodeId) -> Vec<u8> {
    let b = e.transmit(node).to_vec();
    e.consume_transmit(node, b.len());
    b
}

/// Answers every command node 0 was sent, honestly enough: SET -> OK,
/// PTTL -> 5000, extend -> [5000, 1], release -> 1, PING -> PONG.
fn answer_node0(e: &mut Engine, now: Instant) {
    let sent = drain(e, N0);
    let mut rest = &sent[..];
    let mut reply = Vec::new();
    while let Ok(Some((frame, n))) = tracklock_core::resp::parse(rest) {
        rest = &rest[n..];
        let first = frame
            .as_aggregate()
            .and_then(|a| a.iter().next())
            .and_then(|f| f.as_bytes())
            .unwrap_or_default()
            .to_vec();
        let script_release = frame
            .as_aggregate()
            .and_then(|a| a.iter().nth(1))
            .and_then(|f| f.as_bytes())
            .is_some_and(|b| b.len() > 60 && b.windows(3).any(|w| w == b"DEL"));
        match &first[..] {
            b"SET" => reply.extend_from_slice(b"+OK\r\n"),
            b"PTTL" => reply.extend_from_slice(b":5000\r\n"),
            b"PING" => reply.extend_from_slice(b"+PONG\r\n"),
            b"EVALSHA" => reply.extend_from_slice(b"-NOSCRIPT No matching script\r\n"),
            b"EVAL" if script_release => reply.extend_from_slice(b":1\r\n"),
            b"EVAL" => reply.extend_from_slice(b"*2\r\n:5000\r\n:1\r\n"),
            b"HELLO" => reply.extend_from_slice(HELLO),
            _ => reply.extend_from_slice(b"+OK\r\n"),
        }
    }
    if !reply.is_empty() {
        e.handle_bytes(N0, now, &reply);
    }
}

fuzz_target!(|data: &[u8]| {
    let config = Config::default().with_topology(Topology::Instances(2));
    let mut e = Engine::new(config, [3; 32]).unwrap();
    for node in [N0, N1] {
        e.handle_connected(node, ms(0));
        drain(&mut e, node);
        e.handle_bytes(node, ms(0), HELLO);
        drain(&mut e, node);
        e.handle_bytes(node, ms(0), b"+OK\r\n");
    }
    // A held lock, a waiter on it, and a lock in flight on another name.
    let held = e.lock("a", LockMode::Wait, ms(1)).unwrap();
    let _waiter = e.lock("a", LockMode::Wait, ms(1)).unwrap();
    let _pending = e.lock("b", LockMode::Wait, ms(1)).unwrap();
    answer_node0(&mut e, ms(2));
    while e.poll_event().is_some() {}
    assert!(e.is_held(held));
    let mut now = 2u64;
    for chunk in data.chunks(13) {
        // Stay well inside the lease: extensions are not what this tests.
        if now < 2_000 {
            now += u64::from(chunk[0] % 8);
        }
        e.handle_bytes(N1, ms(now), chunk);
        if chunk[0] & 0x80 != 0 {
            e.handle_timeout(ms(now));
        }
        let _ = drain(&mut e, N1);
        answer_node0(&mut e, ms(now));
        while let Some(ev) = e.poll_event() {
            match ev {
                Event::Lost { id, .. } if id == held => {
                    panic!("garbage on node 1 cost a lock held on node 0")
                }
                Event::CloseConnection { node, .. } if node == N1 => {
                    e.handle_connected(N1, ms(now));
                    drain(&mut e, N1);
                    e.handle_bytes(N1, ms(now), HELLO);
                    e.handle_bytes(N1, ms(now), b"+OK\r\n");
                }
                _ => {}
            }
        }
        let _ = e.poll_timeout();
    }
    assert!(e.is_held(held), "the lock held on node 0 survives");
});
