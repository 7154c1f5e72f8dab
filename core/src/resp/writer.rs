//! STUB — to be replaced by the RESP writer implementation.
#![allow(missing_docs, dead_code, unused_variables)]

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

pub trait Sink {
    fn put(&mut self, bytes: &[u8]) -> Result<(), Full>;
}

pub fn array_header(out: &mut impl Sink, n: usize) -> Result<(), Full> { Ok(()) }
pub fn bulk(out: &mut impl Sink, data: &[u8]) -> Result<(), Full> { Ok(()) }
pub fn bulk_concat(out: &mut impl Sink, parts: &[&[u8]]) -> Result<(), Full> { Ok(()) }
pub fn bulk_uint(out: &mut impl Sink, v: u64) -> Result<(), Full> { Ok(()) }
pub fn bulk_int(out: &mut impl Sink, v: i64) -> Result<(), Full> { Ok(()) }
