//! TCP connections as `embedded-io-async` streams, with `TCP_NODELAY` set
//! (lock commands are small and latency-bound; Nagle would delay them).

use std::io;

#[cfg(any(feature = "smol", feature = "glommio"))]
use embedded_io_adapters::futures_03::FromFutures;
#[cfg(feature = "tokio")]
use embedded_io_adapters::tokio_1::FromTokio;

/// A tokio TCP stream as an `embedded-io-async` stream.
#[cfg(feature = "tokio")]
pub type TokioTcp = FromTokio<tokio::net::TcpStream>;

/// An async-net (smol) TCP stream as an `embedded-io-async` stream.
#[cfg(feature = "smol")]
pub type SmolTcp = FromFutures<async_net::TcpStream>;

/// A glommio TCP stream as an `embedded-io-async` stream. Its reads and
/// writes are readiness-based (a pending `poll_read`/`poll_write` has
/// neither consumed nor sent anything), so dropping a pending call loses no
/// data, as with the other adapters.
#[cfg(feature = "glommio")]
pub type GlommioTcp = FromFutures<glommio::net::TcpStream>;

/// Connects to `addr` (`host:port`, resolved by tokio) with `TCP_NODELAY`.
/// Must run inside a tokio runtime with I/O enabled.
#[cfg(feature = "tokio")]
pub async fn connect_tokio(addr: &str) -> io::Result<TokioTcp> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(FromTokio::new(stream))
}

/// Connects to `addr` (`host:port`, resolved by async-net) with `TCP_NODELAY`.
/// Works on any executor (async-io drives the socket).
#[cfg(feature = "smol")]
pub async fn connect_smol(addr: &str) -> io::Result<SmolTcp> {
    let stream = async_net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(FromFutures::new(stream))
}

/// Connects to `addr` (`host:port`, resolved by the blocking system
/// resolver, so prefer an IP address) with `TCP_NODELAY`.
///
/// # Panics
///
/// Outside a glommio executor (`LocalExecutor::run` or a
/// `LocalExecutorBuilder::spawn`ed thread), as every glommio I/O call does.
#[cfg(feature = "glommio")]
pub async fn connect_glommio(addr: &str) -> io::Result<GlommioTcp> {
    use std::net::ToSocketAddrs;
    // glommio's own `connect` panics when the name resolves to nothing.
    let Some(sa) = addr.to_socket_addrs()?.next() else {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{addr}: no address"),
        ));
    };
    let stream = glommio::net::TcpStream::connect(sa).await?;
    stream.set_nodelay(true)?;
    Ok(FromFutures::new(stream))
}

#[cfg(test)]
mod tests {
    #[allow(unused_imports)]
    use embedded_io_async::{Read, Write};

    /// The server side: echoes one 4-byte message.
    #[cfg(any(feature = "tokio", feature = "smol", feature = "glommio"))]
    async fn echo_once(mut s: impl Read + Write) {
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).await.unwrap();
        s.write_all(&buf).await.unwrap();
    }

    /// The client side: `PING` comes back unchanged.
    #[cfg(any(feature = "tokio", feature = "smol", feature = "glommio"))]
    async fn ping_echoed(c: &mut (impl Read + Write)) {
        c.write_all(b"PING").await.unwrap();
        c.flush().await.unwrap();
        let mut buf = [0u8; 4];
        c.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"PING");
    }

    /// An address nobody listens on (bound, then dropped).
    #[cfg(any(feature = "tokio", feature = "smol", feature = "glommio"))]
    fn dead_addr() -> String {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        format!("127.0.0.1:{port}")
    }

    #[cfg(feature = "tokio")]
    #[tokio::test]
    async fn tokio_roundtrip_and_nodelay() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = tokio::spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            echo_once(super::FromTokio::new(s)).await;
        });
        let mut c = super::connect_tokio(&addr).await.unwrap();
        assert!(c.inner().nodelay().unwrap());
        ping_echoed(&mut c).await;
        server.await.unwrap();
    }

    #[cfg(feature = "tokio")]
    #[tokio::test]
    async fn tokio_refused() {
        assert!(super::connect_tokio(&dead_addr()).await.is_err());
    }

    #[cfg(feature = "smol")]
    #[test]
    fn smol_roundtrip_and_nodelay() {
        smol::block_on(async {
            let listener = async_net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap().to_string();
            let server = smol::spawn(async move {
                let (s, _) = listener.accept().await.unwrap();
                echo_once(super::FromFutures::new(s)).await;
            });
            let mut c = super::connect_smol(&addr).await.unwrap();
            assert!(c.inner().nodelay().unwrap());
            ping_echoed(&mut c).await;
            server.await;
        });
    }

    #[cfg(feature = "glommio")]
    #[test]
    fn glommio_roundtrip_and_nodelay() {
        // Small io_memory / ring: the default 10 MiB of locked I/O memory can
        // exceed a container's `ulimit -l`.
        let ex = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .io_memory(256 << 10)
            .ring_depth(32)
            .make()
            .expect("glommio executor (io_uring)");
        ex.run(async {
            let listener = glommio::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap().to_string();
            let server = glommio::spawn_local(async move {
                let s = listener.accept().await.unwrap();
                echo_once(super::FromFutures::new(s)).await;
            });
            let mut c = super::connect_glommio(&addr).await.unwrap();
            assert!(c.inner().nodelay().unwrap());
            ping_echoed(&mut c).await;
            server.await;
            // Refused: an error, not a panic.
            assert!(super::connect_glommio(&dead_addr()).await.is_err());
        });
    }
}
