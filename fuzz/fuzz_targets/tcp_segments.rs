//! Arbitrary segment sequences against one TCP endpoint (after a normal
//! handshake, or from SYN-SENT/LISTEN): never a panic, never an endless
//! poll_transmit loop, memory within the configured budget.
#![no_main]
use libfuzzer_sys::fuzz_target;
use nf_core::chunk::Bytes;
use nf_tcp::{Config, Connection, Header, Incoming, Opts, RawOpt, Seq};

fn take<const N: usize>(d: &mut &[u8]) -> Option<[u8; N]> {
    let (a, b) = d.split_first_chunk::<N>()?;
    *d = b;
    Some(*a)
}

fuzz_target!(|data: &[u8]| {
    let mut d = data;
    let cfg = Config {
        recv_buffer: 32 * 1024,
        send_buffer: 32 * 1024,
        max_ooo_segments: 32,
        ..Config::default()
    };
    let Some([mode]) = take::<1>(&mut d) else {
        return;
    };
    let mut c: Connection<Bytes> = if mode & 1 == 0 {
        Connection::connect(cfg, 1, 2, Seq(1000))
    } else {
        let syn = Header {
            src_port: 2,
            dst_port: 1,
            seq: Seq(5000),
            flags: 2,
            window: 1000,
            ..Default::default()
        };
        Connection::accept(cfg, &syn, Seq(1000))
    };
    c.send(Bytes::new(vec![0x5a; 20_000]));
    let mut now = 0u64;
    // each step: 24 bytes of header material, then a payload length
    while let (Some(h), Some([plen, dt])) = (take::<16>(&mut d), take::<2>(&mut d)) {
        let seq = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
        let ack = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
        let flags = u16::from(h[8]);
        let window = u16::from_be_bytes([h[9], h[10]]);
        let mut opts = Opts::default();
        if h[11] & 1 != 0 {
            opts.mss = Some(u16::from_be_bytes([h[12], h[13]]));
        }
        if h[11] & 2 != 0 {
            opts.wscale = Some(h[14]);
        }
        opts.sack_perm = h[11] & 4 != 0;
        if h[11] & 8 != 0 {
            opts.ts = Some((u32::from(h[12]) << 8 | u32::from(h[15]), u32::from(h[13])));
        }
        if h[11] & 16 != 0 {
            opts.sack[0].left = seq.wrapping_add(u32::from(h[14]) * 100);
            opts.sack[0].right = opts.sack[0].left.wrapping_add(u32::from(h[15]) * 100);
            opts.sack_n = 1;
        }
        if h[11] & 32 != 0 {
            opts.mptcp = RawOpt::new(&h[12..16]);
        }
        // sequence numbers near the expected ones are the interesting ones
        let seq = if h[11] & 64 != 0 {
            c.rcv_nxt().0.wrapping_add(seq % 70_000)
        } else {
            seq
        };
        let ack = if h[11] & 128 != 0 {
            c.snd_una().0.wrapping_add(ack % 70_000)
        } else {
            ack
        };
        let payload = Bytes::new(vec![0xa5; usize::from(plen) * 8]);
        let hdr = Header {
            src_port: 2,
            dst_port: 1,
            seq: Seq(seq),
            ack: Seq(ack),
            flags,
            window,
            opts,
        };
        now += u64::from(dt) * 1_000_000;
        c.handle_segment(now, Incoming { hdr, payload });
        if c.next_timeout().is_some_and(|t| t <= now) {
            c.on_timeout(now);
        }
        let mut n = 0;
        while c.poll_transmit(now).is_some() {
            n += 1;
            assert!(n < 10_000, "poll_transmit does not stop");
        }
        while c.recv().is_some() {}
        assert!(c.buffered() <= 64 * 1024);
        while c.poll_event().is_some() {}
    }
});
