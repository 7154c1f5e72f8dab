//! Shared by the CLI suites: the built `tracklock` binary, scratch
//! directories, and a running `tracklock` that never outlives its test.
#![allow(dead_code, unreachable_pub)] // each suite uses a part

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// The binary under test, built by cargo for this test run.
pub const BIN: &str = env!("CARGO_BIN_EXE_tracklock");

/// How long any single `tracklock` invocation may take before the test
/// gives up on it (generous: a busy 2-core machine).
pub const PATIENCE: Duration = Duration::from_secs(60);

/// `tracklock --url URL`, with `REDIS_URL` cleared so the environment of
/// the test run cannot leak in.
pub fn tracklock(url: &str) -> Command {
    let mut c = Command::new(BIN);
    c.arg("--url").arg(url).env_remove("REDIS_URL");
    c
}

/// Runs `cmd` to completion (bounded by [`PATIENCE`]).
pub fn output(cmd: &mut Command) -> Finished {
    Running::spawn(cmd).finish(PATIENCE)
}

/// A directory of its own for one test, removed on drop.
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn new(stem: &str) -> Scratch {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "tracklock-cli-{stem}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch(dir)
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }

    pub fn dir(&self) -> &str {
        self.0.to_str().expect("temp dir is UTF-8")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Polls for `path` to exist; how long it took, or `None` after `limit`.
pub fn wait_for_file(path: &Path, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if path.exists() {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    path.exists().then(|| start.elapsed())
}

/// What a finished `tracklock` left.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }
}

/// A `tracklock` process; dropped unfinished (a failing test), it gets
/// SIGTERM (passed on to its command) and then SIGKILL.
pub struct Running {
    child: Option<Child>,
}

impl Running {
    pub fn spawn(cmd: &mut Command) -> Running {
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tracklock");
        Running { child: Some(child) }
    }

    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.as_ref().expect("running").id() as i32)
    }

    pub fn signal(&self, sig: Signal) {
        kill(self.pid(), sig).expect("signal tracklock");
    }

    /// Waits at most `limit` for it to exit; panics (after killing it)
    /// when it does not.
    pub fn finish(mut self, limit: Duration) -> Finished {
        let mut child = self.child.take().expect("running");
        let start = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for tracklock") {
                break status;
            }
            if start.elapsed() > limit {
                self.child = Some(child);
                drop(self);
                panic!("tracklock did not exit within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let mut stdout = String::new();
        let mut stderr = String::new();
        if let Some(mut s) = child.stdout.take() {
            let _ = s.read_to_string(&mut stdout);
        }
        if let Some(mut s) = child.stderr.take() {
            let _ = s.read_to_string(&mut stderr);
        }
        Finished {
            status,
            stdout,
            stderr,
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = Pid::from_raw(child.id() as i32);
        let _ = kill(pid, Signal::SIGTERM);
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// A shell loop that runs about 30 s at most (so nothing a test starts
/// can run on forever), in small steps so that traps run promptly.
pub const LOOP: &str = "i=0; while [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done";
