//! Pipeline unit tests on `VecBuf`: each asserts the exact frames emitted.

use super::*;
use crate::config;
use crate::frames;
use crate::stats::{Drop as D, Event as E};
use nf_core::wire::{arp as warp, ethernet as weth, icmpv4, icmpv6, ipv4 as wip4, ipv6 as wip6};
use nf_core::VecBuf;

use crate::testkit::{lab_pipeline as pipeline, mac, Pool, CLI_MAC, LAB3, SRV_MAC};

fn v4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}
fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn take(p: &mut Pipeline<VecBuf, Pool>, port: usize) -> Vec<Vec<u8>> {
    p.tx_queue(port)
        .unwrap()
        .drain(..)
        .map(|b| b.frame())
        .collect()
}

fn feed(p: &mut Pipeline<VecBuf, Pool>, now: u64, port: u16, f: &[u8]) {
    p.process(now, port, VecBuf::from_slice(f));
}

/// srv's (198.51.100.2) ARP reply to our request, from `from`.
fn srv_arp_reply(from: EthernetAddress) -> Vec<u8> {
    frames::arp(
        from,
        mac(3),
        warp::Operation::Reply,
        v4("198.51.100.2"),
        mac(3),
        v4("198.51.100.1"),
    )
}

/// Teaches the pipeline srv's MAC via ARP (reply to our request).
fn learn_srv(p: &mut Pipeline<VecBuf, Pool>) {
    feed(p, 0, 2, &srv_arp_reply(SRV_MAC));
}

#[test]
fn answers_arp_request_for_own_address() {
    let mut p = pipeline();
    let req = frames::arp(
        CLI_MAC,
        EthernetAddress::BROADCAST,
        warp::Operation::Request,
        v4("192.0.2.2"),
        EthernetAddress::default(),
        v4("192.0.2.1"),
    );
    feed(&mut p, 0, 0, &req);
    let out = take(&mut p, 0);
    assert_eq!(out.len(), 1);
    let f = weth::Frame::new_checked(&out[0][..]).unwrap();
    assert_eq!(f.dst_addr(), CLI_MAC);
    assert_eq!(f.src_addr(), mac(1));
    let r = warp::Repr::parse(&warp::Packet::new_checked(f.payload()).unwrap()).unwrap();
    assert_eq!(r.operation, warp::Operation::Reply);
    assert_eq!((r.sender_hw, r.sender_ip), (mac(1), v4("192.0.2.1")));
    assert_eq!((r.target_hw, r.target_ip), (CLI_MAC, v4("192.0.2.2")));
    // a request for someone else is not answered
    let other = frames::arp(
        CLI_MAC,
        EthernetAddress::BROADCAST,
        warp::Operation::Request,
        v4("192.0.2.2"),
        EthernetAddress::default(),
        v4("192.0.2.77"),
    );
    feed(&mut p, 0, 0, &other);
    assert!(take(&mut p, 0).is_empty());
    assert_eq!(p.stats().events_of(E::ArpReplyTx), 1);
}

#[test]
fn forwards_after_arp_resolution_with_ttl_and_checksum() {
    let mut p = pipeline();
    let pkt = frames::udp4(
        CLI_MAC,
        mac(1),
        v4("192.0.2.2"),
        v4("198.51.100.2"),
        64,
        100,
    );
    feed(&mut p, 0, 0, &pkt);
    // an ARP request goes out on srv1, the packet waits
    let out = take(&mut p, 2);
    assert_eq!(out.len(), 1);
    let f = weth::Frame::new_checked(&out[0][..]).unwrap();
    assert!(f.dst_addr().is_broadcast());
    let r = warp::Repr::parse(&warp::Packet::new_checked(f.payload()).unwrap()).unwrap();
    assert_eq!(
        (r.operation, r.sender_ip, r.target_ip),
        (
            warp::Operation::Request,
            v4("198.51.100.1"),
            v4("198.51.100.2")
        )
    );
    // the reply releases it
    learn_srv(&mut p);
    let out = take(&mut p, 2);
    assert_eq!(out.len(), 1);
    let f = weth::Frame::new_checked(&out[0][..]).unwrap();
    assert_eq!((f.src_addr(), f.dst_addr()), (mac(3), SRV_MAC));
    let ip = wip4::Packet::new_checked(f.payload()).unwrap();
    assert_eq!(ip.ttl(), 63);
    assert!(ip.verify_checksum());
    assert_eq!(&f.payload()[20..], &pkt[34..], "payload untouched");
    assert_eq!(out[0].len(), 100);
    // the next packet goes straight out
    feed(&mut p, 1, 0, &pkt);
    assert_eq!(take(&mut p, 2).len(), 1);
    assert_eq!(p.stats().events_of(E::RoutedV4), 2);
}

#[test]
fn gateway_route_resolves_the_gateway() {
    let mut p = pipeline();
    learn_srv(&mut p);
    let pkt = frames::udp4(CLI_MAC, mac(1), v4("192.0.2.2"), v4("203.0.113.9"), 64, 60);
    feed(&mut p, 0, 0, &pkt);
    let out = take(&mut p, 2);
    assert_eq!(
        weth::Frame::new_checked(&out[0][..]).unwrap().dst_addr(),
        SRV_MAC
    );
}

#[test]
fn ttl_exceeded_and_no_route_answer_with_icmp() {
    let mut p = pipeline();
    // cli's MAC is known from its ARP request
    let req = frames::arp(
        CLI_MAC,
        EthernetAddress::BROADCAST,
        warp::Operation::Request,
        v4("192.0.2.2"),
        EthernetAddress::default(),
        v4("192.0.2.1"),
    );
    feed(&mut p, 0, 0, &req);
    take(&mut p, 0);
    let pkt = frames::udp4(CLI_MAC, mac(1), v4("192.0.2.2"), v4("198.51.100.2"), 1, 80);
    feed(&mut p, 0, 0, &pkt);
    let out = take(&mut p, 0);
    assert_eq!(out.len(), 1);
    let ip = wip4::Packet::new_checked(&out[0][14..]).unwrap();
    assert_eq!(
        (ip.src_addr(), ip.dst_addr()),
        (v4("192.0.2.1"), v4("192.0.2.2"))
    );
    let icmp = icmpv4::Packet::new_checked(ip.payload()).unwrap();
    assert_eq!(icmp.msg_type(), icmpv4::kind::TIME_EXCEEDED);
    assert!(icmp.verify_checksum());
    assert_eq!(
        &icmp.data()[..20],
        &pkt[14..34],
        "quotes the original header"
    );
    assert_eq!(p.stats().drops_of(D::TtlExceeded), 1);

    let pkt = frames::udp4(CLI_MAC, mac(1), v4("192.0.2.2"), v4("8.8.8.8"), 64, 80);
    feed(&mut p, 0, 0, &pkt);
    let out = take(&mut p, 0);
    let ip = wip4::Packet::new_checked(&out[0][14..]).unwrap();
    let icmp = icmpv4::Packet::new_checked(ip.payload()).unwrap();
    assert_eq!(
        (icmp.msg_type(), icmp.msg_code()),
        (icmpv4::kind::DEST_UNREACHABLE, icmpv4::unreach::NET)
    );
    assert_eq!(p.stats().drops_of(D::NoRoute), 1);
}

#[test]
fn too_big_without_df_is_sent_in_fragments() {
    let mut p = pipeline();
    learn_srv(&mut p);
    let mut pkt = frames::udp4(
        CLI_MAC,
        mac(1),
        v4("192.0.2.2"),
        v4("198.51.100.2"),
        64,
        14 + 3000,
    );
    // DF clear; an identification to keep
    pkt[14 + 6] = 0;
    pkt[14 + 4..14 + 6].copy_from_slice(&0x1234u16.to_be_bytes());
    pkt[14 + 10..14 + 12].copy_from_slice(&[0, 0]);
    let hc = nf_core::wire::checksum::checksum(&pkt[14..34]);
    pkt[14 + 10..14 + 12].copy_from_slice(&hc.to_be_bytes());
    feed(&mut p, 0, 0, &pkt);
    let out = take(&mut p, 2);
    assert_eq!(out.len(), 3, "3,000 bytes through a 1,400-byte MTU");
    let mut payload = Vec::new();
    for (i, f) in out.iter().enumerate() {
        let ip = wip4::Packet::new_checked(&f[14..]).unwrap();
        assert!(ip.verify_checksum());
        assert!(usize::from(ip.total_len()) <= 1400);
        assert_eq!(ip.ident(), 0x1234);
        assert_eq!(ip.ttl(), 63);
        assert!(!ip.dont_frag());
        assert_eq!(ip.more_frags(), i < 2, "MF on all but the last");
        assert_eq!(usize::from(ip.frag_offset()), payload.len());
        payload.extend_from_slice(ip.payload());
    }
    assert_eq!(payload, pkt[34..], "the payload, in order, whole");
    assert_eq!(p.stats().events_of(E::FragmentedV4), 1);
    assert_eq!(p.stats().events_of(E::FragmentsTxV4), 3);
    // a fragment of a fragment keeps its place and its MF
    let mut frag = pkt.clone();
    frag[14 + 6..14 + 8].copy_from_slice(&(0x2000u16 | 100).to_be_bytes());
    frag[14 + 10..14 + 12].copy_from_slice(&[0, 0]);
    let hc = nf_core::wire::checksum::checksum(&frag[14..34]);
    frag[14 + 10..14 + 12].copy_from_slice(&hc.to_be_bytes());
    feed(&mut p, 1, 0, &frag);
    let out = take(&mut p, 2);
    assert_eq!(out.len(), 3);
    for f in &out {
        let ip = wip4::Packet::new_checked(&f[14..]).unwrap();
        assert!(ip.more_frags());
        assert!(ip.frag_offset() >= 800);
    }
    assert_eq!(
        wip4::Packet::new_checked(&out[0][14..])
            .unwrap()
            .frag_offset(),
        800
    );
}

#[test]
fn too_big_with_df_gets_frag_needed() {
    let mut p = pipeline();
    learn_srv(&mut p);
    let req = frames::arp(
        CLI_MAC,
        EthernetAddress::BROADCAST,
        warp::Operation::Request,
        v4("192.0.2.2"),
        EthernetAddress::default(),
        v4("192.0.2.1"),
    );
    feed(&mut p, 0, 0, &req);
    take(&mut p, 0);
    let pkt = frames::udp4(
        CLI_MAC,
        mac(1),
        v4("192.0.2.2"),
        v4("198.51.100.2"),
        64,
        1514,
    );
    feed(&mut p, 0, 0, &pkt);
    assert!(take(&mut p, 2).is_empty());
    let out = take(&mut p, 0);
    let ip = wip4::Packet::new_checked(&out[0][14..]).unwrap();
    let icmp = icmpv4::Packet::new_checked(ip.payload()).unwrap();
    assert_eq!(
        (icmp.msg_type(), icmp.msg_code(), icmp.next_hop_mtu()),
        (3, 4, 1400)
    );
}

#[test]
fn icmp_errors_are_rate_limited() {
    let mut p = pipeline();
    let req = frames::arp(
        CLI_MAC,
        EthernetAddress::BROADCAST,
        warp::Operation::Request,
        v4("192.0.2.2"),
        EthernetAddress::default(),
        v4("192.0.2.1"),
    );
    feed(&mut p, 0, 0, &req);
    take(&mut p, 0);
    let pkt = frames::udp4(CLI_MAC, mac(1), v4("192.0.2.2"), v4("8.8.8.8"), 64, 80);
    for _ in 0..200 {
        feed(&mut p, 1, 0, &pkt);
    }
    let sent = take(&mut p, 0).len() as u64;
    assert_eq!(sent, 50, "burst of limits.icmp_errors_burst");
    assert_eq!(p.stats().events_of(E::IcmpRateLimited), 150);
    assert_eq!(p.stats().drops_of(D::NoRoute), 200);
}

#[test]
fn echo_reply_v4() {
    let mut p = pipeline();
    let req = frames::arp(
        CLI_MAC,
        EthernetAddress::BROADCAST,
        warp::Operation::Request,
        v4("192.0.2.2"),
        EthernetAddress::default(),
        v4("192.0.2.1"),
    );
    feed(&mut p, 0, 0, &req);
    take(&mut p, 0);
    let ping = frames::ping4(CLI_MAC, mac(1), v4("192.0.2.2"), v4("192.0.2.1"), 64, 7);
    feed(&mut p, 0, 0, &ping);
    let out = take(&mut p, 0);
    assert_eq!(out.len(), 1);
    let f = weth::Frame::new_checked(&out[0][..]).unwrap();
    assert_eq!(f.dst_addr(), CLI_MAC);
    let ip = wip4::Packet::new_checked(f.payload()).unwrap();
    assert!(ip.verify_checksum());
    assert_eq!(
        (ip.src_addr(), ip.dst_addr()),
        (v4("192.0.2.1"), v4("192.0.2.2"))
    );
    let icmp = icmpv4::Packet::new_checked(ip.payload()).unwrap();
    assert!(icmp.verify_checksum());
    assert_eq!(
        (icmp.msg_type(), icmp.echo_seq()),
        (icmpv4::kind::ECHO_REPLY, 7)
    );
}

#[test]
fn neighbor_solicit_gets_advert_and_ping6_reply() {
    let mut p = pipeline();
    let cli = v6("2001:db8:c::2");
    let gw = v6("2001:db8:c::1");
    let sn = wip6::solicited_node(gw);
    let ns = icmpv6::Repr::NeighborSolicit {
        target: gw,
        source_lladdr: Some(CLI_MAC),
    };
    feed(
        &mut p,
        0,
        1,
        &frames::icmp6(
            CLI_MAC,
            EthernetAddress::ipv6_multicast(&sn),
            cli,
            sn,
            255,
            &ns,
        ),
    );
    let out = take(&mut p, 1);
    assert_eq!(out.len(), 1);
    let f = weth::Frame::new_checked(&out[0][..]).unwrap();
    assert_eq!(f.dst_addr(), CLI_MAC);
    let ip = wip6::Packet::new_checked(f.payload()).unwrap();
    assert_eq!(
        (ip.src_addr(), ip.dst_addr(), ip.hop_limit()),
        (gw, cli, 255)
    );
    let na =
        icmpv6::Repr::parse(&icmpv6::Packet::new_checked(ip.payload()).unwrap(), gw, cli).unwrap();
    assert_eq!(
        na,
        icmpv6::Repr::NeighborAdvert {
            flags: icmpv6::NaFlags {
                router: true,
                solicited: true,
                override_: true
            },
            target: gw,
            target_lladdr: Some(mac(2))
        }
    );
    // an NS with hop limit 64 is invalid (RFC 4861 §7.1.1)
    feed(
        &mut p,
        0,
        1,
        &frames::icmp6(
            CLI_MAC,
            EthernetAddress::ipv6_multicast(&sn),
            cli,
            sn,
            64,
            &ns,
        ),
    );
    assert!(take(&mut p, 1).is_empty());
    assert_eq!(p.stats().drops_of(D::NdInvalid), 1);
    // ping6 to the gateway: the NS taught us cli's MAC
    let echo = icmpv6::Repr::EchoRequest {
        ident: 1,
        seq: 2,
        data: b"abc",
    };
    feed(
        &mut p,
        0,
        1,
        &frames::icmp6(CLI_MAC, mac(2), cli, gw, 64, &echo),
    );
    let out = take(&mut p, 1);
    assert_eq!(out.len(), 1);
    let ip = wip6::Packet::new_checked(&out[0][14..]).unwrap();
    let r =
        icmpv6::Repr::parse(&icmpv6::Packet::new_checked(ip.payload()).unwrap(), gw, cli).unwrap();
    assert_eq!(
        r,
        icmpv6::Repr::EchoReply {
            ident: 1,
            seq: 2,
            data: b"abc"
        }
    );
}

#[test]
fn forwards_ipv6_after_nd() {
    let mut p = pipeline();
    let pkt = frames::udp6(
        CLI_MAC,
        mac(2),
        v6("2001:db8:c::2"),
        v6("2001:db8:5::2"),
        64,
        40,
    );
    feed(&mut p, 0, 1, &pkt);
    let out = take(&mut p, 2);
    assert_eq!(out.len(), 1, "an NS for the next hop");
    let ip = wip6::Packet::new_checked(&out[0][14..]).unwrap();
    assert_eq!(ip.dst_addr(), wip6::solicited_node(v6("2001:db8:5::2")));
    let na = icmpv6::Repr::NeighborAdvert {
        flags: icmpv6::NaFlags {
            router: false,
            solicited: true,
            override_: true,
        },
        target: v6("2001:db8:5::2"),
        target_lladdr: Some(SRV_MAC),
    };
    feed(
        &mut p,
        1,
        2,
        &frames::icmp6(
            SRV_MAC,
            mac(3),
            v6("2001:db8:5::2"),
            v6("2001:db8:5::1"),
            255,
            &na,
        ),
    );
    let out = take(&mut p, 2);
    assert_eq!(out.len(), 1);
    let f = weth::Frame::new_checked(&out[0][..]).unwrap();
    assert_eq!(f.dst_addr(), SRV_MAC);
    assert_eq!(
        wip6::Packet::new_checked(f.payload()).unwrap().hop_limit(),
        63
    );
}

#[test]
fn unresolved_neighbour_gives_up_with_host_unreachable() {
    let mut p = pipeline();
    let req = frames::arp(
        CLI_MAC,
        EthernetAddress::BROADCAST,
        warp::Operation::Request,
        v4("192.0.2.2"),
        EthernetAddress::default(),
        v4("192.0.2.1"),
    );
    feed(&mut p, 0, 0, &req);
    take(&mut p, 0);
    feed(
        &mut p,
        0,
        0,
        &frames::udp4(
            CLI_MAC,
            mac(1),
            v4("192.0.2.2"),
            v4("198.51.100.77"),
            64,
            80,
        ),
    );
    let s = 1_000_000_000u64;
    for t in 1..6 {
        p.poll_timers(t * s);
    }
    let probes = take(&mut p, 2);
    assert_eq!(
        probes.len(),
        3,
        "3 ARP requests (RFC 4861 MAX_MULTICAST_SOLICIT)"
    );
    let out = take(&mut p, 0);
    assert_eq!(out.len(), 1);
    let ip = wip4::Packet::new_checked(&out[0][14..]).unwrap();
    let icmp = icmpv4::Packet::new_checked(ip.payload()).unwrap();
    assert_eq!((icmp.msg_type(), icmp.msg_code()), (3, 1));
    assert_eq!(p.stats().drops_of(D::NeighbourUnresolved), 1);
}

#[test]
fn malformed_frames_are_counted_not_forwarded() {
    use crate::stats::Layer;
    use nf_core::wire::Error as W;
    let mut p = pipeline();
    feed(&mut p, 0, 0, &[1, 2, 3]);
    assert_eq!(p.stats().parse_errors_of(Layer::Ethernet, W::Truncated), 1);
    let mut pkt = frames::udp4(CLI_MAC, mac(1), v4("192.0.2.2"), v4("198.51.100.2"), 64, 80);
    pkt[14 + 10] ^= 0xff; // break the IPv4 checksum
    feed(&mut p, 0, 0, &pkt);
    assert_eq!(p.stats().parse_errors_of(Layer::Ipv4, W::BadChecksum), 1);
    let mut pkt = frames::udp4(CLI_MAC, mac(1), v4("192.0.2.2"), v4("198.51.100.2"), 64, 80);
    pkt[14 + 2] = 0xff; // total length beyond the frame
    feed(&mut p, 0, 0, &pkt);
    assert_eq!(p.stats().parse_errors_of(Layer::Ipv4, W::BadLength), 1);
    let other_mac = frames::udp4(
        CLI_MAC,
        EthernetAddress([2, 9, 9, 9, 9, 9]),
        v4("192.0.2.2"),
        v4("198.51.100.2"),
        64,
        80,
    );
    feed(&mut p, 0, 0, &other_mac);
    assert_eq!(p.stats().drops_of(D::NotForUs), 1);
    for q in 0..3 {
        assert!(take(&mut p, q).is_empty());
    }
}

#[test]
fn no_mbuf_is_counted() {
    let cfg = config::parse("test.toml", LAB3).unwrap();
    let ports = cfg
        .ports
        .iter()
        .enumerate()
        .map(|(i, p)| PortCtx::new(p, mac(i as u8 + 1)))
        .collect();
    let mut p = Pipeline::new(
        ports,
        routing_table(&cfg),
        PipelineLimits::from_config(&cfg),
        Pool::new(0),
        Arc::new(WorkerStats::new(0, 1, 3)),
    );
    feed(
        &mut p,
        0,
        0,
        &frames::udp4(CLI_MAC, mac(1), v4("192.0.2.2"), v4("198.51.100.2"), 64, 80),
    );
    assert_eq!(p.stats().drops_of(D::NoMbuf), 1);
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    fn all_tx(p: &mut Pipeline<VecBuf, Pool>) -> Vec<(usize, Vec<u8>)> {
        let mut v = vec![];
        for q in 0..3 {
            v.extend(take(p, q).into_iter().map(|f| (q, f)));
        }
        v
    }

    proptest! {
        /// The IPv4 fast path decides exactly as the full pipeline does:
        /// same frames out, same counters, for valid and mutated frames.
        #[test]
        fn fast_path_equals_full_pipeline(flips in proptest::collection::vec((0usize..120, any::<u8>(), 0u8..4), 1..30)) {
            let (mut fast, mut slow) = (pipeline(), pipeline());
            for p in [&mut fast, &mut slow] {
                learn_srv(p);
                let req = frames::arp(CLI_MAC, EthernetAddress::BROADCAST, warp::Operation::Request, v4("192.0.2.2"), EthernetAddress::default(), v4("192.0.2.1"));
                feed(p, 0, 0, &req);
                take(p, 0);
            }
            for (at, x, kind) in flips {
                let base = match kind {
                    0 => frames::udp4(CLI_MAC, mac(1), v4("192.0.2.2"), v4("198.51.100.2"), 64, 100),
                    1 => frames::udp4(CLI_MAC, mac(1), v4("192.0.2.2"), v4("203.0.113.7"), 2, 1400),
                    2 => frames::udp4(CLI_MAC, mac(1), v4("192.0.2.2"), v4("198.51.100.1"), 64, 60),
                    _ => frames::udp4(CLI_MAC, mac(1), v4("192.0.2.2"), v4("8.8.8.8"), 64, 80),
                };
                let mut f = base.clone();
                if x != 0 {
                    let i = at % f.len();
                    f[i] ^= x;
                }
                fast.process(1, 0, VecBuf::from_slice(&f));
                slow.process_slow(1, 0, VecBuf::from_slice(&f));
                prop_assert_eq!(all_tx(&mut fast), all_tx(&mut slow));
            }
            for d in D::ALL {
                prop_assert_eq!(fast.stats().drops_of(*d), slow.stats().drops_of(*d), "{:?}", d);
            }
            for e in E::ALL {
                prop_assert_eq!(fast.stats().events_of(*e), slow.stats().events_of(*e), "{:?}", e);
            }
        }

        /// A burst through the fast path (which remembers a destination's
        /// decision for the following packets) decides as the full pipeline
        /// does frame by frame, with ARP for the next hop, repeated and
        /// mutated frames, other destinations and chained buffers mixed in.
        #[test]
        fn burst_equals_full_pipeline(frames_in in proptest::collection::vec((0u8..7, 0usize..120, any::<u8>()), 1..40)) {
            let (mut fast, mut slow) = (pipeline(), pipeline());
            let mut burst = Vec::new();
            let mut reference = Vec::new();
            // kind 6: the frame with a chained segment behind it
            let buf = |kind: u8, f: &[u8]| {
                let mut b = VecBuf::from_slice(f);
                if kind == 6 {
                    b.chain(&nf_core::chunk::Bytes::new(vec![0; 8]));
                }
                b
            };
            for (kind, at, x) in frames_in {
                let mut f = match kind {
                    0 | 1 => frames::udp4(CLI_MAC, mac(1), v4("192.0.2.2"), v4("198.51.100.2"), 64, 100),
                    2 => frames::udp4(CLI_MAC, mac(1), v4("192.0.2.2"), v4("203.0.113.7"), 2, 1400),
                    3 => frames::udp4(CLI_MAC, mac(1), v4("192.0.2.2"), v4("198.51.100.9"), 64, 60),
                    // srv answers ARP, from another MAC half the time
                    4 => srv_arp_reply(if x & 1 == 0 { SRV_MAC } else { CLI_MAC }),
                    _ => frames::udp4(CLI_MAC, mac(1), v4("192.0.2.2"), v4("198.51.100.2"), 64, 80),
                };
                let port = if kind == 4 { 2 } else { 0 };
                if kind == 1 && x != 0 {
                    let i = at % f.len();
                    f[i] ^= x;
                }
                if port == 0 {
                    burst.push(buf(kind, &f));
                } else {
                    // a burst is one port's: ARP arrives between bursts
                    fast.process_burst(1, 0, &mut burst);
                    fast.process_burst(1, port, &mut vec![buf(kind, &f)]);
                }
                reference.push((port, buf(kind, &f)));
            }
            fast.process_burst(1, 0, &mut burst);
            for (port, b) in reference {
                slow.process_slow(1, port, b);
            }
            prop_assert_eq!(all_tx(&mut fast), all_tx(&mut slow));
            for d in D::ALL {
                prop_assert_eq!(fast.stats().drops_of(*d), slow.stats().drops_of(*d), "{:?}", d);
            }
            for e in E::ALL {
                prop_assert_eq!(fast.stats().events_of(*e), slow.stats().events_of(*e), "{:?}", e);
            }
        }

        /// Arbitrary bytes (and mutations of valid frames) never panic.
        #[test]
        fn garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..200), port in 0u16..4, flip in any::<(usize, u8)>()) {
            let mut p = pipeline();
            feed(&mut p, 0, port, &data);
            let mut f = frames::udp6(CLI_MAC, mac(2), v6("2001:db8:c::2"), v6("2001:db8:5::2"), 64, 40);
            let i = flip.0 % f.len();
            f[i] ^= flip.1;
            feed(&mut p, 0, 1, &f);
            let mut f = frames::udp4(CLI_MAC, mac(1), v4("192.0.2.2"), v4("198.51.100.2"), 2, 80);
            let i = flip.0 % f.len();
            f[i] ^= flip.1;
            feed(&mut p, 0, 0, &f);
            p.poll_timers(10_000_000_000);
        }
    }
}

#[test]
fn vlan_port_accepts_its_tag_and_tags_egress() {
    let cfg_text = r#"
[[port]]
name = "tagged"
device = "net_null0"
role = "access-fixed"
addresses = ["192.0.2.1/24"]
vlan = 100
[[port]]
name = "plain"
device = "net_null1"
role = "internet"
addresses = ["198.51.100.1/24"]
"#;
    let cfg = config::parse("vlan.toml", cfg_text).unwrap();
    let ports = cfg
        .ports
        .iter()
        .enumerate()
        .map(|(i, p)| PortCtx::new(p, mac(i as u8 + 1)))
        .collect();
    let mut p = Pipeline::new(
        ports,
        routing_table(&cfg),
        PipelineLimits::from_config(&cfg),
        Pool::new(100),
        Arc::new(WorkerStats::new(0, 1, 2)),
    );
    let tag = |f: &[u8]| {
        let mut t = f[..12].to_vec();
        t.extend_from_slice(&[0x81, 0x00, 0x00, 100]);
        t.extend_from_slice(&f[12..]);
        t
    };
    // an untagged frame on the tagged port is not ours
    let ping = frames::ping4(CLI_MAC, mac(1), v4("192.0.2.2"), v4("192.0.2.1"), 64, 1);
    feed(&mut p, 0, 0, &ping);
    assert_eq!(p.stats().drops_of(D::VlanMismatch), 1);
    // the tagged ARP request is answered with a tagged reply
    let req = frames::arp(
        CLI_MAC,
        EthernetAddress::BROADCAST,
        warp::Operation::Request,
        v4("192.0.2.2"),
        EthernetAddress::default(),
        v4("192.0.2.1"),
    );
    feed(&mut p, 0, 0, &tag(&req));
    let out = take(&mut p, 0);
    assert_eq!(out.len(), 1);
    let f = weth::Frame::new_checked(&out[0][..]).unwrap();
    assert_eq!((f.vlan_id(), f.dst_addr()), (Some(100), CLI_MAC));
    // a tagged ping is answered tagged
    feed(&mut p, 0, 0, &tag(&ping));
    let out = take(&mut p, 0);
    assert_eq!(out.len(), 1);
    let f = weth::Frame::new_checked(&out[0][..]).unwrap();
    assert_eq!(f.vlan_id(), Some(100));
    let ip = wip4::Packet::new_checked(f.payload()).unwrap();
    assert_eq!(
        icmpv4::Packet::new_checked(ip.payload())
            .unwrap()
            .msg_type(),
        icmpv4::kind::ECHO_REPLY
    );
    // routed from the tagged port to the untagged one: the tag comes off
    let srv = frames::arp(
        SRV_MAC,
        mac(2),
        warp::Operation::Reply,
        v4("198.51.100.2"),
        mac(2),
        v4("198.51.100.1"),
    );
    feed(&mut p, 0, 1, &srv);
    let pkt = frames::udp4(
        CLI_MAC,
        mac(1),
        v4("192.0.2.2"),
        v4("198.51.100.2"),
        64,
        100,
    );
    feed(&mut p, 0, 0, &tag(&pkt));
    let out = take(&mut p, 1);
    assert_eq!(out.len(), 1);
    let f = weth::Frame::new_checked(&out[0][..]).unwrap();
    assert_eq!((f.vlan_id(), f.dst_addr()), (None, SRV_MAC));
    assert_eq!(
        out[0].len(),
        100,
        "18-byte tagged header replaced by a 14-byte one"
    );
    // and back: the tag goes on
    let back = frames::udp4(
        SRV_MAC,
        mac(2),
        v4("198.51.100.2"),
        v4("192.0.2.2"),
        64,
        100,
    );
    feed(&mut p, 0, 1, &back);
    let out = take(&mut p, 0);
    let f = weth::Frame::new_checked(&out[0][..]).unwrap();
    assert_eq!((f.vlan_id(), f.dst_addr()), (Some(100), CLI_MAC));
    assert_eq!(out[0].len(), 104);
}

#[test]
fn fast_path_leaves_local_and_directed_broadcast_to_the_full_pipeline() {
    let mut p = pipeline();
    learn_srv(&mut p);
    take(&mut p, 2);
    // every local and connected-broadcast address is marked in the filter
    for a in [
        "192.0.2.1",
        "192.0.2.255",
        "100.64.0.255",
        "198.51.100.1",
        "198.51.100.255",
    ] {
        let (w, bit) = special_v4_bit(u32::from(v4(a)));
        assert_ne!(p.special_v4[w] & bit, 0, "{a} is in the filter");
    }
    // the input port's directed broadcast is not forwarded
    let bcast = frames::udp4(CLI_MAC, mac(1), v4("192.0.2.2"), v4("192.0.2.255"), 64, 80);
    feed(&mut p, 0, 0, &bcast);
    assert!(take(&mut p, 2).is_empty());
    assert_eq!(p.stats().drops_of(D::MulticastNotForwarded), 1);
    // another port's own address is ours, not routed out of that port
    let local = frames::udp4(CLI_MAC, mac(1), v4("192.0.2.2"), v4("198.51.100.1"), 64, 80);
    feed(&mut p, 0, 0, &local);
    assert!(take(&mut p, 2).is_empty());
    // a plain unicast destination takes the fast path
    let routed = p.stats().events_of(E::RoutedV4);
    let pkt = frames::udp4(CLI_MAC, mac(1), v4("192.0.2.2"), v4("198.51.100.2"), 64, 80);
    feed(&mut p, 0, 0, &pkt);
    assert_eq!(take(&mut p, 2).len(), 1);
    assert_eq!(p.stats().events_of(E::RoutedV4), routed + 1);
}

#[test]
fn a_neighbour_learnt_mid_burst_is_used_by_the_rest_of_the_burst() {
    let mut p = pipeline();
    learn_srv(&mut p);
    take(&mut p, 2);
    // a burst on srv's port, to srv (hairpin) around an ARP reply that
    // moves 198.51.100.2 to a new MAC
    let udp = hairpin_udp();
    let moved = srv_arp_reply(MOVED_MAC);
    let mut burst: Vec<VecBuf> = [&udp, &moved, &udp]
        .iter()
        .map(|f| VecBuf::from_slice(f))
        .collect();
    p.process_burst(1, 2, &mut burst);
    let out = take(&mut p, 2);
    assert_eq!(out.len(), 2);
    assert_eq!(out[0][..6], SRV_MAC.0);
    assert_eq!(
        out[1][..6],
        MOVED_MAC.0,
        "the burst's remembered next hop was dropped"
    );
    assert_eq!(p.stats().events_of(E::RoutedV4), 2);
}

/// srv's new MAC in the tests that move it.
const MOVED_MAC: EthernetAddress = EthernetAddress([0x02, 0x5e, 0, 0, 0, 9]);

/// A UDP frame from srv's port to srv (hairpin).
fn hairpin_udp() -> Vec<u8> {
    frames::udp4(
        SRV_MAC,
        mac(3),
        v4("198.51.100.7"),
        v4("198.51.100.2"),
        64,
        80,
    )
}

/// A burst of `n` copies of [`hairpin_udp`].
fn hairpin_burst(n: usize) -> Vec<VecBuf> {
    let udp = hairpin_udp();
    (0..n).map(|_| VecBuf::from_slice(&udp)).collect()
}

#[test]
fn a_next_hop_learnt_between_bursts_replaces_the_remembered_one() {
    let mut p = pipeline();
    learn_srv(&mut p);
    take(&mut p, 2);
    p.process_burst(1, 2, &mut hairpin_burst(2));
    assert!(take(&mut p, 2).iter().all(|f| f[..6] == SRV_MAC.0));
    // the ARP reply comes alone, in a burst of its own
    let mut arp = vec![VecBuf::from_slice(&srv_arp_reply(MOVED_MAC))];
    p.process_burst(2, 2, &mut arp);
    p.process_burst(3, 2, &mut hairpin_burst(2));
    let out = take(&mut p, 2);
    assert_eq!(out.len(), 2);
    assert!(
        out.iter().all(|f| f[..6] == MOVED_MAC.0),
        "the last burst's next hop outlived the ARP update"
    );
    // and back, through the single-packet entry
    feed(&mut p, 4, 2, &srv_arp_reply(SRV_MAC));
    p.process_burst(5, 2, &mut hairpin_burst(1));
    let out = take(&mut p, 2);
    assert_eq!(out.len(), 1);
    assert_eq!(
        out[0][..6],
        SRV_MAC.0,
        "the next hop outlived an ARP update taken by process()"
    );
}

#[test]
fn a_remembered_next_hop_is_not_used_past_its_entry_expiry() {
    let mut p = pipeline();
    learn_srv(&mut p);
    take(&mut p, 2);
    p.process_burst(1, 2, &mut hairpin_burst(1));
    assert_eq!(take(&mut p, 2).len(), 1);
    // past the entry's lifetime the full pipeline forwards with the old
    // MAC and re-probes it by unicast at the next timer run
    let late = nf_core::neighbour::NeighbourConfig::default().reachable_ns + 1;
    p.process_burst(late, 2, &mut hairpin_burst(1));
    p.poll_timers(late);
    let out = take(&mut p, 2);
    let probes: Vec<_> = out
        .iter()
        .filter(|f| f[12..14] == [0x08, 0x06] && f[..6] == SRV_MAC.0)
        .collect();
    assert_eq!(
        probes.len(),
        1,
        "no unicast probe: the expired entry was used from memory"
    );
    assert_eq!(out.len(), 2, "the packet is forwarded and the probe sent");
}

#[test]
fn a_nic_checked_ipv4_checksum_is_taken_as_the_nic_flags_it() {
    use crate::stats::Layer;
    use nf_core::wire::Error as W;
    use nf_core::RxChecksum as C;
    // cli → srv with a header checksum no software check would pass
    let mut bad = frames::udp4(CLI_MAC, mac(1), v4("192.0.2.2"), v4("198.51.100.2"), 64, 80);
    bad[24] ^= 0x5a;
    let good = frames::udp4(CLI_MAC, mac(1), v4("192.0.2.2"), v4("198.51.100.2"), 64, 80);
    let run = |nic_port: bool, frame: &[u8], flag: C| {
        let mut p = pipeline();
        learn_srv(&mut p);
        take(&mut p, 2);
        p.set_rx_ip_checksum(0, nic_port);
        let mut b = VecBuf::from_slice(frame);
        b.set_rx_ip_checksum(flag);
        p.process_burst(1, 0, &mut vec![b]);
        let sent = take(&mut p, 2).len();
        (sent, p.stats().parse_errors_of(Layer::Ipv4, W::BadChecksum))
    };
    // RFC 1812 §5.2.2: verified once, by the NIC: its "good" stands
    assert_eq!(run(true, &bad, C::Good), (1, 0));
    // a port without the offload sums it whatever the flag says
    assert_eq!(run(false, &bad, C::Good), (0, 1));
    // not checked by the NIC: software sums it
    assert_eq!(run(true, &bad, C::Unknown), (0, 1));
    assert_eq!(run(true, &good, C::Unknown), (1, 0));
    // "bad" goes to the full pipeline, which checks again in software
    assert_eq!(run(true, &bad, C::Bad), (0, 1));
    assert_eq!(run(true, &good, C::Bad), (1, 0));
}

/// A burst rewritten in place that does not fit the egress queue's room
/// is queued as far as it fits and the rest counted, as frame by frame.
#[test]
fn a_burst_beyond_the_egress_queue_room_is_queued_as_far_as_it_fits() {
    let (mut fast, mut slow) = (pipeline(), pipeline());
    let cap = fast.tx_cap;
    for p in [&mut fast, &mut slow] {
        learn_srv(p);
        take(p, 2);
        // one packet first: the decision is remembered, the queue emptied
        p.process_burst(1, 2, &mut hairpin_burst(1));
        assert_eq!(take(p, 2).len(), 1);
        // the queue holds a few frames already (a NIC that did not take them)
        p.process_burst(1, 2, &mut hairpin_burst(3));
    }
    let mut burst = hairpin_burst(cap);
    fast.process_burst(2, 2, &mut burst);
    assert!(burst.is_empty());
    for b in hairpin_burst(cap) {
        slow.process_slow(2, 2, b);
    }
    assert_eq!(fast.stats().drops_of(D::TxQueueFull), 3);
    assert_eq!(slow.stats().drops_of(D::TxQueueFull), 3);
    assert_eq!(
        fast.stats().events_of(E::RoutedV4),
        slow.stats().events_of(E::RoutedV4)
    );
    let out = take(&mut fast, 2);
    assert_eq!(out.len(), cap);
    assert_eq!(out, take(&mut slow, 2));
}
