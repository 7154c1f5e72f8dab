//! Redis Cluster pieces of the simulator: hash slots, node addresses, the
//! versioned cluster configuration the nodes see (each through its own,
//! possibly lagging view), and the `CLUSTER SHARDS` / `CLUSTER SLOTS`
//! replies in Redis' RESP3 shapes.
//!
//! The model (see also [`super::world`] for the faults that drive it):
//! - Nodes `0..masters` start as masters of one shard each (the slots split
//!   evenly), the following ones as replicas of those that have one.
//! - Every change (a failover, a failed node, a node rejoining as replica,
//!   the end of a slot migration) is a new [`Topo`] version. The nodes it
//!   concerns adopt it at once; the others after a gossip delay, so they
//!   may redirect to a previous owner for a while (never serve a slot they
//!   no longer own: a node's own slots are always current, so the model has
//!   no stale master accepting writes after it was replaced).
//! - A master found dead is flagged as failed first; its replica is
//!   promoted after an election delay. Meanwhile, with
//!   `cluster-require-full-coverage yes`, nodes that see the flag answer key
//!   commands with `-CLUSTERDOWN The cluster is down`.
//! - Slot migrations are node-local state of the two masters involved
//!   (`MIGRATING` / `IMPORTING`, answered with `-ASK` and honoured after
//!   `ASKING`), as in Redis.

use std::fmt::Write as _;
use std::rc::Rc;

/// Hash slots of a Redis Cluster.
pub const SLOTS: usize = 16384;

/// CRC16-XMODEM, as Redis Cluster hashes keys (written here independently
/// of the engine's, so that the two check each other).
pub fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in data {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// The hash slot of `key`, with the hash tag rule (`{...}` with at least
/// one byte inside: only that is hashed).
pub fn key_slot(key: &[u8]) -> u16 {
    let hashed = match key.iter().position(|&b| b == b'{') {
        Some(o) => match key[o + 1..].iter().position(|&b| b == b'}') {
            Some(len) if len > 0 => &key[o + 1..o + 1 + len],
            _ => key,
        },
        None => key,
    };
    crc16(hashed) % SLOTS as u16
}

/// The host node `n` listens on.
pub fn host(n: usize) -> String {
    format!("10.0.0.{}", n + 1)
}

/// The port node `n` listens on.
pub fn port(n: usize) -> u16 {
    6379 + n as u16
}

/// `host:port` of node `n`, as redirects name it.
pub fn addr(n: usize) -> String {
    format!("{}:{}", host(n), port(n))
}

/// The node listening at `host:port`, if any of `nodes`.
pub fn node_at(host_: &str, port_: u16, nodes: usize) -> Option<usize> {
    (0..nodes).find(|&n| host(n) == host_ && port(n) == port_)
}

/// The 40-character id of node `n`.
pub fn node_id(n: usize) -> String {
    sha1_smol::Sha1::from(format!("sim-node-{n}"))
        .digest()
        .to_string()
}

/// One shard: its master, its replica, and a replaced master that has not
/// rejoined yet (Redis still lists it as a failed master).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardTopo {
    /// The master.
    pub master: usize,
    /// The replica, if any.
    pub replica: Option<usize>,
    /// A master replaced by a failover, still down (listed as failed).
    pub stale: Option<usize>,
}

/// One version of the cluster configuration.
#[derive(Debug, Clone)]
pub struct Topo {
    /// Index in the history (0 = the initial configuration).
    pub version: usize,
    /// Slot to shard.
    pub owner: Vec<u8>,
    /// The shards.
    pub shards: Vec<ShardTopo>,
    /// Per node: flagged as failed (`health: fail`).
    pub failed: Vec<bool>,
}

impl Topo {
    /// `masters` shards with even slot ranges; `replicas[i]` gives shard
    /// `i` a replica (numbered after the masters, in shard order).
    pub fn initial(masters: usize, replicas: &[bool]) -> Topo {
        let mut owner = vec![0u8; SLOTS];
        for (s, o) in owner.iter_mut().enumerate() {
            *o = (s * masters / SLOTS) as u8;
        }
        let mut next = masters;
        let shards = (0..masters)
            .map(|i| ShardTopo {
                master: i,
                replica: replicas.get(i).copied().unwrap_or(false).then(|| {
                    next += 1;
                    next - 1
                }),
                stale: None,
            })
            .collect();
        Topo {
            version: 0,
            owner,
            shards,
            failed: vec![false; next],
        }
    }

    /// The master serving `slot`.
    pub fn owner_node(&self, slot: u16) -> usize {
        self.shards[usize::from(self.owner[usize::from(slot)])].master
    }

    /// The shard whose master is `n`.
    pub fn shard_of_master(&self, n: usize) -> Option<usize> {
        self.shards.iter().position(|s| s.master == n)
    }

    /// The shard `n` belongs to (in any role).
    pub fn shard_of(&self, n: usize) -> Option<usize> {
        self.shards
            .iter()
            .position(|s| s.master == n || s.replica == Some(n) || s.stale == Some(n))
    }

    /// True when `n` is a master serving a shard.
    pub fn is_master(&self, n: usize) -> bool {
        self.shard_of_master(n).is_some()
    }

    /// True when a master serving slots is flagged as failed (the cluster
    /// state is `fail` with full coverage required).
    pub fn down(&self) -> bool {
        self.shards.iter().any(|s| self.failed[s.master])
    }

    /// The current masters.
    pub fn masters(&self) -> Vec<usize> {
        self.shards.iter().map(|s| s.master).collect()
    }

    /// The contiguous slot ranges of `shard`, in order.
    pub fn ranges(&self, shard: usize) -> Vec<(u16, u16)> {
        let mut out: Vec<(u16, u16)> = Vec::new();
        for (s, &o) in self.owner.iter().enumerate() {
            if usize::from(o) != shard {
                continue;
            }
            let s = s as u16;
            match out.last_mut() {
                Some(r) if r.1 + 1 == s => r.1 = s,
                _ => out.push((s, s)),
            }
        }
        out
    }

    /// Every contiguous range with its shard, in slot order.
    pub fn all_ranges(&self) -> Vec<(u16, u16, usize)> {
        let mut out: Vec<(u16, u16, usize)> = Vec::new();
        for (s, &o) in self.owner.iter().enumerate() {
            let (s, o) = (s as u16, usize::from(o));
            match out.last_mut() {
                Some(r) if r.2 == o && r.1 + 1 == s => r.1 = s,
                _ => out.push((s, s, o)),
            }
        }
        out
    }
}

/// What a cluster node knows: its view of the configuration and its own
/// migration state.
#[derive(Debug, Clone)]
pub struct NodeCluster {
    /// The configuration as this node sees it.
    pub topo: Rc<Topo>,
    /// This node (a source) is migrating `slot` to node `.1`.
    pub migrating: Option<(u16, usize)>,
    /// This node (a target) is importing `slot` from node `.1`.
    pub importing: Option<(u16, usize)>,
    /// Redis 7.0+: `CLUSTER SHARDS` exists, `CLUSTER SLOTS` entries carry a
    /// metadata map.
    pub seven: bool,
    /// Redis 7.2+: `CLUSTER SHARDS` groups by shard id, so a replaced master
    /// is listed (failed) in its old shard rather than as a shard of its own.
    pub shard_ids: bool,
    /// `cluster-require-full-coverage yes` (Redis' default): while a master
    /// serving slots is flagged as failed, key commands get `-CLUSTERDOWN`.
    pub full_coverage: bool,
}

fn bulk(out: &mut String, s: &str) {
    let _ = write!(out, "${}\r\n{s}\r\n", s.len());
}

fn int(out: &mut String, v: i64) {
    let _ = write!(out, ":{v}\r\n");
}

/// One node of a `CLUSTER SHARDS` shard (Redis' `addNodeDetailsToShardReply`
/// without TLS or hostname: id, port, ip, endpoint, role, offset, health).
fn shard_node(out: &mut String, n: usize, master: bool, failed: bool, offset: i64) {
    out.push_str("%7\r\n");
    bulk(out, "id");
    bulk(out, &node_id(n));
    bulk(out, "port");
    int(out, i64::from(port(n)));
    bulk(out, "ip");
    bulk(out, &host(n));
    bulk(out, "endpoint");
    bulk(out, &host(n));
    bulk(out, "role");
    bulk(out, if master { "master" } else { "replica" });
    bulk(out, "replication-offset");
    int(out, offset);
    bulk(out, "health");
    bulk(
        out,
        if failed {
            "fail"
        } else if !master && offset == 0 {
            "loading"
        } else {
            "online"
        },
    );
}

/// The `CLUSTER SHARDS` reply of a node with view `topo`.
pub fn shards_reply(topo: &Topo, shard_ids: bool) -> Vec<u8> {
    // (slot ranges, [(node, listed as master)])
    type Entry = (Vec<(u16, u16)>, Vec<(usize, bool)>);
    let mut entries: Vec<Entry> = Vec::new();
    for (i, s) in topo.shards.iter().enumerate() {
        let mut nodes = Vec::new();
        if shard_ids {
            // A replaced master keeps its shard id: listed first, failed,
            // still with the master role (the parser must skip it).
            if let Some(st) = s.stale {
                nodes.push((st, true));
            }
        }
        nodes.push((s.master, true));
        if let Some(r) = s.replica {
            nodes.push((r, false));
        }
        entries.push((topo.ranges(i), nodes));
        if !shard_ids {
            // Redis 7.0: one shard per master; the replaced one has no slots.
            if let Some(st) = s.stale {
                entries.push((Vec::new(), vec![(st, true)]));
            }
        }
    }
    let mut out = format!("*{}\r\n", entries.len());
    let offset = 1 + topo.version as i64;
    for (slots, nodes) in entries {
        out.push_str("%2\r\n");
        bulk(&mut out, "slots");
        let _ = write!(out, "*{}\r\n", 2 * slots.len());
        for (a, b) in slots {
            int(&mut out, i64::from(a));
            int(&mut out, i64::from(b));
        }
        bulk(&mut out, "nodes");
        let _ = write!(out, "*{}\r\n", nodes.len());
        for (n, master) in nodes {
            shard_node(&mut out, n, master, topo.failed[n], offset);
        }
    }
    out.into_bytes()
}

/// The `CLUSTER SLOTS` reply of a node with view `topo` (`seven`: each
/// node entry ends with a map of networking metadata, empty here).
pub fn slots_reply(topo: &Topo, seven: bool) -> Vec<u8> {
    let ranges = topo.all_ranges();
    let mut out = format!("*{}\r\n", ranges.len());
    let node = |out: &mut String, n: usize| {
        let _ = write!(out, "*{}\r\n", if seven { 4 } else { 3 });
        bulk(out, &host(n));
        int(out, i64::from(port(n)));
        bulk(out, &node_id(n));
        if seven {
            out.push_str("%0\r\n");
        }
    };
    for (a, b, shard) in ranges {
        let s = &topo.shards[shard];
        // Failed replicas are left out, the master never.
        let replica = s.replica.filter(|&r| !topo.failed[r]);
        let _ = write!(out, "*{}\r\n", 3 + usize::from(replica.is_some()));
        int(&mut out, i64::from(a));
        int(&mut out, i64::from(b));
        node(&mut out, s.master);
        if let Some(r) = replica {
            node(&mut out, r);
        }
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_redis() {
        // `CLUSTER KEYSLOT` on redis-server 7.0.15.
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"bar"), 5061);
        assert_eq!(key_slot(b"123456789"), 12739);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"foo{}{bar}"), crc16(b"foo{}{bar}") % 16384);
        assert_eq!(key_slot(b"foo{{bar}}zap"), key_slot(b"{bar"));
        assert_eq!(key_slot(b"foo{bar}{zap}"), key_slot(b"bar"));
    }

    #[test]
    fn initial_topology_and_ranges() {
        let t = Topo::initial(3, &[true, false, true]);
        assert_eq!(t.failed.len(), 5);
        assert_eq!(t.shards[0].replica, Some(3));
        assert_eq!(t.shards[1].replica, None);
        assert_eq!(t.shards[2].replica, Some(4));
        assert_eq!(t.ranges(0), vec![(0, 5461)]);
        assert_eq!(t.ranges(2), vec![(10923, 16383)]);
        assert_eq!(t.owner_node(16383), 2);
        let mut u = t.clone();
        u.owner[100] = 2;
        assert_eq!(u.ranges(0), vec![(0, 99), (101, 5461)]);
        assert_eq!(u.all_ranges().len(), 5);
        assert_eq!(node_at("10.0.0.3", 6381, 5), Some(2));
        assert_eq!(node_at("10.0.0.3", 6380, 5), None);
    }
}
