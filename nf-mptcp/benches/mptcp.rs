//! Criterion benches: DSS parse and emit, tokens and HMACs, and the
//! data-level send and receive processing per segment (two engines joined
//! in memory, one subflow).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use nf_core::chunk::{Bytes, Chunk};
use nf_mptcp::conn::{Config, MpConnection, Secrets};
use nf_mptcp::crypto;
use nf_mptcp::options::{Mapping, MptcpOption};
use nf_mptcp::scheduler::{MinRtt, PathRole};
use nf_tcp::{Incoming, Segment, Seq};
use std::hint::black_box;
use std::time::{Duration, Instant};

fn codec(c: &mut Criterion) {
    let dss = MptcpOption::Dss {
        data_fin: false,
        data_ack: Some(0x1234_5678_9abc_def0),
        ack64: true,
        mapping: Some(Mapping {
            dsn: 0x1111_2222_3333_4444,
            dsn64: true,
            ssn: 1000,
            len: 1400,
            checksum: None,
        }),
    };
    let mut buf = [0u8; 40];
    let n = dss.emit(&mut buf);
    c.bench_function("dss_parse", |b| {
        b.iter(|| black_box(MptcpOption::parse(black_box(&buf[..n]), false, true)))
    });
    c.bench_function("dss_emit", |b| {
        let mut out = [0u8; 40];
        b.iter(|| black_box(black_box(&dss).emit(&mut out)))
    });
    let mut k = 0x0123_4567_89ab_cdefu64;
    c.bench_function("key_to_token_and_idsn", |b| {
        b.iter(|| {
            k = k.wrapping_add(1);
            black_box(crypto::token_and_idsn(k))
        })
    });
    c.bench_function("join_hmac", |b| {
        b.iter(|| black_box(crypto::join_hmac(black_box(1), 2, 3, 4)))
    });
    c.bench_function("add_addr_hmac", |b| {
        b.iter(|| {
            black_box(crypto::add_addr_hmac(
                black_box(1),
                2,
                3,
                "2001:db8:c::1".parse().unwrap(),
                None,
            ))
        })
    });
}

fn inc(s: &Segment<Bytes>, payload: &Bytes) -> Incoming<Bytes> {
    // payload shared with the sender's buffer: no copy in the loop
    let p = s
        .payload
        .parts()
        .next()
        .cloned()
        .unwrap_or_else(|| payload.slice(0, 0));
    Incoming {
        hdr: s.hdr,
        payload: p,
    }
}

fn established(checksum: bool) -> (MpConnection<Bytes>, MpConnection<Bytes>) {
    let cfg = Config {
        send_buffer: 1 << 30,
        recv_buffer: 1 << 30,
        checksum,
        ..Config::default()
    };
    let mut c = MpConnection::client(
        cfg,
        Secrets { key: 1, seed: 1 },
        1,
        2,
        Seq(10),
        PathRole::Fixed,
        Box::new(MinRtt),
    );
    let empty = Bytes::empty();
    let (_, syn) = c.poll_transmit(0).expect("syn");
    let mut s = MpConnection::server(
        cfg,
        Secrets { key: 2, seed: 2 },
        &inc(&syn, &empty),
        Seq(20),
        PathRole::Fixed,
        Box::new(MinRtt),
    )
    .expect("server");
    for t in 1..10 {
        while let Some((i, seg)) = s.poll_transmit(t) {
            c.handle_segment(t, i, inc(&seg, &empty));
        }
        while let Some((i, seg)) = c.poll_transmit(t) {
            s.handle_segment(t, i, inc(&seg, &empty));
        }
    }
    assert!(c.is_established() && s.is_established());
    assert_eq!(c.checksums(), checksum);
    (c, s)
}

fn data_level(c: &mut Criterion) {
    let big = Bytes::new(vec![0x42; 256 << 20]);
    let mut g = c.benchmark_group("mptcp_data_level");
    g.throughput(Throughput::Elements(1));
    // sender: mapping + DSS decoration per segment; receiver: mapping
    // lookup, data-level reassembly, DATA_ACK per segment; with DSS
    // checksums, each side also sums the 1400-byte payload
    for (name, checksum) in [
        ("send_and_receive_per_segment", false),
        ("send_and_receive_per_segment_checksummed", true),
    ] {
        g.bench_function(name, |b| {
            b.iter_custom(|n| {
                let mut total = Duration::ZERO;
                let mut left = n;
                while left > 0 {
                    let batch = left.min(50_000);
                    left -= batch;
                    let (mut c, mut s) = established(checksum);
                    c.send(big.slice(0, (batch as usize) * 1400));
                    let mut now = 100;
                    let mut segs = 0u64;
                    let t = Instant::now();
                    while segs < batch {
                        now += 1;
                        let mut moved = false;
                        while let Some((i, seg)) = c.poll_transmit(now) {
                            moved = true;
                            if !seg.payload.is_empty() {
                                segs += 1;
                            }
                            s.handle_segment(now, i, inc(&seg, &big));
                        }
                        while let Some(d) = s.recv() {
                            black_box(d.len());
                        }
                        while let Some((i, seg)) = s.poll_transmit(now) {
                            moved = true;
                            c.handle_segment(now, i, inc(&seg, &big));
                        }
                        if !moved {
                            break;
                        }
                    }
                    total += t.elapsed() * batch as u32 / segs.max(1) as u32;
                }
                total
            })
        });
    }
    g.finish();
}

criterion_group!(b, codec, data_level);
criterion_main!(b);
