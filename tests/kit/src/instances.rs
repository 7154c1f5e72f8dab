//! N independent standalone `redis-server`s (the nodes of a Redlock-style
//! majority), private to a test or shared by a test run.

use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};

use crate::admin::Admin;
use crate::server::{RedisServer, StartError};

/// Environment variable naming already running standalone servers
/// (comma-separated `host:port`) for [`RedisInstances::shared`].
pub const INSTANCES_ENV: &str = "TRACKLOCK_INSTANCES";

/// How many servers [`RedisInstances::shared`] starts when
/// [`INSTANCES_ENV`] is not set.
pub const SHARED_INSTANCES: usize = 3;

/// N independent standalone servers, each a [`RedisServer`] (own port, own
/// directory, no persistence). Dropping it kills them all.
///
/// All methods take `&self`, so it can be shared in an `Arc` with a
/// watchdog. The set from [`RedisInstances::shared`] is used by concurrent
/// tests: [`RedisInstances::kill`] and [`RedisInstances::restart`] panic on
/// it (and [`RedisInstances::server`] too when it is attached to servers
/// this process does not own).
#[derive(Debug)]
pub struct RedisInstances {
    addrs: Vec<String>,
    /// Empty when attached to servers started by someone else.
    servers: Vec<RedisServer>,
    /// From [`RedisInstances::shared`]: no kill or restart.
    shared: bool,
}

impl RedisInstances {
    /// Starts `n` servers. Panics (with the server's log) when one does not
    /// come up.
    pub fn start(n: usize) -> RedisInstances {
        RedisInstances::try_start(n).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like [`RedisInstances::start`], but returns the error.
    pub fn try_start(n: usize) -> Result<RedisInstances, StartError> {
        let servers = (0..n)
            .map(|_| RedisServer::try_start())
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RedisInstances {
            addrs: servers.iter().map(RedisServer::addr).collect(),
            servers,
            shared: false,
        })
    }

    /// Attaches to running servers (`host:port` each) without owning them.
    /// Panics when one does not answer `PING`.
    pub fn attach(addrs: &[String]) -> RedisInstances {
        for a in addrs {
            let admin = Admin::connect(&format!("redis://{a}/0"));
            assert_eq!(admin.ping(), "PONG", "{a} does not answer PING");
        }
        RedisInstances {
            addrs: addrs.to_vec(),
            servers: Vec::new(),
            shared: true,
        }
    }

    /// The instances shared by every non-destructive test of this process:
    /// the servers named by [`INSTANCES_ENV`] when it is set (started by
    /// `.ci/run` through `examples/servers.rs`), otherwise
    /// [`SHARED_INSTANCES`] private servers started on first use and killed
    /// when the test process exits. Never kill, restart or flush them: other
    /// tests use them at the same time (use distinct key names).
    pub fn shared() -> Arc<RedisInstances> {
        static SHARED: OnceLock<Arc<RedisInstances>> = OnceLock::new();
        SHARED
            .get_or_init(|| {
                Arc::new(match env_addrs(INSTANCES_ENV) {
                    Some(addrs) => RedisInstances::attach(&addrs),
                    None => {
                        let mut i = RedisInstances::start(SHARED_INSTANCES);
                        i.reap_on_exit();
                        i.shared = true;
                        i
                    }
                })
            })
            .clone()
    }

    /// Makes sure the servers die with this process even if the set is
    /// never dropped (a `static`, or a process killed by a signal): a
    /// watcher process SIGKILLs them and removes their directories once
    /// this process is gone. It knows the current processes only: a server
    /// restarted afterwards is not covered.
    pub fn reap_on_exit(&self) {
        reap_on_exit(&self.servers);
    }

    /// True for [`RedisInstances::shared`] (and [`RedisInstances::attach`]):
    /// kill and restart panic.
    pub fn is_shared(&self) -> bool {
        self.shared
    }

    /// How many servers.
    pub fn len(&self) -> usize {
        self.addrs.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.addrs.is_empty()
    }

    /// Every server's `127.0.0.1:PORT`.
    pub fn addrs(&self) -> Vec<String> {
        self.addrs.clone()
    }

    /// Server `i`'s address.
    pub fn addr(&self, i: usize) -> String {
        self.addrs[i].clone()
    }

    /// Server `i`. Panics when attached to servers this process does not
    /// own.
    pub fn server(&self, i: usize) -> &RedisServer {
        self.servers.get(i).unwrap_or_else(|| {
            panic!("RedisInstances::server: attached to {INSTANCES_ENV}, no server {i} owned")
        })
    }

    /// A new admin connection to server `i`.
    pub fn admin(&self, i: usize) -> Admin {
        Admin::connect(&format!("redis://{}/0", self.addrs[i]))
    }

    /// SIGKILLs server `i` (see [`RedisServer::kill`]).
    pub fn kill(&self, i: usize) {
        self.owned("kill", i).kill();
    }

    /// Starts server `i` again on the same port, empty (see
    /// [`RedisServer::restart`]).
    pub fn restart(&self, i: usize) {
        self.owned("restart", i).restart();
    }

    /// True while server `i` runs (always true when attached).
    pub fn is_running(&self, i: usize) -> bool {
        self.servers.get(i).is_none_or(RedisServer::is_running)
    }

    fn owned(&self, what: &str, i: usize) -> &RedisServer {
        assert!(
            !self.shared,
            "RedisInstances::{what}: these are the shared instances ({INSTANCES_ENV}), \
             not owned by this process; destructive tests must use RedisInstances::start"
        );
        &self.servers[i]
    }
}

/// The comma-separated addresses in `var`, if set and not empty.
pub(crate) fn env_addrs(var: &str) -> Option<Vec<String>> {
    let v = std::env::var(var).ok()?;
    let addrs: Vec<String> = v
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    (!addrs.is_empty()).then_some(addrs)
}

/// Makes sure `servers` die with this process even when their `Drop` never
/// runs (a `static`, or a process killed by a signal): a detached `sh`
/// watches this process and, once it is gone, SIGKILLs each server (only if
/// that pid still is a `redis-server` on its port) and removes its
/// directory. The servers must not be restarted afterwards (new pids).
pub(crate) fn reap_on_exit<'a>(servers: impl IntoIterator<Item = &'a RedisServer>) {
    const SCRIPT: &str = r#"
parent=$1; shift
# Gone: no such process, or a zombie (a killed process may stay one for a
# while when nobody reaps it promptly).
gone() { [ ! -e "/proc/$1" ] || [ "$(sed 's/^.*) //; s/ .*//' "/proc/$1/stat" 2>/dev/null)" = Z ]; }
until gone "$parent"; do sleep 0.2; done
for spec in "$@"; do
  pid=${spec%%:*}; rest=${spec#*:}; port=${rest%%:*}; dir=${rest#*:}
  if tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q "redis-server.*:$port"; then
    kill -9 "$pid" 2>/dev/null
  fi
  case "$dir" in */tracklock-redis-*) rm -rf "$dir" ;; esac
done
"#;
    let specs: Vec<String> = servers
        .into_iter()
        .filter_map(|s| {
            let pid = s.pid()?;
            Some(format!("{pid}:{}:{}", s.port(), s.dir().display()))
        })
        .collect();
    if specs.is_empty() {
        return;
    }
    let spawned = Command::new("sh")
        .arg("-c")
        .arg(SCRIPT)
        .arg("tracklock-reaper")
        .arg(std::process::id().to_string())
        .args(&specs)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    if let Err(e) = spawned {
        eprintln!("tracklock-tests: cannot start the reaper ({e}); servers may outlive the test");
    }
}
