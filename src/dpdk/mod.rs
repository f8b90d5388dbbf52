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

/// The TSC counter: `rdtsc` inline, as DPDK's `rte_rdtsc` (which bindgen
/// can only reach through an out-of-line wrapper, a call per poll loop).
#[cfg(target_arch = "x86_64")]
#[inline]
pub fn tsc() -> u64 {
    // SAFETY: reads the CPU time-stamp counter; no memory is touched.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// The TSC counter (rte_rdtsc).
#[cfg(not(target_arch = "x86_64"))]
#[inline]
pub fn tsc() -> u64 {
    // SAFETY: reads the CPU time-stamp counter; no memory is touched.
    unsafe { ffi::rte_rdtsc() }
}

/// Nanoseconds since the clock started, read from the TSC: a worker reads
/// it once per poll loop (clock_gettime costs some 30 ns in a VM, a fixed
/// tax on every burst). Falls back to the monotonic clock where EAL knows
/// no TSC frequency.
pub struct Clock {
    t0: u64,
    /// ns per cycle as 32.32 fixed point; 0 = no TSC frequency
    mult: u64,
    epoch: std::time::Instant,
}

impl Clock {
    /// Call after EAL init (it measures the TSC frequency).
    pub fn start() -> Clock {
        // SAFETY: reads a value EAL computed at init; no arguments.
        let hz = unsafe { ffi::rte_get_tsc_hz() };
        let mult = if hz == 0 {
            0
        } else {
            u64::try_from((1_000_000_000u128 << 32) / u128::from(hz)).unwrap_or(0)
        };
        Clock {
            t0: tsc(),
            mult,
            epoch: std::time::Instant::now(),
        }
    }

    #[inline]
    pub fn now_ns(&self) -> u64 {
        self.at(tsc())
    }

    /// The clock at TSC reading `t` (one reading can serve the clock and a
    /// cycle count: in a VM each costs tens of ns). Without a TSC frequency
    /// `t` is not used: the monotonic clock now.
    #[inline]
    pub fn at(&self, t: u64) -> u64 {
        if self.mult == 0 {
            return self.epoch.elapsed().as_nanos() as u64;
        }
        let dt = t.wrapping_sub(self.t0);
        ((u128::from(dt) * u128::from(self.mult)) >> 32) as u64
    }
}
