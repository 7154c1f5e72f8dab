//! Collections the engine stores its state in.
//!
//! One code path serves both builds: with the `alloc` feature the wrappers
//! below are backed by `alloc` collections and never fill up; without it they
//! are `heapless` collections whose capacity is the const parameter, and a
//! full collection is reported to the caller as an error instead of growing.

use core::fmt;

#[cfg(not(feature = "alloc"))]
use heapless::{Deque as HDeque, String as HString, Vec as HVec};

/// Longest name or prefix the no-alloc build stores.
#[cfg(not(feature = "alloc"))]
pub const TEXT_CAP: usize = 96;

/// Owned text (lock names, prefix, credentials).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Text(
    #[cfg(feature = "alloc")] alloc::string::String,
    #[cfg(not(feature = "alloc"))] HString<TEXT_CAP>,
);

impl Text {
    /// Copies `s`, or `None` when it does not fit the capacity.
    pub fn new(s: &str) -> Option<Self> {
        #[cfg(feature = "alloc")]
        {
            Some(Text(alloc::string::String::from(s)))
        }
        #[cfg(not(feature = "alloc"))]
        {
            HString::try_from(s).ok().map(Text)
        }
    }

    /// Copies as much of `s` as fits, cut at a character boundary.
    pub fn from_str_truncated(s: &str) -> Self {
        let mut end = s.len().min(Self::capacity());
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        Self::new(&s[..end]).unwrap_or_default()
    }

    /// Copies lossily decoded bytes, truncated to the capacity.
    pub fn from_utf8_lossy_truncated(bytes: &[u8]) -> Self {
        match core::str::from_utf8(bytes) {
            Ok(s) => Self::from_str_truncated(s),
            Err(e) => {
                let valid = &bytes[..e.valid_up_to()];
                // The prefix is valid UTF-8 by construction.
                Self::from_str_truncated(core::str::from_utf8(valid).unwrap_or(""))
            }
        }
    }

    fn capacity() -> usize {
        #[cfg(feature = "alloc")]
        {
            usize::MAX
        }
        #[cfg(not(feature = "alloc"))]
        {
            TEXT_CAP
        }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The text's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The collection is full (no-alloc build only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

/// A sequence: `Vec<T>` or `heapless::Vec<T, N>`.
#[derive(Debug, Clone)]
pub struct Seq<T, const N: usize>(
    #[cfg(feature = "alloc")] alloc::vec::Vec<T>,
    #[cfg(not(feature = "alloc"))] HVec<T, N>,
);

impl<T, const N: usize> Default for Seq<T, N> {
    fn default() -> Self {
        Seq(Default::default())
    }
}

impl<T, const N: usize> Seq<T, N> {
    /// Appends, failing when full.
    pub fn push(&mut self, v: T) -> Result<(), Full> {
        #[cfg(feature = "alloc")]
        {
            self.0.push(v);
            Ok(())
        }
        #[cfg(not(feature = "alloc"))]
        {
            self.0.push(v).map_err(|_| Full)
        }
    }
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// The elements.
    pub fn as_slice(&self) -> &[T] {
        &self.0
    }
    /// The elements, mutably.
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        &mut self.0
    }
}

/// A FIFO queue: `VecDeque<T>` or `heapless::Deque<T, N>`.
#[derive(Debug, Clone)]
pub struct Fifo<T, const N: usize>(
    #[cfg(feature = "alloc")] alloc::collections::VecDeque<T>,
    #[cfg(not(feature = "alloc"))] HDeque<T, N>,
);

impl<T, const N: usize> Default for Fifo<T, N> {
    fn default() -> Self {
        Fifo(Default::default())
    }
}

impl<T, const N: usize> Fifo<T, N> {
    /// Appends at the back, failing when full.
    pub fn push_back(&mut self, v: T) -> Result<(), Full> {
        #[cfg(feature = "alloc")]
        {
            self.0.push_back(v);
            Ok(())
        }
        #[cfg(not(feature = "alloc"))]
        {
            self.0.push_back(v).map_err(|_| Full)
        }
    }
    /// Takes the front element.
    pub fn pop_front(&mut self) -> Option<T> {
        self.0.pop_front()
    }
    /// Removes every element.
    pub fn clear(&mut self) {
        self.0.clear()
    }
    /// Iterates front to back.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.0.iter()
    }
}

/// Bytes waiting to be written to one connection.
#[derive(Debug, Clone, Default)]
pub struct Bytes<const N: usize>(
    #[cfg(feature = "alloc")] alloc::vec::Vec<u8>,
    #[cfg(not(feature = "alloc"))] HVec<u8, N>,
);

impl<const N: usize> Bytes<N> {
    /// The buffered bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }
    /// Number of buffered bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// Drops the first `n` bytes (they were written).
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.0.len());
        if n == self.0.len() {
            self.0.clear();
        } else {
            #[cfg(feature = "alloc")]
            {
                self.0.drain(..n);
            }
            #[cfg(not(feature = "alloc"))]
            {
                let len = self.0.len();
                self.0.copy_within(n.., 0);
                self.0.truncate(len - n);
            }
        }
    }
    /// Drops everything.
    pub fn clear(&mut self) {
        self.0.clear()
    }
    /// Cuts back to `len` bytes (undoing a partly written command).
    pub fn truncate(&mut self, len: usize) {
        self.0.truncate(len)
    }
}

impl<const N: usize> crate::resp::Sink for Bytes<N> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), crate::resp::Full> {
        #[cfg(feature = "alloc")]
        {
            self.0.extend_from_slice(bytes);
            Ok(())
        }
        #[cfg(not(feature = "alloc"))]
        {
            self.0
                .extend_from_slice(bytes)
                .map_err(|_| crate::resp::Full)
        }
    }
}
