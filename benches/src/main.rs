//! **tracklock-benches**: tracklock on each runtime against peer Redis locks,
//! all measured in one process, against one server, in one interleaved run.
//!
//! ```sh
//! cargo run --release -p tracklock-benches -- [--secs N] [--csv FILE] \
//!     [--runtimes tokio,smol,glommio] [--scenarios contended,contended-lockers,uncontended]
//! ```
//!
//! # Method
//!
//! - **Server.** The bench starts its own `redis-server` on a free loopback
//!   port (`--save "" --appendonly no`, temporary directory) and kills it at
//!   the end, on a panic (any thread) and on Ctrl-C.
//! - **Rows.** A row is a library on a runtime. tracklock runs on every
//!   selected runtime with `key_majority(1)` (`tracklock-m1`: one key, the
//!   setting Go's README benchmarks and the one comparable with single-key
//!   peers), with the default `key_majority` 2 (`tracklock-m2`: 3 keys on the
//!   one node), with the opt-in local hand-off (`tracklock-m1-handoff`) and
//!   with the opt-in fairness across lockers (`tracklock-m1-fair`).
//!   `tracklock-m1-tls` is `tracklock-m1` on tokio over TLS (rustls) to the
//!   same server's TLS port, so the cost of TLS shows next to the plain row.
//!   The peers run on tokio: `rslock` (Redlock given the one server) with its
//!   default retries and tuned to retry at once, and `redis-setnx`, the usual
//!   hand-rolled lock on the `redis` crate (`SET NX PX` retried at once,
//!   Lua compare-and-delete release).
//! - **Scenarios** (10 tasks by default). `contended`: the tasks share one
//!   client and lock then unlock one name in a loop; `unlock` waits for the
//!   server's answer (like Go's `cancel()`). `contended-lockers`: one client
//!   (own connection) per task, one name: the wake-up path across
//!   connections, with the hand-off latency. `uncontended`: one shared client,
//!   one name per task. `many` (2,000 tasks, `--many-tasks`): one shared
//!   client, one name per task. `many-one-name` (1,000 tasks,
//!   `--one-name-tasks`): one shared client, one name. In these two a task
//!   still waiting for its lock when the window ends gives up (the call is
//!   dropped; its wait enters the latency samples as a lower bound), each
//!   window uses fresh names, and windows last `--many-window` (2 s) so
//!   every task can get a turn.
//! - **Bounded windows.** Tasks still running `--grace` (2 s) after a
//!   window's end are cancelled; the row is then reported `n/a` (did not
//!   finish) with its stuck-task count. Failed calls are counted per row
//!   (first message shown) and the task goes on.
//! - **Latency.** Every completed lock+unlock (lock call to the release's
//!   answer) goes into a log-linear histogram (about 3 % buckets); the table
//!   shows p99 over the timed windows. Per-task progress (tasks with at least
//!   one pair, fewest and most pairs of one task) is printed for the
//!   many-task scenarios.
//! - **Interleaving.** For each scenario every row gets a warm-up window,
//!   then `--windows` (5) timed windows of `secs / windows` each, round-robin
//!   over the rows (each round starting one row later), so slow drifts of a
//!   shared machine hit all rows alike. A
//!   window spawns the tasks, sleeps, raises a stop flag, and waits until
//!   every task finished its pair in flight; ops/s = pairs / that whole time.
//!   Rows report the **median** window. `spread` is (max − min) / median.
//! - **Server commands** (`cmds/op`): `INFO commandstats` before and after
//!   each timed window (the sum of `calls`, minus the probe's own `INFO`)
//!   over the window's pairs. Only one row runs at a time, but the idle
//!   lockers of the other rows still send their periodic `PING`s: a small
//!   overcount, the same for every row.
//! - **CPU** (`cpu µs/op`, client + server): this process's CPU time
//!   (`CLOCK_PROCESS_CPUTIME_ID`, every thread) and the server's (`INFO
//!   cpu`, user + system) around each timed window, per pair. On loopback a
//!   `send` runs the receiver's TCP input in the sender's system call, so
//!   part of each side's network work is billed to the other; the sum is
//!   what one pair costs the machine, which is what bounds ops/s when
//!   client and server share the cores.
//! - **Allocations** come from a counting global allocator: allocations in the
//!   whole process during the window / pairs (spawning the 10 tasks is
//!   included; it is noise next to thousands of pairs).
//! - **Round trip.** Each round also times `PING`s on a `redis` crate
//!   multiplexed connection from a tokio task (the RTT the table divides by)
//!   and on a blocking socket (the floor); medians of all samples.
//!   `RTT/op` = ns/op ÷ RTT: for `contended` that is round trips per
//!   hand-off, 1 / (ops/s × RTT).
//! - **Hand-off latency** (`contended-lockers`): the holder stamps the time
//!   right before it calls `unlock` (its release cannot reach the server
//!   earlier); the next acquisition by *another* task records now − stamp.
//!   Quantiles over all samples of the timed windows.
//! - **Ratios.** `vs peer` = ops/s ÷ the best peer's ops/s in the same
//!   scenario (peers on tokio). The targets section prints each target with
//!   the measured value; nothing is asserted.
//!
//! Runtimes: tokio multi-thread with 2 workers; smol's global executor with 2
//! threads (`SMOL_THREADS=2` unless set); glommio (feature `glommio`, on by
//! default) with one `LocalExecutor` thread, thread-per-core style. The
//! orchestrator blocks on the main thread.

mod exec;
mod libs;
mod report;
#[cfg(feature = "timeline")]
mod timeline;
mod workload;

use std::future::Future;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use exec::{Exec, SmolExec, TokioExec};
use libs::{LockLib, Rslock, SetNx, Tracklock};
use report::{Report, Row, Rtt};
use tracklock_testkit::{alloc, Admin, RedisServer, TlsCerts};
use workload::{Entry, LibEntry, Scenario};

#[global_allocator]
static ALLOC: alloc::Counting = alloc::Counting;

/// The libraries, in table order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lib {
    TrackM1,
    TrackM2,
    TrackHandoff,
    TrackFair,
    TrackTls,
    RslockDefault,
    RslockTuned,
    SetNx,
}

impl Lib {
    const ALL: [Lib; 8] = [
        Lib::TrackM1,
        Lib::TrackM2,
        Lib::TrackHandoff,
        Lib::TrackFair,
        Lib::TrackTls,
        Lib::RslockDefault,
        Lib::RslockTuned,
        Lib::SetNx,
    ];

    fn id(self) -> &'static str {
        match self {
            Lib::TrackM1 => "tracklock-m1",
            Lib::TrackM2 => "tracklock-m2",
            Lib::TrackHandoff => "tracklock-m1-handoff",
            Lib::TrackFair => "tracklock-m1-fair",
            Lib::TrackTls => "tracklock-m1-tls",
            Lib::RslockDefault => "rslock-default",
            Lib::RslockTuned => "rslock-tuned",
            Lib::SetNx => "redis-setnx",
        }
    }

    fn about(self, handoff: u8) -> String {
        match self {
            Lib::TrackM1 => "tracklock, key_majority(1): one key (the comparable row; Go's README \
                             uses KeyMajority 1)"
                .into(),
            Lib::TrackM2 => {
                "tracklock defaults: key_majority 2 = 3 keys on the one node (majority 2 of 3)".into()
            }
            Lib::TrackHandoff => format!(
                "tracklock, key_majority(1), opt-in local_handoff({handoff}): held keys pass between \
                 tasks of one locker without a round trip, at most {handoff} in a row"
            ),
            Lib::TrackFair => "tracklock, key_majority(1), opt-in fair(true): after a release \
                               the same locker's next attempt on the name waits about two round \
                               trips, so other lockers get their turn (see `top`)"
                .into(),
            Lib::TrackTls => "tracklock-m1 over TLS (rustls, the server's TLS port; tokio only): \
                              what TLS costs next to the plain tracklock-m1 row"
                .into(),
            Lib::RslockDefault => "rslock 0.10 (Redlock given the one server), default retries: \
                                   3 attempts per lock() spaced by random 0..200 ms, acquire() loops"
                .into(),
            Lib::RslockTuned => {
                "rslock 0.10, set_retry(1, 1 ms): a failed attempt is retried at once".into()
            }
            Lib::SetNx => "redis crate, multiplexed connection: SET key val NX PX 5000 retried at \
                           once; Lua compare-and-delete release (EVALSHA)"
                .into(),
        }
    }

    fn is_peer(self) -> bool {
        matches!(self, Lib::RslockDefault | Lib::RslockTuned | Lib::SetNx)
    }
}

/// Command-line options.
struct Args {
    secs: f64,
    windows: usize,
    tasks: usize,
    many_tasks: usize,
    one_name_tasks: usize,
    grace: Duration,
    many_window: Duration,
    handoff: u8,
    csv: Option<String>,
    runtimes: Vec<String>,
    scenarios: Vec<Scenario>,
    libs: Vec<Lib>,
    /// `--timeline`: lay out one contended hand-off per runtime.
    timeline: bool,
    /// The CA of the server's TLS port (set once the TLS server started).
    tls_ca: Option<std::path::PathBuf>,
    /// The server's TLS `host:port` (set with `tls_ca`).
    tls_addr: Option<String>,
}

const USAGE: &str = "\
usage: cargo run --release -p tracklock-benches -- [options]
  --secs N            timed seconds per row and scenario (default 2), split into the windows
  --windows N         timed windows per row and scenario (default 5), after one warm-up window
  --tasks N           tasks of contended, contended-lockers, uncontended (default 10, at most 255)
  --many-tasks N      tasks of `many` (default 2000)
  --one-name-tasks N  tasks of `many-one-name` (default 1000)
  --many-window SECS  window length in `many` and `many-one-name` (default 2, instead of secs / windows:
                      every one of the 2,000 tasks should get a turn within a window)
  --grace SECS        after a window ends, how long its tasks may take to return before they are
                      cancelled and the row is reported as not finishing (default 2)
  --timeline          (feature `timeline`) after the contended rows, one more window of each runtime's
                      tracklock-m1 with timestamps: where one hand-off spends its time
  --handoff N         local_handoff(N) of the tracklock-m1-handoff row (default 8)
  --csv FILE          also write runtime,scenario,library,ops_per_s,ns_per_op,allocs_per_op,ratio_to_best_peer,
                      p99_latency_us,p99_is_lower_bound,gave_up,errors,tasks,tasks_done,min_task_ops,max_task_ops,
                      stuck,rtt_us,handoff_p50_rtt,handoff_p99_rtt,server_cmds_per_op,top,
                      client_cpu_us_per_op,server_cpu_us_per_op
  --runtimes LIST     of tokio,smol,glommio (default: all built) — where tracklock runs; peers always run on tokio
  --scenarios LIST    of contended,contended-lockers,uncontended,many,many-one-name (default: all)
  --libs LIST         of tracklock-m1,tracklock-m2,tracklock-m1-handoff,tracklock-m1-fair,tracklock-m1-tls,
                      rslock-default,rslock-tuned,
                      redis-setnx (default: all; tracklock-m1-tls runs on tokio only)";

impl Args {
    fn parse() -> Result<Args, String> {
        let mut a = Args {
            secs: 2.0,
            windows: 5,
            tasks: 10,
            many_tasks: 2000,
            one_name_tasks: 1000,
            grace: Duration::from_secs(2),
            many_window: Duration::from_secs(2),
            handoff: 8,
            csv: None,
            runtimes: vec!["tokio".into(), "smol".into(), "glommio".into()],
            scenarios: Scenario::ALL.to_vec(),
            libs: Lib::ALL.to_vec(),
            tls_ca: None,
            tls_addr: None,
            timeline: false,
        };
        let mut it = std::env::args().skip(1);
        while let Some(flag) = it.next() {
            if flag == "-h" || flag == "--help" {
                return Err(String::new());
            }
            if flag == "--timeline" {
                if !cfg!(feature = "timeline") {
                    return Err("--timeline needs the `timeline` feature \
                                (cargo run --release -p tracklock-benches --features timeline)"
                        .into());
                }
                a.timeline = true;
                continue;
            }
            let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
            let bad = |what: &str| format!("bad {flag} value `{value}`: {what}");
            match flag.as_str() {
                "--secs" => {
                    a.secs = value.parse().map_err(|_| bad("a number of seconds"))?;
                    if a.secs.is_nan() || a.secs <= 0.0 {
                        return Err(bad("must be > 0"));
                    }
                }
                "--windows" => {
                    a.windows = value.parse().map_err(|_| bad("a count"))?;
                    if a.windows == 0 {
                        return Err(bad("must be >= 1"));
                    }
                }
                "--tasks" => {
                    a.tasks = value.parse().map_err(|_| bad("a count"))?;
                    if !(1..=255).contains(&a.tasks) {
                        return Err(bad("1..=255"));
                    }
                }
                "--many-tasks" | "--one-name-tasks" => {
                    let n: usize = value.parse().map_err(|_| bad("a count"))?;
                    if n == 0 {
                        return Err(bad("must be >= 1"));
                    }
                    if flag == "--many-tasks" {
                        a.many_tasks = n;
                    } else {
                        a.one_name_tasks = n;
                    }
                }
                "--many-window" => {
                    let g: f64 = value.parse().map_err(|_| bad("a number of seconds"))?;
                    if g.is_nan() || g <= 0.0 {
                        return Err(bad("must be > 0"));
                    }
                    a.many_window = Duration::from_secs_f64(g);
                }
                "--grace" => {
                    let g: f64 = value.parse().map_err(|_| bad("a number of seconds"))?;
                    if g.is_nan() || g <= 0.0 {
                        return Err(bad("must be > 0"));
                    }
                    a.grace = Duration::from_secs_f64(g);
                }
                "--handoff" => {
                    a.handoff = value.parse().map_err(|_| bad("0..=255"))?;
                }
                "--csv" => a.csv = Some(value),
                "--runtimes" => {
                    a.runtimes = value.split(',').map(|s| s.trim().to_owned()).collect();
                    if let Some(r) = a
                        .runtimes
                        .iter()
                        .find(|r| !["tokio", "smol", "glommio"].contains(&r.as_str()))
                    {
                        return Err(bad(&format!("unknown runtime `{r}`")));
                    }
                }
                "--scenarios" => {
                    a.scenarios = value
                        .split(',')
                        .map(|s| Scenario::parse(s.trim()).ok_or_else(|| bad(s)))
                        .collect::<Result<_, _>>()?;
                }
                "--libs" => {
                    a.libs = value
                        .split(',')
                        .map(|s| {
                            Lib::ALL
                                .into_iter()
                                .find(|l| l.id() == s.trim())
                                .ok_or_else(|| bad(s))
                        })
                        .collect::<Result<_, _>>()?;
                }
                _ => return Err(format!("unknown option {flag}")),
            }
        }
        Ok(a)
    }

    fn wants(&self, runtime: &str) -> bool {
        self.runtimes.iter().any(|r| r == runtime)
    }

    /// Tasks of `scenario`.
    fn tasks_for(&self, scenario: Scenario) -> usize {
        match scenario {
            Scenario::Many => self.many_tasks,
            Scenario::ManyOneName => self.one_name_tasks,
            _ => self.tasks,
        }
    }
}

/// A tracklock row on runtime `E`.
fn tracklock_entry<E: Exec>(
    exec: &Arc<E>,
    lib: Lib,
    addr: &str,
    scenario: Scenario,
    args: &Args,
) -> Box<dyn Entry>
where
    Tracklock<E::Rt>: LockLib,
{
    let base = tracklock::Options::new(addr);
    let options = match lib {
        Lib::TrackM1 => base.key_majority(1),
        Lib::TrackM2 => base,
        Lib::TrackHandoff => base.key_majority(1).local_handoff(args.handoff),
        Lib::TrackFair => base.key_majority(1).fair(true),
        Lib::TrackTls => match &args.tls_ca {
            Some(ca) => base.key_majority(1).tls(true).tls_ca_file(ca.clone()),
            None => unreachable!("the TLS row runs only with a TLS server"),
        },
        _ => unreachable!("not a tracklock row"),
    };
    Box::new(LibEntry::<E, Tracklock<E::Rt>>::new(
        exec,
        lib.id(),
        false,
        scenario,
        args.tasks_for(scenario),
        move |_| {
            let options = options.clone();
            async move {
                match E::connect(options).await {
                    Ok(l) => Tracklock(l),
                    Err(e) => panic!("tracklock connect: {e}"),
                }
            }
        },
    ))
}

/// A peer row (on tokio).
fn peer_entry<L, F, Fut>(
    exec: &Arc<TokioExec>,
    lib: Lib,
    scenario: Scenario,
    args: &Args,
    make: F,
) -> Box<dyn Entry>
where
    L: LockLib,
    F: Fn(usize) -> Fut + Send + 'static,
    Fut: Future<Output = L> + 'static,
{
    Box::new(LibEntry::<TokioExec, L>::new(
        exec,
        lib.id(),
        true,
        scenario,
        args.tasks_for(scenario),
        make,
    ))
}

/// The runtimes that tracklock runs on in this build and run.
struct Runtimes {
    tokio: Arc<TokioExec>,
    smol: Option<Arc<SmolExec>>,
    #[cfg(feature = "glommio")]
    glommio: Option<Arc<exec::GlommioExec>>,
}

fn entries(
    rts: &Runtimes,
    args: &Args,
    addr: &str,
    url: &str,
    scenario: Scenario,
) -> Vec<Box<dyn Entry>> {
    let mut v: Vec<Box<dyn Entry>> = Vec::new();
    let tracklock_libs: Vec<Lib> = args
        .libs
        .iter()
        .copied()
        .filter(|l| !l.is_peer() && *l != Lib::TrackTls)
        .collect();
    if args.wants("tokio") {
        for &lib in &tracklock_libs {
            v.push(tracklock_entry(&rts.tokio, lib, addr, scenario, args));
        }
        if let Some(tls_addr) = args
            .libs
            .contains(&Lib::TrackTls)
            .then_some(())
            .and(args.tls_addr.as_deref())
        {
            v.push(tracklock_entry(
                &rts.tokio,
                Lib::TrackTls,
                tls_addr,
                scenario,
                args,
            ));
        }
    }
    if let Some(smol) = &rts.smol {
        for &lib in &tracklock_libs {
            v.push(tracklock_entry(smol, lib, addr, scenario, args));
        }
    }
    #[cfg(feature = "glommio")]
    if let Some(glommio) = &rts.glommio {
        for &lib in &tracklock_libs {
            v.push(tracklock_entry(glommio, lib, addr, scenario, args));
        }
    }
    for &lib in args.libs.iter().filter(|l| l.is_peer()) {
        let url = url.to_owned();
        v.push(match lib {
            Lib::RslockDefault => peer_entry(&rts.tokio, lib, scenario, args, move |_| {
                std::future::ready(Rslock::new(&url, None))
            }),
            Lib::RslockTuned => peer_entry(&rts.tokio, lib, scenario, args, move |_| {
                std::future::ready(Rslock::new(&url, Some((1, Duration::from_millis(1)))))
            }),
            Lib::SetNx => peer_entry(&rts.tokio, lib, scenario, args, move |i| {
                let url = url.clone();
                async move {
                    SetNx::connect(&url, 0x9e37_79b9_7f4a_7c15u64.wrapping_mul(i as u64 + 1)).await
                }
            }),
            _ => unreachable!("not a peer"),
        });
    }
    v
}

/// `n` PINGs on a `redis` crate multiplexed connection from a tokio task.
fn client_rtt(tokio: &TokioExec, conn: &redis::aio::MultiplexedConnection, n: usize) -> Vec<f64> {
    let mut conn = conn.clone();
    tokio.run(move || async move {
        TokioExec::spawn(async move {
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                let t = Instant::now();
                let _: String = redis::cmd("PING")
                    .query_async(&mut conn)
                    .await
                    .unwrap_or_else(|e| panic!("PING: {e}"));
                v.push(t.elapsed().as_nanos() as f64);
            }
            v
        })
        .await
    })
}

/// What the server has done so far: calls of every command (`INFO
/// commandstats`) and CPU, user + system, in ns (`INFO cpu`); each `None`
/// when the probe failed (the column then shows `-`).
fn server_work(admin: &Admin) -> (Option<u64>, Option<u64>) {
    let Ok(info) = admin.try_cmd::<String>("INFO", &["commandstats", "cpu"]) else {
        return (None, None);
    };
    let calls = info
        .lines()
        .filter(|l| l.starts_with("cmdstat_"))
        .map(|l| {
            l.split("calls=")
                .nth(1)?
                .split(',')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum::<Option<u64>>();
    let cpu = ["used_cpu_sys:", "used_cpu_user:"]
        .iter()
        .map(|k| {
            let v = info.lines().find_map(|l| l.strip_prefix(k))?;
            v.trim().parse::<f64>().ok()
        })
        .sum::<Option<f64>>()
        .map(|s| (s * 1e9) as u64);
    (calls, cpu)
}

/// CPU this process has used so far (every thread), ns.
fn process_cpu_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    u64::try_from(t.tv_sec).unwrap_or(0) * 1_000_000_000 + u64::try_from(t.tv_nsec).unwrap_or(0)
}

/// `n` PINGs on a blocking socket.
fn raw_rtt(s: &mut TcpStream, n: usize) -> Vec<f64> {
    let mut buf = [0u8; 7];
    (0..n)
        .map(|_| {
            let t = Instant::now();
            s.write_all(b"PING\r\n").expect("raw PING");
            s.read_exact(&mut buf).expect("raw PONG");
            t.elapsed().as_nanos() as f64
        })
        .collect()
}

fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cpus} CPUs, {model}")
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn main() -> ExitCode {
    let args = match Args::parse() {
        Ok(a) => a,
        Err(e) if e.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("{e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    // Before any thread exists: the smol executor reads SMOL_THREADS.
    let smol = args.wants("smol").then(|| Arc::new(SmolExec::new()));
    let tokio = Arc::new(TokioExec::new());

    let mut args = args;
    // The TLS row needs a server with a TLS port (its plain port serves the
    // other rows); the certificates must outlive it.
    let certs = if args.libs.contains(&Lib::TrackTls) {
        match TlsCerts::try_generate() {
            Ok(c) => Some(c),
            Err(e) => {
                eprintln!("tracklock-m1-tls: skipped, no test certificates: {e}");
                args.libs.retain(|l| *l != Lib::TrackTls);
                None
            }
        }
    } else {
        None
    };
    let started = match &certs {
        Some(c) => RedisServer::try_start_tls(c, false, false, &[]),
        None => RedisServer::try_start(),
    };
    let server = match started {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    if let Some(c) = &certs {
        args.tls_ca = Some(c.ca_cert());
        args.tls_addr = Some(server.tls_addr());
    }
    let args = args;
    // A panic on any thread ends the run (panics on worker threads do not
    // unwind the main thread); the server goes with it.
    let default_hook = std::panic::take_hook();
    let on_panic = server.clone();
    std::panic::set_hook(Box::new(move |info| {
        default_hook(info);
        on_panic.stop();
        std::process::exit(101);
    }));
    let on_ctrl_c = server.clone();
    tokio.handle().spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_ctrl_c.stop();
            eprintln!("\ninterrupted: redis-server stopped");
            std::process::exit(130);
        }
    });

    let rts = Runtimes {
        tokio: tokio.clone(),
        smol,
        #[cfg(feature = "glommio")]
        glommio: if args.wants("glommio") {
            match exec::GlommioExec::new() {
                Ok(g) => Some(Arc::new(g)),
                Err(e) => {
                    eprintln!("glommio: skipped, the executor did not start: {e}");
                    None
                }
            }
        } else {
            None
        },
    };
    #[cfg(not(feature = "glommio"))]
    if args.wants("glommio") {
        eprintln!("glommio: skipped, built without the `glommio` feature");
    }

    let window = Duration::from_secs_f64(args.secs / args.windows as f64);
    println!("tracklock-benches");
    println!("  machine: {}, load average {}", machine(), loadavg());
    println!(
        "  server:  {} on {}",
        tracklock_testkit::version().unwrap_or_default(),
        server.addr()
    );
    println!(
        "  method:  {} tasks ({} in `many`, {} in `many-one-name`); per scenario one warm-up \
         window then {} timed windows of {:?}, round-robin over the rows; medians; tasks still \
         running {:?} after a window are cancelled (row: n/a)",
        args.tasks, args.many_tasks, args.one_name_tasks, args.windows, window, args.grace
    );
    println!(
        "           `many` and `many-one-name`: windows of {:?}; a lock wait still pending at a \
         window's end is given up",
        args.many_window
    );
    println!(
        "  runtimes: tokio (2 workers){}{} ; peers on tokio",
        if rts.smol.is_some() {
            ", smol (global executor, SMOL_THREADS=".to_owned()
                + &std::env::var("SMOL_THREADS").unwrap_or_default()
                + ")"
        } else {
            String::new()
        },
        {
            #[cfg(feature = "glommio")]
            let g = if rts.glommio.is_some() {
                ", glommio (1 LocalExecutor thread)"
            } else {
                ""
            };
            #[cfg(not(feature = "glommio"))]
            let g = "";
            g
        }
    );
    println!("  libraries:");
    for lib in &args.libs {
        println!("    {:<21} {}", lib.id(), lib.about(args.handoff));
    }
    println!();

    let url = server.url();
    let addr = server.addr();
    let ping_conn = {
        let url = url.clone();
        tokio.run(move || async move {
            redis::Client::open(url.as_str())
                .expect("redis URL")
                .get_multiplexed_async_connection()
                .await
                .expect("redis connection for the RTT probe")
        })
    };
    let admin = server.admin();
    let mut raw = TcpStream::connect(("127.0.0.1", server.port())).expect("raw connection");
    raw.set_nodelay(true).expect("TCP_NODELAY");
    let (mut client_samples, mut raw_samples) = (Vec::new(), Vec::new());

    let t_run = Instant::now();
    let mut rows: Vec<Row> = Vec::new();
    #[cfg(feature = "timeline")]
    let mut timelines = Vec::new();
    for &scenario in &args.scenarios {
        let t0 = Instant::now();
        let window = if scenario.is_many() {
            args.many_window
        } else {
            window
        };
        let mut entries = entries(&rts, &args, &addr, &url, scenario);
        for e in entries.iter_mut() {
            e.window(window, args.grace);
        }
        let first = rows.len();
        for e in &entries {
            rows.push(Row {
                scenario,
                runtime: e.runtime(),
                library: e.library(),
                peer: e.is_peer(),
                windows: Vec::new(),
            });
        }
        let n = entries.len();
        for round in 0..args.windows {
            client_samples.extend(client_rtt(&tokio, &ping_conn, 200));
            raw_samples.extend(raw_rtt(&mut raw, 200));
            // Each round starts at the next row, so no row always follows
            // the same one.
            for k in 0..n {
                let i = (round + k) % n;
                let (calls, cpu) = server_work(&admin);
                let cpu0 = process_cpu_ns();
                let mut w = entries[i].window(window, args.grace);
                w.client_cpu_ns = process_cpu_ns().saturating_sub(cpu0);
                let (calls1, cpu1) = server_work(&admin);
                w.server_cmds = calls
                    .zip(calls1)
                    // The later INFO is counted in it; the earlier is not.
                    .map(|(a, b)| b.saturating_sub(a).saturating_sub(1));
                w.server_cpu_ns = cpu.zip(cpu1).map(|(a, b)| b.saturating_sub(a));
                rows[first + i].windows.push(w);
            }
        }
        #[cfg(feature = "timeline")]
        if args.timeline && scenario == Scenario::Contended {
            for e in entries.iter_mut() {
                if e.library() != Lib::TrackM1.id() {
                    continue;
                }
                tracklock::timeline::start();
                let _ = e.window(window, args.grace);
                if let Some(b) = timeline::analyse(&tracklock::timeline::stop()) {
                    timelines.push((e.runtime(), e.library(), b));
                }
            }
        }
        for e in entries.iter_mut() {
            e.close();
        }
        eprintln!(
            "  {}: {} rows in {:.1?}",
            scenario.name(),
            entries.len(),
            t0.elapsed()
        );
    }

    let report = Report {
        rows,
        rtt: Rtt {
            client: report::median(client_samples),
            raw: report::median(raw_samples),
        },
    };
    println!(
        "Round trip (median): {:.1}µs PING on a redis-crate multiplexed connection from a tokio \
         task (RTT below), {:.1}µs on a blocking socket",
        report.rtt.client / 1e3,
        report.rtt.raw / 1e3
    );
    println!();
    print!("{}", report.table());
    println!(
        "ops/s, allocs/op, top: medians of the timed windows. ns/op = 1e9 / ops/s (all tasks). \
         cmds/op = commands the server executed per pair (INFO commandstats around the window,\nidle \
         lockers' periodic pings included). cpu µs/op = CPU per pair of this process (all threads) + of the \
         server,\nmedians of the windows (loopback bills part of each side's TCP work to the other). vs peer = ops/s / best peer's (same scenario, peers on tokio, finished \
         peers only). \
         RTT/op = ns/op / RTT. p99: one lock+unlock (lock call to the release's answer),\nover \
         every pair of the timed windows. spread = (max - min) / median of the windows' ops/s. \
         top = the busiest task's share of the pairs\n(fair: 1/tasks). errors: failed lock or \
         unlock calls in the timed windows (the task goes on). hand-off: unlock call to the next\n\
         acquisition by another task, over all timed samples. n/a: the row did not finish (see \
         below)."
    );
    println!();
    #[cfg(feature = "timeline")]
    if !timelines.is_empty() {
        print!("{}", timeline::table(&timelines, report.rtt.client));
        println!();
    }
    let progress = report.progress();
    if !progress.is_empty() {
        print!("{progress}");
        println!();
    }
    print!(
        "{}",
        report.targets(Lib::TrackM1.id(), Lib::TrackHandoff.id())
    );
    println!();
    println!(
        "run took {:.1?}; load average now {}",
        t_run.elapsed(),
        loadavg()
    );
    if let Some(path) = &args.csv {
        match std::fs::write(path, report.csv()) {
            Ok(()) => println!("CSV written to {path}"),
            Err(e) => {
                eprintln!("cannot write {path}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    drop(rts);
    server.stop();
    ExitCode::SUCCESS
}
