//! IPv4: validation, local delivery (ICMP echo), forwarding (RFC 1812) and
//! ICMP errors (RFC 792, rate-limited per RFC 1812 §4.3.2.8).

use super::{BufPool, Pipeline};
use crate::convert::routed::Routed;
use crate::convert::Verdict;
use crate::stats::Side;
use crate::stats::{Drop, Event, Layer};
use nf_core::wire::{icmpv4, ip_proto, ipv4};
use nf_core::PacketBuf;
use std::net::{IpAddr, Ipv4Addr};

/// RFC 1812 §4.3.2.3: quote as much of the original as fits in 576 bytes.
const ICMP4_QUOTE_MAX: usize = 576 - ipv4::HEADER_LEN - icmpv4::HEADER_LEN;

/// The IPv4 header fields the pipeline needs, read once from the view.
#[derive(Clone, Copy)]
struct Hdr {
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ttl: u8,
    protocol: u8,
    dont_frag: bool,
    hl: usize,
    total: usize,
}

/// The IPv4 header and the first 20 bytes behind it (ports, identifier,
/// transport checksum) of a packet as it arrived, before the NAT of
/// routed traffic rewrote them.
struct Arrived {
    bytes: [u8; 80],
    len: usize,
}

impl Arrived {
    fn of(d: &[u8], hl: usize) -> Arrived {
        let len = (hl + 20).min(d.len()).min(80);
        let mut bytes = [0u8; 80];
        bytes[..len].copy_from_slice(&d[..len]);
        Arrived { bytes, len }
    }

    /// Puts the packet's headers back as they arrived (it is dropped: an
    /// ICMP error is about to quote it).
    fn restore<B: PacketBuf>(a: &Option<Arrived>, buf: &mut B, l2: usize) {
        let Some(a) = a else {
            return;
        };
        if let Some(d) = buf.data_mut().get_mut(l2..l2 + a.len) {
            d.copy_from_slice(&a.bytes[..a.len]);
        }
    }
}

impl Hdr {
    /// The addresses again, after a NAT rewrote them in `d` (the packet
    /// from its IP header on): it is routed by the new ones.
    fn readdress(&mut self, d: &[u8]) {
        let p = ipv4::Packet::new_unchecked(d);
        self.src = p.src_addr();
        self.dst = p.dst_addr();
    }
}

fn martian_src(a: Ipv4Addr) -> bool {
    a.is_broadcast()
        || a.is_multicast()
        || a.is_loopback()
        || a.octets()[0] == 0 && !a.is_unspecified()
}

impl<B: PacketBuf, A: BufPool<B>> Pipeline<B, A> {
    pub(super) fn ipv4_input(&mut self, now_ns: u64, port: u16, mut buf: B, l2: usize) {
        // Read the fields once from the zero-copy view (no Repr, no Result
        // temporary on the fast path).
        let ip = {
            let Some(d) = buf.data().get(l2..) else {
                return self
                    .stats
                    .parse_error(Layer::Ipv4, nf_core::wire::Error::Truncated);
            };
            let p = match ipv4::Packet::new_checked(d) {
                Ok(p) => p,
                Err(e) => return self.stats.parse_error(Layer::Ipv4, e),
            };
            if !p.verify_checksum() {
                return self
                    .stats
                    .parse_error(Layer::Ipv4, nf_core::wire::Error::BadChecksum);
            }
            Hdr {
                src: p.src_addr(),
                dst: p.dst_addr(),
                ttl: p.ttl(),
                protocol: p.protocol(),
                dont_frag: p.dont_frag(),
                hl: p.header_len(),
                total: usize::from(p.total_len()),
            }
        };
        let (hl, total) = (ip.hl, ip.total);
        // Drop any Ethernet padding after the IP packet.
        let pad = buf.len() - l2 - total;
        if pad > 0 && !buf.trim(pad) {
            return self
                .stats
                .parse_error(Layer::Ipv4, nf_core::wire::Error::BadLength);
        }
        if martian_src(ip.src) || ip.dst.is_unspecified() || ip.dst.is_loopback() {
            return self.stats.dropped(Drop::Martian);
        }
        let mut ip = ip;
        // translated by a session's NAT (a withdrawn connection's packet,
        // an ICMP error about one): not the routed traffic's NAT's
        let mut natted = false;
        if ip.protocol == ip_proto::ICMP && self.conv.is_some() {
            let owner = match (self.conv.as_ref(), buf.data().get(l2..)) {
                (Some(c), Some(d)) => c.icmp_owner(d, self.port_side(port)),
                _ => None,
            };
            if let Some(w) = owner {
                // about another worker's session
                return self.hand_off(w, port, buf);
            }
            let verdict = match (self.conv.as_mut(), buf.data().get(l2..)) {
                (Some(c), Some(d)) => c.icmp_input(d),
                _ => None,
            };
            match verdict {
                None => {
                    // about a withdrawn connection's packet: NATed toward
                    // its sender, then routed as any packet
                    let side = self.port_side(port);
                    let translated = match (self.conv.as_mut(), buf.data_mut().get_mut(l2..), side)
                    {
                        (Some(c), Some(d), Some(side)) => c.icmp_nat(d, side),
                        _ => false,
                    };
                    if translated {
                        ip.readdress(&buf.data()[l2..]);
                        natted = true;
                    }
                }
                Some(None) => return,
                Some(Some((side, quoted, code))) => {
                    // the same answer to the client: unreachable, quoting
                    // its own SYN, from its access port
                    let role = match side {
                        Side::Cellular => crate::config::PortRole::AccessCellular,
                        _ => crate::config::PortRole::AccessFixed,
                    };
                    let cport = self.ports.iter().position(|p| p.role == role).unwrap_or(0) as u16;
                    self.icmp4_error(
                        now_ns,
                        cport,
                        &quoted,
                        icmpv4::kind::DEST_UNREACHABLE,
                        code,
                        0,
                    );
                    return;
                }
            }
        }
        if ip.protocol == ip_proto::TCP && self.conv.is_some() {
            let local = self.local_v4.contains(&ip.dst);
            match self.convert_input(now_ns, port, &mut buf, l2, local) {
                Verdict::Pass => {}
                Verdict::Consumed => return,
                Verdict::Handoff(w) => return self.hand_off(w, port, buf),
                Verdict::Forward => {
                    // NATed in place: route by the new destination
                    ip.readdress(&buf.data()[l2..]);
                    natted = true;
                }
            }
        }
        // routed traffic (UDP, ICMP queries, plain TCP): the NAT policy's.
        // Its headers as they arrived are kept: an ICMP error hagw sends
        // about a packet it translated quotes it as its sender knows it,
        // to that sender (RFC 5508 §4.2), or the sender never learns of it
        // (a path MTU black hole for a cellular host behind the NAT).
        let mut arrived = None;
        if !natted && self.nat_udp {
            let local = self.local_v4.contains(&ip.dst);
            let side = self.port_side(port);
            let r = match (self.conv.as_mut(), buf.data_mut().get_mut(l2..)) {
                (Some(c), Some(d)) => {
                    let before = Arrived::of(d, hl);
                    let r = c.routed(now_ns, side, local, d);
                    if r == Routed::Translated {
                        arrived = Some(before);
                    }
                    r
                }
                _ => Routed::Pass,
            };
            match r {
                Routed::Pass => {}
                Routed::Dropped => return,
                Routed::Handoff(w) => return self.hand_off(w, port, buf),
                Routed::Translated => {
                    ip.readdress(&buf.data()[l2..]);
                }
            }
        }
        let Some(pc) = self.ports.get(usize::from(port)) else {
            return;
        };
        if self.local_v4.contains(&ip.dst) {
            if !buf.adj(l2) {
                return;
            }
            return self.ipv4_local(now_ns, port, buf, ip, hl);
        }
        if ip.dst.is_broadcast() || ip.dst.is_multicast() || pc.is_v4_broadcast(ip.dst) {
            return self.stats.dropped(Drop::MulticastNotForwarded);
        }
        // RFC 1812 §5.3.1: a TTL that would reach 0 is not forwarded.
        if ip.ttl <= 1 {
            self.forward_error(
                now_ns,
                port,
                &mut buf,
                l2,
                &arrived,
                (icmpv4::kind::TIME_EXCEEDED, 0, 0),
            );
            return self.stats.dropped(Drop::TtlExceeded);
        }
        let Some(&nh) = self.routes.lookup_v4(ip.dst) else {
            self.forward_error(
                now_ns,
                port,
                &mut buf,
                l2,
                &arrived,
                (icmpv4::kind::DEST_UNREACHABLE, icmpv4::unreach::NET, 0),
            );
            return self.stats.dropped(Drop::NoRoute);
        };
        let mtu = self
            .ports
            .get(usize::from(nh.port))
            .map_or(0, |p| usize::from(p.mtu));
        if total > mtu && ip.dont_frag {
            // DF: "fragmentation needed" (RFC 1191)
            self.forward_error(
                now_ns,
                port,
                &mut buf,
                l2,
                &arrived,
                (
                    icmpv4::kind::DEST_UNREACHABLE,
                    icmpv4::unreach::FRAG_NEEDED,
                    mtu as u16,
                ),
            );
            return self.stats.dropped(Drop::TooBig);
        }
        ipv4::Packet::new_unchecked(&mut buf.data_mut()[l2..]).decrement_ttl();
        self.stats.event(Event::RoutedV4);
        let next = match nh.gateway {
            Some(IpAddr::V4(g)) => g,
            _ => ip.dst,
        };
        if total > mtu {
            // RFC 1812 §5.2.6: without DF, in fragments
            return self.fragment_v4(now_ns, nh.port, IpAddr::V4(next), buf, l2, mtu);
        }
        self.output(now_ns, nh.port, IpAddr::V4(next), buf, l2);
    }

    /// An ICMP error (`icmp`: type, code, next-hop MTU) about the packet
    /// at `l2` in `buf` that will not be forwarded, to its sender, quoting
    /// it as it arrived: headers the NAT of routed traffic rewrote are put
    /// back first (RFC 5508 §4.2), or a host behind the NAT would never
    /// learn of it.
    fn forward_error(
        &mut self,
        now_ns: u64,
        port: u16,
        buf: &mut B,
        l2: usize,
        arrived: &Option<Arrived>,
        icmp: (u8, u8, u16),
    ) {
        Arrived::restore(arrived, buf, l2);
        if let Some(d) = buf.data().get(l2..) {
            self.icmp4_error(now_ns, port, d, icmp.0, icmp.1, icmp.2);
        }
    }

    fn ipv4_local(&mut self, now_ns: u64, port: u16, mut buf: B, ip: Hdr, hl: usize) {
        let frag = {
            let p = ipv4::Packet::new_unchecked(buf.data());
            p.more_frags() || p.frag_offset() != 0
        };
        if ip.protocol == ip_proto::TCP && !frag && self.local_tcp_cap > 0 {
            return self.deliver_local_tcp(buf);
        }
        if ip.protocol != ip_proto::ICMP || frag {
            return self.stats.dropped(Drop::LocalUnhandled);
        }
        let is_echo = match icmpv4::Packet::new_checked(&buf.data()[hl..]).and_then(|p| {
            icmpv4::Repr::parse(&p).map(|r| matches!(r, icmpv4::Repr::EchoRequest { .. }))
        }) {
            Ok(e) => e,
            Err(e) => return self.stats.parse_error(Layer::Icmpv4, e),
        };
        if !is_echo {
            return self.stats.dropped(Drop::LocalUnhandled);
        }
        // Echo reply in place: swap addresses (the header sum is unchanged by
        // a swap), fresh TTL, ICMP type patched incrementally.
        {
            let d = buf.data_mut();
            let mut p = ipv4::Packet::new_unchecked(&mut d[..]);
            p.set_src_addr(ip.dst);
            p.set_dst_addr(ip.src);
            p.set_ttl(64);
            p.fill_checksum();
            icmpv4::Packet::new_unchecked(&mut d[hl..]).echo_request_to_reply();
        }
        self.stats.event(Event::EchoReplyV4);
        self.route_local(now_ns, port, IpAddr::V4(ip.src), buf);
    }

    /// Sends an ICMPv4 error about `orig` (the packet from its IP header on) to
    /// its source, unless RFC 1812 §4.3.2.7 forbids it or the rate limit says no.
    pub(crate) fn icmp4_error(
        &mut self,
        now_ns: u64,
        port: u16,
        orig: &[u8],
        kind: u8,
        code: u8,
        mtu: u16,
    ) {
        let d = orig;
        let p = ipv4::Packet::new_unchecked(d);
        if d.len() < ipv4::HEADER_LEN || p.frag_offset() != 0 {
            return;
        }
        let (src, dst) = (p.src_addr(), p.dst_addr());
        if src.is_unspecified() || martian_src(src) || dst.is_broadcast() || dst.is_multicast() {
            return;
        }
        if p.protocol() == ip_proto::ICMP {
            // Never an error about an error (only queries may be answered).
            let t = d.get(p.header_len()).copied().unwrap_or(255);
            if !matches!(t, icmpv4::kind::ECHO_REQUEST | icmpv4::kind::ECHO_REPLY) {
                return;
            }
        }
        let Some(our) = self
            .ports
            .get(usize::from(port))
            .and_then(|pc| pc.v4_for(src))
        else {
            return;
        };
        if !self.icmp_bucket.allow(now_ns) {
            return self.stats.event(Event::IcmpRateLimited);
        }
        let quote = &d[..d.len().min(ICMP4_QUOTE_MAX)];
        let msg = match kind {
            icmpv4::kind::TIME_EXCEEDED => icmpv4::Repr::TimeExceeded { code, data: quote },
            _ => icmpv4::Repr::DestUnreachable {
                code,
                next_hop_mtu: mtu,
                data: quote,
            },
        };
        let iph = ipv4::Repr {
            src: our,
            dst: src,
            protocol: ip_proto::ICMP,
            payload_len: msg.buffer_len(),
            ttl: 64,
            dscp_ecn: 0xc0, // CS6, network control
            ident: 0,
            dont_frag: false,
        };
        let Some(mut buf) = self.pool.alloc() else {
            return self.stats.dropped(Drop::NoMbuf);
        };
        let Some(out) = buf.append(ipv4::HEADER_LEN + msg.buffer_len()) else {
            return self.stats.dropped(Drop::NoMbuf);
        };
        iph.emit(&mut out[..ipv4::HEADER_LEN]);
        msg.emit(&mut out[ipv4::HEADER_LEN..]);
        self.stats.event(Event::IcmpErrorV4);
        self.route_local(now_ns, port, IpAddr::V4(src), buf);
    }
}
