//! The kit's server starter and admin client, independent of the lock
//! engine.

use std::net::TcpStream;
use std::time::Duration;

use tracklock_testkit::resp::Conn;
use tracklock_testkit::{free_port, lock_keys, Admin, RedisServer};

#[test]
fn harness_starts_and_stops_redis() {
    let server = RedisServer::start();
    let pid = server.pid().expect("running");
    assert!(server.is_running());
    assert!(server.addr().starts_with("127.0.0.1:"));
    let admin = server.admin();
    assert_eq!(admin.ping(), "PONG");
    admin.set("k", "v");
    assert_eq!(admin.get("k").as_deref(), Some(&b"v"[..]));
    assert!(admin.pexpire("k", 10_000));
    let ttl = admin.pttl("k");
    assert!((1..=10_000).contains(&ttl), "ttl {ttl}");
    assert_eq!(admin.keys("*"), vec!["k".to_owned()]);
    assert_eq!(admin.del(&["k", "missing"]), 1);
    assert!(!admin.exists("k"));
    admin.set("k", "v");
    admin.flushdb();
    assert!(admin.keys("*").is_empty());
    admin.script_flush();

    // Restart: same port, data gone, admin reconnects by itself.
    admin.set("k", "v");
    let addr = server.addr();
    server.restart();
    assert_eq!(server.addr(), addr);
    assert_ne!(server.pid(), Some(pid));
    // The first command may see the old connection die; it reconnects.
    let _ = admin.try_cmd::<String>("PING", &[]);
    assert_eq!(admin.ping(), "PONG");
    assert!(admin.get("k").is_none(), "restart must lose data");

    // Drop kills the process and frees the port.
    let dir = server.dir().to_owned();
    drop(server);
    assert!(
        TcpStream::connect(&addr).is_err(),
        "port still open after drop"
    );
    assert!(!dir.exists(), "temp dir left behind");
}

#[test]
fn harness_client_kill() {
    let server = RedisServer::start();
    let admin = server.admin();
    let victim = server.admin();
    let _: String = victim.cmd("CLIENT", &["SETNAME", "victim"]);
    assert!(admin.clients().iter().any(|c| c.name == "victim"));
    assert_eq!(admin.client_kill_by_name("victim"), 1);
    assert!(!admin.clients().iter().any(|c| c.name == "victim"));
    let other = server.admin();
    assert_eq!(other.ping(), "PONG");
    // SKIPME yes: the caller survives, the others are killed.
    assert!(admin.client_kill_normal() >= 1);
    assert_eq!(admin.ping(), "PONG");
    assert_ne!(admin.own_id(), 0);
}

#[test]
fn harness_requirepass() {
    let server = RedisServer::start_with(&["--requirepass", "s3cret"]);
    assert_eq!(server.password(), Some("s3cret"));
    assert_eq!(server.admin().ping(), "PONG");
    let no_auth = Admin::connect(&format!("redis://{}/0", server.addr()));
    let err = no_auth.try_cmd::<String>("GET", &["x"]).unwrap_err();
    assert!(err.to_string().contains("NOAUTH"), "{err}");
}

#[test]
fn harness_parallel_servers_get_distinct_ports() {
    let servers: Vec<RedisServer> = (0..4).map(|_| RedisServer::start()).collect();
    let mut ports: Vec<u16> = servers.iter().map(RedisServer::port).collect();
    ports.sort();
    ports.dedup();
    assert_eq!(ports.len(), 4);
    for s in &servers {
        assert_eq!(s.admin().ping(), "PONG");
    }
}

#[test]
fn harness_lock_keys() {
    assert_eq!(
        lock_keys("rueidislock", "n", 2),
        ["rueidislock:0:n", "rueidislock:1:n", "rueidislock:2:n"]
    );
    assert_eq!(lock_keys("p", "n", 1), ["p:0:n"]);
}

#[test]
fn harness_start_on_a_chosen_port_and_freeze() {
    let port = free_port().expect("free port");
    let server = RedisServer::try_start_on(port, &["--requirepass", "pw"]).expect("starts");
    assert_eq!(server.port(), port);
    assert_eq!(server.password(), Some("pw"));
    let admin = server.admin();
    assert_eq!(admin.ping(), "PONG");
    server.freeze();
    let mut con = Conn::connect(&server.addr()).expect("the kernel accepts for it");
    con.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let frozen = con.cmd::<String, _>(&["PING"]);
    server.thaw();
    assert!(frozen.is_err(), "a frozen server answered: {frozen:?}");
    assert_eq!(admin.ping(), "PONG");
    let taken = RedisServer::try_start_on(port, &[]);
    assert!(taken.is_err(), "two servers on port {port}");
}
