//! Scenarios, timed windows and the worker loop.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::alloc;
use crate::exec::Exec;
use crate::libs::LockLib;

/// What the tasks do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// All tasks share one client and lock then unlock the same name.
    Contended,
    /// One client (own connection) per task, all on the same name: the
    /// wake-up path across connections. Hand-off latency is recorded.
    ContendedLockers,
    /// All tasks share one client, each on its own name.
    Uncontended,
}

impl Scenario {
    /// Every scenario, in table order.
    pub const ALL: [Scenario; 3] = [
        Scenario::Contended,
        Scenario::ContendedLockers,
        Scenario::Uncontended,
    ];

    /// The name used on the command line, in the table and in the CSV.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Contended => "contended",
            Scenario::ContendedLockers => "contended-lockers",
            Scenario::Uncontended => "uncontended",
        }
    }

    /// Parses [`Scenario::name`].
    pub fn parse(s: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|sc| sc.name() == s)
    }

    fn clients(self, tasks: usize) -> usize {
        match self {
            Scenario::ContendedLockers => tasks,
            Scenario::Contended | Scenario::Uncontended => 1,
        }
    }

    fn names(self, tasks: usize) -> usize {
        match self {
            Scenario::Uncontended => tasks,
            Scenario::Contended | Scenario::ContendedLockers => 1,
        }
    }

    fn tracks_handoff(self) -> bool {
        self == Scenario::ContendedLockers
    }
}

/// One timed window of one library.
#[derive(Debug, Default)]
pub struct Window {
    /// Completed lock+unlock pairs (all tasks).
    pub ops: u64,
    /// From spawning the tasks until the last one finished its last pair
    /// (the tasks stop after the pair in flight when the window ends).
    pub elapsed: Duration,
    /// Allocations in the process during `elapsed`.
    pub allocs: u64,
    /// Hand-off latencies (ns), when the scenario records them.
    pub handoffs: Vec<u64>,
    /// Share of `ops` done by the busiest task (1/tasks when fair).
    pub top_share: f64,
}

impl Window {
    /// Operations per second.
    pub fn ops_per_s(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }

    /// Allocations per operation.
    pub fn allocs_per_op(&self) -> f64 {
        self.allocs as f64 / self.ops.max(1) as f64
    }
}

/// One row of the table: a library on a runtime, set up for a scenario.
pub trait Entry {
    /// Runtime label.
    fn runtime(&self) -> &'static str;
    /// Library id.
    fn library(&self) -> &'static str;
    /// True for the peers (not tracklock).
    fn is_peer(&self) -> bool;
    /// Runs one timed window of `dur`.
    fn window(&mut self, dur: Duration) -> Window;
    /// Closes the clients.
    fn close(&mut self);
}

/// Hand-off latencies kept per task and window, preallocated so recording
/// them does not allocate inside the window.
const HANDOFF_CAP: usize = 1 << 16;

/// An [`Entry`] for library `L` on runtime `E`.
pub struct LibEntry<E: Exec, L: LockLib> {
    exec: Arc<E>,
    library: &'static str,
    peer: bool,
    scenario: Scenario,
    tasks: usize,
    clients: Arc<[Arc<L>]>,
    names: Arc<[Arc<str>]>,
}

impl<E: Exec, L: LockLib> LibEntry<E, L> {
    /// Makes the clients the scenario needs with `make(i)` (on the runtime)
    /// and the lock names (distinct per runtime, library and scenario).
    pub fn new<F, Fut>(
        exec: &Arc<E>,
        library: &'static str,
        peer: bool,
        scenario: Scenario,
        tasks: usize,
        make: F,
    ) -> Self
    where
        F: Fn(usize) -> Fut + Send + 'static,
        Fut: Future<Output = L> + 'static,
    {
        let n = scenario.clients(tasks);
        let clients: Vec<Arc<L>> = exec.run(move || async move {
            let mut v = Vec::with_capacity(n);
            for i in 0..n {
                v.push(Arc::new(make(i).await));
            }
            v
        });
        let names: Vec<Arc<str>> = (0..scenario.names(tasks))
            .map(|i| format!("bench:{}:{library}:{}:{i}", exec.name(), scenario.name()).into())
            .collect();
        LibEntry {
            exec: exec.clone(),
            library,
            peer,
            scenario,
            tasks,
            clients: clients.into(),
            names: names.into(),
        }
    }
}

impl<E: Exec, L: LockLib> Entry for LibEntry<E, L> {
    fn runtime(&self) -> &'static str {
        self.exec.name()
    }

    fn library(&self) -> &'static str {
        self.library
    }

    fn is_peer(&self) -> bool {
        self.peer
    }

    fn window(&mut self, dur: Duration) -> Window {
        let clients = self.clients.clone();
        let names = self.names.clone();
        let tasks = self.tasks;
        let track = self.scenario.tracks_handoff();
        self.exec.run(move || async move {
            let stop = Arc::new(AtomicBool::new(false));
            let clock = track.then(|| Arc::new(AtomicU64::new(0)));
            let cap = if track { HANDOFF_CAP } else { 0 };
            let mut lats: Vec<Vec<u64>> = (0..tasks).map(|_| Vec::with_capacity(cap)).collect();
            let mut joins = Vec::with_capacity(tasks);
            let mut results = Vec::with_capacity(tasks);
            let a0 = alloc::count();
            let t0 = Instant::now();
            for (i, lat) in lats.drain(..).enumerate() {
                joins.push(E::spawn(worker(
                    clients[i % clients.len()].clone(),
                    names[i % names.len()].clone(),
                    stop.clone(),
                    clock.clone(),
                    i as u64,
                    lat,
                )));
            }
            E::sleep(dur).await;
            stop.store(true, Ordering::Relaxed);
            for j in joins {
                results.push(j.await);
            }
            let elapsed = t0.elapsed();
            let allocs = alloc::count() - a0;
            let mut w = Window {
                ops: 0,
                elapsed,
                allocs,
                handoffs: Vec::new(),
                top_share: 0.0,
            };
            let mut top = 0;
            for (ops, lat) in results {
                w.ops += ops;
                top = top.max(ops);
                w.handoffs.extend_from_slice(&lat);
            }
            w.top_share = top as f64 / w.ops.max(1) as f64;
            w
        })
    }

    fn close(&mut self) {
        let clients = self.clients.clone();
        self.exec.run(move || async move {
            for c in clients.iter() {
                c.close().await;
            }
        });
    }
}

/// Nanoseconds since the first call (never 0 after it).
fn nanos() -> u64 {
    static BASE: OnceLock<Instant> = OnceLock::new();
    BASE.get_or_init(Instant::now).elapsed().as_nanos() as u64 + 1
}

/// Locks and unlocks until `stop`, returning the number of pairs. With a
/// `clock` (hand-off scenarios), each holder stamps `(now << 8) | id+1`
/// right before it calls `unlock` — the release cannot reach the server
/// earlier — and each acquisition following another task's stamp records
/// `now - stamp`: the hand-off latency, release call to next acquisition.
async fn worker<L: LockLib>(
    lib: Arc<L>,
    name: Arc<str>,
    stop: Arc<AtomicBool>,
    clock: Option<Arc<AtomicU64>>,
    id: u64,
    mut lat: Vec<u64>,
) -> (u64, Vec<u64>) {
    let mut ops = 0;
    let tag = id + 1;
    loop {
        let guard = lib.lock(&name).await;
        if let Some(clock) = &clock {
            let now = nanos();
            let last = clock.load(Ordering::Acquire);
            if last != 0 && last & 0xff != tag && lat.len() < lat.capacity() {
                lat.push(now.saturating_sub(last >> 8));
            }
            clock.store((nanos() << 8) | tag, Ordering::Release);
        }
        ops += 1;
        lib.unlock(&name, guard).await;
        if stop.load(Ordering::Relaxed) {
            return (ops, lat);
        }
    }
}
