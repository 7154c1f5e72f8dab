//! TLS (feature `tls`, rustls) against real `redis-server` TLS ports, on
//! tokio, smol and glommio: certificates from a throwaway CA made with the
//! `openssl` tool ([`TlsCerts`]). Every test name contains `tls`:
//! `cargo test -p tracklock-tests tls`.
//!
//! The servers keep their plain port open for the kit's admin client (which
//! deletes keys behind the locker's back); the lockers use the TLS port.

use std::time::{Duration, Instant};

use tracklock::{Error, LostReason, Options, TlsFailure};
use tracklock_tests::topo::*;
use tracklock_tests::{
    each_runtime, scenarios, Ctx, RedisCluster, RedisServer, TestRt, TlsCerts, Topology, Variant,
    VALIDITY,
};

/// Connect timeout of the failure tests: failures must come within it.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Slack over [`CONNECT_TIMEOUT`] for a busy machine.
const SLACK: Duration = Duration::from_secs(3);

/// A TLS server with `certs` (no client certificates required).
fn tls_server(certs: &TlsCerts) -> RedisServer {
    RedisServer::try_start_tls(certs, false, false, &[]).unwrap_or_else(|e| panic!("{e}"))
}

/// Options for the TLS port of `s`, trusting `certs`' CA.
fn tls_opts(s: &RedisServer, certs: &TlsCerts) -> Options {
    Options::new(s.tls_addr())
        .tls_ca_file(certs.ca_cert())
        .validity(VALIDITY)
}

/// `connect` with `opts` must fail within [`CONNECT_TIMEOUT`] (plus
/// [`SLACK`]); returns the error.
async fn connect_fails<T: TestRt>(opts: Options) -> Error {
    connect_fails_within::<T>(opts, CONNECT_TIMEOUT, SLACK).await
}

/// The TLS failure of `e` (panics on any other error).
fn failure(e: &Error) -> TlsFailure {
    match e {
        Error::Tls { failure, .. } => *failure,
        other => panic!("expected Error::Tls, got {other} ({other:?})"),
    }
}

/// The rustls error under `e`'s source.
fn rustls_source(e: &Error) -> Option<&rustls::Error> {
    std::error::Error::source(e)?.downcast_ref::<rustls::Error>()
}

/// `try_lock` of a name held elsewhere is `NotLocked`. `connect` returns
/// with a majority of the nodes ready: one still connecting makes it
/// `Unavailable` for a moment.
async fn expect_not_locked<T: TestRt>(l: &tracklock::Locker<T::R>, name: &str) {
    let start = Instant::now();
    loop {
        match l.try_lock(name).await {
            Err(Error::NotLocked) => return,
            Err(Error::Unavailable { .. }) if start.elapsed() < Duration::from_secs(10) => {
                T::sleep(Duration::from_millis(50)).await;
            }
            other => panic!("try_lock of a held name: {other:?}"),
        }
    }
}

mod tls_lock_exclusion_loss {
    use super::*;

    /// Lock, exclusion and release over `rediss://` with a custom CA, and
    /// loss detection: deleting the keys (on the plain port) reaches the
    /// holder as an invalidation push over TLS.
    async fn body<T: TestRt>(_: Ctx<T>) {
        let certs = TlsCerts::generate();
        let s = tls_server(&certs);
        let admin = s.admin();
        let url = format!("rediss://127.0.0.1:{}/0", s.tls_port().unwrap());
        let opts = Options::from_url(&url)
            .expect("rediss URL")
            .tls_ca_file(certs.ca_cert())
            .validity(VALIDITY);
        assert!(opts.is_tls());
        let lockers = connect_n::<T>(&opts, 3).await;
        assert_exclusive::<T>(&lockers, &fresh("tls-excl"), 20).await;

        let name = fresh("tls-loss");
        let g = lock_within::<T>(&lockers[0], &name, Duration::from_secs(5)).await;
        assert!(
            keys(&name).iter().any(|k| admin.get(k).is_some()),
            "the keys are on the server"
        );
        let bound = Variant::caching(true).loss_bound_at(admin.rtt());
        admin.del(&keys(&name));
        let (reason, after) = expect_lost::<T>(&g, VALIDITY).await;
        assert_eq!(reason, LostReason::KeysChanged, "after {after:?}");
        assert!(
            after < bound,
            "loss told after {after:?} (bound {bound:?}): not by invalidation"
        );
        drop(g);
        let g = lock_within::<T>(&lockers[1], &name, Duration::from_secs(5)).await;
        g.unlock().await.expect("unlock");
        close_all(&lockers).await;
    }

    each_runtime!(Topology::Own, body, Duration::from_secs(60));
}

mod tls_mutual {
    use super::*;

    /// `--tls-auth-clients yes`: a client certificate gets in; without one
    /// the server's refusal is a typed error within the connect timeout.
    async fn body<T: TestRt>(_: Ctx<T>) {
        let certs = TlsCerts::generate();
        let s =
            RedisServer::try_start_tls(&certs, true, false, &[]).unwrap_or_else(|e| panic!("{e}"));
        let with_cert =
            tls_opts(&s, &certs).tls_client_cert_files(certs.client_cert(), certs.client_key());
        let l = connect::<T>(with_cert).await;
        let g = lock_within::<T>(&l, &fresh("tls-mtls"), Duration::from_secs(5)).await;
        g.unlock().await.expect("unlock");
        l.close().await;

        let e = connect_fails::<T>(tls_opts(&s, &certs)).await;
        assert_eq!(failure(&e), TlsFailure::ClientCertificateRefused, "{e}");
        assert!(
            rustls_source(&e).is_some(),
            "the rustls error is the source: {e:?}"
        );
    }

    each_runtime!(Topology::Own, body, Duration::from_secs(60));
}

mod tls_verification_failures {
    use super::*;

    /// A CA that did not sign the server's certificate: unknown issuer. A
    /// certificate for `localhost` only, reached by IP: name mismatch; the
    /// same with `tls_server_name("localhost")` works. And the dangerous
    /// switch accepts the unknown CA.
    async fn body<T: TestRt>(_: Ctx<T>) {
        let certs = TlsCerts::generate();
        let other = TlsCerts::generate();
        let s = tls_server(&certs);
        let wrong_ca = Options::new(s.tls_addr()).tls_ca_file(other.ca_cert());
        let e = connect_fails::<T>(wrong_ca.clone()).await;
        assert_eq!(failure(&e), TlsFailure::UnknownIssuer, "{e}");
        assert!(matches!(
            rustls_source(&e),
            Some(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer
            ))
        ));

        let l = connect::<T>(wrong_ca.danger_accept_invalid_certificates(true)).await;
        let g = lock_within::<T>(&l, &fresh("tls-danger"), Duration::from_secs(5)).await;
        g.unlock().await.expect("unlock");
        l.close().await;

        let local =
            RedisServer::try_start_tls(&certs, false, true, &[]).unwrap_or_else(|e| panic!("{e}"));
        let e = connect_fails::<T>(tls_opts(&local, &certs)).await;
        assert_eq!(failure(&e), TlsFailure::NameMismatch, "{e}");
        let l = connect::<T>(tls_opts(&local, &certs).tls_server_name("localhost")).await;
        let g = lock_within::<T>(&l, &fresh("tls-name"), Duration::from_secs(5)).await;
        g.unlock().await.expect("unlock");
        l.close().await;
    }

    each_runtime!(Topology::Own, body, Duration::from_secs(60));
}

mod tls_port_mismatch {
    use super::*;

    /// A TLS client on a plain port and a plain client on a TLS port both
    /// fail with typed errors within the connect timeout (no hang).
    async fn body<T: TestRt>(_: Ctx<T>) {
        let certs = TlsCerts::generate();
        let s = tls_server(&certs);
        let e = connect_fails::<T>(Options::new(s.addr()).tls_ca_file(certs.ca_cert())).await;
        assert!(
            matches!(
                failure(&e),
                TlsFailure::NotTls | TlsFailure::HandshakeTimeout
            ),
            "TLS client, plain port: {e}"
        );
        let e = connect_fails::<T>(Options::new(s.tls_addr())).await;
        assert_eq!(
            failure(&e),
            TlsFailure::ServerExpectsTls,
            "plain client, TLS port: {e}"
        );
    }

    each_runtime!(Topology::Own, body, Duration::from_secs(60));
}

mod tls_setup_errors {
    use super::*;

    /// Bad TLS options are refused before any connection.
    async fn body<T: TestRt>(_: Ctx<T>) {
        let dir = std::env::temp_dir().join(format!("tracklock-badpem-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let garbage = dir.join("garbage.pem");
        std::fs::write(&garbage, "not a PEM file\n").unwrap();
        for opts in [
            Options::new("127.0.0.1:1").tls_ca_file(dir.join("missing.pem")),
            Options::new("127.0.0.1:1").tls_ca_file(&garbage),
            Options::new("127.0.0.1:1").tls_ca_pem("-----BEGIN CERTIFICATE-----\nAAAA\n"),
            Options::new("127.0.0.1:1")
                .tls(true)
                .tls_client_cert_files(&garbage, &garbage),
            Options::new("127.0.0.1:1")
                .tls(true)
                .tls_server_name("not a name!"),
        ] {
            match T::connect(opts.clone()).await {
                Err(Error::TlsSetup { .. }) => {}
                Err(e) => panic!("{opts:?}: expected TlsSetup, got {e} ({e:?})"),
                Ok(_) => panic!("{opts:?}: connected"),
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    scenarios!(Topology::Own, body, Duration::from_secs(30);
        tokio: TokioRt, Variant::caching(true));
}

mod tls_instances {
    use super::*;

    /// Three instances over TLS: a lock round, loss by deleting the keys.
    async fn body<T: TestRt>(_: Ctx<T>) {
        let certs = TlsCerts::generate();
        let servers: Vec<RedisServer> = (0..3).map(|_| tls_server(&certs)).collect();
        let opts = Options::instances(servers.iter().map(RedisServer::tls_addr))
            .tls_ca_file(certs.ca_cert())
            .validity(VALIDITY);
        let a = connect::<T>(opts.clone()).await;
        let b = connect::<T>(opts).await;
        let name = fresh("tls-inst");
        let g = lock_within::<T>(&a, &name, Duration::from_secs(5)).await;
        expect_not_locked::<T>(&b, &name).await;
        for (i, k) in keys(&name).iter().enumerate() {
            servers[i % 3].admin().del(std::slice::from_ref(k));
        }
        let (reason, _) = expect_lost::<T>(&g, VALIDITY).await;
        assert_eq!(reason, LostReason::KeysChanged);
        drop(g);
        let g = lock_within::<T>(&b, &name, Duration::from_secs(5)).await;
        g.unlock().await.expect("unlock");
        close_all(&[a, b]).await;
    }

    each_runtime!(Topology::Own, body, Duration::from_secs(60));
}

mod tls_cluster {
    use super::*;

    /// A Redis Cluster over TLS (`tls-cluster`, `tls-replication`), reached
    /// through one seed: the other masters are discovered from `CLUSTER
    /// SHARDS` at their TLS ports and dialled with TLS (verified against
    /// their host, 127.0.0.1). Locks on names spread over the masters.
    async fn body<T: TestRt>(_: Ctx<T>) {
        let c = RedisCluster::try_start_tls(3, 1).unwrap_or_else(|e| panic!("{e}"));
        let certs = c.tls_certs().expect("TLS cluster");
        let seed = c.tls_seeds()[0].clone();
        let opts = Options::cluster([seed])
            .tls_ca_file(certs.ca_cert())
            .validity(VALIDITY);
        let a = connect::<T>(opts.clone()).await;
        let b = connect::<T>(opts).await;
        for i in 0..6 {
            let name = fresh(&format!("tls-cl-{i}"));
            let g = lock_within::<T>(&a, &name, Duration::from_secs(10)).await;
            expect_not_locked::<T>(&b, &name).await;
            g.unlock().await.expect("unlock");
            let g = lock_within::<T>(&b, &name, Duration::from_secs(10)).await;
            g.unlock().await.expect("unlock");
        }
        let stats = a.stats();
        let tls_ports: Vec<String> = c.tls_seeds();
        assert!(
            stats
                .nodes
                .iter()
                .filter(|n| n.state == tracklock::ConnectionState::Ready)
                .all(|n| tls_ports.contains(&n.addr)),
            "every connected node is a TLS port: {stats:?}"
        );
        close_all(&[a, b]).await;
    }

    each_runtime!(Topology::Own, body, Duration::from_secs(180));
}
