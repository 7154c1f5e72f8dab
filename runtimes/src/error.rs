//! The error types of the public API.

use std::io;

use tracklock_core::{Command, ConfigError, LockError, NodeError};

/// An address list that cannot work for its mode, found by
/// [`crate::Options::to_config`] (so before connecting).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddressError {
    /// No address at all.
    #[error("no address given")]
    Empty,
    /// An address that is not `host:port` (IPv6 hosts in brackets, port 1 to
    /// 65535).
    #[error("{addr:?} is not host:port: {reason}")]
    Invalid {
        /// The address as given.
        addr: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The same `host:port` twice (hosts compared case-insensitively; two
    /// names of one server are not detected).
    #[error("{0} is listed twice")]
    Duplicate(String),
    /// Sentinel mode without a master name, or with one that has spaces or
    /// control characters.
    #[error("the sentinel master name must be non-empty, without spaces or control characters")]
    MasterName,
    /// Sentinel options (`sentinel_username`, `sentinel_password`) outside
    /// sentinel mode.
    #[error("sentinel options set, but the mode is not sentinel (use Options::sentinel)")]
    NotSentinel,
    /// More addresses than the mode takes: one in single mode, at most
    /// 65535 otherwise.
    #[error("too many addresses ({0}) for the mode")]
    TooMany(usize),
    /// Instances mode with more instances than a lock has keys
    /// (`2 * key_majority - 1`): some instance would never hold a key.
    #[error(
        "{instances} instances but a lock has only {keys} keys (2 * key_majority - 1): \
         some instance would never hold a key"
    )]
    UnusedInstances {
        /// Instances given.
        instances: usize,
        /// Keys per lock.
        keys: usize,
    },
    /// Instances mode where one instance holds a majority of a lock's keys,
    /// so losing that one instance loses every lock (always the case with
    /// two instances). Use at least three instances, at most `keys`.
    #[error(
        "with {instances} instances one instance holds at least {majority} of a lock's {keys} keys, \
         so losing it loses every lock; use 3 to {keys} instances"
    )]
    FragileInstances {
        /// Instances given.
        instances: usize,
        /// Keys per lock.
        keys: usize,
        /// Keys a lock needs (`key_majority`).
        majority: usize,
    },
}

/// Why a TLS connection failed ([`Error::Tls`]). The error's source is the
/// underlying error (a [`rustls::Error`](https://docs.rs/rustls) for the
/// failures rustls found), for the details.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsFailure {
    /// The server's certificate is not signed by a trusted certificate
    /// authority: add its CA ([`crate::Options`]' `tls_ca_file`,
    /// `tls_ca_pem`).
    UnknownIssuer,
    /// The server's certificate is not valid for the name verified (the
    /// address's host, or `tls_server_name`). Connecting by IP address
    /// needs the IP in the certificate's subject alternative names, or
    /// `tls_server_name` set to a name it has.
    NameMismatch,
    /// The server's certificate has expired, or is not valid yet (check
    /// the clocks).
    Expired,
    /// The server's certificate was refused for another reason (malformed,
    /// wrong usage, unsupported signature, ...).
    BadCertificate,
    /// The server refused this client's certificate, or asked for one and
    /// got none (`tls-auth-clients yes`): set a client certificate.
    ClientCertificateRefused,
    /// The server answered the TLS handshake with something that is not
    /// TLS: most likely a plain (non-TLS) Redis port.
    NotTls,
    /// The TLS handshake did not finish within the connect timeout: a plain
    /// Redis port that waits for a command (a TLS hello is not one), or a
    /// stalled server.
    HandshakeTimeout,
    /// A plain (non-TLS) connection was closed or reset by the server
    /// before it answered anything, which is what a Redis TLS port does to
    /// a plain client: use `rediss://` (or a server that went away at that
    /// very moment).
    ServerExpectsTls,
    /// Another TLS failure; see the source.
    Other,
}

impl std::fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TlsFailure::UnknownIssuer => {
                "the server's certificate is signed by an unknown certificate authority"
            }
            TlsFailure::NameMismatch => {
                "the server's certificate is not valid for the name verified                  (set tls_server_name when connecting by IP address)"
            }
            TlsFailure::Expired => "the server's certificate has expired or is not valid yet",
            TlsFailure::BadCertificate => "the server's certificate was refused",
            TlsFailure::ClientCertificateRefused => {
                "the server refused the client certificate (or requires one)"
            }
            TlsFailure::NotTls => {
                "the server does not speak TLS on this port (a plain Redis port? use redis://)"
            }
            TlsFailure::HandshakeTimeout => {
                "the TLS handshake did not finish within the connect timeout                  (a plain Redis port? use redis://)"
            }
            TlsFailure::ServerExpectsTls => {
                "the server closed the connection before answering                  (a TLS port? use rediss://)"
            }
            TlsFailure::Other => "TLS failure",
        })
    }
}

/// Why the sentinels named no master ([`Error::Sentinel`]). When the
/// sentinels disagree, the first of these that applies is reported.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SentinelFailure {
    /// A sentinel refused a command with an error reply (its own text): a
    /// wrong or missing sentinel password (`WRONGPASS`, `NOAUTH`), an ACL
    /// without `SENTINEL`, ...
    Refused(String),
    /// Every sentinel that answered knows no master by that name
    /// (`SENTINEL GET-MASTER-ADDR-BY-NAME` answered nil).
    UnknownMaster,
    /// No sentinel answered in time (each gets its share of the connect
    /// timeout); the last error seen.
    Unreachable(String),
}

impl std::fmt::Display for SentinelFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SentinelFailure::Refused(text) => write!(f, "a sentinel refused: {text}"),
            SentinelFailure::UnknownMaster => {
                f.write_str("no sentinel knows a master by this name")
            }
            SentinelFailure::Unreachable(last) => {
                write!(f, "no sentinel answered in time (last error: {last})")
            }
        }
    }
}

/// Everything that can go wrong, each with a message a person can act on.
///
/// Errors that come from the protocol engine keep its typed value:
/// [`Error::Node`] carries the [`NodeError`] of a connection the engine gave
/// up on, [`Error::Config`] the [`ConfigError`] of an option.
///
/// ```
/// use std::time::Duration;
/// use tracklock::{Error, NodeError};
///
/// fn advice(e: &Error) -> &'static str {
///     match e {
///         Error::NotLocked => "someone else holds it: try later",
///         Error::Node { source: NodeError::Handshake(_), .. } => "check the credentials",
///         Error::Node { source: NodeError::Topology(_) | NodeError::Replica, .. } => {
///             "check the mode (single, cluster or instances)"
///         }
///         Error::Connect { .. } | Error::Unavailable { .. } => "is the server up?",
///         Error::Config(_) | Error::Addresses(_) | Error::InvalidUrl(_) => "fix the options",
///         // `Error` is non-exhaustive: newer versions may add variants.
///         _ => "see the message",
///     }
/// }
///
/// let bad = tracklock::Options::new("127.0.0.1:6379").validity(Duration::ZERO);
/// let e = bad.to_config().unwrap_err();
/// assert_eq!(advice(&e), "fix the options");
/// assert_eq!(e.to_string(), "invalid option: validity must be at least 1 ms");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `try_lock`: another holder was seen on enough keys that no majority
    /// could be had. Never returned for server errors or missing
    /// connections (those have their own variants), nor by `force_lock`.
    #[error("lock is held by someone else")]
    NotLocked,
    /// The server refused a command of the acquisition, and that keeps a
    /// majority out of reach: `OOM` (maxmemory), `NOPERM` (ACL), `READONLY`
    /// (a replica), `MISCONF`, `WRONGTYPE`… `lock` waits through transient
    /// refusals (`LOADING`, `BUSY`, `TRYAGAIN`, `CLUSTERDOWN`,
    /// `MASTERDOWN`) with backoff; `try_lock` and `force_lock` report them.
    #[error("server {addr} refused {command}: {message}")]
    Refused {
        /// The server's address.
        addr: String,
        /// The command it refused.
        command: Command,
        /// The server's own text.
        message: String,
    },
    /// [`Guard::unlock`](crate::Guard::unlock): the server refused the
    /// release; the keys stay until their TTL (at most the validity).
    #[error("server {addr} refused the release (the keys stay until their TTL): {message}")]
    NotReleased {
        /// The server's address.
        addr: String,
        /// The server's own text.
        message: String,
    },
    /// `try_lock`/`force_lock`: a node holding keys the majority needs is
    /// not connected right now (it is being reconnected). `lock` waits for
    /// it instead.
    #[error("no connection to {addr} (reconnecting)")]
    Unavailable {
        /// The node's address.
        addr: String,
    },
    /// A majority answered only after the lease had already run out: the
    /// server or this process is far too slow for the configured validity.
    #[error(
        "the servers answered only after the lease had run out (validity too short for this load)"
    )]
    TooSlow,
    /// A fenced `try_lock`/`force_lock` got the lock's keys, but they were
    /// deleted before its fencing counters were raised, on every attempt
    /// (someone keeps deleting them).
    #[error(
        "the lock's keys were deleted before its fencing counters were raised, on every attempt"
    )]
    KeysVanished,
    /// The locker was closed (by [`crate::Locker::close`] or because every
    /// handle to it was dropped).
    #[error("locker is closed")]
    Closed,
    /// An option cannot work; the [`ConfigError`] names it.
    #[error("invalid option: {0}")]
    Config(#[source] ConfigError),
    /// The address list does not fit the mode; see [`AddressError`].
    #[error("invalid addresses: {0}")]
    Addresses(#[source] AddressError),
    /// The lock name is empty.
    #[error("lock name must not be empty")]
    InvalidName,
    /// The lock name is longer than [`tracklock_core::MAX_NAME_LEN`]
    /// (1 MiB): every command repeats it, so such a name is refused before
    /// anything is sent.
    #[error("lock name is longer than 1 MiB")]
    NameTooLong,
    /// The engine cannot take one more lock request. Only a build of
    /// `tracklock-core` without `alloc`, whose collections are fixed
    /// ([`tracklock_core::capacity`]), has such a limit.
    #[error("the engine's capacity for lock requests is exhausted")]
    CapacityExceeded,
    /// A `redis://` URL that [`crate::Options::from_url`] cannot use. The
    /// message never repeats the URL (it may hold a password).
    #[error("invalid Redis URL: {0}")]
    InvalidUrl(String),
    /// The TCP connection, or the handshake within the connect timeout,
    /// could not be set up (kind `TimedOut` when the timeout passed).
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The address tried.
        addr: String,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The engine gave up on a node's connection, with the reason:
    ///
    /// - [`NodeError::Handshake`]: the server refused the handshake
    ///   (`WRONGPASS`, `NOAUTH`, …; its own text);
    ///   [`NodeError::Resp3Unsupported`]: it does not speak RESP3;
    /// - [`NodeError::Topology`]: the server is not what the mode expects (a
    ///   Redis Cluster node in single or instances mode: use
    ///   [`crate::Options::cluster`]; a standalone server in cluster mode:
    ///   use [`crate::Options::new`] or [`crate::Options::instances`]; or a
    ///   cluster node that refused to describe the cluster);
    ///   [`NodeError::Replica`]: a read-only replica in single or instances
    ///   mode;
    /// - [`NodeError::Protocol`]: it sent something that is not the
    ///   expected RESP3 reply; [`NodeError::Unresponsive`]: it stopped
    ///   answering pings.
    ///
    /// `connect` returns it for a first connection that makes the locker
    /// unusable; `lock` and friends for a node they need whose handshake is
    /// refused on reconnect (the locker keeps reconnecting).
    #[error("server {addr}: {source}")]
    Node {
        /// The server's address.
        addr: String,
        /// Why the engine dropped the connection.
        #[source]
        source: NodeError,
    },
    /// A TLS connection could not be set up (within the connect timeout);
    /// [`TlsFailure`] says why, the source has the details (a
    /// [`rustls::Error`](https://docs.rs/rustls) when rustls found it).
    /// [`TlsFailure::ServerExpectsTls`] is reported for plain connections
    /// too (no `tls` feature needed).
    #[error("TLS to {addr}: {failure}: {source}")]
    Tls {
        /// The server's address.
        addr: String,
        /// What went wrong.
        failure: TlsFailure,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The TLS options cannot be used: a PEM file that cannot be read or
    /// holds no certificate (or key), a CA rustls refuses, an invalid
    /// `tls_server_name`, no platform root certificates. Found by `connect`
    /// before any connection.
    #[error("TLS setup: {what}: {source}")]
    TlsSetup {
        /// What was being loaded (a file name, when it is one).
        what: String,
        /// Why it failed.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Redis Sentinel did not name a master to connect to
    /// ([`crate::Options::sentinel`]): [`SentinelFailure`] says why. The
    /// sentinels are asked at every connection of the data node; `connect`
    /// returns this when the first resolution fails, later failures are
    /// retried with backoff.
    #[error("sentinels {sentinels}: master {master:?}: {failure}")]
    Sentinel {
        /// The master name asked for.
        master: String,
        /// The sentinels asked, comma-separated.
        sentinels: String,
        /// Why no master was found.
        failure: SentinelFailure,
    },
    /// A `rediss://` URL (or TLS option) in a build without the `tls`
    /// feature of `tracklock`.
    #[error("TLS needs the `tls` feature of tracklock (features = [\"tls\"])")]
    TlsNotEnabled,
    /// The operating system gave no random seed for lock values (they
    /// must be unguessable, so the locker does not start without one).
    #[error("no random seed from the operating system: {0}")]
    Entropy(#[source] io::Error),
    /// `connect` was called outside the runtime it needs (tokio's
    /// `connect` outside a tokio runtime); names the runtime.
    #[error("not inside a {0} runtime")]
    NoRuntime(&'static str),
    /// A failure the engine reports that this version of `tracklock` does
    /// not name (a newer `tracklock-core`); the source describes it.
    #[error("{0}")]
    Other(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Self {
        Error::Config(e)
    }
}

impl From<AddressError> for Error {
    fn from(e: AddressError) -> Self {
        Error::Addresses(e)
    }
}

impl Error {
    /// The error for a lock request the engine refused to start.
    pub(crate) fn from_lock(e: LockError) -> Self {
        match e {
            LockError::Closed => Error::Closed,
            LockError::EmptyName => Error::InvalidName,
            LockError::NameTooLong => Error::NameTooLong,
            LockError::CapacityExceeded => Error::CapacityExceeded,
            other => Error::Other(Box::new(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages() {
        assert_eq!(Error::NotLocked.to_string(), "lock is held by someone else");
        assert_eq!(Error::Closed.to_string(), "locker is closed");
        assert_eq!(
            Error::Config(ConfigError::MajorityZero).to_string(),
            "invalid option: key_majority must be at least 1"
        );
        let e = Error::Connect {
            addr: "127.0.0.1:1".into(),
            source: io::Error::new(io::ErrorKind::ConnectionRefused, "refused"),
        };
        assert_eq!(e.to_string(), "cannot connect to 127.0.0.1:1: refused");
        assert!(std::error::Error::source(&e).is_some());
        let e = Error::Node {
            addr: "h:1".into(),
            source: NodeError::Handshake(tracklock_core::Text::from_str_truncated(
                "WRONGPASS invalid username-password pair",
            )),
        };
        assert_eq!(
            e.to_string(),
            "server h:1: handshake refused by server: WRONGPASS invalid username-password pair"
        );
        let source = std::error::Error::source(&e).unwrap();
        assert!(source.downcast_ref::<NodeError>().is_some());
        assert!(matches!(
            Error::from_lock(LockError::EmptyName),
            Error::InvalidName
        ));
        assert!(matches!(
            Error::from_lock(LockError::CapacityExceeded),
            Error::CapacityExceeded
        ));
        assert_eq!(
            Error::NoRuntime("tokio").to_string(),
            "not inside a tokio runtime"
        );
    }

    #[test]
    fn topology_mismatch_reads_well() {
        let e = Error::Node {
            addr: "h:7000".into(),
            source: NodeError::Topology(tracklock_core::Text::from_str_truncated(
                "the server is a Redis Cluster node: use cluster mode",
            )),
        };
        assert_eq!(
            e.to_string(),
            "server h:7000: topology mismatch: \
             the server is a Redis Cluster node: use cluster mode"
        );
    }

    #[test]
    fn address_errors_read_well() {
        let e = Error::from(AddressError::Invalid {
            addr: "h".into(),
            reason: "expected host:port (the port is missing)",
        });
        assert_eq!(
            e.to_string(),
            "invalid addresses: \"h\" is not host:port: expected host:port (the port is missing)"
        );
        let e = AddressError::FragileInstances {
            instances: 2,
            keys: 3,
            majority: 2,
        };
        assert_eq!(
            e.to_string(),
            "with 2 instances one instance holds at least 2 of a lock's 3 keys, \
             so losing it loses every lock; use 3 to 3 instances"
        );
        assert_eq!(
            AddressError::UnusedInstances {
                instances: 4,
                keys: 3
            }
            .to_string(),
            "4 instances but a lock has only 3 keys (2 * key_majority - 1): \
             some instance would never hold a key"
        );
    }
}
