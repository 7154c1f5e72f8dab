//! Fencing tokens (`tracklock_core::fence`): a fenced grant has a larger
//! token than every grant of its name that was granted before it was
//! requested, as long as no counter was lost in between.
//!
//! Counters are lost by a node restarting without its data, a flush, or a
//! failover (asynchronous replication); the guarantee only holds while a
//! majority of a name's counters keeps its values. The check is
//! conservative: any such event starts a new *epoch*, and only grants
//! whose whole acquisition (request to grant) lies in one epoch are
//! compared, with each other. A hostile node (mangled replies) may report
//! any counter: no check.

use tracklock_core::LockId;

use super::{req_key, Checker, ReqKey};

/// One clean fenced grant.
#[derive(Debug, Clone, Copy)]
pub(super) struct FencedGrant {
    granted: u64,
    token: u64,
    req: ReqKey,
}

impl Checker {
    /// A counter may have been lost: grants before it are not compared
    /// with grants after it.
    pub(super) fn counters_lost(&mut self) {
        self.fence_epoch += 1;
        self.grants.clear();
    }

    /// At `Acquired` with `token`: the order against every earlier clean
    /// grant of the name.
    pub(super) fn fenced_grant(&mut self, l: usize, id: LockId, token: Option<u64>, now: u64) {
        let key = req_key(l, id);
        let Some(req) = self.reqs.get(&key) else {
            return;
        };
        let (name, asked, epoch) = (req.name, req.asked, req.fence_epoch);
        if token.is_some() != self.rules.fencing {
            self.fail(format!(
                "fencing: seed {} L{l}: Acquired {id:?} with token {token:?}, fencing {}",
                self.rules.seed, self.rules.fencing
            ));
            return;
        }
        let Some(token) = token else {
            return;
        };
        if self.rules.hostile_node.is_some() || epoch != self.fence_epoch {
            return;
        }
        let grants = self.grants.entry(name).or_default();
        if let Some(a) = grants
            .iter()
            .filter(|a| a.granted < asked && a.token >= token)
            .max_by_key(|a| a.token)
        {
            let what = format!(
                "fencing: seed {} L{l} {id:?} requested {} at {asked} ns got token {token}, not above token {} of L{} (lock {:#x}) granted at {} ns",
                self.rules.seed, self.rules.names[name], a.token, a.req.0, a.req.1, a.granted
            );
            self.fail(what);
            return;
        }
        let compared = grants.iter().filter(|a| a.granted < asked).count() as u64;
        grants.push(FencedGrant {
            granted: now,
            token,
            req: key,
        });
        self.tally.fence_checked += compared;
    }
}
