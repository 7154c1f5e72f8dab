//! Starts the servers shared by a test run and prints where they are:
//!
//! ```text
//! cargo run -p tracklock-testkit --example servers -- \
//!     --cluster-masters 3 --replicas 1 --instances 3
//! TRACKLOCK_CLUSTER=127.0.0.1:41001,127.0.0.1:41002,...
//! TRACKLOCK_INSTANCES=127.0.0.1:42001,127.0.0.1:42002,127.0.0.1:42003
//! ```
//!
//! Exactly those two lines go to stdout (cargo's own output goes to
//! stderr), once everything is up and the cluster is settled; export them
//! and the tests' `RedisCluster::shared()` / `RedisInstances::shared()`
//! attach to these servers instead of starting private ones. It then stays
//! alive until it is killed (any signal: a watcher process kills the
//! servers once it is gone) or until its stdin is closed (when stdin is a
//! pipe or a terminal; `/dev/null` does not count as closing). Either way
//! the servers die with it and their directories are removed.
//! `--cluster-masters 0` or `--instances 0` skips that part (its line is
//! then printed empty).

use std::io::{Read, Write};
use std::time::Duration;

use tracklock_testkit::{RedisCluster, RedisInstances, CLUSTER_ENV, INSTANCES_ENV};

fn main() {
    let mut masters = 3;
    let mut replicas = 1;
    let mut instances = 3;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| -> usize {
            args.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| usage(&format!("{name} needs a number")))
        };
        match a.as_str() {
            "--cluster-masters" => masters = value("--cluster-masters"),
            "--replicas" => replicas = value("--replicas"),
            "--instances" => instances = value("--instances"),
            "-h" | "--help" => usage(""),
            other => usage(&format!("unknown argument {other:?}")),
        }
    }

    let cluster = (masters > 0).then(|| RedisCluster::start(masters, replicas));
    let set = (instances > 0).then(|| RedisInstances::start(instances));
    if let Some(c) = &cluster {
        c.reap_on_exit();
    }
    if let Some(s) = &set {
        s.reap_on_exit();
    }
    let cluster_line = cluster.as_ref().map(|c| c.seeds().join(","));
    let instances_line = set.as_ref().map(|s| s.addrs().join(","));
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{CLUSTER_ENV}={}", cluster_line.unwrap_or_default());
    let _ = writeln!(
        out,
        "{INSTANCES_ENV}={}",
        instances_line.unwrap_or_default()
    );
    let _ = out.flush();
    drop(out);

    if stdin_is_dev_null() {
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
    // Wait for stdin to close (everything read is ignored).
    let mut buf = [0u8; 1024];
    let mut stdin = std::io::stdin().lock();
    while matches!(stdin.read(&mut buf), Ok(n) if n > 0) {}
    eprintln!("servers: stdin closed, stopping");
    drop(set);
    drop(cluster);
}

/// True when stdin is `/dev/null` (a background job's, typically): its
/// end-of-file means nothing.
fn stdin_is_dev_null() -> bool {
    std::fs::read_link("/proc/self/fd/0").is_ok_and(|p| p == std::path::Path::new("/dev/null"))
}

fn usage(error: &str) -> ! {
    if !error.is_empty() {
        eprintln!("servers: {error}");
    }
    eprintln!(
        "usage: servers [--cluster-masters N (3)] [--replicas N (1)] [--instances N (3)]\n\
         prints {CLUSTER_ENV}=... and {INSTANCES_ENV}=... and runs until killed or stdin closes"
    );
    std::process::exit(2);
}
