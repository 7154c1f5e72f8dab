#![cfg(feature = "tokio")]
#![allow(unsafe_code, missing_docs)]
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use tracklock::Options;
use tracklock_testkit::RedisServer;

static ON: AtomicBool = AtomicBool::new(false);
static TRACES: Mutex<Vec<String>> = Mutex::new(Vec::new());
thread_local! { static IN: Cell<bool> = const { Cell::new(false) }; }
struct A;
unsafe impl GlobalAlloc for A {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        note(l.size());
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        note(l.size());
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        note(n);
        unsafe { System.realloc(p, l, n) }
    }
}
fn note(size: usize) {
    if !ON.load(Ordering::Relaxed) {
        return;
    }
    if IN.with(|c| c.replace(true)) {
        return;
    }
    let bt = std::backtrace::Backtrace::force_capture();
    let s = format!("size {size}\n{bt}");
    TRACES.lock().unwrap().push(s);
    IN.with(|c| c.set(false));
}
#[global_allocator]
static G: A = A;

#[test]
fn where_allocs() {
    let redis = RedisServer::try_start().unwrap();
    let addr = redis.addr();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mode = std::env::var("MODE").unwrap_or_default();
    rt.block_on(async {
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let mut hs = Vec::new();
        for _ in 0..10 {
            let mut o = Options::new(addr.as_str());
            if mode == "fair" {
                o = o.fair(true);
            }
            if mode == "handoff" {
                o = o.local_handoff(8);
            }
            let l = tracklock::tokio::Locker::connect(o).await.unwrap();
            let stop = stop.clone();
            hs.push(tokio::spawn(async move {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let g = l.lock("a").await.unwrap();
                    g.unlock().await.unwrap();
                    n += 1;
                }
                n
            }));
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        ON.store(true, Ordering::SeqCst);
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        ON.store(false, Ordering::SeqCst);
        stop.store(true, Ordering::SeqCst);
        let mut tot = 0;
        for h in hs {
            tot += h.await.unwrap();
        }
        eprintln!("pairs total {tot}");
    });
    let t = TRACES.lock().unwrap();
    eprintln!("ALLOCS {}", t.len());
    for s in t.iter().take(6) {
        eprintln!("-----\n{s}");
    }
}
