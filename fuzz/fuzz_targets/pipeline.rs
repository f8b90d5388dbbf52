//! Sequences of arbitrary frames on arbitrary ports through a worker
//! pipeline, in bursts, with timers advancing, on ports with and without a
//! NIC that flags IPv4 checksums: never a panic, and memory stays bounded
//! (the neighbour queues and TX queues have caps).
#![no_main]
use libfuzzer_sys::fuzz_target;
use nf_core::{RxChecksum, VecBuf};

fuzz_target!(|data: &[u8]| {
    let mut p = nf_app::testkit::lab_pipeline();
    let mut rest = data;
    let mut now = 0u64;
    let mut burst: Vec<VecBuf> = Vec::new();
    let mut burst_port = 0u16;
    // framing: [flags|port][len_hi][len_lo][frame bytes…]; bit 7 of the
    // first byte puts the frame in the burst before it (same port), bit 4
    // says whether the port's NIC checks IPv4 checksums, bits 5-6 what it
    // flagged this frame
    while rest.len() >= 3 {
        let port = u16::from(rest[0] % 4);
        let join = rest[0] & 0x80 != 0 && port == burst_port && burst.len() < 32;
        if !join {
            p.process_burst(now, burst_port, &mut burst);
            now += 300_000_000;
            p.poll_timers(now);
            for q in 0..3 {
                if let Some(q) = p.tx_queue(q) {
                    q.clear();
                }
            }
            burst_port = port;
            p.set_rx_ip_checksum(port, rest[0] & 0x10 != 0);
        }
        let len = (usize::from(rest[1]) << 8 | usize::from(rest[2])).min(rest.len() - 3);
        let mut b = VecBuf::from_slice(&rest[3..3 + len]);
        b.set_rx_ip_checksum(match (rest[0] >> 5) & 3 {
            1 => RxChecksum::Good,
            2 => RxChecksum::Bad,
            _ => RxChecksum::Unknown,
        });
        burst.push(b);
        rest = &rest[3 + len..];
    }
    p.process_burst(now, burst_port, &mut burst);
});
