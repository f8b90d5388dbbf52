//! Running closures on EAL worker lcores.

use super::ffi;
use std::os::raw::{c_int, c_void};

type Job = Box<dyn FnOnce() + Send + 'static>;

extern "C" fn trampoline(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the Box<Job> leaked by `launch`, handed over exactly
    // once to this lcore.
    let job: Box<Job> = unsafe { Box::from_raw(arg as *mut Job) };
    // A panic must not unwind into C.
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)) {
        Ok(()) => 0,
        Err(_) => -1,
    }
}

/// Launches `f` on worker lcore `lcore`.
pub fn launch(lcore: u32, f: impl FnOnce() + Send + 'static) -> Result<(), String> {
    let job: Box<Job> = Box::new(Box::new(f));
    let raw = Box::into_raw(job) as *mut c_void;
    // SAFETY: trampoline has the lcore_function_t signature; ownership of
    // `raw` passes to it on success.
    let rc = unsafe { ffi::rte_eal_remote_launch(Some(trampoline), raw, lcore) };
    if rc != 0 {
        // SAFETY: the launch failed, so the job was not handed over.
        drop(unsafe { Box::from_raw(raw as *mut Job) });
        return Err(format!(
            "cannot launch on lcore {lcore}: {}",
            std::io::Error::from_raw_os_error(-rc)
        ));
    }
    Ok(())
}

/// Waits for the job on `lcore` and returns its status (0 = ok).
pub fn wait(lcore: u32) -> i32 {
    // SAFETY: waits on an lcore id owned by the EAL.
    unsafe { ffi::rte_eal_wait_lcore(lcore) }
}
