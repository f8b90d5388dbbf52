//! An owned `rte_mbuf` that implements nf-core's `PacketBuf`.

use super::chunk::MbufChunk;
use super::ffi;
use nf_core::chunk::Chunk;
use nf_core::{PacketBuf, RxChecksum};
use std::ptr::NonNull;

// rte_mbuf_core.h: RTE_MBUF_F_RX_IP_CKSUM_{MASK,BAD,GOOD} (both bits: NONE,
// neither: UNKNOWN).
const RX_IP_CKSUM_MASK: u64 = (1 << 4) | (1 << 7);
const RX_IP_CKSUM_BAD: u64 = 1 << 4;
const RX_IP_CKSUM_GOOD: u64 = 1 << 7;
// RTE_MBUF_F_RX_L4_CKSUM_{MASK,BAD,GOOD}, the same scheme. NONE (both bits:
// the data was verified but the checksum field is not right, LRO) counts
// as unknown: software then verifies, as it does without the offload.
const RX_L4_CKSUM_MASK: u64 = (1 << 3) | (1 << 8);
const RX_L4_CKSUM_BAD: u64 = 1 << 3;
const RX_L4_CKSUM_GOOD: u64 = 1 << 8;
// RTE_MBUF_F_TX_TCP_CKSUM, RTE_MBUF_F_TX_IPV4, RTE_MBUF_F_TX_IPV6.
const TX_TCP_CKSUM: u64 = 1 << 52;
const TX_IPV4: u64 = 1 << 55;
const TX_IPV6: u64 = 1 << 56;

/// A NIC's checksum verdict from `ol_flags`: its two bits under `mask`
/// say good, bad, or (neither, or both) nothing software can rely on.
#[inline]
fn verdict(flags: u64, mask: u64, good: u64, bad: u64) -> RxChecksum {
    match flags & mask {
        f if f == good => RxChecksum::Good,
        f if f == bad => RxChecksum::Bad,
        _ => RxChecksum::Unknown,
    }
}

/// An owned packet mbuf: one segment as received, or hagw's headers with
/// payload chained behind them ([`PacketBuf::chain`]). Dropping it frees
/// every segment to its pool.
/// `repr(transparent)` so that a `[Mbuf]` is a `[*mut rte_mbuf]` for bursts.
#[repr(transparent)]
pub struct Mbuf {
    raw: NonNull<ffi::rte_mbuf>,
}

// SAFETY: an Mbuf is the only handle to its mbuf (chained segments and
// the references it holds included); DPDK mbufs may be passed to and freed
// on any lcore (the pool is multi-producer/consumer). Workers hand packets
// of each other's sessions over this way.
unsafe impl Send for Mbuf {}

impl Mbuf {
    /// # Safety
    /// `raw` must be a valid mbuf that the caller owns exclusively.
    pub(crate) unsafe fn from_raw(raw: NonNull<ffi::rte_mbuf>) -> Mbuf {
        Mbuf { raw }
    }

    /// Where the data of an mbuf of our pools starts when its `data_off`
    /// is `off`: the data buffer follows the mbuf's header, with no private
    /// area (`Mempool::create`; af_xdp lays its UMEM over the same pool).
    /// Only a hint ([`PacketBuf::prefetch_burst`]); `hagw bench forward`
    /// checks it against `data()` on the frames it receives.
    #[inline(always)]
    pub(crate) fn data_addr_at(&self, off: u16) -> *const u8 {
        (self.raw.as_ptr() as *const u8)
            .wrapping_add(std::mem::size_of::<ffi::rte_mbuf>() + usize::from(off))
    }

    /// The buffer from the data's start to its end: the frame, then the
    /// tailroom (where a NIC that keeps the CRC writes it). For `hagw bench
    /// forward`, which plays the NIC's DMA.
    #[inline]
    pub(crate) fn frame_room_mut(&mut self) -> &mut [u8] {
        // SAFETY: buf_addr + data_off is inside the buffer of buf_len bytes
        // (data_off <= buf_len, an mbuf invariant), which we own alone; the
        // bytes past data_len are the tailroom, initialised memory of the
        // pool's element.
        unsafe {
            let m = self.raw.as_mut();
            let off = usize::from(m.data_off);
            std::slice::from_raw_parts_mut(
                (m.buf_addr as *mut u8).add(off),
                usize::from(m.buf_len).saturating_sub(off),
            )
        }
    }

    /// The offset of the data in the buffer.
    #[inline]
    pub(crate) fn data_off(&self) -> u16 {
        self.m().data_off
    }

    /// Releases ownership without freeing.
    pub(crate) fn into_raw(self) -> *mut ffi::rte_mbuf {
        let p = self.raw.as_ptr();
        std::mem::forget(self);
        p
    }

    fn m(&self) -> &ffi::rte_mbuf {
        // SAFETY: we own a valid mbuf.
        unsafe { self.raw.as_ref() }
    }

    /// Number of segments (hagw's pipeline handles single-segment mbufs).
    #[inline]
    pub fn nb_segs(&self) -> u16 {
        self.m().nb_segs
    }

    /// A fresh mbuf from this one's pool.
    fn alloc_like(&self) -> Option<Mbuf> {
        // SAFETY: an mbuf's pool outlives it; alloc returns NULL when empty.
        let m = NonNull::new(unsafe { ffi::rte_pktmbuf_alloc(self.m().pool) })?;
        // SAFETY: a freshly allocated mbuf is exclusively ours.
        Some(unsafe { Mbuf::from_raw(m) })
    }

    /// Appends `seg` to the chain (dropped, so freed, when the chain is at
    /// RTE_MBUF_MAX_NB_SEGS).
    fn chain_seg(&mut self, seg: Mbuf) -> bool {
        // SAFETY: both are valid mbufs we own; on success the chain owns
        // `seg`, on failure (-EOVERFLOW) `seg` is untouched and still ours.
        let rc = unsafe { ffi::rte_pktmbuf_chain(self.raw.as_ptr(), seg.raw.as_ptr()) };
        if rc == 0 {
            let _ = seg.into_raw();
        }
        rc == 0
    }
}

impl Drop for Mbuf {
    fn drop(&mut self) {
        // SAFETY: we own the mbuf; it is freed exactly once.
        unsafe { ffi::rte_pktmbuf_free(self.raw.as_ptr()) }
    }
}

impl PacketBuf for Mbuf {
    type Chunk = MbufChunk;

    #[inline]
    fn data(&self) -> &[u8] {
        let m = self.m();
        // SAFETY: rte_pktmbuf_mtod = buf_addr + data_off; data_len bytes are
        // initialised packet data inside the buffer we own.
        unsafe {
            std::slice::from_raw_parts(
                (m.buf_addr as *const u8).add(usize::from(m.data_off)),
                usize::from(m.data_len),
            )
        }
    }
    #[inline]
    fn data_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `data`, and we hold the only reference.
        unsafe {
            let m = self.raw.as_mut();
            std::slice::from_raw_parts_mut(
                (m.buf_addr as *mut u8).add(usize::from(m.data_off)),
                usize::from(m.data_len),
            )
        }
    }
    fn headroom(&self) -> usize {
        usize::from(self.m().data_off)
    }
    fn tailroom(&self) -> usize {
        let m = self.m();
        usize::from(m.buf_len) - usize::from(m.data_off) - usize::from(m.data_len)
    }
    #[inline]
    fn prepend(&mut self, n: usize) -> Option<&mut [u8]> {
        let n16 = u16::try_from(n).ok()?;
        // SAFETY: rte_pktmbuf_prepend checks the headroom and returns NULL
        // when it is too small; otherwise the n bytes are inside our buffer.
        unsafe {
            let p = ffi::rte_pktmbuf_prepend(self.raw.as_ptr(), n16);
            if p.is_null() {
                return None;
            }
            Some(std::slice::from_raw_parts_mut(p as *mut u8, n))
        }
    }
    fn append(&mut self, n: usize) -> Option<&mut [u8]> {
        let n16 = u16::try_from(n).ok()?;
        // SAFETY: rte_pktmbuf_append checks the tailroom of the last segment.
        unsafe {
            let p = ffi::rte_pktmbuf_append(self.raw.as_ptr(), n16);
            if p.is_null() {
                return None;
            }
            Some(std::slice::from_raw_parts_mut(p as *mut u8, n))
        }
    }
    #[inline]
    fn adj(&mut self, n: usize) -> bool {
        let Ok(n16) = u16::try_from(n) else {
            return false;
        };
        // SAFETY: rte_pktmbuf_adj checks n against data_len.
        unsafe { !ffi::rte_pktmbuf_adj(self.raw.as_ptr(), n16).is_null() }
    }
    fn trim(&mut self, n: usize) -> bool {
        let Ok(n16) = u16::try_from(n) else {
            return false;
        };
        // SAFETY: rte_pktmbuf_trim checks n against the last segment.
        unsafe { ffi::rte_pktmbuf_trim(self.raw.as_ptr(), n16) == 0 }
    }
    #[inline]
    fn pkt_len(&self) -> usize {
        self.m().pkt_len as usize
    }
    #[inline]
    fn segments(&self) -> usize {
        usize::from(self.nb_segs())
    }
    /// The first cache line of each frame of a received burst
    /// (rte_prefetch0). A queue's PMD starts every frame at the same
    /// offset (RTE_PKTMBUF_HEADROOM; af_xdp 256 bytes further), so the
    /// first frame's `data_off` stands for all and each address is computed
    /// from the mbuf's own ([`Mbuf::data_addr_at`]), not read from its
    /// header (`buf_addr + data_off`): that was one or two dependent loads
    /// per packet. On `hagw bench forward` (64 B, the whole burst
    /// prefetched at its start), each round's median ns per packet over
    /// five interleaved rounds: 29.0-30.0 reading `buf_addr + data_off`,
    /// 27.9-29.9 with the mbuf's address plus its own `data_off`, 27.0-28.4
    /// with a fixed offset (wrong for af_xdp). The first frame's offset, as
    /// here, against the loop before: nf-app's `pipeline/fastpath.rs`.
    #[inline]
    fn prefetch_burst(bufs: &[Mbuf]) {
        let Some(first) = bufs.first() else {
            return;
        };
        let off = first.m().data_off;
        for b in bufs {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: prefetch is a hint; it never faults, even on a bad
            // address, and `wrapping_add` computes one without dereferencing.
            unsafe {
                use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
                _mm_prefetch::<_MM_HINT_T0>(b.data_addr_at(off) as *const i8);
            }
            #[cfg(not(target_arch = "x86_64"))]
            let _ = (b, off);
        }
    }
    #[inline]
    fn rx_ip_checksum(&self) -> RxChecksum {
        verdict(
            self.m().ol_flags,
            RX_IP_CKSUM_MASK,
            RX_IP_CKSUM_GOOD,
            RX_IP_CKSUM_BAD,
        )
    }
    #[inline]
    fn rx_l4_checksum(&self) -> RxChecksum {
        verdict(
            self.m().ol_flags,
            RX_L4_CKSUM_MASK,
            RX_L4_CKSUM_GOOD,
            RX_L4_CKSUM_BAD,
        )
    }
    #[inline]
    fn offload_tcp_checksum(&mut self, l2_len: usize, l3_len: usize, ipv6: bool) {
        // rte_mbuf_core.h: L4 checksum offload wants l2_len and l3_len
        // filled (tx_offload bits 0-6 and 7-15), RTE_MBUF_F_TX_TCP_CKSUM
        // and RTE_MBUF_F_TX_IPV4/IPV6; the pseudo-header's sum is already
        // in the TCP checksum field
        let lens = (l2_len as u64 & 0x7f) | ((l3_len as u64 & 0x1ff) << 7);
        // SAFETY: we own the mbuf; `tx_offload` is the u64 view of the
        // union whose bit-fields the PMD reads (plain data).
        unsafe {
            let m = self.raw.as_mut();
            m.__bindgen_anon_3.tx_offload = lens;
            m.ol_flags |= TX_TCP_CKSUM | if ipv6 { TX_IPV6 } else { TX_IPV4 };
        }
    }
    #[inline]
    fn share(&self, start: usize, end: usize) -> Option<MbufChunk> {
        let m = self.m();
        if start > end || end > usize::from(m.data_len) {
            return None;
        }
        // both fit in u16: end <= data_len and data_off + data_len <= buf_len
        let off = m.data_off + start as u16;
        // SAFETY: we hold a reference to the mbuf; the window lies inside
        // its data.
        unsafe { MbufChunk::new(self.raw, off, (end - start) as u16) }
    }
    fn chain(&mut self, c: &MbufChunk) -> Option<usize> {
        if c.is_empty() {
            return Some(0);
        }
        if let Some((raw, off, len)) = c.window() {
            // an indirect mbuf over the chunk's window (no copy)
            let mut mi = self.alloc_like()?;
            // SAFETY: `mi` is a fresh direct mbuf (refcnt 1) and `raw` is
            // alive (the chunk holds a reference); attach takes a reference
            // of its own on raw's direct mbuf, released when `mi` is freed.
            // The window lies inside raw's buffer, which `mi` now points at.
            unsafe {
                ffi::rte_pktmbuf_attach(mi.raw.as_ptr(), raw.as_ptr());
                let m = mi.raw.as_mut();
                m.data_off = off;
                m.data_len = len;
                m.pkt_len = u32::from(len);
            }
            return self.chain_seg(mi).then_some(0);
        }
        // payload held on the heap: copied behind the headers (into the
        // first segment while nothing is chained, else into a new one)
        let s = c.as_slice();
        if self.nb_segs() == 1 && self.tailroom() >= s.len() {
            self.append(s.len())?.copy_from_slice(s);
            return Some(s.len());
        }
        let mut seg = self.alloc_like()?;
        seg.append(s.len())?.copy_from_slice(s);
        self.chain_seg(seg).then_some(s.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_flags_decode_as_dpdk_defines_them() {
        let ip = |f| verdict(f, RX_IP_CKSUM_MASK, RX_IP_CKSUM_GOOD, RX_IP_CKSUM_BAD);
        let l4 = |f| verdict(f, RX_L4_CKSUM_MASK, RX_L4_CKSUM_GOOD, RX_L4_CKSUM_BAD);
        // rte_mbuf_core.h: IP GOOD bit 7, BAD bit 4; L4 GOOD bit 8, BAD bit 3
        assert_eq!(ip(1 << 7), RxChecksum::Good);
        assert_eq!(ip(1 << 4), RxChecksum::Bad);
        assert_eq!(l4(1 << 8), RxChecksum::Good);
        assert_eq!(l4(1 << 3), RxChecksum::Bad);
        // UNKNOWN (neither bit) and NONE (both) leave it to software
        for f in [0, (1 << 3) | (1 << 8)] {
            assert_eq!(l4(f), RxChecksum::Unknown);
        }
        assert_eq!(ip((1 << 4) | (1 << 7)), RxChecksum::Unknown);
        // each reads only its own bits
        assert_eq!(l4(1 << 7), RxChecksum::Unknown);
        assert_eq!(ip(1 << 8 | 1 << 3), RxChecksum::Unknown);
    }
}
