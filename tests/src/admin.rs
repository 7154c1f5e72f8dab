//! An independent admin connection (the `redis` crate, sync API) that plays
//! "someone else" against the locker: deletes keys, expires them, flushes,
//! kills connections.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use redis::{Connection, FromRedisValue, ToRedisArgs};

/// Bound on every admin command, so a dead server fails the test instead of
/// hanging it.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// A plain RESP2 connection, independent of tracklock. Every helper panics
/// with the command and the error when the command fails: it is test
/// scaffolding, not code under test. Shareable (`&self` methods behind a
/// mutex).
pub struct Admin {
    url: String,
    con: Mutex<Connection>,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin").finish_non_exhaustive()
    }
}

impl Admin {
    /// Connects to `url` (`redis://[:password@]host:port/db`). Panics when
    /// the server cannot be reached.
    pub fn connect(url: &str) -> Admin {
        let con = off_glommio(|| open(url)).unwrap_or_else(|e| panic!("admin cannot connect: {e}"));
        Admin {
            url: url.to_owned(),
            con: Mutex::new(con),
        }
    }

    fn con(&self) -> MutexGuard<'_, Connection> {
        self.con.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs any command, returning the error instead of panicking. After a
    /// connection error (server killed or restarted, connection killed) it
    /// reconnects and retries once.
    pub fn try_cmd<T: FromRedisValue + Send>(
        &self,
        name: &str,
        args: &[&str],
    ) -> redis::RedisResult<T> {
        let mut c = redis::cmd(name);
        for a in args {
            c.arg(*a);
        }
        let mut guard = self.con();
        let con: &mut Connection = &mut guard;
        off_glommio(|| match c.query(&mut *con) {
            Err(e) if is_connection_error(&e) => {
                *con = open(&self.url)?;
                c.query(&mut *con)
            }
            result => result,
        })
    }

    /// Runs any command, panicking on error.
    pub fn cmd<T: FromRedisValue + Send>(&self, name: &str, args: &[&str]) -> T {
        self.try_cmd(name, args)
            .unwrap_or_else(|e| panic!("admin {name} {args:?} failed: {e}"))
    }

    /// Runs any command with arbitrary arguments, panicking on error.
    pub fn cmd_args<T: FromRedisValue + Send, A: ToRedisArgs>(&self, name: &str, args: A) -> T {
        let mut c = redis::cmd(name);
        c.arg(args);
        let mut guard = self.con();
        let con: &mut Connection = &mut guard;
        let result = off_glommio(|| match c.query(&mut *con) {
            Err(e) if is_connection_error(&e) => open(&self.url).and_then(|fresh| {
                *con = fresh;
                c.query(&mut *con)
            }),
            result => result,
        });
        result.unwrap_or_else(|e| panic!("admin {name} failed: {e}"))
    }

    /// `PING`.
    pub fn ping(&self) -> String {
        self.cmd("PING", &[])
    }

    /// Round trips to this server, measured now (a few `PING`s).
    pub fn rtt(&self) -> crate::Rtt {
        crate::Rtt::measure(|| {
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
        let _: String = self.cmd("SET", &[key, value]);
    }

    /// `FLUSHDB`.
    pub fn flushdb(&self) {
        let _: String = self.cmd("FLUSHDB", &[]);
    }

    /// `FLUSHALL`.
    pub fn flushall(&self) {
        let _: String = self.cmd("FLUSHALL", &[]);
    }

    /// `SCRIPT FLUSH`.
    pub fn script_flush(&self) {
        let _: String = self.cmd("SCRIPT", &["FLUSH"]);
    }

    /// `KEYS pattern`, sorted.
    pub fn keys(&self, pattern: &str) -> Vec<String> {
        let mut k: Vec<String> = self.cmd("KEYS", &[pattern]);
        k.sort();
        k
    }

    /// `CLIENT LIST`, parsed: one `(id, name)` per connection.
    pub fn clients(&self) -> Vec<Client> {
        let text: String = self.cmd("CLIENT", &["LIST"]);
        text.lines().filter_map(Client::parse).collect()
    }

    /// `CLIENT ID` of this admin connection.
    pub fn own_id(&self) -> u64 {
        self.cmd::<i64>("CLIENT", &["ID"]) as u64
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
        self.cmd::<i64>("CLIENT", &["KILL", "TYPE", "normal", "SKIPME", "yes"]) as usize
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

/// Runs blocking admin I/O, on a helper thread when the calling thread runs
/// a glommio executor: io_uring completions for the lockers' sockets
/// interrupt that thread's blocking calls, and a socket with a timeout
/// (ours) then fails with `EINTR` after the command ran (its reply lost).
fn off_glommio<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    if crate::rt::on_glommio_thread() {
        std::thread::scope(|s| {
            s.spawn(f)
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    } else {
        f()
    }
}

fn is_connection_error(e: &redis::RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || e.is_unrecoverable_error()
}

fn open(url: &str) -> redis::RedisResult<Connection> {
    let client = redis::Client::open(url)?;
    let con = client.get_connection_with_timeout(IO_TIMEOUT)?;
    con.set_read_timeout(Some(IO_TIMEOUT))?;
    con.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(con)
}
