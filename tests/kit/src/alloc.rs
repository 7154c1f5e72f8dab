//! A counting global allocator: the process-wide number of allocations
//! (benchmarks, steady-state checks) and, per thread, the allocations made
//! while counting is switched on (the firmware path's "zero allocations"
//! check, which counts only tracklock's own code).
//!
//! ```ignore
//! #[global_allocator]
//! static ALLOC: tracklock_testkit::alloc::Counting = tracklock_testkit::alloc::Counting;
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};

static TOTAL: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Counting is switched on for this thread.
    static SCOPED: Cell<bool> = const { Cell::new(false) };
    /// Allocations counted on this thread while switched on.
    static SCOPED_COUNT: Cell<u64> = const { Cell::new(0) };
}

/// Counts every `alloc`, `alloc_zeroed` and `realloc`, then defers to the
/// system allocator.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counting;

impl Counting {
    fn count_one() {
        TOTAL.fetch_add(1, Ordering::Relaxed);
        // `try_with`: the thread's locals may be gone while it exits.
        if SCOPED.try_with(Cell::get).unwrap_or(false) {
            let _ = SCOPED_COUNT.try_with(|c| c.set(c.get() + 1));
        }
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments;
// counting touches only atomics and const-initialised thread locals, which
// never allocate.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Counting::count_one();
        // SAFETY: forwarded contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Counting::count_one();
        // SAFETY: forwarded contract.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded contract.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        Counting::count_one();
        // SAFETY: forwarded contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Allocations so far, process-wide (0 unless [`Counting`] is the global
/// allocator).
pub fn count() -> u64 {
    TOTAL.load(Ordering::Relaxed)
}

/// Runs `f` with this thread's counting switched `on` (or off), restoring
/// the previous setting afterwards.
pub fn with_counting<T>(on: bool, f: impl FnOnce() -> T) -> T {
    /// Restores the setting, also when `f` panics.
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            SCOPED.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(SCOPED.with(|c| c.replace(on)));
    f()
}

/// Awaits `f`, polling it with this thread's counting switched `on` (or
/// off): nest `counting(true, library_call)` around the code under test and
/// `counting(false, platform_io)` inside it for what is not.
pub async fn counting<F: Future>(on: bool, f: F) -> F::Output {
    let mut f = pin!(f);
    poll_fn(|cx| with_counting(on, || f.as_mut().poll(cx))).await
}

/// Allocations counted on this thread while counting was on.
pub fn counted_on_this_thread() -> u64 {
    SCOPED_COUNT.with(Cell::get)
}
