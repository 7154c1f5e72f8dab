//! Sends a command about key `i` of a lock to the server that holds it:
//! the one server, instance `i mod n`, or the cluster master owning the
//! key's slot (reached from a seed by following `MOVED` and `ASK`).

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::time::Duration;

use tracklock::{Mode, Options};

use crate::exit::Failure;
use crate::resp::{Conn, Reply};

/// Redirects followed for one key before giving up (a slot moves at most
/// once or twice while a command is in flight; more means a broken
/// cluster).
const MAX_REDIRECTS: usize = 5;

/// Retries of a transiently refused command (50 ms doubling: about 3 s).
const TRANSIENT_RETRIES: usize = 6;

/// Connections to the lock's servers, opened on first use.
pub(crate) struct Nodes {
    mode: Mode,
    addrs: Vec<String>,
    login: Login,
    conns: HashMap<String, Conn>,
}

/// What every new connection sends before its first command.
struct Login {
    username: Option<String>,
    password: Option<String>,
    database: u32,
}

impl Nodes {
    pub(crate) fn new(options: &Options) -> Result<Nodes, Failure> {
        let config = options
            .to_config()
            .map_err(|e| Failure::from_lock_error(&e))?;
        Ok(Nodes {
            mode: options.mode(),
            addrs: options.addresses().to_vec(),
            login: Login {
                username: config.username().map(str::to_owned),
                password: config.password().map(str::to_owned),
                database: config.database(),
            },
            conns: HashMap::new(),
        })
    }

    /// Sends `commands` (each about the lock's key `i`, the same key) in
    /// one pipeline to the key's server; returns that server's address and
    /// the replies. The error names the server and what failed.
    ///
    /// Transient refusals (`TRYAGAIN`, `CLUSTERDOWN`, `LOADING`, … as the
    /// library retries them: a failover or a restart in progress) are
    /// retried with backoff for about 3 s before they are reported.
    pub(crate) fn send(
        &mut self,
        i: usize,
        commands: &[&[&[u8]]],
    ) -> Result<(String, Vec<Reply>), String> {
        let mut pause = Duration::from_millis(50);
        for _ in 0..TRANSIENT_RETRIES {
            let sent = self.send_once(i, commands)?;
            match sent.1.iter().find_map(|r| match r {
                Reply::Error(e) => Some(e),
                _ => None,
            }) {
                Some(e) if is_transient(e) => std::thread::sleep(pause),
                _ => return Ok(sent),
            }
            pause *= 2;
        }
        self.send_once(i, commands)
    }

    fn send_once(
        &mut self,
        i: usize,
        commands: &[&[&[u8]]],
    ) -> Result<(String, Vec<Reply>), String> {
        match self.mode {
            Mode::Cluster => self.send_cluster(commands),
            // Single and instances: key i lives on instance i mod n
            // (`Options` checked that there is at least one address).
            _ => {
                let addr = self.addrs[i % self.addrs.len()].clone();
                let replies = self.on(&addr, false, commands)?;
                Ok((addr, replies))
            }
        }
    }

    /// From the first seed that answers, following redirects.
    fn send_cluster(&mut self, commands: &[&[&[u8]]]) -> Result<(String, Vec<Reply>), String> {
        let mut errors = Vec::new();
        let mut target = None;
        for seed in self.addrs.clone() {
            match self.on(&seed, false, commands) {
                Ok(replies) => {
                    target = Some((seed, replies));
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
            let Some(Reply::Error(e)) = replies.first() else {
                return Ok((addr, replies));
            };
            let Some((asking, to)) = redirect(e) else {
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
    fn on(
        &mut self,
        addr: &str,
        asking: bool,
        commands: &[&[&[u8]]],
    ) -> Result<Vec<Reply>, String> {
        let result = (|| {
            let conn = match self.conns.entry(addr.to_owned()) {
                Entry::Occupied(o) => o.into_mut(),
                Entry::Vacant(v) => v.insert(self.login.dial(addr)?),
            };
            if asking {
                let mut all: Vec<&[&[u8]]> = vec![&[b"ASKING"]];
                all.extend_from_slice(commands);
                let mut replies = conn.pipeline(&all)?;
                replies.remove(0);
                Ok(replies)
            } else {
                conn.pipeline(commands)
            }
        })();
        result.map_err(|e: std::io::Error| {
            self.conns.remove(addr);
            format!("{addr}: {e}")
        })
    }
}

impl Login {
    /// A new connection, authenticated and on the right database.
    fn dial(&self, addr: &str) -> std::io::Result<Conn> {
        let mut conn = Conn::connect(addr)?;
        if let Some(pass) = &self.password {
            match &self.username {
                Some(user) => conn.command(&[b"AUTH", user.as_bytes(), pass.as_bytes()])?,
                None => conn.command(&[b"AUTH", pass.as_bytes()])?,
            };
        }
        if self.database != 0 {
            conn.command(&[b"SELECT", self.database.to_string().as_bytes()])?;
        }
        Ok(conn)
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
