//! Sequences of arbitrary frames on arbitrary ports through a worker
//! pipeline, with timers advancing: never a panic, and memory stays bounded
//! (the neighbour queues and TX queues have caps).
#![no_main]
use libfuzzer_sys::fuzz_target;
use nf_core::VecBuf;

fuzz_target!(|data: &[u8]| {
    let mut p = nf_app::testkit::lab_pipeline();
    let mut rest = data;
    let mut now = 0u64;
    // framing: [port][len_hi][len_lo][frame bytes…]
    while rest.len() >= 3 {
        let port = u16::from(rest[0] % 4);
        let len = (usize::from(rest[1]) << 8 | usize::from(rest[2])).min(rest.len() - 3);
        p.process(now, port, VecBuf::from_slice(&rest[3..3 + len]));
        rest = &rest[3 + len..];
        now += 300_000_000;
        p.poll_timers(now);
        for q in 0..3 {
            if let Some(q) = p.tx_queue(q) {
                q.clear();
            }
        }
    }
});
