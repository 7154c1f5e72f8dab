//! `tracklock run`: a command in its own process group, under the lock.

use std::io;
use std::os::unix::process::ExitStatusExt as _;
use std::process::{ExitCode, ExitStatus};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, Command};
use tokio::signal::unix::{signal, SignalKind};
use tokio::time::{sleep, timeout, Instant};
use tracklock::tokio::{Guard, Locker};
use tracklock::{LostReason, Options};

use crate::args::RunArgs;
use crate::exit::{Failure, CANNOT_EXECUTE, LOST, NOT_FOUND, OSERR, TEMPFAIL};

/// How often the process group is checked for members that outlive the
/// command after the lock was lost.
const GROUP_POLL: Duration = Duration::from_millis(50);

pub(crate) async fn run(options: Options, args: RunArgs) -> Result<ExitCode, Failure> {
    // Handlers first: from here on SIGINT/SIGTERM/SIGHUP no longer kill
    // tracklock, so it cannot die and leave the command running unlocked.
    let mut signals = Signals::new().map_err(|e| Failure::new(OSERR, e))?;
    let locker = tokio::select! {
        r = Locker::connect(options) => r.map_err(|e| Failure::from_lock_error(&e))?,
        sig = signals.recv() => return Ok(signal_exit(sig)),
    };
    let result = supervise(&locker, &mut signals, &args).await;
    locker.close().await;
    result
}

/// Takes the lock, runs the command, releases the lock.
async fn supervise(
    locker: &Locker,
    signals: &mut Signals,
    args: &RunArgs,
) -> Result<ExitCode, Failure> {
    let guard = tokio::select! {
        r = acquire(locker, args) => r?,
        // Dropping the pending acquisition releases any key it had.
        sig = signals.recv() => return Ok(signal_exit(sig)),
    };
    let mut child = match spawn(args, guard.token()) {
        Ok(child) => child,
        Err(failure) => {
            release(guard).await;
            return Err(failure);
        }
    };
    // The group's id is the child's pid (`process_group(0)`); `id()` is
    // `None` only once the child was reaped, and nothing awaited it yet.
    let group = Pid::from_raw(child.id().map_or(0, |id| id as i32));
    let outcome = loop {
        tokio::select! {
            status = child.wait() => break Ok(status),
            reason = guard.lost() => break Err(reason),
            sig = signals.recv() => forward(group, sig),
        }
    };
    match outcome {
        Ok(status) => {
            release(guard).await;
            let status =
                status.map_err(|e| Failure::new(OSERR, format!("waiting for the command: {e}")))?;
            Ok(ExitCode::from(status_code(status)))
        }
        Err(reason) => {
            let status = stop(&mut child, group, &args.name, &reason, args.kill_after).await;
            release(guard).await;
            let how = match status {
                Ok(s) => format!("the command ended with status {}", status_code(s)),
                Err(e) => format!("waiting for the command failed: {e}"),
            };
            Err(Failure::new(
                LOST,
                format!(
                    "lock {:?} was lost while the command ran ({reason}); {how}",
                    args.name
                ),
            ))
        }
    }
}

/// Waits for the lock as the flags say.
async fn acquire(locker: &Locker, args: &RunArgs) -> Result<Guard, Failure> {
    let name = args.name.as_str();
    let taken = if args.force {
        locker.force_lock(name).await
    } else if args.try_once {
        locker.try_lock(name).await
    } else if let Some(wait) = args.wait {
        match timeout(wait, locker.lock(name)).await {
            Ok(r) => r,
            Err(_) => {
                return Err(Failure::new(
                    TEMPFAIL,
                    format!(
                        "lock {name:?} is held by someone else; gave up after {}",
                        humantime::format_duration(wait)
                    ),
                ))
            }
        }
    } else {
        locker.lock(name).await
    };
    taken.map_err(|e| {
        let f = Failure::from_lock_error(&e);
        Failure::new(f.code, format!("lock {name:?}: {}", f.message))
    })
}

/// Starts the command in a process group of its own, so that a signal
/// reaches everything it started (`sh -c` and its children alike).
fn spawn(args: &RunArgs, token: Option<u64>) -> Result<Child, Failure> {
    let Some((program, rest)) = args.command.split_first() else {
        return Err(Failure::new(crate::exit::USAGE, "no command given"));
    };
    let mut command = Command::new(program);
    command.args(rest).env("TRACKLOCK_NAME", &args.name);
    if let Some(token) = token {
        command.env("TRACKLOCK_TOKEN", token.to_string());
    }
    command.process_group(0).spawn().map_err(|e| {
        let code = if e.kind() == io::ErrorKind::NotFound {
            NOT_FOUND
        } else {
            CANNOT_EXECUTE
        };
        Failure::new(code, format!("cannot run {program:?}: {e}"))
    })
}

/// After the lock was lost: SIGTERM to the group, SIGKILL once `grace`
/// passed while the command or anything else in its group still runs
/// (the lock no longer protects what they do).
async fn stop(
    child: &mut Child,
    group: Pid,
    name: &str,
    reason: &LostReason,
    grace: Duration,
) -> io::Result<ExitStatus> {
    eprintln!("tracklock: lock {name:?} lost ({reason}): sending SIGTERM to the command");
    let deadline = Instant::now() + grace;
    forward(group, Signal::SIGTERM);
    let status = match timeout(grace, child.wait()).await {
        Ok(status) => status,
        Err(_) => {
            eprintln!(
                "tracklock: the command still runs {} after SIGTERM: sending SIGKILL",
                humantime::format_duration(grace)
            );
            forward(group, Signal::SIGKILL);
            return child.wait().await;
        }
    };
    // The command is gone; wait out the grace for the rest of its group.
    while group_alive(group) {
        if Instant::now() >= deadline {
            forward(group, Signal::SIGKILL);
            break;
        }
        sleep(GROUP_POLL).await;
    }
    status
}

/// Releases the lock; a failed release only warns (the keys expire within
/// the validity, and the command's own status is what the caller needs).
async fn release(guard: Guard) {
    if let Err(e) = guard.unlock().await {
        eprintln!("tracklock: warning: the lock was not released: {e}");
    }
}

/// Sends `sig` to the group; a group that is already gone is no error.
fn forward(group: Pid, sig: Signal) {
    if group.as_raw() <= 0 {
        return; // never signal our own group or every process
    }
    match killpg(group, sig) {
        Ok(()) | Err(Errno::ESRCH) => {}
        Err(e) => eprintln!("tracklock: cannot send {sig} to the command: {e}"),
    }
}

/// Whether any process is left in the group.
fn group_alive(group: Pid) -> bool {
    group.as_raw() > 0 && killpg(group, None) != Err(Errno::ESRCH)
}

/// The shell's convention: the exit code, or 128 + the signal that
/// killed the command.
fn status_code(status: ExitStatus) -> u8 {
    match (status.code(), status.signal()) {
        (Some(code), _) => code as u8,
        (None, Some(sig)) => signal_code(sig),
        // Neither exited nor killed: not a status `wait` returns.
        (None, None) => OSERR,
    }
}

fn signal_code(sig: i32) -> u8 {
    u8::try_from(128 + sig).unwrap_or(u8::MAX)
}

/// tracklock itself was told to stop before the command started.
fn signal_exit(sig: Signal) -> ExitCode {
    eprintln!("tracklock: got {sig} while waiting for the lock; no command was started");
    ExitCode::from(signal_code(sig as i32))
}

/// SIGINT, SIGTERM and SIGHUP, caught from the start of `run`.
struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> io::Result<Signals> {
        Ok(Signals {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// The next signal received. Cancel-safe (a signal is not lost when
    /// another branch of a `select!` wins).
    async fn recv(&mut self) -> Signal {
        tokio::select! {
            Some(()) = self.int.recv() => Signal::SIGINT,
            Some(()) = self.term.recv() => Signal::SIGTERM,
            Some(()) = self.hup.recv() => Signal::SIGHUP,
            // The streams never end while the runtime runs.
            else => std::future::pending().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_statuses() {
        assert_eq!(status_code(ExitStatus::from_raw(3 << 8)), 3);
        assert_eq!(status_code(ExitStatus::from_raw(0)), 0);
        // Killed by SIGKILL (9).
        assert_eq!(status_code(ExitStatus::from_raw(9)), 137);
        assert_eq!(signal_code(Signal::SIGTERM as i32), 143);
    }
}
