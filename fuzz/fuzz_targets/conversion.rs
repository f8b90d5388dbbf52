//! Arbitrary frames into a conversion-enabled pipeline that already holds a
//! converted session (the first frames of a real MPTCP client from
//! `convlab`, same seed, so the fuzzer can reach the session's 4-tuples):
//! never a panic, and the session table stays within its cap.
#![no_main]
use libfuzzer_sys::fuzz_target;
use nf_app::convlab::{ConvLab, Workload};
use nf_core::VecBuf;

const CONV: &str = "[conversion]\nenabled = true\nmax_sessions = 64\nadvertise = [\"2001:db8:c::1\"]\n[nat]\nsource = \"subscriber-fixed\"\n[[subscriber]]\nfixed = \"192.0.2.2\"\ncellular = [\"100.64.0.2\"]\n";

fuzz_target!(|data: &[u8]| {
    let mut lab = ConvLab::new(CONV, 1);
    // jump over idle virtual time: the timers still fire, hundreds of
    // times faster per input
    lab.skip_idle = true;
    lab.connect(5201, Workload::echo(4000, true));
    lab.run_until(50_000_000, |l| {
        l.sessions() > 0 && l.clients[0].mp.is_established()
    });
    let mut rest = data;
    // framing: [port][len_hi][len_lo][frame bytes…]
    while rest.len() >= 3 {
        let port = u16::from(rest[0] % 3);
        let len = (usize::from(rest[1]) << 8 | usize::from(rest[2])).min(rest.len() - 3);
        lab.pipe
            .process(lab.now, port, VecBuf::from_slice(&rest[3..3 + len]));
        rest = &rest[3 + len..];
        lab.step(1_000_000);
    }
    lab.run_until(500_000_000, |_| false);
    assert!(lab.sessions() <= 64);
});
