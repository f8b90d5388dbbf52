//! Shared, sliceable payload handles: the unit the TCP and MPTCP engines
//! queue, segment and splice without copying payload.
//!
//! A [`Chunk`] is a cheap handle to bytes held elsewhere (a refcounted mbuf
//! with an offset and length in production, [`Bytes`] in tests and the
//! simulator). `slice` shares the underlying buffer: segmenting to the MSS
//! and queueing for retransmission never copy payload.

use std::rc::Rc;

/// A cheaply cloneable, sliceable view of payload bytes.
pub trait Chunk: Clone {
    /// The bytes.
    fn as_slice(&self) -> &[u8];
    /// A handle to `self[start..end]` sharing the same storage.
    /// `start <= end <= len` is the caller's obligation; out-of-range bounds
    /// are clamped.
    fn slice(&self, start: usize, end: usize) -> Self;
    /// A handle to a copy of `s` (for payload that cannot be shared: built
    /// by hagw itself, or held back from a buffer pool under pressure).
    fn copied(s: &[u8]) -> Self;
    /// An empty handle (a pure ACK's payload).
    fn empty() -> Self {
        Self::copied(&[])
    }
    fn len(&self) -> usize {
        self.as_slice().len()
    }
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A reference-counted byte buffer with a window into it. Empty handles
/// share one per-thread empty buffer (a pure ACK's payload costs no
/// allocation, as an empty mbuf chunk costs none) and keep the pointer's
/// niche free, so `Option<Bytes>` stays the size of `Bytes`.
#[derive(Clone, Debug)]
pub struct Bytes {
    buf: Rc<Vec<u8>>,
    start: usize,
    end: usize,
}

thread_local! {
    static EMPTY: Rc<Vec<u8>> = Rc::new(Vec::new());
}

impl Bytes {
    /// Takes `v` over (no copy).
    pub fn new(v: Vec<u8>) -> Self {
        if v.is_empty() {
            return Self::empty();
        }
        let end = v.len();
        Bytes {
            buf: Rc::new(v),
            start: 0,
            end,
        }
    }
    pub fn empty() -> Self {
        Bytes {
            buf: EMPTY.with(Rc::clone),
            start: 0,
            end: 0,
        }
    }
    /// A window `start..end` (clamped) into storage shared with a packet
    /// buffer ([`crate::VecBuf::share`]).
    pub(crate) fn window(buf: &Rc<Vec<u8>>, start: usize, end: usize) -> Self {
        let end = end.min(buf.len());
        Bytes {
            buf: Rc::clone(buf),
            start: start.min(end),
            end,
        }
    }
    /// True when both handles share one allocation (used by tests to prove
    /// that no payload was copied).
    pub fn shares_storage(&self, other: &Bytes) -> bool {
        !self.buf.is_empty() && Rc::ptr_eq(&self.buf, &other.buf)
    }
}

impl PartialEq for Bytes {
    fn eq(&self, o: &Bytes) -> bool {
        self.as_slice() == o.as_slice()
    }
}
impl Eq for Bytes {}

impl From<&[u8]> for Bytes {
    fn from(s: &[u8]) -> Self {
        Bytes::new(s.to_vec())
    }
}

impl Chunk for Bytes {
    #[inline]
    fn as_slice(&self) -> &[u8] {
        self.buf.get(self.start..self.end).unwrap_or(&[])
    }
    #[inline]
    fn slice(&self, start: usize, end: usize) -> Self {
        let len = self.end - self.start;
        let end = end.min(len);
        let start = start.min(end);
        if start == end {
            return Bytes::empty();
        }
        Bytes {
            buf: self.buf.clone(),
            start: self.start + start,
            end: self.start + end,
        }
    }
    fn copied(s: &[u8]) -> Self {
        Bytes::from(s)
    }
    fn empty() -> Self {
        Bytes::empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn slices_share() {
        let b = Bytes::new((0..100u8).collect());
        let s = b.slice(10, 20);
        assert_eq!(s.as_slice(), &(10..20u8).collect::<Vec<_>>()[..]);
        assert!(s.shares_storage(&b));
        let t = s.slice(5, 50);
        assert_eq!(t.as_slice(), &[15, 16, 17, 18, 19]);
        assert!(b.slice(90, 10).is_empty());
        // empty handles hold no storage
        assert!(!Bytes::empty().shares_storage(&Bytes::empty()));
        assert!(Bytes::new(Vec::new()).as_slice().is_empty());
        assert!(Bytes::from(&[][..]).is_empty() && b.slice(7, 7).is_empty());
    }
}
