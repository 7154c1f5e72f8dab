//! Refusals on real servers: every error reply that keeps a majority out of
//! reach (`OOM`, `NOPERM`, `READONLY`, a refused handshake, …) ends the call
//! with its typed error, promptly, and leaves no keys behind; overload,
//! huge names and a busy server end without a bogus `NotLocked`. Each body
//! runs on tokio and smol (the overload one on tokio only). Every test name
//! contains `refus`:
//! `cargo test -p tracklock-tests refus`.
//!
//! Bounds: [`PROMPT`] for a call that needs a round trip or a reconnect,
//! far above what a loaded 2-core machine needs (see its doc); the times
//! measured are printed (`-- --nocapture`).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracklock::{Error, LostReason, NodeError, Options};
use tracklock_core::Command;
use tracklock_tests::topo::connect;
use tracklock_tests::{
    scenario, tokio_and_smol, Admin, Ctx, RedisServer, TestRt, Topology, Variant,
};

/// TTL written on every key (extended every second).
const VALIDITY: Duration = Duration::from_secs(2);

/// Bound on a call that ends with the server's first reply (a refusal), or
/// with a reconnect attempt (10 ms backoff, then a handshake). Measured at
/// most ~30 ms in a debug build on a 2-core machine at load 10-18 (two
/// `yes >/dev/null` and other builds running); 5 s leaves room for a
/// starved scheduler and still catches a call that retries instead of
/// reporting (`lock()` waiting through a permanent refusal).
const PROMPT: Duration = Duration::from_secs(5);

/// Bound on keys vanishing: a background release (one round trip) or a
/// TTL of [`VALIDITY`], plus [`PROMPT`].
const CLEAN: Duration = Duration::from_secs(7);

/// Overall limit of a test.
const LIMIT: Duration = Duration::from_secs(120);

/// Awaits `fut` for at most `bound`, printing how long it took; panics
/// (naming `what`) when it is still running.
async fn timed<T: TestRt, F: Future>(what: &str, bound: Duration, fut: F) -> F::Output {
    let start = Instant::now();
    let out = T::timeout(bound, fut).await;
    let took = start.elapsed();
    match out {
        Some(v) => {
            eprintln!("[{}] {what}: {took:?}", T::NAME);
            v
        }
        None => panic!("[{}] {what}: still running after {bound:?}", T::NAME),
    }
}

/// Waits until `cond` holds, checking every 20 ms, for at most `within`.
async fn eventually<T: TestRt>(within: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        if start.elapsed() > within {
            panic!("[{}] not within {within:?}: {what}", T::NAME);
        }
        T::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the server holds no key at all.
async fn no_keys_left<T: TestRt>(admin: &Admin, within: Duration) {
    eventually::<T>(within, "no keys left (KEYS * empty)", || {
        admin.keys("*").is_empty()
    })
    .await;
}

/// Asserts `res` is `Error::Refused` of `command` by `addr`, the server's
/// text containing `code`.
#[track_caller]
fn assert_refused<G>(what: &str, res: Result<G, Error>, addr: &str, command: Command, code: &str) {
    match res {
        Err(Error::Refused {
            addr: a,
            command: c,
            message,
        }) => {
            assert_eq!(c, command, "{what}: refused command ({message})");
            assert_eq!(a, addr, "{what}: refusing node");
            assert!(
                message.contains(code),
                "{what}: message {message:?} lacks {code}"
            );
        }
        Err(e) => panic!("{what}: expected Refused({command:?}, {code}), got {e:?} ({e})"),
        Ok(_) => panic!("{what}: expected Refused({command:?}, {code}), got Ok(guard)"),
    }
}

/// `lock`, `try_lock` and `force_lock` of fresh names each end within
/// [`PROMPT`] with `Refused(command, code)`; then no key is left and the
/// locker tracks no request.
async fn all_three_refused<T: TestRt>(
    l: &tracklock::Locker<T::R>,
    admin: &Admin,
    addr: &str,
    command: Command,
    code: &str,
) {
    let stem = format!("refused-{}", code.to_lowercase());
    let r = timed::<T, _>(
        &format!("{code}: lock"),
        PROMPT,
        l.lock(&format!("{stem}-lock")),
    )
    .await;
    assert_refused("lock", r, addr, command, code);
    let r = timed::<T, _>(
        &format!("{code}: try_lock"),
        PROMPT,
        l.try_lock(&format!("{stem}-try")),
    )
    .await;
    assert_refused("try_lock", r, addr, command, code);
    let r = timed::<T, _>(
        &format!("{code}: force_lock"),
        PROMPT,
        l.force_lock(&format!("{stem}-force")),
    )
    .await;
    assert_refused("force_lock", r, addr, command, code);
    no_keys_left::<T>(admin, CLEAN).await;
    eventually::<T>(PROMPT, "active_locks() == 0", || l.active_locks() == 0).await;
}

/// Locks and unlocks a fresh name: the locker works.
async fn lock_works<T: TestRt>(l: &tracklock::Locker<T::R>, admin: &Admin, name: &str) {
    let g = timed::<T, _>(
        &format!("lock({name}) after recovery"),
        PROMPT,
        l.lock(name),
    )
    .await
    .unwrap_or_else(|e| panic!("lock({name}) after recovery: {e:?} ({e})"));
    assert!(g.is_held());
    timed::<T, _>("unlock", PROMPT, g.unlock())
        .await
        .unwrap_or_else(|e| panic!("unlock({name}): {e:?} ({e})"));
    no_keys_left::<T>(admin, CLEAN).await;
}

/// `ACL SETUSER name on >pw rules...`.
fn acl_user(admin: &Admin, name: &str, rules: &[&str]) {
    let mut args = vec!["SETUSER", name, "on", ">pw"];
    args.extend_from_slice(rules);
    let _: String = admin.cmd("ACL", &args);
}

/// The scenario's server, an admin connection to it and its address.
fn server_of<T: TestRt>(ctx: &Ctx<T>) -> (Arc<RedisServer>, Arc<Admin>, String) {
    let server = ctx.server().clone();
    let addr = server.addr();
    (server, ctx.admin().clone(), addr)
}

fn user_opts(server: &RedisServer, user: &str) -> Options {
    Options::new(server.addr())
        .username(user)
        .password("pw")
        .validity(VALIDITY)
}

/// Case 1: `maxmemory` reached with `noeviction`: `SET` is refused with `OOM`.
mod refused_oom {
    use super::*;

    async fn body<T: TestRt>(ctx: Ctx<T>) {
        let (_, admin, addr) = server_of(&ctx);
        let l = connect::<T>(Options::new(&addr).validity(VALIDITY)).await;
        let _: String = admin.cmd("CONFIG", &["SET", "maxmemory", "1"]);
        all_three_refused::<T>(&l, &admin, &addr, Command::Set, "OOM").await;
        let _: String = admin.cmd("CONFIG", &["SET", "maxmemory", "0"]);
        lock_works::<T>(&l, &admin, "refused-oom-after").await;
        l.close().await;
    }

    tokio_and_smol!(
        Topology::Server(&["--maxmemory-policy", "noeviction"]),
        body,
        LIMIT
    );
}

/// Case 2: ACL users without `SET`, or restricted to other keys: `NOPERM`.
mod refused_noperm_set {
    use super::*;

    async fn body<T: TestRt>(ctx: Ctx<T>) {
        let (server, admin, addr) = server_of(&ctx);
        acl_user(&admin, "noset", &["~*", "+@all", "-set"]);
        acl_user(&admin, "elsewhere", &["~other:*", "+@all"]);

        let l = connect::<T>(user_opts(&server, "noset")).await;
        all_three_refused::<T>(&l, &admin, &addr, Command::Set, "NOPERM").await;
        l.close().await;

        let l = connect::<T>(user_opts(&server, "elsewhere")).await;
        all_three_refused::<T>(&l, &admin, &addr, Command::Set, "NOPERM").await;
        // Its own key pattern works.
        let l2 = connect::<T>(user_opts(&server, "elsewhere").prefix("other:lk")).await;
        lock_works::<T>(&l2, &admin, "refused-noperm-own-pattern").await;
        l.close().await;
        l2.close().await;
    }

    tokio_and_smol!(Topology::Server(&[]), body, LIMIT);
}

/// Redis 7.0 refuses a command called from a script with
/// `ERR The user executing the script can't run this command or subcommand`
/// (no `NOPERM` code); later versions may say `NOPERM`. Either is the
/// server's ACL refusal.
fn is_acl_refusal_in_script(message: &str) -> bool {
    message.contains("NOPERM") || message.contains("can't run this command")
}

/// Case 3: ACL user without `DEL`: the release script is refused; `unlock()`
/// says `NotReleased` and the keys stay until their TTL.
mod refused_release_nodel {
    use super::*;

    async fn body<T: TestRt>(ctx: Ctx<T>) {
        let (server, admin, addr) = server_of(&ctx);
        acl_user(&admin, "nodel", &["~*", "+@all", "-del"]);
        let l = connect::<T>(user_opts(&server, "nodel")).await;
        let name = "refused-nodel";
        let g = timed::<T, _>("lock", PROMPT, l.lock(name))
            .await
            .unwrap_or_else(|e| panic!("lock: {e:?} ({e})"));
        let r = timed::<T, _>("unlock (DEL refused)", PROMPT, g.unlock()).await;
        let unlocked = Instant::now();
        match r {
            Err(Error::NotReleased { addr: a, message }) => {
                assert_eq!(a, addr);
                assert!(
                    is_acl_refusal_in_script(&message),
                    "NotReleased message {message:?} is not the ACL refusal"
                );
                eprintln!("[{}] NotReleased message: {message}", T::NAME);
            }
            other => panic!("unlock: expected NotReleased, got {other:?}"),
        }
        // The keys stay (no longer extended) until their TTL, then vanish.
        let keys = admin.keys("*");
        assert!(
            keys.len() >= 2 && keys.iter().all(|k| k.ends_with(name)),
            "the lock's keys stay until their TTL: {keys:?}"
        );
        for k in &keys {
            let ttl = admin.pttl(k);
            assert!(
                (1..=VALIDITY.as_millis() as i64).contains(&ttl),
                "{k}: pttl {ttl}"
            );
        }
        no_keys_left::<T>(&admin, VALIDITY + PROMPT).await;
        eprintln!(
            "[{}] keys gone {:?} after NotReleased",
            T::NAME,
            unlocked.elapsed()
        );
        eventually::<T>(PROMPT, "active_locks() == 0", || l.active_locks() == 0).await;
        l.close().await;
    }

    tokio_and_smol!(Topology::Server(&[]), body, LIMIT);
}

/// Case 4a: ACL users that may `SET`/`PTTL` but not run the extend script
/// (no `EVALSHA`/`EVAL`, or no `PEXPIRE` inside it): acquisition works, the
/// lock is lost with `LostReason::Refused` no later than the validity.
mod refused_extension {
    use super::*;

    async fn one<T: TestRt>(server: &RedisServer, admin: &Admin, user: &str, code: &str) {
        let l = connect::<T>(user_opts(server, user)).await;
        let name = format!("refused-extend-{user}");
        let start = Instant::now();
        let g = timed::<T, _>(&format!("{user}: lock"), PROMPT, l.lock(&name))
            .await
            .unwrap_or_else(|e| panic!("{user}: lock: {e:?} ({e})"));
        let reason = timed::<T, _>(&format!("{user}: lost()"), VALIDITY + PROMPT, g.lost()).await;
        let lost_after = start.elapsed();
        assert!(
            lost_after <= VALIDITY + Duration::from_secs(1),
            "{user}: lost only {lost_after:?} after the lock() call (validity {VALIDITY:?})"
        );
        match &reason {
            LostReason::Refused(e) => {
                assert_eq!(e.command, Command::Extend, "{user}: {e}");
                let m = e.message.as_str();
                let ok = if code == "NOPERM" {
                    m.contains("NOPERM")
                } else {
                    is_acl_refusal_in_script(m)
                };
                assert!(ok, "{user}: loss message {m:?} lacks {code}");
                eprintln!("[{}] {user}: lost after {lost_after:?}: {e}", T::NAME);
            }
            other => panic!("{user}: expected LostReason::Refused, got {other:?} ({other})"),
        }
        assert!(!g.is_held());
        // Releasing the lost lock: without EVALSHA/EVAL the release script
        // is refused too (NotReleased, the keys expire by their TTL); without
        // PEXPIRE the release script (GET, DEL) runs.
        let r = timed::<T, _>(&format!("{user}: unlock after loss"), PROMPT, g.unlock()).await;
        eprintln!("[{}] {user}: unlock after loss: {r:?}", T::NAME);
        if code == "NOPERM" {
            match &r {
                Err(Error::NotReleased { message, .. }) if message.contains("NOPERM") => {}
                other => panic!("{user}: unlock after loss: expected NotReleased, got {other:?}"),
            }
        } else {
            assert!(r.is_ok(), "{user}: unlock after loss: {r:?}");
        }
        no_keys_left::<T>(admin, CLEAN).await;
        eventually::<T>(PROMPT, "active_locks() == 0", || l.active_locks() == 0).await;
        l.close().await;
    }

    async fn body<T: TestRt>(ctx: Ctx<T>) {
        let (server, admin, _) = server_of(&ctx);
        acl_user(&admin, "noscript", &["~*", "+@all", "-eval", "-evalsha"]);
        acl_user(
            &admin,
            "nopexpire",
            &["~*", "+@all", "-pexpire", "-pexpireat"],
        );
        one::<T>(&server, &admin, "noscript", "NOPERM").await;
        one::<T>(&server, &admin, "nopexpire", "script").await;
    }

    tokio_and_smol!(Topology::Server(&[]), body, LIMIT);
}

/// Case 4b: ACL user without `PTTL`: the acquisition's `PTTL` is refused; the
/// keys its `SET`s wrote are released.
mod refused_pttl {
    use super::*;

    async fn body<T: TestRt>(ctx: Ctx<T>) {
        let (server, admin, addr) = server_of(&ctx);
        acl_user(&admin, "nopttl", &["~*", "+@all", "-pttl"]);
        let l = connect::<T>(user_opts(&server, "nopttl")).await;
        all_three_refused::<T>(&l, &admin, &addr, Command::Pttl, "NOPERM").await;
        l.close().await;
    }

    tokio_and_smol!(Topology::Server(&[]), body, LIMIT);
}

/// `INFO replication` of `admin` says the link to the master is up.
fn link_up(admin: &Admin) -> bool {
    let info: String = admin.cmd("INFO", &["replication"]);
    info.contains("master_link_status:up")
}

/// Case 5: Replicas: refused at connect (single mode), and a master demoted
/// under a connected locker answers `READONLY`.
mod refused_readonly {
    use super::*;

    async fn body<T: TestRt>(ctx: Ctx<T>) {
        let master = ctx.server().clone();
        let port = master.port().to_string();
        let replica = RedisServer::start_with(&["--replicaof", "127.0.0.1", &port]);
        let radmin = replica.admin();
        eventually::<T>(Duration::from_secs(10), "replica linked", || {
            link_up(&radmin)
        })
        .await;

        // Single mode to a replica: refused at connect.
        let r = timed::<T, _>(
            "connect to a replica",
            PROMPT,
            T::connect(Options::new(replica.addr())),
        )
        .await;
        match r {
            Err(Error::Node {
                addr,
                source: NodeError::Replica,
            }) => assert_eq!(addr, replica.addr()),
            Err(e) => panic!("connect to a replica: expected Node(Replica), got {e:?} ({e})"),
            Ok(_) => panic!("connect to a replica: expected Node(Replica), got a locker"),
        }

        // A connected master turned into a replica: READONLY.
        let other = RedisServer::start();
        let admin = other.admin();
        let addr = other.addr();
        let l = connect::<T>(Options::new(&addr).validity(VALIDITY)).await;
        let _: String = admin.cmd("REPLICAOF", &["127.0.0.1", &port]);
        eventually::<T>(Duration::from_secs(10), "demoted master linked", || {
            link_up(&admin)
        })
        .await;
        all_three_refused::<T>(&l, &admin, &addr, Command::Set, "READONLY").await;
        let _: String = admin.cmd("REPLICAOF", &["NO", "ONE"]);
        lock_works::<T>(&l, &admin, "refused-readonly-after").await;
        l.close().await;
        assert!(ctx.admin().keys("*").is_empty());
    }

    tokio_and_smol!(Topology::Server(&[]), body, LIMIT);
}

/// Case 6: The password changes and the connections are killed: the locker's
/// reconnection is refused (`WRONGPASS`); a pending and a new `lock()` end
/// with `Error::Node` (`NodeError::Handshake`); once the password is back, locking works again.
mod refused_handshake_wrongpass {
    use super::*;

    #[track_caller]
    fn assert_wrongpass<G>(what: &str, r: Result<G, Error>, addr: &str) {
        match r {
            Err(Error::Node {
                addr: a,
                source: NodeError::Handshake(message),
            }) => {
                assert_eq!(a, addr, "{what}");
                assert!(message.as_str().contains("WRONGPASS"), "{what}: {message}");
            }
            Err(e) => panic!("{what}: expected Node(Handshake(WRONGPASS)), got {e:?} ({e})"),
            Ok(_) => panic!("{what}: expected Node(Handshake(WRONGPASS)), got Ok(guard)"),
        }
    }

    async fn body<T: TestRt>(ctx: Ctx<T>) {
        // The admin is authenticated with "old"; survives the kill (SKIPME
        // yes) and the password change.
        let (_, admin, addr) = server_of(&ctx);
        let opts = Options::new(&addr).password("old").validity(VALIDITY);
        let holder = connect::<T>(opts.clone()).await;
        let l = connect::<T>(opts).await;
        let held = holder.lock("refused-pw-held").await.expect("holder: lock");
        let pending = {
            let l = l.clone();
            T::spawn(async move { l.lock("refused-pw-held").await.map(|_g| ()) })
        };
        T::sleep(Duration::from_millis(100)).await;
        assert!(
            !pending.is_finished(),
            "the lock is held: the request waits"
        );

        let _: String = admin.cmd("CONFIG", &["SET", "requirepass", "new"]);
        assert!(
            admin.client_kill_normal() >= 2,
            "the lockers' connections killed"
        );
        let r = timed::<T, _>("pending lock() after the password change", PROMPT, pending).await;
        assert_wrongpass("pending lock()", r, &addr);
        let r = timed::<T, _>(
            "new lock() after the password change",
            PROMPT,
            l.lock("refused-pw-new"),
        )
        .await;
        assert_wrongpass("new lock()", r, &addr);
        let r = timed::<T, _>(
            "try_lock() after the password change",
            PROMPT,
            l.try_lock("refused-pw-try"),
        )
        .await;
        assert_wrongpass("try_lock()", r, &addr);

        // The password is back: the locker, still reconnecting, works again.
        let _: String = admin.cmd("CONFIG", &["SET", "requirepass", "old"]);
        let restored = Instant::now();
        let g = loop {
            match T::timeout(PROMPT, l.lock("refused-pw-after")).await {
                Some(Ok(g)) => break g,
                Some(Err(Error::Node {
                    source: NodeError::Handshake(message),
                    ..
                })) if message.as_str().contains("WRONGPASS") => {}
                Some(Err(e)) => panic!("lock() after the password is back: {e:?} ({e})"),
                None => panic!("lock() after the password is back: still running after {PROMPT:?}"),
            }
            assert!(
                restored.elapsed() < PROMPT,
                "still WRONGPASS {:?} after the password is back",
                restored.elapsed()
            );
            T::sleep(Duration::from_millis(20)).await;
        };
        eprintln!(
            "[{}] locking again {:?} after the password is back",
            T::NAME,
            restored.elapsed()
        );
        g.unlock().await.expect("unlock");
        let _ = held.unlock().await;
        l.close().await;
        holder.close().await;
        no_keys_left::<T>(&admin, CLEAN).await;
    }

    tokio_and_smol!(Topology::Server(&["--requirepass", "old"]), body, LIMIT);
}

/// Case 7: Overload of one locker (defaults): 2,000 concurrent lock+unlock of
/// own names, 3 rounds; 2,000 concurrent `try_lock` of free names; 1,000
/// tasks on one name. Everything completes, no `NotLocked`, no leak.
/// tokio only (the body takes minutes in a debug build on a busy machine).
///
/// Fails now and then on a loaded machine (a round past 60 s): the locker,
/// CPU-bound by the engine's per-event walk over every lock, serves its
/// socket late, the ping check (core `Engine::handle_timeout`) then judges
/// the server unresponsive before the waiting replies are read, drops the
/// connection, and every lock re-checks or expires, over and over.
mod refusals_overload {
    use super::*;

    /// Bound on one round of 2,000 tasks: a guard against hanging, not a
    /// speed target (those live in `benches/`). Measured 5.9-6.9 s in a
    /// debug build on a 2-core machine at load 10-15, and up to 57 s with
    /// five busy processes besides the suite.
    const ROUND: Duration = Duration::from_secs(180);
    /// Bound on 1,000 tasks taking turns on one name (measured 3.2 s, same
    /// conditions; 60-99 s before that change).
    const ONE_NAME: Duration = Duration::from_secs(120);

    async fn body<T: TestRt>(ctx: Ctx<T>) {
        let (_, admin, addr) = server_of(&ctx);
        let l = connect::<T>(Options::new(&addr)).await;

        for round in 0..3 {
            let tasks: Vec<_> = (0..2000)
                .map(|i| {
                    let l = l.clone();
                    T::spawn(async move {
                        let g = l.lock(&format!("refusal-overload-{round}-{i}")).await?;
                        g.unlock().await
                    })
                })
                .collect();
            let results = timed::<T, _>(
                &format!("round {round}: 2000 × lock+unlock"),
                ROUND,
                async {
                    let mut out = Vec::with_capacity(tasks.len());
                    for t in tasks {
                        out.push(t.await);
                    }
                    out
                },
            )
            .await;
            let failed: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
            assert!(
                failed.is_empty(),
                "round {round}: {} of 2000 failed, first: {:?}",
                failed.len(),
                failed.first()
            );
            no_keys_left::<T>(&admin, CLEAN).await;
        }

        let tasks: Vec<_> = (0..2000)
            .map(|i| {
                let l = l.clone();
                T::spawn(async move { l.try_lock(&format!("refusal-overload-try-{i}")).await })
            })
            .collect();
        let results = timed::<T, _>("2000 × try_lock of free names", ROUND, async {
            let mut out = Vec::with_capacity(tasks.len());
            for t in tasks {
                out.push(t.await);
            }
            out
        })
        .await;
        let not_locked = results
            .iter()
            .filter(|r| matches!(r, Err(Error::NotLocked)))
            .count();
        // `TooSlow` is a true answer when the machine is so overloaded that
        // replies come after the lease would have run out (seen once, at a
        // load of five busy processes on two cores); any other error is not.
        let too_slow = results
            .iter()
            .filter(|r| matches!(r, Err(Error::TooSlow)))
            .count();
        let errors: Vec<_> = results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .filter(|e| !matches!(e, Error::TooSlow))
            .collect();
        assert_eq!(not_locked, 0, "NotLocked on free names");
        assert!(
            errors.is_empty(),
            "{} of 2000 try_lock failed, first: {:?}",
            errors.len(),
            errors.first()
        );
        eprintln!("[{}] {too_slow} of 2000 try_lock were TooSlow", T::NAME);
        // Every other result is a guard (checked above).
        let guards: Vec<_> = results.into_iter().filter_map(Result::ok).collect();
        // Not asserted: on a starved machine 2,000 leases of 5 s may run out
        // before they are extended (then `unlock` is Ok and the keys expire).
        eprintln!(
            "[{}] {} of 2000 try_lock guards still held once all returned",
            T::NAME,
            guards.iter().filter(|g| g.is_held()).count()
        );
        timed::<T, _>("unlock 2000 guards", ROUND, async {
            for g in guards {
                g.unlock().await.expect("unlock");
            }
        })
        .await;
        no_keys_left::<T>(&admin, CLEAN).await;

        let tasks: Vec<_> = (0..1000)
            .map(|_| {
                let l = l.clone();
                T::spawn(async move {
                    let g = l.lock("refusal-overload-one-name").await?;
                    g.unlock().await
                })
            })
            .collect();
        let results = timed::<T, _>("1000 × lock+unlock of one name", ONE_NAME, async {
            let mut out = Vec::with_capacity(tasks.len());
            for t in tasks {
                out.push(t.await);
            }
            out
        })
        .await;
        let failed: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
        assert!(
            failed.is_empty(),
            "one name: {} of 1000 failed, first: {:?}",
            failed.len(),
            failed.first()
        );
        no_keys_left::<T>(&admin, CLEAN).await;
        eventually::<T>(PROMPT, "active_locks() == 0", || l.active_locks() == 0).await;
        l.close().await;
    }

    scenario!(
        tokio,
        TokioRt,
        Topology::Server(&[]),
        Variant::caching(true),
        Duration::from_secs(600),
        body
    );
}

/// Case 8: names over [`tracklock_core::MAX_NAME_LEN`] (a 16 MiB one) are
/// refused with `NameTooLong` before anything is sent; a name at the limit
/// (1 MiB, about 6 MiB per attempt) is acquired and released without
/// leftovers within [`HUGE`] — which also checks that a long write counts
/// as a sign of life for the connection's health check.
mod refusals_huge_name {
    use super::*;

    /// Generous for a debug build on a busy 2-core machine: a 1 MiB name
    /// moves about 6 MiB per attempt.
    const HUGE: Duration = Duration::from_secs(60);

    fn dbsize(admin: &Admin) -> i64 {
        admin.cmd("DBSIZE", &[])
    }

    async fn body<T: TestRt>(ctx: Ctx<T>) {
        let (_, admin, addr) = server_of(&ctx);
        let l = connect::<T>(Options::new(&addr).validity(Duration::from_secs(30))).await;
        // Over the limit: refused before anything is sent.
        let name = "n".repeat(16 << 20);
        for op in ["try_lock", "lock", "force_lock"] {
            let r = match op {
                "lock" => l.lock(&name).await,
                "try_lock" => l.try_lock(&name).await,
                _ => l.force_lock(&name).await,
            };
            assert!(
                matches!(r, Err(Error::NameTooLong)),
                "{op} of a 16 MiB name: {r:?}"
            );
            assert_eq!(dbsize(&admin), 0, "{op}: nothing written");
        }
        // At the limit: it locks, and unlock leaves nothing.
        let name = "n".repeat(tracklock_core::MAX_NAME_LEN);
        for op in ["try_lock", "lock"] {
            let fut = async {
                if op == "lock" {
                    l.lock(&name).await
                } else {
                    l.try_lock(&name).await
                }
            };
            let g = timed::<T, _>(&format!("{op} of a 1 MiB name"), HUGE, fut)
                .await
                .unwrap_or_else(|e| panic!("{op} of a 1 MiB name: {e:?} ({e})"));
            assert!(g.is_held());
            // Acquired at the majority; the third key's reply may still be
            // on its way (1 MiB each).
            eventually::<T>(PROMPT, "all three keys written", || dbsize(&admin) == 3).await;
            timed::<T, _>(&format!("unlock of a 1 MiB name ({op})"), HUGE, g.unlock())
                .await
                .unwrap_or_else(|e| panic!("{op}: unlock: {e:?} ({e})"));
            assert_eq!(dbsize(&admin), 0, "{op}: keys left after unlock");
        }
        eventually::<T>(PROMPT, "active_locks() == 0", || l.active_locks() == 0).await;
        l.close().await;
    }

    tokio_and_smol!(Topology::Server(&[]), body, Duration::from_secs(300));
}

/// Case 9: A server blocked by `DEBUG SLEEP` while a lock is held: a `try_lock`
/// of a free name waits for the answer and succeeds, never `NotLocked`.
mod refusals_debug_sleep {
    use super::*;

    async fn body<T: TestRt>(ctx: Ctx<T>) {
        let (server, admin, addr) = server_of(&ctx);
        let l = connect::<T>(Options::new(&addr).validity(VALIDITY)).await;
        let held = l.lock("refusal-sleep-held").await.expect("lock");
        for round in 0..3 {
            let sleeper = server.admin();
            let t = std::thread::spawn(move || {
                let _: String = sleeper.cmd("DEBUG", &["SLEEP", "0.5"]);
            });
            // Let DEBUG SLEEP reach the server first.
            std::thread::sleep(Duration::from_millis(50));
            let name = format!("refusal-sleep-free-{round}");
            let r =
                timed::<T, _>("try_lock during DEBUG SLEEP 0.5", PROMPT, l.try_lock(&name)).await;
            let g = r.unwrap_or_else(|e| panic!("try_lock during DEBUG SLEEP: {e:?} ({e})"));
            t.join().expect("DEBUG SLEEP");
            assert!(g.is_held());
            assert!(held.is_held(), "the held lock survives a 0.5 s stall");
            g.unlock().await.expect("unlock");
        }
        held.unlock().await.expect("unlock");
        no_keys_left::<T>(&admin, CLEAN).await;
        l.close().await;
    }

    tokio_and_smol!(
        Topology::Server(&["--enable-debug-command", "yes"]),
        body,
        LIMIT
    );
}

/// Case 10: A transient refusal (`BUSY`: a long script): `try_lock` and
/// `force_lock` report it, `lock()` waits through it and succeeds once the
/// script is killed.
mod refused_transient_busy {
    use super::*;

    async fn body<T: TestRt>(ctx: Ctx<T>) {
        let (server, admin, addr) = server_of(&ctx);
        let l = connect::<T>(Options::new(&addr).validity(VALIDITY)).await;
        let runner = server.admin();
        let script =
            std::thread::spawn(move || runner.try_cmd::<i64>("EVAL", &["while true do end", "0"]));
        eventually::<T>(PROMPT, "server BUSY", || {
            let r = admin.try_cmd::<String>("PING", &[]);
            matches!(&r, Err(e) if e.to_string().contains("BUSY"))
        })
        .await;
        let r = timed::<T, _>("BUSY: try_lock", PROMPT, l.try_lock("refused-busy-try")).await;
        assert_refused("try_lock", r, &addr, Command::Set, "BUSY");
        let r = timed::<T, _>(
            "BUSY: force_lock",
            PROMPT,
            l.force_lock("refused-busy-force"),
        )
        .await;
        assert_refused("force_lock", r, &addr, Command::Set, "BUSY");
        let waiter = {
            let l = l.clone();
            T::spawn(async move {
                let g = l.lock("refused-busy-wait").await?;
                g.unlock().await
            })
        };
        T::sleep(Duration::from_millis(500)).await;
        assert!(!waiter.is_finished(), "lock() waits through BUSY");
        let _: String = admin.cmd("SCRIPT", &["KILL"]);
        let killed = script.join().expect("script thread");
        assert!(killed.is_err(), "the script was killed");
        timed::<T, _>("lock() once the script is killed", PROMPT, waiter)
            .await
            .unwrap_or_else(|e| panic!("lock() after BUSY: {e:?} ({e})"));
        no_keys_left::<T>(&admin, CLEAN).await;
        eventually::<T>(PROMPT, "active_locks() == 0", || l.active_locks() == 0).await;
        l.close().await;
    }

    tokio_and_smol!(
        Topology::Server(&["--busy-reply-threshold", "100"]),
        body,
        LIMIT
    );
}
