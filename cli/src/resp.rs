//! A minimal synchronous RESP2 client for `status` and `unlock`.
//!
//! The library has no raw-command API (its connections belong to the lock
//! engine), and the test kit's client is for tests only, so the tool has
//! its own: a few plain commands (`AUTH`, `SELECT`, `GET`, `PTTL`, `DEL`,
//! `ASKING`) over a `std::net::TcpStream`, pipelined per key. No runtime
//! is needed for that.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Bound on connecting and on each read and write: a server that stops
/// answering fails the command instead of hanging it.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(5);

/// Longest bulk string accepted (Redis's own limit is 512 MiB; lock values
/// are 24 bytes, so anything near this is not a lock).
const MAX_BULK: usize = 64 << 20;

/// A reply. Arrays are not needed by any command sent here and are refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reply {
    Nil,
    Status(String),
    Error(String),
    Int(i64),
    Bulk(Vec<u8>),
}

/// One connection to one server.
pub(crate) struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Conn {
    /// Connects to `addr` (`host:port`, IPv6 in brackets), trying each
    /// address the name resolves to.
    pub(crate) fn connect(addr: &str) -> io::Result<Conn> {
        let mut last = io::Error::new(io::ErrorKind::NotFound, "the host name resolves to nothing");
        for sa in addr.to_socket_addrs()? {
            match TcpStream::connect_timeout(&sa, TIMEOUT) {
                Ok(stream) => {
                    stream.set_read_timeout(Some(TIMEOUT))?;
                    stream.set_write_timeout(Some(TIMEOUT))?;
                    stream.set_nodelay(true)?;
                    return Ok(Conn {
                        reader: BufReader::new(stream.try_clone()?),
                        writer: stream,
                    });
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Sends every command in one write, then reads one reply each.
    pub(crate) fn pipeline(&mut self, commands: &[&[&[u8]]]) -> io::Result<Vec<Reply>> {
        let mut out = Vec::new();
        for args in commands {
            out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
            for a in *args {
                out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
                out.extend_from_slice(a);
                out.extend_from_slice(b"\r\n");
            }
        }
        self.writer.write_all(&out)?;
        commands.iter().map(|_| self.read()).collect()
    }

    /// One command; an error reply is an `Err` (for the handshake).
    pub(crate) fn command(&mut self, args: &[&[u8]]) -> io::Result<Reply> {
        match self.pipeline(&[args])?.pop() {
            Some(Reply::Error(e)) => Err(io::Error::other(e)),
            Some(r) => Ok(r),
            None => Err(protocol("no reply")),
        }
    }

    fn read(&mut self) -> io::Result<Reply> {
        let line = self.line()?;
        let mut chars = line.chars();
        let kind = chars.next();
        let rest = chars.as_str();
        let int = || -> io::Result<i64> {
            rest.parse()
                .map_err(|_| protocol(format!("bad number {rest:?}")))
        };
        Ok(match kind {
            Some('+') => Reply::Status(rest.to_owned()),
            Some('-') => Reply::Error(rest.to_owned()),
            Some(':') => Reply::Int(int()?),
            Some('$') => match int()? {
                -1 => Reply::Nil,
                n if n < 0 || n as u64 > MAX_BULK as u64 => {
                    return Err(protocol(format!("bulk length {n}")))
                }
                n => {
                    let mut buf = vec![0; n as usize + 2];
                    self.reader.read_exact(&mut buf)?;
                    if !buf.ends_with(b"\r\n") {
                        return Err(protocol("bulk string not ended by CRLF"));
                    }
                    buf.truncate(n as usize);
                    Reply::Bulk(buf)
                }
            },
            _ => return Err(protocol(format!("unexpected reply {line:?}"))),
        })
    }

    /// One CRLF-ended line, without the CRLF; never empty.
    fn line(&mut self) -> io::Result<String> {
        let mut buf = Vec::new();
        // Bounded: a server sending an endless line is not Redis.
        let n = (&mut self.reader)
            .take(MAX_LINE)
            .read_until(b'\n', &mut buf)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            ));
        }
        if !buf.ends_with(b"\r\n") || buf.len() < 3 {
            return Err(protocol("line not ended by CRLF"));
        }
        buf.truncate(buf.len() - 2);
        String::from_utf8(buf).map_err(|_| protocol("reply line is not UTF-8"))
    }
}

/// Longest reply line read (error messages included).
const MAX_LINE: u64 = 64 << 10;

fn protocol(m: impl Into<String>) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("not a Redis reply: {}", m.into()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A fake server that answers any request with `reply`.
    fn serve(reply: &'static [u8]) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0; 1024];
            let _ = io::Read::read(&mut s, &mut buf);
            let _ = s.write_all(reply);
        });
        addr
    }

    #[test]
    fn cli_replies() {
        let addr = serve(b"$3\r\nabc\r\n$-1\r\n:-2\r\n+OK\r\n-ERR no\r\n");
        let mut c = Conn::connect(&addr).unwrap();
        let r = c
            .pipeline(&[
                &[b"GET", b"k"],
                &[b"GET", b"k"],
                &[b"PTTL", b"k"],
                &[b"X"],
                &[b"Y"],
            ])
            .unwrap();
        assert_eq!(
            r,
            [
                Reply::Bulk(b"abc".to_vec()),
                Reply::Nil,
                Reply::Int(-2),
                Reply::Status("OK".into()),
                Reply::Error("ERR no".into())
            ]
        );
    }

    #[test]
    fn cli_garbage_is_an_error_not_a_panic() {
        for bad in [
            &b"*1\r\n:1\r\n"[..],
            b"$5\r\nab\r\n",
            b"$-7\r\n",
            b"$99999999999999999999\r\n",
            b":x\r\n",
            b"\r\n",
            "\u{e9}x\r\n".as_bytes(),
            b"+OK\n",
            b"",
        ] {
            let addr = serve(bad);
            let mut c = Conn::connect(&addr).unwrap();
            assert!(c.pipeline(&[&[b"GET", b"k"]]).is_err(), "{bad:?}");
        }
    }
}
