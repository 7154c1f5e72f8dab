//! Real-Redis scenarios, each on all 18 combinations of runtime {tokio,
//! smol, glommio} × mode {tracking, noloop, absolute} × caching {on, off}
//! (`tracklock_tests::matrix!`). Every test gets its own `redis-server`
//! from the runner (`Topology::Server`); test names are
//! `<scenario>::<runtime>_<mode>_<caching>`.

mod auto_extension_keeps_lock;
mod bad_input;
mod cancelled_lock_leaves_nothing;
mod close_ends_everything;
mod connection_loss;
mod deleted_keys_lose_the_lock;
mod flushdb_while_held;
mod force_lock_takes_over;
mod one_locker_many_waiters;
mod pexpire_does_not_lose;
mod prefixes_and_with_lock;
mod script_flush;
mod ten_lockers_mutual_exclusion;
mod try_lock_contention;
mod try_lock_fails_when_held;
mod unlock_leaves_no_keys;
