//! Differential tests of the RESP reader against the `redis-protocol` crate.
//!
//! A seeded generator builds random nested RESP3 (and RESP2) frames together
//! with the value they encode. Both decoders must return that value and
//! consume exactly the frame. Random mutations of valid frames must never make
//! our reader panic. When both decoders accept a mutated input, they must agree.

extern crate std;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::string::{String, ToString};
use std::vec::Vec;
use std::{format, println, vec};

use super::{parse, Aggregate, Frame, RespError, MAX_DEPTH};
use redis_protocol::resp2::{decode as r2_decode, types::OwnedFrame as R2Frame};
use redis_protocol::resp3::{decode::complete as r3_decode, types::OwnedFrame as R3Frame};

/// A decoded frame with no attributes. Both decoders are converted to this.
/// Sets and maps are sorted because `redis-protocol` stores them in hash maps.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum V {
    Simple(Vec<u8>),
    Error(Vec<u8>),
    Int(i64),
    Bulk(Vec<u8>),
    Null,
    Bool(bool),
    /// `f64` bits; every NaN is the same.
    Double(u64),
    Big(Vec<u8>),
    Array(Vec<V>),
    Set(Vec<V>),
    Map(Vec<(V, V)>),
    Push(Vec<V>),
}

fn double_bits(d: f64) -> u64 {
    if d.is_nan() {
        f64::NAN.to_bits()
    } else {
        d.to_bits()
    }
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

/// Converts our frame, checking that every aggregate yields `len()` elements.
fn ours(frame: Frame<'_>) -> V {
    let items = |agg: Aggregate<'_>| {
        let items: Vec<V> = agg.iter().map(ours).collect();
        assert_eq!(
            items.len(),
            agg.len(),
            "aggregate yielded a different count"
        );
        assert_eq!(agg.iter().len(), agg.len());
        items
    };
    match frame {
        Frame::Simple(b) => V::Simple(b.to_vec()),
        Frame::Error(b) => V::Error(b.to_vec()),
        Frame::Int(i) => V::Int(i),
        Frame::Bulk(b) => V::Bulk(b.to_vec()),
        Frame::Null => V::Null,
        Frame::Bool(b) => V::Bool(b),
        Frame::Double(text) => {
            let d: f64 = std::str::from_utf8(text).unwrap().parse().unwrap();
            V::Double(double_bits(d))
        }
        Frame::BigNumber(b) => V::Big(b.to_vec()),
        Frame::Array(a) => V::Array(items(a)),
        Frame::Set(a) => V::Set(sorted(items(a))),
        Frame::Map(a) => {
            let items = items(a);
            assert_eq!(items.len() % 2, 0);
            let mut pairs = Vec::new();
            let mut it = items.into_iter();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                pairs.push((k, v));
            }
            V::Map(sorted(pairs))
        }
        Frame::Push(a) => V::Push(items(a)),
    }
}

fn theirs(frame: R3Frame) -> V {
    match frame {
        R3Frame::BlobString { data, .. } => V::Bulk(data),
        R3Frame::BlobError { data, .. } => V::Error(data),
        R3Frame::SimpleString { data, .. } => V::Simple(data),
        R3Frame::SimpleError { data, .. } => V::Error(data.into_bytes()),
        R3Frame::Boolean { data, .. } => V::Bool(data),
        R3Frame::Null => V::Null,
        R3Frame::Number { data, .. } => V::Int(data),
        R3Frame::Double { data, .. } => V::Double(double_bits(data)),
        R3Frame::BigNumber { data, .. } => V::Big(data),
        R3Frame::VerbatimString { data, .. } => V::Bulk(data),
        R3Frame::Array { data, .. } => V::Array(data.into_iter().map(theirs).collect()),
        R3Frame::Push { data, .. } => V::Push(data.into_iter().map(theirs).collect()),
        R3Frame::Set { data, .. } => V::Set(sorted(data.into_iter().map(theirs).collect())),
        R3Frame::Map { data, .. } => V::Map(sorted(
            data.into_iter()
                .map(|(k, v)| (theirs(k), theirs(v)))
                .collect(),
        )),
        other => panic!("unexpected redis-protocol frame {other:?}"),
    }
}

fn theirs2(frame: R2Frame) -> V {
    match frame {
        R2Frame::SimpleString(s) => V::Simple(s),
        R2Frame::Error(e) => V::Error(e.into_bytes()),
        R2Frame::Integer(i) => V::Int(i),
        R2Frame::BulkString(b) => V::Bulk(b),
        R2Frame::Array(a) => V::Array(a.into_iter().map(theirs2).collect()),
        R2Frame::Null => V::Null,
    }
}

/// Key of a map or set member as `redis-protocol` would merge it (roughly:
/// kinds it keeps apart are merged here, which only makes the check skip more).
fn dedup_key(v: &V) -> V {
    match v {
        V::Double(bits) if f64::from_bits(*bits) == 0.0 => V::Double(0.0f64.to_bits()),
        other => other.clone(),
    }
}

/// True when some map or set holds two equal keys (which `redis-protocol` merges).
fn has_duplicate_keys(v: &V) -> bool {
    fn dup(keys: Vec<V>) -> bool {
        let n = keys.len();
        let mut keys = keys;
        keys.sort();
        keys.dedup();
        keys.len() != n
    }
    match v {
        V::Array(items) | V::Push(items) => items.iter().any(has_duplicate_keys),
        V::Set(items) => {
            dup(items.iter().map(dedup_key).collect()) || items.iter().any(has_duplicate_keys)
        }
        V::Map(pairs) => {
            dup(pairs.iter().map(|(k, _)| dedup_key(k)).collect())
                || pairs
                    .iter()
                    .any(|(k, v)| has_duplicate_keys(k) || has_duplicate_keys(v))
        }
        _ => false,
    }
}

/// xorshift64* generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn printable(&mut self, max_len: u64) -> Vec<u8> {
        let len = self.below(max_len + 1);
        (0..len).map(|_| b' ' + self.below(95) as u8).collect()
    }
    fn binary(&mut self, max_len: u64) -> Vec<u8> {
        let len = self.below(max_len + 1);
        (0..len)
            .map(|_| match self.below(4) {
                0 => b"\r\n\0"[self.below(3) as usize],
                _ => self.next() as u8,
            })
            .collect()
    }
}

struct Gen {
    rng: Rng,
    /// Counter that makes map keys and set members unique.
    uniq: u64,
}

fn line(out: &mut Vec<u8>, tag: u8, text: &[u8]) {
    out.push(tag);
    out.extend_from_slice(text);
    out.extend_from_slice(b"\r\n");
}

fn blob(out: &mut Vec<u8>, tag: u8, data: &[u8]) {
    out.push(tag);
    out.extend_from_slice(data.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

fn header(out: &mut Vec<u8>, tag: u8, n: usize) {
    line(out, tag, n.to_string().as_bytes());
}

impl Gen {
    fn new(seed: u64) -> Self {
        Gen {
            rng: Rng(seed | 1),
            uniq: 0,
        }
    }

    fn int(&mut self) -> i64 {
        match self.rng.below(5) {
            0 => [0, 1, -1, i64::MAX, i64::MIN][self.rng.below(5) as usize],
            1 => self.rng.next() as i64,
            _ => self.rng.below(2000) as i64 - 1000,
        }
    }

    fn double_text(&mut self) -> String {
        match self.rng.below(8) {
            0 => ["inf", "-inf", "nan", "0", "-0", "1.5", "3.141592653589793"]
                [self.rng.below(7) as usize]
                .to_string(),
            1 => format!("{:e}", self.finite()),
            2 => format!("{}", self.finite()),
            3 => format!("{}", self.rng.below(1_000_000) as i64 - 500_000),
            _ => format!(
                "{}",
                (self.rng.below(2_000_000) as f64 - 1_000_000.0) / 1024.0
            ),
        }
    }

    fn finite(&mut self) -> f64 {
        loop {
            let d = f64::from_bits(self.rng.next());
            if d.is_finite() {
                return d;
            }
        }
    }

    /// A scalar frame of any kind.
    fn scalar(&mut self, out: &mut Vec<u8>) -> V {
        match self.rng.below(10) {
            0 => {
                let s = self.rng.printable(16);
                line(out, b'+', &s);
                V::Simple(s)
            }
            1 => {
                let mut s = b"ERR ".to_vec();
                s.extend(self.rng.printable(16));
                line(out, b'-', &s);
                V::Error(s)
            }
            2 => {
                let i = self.int();
                line(out, b':', i.to_string().as_bytes());
                V::Int(i)
            }
            3 => {
                let b = self.rng.binary(40);
                blob(out, b'$', &b);
                V::Bulk(b)
            }
            4 => {
                out.extend_from_slice(b"_\r\n");
                V::Null
            }
            5 => {
                let b = self.rng.chance(50);
                out.extend_from_slice(if b { b"#t\r\n" } else { b"#f\r\n" });
                V::Bool(b)
            }
            6 => {
                let text = self.double_text();
                line(out, b',', text.as_bytes());
                V::Double(double_bits(text.parse().unwrap()))
            }
            7 => {
                let mut s = Vec::new();
                if self.rng.chance(30) {
                    s.push(b'-');
                }
                for _ in 0..=self.rng.below(50) {
                    s.push(b'0' + self.rng.below(10) as u8);
                }
                line(out, b'(', &s);
                V::Big(s)
            }
            8 => {
                let b = self.rng.binary(30);
                blob(out, b'!', &b);
                V::Error(b)
            }
            _ => {
                let text = self.rng.binary(30);
                let mut payload = if self.rng.chance(50) {
                    b"txt:".to_vec()
                } else {
                    b"mkd:".to_vec()
                };
                payload.extend_from_slice(&text);
                blob(out, b'=', &payload);
                V::Bulk(text)
            }
        }
    }

    /// A scalar that no other key of this generator equals (map keys and set
    /// members must be hashable and distinct for `redis-protocol`).
    fn key(&mut self, out: &mut Vec<u8>) -> V {
        self.uniq += 1;
        let n = self.uniq;
        let text = format!("k{n}").into_bytes();
        match self.rng.below(7) {
            0 => {
                line(out, b'+', &text);
                V::Simple(text)
            }
            1 => {
                line(out, b':', n.to_string().as_bytes());
                V::Int(n as i64)
            }
            2 => {
                line(out, b'(', format!("-{n}").as_bytes());
                V::Big(format!("-{n}").into_bytes())
            }
            3 => {
                let t = format!("{n}.25");
                line(out, b',', t.as_bytes());
                V::Double(double_bits(t.parse().unwrap()))
            }
            4 => {
                let mut payload = b"txt:".to_vec();
                payload.extend_from_slice(&text);
                blob(out, b'=', &payload);
                V::Bulk(text)
            }
            5 => {
                blob(out, b'!', &text);
                V::Error(text)
            }
            _ => {
                blob(out, b'$', &text);
                V::Bulk(text)
            }
        }
    }

    /// An attribute whose keys are unique scalars and values are scalars.
    fn attribute(&mut self, out: &mut Vec<u8>) {
        let pairs = self.rng.below(3) as usize;
        header(out, b'|', pairs);
        for _ in 0..pairs {
            self.key(out);
            self.scalar(out);
        }
    }

    /// Any frame, nesting at most `depth` more aggregates, maybe with an attribute.
    fn frame(&mut self, out: &mut Vec<u8>, depth: u32) -> V {
        let mut body = Vec::new();
        let v = self.bare(&mut body, depth);
        // `redis-protocol` refuses attributes on a null.
        if v != V::Null && self.rng.chance(8) {
            self.attribute(out);
        }
        out.extend_from_slice(&body);
        v
    }

    /// Like `frame`, for a map key or set member.
    fn member(&mut self, out: &mut Vec<u8>) -> V {
        let mut body = Vec::new();
        let v = self.key(&mut body);
        if self.rng.chance(5) {
            self.attribute(out);
        }
        out.extend_from_slice(&body);
        v
    }

    fn bare(&mut self, out: &mut Vec<u8>, depth: u32) -> V {
        if depth == 0 || self.rng.chance(55) {
            return self.scalar(out);
        }
        let n = self.rng.below(5) as usize;
        match self.rng.below(4) {
            0 => {
                header(out, b'*', n);
                V::Array((0..n).map(|_| self.frame(out, depth - 1)).collect())
            }
            1 => {
                header(out, b'>', n);
                V::Push((0..n).map(|_| self.frame(out, depth - 1)).collect())
            }
            2 => {
                header(out, b'~', n);
                V::Set(sorted((0..n).map(|_| self.member(out)).collect()))
            }
            _ => {
                header(out, b'%', n);
                let pairs = (0..n)
                    .map(|_| {
                        let k = self.member(out);
                        (k, self.frame(out, depth - 1))
                    })
                    .collect();
                V::Map(sorted(pairs))
            }
        }
    }

    /// A RESP2 frame (`$-1` and `*-1` nulls included), nesting at most `depth` arrays.
    fn resp2(&mut self, out: &mut Vec<u8>, depth: u32) -> V {
        match self.rng.below(if depth == 0 { 6 } else { 8 }) {
            0 => {
                let s = self.rng.printable(12);
                line(out, b'+', &s);
                V::Simple(s)
            }
            1 => {
                let s = self.rng.printable(12);
                line(out, b'-', &s);
                V::Error(s)
            }
            2 => {
                let i = self.int();
                line(out, b':', i.to_string().as_bytes());
                V::Int(i)
            }
            3 | 4 => {
                let b = self.rng.binary(30);
                blob(out, b'$', &b);
                V::Bulk(b)
            }
            5 => {
                out.extend_from_slice(if self.rng.chance(50) {
                    b"$-1\r\n"
                } else {
                    b"*-1\r\n"
                });
                V::Null
            }
            _ => {
                let n = self.rng.below(5) as usize;
                header(out, b'*', n);
                V::Array((0..n).map(|_| self.resp2(out, depth - 1)).collect())
            }
        }
    }
}

fn decode_ours(buf: &[u8]) -> Result<Option<(V, usize)>, RespError> {
    Ok(parse(buf)?.map(|(f, n)| (ours(f), n)))
}

/// False for frames `V` has no counterpart for (streamed chunks, `HELLO`).
fn supported(frame: &R3Frame) -> bool {
    match frame {
        R3Frame::ChunkedString(_) | R3Frame::Hello { .. } => false,
        R3Frame::Array { data, .. } | R3Frame::Push { data, .. } => data.iter().all(supported),
        R3Frame::Set { data, .. } => data.iter().all(supported),
        R3Frame::Map { data, .. } => data.iter().all(|(k, v)| supported(k) && supported(v)),
        _ => true,
    }
}

fn decode_theirs(buf: &[u8]) -> Result<Option<(V, usize)>, String> {
    match r3_decode::decode(buf) {
        Ok(Some((f, _))) if !supported(&f) => Err(format!("unsupported frame {f:?}")),
        Ok(opt) => Ok(opt.map(|(f, n)| (theirs(f), n))),
        Err(e) => Err(format!("{e:?}")),
    }
}

#[test]
fn generated_resp3_frames_agree() {
    let mut g = Gen::new(0x5eed_1234_abcd_0001);
    let mut kinds = [0usize; 13];
    for i in 0..4000 {
        let mut bytes = Vec::new();
        let expected = g.frame(&mut bytes, 6);
        kinds[match &expected {
            V::Simple(_) => 0,
            V::Error(_) => 1,
            V::Int(_) => 2,
            V::Bulk(_) => 3,
            V::Null => 4,
            V::Bool(_) => 5,
            V::Double(_) => 6,
            V::Big(_) => 7,
            V::Array(_) => 8,
            V::Set(_) => 9,
            V::Map(_) => 10,
            V::Push(_) => 11,
        }] += 1;
        if bytes.first() == Some(&b'|') {
            kinds[12] += 1;
        }
        let ctx = || format!("frame {i}: {:?}", String::from_utf8_lossy(&bytes));

        assert_eq!(
            decode_ours(&bytes),
            Ok(Some((expected.clone(), bytes.len()))),
            "ours, {}",
            ctx()
        );
        assert_eq!(
            decode_theirs(&bytes),
            Ok(Some((expected.clone(), bytes.len()))),
            "theirs, {}",
            ctx()
        );

        // Followed by another frame, both stop at the same byte.
        let mut two = bytes.clone();
        two.extend_from_slice(b"*1\r\n+next\r\n");
        assert_eq!(
            decode_ours(&two),
            Ok(Some((expected.clone(), bytes.len()))),
            "ours, {}",
            ctx()
        );
        assert_eq!(
            decode_theirs(&two),
            Ok(Some((expected, bytes.len()))),
            "theirs, {}",
            ctx()
        );

        // Both wait for more bytes on every strict prefix.
        if i < 400 {
            for cut in 0..bytes.len() {
                assert_eq!(parse(&bytes[..cut]), Ok(None), "ours, cut {cut}, {}", ctx());
                assert_eq!(
                    decode_theirs(&bytes[..cut]),
                    Ok(None),
                    "theirs, cut {cut}, {}",
                    ctx()
                );
            }
        }
    }
    // The generator covers every kind at the top level, and attributes.
    assert!(kinds.iter().all(|&n| n > 20), "{kinds:?}");
}

#[test]
fn generated_resp2_frames_agree() {
    let mut g = Gen::new(0x0dd_ba11);
    for i in 0..2000 {
        let mut bytes = Vec::new();
        let expected = g.resp2(&mut bytes, 4);
        let ctx = || format!("frame {i}: {:?}", String::from_utf8_lossy(&bytes));
        assert_eq!(
            decode_ours(&bytes),
            Ok(Some((expected.clone(), bytes.len()))),
            "ours, {}",
            ctx()
        );
        let theirs = r2_decode::decode(&bytes)
            .unwrap()
            .map(|(f, n)| (theirs2(f), n));
        assert_eq!(theirs, Some((expected, bytes.len())), "theirs, {}", ctx());
    }
}

#[test]
fn deep_nesting_is_refused_where_the_oracle_accepts() {
    for depth in 1..=MAX_DEPTH + 3 {
        let mut bytes = b"*1\r\n".repeat(depth);
        bytes.extend_from_slice(b":7\r\n");
        let theirs = decode_theirs(&bytes).unwrap().unwrap();
        assert_eq!(theirs.1, bytes.len());
        if depth <= MAX_DEPTH {
            assert_eq!(decode_ours(&bytes).unwrap(), Some(theirs));
        } else {
            assert_eq!(parse(&bytes), Err(RespError::TooDeep));
        }
    }
}

/// Known, intended differences from `redis-protocol`'s RESP3 decoder.
#[test]
fn documented_differences() {
    // RESP2 nulls: its RESP3 decoder reads `-1` as a streamed length and errors.
    for input in [&b"$-1\r\n"[..], b"*-1\r\n"] {
        assert_eq!(decode_ours(input), Ok(Some((V::Null, 5))));
        assert!(decode_theirs(input).is_err());
    }
    // Consecutive attributes, and an attribute on a null: we skip them all.
    let input = b"|1\r\n+a\r\n+b\r\n|0\r\n_\r\n";
    assert_eq!(decode_ours(input), Ok(Some((V::Null, input.len()))));
    assert!(decode_theirs(input).is_err());
    // Aggregates as map keys: we allow them, it needs hashable keys.
    let input = b"%1\r\n*0\r\n:1\r\n";
    assert_eq!(
        decode_ours(input),
        Ok(Some((
            V::Map(vec![(V::Array(vec![]), V::Int(1))]),
            input.len()
        )))
    );
    assert!(decode_theirs(input).is_err());
    // It accepts anything before the CRLF of a null or big number; we do not.
    assert!(parse(b"_junk\r\n").is_err());
    assert!(decode_theirs(b"_junk\r\n").is_ok());
    assert!(parse(b"(12a\r\n").is_err());
    assert!(decode_theirs(b"(12a\r\n").is_ok());
    // Only `txt` and `mkd` verbatim formats there; any three bytes here.
    assert_eq!(
        decode_ours(b"=7\r\nxyz:abc\r\n"),
        Ok(Some((V::Bulk(b"abc".to_vec()), 13)))
    );
    assert!(decode_theirs(b"=7\r\nxyz:abc\r\n").is_err());
    // It skips the two bytes after a blob payload without checking they are CRLF.
    assert!(parse(b"$1\r\naXY").is_err());
    assert_eq!(
        decode_theirs(b"$1\r\naXY"),
        Ok(Some((V::Bulk(b"a".to_vec()), 7)))
    );
    // It parses lengths with `str::parse`, so `+0` and `-0` are lengths there.
    assert!(parse(b"~+0\r\n").is_err());
    assert!(decode_theirs(b"~+0\r\n").is_ok());
    assert!(parse(b"%-0\r\n").is_err());
    assert!(decode_theirs(b"%-0\r\n").is_ok());
    // Simple errors must be UTF-8 there (a `String`); bytes here.
    assert_eq!(
        decode_ours(b"-\xff\r\n"),
        Ok(Some((V::Error(vec![0xff]), 4)))
    );
    assert!(decode_theirs(b"-\xff\r\n").is_err());
    // Duplicate map keys: it keeps one pair, we yield both.
    let input = b"%2\r\n+k\r\n:1\r\n+k\r\n:2\r\n";
    let Some((V::Map(pairs), _)) = decode_ours(input).unwrap() else {
        panic!()
    };
    assert_eq!(pairs.len(), 2);
    let Some((V::Map(pairs), _)) = decode_theirs(input).unwrap() else {
        panic!()
    };
    assert_eq!(pairs.len(), 1);
}

fn mutate(rng: &mut Rng, bytes: &mut Vec<u8>) {
    const SPECIAL: &[u8] = b"\r\n-?0123456789+$*%~>|_#,(!=:tf";
    for _ in 0..=rng.below(3) {
        if bytes.is_empty() {
            bytes.push(SPECIAL[rng.below(SPECIAL.len() as u64) as usize]);
            continue;
        }
        let at = rng.below(bytes.len() as u64) as usize;
        let special = SPECIAL[rng.below(SPECIAL.len() as u64) as usize];
        match rng.below(7) {
            0 => bytes[at] = rng.next() as u8,
            1 => bytes[at] = special,
            2 => bytes.insert(at, special),
            3 => {
                bytes.remove(at);
            }
            4 => bytes.truncate(at),
            5 => {
                let end = (at + 1 + rng.below(8) as usize).min(bytes.len());
                let chunk = bytes[at..end].to_vec();
                let to = rng.below(bytes.len() as u64 + 1) as usize;
                bytes.splice(to..to, chunk);
            }
            _ => bytes[at] ^= 1 << rng.below(8),
        }
    }
}

#[test]
fn mutated_frames_never_panic_and_agree_when_both_accept() {
    let mut g = Gen::new(0xfeed_f00d);
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let (mut both, mut ours_only, mut theirs_only, mut neither, mut skipped) = (0, 0, 0, 0, 0);
    let mut oracle_panics = 0;
    for i in 0..3000 {
        let mut valid = Vec::new();
        if i % 5 == 0 {
            g.resp2(&mut valid, 4);
        } else {
            g.frame(&mut valid, 6);
        }
        for _ in 0..10 {
            let mut bytes = valid.clone();
            mutate(&mut rng, &mut bytes);
            let ctx = || format!("{:?}", String::from_utf8_lossy(&bytes));
            let mine = catch_unwind(|| decode_ours(&bytes))
                .unwrap_or_else(|_| panic!("our reader panicked on {}", ctx()));
            if let Ok(Some((_, n))) = &mine {
                assert!(*n <= bytes.len());
            }
            let other = match catch_unwind(AssertUnwindSafe(|| decode_theirs(&bytes))) {
                Ok(r) => r,
                Err(_) => {
                    oracle_panics += 1;
                    continue;
                }
            };
            match (mine, other) {
                (Ok(Some(a)), Ok(Some(b))) => {
                    if has_duplicate_keys(&a.0) {
                        skipped += 1;
                    } else {
                        assert_eq!(a, b, "{}", ctx());
                        both += 1;
                    }
                }
                (Ok(Some(_)), e) => {
                    ours_only += 1;
                    if std::env::var_os("RESP_DIFF_SHOW").is_some() {
                        println!("OURS {e:?} {}", ctx());
                    }
                }
                (e, Ok(Some(_))) => {
                    theirs_only += 1;
                    if std::env::var_os("RESP_DIFF_SHOW").is_some() {
                        println!("THEIRS {e:?} {}", ctx());
                    }
                }
                _ => neither += 1,
            }
        }
    }
    println!(
        "mutations: both accept {both}, only ours {ours_only}, only theirs {theirs_only}, \
         neither {neither}, duplicate keys {skipped}, oracle panics {oracle_panics}"
    );
    assert!(both > 1000);
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(0xabad_1dea);
    for _ in 0..20_000 {
        let len = rng.below(40) as usize;
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                let special = b"\r\n-?019+$*%~>|_#,(!=:";
                if rng.chance(60) {
                    special[rng.below(special.len() as u64) as usize]
                } else {
                    rng.next() as u8
                }
            })
            .collect();
        if let Ok(Some((frame, n))) = parse(&bytes) {
            assert!(n <= bytes.len());
            ours(frame);
        }
    }
}
