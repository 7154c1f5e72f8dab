//! Servers without `HELLO 3` (Redis 5, some proxies): with caching off the
//! engine falls back to a RESP2 handshake and locks as usual.

extern crate std;

use std::vec::Vec;

use super::tests::{events, feed, ms, names, sent};
use super::*;

fn resp2_config() -> Config {
    Config {
        client_caching: false,
        password: Text::new("pw"),
        client_name: Text::new("n"),
        database: 2,
        ..Config::default()
    }
}

fn args(cmd: &[Vec<u8>]) -> Vec<&str> {
    cmd.iter()
        .map(|a| core::str::from_utf8(a).unwrap())
        .collect()
}

#[test]
fn refused_hello_falls_back_to_resp2_with_caching_off() {
    let mut e = Engine::new(resp2_config(), [5; 32]).unwrap();
    e.handle_connected(NodeId(0), ms(0));
    assert_eq!(names(&sent(&mut e)), [&b"HELLO"[..], b"SELECT"]);
    feed(
        &mut e,
        ms(1),
        b"-ERR unknown command 'HELLO', with args beginning with: '3'\r\n-NOAUTH Authentication required.\r\n",
    );
    let cmds = sent(&mut e);
    let cmds: Vec<Vec<&str>> = cmds.iter().map(|c| args(c)).collect();
    assert_eq!(
        cmds,
        [
            std::vec!["AUTH", "pw"],
            std::vec!["CLIENT", "SETNAME", "n"],
            std::vec!["SELECT", "2"]
        ]
    );
    assert!(!e.is_ready(NodeId(0)));
    feed(&mut e, ms(2), b"+OK\r\n+OK\r\n+OK\r\n");
    assert_eq!(
        events(&mut e),
        std::vec![Event::NodeReady { node: NodeId(0) }]
    );

    // RESP2 replies: `$-1` is the null of a refused `SET NX`.
    let id = e.lock("a", LockMode::Wait, ms(3)).unwrap();
    sent(&mut e);
    feed(&mut e, ms(4), &b"+OK\r\n:5000\r\n".repeat(3));
    assert_eq!(events(&mut e), std::vec![Event::Acquired { id }]);
    let other = e.lock("b", LockMode::Try, ms(5)).unwrap();
    sent(&mut e);
    feed(&mut e, ms(6), &b"$-1\r\n:3000\r\n".repeat(3));
    assert_eq!(events(&mut e), std::vec![Event::NotLocked { id: other }]);

    // The next connection starts in RESP2.
    e.handle_disconnected(NodeId(0), ms(7));
    e.handle_connected(NodeId(0), ms(8));
    assert_eq!(names(&sent(&mut e)), [&b"AUTH"[..], b"CLIENT", b"SELECT"]);
}

#[test]
fn resp2_handshake_without_settings_is_a_ping() {
    let config = Config {
        client_caching: false,
        ..Config::default()
    };
    let mut e = Engine::new(config, [5; 32]).unwrap();
    e.handle_connected(NodeId(0), ms(0));
    sent(&mut e);
    feed(&mut e, ms(1), b"-NOPROTO unsupported protocol version\r\n");
    assert_eq!(names(&sent(&mut e)), [&b"PING"[..]]);
    feed(&mut e, ms(2), b"+PONG\r\n");
    assert!(e.is_ready(NodeId(0)));
}

#[test]
fn refused_hello_with_caching_on_says_to_turn_it_off() {
    let mut e = Engine::new(Config::default(), [5; 32]).unwrap();
    e.handle_connected(NodeId(0), ms(0));
    sent(&mut e);
    feed(&mut e, ms(1), b"-ERR unknown command 'HELLO'\r\n");
    let ev = events(&mut e);
    let [Event::CloseConnection { error, .. }] = &ev[..] else {
        panic!("{ev:?}")
    };
    assert!(matches!(error, NodeError::Resp3Unsupported(_)), "{error:?}");
    assert!(std::format!("{error}").contains("client_caching(false)"));
}
