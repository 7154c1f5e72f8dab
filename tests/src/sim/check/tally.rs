//! The checker's counters, added to the run's [`Stats`] at the end.

use crate::sim::Stats;

#[derive(Debug, Default)]
pub(super) struct Tally {
    pub(super) prompt_checked: u64,
    pub(super) prompt_skipped: u64,
    pub(super) liveness_samples: u64,
    pub(super) orphan_writes: u64,
    pub(super) handoffs: u64,
    pub(super) undermined: u64,
    /// Pairs of fenced grants whose token order was checked.
    pub(super) fence_checked: u64,
}

impl Tally {
    pub(super) fn add_to(&self, stats: &mut Stats) {
        stats.prompt_checked += self.prompt_checked;
        stats.prompt_skipped += self.prompt_skipped;
        stats.liveness_samples += self.liveness_samples;
        stats.orphan_writes += self.orphan_writes;
        stats.handoffs += self.handoffs;
        stats.fence_checked += self.fence_checked;
        // Only when it happened: the cluster counters print when any is there.
        if self.undermined > 0 {
            *stats.cluster.entry("undermined").or_default() += self.undermined;
        }
    }
}
