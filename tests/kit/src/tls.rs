//! Throwaway TLS material for TLS servers: a CA and certificates made with
//! the `openssl` command-line tool (the kit stays std-only), and the
//! `redis-server` arguments that use them.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

static SEQ: AtomicU64 = AtomicU64::new(0);

/// A certificate authority and certificates signed by it, in a temporary
/// directory removed on drop. All keys are ECDSA P-256, PEM (PKCS#8).
///
/// - `server.crt`: subject alternative names `DNS:localhost` and
///   `IP:127.0.0.1`, usable for server and client authentication (a
///   cluster node or replica is the client of another);
/// - `localhost.crt`: `DNS:localhost` only (connecting by IP fails its
///   name check);
/// - `client.crt`: a client certificate (mutual TLS).
#[derive(Debug)]
pub struct TlsCerts {
    dir: PathBuf,
    /// Makes the CA's name unique: two CAs of one name look like one CA
    /// with a bad signature to a verifier, not like an unknown issuer.
    id: String,
}

impl TlsCerts {
    /// Generates a fresh CA and the certificates. Fails when `openssl`
    /// cannot be run (the message says so).
    pub fn try_generate() -> Result<TlsCerts, String> {
        let id = format!(
            "{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let dir = std::env::temp_dir().join(format!("tracklock-tls-{id}"));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let certs = TlsCerts { dir, id };
        certs.make()?;
        Ok(certs)
    }

    /// Like [`TlsCerts::try_generate`]; panics on failure.
    pub fn generate() -> TlsCerts {
        TlsCerts::try_generate().unwrap_or_else(|e| panic!("{e}"))
    }

    fn make(&self) -> Result<(), String> {
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
        let d = |f: &str| self.dir.join(f).display().to_string();
        openssl(&[
            &["req", "-x509", "-new", "-nodes"][..],
            &ec,
            &["-keyout", &d("ca.key"), "-out", &d("ca.crt")],
            &[
                "-days",
                "3650",
                "-subj",
                &format!("/CN=tracklock test CA {}", self.id),
            ],
        ])?;
        for (name, ext) in [
            (
                "server",
                "subjectAltName=DNS:localhost,IP:127.0.0.1\n\
                 extendedKeyUsage=serverAuth,clientAuth\n",
            ),
            (
                "localhost",
                "subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n",
            ),
            ("client", "extendedKeyUsage=clientAuth\n"),
        ] {
            std::fs::write(d(&format!("{name}.ext")), ext).map_err(|e| e.to_string())?;
            openssl(&[
                &["req", "-new", "-nodes"][..],
                &ec,
                &["-keyout", &d(&format!("{name}.key"))],
                &["-out", &d(&format!("{name}.csr"))],
                &["-subj", &format!("/CN=tracklock test {name}")],
            ])?;
            openssl(&[
                &["x509", "-req", "-in", &d(&format!("{name}.csr"))][..],
                &[
                    "-CA",
                    &d("ca.crt"),
                    "-CAkey",
                    &d("ca.key"),
                    "-CAcreateserial",
                ],
                &["-out", &d(&format!("{name}.crt")), "-days", "365"],
                &["-extfile", &d(&format!("{name}.ext"))],
            ])?;
        }
        Ok(())
    }

    /// The directory holding the files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The CA certificate (PEM), to trust.
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }

    /// The server certificate (SANs `localhost`, `127.0.0.1`).
    pub fn server_cert(&self) -> PathBuf {
        self.dir.join("server.crt")
    }

    /// The server certificate's key.
    pub fn server_key(&self) -> PathBuf {
        self.dir.join("server.key")
    }

    /// A server certificate for `localhost` only (no IP SAN).
    pub fn localhost_cert(&self) -> PathBuf {
        self.dir.join("localhost.crt")
    }

    /// The key of [`TlsCerts::localhost_cert`].
    pub fn localhost_key(&self) -> PathBuf {
        self.dir.join("localhost.key")
    }

    /// The client certificate (mutual TLS).
    pub fn client_cert(&self) -> PathBuf {
        self.dir.join("client.crt")
    }

    /// The client certificate's key.
    pub fn client_key(&self) -> PathBuf {
        self.dir.join("client.key")
    }

    /// `redis-server` arguments for a TLS port `tls_port` with these
    /// certificates: `--tls-port`, the certificate (the `localhost`-only one
    /// when `localhost_only`), key and CA, and `--tls-auth-clients yes|no`
    /// (mutual TLS). The plain port stays open (the kit's admin client and
    /// readiness checks use it).
    pub fn server_args(
        &self,
        tls_port: u16,
        auth_clients: bool,
        localhost_only: bool,
    ) -> Vec<String> {
        let (cert, key) = if localhost_only {
            (self.localhost_cert(), self.localhost_key())
        } else {
            (self.server_cert(), self.server_key())
        };
        [
            "--tls-port".to_owned(),
            tls_port.to_string(),
            "--tls-cert-file".to_owned(),
            cert.display().to_string(),
            "--tls-key-file".to_owned(),
            key.display().to_string(),
            "--tls-ca-cert-file".to_owned(),
            self.ca_cert().display().to_string(),
            "--tls-auth-clients".to_owned(),
            if auth_clients { "yes" } else { "no" }.to_owned(),
        ]
        .into()
    }
}

impl Drop for TlsCerts {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `openssl` with the concatenated argument groups.
fn openssl(groups: &[&[&str]]) -> Result<(), String> {
    let args: Vec<&str> = groups.iter().flat_map(|g| g.iter().copied()).collect();
    let out = Command::new("openssl")
        .args(&args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run openssl (install it: apt-get install openssl): {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "openssl {}: {}; {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}
