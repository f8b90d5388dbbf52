//! An owned `rte_mbuf` that implements nf-core's `PacketBuf`.

use super::ffi;
use nf_core::PacketBuf;
use std::ptr::NonNull;

/// An owned, single-segment packet mbuf. Dropping it frees it to its pool.
/// `repr(transparent)` so that a `[Mbuf]` is a `[*mut rte_mbuf]` for bursts.
#[repr(transparent)]
pub struct Mbuf {
    raw: NonNull<ffi::rte_mbuf>,
}

impl Mbuf {
    /// # Safety
    /// `raw` must be a valid mbuf that the caller owns exclusively.
    pub(crate) unsafe fn from_raw(raw: NonNull<ffi::rte_mbuf>) -> Mbuf {
        Mbuf { raw }
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
    pub fn nb_segs(&self) -> u16 {
        self.m().nb_segs
    }

    /// Prefetches the first cache line of packet data (rte_prefetch0).
    #[inline]
    pub fn prefetch(&self) {
        let m = self.m();
        #[cfg(target_arch = "x86_64")]
        // SAFETY: prefetch is a hint; it never faults, even on a bad address,
        // and this one points into the mbuf's own data buffer.
        unsafe {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            _mm_prefetch::<_MM_HINT_T0>((m.buf_addr as *const i8).add(usize::from(m.data_off)));
        }
    }

    /// Total packet length over all segments.
    pub fn pkt_len(&self) -> u32 {
        self.m().pkt_len
    }
}

impl Drop for Mbuf {
    fn drop(&mut self) {
        // SAFETY: we own the mbuf; it is freed exactly once.
        unsafe { ffi::rte_pktmbuf_free(self.raw.as_ptr()) }
    }
}

impl PacketBuf for Mbuf {
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
}
