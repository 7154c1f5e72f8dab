//! RESP writer. Commands are arrays of bulk strings, written into any [`Sink`]
//! without allocating.

/// The sink had no room for the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

/// Where written bytes go.
pub trait Sink {
    /// Appends all of `bytes`, or returns [`Full`].
    ///
    /// A failed call may have appended nothing. If one of several calls for a
    /// command fails, the earlier ones stay written; the caller undoes them.
    fn put(&mut self, bytes: &[u8]) -> Result<(), Full>;
}

impl<const N: usize> Sink for heapless::Vec<u8, N> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), Full> {
        self.extend_from_slice(bytes).map_err(|_| Full)
    }
}

#[cfg(feature = "alloc")]
impl Sink for alloc::vec::Vec<u8> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), Full> {
        self.extend_from_slice(bytes);
        Ok(())
    }
}

/// Writes one `<tag><n>\r\n` line in a single `put`.
fn header(out: &mut impl Sink, tag: u8, n: usize) -> Result<(), Full> {
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(n).as_bytes();
    // A usize has at most 20 decimal digits.
    let mut line = [0u8; 1 + 20 + 2];
    let end = 1 + digits.len();
    line[0] = tag;
    line.get_mut(1..end).ok_or(Full)?.copy_from_slice(digits);
    line.get_mut(end..end + 2)
        .ok_or(Full)?
        .copy_from_slice(b"\r\n");
    out.put(&line[..end + 2])
}

/// Writes an array header `*<n>\r\n`; `n` elements must follow.
pub fn array_header(out: &mut impl Sink, n: usize) -> Result<(), Full> {
    header(out, b'*', n)
}

/// Writes `data` as a bulk string: `$<len>\r\n<data>\r\n`.
pub fn bulk(out: &mut impl Sink, data: &[u8]) -> Result<(), Full> {
    header(out, b'$', data.len())?;
    out.put(data)?;
    out.put(b"\r\n")
}

/// Writes one bulk string whose payload is `parts` joined with no separator.
pub fn bulk_concat(out: &mut impl Sink, parts: &[&[u8]]) -> Result<(), Full> {
    let len = parts.iter().fold(0usize, |n, p| n.saturating_add(p.len()));
    header(out, b'$', len)?;
    for part in parts {
        out.put(part)?;
    }
    out.put(b"\r\n")
}

/// Writes `v` in decimal as a bulk string.
pub fn bulk_uint(out: &mut impl Sink, v: u64) -> Result<(), Full> {
    bulk(out, itoa::Buffer::new().format(v).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resp::{parse, Frame};

    type Buf = heapless::Vec<u8, 256>;

    #[test]
    fn set_nx_px_command() {
        let mut out = Buf::new();
        array_header(&mut out, 6).unwrap();
        bulk(&mut out, b"SET").unwrap();
        bulk(&mut out, b"key").unwrap();
        bulk(&mut out, b"val").unwrap();
        bulk(&mut out, b"NX").unwrap();
        bulk(&mut out, b"PX").unwrap();
        bulk_uint(&mut out, 5000).unwrap();
        assert_eq!(
            out.as_slice(),
            b"*6\r\n$3\r\nSET\r\n$3\r\nkey\r\n$3\r\nval\r\n$2\r\nNX\r\n$2\r\nPX\r\n$4\r\n5000\r\n"
        );
    }

    #[test]
    fn numbers_and_concat() {
        let mut out = Buf::new();
        bulk_uint(&mut out, u64::MAX).unwrap();
        bulk_uint(&mut out, 0).unwrap();
        bulk_concat(&mut out, &[b"lk", b":", b"3", b":", b"name"]).unwrap();
        bulk_concat(&mut out, &[]).unwrap();
        bulk(&mut out, b"").unwrap();
        array_header(&mut out, 0).unwrap();
        assert_eq!(
            out.as_slice(),
            &b"$20\r\n18446744073709551615\r\n$1\r\n0\r\n\
$9\r\nlk:3:name\r\n$0\r\n\r\n$0\r\n\r\n*0\r\n"[..]
        );
    }

    #[test]
    fn full_sink() {
        let mut out: heapless::Vec<u8, 8> = heapless::Vec::new();
        assert_eq!(bulk(&mut out, b"0123456789"), Err(Full));
        let mut out: heapless::Vec<u8, 3> = heapless::Vec::new();
        assert_eq!(array_header(&mut out, 1), Err(Full));
        assert!(out.is_empty());
        let mut out: heapless::Vec<u8, 4> = heapless::Vec::new();
        assert_eq!(array_header(&mut out, 1), Ok(()));
        assert_eq!(array_header(&mut out, usize::MAX), Err(Full));
    }

    #[cfg(feature = "alloc")]
    #[test]
    fn alloc_vec_sink() {
        let mut out = alloc::vec::Vec::new();
        array_header(&mut out, 65536).unwrap();
        bulk(&mut out, b"x").unwrap();
        assert_eq!(out, b"*65536\r\n$1\r\nx\r\n");
    }

    #[test]
    fn round_trip() {
        let mut out = Buf::new();
        array_header(&mut out, 4).unwrap();
        bulk(&mut out, b"PEXPIRE").unwrap();
        bulk_concat(&mut out, &[b"pre", b":", b"0", b":", b"a\r\nb"]).unwrap();
        bulk_uint(&mut out, 30_000).unwrap();
        bulk(&mut out, &[0, 255, b'\r']).unwrap();
        let (frame, used) = parse(&out).unwrap().unwrap();
        assert_eq!(used, out.len());
        let Frame::Array(items) = frame else {
            panic!("{frame:?}")
        };
        let mut it = items.iter();
        assert_eq!(it.next(), Some(Frame::Bulk(b"PEXPIRE")));
        assert_eq!(it.next(), Some(Frame::Bulk(b"pre:0:a\r\nb")));
        assert_eq!(it.next(), Some(Frame::Bulk(b"30000")));
        assert_eq!(it.next(), Some(Frame::Bulk(&[0, 255, b'\r'])));
        assert_eq!(it.next(), None);
    }
}
