//! The cluster and multi-instance harness itself, independent of the lock
//! engine: formation, routing, failovers, restarts, slot migrations,
//! divergent replicas, and what Redis 7 does to a tracking client of a
//! master that gets demoted.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracklock_testkit::{RedisCluster, RedisInstances, Role, SLOTS};

const KEYS: [&str; 3] = ["rueidislock:0:x", "rueidislock:1:x", "rueidislock:2:x"];

fn moved_code(r: tracklock_testkit::resp::Result<Option<Vec<u8>>>) -> Option<String> {
    r.err().and_then(|e| e.code().map(str::to_owned))
}

/// A fresh 3+3 cluster, the master `m` that owns `key` and its replica `r`.
fn cluster_around(key: &str) -> (RedisCluster, usize, usize) {
    let c = RedisCluster::start(3, 1);
    let m = c.owner_of(key);
    let r = c.replica_of(m).expect("every master has a replica");
    (c, m, r)
}

#[test]
fn cluster_forms_routes_and_migrates() {
    let t = Instant::now();
    let c = RedisCluster::start(3, 1);
    eprintln!("3+3 cluster formed in {:?}", t.elapsed());
    assert_eq!(c.len(), 6);
    assert_eq!(c.seeds().len(), 6);
    let roles: Vec<Role> = c.nodes().iter().map(|n| n.role).collect();
    assert_eq!(roles[..3], [Role::Master; 3]);
    assert_eq!(roles[3..], [Role::Replica; 3]);
    for m in 0..3 {
        assert_eq!(c.replica_of(m), Some(m + 3));
    }
    // Three masters share every slot.
    let map = c.slot_map();
    assert_eq!(map.len(), 3, "{map:?}");
    assert_eq!(map[0].0, 0);
    assert_eq!(map[2].1, SLOTS - 1);
    assert_eq!(c.master_addrs(), vec![c.addr(0), c.addr(1), c.addr(2)]);
    for i in 0..6 {
        let info: String = c.admin(i).cmd("CLUSTER", &["INFO"]);
        assert!(info.contains("cluster_state:ok"), "node {i}: {info}");
    }

    // Routing: set and get through the owner; anyone else answers MOVED.
    for (n, key) in KEYS.iter().enumerate() {
        let owner = c.owner_of(key);
        assert!(owner < 3);
        c.set(key, &format!("v{n}"));
        assert_eq!(c.get(key), Some(format!("v{n}").into_bytes()));
        assert_eq!(c.pttl(key), -1);
        assert_eq!(
            c.admin_for_key(key).get(key),
            Some(format!("v{n}").into_bytes())
        );
        let other = (owner + 1) % 3;
        let r = c.admin(other).try_cmd::<Option<Vec<u8>>>("GET", &[key]);
        assert_eq!(moved_code(r), Some("MOVED".into()), "{key} on node {other}");
        // A replica redirects too (no READONLY), but has the copy.
        let replica = c.replica_of(owner).expect("replica");
        let r = c.admin(replica).try_cmd::<Option<Vec<u8>>>("GET", &[key]);
        assert_eq!(moved_code(r), Some("MOVED".into()));
    }
    let key = KEYS[0];
    let replica = c.replica_of(c.owner_of(key)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.get_local(replica, key).unwrap().is_none() {
        assert!(Instant::now() < deadline, "replica never got {key}");
        std::thread::sleep(Duration::from_millis(10));
    }

    // Whole migration: the key moves, the old owner answers MOVED.
    let slot = c.slot_of(key);
    let from = c.owner_of(key);
    let to = (from + 1) % 3;
    let t = Instant::now();
    c.migrate_slot(slot, from, to);
    eprintln!("migrate_slot in {:?}", t.elapsed());
    assert_eq!(c.owner_of(key), to);
    assert_eq!(c.get(key), Some(b"v0".to_vec()));
    assert_eq!(c.admin(to).get(key), Some(b"v0".to_vec()));
    let r = c.admin(from).try_cmd::<Option<Vec<u8>>>("GET", &[key]);
    assert_eq!(moved_code(r), Some("MOVED".into()));

    // Held mid-migration: the source answers ASK for a moved key, the
    // routed helpers follow it; then the slot goes back.
    c.begin_migration(slot, to, from);
    assert_eq!(c.migrate_keys(slot, to, from), 1);
    let r = c.admin(to).try_cmd::<Option<Vec<u8>>>("GET", &[key]);
    assert_eq!(moved_code(r), Some("ASK".into()));
    assert_eq!(c.owner_of(key), to, "the map changes only at the end");
    assert_eq!(c.get(key), Some(b"v0".to_vec()));
    c.finish_migration(slot, from);
    assert_eq!(c.owner_of(key), from);
    assert_eq!(c.admin(from).get(key), Some(b"v0".to_vec()));
    assert!(c.del(key));
    assert!(!c.exists(key));
}

#[test]
fn cluster_kill_fails_over_and_restart_rejoins_as_replica() {
    let key = KEYS[1];
    let (c, m, r) = cluster_around(key);
    c.set(key, "v");
    let _: i64 = c.admin(m).cmd("WAIT", &["1", "5000"]);

    let t = Instant::now();
    c.kill(m);
    assert!(!c.is_running(m));
    let conf = c.dir(m).unwrap().join("nodes.conf");
    assert!(conf.exists(), "kill keeps nodes.conf");
    assert_eq!(c.role(m), Role::Down);
    let new = c.wait_for_failover_of(m);
    eprintln!(
        "failover after SIGKILL (node-timeout 1 s) in {:?}",
        t.elapsed()
    );
    assert_eq!(new, r);
    assert_eq!(c.role(r), Role::Master);
    assert_eq!(c.owner_of(key), r);
    assert_eq!(c.get(key), Some(b"v".to_vec()));
    assert_eq!(c.master_addrs().len(), 3);
    assert!(!c.master_addrs().contains(&c.addr(m)));

    let t = Instant::now();
    c.restart(m);
    assert!(c.is_running(m));
    let up = t.elapsed();
    c.wait_settled();
    eprintln!("restart: PING in {up:?}, settled in {:?}", t.elapsed());
    assert_eq!(c.role(m), Role::Replica, "old master comes back as replica");
    assert_eq!(c.replica_of(r), Some(m));
    assert_eq!(c.get_local(m, key).unwrap(), Some(b"v".to_vec()));
    let r2 = c.admin(m).try_cmd::<Option<Vec<u8>>>("GET", &[key]);
    assert_eq!(moved_code(r2), Some("MOVED".into()));

    // Drop kills every node and removes the directories.
    let seeds = c.seeds();
    let dirs: Vec<_> = (0..c.len()).map(|i| c.dir(i).unwrap().to_owned()).collect();
    drop(c);
    for a in &seeds {
        assert!(TcpStream::connect(a).is_err(), "{a} still open");
    }
    assert!(dirs.iter().all(|d| !d.exists()), "directories left behind");
}

#[test]
fn cluster_manual_failover_swaps_roles_and_divergent_replica() {
    let key = KEYS[2];
    let keep = "{rueidislock:2:x}keep"; // same slot
    let (c, m, r) = cluster_around(key);

    let t = Instant::now();
    c.manual_failover(r);
    eprintln!("manual failover in {:?}", t.elapsed());
    assert_eq!(c.role(r), Role::Master);
    assert_eq!(c.role(m), Role::Replica);
    assert_eq!(c.replica_of(r), Some(m));
    assert_eq!(c.owner_of(key), r);

    // Now r is master, m its replica: make m lack `key` only.
    c.set(key, "v");
    c.set(keep, "k");
    assert!(c.cmd_for_key::<i64>(keep, "PEXPIRE", &[keep, "60000"]) == 1);
    let _: i64 = c.admin(r).cmd("WAIT", &["1", "5000"]);
    c.make_replica_diverge_by_deleting(m, key);
    assert_eq!(c.get_local(m, key).unwrap(), None);
    assert_eq!(c.get_local(m, keep).unwrap(), Some(b"k".to_vec()));
    assert_eq!(c.get(key), Some(b"v".to_vec()), "master keeps it");
    let ttl = c.pttl(keep);
    assert!((50_000..=60_000).contains(&ttl), "ttl {ttl}");

    // Failing back promotes the node without the key.
    c.manual_failover(m);
    assert_eq!(c.role(m), Role::Master);
    assert_eq!(c.get(key), None);
    assert_eq!(c.get(keep), Some(b"k".to_vec()));
}

#[test]
fn cluster_held_replication_loses_the_write_on_failover() {
    let key = KEYS[0];
    let (c, m, r) = cluster_around(key);
    c.set(key, "old");
    let _: i64 = c.admin(m).cmd("WAIT", &["1", "5000"]);
    c.hold_replication(r, Duration::from_secs(20));
    c.set(key, "new");
    c.kill(m);
    let new = c.wait_for_failover_of(m);
    assert_eq!(new, r);
    c.release_replication(r);
    assert_eq!(c.get(key), Some(b"old".to_vec()), "the held write is lost");
    // It stays lost after the release.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(c.get(key), Some(b"old".to_vec()));
}

/// What a RESP3 tracking client of a master sees when that master is
/// demoted by a manual failover (Redis 7.0): the connection stays open, no
/// invalidation arrives at the demotion, reads of the key answer MOVED;
/// but a later write to the key on the new master, replicated to the old
/// one, does send the old connection an invalidation for it.
#[test]
fn cluster_tracking_client_of_demoted_master() {
    let key = KEYS[1];
    let (c, m, r) = cluster_around(key);
    c.set(key, "v");

    let mut s = TcpStream::connect(c.addr(m)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    send(&mut s, &["HELLO", "3"]);
    send(&mut s, &["CLIENT", "TRACKING", "on"]);
    send(&mut s, &["GET", key]);
    let (setup, closed) = drain(&mut s, Duration::from_millis(300));
    assert!(!closed && setup.ends_with("$1\r\nv\r\n"), "{setup:?}");

    c.manual_failover(r);
    let (pushed, closed) = drain(&mut s, Duration::from_millis(500));
    assert!(!closed, "demotion closed the tracking connection");
    assert_eq!(pushed, "", "demotion sent something");
    send(&mut s, &["GET", key]);
    let (reply, _) = drain(&mut s, Duration::from_millis(300));
    assert!(reply.starts_with("-MOVED "), "{reply:?}");

    // A write on the new master reaches the old one by replication and
    // invalidates the key it still tracks.
    assert!(c.del(key));
    let (pushed, closed) = drain(&mut s, Duration::from_millis(1000));
    assert!(!closed);
    assert!(
        pushed.contains("invalidate") && pushed.contains(key),
        "{pushed:?}"
    );
}

#[test]
fn cluster_shared_is_reused_and_refuses_destruction() {
    let a = RedisCluster::shared();
    let b = RedisCluster::shared();
    assert!(Arc::ptr_eq(&a, &b));
    assert!(a.is_shared());
    assert_eq!(a.master_addrs().len(), 3);
    let key = "rueidislock:shared:harness";
    a.set(key, "v");
    assert_eq!(a.get(key), Some(b"v".to_vec()));
    assert!(a.del(key));
    let kill = std::panic::catch_unwind(|| a.kill(0));
    assert!(kill.is_err(), "kill on the shared cluster must panic");
    assert!(a.is_running(0));
}

#[test]
fn instances_start_kill_restart() {
    let set = RedisInstances::start(3);
    assert_eq!(set.len(), 3);
    let addrs = set.addrs();
    assert_eq!(addrs.len(), 3);
    for i in 0..3 {
        assert_eq!(set.admin(i).ping(), "PONG");
        set.admin(i).set("k", &i.to_string());
    }
    set.kill(1);
    assert!(!set.is_running(1));
    assert!(TcpStream::connect(set.addr(1)).is_err());
    assert!(set.is_running(0) && set.is_running(2));
    set.restart(1);
    assert!(set.is_running(1));
    assert_eq!(set.addrs(), addrs);
    assert_eq!(set.admin(1).get("k"), None, "restart loses data");
    assert_eq!(set.admin(2).get("k"), Some(b"2".to_vec()));
    let dir = set.server(0).dir().to_owned();
    drop(set);
    assert!(!dir.exists());
    for a in &addrs {
        assert!(TcpStream::connect(a).is_err(), "{a} still open");
    }
}

#[test]
fn instances_shared_is_reused() {
    let a = RedisInstances::shared();
    assert!(Arc::ptr_eq(&a, &RedisInstances::shared()));
    assert_eq!(a.len(), 3);
    for i in 0..3 {
        assert_eq!(a.admin(i).ping(), "PONG");
    }
    assert!(std::panic::catch_unwind(|| a.restart(0)).is_err());
}

/// A master frozen (SIGSTOP, a stalled process) past the node timeout
/// loses its slots to its replica. Thawed, it serves what is already in its
/// sockets before it reads the gossip that demotes it (Redis 7.0 handles
/// client events before its cluster timers): a queued write gets `+OK` and
/// is then lost, and the full resync that follows flushes it, which a
/// tracking client sees as an `invalidate` with a null payload. Either way
/// the connection stays open and the write is not on the new master.
#[test]
fn cluster_frozen_master_thawed_after_failover() {
    let c = RedisCluster::start(3, 1);
    let key = KEYS[0];
    let m = c.owner_of(key);
    c.set(key, "v1");
    let _: i64 = c.admin(m).cmd("WAIT", &["1", "5000"]);

    let mut s = TcpStream::connect(c.addr(m)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    send(&mut s, &["HELLO", "3"]);
    send(&mut s, &["CLIENT", "TRACKING", "on"]);
    send(&mut s, &["GET", key]);
    let (setup, _) = drain(&mut s, Duration::from_millis(300));
    assert!(setup.ends_with("$2\r\nv1\r\n"), "{setup:?}");

    c.freeze(m);
    assert!(c.is_frozen(m) && c.is_running(m));
    assert_eq!(c.role(m), Role::Down);
    let t = Instant::now();
    let new = c.wait_for_failover_of(m);
    eprintln!("failover of a frozen master in {:?}", t.elapsed());
    // Sent while frozen: queued in the socket until the thaw.
    send(&mut s, &["SET", key, "v2"]);
    c.thaw(m);
    c.wait_settled();
    assert_eq!(c.role(m), Role::Replica);
    let (seen, closed) = drain(&mut s, Duration::from_millis(300));
    eprintln!("the thawed old master sent: {seen:?}");
    assert!(!closed, "demotion closed the connection");
    if seen.starts_with("+OK") {
        assert!(
            seen.contains("invalidate\r\n_\r\n"),
            "full resync without a flush invalidation: {seen:?}"
        );
    } else {
        assert!(seen.starts_with("-MOVED"), "{seen:?}");
    }
    assert_eq!(c.owner_of(key), new);
    assert_eq!(c.get(key), Some(b"v1".to_vec()), "the late write is lost");
}

fn send(s: &mut TcpStream, args: &[&str]) {
    s.write_all(&tracklock_testkit::resp::command(args))
        .unwrap();
}

/// Everything `s` receives within `d`, and whether it was closed.
fn drain(s: &mut TcpStream, d: Duration) -> (String, bool) {
    let end = Instant::now() + d;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < end {
        match s.read(&mut buf) {
            Ok(0) => return (String::from_utf8_lossy(&out).into(), true),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    (String::from_utf8_lossy(&out).into(), false)
}
