//! Collections the engine stores its state in.
//!
//! One code path serves both builds: with the `alloc` feature the wrappers
//! below are backed by `alloc` collections and never fill up; without it they
//! are `heapless` collections whose capacity is the const parameter, and a
//! full collection is reported to the caller as an error instead of growing.

use core::fmt;

#[cfg(not(feature = "alloc"))]
use heapless::{
    binary_heap::{BinaryHeap as HHeap, Min},
    Deque as HDeque, String as HString, Vec as HVec,
};

/// Longest name or prefix the no-alloc build stores.
pub(crate) const TEXT_CAP: usize = 96;

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

    /// Longest text in bytes.
    pub(crate) fn capacity() -> usize {
        #[cfg(feature = "alloc")]
        {
            usize::MAX
        }
        #[cfg(not(feature = "alloc"))]
        {
            TEXT_CAP
        }
    }

    /// Replaces the text with `s` in the storage it already has (an
    /// allocation only when `s` is longer than any text it held); false,
    /// and the text left empty, when `s` does not fit the capacity.
    pub(crate) fn set(&mut self, s: &str) -> bool {
        self.0.clear();
        #[cfg(feature = "alloc")]
        {
            self.0.push_str(s);
            true
        }
        #[cfg(not(feature = "alloc"))]
        {
            self.0.push_str(s).is_ok()
        }
    }

    /// Empties the text, keeping its storage for [`Text::set`] unless it
    /// is larger than `keep` bytes.
    pub(crate) fn recycle(&mut self, keep: usize) {
        #[cfg(feature = "alloc")]
        if self.0.capacity() > keep {
            self.0 = alloc::string::String::new();
        }
        let _ = keep;
        self.0.clear();
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
pub(crate) struct Full;

/// A sequence: `Vec<T>` or `heapless::Vec<T, N>`.
#[derive(Debug, Clone)]
pub(crate) struct Seq<T, const N: usize>(
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
    pub(crate) fn push(&mut self, v: T) -> Result<(), Full> {
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
    /// Takes the last element.
    pub(crate) fn pop(&mut self) -> Option<T> {
        self.0.pop()
    }
    /// Removes every element (keeping the allocation, if any).
    pub(crate) fn clear(&mut self) {
        self.0.clear()
    }
    /// Number of elements.
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
    /// The elements.
    pub(crate) fn as_slice(&self) -> &[T] {
        &self.0
    }
    /// The elements, mutably.
    pub(crate) fn as_mut_slice(&mut self) -> &mut [T] {
        &mut self.0
    }
}

/// A priority queue that pops its least element: `BinaryHeap<Reverse<T>>`
/// or `heapless::BinaryHeap<T, Min, N>`.
#[derive(Debug, Clone)]
pub(crate) struct MinHeap<T: Ord, const N: usize>(
    #[cfg(feature = "alloc")] alloc::collections::BinaryHeap<core::cmp::Reverse<T>>,
    #[cfg(not(feature = "alloc"))] HHeap<T, Min, N>,
);

impl<T: Ord, const N: usize> Default for MinHeap<T, N> {
    fn default() -> Self {
        #[cfg(feature = "alloc")]
        {
            MinHeap(alloc::collections::BinaryHeap::new())
        }
        #[cfg(not(feature = "alloc"))]
        {
            MinHeap(HHeap::new())
        }
    }
}

impl<T: Ord, const N: usize> MinHeap<T, N> {
    /// Adds `v`, failing when full.
    pub(crate) fn push(&mut self, v: T) -> Result<(), Full> {
        #[cfg(feature = "alloc")]
        {
            self.0.push(core::cmp::Reverse(v));
            Ok(())
        }
        #[cfg(not(feature = "alloc"))]
        {
            self.0.push(v).map_err(|_| Full)
        }
    }
    /// Takes the least element.
    pub(crate) fn pop(&mut self) -> Option<T> {
        #[cfg(feature = "alloc")]
        {
            self.0.pop().map(|r| r.0)
        }
        #[cfg(not(feature = "alloc"))]
        {
            self.0.pop()
        }
    }
}

/// A FIFO queue: `VecDeque<T>` or `heapless::Deque<T, N>`.
#[derive(Debug, Clone)]
pub(crate) struct Fifo<T, const N: usize>(
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
    pub(crate) fn push_back(&mut self, v: T) -> Result<(), Full> {
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
    /// Number of elements.
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
    /// True when empty.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// Takes the front element.
    pub(crate) fn pop_front(&mut self) -> Option<T> {
        self.0.pop_front()
    }
    /// Removes every element.
    pub(crate) fn clear(&mut self) {
        self.0.clear()
    }
    /// Iterates front to back.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        self.0.iter()
    }
}

/// Bytes waiting to be written to one connection.
#[derive(Debug, Clone, Default)]
pub(crate) struct Bytes<const N: usize>(
    #[cfg(feature = "alloc")] alloc::vec::Vec<u8>,
    #[cfg(not(feature = "alloc"))] HVec<u8, N>,
);

impl<const N: usize> Bytes<N> {
    /// The buffered bytes.
    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.0
    }
    /// Number of buffered bytes.
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
    /// Drops the first `n` bytes (they were written).
    pub(crate) fn consume(&mut self, n: usize) {
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
    pub(crate) fn clear(&mut self) {
        self.0.clear()
    }
    /// Cuts back to `len` bytes (undoing a partly written command).
    pub(crate) fn truncate(&mut self, len: usize) {
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

/// The no-alloc build's limits, reached through the public API: every full
/// collection becomes a clear error (or, for transmit space, back-pressure),
/// never a panic or a silent drop of a request.
#[cfg(all(test, not(feature = "alloc")))]
mod no_alloc_tests {
    extern crate std;

    use std::format;
    use std::vec::Vec;

    use super::*;
    use crate::resp::Sink;
    use crate::{capacity, Config, Engine, Event, Instant, LockError, LockMode, NodeId};

    const N0: NodeId = NodeId(0);
    const HELLO_7015: &[u8] = b"%3\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n$5\r\nproto\r\n:3\r\n";

    fn ms(n: u64) -> Instant {
        Instant::from_nanos(n * 1_000_000)
    }

    fn events(e: &mut Engine) -> Vec<Event> {
        core::iter::from_fn(|| e.poll_event()).collect()
    }

    /// Hands the engine's transmit to nobody; returns its length.
    fn drain_tx(e: &mut Engine) -> usize {
        let n = e.transmit(N0).len();
        e.consume_transmit(N0, n);
        n
    }

    fn connected() -> Engine {
        let mut e = Engine::new(Config::default(), [3; 32]).unwrap();
        e.handle_connected(N0, ms(0));
        drain_tx(&mut e);
        assert_eq!(e.handle_bytes(N0, ms(0), HELLO_7015), HELLO_7015.len());
        drain_tx(&mut e);
        assert_eq!(e.handle_bytes(N0, ms(0), b"+OK\r\n"), 5);
        assert_eq!(events(&mut e), [Event::NodeReady { node: N0 }]);
        e
    }

    #[test]
    fn the_build_is_the_fixed_capacity_one() {
        const { assert!(!crate::ALLOC, "built with alloc") };
        assert_eq!(capacity::TEXT, TEXT_CAP);
    }

    #[test]
    fn collections_report_full() {
        let mut s: Seq<u8, 2> = Seq::default();
        assert_eq!(
            (s.push(1), s.push(2), s.push(3)),
            (Ok(()), Ok(()), Err(Full))
        );
        assert_eq!(s.as_slice(), [1, 2]);
        let mut q: Fifo<u8, 1> = Fifo::default();
        assert_eq!((q.push_back(1), q.push_back(2)), (Ok(()), Err(Full)));
        let mut h: MinHeap<u8, 2> = MinHeap::default();
        assert_eq!(
            (h.push(5), h.push(3), h.push(4)),
            (Ok(()), Ok(()), Err(Full))
        );
        assert_eq!((h.pop(), h.pop(), h.pop()), (Some(3), Some(5), None));
        let mut b: Bytes<4> = Bytes::default();
        assert_eq!(b.put(b"abcde"), Err(crate::resp::Full));
        assert_eq!(b.put(b"abcd"), Ok(()));
        b.consume(1);
        assert_eq!(b.as_slice(), b"bcd");
        assert!(Text::new(&"x".repeat(TEXT_CAP)).is_some());
        assert!(Text::new(&"x".repeat(TEXT_CAP + 1)).is_none());
        assert_eq!(
            Text::from_str_truncated(&"é".repeat(TEXT_CAP))
                .as_str()
                .len(),
            TEXT_CAP
        );
    }

    #[test]
    fn filling_the_lock_capacity_is_a_clear_error() {
        let mut e = Engine::new(Config::default(), [1; 32]).unwrap();
        let ids: Vec<_> = (0..capacity::LOCKS)
            .map(|i| e.lock(&format!("lock{i}"), LockMode::Wait, ms(0)).unwrap())
            .collect();
        assert_eq!(e.lock_count(), capacity::LOCKS);
        for mode in [LockMode::Wait, LockMode::Try, LockMode::Force] {
            assert_eq!(
                e.lock("one-too-many", mode, ms(1)),
                Err(LockError::CapacityExceeded)
            );
        }
        // Ending one request frees its slot for the next.
        e.unlock(ids[0], ms(2));
        assert_eq!(e.lock_count(), capacity::LOCKS - 1);
        let again = e.lock("one-more", LockMode::Wait, ms(3)).unwrap();
        assert_ne!(again, ids[0], "a reused slot gets a new id");
        assert_eq!(
            e.lock("and-one-too-many", LockMode::Wait, ms(4)),
            Err(LockError::CapacityExceeded)
        );
    }

    #[test]
    fn a_name_longer_than_the_text_capacity_is_a_clear_error() {
        let mut e = Engine::new(Config::default(), [1; 32]).unwrap();
        assert!(e.lock(&"n".repeat(TEXT_CAP), LockMode::Wait, ms(0)).is_ok());
        assert_eq!(
            e.lock(&"n".repeat(TEXT_CAP + 1), LockMode::Wait, ms(0)),
            Err(LockError::CapacityExceeded)
        );
    }

    /// Attempts queued faster than replies come back stop at the
    /// connection's in-flight limit (each key's `SET`+`PTTL` takes two
    /// entries), the transmit buffer stays within its capacity, nothing
    /// panics, and the attempts that do not fit wait for room: nothing is
    /// sent for them and they are not reported as refused.
    #[test]
    fn in_flight_limit_bounds_pipelined_attempts() {
        let mut e = connected();
        let per_lock = 2 * Config::default().key_count();
        let fit = capacity::IN_FLIGHT / per_lock;
        for i in 0..capacity::LOCKS {
            e.lock(&format!("lock{i}"), LockMode::Try, ms(1)).unwrap();
            assert!(e.transmit(N0).len() <= capacity::TRANSMIT);
            let sent = drain_tx(&mut e);
            let ev = events(&mut e);
            assert!(ev.is_empty(), "{i}: {ev:?}");
            if i < fit {
                assert!(sent > 0, "{i}: nothing sent");
            } else {
                assert_eq!(sent, 0, "{i}: sent beyond the in-flight limit");
            }
        }
    }

    /// A request that finds the reply queue full is deferred, not reported
    /// `NotLocked` as if another client held the lock.
    #[test]
    fn a_full_in_flight_queue_is_not_reported_as_not_locked() {
        let mut e = connected();
        for i in 0..capacity::LOCKS {
            e.lock(&format!("lock{i}"), LockMode::Try, ms(1)).unwrap();
            drain_tx(&mut e);
            let ev = events(&mut e);
            assert!(
                !ev.iter().any(|e| matches!(e, Event::NotLocked { .. })),
                "request {i} reported NotLocked without asking the server: {ev:?}"
            );
        }
    }
}
