//! Option and segment sequences fed to an MPTCP connection (server side,
//! after a normal MP_CAPABLE handshake, with or without DSS checksums):
//! never a panic, memory bounded.
#![no_main]
use libfuzzer_sys::fuzz_target;
use nf_core::chunk::Bytes;
use nf_mptcp::conn::{Config, MpConnection, Secrets};
use nf_mptcp::options::MptcpOption;
use nf_mptcp::scheduler::{MinRtt, PathRole};
use nf_tcp::{Header, Incoming, RawOpt, Seq};

fn opt(o: MptcpOption) -> Option<RawOpt> {
    let mut b = [0u8; 40];
    let n = o.emit(&mut b);
    RawOpt::new(&b[..n])
}

/// The client's handshake segment `seq`/`ack`/`flags` with MP_CAPABLE
/// carrying the keys given (none on the SYN, both on the third ACK).
fn capable(seq: u32, ack: u32, flags: u16, keys: Option<(u64, u64)>) -> Incoming<Bytes> {
    let mut hdr = Header {
        src_port: 2,
        dst_port: 1,
        seq: Seq(seq),
        ack: Seq(ack),
        flags,
        window: 65535,
        ..Default::default()
    };
    hdr.opts.mptcp = opt(MptcpOption::Capable {
        version: 1,
        flags: nf_mptcp::options::CapFlags(1),
        sender_key: keys.map(|k| k.0),
        receiver_key: keys.map(|k| k.1),
        data_len: None,
        checksum: None,
    });
    Incoming {
        hdr,
        payload: Bytes::empty(),
    }
}

fuzz_target!(|data: &[u8]| {
    // the first byte's low bit: DSS checksums (RFC 8684 §3.3.1) or not
    let checksum = data.first().is_some_and(|b| b & 1 == 1);
    let cfg = Config {
        recv_buffer: 256 * 1024,
        send_buffer: 256 * 1024,
        checksum,
        ..Config::default()
    };
    let Some(mut c) = MpConnection::<Bytes>::server(
        cfg,
        Secrets { key: 1, seed: 2 },
        &capable(5000, 0, 2, None),
        Seq(100),
        PathRole::Fixed,
        Box::new(MinRtt),
    ) else {
        return;
    };
    let mut now = 0;
    while c.poll_transmit(now).is_some() {}
    c.handle_segment(now, 0, capable(5001, 101, 0x10, Some((7, 1))));
    c.send(Bytes::new(vec![1; 10_000]));
    // each step: 8 bytes of header material, an option body, a payload length
    let mut d = data;
    let mut seq = 5001u32;
    while d.len() >= 10 {
        let (h, rest) = d.split_at(10);
        let olen = usize::from(h[9] % 40).min(rest.len());
        let (o, rest) = rest.split_at(olen);
        d = rest;
        let plen = usize::from(h[8]) * 4;
        seq = seq.wrapping_add(u32::from(h[0]) * 100);
        let mut hdr = Header {
            src_port: 2,
            dst_port: 1,
            seq: Seq(seq),
            ack: Seq(101u32.wrapping_add(u32::from_be_bytes([0, h[1], h[2], h[3]]))),
            flags: u16::from(h[4]) | 0x10,
            window: u16::from_be_bytes([h[5], h[6]]),
            ..Default::default()
        };
        hdr.opts.mptcp = RawOpt::new(o);
        now += u64::from(h[7]) * 1_000_000;
        c.handle_segment(
            now,
            usize::from(h[7] % 2),
            Incoming {
                hdr,
                payload: Bytes::new(vec![0x5a; plen]),
            },
        );
        if c.next_timeout().is_some_and(|t| t <= now) {
            c.on_timeout(now);
        }
        let mut n = 0;
        while c.poll_transmit(now).is_some() {
            n += 1;
            assert!(n < 100_000);
        }
        while c.recv().is_some() {}
        while c.poll_event().is_some() {}
    }
});
