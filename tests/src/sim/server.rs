//! A simulated Redis 7.0 node that speaks RESP3 bytes.
//!
//! It reads what the engine writes with the test kit's RESP reader and answers
//! with RESP3 bytes, so the engine's real reader, writer and handshake are
//! exercised. Semantics follow redis-server 7.0.15; the points
//! below were checked against a real 7.0.15 server (raw RESP3 sockets):
//!
//! - Keys carry millisecond expiry times on the node's own (drifting) clock.
//!   A key is expired once `now_ms > expire_ms`; access expires it lazily,
//!   and an active cycle samples volatile keys now and then, so expiry
//!   invalidations can come late.
//! - `CLIENT TRACKING ON OPTOUT`: every read (`GET`, `PTTL`, also inside
//!   scripts, also of a missing key) arms tracking of that key for the
//!   reading connection, after the command ran.
//! - Any write (`SET`, `DEL`, `PEXPIRE`, expiry, `FLUSHDB`) invalidates every
//!   connection tracking the key and clears the key's tracking (one-shot).
//!   For the connection whose command caused it (including a lazy expiry
//!   during its own read) the push is deferred until right after the reply,
//!   and dropped entirely with `NOLOOP` (7.0.5+ semantics, also for
//!   scripts). Active expiry has no current client: everyone is told.
//! - `FLUSHDB`/`FLUSHALL` send `>2 invalidate _` to every tracking client,
//!   whether it tracks a key or not, and reset the tracking table.
//! - `SET ... PXAT <past>` replies `+OK` and leaves no key; `EVALSHA` of an
//!   unloaded script replies `-NOSCRIPT No matching script. Please use EVAL.`
//!
//! Cluster mode (`Node::cluster`): `HELLO` reports `mode: cluster` and the
//! node's role; a key command for a slot the node's view does not give it
//! is answered `-MOVED <slot> <host>:<port>` (replicas redirect to their
//! master); a migrating source answers `-ASK` for keys it no longer has and
//! an importing target serves the slot only right after `ASKING`;
//! `CLUSTER SHARDS` / `CLUSTER SLOTS` describe the node's view (Redis 6.2
//! nodes refuse `SHARDS`). A master logs every change of its keyspace as a
//! [`ReplOp`] for its replica; a replica applies them (with invalidations
//! for clients still tracking there), runs no expiry cycle and reports no
//! [`Change`]s (the checker looks at masters).
//!
//! Scripts are executed natively: the node knows the engine's Lua scripts by
//! their exact text (copied below). A script it does not know is a contract
//! error that fails the run: update this file together with `core/src/scripts.rs`.

use std::collections::{BTreeMap, BTreeSet};

use tracklock_testkit::resp;

use super::clock::Clock;
use super::cluster::{self, key_slot, NodeCluster};
use super::rng::SimRng;

/// Copy of `tracklock_core`'s relative extend script (must match byte for byte).
pub const EXTEND_PX: &str = "if redis.call('GET',KEYS[1])~=ARGV[1] then return {0,0} end \
local t=redis.call('PTTL',KEYS[1]) local w=0 \
if t<tonumber(ARGV[3]) then redis.call('PEXPIRE',KEYS[1],ARGV[2]) redis.call('GET',KEYS[1]) \
t=redis.call('PTTL',KEYS[1]) w=1 end \
if t<0 then t=0 end return {t,w}";

/// Copy of `tracklock_core`'s absolute extend script.
pub const EXTEND_PXAT: &str = "if redis.call('GET',KEYS[1])~=ARGV[1] then return {0,0} end \
local t=redis.call('PTTL',KEYS[1]) local w=0 \
if t<tonumber(ARGV[3]) then redis.call('PEXPIREAT',KEYS[1],ARGV[2]) redis.call('GET',KEYS[1]) \
t=redis.call('PTTL',KEYS[1]) w=1 end \
if t<0 then t=0 end return {t,w}";

/// Copy of `tracklock_core`'s release script (Go `rueidislock`'s, byte for byte).
pub const RELEASE: &str =
    "if redis.call(\"GET\",KEYS[1]) == ARGV[1] then return redis.call(\"DEL\",KEYS[1]) else return 0 end";

/// Copy of `tracklock_core`'s fenced read (replaces `PTTL` behind `SET NX`).
pub const FENCE_READ: &str = "local t=redis.call('PTTL',KEYS[1]) \
local v=redis.call('GET',KEYS[1]) if v~=ARGV[1] then if v then return {t,-1} end return {t,-2} end \
local f=tonumber(redis.call('GET',KEYS[2]) or '0') \
if not f or f<0 or f~=math.floor(f) then return redis.error_reply('ERR tracklock: fencing counter is not a whole number') end \
return {t,f}";

/// Copy of `tracklock_core`'s fencing counter raise.
pub const FENCE_RAISE: &str =
    "local v=redis.call('GET',KEYS[1]) if v~=ARGV[1] then if v then return -1 end return -2 end \
local f=tonumber(redis.call('GET',KEYS[2]) or '0') \
if not f then return redis.error_reply('ERR tracklock: fencing counter is not a whole number') end \
if f>=tonumber(ARGV[2]) then return 0 end \
redis.call('SET',KEYS[2],ARGV[2]) return 1";

/// The Unix time (ms) every node's wall clock reads at real time zero, before
/// its own offset.
pub const UNIX_BASE_MS: u64 = 1_700_000_000_000;

/// The client id of the admin (never connected through the network).
pub const ADMIN: u64 = u64::MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ScriptKind {
    ExtendPx,
    ExtendPxat,
    Release,
    FenceRead,
    FenceRaise,
}

impl ScriptKind {
    /// Keys the script takes: the fencing scripts name the lock key and
    /// its counter (same slot), the others the lock key.
    fn keys(self) -> u64 {
        match self {
            ScriptKind::FenceRead | ScriptKind::FenceRaise => 2,
            _ => 1,
        }
    }
}

fn sha_hex(body: &str) -> [u8; 40] {
    let digest = sha1_smol::Sha1::from(body).digest().bytes();
    let mut out = [0u8; 40];
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in digest.iter().enumerate() {
        out[2 * i] = HEX[usize::from(b >> 4)];
        out[2 * i + 1] = HEX[usize::from(b & 15)];
    }
    out
}

/// Who wrote a key's current value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writer {
    /// A locker (index in the world).
    Locker(usize),
    /// The admin client.
    Admin,
}

/// One string key.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The value.
    pub value: Vec<u8>,
    /// Expiry on the node's clock, in ms, if any.
    pub expire_ms: Option<u64>,
    /// Who wrote the value.
    pub writer: Writer,
    /// Last written through a connection its client had already abandoned
    /// (bytes that were still in flight, or buffered by a paused node).
    pub orphan: bool,
}

/// Why a key's value went away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// Its TTL ran out (noticed lazily or by the active cycle).
    Expired,
    /// Deleted or overwritten by a command of this writer.
    Written(Writer),
    /// The node restarted without its data.
    DataLoss,
}

/// A change of a master's keyspace, for its replica.
#[derive(Debug, Clone)]
pub enum ReplOp {
    /// `key` of `db` now holds `entry` (expiry on the master's clock), or
    /// nothing.
    Key {
        /// The database.
        db: u32,
        /// The key.
        key: Vec<u8>,
        /// Its new state.
        entry: Option<Entry>,
    },
    /// A database (or all) was flushed.
    Flush {
        /// `None`: every database.
        db: Option<u32>,
    },
}

/// A key's value went away (deleted, expired or replaced).
#[derive(Debug, Clone)]
pub struct Change {
    /// The node.
    pub node: usize,
    /// The key.
    pub key: Vec<u8>,
    /// The value it had.
    pub old_value: Vec<u8>,
    /// Who had written that value.
    pub old_writer: Writer,
    /// Why it went.
    pub cause: Cause,
}

/// What one call into a node produced.
#[derive(Debug, Default)]
pub struct Fx {
    /// Bytes to send, per connection, in order.
    pub out: Vec<(u64, Vec<u8>)>,
    /// Values that went away.
    pub changes: Vec<Change>,
    /// Command log lines (only when tracing).
    pub log: Vec<String>,
    /// Contract errors (the engine sent something the node cannot serve).
    pub errors: Vec<String>,
    /// Connections the node closed (protocol error).
    pub closed: Vec<u64>,
    /// Keyspace changes of a master, for its replica: `(node, op)`.
    pub repl: Vec<(usize, ReplOp)>,
    /// Releases refused with an error (`CLUSTERDOWN`): `(key, value)`. The
    /// engine leaves such a key to expire.
    pub refused_releases: Vec<(Vec<u8>, Vec<u8>)>,
    /// Lockers whose extend script was refused (`CLUSTERDOWN`): it did not
    /// run, so it did not re-arm their tracking of the key.
    pub refused_extends: Vec<usize>,
    /// Every error reply to a locker's lock command (injected or not).
    pub refusals: Vec<Refusal>,
    /// `(locker, key)` of each `SET NX` a locker sent that returned null
    /// because another value was there.
    pub taken: Vec<(usize, Vec<u8>)>,
}

/// An error reply a node sent to a locker's lock command.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// The locker.
    pub locker: usize,
    /// The node.
    pub node: usize,
    /// The key.
    pub key: Vec<u8>,
    /// The release script was refused.
    pub release: bool,
    /// The error text (without `-`).
    pub message: String,
}

/// An injected error-reply fault (a window during which a node refuses
/// some commands with an error, as Redis 7.0 does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefuseKind {
    /// `maxmemory` reached: deny-oom commands (`SET`, scripts without
    /// `no-writes`) refused; reads and `DEL` served.
    Oom,
    /// An ACL without some of `set`/`pttl`/`evalsha`/`eval` (bit mask in
    /// that order).
    NoPerm(u8),
    /// The node was demoted: writes (`SET`, `DEL`, scripts) refused.
    ReadOnly,
    /// Loading its dataset: every key command refused.
    Loading,
    /// A script runs past `busy-reply-threshold`: every key command refused.
    Busy,
    /// `stop-writes-on-bgsave-error`: writes refused.
    Misconf,
}

impl RefuseKind {
    /// The error text for `cmd` (upper case), or `None` when served.
    pub fn refuse(self, cmd: &[u8]) -> Option<String> {
        let write = matches!(cmd, b"SET" | b"DEL" | b"EVAL" | b"EVALSHA" | b"PEXPIRE");
        let key_cmd = write || matches!(cmd, b"GET" | b"PTTL");
        match self {
            RefuseKind::Oom => matches!(cmd, b"SET" | b"EVAL" | b"EVALSHA")
                .then(|| "OOM command not allowed when used memory > 'maxmemory'.".into()),
            RefuseKind::NoPerm(mask) => {
                let i = [&b"SET"[..], b"PTTL", b"EVALSHA", b"EVAL"]
                    .iter()
                    .position(|c| *c == cmd)?;
                (mask & (1 << i) != 0).then(|| {
                    format!(
                        "NOPERM this user has no permissions to run the '{}' command",
                        String::from_utf8_lossy(cmd).to_lowercase()
                    )
                })
            }
            RefuseKind::ReadOnly => {
                write.then(|| "READONLY You can't write against a read only replica.".into())
            }
            RefuseKind::Loading => {
                key_cmd.then(|| "LOADING Redis is loading the dataset in memory".into())
            }
            RefuseKind::Busy => key_cmd.then(|| {
                "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSCRIPT.".into()
            }),
            RefuseKind::Misconf => write.then(|| {
                "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Commands that may modify the data set are disabled, because this instance is configured to report errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the Redis logs for details about the RDB error.".into()
            }),
        }
    }
}

#[derive(Debug)]
struct Client {
    locker: Option<usize>,
    db: u32,
    tracking: bool,
    noloop: bool,
    authed: bool,
    orphan: bool,
    /// `ASKING` was the previous command (cluster).
    asking: bool,
    rx: Vec<u8>,
    out: Vec<u8>,
    /// Invalidations for this client caused by its own command: sent after the reply.
    pending: Vec<Option<Vec<u8>>>,
}

/// Whether the node is serving.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    /// Serving.
    Up,
    /// Frozen (SIGSTOP, a slow fork...): accepts bytes, answers nothing.
    Paused,
    /// Crashed or restarting: no connections.
    Down,
}

/// A simulated Redis node.
#[derive(Debug)]
pub struct Node {
    /// Index in the world.
    pub id: usize,
    /// The node's monotonic clock (drives expiry).
    pub clock: Clock,
    /// Offset of the node's wall clock from `UNIX_BASE_MS + clock` (for `PXAT`).
    pub wall_offset_ms: i64,
    /// Serving, paused or down.
    pub state: NodeState,
    /// `version` reported by `HELLO`.
    pub version: &'static str,
    /// Password required by `HELLO ... AUTH`, if any.
    pub password: Option<String>,
    /// Log every command (for traces).
    pub trace: bool,
    /// Only keys with this prefix are reported as [`Change`]s.
    pub prefix: Vec<u8>,
    dbs: BTreeMap<u32, BTreeMap<Vec<u8>, Entry>>,
    tracking: BTreeMap<Vec<u8>, BTreeSet<u64>>,
    clients: BTreeMap<u64, Client>,
    scripts: BTreeSet<[u8; 40]>,
    known: [([u8; 40], ScriptKind, &'static str); 5],
    /// Counters: commands served.
    pub commands: u64,
    /// Cluster mode: the node's view and migration state.
    pub cluster: Option<NodeCluster>,
    /// Serving as a replica (cluster): no expiry cycle, no [`Change`]s, no
    /// replication of its own.
    pub replica: bool,
    /// Counters (cluster): `MOVED`, `ASK` replies, `ASKING` commands,
    /// `CLUSTER SHARDS` and `CLUSTER SLOTS` served, `CLUSTERDOWN` replies.
    pub cluster_counts: [u64; 6],
    /// An error-reply window: `(kind, until)` (real ns); commands of
    /// lockers (never the admin's) are refused until then.
    pub refuse: Option<(RefuseKind, u64)>,
    /// Teeth: the release script answers 1 without deleting the key.
    pub bug_release_noop: bool,
    /// Teeth: the fencing raise answers 1 without raising the counter.
    pub bug_fence_noop: bool,
}

fn simple(out: &mut Vec<u8>, s: &str) {
    out.push(b'+');
    out.extend_from_slice(s.as_bytes());
    out.extend_from_slice(b"\r\n");
}

fn error(out: &mut Vec<u8>, s: &str) {
    out.push(b'-');
    out.extend_from_slice(s.as_bytes());
    out.extend_from_slice(b"\r\n");
}

fn int(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(format!(":{v}\r\n").as_bytes());
}

fn null(out: &mut Vec<u8>) {
    out.extend_from_slice(b"_\r\n");
}

fn bulk(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(format!("${}\r\n", b.len()).as_bytes());
    out.extend_from_slice(b);
    out.extend_from_slice(b"\r\n");
}

/// `>2 invalidate [key]`, or `>2 invalidate _` for a flush.
fn invalidation(out: &mut Vec<u8>, key: Option<&[u8]>) {
    out.extend_from_slice(b">2\r\n$10\r\ninvalidate\r\n");
    match key {
        Some(k) => {
            out.extend_from_slice(b"*1\r\n");
            bulk(out, k);
        }
        None => null(out),
    }
}

fn parse_u64(b: &[u8]) -> Option<u64> {
    std::str::from_utf8(b).ok()?.parse().ok()
}

fn parse_i64(b: &[u8]) -> Option<i64> {
    std::str::from_utf8(b).ok()?.parse().ok()
}

/// A short printable form of an argument (values are random bytes).
pub fn show(arg: &[u8]) -> String {
    if arg.len() > 60 {
        return format!("<{} bytes>", arg.len());
    }
    if arg.iter().all(|b| b.is_ascii_graphic()) {
        String::from_utf8_lossy(arg).into_owned()
    } else {
        let hex: String = arg.iter().take(3).map(|b| format!("{b:02x}")).collect();
        format!("v:{hex}")
    }
}

/// Execution context of one command.
#[derive(Clone, Copy)]
struct Ctx {
    client: u64,
    db: u32,
    now_ms: u64,
    writer: Writer,
    orphan: bool,
}

impl Node {
    /// A fresh, empty node.
    pub fn new(id: usize, clock: Clock, version: &'static str, password: Option<String>) -> Self {
        let known = [
            (sha_hex(EXTEND_PX), ScriptKind::ExtendPx, EXTEND_PX),
            (sha_hex(EXTEND_PXAT), ScriptKind::ExtendPxat, EXTEND_PXAT),
            (sha_hex(RELEASE), ScriptKind::Release, RELEASE),
            (sha_hex(FENCE_READ), ScriptKind::FenceRead, FENCE_READ),
            (sha_hex(FENCE_RAISE), ScriptKind::FenceRaise, FENCE_RAISE),
        ];
        let mut n = Node {
            id,
            clock,
            wall_offset_ms: 0,
            state: NodeState::Up,
            version,
            password,
            trace: false,
            prefix: Vec::new(),
            dbs: BTreeMap::new(),
            tracking: BTreeMap::new(),
            clients: BTreeMap::new(),
            scripts: BTreeSet::new(),
            known,
            commands: 0,
            cluster: None,
            replica: false,
            cluster_counts: [0; 6],
            refuse: None,
            bug_release_noop: false,
            bug_fence_noop: false,
        };
        n.add_admin();
        n
    }

    fn add_admin(&mut self) {
        self.clients.insert(
            ADMIN,
            Client {
                locker: None,
                db: 0,
                tracking: false,
                noloop: false,
                authed: true,
                orphan: false,
                asking: false,
                rx: Vec::new(),
                out: Vec::new(),
                pending: Vec::new(),
            },
        );
    }

    /// The node's clock in ms at real time `real` (ns).
    pub fn now_ms(&self, real: u64) -> u64 {
        self.clock.at(real) / 1_000_000
    }

    /// The real time (ns) at which the node's clock first reads `ms`.
    pub fn real_at_ms(&self, ms: u64) -> u64 {
        self.clock.real_at(ms.saturating_mul(1_000_000))
    }

    /// Unix ms minus the node's monotonic ms: its wall clock is
    /// `UNIX_BASE_MS` at real time zero, plus its offset.
    fn wall_base(&self) -> i64 {
        UNIX_BASE_MS as i64 + self.wall_offset_ms - (self.clock.offset / 1_000_000) as i64
    }

    /// The node's wall clock (Unix ms) at real time `real`.
    pub fn unix_ms(&self, real: u64) -> u64 {
        (self.now_ms(real) as i64 + self.wall_base()) as u64
    }

    /// A connection was accepted (the kernel accepts even while paused).
    pub fn connect(&mut self, conn: u64, locker: usize) {
        self.clients.insert(
            conn,
            Client {
                locker: Some(locker),
                db: 0,
                tracking: false,
                noloop: false,
                authed: self.password.is_none(),
                orphan: false,
                asking: false,
                rx: Vec::new(),
                out: Vec::new(),
                pending: Vec::new(),
            },
        );
    }

    /// The connection is gone (its tracking with it).
    pub fn disconnect(&mut self, conn: u64) {
        self.clients.remove(&conn);
    }

    /// The client closed `conn`; what it still sends is served all the same.
    pub fn orphan(&mut self, conn: u64) {
        if let Some(c) = self.clients.get_mut(&conn) {
            c.orphan = true;
        }
    }

    /// True when `body`'s SHA is in the script cache (`EVALSHA` works).
    pub fn knows_script(&self, body: &str) -> bool {
        self.scripts.contains(&sha_hex(body))
    }

    /// True while `conn` is a client of this node.
    pub fn has_client(&self, conn: u64) -> bool {
        self.clients.contains_key(&conn)
    }

    /// The node crashes: clients, tracking and the script cache are gone;
    /// the data too unless `keep_data` (persistence that loses nothing).
    pub fn crash(&mut self, keep_data: bool, fx: &mut Fx) {
        self.clients.clear();
        self.add_admin();
        self.tracking.clear();
        self.scripts.clear();
        self.state = NodeState::Down;
        if !keep_data {
            let dbs = std::mem::take(&mut self.dbs);
            for db in dbs.into_values() {
                for (key, e) in db {
                    self.report(fx, key, e, Cause::DataLoss);
                }
            }
        }
    }

    /// A restart without data, reported at restart (cluster nodes keep
    /// their data while down: their replica may be compared against it).
    pub fn wipe(&mut self, fx: &mut Fx) {
        let dbs = std::mem::take(&mut self.dbs);
        for db in dbs.into_values() {
            for (key, e) in db {
                self.report(fx, key, e, Cause::DataLoss);
            }
        }
    }

    /// Marks a stored key as written by bytes nobody waits for any more (a
    /// value a failover brought back, a release refused): the mark travels
    /// to the replica with the key.
    pub fn mark_orphan(&mut self, db: u32, key: &[u8], fx: &mut Fx) {
        if let Some(e) = self.dbs.get_mut(&db).and_then(|m| m.get_mut(key)) {
            e.orphan = true;
            self.replicate(db, key, fx);
        }
    }

    /// The stored entry of `key` (expired or not).
    pub fn stored(&self, db: u32, key: &[u8]) -> Option<&Entry> {
        self.dbs.get(&db)?.get(key)
    }

    /// The live (not logically expired) entry of `key` in `db` at real time `real`.
    pub fn peek(&self, db: u32, key: &[u8], real: u64) -> Option<&Entry> {
        let now = self.now_ms(real);
        self.dbs
            .get(&db)?
            .get(key)
            .filter(|e| e.expire_ms.is_none_or(|x| now <= x))
    }

    /// Every live key of `db` (with its entry) at real time `real`.
    pub fn live_keys(&self, db: u32, real: u64) -> Vec<(Vec<u8>, Entry)> {
        let now = self.now_ms(real);
        self.dbs
            .get(&db)
            .map(|m| {
                m.iter()
                    .filter(|(_, e)| e.expire_ms.is_none_or(|x| now <= x))
                    .map(|(k, e)| (k.clone(), e.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every stored key (expired or not) of any db.
    pub fn stored_keys(&self) -> usize {
        self.dbs.values().map(BTreeMap::len).sum()
    }

    fn report(&self, fx: &mut Fx, key: Vec<u8>, e: Entry, cause: Cause) {
        // Lock keys, and fencing counters (`{prefix:i:name}:fence`), whose
        // loss the checker must hear of.
        let ours = key.starts_with(&self.prefix)
            || key
                .strip_prefix(b"{")
                .is_some_and(|k| k.starts_with(&self.prefix));
        if ours && !self.replica {
            fx.changes.push(Change {
                node: self.id,
                key,
                old_value: e.value,
                old_writer: e.writer,
                cause,
            });
        }
    }

    /// Bytes from `conn` arrive; complete commands are served unless paused.
    pub fn receive(&mut self, conn: u64, bytes: &[u8], real: u64, fx: &mut Fx) {
        let Some(c) = self.clients.get_mut(&conn) else {
            return;
        };
        c.rx.extend_from_slice(bytes);
        if self.state == NodeState::Up {
            self.serve(conn, real, fx);
            self.flush(fx);
        }
    }

    /// Serves whatever arrived while paused.
    pub fn resume(&mut self, real: u64, fx: &mut Fx) {
        self.state = NodeState::Up;
        let ids: Vec<u64> = self.clients.keys().copied().collect();
        for id in ids {
            self.serve(id, real, fx);
        }
        self.flush(fx);
    }

    fn flush(&mut self, fx: &mut Fx) {
        for (&id, c) in self.clients.iter_mut() {
            if !c.out.is_empty() {
                let out = std::mem::take(&mut c.out);
                if id != ADMIN {
                    fx.out.push((id, out));
                }
            }
        }
    }

    fn serve(&mut self, conn: u64, real: u64, fx: &mut Fx) {
        loop {
            let Some(c) = self.clients.get_mut(&conn) else {
                return;
            };
            // The test kit's reader, not the engine's: a bug in the
            // engine's RESP3 reader cannot hide one in its writer.
            let (args, used) = match resp::parse_command(&c.rx) {
                Ok(None) => return,
                Ok(Some((a, n))) if !a.is_empty() => (a, n),
                _ => {
                    fx.errors.push(format!(
                        "node {}: engine sent malformed RESP or a command that is not an \
                         array of bulk strings",
                        self.id
                    ));
                    self.protocol_error(conn, fx);
                    return;
                }
            };
            c.rx.drain(..used);
            self.command(conn, &args, real, fx);
        }
    }

    fn protocol_error(&mut self, conn: u64, fx: &mut Fx) {
        if let Some(c) = self.clients.get_mut(&conn) {
            error(&mut c.out, "ERR Protocol error");
            c.rx.clear();
        }
        fx.closed.push(conn);
    }

    /// Runs one admin command (no network, no tracking) and returns its reply.
    pub fn admin(&mut self, args: &[&[u8]], real: u64, fx: &mut Fx) -> Vec<u8> {
        let args: Vec<Vec<u8>> = args.iter().map(|a| a.to_vec()).collect();
        self.command(ADMIN, &args, real, fx);
        let reply = self
            .clients
            .get_mut(&ADMIN)
            .map(|c| std::mem::take(&mut c.out))
            .unwrap_or_default();
        self.flush(fx);
        reply
    }

    fn command(&mut self, conn: u64, args: &[Vec<u8>], real: u64, fx: &mut Fx) {
        self.commands += 1;
        let Some(c) = self.clients.get(&conn) else {
            return;
        };
        let ctx = Ctx {
            client: conn,
            db: c.db,
            now_ms: self.now_ms(real),
            writer: c.locker.map_or(Writer::Admin, Writer::Locker),
            orphan: c.orphan,
        };
        let authed = c.authed;
        let asking = c.asking;
        let mut out = Vec::new();
        let name = args[0].to_ascii_uppercase();
        let injected = match self.refuse {
            Some((kind, until)) if real < until && conn != ADMIN => kind.refuse(&name),
            _ => None,
        };
        let mut refused = None;
        if !authed && name != b"HELLO" {
            error(&mut out, "NOAUTH Authentication required.");
        } else if let Some(redirect) = self.redirect(ctx, &name, args, asking) {
            if redirect.starts_with("CLUSTERDOWN") {
                refused = Some(redirect.clone());
            }
            error(&mut out, &redirect);
        } else if let Some(text) = injected {
            error(&mut out, &text);
            refused = Some(text);
        } else {
            self.dispatch(ctx, &name, args, &mut out, fx);
        }
        // A refused script did not run: a release leaves its key to its
        // TTL (or to a retry), an extension did not re-arm tracking.
        let locker = self.clients.get(&conn).and_then(|c| c.locker);
        if let (Some(text), Some(l)) = (refused, locker) {
            let kind = self.script_kind(&name, args);
            match kind {
                Some(ScriptKind::Release) => fx
                    .refused_releases
                    .push((args[3].clone(), args.get(4).cloned().unwrap_or_default())),
                Some(_) => fx.refused_extends.push(l),
                None => {}
            }
            let key = match &name[..] {
                b"EVAL" | b"EVALSHA" => args.get(3),
                _ => args.get(1),
            };
            if let Some(key) = key {
                fx.refusals.push(Refusal {
                    locker: l,
                    node: self.id,
                    key: key.clone(),
                    release: kind == Some(ScriptKind::Release),
                    message: text,
                });
            }
        }
        if name != b"ASKING" {
            if let Some(c) = self.clients.get_mut(&conn) {
                c.asking = false;
            }
        }
        if self.trace {
            let shown: Vec<String> = args
                .iter()
                .enumerate()
                .map(|(i, a)| {
                    if i == 1 && (name == b"EVAL" || name == b"EVALSHA") {
                        let kind = self
                            .known
                            .iter()
                            .find(|k| k.0[..] == a[..] || k.2.as_bytes() == &a[..])
                            .map(|k| k.1);
                        format!("{kind:?}")
                    } else {
                        show(a)
                    }
                })
                .collect();
            let reply = String::from_utf8_lossy(&out).replace("\r\n", " ");
            let who = if conn == ADMIN {
                "admin".to_string()
            } else {
                format!("c{conn}")
            };
            fx.log.push(format!(
                "n{} {who}: {} -> {}",
                self.id,
                shown.join(" "),
                reply.trim_end()
            ));
        }
        let Some(c) = self.clients.get_mut(&conn) else {
            return;
        };
        c.out.extend_from_slice(&out);
        for key in std::mem::take(&mut c.pending) {
            invalidation(&mut c.out, key.as_deref());
        }
    }

    fn dispatch(
        &mut self,
        ctx: Ctx,
        name: &[u8],
        args: &[Vec<u8>],
        out: &mut Vec<u8>,
        fx: &mut Fx,
    ) {
        let arity_err = |out: &mut Vec<u8>| {
            error(
                out,
                &format!(
                    "ERR wrong number of arguments for '{}' command",
                    String::from_utf8_lossy(name).to_lowercase()
                ),
            )
        };
        match name {
            b"HELLO" => self.hello(ctx, args, out),
            b"PING" => simple(out, "PONG"),
            b"ASKING" if self.cluster.is_some() => {
                self.cluster_counts[2] += 1;
                if let Some(c) = self.clients.get_mut(&ctx.client) {
                    c.asking = true;
                }
                simple(out, "OK")
            }
            b"ASKING" | b"CLUSTER" if self.cluster.is_none() => {
                fx.errors.push(format!(
                    "node {}: engine sent {} to a standalone node",
                    self.id,
                    show(name)
                ));
                error(out, "ERR This instance has cluster support disabled")
            }
            b"CLUSTER" => self.cluster_command(args, out, fx),
            b"SELECT" => match args.get(1).and_then(|d| parse_u64(d)) {
                Some(db) if db != 0 && self.cluster.is_some() => {
                    error(out, "ERR SELECT is not allowed in cluster mode")
                }
                Some(db) if db < 16 => {
                    if let Some(c) = self.clients.get_mut(&ctx.client) {
                        c.db = db as u32;
                    }
                    simple(out, "OK")
                }
                _ => error(out, "ERR DB index is out of range"),
            },
            b"CLIENT" => {
                let sub: Vec<Vec<u8>> = args[1..].iter().map(|a| a.to_ascii_uppercase()).collect();
                if sub.first().map(|s| &s[..]) == Some(b"TRACKING")
                    && sub.get(1).map(|s| &s[..]) == Some(b"ON")
                {
                    let noloop = sub.iter().any(|s| s == b"NOLOOP");
                    if let Some(c) = self.clients.get_mut(&ctx.client) {
                        c.tracking = true;
                        c.noloop = noloop;
                    }
                    simple(out, "OK")
                } else {
                    error(out, "ERR simulator: unsupported CLIENT subcommand")
                }
            }
            b"GET" => {
                let Some(key) = args.get(1) else {
                    return arity_err(out);
                };
                match self.lookup(ctx, key, fx) {
                    Some(v) => bulk(out, &v),
                    None => null(out),
                }
                self.track(ctx, key);
            }
            b"PTTL" => {
                let Some(key) = args.get(1) else {
                    return arity_err(out);
                };
                let t = self.pttl(ctx, key, fx);
                int(out, t);
                self.track(ctx, key);
            }
            b"SET" => self.set_command(ctx, args, out, fx),
            b"DEL" => {
                if args.len() < 2 {
                    return arity_err(out);
                }
                let mut n = 0;
                for key in &args[1..] {
                    if self.lookup(ctx, key, fx).is_some() {
                        self.delete(ctx, key, Cause::Written(ctx.writer), fx);
                        n += 1;
                    }
                }
                int(out, n)
            }
            b"PEXPIRE" => {
                let (Some(key), Some(ms)) = (args.get(1), args.get(2).and_then(|m| parse_i64(m)))
                else {
                    return arity_err(out);
                };
                let r = self.pexpire_at(ctx, key, ctx.now_ms as i64 + ms, fx);
                int(out, r)
            }
            b"EVAL" | b"EVALSHA" => self.eval(ctx, name == b"EVALSHA", args, out, fx),
            b"SCRIPT" => {
                if args
                    .get(1)
                    .is_some_and(|s| s.eq_ignore_ascii_case(b"FLUSH"))
                {
                    self.scripts.clear();
                    simple(out, "OK")
                } else {
                    error(out, "ERR simulator: unsupported SCRIPT subcommand")
                }
            }
            b"FLUSHDB" | b"FLUSHALL" => {
                self.flush_data(ctx, name == b"FLUSHALL", fx);
                simple(out, "OK")
            }
            _ => {
                fx.errors.push(format!(
                    "node {}: engine sent a command the simulator does not serve: {}",
                    self.id,
                    show(name)
                ));
                error(
                    out,
                    &format!("ERR unknown command '{}'", String::from_utf8_lossy(name)),
                )
            }
        }
    }

    fn hello(&mut self, ctx: Ctx, args: &[Vec<u8>], out: &mut Vec<u8>) {
        if args.get(1).map(|a| &a[..]) != Some(b"3") {
            error(out, "NOPROTO unsupported protocol version");
            return;
        }
        let mut i = 2;
        let mut authed = self.clients.get(&ctx.client).is_some_and(|c| c.authed);
        while i < args.len() {
            let opt = args[i].to_ascii_uppercase();
            if opt == b"AUTH" && i + 2 < args.len() {
                let ok = args[i + 1] == b"default"
                    && self.password.as_deref().map(str::as_bytes) == Some(&args[i + 2][..]);
                if !ok {
                    error(
                        out,
                        "WRONGPASS invalid username-password pair or user is disabled.",
                    );
                    return;
                }
                authed = true;
                i += 3;
            } else if opt == b"SETNAME" && i + 1 < args.len() {
                i += 2;
            } else {
                error(out, "ERR Syntax error in HELLO option");
                return;
            }
        }
        if !authed {
            error(out, "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time");
            return;
        }
        if let Some(c) = self.clients.get_mut(&ctx.client) {
            c.authed = true;
        }
        out.extend_from_slice(b"%7\r\n");
        bulk(out, b"server");
        bulk(out, b"redis");
        bulk(out, b"version");
        bulk(out, self.version.as_bytes());
        bulk(out, b"proto");
        int(out, 3);
        bulk(out, b"id");
        int(out, (ctx.client % 1_000_000) as i64);
        bulk(out, b"mode");
        bulk(
            out,
            if self.cluster.is_some() {
                b"cluster"
            } else {
                b"standalone"
            },
        );
        bulk(out, b"role");
        bulk(out, if self.replica { b"replica" } else { b"master" });
        bulk(out, b"modules");
        out.extend_from_slice(b"*0\r\n");
    }

    // ---- keyspace primitives ----------------------------------------------

    fn db(&mut self, db: u32) -> &mut BTreeMap<Vec<u8>, Entry> {
        self.dbs.entry(db).or_default()
    }

    /// Lookup with lazy expiry (a write, with invalidations, when it expires).
    fn lookup(&mut self, ctx: Ctx, key: &[u8], fx: &mut Fx) -> Option<Vec<u8>> {
        let expired = match self.db(ctx.db).get(key) {
            None => return None,
            Some(e) => e.expire_ms.is_some_and(|x| ctx.now_ms > x),
        };
        if expired {
            self.delete(ctx, key, Cause::Expired, fx);
            return None;
        }
        self.db(ctx.db).get(key).map(|e| e.value.clone())
    }

    fn pttl(&mut self, ctx: Ctx, key: &[u8], fx: &mut Fx) -> i64 {
        if self.lookup(ctx, key, fx).is_none() {
            return -2;
        }
        match self.db(ctx.db).get(key).and_then(|e| e.expire_ms) {
            None => -1,
            Some(x) => x.saturating_sub(ctx.now_ms) as i64,
        }
    }

    /// Arms tracking of `key` for the reading client.
    fn track(&mut self, ctx: Ctx, key: &[u8]) {
        if self.clients.get(&ctx.client).is_some_and(|c| c.tracking) {
            self.tracking
                .entry(key.to_vec())
                .or_default()
                .insert(ctx.client);
        }
    }

    /// A write to `key`: every tracker is told (the writer after its reply,
    /// or not at all with NOLOOP), and the key is no longer tracked.
    fn signal(&mut self, current: Option<u64>, key: &[u8]) {
        let Some(trackers) = self.tracking.remove(key) else {
            return;
        };
        for t in trackers {
            let Some(c) = self.clients.get_mut(&t) else {
                continue;
            };
            if Some(t) == current {
                if !c.noloop {
                    c.pending.push(Some(key.to_vec()));
                }
            } else {
                invalidation(&mut c.out, Some(key));
            }
        }
    }

    fn delete(&mut self, ctx: Ctx, key: &[u8], cause: Cause, fx: &mut Fx) {
        if let Some(e) = self.db(ctx.db).remove(key) {
            self.report(fx, key.to_vec(), e, cause);
            self.signal(Some(ctx.client), key);
            self.replicate(ctx.db, key, fx);
        }
    }

    /// A master of a cluster logs the new state of `key` for its replica.
    fn replicate(&self, db: u32, key: &[u8], fx: &mut Fx) {
        if self.cluster.is_some() && !self.replica {
            let entry = self.dbs.get(&db).and_then(|m| m.get(key)).cloned();
            fx.repl.push((
                self.id,
                ReplOp::Key {
                    db,
                    key: key.to_vec(),
                    entry,
                },
            ));
        }
    }

    fn pexpire_at(&mut self, ctx: Ctx, key: &[u8], at_ms: i64, fx: &mut Fx) -> i64 {
        if self.lookup(ctx, key, fx).is_none() {
            return 0;
        }
        if at_ms <= ctx.now_ms as i64 {
            self.delete(ctx, key, Cause::Written(ctx.writer), fx);
        } else if let Some(e) = self.db(ctx.db).get_mut(key) {
            e.expire_ms = Some(at_ms as u64);
            e.orphan |= ctx.orphan;
            self.signal(Some(ctx.client), key);
            self.replicate(ctx.db, key, fx);
        }
        1
    }

    fn set_command(&mut self, ctx: Ctx, args: &[Vec<u8>], out: &mut Vec<u8>, fx: &mut Fx) {
        if args.len() < 3 {
            error(out, "ERR wrong number of arguments for 'set' command");
            return;
        }
        let (key, value) = (&args[1], &args[2]);
        let mut nx = false;
        let mut expire: Option<i64> = None;
        let mut i = 3;
        while i < args.len() {
            let opt = args[i].to_ascii_uppercase();
            match &opt[..] {
                b"NX" => nx = true,
                b"PX" | b"PXAT" => {
                    let Some(v) = args
                        .get(i + 1)
                        .and_then(|v| parse_i64(v))
                        .filter(|v| *v > 0)
                    else {
                        error(out, "ERR invalid expire time in 'set' command");
                        return;
                    };
                    expire = Some(if opt == b"PX" {
                        ctx.now_ms as i64 + v
                    } else {
                        v - self.wall_base()
                    });
                    i += 1;
                }
                _ => {
                    error(out, "ERR syntax error");
                    return;
                }
            }
            i += 1;
        }
        let exists = self.lookup(ctx, key, fx).is_some();
        if nx && exists {
            if let Writer::Locker(l) = ctx.writer {
                fx.taken.push((l, key.clone()));
            }
            null(out);
            return;
        }
        if let Some(x) = expire {
            if x <= ctx.now_ms as i64 {
                // Already expired: Redis replies OK and keeps no key.
                if exists {
                    self.delete(ctx, key, Cause::Written(ctx.writer), fx);
                }
                simple(out, "OK");
                return;
            }
        }
        let old = self.db(ctx.db).insert(
            key.clone(),
            Entry {
                value: value.clone(),
                expire_ms: expire.map(|x| x as u64),
                writer: ctx.writer,
                orphan: ctx.orphan,
            },
        );
        if let Some(old) = old {
            if old.value != *value {
                self.report(fx, key.clone(), old, Cause::Written(ctx.writer));
            }
        }
        self.signal(Some(ctx.client), key);
        self.replicate(ctx.db, key, fx);
        simple(out, "OK");
    }

    fn flush_data(&mut self, ctx: Ctx, all: bool, fx: &mut Fx) {
        let dbs: Vec<u32> = if all {
            self.dbs.keys().copied().collect()
        } else {
            vec![ctx.db]
        };
        for db in dbs {
            let data = std::mem::take(self.db(db));
            for (key, e) in data {
                if e.expire_ms.is_none_or(|x| ctx.now_ms <= x) {
                    self.report(fx, key, e, Cause::Written(ctx.writer));
                }
            }
        }
        if self.cluster.is_some() && !self.replica {
            let db = (!all).then_some(ctx.db);
            fx.repl.push((self.id, ReplOp::Flush { db }));
        }
        self.tracking.clear();
        for (&id, c) in self.clients.iter_mut() {
            if c.tracking {
                if id == ctx.client {
                    c.pending.push(None);
                } else {
                    invalidation(&mut c.out, None);
                }
            }
        }
    }

    fn eval(&mut self, ctx: Ctx, by_sha: bool, args: &[Vec<u8>], out: &mut Vec<u8>, fx: &mut Fx) {
        if args.len() < 3 {
            error(out, "ERR wrong number of arguments");
            return;
        }
        let kind = if by_sha {
            let sha = args[1].to_ascii_lowercase();
            if !self.scripts.iter().any(|s| s[..] == sha[..]) {
                error(out, "NOSCRIPT No matching script. Please use EVAL.");
                return;
            }
            self.known.iter().find(|k| k.0[..] == sha[..]).map(|k| k.1)
        } else {
            let found = self
                .known
                .iter()
                .find(|k| k.2.as_bytes() == &args[1][..])
                .copied();
            if let Some(k) = found {
                self.scripts.insert(k.0);
            }
            found.map(|k| k.1)
        };
        let Some(kind) = kind else {
            fx.errors.push(format!(
                "node {}: engine sent a script the simulator does not know ({}); update tests/src/sim/server.rs",
                self.id,
                show(&args[1])
            ));
            error(out, "ERR simulator: unknown script");
            return;
        };
        let nkeys = kind.keys();
        if parse_u64(&args[2]) != Some(nkeys) || args.len() < 3 + nkeys as usize {
            fx.errors.push(format!(
                "node {}: {kind:?} called without exactly {nkeys} keys",
                self.id
            ));
            error(out, "ERR simulator: bad script call");
            return;
        }
        let key = &args[3];
        let argv = &args[3 + nkeys as usize..];
        if nkeys == 2 {
            let counter = &args[4];
            // Redis Cluster refuses keys of two slots in one script.
            if self.cluster.is_some() && key_slot(counter) != key_slot(key) {
                fx.errors.push(format!(
                    "node {}: counter {} outside the slot of {}",
                    self.id,
                    show(counter),
                    show(key)
                ));
                error(out, "CROSSSLOT Keys in request don't hash to the same slot");
                return;
            }
            return self.fence(ctx, kind, key, counter, argv, out, fx);
        }
        match kind {
            ScriptKind::Release => {
                let Some(value) = argv.first() else {
                    error(out, "ERR simulator: bad script call");
                    return;
                };
                let got = self.lookup(ctx, key, fx);
                self.track(ctx, key);
                if got.as_ref() == Some(value) {
                    if !self.bug_release_noop {
                        self.delete(ctx, key, Cause::Written(ctx.writer), fx);
                    }
                    int(out, 1)
                } else {
                    int(out, 0)
                }
            }
            ScriptKind::FenceRead | ScriptKind::FenceRaise => {
                unreachable!("two-key scripts are served by `fence`")
            }
            ScriptKind::ExtendPx | ScriptKind::ExtendPxat => {
                let (Some(value), Some(ttl), Some(below)) = (
                    argv.first(),
                    argv.get(1).and_then(|v| parse_i64(v)),
                    argv.get(2).and_then(|v| parse_i64(v)),
                ) else {
                    error(out, "ERR simulator: bad script call");
                    return;
                };
                let got = self.lookup(ctx, key, fx);
                self.track(ctx, key);
                if got.as_ref() != Some(value) {
                    out.extend_from_slice(b"*2\r\n:0\r\n:0\r\n");
                    return;
                }
                let mut t = self.pttl(ctx, key, fx);
                self.track(ctx, key);
                let mut w = 0;
                if t < below {
                    let at = if kind == ScriptKind::ExtendPx {
                        ctx.now_ms as i64 + ttl
                    } else {
                        ttl - self.wall_base()
                    };
                    self.pexpire_at(ctx, key, at, fx);
                    let _ = self.lookup(ctx, key, fx);
                    self.track(ctx, key);
                    t = self.pttl(ctx, key, fx);
                    self.track(ctx, key);
                    w = 1;
                }
                let t = t.max(0);
                out.extend_from_slice(format!("*2\r\n:{t}\r\n:{w}\r\n").as_bytes());
            }
        }
    }

    /// The fencing scripts (`FENCE_READ`, `FENCE_RAISE`) over `key` and its
    /// `counter`.
    #[allow(clippy::too_many_arguments)]
    fn fence(
        &mut self,
        ctx: Ctx,
        kind: ScriptKind,
        key: &[u8],
        counter: &[u8],
        argv: &[Vec<u8>],
        out: &mut Vec<u8>,
        fx: &mut Fx,
    ) {
        let Some(value) = argv.first() else {
            error(out, "ERR simulator: bad script call");
            return;
        };
        let t = if kind == ScriptKind::FenceRead {
            let t = self.pttl(ctx, key, fx);
            self.track(ctx, key);
            Some(t)
        } else {
            None
        };
        let got = self.lookup(ctx, key, fx);
        self.track(ctx, key);
        if got.as_ref() != Some(value) {
            let c = if got.is_some() {
                // Another value: the engine may read it as a holder.
                if let Writer::Locker(l) = ctx.writer {
                    fx.taken.push((l, key.to_vec()));
                }
                -1
            } else {
                -2
            };
            match t {
                Some(t) => out.extend_from_slice(format!("*2\r\n:{t}\r\n:{c}\r\n").as_bytes()),
                None => int(out, c),
            }
            return;
        }
        let stored = self.lookup(ctx, counter, fx);
        self.track(ctx, counter);
        let Some(c) = stored.as_deref().map_or(Some(0), parse_u64) else {
            error(out, "ERR tracklock: fencing counter is not a whole number");
            return;
        };
        if let Some(t) = t {
            out.extend_from_slice(format!("*2\r\n:{t}\r\n:{c}\r\n").as_bytes());
            return;
        }
        let Some(token) = argv.get(1).and_then(|v| parse_u64(v)) else {
            error(out, "ERR simulator: bad script call");
            return;
        };
        if c >= token {
            int(out, 0);
            return;
        }
        if !self.bug_fence_noop {
            // Counters never expire and are not lock values: no `Change`.
            self.db(ctx.db).insert(
                counter.to_vec(),
                Entry {
                    value: token.to_string().into_bytes(),
                    expire_ms: None,
                    writer: ctx.writer,
                    orphan: ctx.orphan,
                },
            );
            self.signal(Some(ctx.client), counter);
            self.replicate(ctx.db, counter, fx);
        }
        int(out, 1);
    }

    // ---- cluster -------------------------------------------------------------

    /// The redirect a cluster node answers `args` with, if any: `MOVED` when
    /// its view gives the key's slot to another master, `ASK` when it is
    /// migrating the slot and no longer has the key; an importing node
    /// serves the slot right after `ASKING`. The admin is never redirected
    /// (the world sends its commands where the key lives).
    fn redirect(
        &mut self,
        ctx: Ctx,
        name: &[u8],
        args: &[Vec<u8>],
        asking: bool,
    ) -> Option<String> {
        let cl = self.cluster.as_ref()?;
        if ctx.client == ADMIN {
            return None;
        }
        let key = match name {
            b"GET" | b"PTTL" | b"SET" | b"DEL" | b"PEXPIRE" => args.get(1)?,
            b"EVAL" | b"EVALSHA" => {
                if args.get(2).and_then(|n| parse_u64(n)).unwrap_or(0) == 0 {
                    return None;
                }
                args.get(3)?
            }
            _ => return None,
        };
        if cl.full_coverage && cl.topo.down() {
            self.cluster_counts[5] += 1;
            return Some("CLUSTERDOWN The cluster is down".into());
        }
        let slot = key_slot(key);
        let owner = cl.topo.owner_node(slot);
        if owner == self.id {
            if let Some((s, target)) = cl.migrating {
                // Redis looks the key up without expiring it: a logically
                // expired key counts as missing.
                if s == slot && self.peek_ms(ctx.db, key, ctx.now_ms).is_none() {
                    self.cluster_counts[1] += 1;
                    return Some(format!("ASK {slot} {}", cluster::addr(target)));
                }
            }
            return None;
        }
        if asking && cl.importing.is_some_and(|(s, _)| s == slot) {
            return None;
        }
        self.cluster_counts[0] += 1;
        Some(format!("MOVED {slot} {}", cluster::addr(owner)))
    }

    /// Which of the engine's scripts a one-key `EVAL`/`EVALSHA` runs.
    fn script_kind(&self, name: &[u8], args: &[Vec<u8>]) -> Option<ScriptKind> {
        if (name != b"EVAL" && name != b"EVALSHA") || args.len() < 4 {
            return None;
        }
        let a = &args[1];
        self.known
            .iter()
            .find(|k| k.2.as_bytes() == &a[..] || k.0[..] == a.to_ascii_lowercase()[..])
            .map(|k| k.1)
    }

    fn peek_ms(&self, db: u32, key: &[u8], now_ms: u64) -> Option<&Entry> {
        self.dbs
            .get(&db)?
            .get(key)
            .filter(|e| e.expire_ms.is_none_or(|x| now_ms <= x))
    }

    fn cluster_command(&mut self, args: &[Vec<u8>], out: &mut Vec<u8>, fx: &mut Fx) {
        let Some((topo, seven, shard_ids)) = self
            .cluster
            .as_ref()
            .map(|c| (c.topo.clone(), c.seven, c.shard_ids))
        else {
            return;
        };
        let sub = args
            .get(1)
            .map(|s| s.to_ascii_uppercase())
            .unwrap_or_default();
        match &sub[..] {
            b"SHARDS" if seven => {
                self.cluster_counts[3] += 1;
                out.extend_from_slice(&cluster::shards_reply(&topo, shard_ids));
            }
            b"SHARDS" => error(out, "ERR unknown subcommand 'SHARDS'. Try CLUSTER HELP."),
            b"SLOTS" => {
                self.cluster_counts[4] += 1;
                out.extend_from_slice(&cluster::slots_reply(&topo, seven));
            }
            _ => {
                fx.errors.push(format!(
                    "node {}: engine sent a CLUSTER subcommand the simulator does not serve: {}",
                    self.id,
                    show(&sub)
                ));
                error(out, "ERR simulator: unsupported CLUSTER subcommand");
            }
        }
    }

    /// Every stored entry (expired or not), for a full resynchronisation.
    pub fn dump(&self) -> BTreeMap<u32, BTreeMap<Vec<u8>, Entry>> {
        self.dbs.clone()
    }

    /// A replica loads a full copy (expiry already on its clock): like
    /// Redis emptying its data first, tracking clients are told to drop
    /// everything.
    pub fn load(&mut self, dbs: BTreeMap<u32, BTreeMap<Vec<u8>, Entry>>, fx: &mut Fx) {
        self.dbs = dbs;
        self.tracking.clear();
        for (&id, c) in self.clients.iter_mut() {
            if c.tracking && id != ADMIN {
                invalidation(&mut c.out, None);
            }
        }
        self.flush(fx);
    }

    /// A replica applies one change of its master (expiry already on its
    /// clock); clients tracking the key there are told.
    pub fn apply(&mut self, op: ReplOp, fx: &mut Fx) {
        match op {
            ReplOp::Key { db, key, entry } => {
                match entry {
                    Some(e) => {
                        self.db(db).insert(key.clone(), e);
                    }
                    None => {
                        self.db(db).remove(&key);
                    }
                }
                self.signal(None, &key);
            }
            ReplOp::Flush { db } => {
                match db {
                    Some(db) => self.db(db).clear(),
                    None => self.dbs.clear(),
                }
                self.tracking.clear();
                for (&id, c) in self.clients.iter_mut() {
                    if c.tracking && id != ADMIN {
                        invalidation(&mut c.out, None);
                    }
                }
            }
        }
        self.flush(fx);
    }

    /// The stored keys of `db` in hash slot `slot`.
    pub fn keys_in_slot(&self, db: u32, slot: u16) -> Vec<Vec<u8>> {
        self.dbs
            .get(&db)
            .map(|m| m.keys().filter(|k| key_slot(k) == slot).cloned().collect())
            .unwrap_or_default()
    }

    /// `MIGRATE` at the source: the key leaves (a deletion for trackers and
    /// the replica, not a [`Change`]: its value lives on at the target).
    /// An already expired key is expired instead; `None` then.
    pub fn take_key(&mut self, db: u32, key: &[u8], real: u64, fx: &mut Fx) -> Option<Entry> {
        let now = self.now_ms(real);
        let e = self.db(db).remove(key)?;
        if e.expire_ms.is_some_and(|x| now > x) {
            self.report(fx, key.to_vec(), e, Cause::Expired);
            self.signal(None, key);
            self.replicate(db, key, fx);
            self.flush(fx);
            return None;
        }
        self.signal(None, key);
        self.replicate(db, key, fx);
        self.flush(fx);
        Some(e)
    }

    /// `RESTORE` at the target (expiry already on this node's clock).
    pub fn put_key(&mut self, db: u32, key: &[u8], e: Entry, fx: &mut Fx) {
        self.db(db).insert(key.to_vec(), e);
        self.signal(None, key);
        self.replicate(db, key, fx);
        self.flush(fx);
    }

    /// One active expiry cycle: samples up to 20 volatile keys and deletes
    /// the expired ones, repeating while more than a quarter were expired
    /// (like `activeExpireCycle`, simplified).
    pub fn active_expire(&mut self, real: u64, rng: &mut SimRng, fx: &mut Fx) {
        if self.state != NodeState::Up || self.replica {
            return;
        }
        let now = self.now_ms(real);
        let dbs: Vec<u32> = self.dbs.keys().copied().collect();
        for db in dbs {
            for _round in 0..4 {
                let volatile: Vec<Vec<u8>> = self.dbs[&db]
                    .iter()
                    .filter(|(_, e)| e.expire_ms.is_some())
                    .map(|(k, _)| k.clone())
                    .collect();
                if volatile.is_empty() {
                    break;
                }
                let mut expired = 0;
                let samples = volatile.len().min(20);
                for _ in 0..samples {
                    let key = rng.pick(&volatile);
                    let gone = self.dbs[&db]
                        .get(key)
                        .is_some_and(|e| e.expire_ms.is_some_and(|x| now > x));
                    if gone {
                        expired += 1;
                        if let Some(e) = self.db(db).remove(key) {
                            self.report(fx, key.clone(), e, Cause::Expired);
                            self.signal(None, key);
                            self.replicate(db, key, fx);
                        }
                    }
                }
                if expired * 4 <= samples {
                    break;
                }
            }
        }
        self.flush(fx);
    }
}
