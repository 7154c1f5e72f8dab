//! The throwaway `redis-server` the bench runs against: loopback, a free
//! port, no persistence, its own temporary directory. Killed by
//! [`Server`]'s `Drop`, and by [`kill_now`] from the panic hook and the
//! Ctrl-C handler (panics on worker threads do not unwind the main thread).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How to get the server, printed when it is missing.
pub const INSTALL_HINT: &str = "\
redis-server (7.x) was not found on PATH. Install it, for example:
    Debian/Ubuntu:  sudo apt-get update && sudo apt-get install -y redis-server
    Fedora:         sudo dnf install redis
    macOS:          brew install redis
then check that `redis-server --version` works and run the bench again.";

/// The running server process and its directory; taken (killed, removed)
/// exactly once, by whoever gets there first.
static RUNNING: Mutex<Option<(Child, PathBuf)>> = Mutex::new(None);

/// Guard of the throwaway server: kills it and removes its directory on drop.
#[derive(Debug)]
pub struct Server {
    port: u16,
    version: String,
}

impl Server {
    /// Starts `redis-server` on a free loopback port and waits until it
    /// answers `PING`.
    pub fn start() -> Result<Server, String> {
        let version = match Command::new("redis-server").arg("--version").output() {
            Ok(out) => String::from_utf8_lossy(&out.stdout).trim().to_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(INSTALL_HINT.to_owned())
            }
            Err(e) => return Err(format!("cannot run redis-server: {e}\n{INSTALL_HINT}")),
        };
        let mut last = String::new();
        for attempt in 0..10 {
            let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                .and_then(|l| l.local_addr())
                .map_err(|e| format!("no free loopback port: {e}"))?
                .port();
            let dir = std::env::temp_dir().join(format!(
                "tracklock-bench-{}-{attempt}-{port}",
                std::process::id()
            ));
            std::fs::create_dir_all(&dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            let log = dir.join("redis.log");
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
                .arg("--dir")
                .arg(&dir)
                .arg("--logfile")
                .arg(&log)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("cannot start redis-server: {e}\n{INSTALL_HINT}"))?;
            *RUNNING.lock().unwrap_or_else(|p| p.into_inner()) = Some((child, dir));
            let server = Server {
                port,
                version: version.clone(),
            };
            match server.wait_ready(&log) {
                Ok(()) => return Ok(server),
                Err(e) => last = e, // `server` drops: killed, directory removed.
            }
        }
        Err(format!("redis-server did not start: {last}"))
    }

    fn wait_ready(&self, log: &std::path::Path) -> Result<(), String> {
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(15) {
            if let Ok(mut s) = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)) {
                let mut buf = [0u8; 7];
                if s.write_all(b"PING\r\n").is_ok()
                    && s.read_exact(&mut buf).is_ok()
                    && &buf == b"+PONG\r\n"
                {
                    return Ok(());
                }
            }
            let exited = RUNNING
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_mut()
                .is_some_and(|(c, _)| !matches!(c.try_wait(), Ok(None)));
            if exited {
                let text = std::fs::read_to_string(log).unwrap_or_default();
                return Err(format!("exited early (port {}); log:\n{text}", self.port));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!("no PONG within 15 s on port {}", self.port))
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `redis://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// `redis-server --version`.
    pub fn version(&self) -> &str {
        &self.version
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        kill_now();
    }
}

/// Kills the server (if running) and removes its directory. Idempotent;
/// never blocks on a poisoned or busy lock for long.
pub fn kill_now() {
    let taken = match RUNNING.try_lock() {
        Ok(mut g) => g.take(),
        Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner().take(),
        Err(std::sync::TryLockError::WouldBlock) => {
            std::thread::sleep(Duration::from_millis(50));
            RUNNING.try_lock().ok().and_then(|mut g| g.take())
        }
    };
    if let Some((mut child, dir)) = taken {
        let _ = child.kill();
        let _ = child.wait();
        let _ = std::fs::remove_dir_all(dir);
    }
}
