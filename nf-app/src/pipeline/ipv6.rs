//! IPv6: validation (extension headers walked safely), Neighbor Discovery
//! (RFC 4861), echo (RFC 4443 §4), forwarding (RFC 8200) and ICMPv6 errors
//! (RFC 4443 §2.4, rate-limited).

use super::{is_link_local, set_dst_mac, BufPool, Pipeline};
use crate::convert::Verdict;
use crate::stats::{Drop, Event, Layer};
use nf_core::wire::{icmpv6, ip_proto, ipv6, EtherType, EthernetAddress};
use nf_core::PacketBuf;
use std::net::{IpAddr, Ipv6Addr};

/// RFC 4443 §2.4(c): the error must not exceed the minimum IPv6 MTU.
const ICMP6_QUOTE_MAX: usize = 1280 - ipv6::HEADER_LEN - icmpv6::HEADER_LEN;
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

impl<B: PacketBuf, A: BufPool<B>> Pipeline<B, A> {
    pub(super) fn ipv6_input(&mut self, now_ns: u64, port: u16, mut buf: B, l2: usize) {
        let parsed = buf
            .data()
            .get(l2..)
            .ok_or(nf_core::wire::Error::Truncated)
            .and_then(|d| {
                let p = ipv6::Packet::new_checked(d)?;
                Ok((
                    ipv6::Repr::parse(&p)?,
                    ipv6::HEADER_LEN + usize::from(p.payload_len()),
                ))
            });
        let (ip, total) = match parsed {
            Ok(x) => x,
            Err(e) => return self.stats.parse_error(Layer::Ipv6, e),
        };
        let pad = buf.len() - l2 - total;
        if pad > 0 && !buf.trim(pad) {
            return self
                .stats
                .parse_error(Layer::Ipv6, nf_core::wire::Error::BadLength);
        }
        if ip.src.is_multicast()
            || ip.src.is_loopback()
            || ip.dst.is_loopback()
            || ip.dst.is_unspecified()
        {
            return self.stats.dropped(Drop::Martian);
        }
        let mut ip = ip;
        if ip.next_header == ip_proto::ICMPV6 && self.conv.is_some() {
            // An error (RFC 4443 §3, types 1-4) that may concern a session:
            // handed to the worker of the flow it quotes; a Packet Too Big
            // about a segment hagw sent (to its own address for a subflow,
            // to the NAT address toward a server) is taken, its checksum
            // verified; one about a withdrawn connection's packet is NATed
            // toward the end that sent it (RFC 5508 §4.2) and routed.
            // Other ICMPv6 (ND, echo) is checked once, where it is handled.
            let side = self.port_side(port);
            let icmp = buf.data().get(l2 + ipv6::HEADER_LEN..).unwrap_or(&[]);
            let kind = icmp.first().copied().unwrap_or(0);
            if (1..=4).contains(&kind) {
                let owner = match (self.conv.as_ref(), icmp.get(icmpv6::HEADER_LEN..)) {
                    (Some(c), Some(quoted)) => c.icmp6_owner(quoted, side),
                    _ => None,
                };
                if let Some(w) = owner {
                    return self.hand_off(w, port, buf);
                }
                let taken = kind == icmpv6::kind::PACKET_TOO_BIG
                    && match (
                        icmpv6::Packet::new_checked(icmp)
                            .and_then(|p| icmpv6::Repr::parse(&p, ip.src, ip.dst)),
                        self.conv.as_mut(),
                    ) {
                        (Ok(icmpv6::Repr::PacketTooBig { mtu, data }), Some(c)) => {
                            c.packet_too_big(mtu, data)
                        }
                        _ => false,
                    };
                if taken {
                    return;
                }
                let translated = match (self.conv.as_mut(), buf.data_mut().get_mut(l2..), side) {
                    (Some(c), Some(d), Some(side)) => c.icmp_nat(d, side),
                    _ => false,
                };
                if translated {
                    let p = ipv6::Packet::new_unchecked(&buf.data()[l2..]);
                    ip.src = p.src_addr();
                    ip.dst = p.dst_addr();
                }
            }
        }
        if ip.next_header == ip_proto::TCP && self.conv.is_some() {
            let local = self.local_v6.contains(&ip.dst);
            match self.convert_input(now_ns, port, &mut buf, l2, local) {
                Verdict::Pass => {}
                Verdict::Consumed => return,
                Verdict::Handoff(w) => return self.hand_off(w, port, buf),
                Verdict::Forward => {
                    let p = ipv6::Packet::new_unchecked(&buf.data()[l2..]);
                    ip.src = p.src_addr();
                    ip.dst = p.dst_addr();
                }
            }
        }
        let Some(pc) = self.ports.get(usize::from(port)) else {
            return;
        };
        let to_us = self.local_v6.contains(&ip.dst)
            || ip.dst == ALL_NODES
            || (ip.dst.is_multicast()
                && pc
                    .v6
                    .iter()
                    .map(|c| c.addr)
                    .chain([pc.link_local])
                    .any(|a| ipv6::solicited_node(a) == ip.dst));
        if to_us {
            let eth_src = EthernetAddress::from_bytes(&buf.data()[6..12]);
            if !buf.adj(l2) {
                return;
            }
            return self.ipv6_local(now_ns, port, buf, ip, eth_src);
        }
        if ip.dst.is_multicast() {
            return self.stats.dropped(Drop::MulticastNotForwarded);
        }
        // RFC 4291 §2.5.6: link-local addresses are never forwarded.
        if is_link_local(ip.src) || is_link_local(ip.dst) {
            return self.stats.dropped(Drop::Martian);
        }
        if ip.hop_limit <= 1 {
            self.icmp6_error(
                now_ns,
                port,
                &buf.data()[l2..],
                icmpv6::kind::TIME_EXCEEDED,
                0,
                0,
            );
            return self.stats.dropped(Drop::TtlExceeded);
        }
        let Some(&nh) = self.routes.lookup_v6(ip.dst) else {
            self.icmp6_error(
                now_ns,
                port,
                &buf.data()[l2..],
                icmpv6::kind::DEST_UNREACHABLE,
                icmpv6::unreach::NO_ROUTE,
                0,
            );
            return self.stats.dropped(Drop::NoRoute);
        };
        let mtu = self
            .ports
            .get(usize::from(nh.port))
            .map_or(0, |p| usize::from(p.mtu));
        if total > mtu {
            // RFC 8200 §5: routers never fragment; Packet Too Big.
            self.icmp6_error(
                now_ns,
                port,
                &buf.data()[l2..],
                icmpv6::kind::PACKET_TOO_BIG,
                0,
                mtu as u32,
            );
            return self.stats.dropped(Drop::TooBig);
        }
        ipv6::Packet::new_unchecked(&mut buf.data_mut()[l2..]).set_hop_limit(ip.hop_limit - 1);
        self.stats.event(Event::RoutedV6);
        let next = match nh.gateway {
            Some(IpAddr::V6(g)) => g,
            _ => ip.dst,
        };
        self.output(now_ns, nh.port, IpAddr::V6(next), buf, l2);
    }

    fn ipv6_local(
        &mut self,
        now_ns: u64,
        port: u16,
        mut buf: B,
        ip: ipv6::Repr,
        eth_src: EthernetAddress,
    ) {
        let upper = match ipv6::Packet::new_unchecked(buf.data()).upper_layer() {
            Ok(u) => u,
            Err(e) => return self.stats.parse_error(Layer::Ipv6, e),
        };
        if upper.protocol == ip_proto::TCP
            && upper.offset == ipv6::HEADER_LEN
            && self.local_tcp_cap > 0
        {
            return self.deliver_local_tcp(buf);
        }
        if upper.protocol != ip_proto::ICMPV6 || upper.non_first_fragment {
            return self.stats.dropped(Drop::LocalUnhandled);
        }
        let off = upper.offset;
        enum Act {
            Ns(Ipv6Addr, Option<EthernetAddress>),
            Na(Ipv6Addr, Option<EthernetAddress>),
            Echo,
            Other,
        }
        let act = {
            let d = buf.data();
            match icmpv6::Packet::new_checked(&d[off..])
                .and_then(|p| icmpv6::Repr::parse(&p, ip.src, ip.dst))
            {
                Ok(icmpv6::Repr::NeighborSolicit {
                    target,
                    source_lladdr,
                }) => Act::Ns(target, source_lladdr),
                Ok(icmpv6::Repr::NeighborAdvert {
                    target,
                    target_lladdr,
                    ..
                }) => Act::Na(target, target_lladdr),
                Ok(icmpv6::Repr::EchoRequest { .. }) => Act::Echo,
                Ok(_) => Act::Other,
                Err(e) => return self.stats.parse_error(Layer::Icmpv6, e),
            }
        };
        match act {
            Act::Ns(target, lladdr) => {
                self.stats.event(Event::NdSolicitRx);
                // RFC 4861 §7.1.1: hop limit 255, target not multicast.
                if ip.hop_limit != 255
                    || target.is_multicast()
                    || (ip.src.is_unspecified() && lladdr.is_some())
                {
                    return self.stats.dropped(Drop::NdInvalid);
                }
                let Some(pc) = self.ports.get(usize::from(port)) else {
                    return;
                };
                if !pc.has_v6(target) {
                    return; // not ours: silently ignored
                }
                if let (false, Some(mac)) = (ip.src.is_unspecified(), lladdr) {
                    self.learn_v6(now_ns, port, ip.src, mac, true);
                }
                // RFC 4861 §7.2.4: answer to the source (all-nodes for DAD).
                let (dst, dst_mac, solicited) = if ip.src.is_unspecified() {
                    (
                        ALL_NODES,
                        EthernetAddress::ipv6_multicast(&ALL_NODES),
                        false,
                    )
                } else {
                    (ip.src, lladdr.unwrap_or(eth_src), true)
                };
                drop(buf);
                self.send_neighbor_advert(port, target, dst, dst_mac, solicited);
            }
            Act::Na(target, lladdr) => {
                self.stats.event(Event::NdAdvertRx);
                if ip.hop_limit != 255 || target.is_multicast() {
                    return self.stats.dropped(Drop::NdInvalid);
                }
                if let Some(mac) = lladdr {
                    self.learn_v6(now_ns, port, target, mac, false);
                }
            }
            Act::Echo => {
                // Reply from the address that was pinged (or, for a multicast
                // ping, from our address facing the sender).
                let src = if ip.dst.is_multicast() {
                    self.ports
                        .get(usize::from(port))
                        .map_or(ip.dst, |pc| pc.v6_for(ip.src))
                } else {
                    ip.dst
                };
                {
                    let d = buf.data_mut();
                    let mut p = ipv6::Packet::new_unchecked(&mut d[..]);
                    p.set_src_addr(src);
                    p.set_dst_addr(ip.src);
                    p.set_hop_limit(64);
                    let mut icmp = icmpv6::Packet::new_unchecked(&mut d[off..]);
                    icmp.echo_request_to_reply();
                    if src != ip.dst {
                        icmp.fill_checksum(src, ip.src);
                    }
                }
                self.stats.event(Event::EchoReplyV6);
                self.route_local(now_ns, port, IpAddr::V6(ip.src), buf);
            }
            Act::Other => self.stats.dropped(Drop::LocalUnhandled),
        }
    }

    fn learn_v6(
        &mut self,
        now_ns: u64,
        port: u16,
        ip: Ipv6Addr,
        mac: EthernetAddress,
        create: bool,
    ) {
        let (nd, tx, cap, stats) = (&mut self.nd, &mut self.tx, self.tx_cap, &self.stats);
        nd.learn(now_ns, (port, ip), mac, create, |mac, mut p| {
            set_dst_mac(&mut p, mac);
            match tx.get_mut(usize::from(port)) {
                Some(q) if q.len() < cap => q.push(p),
                _ => stats.dropped(Drop::TxQueueFull),
            }
        });
    }

    fn send_nd(
        &mut self,
        port: u16,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        dst_mac: EthernetAddress,
        msg: icmpv6::Repr,
    ) {
        let Some(mut buf) = self.pool.alloc() else {
            return self.stats.dropped(Drop::NoMbuf);
        };
        let len = msg.buffer_len();
        let iph = ipv6::Repr {
            src,
            dst,
            next_header: ip_proto::ICMPV6,
            payload_len: len,
            hop_limit: 255,
            traffic_class: 0,
            flow_label: 0,
        };
        let Some(out) = buf.append(ipv6::HEADER_LEN + len) else {
            return self.stats.dropped(Drop::NoMbuf);
        };
        iph.emit(&mut out[..ipv6::HEADER_LEN]);
        msg.emit(src, dst, &mut out[ipv6::HEADER_LEN..]);
        if self.prepend_l2(port, &mut buf, EtherType::Ipv6, dst_mac) {
            self.enqueue(port, buf);
        }
    }

    fn send_neighbor_advert(
        &mut self,
        port: u16,
        target: Ipv6Addr,
        dst: Ipv6Addr,
        dst_mac: EthernetAddress,
        solicited: bool,
    ) {
        let Some(pc) = self.ports.get(usize::from(port)) else {
            return;
        };
        let msg = icmpv6::Repr::NeighborAdvert {
            flags: icmpv6::NaFlags {
                router: true,
                solicited,
                override_: true,
            },
            target,
            target_lladdr: Some(pc.mac),
        };
        self.stats.event(Event::NdAdvertTx);
        self.send_nd(port, target, dst, dst_mac, msg);
    }

    /// Multicasts (or, for a refresh, unicasts) a Neighbor Solicitation.
    pub(crate) fn send_neighbor_solicit(
        &mut self,
        port: u16,
        ip: Ipv6Addr,
        unicast: Option<EthernetAddress>,
    ) {
        let Some(pc) = self.ports.get(usize::from(port)) else {
            return;
        };
        let src = pc.v6_for(ip);
        let (dst, dst_mac) = match unicast {
            Some(m) => (ip, m),
            None => {
                let sn = ipv6::solicited_node(ip);
                (sn, EthernetAddress::ipv6_multicast(&sn))
            }
        };
        let msg = icmpv6::Repr::NeighborSolicit {
            target: ip,
            source_lladdr: Some(pc.mac),
        };
        self.stats.event(Event::NdSolicitTx);
        self.send_nd(port, src, dst, dst_mac, msg);
    }

    /// Sends an ICMPv6 error about `orig` (starting at its IPv6 header) to
    /// its source, within RFC 4443 §2.4 (e) and (f).
    pub(crate) fn icmp6_error(
        &mut self,
        now_ns: u64,
        port: u16,
        orig: &[u8],
        kind: u8,
        code: u8,
        param: u32,
    ) {
        let d = orig;
        let Ok(p) = ipv6::Packet::new_checked(d) else {
            return;
        };
        let (src, dst) = (p.src_addr(), p.dst_addr());
        if src.is_unspecified()
            || src.is_multicast()
            || (dst.is_multicast() && kind != icmpv6::kind::PACKET_TOO_BIG)
        {
            return;
        }
        if let Ok(u) = p.upper_layer() {
            if u.protocol == ip_proto::ICMPV6 {
                // Never an error about an error (types < 128).
                if d.get(u.offset).is_none_or(|t| *t < 128) {
                    return;
                }
            }
        }
        let Some(our) = self.ports.get(usize::from(port)).map(|pc| pc.v6_for(src)) else {
            return;
        };
        if !self.icmp_bucket.allow(now_ns) {
            return self.stats.event(Event::IcmpRateLimited);
        }
        let quote = &d[..d.len().min(ICMP6_QUOTE_MAX)];
        let msg = match kind {
            icmpv6::kind::TIME_EXCEEDED => icmpv6::Repr::TimeExceeded { code, data: quote },
            icmpv6::kind::PACKET_TOO_BIG => icmpv6::Repr::PacketTooBig {
                mtu: param,
                data: quote,
            },
            _ => icmpv6::Repr::DestUnreachable { code, data: quote },
        };
        let iph = ipv6::Repr {
            src: our,
            dst: src,
            next_header: ip_proto::ICMPV6,
            payload_len: msg.buffer_len(),
            hop_limit: 64,
            traffic_class: 0xc0,
            flow_label: 0,
        };
        let Some(mut buf) = self.pool.alloc() else {
            return self.stats.dropped(Drop::NoMbuf);
        };
        let Some(out) = buf.append(ipv6::HEADER_LEN + msg.buffer_len()) else {
            return self.stats.dropped(Drop::NoMbuf);
        };
        iph.emit(&mut out[..ipv6::HEADER_LEN]);
        msg.emit(our, src, &mut out[ipv6::HEADER_LEN..]);
        self.stats.event(Event::IcmpErrorV6);
        self.route_local(now_ns, port, IpAddr::V6(src), buf);
    }
}
