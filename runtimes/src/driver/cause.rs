//! Why a connection ended, and the [`Error`] that a failed connection
//! attempt reports.

use std::io;

use tracklock_core::NodeError;

use crate::error::TlsFailure;
use crate::Error;

/// Why a connection ended.
pub(crate) enum Cause {
    Io(io::Error),
    Eof,
    Node(NodeError),
    /// The handshake did not finish within the connect timeout.
    HandshakeTimeout,
    TooLarge,
    /// TLS failed (or, on a plain connection, looks like a TLS port).
    Tls(TlsFailure, Box<dyn std::error::Error + Send + Sync>),
    /// Sentinel mode: no master to connect to ([`Error::Sentinel`]).
    Resolve(Error),
}

impl Cause {
    /// Sentinel mode: whether a first connection that failed this way makes
    /// `connect` fail at once. Misconfigurations do; what a failover under
    /// way looks like (a replica, a master that does not answer yet) is
    /// retried until the connect timeout.
    pub(super) fn ends_sentinel_startup(&self) -> bool {
        match self {
            Cause::Resolve(_) | Cause::Tls(..) | Cause::TooLarge => true,
            Cause::Node(e) => matches!(
                e,
                NodeError::Handshake(_) | NodeError::Resp3Unsupported(_) | NodeError::Topology(_)
            ),
            _ => false,
        }
    }

    /// A plain connection that failed in its handshake: reported as
    /// [`TlsFailure::ServerExpectsTls`] when the server sent a TLS alert, or
    /// closed or reset the connection before sending anything (what a Redis
    /// TLS port does to a plain client). `got_bytes`: the connection
    /// received bytes, `first` holds their first two.
    pub(super) fn plain_on_tls(self, got_bytes: bool, first: [u8; 2]) -> Cause {
        let alert = got_bytes && first == [0x15, 0x03];
        let silent_close = !got_bytes
            && match &self {
                Cause::Eof => true,
                Cause::Io(e) => matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionReset
                        | io::ErrorKind::ConnectionAborted
                        | io::ErrorKind::BrokenPipe
                ),
                _ => false,
            };
        if !(alert || silent_close) {
            return self;
        }
        let source: Box<dyn std::error::Error + Send + Sync> = match self {
            Cause::Io(e) => Box::new(e),
            _ if alert => "the server answered with a TLS alert".into(),
            _ => "the server closed the connection before answering".into(),
        };
        Cause::Tls(TlsFailure::ServerExpectsTls, source)
    }

    pub(crate) fn into_error(self, addr: &str) -> Error {
        let addr = addr.to_owned();
        match self {
            #[cfg(feature = "tls")]
            Cause::Io(source) => {
                match crate::tls::rustls_error(&source).map(crate::tls::classify) {
                    Some(failure) => Error::Tls {
                        addr,
                        failure,
                        source: source.into_inner().unwrap_or_else(|| "TLS error".into()),
                    },
                    None => Error::Connect { addr, source },
                }
            }
            #[cfg(not(feature = "tls"))]
            Cause::Io(source) => Error::Connect { addr, source },
            Cause::Tls(failure, source) => Error::Tls {
                addr,
                failure,
                source,
            },
            Cause::Eof => Error::Connect {
                addr,
                source: io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the server closed the connection during the handshake",
                ),
            },
            Cause::HandshakeTimeout => Error::Connect {
                addr,
                source: io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the handshake did not finish within the connect timeout",
                ),
            },
            Cause::Node(source) => Error::Node { addr, source },
            Cause::Resolve(e) => e,
            Cause::TooLarge => Error::Node {
                addr,
                source: NodeError::Protocol("a reply exceeded the 16 MiB read limit"),
            },
        }
    }
}
