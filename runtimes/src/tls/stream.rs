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
