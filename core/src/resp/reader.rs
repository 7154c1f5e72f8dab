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
    #[cfg(any(test, fuzzing))]
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when the aggregate has no elements.
    #[cfg(any(test, fuzzing))]
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
