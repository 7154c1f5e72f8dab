//! The simulated network: per-connection FIFO pipes with latency and
//! jitter, links that partition and heal, connections that close and reset.

use std::collections::{BTreeMap, VecDeque};

use super::rng::SimRng;

/// What travels through a pipe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    /// Bytes.
    Data(Vec<u8>),
    /// The sender closed (FIN / RST): the receiver learns the connection is gone.
    Eof,
}

/// One direction of a connection: messages with their arrival times, in order.
#[derive(Debug, Default)]
pub struct Pipe {
    /// `(arrival, message)`, arrival times non-decreasing.
    pub q: VecDeque<(u64, Msg)>,
    /// A delivery event is pending for the head.
    pub scheduled: bool,
}

impl Pipe {
    /// Drops every data message, keeping end-of-stream markers.
    pub fn drop_data(&mut self) {
        self.q.retain(|(_, m)| *m == Msg::Eof);
    }
}

/// A TCP connection between a locker and a node.
#[derive(Debug)]
pub struct Conn {
    /// The locker (client side).
    pub locker: usize,
    /// The node (server side).
    pub node: usize,
    /// The locker's engine's id of the node (differs from `node` in a
    /// cluster, where each engine numbers the nodes as it learns them).
    pub enode: usize,
    /// Client to server.
    pub up: Pipe,
    /// Server to client.
    pub down: Pipe,
    /// The client still reads from it.
    pub client_open: bool,
    /// The server still serves it.
    pub server_open: bool,
}

/// The path between one locker and one node.
#[derive(Debug, Clone)]
pub struct Link {
    /// Minimum one-way latency (ns).
    pub base: u64,
    /// Extra uniform jitter (ns).
    pub jitter: u64,
    /// Nothing gets through before this real time.
    pub partitioned_until: u64,
    /// Latest scheduled arrival per direction: the link never reorders,
    /// not even across connections.
    last_up: u64,
    last_down: u64,
}

impl Link {
    /// A link with the given latency.
    pub fn new(base: u64, jitter: u64) -> Self {
        Link {
            base,
            jitter,
            partitioned_until: 0,
            last_up: 0,
            last_down: 0,
        }
    }

    /// True while partitioned at `now`.
    pub fn cut(&self, now: u64) -> bool {
        now < self.partitioned_until
    }

    /// Largest one-way latency.
    pub fn max_latency(&self) -> u64 {
        self.base + self.jitter
    }

    /// A one-way latency draw.
    pub fn latency(&self, rng: &mut SimRng) -> u64 {
        self.base + rng.below(self.jitter + 1)
    }
}

/// All connections and links.
#[derive(Debug)]
pub struct Net {
    /// Live connections by id.
    pub conns: BTreeMap<u64, Conn>,
    /// `links[locker][node]`.
    pub links: Vec<Vec<Link>>,
    next: u64,
}

impl Net {
    /// A network with the given links.
    pub fn new(links: Vec<Vec<Link>>) -> Self {
        Net {
            conns: BTreeMap::new(),
            links,
            next: 1,
        }
    }

    /// Opens a connection from `locker` to `node` (`enode` in the
    /// locker's engine); returns its id.
    pub fn open(&mut self, locker: usize, node: usize, enode: usize) -> u64 {
        let id = self.next;
        self.next += 1;
        self.conns.insert(
            id,
            Conn {
                locker,
                node,
                enode,
                up: Pipe::default(),
                down: Pipe::default(),
                client_open: true,
                server_open: true,
            },
        );
        id
    }

    /// Queues `msg` on a pipe; returns the time to schedule a delivery at
    /// when the pipe had none pending.
    pub fn send(
        &mut self,
        conn: u64,
        up: bool,
        msg: Msg,
        now: u64,
        rng: &mut SimRng,
    ) -> Option<u64> {
        let c = self.conns.get_mut(&conn)?;
        let link = &mut self.links[c.locker][c.node];
        let lat = link.latency(rng);
        let last = if up {
            &mut link.last_up
        } else {
            &mut link.last_down
        };
        let at = (now + lat).max(*last);
        *last = at;
        let pipe = if up { &mut c.up } else { &mut c.down };
        pipe.q.push_back((at, msg));
        if pipe.scheduled {
            None
        } else {
            pipe.scheduled = true;
            Some(at)
        }
    }

    /// Forgets a connection both sides are done with.
    pub fn reap(&mut self, conn: u64) {
        if let Some(c) = self.conns.get(&conn) {
            if !c.client_open && !c.server_open && c.up.q.is_empty() && c.down.q.is_empty() {
                self.conns.remove(&conn);
            }
        }
    }

    /// True when nothing is in flight anywhere.
    pub fn quiet(&self) -> bool {
        self.conns
            .values()
            .all(|c| c.up.q.is_empty() && c.down.q.is_empty())
    }
}
