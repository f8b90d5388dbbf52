//! Builders for whole frames, used by tests, benchmarks and fuzzing to feed
//! the pipeline (production code builds its packets with the nf-core Reprs
//! directly into mbufs).

use nf_core::wire::{
    arp, ethernet, icmpv4, icmpv6, ip_proto, ipv4, ipv6, udp, EtherType, EthernetAddress,
};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

fn eth(src: EthernetAddress, dst: EthernetAddress, et: EtherType, body: &[u8]) -> Vec<u8> {
    let e = ethernet::Repr {
        src,
        dst,
        vlan: None,
        ethertype: et,
    };
    let mut f = vec![0u8; e.header_len() + body.len()];
    e.emit(&mut f);
    f[e.header_len()..].copy_from_slice(body);
    if f.len() < 60 {
        f.resize(60, 0); // Ethernet minimum frame without FCS
    }
    f
}

/// An IPv4 packet (no link header): a 20-byte header, TTL 64, around
/// `payload` (already built, with its own checksum).
pub fn ipv4_packet(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, payload: &[u8]) -> Vec<u8> {
    let ip = ipv4::Repr {
        src,
        dst,
        protocol,
        payload_len: payload.len(),
        ttl: 64,
        dscp_ecn: 0,
        ident: 0,
        dont_frag: true,
    };
    let mut b = vec![0u8; ipv4::HEADER_LEN + payload.len()];
    ip.emit(&mut b[..ipv4::HEADER_LEN]);
    b[ipv4::HEADER_LEN..].copy_from_slice(payload);
    b
}

/// An Ethernet/IPv4/UDP frame of exactly `frame_len` bytes (≥ 42).
pub fn udp4(
    src_mac: EthernetAddress,
    dst_mac: EthernetAddress,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ttl: u8,
    frame_len: usize,
) -> Vec<u8> {
    let payload = vec![0xa5u8; frame_len.saturating_sub(14 + 20 + 8)];
    let u = udp::Repr {
        src_port: 40000,
        dst_port: 9,
        payload: &payload,
    };
    let ip = ipv4::Repr {
        src,
        dst,
        protocol: ip_proto::UDP,
        payload_len: u.buffer_len(),
        ttl,
        dscp_ecn: 0,
        ident: 1,
        dont_frag: true,
    };
    let mut body = vec![0u8; 20 + u.buffer_len()];
    ip.emit(&mut body[..20]);
    u.emit(IpAddr::V4(src), IpAddr::V4(dst), &mut body[20..]);
    eth(src_mac, dst_mac, EtherType::Ipv4, &body)
}

/// An Ethernet/IPv6/UDP frame.
pub fn udp6(
    src_mac: EthernetAddress,
    dst_mac: EthernetAddress,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hop_limit: u8,
    payload_len: usize,
) -> Vec<u8> {
    let payload = vec![0x5au8; payload_len];
    let u = udp::Repr {
        src_port: 40000,
        dst_port: 9,
        payload: &payload,
    };
    let ip = ipv6::Repr {
        src,
        dst,
        next_header: ip_proto::UDP,
        payload_len: u.buffer_len(),
        hop_limit,
        traffic_class: 0,
        flow_label: 0,
    };
    let mut body = vec![0u8; 40 + u.buffer_len()];
    ip.emit(&mut body[..40]);
    u.emit(IpAddr::V6(src), IpAddr::V6(dst), &mut body[40..]);
    eth(src_mac, dst_mac, EtherType::Ipv6, &body)
}

/// An ARP request or reply frame.
pub fn arp(
    src_mac: EthernetAddress,
    dst_mac: EthernetAddress,
    op: arp::Operation,
    sender_ip: Ipv4Addr,
    target_hw: EthernetAddress,
    target_ip: Ipv4Addr,
) -> Vec<u8> {
    let r = arp::Repr {
        operation: op,
        sender_hw: src_mac,
        sender_ip,
        target_hw,
        target_ip,
    };
    let mut body = [0u8; arp::PACKET_LEN];
    r.emit(&mut body);
    eth(src_mac, dst_mac, EtherType::Arp, &body)
}

/// An ICMPv4 echo request frame.
pub fn ping4(
    src_mac: EthernetAddress,
    dst_mac: EthernetAddress,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ttl: u8,
    seq: u16,
) -> Vec<u8> {
    let data = *b"hagw-ping-payload";
    let m = icmpv4::Repr::EchoRequest {
        ident: 0x4147,
        seq,
        data: &data,
    };
    let ip = ipv4::Repr {
        src,
        dst,
        protocol: ip_proto::ICMP,
        payload_len: m.buffer_len(),
        ttl,
        dscp_ecn: 0,
        ident: seq,
        dont_frag: false,
    };
    let mut body = vec![0u8; 20 + m.buffer_len()];
    ip.emit(&mut body[..20]);
    m.emit(&mut body[20..]);
    eth(src_mac, dst_mac, EtherType::Ipv4, &body)
}

/// An ICMPv6 message frame (echo, NS, NA…) with the given hop limit.
pub fn icmp6(
    src_mac: EthernetAddress,
    dst_mac: EthernetAddress,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hop_limit: u8,
    m: &icmpv6::Repr,
) -> Vec<u8> {
    let ip = ipv6::Repr {
        src,
        dst,
        next_header: ip_proto::ICMPV6,
        payload_len: m.buffer_len(),
        hop_limit,
        traffic_class: 0,
        flow_label: 0,
    };
    let mut body = vec![0u8; 40 + m.buffer_len()];
    ip.emit(&mut body[..40]);
    m.emit(src, dst, &mut body[40..]);
    eth(src_mac, dst_mac, EtherType::Ipv6, &body)
}
