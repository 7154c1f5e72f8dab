//! Unit tests of the RESP3 reader.

use super::reader::*;

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
