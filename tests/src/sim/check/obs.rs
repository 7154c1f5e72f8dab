//! What the world tells the checker, and what it gets back.

use tracklock_core::{LockFailure, LockId, LockMode, LostReason};

use crate::sim::server::{Change, Refusal, Writer};

/// Something that happened, reported by the world at the point it
/// happened. `l` is a locker, `id` the engine's id of a request.
#[derive(Debug)]
pub(crate) enum Obs<'a> {
    /// A worker made a request of lock `name` (an index in the names).
    Requested {
        l: usize,
        id: LockId,
        name: usize,
        mode: LockMode,
    },
    /// Engine event `Acquired`, with `Engine::token` of the request.
    Acquired {
        l: usize,
        id: LockId,
        token: Option<u64>,
    },
    /// Engine event `NotLocked`.
    NotLocked { l: usize, id: LockId },
    /// Engine event `Failed`.
    Failed {
        l: usize,
        id: LockId,
        error: &'a LockFailure,
    },
    /// Engine event `NotReleased`.
    NotReleased { l: usize, id: LockId },
    /// Engine event `Released`: the engine forgot the request.
    Released { l: usize, id: LockId },
    /// Engine event `Lost`.
    Lost {
        l: usize,
        id: LockId,
        reason: LostReason,
    },
    /// The worker is done with a request that ended (`NotLocked`,
    /// `Failed`, `Closed`, `Lost`) and unlocks it.
    Ended { l: usize, id: LockId },
    /// A worker calls `unlock` (or cancels): the engine's events until
    /// `Unlocked` come from that call.
    Unlocking { l: usize, id: LockId },
    /// The `unlock` call of `Unlocking` returned.
    Unlocked,
    /// A node sent an error reply to a locker's lock command.
    Refused(Refusal),
    /// A `SET NX` of locker `l` found another value on `key`.
    Taken { l: usize, key: &'a [u8] },
    /// A node command's effects are in: these values went away.
    Keyspace(&'a [Change]),
    /// A cluster failover lost these keys.
    FailoverLoss(Vec<LostKey>),
    /// A release of `value` was refused (`CLUSTERDOWN`): its keys are left
    /// to expire, marked orphan.
    ReleaseRefused { value: &'a [u8] },
    /// The admin is about to write to the keys of lock `name`.
    AdminWrite { name: usize },
    /// The admin is about to flush a node.
    AdminFlush,
    /// The deadline of prompt-loss check `index` (from `Note::Recheck`).
    PromptDue { index: usize },
    /// The periodic tick (every 20 ms of the active and drain phases).
    Tick,
    /// Every engine settled, every node up, the network quiet.
    Settled,
    /// Past every TTL after `Settled`: the end of the run.
    PastTtls,
}

/// What the checker hands back, in order.
#[derive(Debug)]
pub(crate) enum Note {
    /// A line for the trace.
    Trace(String),
    /// An invariant broke.
    Violation(String),
    /// Feed `Obs::PromptDue { index }` at real time `at`.
    Recheck { at: u64, index: usize },
}

/// A lock key a failover lost: the old master held it, the promoted
/// replica does not (or with an earlier expiry: `shortened`).
#[derive(Debug, Clone)]
pub(crate) struct LostKey {
    pub(crate) key: Vec<u8>,
    pub(crate) value: Vec<u8>,
    pub(crate) writer: Writer,
    pub(crate) shortened: bool,
    /// When it would have expired at the old master (real time).
    pub(crate) expiry: u64,
}
