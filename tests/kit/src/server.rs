//! The one `redis-server` starter: a throwaway server on a free loopback port.
//! Every server of the repository's tests, benches and demos starts here
//! (cluster nodes and instances too).

use std::collections::BTreeSet;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::admin::Admin;

/// How to install the server, printed whenever it is missing.
pub const INSTALL_HINT: &str = "install redis-server 7.x (Debian/Ubuntu: `apt-get install \
     redis-server`, as root after `apt-get update`; Fedora: `dnf install redis`; macOS: \
     `brew install redis`) and make sure `redis-server --version` works";

/// How long a fresh server may take to answer `PING`.
const READY_TIMEOUT: Duration = Duration::from_secs(15);
/// How many fresh ports are tried when the chosen one turns out to be taken.
const PORT_ATTEMPTS: usize = 20;

static SEQ: AtomicU64 = AtomicU64::new(0);

/// Why a server could not be started.
#[derive(Debug)]
pub enum StartError {
    /// `redis-server` is not on PATH.
    NotInstalled,
    /// The server did not come up; the message says why (its log included).
    Failed(String),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::NotInstalled => {
                write!(f, "`redis-server` was not found on PATH: {INSTALL_HINT}")
            }
            StartError::Failed(m) => write!(f, "redis-server did not start: {m}"),
        }
    }
}

impl std::error::Error for StartError {}

/// A `redis-server` bound to `127.0.0.1` on a free port, with persistence
/// off and its own temporary directory. Killed (and the directory removed)
/// on drop.
///
/// All methods take `&self`, so one server can be shared (in an `Arc`) by a
/// test body and the watchdog that kills it when the body hangs.
pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    args: Vec<String>,
    password: Option<String>,
    child: Mutex<Option<Child>>,
}

impl fmt::Debug for RedisServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisServer")
            .field("port", &self.port)
            .field("dir", &self.dir)
            .field("args", &self.args)
            .finish_non_exhaustive()
    }
}

impl RedisServer {
    /// Starts a server with default settings. Panics with installation
    /// instructions when `redis-server` is missing, or with the server's log
    /// when it does not come up.
    pub fn start() -> RedisServer {
        RedisServer::start_with(&[])
    }

    /// Starts a server with extra command-line arguments (for example
    /// `["--requirepass", "secret"]`; the admin client then authenticates
    /// with that password). Panics like [`RedisServer::start`].
    pub fn start_with(args: &[&str]) -> RedisServer {
        match RedisServer::try_start_with(args) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        }
    }

    /// Like [`RedisServer::start`], but returns the error instead of
    /// panicking.
    pub fn try_start() -> Result<RedisServer, StartError> {
        RedisServer::try_start_with(&[])
    }

    /// Like [`RedisServer::start_with`], but returns the error instead of
    /// panicking.
    pub fn try_start_with(args: &[&str]) -> Result<RedisServer, StartError> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        RedisServer::try_start_with_fn(|_, _| args.clone())
    }

    /// A server with extra `args` for a test that is skipped without
    /// `redis-server`: `None` (with a note on stderr) when it is not
    /// installed; any other failure to start panics, as the test cannot run.
    pub fn start_or_skip(args: &[&str]) -> Option<RedisServer> {
        match RedisServer::try_start_with(args) {
            Ok(r) => Some(r),
            Err(StartError::NotInstalled) => {
                eprintln!("redis-server not found: skipping ({INSTALL_HINT})");
                None
            }
            Err(e) => panic!("{e}"),
        }
    }

    /// Like [`RedisServer::try_start_with`], but the extra arguments are
    /// computed for each attempt from the chosen port and the server's
    /// directory (which survives [`RedisServer::restart`]), so they can name
    /// files in that directory or more ports that must be free (a cluster
    /// node's `--cluster-port`): when the server exits with "Address already
    /// in use", the next attempt gets a fresh port and fresh arguments.
    /// [`RedisServer::restart`] reuses the arguments of the attempt that
    /// succeeded.
    pub fn try_start_with_fn(
        mut args: impl FnMut(u16, &Path) -> Vec<String>,
    ) -> Result<RedisServer, StartError> {
        if !is_installed() {
            return Err(StartError::NotInstalled);
        }
        let mut last = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port().map_err(|e| StartError::Failed(format!("no free port: {e}")))?;
            let dir = new_dir(port)?;
            let args = args(port, &dir);
            let password = password_in(args.iter().map(String::as_str));
            let server = RedisServer {
                port,
                dir,
                args,
                password,
                child: Mutex::new(None),
            };
            match server.spawn_and_wait() {
                Ok(()) => return Ok(server),
                Err(Spawn::PortTaken(log)) => last = log,
                Err(Spawn::Fatal(m)) => return Err(StartError::Failed(m)),
            }
            // `server` drops here: process killed, directory removed.
        }
        Err(StartError::Failed(format!(
            "no usable port after {PORT_ATTEMPTS} attempts; last log:\n{last}"
        )))
    }

    /// Starts a server with a TLS port too (its plain port stays open for
    /// the admin client), using `certs` (which must outlive the server: a
    /// restart reads them again): mutual TLS when `auth_clients`, the
    /// `localhost`-only certificate when `localhost_only`, and `extra`
    /// arguments. [`RedisServer::tls_port`] is the TLS port.
    pub fn try_start_tls(
        certs: &crate::TlsCerts,
        auth_clients: bool,
        localhost_only: bool,
        extra: &[&str],
    ) -> Result<RedisServer, StartError> {
        RedisServer::try_start_with_fn(|port, _| {
            let tls_port = loop {
                match free_port() {
                    Ok(p) if p != port => break p,
                    Ok(_) => {}
                    Err(e) => panic!("no free port for TLS: {e}"),
                }
            };
            let mut args = certs.server_args(tls_port, auth_clients, localhost_only);
            args.extend(extra.iter().map(|s| s.to_string()));
            args
        })
    }

    /// The TLS port (`--tls-port`), if the server has one.
    pub fn tls_port(&self) -> Option<u16> {
        let i = self.args.iter().position(|a| a == "--tls-port")?;
        self.args.get(i + 1)?.parse().ok()
    }

    /// `127.0.0.1:TLS_PORT`; panics when the server has no TLS port.
    pub fn tls_addr(&self) -> String {
        let port = self.tls_port().expect("the server has no TLS port");
        format!("127.0.0.1:{port}")
    }

    /// Starts a server on `port` (chosen by the caller, for example with
    /// [`free_port`] earlier: a server that "comes up later" where a client
    /// already dials), with extra arguments. No other port is tried.
    pub fn try_start_on(port: u16, args: &[&str]) -> Result<RedisServer, StartError> {
        if !is_installed() {
            return Err(StartError::NotInstalled);
        }
        let server = RedisServer {
            port,
            dir: new_dir(port)?,
            args: args.iter().map(|s| s.to_string()).collect(),
            password: password_in(args.iter().copied()),
            child: Mutex::new(None),
        };
        match server.spawn_and_wait() {
            Ok(()) => Ok(server),
            Err(Spawn::PortTaken(log)) => Err(StartError::Failed(format!(
                "port {port} is taken; log:\n{log}"
            ))),
            Err(Spawn::Fatal(m)) => Err(StartError::Failed(m)),
        }
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`, as `tracklock::Options::new` takes it.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `redis://[:password@]127.0.0.1:PORT/0`.
    pub fn url(&self) -> String {
        match &self.password {
            Some(p) => format!("redis://:{p}@127.0.0.1:{}/0", self.port),
            None => format!("redis://127.0.0.1:{}/0", self.port),
        }
    }

    /// The `--requirepass` password, if any.
    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// The server's working directory (holds its log, `redis.log`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A new admin connection (authenticated when the server has a
    /// password). Panics when the server cannot be reached.
    pub fn admin(&self) -> Admin {
        Admin::connect(&self.url())
    }

    /// Kills the server (SIGKILL: no shutdown, nothing saved) and starts it
    /// again on the same port with the same arguments. Every key is lost and
    /// every client connection is dropped. Panics when it does not come back.
    pub fn restart(&self) {
        self.kill();
        let mut last = String::new();
        // The port was ours a moment ago; retry briefly in case the kernel
        // has not let go of it yet.
        for _ in 0..50 {
            match self.spawn_and_wait() {
                Ok(()) => return,
                Err(Spawn::PortTaken(log)) => {
                    last = log;
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(Spawn::Fatal(m)) => panic!("redis-server did not restart: {m}"),
            }
        }
        panic!(
            "redis-server did not restart on port {}: port busy; last log:\n{last}",
            self.port
        );
    }

    /// SIGSTOPs the server: it keeps its sockets but answers nothing (a
    /// stalled process) until [`RedisServer::thaw`]. Panics when it is not
    /// running.
    pub fn freeze(&self) {
        signal(
            "-STOP",
            self.pid().expect("freeze: the server is not running"),
        );
    }

    /// SIGCONTs the server after [`RedisServer::freeze`].
    pub fn thaw(&self) {
        if let Some(pid) = self.pid() {
            signal("-CONT", pid);
        }
    }

    /// Kills the server (if running) and removes its directory; what `Drop`
    /// does, callable through a shared reference (from a panic hook or a
    /// signal handler). The server cannot be restarted afterwards.
    pub fn stop(&self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    /// Kills the server process, if running, and waits for it to exit.
    /// Later connections to [`RedisServer::addr`] are refused until
    /// [`RedisServer::restart`].
    pub fn kill(&self) {
        if let Some(mut child) = self.child().take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// True while the server process is running.
    pub fn is_running(&self) -> bool {
        match self.child().as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// The process id of the running server.
    pub fn pid(&self) -> Option<u32> {
        self.child().as_ref().map(Child::id)
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default()
    }

    fn child(&self) -> MutexGuard<'_, Option<Child>> {
        self.child.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn spawn_and_wait(&self) -> Result<(), Spawn> {
        let log = self.dir.join("redis.log");
        let _ = std::fs::remove_file(&log);
        let mut cmd = Command::new("redis-server");
        // A configuration file (a sentinel's, which it rewrites) must come
        // first on the command line.
        let (conf, args) = match self.args.split_first() {
            Some((c, rest)) if !c.starts_with("--") => (Some(c), rest),
            _ => (None, &self.args[..]),
        };
        cmd.args(conf);
        cmd.arg("--port")
            .arg(self.port.to_string())
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .args(["--daemonize", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .arg("--logfile")
            .arg(&log)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Spawn::Fatal(StartError::NotInstalled.to_string()));
            }
            Err(e) => return Err(Spawn::Fatal(format!("cannot run redis-server: {e}"))),
        };
        *self.child() = Some(child);
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            // Exited already: find out why.
            let exited = {
                let mut guard = self.child();
                match guard.as_mut().map(Child::try_wait) {
                    Some(Ok(Some(status))) => {
                        let mut child = guard.take().expect("present");
                        let _ = child.wait();
                        let mut stderr = String::new();
                        if let Some(mut e) = child.stderr.take() {
                            let _ = e.read_to_string(&mut stderr);
                        }
                        Some(format!("{status}; stderr: {stderr}"))
                    }
                    _ => None,
                }
            };
            if let Some(why) = exited {
                let text = format!("{why}\n{}", self.log());
                return if text.contains("Address already in use") {
                    Err(Spawn::PortTaken(text))
                } else {
                    Err(Spawn::Fatal(format!(
                        "redis-server exited at start-up: {text}"
                    )))
                };
            }
            if answers_ping(self.port) {
                // Make sure it is our process that answers, not another
                // test's server that took the same port a moment earlier.
                let ours = self.pid();
                match server_pid(self.port, self.password.as_deref()) {
                    Some(pid) if Some(pid) == ours => return Ok(()),
                    Some(_) => {
                        // Ours will exit with "Address already in use".
                    }
                    None => {}
                }
            }
            if Instant::now() >= deadline {
                let log = self.log();
                self.kill();
                return Err(Spawn::Fatal(format!(
                    "no answer to PING on port {} within {READY_TIMEOUT:?}; log:\n{log}",
                    self.port
                )));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A fresh directory for a server on `port`.
fn new_dir(port: u16) -> Result<PathBuf, StartError> {
    let dir = std::env::temp_dir().join(format!(
        "tracklock-redis-{}-{}-{port}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir)
        .map_err(|e| StartError::Failed(format!("cannot create {}: {e}", dir.display())))?;
    Ok(dir)
}

/// The value after `--requirepass`, if any.
fn password_in<'a>(mut args: impl Iterator<Item = &'a str>) -> Option<String> {
    args.find(|a| *a == "--requirepass")?;
    args.next().map(str::to_owned)
}

/// `kill <sig> <pid>`; panics when it fails.
pub(crate) fn signal(sig: &str, pid: u32) {
    let status = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap_or_else(|e| panic!("cannot run kill {sig} {pid}: {e}"));
    assert!(status.success(), "kill {sig} {pid}: {status}");
}

/// `redis-server --version`, trimmed (`None` when it cannot be run).
pub fn version() -> Option<String> {
    let out = Command::new("redis-server")
        .arg("--version")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

enum Spawn {
    PortTaken(String),
    Fatal(String),
}

/// True when `redis-server` can be run.
pub fn is_installed() -> bool {
    Command::new("redis-server")
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A loopback port nothing listens on right now (bound to port 0, read,
/// closed). Someone may take it before it is used: callers retry.
///
/// A port is never handed out twice in one process: a killed cluster node
/// is restarted on its old ports, and its cluster keeps dialling its bus
/// port meanwhile, so another test's server there would be drawn into a
/// foreign cluster.
pub fn free_port() -> io::Result<u16> {
    static GIVEN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    for _ in 0..1000 {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let port = l.local_addr()?.port();
        let mut given = GIVEN.lock().unwrap_or_else(PoisonError::into_inner);
        if given.insert(port) {
            return Ok(port);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AddrInUse,
        "no loopback port left that this process has not used yet",
    ))
}

/// The `process_id` that the server on `127.0.0.1:port` reports in
/// `INFO server` (after `AUTH` when a password is given).
fn server_pid(port: u16, password: Option<&str>) -> Option<u32> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()?;
    s.set_read_timeout(Some(Duration::from_millis(500))).ok()?;
    let mut req = Vec::new();
    if let Some(p) = password {
        req.extend_from_slice(format!("*2\r\n$4\r\nAUTH\r\n${}\r\n{p}\r\n", p.len()).as_bytes());
    }
    req.extend_from_slice(b"*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n");
    s.write_all(&req).ok()?;
    let mut text = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = s.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        text.extend_from_slice(&buf[..n]);
        let t = String::from_utf8_lossy(&text);
        if let Some(i) = t.find("process_id:") {
            let rest = &t[i + "process_id:".len()..];
            if let Some(end) = rest.find("\r\n") {
                return rest[..end].trim().parse().ok();
            }
        }
        if text.len() > 1 << 20 {
            return None;
        }
    }
}

/// True when something on `127.0.0.1:port` answers a RESP `PING` (an error
/// reply such as `-NOAUTH` counts: the server is up).
fn answers_ping(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(n) if n > 0 => buf[0] == b'+' || buf[0] == b'-',
        _ => false,
    }
}
