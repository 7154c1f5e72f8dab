//! # The behaviour contract
//!
//! What every part of tracklock must do, whatever the runtime: the engine
//! implements it, the runtimes and the firmware `Device` expose it, the
//! real-Redis suites test it and the simulator (`tests/src/sim/`) checks
//! section 9 after every step. Code refers to it as "contract §N".
//!
//! tracklock does what Go's `rueidislock` does, is wire-compatible with it, and
//! goes further: a sans-I/O `no_std` core, three async runtimes, Redis Cluster and
//! independent-instance quorums, and a deterministic simulator that checks the
//! safety claims below.
//!
//! ### 1. Vocabulary
//!
//! | term | meaning |
//! |---|---|
//! | name | the user's lock name, any non-empty byte string (UTF-8 in the public API is fine) |
//! | majority `m` | `key_majority`, default 2; a lock is held while `m` of `n = 2m-1` keys are held |
//! | key `i` | `{prefix}:{i}:{name}` for `i` in `0..n`; default prefix `rueidislock` |
//! | value | fresh random bytes (at least 16) per acquisition attempt; identifies the holder |
//! | validity | `key_validity`, default 5 s: the TTL written on every key |
//! | extend interval | default `validity / 2` |
//! | try-next-after | default 20 ms: the poll period when client-side caching is off; it also paces retries after contention and is the first step of the jittered backoff after refusals (an attempt itself is not timed, see §4) |
//! | guard | what a successful acquisition returns; owns the held keys until unlocked, dropped or lost |
//!
//! Using the same prefix, key layout and majority as a Go `rueidislock` Locker makes
//! the two mutually exclusive on the same lock name. That interoperability is a
//! feature and must be kept (a Go-versus-Rust contention test is one of the
//! acceptance checks).
//!
//! ### 2. Connection set-up
//!
//! Per Redis node, one multiplexed connection carries every lock's commands and
//! receives the invalidation pushes (client-side caching needs the tracking and
//! the reads on the same connection).
//!
//! 1. `HELLO 3` (with `AUTH user pass` when configured, optional `SETNAME`); RESP3 is
//!    required. A server that refuses RESP3 gives a clear error, not a hang.
//! 2. `SELECT db` when configured.
//! 3. `CLIENT TRACKING ON OPTOUT` plus `NOLOOP` when enabled. Better than the Go
//!    original: NOLOOP is switched on automatically when the server's `HELLO`
//!    reply reports version >= 7.0.5, unless configured explicitly.
//! 4. With client-side caching disabled (for providers that lack it), no tracking
//!    is set up and waiters poll every try-next-after.
//!
//! Replies are matched to requests in order; pushes (`>invalidate`) are routed by
//! key. Facts to get right (checked against redis-server 7.0):
//! - An invalidation with a null key list (FLUSHDB/FLUSHALL) means "everything
//!   may have changed". Tracking is global across databases.
//! - Tracking is one-shot: after an invalidation the key is no longer tracked
//!   until it is read again, so every script re-reads the key with `GET`.
//! - An invalidation does not prove a change (tracking-table overflow, and
//!   without NOLOOP our own writes echo back after the reply): always re-check.
//! - Expiry sends an invalidation, but active expiry samples keys, so it can come
//!   late: a waiter also keeps a fallback timer at the holder's remaining TTL.
//! - Losing the connection loses tracking silently: treat it as a flush.
//!   An idle connection is pinged so a dead peer is noticed.
//!
//! ### 3. Server-side scripts
//!
//! Each operation below must have this effect, and must read the key (`GET`) so
//! that tracking registers it on this connection. Extension and release compare
//! and act atomically, so they are Lua scripts, run by `EVALSHA` with a fallback
//! to `EVAL` on `NOSCRIPT` (a server restart or `SCRIPT FLUSH` must not break
//! anything). Acquisition may instead be plain commands pipelined back to back
//! (`SET … NX PX`, then the read) when that is cheaper for the server: measure.
//!
//! | operation | effect | reply |
//! |---|---|---|
//! | acquire | `SET key value NX PX validity`; `GET key` | OK, or the holder's remaining TTL |
//! | force | `SET key value PX validity` (no NX); `GET key` | OK |
//! | extend | if `GET key == value`: `PEXPIRE key validity`; `GET key`; return 1 — else 0 | 1 / 0 |
//! | release | if `GET key == value`: `DEL key` — else 0 | 1 / 0 |
//!
//! Relative TTLs (`PX`, `PEXPIRE`) are the default: they do not depend on the
//! client's and the server's wall clocks agreeing. Absolute TTLs (`PXAT`,
//! `PEXPIREAT`, what the Go original uses by default) may be offered as an option.
//!
//! ### 4. Acquisition
//!
//! An attempt (`try_lock`, and each round of `lock`):
//!
//! 1. Draws a fresh value and records `t0`, the local monotonic time before the
//!    first request leaves.
//! 2. Sends the acquire script to the keys. The attempt succeeds once `m` keys
//!    replied OK; it fails as soon as `m` keys cannot be had (held by others, an
//!    error reply, or a node that stopped answering). Time a request spends
//!    queued in the locker's own pipeline, or waiting for a busy CPU, never
//!    fails an attempt: a key's attempt on a healthy connection ends with its
//!    reply; a node that stops answering is found by the connection's health
//!    check; a slow node does not hold back a majority already answered.
//!    Repeated failures back off with jitter; they never spin. Keys beyond the decisive ones
//!    are still attempted, so a successful holder ends up holding as many as it can.
//! 3. Succeeds only if `t0 + validity*(1 - drift) - margin` is still in the future
//!    when the majority is confirmed (drift: a configurable bound on clock rate
//!    error, default 1%; margin: a few ms). That instant is the guard's local
//!    deadline; every successful extension moves it forward from the extension's
//!    own send time.
//! 4. On failure, releases every key it did get (release script), so a failed
//!    attempt leaves nothing behind.
//!
//! Uncontended acquisition of a lock costs one round trip to each node involved,
//! not one round trip per key in sequence.
//!
//! `lock(name)` repeats attempts until one succeeds. Between attempts it waits for
//! a reason to retry: an invalidation of any key of that name, a release of that
//! name by another guard of the same locker, or (caching disabled) try-next-after.
//! No notification may be missed between a failed attempt and the wait.
//!
//! `force_lock(name)` uses the force script: it takes the lock from whoever holds
//! it; that holder is told its lock is lost.
//!
//! `try_lock(name)` makes one attempt and returns `NotLocked` only when another
//! holder was actually seen (a key holding someone else's value) so that no
//! majority can be had; any other failure returns its own error. `force_lock`
//! never returns `NotLocked`.
//!
//! Dropping a pending `lock`/`try_lock` future is safe: keys it had acquired are
//! released, nothing leaks.
//!
//! ### 5. While held
//!
//! - Every extend interval the guard extends each key it holds.
//! - An invalidation of a held key triggers an immediate extend on that key: if the
//!   value is still ours the key is kept (its TTL refreshed), otherwise the key is
//!   lost.
//! - When fewer than `m` keys are still held, or the local deadline passes without
//!   a successful extension, the lock is **lost**: the guard's loss signal fires at
//!   once and the remaining keys are released. A holder is never told late: the
//!   loss signal fires no later than the local deadline, which is earlier than any
//!   moment at which another client could acquire the lock (given the drift bound).
//! - Losing the connection means every tracked key may have changed: holders
//!   re-verify on reconnect and are lost if they cannot before their deadline;
//!   waiters retry.
//! - `FLUSHDB`/`FLUSHALL` (null invalidation): holders re-verify (and are lost),
//!   waiters retry.
//!
//! ### 6. Release
//!
//! `unlock().await` runs the release script on every held key and returns once the
//! server has answered. Dropping a guard releases in the background. Either way,
//! waiters of the same locker on that name are woken at once, and the next
//! attempt may be pipelined right behind the release on the same connection.
//!
//! ### 7. Closing
//!
//! `close()` ends the locker: held guards are told their locks are lost and their
//! keys are released; pending and later `lock`/`try_lock` calls return `Closed`.
//!
//! ### 8. Errors and bad input
//!
//! Every call ends: Ok, or the true typed error. An error reply from Redis is
//! never read as "held by someone else". Errors that keep a majority out of
//! reach end `lock`/`try_lock`/`force_lock` with the server's error, naming node
//! and command (OOM, NOPERM, READONLY, MISCONF, WRONGTYPE, authentication);
//! transient ones (LOADING, BUSY, TRYAGAIN, CLUSTERDOWN, MASTERDOWN, connection
//! loss) are retried with backoff while `lock` waits. A refused release makes
//! `unlock()` return the error (the keys stay until their TTL); a refused
//! extension is a loss whose reason carries the error.
//!
//! Every failure is a typed error with a message a person can act on:
//! `NotLocked`, `Closed`, connection errors (address, cause), server errors (the
//! server's own text), protocol errors (unexpected reply), and configuration
//! errors raised at construction (majority 0, extend interval >= validity,
//! empty name, prefix with `:` ambiguity, and the like). Nothing panics on bad
//! input from the user or the network; a malformed or hostile server reply closes
//! that connection with a protocol error and never corrupts another lock's state.
//!
//! ### 9. Safety claims the simulator must check
//!
//! With clock drift within the configured bound and no process pause longer than
//! the margin:
//!
//! 1. **Mutual exclusion** — at no instant do two guards of the same name both
//!    believe they hold it.
//! 2. **No leaks** — once every guard is released and the network has healed, no
//!    lock key remains.
//! 3. **Liveness** — a waiter acquires within a bounded time after the holder
//!    releases, whether or not caching is enabled.
//! 4. **Prompt loss** — a holder whose keys are deleted or overwritten by someone
//!    else learns it within one round trip of the invalidation.
//!
//! Beyond that bound (long pauses, wild clocks) mutual exclusion cannot be promised
//! by any lease: that is what fencing tokens are for (later work).
//!
//! ### 10. Fencing tokens (planned, opt-in)
//!
//! A fenced lock will carry a token: if holder A's lock was granted before holder
//! B's, `token(B) > token(A)`, as long as a majority of the name's counter keys
//! keep their values. Unfenced locks stay unchanged and wire-compatible with Go.
//!
