//! A small synchronous RESP2 client over `std::net::TcpStream`: one request,
//! one reply, enough to administer test servers. Independent of tracklock,
//! so it can judge what the lock wrote. Its reader ([`parse`],
//! [`parse_command`]) works on a byte buffer, so the simulator's Redis
//! reads the engine's commands with it too.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Bound on connecting and on every read and write, so a dead server fails
/// a test instead of hanging it.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Deepest nesting of arrays accepted in a reply.
const MAX_DEPTH: usize = 16;

/// A reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A null bulk string or array.
    Nil,
    /// A simple string (`+OK`).
    Status(String),
    /// An integer.
    Int(i64),
    /// A bulk string.
    Data(Vec<u8>),
    /// An array.
    Array(Vec<Value>),
    /// An error nested in an array (a top-level error reply is an
    /// [`Error::Server`]).
    Error(String),
}

impl Value {
    /// The text of a status or bulk string (bulk strings lossily decoded).
    pub fn text(&self) -> Option<String> {
        match self {
            Value::Status(s) => Some(s.clone()),
            Value::Data(b) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        }
    }

    /// An integer, or a string holding one.
    pub fn int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            other => other.text()?.trim().parse().ok(),
        }
    }
}

/// Why a command failed.
#[derive(Debug)]
pub enum Error {
    /// The connection failed, timed out or was closed.
    Io(io::Error),
    /// The server answered with an error reply (its whole text, e.g.
    /// `MOVED 3999 127.0.0.1:7001`).
    Server(String),
    /// The server sent bytes that are not RESP2.
    Protocol(String),
    /// The reply does not convert to the type asked for.
    Type {
        /// The type asked for.
        expected: &'static str,
        /// The reply.
        got: Value,
    },
    /// A malformed `redis://` URL.
    Url(String),
}

impl Error {
    /// The error code of a server error (its first word: `MOVED`,
    /// `NOAUTH`, `BUSY`, …).
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Server(m) => m.split(' ').next(),
            _ => None,
        }
    }

    /// The `host:port` a `MOVED` or `ASK` error redirects to.
    pub fn redirect(&self) -> Option<&str> {
        match self {
            Error::Server(m) if matches!(self.code(), Some("MOVED" | "ASK")) => m.split(' ').nth(2),
            _ => None,
        }
    }

    /// True when the connection is unusable afterwards (reconnect).
    pub fn is_connection_error(&self) -> bool {
        matches!(self, Error::Io(_) | Error::Protocol(_))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "I/O error: {e}"),
            Error::Server(m) => write!(f, "{m}"),
            Error::Protocol(m) => write!(f, "protocol error: {m}"),
            Error::Type { expected, got } => {
                write!(f, "unexpected reply: expected {expected}, got {got:?}")
            }
            Error::Url(m) => write!(f, "bad URL: {m}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Error {
        Error::Io(e)
    }
}

/// The result of a command.
pub type Result<T> = std::result::Result<T, Error>;

/// Conversion of a reply into a Rust value (lenient like the usual Redis
/// clients: integers read as strings and strings holding integers as
/// integers).
pub trait FromValue: Sized {
    /// Converts `v`, or says what was expected.
    fn from_value(v: Value) -> Result<Self>;
}

fn mismatch<T>(expected: &'static str, got: Value) -> Result<T> {
    Err(Error::Type { expected, got })
}

impl FromValue for Value {
    fn from_value(v: Value) -> Result<Value> {
        Ok(v)
    }
}

/// Any reply.
impl FromValue for () {
    fn from_value(_: Value) -> Result<()> {
        Ok(())
    }
}

impl FromValue for String {
    fn from_value(v: Value) -> Result<String> {
        match v {
            Value::Int(i) => Ok(i.to_string()),
            other => match other.text() {
                Some(t) => Ok(t),
                None => mismatch("a string", other),
            },
        }
    }
}

impl FromValue for Vec<u8> {
    fn from_value(v: Value) -> Result<Vec<u8>> {
        match v {
            Value::Data(b) => Ok(b),
            Value::Status(s) => Ok(s.into_bytes()),
            Value::Int(i) => Ok(i.to_string().into_bytes()),
            other => mismatch("bytes", other),
        }
    }
}

impl FromValue for i64 {
    fn from_value(v: Value) -> Result<i64> {
        match v.int() {
            Some(i) => Ok(i),
            None => mismatch("an integer", v),
        }
    }
}

impl FromValue for u64 {
    fn from_value(v: Value) -> Result<u64> {
        match v.int().and_then(|i| u64::try_from(i).ok()) {
            Some(i) => Ok(i),
            None => mismatch("a non-negative integer", v),
        }
    }
}

impl FromValue for usize {
    fn from_value(v: Value) -> Result<usize> {
        match v.int().and_then(|i| usize::try_from(i).ok()) {
            Some(i) => Ok(i),
            None => mismatch("a non-negative integer", v),
        }
    }
}

/// `1`/`0` or `OK`.
impl FromValue for bool {
    fn from_value(v: Value) -> Result<bool> {
        match &v {
            Value::Int(i) => Ok(*i != 0),
            Value::Status(s) if s == "OK" => Ok(true),
            Value::Nil => Ok(false),
            _ => mismatch("a boolean", v),
        }
    }
}

/// `None` for a nil reply.
impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: Value) -> Result<Option<T>> {
        match v {
            Value::Nil => Ok(None),
            other => T::from_value(other).map(Some),
        }
    }
}

/// An array (a nil reply is empty).
impl<T: FromValue> FromValue for Vec<T> {
    fn from_value(v: Value) -> Result<Vec<T>> {
        match v {
            Value::Array(items) => items.into_iter().map(T::from_value).collect(),
            Value::Nil => Ok(Vec::new()),
            other => mismatch("an array", other),
        }
    }
}

/// Where and how to connect: `redis://[[user]:password@]host:port[/db]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// `host:port`.
    pub addr: String,
    /// The ACL user, if any.
    pub username: Option<String>,
    /// The password, if any.
    pub password: Option<String>,
    /// The database.
    pub db: u32,
}

impl Url {
    /// Parses `redis://[[user]:password@]host[:port][/db]` (port 6379 by
    /// default).
    pub fn parse(url: &str) -> Result<Url> {
        let bad = |why: &str| Error::Url(format!("{url:?}: {why}"));
        let rest = url
            .strip_prefix("redis://")
            .ok_or_else(|| bad("not redis://"))?;
        let (creds, rest) = match rest.rsplit_once('@') {
            Some((c, r)) => (Some(c), r),
            None => (None, rest),
        };
        let (hostport, db) = match rest.split_once('/') {
            Some((h, "")) => (h, 0),
            Some((h, d)) => (h, d.parse().map_err(|_| bad("bad database"))?),
            None => (rest, 0),
        };
        if hostport.is_empty() {
            return Err(bad("no host"));
        }
        let addr = if hostport.contains(':') {
            hostport.to_owned()
        } else {
            format!("{hostport}:6379")
        };
        let (username, password) = match creds {
            None => (None, None),
            Some(c) => match c.split_once(':') {
                Some((u, p)) => ((!u.is_empty()).then(|| u.to_owned()), Some(p.to_owned())),
                None => (None, Some(c.to_owned())),
            },
        };
        Ok(Url {
            addr,
            username,
            password,
            db,
        })
    }
}

/// One connection: commands are written and their replies read in turn.
#[derive(Debug)]
pub struct Conn {
    stream: TcpStream,
    /// Bytes read past the last reply.
    rx: Vec<u8>,
}

impl Conn {
    /// Connects to `host:port` (within [`IO_TIMEOUT`]) with [`IO_TIMEOUT`]
    /// on every read and write.
    pub fn connect(addr: &str) -> Result<Conn> {
        Conn::connect_timeout(addr, IO_TIMEOUT)
    }

    /// Like [`Conn::connect`], with another bound on the TCP connect (a
    /// dead local port refuses at once; a frozen one does not).
    pub fn connect_timeout(addr: &str, timeout: Duration) -> Result<Conn> {
        let sock: SocketAddr = addr
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| Error::Url(format!("{addr:?} resolves to nothing")))?;
        let stream = TcpStream::connect_timeout(&sock, timeout)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        Ok(Conn {
            stream,
            rx: Vec::new(),
        })
    }

    /// Connects as `url` says: `AUTH` when it has a password, `SELECT`
    /// when its database is not 0.
    pub fn open(url: &str) -> Result<Conn> {
        let url = Url::parse(url)?;
        let mut c = Conn::connect(&url.addr)?;
        match (&url.username, &url.password) {
            (Some(u), Some(p)) => c.cmd::<(), _>(&["AUTH", u, p])?,
            (None, Some(p)) => c.cmd::<(), _>(&["AUTH", p])?,
            _ => {}
        }
        if url.db != 0 {
            c.cmd::<(), _>(&["SELECT", &url.db.to_string()])?;
        }
        Ok(c)
    }

    /// Sets the read timeout (`None`: wait forever).
    pub fn set_read_timeout(&self, d: Option<Duration>) -> Result<()> {
        Ok(self.stream.set_read_timeout(d)?)
    }

    /// Writes one command without waiting for its reply.
    pub fn send<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<()> {
        self.stream.write_all(&command(args))?;
        Ok(())
    }

    /// Reads one reply; an error reply is [`Error::Server`].
    pub fn read(&mut self) -> Result<Value> {
        let mut chunk = [0u8; 16 << 10];
        loop {
            if let Some((v, n)) = parse(&self.rx)? {
                self.rx.drain(..n);
                return match v {
                    Value::Error(m) => Err(Error::Server(m)),
                    v => Ok(v),
                };
            }
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    return Err(Error::Io(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "connection closed by the server",
                    )))
                }
                Ok(n) => self.rx.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::Io(e)),
            }
        }
    }

    /// Sends a command and converts its reply.
    pub fn cmd<T: FromValue, A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<T> {
        self.send(args)?;
        T::from_value(self.read()?)
    }
}

/// The line at `buf[at..]` (without its CRLF) and where the next one
/// starts, or `None` while its `\n` has not arrived.
fn line_at(buf: &[u8], at: usize) -> Result<Option<(&str, usize)>> {
    let rest = &buf[at..];
    let Some(lf) = rest.iter().position(|&b| b == b'\n') else {
        return Ok(None);
    };
    let Some(line) = rest[..lf].strip_suffix(b"\r") else {
        return Err(Error::Protocol(format!(
            "line without CRLF: {:?}",
            String::from_utf8_lossy(&rest[..=lf])
        )));
    };
    let line = std::str::from_utf8(line).map_err(|e| Error::Protocol(format!("not UTF-8: {e}")))?;
    Ok(Some((line, at + lf + 1)))
}

/// A bulk string or array length: digits, or `-1` for nil. Stricter than
/// `str::parse` (no sign, no blanks), as Redis writes them.
fn parse_len(s: &str) -> Result<Option<usize>> {
    if s == "-1" {
        return Ok(None);
    }
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::Protocol(format!("bad length {s:?}")));
    }
    s.parse()
        .map(Some)
        .map_err(|_| Error::Protocol(format!("bad length {s:?}")))
}

/// The value at `buf[at..]` and where it ends, or `None` while incomplete.
fn parse_at(buf: &[u8], at: usize, depth: usize) -> Result<Option<(Value, usize)>> {
    if depth > MAX_DEPTH {
        return Err(Error::Protocol("reply nested too deeply".into()));
    }
    // Judge the type byte before the line is complete: garbage fails at
    // once instead of waiting for a newline that may never come.
    match buf.get(at) {
        None => return Ok(None),
        Some(b'+' | b'-' | b':' | b'$' | b'*') => {}
        Some(&b) => {
            return Err(Error::Protocol(format!(
                "unknown reply type {:?}",
                char::from(b)
            )))
        }
    }
    let Some((line, next)) = line_at(buf, at)? else {
        return Ok(None);
    };
    let rest = &line[1..];
    let value = match buf[at] {
        b'+' => Value::Status(rest.to_owned()),
        b'-' => Value::Error(rest.to_owned()),
        b':' => rest
            .parse()
            .map(Value::Int)
            .map_err(|_| Error::Protocol(format!("bad integer {rest:?}")))?,
        b'$' => match parse_len(rest)? {
            None => Value::Nil,
            Some(n) => {
                let Some(end) = next.checked_add(n).and_then(|e| e.checked_add(2)) else {
                    return Err(Error::Protocol(format!("bad length {n}")));
                };
                let Some(data) = buf.get(next..end) else {
                    return Ok(None);
                };
                let Some(data) = data.strip_suffix(b"\r\n") else {
                    return Err(Error::Protocol("bulk string without CRLF".into()));
                };
                return Ok(Some((Value::Data(data.to_vec()), end)));
            }
        },
        _ => match parse_len(rest)? {
            None => Value::Nil,
            Some(n) => {
                let mut items = Vec::with_capacity(n.min(64));
                let mut at = next;
                for _ in 0..n {
                    let Some((item, end)) = parse_at(buf, at, depth + 1)? else {
                        return Ok(None);
                    };
                    items.push(item);
                    at = end;
                }
                return Ok(Some((Value::Array(items), at)));
            }
        },
    };
    Ok(Some((value, next)))
}

/// The bytes of a command: an array of bulk strings, as clients send it.
pub fn command<A: AsRef<[u8]>>(args: &[A]) -> Vec<u8> {
    let mut buf = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        let a = a.as_ref();
        buf.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        buf.extend_from_slice(a);
        buf.extend_from_slice(b"\r\n");
    }
    buf
}

/// Parses one RESP2 value from the front of `buf`: the value and how many
/// bytes it took, `Ok(None)` while `buf` holds only a prefix of one, an
/// error for bytes that are not RESP2. An error reply is [`Value::Error`].
pub fn parse(buf: &[u8]) -> Result<Option<(Value, usize)>> {
    parse_at(buf, 0, 0)
}

/// Parses one client command from the front of `buf`: an array of bulk
/// strings (the form every client library writes; no inline commands),
/// its arguments and how many bytes it took, or `Ok(None)` while
/// incomplete. Anything else is an error (an empty array is not: the
/// server decides).
pub fn parse_command(buf: &[u8]) -> Result<Option<(Vec<Vec<u8>>, usize)>> {
    let Some((value, n)) = parse(buf)? else {
        return Ok(None);
    };
    let not_command = |v: &Value| Error::Protocol(format!("not a command: {v:?}"));
    let Value::Array(items) = value else {
        return Err(not_command(&value));
    };
    let args = items
        .into_iter()
        .map(|item| match item {
            Value::Data(arg) => Ok(arg),
            other => Err(not_command(&other)),
        })
        .collect::<Result<_>>()?;
    Ok(Some((args, n)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `bytes` as one whole reply; a prefix of one is an error, as it is
    /// when the connection closes there.
    fn whole(bytes: &[u8]) -> Result<Value> {
        match super::parse(bytes)? {
            Some((v, n)) => {
                assert_eq!(n, bytes.len(), "{v:?} took all of {bytes:?}");
                Ok(v)
            }
            None => Err(Error::Protocol("incomplete".into())),
        }
    }

    #[test]
    fn replies_parse() {
        assert_eq!(whole(b"+OK\r\n").unwrap(), Value::Status("OK".into()));
        assert_eq!(whole(b":-3\r\n").unwrap(), Value::Int(-3));
        assert_eq!(whole(b"$-1\r\n").unwrap(), Value::Nil);
        assert_eq!(
            whole(b"$2\r\na\n\r\n").unwrap(),
            Value::Data(b"a\n".to_vec())
        );
        assert_eq!(
            whole(b"*2\r\n$1\r\nx\r\n-ERR no\r\n").unwrap(),
            Value::Array(vec![
                Value::Data(b"x".to_vec()),
                Value::Error("ERR no".into())
            ])
        );
        assert!(whole(b"$5\r\nab\r\n").is_err());
        assert!(whole(b"?\r\n").is_err());
        assert!(whole(&b"*1\r\n".repeat(40)).is_err());
    }

    #[test]
    fn every_prefix_is_incomplete_and_garbage_fails_early() {
        let reply = b"*3\r\n$3\r\nabc\r\n:7\r\n*1\r\n+OK\r\n";
        for cut in 0..reply.len() {
            assert!(
                matches!(super::parse(&reply[..cut]), Ok(None)),
                "prefix {cut}"
            );
        }
        let mut two = reply.to_vec();
        two.extend_from_slice(b"+next\r\n");
        let (_, n) = super::parse(&two).unwrap().unwrap();
        assert_eq!(n, reply.len(), "stops at the end of the first reply");
        // Known before the line ends.
        assert!(super::parse(b"?").is_err());
        assert!(super::parse(b"*1\r\n@").is_err());
        // Lengths as Redis writes them, nothing looser.
        for bad in [&b"$+1\r\nx\r\n"[..], b"$ 1\r\nx\r\n", b"*-2\r\n", b"$\r\n"] {
            assert!(super::parse(bad).is_err(), "{bad:?}");
        }
        assert!(
            super::parse(b"$1\r\nxy\r\n").is_err(),
            "bulk longer than said"
        );
        assert!(super::parse(b"+OK\n").is_err(), "bare LF");
    }

    #[test]
    fn commands_are_arrays_of_bulk_strings() {
        let cmd = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
        assert_eq!(
            parse_command(cmd).unwrap(),
            Some((vec![b"GET".to_vec(), b"k".to_vec()], cmd.len()))
        );
        assert_eq!(parse_command(&cmd[..cmd.len() - 1]).unwrap(), None);
        assert_eq!(parse_command(b"*0\r\n").unwrap(), Some((vec![], 4)));
        for bad in [
            &b"PING\r\n"[..],
            b"$4\r\nPING\r\n",
            b"*1\r\n:1\r\n",
            b"*1\r\n$-1\r\n",
            b"*-1\r\n",
        ] {
            assert!(parse_command(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn conversions_are_lenient_like_usual_clients() {
        assert_eq!(String::from_value(Value::Int(4)).unwrap(), "4");
        assert_eq!(i64::from_value(Value::Data(b"12".to_vec())).unwrap(), 12);
        assert_eq!(Option::<Vec<u8>>::from_value(Value::Nil).unwrap(), None);
        assert!(i64::from_value(Value::Status("x".into())).is_err());
        let keys = Value::Array(vec![Value::Data(b"a".to_vec())]);
        assert_eq!(Vec::<String>::from_value(keys).unwrap(), ["a"]);
    }

    #[test]
    fn server_errors_name_code_and_redirect() {
        let e = Error::Server("MOVED 3999 127.0.0.1:7001".into());
        assert_eq!(e.code(), Some("MOVED"));
        assert_eq!(e.redirect(), Some("127.0.0.1:7001"));
        assert_eq!(Error::Server("NOAUTH x".into()).redirect(), None);
    }

    #[test]
    fn urls_parse() {
        let u = Url::parse("redis://:pw@127.0.0.1:7000/2").unwrap();
        assert_eq!(
            (u.addr.as_str(), u.username, u.password.as_deref(), u.db),
            ("127.0.0.1:7000", None, Some("pw"), 2)
        );
        let u = Url::parse("redis://user:pw@h").unwrap();
        assert_eq!(u.addr, "h:6379");
        assert_eq!(u.username.as_deref(), Some("user"));
        assert!(Url::parse("http://x").is_err());
        assert!(Url::parse("redis://h:1/x").is_err());
    }
}
