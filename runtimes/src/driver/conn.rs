//! A connection to a node (or a sentinel): the runtime's stream, or TLS
//! over it, and how one is opened within the connect timeout.

use std::io;
use std::time::Duration;

use embedded_io_async::{Read, Write};
#[cfg(feature = "tls")]
use futures_lite::future::or;

use super::cause::Cause;
#[cfg(feature = "tls")]
use crate::error::TlsFailure;
use crate::inner::Inner;
#[cfg(feature = "tls")]
use crate::runtime::deadline_after;
use crate::runtime::{connect_within, Runtime};

/// A node's connection: the runtime's stream, or TLS over it.
pub(crate) enum Conn<S> {
    Plain(S),
    #[cfg(feature = "tls")]
    Tls(Box<crate::tls::TlsStream<S>>),
}

impl<S> embedded_io_async::ErrorType for Conn<S> {
    type Error = io::Error;
}

impl<S> Read for Conn<S>
where
    S: Read<Error = io::Error> + Write<Error = io::Error>,
{
    async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf).await,
            #[cfg(feature = "tls")]
            Conn::Tls(s) => s.read(buf).await,
        }
    }
}

impl<S> Write for Conn<S>
where
    S: Read<Error = io::Error> + Write<Error = io::Error>,
{
    async fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf).await,
            #[cfg(feature = "tls")]
            Conn::Tls(s) => s.write(buf).await,
        }
    }

    async fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush().await,
            #[cfg(feature = "tls")]
            Conn::Tls(s) => s.flush().await,
        }
    }
}

/// Connects to `addr` with the runtime, and when the locker uses TLS runs
/// the TLS handshake over it; both within `timeout`. `idx` is the node's
/// (out of range for a sentinel).
pub(crate) async fn connect<R: Runtime>(
    inner: &Inner<R>,
    #[cfg_attr(not(feature = "tls"), allow(unused_variables))] idx: usize,
    addr: &str,
    timeout: Duration,
) -> Result<Conn<R::Stream>, Cause> {
    #[cfg(feature = "tls")]
    let deadline = deadline_after(inner.rt.now(), timeout);
    let tcp = connect_within(&inner.rt, addr, timeout)
        .await
        .map_err(Cause::Io)?;
    #[cfg(feature = "tls")]
    if let Some(tls) = &inner.tls {
        let host = crate::options::split_addr(addr).map_or(addr, |(h, _)| h);
        let name = tls
            .server_name(host)
            .map_err(|f| Cause::Tls(f, format!("{host:?} is not a valid server name").into()))?;
        let handshaking = |on: bool| {
            if let Some(n) = inner.lock().nodes.get_mut(idx) {
                n.tls_handshaking = on;
            }
        };
        handshaking(true);
        let handshake = async {
            crate::tls::TlsStream::connect(tls.config.clone(), name, tcp)
                .await
                .map_err(Cause::Io)
        };
        let r = or(handshake, async {
            inner.rt.sleep_until(deadline).await;
            Err(Cause::Tls(
                TlsFailure::HandshakeTimeout,
                format!("no TLS handshake within {timeout:?}").into(),
            ))
        })
        .await;
        handshaking(false);
        return r.map(|s| Conn::Tls(Box::new(s)));
    }
    Ok(Conn::Plain(tcp))
}
