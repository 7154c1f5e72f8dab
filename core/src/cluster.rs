//! Redis Cluster routing: hash slots, the slot map learned from
//! `CLUSTER SHARDS` (or `CLUSTER SLOTS` on servers before 7.0), and the
//! `MOVED`/`ASK` redirects that correct it.
//!
//! The map is a sorted list of slot ranges, not a 16 384-entry table: a
//! cluster has a handful of ranges, and the no-alloc build cannot spare
//! 32 KiB for a table.

use crc::{Crc, CRC_16_XMODEM};

use crate::event::NodeId;
use crate::resp::Frame;
use crate::storage::{Seq, Text};

/// Hash slots of a Redis Cluster.
pub(crate) const SLOTS: u16 = 16384;
/// Slot ranges in the no-alloc build.
pub(crate) const RANGE_CAP: usize = 64;

const CRC16: Crc<u16> = Crc::<u16>::new(&CRC_16_XMODEM);

/// The hash slot of the key made of `parts` concatenated, with Redis' hash
/// tag rule: if the key has a `{` followed later by a `}` with at least one
/// byte between them, only those bytes are hashed.
pub(crate) fn key_slot(parts: &[&[u8]]) -> u16 {
    let bytes = || parts.iter().flat_map(|p| p.iter().copied());
    let open = bytes().position(|b| b == b'{');
    let (lo, hi) = match open {
        Some(o) => match bytes().skip(o + 1).position(|b| b == b'}') {
            Some(len) if len > 0 => (o + 1, o + 1 + len),
            _ => (0, usize::MAX),
        },
        None => (0, usize::MAX),
    };
    let mut digest = CRC16.digest();
    let mut at = 0usize;
    for part in parts {
        let (start, end) = (at, at + part.len());
        at = end;
        let (a, b) = (start.max(lo), end.min(hi));
        if a < b {
            digest.update(&part[a - start..b - start]);
        }
    }
    digest.finalize() % SLOTS
}

/// True when the key made of `parts` has a hash tag (a `{` followed later
/// by a `}` with at least one byte between them).
pub(crate) fn has_hash_tag(parts: &[&[u8]]) -> bool {
    let bytes = || parts.iter().flat_map(|p| p.iter().copied());
    bytes()
        .position(|b| b == b'{')
        .and_then(|o| bytes().skip(o + 1).position(|b| b == b'}'))
        .is_some_and(|len| len > 0)
}

/// CRC16/XMODEM of `parts` concatenated (no hash tag rule).
pub(crate) fn crc16<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> u16 {
    let mut digest = CRC16.digest();
    for p in parts {
        digest.update(p);
    }
    digest.finalize()
}

/// Where a node listens.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Addr {
    pub(crate) host: Text,
    pub(crate) port: u16,
}

/// `[start, end]` (inclusive) served by `node`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Range {
    pub(crate) start: u16,
    pub(crate) end: u16,
    pub(crate) node: NodeId,
}

/// The slot map: sorted, non-overlapping ranges; uncovered slots have no
/// known owner.
#[derive(Debug, Clone, Default)]
pub(crate) struct SlotMap {
    ranges: Seq<Range, RANGE_CAP>,
}

impl SlotMap {
    /// The node owning `slot`, if known.
    pub(crate) fn owner(&self, slot: u16) -> Option<NodeId> {
        let r = self.ranges.as_slice();
        let i = r.partition_point(|x| x.end < slot);
        r.get(i).filter(|x| x.start <= slot).map(|x| x.node)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.ranges.as_slice().is_empty()
    }

    pub(crate) fn ranges(&self) -> &[Range] {
        self.ranges.as_slice()
    }

    /// Builds a map from unordered, possibly overlapping ranges (later wins
    /// nothing: overlaps are dropped, which a consistent reply never has).
    pub(crate) fn from_ranges(mut list: Seq<Range, RANGE_CAP>) -> SlotMap {
        list.as_mut_slice().sort_unstable_by_key(|r| r.start);
        let mut ranges: Seq<Range, RANGE_CAP> = Seq::default();
        let mut next = 0u32;
        for r in list.as_slice() {
            if u32::from(r.start) < next || r.end < r.start || r.end >= SLOTS {
                continue;
            }
            next = u32::from(r.end) + 1;
            // Capacity is that of `list`, so this cannot fail.
            let _ = ranges.push(*r);
        }
        SlotMap { ranges }
    }

    /// Records that `slot` is served by `node` (from `MOVED`). False when the
    /// no-alloc capacity leaves no room for the split; the slot is then
    /// left without owner until the next full refresh.
    pub(crate) fn set_owner(&mut self, slot: u16, node: NodeId) -> bool {
        let mut out: Seq<Range, RANGE_CAP> = Seq::default();
        let mut ok = true;
        let mut placed = false;
        for r in self.ranges.as_slice() {
            if r.end < slot || r.start > slot {
                if !placed && r.start > slot {
                    ok &= out
                        .push(Range {
                            start: slot,
                            end: slot,
                            node,
                        })
                        .is_ok();
                    placed = true;
                }
                ok &= out.push(*r).is_ok();
                continue;
            }
            if r.start < slot {
                ok &= out
                    .push(Range {
                        start: r.start,
                        end: slot - 1,
                        node: r.node,
                    })
                    .is_ok();
            }
            ok &= out
                .push(Range {
                    start: slot,
                    end: slot,
                    node,
                })
                .is_ok();
            placed = true;
            if r.end > slot {
                ok &= out
                    .push(Range {
                        start: slot + 1,
                        end: r.end,
                        node: r.node,
                    })
                    .is_ok();
            }
        }
        if !placed {
            ok &= out
                .push(Range {
                    start: slot,
                    end: slot,
                    node,
                })
                .is_ok();
        }
        if ok {
            self.ranges = out;
        } else {
            self.forget(slot);
        }
        ok
    }

    /// Drops the owner of `slot` (it will be learned again).
    pub(crate) fn forget(&mut self, slot: u16) {
        let mut out: Seq<Range, RANGE_CAP> = Seq::default();
        for r in self.ranges.as_slice() {
            if r.end < slot || r.start > slot {
                let _ = out.push(*r);
                continue;
            }
            if r.start < slot {
                let _ = out.push(Range {
                    start: r.start,
                    end: slot - 1,
                    node: r.node,
                });
            }
            if r.end > slot {
                let _ = out.push(Range {
                    start: slot + 1,
                    end: r.end,
                    node: r.node,
                });
            }
        }
        self.ranges = out;
    }
}

/// A redirect error: `MOVED <slot> <host>:<port>` or `ASK ...`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Redirect<'a> {
    pub(crate) ask: bool,
    pub(crate) slot: u16,
    /// Empty when the server does not know its endpoint (`MOVED 1 :6380`):
    /// the host of the node that answered.
    pub(crate) host: &'a [u8],
    pub(crate) port: u16,
}

/// Parses a redirect error text; `None` for any other error.
pub(crate) fn parse_redirect(text: &[u8]) -> Option<Redirect<'_>> {
    let (ask, rest) = if let Some(r) = text.strip_prefix(b"MOVED ") {
        (false, r)
    } else if let Some(r) = text.strip_prefix(b"ASK ") {
        (true, r)
    } else {
        return None;
    };
    let mut words = rest.split(|&b| b == b' ').filter(|w| !w.is_empty());
    let slot = parse_u16(words.next()?)?;
    if slot >= SLOTS {
        return None;
    }
    let addr = words.next()?;
    let colon = addr.iter().rposition(|&b| b == b':')?;
    let port = parse_u16(&addr[colon + 1..])?;
    let mut host = &addr[..colon];
    if let Some(h) = host.strip_prefix(b"[").and_then(|h| h.strip_suffix(b"]")) {
        host = h;
    }
    Some(Redirect {
        ask,
        slot,
        host,
        port,
    })
}

fn parse_u16(digits: &[u8]) -> Option<u16> {
    if digits.is_empty() || digits.len() > 5 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let v = digits
        .iter()
        .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'));
    u16::try_from(v).ok()
}

/// An endpoint a topology reply names; an empty host means "the node you
/// asked" (unknown endpoint, `?` in Redis 7).
fn endpoint(host: &[u8]) -> &[u8] {
    if host == b"?" {
        b""
    } else {
        host
    }
}

/// What a topology reply says of one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Listed {
    /// The master serving slots `start..=end`.
    Serves(u16, u16),
    /// A healthy node serving no slot (a replica): worth asking for the
    /// topology when every master we know is gone.
    Member,
    /// A node the cluster marks failed: still a member (it may come back),
    /// not worth dialling anew.
    Failed,
}

/// Calls `f(Listed::Serves(start, end), host, port)` for every slot range
/// of a `CLUSTER SHARDS` reply, with the shard's master, and `f` with
/// [`Listed::Member`] or [`Listed::Failed`] for every other node. `Err` on
/// a reply of the wrong shape. With `tls`, a node's `tls-port` is
/// preferred to its `port`.
pub(crate) fn parse_shards<'a>(
    frame: Frame<'a>,
    tls: bool,
    mut f: impl FnMut(Listed, &'a [u8], u16),
) -> Result<(), &'static str> {
    let Frame::Array(shards) = frame else {
        return Err("CLUSTER SHARDS reply is not an array");
    };
    for shard in shards.iter() {
        let Some(fields) = shard.as_aggregate() else {
            return Err("CLUSTER SHARDS entry is not a map");
        };
        let mut slots = None;
        let mut nodes = None;
        let mut it = fields.iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            match k.as_bytes() {
                Some(b"slots") => slots = v.as_aggregate(),
                Some(b"nodes") => nodes = v.as_aggregate(),
                _ => {}
            }
        }
        let (Some(slots), Some(nodes)) = (slots, nodes) else {
            return Err("CLUSTER SHARDS entry without slots or nodes");
        };
        // The master; a failed one only if no healthy master is listed
        // (a shard can list its old, failed master beside the new one).
        let mut master = None;
        let mut healthy = false;
        for node in nodes.iter() {
            let Some(fields) = node.as_aggregate() else {
                return Err("CLUSTER SHARDS node is not a map");
            };
            let (mut role, mut ip, mut ep, mut port) = (&b""[..], &b""[..], None, None);
            let mut tls_port = None;
            let mut health = &b""[..];
            let mut it = fields.iter();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                match (k.as_bytes(), v) {
                    (Some(b"role"), v) => role = v.as_bytes().unwrap_or(b""),
                    (Some(b"ip"), v) => ip = v.as_bytes().unwrap_or(b""),
                    (Some(b"endpoint"), v) => ep = v.as_bytes(),
                    (Some(b"health"), v) => health = v.as_bytes().unwrap_or(b""),
                    (Some(b"port"), Frame::Int(p)) => port = u16::try_from(p).ok(),
                    (Some(b"tls-port"), Frame::Int(p)) if tls => tls_port = u16::try_from(p).ok(),
                    _ => {}
                }
            }
            let ok = health != b"fail";
            let host = match ep.map(endpoint) {
                Some(h) if !h.is_empty() => h,
                _ => endpoint(ip),
            };
            let Some(port) = tls_port.or(port) else {
                continue;
            };
            if role == b"master" && (master.is_none() || (ok && !healthy)) {
                if let Some((h, p)) = master.replace((host, port)) {
                    // The failed master a healthy one displaced.
                    f(Listed::Failed, h, p);
                }
                healthy = ok;
            } else {
                f(if ok { Listed::Member } else { Listed::Failed }, host, port);
            }
        }
        let Some((host, port)) = master else {
            // A shard without a master (all failed): its slots stay unowned.
            continue;
        };
        let mut bounds = slots.iter();
        while let (Some(a), Some(b)) = (bounds.next(), bounds.next()) {
            let (Some(a), Some(b)) = (a.as_int(), b.as_int()) else {
                return Err("CLUSTER SHARDS slots are not integers");
            };
            match (u16::try_from(a), u16::try_from(b)) {
                (Ok(a), Ok(b)) if a <= b && b < SLOTS => f(Listed::Serves(a, b), host, port),
                _ => return Err("CLUSTER SHARDS slot out of range"),
            }
        }
    }
    Ok(())
}

/// Like [`parse_shards`] for a `CLUSTER SLOTS` reply (the first node of
/// each range is its master).
pub(crate) fn parse_slots<'a>(
    frame: Frame<'a>,
    mut f: impl FnMut(Listed, &'a [u8], u16),
) -> Result<(), &'static str> {
    let Frame::Array(ranges) = frame else {
        return Err("CLUSTER SLOTS reply is not an array");
    };
    for range in ranges.iter() {
        let Some(items) = range.as_aggregate() else {
            return Err("CLUSTER SLOTS entry is not an array");
        };
        let mut it = items.iter();
        let (Some(a), Some(b), Some(master)) = (
            it.next().and_then(|f| f.as_int()),
            it.next().and_then(|f| f.as_int()),
            it.next().and_then(|f| f.as_aggregate()),
        ) else {
            return Err("CLUSTER SLOTS entry has the wrong shape");
        };
        let mut m = master.iter();
        let (Some(host), Some(port)) = (
            m.next().and_then(|f| f.as_bytes()),
            m.next().and_then(|f| f.as_int()),
        ) else {
            return Err("CLUSTER SLOTS node has the wrong shape");
        };
        match (u16::try_from(a), u16::try_from(b), u16::try_from(port)) {
            (Ok(a), Ok(b), Ok(p)) if a <= b && b < SLOTS => {
                f(Listed::Serves(a, b), endpoint(host), p);
            }
            _ => return Err("CLUSTER SLOTS range out of range"),
        }
        for replica in it {
            let mut r = replica.as_aggregate().into_iter().flat_map(|a| a.iter());
            if let (Some(host), Some(Ok(port))) = (
                r.next().and_then(|f| f.as_bytes()),
                r.next().and_then(|f| f.as_int()).map(u16::try_from),
            ) {
                f(Listed::Member, endpoint(host), port);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    extern crate std;

    use std::format;

    use super::*;

    fn slot(key: &str) -> u16 {
        key_slot(&[key.as_bytes()])
    }

    #[test]
    fn slots_match_redis() {
        // Values from `CLUSTER KEYSLOT` on redis-server 7.0.15.
        assert_eq!(slot("foo"), 12182);
        assert_eq!(slot("bar"), 5061);
        assert_eq!(slot("123456789"), 12739);
        assert_eq!(slot("{user1000}.following"), slot("user1000"));
        assert_eq!(slot("foo{}{bar}"), slot("foo{}{bar}"));
        assert_eq!(slot("foo{{bar}}zap"), slot("{bar"));
        assert_eq!(slot("foo{bar}{zap}"), slot("bar"));
        // Split across parts, tag spanning parts.
        assert_eq!(key_slot(&[b"ab{c", b"d}e"]), slot("cd"));
        assert_eq!(
            key_slot(&[b"rueidislock", b":", b"0", b":", b"x"]),
            slot("rueidislock:0:x")
        );
        assert_eq!(key_slot(&[b"{", b"}x"]), slot("{}x"));
    }

    #[test]
    fn redirects_parse() {
        let r = parse_redirect(b"MOVED 3999 127.0.0.1:6381").unwrap();
        assert_eq!(
            (r.ask, r.slot, r.host, r.port),
            (false, 3999, &b"127.0.0.1"[..], 6381)
        );
        let r = parse_redirect(b"ASK 1 :7000").unwrap();
        assert_eq!((r.ask, r.slot, r.host, r.port), (true, 1, &b""[..], 7000));
        let r = parse_redirect(b"MOVED 2 [::1]:7000").unwrap();
        assert_eq!(r.host, b"::1");
        assert!(parse_redirect(b"MOVED 16384 a:1").is_none());
        assert!(parse_redirect(b"MOVED x a:1").is_none());
        assert!(parse_redirect(b"MOVED 1 a:99999").is_none());
        assert!(parse_redirect(b"ERR nope").is_none());
        assert!(parse_redirect(b"MOVED 1").is_none());
    }

    #[test]
    fn shards_prefer_the_healthy_master() {
        let node = |port: u16, role: &str, health: &str| {
            format!(
                "%4\r\n$4\r\nport\r\n:{port}\r\n$8\r\nendpoint\r\n$1\r\n?\r\n$4\r\nrole\r\n${}\r\n{role}\r\n$6\r\nhealth\r\n${}\r\n{health}\r\n",
                role.len(),
                health.len()
            )
        };
        let reply = format!(
            "*1\r\n%2\r\n$5\r\nslots\r\n*2\r\n:0\r\n:16383\r\n$5\r\nnodes\r\n*3\r\n{}{}{}",
            node(7000, "master", "fail"),
            node(7003, "master", "online"),
            node(7004, "replica", "online")
        );
        let (frame, _) = crate::resp::parse(reply.as_bytes()).unwrap().unwrap();
        let mut got = std::vec::Vec::new();
        parse_shards(frame, false, |r, h, p| got.push((r, h.to_vec(), p))).unwrap();
        // `?` endpoint and no ip: the asked node's host (empty here). The
        // failed master is only listed (still a member), the replica kept
        // for discovery.
        let none = std::vec::Vec::new;
        assert_eq!(
            got,
            [
                (Listed::Failed, none(), 7000),
                (Listed::Member, none(), 7004),
                (Listed::Serves(0, 16383), none(), 7003)
            ]
        );
    }

    #[test]
    fn shards_tls_ports() {
        // A node of a `tls-cluster yes` cluster with a plain port too, and
        // one with a TLS port only.
        let reply = "*1\r\n%2\r\n$5\r\nslots\r\n*2\r\n:0\r\n:16383\r\n$5\r\nnodes\r\n*2\r\n\
            %3\r\n$4\r\nport\r\n:7000\r\n$8\r\ntls-port\r\n:8000\r\n$4\r\nrole\r\n$6\r\nmaster\r\n\
            %2\r\n$8\r\ntls-port\r\n:8001\r\n$4\r\nrole\r\n$7\r\nreplica\r\n";
        for (tls, want) in [(false, [7000]), (true, [8000])] {
            let (frame, _) = crate::resp::parse(reply.as_bytes()).unwrap().unwrap();
            let mut got = std::vec::Vec::new();
            parse_shards(frame, tls, |r, _, p| got.push((r, p))).unwrap();
            let mut expect = std::vec::Vec::new();
            if tls {
                expect.push((Listed::Member, 8001));
            }
            expect.push((Listed::Serves(0, 16383), want[0]));
            assert_eq!(got, expect, "tls {tls}");
        }
    }

    #[test]
    fn map_owner_and_moves() {
        let mut list: Seq<Range, RANGE_CAP> = Seq::default();
        for (s, e, n) in [(5461, 10922, 1), (0, 5460, 0), (10923, 16383, 2)] {
            list.push(Range {
                start: s,
                end: e,
                node: NodeId(n),
            })
            .unwrap();
        }
        let mut m = SlotMap::from_ranges(list);
        assert_eq!(m.owner(0), Some(NodeId(0)));
        assert_eq!(m.owner(5461), Some(NodeId(1)));
        assert_eq!(m.owner(16383), Some(NodeId(2)));
        assert!(m.set_owner(6000, NodeId(2)));
        assert_eq!(m.owner(5999), Some(NodeId(1)));
        assert_eq!(m.owner(6000), Some(NodeId(2)));
        assert_eq!(m.owner(6001), Some(NodeId(1)));
        assert_eq!(m.ranges().len(), 5);
        m.forget(0);
        assert_eq!(m.owner(0), None);
        assert_eq!(m.owner(1), Some(NodeId(0)));
        assert!(m.set_owner(0, NodeId(3)));
        assert_eq!(m.owner(0), Some(NodeId(3)));
        let empty = SlotMap::default();
        assert_eq!(empty.owner(5), None);
        let mut e = empty.clone();
        assert!(e.set_owner(16383, NodeId(1)));
        assert_eq!(e.owner(16383), Some(NodeId(1)));
        assert_eq!(e.owner(16382), None);
    }
}
