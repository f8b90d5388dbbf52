//! The MPTCP option parser on arbitrary bytes: never a panic, and whatever
//! parses re-emits to bytes that parse to the same option.
#![no_main]
use libfuzzer_sys::fuzz_target;
use nf_mptcp::options::MptcpOption;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, body)) = data.split_first() else {
        return;
    };
    let (syn, ack) = (flags & 1 != 0, flags & 2 != 0);
    if let Ok(o) = MptcpOption::parse(body, syn, ack) {
        let mut out = [0u8; 40];
        if o.len() <= 40 {
            let n = o.emit(&mut out);
            assert_eq!(MptcpOption::parse(&out[..n], syn, ack), Ok(o));
        }
    }
});
