//! `hagw l2fwd`: the lab's ceiling (LAB.md): a DPDK forwarder that does
//! nothing but rx_burst on one port and tx_burst of the same frames on the
//! other, both ways, on the calling thread (pin it with taskset). No
//! parsing, no rewrite: the peers address each other's MACs directly
//! (static neighbour entries set by `scripts/bench/vs-kernel.sh`).

use crate::dpdk::Mbuf;
use nf_app::config::Config;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub fn run(cfg: Config, a: &str, b: &str) -> Result<String, String> {
    crate::preflight::check(&cfg)?;
    let ia = cfg
        .port_index(a)
        .ok_or_else(|| format!("l2fwd: no port named `{a}` in the config"))?;
    let ib = cfg
        .port_index(b)
        .ok_or_else(|| format!("l2fwd: no port named `{b}` in the config"))?;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .map_err(|e| format!("cannot install signal handler: {e}"))?;
    }
    let crate::run::Up {
        eal: _eal,
        pool: _pool,
        ports,
        ..
    } = crate::run::bring_up(&cfg)?;
    let burst = cfg.burst;
    let mut rx: Vec<Mbuf> = Vec::with_capacity(burst);
    let (mut ab, mut ba, mut dropped) = (0u64, 0u64, 0u64);
    eprintln!("l2fwd: {a} <-> {b}, SIGTERM to stop");
    while !stop.load(Ordering::Relaxed) {
        for (from, to, count) in [(ia, ib, &mut ab), (ib, ia, &mut ba)] {
            if ports[from].rx_burst(0, &mut rx) == 0 {
                continue;
            }
            *count += rx.len() as u64;
            for _ in 0..4 {
                ports[to].tx_burst(0, &mut rx);
                if rx.is_empty() {
                    break;
                }
            }
            dropped += rx.len() as u64;
            rx.clear();
        }
    }
    for p in &ports {
        p.stop();
    }
    Ok(format!(
        "l2fwd: {a}->{b} {ab} frames, {b}->{a} {ba} frames, {dropped} dropped\n"
    ))
}
