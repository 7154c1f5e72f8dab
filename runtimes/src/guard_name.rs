//! A guard's copy of its lock name, and the locker's spare buffers for the
//! long ones.
//!
//! Short names live inline in the guard. A long one (a prefix and a UUID is
//! already past the inline size) needs a buffer; taking it from the
//! locker's spares, and giving it back when the guard drops, keeps a lock +
//! unlock on such a name free of allocations once the spares are warm.

/// A guard's copy of its lock name: inline up to [`Name::INLINE`] bytes,
/// else in a buffer that goes back to [`NameBufs`] when the guard drops.
pub(crate) enum Name {
    Inline { len: u8, buf: [u8; Name::INLINE] },
    Heap(String),
}

impl Name {
    /// Bytes a name may have to stay inline.
    pub(crate) const INLINE: usize = 46;

    /// True when `name` needs a buffer (give [`Name::new`] one).
    pub(crate) fn is_long(name: &str) -> bool {
        name.len() > Self::INLINE
    }

    /// `s`, inline or in `buf` (reused; a fresh one when `None`).
    pub(crate) fn new(s: &str, buf: Option<String>) -> Name {
        if Self::is_long(s) {
            let mut buf = buf.unwrap_or_default();
            buf.clear();
            buf.push_str(s);
            Name::Heap(buf)
        } else {
            let mut buf = [0; Self::INLINE];
            buf[..s.len()].copy_from_slice(s.as_bytes());
            Name::Inline {
                len: s.len() as u8,
                buf,
            }
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        match self {
            // Copied from a `&str` whole, so always valid UTF-8.
            Name::Inline { len, buf } => {
                std::str::from_utf8(&buf[..usize::from(*len)]).unwrap_or("")
            }
            Name::Heap(s) => s,
        }
    }

    /// The buffer of a long name, leaving an empty inline name.
    pub(crate) fn take_buf(&mut self) -> Option<String> {
        match std::mem::replace(self, Name::new("", None)) {
            Name::Heap(s) => Some(s),
            Name::Inline { .. } => None,
        }
    }
}

/// Spare buffers of long names, kept behind the locker's mutex. Bounded in
/// number and size, so a burst of guards on long names leaves at most
/// [`NameBufs::MAX`] × [`NameBufs::MAX_CAPACITY`] bytes behind.
#[derive(Default)]
pub(crate) struct NameBufs {
    spare: Vec<String>,
}

impl NameBufs {
    /// Spares kept at most.
    pub(crate) const MAX: usize = 64;
    /// A buffer larger than this is freed rather than kept.
    pub(crate) const MAX_CAPACITY: usize = 256;

    /// A spare buffer, if any.
    pub(crate) fn take(&mut self) -> Option<String> {
        self.spare.pop()
    }

    /// Keeps `buf` for the next long name, within the bounds.
    pub(crate) fn keep(&mut self, buf: String) {
        if self.spare.len() < Self::MAX && buf.capacity() <= Self::MAX_CAPACITY {
            // The first keeps may grow the list; it stays at its size after.
            self.spare.push(buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Name, NameBufs};

    #[test]
    fn names_round_trip() {
        for s in [
            "a",
            "ünïcødé",
            &"x".repeat(Name::INLINE),
            &"y".repeat(Name::INLINE + 1),
        ] {
            assert_eq!(Name::new(s, None).as_str(), s);
            assert_eq!(Name::new(s, Some("old text".into())).as_str(), s);
        }
        assert!(matches!(
            Name::new(&"z".repeat(Name::INLINE), None),
            Name::Inline { .. }
        ));
        assert!(matches!(
            Name::new(&"z".repeat(Name::INLINE + 1), None),
            Name::Heap(_)
        ));
    }

    #[test]
    fn a_long_names_buffer_is_reused() {
        let mut bufs = NameBufs::default();
        let long = "k".repeat(Name::INLINE + 10);
        let mut first = Name::new(&long, bufs.take());
        let buf = first.take_buf().unwrap();
        let ptr = buf.as_ptr();
        bufs.keep(buf);
        let second = Name::new(&"m".repeat(Name::INLINE + 5), bufs.take());
        assert_eq!(second.as_str(), "m".repeat(Name::INLINE + 5));
        assert!(matches!(&second, Name::Heap(s) if s.as_ptr() == ptr));
        assert_eq!(first.as_str(), "");
    }

    #[test]
    fn spares_are_bounded() {
        let mut bufs = NameBufs::default();
        bufs.keep(String::with_capacity(NameBufs::MAX_CAPACITY + 1));
        assert!(bufs.take().is_none());
        for _ in 0..NameBufs::MAX + 5 {
            bufs.keep(String::with_capacity(8));
        }
        let mut n = 0;
        while bufs.take().is_some() {
            n += 1;
        }
        assert_eq!(n, NameBufs::MAX);
    }
}
