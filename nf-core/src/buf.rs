//! The packet buffer abstraction shared by DPDK mbufs and test buffers.
//!
//! A buffer is a contiguous data region with headroom in front and tailroom
//! behind, exactly like `rte_mbuf`: headers are stripped with [`PacketBuf::adj`]
//! and prepended into the headroom with [`PacketBuf::prepend`], so payload never
//! moves.

/// A packet buffer: headroom | data | tailroom.
pub trait PacketBuf {
    /// The packet bytes.
    fn data(&self) -> &[u8];
    /// The packet bytes, writable.
    fn data_mut(&mut self) -> &mut [u8];
    /// Bytes free in front of the data.
    fn headroom(&self) -> usize;
    /// Bytes free behind the data.
    fn tailroom(&self) -> usize;
    /// Grows the data by `n` bytes at the front; `None` (and no change) if the
    /// headroom is too small.
    fn prepend(&mut self, n: usize) -> Option<&mut [u8]>;
    /// Grows the data by `n` bytes at the end; `None` if the tailroom is too small.
    fn append(&mut self, n: usize) -> Option<&mut [u8]>;
    /// Removes `n` bytes from the front; false (and no change) if `n > len`.
    fn adj(&mut self, n: usize) -> bool;
    /// Removes `n` bytes from the end; false (and no change) if `n > len`.
    fn trim(&mut self, n: usize) -> bool;
    /// Number of data bytes.
    #[inline]
    fn len(&self) -> usize {
        self.data().len()
    }
    /// True when the buffer holds no data.
    #[inline]
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Sets the data length to `n` bytes from the current start (shrinking or
    /// growing into the tailroom). False if it does not fit.
    #[inline]
    fn set_len(&mut self, n: usize) -> bool {
        let len = self.len();
        if n <= len {
            self.trim(len - n)
        } else {
            self.append(n - len).is_some()
        }
    }
}

/// Default headroom of a [`VecBuf`], the same as DPDK's `RTE_PKTMBUF_HEADROOM`.
pub const DEFAULT_HEADROOM: usize = 128;
/// Default capacity (headroom + data + tailroom) of a [`VecBuf`], as an mbuf
/// from a pool with `RTE_MBUF_DEFAULT_BUF_SIZE`.
pub const DEFAULT_CAPACITY: usize = 2048 + DEFAULT_HEADROOM;

/// A heap-backed [`PacketBuf`] for tests, benchmarks and fuzzing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VecBuf {
    storage: Vec<u8>,
    start: usize,
    end: usize,
}

impl VecBuf {
    /// An empty buffer with the given headroom and total capacity.
    #[inline]
    pub fn with_capacity(headroom: usize, capacity: usize) -> Self {
        let headroom = headroom.min(capacity);
        VecBuf {
            storage: vec![0; capacity],
            start: headroom,
            end: headroom,
        }
    }

    /// An empty buffer shaped like a default mbuf.
    #[inline]
    pub fn new() -> Self {
        Self::with_capacity(DEFAULT_HEADROOM, DEFAULT_CAPACITY)
    }

    /// A buffer holding a copy of `bytes` after the default headroom (grown if
    /// `bytes` does not fit the default capacity).
    #[inline]
    pub fn from_slice(bytes: &[u8]) -> Self {
        let cap = DEFAULT_CAPACITY.max(DEFAULT_HEADROOM + bytes.len());
        let mut b = Self::with_capacity(DEFAULT_HEADROOM, cap);
        b.storage[DEFAULT_HEADROOM..DEFAULT_HEADROOM + bytes.len()].copy_from_slice(bytes);
        b.end = DEFAULT_HEADROOM + bytes.len();
        b
    }

    /// Empties the buffer and restores the default headroom.
    #[inline]
    pub fn reset(&mut self) {
        let h = DEFAULT_HEADROOM.min(self.storage.len());
        self.start = h;
        self.end = h;
    }
}

impl Default for VecBuf {
    #[inline]
    fn default() -> Self {
        Self::new()
    }
}

impl PacketBuf for VecBuf {
    #[inline]
    fn data(&self) -> &[u8] {
        &self.storage[self.start..self.end]
    }
    #[inline]
    fn data_mut(&mut self) -> &mut [u8] {
        &mut self.storage[self.start..self.end]
    }
    #[inline]
    fn headroom(&self) -> usize {
        self.start
    }
    #[inline]
    fn tailroom(&self) -> usize {
        self.storage.len() - self.end
    }
    #[inline]
    fn prepend(&mut self, n: usize) -> Option<&mut [u8]> {
        if n > self.start {
            return None;
        }
        self.start -= n;
        Some(&mut self.storage[self.start..self.start + n])
    }
    #[inline]
    fn append(&mut self, n: usize) -> Option<&mut [u8]> {
        if n > self.tailroom() {
            return None;
        }
        let old = self.end;
        self.end += n;
        Some(&mut self.storage[old..self.end])
    }
    #[inline]
    fn adj(&mut self, n: usize) -> bool {
        if n > self.end - self.start {
            return false;
        }
        self.start += n;
        true
    }
    #[inline]
    fn trim(&mut self, n: usize) -> bool {
        if n > self.end - self.start {
            return false;
        }
        self.end -= n;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepend_adj_trim_append() {
        let mut b = VecBuf::from_slice(&[1, 2, 3, 4]);
        assert_eq!(b.headroom(), DEFAULT_HEADROOM);
        b.prepend(2).unwrap().copy_from_slice(&[9, 8]);
        assert_eq!(b.data(), &[9, 8, 1, 2, 3, 4]);
        assert!(b.adj(3));
        assert_eq!(b.data(), &[2, 3, 4]);
        assert!(b.trim(1));
        assert_eq!(b.data(), &[2, 3]);
        b.append(1).unwrap()[0] = 7;
        assert_eq!(b.data(), &[2, 3, 7]);
        assert!(!b.adj(4));
        assert!(!b.trim(4));
        assert_eq!(b.data(), &[2, 3, 7]);
        assert!(b.prepend(10_000).is_none());
        assert!(b.append(10_000).is_none());
        assert!(b.set_len(1));
        assert_eq!(b.data(), &[2]);
    }
}
