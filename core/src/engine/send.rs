//! The one write path of key commands: acquisitions, extensions and
//! releases, to the key's node, behind `ASKING`, or again by `EVAL` after
//! `NOSCRIPT`. Each command goes into the connection's transmit buffer with
//! the reply it expects, or not at all.

use crate::commands::{self, KeyRef, Ttl};
use crate::config::{Topology, TtlMode};
use crate::conn::{Expect, KeyOp};
use crate::event::NodeId;
use crate::lock::KeyState;
use crate::time::Instant;

use super::{Engine, ReqIdx};

/// What to send for one key.
#[derive(Debug, Clone, Copy)]
pub(super) enum Op {
    Acquire {
        nx: bool,
    },
    Extend {
        refresh_below: u64,
    },
    /// Raise the key's fencing counter to the attempt's token.
    Raise,
    Release,
}

/// Where a key command goes, and how.
#[derive(Debug, Clone, Copy)]
pub(super) enum Via {
    /// The key's node (in a cluster, its hash slot's owner); scripts by
    /// `EVALSHA`.
    Route,
    /// This node, behind `ASKING` (a cluster `ASK` redirect); scripts by
    /// `EVAL`, since the importing node may not have them cached.
    Ask(NodeId),
    /// Again on `node` by `EVAL`, after `NOSCRIPT` (a server restart or
    /// `SCRIPT FLUSH`): the key's state and in-flight count carry over from
    /// the first send, which left at `sent`.
    Eval { node: NodeId, sent: Instant },
}

/// Why nothing was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Unsent {
    /// The request is gone.
    Gone,
    /// The node is not ready, or (cluster) the slot has no known owner.
    NoNode,
    /// The transmit buffer or the reply queue is full (no-alloc build).
    NoRoom,
}

impl Engine {
    fn ttl(&self, now: Instant) -> Ttl {
        match (self.config.ttl_mode, self.unix) {
            (TtlMode::Absolute, Some((base, ms))) => {
                let elapsed = u64::try_from(now.saturating_duration_since(base).as_millis())
                    .unwrap_or(u64::MAX);
                Ttl::Absolute(
                    ms.saturating_add(elapsed)
                        .saturating_add(self.settings.validity_ms),
                )
            }
            _ => Ttl::Relative(self.settings.validity_ms),
        }
    }

    /// Writes `op` for key `k` of request `req` to its node. False when
    /// nothing was sent (see [`Unsent`]).
    pub(super) fn send(&mut self, req: ReqIdx, k: usize, op: Op, now: Instant) -> bool {
        self.write(req, k, op, Via::Route, now).is_ok()
    }

    /// Writes `op` for key `k` of request `req` as `via` says.
    pub(super) fn write(
        &mut self,
        req: ReqIdx,
        k: usize,
        op: Op,
        via: Via,
        now: Instant,
    ) -> Result<(), Unsent> {
        let ttl = self.ttl(now);
        let Engine {
            requests,
            names,
            conns,
            outbox,
            stats,
            settings,
            config,
            map,
            ..
        } = self;
        let id = requests.id(req).ok_or(Unsent::Gone)?;
        let name = names.text(names.of(req).ok_or(Unsent::Gone)?);
        let lock = requests.get_mut(req).ok_or(Unsent::Gone)?;
        let current = *lock.keys.get(k).ok_or(Unsent::Gone)?;
        let node = match via {
            Via::Ask(n) | Via::Eval { node: n, .. } => n,
            // A key moves to its slot's current owner between requests only:
            // replies in flight come back on the node they were sent to.
            Via::Route
                if matches!(config.topology, Topology::Cluster(_)) && current.inflight == 0 =>
            {
                map.owner(current.hash_slot).ok_or(Unsent::NoNode)?
            }
            Via::Route => current.node,
        };
        let c = conns
            .as_mut_slice()
            .get_mut(usize::from(node.0))
            .ok_or(Unsent::NoNode)?;
        // A `NOSCRIPT` resend answers a reply that just came on this
        // connection: it is up.
        if !matches!(via, Via::Eval { .. }) && !c.is_ready() {
            return Err(Unsent::NoNode);
        }
        let asking = matches!(via, Via::Ask(_));
        let by_sha = matches!(via, Via::Route);
        let key = KeyRef {
            prefix: config.prefix.as_bytes(),
            index: k as u8,
            name: name.as_bytes(),
        };
        let ttl_number = match ttl {
            Ttl::Relative(ms) | Ttl::Absolute(ms) => ms,
        };
        let k8 = k as u8;
        let mark = c.tx.len();
        let fence = lock.fenced.then_some(&settings.fence_read);
        let ok = match op {
            Op::Acquire { nx } => {
                commands::acquire(&mut c.tx, key, &lock.value, nx, ttl, asking, fence).is_ok()
                    && (!asking || c.expect(Expect::Asking))
                    && c.expect(Expect::Op {
                        id,
                        key: k8,
                        op: KeyOp::AcquireSet,
                    })
                    && (!asking || c.expect(Expect::Asking))
                    && c.expect(Expect::Op {
                        id,
                        key: k8,
                        op: KeyOp::AcquireTtl,
                    })
            }
            Op::Extend { refresh_below } => {
                let sent = match via {
                    Via::Eval { sent, .. } => sent,
                    Via::Route | Via::Ask(_) => now,
                };
                (!asking || (commands::asking(&mut c.tx).is_ok() && c.expect(Expect::Asking)))
                    && commands::script(
                        &mut c.tx,
                        &settings.extend,
                        by_sha,
                        key,
                        &lock.value,
                        &[ttl_number, refresh_below],
                    )
                    .is_ok()
                    && c.expect(Expect::Op {
                        id,
                        key: k8,
                        op: KeyOp::Extend {
                            sent,
                            by_sha,
                            refresh_below,
                        },
                    })
            }
            Op::Raise => {
                (!asking || (commands::asking(&mut c.tx).is_ok() && c.expect(Expect::Asking)))
                    && commands::fenced_script(
                        &mut c.tx,
                        &settings.fence_raise,
                        by_sha,
                        key,
                        &lock.value,
                        &[lock.token],
                    )
                    .is_ok()
                    && c.expect(Expect::Op {
                        id,
                        key: k8,
                        op: KeyOp::Raise { by_sha },
                    })
            }
            Op::Release => {
                (!asking || (commands::asking(&mut c.tx).is_ok() && c.expect(Expect::Asking)))
                    && commands::script(&mut c.tx, &settings.release, by_sha, key, &lock.value, &[])
                        .is_ok()
                    && c.expect(Expect::Op {
                        id,
                        key: k8,
                        op: KeyOp::Release { by_sha },
                    })
            }
        };
        if !ok {
            // Only reachable in the no-alloc build: undo the partial write.
            // (A half-pushed acquire pair cannot happen: the queue check for
            // the second entry only fails when the first filled it, and then
            // the connection is failed below, which clears the queue.)
            c.tx.truncate(mark);
            // Room comes back without an input of its own: try again at
            // every pump.
            requests.defer(req);
            return Err(Unsent::NoRoom);
        }
        outbox.note(node, c);
        if matches!(op, Op::Extend { .. }) && !matches!(via, Via::Eval { .. }) {
            stats.extensions += 1;
        }
        if matches!(via, Via::Eval { .. }) {
            return Ok(());
        }
        let key = &mut lock.keys[k];
        key.node = node;
        match op {
            Op::Acquire { .. } => {
                key.state = KeyState::Acquiring;
                key.inflight += 2;
                key.sent = now;
                key.set_ok = None;
                key.taken_ttl = None;
            }
            Op::Extend { .. } => {
                key.inflight += 1;
                key.verify = false;
                key.recheck_at = None;
            }
            Op::Raise => {
                key.inflight += 1;
                key.raise = crate::lock::Raise::Sent;
            }
            Op::Release => {
                key.state = KeyState::Releasing;
                key.inflight += 1;
                key.recheck_at = None;
            }
        }
        Ok(())
    }
}

impl Op {
    /// The command a `NOSCRIPT` reply asks to resend: the scripts only.
    pub(super) fn of_script(op: KeyOp) -> Option<Op> {
        match op {
            KeyOp::Extend { refresh_below, .. } => Some(Op::Extend { refresh_below }),
            KeyOp::Release { .. } => Some(Op::Release),
            KeyOp::Raise { .. } => Some(Op::Raise),
            KeyOp::AcquireSet | KeyOp::AcquireTtl => None,
        }
    }
}
