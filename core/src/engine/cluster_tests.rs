//! Cluster transitions, driven by scripted server bytes on several nodes.

extern crate std;

use std::format;
use std::string::String;
use std::vec;
use std::vec::Vec;

use super::cluster::MAX_REDIRECTS;
use super::*;
use crate::resp::{parse, Frame};

const HELLO_CLUSTER: &[u8] = b"%3\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n$4\r\nmode\r\n$7\r\ncluster\r\n$4\r\nrole\r\n$6\r\nmaster\r\n";
const HELLO_STANDALONE: &[u8] =
    b"%2\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n";

fn ms(n: u64) -> Instant {
    Instant::from_nanos(n * 1_000_000)
}

fn bulk(s: &str) -> String {
    format!("${}\r\n{}\r\n", s.len(), s)
}

fn int(n: i64) -> String {
    format!(":{n}\r\n")
}

fn arr(items: &[String]) -> String {
    format!("*{}\r\n{}", items.len(), items.concat())
}

fn map(pairs: &[(&str, String)]) -> String {
    let body: String = pairs.iter().map(|(k, v)| bulk(k) + v).collect();
    format!("%{}\r\n{}", pairs.len(), body)
}

/// A `CLUSTER SHARDS` reply: one shard per `(start, end, master port,
/// replica port)`.
fn shards(list: &[(u16, u16, u16, Option<u16>)]) -> Vec<u8> {
    let node = |port: u16, role: &str| {
        map(&[
            ("id", bulk("abc")),
            ("port", int(i64::from(port))),
            ("ip", bulk("127.0.0.1")),
            ("endpoint", bulk("127.0.0.1")),
            ("role", bulk(role)),
            ("replication-offset", int(1)),
            ("health", bulk("online")),
        ])
    };
    let items: Vec<String> = list
        .iter()
        .map(|&(s, e, m, r)| {
            let mut nodes = vec![];
            // Replicas first: the parser must pick the master by role.
            if let Some(r) = r {
                nodes.push(node(r, "replica"));
            }
            nodes.push(node(m, "master"));
            map(&[
                ("slots", arr(&[int(i64::from(s)), int(i64::from(e))])),
                ("nodes", arr(&nodes)),
            ])
        })
        .collect();
    arr(&items).into_bytes()
}

fn commands(mut bytes: &[u8]) -> Vec<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let (frame, n) = parse(bytes).unwrap().expect("complete command");
        let Frame::Array(args) = frame else {
            panic!("command is not an array")
        };
        out.push(
            args.iter()
                .map(|a| a.as_bytes().unwrap().to_vec())
                .collect(),
        );
        bytes = &bytes[n..];
    }
    out
}

fn sent(e: &mut Engine, node: u16) -> Vec<Vec<Vec<u8>>> {
    let bytes = e.transmit(NodeId(node)).to_vec();
    e.consume_transmit(NodeId(node), bytes.len());
    commands(&bytes)
}

fn names(cmds: &[Vec<Vec<u8>>]) -> Vec<String> {
    cmds.iter()
        .map(|c| String::from_utf8_lossy(&c[0]).into_owned())
        .collect()
}

fn feed(e: &mut Engine, node: u16, now: Instant, bytes: &[u8]) {
    assert_eq!(e.handle_bytes(NodeId(node), now, bytes), bytes.len());
}

fn events(e: &mut Engine) -> Vec<Event> {
    core::iter::from_fn(|| e.poll_event()).collect()
}

fn handshake(e: &mut Engine, node: u16, now: Instant) {
    e.handle_connected(NodeId(node), now);
    assert_eq!(names(&sent(e, node)), ["HELLO"]);
    feed(e, node, now, HELLO_CLUSTER);
    assert_eq!(names(&sent(e, node)), ["CLIENT"]);
    feed(e, node, now, b"+OK\r\n");
    assert!(e.is_ready(NodeId(node)));
}

const THREE: &[(u16, u16, u16, Option<u16>)] = &[
    (0, 5460, 7000, Some(7003)),
    (5461, 10922, 7001, Some(7004)),
    (10923, 16383, 7002, Some(7005)),
];

/// An engine with seed 7000 as node 0 and the three masters connected.
fn cluster() -> Engine {
    let config = Config {
        topology: Topology::Cluster(1),
        ..Config::default()
    };
    let mut e = Engine::new(config, [3; 32]).unwrap();
    e.set_node_address(NodeId(0), "127.0.0.1", 7000).unwrap();
    assert!(!e.is_usable());
    handshake(&mut e, 0, ms(0));
    assert_eq!(events(&mut e), vec![Event::NodeReady { node: NodeId(0) }]);
    let q = sent(&mut e, 0);
    assert_eq!(q, vec![vec![b"CLUSTER".to_vec(), b"SHARDS".to_vec()]]);
    feed(&mut e, 0, ms(1), &shards(THREE));
    // Masters first, then the replicas (kept for topology queries only).
    assert_eq!(
        events(&mut e),
        (1..6)
            .map(|n| Event::NodeAdded { node: NodeId(n) })
            .collect::<Vec<_>>()
    );
    assert_eq!(e.node_address(NodeId(1)), Some(("127.0.0.1", 7001)));
    assert_eq!(e.node_address(NodeId(2)), Some(("127.0.0.1", 7002)));
    assert_eq!(e.node_address(NodeId(3)), Some(("127.0.0.1", 7003)));
    assert_eq!(e.node_count(), 6);
    assert!(!e.is_usable(), "one master of three");
    handshake(&mut e, 1, ms(2));
    assert!(e.is_usable(), "two masters of three");
    handshake(&mut e, 2, ms(2));
    events(&mut e);
    e
}

fn owner_port(slot: u16) -> u16 {
    THREE
        .iter()
        .find(|r| r.0 <= slot && slot <= r.1)
        .map(|r| r.2)
        .unwrap()
}

fn slot_of(key: &str) -> u16 {
    crate::cluster::key_slot(&[key.as_bytes()])
}

/// The node each key of `name` goes to in [`THREE`].
fn owners(name: &str) -> Vec<u16> {
    (0..3)
        .map(|i| owner_port(slot_of(&format!("rueidislock:{i}:{name}"))) - 7000)
        .collect()
}

/// Takes `name` on the three-master cluster; returns the lock and where
/// each key went.
fn acquire(e: &mut Engine, name: &str, now: Instant) -> (LockId, Vec<u16>) {
    let id = e.lock(name, LockMode::Wait, now).unwrap();
    let owners = owners(name);
    for n in 0..3u16 {
        let cmds = sent(e, n);
        let want: Vec<usize> = (0..3).filter(|&i| owners[i] == n).collect();
        assert_eq!(cmds.len(), 2 * want.len(), "node {n}: {:?}", names(&cmds));
        for (j, &i) in want.iter().enumerate() {
            assert_eq!(cmds[2 * j][0], b"SET");
            assert_eq!(
                cmds[2 * j][1],
                format!("rueidislock:{i}:{name}").into_bytes()
            );
            assert_eq!(cmds[2 * j + 1][0], b"PTTL");
        }
        feed(e, n, now, &b"+OK\r\n:5000\r\n".repeat(want.len()));
    }
    assert_eq!(events(e), vec![Event::Acquired { id }]);
    (id, owners)
}

/// A name whose three keys live on three different masters.
fn spread_name() -> String {
    (0..)
        .map(|i| format!("n{i}"))
        .find(|n| {
            let o = owners(n);
            o[0] != o[1] && o[1] != o[2] && o[0] != o[2]
        })
        .unwrap()
}

#[test]
fn discovery_routes_each_key_to_its_slot_owner() {
    let mut e = cluster();
    let name = spread_name();
    let (id, _) = acquire(&mut e, &name, ms(10));
    e.unlock(id, ms(20));
    for n in 0..3 {
        assert_eq!(names(&sent(&mut e, n)), ["EVALSHA"], "one release per node");
        feed(&mut e, n, ms(21), b":1\r\n");
    }
    assert_eq!(events(&mut e), vec![Event::Released { id }]);
}

#[test]
fn hash_tags_put_every_key_on_one_node() {
    let mut e = cluster();
    let id = e.lock("{tag}x", LockMode::Wait, ms(10)).unwrap();
    let owner = owner_port(slot_of("tag")) - 7000;
    for n in 0..3u16 {
        let cmds = sent(&mut e, n);
        assert_eq!(cmds.len(), if n == owner { 6 } else { 0 });
    }
    feed(&mut e, owner, ms(11), &b"+OK\r\n:5000\r\n".repeat(3));
    assert_eq!(events(&mut e), vec![Event::Acquired { id }]);
}

#[test]
fn moved_acquire_is_resent_to_the_new_owner_and_the_map_learns_it() {
    let mut e = cluster();
    let name = spread_name();
    let id = e.lock(&name, LockMode::Wait, ms(10)).unwrap();
    let owners = owners(&name);
    // Key 0's slot moved to node 2 (port 7002), which is not its owner in
    // our map.
    let k0 = slot_of(&format!("rueidislock:0:{name}"));
    let mut to = owners[0] + 1;
    if to > 2 {
        to = 0;
    }
    for n in 0..3u16 {
        let cmds = sent(&mut e, n);
        assert_eq!(cmds.len(), 2);
        if n == owners[0] {
            let moved = format!("-MOVED {k0} 127.0.0.1:{}\r\n", 7000 + to);
            feed(&mut e, n, ms(11), format!("{moved}{moved}").as_bytes());
        } else {
            feed(&mut e, n, ms(11), b"+OK\r\n:5000\r\n");
        }
    }
    // Two keys were enough: acquired while key 0 is resent.
    assert_eq!(events(&mut e), vec![Event::Acquired { id }]);
    let resent = sent(&mut e, to);
    assert_eq!(names(&resent), ["SET", "PTTL"]);
    assert_eq!(resent[0][1], format!("rueidislock:0:{name}").into_bytes());
    feed(&mut e, to, ms(12), b"+OK\r\n:5000\r\n");
    assert_eq!(e.map.owner(k0), Some(NodeId(to)));
    // The release of key 0 goes to its new owner.
    e.unlock(id, ms(20));
    let mut releases = [0; 3];
    for n in 0..3u16 {
        let cmds = sent(&mut e, n);
        releases[usize::from(n)] = cmds.len();
        feed(&mut e, n, ms(21), &b":1\r\n".repeat(cmds.len()));
    }
    assert_eq!(releases.iter().sum::<usize>(), 3);
    assert_eq!(releases[usize::from(to)], 2);
    assert_eq!(events(&mut e), vec![Event::Released { id }]);
    // The map is re-read after a MOVED.
    e.handle_timeout(ms(200));
    let queried: usize = (0..3u16)
        .map(|n| {
            sent(&mut e, n)
                .iter()
                .filter(|c| c[0] == b"CLUSTER")
                .count()
        })
        .sum();
    assert_eq!(queried, 1);
}

#[test]
fn ask_extension_goes_to_the_importing_node_behind_asking() {
    let mut e = cluster();
    let name = spread_name();
    let (id, owners) = acquire(&mut e, &name, ms(10));
    let k1 = slot_of(&format!("rueidislock:1:{name}"));
    let from = owners[1];
    let to = (from + 1) % 3;
    // Key 1 was migrated away: its deletion is an invalidation, the
    // re-check is answered by ASK.
    feed(
        &mut e,
        from,
        ms(20),
        &invalidate(&format!("rueidislock:1:{name}")),
    );
    assert_eq!(names(&sent(&mut e, from)), ["EVALSHA"]);
    feed(
        &mut e,
        from,
        ms(21),
        format!("-ASK {k1} 127.0.0.1:{}\r\n", 7000 + to).as_bytes(),
    );
    let cmds = sent(&mut e, to);
    assert_eq!(names(&cmds), ["ASKING", "EVAL"]);
    feed(&mut e, to, ms(22), b"+OK\r\n*2\r\n:4900\r\n:0\r\n");
    assert!(e.is_held(id));
    assert_eq!(
        e.map.owner(k1),
        Some(NodeId(from)),
        "ASK does not move the slot"
    );
    assert!(events(&mut e).is_empty());
    // Changes on the importing node now reach the holder.
    feed(
        &mut e,
        to,
        ms(30),
        &invalidate(&format!("rueidislock:1:{name}")),
    );
    assert_eq!(
        names(&sent(&mut e, from)),
        ["EVALSHA"],
        "the map still says `from`"
    );
}

fn invalidate(key: &str) -> Vec<u8> {
    format!(">2\r\n$10\r\ninvalidate\r\n*1\r\n{}", bulk(key)).into_bytes()
}

#[test]
fn losing_a_master_keeps_a_majority_and_requeries_the_map() {
    let mut e = cluster();
    let name = spread_name();
    let (id, owners) = acquire(&mut e, &name, ms(10));
    let victim = owners[0];
    e.handle_disconnected(NodeId(victim), ms(100));
    assert!(e.is_held(id), "two of three keys still held");
    assert!(events(&mut e).is_empty());
    // A topology query goes to a live node at once.
    let live: Vec<u16> = (0..3).filter(|&n| n != victim).collect();
    let queries: Vec<u16> = live
        .iter()
        .copied()
        .filter(|&n| names(&sent(&mut e, n)).contains(&String::from("CLUSTER")))
        .collect();
    assert_eq!(queries.len(), 1);
    // The replica took over: the victim's slots now live on port 7009.
    let mut promoted: Vec<(u16, u16, u16, Option<u16>)> = THREE.to_vec();
    promoted[usize::from(victim)].2 = 7009;
    promoted[usize::from(victim)].3 = None;
    feed(&mut e, queries[0], ms(1100), &shards(&promoted));
    assert_eq!(events(&mut e), vec![Event::NodeAdded { node: NodeId(6) }]);
    handshake(&mut e, 6, ms(1200));
    // The held key on the lost master is re-checked on the new one.
    assert_eq!(names(&sent(&mut e, 6)), ["EVALSHA"]);
    feed(&mut e, 6, ms(1201), b"*2\r\n:3800\r\n:0\r\n");
    assert!(e.is_held(id));
}

#[test]
fn cluster_shards_refused_falls_back_to_cluster_slots() {
    let config = Config {
        topology: Topology::Cluster(1),
        ..Config::default()
    };
    let mut e = Engine::new(config, [3; 32]).unwrap();
    e.set_node_address(NodeId(0), "10.0.0.1", 7000).unwrap();
    handshake(&mut e, 0, ms(0));
    assert_eq!(names(&sent(&mut e, 0)), ["CLUSTER"]);
    feed(&mut e, 0, ms(1), b"-ERR unknown subcommand 'SHARDS'\r\n");
    let q = sent(&mut e, 0);
    assert_eq!(q, vec![vec![b"CLUSTER".to_vec(), b"SLOTS".to_vec()]]);
    // Empty host: the node we asked.
    let slots = arr(&[
        arr(&[int(0), int(8000), arr(&[bulk(""), int(7000), bulk("id0")])]),
        arr(&[
            int(8001),
            int(16383),
            arr(&[bulk("10.0.0.2"), int(7001), bulk("id1")]),
        ]),
    ]);
    feed(&mut e, 0, ms(2), slots.as_bytes());
    let ev = events(&mut e);
    assert!(ev.contains(&Event::NodeAdded { node: NodeId(1) }), "{ev:?}");
    assert_eq!(e.node_count(), 2, "the seed serves 0-8000 itself");
    assert_eq!(e.node_address(NodeId(1)), Some(("10.0.0.2", 7001)));
    assert_eq!(e.map.owner(0), Some(NodeId(0)));
    assert_eq!(e.map.owner(8001), Some(NodeId(1)));
}

#[test]
fn standalone_server_in_cluster_mode_is_a_typed_error() {
    let config = Config {
        topology: Topology::Cluster(1),
        ..Config::default()
    };
    let mut e = Engine::new(config, [3; 32]).unwrap();
    e.handle_connected(NodeId(0), ms(0));
    sent(&mut e, 0);
    feed(&mut e, 0, ms(0), HELLO_STANDALONE);
    assert!(matches!(
        events(&mut e).as_slice(),
        [Event::CloseConnection {
            error: NodeError::Topology(_),
            ..
        }]
    ));
}

#[test]
fn cluster_node_in_single_mode_is_a_typed_error() {
    let mut e = Engine::new(Config::default(), [3; 32]).unwrap();
    e.handle_connected(NodeId(0), ms(0));
    sent(&mut e, 0);
    feed(&mut e, 0, ms(0), HELLO_CLUSTER);
    assert!(matches!(
        events(&mut e).as_slice(),
        [Event::CloseConnection {
            error: NodeError::Topology(_),
            ..
        }]
    ));
}

#[test]
fn refused_topology_commands_are_a_typed_error() {
    let config = Config {
        topology: Topology::Cluster(1),
        ..Config::default()
    };
    let mut e = Engine::new(config, [3; 32]).unwrap();
    handshake(&mut e, 0, ms(0));
    events(&mut e);
    sent(&mut e, 0);
    feed(
        &mut e,
        0,
        ms(1),
        b"-ERR This instance has cluster support disabled\r\n",
    );
    sent(&mut e, 0);
    feed(
        &mut e,
        0,
        ms(1),
        b"-ERR This instance has cluster support disabled\r\n",
    );
    assert!(matches!(
        events(&mut e).as_slice(),
        [Event::CloseConnection {
            error: NodeError::Topology(_),
            ..
        }]
    ));
}

#[test]
fn endless_redirects_stop_and_wait_for_the_map() {
    let mut e = cluster();
    let name = spread_name();
    let (id, owners) = acquire(&mut e, &name, ms(10));
    let key = format!("rueidislock:2:{name}");
    let slot = slot_of(&key);
    let a = owners[2];
    let b = (a + 1) % 3;
    feed(&mut e, a, ms(20), &invalidate(&key));
    let mut at = a;
    let mut hops = 0;
    loop {
        let cmds = sent(&mut e, at);
        if cmds.is_empty() {
            break;
        }
        assert!(hops < 10, "redirect loop");
        hops += 1;
        let next = if at == a { b } else { a };
        feed(
            &mut e,
            at,
            ms(21),
            format!("-MOVED {slot} 127.0.0.1:{}\r\n", 7000 + next).as_bytes(),
        );
        at = next;
    }
    assert_eq!(hops, usize::from(MAX_REDIRECTS) + 1);
    assert_eq!(e.map.owner(slot), None, "forgotten until the next query");
    assert!(e.is_held(id), "the other two keys hold the lock");
}

#[test]
fn capacity_and_bad_topology_replies_fail_only_that_connection() {
    let config = Config {
        topology: Topology::Cluster(1),
        ..Config::default()
    };
    let mut e = Engine::new(config, [3; 32]).unwrap();
    e.set_node_address(NodeId(0), "127.0.0.1", 7000).unwrap();
    handshake(&mut e, 0, ms(0));
    events(&mut e);
    sent(&mut e, 0);
    feed(&mut e, 0, ms(1), b"*1\r\n:12\r\n");
    assert!(matches!(
        events(&mut e).as_slice(),
        [Event::CloseConnection {
            error: NodeError::Protocol(_),
            ..
        }]
    ));
    assert!(e.set_node_address(NodeId(9), "x", 1).is_err());
}

#[test]
fn replicas_answer_topology_queries_when_every_master_is_gone() {
    let mut e = cluster();
    for n in 3..6 {
        handshake(&mut e, n, ms(3));
    }
    events(&mut e);
    for n in 0..3 {
        e.handle_disconnected(NodeId(n), ms(100));
    }
    assert!(!e.is_usable());
    // A query may have gone to a master that dropped right after.
    e.handle_timeout(ms(200));
    let asked: Vec<u16> = (3..6)
        .filter(|&n| names(&sent(&mut e, n)).contains(&String::from("CLUSTER")))
        .collect();
    assert_eq!(asked.len(), 1, "a replica is asked for the topology");
    let promoted: Vec<(u16, u16, u16, Option<u16>)> = THREE
        .iter()
        .map(|&(s, e, _, r)| (s, e, r.unwrap(), None))
        .collect();
    feed(&mut e, asked[0], ms(1500), &shards(&promoted));
    assert!(events(&mut e).is_empty(), "the replicas were known already");
    assert!(e.is_usable(), "the promoted replicas serve every slot");
}

#[test]
fn a_refused_recheck_is_retried_after_try_next_after() {
    let mut e = cluster();
    let name = spread_name();
    let (id, owners) = acquire(&mut e, &name, ms(10));
    let key = format!("rueidislock:0:{name}");
    let n = owners[0];
    feed(&mut e, n, ms(20), &invalidate(&key));
    assert_eq!(names(&sent(&mut e, n)), ["EVALSHA"]);
    feed(&mut e, n, ms(21), b"-CLUSTERDOWN The cluster is down\r\n");
    e.handle_timeout(ms(22));
    assert!(sent(&mut e, n).is_empty(), "no hot retry");
    let due = e.poll_timeout().unwrap();
    assert!(due <= ms(21 + 20), "retry due at {due:?}");
    e.handle_timeout(ms(41));
    assert_eq!(names(&sent(&mut e, n)), ["EVALSHA"], "re-check retried");
    feed(&mut e, n, ms(42), b"*2\r\n:0\r\n:0\r\n");
    assert!(e.is_held(id), "two keys left");
}

/// Sends the due topology query at `now` and answers it with `reply`.
fn requery(e: &mut Engine, now: Instant, reply: &[(u16, u16, u16, Option<u16>)]) {
    requery_bytes(e, now, &shards(reply));
}

fn requery_bytes(e: &mut Engine, now: Instant, reply: &[u8]) {
    e.handle_timeout(now);
    let asked: Vec<u16> = (0..e.node_count() as u16)
        .filter(|&n| names(&sent(e, n)).contains(&String::from("CLUSTER")))
        .collect();
    assert_eq!(asked.len(), 1, "one topology query at {now:?}");
    feed(e, asked[0], now, reply);
}

#[test]
fn nodes_the_cluster_stops_naming_are_retired_and_their_ids_reused() {
    let mut e = cluster();
    let name = spread_name();
    let (id, owners) = acquire(&mut e, &name, ms(10));
    let v = owners[0];
    // IP churn: the victim's master drops, its shard is served from a new
    // address, and neither its old master nor its replica is named again.
    e.handle_disconnected(NodeId(v), ms(100));
    let mut moved: Vec<(u16, u16, u16, Option<u16>)> = THREE.to_vec();
    moved[usize::from(v)].2 = 7006;
    moved[usize::from(v)].3 = None;
    requery(&mut e, ms(100), &moved);
    assert_eq!(events(&mut e), vec![Event::NodeAdded { node: NodeId(6) }]);
    assert!(!e.is_retired(NodeId(v)), "one reply is not enough");
    requery(&mut e, ms(400), &moved);
    assert_eq!(
        events(&mut e),
        vec![
            Event::NodeRemoved { node: NodeId(v) },
            Event::NodeRemoved {
                node: NodeId(v + 3)
            }
        ]
    );
    assert!(e.is_retired(NodeId(v)) && e.is_retired(NodeId(v + 3)));
    assert_eq!(e.node_address(NodeId(v)), None);
    // A caller that dials it anyway gets no handshake.
    e.handle_connected(NodeId(v), ms(401));
    assert!(sent(&mut e, v).is_empty());
    assert!(!e.is_ready(NodeId(v)));
    assert!(e.is_held(id), "two of three keys are elsewhere");
    // Released by the caller, the victim's id serves the next new node;
    // the replica's, not released, stays retired.
    e.handle_retired(NodeId(v));
    let mut grown = moved.clone();
    grown[usize::from(v)].3 = Some(7007);
    requery(&mut e, ms(700), &grown);
    assert_eq!(events(&mut e), vec![Event::NodeAdded { node: NodeId(v) }]);
    assert_eq!(e.node_address(NodeId(v)), Some(("127.0.0.1", 7007)));
    assert!(!e.is_retired(NodeId(v)));
    assert!(e.is_retired(NodeId(v + 3)));
    assert_eq!(e.node_count(), 7);
    // The key whose slot moved is checked at its new owner.
    handshake(&mut e, 6, ms(702));
    assert_eq!(names(&sent(&mut e, 6)), ["EVALSHA"]);
    feed(&mut e, 6, ms(703), b"*2\r\n:3800\r\n:0\r\n");
    assert!(e.is_held(id));
}

#[test]
fn failed_nodes_stay_members() {
    let mut e = cluster();
    // The first shard's master failed and its replica took over; the
    // failed master is still listed (it may come back as a replica).
    let node = |port: u16, role: &str, health: &str| {
        map(&[
            ("port", int(i64::from(port))),
            ("ip", bulk("127.0.0.1")),
            ("role", bulk(role)),
            ("health", bulk(health)),
        ])
    };
    let shard = |s: u16, end: u16, nodes: &[String]| {
        map(&[
            ("slots", arr(&[int(i64::from(s)), int(i64::from(end))])),
            ("nodes", arr(nodes)),
        ])
    };
    let reply = arr(&[
        shard(
            0,
            5460,
            &[node(7000, "master", "fail"), node(7003, "master", "online")],
        ),
        shard(
            5461,
            10922,
            &[
                node(7001, "master", "online"),
                node(7004, "replica", "online"),
            ],
        ),
        shard(
            10923,
            16383,
            &[
                node(7002, "master", "online"),
                node(7005, "replica", "online"),
            ],
        ),
    ])
    .into_bytes();
    e.handle_disconnected(NodeId(0), ms(100));
    for t in [100, 400, 700] {
        requery_bytes(&mut e, ms(t), &reply);
        assert_eq!(events(&mut e), vec![], "nothing retired at {t} ms");
    }
    assert!(!e.is_retired(NodeId(0)));
    assert_eq!(e.node_address(NodeId(0)), Some(("127.0.0.1", 7000)));
}

fn announced(e: &mut Engine) -> Vec<u16> {
    let mut out: Vec<u16> = core::iter::from_fn(|| e.poll_output())
        .map(|n| n.0)
        .collect();
    out.sort_unstable();
    out
}

#[test]
fn only_nodes_with_new_output_are_announced() {
    let mut e = cluster();
    announced(&mut e);
    // Every key of a hash-tagged name lives on one master.
    let name = "{tag}x";
    let owner = owner_port(slot_of("tag")) - 7000;
    let id = e.lock(name, LockMode::Wait, ms(10)).unwrap();
    assert_eq!(announced(&mut e), [owner]);
    assert_eq!(announced(&mut e), [] as [u16; 0], "once per batch");
    assert_eq!(sent(&mut e, owner).len(), 6);
    feed(&mut e, owner, ms(11), &b"+OK\r\n:5000\r\n".repeat(3));
    assert_eq!(events(&mut e), vec![Event::Acquired { id }]);
    assert_eq!(announced(&mut e), [] as [u16; 0], "replies wrote nothing");
    // A spread name writes to every master.
    let spread = spread_name();
    let _ = e.lock(&spread, LockMode::Wait, ms(12)).unwrap();
    assert_eq!(announced(&mut e), [0, 1, 2]);
    e.unlock(id, ms(13));
    assert_eq!(announced(&mut e), [owner], "new bytes since last returned");
    for n in 0..3 {
        sent(&mut e, n);
    }
    e.handle_timeout(ms(14));
    assert_eq!(announced(&mut e), [] as [u16; 0]);
}
