//! Scenarios, timed windows and the worker loop.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use futures_lite::future;

use crate::alloc;
use crate::exec::Exec;
use crate::libs::LockLib;

/// What the tasks do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scenario {
    /// All tasks share one client and lock then unlock the same name.
    Contended,
    /// One client (own connection) per task, all on the same name: the
    /// wake-up path across connections. Hand-off latency is recorded.
    ContendedLockers,
    /// All tasks share one client, each on its own name.
    Uncontended,
    /// Many tasks (2,000 by default) share one client, each on its own name.
    Many,
    /// Many tasks (1,000 by default) share one client, all on one name.
    ManyOneName,
}

impl Scenario {
    /// Every scenario, in table order.
    pub(crate) const ALL: [Scenario; 5] = [
        Scenario::Contended,
        Scenario::ContendedLockers,
        Scenario::Uncontended,
        Scenario::Many,
        Scenario::ManyOneName,
    ];

    /// The name used on the command line, in the table and in the CSV.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Scenario::Contended => "contended",
            Scenario::ContendedLockers => "contended-lockers",
            Scenario::Uncontended => "uncontended",
            Scenario::Many => "many",
            Scenario::ManyOneName => "many-one-name",
        }
    }

    /// Parses [`Scenario::name`].
    pub(crate) fn parse(s: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|sc| sc.name() == s)
    }

    fn clients(self, tasks: usize) -> usize {
        match self {
            Scenario::ContendedLockers => tasks,
            _ => 1,
        }
    }

    fn names(self, tasks: usize) -> usize {
        match self {
            Scenario::Uncontended | Scenario::Many => tasks,
            _ => 1,
        }
    }

    fn tracks_handoff(self) -> bool {
        self == Scenario::ContendedLockers
    }

    /// The many-task scenarios: at the end of a window a task still waiting
    /// for its lock gives up (the lock call is dropped) instead of waiting
    /// its turn behind up to 2,000 others, and every window uses fresh names
    /// (a peer's cancelled attempt may leave a key until its TTL).
    pub(crate) fn is_many(self) -> bool {
        matches!(self, Scenario::Many | Scenario::ManyOneName)
    }
}

/// A one-shot flag that tasks can await: `wait(i)` keeps at most one waker
/// per task in a preallocated slot, so waiting does not allocate.
pub(crate) struct Signal {
    set: AtomicBool,
    wakers: Mutex<Vec<Option<Waker>>>,
}

impl Signal {
    /// A signal for tasks `0..tasks`.
    pub(crate) fn new(tasks: usize) -> Signal {
        Signal {
            set: AtomicBool::new(false),
            wakers: Mutex::new((0..tasks).map(|_| None).collect()),
        }
    }

    /// True once [`Signal::set`] was called.
    pub(crate) fn is_set(&self) -> bool {
        self.set.load(Ordering::Acquire)
    }

    /// Raises the flag and wakes every waiting task.
    pub(crate) fn set(&self) {
        self.set.store(true, Ordering::Release);
        let mut ws = self.wakers.lock().unwrap_or_else(|e| e.into_inner());
        for w in ws.iter_mut() {
            if let Some(w) = w.take() {
                w.wake();
            }
        }
    }

    /// Resolves once the flag is raised (task `i`'s slot holds its waker).
    pub(crate) fn wait(&self, i: usize) -> impl Future<Output = ()> + '_ {
        future::poll_fn(move |cx| {
            if self.is_set() {
                return Poll::Ready(());
            }
            let mut ws = self.wakers.lock().unwrap_or_else(|e| e.into_inner());
            if self.is_set() {
                return Poll::Ready(());
            }
            match &mut ws[i] {
                Some(w) if w.will_wake(cx.waker()) => {}
                slot => *slot = Some(cx.waker().clone()),
            }
            Poll::Pending
        })
    }
}

/// Latency histogram: log-linear buckets (32 per power of two, about 3 %
/// wide), atomic so all tasks of a window record into one without
/// allocating.
pub(crate) struct Hist {
    counts: Vec<AtomicU64>,
    /// Samples that are waits given up at the window's end (lower bounds).
    censored: AtomicU64,
}

const SUB_BITS: u32 = 5;
const SUB: u64 = 1 << SUB_BITS;
/// Buckets: values below `SUB` exactly, then `SUB` per power of two up to 2^63.
pub(crate) const HIST_BUCKETS: usize = ((64 - SUB_BITS as usize) + 1) * SUB as usize;

fn bucket(v: u64) -> usize {
    if v < SUB {
        return v as usize;
    }
    let e = 63 - v.leading_zeros();
    let sub = (v >> (e - SUB_BITS)) & (SUB - 1);
    ((e - SUB_BITS + 1) as u64 * SUB + sub) as usize
}

/// The middle of bucket `i` (its value for quantiles).
fn bucket_mid(i: usize) -> u64 {
    let i = i as u64;
    if i < SUB {
        return i;
    }
    let e = i / SUB - 1 + SUB_BITS as u64;
    let sub = i % SUB;
    let lo = (SUB + sub) << (e - SUB_BITS as u64);
    let width = 1u64 << (e - SUB_BITS as u64);
    lo + width / 2
}

impl Hist {
    /// An empty histogram.
    pub(crate) fn new() -> Hist {
        Hist {
            counts: (0..HIST_BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            censored: AtomicU64::new(0),
        }
    }

    fn record(&self, ns: u64) {
        self.counts[bucket(ns)].fetch_add(1, Ordering::Relaxed);
    }

    /// A wait given up at the window's end: it lasted at least `ns`.
    fn record_censored(&self, ns: u64) {
        self.censored.fetch_add(1, Ordering::Relaxed);
        self.record(ns);
    }

    fn snapshot(&self) -> Vec<u64> {
        self.counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect()
    }
}

/// The `p`-quantile (0..=1, nearest rank) of bucket counts, in ns.
pub(crate) fn hist_quantile(counts: &[u64], p: f64) -> Option<u64> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = ((p * total as f64).ceil() as u64).clamp(1, total);
    let mut seen = 0;
    for (i, &c) in counts.iter().enumerate() {
        seen += c;
        if seen >= rank {
            return Some(bucket_mid(i));
        }
    }
    None
}

/// One timed window of one library.
#[derive(Debug, Default)]
pub(crate) struct Window {
    /// Completed lock+unlock pairs (all tasks).
    pub ops: u64,
    /// From spawning the tasks until the last one finished its last pair
    /// (the tasks stop after the pair in flight when the window ends; in the
    /// many-task scenarios a task still waiting for its lock gives up).
    pub elapsed: Duration,
    /// Allocations in the process during `elapsed`.
    pub allocs: u64,
    /// Hand-off latencies (ns), when the scenario records them.
    pub handoffs: Vec<u64>,
    /// Share of `ops` done by the busiest task (1/tasks when fair).
    pub top_share: f64,
    /// Latency histogram (ns) of the completed lock+unlock pairs, lock call
    /// to the release's answer (see [`hist_quantile`]).
    pub latency: Vec<u64>,
    /// Of the `latency` samples, lock waits given up at the window's end
    /// (their time is a lower bound).
    pub gave_up: u64,
    /// Tasks in the window.
    pub tasks: usize,
    /// Tasks that completed at least one pair.
    pub tasks_done: usize,
    /// Fewest and most pairs of one task.
    pub min_task_ops: u64,
    /// See `min_task_ops`.
    pub max_task_ops: u64,
    /// Failed lock or unlock calls (the task went on).
    pub errors: u64,
    /// The first error's text.
    pub first_error: Option<String>,
    /// Tasks that had not returned `grace` after the window's end and were
    /// cancelled: the row did not finish.
    pub stuck: usize,
    /// Commands the server executed during the window (`INFO
    /// commandstats` before and after, minus the one `INFO`); `None` when
    /// the probe failed.
    pub server_cmds: Option<u64>,
    /// CPU the server spent during the window (`INFO cpu`, user + system,
    /// ns); `None` when the probe failed.
    pub server_cpu_ns: Option<u64>,
    /// CPU this process spent during the window (every thread: the row's
    /// tasks and drivers, the idle rows' pings, the orchestrator), ns.
    pub client_cpu_ns: u64,
}

impl Window {
    /// Operations per second.
    pub(crate) fn ops_per_s(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }

    /// Allocations per operation.
    pub(crate) fn allocs_per_op(&self) -> f64 {
        self.allocs as f64 / self.ops.max(1) as f64
    }

    /// Server commands per operation.
    pub(crate) fn server_cmds_per_op(&self) -> Option<f64> {
        self.server_cmds.map(|c| c as f64 / self.ops.max(1) as f64)
    }

    /// Server CPU per operation, µs.
    pub(crate) fn server_cpu_us_per_op(&self) -> Option<f64> {
        self.server_cpu_ns
            .map(|c| c as f64 / 1e3 / self.ops.max(1) as f64)
    }

    /// Client (this process) CPU per operation, µs.
    pub(crate) fn client_cpu_us_per_op(&self) -> f64 {
        self.client_cpu_ns as f64 / 1e3 / self.ops.max(1) as f64
    }
}

/// One row of the table: a library on a runtime, set up for a scenario.
pub(crate) trait Entry {
    /// Runtime label.
    fn runtime(&self) -> &'static str;
    /// Library id.
    fn library(&self) -> &'static str;
    /// True for the peers (not tracklock).
    fn is_peer(&self) -> bool;
    /// Runs one timed window of `dur`; tasks still running `grace` after its
    /// end are cancelled and counted in [`Window::stuck`].
    fn window(&mut self, dur: Duration, grace: Duration) -> Window;
    /// Closes the clients.
    fn close(&mut self);
}

/// Hand-off latencies kept per task and window, preallocated so recording
/// them does not allocate inside the window.
const HANDOFF_CAP: usize = 1 << 16;

/// An [`Entry`] for library `L` on runtime `E`.
pub(crate) struct LibEntry<E: Exec, L: LockLib> {
    exec: Arc<E>,
    library: &'static str,
    peer: bool,
    scenario: Scenario,
    tasks: usize,
    clients: Arc<[Arc<L>]>,
    names: Arc<[Arc<str>]>,
    /// Windows run so far (fresh names per window in the many-task scenarios).
    round: usize,
}

impl<E: Exec, L: LockLib> LibEntry<E, L> {
    /// Makes the clients the scenario needs with `make(i)` (on the runtime)
    /// and the lock names (distinct per runtime, library and scenario).
    pub(crate) fn new<F, Fut>(
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
        let mut e = LibEntry {
            exec: exec.clone(),
            library,
            peer,
            scenario,
            tasks,
            clients: clients.into(),
            names: Vec::new().into(),
            round: 0,
        };
        e.names = e.make_names();
        e
    }

    fn make_names(&self) -> Arc<[Arc<str>]> {
        let (rt, lib, sc) = (self.exec.name(), self.library, self.scenario.name());
        let round = if self.scenario.is_many() {
            format!(":w{}", self.round)
        } else {
            String::new()
        };
        (0..self.scenario.names(self.tasks))
            .map(|i| format!("bench:{rt}:{lib}:{sc}{round}:{i}").into())
            .collect()
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

    fn window(&mut self, dur: Duration, grace: Duration) -> Window {
        if self.scenario.is_many() {
            self.round += 1;
            self.names = self.make_names();
        }
        let clients = self.clients.clone();
        let names = self.names.clone();
        let tasks = self.tasks;
        let track = self.scenario.tracks_handoff();
        let give_up = self.scenario.is_many();
        self.exec.run(move || async move {
            let stop = Arc::new(Signal::new(tasks));
            let abort = Arc::new(Signal::new(tasks));
            let hist = Arc::new(Hist::new());
            let clock = track.then(|| Arc::new(AtomicU64::new(0)));
            let cap = if track { HANDOFF_CAP } else { 0 };
            let mut lats: Vec<Vec<u64>> = (0..tasks).map(|_| Vec::with_capacity(cap)).collect();
            let mut joins = Vec::with_capacity(tasks);
            let results = Vec::with_capacity(tasks);
            let a0 = alloc::count();
            let t0 = Instant::now();
            for (i, lat) in lats.drain(..).enumerate() {
                joins.push(E::spawn(worker(
                    clients[i % clients.len()].clone(),
                    names[i % names.len()].clone(),
                    Ctl {
                        stop: stop.clone(),
                        abort: abort.clone(),
                        give_up,
                        hist: hist.clone(),
                        clock: clock.clone(),
                        id: i,
                    },
                    lat,
                )));
            }
            E::sleep(dur).await;
            stop.set();
            // Bounded: tasks still running `grace` after the window's end
            // are cancelled (they return at once, marked stuck).
            let results = future::or(
                async move {
                    let mut results = results;
                    for j in joins {
                        results.push(j.await);
                    }
                    results
                },
                async {
                    E::sleep(grace).await;
                    abort.set();
                    future::pending().await
                },
            )
            .await;
            let elapsed = t0.elapsed();
            let allocs = alloc::count() - a0;
            let mut w = Window {
                elapsed,
                allocs,
                latency: hist.snapshot(),
                gave_up: hist.censored.load(Ordering::Relaxed),
                tasks,
                min_task_ops: u64::MAX,
                ..Window::default()
            };
            let mut top = 0;
            for r in results {
                w.ops += r.ops;
                top = top.max(r.ops);
                w.min_task_ops = w.min_task_ops.min(r.ops);
                w.tasks_done += usize::from(r.ops > 0);
                w.errors += r.errors;
                w.stuck += usize::from(r.aborted);
                if w.first_error.is_none() {
                    w.first_error = r.first_error;
                }
                w.handoffs.extend_from_slice(&r.lat);
            }
            w.max_task_ops = top;
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

/// What a worker shares with its window.
struct Ctl {
    /// Raised at the window's end: finish the pair in flight (or, with
    /// `give_up`, stop waiting for the lock) and return.
    stop: Arc<Signal>,
    /// Raised `grace` after the window's end: return at once.
    abort: Arc<Signal>,
    give_up: bool,
    hist: Arc<Hist>,
    clock: Option<Arc<AtomicU64>>,
    id: usize,
}

/// What a worker did in its window.
struct TaskResult {
    ops: u64,
    errors: u64,
    first_error: Option<String>,
    aborted: bool,
    lat: Vec<u64>,
}

/// Locks and unlocks until `stop`, returning the number of pairs. With a
/// `clock` (hand-off scenarios), each holder stamps `(now << 8) | id+1`
/// right before it calls `unlock` — the release cannot reach the server
/// earlier — and each acquisition following another task's stamp records
/// `now - stamp`: the hand-off latency, release call to next acquisition.
/// A failed call is counted and the loop goes on.
async fn worker<L: LockLib>(lib: Arc<L>, name: Arc<str>, ctl: Ctl, lat: Vec<u64>) -> TaskResult {
    let mut r = TaskResult {
        ops: 0,
        errors: 0,
        first_error: None,
        aborted: false,
        lat,
    };
    let aborted = future::or(
        async {
            pairs(&*lib, &name, &ctl, &mut r).await;
            false
        },
        async {
            ctl.abort.wait(ctl.id).await;
            true
        },
    )
    .await;
    r.aborted = aborted;
    r
}

async fn pairs<L: LockLib>(lib: &L, name: &str, ctl: &Ctl, r: &mut TaskResult) {
    let tag = ctl.id as u64 + 1;
    let fail = |r: &mut TaskResult, e: String| {
        r.errors += 1;
        if r.first_error.is_none() {
            r.first_error = Some(e);
        }
    };
    loop {
        let t0 = Instant::now();
        let locked = if ctl.give_up {
            future::or(async { Some(lib.lock(name).await) }, async {
                ctl.stop.wait(ctl.id).await;
                None
            })
            .await
        } else {
            Some(lib.lock(name).await)
        };
        let guard = match locked {
            None => {
                ctl.hist.record_censored(t0.elapsed().as_nanos() as u64);
                return;
            }
            Some(Ok(g)) => {
                #[cfg(feature = "timeline")]
                tracklock::timeline::record(tracklock::timeline::Kind::Acquired);
                g
            }
            Some(Err(e)) => {
                fail(r, e);
                if ctl.stop.is_set() {
                    return;
                }
                future::yield_now().await;
                continue;
            }
        };
        if let Some(clock) = &ctl.clock {
            let now = nanos();
            let last = clock.load(Ordering::Acquire);
            if last != 0 && last & 0xff != tag && r.lat.len() < r.lat.capacity() {
                r.lat.push(now.saturating_sub(last >> 8));
            }
            clock.store((nanos() << 8) | tag, Ordering::Release);
        }
        #[cfg(feature = "timeline")]
        tracklock::timeline::record(tracklock::timeline::Kind::Unlock);
        match lib.unlock(name, guard).await {
            Ok(()) => {
                r.ops += 1;
                ctl.hist.record(t0.elapsed().as_nanos() as u64);
            }
            Err(e) => fail(r, e),
        }
        if ctl.stop.is_set() {
            return;
        }
    }
}
