//! Sends a command about key `i` of a lock to the server that holds it:
//! the one server (a sentinel deployment's master, asked of the
//! sentinels), instance `i mod n`, or the cluster master owning the key's
//! slot (reached from a seed by following `MOVED` and `ASK`). The
//! connections are the `redis` crate's blocking ones, over TCP or TLS.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::mpsc;
use std::time::Duration;

use redis::sentinel::{SentinelClientBuilder, SentinelServerType};
use redis::{
    Client, Connection, ConnectionAddr, ConnectionLike as _, IntoConnectionInfo as _, Pipeline,
    RedisConnectionInfo, RedisResult, TlsCertificates, TlsMode, Value,
};
use tracklock::{join_host_port, Mode};

use crate::args::Target;
use crate::exit::Failure;

/// Bound on connecting (handshake included) and on each read and write: a
/// server that stops answering fails the command instead of hanging it.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Redirects followed for one key before giving up (a slot moves at most
/// once or twice while a command is in flight; more means a broken
/// cluster).
const MAX_REDIRECTS: usize = 5;

/// Retries of a transiently refused command (50 ms doubling: about 3 s).
const TRANSIENT_RETRIES: usize = 6;

/// Connections to the lock's servers, opened on first use.
pub(crate) struct Nodes {
    mode: Mode,
    /// The servers keys are sent to; in sentinel mode the master the
    /// sentinels named, or why none could be had (every key's error).
    addrs: Result<Vec<String>, String>,
    dialer: Dialer,
    conns: HashMap<String, Connection>,
}

/// How every connection to a data node is made: its login and database
/// (sent by the crate on connecting), and TLS.
struct Dialer {
    login: RedisConnectionInfo,
    /// `Some` with TLS: the CA to trust (`root_cert: None`: the
    /// platform's roots).
    tls: Option<TlsCertificates>,
}

impl Nodes {
    /// The lock's servers; in sentinel mode the master is asked of the
    /// sentinels now.
    pub(crate) fn new(target: &Target) -> Result<Nodes, Failure> {
        // The crate's TLS asks rustls for the process's provider: ring,
        // as the library uses (not left to whichever crate features happen
        // to be on; already installed is fine).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let options = &target.options;
        let config = options
            .to_config()
            .map_err(|e| Failure::from_lock_error(&e))?;
        let mut login = RedisConnectionInfo::default()
            .set_db(i64::from(config.database()))
            // Only the commands the tool needs (no `CLIENT SETINFO`).
            .set_skip_set_lib_name();
        if let Some(user) = config.username() {
            login = login.set_username(user);
        }
        if let Some(pass) = config.password() {
            login = login.set_password(pass);
        }
        let dialer = Dialer {
            login,
            tls: options.is_tls().then(|| TlsCertificates {
                client_tls: None,
                root_cert: target.tls_ca.clone(),
            }),
        };
        let addrs = options.addresses().to_vec();
        let (mode, addrs) = match options.mode() {
            Mode::Sentinel => (Mode::Single, dialer.master(target, &addrs).map(|m| vec![m])),
            mode => (mode, Ok(addrs)),
        };
        Ok(Nodes {
            mode,
            addrs,
            dialer,
            conns: HashMap::new(),
        })
    }

    /// Sends `commands` (each about the lock's key `i`, the same key) in
    /// one pipeline to the key's server; returns that server's address and
    /// the replies (an error reply is a [`Value::ServerError`]). The error
    /// names the server and what failed.
    ///
    /// Transient refusals (`TRYAGAIN`, `CLUSTERDOWN`, `LOADING`, … as the
    /// library retries them: a failover or a restart in progress) are
    /// retried with backoff for about 3 s before they are reported.
    pub(crate) fn send(
        &mut self,
        i: usize,
        commands: &Pipeline,
    ) -> Result<(String, Vec<Value>), String> {
        let mut pause = Duration::from_millis(50);
        for _ in 0..TRANSIENT_RETRIES {
            let sent = self.send_once(i, commands)?;
            match sent.1.iter().find_map(error_text) {
                Some(e) if is_transient(&e) => std::thread::sleep(pause),
                _ => return Ok(sent),
            }
            pause *= 2;
        }
        self.send_once(i, commands)
    }

    fn send_once(&mut self, i: usize, commands: &Pipeline) -> Result<(String, Vec<Value>), String> {
        let addrs = self.addrs.clone()?;
        match self.mode {
            Mode::Cluster => self.send_cluster(&addrs, commands),
            // Single and instances: key i lives on instance i mod n
            // (`Options` checked that there is at least one address).
            _ => {
                let addr = addrs[i % addrs.len()].clone();
                let replies = self.on(&addr, false, commands)?;
                Ok((addr, replies))
            }
        }
    }

    /// From the first seed that answers, following redirects.
    fn send_cluster(
        &mut self,
        seeds: &[String],
        commands: &Pipeline,
    ) -> Result<(String, Vec<Value>), String> {
        let mut errors = Vec::new();
        let mut target = None;
        for seed in seeds {
            match self.on(seed, false, commands) {
                Ok(replies) => {
                    target = Some((seed.clone(), replies));
                    break;
                }
                Err(e) => errors.push(e),
            }
        }
        let Some((mut addr, mut replies)) = target else {
            return Err(format!("no cluster seed answered: {}", errors.join("; ")));
        };
        for _ in 0..MAX_REDIRECTS {
            // Every command is about the same key, so the first reply
            // tells whether the key lives elsewhere.
            let Some(e) = replies.first().and_then(error_text) else {
                return Ok((addr, replies));
            };
            let Some((asking, to)) = redirect(&e) else {
                return Ok((addr, replies));
            };
            // Redis 7 writes `:port` when it knows no address for the node:
            // the same host as the one that answered.
            addr = match to.strip_prefix(':') {
                Some(port) => format!("{}:{port}", host_of(&addr)),
                None => to,
            };
            replies = self.on(&addr, asking, commands)?;
        }
        Err(format!(
            "more than {MAX_REDIRECTS} redirects (is the cluster re-sharding?)"
        ))
    }

    /// Runs `commands` on the server at `addr` (behind `ASKING` when
    /// `asking`); a broken connection is dropped so the next use redials.
    fn on(&mut self, addr: &str, asking: bool, commands: &Pipeline) -> Result<Vec<Value>, String> {
        let result = (|| {
            let conn = match self.conns.entry(addr.to_owned()) {
                Entry::Occupied(o) => o.into_mut(),
                Entry::Vacant(v) => v.insert(self.dialer.dial(addr)?),
            };
            let mut all = redis::pipe();
            if asking {
                all.cmd("ASKING");
            }
            for c in commands.cmd_iter() {
                all.add_command(c.clone());
            }
            // The raw replies, error replies among them (a pipeline's
            // `query` would fold those into one error).
            let mut replies = conn.req_packed_commands(&all.get_packed_pipeline(), 0, all.len())?;
            if replies.len() != all.len() {
                return Err(redis::RedisError::from(std::io::Error::other(format!(
                    "{} replies to {} commands",
                    replies.len(),
                    all.len()
                ))));
            }
            if asking {
                replies.remove(0);
            }
            Ok(replies)
        })();
        result.map_err(|e: redis::RedisError| {
            self.conns.remove(addr);
            format!("{addr}: {e}")
        })
    }
}

impl Dialer {
    /// Where `addr` (`host:port`, IPv6 hosts in brackets) is, plain or TLS.
    fn address(&self, addr: &str) -> RedisResult<ConnectionAddr> {
        let (host, port) = addr
            .rsplit_once(':')
            .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
            .ok_or_else(|| std::io::Error::other(format!("bad address {addr:?}")))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        Ok(match self.tls {
            None => ConnectionAddr::Tcp(host, port),
            Some(_) => ConnectionAddr::TcpTls {
                host,
                port,
                insecure: false,
                tls_params: None,
            },
        })
    }

    /// A new connection to a data node, authenticated and on the right
    /// database, with [`TIMEOUT`] on every read and write.
    fn dial(&self, addr: &str) -> RedisResult<Connection> {
        let info = self
            .address(addr)?
            .into_connection_info()?
            .set_redis_settings(self.login.clone());
        let client = match &self.tls {
            Some(certs) => Client::build_with_tls(info, certs.clone())?,
            None => Client::open(info)?,
        };
        let conn = client.get_connection_with_timeout(TIMEOUT)?;
        conn.set_read_timeout(Some(TIMEOUT))?;
        conn.set_write_timeout(Some(TIMEOUT))?;
        Ok(conn)
    }

    /// The master `target`'s sentinels name (checked to be a master with
    /// `ROLE`), as `host:port`: asked of each sentinel in turn until one
    /// names it.
    fn master(&self, target: &Target, sentinels: &[String]) -> Result<String, String> {
        let mut errors = Vec::new();
        for sentinel in sentinels {
            match self.master_from(target, sentinel) {
                Ok(master) => return Ok(master),
                Err(e) => errors.push(format!("sentinel {sentinel}: {e}")),
            }
        }
        Err(errors.join("; "))
    }

    /// The master as one sentinel names it.
    fn master_from(&self, target: &Target, sentinel: &str) -> Result<String, String> {
        let name = target.options.sentinel_master().unwrap_or_default();
        let addr = self.address(sentinel).map_err(|e| e.to_string())?;
        let mut builder = SentinelClientBuilder::new([addr], name, SentinelServerType::Master)
            .map_err(|e| e.to_string())?
            .set_client_to_redis_db(self.login.db());
        if let Some(user) = self.login.username() {
            builder = builder.set_client_to_redis_username(user);
        }
        if let Some(pass) = self.login.password() {
            builder = builder.set_client_to_redis_password(pass);
        }
        if let Some(user) = &target.sentinel_username {
            builder = builder.set_client_to_sentinel_username(user);
        }
        if let Some(pass) = &target.sentinel_password {
            builder = builder.set_client_to_sentinel_password(pass);
        }
        if let Some(certs) = &self.tls {
            builder = builder
                .set_client_to_sentinel_tls_mode(TlsMode::Secure)
                .set_client_to_sentinel_certificates(certs.clone())
                .set_client_to_redis_tls_mode(TlsMode::Secure)
                .set_client_to_redis_certificates(certs.clone());
        }
        let mut client = builder.build().map_err(|e| e.to_string())?;
        // The crate's blocking sentinel client sets no timeouts (a frozen
        // sentinel would hang it): it asks on a thread of its own, and the
        // whole exchange (connecting, the sentinel's reply, the master's
        // `ROLE`) gets the bound of one connection's handshake before the
        // next sentinel is asked. A thread that hangs is left behind; the
        // tool exits soon after.
        let bound = TIMEOUT;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(client.get_client());
        });
        let master = rx
            .recv_timeout(bound)
            .map_err(|_| format!("no master named within {bound:?}"))?
            .map_err(|e| e.to_string())?;
        Ok(match master.get_connection_info().addr() {
            ConnectionAddr::Tcp(host, port) | ConnectionAddr::TcpTls { host, port, .. } => {
                join_host_port(host, port)
            }
            other => return Err(format!("named {other}, not a TCP address")),
        })
    }
}

/// The text of an error reply (`MOVED 3999 127.0.0.1:7001`), as Redis
/// wrote it; `None` for any other reply.
pub(crate) fn error_text(reply: &Value) -> Option<String> {
    match reply {
        Value::ServerError(e) => Some(match e.details() {
            Some(d) => format!("{} {d}", e.code()),
            None => e.code().to_owned(),
        }),
        _ => None,
    }
}

/// Error replies that pass by themselves (the library's list).
fn is_transient(error: &str) -> bool {
    let code = error.split(' ').next().unwrap_or("");
    matches!(
        code,
        "TRYAGAIN" | "CLUSTERDOWN" | "LOADING" | "BUSY" | "MASTERDOWN"
    )
}

/// `MOVED <slot> <addr>` → `(false, addr)`, `ASK <slot> <addr>` →
/// `(true, addr)`; anything else is not a redirect.
fn redirect(error: &str) -> Option<(bool, String)> {
    let mut words = error.split(' ');
    let asking = match words.next()? {
        "MOVED" => false,
        "ASK" => true,
        _ => return None,
    };
    let _slot = words.next()?;
    let addr = words.next().filter(|a| !a.is_empty())?;
    Some((asking, addr.to_owned()))
}

/// The host of `host:port` (IPv6 hosts keep their brackets).
fn host_of(addr: &str) -> &str {
    addr.rsplit_once(':').map_or(addr, |(h, _)| h)
}

#[cfg(test)]
mod tests {
    use super::{host_of, redirect};

    #[test]
    fn cli_redirects() {
        assert_eq!(
            redirect("MOVED 3999 127.0.0.1:7001"),
            Some((false, "127.0.0.1:7001".into()))
        );
        assert_eq!(redirect("ASK 1 h:2"), Some((true, "h:2".into())));
        assert_eq!(redirect("MOVED 1"), None);
        assert_eq!(redirect("MOVED 1 :7000"), Some((false, ":7000".into())));
        assert_eq!(host_of("[::1]:7000"), "[::1]");
        assert_eq!(host_of("h:1"), "h");
        assert_eq!(redirect("ERR wrong"), None);
        assert!(super::is_transient("CLUSTERDOWN The cluster is down"));
        assert!(!super::is_transient("WRONGTYPE Operation"));
    }
}
