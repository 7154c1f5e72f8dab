//! STUB — to be replaced by the RESP3 reader implementation.
#![allow(missing_docs, dead_code, unused_variables)]

/// Deepest aggregate nesting the reader accepts.
pub const MAX_DEPTH: usize = 8;

/// A malformed or unsupported frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RespError {
    /// Bad syntax.
    Malformed(&'static str),
    /// Nested deeper than MAX_DEPTH.
    TooDeep,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Aggregate<'a> {
    count: usize,
    body: &'a [u8],
}

impl<'a> Aggregate<'a> {
    pub fn len(&self) -> usize {
        self.count
    }
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
    pub fn iter(&self) -> Frames<'a> {
        Frames { rest: self.body, left: self.count }
    }
}

pub struct Frames<'a> {
    rest: &'a [u8],
    left: usize,
}

impl<'a> Iterator for Frames<'a> {
    type Item = Frame<'a>;
    fn next(&mut self) -> Option<Frame<'a>> {
        None
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Frame<'a> {
    Simple(&'a [u8]),
    Error(&'a [u8]),
    Int(i64),
    Bulk(&'a [u8]),
    Null,
    Bool(bool),
    Double(&'a [u8]),
    BigNumber(&'a [u8]),
    Array(Aggregate<'a>),
    Set(Aggregate<'a>),
    Map(Aggregate<'a>),
    Push(Aggregate<'a>),
}

pub fn parse(buf: &[u8]) -> Result<Option<(Frame<'_>, usize)>, RespError> {
    Ok(None)
}
