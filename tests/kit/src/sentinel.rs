//! [`RedisSentinel`]: a throwaway Redis Sentinel deployment — a master, a
//! replica (`--replicaof`) and three sentinels (`redis-server <conf>
//! --sentinel`, quorum 2, a short `down-after-milliseconds`), with the
//! failovers tests need: forced (`SENTINEL FAILOVER`), by killing the
//! master, and restarts of the sentinels.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::resp::Value;
use crate::{free_port, Admin, RedisServer, StartError, TlsCerts};

/// Sentinels declare a master down after this long without an answer.
pub const SENTINEL_DOWN_AFTER: Duration = Duration::from_millis(1000);
/// How long a failover may take before the tests give up on it: detection
/// (`SENTINEL_DOWN_AFTER`), agreement, election and promotion, on a busy
/// machine.
pub const FAILOVER_TIMEOUT: Duration = Duration::from_secs(30);

/// What a [`RedisSentinel`] is started with.
#[derive(Debug, Clone, Default)]
pub struct SentinelSetup {
    /// `requirepass` of the master and the replica (and the sentinels'
    /// `auth-pass`, the replica's `masterauth`).
    pub data_password: Option<String>,
    /// The sentinels' own `requirepass`.
    pub sentinel_password: Option<String>,
    /// TLS everywhere with these certificates (no client certificates):
    /// every process also listens on a TLS port, replication and the
    /// sentinels' connections use TLS, and the sentinels name TLS ports.
    /// Their plain ports stay open for the kit's admin client.
    pub tls: Option<Arc<TlsCerts>>,
}

/// A master and a replica watched by three sentinels as
/// [`RedisSentinel::MASTER`]. Every process is killed on drop.
pub struct RedisSentinel {
    setup: SentinelSetup,
    /// The data nodes; which one is the master changes with failovers.
    data: Vec<RedisServer>,
    sentinels: Vec<RedisServer>,
    /// The sentinels frozen by [`RedisSentinel::freeze_sentinel`].
    frozen: Mutex<Vec<usize>>,
    /// Serialises the helpers that restart processes.
    busy: Mutex<()>,
}

impl std::fmt::Debug for RedisSentinel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSentinel")
            .field("data", &self.data)
            .field("sentinels", &self.sentinels)
            .finish_non_exhaustive()
    }
}

impl RedisSentinel {
    /// The master name the sentinels monitor.
    pub const MASTER: &'static str = "tlmaster";

    /// Starts the deployment and waits until the sentinels know each other
    /// and the replica (so that a failover can be agreed on). Panics when a
    /// server does not come up or the sentinels do not settle.
    pub fn start(setup: SentinelSetup) -> RedisSentinel {
        match RedisSentinel::try_start(setup) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        }
    }

    /// Like [`RedisSentinel::start`], but returns a start error.
    pub fn try_start(setup: SentinelSetup) -> Result<RedisSentinel, StartError> {
        let mut auth: Vec<String> = Vec::new();
        if let Some(p) = &setup.data_password {
            auth.extend([
                "--requirepass".into(),
                p.clone(),
                "--masterauth".into(),
                p.clone(),
            ]);
        }
        let tls = setup.tls.clone();
        let with_tls = |port: u16, mut args: Vec<String>| {
            if let Some(certs) = &tls {
                args.extend(certs.server_args(other_port(port), false, false));
                args.extend(["--tls-replication".into(), "yes".into()]);
            }
            args
        };
        let master = RedisServer::try_start_with_fn(|port, _| with_tls(port, auth.clone()))?;
        let master_port = master.tls_port().unwrap_or(master.port());
        let mut replica_args = auth.clone();
        replica_args.extend([
            "--replicaof".into(),
            "127.0.0.1".into(),
            master_port.to_string(),
        ]);
        let replica =
            RedisServer::try_start_with_fn(|port, _| with_tls(port, replica_args.clone()))?;
        let this = RedisSentinel {
            setup,
            data: vec![master, replica],
            sentinels: Vec::new(),
            frozen: Mutex::new(Vec::new()),
            busy: Mutex::new(()),
        };
        this.wait_until("the replica's link is up", || {
            this.data[1]
                .admin()
                .try_cmd::<String>("INFO", &["replication"])
                .is_ok_and(|i| i.contains("master_link_status:up"))
        });
        let mut sentinels = Vec::new();
        for _ in 0..3 {
            let setup = this.setup.clone();
            sentinels.push(RedisServer::try_start_with_fn(|port, dir| {
                sentinel_args(port, dir, master_port, &setup)
            })?);
        }
        let mut this = this;
        this.sentinels = sentinels;
        this.wait_settled();
        Ok(this)
    }

    /// The sentinels' addresses, `127.0.0.1:PORT` each (their TLS ports
    /// with TLS).
    pub fn sentinel_addrs(&self) -> Vec<String> {
        self.sentinels.iter().map(|s| self.client_addr(s)).collect()
    }

    /// Where clients reach `s`: its TLS port with TLS, else its port.
    pub fn client_addr(&self, s: &RedisServer) -> String {
        match s.tls_port() {
            Some(_) if self.setup.tls.is_some() => s.tls_addr(),
            _ => s.addr(),
        }
    }

    /// `redis+sentinel://[:data_password@]s1,s2,s3/MASTER[?sentinel_password=…]`
    /// (`rediss+sentinel://` with TLS).
    pub fn url(&self) -> String {
        let scheme = if self.setup.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        let auth = match &self.setup.data_password {
            Some(p) => format!(":{p}@"),
            None => String::new(),
        };
        let query = match &self.setup.sentinel_password {
            Some(p) => format!("?sentinel_password={p}"),
            None => String::new(),
        };
        format!(
            "{scheme}+sentinel://{auth}{}/{}{query}",
            self.sentinel_addrs().join(","),
            Self::MASTER
        )
    }

    /// The setup it was started with.
    pub fn setup(&self) -> &SentinelSetup {
        &self.setup
    }

    /// Sentinel `i` (0 to 2).
    pub fn sentinel(&self, i: usize) -> &RedisServer {
        &self.sentinels[i]
    }

    /// An admin connection to sentinel `i`.
    pub fn sentinel_admin(&self, i: usize) -> Admin {
        let s = &self.sentinels[i];
        match &self.setup.sentinel_password {
            Some(p) => Admin::connect(&format!("redis://:{p}@{}", s.addr())),
            None => Admin::connect(&format!("redis://{}", s.addr())),
        }
    }

    /// The master as sentinel `i` names it, `host:port`; `None` when it
    /// does not answer.
    pub fn master_addr_at(&self, i: usize) -> Option<String> {
        if !self.answering(i) {
            return None;
        }
        let a = Admin::try_connect(&self.sentinel_url(i)).ok()?;
        match a.try_cmd::<Value>("SENTINEL", &["GET-MASTER-ADDR-BY-NAME", Self::MASTER]) {
            Ok(Value::Array(v)) => match v.as_slice() {
                [Value::Data(h), Value::Data(p)] => Some(format!(
                    "{}:{}",
                    String::from_utf8_lossy(h),
                    String::from_utf8_lossy(p)
                )),
                _ => None,
            },
            _ => None,
        }
    }

    /// SIGSTOPs sentinel `i`: it keeps its connections but answers
    /// nothing; the helpers leave it out until
    /// [`RedisSentinel::thaw_sentinel`].
    pub fn freeze_sentinel(&self, i: usize) {
        self.sentinels[i].freeze();
        self.frozen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(i);
    }

    /// SIGCONTs sentinel `i` after [`RedisSentinel::freeze_sentinel`].
    pub fn thaw_sentinel(&self, i: usize) {
        self.sentinels[i].thaw();
        self.frozen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|&f| f != i);
    }

    /// Sentinel `i` runs and is not frozen.
    fn answering(&self, i: usize) -> bool {
        self.sentinels[i].is_running()
            && !self
                .frozen
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(&i)
    }

    fn sentinel_url(&self, i: usize) -> String {
        let s = &self.sentinels[i];
        match &self.setup.sentinel_password {
            Some(p) => format!("redis://:{p}@{}", s.addr()),
            None => format!("redis://{}", s.addr()),
        }
    }

    /// The data node at `addr`. Panics when there is none.
    pub fn data_at(&self, addr: &str) -> &RedisServer {
        self.data
            .iter()
            .find(|s| s.addr() == addr || self.client_addr(s) == addr)
            .unwrap_or_else(|| panic!("no data node at {addr}"))
    }

    /// The current master (as the first answering sentinel names it).
    pub fn master(&self) -> &RedisServer {
        let addr = (0..self.sentinels.len())
            .find_map(|i| self.master_addr_at(i))
            .expect("no sentinel answers");
        self.data_at(&addr)
    }

    /// The data node that is not [`RedisSentinel::master`].
    pub fn replica(&self) -> &RedisServer {
        let m = self.master().addr();
        self.data
            .iter()
            .find(|s| s.addr() != m)
            .expect("two data nodes")
    }

    /// Waits until the replica has everything the master wrote so far
    /// (`WAIT 1` on the master). Panics after [`FAILOVER_TIMEOUT`].
    pub fn wait_replicated(&self) {
        let ms = FAILOVER_TIMEOUT.as_millis().to_string();
        let n: i64 = self.master().admin().cmd("WAIT", &["1", &ms]);
        assert_eq!(n, 1, "the replica did not acknowledge the master's writes");
    }

    /// `SENTINEL FAILOVER` (forced, no agreement needed), then waits until
    /// every sentinel names the new master and it says it is one. Returns
    /// the new master's address.
    pub fn failover(&self) -> String {
        let _busy = self.busy();
        let old = self.client_addr(self.master());
        let i = (0..self.sentinels.len())
            .find(|&i| self.answering(i))
            .expect("an answering sentinel");
        let reply = self
            .sentinel_admin(i)
            .try_cmd::<String>("SENTINEL", &["FAILOVER", Self::MASTER]);
        assert!(reply.is_ok(), "SENTINEL FAILOVER: {reply:?}");
        self.wait_switched_from(&old)
    }

    /// Kills the master (SIGKILL) and waits until the sentinels agree on
    /// the replica as the new master; returns its address. The old master
    /// stays down ([`RedisSentinel::restart_old`] brings it back as a
    /// replica).
    pub fn kill_master(&self) -> String {
        let _busy = self.busy();
        let old = self.master();
        let addr = self.client_addr(old);
        old.kill();
        self.wait_switched_from(&addr)
    }

    /// Restarts a data node that was killed (it comes back empty and the
    /// sentinels make it a replica of the current master).
    pub fn restart_old(&self, addr: &str) {
        self.data_at(addr).restart();
    }

    /// Cuts the replica off the master: its `masterauth` is made wrong and
    /// its link killed, so writes from now on reach only the master (needs
    /// a data password). Undone by [`RedisSentinel::reconnect_replica`].
    pub fn cut_replica(&self) {
        assert!(
            self.setup.data_password.is_some(),
            "cut_replica needs a data password"
        );
        let replica = self.replica().admin();
        let _: String = replica.cmd("CONFIG", &["SET", "masterauth", "not-the-password"]);
        let _: Value = self
            .master()
            .admin()
            .cmd("CLIENT", &["KILL", "TYPE", "replica"]);
        self.wait_until("the replica's link is down", || {
            replica
                .try_cmd::<String>("INFO", &["replication"])
                .is_ok_and(|i| i.contains("master_link_status:down"))
        });
    }

    /// Restores the replica's `masterauth` after [`RedisSentinel::cut_replica`].
    pub fn reconnect_replica(&self, replica: &RedisServer) {
        let p = self.setup.data_password.clone().unwrap_or_default();
        let _: String = replica.admin().cmd("CONFIG", &["SET", "masterauth", &p]);
    }

    /// Restarts every sentinel (one after the other; each reads back the
    /// configuration it rewrote) and waits until they agree again.
    pub fn restart_sentinels(&self) {
        let _busy = self.busy();
        for s in &self.sentinels {
            s.restart();
        }
        self.wait_settled();
    }

    /// Waits until every running sentinel names a master other than `old`,
    /// the same one, and that server reports `role:master`.
    pub fn wait_switched_from(&self, old: &str) -> String {
        let mut new = String::new();
        self.wait_until("the sentinels agree on a new master", || {
            let named: Vec<Option<String>> = (0..self.sentinels.len())
                .filter(|&i| self.answering(i))
                .map(|i| self.master_addr_at(i))
                .collect();
            let Some(Some(first)) = named.first() else {
                return false;
            };
            if first == old || named.iter().any(|n| n.as_ref() != Some(first)) {
                return false;
            }
            let is_master = self
                .data
                .iter()
                .find(|s| &self.client_addr(s) == first)
                .and_then(|s| s.admin().try_cmd::<Value>("ROLE", &[]).ok())
                .is_some_and(|r| matches!(r, Value::Array(v) if v.first() == Some(&Value::Data(b"master".to_vec()))));
            new.clone_from(first);
            is_master
        });
        new
    }

    /// Waits until each sentinel knows the two others and a replica that
    /// is up, so that failovers can be agreed on and have a candidate.
    fn wait_settled(&self) {
        self.wait_until("the sentinels know each other and the replica", || {
            (0..self.sentinels.len()).all(|i| {
                let Ok(a) = Admin::try_connect(&self.sentinel_url(i)) else {
                    return false;
                };
                let peers = a.try_cmd::<Value>("SENTINEL", &["SENTINELS", Self::MASTER]);
                let replicas = a.try_cmd::<Value>("SENTINEL", &["REPLICAS", Self::MASTER]);
                let peers_ok = matches!(peers, Ok(Value::Array(v)) if v.len() == 2);
                let replica_ok = matches!(&replicas, Ok(Value::Array(v)) if v.iter().any(|r| {
                    let text = format!("{r:?}");
                    !text.contains("s_down") && !text.contains("disconnected")
                }));
                peers_ok && replica_ok
            })
        });
    }

    fn wait_until(&self, what: &str, mut ok: impl FnMut() -> bool) {
        let deadline = Instant::now() + FAILOVER_TIMEOUT;
        while !ok() {
            assert!(
                Instant::now() < deadline,
                "sentinel test kit: not within {FAILOVER_TIMEOUT:?}: {what}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn busy(&self) -> MutexGuard<'_, ()> {
        self.busy.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A free port other than `port` (for a TLS port).
fn other_port(port: u16) -> u16 {
    loop {
        match free_port() {
            Ok(p) if p != port => return p,
            Ok(_) => {}
            Err(e) => panic!("no free port for TLS: {e}"),
        }
    }
}

/// A sentinel's command line: its configuration file (written into its
/// directory, where it rewrites it) first, then `--sentinel`.
fn sentinel_args(
    port: u16,
    dir: &std::path::Path,
    master_port: u16,
    setup: &SentinelSetup,
) -> Vec<String> {
    let name = RedisSentinel::MASTER;
    let down = SENTINEL_DOWN_AFTER.as_millis();
    let mut conf = format!(
        "port {port}\n\
         sentinel monitor {name} 127.0.0.1 {master_port} 2\n\
         sentinel down-after-milliseconds {name} {down}\n\
         sentinel failover-timeout {name} 3000\n\
         sentinel parallel-syncs {name} 1\n"
    );
    if let Some(p) = &setup.data_password {
        conf.push_str(&format!("sentinel auth-pass {name} {p}\n"));
    }
    let path = dir.join("sentinel.conf");
    std::fs::write(&path, conf).expect("write sentinel.conf");
    let mut args = vec![path.display().to_string(), "--sentinel".to_owned()];
    if let Some(certs) = &setup.tls {
        args.extend(certs.server_args(other_port(port), false, false));
        args.extend(["--tls-replication".into(), "yes".into()]);
    }
    if let Some(p) = &setup.sentinel_password {
        args.extend(["--requirepass".to_owned(), p.clone()]);
    }
    args
}
