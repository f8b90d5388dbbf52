//! Criterion benches: DSS parse and emit, tokens and HMACs per second.

use criterion::{criterion_group, criterion_main, Criterion};
use nf_mptcp::crypto;
use nf_mptcp::options::{Mapping, MptcpOption};
use std::hint::black_box;

fn benches(c: &mut Criterion) {
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
}

criterion_group!(b, benches);
criterion_main!(b);
