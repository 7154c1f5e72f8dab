//! Allocations per lock + unlock in steady state (one test per binary: the
//! counting allocator is global).

#![cfg(feature = "tokio")]

use std::alloc::{GlobalAlloc, Layout, System};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);

#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static A: Counting = Counting;

struct Redis(Child);

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn steady_state_allocations_per_lock_unlock() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let Ok(child) = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    else {
        eprintln!("redis-server not found: skipping");
        return;
    };
    let _redis = Redis(child);
    let addr = format!("127.0.0.1:{port}");
    let t0 = Instant::now();
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(t0.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(10));
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let locker = tracklock::tokio::Locker::connect(tracklock::Options::new(addr))
            .await
            .unwrap();
        let round = || async {
            let g = locker.lock("alloc").await.unwrap();
            g.unlock().await.unwrap();
        };
        for _ in 0..200 {
            round().await;
        }
        const N: usize = 500;
        let before = ALLOCS.load(Ordering::Relaxed);
        for _ in 0..N {
            round().await;
        }
        let per = (ALLOCS.load(Ordering::Relaxed) - before) as f64 / N as f64;
        println!("allocations per lock+unlock: {per:.2}");
        assert!(per <= 2.05, "{per} allocations per lock+unlock");
        locker.close().await;
    });
}
