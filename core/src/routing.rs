//! Which node holds key `i` of a lock.

use crate::config::Topology;
use crate::event::NodeId;

/// The node that stores key `index` of lock `name`.
pub(crate) fn node_of(topology: Topology, index: u8, _name: &[u8]) -> NodeId {
    match topology {
        // Cluster keys are routed by slot (`cluster::SlotMap`), not here.
        Topology::Single | Topology::Cluster(_) => NodeId(0),
        Topology::Instances(n) => NodeId(u16::from(index) % n.max(1)),
    }
}
