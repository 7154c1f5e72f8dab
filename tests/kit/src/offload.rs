//! Blocking I/O off threads that must not block on sockets.
//!
//! On a thread running a glommio executor, io_uring completions for the
//! lockers' sockets interrupt that thread's blocking calls, and a socket
//! with a timeout (the kit's) then fails with `EINTR` after the command ran,
//! its reply lost. Such a thread says so with [`offload_blocking_io`]; the
//! kit then runs its blocking I/O on a helper thread.

use std::cell::Cell;

thread_local! {
    static OFFLOAD: Cell<bool> = const { Cell::new(false) };
}

/// Marks (or unmarks) the calling thread as one whose blocking I/O the kit
/// must run on a helper thread; returns the previous setting.
pub fn offload_blocking_io(on: bool) -> bool {
    OFFLOAD.with(|o| o.replace(on))
}

/// True when the calling thread was marked by [`offload_blocking_io`].
pub fn is_offloaded() -> bool {
    OFFLOAD.with(Cell::get)
}

/// Runs `f` here, or on a helper thread when this thread is marked; a
/// panic in `f` is re-raised.
pub fn blocking<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    if is_offloaded() {
        std::thread::scope(|s| {
            s.spawn(f)
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    } else {
        f()
    }
}
