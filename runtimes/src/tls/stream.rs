//! [`TlsStream`]: a rustls client connection driven over any
//! `embedded-io-async` byte stream.

use std::io::{self, Read as _, Write as _};
use std::sync::Arc;

use embedded_io_async::{ErrorType, Read, Write};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection};

/// Raw TLS bytes read from the transport per `read` call.
const IN_BUF: usize = 16 * 1024 + 256;
/// Encrypted bytes buffered by `write` before it waits for the transport.
const OUT_HIGH: usize = 64 * 1024;

/// A TLS client stream over `S` (the runtime's TCP stream), itself an
/// `embedded-io-async` stream with `io::Error`.
///
/// Cancel-safe as [`crate::Runtime::Stream`] requires: every buffer lives
/// here (rustls' own, the encrypted bytes not written yet, the raw bytes
/// read but not fed to rustls yet), and each `.await` is one `read` or
/// `write` of `S`, whose progress is recorded only once it completed. A
/// dropped `read`, `write` or `flush` future leaves the stream as it was
/// before that call, or further along; nothing is lost.
///
/// `write` encrypts into the buffer and returns at once (it waits for the
/// transport only when 64 KiB are pending); `flush` sends the buffer, as
/// the driver does after every batch of writes.
pub(crate) struct TlsStream<S> {
    io: S,
    conn: ClientConnection,
    /// Encrypted bytes for `io`: `out[out_pos..]` not written yet.
    out: Vec<u8>,
    out_pos: usize,
    /// Raw bytes from `io`: `inb[in_pos..in_len]` not taken by rustls yet.
    inb: Box<[u8]>,
    in_pos: usize,
    in_len: usize,
    /// `io` reported end of stream.
    eof: bool,
}

/// An [`io::Error`] carrying a rustls error (found again by
/// [`super::rustls_error`]).
pub(crate) fn tls_io_error(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

impl<S> TlsStream<S>
where
    S: Read<Error = io::Error> + Write<Error = io::Error>,
{
    /// Runs the TLS handshake over `io`. Errors are `io::Error`s; a refusal
    /// by rustls (certificate, alert, non-TLS bytes) carries the
    /// [`rustls::Error`] inside. Not bounded in time: the caller races it
    /// with the connect timeout.
    pub(crate) async fn connect(
        config: Arc<ClientConfig>,
        name: ServerName<'static>,
        io: S,
    ) -> io::Result<Self> {
        let conn = ClientConnection::new(config, name).map_err(tls_io_error)?;
        let mut s = TlsStream {
            io,
            conn,
            out: Vec::new(),
            out_pos: 0,
            inb: vec![0; IN_BUF].into_boxed_slice(),
            in_pos: 0,
            in_len: 0,
            eof: false,
        };
        while s.conn.is_handshaking() {
            if s.conn.wants_write() || s.out_pos < s.out.len() {
                s.push().await?;
                s.io.flush().await?;
            } else {
                s.pull().await?;
            }
        }
        // The client's Finished (and anything else queued).
        s.push().await?;
        s.io.flush().await?;
        Ok(s)
    }

    /// Moves what rustls has to send into `out`.
    fn take_output(&mut self) {
        while self.conn.wants_write() {
            // Writing into a `Vec` does not fail.
            if self.conn.write_tls(&mut self.out).is_err() {
                break;
            }
        }
    }

    /// Writes every pending encrypted byte to `io` (not flushed).
    async fn push(&mut self) -> io::Result<()> {
        self.take_output();
        while self.out_pos < self.out.len() {
            let n = self.io.write(&self.out[self.out_pos..]).await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            self.out_pos += n;
        }
        self.out.clear();
        self.out_pos = 0;
        Ok(())
    }

    /// Feeds rustls the buffered raw bytes (reading more from `io` when
    /// none are left) and processes them.
    async fn pull(&mut self) -> io::Result<()> {
        if self.in_pos == self.in_len {
            if self.eof {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the server closed the connection during the TLS handshake",
                ));
            }
            let n = self.io.read(&mut self.inb).await?;
            self.in_pos = 0;
            self.in_len = n;
            self.eof = n == 0;
        }
        if self.in_pos == self.in_len {
            // End of stream: tell rustls.
            self.conn.read_tls(&mut &[][..])?;
        } else {
            let mut src = &self.inb[self.in_pos..self.in_len];
            let n = self.conn.read_tls(&mut src)?;
            self.in_pos += n;
        }
        self.conn.process_new_packets().map_err(tls_io_error)?;
        Ok(())
    }
}

impl<S> ErrorType for TlsStream<S> {
    type Error = io::Error;
}

impl<S> Read for TlsStream<S>
where
    S: Read<Error = io::Error> + Write<Error = io::Error>,
{
    async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            match self.conn.reader().read(buf) {
                // 0: the server sent close_notify.
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // UnexpectedEof: closed without close_notify.
                Err(e) => return Err(e),
            }
            if self.eof && self.in_pos == self.in_len {
                // rustls was told and still has nothing to say.
                return Ok(0);
            }
            // Replies rustls owes (alerts, key updates) go out first.
            if self.conn.wants_write() || self.out_pos < self.out.len() {
                self.push().await?;
            }
            self.pull().await?;
        }
    }
}

impl<S> Write for TlsStream<S>
where
    S: Read<Error = io::Error> + Write<Error = io::Error>,
{
    async fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.out.len() - self.out_pos >= OUT_HIGH {
            self.push().await?;
        }
        let n = self.conn.writer().write(buf)?;
        self.take_output();
        Ok(n)
    }

    async fn flush(&mut self) -> io::Result<()> {
        self.push().await?;
        self.io.flush().await
    }
}

#[cfg(test)]
mod tests {
    //! Cancel safety: every `read`, `write` and `flush` future is dropped
    //! at random after a few polls, over a transport that is pending at
    //! random and takes partial writes; the bytes echoed by a rustls server
    //! must come back whole and in order.

    use std::cell::RefCell;
    use std::collections::VecDeque;
    use std::future::Future;
    use std::pin::pin;
    use std::rc::Rc;
    use std::task::{Context, Poll, Waker};

    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use rustls::{ServerConfig, ServerConnection};

    use super::*;

    const CERT: &[u8] = include_bytes!("testdata/server.crt");
    const KEY: &[u8] = include_bytes!("testdata/server.key");

    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    #[derive(Default)]
    struct Wire {
        to_server: Vec<u8>,
        to_client: VecDeque<u8>,
        rng: u64,
    }

    impl Wire {
        fn coin(&mut self) -> bool {
            let mut r = Rng(self.rng | 1);
            let c = r.below(3) == 0;
            self.rng = r.0;
            c
        }
    }

    /// A transport that is pending at random, writes partially, and only
    /// changes anything when it returns `Ready`.
    struct Pipe(Rc<RefCell<Wire>>);

    impl ErrorType for Pipe {
        type Error = io::Error;
    }

    /// Pending once with probability 1/3, then ready (when `f` is).
    async fn maybe_pending<T>(
        wire: &RefCell<Wire>,
        mut f: impl FnMut(&mut Wire) -> Option<T>,
    ) -> T {
        let mut first = true;
        std::future::poll_fn(|_| {
            let mut w = wire.borrow_mut();
            if std::mem::take(&mut first) && w.coin() {
                return Poll::Pending;
            }
            match f(&mut w) {
                Some(v) => Poll::Ready(v),
                None => Poll::Pending,
            }
        })
        .await
    }

    impl Read for Pipe {
        async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            maybe_pending(&self.0, |w| {
                if w.to_client.is_empty() {
                    return None;
                }
                let n = buf
                    .len()
                    .min(w.to_client.len())
                    .min(1 + w.rng as usize % 700);
                for b in buf.iter_mut().take(n) {
                    *b = w.to_client.pop_front().expect("present");
                }
                Some(Ok(n))
            })
            .await
        }
    }

    impl Write for Pipe {
        async fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            maybe_pending(&self.0, |w| {
                let n = buf.len().min(1 + w.rng as usize % 500);
                w.to_server.extend_from_slice(&buf[..n]);
                Some(Ok(n))
            })
            .await
        }

        async fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// The server's turn: takes what the client sent, echoes the
    /// plaintext, sends what it has.
    fn pump(server: &mut ServerConnection, wire: &RefCell<Wire>) {
        let mut w = wire.borrow_mut();
        let input = std::mem::take(&mut w.to_server);
        let mut src = &input[..];
        while !src.is_empty() {
            server.read_tls(&mut src).expect("server read_tls");
            server.process_new_packets().expect("server process");
        }
        let mut plain = Vec::new();
        let _ = server.reader().read_to_end(&mut plain);
        if !plain.is_empty() {
            server.writer().write_all(&plain).expect("echo");
        }
        let mut out = Vec::new();
        while server.wants_write() {
            server.write_tls(&mut out).expect("server write_tls");
        }
        w.to_client.extend(out);
    }

    /// Polls `fut` at most `polls` times, then drops it unfinished.
    fn poll_some<F: Future>(fut: F, polls: u64) -> Option<F::Output> {
        let mut fut = pin!(fut);
        let mut cx = Context::from_waker(Waker::noop());
        for _ in 0..polls {
            if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
                return Some(v);
            }
        }
        None
    }

    #[test]
    fn dropped_futures_lose_nothing() {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server_config = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from_pem_slice(CERT).unwrap()],
                PrivateKeyDer::from_pem_slice(KEY).unwrap(),
            )
            .unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(CERT).unwrap())
            .unwrap();
        let client_config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        for seed in 1..=8u64 {
            let wire = Rc::new(RefCell::new(Wire {
                rng: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15),
                ..Wire::default()
            }));
            let mut server = ServerConnection::new(Arc::new(server_config.clone())).unwrap();
            let name = ServerName::try_from("localhost").unwrap();
            // The handshake, polled to completion between server turns.
            let mut connect = pin!(TlsStream::connect(
                Arc::new(client_config.clone()),
                name,
                Pipe(wire.clone())
            ));
            let mut cx = Context::from_waker(Waker::noop());
            let mut tls = loop {
                if let Poll::Ready(r) = connect.as_mut().poll(&mut cx) {
                    break r.expect("handshake");
                }
                pump(&mut server, &wire);
            };
            let mut rng = Rng(seed | 1);
            let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
            let (mut sent, mut flushed, mut got) = (0, true, Vec::new());
            let mut rounds = 0;
            while got.len() < data.len() {
                rounds += 1;
                assert!(rounds < 1_000_000, "no progress (seed {seed})");
                let polls = 1 + rng.below(3);
                match rng.below(3) {
                    0 if sent < data.len() => {
                        let end = (sent + 1 + rng.below(9000) as usize).min(data.len());
                        if let Some(r) = poll_some(tls.write(&data[sent..end]), polls) {
                            sent += r.expect("write");
                            flushed = false;
                        }
                    }
                    1 if !flushed => {
                        if let Some(r) = poll_some(tls.flush(), polls) {
                            r.expect("flush");
                            flushed = true;
                        }
                    }
                    _ => {
                        let mut buf = vec![0; 1 + rng.below(5000) as usize];
                        if let Some(r) = poll_some(tls.read(&mut buf), polls) {
                            let n = r.expect("read");
                            assert!(n > 0, "EOF (seed {seed})");
                            got.extend_from_slice(&buf[..n]);
                        }
                    }
                }
                pump(&mut server, &wire);
            }
            assert!(got == data, "echo differs (seed {seed})");
        }
    }
}
