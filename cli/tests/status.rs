//! `tracklock status` and `tracklock unlock --force` on a single server,
//! independent instances, a Redis Cluster (keys read where they live) and
//! a master found through Redis Sentinel, over TCP and TLS.

mod common;

use std::io::Write as _;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{output, wait_for_file, Running, Scratch, LOOP, PATIENCE};
use serde_json::Value;
use tracklock_testkit::{
    default_keys, fresh, RedisCluster, RedisInstances, RedisSentinel, RedisServer, SentinelSetup,
    TlsCerts,
};

/// Where the lock lives: the URL and the global flags that go with it
/// (`--tls-ca-file`).
#[derive(Clone, Copy)]
struct At<'a> {
    url: &'a str,
    flags: &'a [&'a str],
}

impl<'a> At<'a> {
    fn plain(url: &'a str) -> At<'a> {
        At { url, flags: &[] }
    }

    fn tracklock(self) -> Command {
        let mut c = common::tracklock(self.url);
        c.args(self.flags);
        c
    }
}

/// `--tls-ca-file PATH` for `certs`' CA.
fn ca_flag(certs: &TlsCerts) -> [String; 2] {
    [
        "--tls-ca-file".to_owned(),
        certs.ca_cert().display().to_string(),
    ]
}

/// A `tracklock run` holding `name` until stopped; returns once its
/// command started.
fn hold(at: At<'_>, name: &str, scratch: &Scratch) -> Running {
    let script = format!(r#"touch "$1/started"; {LOOP}"#);
    let run = Running::spawn(
        at.tracklock()
            .args(["run", "--name", name, "--", "sh", "-c", &script, "sh"])
            .arg(scratch.dir()),
    );
    assert!(wait_for_file(&scratch.path("started"), PATIENCE).is_some());
    run
}

/// `status --json NAME`: its exit code and document.
fn status(at: At<'_>, name: &str) -> (Option<i32>, Value) {
    let out = output(at.tracklock().args(["status", "--json", name]));
    let json = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("status --json printed no JSON ({e}): {out:?}"));
    (out.code(), json)
}

/// The checks every mode shares: a held lock's document, then
/// `unlock --force --yes` stopping its holder, then a free lock's.
fn status_and_unlock(at: At<'_>, name: &str, node_of: impl Fn(usize, &str) -> String) {
    let scratch = Scratch::new("status");
    let holder = hold(at, name, &scratch);

    let (code, doc) = status(at, name);
    assert_eq!(code, Some(0), "{doc}");
    assert_eq!(doc["name"], name);
    assert_eq!(doc["prefix"], "rueidislock");
    assert_eq!(doc["majority"], 2);
    assert_eq!(doc["held"], true);
    assert_eq!(doc["complete"], true);
    let holder_hex = doc["holder_hex"].as_str().expect("holder_hex");
    assert_eq!(holder_hex.len(), 48, "24 random bytes: {doc}");
    assert!(
        doc["expires_in_ms"]
            .as_i64()
            .is_some_and(|t| t > 0 && t <= 5000),
        "{doc}"
    );
    let keys = doc["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 3);
    let mut carried = 0;
    for (i, (k, want)) in keys.iter().zip(default_keys(name)).enumerate() {
        assert_eq!(k["key"], want.as_str());
        assert_eq!(k["node"], node_of(i, &want).as_str(), "key {i}: {doc}");
        assert!(k["error"].is_null());
        // A locker may hold just the majority: `connect` returns once the
        // nodes of a majority are ready, and the last one may be later.
        if k["value_hex"].is_null() {
            assert!(k["pttl_ms"].is_null() && k["value_utf8"].is_null(), "{doc}");
            continue;
        }
        carried += 1;
        assert_eq!(k["value_hex"], holder_hex);
        assert!(k["value_utf8"].is_string());
        assert!(
            k["pttl_ms"].as_i64().is_some_and(|t| t > 0 && t <= 5000),
            "{doc}"
        );
    }
    assert!(carried >= 2, "{doc}");
    let text = output(at.tracklock().args(["status", name]));
    assert_eq!(text.code(), Some(0));
    // (A late key may have been taken since: the count is not checked.)
    assert!(
        text.stdout.starts_with(&format!("{name}: held (")),
        "{text:?}"
    );
    assert!(
        text.stdout
            .contains(&format!(" of 3 keys carry {holder_hex}; ")),
        "{text:?}"
    );

    let out = output(at.tracklock().args(["unlock", "--force", "--yes", name]));
    assert_eq!(out.code(), Some(0), "{out:?}");
    // The count can only grow (a late key taken meanwhile).
    assert!(out.stdout.contains(" of its 3 keys"), "{out:?}");
    // Its holder heard of it and stopped its command.
    let out = holder.finish(PATIENCE);
    assert_eq!(out.code(), Some(79), "{out:?}");

    let (code, doc) = status(at, name);
    assert_eq!(code, Some(1), "{doc}");
    assert_eq!(doc["held"], false);
    assert!(
        doc["holder_hex"].is_null() && doc["expires_in_ms"].is_null(),
        "{doc}"
    );
    for k in doc["keys"].as_array().unwrap() {
        assert!(k["value_hex"].is_null() && k["pttl_ms"].is_null(), "{doc}");
    }
}

#[test]
fn cli_status_and_unlock_on_one_server() {
    let server = RedisServer::start();
    let name = fresh("cli-status");
    let url = server.url();
    let at = At::plain(&url);
    status_and_unlock(at, &name, |_, _| server.addr());
    // A minority of foreign values is not a holder.
    let admin = server.admin();
    let keys = default_keys(&name);
    admin.set(&keys[0], "someone");
    let (code, doc) = status(at, &name);
    assert_eq!(code, Some(1), "{doc}");
    assert_eq!(doc["keys"][0]["value_utf8"], "someone");
    assert_eq!(doc["keys"][0]["pttl_ms"], -1, "no TTL: {doc}");
    // An error reply is the key's error, not a value nor a missing key:
    // with keys 0 and 1 readable and free, key 2 could still make a
    // majority with either, so the answer is open (69), not "not held".
    admin.del(&keys[..1]);
    admin.cmd::<i64>("LPUSH", &[&keys[2], "x"]);
    let (code, doc) = status(at, &name);
    assert_eq!(code, Some(69), "{doc}");
    assert_eq!(doc["complete"], false, "{doc}");
    let error = doc["keys"][2]["error"].as_str().unwrap_or_default();
    assert!(error.starts_with("WRONGTYPE "), "{doc}");
    assert!(doc["keys"][2]["value_hex"].is_null(), "{doc}");
    assert!(doc["keys"][0]["error"].is_null(), "{doc}");
}

#[test]
fn cli_error_replies_are_errors() {
    // A server that wants a password the URL does not give: every command
    // is refused (NOAUTH), and that is Redis refusing (69), not a lock held
    // by someone else (75) nor a free one (1).
    let server = RedisServer::start_with(&["--requirepass", "pw"]);
    let url = format!("redis://{}", server.addr());
    let at = At::plain(&url);
    let name = fresh("cli-noauth");
    let (code, doc) = status(at, &name);
    assert_eq!(code, Some(69), "{doc}");
    for k in doc["keys"].as_array().expect("keys") {
        let error = k["error"].as_str().unwrap_or_default();
        assert!(error.starts_with("NOAUTH "), "{doc}");
    }
    let out = output(at.tracklock().args(["unlock", "--force", "--yes", &name]));
    assert_eq!(out.code(), Some(69), "{out:?}");
    assert!(out.stderr.contains("NOAUTH"), "{out:?}");
    // With the password both work.
    let url = format!("redis://:pw@{}", server.addr());
    let (code, doc) = status(At::plain(&url), &name);
    assert_eq!(code, Some(1), "{doc}");
}

#[test]
fn cli_status_and_unlock_on_instances() {
    let instances = RedisInstances::shared();
    let addrs = instances.addrs();
    let url = format!("redis+instances://{}", addrs.join(","));
    // Key i lives on instance i mod n.
    status_and_unlock(At::plain(&url), &fresh("cli-instances"), |i, _| {
        addrs[i % addrs.len()].clone()
    });
}

#[test]
fn cli_status_and_unlock_on_a_cluster() {
    let cluster = RedisCluster::shared();
    let url = format!("redis+cluster://{}", cluster.seeds().join(","));
    // Each key is read on the master owning its slot (after MOVED).
    status_and_unlock(At::plain(&url), &fresh("cli-cluster"), |_, key| {
        cluster.addr(cluster.owner_of(key))
    });
}

#[test]
fn cli_status_and_unlock_over_tls() {
    let certs = TlsCerts::generate();
    let server = RedisServer::try_start_tls(&certs, false, false, &[]).expect("TLS redis-server");
    let url = format!("rediss://{}", server.tls_addr());
    let ca = ca_flag(&certs);
    let ca: Vec<&str> = ca.iter().map(String::as_str).collect();
    let at = At {
        url: &url,
        flags: &ca,
    };
    status_and_unlock(at, &fresh("cli-tls"), |_, _| server.tls_addr());
    // The server's certificate is verified: without the CA it is refused
    // (a connection failure, 69).
    let (code, doc) = status(At::plain(&url), &fresh("cli-tls"));
    assert_eq!(code, Some(69), "{doc}");
    assert!(doc["keys"][0]["error"].is_string(), "{doc}");
    // The plain port does not speak TLS: 69, not a usage error.
    let plain = format!("rediss://{}", server.addr());
    let (code, _) = status(
        At {
            url: &plain,
            flags: &ca,
        },
        "x",
    );
    assert_eq!(code, Some(69));
}

#[test]
fn cli_status_and_unlock_on_a_tls_cluster() {
    let cluster = RedisCluster::try_start_tls(3, 0).expect("TLS cluster");
    let url = format!("rediss+cluster://{}", cluster.tls_seeds().join(","));
    let ca = ca_flag(cluster.tls_certs().expect("TLS"));
    let ca: Vec<&str> = ca.iter().map(String::as_str).collect();
    // Redirects name the TLS ports to a TLS client.
    status_and_unlock(
        At {
            url: &url,
            flags: &ca,
        },
        &fresh("cli-tls-cluster"),
        |_, key| {
            let port = cluster.tls_port(cluster.owner_of(key)).expect("TLS port");
            format!("127.0.0.1:{port}")
        },
    );
}

#[test]
fn cli_status_and_unlock_through_sentinels() {
    // Passwords on the data nodes and on the sentinels: the URL's are used
    // for each.
    let deployment = RedisSentinel::start(SentinelSetup {
        data_password: Some("data-pw".into()),
        sentinel_password: Some("sentinel-pw".into()),
        tls: None,
    });
    let url = deployment.url();
    assert!(url.contains("sentinel_password=sentinel-pw"), "{url}");
    // The keys are read on the master the sentinels name.
    status_and_unlock(At::plain(&url), &fresh("cli-sentinel"), |_, _| {
        deployment.master().addr()
    });
    // A sentinel that does not answer (frozen) is passed over for the
    // next after the tool's 5 s bound: the first of the URL's list is
    // frozen, and the keys are still read on the master, within that bound
    // plus a few times what the same status takes with every sentinel up
    // (and headroom for a busy machine).
    let start = Instant::now();
    assert_eq!(status(At::plain(&url), "free").0, Some(1));
    let base = start.elapsed();
    deployment.freeze_sentinel(0);
    let start = Instant::now();
    let (code, doc) = status(At::plain(&url), "free");
    let took = start.elapsed();
    deployment.thaw_sentinel(0);
    assert_eq!(code, Some(1), "{doc}");
    assert_eq!(doc["keys"][0]["node"], deployment.master().addr(), "{doc}");
    let bound = Duration::from_secs(5);
    assert!(
        took >= bound,
        "the frozen sentinel was asked first: {took:?}"
    );
    assert!(
        took < bound + base * 4 + Duration::from_secs(3),
        "{took:?} (base {base:?})"
    );
    // Without the sentinels' password they refuse: 69.
    let bad = url.replace("sentinel_password=sentinel-pw", "sentinel_password=wrong");
    let (code, doc) = status(At::plain(&bad), "x");
    assert_eq!(code, Some(69), "{doc}");
    assert!(doc["keys"][0]["error"].is_string(), "{doc}");
    let out = output(
        At::plain(&bad)
            .tracklock()
            .args(["unlock", "--force", "--yes", "x"]),
    );
    assert_eq!(out.code(), Some(69), "{out:?}");
}

#[test]
fn cli_status_and_unlock_through_sentinels_over_tls() {
    let certs = Arc::new(TlsCerts::generate());
    let deployment = RedisSentinel::start(SentinelSetup {
        data_password: Some("data-pw".into()),
        sentinel_password: None,
        tls: Some(certs.clone()),
    });
    let url = deployment.url();
    assert!(url.starts_with("rediss+sentinel://"), "{url}");
    let ca = ca_flag(&certs);
    let ca: Vec<&str> = ca.iter().map(String::as_str).collect();
    status_and_unlock(
        At {
            url: &url,
            flags: &ca,
        },
        &fresh("cli-sentinel-tls"),
        |_, _| deployment.master().tls_addr(),
    );
}

#[test]
fn cli_status_reports_unreachable_instances() {
    let instances = RedisInstances::shared();
    let mut addrs = instances.addrs();
    // Instance 2 (key 2) is down: keys 0 and 1 answer, nothing holds them,
    // so "not held" cannot be told from "held on keys 1 and 2": 69.
    addrs[2] = format!("127.0.0.1:{}", tracklock_testkit::free_port().unwrap());
    let url = format!("redis+instances://{}", addrs.join(","));
    let (code, doc) = status(At::plain(&url), &fresh("cli-down"));
    assert_eq!(code, Some(69), "{doc}");
    assert_eq!(doc["complete"], false);
    assert!(doc["keys"][2]["error"].is_string(), "{doc}");
    assert!(doc["keys"][0]["error"].is_null(), "{doc}");
}

#[test]
fn cli_unlock_asks_on_a_terminal() {
    // util-linux `script` gives the command a terminal.
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: no `script` (util-linux) to provide a terminal");
        return;
    }
    let server = RedisServer::start();
    let name = fresh("cli-tty");
    let key = &default_keys(&name)[0];
    server.admin().set(key, "someone");
    let ask = |answer: &str| {
        let cmd = format!(
            "{} --url {} unlock --force {name}",
            common::BIN,
            server.url()
        );
        let mut child = std::process::Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .env_remove("REDIS_URL")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start script");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(answer.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let out = ask("n\n");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("[y/N]") && text.contains("\"someone\""),
        "{text}"
    );
    assert!(server.admin().exists(key));
    let out = ask("y\n");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(!server.admin().exists(key));
}
