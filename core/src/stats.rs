//! Counters of what an engine did, for a caller's metrics: plain integers
//! bumped where the engine already decides (its events, its one write
//! path), so keeping them costs an add each.

use crate::event::{Event, LostReason};

/// What an [`crate::Engine`] did since it was created. Read with
/// [`crate::Engine::stats`]; counters only grow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Lock requests accepted by [`crate::Engine::lock`].
    pub requests: u64,
    /// Acquisition attempts started (one `SET NX` per key each).
    pub attempts: u64,
    /// Attempts that did not reach a majority (a holder, a refusal, a
    /// node down, or too slow); a waiting request retries after them.
    pub failed_attempts: u64,
    /// Locks acquired ([`Event::Acquired`]).
    pub acquired: u64,
    /// `Try` requests that found the lock held ([`Event::NotLocked`]).
    pub not_locked: u64,
    /// Requests that ended with an error ([`Event::Failed`]).
    pub failed: u64,
    /// Held locks lost, by reason.
    pub lost: Losses,
    /// Unlocks that finished ([`Event::Released`]).
    pub released: u64,
    /// Releases the server refused ([`Event::NotReleased`]).
    pub not_released: u64,
    /// Extension scripts sent (periodic extensions and re-checks).
    pub extensions: u64,
    /// Commands written (each expects one reply), handshakes included.
    pub commands: u64,
    /// Bytes taken by the caller with [`crate::Engine::consume_transmit`].
    pub bytes_sent: u64,
    /// Connections opened ([`crate::Engine::handle_connected`]).
    pub connections: u64,
    /// Handshakes finished ([`Event::NodeReady`]).
    pub handshakes: u64,
    /// Connections lost or closed while open.
    pub disconnections: u64,
}

/// Lost locks by [`LostReason`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Losses {
    /// [`LostReason::KeysChanged`].
    pub keys_changed: u64,
    /// [`LostReason::Expired`].
    pub expired: u64,
    /// [`LostReason::Closed`].
    pub closed: u64,
    /// [`LostReason::Refused`].
    pub refused: u64,
}

impl Losses {
    /// Every loss, whatever the reason.
    pub fn total(&self) -> u64 {
        self.keys_changed + self.expired + self.closed + self.refused
    }
}

impl Stats {
    /// Counts what `event` reports.
    pub(crate) fn on_event(&mut self, event: &Event) {
        match event {
            Event::NodeReady { .. } => self.handshakes += 1,
            Event::Acquired { .. } => self.acquired += 1,
            Event::NotLocked { .. } => self.not_locked += 1,
            Event::Failed { .. } => self.failed += 1,
            Event::Released { .. } => self.released += 1,
            Event::NotReleased { .. } => self.not_released += 1,
            Event::Lost { reason, .. } => match reason {
                LostReason::KeysChanged => self.lost.keys_changed += 1,
                LostReason::Expired => self.lost.expired += 1,
                LostReason::Closed => self.lost.closed += 1,
                LostReason::Refused(_) => self.lost.refused += 1,
            },
            _ => {}
        }
    }
}
