//! An independent admin connection that plays "someone else" against the
//! locker: deletes keys, expires them, flushes, kills connections.

use std::sync::{Mutex, MutexGuard};

use crate::offload::blocking;
use crate::resp::{self, Conn, FromValue};
use crate::rtt::Rtt;

/// A plain RESP2 connection, independent of tracklock. Every helper panics
/// with the command and the error when the command fails: it is test
/// scaffolding, not code under test. Shareable (`&self` methods behind a
/// mutex). After a connection error (server killed or restarted,
/// connection killed) a command reconnects and is sent once more.
pub struct Admin {
    url: String,
    con: Mutex<Option<Conn>>,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Admin {
    /// Connects to `url` (`redis://[[user]:password@]host:port[/db]`).
    /// Panics when the server cannot be reached.
    pub fn connect(url: &str) -> Admin {
        match Admin::try_connect(url) {
            Ok(a) => a,
            Err(e) => panic!("admin cannot connect to {url}: {e}"),
        }
    }

    /// Like [`Admin::connect`], but returns the error.
    pub fn try_connect(url: &str) -> resp::Result<Admin> {
        let con = blocking(|| Conn::open(url))?;
        Ok(Admin {
            url: url.to_owned(),
            con: Mutex::new(Some(con)),
        })
    }

    fn con(&self) -> MutexGuard<'_, Option<Conn>> {
        self.con.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs any command, returning the error instead of panicking.
    pub fn try_cmd<T: FromValue + Send>(&self, name: &str, args: &[&str]) -> resp::Result<T> {
        let mut line = Vec::with_capacity(args.len() + 1);
        line.push(name);
        line.extend_from_slice(args);
        let mut guard = self.con();
        let slot: &mut Option<Conn> = &mut guard;
        let url = &self.url;
        blocking(move || {
            let mut tries = 0;
            loop {
                tries += 1;
                if slot.is_none() {
                    *slot = Some(Conn::open(url)?);
                }
                let con = slot.as_mut().expect("just opened");
                match con.cmd::<T, _>(&line) {
                    Err(e) if e.is_connection_error() => {
                        *slot = None;
                        if tries >= 2 {
                            return Err(e);
                        }
                    }
                    result => return result,
                }
            }
        })
    }

    /// Runs any command, panicking on error.
    pub fn cmd<T: FromValue + Send>(&self, name: &str, args: &[&str]) -> T {
        self.try_cmd(name, args)
            .unwrap_or_else(|e| panic!("admin {name} {args:?} failed: {e}"))
    }

    /// `PING`.
    pub fn ping(&self) -> String {
        self.cmd("PING", &[])
    }

    /// Round trips to this server, measured now (a few `PING`s).
    pub fn rtt(&self) -> Rtt {
        Rtt::measure(|| {
            self.ping();
        })
    }

    /// `DEL keys...`: how many existed.
    pub fn del<S: AsRef<str>>(&self, keys: &[S]) -> i64 {
        if keys.is_empty() {
            return 0;
        }
        let keys: Vec<&str> = keys.iter().map(AsRef::as_ref).collect();
        self.cmd("DEL", &keys)
    }

    /// `PEXPIRE key ms`: true when the key exists.
    pub fn pexpire(&self, key: &str, ms: u64) -> bool {
        self.cmd::<i64>("PEXPIRE", &[key, &ms.to_string()]) == 1
    }

    /// `PTTL key` (-2: missing, -1: no TTL).
    pub fn pttl(&self, key: &str) -> i64 {
        self.cmd("PTTL", &[key])
    }

    /// `EXISTS key`.
    pub fn exists(&self, key: &str) -> bool {
        self.cmd::<i64>("EXISTS", &[key]) == 1
    }

    /// `GET key` as raw bytes.
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.cmd("GET", &[key])
    }

    /// `SET key value`.
    pub fn set(&self, key: &str, value: &str) {
        self.cmd::<()>("SET", &[key, value]);
    }

    /// `DBSIZE`.
    pub fn dbsize(&self) -> i64 {
        self.cmd("DBSIZE", &[])
    }

    /// `FLUSHDB`.
    pub fn flushdb(&self) {
        self.cmd::<()>("FLUSHDB", &[]);
    }

    /// `FLUSHALL`.
    pub fn flushall(&self) {
        self.cmd::<()>("FLUSHALL", &[]);
    }

    /// `SCRIPT FLUSH`.
    pub fn script_flush(&self) {
        self.cmd::<()>("SCRIPT", &["FLUSH"]);
    }

    /// `KEYS pattern`, sorted.
    pub fn keys(&self, pattern: &str) -> Vec<String> {
        let mut k: Vec<String> = self.cmd("KEYS", &[pattern]);
        k.sort();
        k
    }

    /// `CLIENT LIST`, parsed: one entry per connection.
    pub fn clients(&self) -> Vec<Client> {
        let text: String = self.cmd("CLIENT", &["LIST"]);
        text.lines().filter_map(Client::parse).collect()
    }

    /// `CLIENT ID` of this admin connection.
    pub fn own_id(&self) -> u64 {
        self.cmd("CLIENT", &["ID"])
    }

    /// `CLIENT KILL ID id`: true when it existed.
    pub fn client_kill_by_id(&self, id: u64) -> bool {
        self.cmd::<i64>("CLIENT", &["KILL", "ID", &id.to_string()]) == 1
    }

    /// Kills every connection whose `CLIENT SETNAME` name is `name`; returns
    /// how many.
    pub fn client_kill_by_name(&self, name: &str) -> usize {
        self.clients()
            .into_iter()
            .filter(|c| c.name == name)
            .filter(|c| self.client_kill_by_id(c.id))
            .count()
    }

    /// `CLIENT KILL TYPE normal` (SKIPME yes: the admin's own connection
    /// survives); returns how many were killed.
    pub fn client_kill_normal(&self) -> usize {
        self.cmd("CLIENT", &["KILL", "TYPE", "normal", "SKIPME", "yes"])
    }
}

/// One line of `CLIENT LIST`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    /// `id=`.
    pub id: u64,
    /// `name=` (empty when unset).
    pub name: String,
    /// `cmd=`: the last command.
    pub cmd: String,
}

impl Client {
    fn parse(line: &str) -> Option<Client> {
        let field = |k: &str| {
            line.split(' ')
                .find_map(|kv| kv.strip_prefix(k).and_then(|v| v.strip_prefix('=')))
        };
        Some(Client {
            id: field("id")?.parse().ok()?,
            name: field("name").unwrap_or("").to_owned(),
            cmd: field("cmd").unwrap_or("").to_owned(),
        })
    }
}
