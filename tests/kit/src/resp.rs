//! A small synchronous RESP2 client over `std::net::TcpStream`: one request,
//! one reply, enough to administer test servers. Independent of tracklock,
//! so it can judge what the lock wrote.

use std::fmt;
use std::io::{self, BufRead, BufReader, Write};
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
    writer: TcpStream,
    reader: BufReader<TcpStream>,
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
        let writer = TcpStream::connect_timeout(&sock, timeout)?;
        writer.set_nodelay(true)?;
        writer.set_read_timeout(Some(IO_TIMEOUT))?;
        writer.set_write_timeout(Some(IO_TIMEOUT))?;
        let reader = BufReader::new(writer.try_clone()?);
        Ok(Conn { writer, reader })
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
        Ok(self.writer.set_read_timeout(d)?)
    }

    /// Writes one command without waiting for its reply.
    pub fn send<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<()> {
        let mut buf = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            let a = a.as_ref();
            buf.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            buf.extend_from_slice(a);
            buf.extend_from_slice(b"\r\n");
        }
        self.writer.write_all(&buf)?;
        Ok(())
    }

    /// Reads one reply; an error reply is [`Error::Server`].
    pub fn read(&mut self) -> Result<Value> {
        match read_value(&mut self.reader, 0)? {
            Value::Error(m) => Err(Error::Server(m)),
            v => Ok(v),
        }
    }

    /// Sends a command and converts its reply.
    pub fn cmd<T: FromValue, A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<T> {
        self.send(args)?;
        T::from_value(self.read()?)
    }
}

fn read_line(r: &mut impl BufRead) -> Result<String> {
    let mut line = Vec::new();
    loop {
        match r.read_until(b'\n', &mut line) {
            Ok(0) => {
                return Err(Error::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed by the server",
                )))
            }
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::Io(e)),
        }
    }
    if !line.ends_with(b"\r\n") {
        return Err(Error::Protocol(format!(
            "line without CRLF: {:?}",
            String::from_utf8_lossy(&line)
        )));
    }
    line.truncate(line.len() - 2);
    String::from_utf8(line).map_err(|e| Error::Protocol(format!("not UTF-8: {e}")))
}

fn read_len(s: &str) -> Result<Option<usize>> {
    match s.parse::<i64>() {
        Ok(-1) => Ok(None),
        Ok(n) => usize::try_from(n)
            .map(Some)
            .map_err(|_| Error::Protocol(format!("bad length {n}"))),
        Err(_) => Err(Error::Protocol(format!("bad length {s:?}"))),
    }
}

fn read_value(r: &mut impl BufRead, depth: usize) -> Result<Value> {
    if depth > MAX_DEPTH {
        return Err(Error::Protocol("reply nested too deeply".into()));
    }
    let line = read_line(r)?;
    let Some(kind) = line.chars().next() else {
        return Err(Error::Protocol("empty line".into()));
    };
    let rest = &line[kind.len_utf8()..];
    match kind {
        '+' => Ok(Value::Status(rest.to_owned())),
        '-' => Ok(Value::Error(rest.to_owned())),
        ':' => rest
            .parse()
            .map(Value::Int)
            .map_err(|_| Error::Protocol(format!("bad integer {rest:?}"))),
        '$' => match read_len(rest)? {
            None => Ok(Value::Nil),
            Some(n) => {
                let mut data = vec![0; n + 2];
                r.read_exact(&mut data)?;
                if !data.ends_with(b"\r\n") {
                    return Err(Error::Protocol("bulk string without CRLF".into()));
                }
                data.truncate(n);
                Ok(Value::Data(data))
            }
        },
        '*' => match read_len(rest)? {
            None => Ok(Value::Nil),
            Some(n) => (0..n)
                .map(|_| read_value(r, depth + 1))
                .collect::<Result<Vec<_>>>()
                .map(Value::Array),
        },
        _ => Err(Error::Protocol(format!("unknown reply type {line:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Result<Value> {
        read_value(&mut &bytes[..], 0)
    }

    #[test]
    fn replies_parse() {
        assert_eq!(parse(b"+OK\r\n").unwrap(), Value::Status("OK".into()));
        assert_eq!(parse(b":-3\r\n").unwrap(), Value::Int(-3));
        assert_eq!(parse(b"$-1\r\n").unwrap(), Value::Nil);
        assert_eq!(
            parse(b"$2\r\na\n\r\n").unwrap(),
            Value::Data(b"a\n".to_vec())
        );
        assert_eq!(
            parse(b"*2\r\n$1\r\nx\r\n-ERR no\r\n").unwrap(),
            Value::Array(vec![
                Value::Data(b"x".to_vec()),
                Value::Error("ERR no".into())
            ])
        );
        assert!(parse(b"$5\r\nab\r\n").is_err());
        assert!(parse(b"?\r\n").is_err());
        assert!(parse(&b"*1\r\n".repeat(40)).is_err());
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
