//! Checks before DPDK starts, so that a missing device, hugepage shortage or
//! missing permission gives one line that names it and the fix.

use nf_app::config::{Config, Device};
use std::path::Path;

fn euid() -> Option<u32> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// Free hugepages of the default size (2 MB on x86-64), from /proc/meminfo.
pub(crate) fn hugepages_free() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = s.lines().find(|l| l.starts_with("HugePages_Free:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Returns the first problem found, as one line with its fix.
pub fn check(cfg: &Config) -> Result<(), String> {
    if euid() != Some(0) {
        return Err("DPDK needs root (raw sockets, hugepages, device access): run hagw as root, e.g. `sudo hagw run --config FILE`".into());
    }
    for p in &cfg.ports {
        match &p.device {
            Device::Vdev { .. } => {
                if let Some(iface) = p.device.kernel_iface() {
                    if !Path::new("/sys/class/net").join(iface).exists() {
                        return Err(format!(
                            "port {}: network interface `{iface}` does not exist in this namespace; create it (the lab: `scripts/lab.sh up`, then run hagw with `ip netns exec gw`) or fix port.device",
                            p.name
                        ));
                    }
                }
            }
            Device::Pci(addr) => {
                let full = if addr.matches(':').count() == 1 {
                    format!("0000:{addr}")
                } else {
                    addr.clone()
                };
                let dev = Path::new("/sys/bus/pci/devices").join(&full);
                if !dev.exists() {
                    return Err(format!("port {}: PCI device {addr} not found (check `lspci` / `dpdk-devbind.py --status`)", p.name));
                }
                let driver = std::fs::read_link(dev.join("driver"))
                    .ok()
                    .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()));
                if !matches!(
                    driver.as_deref(),
                    Some("vfio-pci" | "uio_pci_generic" | "igb_uio" | "mlx5_core")
                ) {
                    return Err(format!(
                        "port {}: PCI device {addr} is bound to {} — bind it for DPDK: `dpdk-devbind.py -b vfio-pci {addr}`",
                        p.name,
                        driver.as_deref().unwrap_or("no driver")
                    ));
                }
            }
        }
    }
    let args = &cfg.raw.eal.args;
    if !args.iter().any(|a| a == "--no-huge") && hugepages_free().unwrap_or(0) == 0 {
        return Err("no free hugepages: `echo 512 > /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages`, or add \"--no-huge\", \"-m\", \"512\" to eal.args".into());
    }
    Ok(())
}
