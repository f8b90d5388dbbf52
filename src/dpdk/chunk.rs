//! Payload handles over mbufs: the conversion point holds and splices
//! payload as references to the mbufs it arrived in (`rte_mbuf_refcnt`),
//! and sends it as indirect mbufs chained behind hagw's headers
//! (`rte_pktmbuf_attach`), so spliced payload is never copied by hagw
//! (DESIGN.md §3).
//!
//! A held payload keeps its whole receive mbuf out of the pool. So that
//! held payload can never drain the pool the ports receive into (which
//! would stop every ACK that could free it), each worker sets how many
//! handles may live on its thread ([`set_pin_limit`], half its pool):
//! while that many are alive, payload is copied to the heap instead of
//! held (the copy counted). Handles cloned or sliced from held ones (the
//! engines segmenting) count too but are never refused, so the count can
//! pass the limit for a moment; no new mbuf is held while it does.

use super::ffi;
use nf_core::chunk::{Bytes, Chunk};
use std::cell::Cell;
use std::ptr::NonNull;

thread_local! {
    /// Mbuf handles alive on this thread.
    static PINNED: Cell<usize> = const { Cell::new(0) };
    /// How many may be (0: payload is always copied).
    static PIN_LIMIT: Cell<usize> = const { Cell::new(0) };
}

/// How many mbuf handles this thread may hold (0: never share).
pub fn set_pin_limit(n: usize) {
    PIN_LIMIT.with(|l| l.set(n));
}

/// Mbuf handles alive on this thread.
pub fn pinned() -> usize {
    PINNED.with(Cell::get)
}

/// One more handle on `raw`: its reference count and this thread's count.
///
/// # Safety
/// `raw` must be alive (the caller holds a reference to it).
unsafe fn retain(raw: NonNull<ffi::rte_mbuf>) {
    PINNED.with(|p| p.set(p.get() + 1));
    // SAFETY: the caller's reference keeps the mbuf alive; the new one is
    // released by the handle's Drop.
    unsafe { ffi::rte_mbuf_refcnt_update(raw.as_ptr(), 1) };
}

/// A cheap handle to payload bytes: a window into a referenced mbuf, or a
/// heap copy where the mbuf could not be held.
pub enum MbufChunk {
    Empty,
    Heap(Bytes),
    Mbuf {
        /// Holds one reference (`refcnt`) of its own.
        raw: NonNull<ffi::rte_mbuf>,
        /// From the mbuf's `buf_addr`.
        off: u16,
        len: u16,
    },
}

impl MbufChunk {
    /// A new handle to `len` bytes at `off` (from `buf_addr`) of `raw`,
    /// taking a reference; `None` when this thread's limit is reached.
    ///
    /// # Safety
    /// `raw` must be a valid mbuf the caller holds a reference to, and
    /// `off..off + len` must lie inside its buffer.
    pub(crate) unsafe fn new(raw: NonNull<ffi::rte_mbuf>, off: u16, len: u16) -> Option<MbufChunk> {
        if len == 0 {
            return Some(MbufChunk::Empty);
        }
        if PINNED.with(Cell::get) >= PIN_LIMIT.with(Cell::get) {
            return None;
        }
        // SAFETY: the caller holds a reference.
        unsafe { retain(raw) };
        Some(MbufChunk::Mbuf { raw, off, len })
    }

    /// The mbuf, offset and length of a shared window (for chaining).
    pub(crate) fn window(&self) -> Option<(NonNull<ffi::rte_mbuf>, u16, u16)> {
        match *self {
            MbufChunk::Mbuf { raw, off, len } => Some((raw, off, len)),
            _ => None,
        }
    }
}

impl Clone for MbufChunk {
    fn clone(&self) -> Self {
        match self {
            MbufChunk::Empty => MbufChunk::Empty,
            MbufChunk::Heap(b) => MbufChunk::Heap(b.clone()),
            &MbufChunk::Mbuf { raw, off, len } => {
                // SAFETY: `self` holds a reference.
                unsafe { retain(raw) };
                MbufChunk::Mbuf { raw, off, len }
            }
        }
    }
}

impl Drop for MbufChunk {
    fn drop(&mut self) {
        if let MbufChunk::Mbuf { raw, .. } = *self {
            PINNED.with(|p| p.set(p.get().saturating_sub(1)));
            // SAFETY: releases this handle's reference; the mbuf goes back
            // to its pool with the last one. Handles are made from
            // single-segment mbufs, so freeing one segment frees it whole.
            unsafe { ffi::rte_pktmbuf_free_seg(raw.as_ptr()) }
        }
    }
}

impl Chunk for MbufChunk {
    #[inline]
    fn as_slice(&self) -> &[u8] {
        match self {
            MbufChunk::Empty => &[],
            MbufChunk::Heap(b) => b.as_slice(),
            &MbufChunk::Mbuf { raw, off, len } => {
                // SAFETY: the handle's reference keeps the mbuf and its
                // buffer alive and unchanged (a received packet is never
                // written once shared); `off..off + len` was checked
                // against the buffer when the handle was made.
                unsafe {
                    let m = raw.as_ref();
                    std::slice::from_raw_parts(
                        (m.buf_addr as *const u8).add(usize::from(off)),
                        usize::from(len),
                    )
                }
            }
        }
    }

    #[inline]
    fn slice(&self, start: usize, end: usize) -> Self {
        let l = self.len();
        let end = end.min(l);
        let start = start.min(end);
        match self {
            MbufChunk::Empty => MbufChunk::Empty,
            MbufChunk::Heap(b) => MbufChunk::Heap(b.slice(start, end)),
            &MbufChunk::Mbuf { raw, off, .. } => {
                if start == end {
                    return MbufChunk::Empty;
                }
                // SAFETY: `self` holds a reference; the window stays
                // inside this one.
                unsafe { retain(raw) };
                MbufChunk::Mbuf {
                    raw,
                    off: off + start as u16,
                    len: (end - start) as u16,
                }
            }
        }
    }

    fn copied(s: &[u8]) -> Self {
        if s.is_empty() {
            MbufChunk::Empty
        } else {
            MbufChunk::Heap(Bytes::from(s))
        }
    }

    fn empty() -> Self {
        MbufChunk::Empty
    }
}
