//! The checker's read-only view of the world's state at the moment of an
//! observation. Nothing here changes anything or draws a random number.

use crate::sim::server::Entry;
use crate::sim::world::LinkState;

/// Questions the checker may ask. Nodes and lockers are indexes in the
/// world; `e` is a locker's engine's node id (its own numbering, which
/// differs from the world's in a cluster).
pub(crate) trait Facts {
    /// Real time, ns.
    fn now(&self) -> u64;
    /// A Redis Cluster run.
    fn clustered(&self) -> bool;

    // ---- nodes ----
    fn node_count(&self) -> usize;
    /// A replica (it only mirrors its master).
    fn is_replica(&self, node: usize) -> bool;
    /// The nodes key `i` of a lock (named `key`) may be on now: one, or two
    /// while its cluster slot migrates.
    fn key_nodes(&self, i: usize, key: &[u8]) -> Vec<usize>;
    /// `key` at `node` if live there (on the node's own clock).
    fn peek(&self, node: usize, key: &[u8]) -> Option<&Entry>;
    /// Every live key at `node`.
    fn live_keys(&self, node: usize) -> Vec<(Vec<u8>, Entry)>;
    /// The real time `node`'s clock expires `e` at (`u64::MAX`: never).
    fn real_expiry(&self, node: usize, e: &Entry) -> u64;
    /// `node` has `script` cached (else the engine pays a `NOSCRIPT`).
    fn knows_script(&self, node: usize, script: &str) -> bool;
    /// The sum of every node's disturbance counter (bumped by anything
    /// that may delay or lose a node's replies).
    fn nodes_disturb(&self) -> u64;

    // ---- lockers ----
    fn locker_count(&self) -> usize;
    /// Nothing stands in the locker's way: not paused or starved, every
    /// connection up and ready, every node it needs up and reachable, no
    /// error-reply window lately (see the world's definition).
    fn healthy(&self, l: usize) -> bool;
    /// The locker's disturbance counter (bumped by its pauses, starvation,
    /// partitions, closed connections).
    fn locker_disturb(&self, l: usize) -> u64;
    /// When a node last refused one of its extend scripts (`CLUSTERDOWN`).
    fn extend_refused_at(&self, l: usize) -> Option<u64>;
    /// The number of nodes its engine knows.
    fn engine_nodes(&self, l: usize) -> usize;
    /// The world's node behind its engine's node `e`.
    fn engine_node(&self, l: usize, e: usize) -> Option<usize>;
    /// Its engine's `(lock_count, is_idle)`.
    fn engine_load(&self, l: usize) -> (usize, bool);
    /// Its engine's `is_ready` for node `e`.
    fn node_ready(&self, l: usize, e: usize) -> bool;
    /// When its engine learned node `e` (0: from the start).
    fn learned_at(&self, l: usize, e: usize) -> u64;
    /// Its engine retired node `e` (`NodeRemoved`).
    fn node_retired(&self, l: usize, e: usize) -> bool;
    /// Its connection to node `e`.
    fn link(&self, l: usize, e: usize) -> LinkState;
}
