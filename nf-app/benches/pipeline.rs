//! Criterion benches of the forwarding pipeline on `VecBuf` (no DPDK):
//! ns per routed IPv4 packet (64 B and 1500 B), per ARP answer, and the
//! parsing and LPM building blocks. `hagw bench forward` measures the same
//! pipeline on DPDK ports.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use nf_app::frames;
use nf_app::testkit::{lab_pipeline, mac, CLI_MAC, SRV_MAC};
use nf_core::route::Lpm;
use nf_core::wire::{arp, ethernet, ipv4, EthernetAddress};
use nf_core::{PacketBuf, VecBuf};
use std::hint::black_box;
use std::net::Ipv4Addr;

const BURST: usize = 32;

fn routed(c: &mut Criterion) {
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Elements(BURST as u64));
    for len in [60usize, 1514] {
        let mut p = lab_pipeline();
        let reply = frames::arp(
            SRV_MAC,
            mac(3),
            arp::Operation::Reply,
            Ipv4Addr::new(198, 51, 100, 2),
            mac(3),
            Ipv4Addr::new(198, 51, 100, 1),
        );
        p.process(0, 2, VecBuf::from_slice(&reply));
        let len = if len == 1514 { 1414 } else { len }; // srv1 has MTU 1400
        let f = frames::udp4(
            CLI_MAC,
            mac(1),
            Ipv4Addr::new(192, 0, 2, 2),
            Ipv4Addr::new(198, 51, 100, 2),
            64,
            len,
        );
        g.bench_function(format!("route_ipv4_{}B_burst32", len), |b| {
            b.iter_batched(
                || {
                    (0..BURST)
                        .map(|_| VecBuf::from_slice(&f))
                        .collect::<Vec<_>>()
                },
                |burst| {
                    for buf in burst {
                        p.process(1, 0, buf);
                    }
                    let q = p.tx_queue(2).expect("port");
                    assert_eq!(q.len(), BURST);
                    q.clear();
                },
                BatchSize::SmallInput,
            )
        });
    }
    let mut p = lab_pipeline();
    let req = frames::arp(
        CLI_MAC,
        EthernetAddress::BROADCAST,
        arp::Operation::Request,
        Ipv4Addr::new(192, 0, 2, 2),
        EthernetAddress::default(),
        Ipv4Addr::new(192, 0, 2, 1),
    );
    g.throughput(Throughput::Elements(1));
    g.bench_function("arp_request_answered", |b| {
        b.iter_batched(
            || VecBuf::from_slice(&req),
            |buf| {
                p.process(1, 0, buf);
                p.tx_queue(0).expect("port").clear();
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn blocks(c: &mut Criterion) {
    let f = frames::udp4(
        CLI_MAC,
        mac(1),
        Ipv4Addr::new(192, 0, 2, 2),
        Ipv4Addr::new(198, 51, 100, 2),
        64,
        60,
    );
    c.bench_function("parse_eth_ipv4_view", |b| {
        b.iter(|| {
            let e = ethernet::Frame::new_checked(black_box(&f[..])).expect("eth");
            let ip = ipv4::Packet::new_checked(e.payload()).expect("ip");
            black_box((ip.verify_checksum(), ip.dst_addr(), ip.ttl()))
        })
    });
    let mut t: Lpm<u32, u16> = Lpm::new();
    for i in 0..1000u32 {
        t.insert(0x0a00_0000 | (i << 8), 24, i as u16);
    }
    t.insert(0, 0, 9999);
    t.insert(0xc000_0200, 24, 1);
    c.bench_function("lpm_v4_lookup_1000_routes", |b| {
        b.iter(|| black_box(t.lookup(black_box(0x0a01_0203))))
    });
    let mut buf = f.clone();
    c.bench_function("ipv4_decrement_ttl_rfc1624", |b| {
        b.iter(|| {
            let mut p = ipv4::Packet::new_unchecked(&mut buf[14..34]);
            p.set_ttl(64);
            p.decrement_ttl();
        })
    });
    // the Internet checksum over a full-size TCP payload (what a
    // conversion sums twice per segment where the NIC does not)
    let payload: Vec<u8> = (0..1448u32).map(|i| (i * 7 + 3) as u8).collect();
    let mut g = c.benchmark_group("checksum");
    g.throughput(Throughput::Bytes(payload.len() as u64));
    g.bench_function("sum_1448B", |b| {
        b.iter(|| black_box(nf_core::wire::checksum::sum(black_box(&payload))))
    });
    g.finish();
    let _ = VecBuf::new().len();
}

criterion_group!(benches, routed, blocks);
criterion_main!(benches);
