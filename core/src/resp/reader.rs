//! RESP2/RESP3 reader that borrows from the input and never allocates.
//!
//! [`parse`] checks a whole frame in one pass without recursion, using a fixed
//! stack of [`MAX_DEPTH`] counters. Only then does it return the frame. So
//! iterating an [`Aggregate`] re-reads bytes that are already known to be
//! valid, and that iteration cannot fail.

use core::fmt;
use core::iter::FusedIterator;

/// Deepest aggregate nesting the reader accepts.
///
/// Each array, set, map, push and attribute adds one level. A top-level array
/// of scalars has depth 1.
pub const MAX_DEPTH: usize = 8;

/// Largest bulk, blob error or verbatim string length accepted (512 MiB, as Redis).
const MAX_BULK: u64 = 512 * 1024 * 1024;

/// Largest declared aggregate count accepted.
const MAX_COUNT: u64 = 1 << 32;

/// A malformed or unsupported frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RespError {
    /// Bad syntax, or a frame kind the reader does not support.
    Malformed(&'static str),
    /// Aggregates nested deeper than [`MAX_DEPTH`].
    TooDeep,
}

impl fmt::Display for RespError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RespError::Malformed(why) => write!(f, "malformed RESP: {why}"),
            RespError::TooDeep => write!(f, "RESP aggregates nested deeper than {MAX_DEPTH}"),
        }
    }
}

/// Elements of an array, set, map or push frame. Already validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Aggregate<'a> {
    count: usize,
    body: &'a [u8],
}

impl<'a> Aggregate<'a> {
    /// Number of elements. For a map this is twice the number of pairs.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when the aggregate has no elements.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The elements in wire order. For a map: key, value, key, value, …
    pub fn iter(&self) -> Frames<'a> {
        Frames {
            rest: self.body,
            left: self.count,
        }
    }
}

impl<'a> IntoIterator for Aggregate<'a> {
    type Item = Frame<'a>;
    type IntoIter = Frames<'a>;

    fn into_iter(self) -> Frames<'a> {
        self.iter()
    }
}

/// Iterator over the elements of an [`Aggregate`].
#[derive(Debug, Clone)]
pub struct Frames<'a> {
    rest: &'a [u8],
    left: usize,
}

impl<'a> Iterator for Frames<'a> {
    type Item = Frame<'a>;

    fn next(&mut self) -> Option<Frame<'a>> {
        if self.left == 0 {
            return None;
        }
        // The body was validated by `parse`, so this always succeeds. If it
        // ever did not, stop instead of panicking.
        match parse(self.rest) {
            Ok(Some((frame, used))) => {
                self.rest = self.rest.get(used..).unwrap_or_default();
                self.left -= 1;
                Some(frame)
            }
            _ => {
                self.left = 0;
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for Frames<'_> {}

impl FusedIterator for Frames<'_> {}

/// One decoded RESP frame, borrowing from the input buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    /// `+` simple string.
    Simple(&'a [u8]),
    /// `-` simple error or `!` blob error: the message.
    Error(&'a [u8]),
    /// `:` integer.
    Int(i64),
    /// `$` bulk string, or the text of a `=` verbatim string (without its format).
    Bulk(&'a [u8]),
    /// `_` null, or RESP2's `$-1` / `*-1`.
    Null,
    /// `#t` / `#f` boolean.
    Bool(bool),
    /// `,` double, as its text (e.g. `1.5`, `inf`, `nan`).
    Double(&'a [u8]),
    /// `(` big number, as its decimal text.
    BigNumber(&'a [u8]),
    /// `*` array.
    Array(Aggregate<'a>),
    /// `~` set.
    Set(Aggregate<'a>),
    /// `%` map; its aggregate yields keys and values alternately.
    Map(Aggregate<'a>),
    /// `>` out-of-band push.
    Push(Aggregate<'a>),
}

impl<'a> Frame<'a> {
    /// The bytes of a simple or bulk string.
    pub fn as_bytes(&self) -> Option<&'a [u8]> {
        match *self {
            Frame::Simple(b) | Frame::Bulk(b) => Some(b),
            _ => None,
        }
    }

    /// The value of an integer.
    pub fn as_int(&self) -> Option<i64> {
        match *self {
            Frame::Int(v) => Some(v),
            _ => None,
        }
    }

    /// The elements of an array, set, map or push.
    pub fn as_aggregate(&self) -> Option<Aggregate<'a>> {
        match *self {
            Frame::Array(a) | Frame::Set(a) | Frame::Map(a) | Frame::Push(a) => Some(a),
            _ => None,
        }
    }
}

/// Reads the first frame of `buf`.
///
/// Returns `Ok(None)` when `buf` holds only the beginning of a frame, or
/// `Ok(Some((frame, consumed)))`. `consumed` counts the frame's bytes and the
/// bytes of any attributes before it; attributes are skipped.
///
/// # Errors
///
/// [`RespError::Malformed`] for invalid or unsupported (streamed) input, and
/// [`RespError::TooDeep`] for nesting deeper than [`MAX_DEPTH`].
pub fn parse(buf: &[u8]) -> Result<Option<(Frame<'_>, usize)>, RespError> {
    let Some((start, end)) = scan(buf)? else {
        return Ok(None);
    };
    let Some((h, body_start)) = head(buf, start)? else {
        return Err(RespError::Malformed("inconsistent frame"));
    };
    let frame = match h {
        Head::Leaf(frame) => frame,
        Head::Agg { kind, elems } => {
            let agg = Aggregate {
                count: usize::try_from(elems)
                    .map_err(|_| RespError::Malformed("length overflows usize"))?,
                body: buf.get(body_start..end).unwrap_or_default(),
            };
            match kind {
                AggKind::Array => Frame::Array(agg),
                AggKind::Set => Frame::Set(agg),
                AggKind::Map => Frame::Map(agg),
                AggKind::Push => Frame::Push(agg),
                AggKind::Attr => return Err(RespError::Malformed("inconsistent frame")),
            }
        }
    };
    Ok(Some((frame, end)))
}

/// `Ok(None)`: more bytes are needed.
type Step<T> = Result<Option<T>, RespError>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AggKind {
    Array,
    Set,
    Map,
    Push,
    Attr,
}

/// A frame's type byte and header line, plus the payload of a scalar.
enum Head<'a> {
    Leaf(Frame<'a>),
    /// An aggregate of `elems` elements (twice the pairs for maps and attributes).
    Agg {
        kind: AggKind,
        elems: u64,
    },
}

enum Len {
    N(u64),
    Nil,
}

/// Validates the first frame of `buf` (and any attributes before it) and
/// returns where the frame itself starts and where it ends.
fn scan(buf: &[u8]) -> Step<(usize, usize)> {
    // Elements still expected by each open aggregate, and whether it is an attribute.
    let mut left = [0u64; MAX_DEPTH];
    let mut is_attr = [false; MAX_DEPTH];
    let mut depth = 0usize;
    let mut start = 0usize;
    let mut pos = 0usize;
    loop {
        // Every header is at least one byte, so `pos` strictly grows.
        let Some((h, next)) = head(buf, pos)? else {
            return Ok(None);
        };
        pos = next;
        let mut closed_attr = match h {
            Head::Leaf(_) => false,
            Head::Agg { kind, elems } => {
                if depth == MAX_DEPTH {
                    return Err(RespError::TooDeep);
                }
                if elems > 0 {
                    left[depth] = elems;
                    is_attr[depth] = kind == AggKind::Attr;
                    depth += 1;
                    continue;
                }
                kind == AggKind::Attr
            }
        };
        // One element ended at `pos`: close every aggregate it completes.
        loop {
            if closed_attr {
                // An attribute is not an element: the frame it annotates follows.
                if depth == 0 {
                    start = pos;
                }
                break;
            }
            let Some(top) = depth.checked_sub(1) else {
                return Ok(Some((start, pos)));
            };
            left[top] -= 1;
            if left[top] > 0 {
                break;
            }
            depth = top;
            closed_attr = is_attr[top];
        }
    }
}

/// Reads the header of the frame at `pos`, and the payload of a scalar.
/// Returns where the next frame (or the first element) starts.
fn head(buf: &[u8], pos: usize) -> Step<(Head<'_>, usize)> {
    let Some(&tag) = buf.get(pos) else {
        return Ok(None);
    };
    let p = pos + 1;
    match tag {
        b'+' => leaf(map(line(buf, p), Frame::Simple)),
        b'-' => leaf(map(line(buf, p), Frame::Error)),
        b':' => leaf(map(integer(buf, p), Frame::Int)),
        b'$' => {
            let Some((len, next)) = length(buf, p, MAX_BULK, true)? else {
                return Ok(None);
            };
            match len {
                Len::Nil => Ok(Some((Head::Leaf(Frame::Null), next))),
                Len::N(n) => leaf(map(blob(buf, next, n), Frame::Bulk)),
            }
        }
        b'!' => {
            let Some((len, next)) = length(buf, p, MAX_BULK, false)? else {
                return Ok(None);
            };
            let Len::N(n) = len else {
                return Err(RespError::Malformed("negative length"));
            };
            leaf(map(blob(buf, next, n), Frame::Error))
        }
        b'=' => {
            let Some((len, next)) = length(buf, p, MAX_BULK, false)? else {
                return Ok(None);
            };
            let Len::N(n) = len else {
                return Err(RespError::Malformed("negative length"));
            };
            if n < 4 {
                return Err(RespError::Malformed("verbatim string without format"));
            }
            if buf.get(next + 3).is_some_and(|&b| b != b':') {
                return Err(RespError::Malformed("verbatim string without format"));
            }
            leaf(map(blob(buf, next, n), |text| {
                Frame::Bulk(text.get(4..).unwrap_or_default())
            }))
        }
        b'_' => leaf(map(crlf(buf, p), |()| Frame::Null)),
        b'#' => {
            let value = match buf.get(p) {
                None => return Ok(None),
                Some(b't') => true,
                Some(b'f') => false,
                Some(_) => return Err(RespError::Malformed("bad boolean")),
            };
            leaf(map(crlf(buf, p + 1), |()| Frame::Bool(value)))
        }
        b',' => leaf(map(double(buf, p), Frame::Double)),
        b'(' => leaf(map(big_number(buf, p), Frame::BigNumber)),
        b'*' => aggregate(buf, p, AggKind::Array),
        b'~' => aggregate(buf, p, AggKind::Set),
        b'>' => aggregate(buf, p, AggKind::Push),
        b'%' => aggregate(buf, p, AggKind::Map),
        b'|' => aggregate(buf, p, AggKind::Attr),
        _ => Err(RespError::Malformed("bad type byte")),
    }
}

/// Wraps a scalar frame as a header.
fn leaf(step: Step<(Frame<'_>, usize)>) -> Step<(Head<'_>, usize)> {
    map(step, Head::Leaf)
}

/// The count line of an aggregate whose type byte precedes `pos`.
fn aggregate(buf: &[u8], pos: usize, kind: AggKind) -> Step<(Head<'_>, usize)> {
    let Some((len, next)) = length(buf, pos, MAX_COUNT, kind == AggKind::Array)? else {
        return Ok(None);
    };
    let head = match len {
        Len::Nil => Head::Leaf(Frame::Null),
        Len::N(n) if matches!(kind, AggKind::Map | AggKind::Attr) => {
            Head::Agg { kind, elems: n * 2 }
        }
        Len::N(n) => Head::Agg { kind, elems: n },
    };
    Ok(Some((head, next)))
}

/// Applies `f` to the value of a complete step.
fn map<T, U>(step: Step<(T, usize)>, f: impl FnOnce(T) -> U) -> Step<(U, usize)> {
    step.map(|o| o.map(|(v, n)| (f(v), n)))
}

/// Expects `\r\n` at `pos`.
fn crlf(buf: &[u8], pos: usize) -> Step<((), usize)> {
    match buf.get(pos) {
        None => return Ok(None),
        Some(b'\r') => {}
        Some(_) => return Err(RespError::Malformed("expected CRLF")),
    }
    match buf.get(pos + 1) {
        None => Ok(None),
        Some(b'\n') => Ok(Some(((), pos + 2))),
        Some(_) => Err(RespError::Malformed("expected CRLF")),
    }
}

/// A line without CR or LF, up to its `\r\n`.
fn line(buf: &[u8], pos: usize) -> Step<(&[u8], usize)> {
    let rest = buf.get(pos..).unwrap_or_default();
    let Some(end) = rest.iter().position(|&b| b == b'\r' || b == b'\n') else {
        return Ok(None);
    };
    let Some(((), next)) = crlf(buf, pos + end)? else {
        return Ok(None);
    };
    Ok(Some((rest.get(..end).unwrap_or_default(), next)))
}

/// A decimal length line: digits, or `-1` when `nil_ok`, at most `max`.
fn length(buf: &[u8], pos: usize, max: u64, nil_ok: bool) -> Step<(Len, usize)> {
    match buf.get(pos) {
        None => return Ok(None),
        Some(b'?') => return Err(RespError::Malformed("streamed types unsupported")),
        Some(b'-') => {
            return match buf.get(pos + 1) {
                None if nil_ok => Ok(None),
                Some(b'1') if nil_ok => map(crlf(buf, pos + 2), |()| Len::Nil),
                _ => Err(RespError::Malformed("negative length")),
            };
        }
        Some(_) => {}
    }
    let mut n = 0u64;
    let mut i = pos;
    loop {
        match buf.get(i) {
            None => return Ok(None),
            Some(&b) if b.is_ascii_digit() => {
                // `n <= max <= 2^32`, so this cannot overflow.
                n = n * 10 + u64::from(b - b'0');
                if n > max {
                    return Err(RespError::Malformed("length too large"));
                }
                i += 1;
            }
            Some(b'\r') if i > pos => return map(crlf(buf, i), |()| Len::N(n)),
            Some(_) => return Err(RespError::Malformed("bad length")),
        }
    }
}

/// `n` payload bytes followed by `\r\n`.
fn blob(buf: &[u8], pos: usize, n: u64) -> Step<(&[u8], usize)> {
    let n = usize::try_from(n).map_err(|_| RespError::Malformed("length overflows usize"))?;
    let end = pos
        .checked_add(n)
        .ok_or(RespError::Malformed("length overflows usize"))?;
    let Some(data) = buf.get(pos..end) else {
        return Ok(None);
    };
    map(crlf(buf, end), |()| data)
}

/// Offset just past an optional sign and at least one digit, at the `\r`.
fn digits(buf: &[u8], pos: usize) -> Step<((), usize)> {
    let start = match buf.get(pos) {
        None => return Ok(None),
        Some(b'-' | b'+') => pos + 1,
        Some(_) => pos,
    };
    let mut i = start;
    loop {
        match buf.get(i) {
            None => return Ok(None),
            Some(b) if b.is_ascii_digit() => i += 1,
            Some(b'\r') if i > start => return Ok(Some(((), i))),
            Some(_) => return Err(RespError::Malformed("bad number")),
        }
    }
}

/// A signed 64-bit decimal line.
fn integer(buf: &[u8], pos: usize) -> Step<(i64, usize)> {
    let Some(((), end)) = digits(buf, pos)? else {
        return Ok(None);
    };
    let Some(((), next)) = crlf(buf, end)? else {
        return Ok(None);
    };
    let text = buf.get(pos..end).unwrap_or_default();
    let (negative, body) = match text.split_first() {
        Some((b'-', body)) => (true, body),
        Some((b'+', body)) => (false, body),
        _ => (false, text),
    };
    const OVERFLOW: RespError = RespError::Malformed("integer overflow");
    // Accumulate negatively so that i64::MIN fits.
    let mut v = 0i64;
    for &b in body {
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_sub(i64::from(b - b'0')))
            .ok_or(OVERFLOW)?;
    }
    let v = if negative {
        v
    } else {
        v.checked_neg().ok_or(OVERFLOW)?
    };
    Ok(Some((v, next)))
}

/// A big number line: optional sign, then digits.
fn big_number(buf: &[u8], pos: usize) -> Step<(&[u8], usize)> {
    let Some(((), end)) = digits(buf, pos)? else {
        return Ok(None);
    };
    map(crlf(buf, end), |()| buf.get(pos..end).unwrap_or_default())
}

/// A double line: anything `f64`'s parser accepts (`1.5`, `-2e10`, `inf`, `nan`).
fn double(buf: &[u8], pos: usize) -> Step<(&[u8], usize)> {
    let Some((text, next)) = line(buf, pos)? else {
        return Ok(None);
    };
    let valid = core::str::from_utf8(text).is_ok_and(|s| s.parse::<f64>().is_ok());
    if !valid {
        return Err(RespError::Malformed("bad double"));
    }
    Ok(Some((text, next)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PUSH_INVALIDATE: &[u8] = b">2\r\n$10\r\ninvalidate\r\n*1\r\n$2\r\nk1\r\n";
    const PUSH_INVALIDATE_NULL: &[u8] = b">2\r\n$10\r\ninvalidate\r\n_\r\n";
    const HELLO3: &[u8] = b"%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n\
$5\r\nproto\r\n:3\r\n$2\r\nid\r\n:3\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n\
$7\r\nmodules\r\n*0\r\n";

    /// Several frames back to back, covering every type.
    const STREAMS: &[&[u8]] = &[
        b"+OK\r\n-ERR bad\r\n:-42\r\n$5\r\nhello\r\n$0\r\n\r\n$-1\r\n*-1\r\n_\r\n#t\r\n#f\r\n",
        b",3.25\r\n,-inf\r\n,nan\r\n(-12345678901234567890123\r\n!8\r\nSYNTAX x\r\n=8\r\ntxt:abcd\r\n",
        b"*3\r\n:1\r\n*2\r\n+a\r\n$1\r\nb\r\n~0\r\n%1\r\n+k\r\n_\r\n>1\r\n#f\r\n*0\r\n",
        b"|1\r\n+ttl\r\n:3600\r\n$2\r\nhi\r\n*2\r\n|1\r\n+a\r\n+b\r\n:1\r\n:2\r\n",
        PUSH_INVALIDATE,
        PUSH_INVALIDATE_NULL,
        HELLO3,
    ];

    fn one(input: &[u8]) -> Frame<'_> {
        let (frame, used) = parse(input).unwrap().unwrap();
        assert_eq!(used, input.len(), "consumed for {input:?}");
        frame
    }

    fn err(input: &[u8]) -> RespError {
        match parse(input) {
            Err(e) => e,
            other => panic!("expected an error for {input:?}, got {other:?}"),
        }
    }

    /// Walks a frame and its children; checks every aggregate yields `len` items.
    fn walk(frame: Frame<'_>) -> usize {
        match frame.as_aggregate() {
            None => 1,
            Some(agg) => {
                let mut n = 0;
                let mut total = 1;
                for child in agg.iter() {
                    n += 1;
                    total += walk(child);
                }
                assert_eq!(n, agg.len());
                total
            }
        }
    }

    /// Splits a stream into its frames' lengths.
    fn frame_lengths(stream: &[u8], out: &mut [usize; 32]) -> usize {
        let mut count = 0;
        let mut rest = stream;
        while !rest.is_empty() {
            let (_, used) = parse(rest).unwrap().unwrap();
            out[count] = used;
            count += 1;
            rest = &rest[used..];
        }
        count
    }

    #[test]
    fn scalars() {
        assert_eq!(one(b"+OK\r\n"), Frame::Simple(b"OK"));
        assert_eq!(one(b"+\r\n"), Frame::Simple(b""));
        assert_eq!(one(b"-ERR no\r\n"), Frame::Error(b"ERR no"));
        assert_eq!(one(b":0\r\n"), Frame::Int(0));
        assert_eq!(one(b":+7\r\n"), Frame::Int(7));
        assert_eq!(one(b":-7\r\n"), Frame::Int(-7));
        assert_eq!(one(b":9223372036854775807\r\n"), Frame::Int(i64::MAX));
        assert_eq!(one(b":-9223372036854775808\r\n"), Frame::Int(i64::MIN));
        assert_eq!(one(b"$3\r\na\r\n\r\n"), Frame::Bulk(b"a\r\n"));
        assert_eq!(one(b"$0\r\n\r\n"), Frame::Bulk(b""));
        assert_eq!(one(b"$-1\r\n"), Frame::Null);
        assert_eq!(one(b"*-1\r\n"), Frame::Null);
        assert_eq!(one(b"_\r\n"), Frame::Null);
        assert_eq!(one(b"#t\r\n"), Frame::Bool(true));
        assert_eq!(one(b"#f\r\n"), Frame::Bool(false));
        assert_eq!(one(b",1.5\r\n"), Frame::Double(b"1.5"));
        assert_eq!(one(b",-1e10\r\n"), Frame::Double(b"-1e10"));
        assert_eq!(one(b",inf\r\n"), Frame::Double(b"inf"));
        assert_eq!(one(b",nan\r\n"), Frame::Double(b"nan"));
        assert_eq!(
            one(b"(3492890328409238509324850943850943825024385\r\n"),
            Frame::BigNumber(b"3492890328409238509324850943850943825024385")
        );
        assert_eq!(one(b"(-1\r\n"), Frame::BigNumber(b"-1"));
        assert_eq!(
            one(b"!21\r\nSYNTAX invalid syntax\r\n"),
            Frame::Error(b"SYNTAX invalid syntax")
        );
        assert_eq!(
            one(b"=15\r\ntxt:Some string\r\n"),
            Frame::Bulk(b"Some string")
        );
        assert_eq!(one(b"=4\r\nmkd:\r\n"), Frame::Bulk(b""));
    }

    #[test]
    fn helpers() {
        assert_eq!(one(b"+OK\r\n").as_bytes(), Some(&b"OK"[..]));
        assert_eq!(one(b"$2\r\nhi\r\n").as_bytes(), Some(&b"hi"[..]));
        assert_eq!(one(b":5\r\n").as_bytes(), None);
        assert_eq!(one(b":5\r\n").as_int(), Some(5));
        assert_eq!(one(b"+5\r\n").as_int(), None);
        assert!(one(b"_\r\n").as_aggregate().is_none());
        assert_eq!(
            one(b"~1\r\n:1\r\n").as_aggregate().map(|a| a.len()),
            Some(1)
        );
    }

    #[test]
    fn aggregates() {
        let Frame::Array(a) = one(b"*3\r\n:1\r\n$1\r\nx\r\n*1\r\n_\r\n") else {
            panic!()
        };
        assert_eq!(a.len(), 3);
        assert!(!a.is_empty());
        let mut it = a.iter();
        assert_eq!(it.len(), 3);
        assert_eq!(it.next(), Some(Frame::Int(1)));
        assert_eq!(it.next(), Some(Frame::Bulk(b"x")));
        let Some(Frame::Array(inner)) = it.next() else {
            panic!()
        };
        assert_eq!(inner.iter().next(), Some(Frame::Null));
        assert_eq!(it.next(), None);
        assert_eq!(it.next(), None);

        let Frame::Array(empty) = one(b"*0\r\n") else {
            panic!()
        };
        assert!(empty.is_empty());
        assert_eq!(empty.iter().next(), None);

        let Frame::Set(s) = one(b"~2\r\n+a\r\n+b\r\n") else {
            panic!()
        };
        assert_eq!(s.len(), 2);
        let Frame::Push(p) = one(b">1\r\n+pong\r\n") else {
            panic!()
        };
        assert_eq!(p.into_iter().next(), Some(Frame::Simple(b"pong")));

        let Frame::Map(m) = one(b"%2\r\n+a\r\n:1\r\n+b\r\n*1\r\n:2\r\n") else {
            panic!()
        };
        assert_eq!(m.len(), 4);
        let mut it = m.iter();
        assert_eq!(it.next(), Some(Frame::Simple(b"a")));
        assert_eq!(it.next(), Some(Frame::Int(1)));
        assert_eq!(it.next(), Some(Frame::Simple(b"b")));
        assert!(matches!(it.next(), Some(Frame::Array(a)) if a.len() == 1));
        assert_eq!(it.next(), None);
        let Frame::Map(m) = one(b"%0\r\n") else {
            panic!()
        };
        assert!(m.is_empty());
    }

    #[test]
    fn invalidation_push() {
        let Frame::Push(p) = one(PUSH_INVALIDATE) else {
            panic!()
        };
        let mut it = p.iter();
        assert_eq!(it.next(), Some(Frame::Bulk(b"invalidate")));
        let Some(Frame::Array(keys)) = it.next() else {
            panic!()
        };
        assert_eq!(it.next(), None);
        let mut keys = keys.iter();
        assert_eq!(keys.next(), Some(Frame::Bulk(b"k1")));
        assert_eq!(keys.next(), None);

        let Frame::Push(p) = one(PUSH_INVALIDATE_NULL) else {
            panic!()
        };
        let mut it = p.iter();
        assert_eq!(it.next(), Some(Frame::Bulk(b"invalidate")));
        assert_eq!(it.next(), Some(Frame::Null));
        assert_eq!(it.next(), None);
    }

    #[test]
    fn hello3_reply() {
        let Frame::Map(m) = one(HELLO3) else { panic!() };
        assert_eq!(m.len(), 14);
        let mut it = m.iter();
        let mut expect = |k: &[u8], v: Frame<'_>| {
            assert_eq!(it.next(), Some(Frame::Bulk(k)));
            assert_eq!(it.next(), Some(v));
        };
        expect(b"server", Frame::Bulk(b"redis"));
        expect(b"version", Frame::Bulk(b"7.0.15"));
        expect(b"proto", Frame::Int(3));
        expect(b"id", Frame::Int(3));
        expect(b"mode", Frame::Bulk(b"standalone"));
        expect(b"role", Frame::Bulk(b"master"));
        assert_eq!(it.next(), Some(Frame::Bulk(b"modules")));
        let Some(Frame::Array(modules)) = it.next() else {
            panic!()
        };
        assert!(modules.is_empty());
        assert_eq!(it.next(), None);
    }

    #[test]
    fn attributes_are_skipped() {
        // Top level.
        let input = b"|1\r\n+key-popularity\r\n%2\r\n$1\r\na\r\n,0.1923\r\n$1\r\nb\r\n,0.0012\r\n*2\r\n:2039123\r\n:9543892\r\n";
        let Frame::Array(a) = one(input) else {
            panic!()
        };
        let mut it = a.iter();
        assert_eq!(it.next(), Some(Frame::Int(2039123)));
        assert_eq!(it.next(), Some(Frame::Int(9543892)));
        assert_eq!(it.next(), None);
        // Empty attribute, and two in a row.
        assert_eq!(one(b"|0\r\n:1\r\n"), Frame::Int(1));
        assert_eq!(
            one(b"|1\r\n+a\r\n+b\r\n|1\r\n+c\r\n+d\r\n_\r\n"),
            Frame::Null
        );
        // Inside an array, before an element, and before a map value.
        let Frame::Array(a) = one(b"*2\r\n:1\r\n|1\r\n+a\r\n+b\r\n:2\r\n") else {
            panic!()
        };
        assert_eq!(a.len(), 2);
        let mut it = a.iter();
        assert_eq!(it.next(), Some(Frame::Int(1)));
        assert_eq!(it.next(), Some(Frame::Int(2)));
        assert_eq!(it.next(), None);
        let Frame::Map(m) = one(b"%1\r\n+k\r\n|1\r\n+a\r\n*1\r\n:0\r\n+v\r\n") else {
            panic!()
        };
        let mut it = m.iter();
        assert_eq!(it.next(), Some(Frame::Simple(b"k")));
        assert_eq!(it.next(), Some(Frame::Simple(b"v")));
        assert_eq!(it.next(), None);
        // An attribute alone is not a frame yet.
        assert_eq!(parse(b"|1\r\n+a\r\n+b\r\n"), Ok(None));
        // The frame after it must be valid.
        assert!(parse(b"|1\r\n+a\r\n+b\r\n?\r\n").is_err());
    }

    #[test]
    fn every_strict_prefix_is_incomplete() {
        let mut lens = [0usize; 32];
        for stream in STREAMS {
            let count = frame_lengths(stream, &mut lens);
            let mut rest = *stream;
            for &len in &lens[..count] {
                for cut in 0..len {
                    assert_eq!(parse(&rest[..cut]), Ok(None), "prefix {:?}", &rest[..cut]);
                }
                let (frame, used) = parse(&rest[..len]).unwrap().unwrap();
                assert_eq!(used, len);
                walk(frame);
                rest = &rest[len..];
            }
        }
    }

    #[test]
    fn concatenated_frames() {
        let stream = b"+OK\r\n:1\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n_\r\n";
        let (f, n) = parse(stream).unwrap().unwrap();
        assert_eq!((f, n), (Frame::Simple(b"OK"), 5));
        let (f, m) = parse(&stream[n..]).unwrap().unwrap();
        assert_eq!((f, m), (Frame::Int(1), 4));
        let (f, k) = parse(&stream[n + m..]).unwrap().unwrap();
        assert!(matches!(f, Frame::Array(a) if a.len() == 2));
        assert_eq!(k, 18);
        assert_eq!(parse(&stream[n + m + k..]), Ok(Some((Frame::Null, 3))));
        assert_eq!(parse(&stream[stream.len()..]), Ok(None));
    }

    #[test]
    fn fed_byte_by_byte() {
        for stream in STREAMS {
            let mut lens = [0usize; 32];
            let expected = frame_lengths(stream, &mut lens);
            let mut buf = [0u8; 512];
            let (mut filled, mut seen, mut offset) = (0usize, 0usize, 0usize);
            for &b in stream.iter() {
                buf[filled] = b;
                filled += 1;
                while let Some((frame, used)) = parse(&buf[..filled]).unwrap() {
                    assert_eq!(used, lens[seen]);
                    let direct = parse(&stream[offset..]).unwrap().unwrap().0;
                    assert_eq!(frame, direct);
                    walk(frame);
                    seen += 1;
                    offset += used;
                    buf.copy_within(used..filled, 0);
                    filled -= used;
                }
            }
            assert_eq!((seen, filled), (expected, 0));
        }
    }

    #[test]
    fn malformed_inputs() {
        let cases: &[&[u8]] = &[
            b"x\r\n",                        // bad type byte
            b"\r\n",                         // empty line
            b"+OK\rX",                       // CR without LF
            b"+O\nK\r\n",                    // bare LF
            b":\r\n",                        // no digits
            b":12a\r\n",                     // non-numeric integer
            b":-\r\n",                       // sign only
            b":9223372036854775808\r\n",     // overflow
            b":-9223372036854775809\r\n",    // negative overflow
            b":99999999999999999999\r\n",    // overflow by digit count
            b"$\r\n",                        // missing length
            b"$abc\r\n",                     // non-numeric length
            b"$-2\r\n",                      // negative length
            b"$-10\r\n",                     // -1 followed by a digit
            b"$+3\r\nabc\r\n",               // signed length
            b"$3\r\nabcX\r\n",               // payload longer than declared
            b"$3\r\nabc\rX",                 // payload CR without LF
            b"$3 \r\nabc\r\n",               // trailing space in length
            b"$536870913\r\n",               // bulk above 512 MiB
            b"$99999999999999999999999\r\n", // length overflow
            b"*4294967297\r\n",              // count above 2^32
            b"*-2\r\n",                      // negative count
            b"~-1\r\n",                      // null set
            b"%-1\r\n",                      // null map
            b">-1\r\n",                      // null push
            b"|-1\r\n",                      // null attribute
            b"!-1\r\n",                      // null blob error
            b"=3\r\ntxt\r\n",                // verbatim too short
            b"=5\r\ntxt-x\r\n",              // verbatim without ':'
            b"_x\r\n",                       // null with payload
            b"#x\r\n",                       // bad boolean
            b"#tt\r\n",                      // long boolean
            b",\r\n",                        // empty double
            b",1.2.3\r\n",                   // bad double
            b"(\r\n",                        // empty big number
            b"(12x\r\n",                     // bad big number
            b"$?\r\n",                       // streamed string
            b"*?\r\n",                       // streamed array
            b"~?\r\n",                       // streamed set
            b"%?\r\n",                       // streamed map
            b";4\r\nabcd\r\n",               // streamed chunk
            b".\r\n",                        // end of stream
            b"*2\r\n:1\r\nx\r\n",            // bad element
            b"%1\r\n+k\r\n$1\r\nab\r\n",     // bad map value
        ];
        for (i, case) in cases.iter().enumerate() {
            assert!(
                matches!(err(case), RespError::Malformed(_)),
                "case {i}: {case:?}"
            );
            for (j, other) in cases.iter().enumerate() {
                assert!(i == j || case != other, "duplicate case {i}");
            }
        }
        assert_eq!(
            err(b"$?\r\n"),
            RespError::Malformed("streamed types unsupported")
        );
        assert_eq!(
            err(b"*?\r\n"),
            RespError::Malformed("streamed types unsupported")
        );
    }

    #[test]
    fn malformed_detected_before_line_end() {
        // Garbage is rejected without waiting for a CRLF that may never come.
        assert!(parse(b"$1x").is_err());
        assert!(parse(b":1x").is_err());
        assert!(parse(b"*x").is_err());
        assert!(parse(b"q").is_err());
        assert!(parse(b"#z").is_err());
        assert!(parse(b"=3").is_ok());
        assert!(parse(b"=7\r\ntxt+").is_err());
    }

    fn nested(depth: usize, leaf: &[u8], out: &mut [u8; 128]) -> usize {
        let mut n = 0;
        for _ in 0..depth {
            out[n..n + 4].copy_from_slice(b"*1\r\n");
            n += 4;
        }
        out[n..n + leaf.len()].copy_from_slice(leaf);
        n + leaf.len()
    }

    #[test]
    fn depth_limit() {
        let mut buf = [0u8; 128];
        let n = nested(MAX_DEPTH, b":1\r\n", &mut buf);
        let frame = one(&buf[..n]);
        assert_eq!(walk(frame), MAX_DEPTH + 1);
        let n = nested(MAX_DEPTH, b"*0\r\n", &mut buf);
        assert_eq!(parse(&buf[..n]), Err(RespError::TooDeep));
        let n = nested(MAX_DEPTH + 1, b":1\r\n", &mut buf);
        assert_eq!(parse(&buf[..n]), Err(RespError::TooDeep));
        // Too deep is reported even before the frame is complete.
        assert_eq!(parse(&buf[..n - 2]), Err(RespError::TooDeep));
        // An attribute counts as a level.
        let n = nested(MAX_DEPTH - 1, b"|1\r\n+a\r\n+b\r\n:1\r\n", &mut buf);
        assert!(parse(&buf[..n]).is_ok());
        let n = nested(MAX_DEPTH - 1, b"|1\r\n+a\r\n*0\r\n:1\r\n", &mut buf);
        assert_eq!(parse(&buf[..n]), Err(RespError::TooDeep));
    }

    #[test]
    fn large_counts_wait_for_bytes() {
        assert_eq!(parse(b"*4294967296\r\n:1\r\n"), Ok(None));
        assert_eq!(parse(b"%4294967296\r\n"), Ok(None));
        assert_eq!(parse(b"$536870912\r\nabc"), Ok(None));
    }

    #[test]
    fn error_display() {
        use core::fmt::Write;
        let mut s: heapless::String<64> = heapless::String::new();
        write!(s, "{}", RespError::TooDeep).unwrap();
        assert_eq!(s.as_str(), "RESP aggregates nested deeper than 8");
    }
}
