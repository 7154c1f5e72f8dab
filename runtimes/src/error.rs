//! The one error type of the public API.

use std::io;

use tracklock_core::{ConfigError, LockError, NodeError};

/// Everything that can go wrong, each with a message a person can act on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `try_lock`: the lock is held by someone else.
    #[error("lock is held by someone else")]
    NotLocked,
    /// The locker was closed (by [`crate::Locker::close`] or because every
    /// handle to it was dropped).
    #[error("locker is closed")]
    Closed,
    /// An option cannot work; the message names it.
    #[error("invalid option: {0}")]
    Config(ConfigError),
    /// The lock name is empty.
    #[error("lock name must not be empty")]
    InvalidName,
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

impl Error {
    pub(crate) fn from_lock(e: LockError) -> Self {
        match e {
            LockError::Closed => Error::Closed,
            LockError::EmptyName => Error::InvalidName,
            LockError::CapacityExceeded => Error::Config(ConfigError::TooLong),
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
}
