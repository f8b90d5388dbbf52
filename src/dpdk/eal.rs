//! EAL initialisation and cleanup.

use super::ffi;
use std::ffi::CString;
use std::os::raw::{c_char, c_int};

/// The initialised EAL. Dropping it runs `rte_eal_cleanup`.
pub struct Eal {
    _private: (),
}

impl Eal {
    /// Runs `rte_eal_init` with `args` (argv[0] is added). Can only succeed
    /// once per process.
    pub fn init(args: &[String]) -> Result<Eal, String> {
        let mut owned: Vec<CString> = Vec::with_capacity(args.len() + 1);
        owned.push(CString::new("hagw").map_err(|e| e.to_string())?);
        for a in args {
            owned.push(
                CString::new(a.as_str())
                    .map_err(|_| format!("EAL argument {a:?} contains a NUL byte"))?,
            );
        }
        let mut argv: Vec<*mut c_char> = owned.iter().map(|c| c.as_ptr() as *mut c_char).collect();
        argv.push(std::ptr::null_mut());
        let argc = owned.len() as c_int;
        // SAFETY: argv points to `argc` valid NUL-terminated strings followed
        // by NULL; `owned` outlives the call. The EAL may permute argv but does
        // not free it.
        let rc = unsafe { ffi::rte_eal_init(argc, argv.as_mut_ptr()) };
        if rc < 0 {
            return Err(super::last_error());
        }
        Ok(Eal { _private: () })
    }

    /// Whether `lcore` is enabled in the EAL's lcore set.
    pub fn lcore_enabled(lcore: u32) -> bool {
        // SAFETY: bounds are checked by DPDK.
        unsafe { ffi::rte_lcore_is_enabled(lcore) != 0 }
    }
}

impl Drop for Eal {
    fn drop(&mut self) {
        // SAFETY: all lcores have been joined (the runtime waits for them
        // before dropping the EAL) and every port was stopped and closed.
        unsafe {
            ffi::rte_eal_cleanup();
        }
    }
}
