//! The packet buffer abstraction shared by DPDK mbufs and test buffers.
//!
//! A buffer is a contiguous data region with headroom in front and tailroom
//! behind, exactly like `rte_mbuf`: headers are stripped with [`PacketBuf::adj`]
//! and prepended into the headroom with [`PacketBuf::prepend`], so payload never
//! moves.
//!
//! Payload is shared with the protocol engines instead of copied: a
//! buffer hands out [`Chunk`]s over its own storage ([`PacketBuf::share`],
//! an mbuf reference in production), and a packet the gateway builds takes
//! chunks as chained segments behind its headers ([`PacketBuf::chain`], an
//! indirect mbuf), so spliced payload goes from the receiving buffer to the
//! wire untouched.

use crate::chunk::{Bytes, Chunk};
use std::rc::Rc;

/// What the NIC found of a received frame's IPv4 header checksum (DPDK's
/// `RTE_MBUF_F_RX_IP_CKSUM_*` flags) or TCP checksum
/// (`RTE_MBUF_F_RX_L4_CKSUM_*`), where the port verifies it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RxChecksum {
    /// Not checked: software verifies it (RFC 1812 §5.2.2).
    #[default]
    Unknown,
    Good,
    Bad,
}

/// A packet buffer: headroom | data | tailroom, optionally followed by
/// chained payload segments. `data` and the methods that resize it see the
/// first segment only; `pkt_len` counts all.
pub trait PacketBuf {
    /// The payload handle this buffer shares its storage through.
    type Chunk: Chunk;
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
    /// Number of data bytes (of the first segment).
    #[inline]
    fn len(&self) -> usize {
        self.data().len()
    }
    /// Bytes of the whole packet, chained segments included.
    #[inline]
    fn pkt_len(&self) -> usize {
        self.len()
    }
    /// A handle to `data()[start..end]` sharing this buffer's storage (no
    /// copy; the storage lives as long as a handle does). `None` when the
    /// range is out of bounds or the buffer cannot be shared now (an mbuf
    /// pool under pressure): the caller copies.
    fn share(&self, start: usize, end: usize) -> Option<Self::Chunk>;
    /// Appends `c` as a chained segment behind the data: by reference where
    /// `c` shares a buffer, else as a copy. Returns the bytes copied; `None`
    /// when no segment could be had (the packet is then unchanged).
    fn chain(&mut self, c: &Self::Chunk) -> Option<usize>;
    /// Segments the packet is made of (the pipeline reads only the first).
    #[inline]
    fn segments(&self) -> usize {
        1
    }
    /// Hints the CPU to fetch the first bytes of the data of each buffer of
    /// a received burst (their headers, before the burst is processed).
    #[inline]
    fn prefetch_burst(bufs: &[Self])
    where
        Self: Sized,
    {
        let _ = bufs;
    }
    /// The receiving NIC's verdict on the IPv4 header checksum.
    #[inline]
    fn rx_ip_checksum(&self) -> RxChecksum {
        RxChecksum::Unknown
    }
    /// The receiving NIC's verdict on the TCP/UDP checksum.
    #[inline]
    fn rx_l4_checksum(&self) -> RxChecksum {
        RxChecksum::Unknown
    }
    /// Asks the sending NIC to compute the TCP checksum of this packet
    /// (its field holds the pseudo-header's sum): `l2_len` bytes of link
    /// header (still to be prepended), `l3_len` of IP header. Only for a
    /// port whose NIC does so.
    #[inline]
    fn offload_tcp_checksum(&mut self, l2_len: usize, l3_len: usize, ipv6: bool) {
        let _ = (l2_len, l3_len, ipv6);
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

/// A heap-backed [`PacketBuf`] for tests, benchmarks and fuzzing. Its
/// storage is reference-counted so that [`PacketBuf::share`] hands out
/// [`Bytes`] without copying, as an mbuf hands out references; writing to
/// a buffer whose storage is shared copies it first (the pipeline never
/// writes to a packet it gave away). Chained segments are kept as `Bytes`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VecBuf {
    storage: Rc<Vec<u8>>,
    start: usize,
    end: usize,
    chained: Vec<Bytes>,
    /// What a NIC would have flagged (tests of the offload path).
    rx_ip: RxChecksum,
    rx_l4: RxChecksum,
    /// A TCP checksum left to the "NIC" (offset of the TCP header):
    /// [`VecBuf::frame`] computes it, as the NIC would on the wire.
    tx_l4: Option<usize>,
}

impl VecBuf {
    /// An empty buffer with the given headroom and total capacity.
    #[inline]
    pub fn with_capacity(headroom: usize, capacity: usize) -> Self {
        let headroom = headroom.min(capacity);
        VecBuf {
            storage: Rc::new(vec![0; capacity]),
            start: headroom,
            end: headroom,
            chained: Vec::new(),
            rx_ip: RxChecksum::Unknown,
            rx_l4: RxChecksum::Unknown,
            tx_l4: None,
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
        let mut v = vec![0; cap];
        v[DEFAULT_HEADROOM..DEFAULT_HEADROOM + bytes.len()].copy_from_slice(bytes);
        VecBuf {
            storage: Rc::new(v),
            start: DEFAULT_HEADROOM,
            end: DEFAULT_HEADROOM + bytes.len(),
            chained: Vec::new(),
            rx_ip: RxChecksum::Unknown,
            rx_l4: RxChecksum::Unknown,
            tx_l4: None,
        }
    }

    /// Empties the buffer and restores the default headroom.
    #[inline]
    pub fn reset(&mut self) {
        let h = DEFAULT_HEADROOM.min(self.storage.len());
        self.start = h;
        self.end = h;
        self.chained.clear();
        self.rx_ip = RxChecksum::Unknown;
        self.rx_l4 = RxChecksum::Unknown;
        self.tx_l4 = None;
    }

    /// Flags the IPv4 header checksum as a NIC that verifies it would.
    pub fn set_rx_ip_checksum(&mut self, c: RxChecksum) {
        self.rx_ip = c;
    }

    /// Flags the TCP/UDP checksum as a NIC that verifies it would.
    pub fn set_rx_l4_checksum(&mut self, c: RxChecksum) {
        self.rx_l4 = c;
    }

    /// The chained segments behind the data.
    pub fn chained(&self) -> &[Bytes] {
        &self.chained
    }

    /// The whole packet, chained segments included, as one vector (what a
    /// NIC would put on the wire).
    pub fn frame(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.pkt_len());
        v.extend_from_slice(self.data());
        for c in &self.chained {
            v.extend_from_slice(c.as_slice());
        }
        if let Some(at) = self.tx_l4 {
            // the NIC's part: sum the segment over the pseudo-header's sum
            // in the field, write the complement
            if let Some(seg) = v.get_mut(at..) {
                if seg.len() >= 20 {
                    let c = crate::wire::checksum::checksum(seg);
                    seg[16..18].copy_from_slice(&c.to_be_bytes());
                }
            }
        }
        v
    }

    /// The TCP checksum left to the NIC, if any: the TCP header's offset.
    pub fn tx_tcp_checksum(&self) -> Option<usize> {
        self.tx_l4
    }

    #[inline]
    fn storage_mut(&mut self) -> &mut Vec<u8> {
        Rc::make_mut(&mut self.storage)
    }
}

impl Default for VecBuf {
    #[inline]
    fn default() -> Self {
        Self::new()
    }
}

impl PacketBuf for VecBuf {
    type Chunk = Bytes;

    #[inline]
    fn rx_ip_checksum(&self) -> RxChecksum {
        self.rx_ip
    }

    #[inline]
    fn rx_l4_checksum(&self) -> RxChecksum {
        self.rx_l4
    }

    #[inline]
    fn offload_tcp_checksum(&mut self, l2_len: usize, l3_len: usize, _ipv6: bool) {
        self.tx_l4 = Some(l2_len + l3_len);
    }

    #[inline]
    fn data(&self) -> &[u8] {
        &self.storage[self.start..self.end]
    }
    #[inline]
    fn data_mut(&mut self) -> &mut [u8] {
        let (a, b) = (self.start, self.end);
        &mut self.storage_mut()[a..b]
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
        let a = self.start;
        Some(&mut self.storage_mut()[a..a + n])
    }
    /// Appends to the last segment: a buffer with chained segments (held
    /// by reference) has no tailroom of its own.
    #[inline]
    fn append(&mut self, n: usize) -> Option<&mut [u8]> {
        if n > self.tailroom() || !self.chained.is_empty() {
            return None;
        }
        let old = self.end;
        self.end += n;
        let e = self.end;
        Some(&mut self.storage_mut()[old..e])
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
        if n > self.end - self.start || !self.chained.is_empty() {
            return false;
        }
        self.end -= n;
        true
    }
    #[inline]
    fn pkt_len(&self) -> usize {
        self.len() + self.chained.iter().map(Chunk::len).sum::<usize>()
    }
    #[inline]
    fn segments(&self) -> usize {
        1 + self.chained.len()
    }
    fn share(&self, start: usize, end: usize) -> Option<Bytes> {
        if start > end || self.start + end > self.end {
            return None;
        }
        Some(Bytes::window(
            &self.storage,
            self.start + start,
            self.start + end,
        ))
    }
    fn chain(&mut self, c: &Bytes) -> Option<usize> {
        self.chained.push(c.clone());
        Some(0)
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

    #[test]
    fn share_and_chain_without_copying() {
        let mut rx = VecBuf::from_slice(&[1, 2, 3, 4, 5, 6]);
        let c = rx.share(2, 5).unwrap();
        assert_eq!(c.as_slice(), &[3, 4, 5]);
        assert!(rx.share(4, 7).is_none());
        assert!(rx.share(3, 2).is_none());
        let mut tx = VecBuf::new();
        tx.append(2).unwrap().copy_from_slice(&[9, 9]);
        assert_eq!(tx.chain(&c), Some(0));
        assert_eq!(tx.chain(&c.slice(1, 2)), Some(0));
        assert_eq!(tx.pkt_len(), 6);
        assert_eq!(tx.frame(), vec![9, 9, 3, 4, 5, 4]);
        // the chained bytes are rx's storage, not a copy
        assert!(tx.chained()[0].shares_storage(&c));
        // appending or trimming behind chained segments is refused
        assert!(tx.append(1).is_none());
        assert!(!tx.trim(1));
        // writing to the shared receive buffer copies it first: the
        // handles keep seeing what was received
        rx.data_mut()[2] = 0;
        assert_eq!(c.as_slice(), &[3, 4, 5]);
        assert_eq!(rx.data()[2], 0);
    }
}
