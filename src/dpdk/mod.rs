//! The only unsafe code of hagw: safe wrappers over DPDK 22.11.
//!
//! - [`eal`]: EAL init from config arguments, cleanup on drop.
//! - [`mempool`]: packet mbuf pools.
//! - [`mbuf`]: an owned `rte_mbuf` implementing nf-core's `PacketBuf`.
//! - [`chunk`]: payload handles over mbufs (references, indirect mbufs).
//! - [`port`]: ethdev configure, queues, RSS, start/stop, stats, link state,
//!   rx/tx bursts.
//! - [`lcore`]: launching closures on EAL worker lcores.

#[allow(
    non_upper_case_globals,
    non_camel_case_types,
    non_snake_case,
    dead_code,
    improper_ctypes,
    unnecessary_transmutes,
    clippy::all,
    clippy::pedantic
)]
pub(crate) mod ffi {
    include!(concat!(env!("OUT_DIR"), "/dpdk_bindings.rs"));
}

pub mod chunk;
pub mod eal;
pub mod lcore;
pub mod mbuf;
pub mod mempool;
pub mod port;

pub use eal::Eal;
pub use mbuf::Mbuf;
pub use mempool::Mempool;
pub use port::Port;

/// The last DPDK error of this thread as text.
pub fn last_error() -> String {
    // SAFETY: hagw_rte_errno reads a thread-local int; rte_strerror returns a
    // pointer to a static or thread-local NUL-terminated string.
    unsafe {
        let e = ffi::hagw_rte_errno();
        let s = ffi::rte_strerror(e);
        if s.is_null() {
            return format!("error {e}");
        }
        std::ffi::CStr::from_ptr(s).to_string_lossy().into_owned()
    }
}

/// The TSC counter (rte_rdtsc).
#[inline]
pub fn tsc() -> u64 {
    // SAFETY: reads the CPU time-stamp counter; no memory is touched.
    unsafe { ffi::rte_rdtsc() }
}
