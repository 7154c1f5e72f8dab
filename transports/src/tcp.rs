//! TCP connections as `embedded-io-async` streams, with `TCP_NODELAY` set
//! (lock commands are small and latency-bound; Nagle would delay them).

use std::io;

#[cfg(feature = "smol")]
use embedded_io_adapters::futures_03::FromFutures;
#[cfg(feature = "tokio")]
use embedded_io_adapters::tokio_1::FromTokio;

/// A tokio TCP stream as an `embedded-io-async` stream.
#[cfg(feature = "tokio")]
pub type TokioTcp = FromTokio<tokio::net::TcpStream>;

/// An async-net (smol) TCP stream as an `embedded-io-async` stream.
#[cfg(feature = "smol")]
pub type SmolTcp = FromFutures<async_net::TcpStream>;

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

#[cfg(test)]
mod tests {
    #[allow(unused_imports)]
    use embedded_io_async::{Read, Write};

    #[cfg(feature = "tokio")]
    #[tokio::test]
    async fn tokio_roundtrip_and_nodelay() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = tokio::spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            let mut s = super::FromTokio::new(s);
            let mut buf = [0u8; 4];
            s.read_exact(&mut buf).await.unwrap();
            s.write_all(&buf).await.unwrap();
        });
        let mut c = super::connect_tokio(&addr).await.unwrap();
        assert!(c.inner().nodelay().unwrap());
        c.write_all(b"PING").await.unwrap();
        c.flush().await.unwrap();
        let mut buf = [0u8; 4];
        c.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"PING");
        server.await.unwrap();
    }

    #[cfg(feature = "tokio")]
    #[tokio::test]
    async fn tokio_refused() {
        // Bind then drop to get a port nobody listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        assert!(super::connect_tokio(&format!("127.0.0.1:{port}"))
            .await
            .is_err());
    }

    #[cfg(feature = "smol")]
    #[test]
    fn smol_roundtrip_and_nodelay() {
        smol::block_on(async {
            let listener = async_net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap().to_string();
            let server = smol::spawn(async move {
                let (s, _) = listener.accept().await.unwrap();
                let mut s = super::FromFutures::new(s);
                let mut buf = [0u8; 4];
                s.read_exact(&mut buf).await.unwrap();
                s.write_all(&buf).await.unwrap();
            });
            let mut c = super::connect_smol(&addr).await.unwrap();
            assert!(c.inner().nodelay().unwrap());
            c.write_all(b"PING").await.unwrap();
            c.flush().await.unwrap();
            let mut buf = [0u8; 4];
            c.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"PING");
            server.await;
        });
    }
}
