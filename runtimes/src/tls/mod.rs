//! TLS (feature `tls`): rustls, with its `ring` provider, over whatever
//! stream the [`Runtime`](crate::Runtime) connects.
//!
//! # Design
//!
//! One runtime-agnostic layer rather than one TLS integration per runtime
//! (`tokio-rustls`, `futures-rustls`, glommio's own): [`TlsStream`] drives a
//! sans-I/O [`rustls::ClientConnection`] (`read_tls`, `write_tls`,
//! `process_new_packets`, `reader`, `writer`) over any
//! `embedded_io_async::{Read, Write}` stream, and is one itself. The driver
//! connects TCP with the runtime, and when the options ask for TLS runs the
//! TLS handshake within the same connect timeout before handing the stream
//! to the engine. So tokio, smol, glommio and a user's own `Runtime` get
//! TLS with no code of their own, and the cancel-safety the driver needs
//! (it drops pending reads and writes when a timer wins) is proven once,
//! here, instead of per adapter.
//!
//! The rustls configuration is built once per locker (when it connects:
//! PEM files are read then) and shared by its connections. Each node's
//! connection verifies the server name given by
//! [`Options::tls_server_name`](crate::Options::tls_server_name), or else
//! the host of the address it dials, a Redis Cluster's discovered nodes
//! included.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::error::TlsFailure;
use crate::Error;

mod stream;

pub(crate) use stream::TlsStream;

/// PEM input: a file, or its contents.
#[derive(Clone)]
pub(crate) enum Pem {
    File(PathBuf),
    Bytes(Vec<u8>),
}

impl fmt::Debug for Pem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pem::File(p) => write!(f, "{}", p.display()),
            Pem::Bytes(b) => write!(f, "<{} bytes of PEM>", b.len()),
        }
    }
}

impl Pem {
    fn describe(&self, what: &str) -> String {
        match self {
            Pem::File(p) => format!("{what} file {}", p.display()),
            Pem::Bytes(_) => format!("{what} (PEM bytes)"),
        }
    }

    fn certs(&self, what: &str) -> Result<Vec<CertificateDer<'static>>, Error> {
        let bad = |e: rustls::pki_types::pem::Error| setup(self.describe(what), e);
        let certs: Vec<_> = match self {
            Pem::File(p) => CertificateDer::pem_file_iter(p)
                .map_err(bad)?
                .collect::<Result<_, _>>()
                .map_err(bad)?,
            Pem::Bytes(b) => CertificateDer::pem_slice_iter(b)
                .collect::<Result<_, _>>()
                .map_err(bad)?,
        };
        if certs.is_empty() {
            return Err(setup(
                self.describe(what),
                "no CERTIFICATE section in the PEM input",
            ));
        }
        Ok(certs)
    }

    fn key(&self, what: &str) -> Result<PrivateKeyDer<'static>, Error> {
        let bad = |e: rustls::pki_types::pem::Error| setup(self.describe(what), e);
        match self {
            Pem::File(p) => PrivateKeyDer::from_pem_file(p).map_err(bad),
            Pem::Bytes(b) => PrivateKeyDer::from_pem_slice(b).map_err(bad),
        }
    }
}

/// [`Error::TlsSetup`] for `what`.
fn setup(what: String, e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Error {
    Error::TlsSetup {
        what,
        source: e.into(),
    }
}

/// The TLS part of [`crate::Options`].
#[derive(Clone, Debug, Default)]
pub(crate) struct TlsSettings {
    /// Trust the platform's roots: `None` means "unless a CA is given".
    pub(crate) platform_roots: Option<bool>,
    pub(crate) cas: Vec<Pem>,
    /// Certificate chain and key for mutual TLS.
    pub(crate) client: Option<(Pem, Pem)>,
    pub(crate) server_name: Option<String>,
    pub(crate) danger_accept_invalid: bool,
}

/// What a locker's connections need for TLS: the rustls configuration and
/// the name to verify when it is not each address's host.
pub(crate) struct Connector {
    pub(crate) config: Arc<ClientConfig>,
    server_name: Option<ServerName<'static>>,
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connector")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl TlsSettings {
    /// Reads the certificates and builds the rustls configuration.
    pub(crate) fn connector(&self) -> Result<Connector, Error> {
        let server_name = match &self.server_name {
            None => None,
            Some(n) => Some(
                ServerName::try_from(n.clone())
                    .map_err(|e| setup(format!("server name {n:?}"), e))?,
            ),
        };
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| setup("protocol versions".into(), e))?;
        let builder = if self.danger_accept_invalid {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnything(provider())))
        } else {
            let mut roots = RootCertStore::empty();
            if self.platform_roots.unwrap_or(self.cas.is_empty()) {
                let found = rustls_native_certs::load_native_certs();
                let (added, _) = roots.add_parsable_certificates(found.certs);
                if added == 0 {
                    let why: Box<dyn std::error::Error + Send + Sync> =
                        match found.errors.into_iter().next() {
                            Some(e) => Box::new(e),
                            None => "none found".into(),
                        };
                    return Err(setup("the platform's root certificates".into(), why));
                }
            }
            for ca in &self.cas {
                for cert in ca.certs("CA certificate")? {
                    roots
                        .add(cert)
                        .map_err(|e| setup(ca.describe("CA certificate"), e))?;
                }
            }
            builder.with_root_certificates(roots)
        };
        let config = match &self.client {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let chain = cert.certs("client certificate")?;
                let key = key.key("client key")?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| setup(cert.describe("client certificate and key"), e))?
            }
        };
        Ok(Connector {
            config: Arc::new(config),
            server_name,
        })
    }
}

impl Connector {
    /// The name to verify for a node whose host is `host` (IPv6 without
    /// brackets): the configured override, else the host (an IP address
    /// is verified against the certificate's IP SANs).
    pub(crate) fn server_name(&self, host: &str) -> Result<ServerName<'static>, TlsFailure> {
        match &self.server_name {
            Some(n) => Ok(n.clone()),
            None => ServerName::try_from(host.to_owned()).map_err(|_| TlsFailure::Other),
        }
    }
}

/// The rustls error inside an `io::Error` made by
/// [`stream::tls_io_error`], if any.
pub(crate) fn rustls_error(e: &std::io::Error) -> Option<&rustls::Error> {
    e.get_ref()?.downcast_ref::<rustls::Error>()
}

/// What a rustls error means for the user.
pub(crate) fn classify(e: &rustls::Error) -> TlsFailure {
    use rustls::{AlertDescription as A, CertificateError as C, Error as E};
    match e {
        E::InvalidCertificate(c) => match c {
            C::UnknownIssuer => TlsFailure::UnknownIssuer,
            C::NotValidForName | C::NotValidForNameContext { .. } => TlsFailure::NameMismatch,
            C::Expired
            | C::ExpiredContext { .. }
            | C::NotValidYet
            | C::NotValidYetContext { .. } => TlsFailure::Expired,
            _ => TlsFailure::BadCertificate,
        },
        E::AlertReceived(
            A::CertificateRequired
            | A::BadCertificate
            | A::UnknownCA
            | A::CertificateUnknown
            | A::CertificateExpired
            | A::CertificateRevoked
            | A::UnsupportedCertificate
            | A::AccessDenied,
        ) => TlsFailure::ClientCertificateRefused,
        E::InvalidMessage(_) => TlsFailure::NotTls,
        _ => TlsFailure::Other,
    }
}

/// The verifier of
/// [`Options::danger_accept_invalid_certificates`](crate::Options::danger_accept_invalid_certificates):
/// any certificate, any name; handshake signatures are still checked.
#[derive(Debug)]
struct AcceptAnything(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnything {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::{AlertDescription as A, CertificateError as C, Error as E};

    #[test]
    fn failures_are_classified() {
        for (e, want) in [
            (
                E::InvalidCertificate(C::UnknownIssuer),
                TlsFailure::UnknownIssuer,
            ),
            (
                E::InvalidCertificate(C::NotValidForName),
                TlsFailure::NameMismatch,
            ),
            (E::InvalidCertificate(C::Expired), TlsFailure::Expired),
            (E::InvalidCertificate(C::NotValidYet), TlsFailure::Expired),
            (
                E::InvalidCertificate(C::BadEncoding),
                TlsFailure::BadCertificate,
            ),
            (
                E::AlertReceived(A::CertificateRequired),
                TlsFailure::ClientCertificateRefused,
            ),
            (
                E::AlertReceived(A::BadCertificate),
                TlsFailure::ClientCertificateRefused,
            ),
            (
                E::InvalidMessage(rustls::InvalidMessage::InvalidContentType),
                TlsFailure::NotTls,
            ),
            (E::DecryptError, TlsFailure::Other),
        ] {
            assert_eq!(classify(&e), want, "{e}");
            let io = stream::tls_io_error(e);
            assert!(rustls_error(&io).is_some());
        }
    }

    #[test]
    fn bad_pem_is_a_setup_error() {
        let s = TlsSettings {
            cas: vec![Pem::Bytes(b"nothing here".to_vec())],
            ..TlsSettings::default()
        };
        assert!(matches!(s.connector(), Err(Error::TlsSetup { .. })));
        let s = TlsSettings {
            cas: vec![Pem::File("/nonexistent/ca.pem".into())],
            ..TlsSettings::default()
        };
        let e = s.connector().unwrap_err();
        assert!(e.to_string().contains("/nonexistent/ca.pem"), "{e}");
        let s = TlsSettings {
            danger_accept_invalid: true,
            server_name: Some("bad name!".into()),
            ..TlsSettings::default()
        };
        assert!(matches!(s.connector(), Err(Error::TlsSetup { .. })));
    }
}
