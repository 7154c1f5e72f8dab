//! Writing a node's commands from the task that queued them.
//!
//! The driver task owns the node's stream, and a locker used to hand every
//! command to it: the caller queued bytes in the engine, woke the driver,
//! and the driver wrote them. On a contended hand-off that was a task
//! wake-up on the critical path besides the one that tells the next holder
//! (the README's "Where a contended hand-off goes"), and on an
//! uncontended lock+unlock two of its four.
//!
//! So a plain TCP connection also gives the locker a duplicate of its socket
//! ([`crate::Runtime::socket`]). Whoever changes the engine (a `lock`,
//! `unlock` or guard drop, or any driver's turn) sends what the engine
//! queued for a node right there, under the locker's mutex, with one
//! non-blocking `send`; only what the socket does not take at once is left
//! to the node's driver, which then waits for the socket as before. Bytes
//! stay in order: a direct write happens only while the driver holds none of
//! the node's bytes itself (`NodeState::backlog`), and both run under the
//! mutex. A task other than the driver sends only while the connection is
//! idle, no reply outstanding (`NodeState::idle`, from
//! [`tracklock_core::Engine::replies_pending`]: Nagle's rule without its
//! delay), so the commands of many busy tasks still leave together in the
//! driver's next write instead of one `send` each. The driver still reads
//! every reply (it is parked on the socket's read side anyway), so the only
//! wake-up left on a hand-off is the one of the task the reply concerns.
//!
//! A command that cannot go direct wakes the driver, except on a deep
//! pipeline: when the driver last turned, so many replies were outstanding
//! (`DEEP_PIPELINE` in `shared`) that the next one is due soon and gives it
//! a turn anyway, whose one write takes everything queued until then
//! (`Shared::needs_driver`). Without that rule, on tokio's multi-threaded
//! scheduler the woken driver ran beside 2,000 busy tasks and sent their
//! commands a few at a time (README, "Many tasks on one locker").
//!
//! TLS connections keep the old path (their bytes go through the rustls
//! session the driver owns), and so does a [`crate::Runtime`] that gives no
//! socket.

use tracklock_core::{Engine, Instant, NodeId};

/// A node connection's socket, shared with the driver's stream (a
/// duplicate descriptor of the same socket, closed with the connection).
#[cfg(unix)]
pub(crate) struct Direct(std::os::fd::OwnedFd);

/// Non-unix platforms have no direct writes: the type is never made.
#[cfg(not(unix))]
pub(crate) enum Direct {}

#[cfg(unix)]
impl Direct {
    pub(crate) fn new(fd: std::os::fd::OwnedFd) -> Direct {
        Direct(fd)
    }

    /// What the socket takes at once, without blocking; `None` when it
    /// takes nothing now or failed. A failure is left for the driver: its
    /// own write on the socket reports it (or its read sees the close).
    fn send(&self, buf: &[u8]) -> Option<usize> {
        use rustix::net::SendFlags;
        #[cfg(not(target_vendor = "apple"))]
        let flags = SendFlags::DONTWAIT | SendFlags::NOSIGNAL;
        // No MSG_NOSIGNAL there: std ignores SIGPIPE in Rust binaries, so a
        // closed peer is an EPIPE error.
        #[cfg(target_vendor = "apple")]
        let flags = SendFlags::DONTWAIT;
        loop {
            match rustix::net::send(&self.0, buf, flags) {
                Ok(0) => return None,
                Ok(n) => return Some(n),
                Err(rustix::io::Errno::INTR) => continue,
                Err(_) => return None,
            }
        }
    }
}

#[cfg(not(unix))]
impl Direct {
    fn send(&self, _buf: &[u8]) -> Option<usize> {
        match *self {}
    }
}

/// Sends what `engine` queued for `node` through `direct`, telling the
/// engine what left and when. True when nothing is left queued; false when
/// the socket did not take it all (the rest is for the driver).
pub(crate) fn flush(engine: &mut Engine, node: NodeId, direct: &Direct, now: Instant) -> bool {
    loop {
        let out = engine.transmit(node);
        if out.is_empty() {
            return true;
        }
        let Some(n) = direct.send(out) else {
            return false;
        };
        #[cfg(feature = "timeline")]
        crate::timeline::record(crate::timeline::Kind::Wrote);
        engine.consume_transmit(node, n);
        engine.handle_written(node, now);
    }
}
