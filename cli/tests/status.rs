//! `tracklock status` and `tracklock unlock --force` on a single server,
//! independent instances and a Redis Cluster (keys read where they live).

mod common;

use std::io::Write as _;

use common::{output, tracklock, wait_for_file, Running, Scratch, LOOP, PATIENCE};
use serde_json::Value;
use tracklock_testkit::{default_keys, fresh, RedisCluster, RedisInstances, RedisServer};

/// A `tracklock run` holding `name` until stopped; returns once its
/// command started.
fn hold(url: &str, name: &str, scratch: &Scratch) -> Running {
    let script = format!(r#"touch "$1/started"; {LOOP}"#);
    let run = Running::spawn(
        tracklock(url)
            .args(["run", "--name", name, "--", "sh", "-c", &script, "sh"])
            .arg(scratch.dir()),
    );
    assert!(wait_for_file(&scratch.path("started"), PATIENCE).is_some());
    run
}

/// `status --json NAME`: its exit code and document.
fn status(url: &str, name: &str) -> (Option<i32>, Value) {
    let out = output(tracklock(url).args(["status", "--json", name]));
    let json = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("status --json printed no JSON ({e}): {out:?}"));
    (out.code(), json)
}

/// The checks every mode shares: a held lock's document, then
/// `unlock --force --yes` stopping its holder, then a free lock's.
fn status_and_unlock(url: &str, name: &str, node_of: impl Fn(usize, &str) -> String) {
    let scratch = Scratch::new("status");
    let holder = hold(url, name, &scratch);

    let (code, doc) = status(url, name);
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
    let text = output(tracklock(url).args(["status", name]));
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

    let out = output(tracklock(url).args(["unlock", "--force", "--yes", name]));
    assert_eq!(out.code(), Some(0), "{out:?}");
    // The count can only grow (a late key taken meanwhile).
    assert!(out.stdout.contains(" of its 3 keys"), "{out:?}");
    // Its holder heard of it and stopped its command.
    let out = holder.finish(PATIENCE);
    assert_eq!(out.code(), Some(79), "{out:?}");

    let (code, doc) = status(url, name);
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
    status_and_unlock(&server.url(), &name, |_, _| server.addr());
    // A minority of foreign values is not a holder.
    let admin = server.admin();
    admin.set(&default_keys(&name)[0], "someone");
    let (code, doc) = status(&server.url(), &name);
    assert_eq!(code, Some(1), "{doc}");
    assert_eq!(doc["keys"][0]["value_utf8"], "someone");
    assert_eq!(doc["keys"][0]["pttl_ms"], -1, "no TTL: {doc}");
}

#[test]
fn cli_status_and_unlock_on_instances() {
    let instances = RedisInstances::shared();
    let addrs = instances.addrs();
    let url = format!("redis+instances://{}", addrs.join(","));
    // Key i lives on instance i mod n.
    status_and_unlock(&url, &fresh("cli-instances"), |i, _| {
        addrs[i % addrs.len()].clone()
    });
}

#[test]
fn cli_status_and_unlock_on_a_cluster() {
    let cluster = RedisCluster::shared();
    let url = format!("redis+cluster://{}", cluster.seeds().join(","));
    // Each key is read on the master owning its slot (after MOVED).
    status_and_unlock(&url, &fresh("cli-cluster"), |_, key| {
        cluster.addr(cluster.owner_of(key))
    });
}

#[test]
fn cli_status_reports_unreachable_instances() {
    let instances = RedisInstances::shared();
    let mut addrs = instances.addrs();
    // Instance 2 (key 2) is down: keys 0 and 1 answer, nothing holds them,
    // so "not held" cannot be told from "held on keys 1 and 2": 69.
    addrs[2] = format!("127.0.0.1:{}", tracklock_testkit::free_port().unwrap());
    let url = format!("redis+instances://{}", addrs.join(","));
    let (code, doc) = status(&url, &fresh("cli-down"));
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
