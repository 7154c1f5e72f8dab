//! Quorum questions about the nodes, answered in one place: whether enough
//! nodes are ready for a lock to be acquired ([`Engine::is_usable`]), and
//! whether that can still happen when some nodes never connect
//! ([`Engine::can_become_usable`], asked by a runtime's `connect` to fail
//! early instead of waiting out its timeout). Both count keys through
//! [`node_of`], the routing the lock requests use.

use crate::config::Topology;
use crate::engine::Engine;
use crate::event::NodeId;
use crate::routing::node_of;

impl Engine {
    /// True when enough nodes are ready for a lock to be acquired: the node
    /// (single); nodes carrying a majority of a lock's keys (instances); the
    /// slot map known and a majority of the masters serving slots ready
    /// (cluster).
    pub fn is_usable(&self) -> bool {
        match self.config().topology {
            Topology::Single => self.is_ready(NodeId(0)),
            Topology::Instances(_) => self.keys_on_majority(|n| self.is_ready(n)),
            Topology::Cluster(_) => self.masters_usable(),
        }
    }

    /// False once the nodes for which `failed` is true make
    /// [`Engine::is_usable`] impossible, whatever the others do: in single
    /// mode the node failed; with instances, the others hold fewer than a
    /// majority of a lock's keys; in a cluster, every seed failed (the slot
    /// map can only be learned from one). True otherwise, ready or not.
    pub fn can_become_usable(&self, failed: impl Fn(NodeId) -> bool) -> bool {
        match self.config().topology {
            Topology::Single => !failed(NodeId(0)),
            Topology::Instances(_) => self.keys_on_majority(|n| !failed(n)),
            Topology::Cluster(seeds) => (0..seeds).any(|i| !failed(NodeId(i))),
        }
    }

    /// Instances: the nodes for which `ok` is true store a majority of a
    /// lock's keys.
    fn keys_on_majority(&self, ok: impl Fn(NodeId) -> bool) -> bool {
        let config = self.config();
        let keys = u8::try_from(config.key_count()).unwrap_or(u8::MAX);
        let on = (0..keys)
            .filter(|&i| ok(node_of(config.topology, i, b"")))
            .count();
        on >= usize::from(config.key_majority)
    }
}

#[cfg(test)]
mod tests {
    use crate::{Config, Engine, NodeId, Topology};

    fn engine(topology: Topology) -> Engine {
        Engine::new(Config::default().with_topology(topology), [0; 32]).unwrap()
    }

    #[test]
    fn single_needs_its_node() {
        let e = engine(Topology::Single);
        assert!(e.can_become_usable(|_| false));
        assert!(!e.can_become_usable(|n| n == NodeId(0)));
    }

    #[test]
    fn instances_need_a_majority_of_keys() {
        // Three instances, keys 0, 1, 2 on nodes 0, 1, 2: any one may fail.
        let e = engine(Topology::Instances(3));
        assert!(e.can_become_usable(|n| n == NodeId(1)));
        assert!(!e.can_become_usable(|n| n != NodeId(2)));
        // One instance holds every key.
        let e = engine(Topology::Instances(1));
        assert!(!e.can_become_usable(|n| n == NodeId(0)));
    }

    #[test]
    fn cluster_needs_one_seed() {
        let e = engine(Topology::Cluster(2));
        assert!(e.can_become_usable(|n| n == NodeId(0)));
        assert!(!e.can_become_usable(|n| n.0 < 2));
    }
}
