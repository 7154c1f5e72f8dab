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
//! queued for a node itself, with one non-blocking `send`; only what the
//! socket does not take at once is left to the node's driver, which then
//! waits for the socket as before.
//!
//! The `send` happens just after the locker's mutex is released, not under
//! it: on loopback a `send` runs the receiver's TCP input too (10–15 µs),
//! and held under the mutex it made the other worker threads of a
//! multi-threaded executor spin and sleep on the mutex (a profile of the
//! `uncontended` bench on tokio: 12 % of all samples in the `send`, 8 % in
//! the mutex's contention). Under the mutex the bytes are only copied into
//! this thread's [`Outbox`]; [`crate::inner::Locked`], the mutex's guard,
//! sends them when it drops. Bytes stay in order: whoever takes a node's
//! bytes out of the engine holds its connection's claim ([`Direct::claim`])
//! until they are sent, and nobody else takes any meanwhile: a command
//! queued during a `send` marks the claim, and the sender takes it next,
//! in one more `send`. A direct write also happens only while the driver
//! holds none of the node's bytes itself (`NodeState::backlog`); what a
//! `send` did not take goes to the driver (`NodeState::spill`) ahead of
//! anything queued later.
//!
//! A task other than the driver sends only while the connection is
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

use std::cell::RefCell;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tracklock_core::{Engine, Instant, NodeId};

use crate::shared::Shared;

/// Nobody is taking or sending this connection's bytes.
const FREE: u8 = 0;
/// One thread took bytes and is sending them.
const SENDING: u8 = 1;
/// As [`SENDING`], and more bytes were queued meanwhile: the sender takes
/// them next.
const MORE: u8 = 2;

/// A node connection's socket, shared with the driver's stream (a
/// duplicate descriptor of the same socket, closed with the connection),
/// and the claim on taking its bytes from the engine.
pub(crate) struct Direct {
    sock: Sock,
    state: AtomicU8,
}

#[cfg(unix)]
struct Sock(std::os::fd::OwnedFd);

/// Non-unix platforms have no direct writes: the type is never made.
#[cfg(not(unix))]
enum Sock {}

/// Outcome of [`Direct::claim`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Claim {
    /// The caller takes the bytes and sends them.
    Mine,
    /// Another thread is sending; it was told to take these too.
    Busy,
}

impl Direct {
    #[cfg(unix)]
    pub(crate) fn new(fd: std::os::fd::OwnedFd) -> Direct {
        Direct {
            sock: Sock(fd),
            state: AtomicU8::new(FREE),
        }
    }

    /// Claims the right to take the connection's queued bytes (under the
    /// locker's mutex). `Busy` leaves them queued for the thread sending
    /// now, which takes them before it gives the claim up.
    pub(crate) fn claim(&self) -> Claim {
        let mut seen = FREE;
        loop {
            let next = if seen == FREE { SENDING } else { MORE };
            match self
                .state
                .compare_exchange(seen, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(FREE) => return Claim::Mine,
                Ok(_) => return Claim::Busy,
                Err(MORE) => return Claim::Busy,
                // FREE or SENDING changed under us (the sender gave up the
                // claim, or it was just taken): look again.
                Err(now) => seen = now,
            }
        }
    }

    /// The sender gives the claim up: true when done, false when more
    /// bytes were queued meanwhile (the claim is still the caller's).
    fn release(&self) -> bool {
        match self
            .state
            .compare_exchange(SENDING, FREE, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => true,
            Err(_) => {
                // Only the holder leaves MORE.
                self.state.store(SENDING, Ordering::Release);
                false
            }
        }
    }

    /// Gives the claim up unconditionally (under the locker's mutex: the
    /// connection is gone, or its bytes went to the driver).
    fn free(&self) {
        self.state.store(FREE, Ordering::Release);
    }

    /// What the socket takes at once, without blocking; `None` when it
    /// takes nothing now or failed. A failure is left for the driver: its
    /// own write on the socket reports it (or its read sees the close).
    #[cfg(unix)]
    fn send(&self, buf: &[u8]) -> Option<usize> {
        use rustix::net::SendFlags;
        #[cfg(not(target_vendor = "apple"))]
        let flags = SendFlags::DONTWAIT | SendFlags::NOSIGNAL;
        // No MSG_NOSIGNAL there: std ignores SIGPIPE in Rust binaries, so a
        // closed peer is an EPIPE error.
        #[cfg(target_vendor = "apple")]
        let flags = SendFlags::DONTWAIT;
        loop {
            match rustix::net::send(&self.sock.0, buf, flags) {
                Ok(0) => return None,
                Ok(n) => return Some(n),
                Err(rustix::io::Errno::INTR) => continue,
                Err(_) => return None,
            }
        }
    }

    #[cfg(not(unix))]
    fn send(&self, _buf: &[u8]) -> Option<usize> {
        match self.sock {}
    }
}

/// Bytes taken from the engine under the mutex, to send once it is
/// released: one entry per connection. Thread-local, so taking them needs
/// no allocation once the entries' buffers have grown.
#[derive(Default)]
pub(crate) struct Outbox {
    entries: Vec<Entry>,
    used: usize,
}

#[derive(Default)]
struct Entry {
    direct: Option<Arc<Direct>>,
    node: usize,
    bytes: Vec<u8>,
}

thread_local! {
    static OUTBOX: RefCell<Outbox> = RefCell::new(Outbox::default());
}

/// Moves what `engine` queued for `node` into this thread's outbox (the
/// caller holds `direct`'s claim), telling the engine it left now. False
/// when this thread cannot send any more (its locals are gone while it
/// exits): the bytes stay queued for the driver and the claim is given up.
pub(crate) fn stage(engine: &mut Engine, node: NodeId, direct: &Arc<Direct>, now: Instant) -> bool {
    let staged = OUTBOX.try_with(|o| {
        let mut o = o.borrow_mut();
        let o = &mut *o;
        let at = o.entries[..o.used]
            .iter()
            .position(|e| e.direct.as_ref().is_some_and(|d| Arc::ptr_eq(d, direct)));
        let at = match at {
            Some(at) => at,
            None => {
                if o.used == o.entries.len() {
                    o.entries.push(Entry::default());
                }
                let e = &mut o.entries[o.used];
                e.direct = Some(direct.clone());
                e.node = usize::from(node.0);
                e.bytes.clear();
                o.used += 1;
                o.used - 1
            }
        };
        take_queued(engine, node, &mut o.entries[at].bytes, now);
    });
    if staged.is_err() {
        direct.free();
        return false;
    }
    true
}

/// Appends the engine's queued bytes for `node` to `out`, telling the
/// engine they left at `now`.
pub(crate) fn take_queued(engine: &mut Engine, node: NodeId, out: &mut Vec<u8>, now: Instant) {
    let mut took = false;
    loop {
        let queued = engine.transmit(node);
        if queued.is_empty() {
            break;
        }
        let n = queued.len();
        out.extend_from_slice(queued);
        engine.consume_transmit(node, n);
        took = true;
    }
    if took {
        engine.handle_written(node, now);
    }
}

/// Sends this thread's outbox; the locker's mutex (`shared`) is free.
/// `now` tells the engine when bytes queued during a `send` left;
/// `wake(node)` raises a driver that must take over what a socket refused.
pub(crate) fn send_staged(shared: &Mutex<Shared>, now: impl Fn() -> Instant, wake: impl Fn(usize)) {
    // Most critical sections stage nothing: look before taking.
    let Ok(Some(mut outbox)) = OUTBOX.try_with(|o| {
        let mut o = o.borrow_mut();
        (o.used > 0).then(|| std::mem::take(&mut *o))
    }) else {
        return;
    };
    for e in &mut outbox.entries[..outbox.used] {
        let Some(direct) = e.direct.take() else {
            continue;
        };
        send_entry(shared, &now, &wake, &direct, e.node, &mut e.bytes);
        e.bytes.clear();
    }
    outbox.used = 0;
    put_back(outbox);
}

/// Sends `bytes` on `direct`, then what was queued meanwhile, until the
/// claim is given up.
fn send_entry(
    shared: &Mutex<Shared>,
    now: &impl Fn() -> Instant,
    wake: &impl Fn(usize),
    direct: &Arc<Direct>,
    node: usize,
    bytes: &mut Vec<u8>,
) {
    loop {
        let mut off = 0;
        while off < bytes.len() {
            match direct.send(&bytes[off..]) {
                Some(n) => {
                    #[cfg(feature = "timeline")]
                    crate::timeline::record(crate::timeline::Kind::Wrote);
                    off += n;
                }
                None => break,
            }
        }
        if off < bytes.len() {
            // The socket took less than all: the rest goes to the driver,
            // which writes it before anything queued later.
            let mut sh = shared.lock().unwrap_or_else(PoisonError::into_inner);
            sh.spill(node, direct, &bytes[off..]);
            direct.free();
            drop(sh);
            wake(node);
            return;
        }
        if direct.release() {
            return;
        }
        // Queued during the `send`: take it (the claim is still ours).
        bytes.clear();
        let mut sh = shared.lock().unwrap_or_else(PoisonError::into_inner);
        if !sh.take_more(node, direct, bytes, now()) {
            direct.free();
            return;
        }
    }
}

fn put_back(outbox: Outbox) {
    let _ = OUTBOX.try_with(|o| {
        let mut o = o.borrow_mut();
        if o.entries.is_empty() {
            *o = outbox;
        }
    });
}

#[cfg(all(test, unix))]
mod tests {
    use super::{Claim, Direct};

    fn direct() -> Direct {
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        Direct::new(a.into())
    }

    #[test]
    fn one_claim_at_a_time_and_more_is_handed_over() {
        let d = direct();
        assert_eq!(d.claim(), Claim::Mine);
        assert_eq!(d.claim(), Claim::Busy);
        // Queued meanwhile: the holder keeps the claim and goes again.
        assert!(!d.release());
        assert_eq!(d.claim(), Claim::Busy);
        assert!(!d.release());
        assert!(d.release());
        assert_eq!(d.claim(), Claim::Mine);
        d.free();
        assert_eq!(d.claim(), Claim::Mine);
    }
}
