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

/// Everything that can go wrong, each with a message a person can act on.
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
    /// The locker was closed (by [`crate::Locker::close`] or because every
    /// handle to it was dropped).
    #[error("locker is closed")]
    Closed,
    /// An option cannot work; the message names it.
    #[error("invalid option: {0}")]
    Config(ConfigError),
    /// The address list does not fit the mode; see [`AddressError`].
    #[error("invalid addresses: {0}")]
    Addresses(AddressError),
    /// The lock name is empty.
    #[error("lock name must not be empty")]
    InvalidName,
    /// The lock name is longer than [`tracklock_core::MAX_NAME_LEN`]
    /// (1 MiB): every command repeats it, so such a name is refused before
    /// anything is sent.
    #[error("lock name is longer than 1 MiB")]
    NameTooLong,
    /// The engine cannot take one more lock request (only in a build of
    /// `tracklock-core` without `alloc`, whose collections are fixed).
    #[error("the engine's capacity for lock requests is exhausted")]
    CapacityExceeded,
    /// A `redis://` URL that [`crate::Options::from_url`] cannot use. The
    /// message never repeats the URL (it may hold a password).
    #[error("invalid Redis URL: {0}")]
    InvalidUrl(String),
    /// The TCP connection (or the handshake, within the connect timeout)
    /// could not be set up.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The address tried.
        addr: String,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The server refused the handshake (`WRONGPASS`, `NOAUTH`, no RESP3, ...).
    #[error("server {addr} refused the connection: {message}")]
    Server {
        /// The server's address.
        addr: String,
        /// The server's own text.
        message: String,
    },
    /// The server is not what the mode expects: a Redis Cluster node in
    /// single or instances mode (use [`crate::Options::cluster`]), a
    /// standalone server in cluster mode (use [`crate::Options::new`] or
    /// [`crate::Options::instances`]), or a cluster node that refused to
    /// describe the cluster (`CLUSTER SHARDS`/`SLOTS`; the message is the
    /// server's).
    #[error("server {addr} does not fit the configured mode: {message}")]
    Topology {
        /// The server's address.
        addr: String,
        /// What does not fit.
        message: String,
    },
    /// The server sent something that is not the expected RESP3 reply.
    #[error("protocol error from {addr}: {message}")]
    Protocol {
        /// The server's address.
        addr: String,
        /// What was wrong.
        message: String,
    },
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
    pub(crate) fn from_lock(e: LockError) -> Self {
        match e {
            LockError::Closed => Error::Closed,
            LockError::EmptyName => Error::InvalidName,
            LockError::NameTooLong => Error::NameTooLong,
            LockError::CapacityExceeded => Error::CapacityExceeded,
            // A refusal of a newer core: no request was made.
            _ => Error::CapacityExceeded,
        }
    }

    /// The error for a connection the engine gave up on during set-up.
    pub(crate) fn from_node(addr: &str, e: NodeError) -> Self {
        let addr = addr.to_owned();
        match e {
            NodeError::Handshake(text) => Error::Server {
                addr,
                message: text.as_str().to_owned(),
            },
            e @ NodeError::Resp3Unsupported(_) => Error::Server {
                addr,
                message: e.to_string(),
            },
            NodeError::Topology(text) => Error::Topology {
                addr,
                message: text.as_str().to_owned(),
            },
            e @ NodeError::Replica => Error::Topology {
                addr,
                message: e.to_string(),
            },
            NodeError::Unresponsive => Error::Connect {
                addr,
                source: io::Error::new(
                    io::ErrorKind::TimedOut,
                    "server did not answer the handshake",
                ),
            },
            e => Error::Protocol {
                addr,
                message: e.to_string(),
            },
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
        let e = Error::from_node(
            "h:1",
            NodeError::Handshake(tracklock_core::Text::from_str_truncated(
                "WRONGPASS invalid username-password pair",
            )),
        );
        assert!(matches!(&e, Error::Server { message, .. } if message.starts_with("WRONGPASS")));
        assert_eq!(
            e.to_string(),
            "server h:1 refused the connection: WRONGPASS invalid username-password pair"
        );
        assert!(matches!(
            Error::from_node("h:1", NodeError::Protocol("malformed RESP3")),
            Error::Protocol { .. }
        ));
        assert!(matches!(
            Error::from_lock(LockError::EmptyName),
            Error::InvalidName
        ));
    }

    #[test]
    fn topology_mismatch_is_its_own_error() {
        let e = Error::from_node(
            "h:7000",
            NodeError::Topology(tracklock_core::Text::from_str_truncated(
                "the server is a Redis Cluster node: use cluster mode",
            )),
        );
        match &e {
            Error::Topology { addr, message } => {
                assert_eq!(addr, "h:7000");
                assert!(message.contains("cluster mode"), "{message}");
            }
            other => panic!("expected Topology, got {other:?}"),
        }
        assert_eq!(
            e.to_string(),
            "server h:7000 does not fit the configured mode: \
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
