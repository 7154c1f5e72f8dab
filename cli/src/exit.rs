//! Exit codes (sysexits(3) where one fits) and the error that carries one.

use std::fmt;
use std::process::ExitCode;

/// Bad arguments, a bad URL or option, `unlock` without `--yes` and no
/// terminal to ask on (`EX_USAGE`).
pub(crate) const USAGE: u8 = 64;
/// Redis could not be reached, refused the handshake or a command, or the
/// lock could not be taken for a reason other than another holder
/// (`EX_UNAVAILABLE`).
pub(crate) const UNAVAILABLE: u8 = 69;
/// A call to the operating system failed: installing signal handlers,
/// waiting for the command (`EX_OSERR`).
pub(crate) const OSERR: u8 = 71;
/// The lock is held by someone else: `--try` found it taken, or `--wait`
/// ran out (`EX_TEMPFAIL`: try again later).
pub(crate) const TEMPFAIL: u8 = 75;
/// The lock was lost while the command ran; the command was stopped.
/// Outside the sysexits range on purpose, so it never reads as one of them.
pub(crate) const LOST: u8 = 79;
/// The command was found but could not be started (as `env(1)`).
pub(crate) const CANNOT_EXECUTE: u8 = 126;
/// The command was not found (as `env(1)` and shells).
pub(crate) const NOT_FOUND: u8 = 127;
/// `status`: the keys were read and no majority carries one value.
pub(crate) const NOT_HELD: u8 = 1;
/// `unlock`: the question on the terminal was not answered yes.
pub(crate) const NOT_CONFIRMED: u8 = 1;

/// The exit codes, as shown at the end of `--help`.
pub(crate) const TABLE: &str = "\
Exit codes:
  run     the command's own exit status when it exited by itself;
          128+N when it was killed by signal N (or tracklock got signal N
          while waiting for the lock)
  0       status: the lock is held; unlock: every key was deleted
  1       status: the lock is not held; unlock: not confirmed
  64      usage: bad arguments, URL or option; unlock without --yes and
          no terminal to ask on
  69      Redis unreachable, refused the handshake or a command, or the
          lock could not be taken for another reason than a holder;
          status: keys unreadable and no majority seen; unlock: a key
          could not be deleted, or its holder kept a majority
  71      an operating-system call failed (signal handlers, waiting for
          the command)
  75      the lock is held by someone else (--try, or --wait ran out)
  79      the lock was lost while the command ran; it got SIGTERM, then
          SIGKILL after --kill-after
  126     the command could not be started
  127     the command was not found";

/// A failure: the code to exit with and what to print on stderr.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: u8,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn new(code: u8, message: impl fmt::Display) -> Failure {
        Failure {
            code,
            message: message.to_string(),
        }
    }

    /// An error of the library, with the code its kind calls for.
    pub(crate) fn from_lock_error(e: &tracklock::Error) -> Failure {
        use tracklock::Error as E;
        let code = match e {
            E::NotLocked | E::KeysVanished => TEMPFAIL,
            E::Config(_) | E::Addresses(_) | E::InvalidUrl(_) | E::InvalidName | E::NameTooLong => {
                USAGE
            }
            _ => UNAVAILABLE,
        };
        Failure::new(code, e)
    }

    pub(crate) fn exit(self) -> ExitCode {
        eprintln!("tracklock: {}", self.message);
        ExitCode::from(self.code)
    }
}
