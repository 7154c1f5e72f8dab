//! Whether an engine can still become usable when some nodes never connect:
//! the question a runtime's `connect` asks to fail early instead of waiting
//! out its timeout.

use crate::config::Topology;
use crate::engine::Engine;
use crate::event::NodeId;
use crate::routing::node_of;

impl Engine {
    /// False once the nodes for which `failed` is true make
    /// [`Engine::is_usable`] impossible, whatever the others do: in single
    /// mode the node failed; with instances, the others hold fewer than a
    /// majority of a lock's keys; in a cluster, every seed failed (the slot
    /// map can only be learned from one). True otherwise, ready or not.
    pub fn can_become_usable(&self, failed: impl Fn(NodeId) -> bool) -> bool {
        let config = self.config();
        match config.topology {
            Topology::Single => !failed(NodeId(0)),
            Topology::Instances(_) => {
                let keys = u8::try_from(config.key_count()).unwrap_or(u8::MAX);
                let alive = (0..keys)
                    .filter(|&i| !failed(node_of(config.topology, i, b"")))
                    .count();
                alive >= usize::from(config.key_majority)
            }
            Topology::Cluster(seeds) => (0..seeds).any(|i| !failed(NodeId(i))),
        }
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
