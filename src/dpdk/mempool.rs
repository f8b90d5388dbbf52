//! Packet mbuf pools.

use super::{ffi, Mbuf};
use std::ffi::CString;
use std::ptr::NonNull;

/// A pktmbuf pool. The pool lives until EAL cleanup (DPDK pools cannot be
/// freed while mbufs from it may be in flight), so this is a copyable handle.
#[derive(Clone, Copy)]
pub struct Mempool {
    raw: NonNull<ffi::rte_mempool>,
}

// SAFETY: rte_mempool is designed for concurrent use from lcores (per-lcore
// caches + a lock-free ring); the handle is only a pointer.
unsafe impl Send for Mempool {}
// SAFETY: see above; read-only queries (in-use count) are thread-safe.
unsafe impl Sync for Mempool {}

impl Mempool {
    /// Creates a pool of `n` mbufs with a per-lcore cache.
    pub fn create(name: &str, n: u32, cache: u32, socket: i32) -> Result<Mempool, String> {
        let cname = CString::new(name).map_err(|e| e.to_string())?;
        // SAFETY: valid name; sizes are plain integers checked by DPDK.
        let raw = unsafe {
            ffi::rte_pktmbuf_pool_create(
                cname.as_ptr(),
                n,
                cache,
                0,
                ffi::RTE_MBUF_DEFAULT_BUF_SIZE as u16,
                socket,
            )
        };
        NonNull::new(raw).map(|raw| Mempool { raw }).ok_or_else(|| {
            format!(
                "cannot create mbuf pool {name} ({n} mbufs): {} — give DPDK more memory (eal args `-m`, or more hugepages) or lower limits.mbufs",
                super::last_error()
            )
        })
    }

    pub(crate) fn as_ptr(&self) -> *mut ffi::rte_mempool {
        self.raw.as_ptr()
    }

    /// Allocates one mbuf.
    #[inline]
    pub fn alloc(&self) -> Option<Mbuf> {
        // SAFETY: the pool pointer is valid for the process lifetime.
        let m = unsafe { ffi::rte_pktmbuf_alloc(self.raw.as_ptr()) };
        // SAFETY: a freshly allocated mbuf is exclusively ours.
        NonNull::new(m).map(|m| unsafe { Mbuf::from_raw(m) })
    }

    /// Mbufs currently allocated (not in the pool or its caches).
    pub fn in_use(&self) -> u32 {
        // SAFETY: read-only query on a valid pool.
        unsafe { ffi::rte_mempool_in_use_count(self.raw.as_ptr()) }
    }
}
