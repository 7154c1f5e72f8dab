//! `tracklock run` against a throwaway redis-server: exclusion, `--try`,
//! a lost lock, signals and exit codes, through the built binary.

mod common;

use std::time::{Duration, Instant};

use common::{output, tracklock, wait_for_file, Running, Scratch, LOOP, PATIENCE};
use nix::sys::signal::Signal;
use tracklock_testkit::{default_keys, fresh, RedisServer};

#[test]
fn cli_redis_url_env_gives_the_name_to_the_command() {
    let server = RedisServer::start();
    let url = format!("redis://127.0.0.1:{}", server.port());
    // Exactly the check of the issue: the URL from the environment.
    let out = output(
        std::process::Command::new(common::BIN)
            .env("REDIS_URL", &url)
            .args([
                "run",
                "--name",
                "x",
                "--",
                "sh",
                "-c",
                "echo $TRACKLOCK_NAME",
            ]),
    );
    assert_eq!(out.code(), Some(0), "{out:?}");
    assert_eq!(out.stdout, "x\n");
    // Released on exit.
    assert_eq!(server.admin().dbsize(), 0);
}

#[test]
fn cli_fencing_gives_increasing_tokens_to_consecutive_runs() {
    let server = RedisServer::start();
    let url = format!("redis://127.0.0.1:{}", server.port());
    let name = fresh("cli-fence{x}}");
    let token = || {
        let out = output(tracklock(&url).args([
            "run",
            "--fencing",
            "--name",
            &name,
            "--",
            "sh",
            "-c",
            "echo $TRACKLOCK_TOKEN",
        ]));
        assert_eq!(out.code(), Some(0), "{out:?}");
        out.stdout
            .trim()
            .parse::<u64>()
            .unwrap_or_else(|e| panic!("TRACKLOCK_TOKEN {:?}: {e}", out.stdout))
    };
    let tokens: Vec<u64> = (0..3).map(|_| token()).collect();
    assert!(
        tokens.windows(2).all(|w| w[0] < w[1]),
        "each run a larger token: {tokens:?}"
    );
    // Without --fencing the command gets no token; the next fenced run
    // still gets a larger one.
    let out = output(tracklock(&url).args([
        "run",
        "--name",
        &name,
        "--",
        "sh",
        "-c",
        "echo \"${TRACKLOCK_TOKEN-none}\"",
    ]));
    assert_eq!(out.stdout, "none\n", "{out:?}");
    assert!(token() > tokens[2]);
}

#[test]
fn cli_run_never_overlaps() {
    let server = RedisServer::start();
    let scratch = Scratch::new("overlap");
    let name = fresh("cli-overlap");
    // Each command stamps its start and end (ns) into a file of its own.
    let script = r#"date +%s%N > "$1"; sleep 0.3; date +%s%N >> "$1""#;
    let runs: Vec<_> = (0..3)
        .map(|i| {
            let file = scratch.path(&format!("stamps-{i}"));
            Running::spawn(
                tracklock(&server.url())
                    .args(["run", "--name", &name, "--"])
                    .args(["sh", "-c", script, "sh", file.to_str().unwrap()]),
            )
        })
        .collect();
    for run in runs {
        let out = run.finish(PATIENCE);
        assert_eq!(out.code(), Some(0), "{out:?}");
    }
    let mut spans: Vec<(u128, u128)> = (0..3)
        .map(|i| {
            let text = std::fs::read_to_string(scratch.path(&format!("stamps-{i}"))).unwrap();
            let stamps: Vec<u128> = text.lines().map(|l| l.trim().parse().unwrap()).collect();
            assert_eq!(stamps.len(), 2, "{text:?}");
            (stamps[0], stamps[1])
        })
        .collect();
    spans.sort();
    for pair in spans.windows(2) {
        assert!(
            pair[0].1 <= pair[1].0,
            "two commands ran at once under one lock: {spans:?}"
        );
    }
}

#[test]
fn cli_try_and_wait_exit_75_while_another_run_holds_the_name() {
    let server = RedisServer::start();
    let scratch = Scratch::new("try");
    let name = fresh("cli-try");
    let script = format!(r#"touch "$1/started"; {LOOP}"#);
    let holder = Running::spawn(
        tracklock(&server.url())
            .args(["run", "--name", &name, "--", "sh", "-c", &script, "sh"])
            .arg(scratch.dir()),
    );
    assert!(wait_for_file(&scratch.path("started"), PATIENCE).is_some());

    let out =
        output(tracklock(&server.url()).args(["run", "--try", "--name", &name, "--", "true"]));
    assert_eq!(out.code(), Some(75), "{out:?}");
    assert!(out.stderr.contains("held by someone else"), "{out:?}");

    let start = Instant::now();
    let out = output(
        tracklock(&server.url()).args(["run", "--wait", "300ms", "--name", &name, "--", "true"]),
    );
    assert_eq!(out.code(), Some(75), "{out:?}");
    assert!(start.elapsed() >= Duration::from_millis(300), "{out:?}");

    // A waiter told to stop before it got the lock: 128 + SIGTERM, and no
    // command started.
    let waiter = Running::spawn(tracklock(&server.url()).args([
        "run",
        "--name",
        &name,
        "--",
        "sh",
        "-c",
        "touch \"$1/waiter-ran\"",
        "sh",
        scratch.dir(),
    ]));
    std::thread::sleep(Duration::from_millis(300));
    waiter.signal(Signal::SIGTERM);
    let out = waiter.finish(PATIENCE);
    assert_eq!(out.code(), Some(143), "{out:?}");
    assert!(!scratch.path("waiter-ran").exists());

    // The holder, stopped: its command dies of the forwarded SIGTERM.
    holder.signal(Signal::SIGTERM);
    let out = holder.finish(PATIENCE);
    assert_eq!(out.code(), Some(143), "{out:?}");
    // Now free: --try gets it.
    let out =
        output(tracklock(&server.url()).args(["run", "--try", "--name", &name, "--", "true"]));
    assert_eq!(out.code(), Some(0), "{out:?}");
}

#[test]
fn cli_deleted_keys_stop_the_command_with_sigterm() {
    let server = RedisServer::start();
    let scratch = Scratch::new("lost");
    let name = fresh("cli-lost");
    let script = format!(r#"trap 'touch "$1/term"; exit 0' TERM; touch "$1/started"; {LOOP}"#);
    // A long validity: the next extension is 15 s away, so only the
    // invalidation of the deleted keys can tell tracklock in time.
    let run = Running::spawn(
        tracklock(&server.url())
            .args(["--validity", "30s", "run", "--name", &name, "--"])
            .args(["sh", "-c", &script, "sh", scratch.dir()]),
    );
    assert!(wait_for_file(&scratch.path("started"), PATIENCE).is_some());
    let admin = server.admin();
    let rtt = admin.rtt();
    // Invalidation push, the engine's check, tracklock's wake-up and the
    // shell's trap: a handful of round trips; at least 2 s on a busy
    // machine, capped well below the 15 s extension.
    let bound = rtt
        .at_least(Duration::from_secs(2), 20)
        .min(Duration::from_secs(10));
    assert_eq!(admin.del(&default_keys(&name)), 3);
    let took = wait_for_file(&scratch.path("term"), bound);
    assert!(took.is_some(), "no SIGTERM within {bound:?} ({rtt})");
    let out = run.finish(PATIENCE);
    assert_eq!(out.code(), Some(79), "{out:?}");
    assert!(out.stderr.contains("lost"), "{out:?}");
}

#[test]
fn cli_lost_lock_kills_a_command_that_ignores_sigterm() {
    let server = RedisServer::start();
    let scratch = Scratch::new("kill");
    let name = fresh("cli-kill");
    let script = format!(r#"trap '' TERM; echo $$ > "$1/pid"; touch "$1/started"; {LOOP}"#);
    let run = Running::spawn(
        tracklock(&server.url())
            .args([
                "--validity",
                "30s",
                "run",
                "--kill-after",
                "500ms",
                "--name",
                &name,
                "--",
            ])
            .args(["sh", "-c", &script, "sh", scratch.dir()]),
    );
    assert!(wait_for_file(&scratch.path("started"), PATIENCE).is_some());
    let pid: i32 = std::fs::read_to_string(scratch.path("pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    server.admin().del(&default_keys(&name));
    let out = run.finish(PATIENCE);
    assert_eq!(out.code(), Some(79), "{out:?}");
    assert!(out.stderr.contains("SIGKILL"), "{out:?}");
    // tracklock reaped its command: the pid is gone.
    let gone = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None);
    assert_eq!(gone, Err(nix::errno::Errno::ESRCH));
}

#[test]
fn cli_signals_reach_the_command_and_its_status_is_returned() {
    let server = RedisServer::start();
    for sig in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        let scratch = Scratch::new("signal");
        let name = fresh("cli-signal");
        let script = format!(
            r#"trap 'echo TERM > "$1/got"; exit 5' TERM
               trap 'echo INT > "$1/got"; exit 5' INT
               trap 'echo HUP > "$1/got"; exit 5' HUP
               touch "$1/started"; {LOOP}"#
        );
        let run = Running::spawn(
            tracklock(&server.url())
                .args(["run", "--name", &name, "--", "sh", "-c", &script, "sh"])
                .arg(scratch.dir()),
        );
        assert!(wait_for_file(&scratch.path("started"), PATIENCE).is_some());
        run.signal(sig);
        let out = run.finish(PATIENCE);
        assert_eq!(out.code(), Some(5), "{sig}: {out:?}");
        let got = std::fs::read_to_string(scratch.path("got")).unwrap();
        assert_eq!(got.trim(), &sig.as_str()[3..], "{sig}");
        // Released after the command exited.
        assert!(!server.admin().exists(&default_keys(&name)[0]));
    }
}

#[test]
fn cli_exit_codes_follow_the_command() {
    let server = RedisServer::start();
    let run = |script: &str| {
        output(tracklock(&server.url()).args([
            "run",
            "--name",
            "cli-codes",
            "--",
            "sh",
            "-c",
            script,
        ]))
    };
    assert_eq!(run("exit 0").code(), Some(0));
    assert_eq!(run("exit 3").code(), Some(3));
    // Killed by a signal: 128 + its number, as shells report it.
    assert_eq!(run("kill -KILL $$").code(), Some(128 + 9));
    assert_eq!(run("kill -TERM $$").code(), Some(128 + 15));
    let out = output(tracklock(&server.url()).args([
        "run",
        "--name",
        "cli-codes",
        "--",
        "/nonexistent/cmd",
    ]));
    assert_eq!(out.code(), Some(127), "{out:?}");
    let out = output(tracklock(&server.url()).args(["run", "--name", "cli-codes", "--", "/"]));
    assert_eq!(out.code(), Some(126), "{out:?}");
    // Each run released the lock, even the failed starts.
    assert_eq!(server.admin().dbsize(), 0);
}

#[test]
fn cli_usage_and_connection_errors() {
    let server = RedisServer::start();
    let url = server.url();
    let usage: &[&[&str]] = &[
        &["run", "--name", "a"],
        &["run", "--name", "a", "--wait", "soon", "--", "true"],
        &["run", "--name", "a", "--wait", "0s", "--", "true"],
        &["run", "--name", "a", "--try", "--force", "--", "true"],
        &["--majority", "0", "run", "--name", "a", "--", "true"],
        &["--majority", "300", "status", "a"],
        &["--prefix", "a:0:b", "status", "a"],
        &["--validity", "0s", "run", "--name", "a", "--", "true"],
        &["run", "--name", "", "--", "true"],
        &["unlock", "a"],
        &["unlock", "--force", "a"],
        &["frobnicate"],
    ];
    for args in usage {
        let out = output(tracklock(&url).args(*args));
        assert_eq!(out.code(), Some(64), "{args:?}: {out:?}");
        assert!(!out.stderr.is_empty(), "{args:?}");
    }
    for url in [
        "http://x",
        "redis://a,b",
        "redis://h:99999",
        "redis+sentinel://h",
        "redis+sentinel://h/m?x=1",
    ] {
        let out = output(tracklock(url).args(["status", "a"]));
        assert_eq!(out.code(), Some(64), "{url}: {out:?}");
    }
    // A CA file must be a readable PEM file of certificates, for a TLS URL;
    // checked before connecting, for every subcommand.
    let scratch = Scratch::new("ca");
    let not_pem = scratch.path("not.pem");
    std::fs::write(&not_pem, "hello\n").unwrap();
    let not_pem = not_pem.to_str().unwrap();
    let missing = scratch.path("missing.pem");
    let missing = missing.to_str().unwrap();
    for (url, ca) in [
        ("rediss://127.0.0.1:1", missing),
        ("rediss://127.0.0.1:1", not_pem),
        (url.as_str(), missing),
    ] {
        for cmd in [
            &["status", "a"][..],
            &["unlock", "--force", "--yes", "a"],
            &["run", "--name", "a", "--", "true"],
        ] {
            let out = output(tracklock(url).args(["--tls-ca-file", ca]).args(cmd));
            assert_eq!(out.code(), Some(64), "{url} {ca} {cmd:?}: {out:?}");
            assert!(out.stderr.contains("--tls-ca-file"), "{out:?}");
        }
    }
    // No URL at all.
    let out = output(
        std::process::Command::new(common::BIN)
            .env_remove("REDIS_URL")
            .args(["status", "a"]),
    );
    assert_eq!(out.code(), Some(64), "{out:?}");
    assert!(out.stderr.contains("REDIS_URL"), "{out:?}");
    // --help is not an error.
    assert_eq!(output(tracklock(&url).arg("--help")).code(), Some(0));
    // Nothing listens there: 69.
    let port = tracklock_testkit::free_port().unwrap();
    let down = format!("redis://127.0.0.1:{port}");
    let out = output(tracklock(&down).args(["run", "--name", "a", "--", "true"]));
    assert_eq!(out.code(), Some(69), "{out:?}");
    let out = output(tracklock(&down).args(["status", "a"]));
    assert_eq!(out.code(), Some(69), "{out:?}");
    // Over TLS and through sentinels too: Redis unreachable is 69.
    let tls = format!("rediss://127.0.0.1:{port}");
    let sentinel = format!("redis+sentinel://127.0.0.1:{port}/m");
    for url in [&tls, &sentinel] {
        for cmd in [&["status", "a"][..], &["unlock", "--force", "--yes", "a"]] {
            let out = output(tracklock(url).args(cmd));
            assert_eq!(out.code(), Some(69), "{url} {cmd:?}: {out:?}");
        }
    }
}

#[test]
fn cli_run_through_sentinel() {
    let deployment = tracklock_testkit::RedisSentinel::start(Default::default());
    let url = deployment.url();
    let scratch = Scratch::new("sentinel");
    let name = fresh("cli-sentinel");
    let script = format!(r#"touch "$1/started"; {LOOP}"#);
    let holder = Running::spawn(
        tracklock(&url)
            .args(["run", "--name", &name, "--", "sh", "-c", &script, "sh"])
            .arg(scratch.dir()),
    );
    assert!(wait_for_file(&scratch.path("started"), PATIENCE).is_some());
    // The keys are on the master the sentinels name.
    let master = deployment.master().admin();
    assert!(
        default_keys(&name)
            .iter()
            .filter(|k| master.exists(k))
            .count()
            >= 2
    );
    let out = output(tracklock(&url).args(["run", "--try", "--name", &name, "--", "true"]));
    assert_eq!(out.code(), Some(75), "{out:?}");
    holder.signal(Signal::SIGTERM);
    assert_eq!(holder.finish(PATIENCE).code(), Some(143));
    let out = output(tracklock(&url).args(["run", "--try", "--name", &name, "--", "true"]));
    assert_eq!(out.code(), Some(0), "{out:?}");
}
