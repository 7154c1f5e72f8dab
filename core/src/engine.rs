//! STUB of the engine's public API; the implementation replaces it.
#![allow(unused_variables, dead_code)]

use crate::config::{Config, ConfigError};
use crate::event::{Event, LockError, LockId, LockMode, NodeId};
use crate::time::Instant;

/// The sans-I/O lock engine of one locker. See the crate docs.
#[derive(Debug)]
pub struct Engine {
    config: Config,
}

impl Engine {
    /// Creates an engine; `seed` seeds the generator of lock values.
    pub fn new(config: Config, seed: [u8; 32]) -> Result<Engine, ConfigError> {
        config.validate()?;
        Ok(Engine { config })
    }
    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }
    /// Number of nodes (connections) the caller must maintain.
    pub fn node_count(&self) -> usize {
        self.config.node_count()
    }
    /// Tells the engine the wall-clock time (Unix ms) at `now`; needed for
    /// absolute TTLs, harmless otherwise.
    pub fn set_unix_time(&mut self, now: Instant, unix_ms: u64) {}
    /// A fresh connection to `node` is open; the handshake starts.
    pub fn handle_connected(&mut self, node: NodeId, now: Instant) {}
    /// Bytes read from `node`. Returns how many were consumed (complete
    /// frames); keep the rest and hand them in again with more bytes.
    pub fn handle_bytes(&mut self, node: NodeId, now: Instant, bytes: &[u8]) -> usize {
        0
    }
    /// The connection to `node` is gone.
    pub fn handle_disconnected(&mut self, node: NodeId, now: Instant) {}
    /// Time passed; call at (or after) [`Engine::poll_timeout`].
    pub fn handle_timeout(&mut self, now: Instant) {}
    /// Starts a lock request on `name`.
    pub fn lock(&mut self, name: &str, mode: LockMode, now: Instant) -> Result<LockId, LockError> {
        Err(LockError::Closed)
    }
    /// Ends a request: cancels it if pending, releases it if held. Emits
    /// [`Event::Released`] once every key is released or certainly expired.
    pub fn unlock(&mut self, id: LockId, now: Instant) {}
    /// Closes the engine: holders lose, pending requests end with
    /// [`Event::Closed`], later requests are refused.
    pub fn close(&mut self, now: Instant) {}
    /// True after [`Engine::close`].
    pub fn is_closed(&self) -> bool {
        false
    }
    /// True when no request exists and nothing is in flight.
    pub fn is_idle(&self) -> bool {
        true
    }
    /// True while `id` is held (acquired and not lost or released).
    pub fn is_held(&self, id: LockId) -> bool {
        false
    }
    /// True when `node` finished its handshake.
    pub fn is_ready(&self, node: NodeId) -> bool {
        false
    }
    /// Bytes the engine wants written to `node`.
    pub fn transmit(&self, node: NodeId) -> &[u8] {
        &[]
    }
    /// `n` bytes of [`Engine::transmit`] were written.
    pub fn consume_transmit(&mut self, node: NodeId, n: usize) {}
    /// The earliest instant at which [`Engine::handle_timeout`] must be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        None
    }
    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        None
    }
}
