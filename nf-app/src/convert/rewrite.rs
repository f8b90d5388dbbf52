//! Packet-level work on packets the conversion point does not terminate:
//! a cheap peek at a TCP packet's 4-tuple and flags, and the NAT rewrite
//! (of withdrawn connections, and of routed UDP, ICMP queries and TCP,
//! [`super::routed`]) with RFC 1624 incremental checksum updates (the
//! payload is neither copied nor read).

use nf_core::wire::checksum::{self, update16};
use nf_core::wire::{ip_proto, tcp};
use std::net::IpAddr;

/// What the classifier needs of a TCP packet (IP header on).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peek {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// Offset of the TCP header.
    pub l4: usize,
    pub sport: u16,
    pub dport: u16,
    pub flags: u16,
}

impl Peek {
    /// A SYN opening a connection: SYN set, ACK and RST clear.
    pub fn is_bare_syn(&self) -> bool {
        self.flags & (tcp::flags::SYN | tcp::flags::ACK | tcp::flags::RST) == tcp::flags::SYN
    }
}

pub(crate) fn be16(d: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*d.get(at)?, *d.get(at + 1)?]))
}

/// The body of the first MPTCP option (RFC 8684 §3) of the TCP header at
/// `ip[p.l4..]`, read with nf-core's option parser (no checksum, nothing
/// else decoded); `None` without one or when the options do not parse.
pub fn mptcp_option<'a>(ip: &'a [u8], p: &Peek) -> Option<&'a [u8]> {
    let t = ip.get(p.l4..)?;
    let h = usize::from(t.get(12)? >> 4) * 4;
    tcp::Options::parse(t.get(20..h)?).ok()?.mptcp
}

/// The addresses of an IPv4/IPv6 TCP packet (or of the start of one, as
/// an ICMP error quotes it) whose TCP header directly follows the IP
/// header, and that header's offset, when at least `l4_len` bytes of it
/// are there.
pub(crate) fn addresses(ip: &[u8], l4_len: usize) -> Option<(IpAddr, IpAddr, usize)> {
    match transport(ip, l4_len)? {
        (src, dst, l4, ip_proto::TCP) => Some((src, dst, l4)),
        _ => None,
    }
}

/// The addresses, transport header offset and protocol of an IPv4/IPv6
/// packet (or of the start of one) whose transport header directly
/// follows the IP header, when at least `l4_len` bytes of it are there.
fn transport(ip: &[u8], l4_len: usize) -> Option<(IpAddr, IpAddr, usize, u8)> {
    match ip.first()? >> 4 {
        4 => {
            let hl = usize::from(ip[0] & 0x0f) * 4;
            if hl < 20 || ip.len() < hl + l4_len {
                return None;
            }
            let a: [u8; 4] = ip.get(12..16)?.try_into().ok()?;
            let b: [u8; 4] = ip.get(16..20)?.try_into().ok()?;
            Some((IpAddr::from(a), IpAddr::from(b), hl, *ip.get(9)?))
        }
        6 => {
            if ip.len() < 40 + l4_len {
                return None;
            }
            let a: [u8; 16] = ip.get(8..24)?.try_into().ok()?;
            let b: [u8; 16] = ip.get(24..40)?.try_into().ok()?;
            Some((IpAddr::from(a), IpAddr::from(b), 40, *ip.get(6)?))
        }
        _ => None,
    }
}

/// Where the transport header of protocol `proto` (of an IPv4 packet when
/// not `v6`) keeps `end`'s port (an ICMP query its identifier, the same
/// for both ends) and its checksum, and whether that checksum covers the
/// addresses (the pseudo-header); `None` for a protocol NAT cannot
/// translate.
fn l4_fields(proto: u8, v6: bool, end: End) -> Option<(usize, usize, bool)> {
    let port = if end == End::Src { 0 } else { 2 };
    match proto {
        ip_proto::TCP => Some((port, 16, true)),
        ip_proto::UDP => Some((port, 6, true)),
        ip_proto::ICMP if !v6 => Some((4, 2, false)),
        _ => None,
    }
}

/// The 4-tuple and flags of an unfragmented IPv4/IPv6 TCP packet whose
/// TCP header directly follows the IP header; `None` otherwise.
pub fn peek(ip: &[u8]) -> Option<Peek> {
    let (src, dst, l4) = addresses(ip, 20)?;
    if ip.first()? >> 4 == 4 && be16(ip, 6)? & 0x3fff != 0 {
        return None;
    }
    Some(Peek {
        src,
        dst,
        l4,
        sport: be16(ip, l4)?,
        dport: be16(ip, l4 + 2)?,
        flags: be16(ip, l4 + 12)? & 0x01ff,
    })
}

/// Which address (and port) of a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    Src,
    Dst,
}

/// Where `end`'s address lies in an IPv4 (`v6` false) or IPv6 header.
fn addr_at(end: End, v6: bool) -> std::ops::Range<usize> {
    match (end, v6) {
        (End::Src, false) => 12..16,
        (End::Dst, false) => 16..20,
        (End::Src, true) => 8..24,
        (End::Dst, true) => 24..40,
    }
}

/// An address's bytes (the first 4 or 16 of the array) and how many.
fn octets(a: IpAddr) -> ([u8; 16], usize) {
    let mut b = [0u8; 16];
    match a {
        IpAddr::V4(a) => {
            b[..4].copy_from_slice(&a.octets());
            (b, 4)
        }
        IpAddr::V6(a) => (a.octets(), 16),
    }
}

/// The ones'-complement sum of `b` (RFC 1071), as a 16-bit word: what a
/// checksum over `b` adds, for RFC 1624 updates of a changed stretch.
fn sum16(b: &[u8]) -> u16 {
    checksum::fold(checksum::sum(b))
}

/// Rewrites the source (`src = true`) or destination address and port of
/// a packet described by `p`, patching the IPv4 header checksum and the
/// TCP checksum incrementally (RFC 1624; RFC 3022 §4.2). The address
/// family cannot change. Returns false (and changes nothing) otherwise.
pub fn rewrite(ip: &mut [u8], p: &Peek, src: bool, addr: IpAddr, port: u16) -> bool {
    let (end, old) = if src {
        (End::Src, (p.src, p.sport))
    } else {
        (End::Dst, (p.dst, p.dport))
    };
    ip.len() >= p.l4 + 20 && translate(ip, p.l4, end, old, (addr, port))
}

/// Sets `end`'s address of the IP header `ip` to `a` (of the same
/// family), patching an IPv4 header checksum incrementally (RFC 1624);
/// the old and new addresses' sums, for a checksum whose pseudo-header
/// covers them. `None`, and nothing changed, otherwise.
pub(crate) fn set_address(ip: &mut [u8], end: End, a: IpAddr) -> Option<(u16, u16)> {
    let v6 = match (ip.first()? >> 4, a) {
        (4, IpAddr::V4(_)) => false,
        (6, IpAddr::V6(_)) => true,
        _ => return None,
    };
    let at = addr_at(end, v6);
    if ip.len() < at.end {
        return None;
    }
    let (buf, n) = octets(a);
    let (old, new) = (sum16(&ip[at.clone()]), sum16(&buf[..n]));
    ip[at].copy_from_slice(&buf[..n]);
    if !v6 {
        if let Some(hc) = be16(ip, 10) {
            ip[10..12].copy_from_slice(&update16(hc, old, new).to_be_bytes());
        }
    }
    Some((old, new))
}

/// NAT of one end of the packet `ip` (or of the start of one, as an ICMP
/// error quotes it) whose TCP, UDP or ICMP query header is at `l4`: `old`,
/// that end's address and port (an ICMP query's identifier) as the packet
/// has them, becomes `new`. The IPv4 header checksum is patched, and the
/// transport checksum where `ip` holds it (a quote may end before it),
/// incrementally (RFC 1624, RFC 3022 §4.2); a UDP checksum of 0 (none,
/// RFC 768) stays 0. False, and nothing changed, when the families differ,
/// the protocol is another or the port is not there.
pub(crate) fn translate(
    ip: &mut [u8],
    l4: usize,
    end: End,
    old: (IpAddr, u16),
    new: (IpAddr, u16),
) -> bool {
    let Some((_, _, _, proto)) = transport(ip, 0) else {
        return false;
    };
    let v6 = old.0.is_ipv6();
    let Some((port_off, ck_off, pseudo)) = l4_fields(proto, v6, end) else {
        return false;
    };
    let port_at = l4 + port_off;
    if ip.len() < port_at + 2 || addr_at(end, v6).end > l4 || old.0.is_ipv6() != new.0.is_ipv6() {
        return false;
    }
    let Some((a_old, a_new)) = set_address(ip, end, new.0) else {
        return false;
    };
    ip[port_at..port_at + 2].copy_from_slice(&new.1.to_be_bytes());
    let ck_at = l4 + ck_off;
    if let Some(ck) = be16(ip, ck_at) {
        if proto == ip_proto::UDP && ck == 0 {
            return true;
        }
        let mut ck = update16(ck, old.1, new.1);
        if pseudo {
            ck = update16(ck, a_old, a_new);
        }
        if proto == ip_proto::UDP && ck == 0 {
            ck = 0xffff;
        }
        ip[ck_at..ck_at + 2].copy_from_slice(&ck.to_be_bytes());
    }
    true
}

/// NAT of an ICMP error (from its IP header on: ICMPv4, or ICMPv6 right
/// after the IPv6 header) about a TCP, UDP or ICMP query packet of a
/// translated connection or binding (RFC 5508 §4.2, RFC 3022 §4.3), in place: the outer header's `outer.0`
/// address becomes `outer.1`, and the quoted packet's `inner.0` address
/// and port become `inner.1` and `inner.2` ([`translate`] on the quote).
/// The ICMP checksum covers the quote (and, for ICMPv6, the outer
/// addresses through its pseudo-header); it and the outer IPv4 header
/// checksum are updated incrementally (RFC 1624) by the sums of what
/// changed: an error that arrived corrupted stays so, and a quoted
/// transport checksum the quote cuts in half stays as it is. False, and nothing
/// changed, when the packet is not such an error or the quote lacks the
/// ports.
pub fn icmp_error(ip: &mut [u8], outer: (End, IpAddr), inner: (End, IpAddr, u16)) -> bool {
    let (v6, hl) = match ip.first().map(|b| b >> 4) {
        Some(4) => (false, usize::from(ip[0] & 0x0f) * 4),
        Some(6) if ip.get(6) == Some(&ip_proto::ICMPV6) => (true, 40),
        _ => return false,
    };
    let (q, ck_at) = (hl + 8, hl + 2);
    let Some((src, dst, l4, proto)) = ip.get(q..).and_then(|quote| transport(quote, 4)) else {
        return false;
    };
    let Some((port_off, ck_off, _)) = l4_fields(proto, v6, inner.0) else {
        return false;
    };
    let old_addr = if inner.0 == End::Src { src } else { dst };
    let (Some(old_port), Some(ck)) = (be16(ip, q + l4 + port_off), be16(ip, ck_at)) else {
        return false;
    };
    if hl < 20 || src.is_ipv6() != v6 || outer.1.is_ipv6() != v6 {
        return false;
    }
    // the quote as far as the ICMP checksum sees it change
    let end = (q + l4 + port_off.max(ck_off) + 2).min(ip.len());
    let before = sum16(&ip[q..end]);
    if !translate(
        &mut ip[q..],
        l4,
        inner.0,
        (old_addr, old_port),
        (inner.1, inner.2),
    ) {
        return false;
    }
    let mut ck = update16(ck, before, sum16(&ip[q..end]));
    let Some((o_old, o_new)) = set_address(ip, outer.0, outer.1) else {
        return false;
    };
    if v6 {
        // the ICMPv6 checksum's pseudo-header covers the outer addresses
        ck = update16(ck, o_old, o_new);
    }
    ip[ck_at..ck_at + 2].copy_from_slice(&ck.to_be_bytes());
    true
}

/// Lowers the MSS option of a SYN to `limit` in place (RFC 879 / RFC 6691:
/// what a gateway does when the next link's MTU is smaller), with an
/// incremental checksum update. Returns true when it changed anything.
pub fn clamp_mss(ip: &mut [u8], p: &Peek, limit: u16) -> bool {
    let Some(doff) = ip.get(p.l4 + 12).map(|b| usize::from(b >> 4) * 4) else {
        return false;
    };
    let (start, end) = (p.l4 + 20, p.l4 + doff);
    if doff < 20 || end > ip.len() {
        return false;
    }
    let mut i = start;
    while i < end {
        match ip[i] {
            0 => return false,
            1 => i += 1,
            kind => {
                let Some(&len) = ip.get(i + 1) else {
                    return false;
                };
                let len = usize::from(len);
                if len < 2 || i + len > end {
                    return false;
                }
                if kind == 2 && len == 4 {
                    let old = u16::from_be_bytes([ip[i + 2], ip[i + 3]]);
                    if old <= limit {
                        return false;
                    }
                    ip[i + 2..i + 4].copy_from_slice(&limit.to_be_bytes());
                    let at = p.l4 + 16;
                    let ck = u16::from_be_bytes([ip[at], ip[at + 1]]);
                    let ck = update16(ck, old, limit);
                    ip[at..at + 2].copy_from_slice(&ck.to_be_bytes());
                    return true;
                }
                i += len;
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use nf_core::wire::ipv4;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn packet() -> Vec<u8> {
        let payload = b"hello, server";
        let r = tcp::Repr {
            src_port: 40000,
            dst_port: 5201,
            seq: 1,
            ack: 2,
            flags: tcp::flags::ACK | tcp::flags::PSH,
            window: 100,
            urgent: 0,
            options: Default::default(),
            payload,
        };
        let (s, d) = (
            "100.64.0.2".parse().unwrap(),
            "198.51.100.2".parse().unwrap(),
        );
        let mut t = vec![0u8; r.buffer_len()];
        r.emit(IpAddr::V4(s), IpAddr::V4(d), &mut t);
        crate::frames::ipv4_packet(s, d, ip_proto::TCP, &t)
    }

    /// Where `a` and `b` (of one length) differ.
    fn differs(a: &[u8], b: &[u8]) -> Vec<usize> {
        assert_eq!(a.len(), b.len());
        (0..a.len()).filter(|&i| a[i] != b[i]).collect()
    }

    /// "Fragmentation needed" from `router` to `to`, quoting `len` bytes
    /// of `quoted`.
    fn frag_needed(router: Ipv4Addr, to: Ipv4Addr, quoted: &[u8], len: usize) -> Vec<u8> {
        use nf_core::wire::icmpv4;
        let m = icmpv4::Repr::DestUnreachable {
            code: 4,
            next_hop_mtu: 1400,
            data: &quoted[..len],
        };
        let mut icmp = vec![0u8; m.buffer_len()];
        m.emit(&mut icmp);
        crate::frames::ipv4_packet(router, to, ip_proto::ICMP, &icmp)
    }

    #[test]
    fn an_icmp_error_about_a_natted_packet_reads_as_one_about_the_original() {
        use nf_core::wire::icmpv4;
        // the client's packet, and what hagw sent in its place
        let orig = packet();
        let (client, nat) = (Ipv4Addr::new(100, 64, 0, 2), Ipv4Addr::new(192, 0, 2, 2));
        let mut sent = orig.clone();
        assert!(rewrite(
            &mut sent,
            &peek(&orig).unwrap(),
            true,
            IpAddr::V4(nat),
            61000
        ));
        let router = Ipv4Addr::new(203, 0, 113, 1);
        // every quote from the minimal one (IP header and 8 bytes: no TCP
        // checksum) to the whole packet (RFC 1812 §4.3.2.3)
        for len in 28..=sent.len() {
            let mut e = frag_needed(router, nat, &sent, len);
            assert!(icmp_error(
                &mut e,
                (End::Dst, client.into()),
                (End::Src, client.into(), 40000)
            ));
            // byte for byte the error a router would have sent the client,
            // but where the quote cuts the TCP checksum in half: that half
            // stays (and so does the ICMP checksum, which still covers it)
            let want = frag_needed(router, client, &orig, len);
            let half = if len == 20 + 17 {
                vec![22, 23, 64]
            } else {
                vec![]
            };
            let d = differs(&e, &want);
            assert!(d.iter().all(|i| half.contains(i)), "quote of {len}: {d:?}");
            let p = ipv4::Packet::new_checked(&e[..]).unwrap();
            assert!(p.verify_checksum());
            assert!(icmpv4::Packet::new_checked(&e[20..])
                .unwrap()
                .verify_checksum());
            // and back, as an error from the access about the server's
            // packet is turned toward the server
            assert!(icmp_error(
                &mut e,
                (End::Dst, nat.into()),
                (End::Src, nat.into(), 61000)
            ));
            assert_eq!(e, frag_needed(router, nat, &sent, len));
        }
        // a quote without the ports is left alone
        for len in 0..24 {
            let mut short = frag_needed(router, nat, &sent, len);
            let before = short.clone();
            assert!(!icmp_error(
                &mut short,
                (End::Dst, client.into()),
                (End::Src, client.into(), 1)
            ));
            assert_eq!(short, before);
        }
        assert!(!icmp_error(
            &mut [0x45; 10],
            (End::Dst, client.into()),
            (End::Src, client.into(), 1)
        ));
        assert!(!icmp_error(
            &mut [],
            (End::Dst, client.into()),
            (End::Src, client.into(), 1)
        ));
    }

    /// A Packet Too Big from `router` to `to` quoting `len` bytes of
    /// `quoted` (the IPv6 packet, no link header).
    fn too_big(router: Ipv6Addr, to: Ipv6Addr, quoted: &[u8], len: usize) -> Vec<u8> {
        use nf_core::wire::icmpv6;
        let m = icmpv6::Repr::PacketTooBig {
            mtu: 1280,
            data: &quoted[..len],
        };
        let mac = nf_core::wire::EthernetAddress([2, 0, 0, 0, 0, 1]);
        crate::frames::icmp6(mac, mac, router, to, 64, &m)[14..].to_vec()
    }

    #[test]
    fn an_icmpv6_error_about_a_natted_packet_reads_as_one_about_the_original() {
        use nf_core::wire::icmpv6;
        let (client, nat, server, router): (Ipv6Addr, Ipv6Addr, Ipv6Addr, Ipv6Addr) = (
            "2001:db8:c::2".parse().unwrap(),
            "2001:db8:f::2".parse().unwrap(),
            "2001:db8:5::2".parse().unwrap(),
            "2001:db8:5::fe".parse().unwrap(),
        );
        let r = tcp::Repr {
            src_port: 40000,
            dst_port: 5201,
            seq: 1,
            ack: 2,
            flags: tcp::flags::ACK,
            window: 100,
            urgent: 0,
            options: Default::default(),
            payload: b"hello over IPv6",
        };
        let mut t = vec![0u8; r.buffer_len()];
        r.emit(IpAddr::V6(client), IpAddr::V6(server), &mut t);
        let mut orig = vec![0u8; 40 + t.len()];
        nf_core::wire::ipv6::Repr {
            src: client,
            dst: server,
            next_header: ip_proto::TCP,
            payload_len: t.len(),
            hop_limit: 64,
            traffic_class: 0,
            flow_label: 0,
        }
        .emit(&mut orig[..40]);
        orig[40..].copy_from_slice(&t);
        let mut sent = orig.clone();
        assert!(rewrite(
            &mut sent,
            &peek(&orig).unwrap(),
            true,
            IpAddr::V6(nat),
            61000
        ));
        // the NAT of an IPv6 packet keeps its TCP checksum valid
        let t = tcp::Packet::new_checked(&sent[40..]).unwrap();
        assert!(t.verify_checksum(IpAddr::V6(nat), IpAddr::V6(server)));
        // every quote from the minimal one that holds the ports to the
        // whole packet
        for len in 44..=sent.len() {
            let mut e = too_big(router, nat, &sent, len);
            assert!(icmp_error(
                &mut e,
                (End::Dst, client.into()),
                (End::Src, client.into(), 40000)
            ));
            let want = too_big(router, client, &orig, len);
            let half = if len == 40 + 17 {
                vec![42, 43, 104]
            } else {
                vec![]
            };
            let d = differs(&e, &want);
            assert!(d.iter().all(|i| half.contains(i)), "quote of {len}: {d:?}");
            let p = icmpv6::Packet::new_checked(&e[40..]).unwrap();
            assert!(icmpv6::Repr::parse(&p, router, client).is_ok(), "checksum");
            assert!(icmp_error(
                &mut e,
                (End::Dst, nat.into()),
                (End::Src, nat.into(), 61000)
            ));
            assert_eq!(e, too_big(router, nat, &sent, len));
        }
        // too short, or about a protocol NAT does not translate: left alone
        for len in 0..44 {
            let mut short = too_big(router, nat, &sent, len);
            let before = short.clone();
            assert!(!icmp_error(
                &mut short,
                (End::Dst, client.into()),
                (End::Src, client.into(), 1)
            ));
            assert_eq!(short, before);
        }
        // (SCTP; UDP and ICMP queries are translated since the NAT of
        // routed traffic shares this rewriter)
        let mut sctp = too_big(router, nat, &sent, 48);
        sctp[48 + 6] = 132;
        let before = sctp.clone();
        assert!(!icmp_error(
            &mut sctp,
            (End::Dst, client.into()),
            (End::Src, client.into(), 1)
        ));
        assert_eq!(sctp, before);
        assert!(!icmp_error(
            &mut [],
            (End::Dst, client.into()),
            (End::Src, client.into(), 1)
        ));
    }

    #[test]
    fn only_a_syn_without_ack_or_rst_is_bare() {
        let p = peek(&packet()).unwrap();
        let with = |flags| Peek { flags, ..p };
        use tcp::flags::{ACK, FIN, RST, SYN};
        assert!(with(SYN).is_bare_syn());
        assert!(with(SYN | FIN).is_bare_syn());
        assert!(!with(SYN | ACK).is_bare_syn());
        assert!(!with(SYN | RST).is_bare_syn());
        assert!(!with(ACK).is_bare_syn());
        assert!(!p.is_bare_syn());
    }

    #[test]
    fn source_nat_keeps_both_checksums_valid() {
        let mut b = packet();
        let p = peek(&b).unwrap();
        assert_eq!((p.sport, p.dport, p.l4), (40000, 5201, 20));
        let nat: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(rewrite(&mut b, &p, true, nat, 1234));
        let ip = ipv4::Packet::new_checked(&b[..]).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!(IpAddr::V4(ip.src_addr()), nat);
        let t = tcp::Packet::new_checked(ip.payload()).unwrap();
        assert_eq!(t.src_port(), 1234);
        assert!(t.verify_checksum(nat, p.dst));
        // and back: destination NAT on the reply direction
        let q = peek(&b).unwrap();
        let back: IpAddr = "100.64.0.2".parse().unwrap();
        assert!(rewrite(&mut b, &q, false, back, 9));
        let ip = ipv4::Packet::new_checked(&b[..]).unwrap();
        assert!(ip.verify_checksum());
        let t = tcp::Packet::new_checked(ip.payload()).unwrap();
        assert!(t.verify_checksum(nat, back));
        // families never mix
        let q = peek(&b).unwrap();
        assert!(!rewrite(&mut b, &q, true, "::1".parse().unwrap(), 1));
    }

    #[test]
    fn mss_clamp_lowers_only_and_keeps_the_checksum() {
        let opts = tcp::Options {
            mss: Some(1460),
            sack_permitted: true,
            ..Default::default()
        };
        let r = tcp::Repr {
            src_port: 1,
            dst_port: 2,
            seq: 1,
            ack: 0,
            flags: tcp::flags::SYN,
            window: 100,
            urgent: 0,
            options: opts,
            payload: &[],
        };
        let (s, d): (IpAddr, IpAddr) = (
            "192.0.2.2".parse().unwrap(),
            "198.51.100.2".parse().unwrap(),
        );
        let mut b = vec![0u8; 20 + r.buffer_len()];
        ipv4::Repr {
            src: "192.0.2.2".parse().unwrap(),
            dst: "198.51.100.2".parse().unwrap(),
            protocol: ip_proto::TCP,
            payload_len: r.buffer_len(),
            ttl: 64,
            dscp_ecn: 0,
            ident: 0,
            dont_frag: true,
        }
        .emit(&mut b[..20]);
        r.emit(s, d, &mut b[20..]);
        let p = peek(&b).unwrap();
        assert!(!clamp_mss(&mut b, &p, 1500), "never raised");
        assert!(clamp_mss(&mut b, &p, 1360));
        let t = tcp::Packet::new_checked(&b[20..]).unwrap();
        assert!(t.verify_checksum(s, d));
        let o = tcp::Options::parse(t.options()).unwrap();
        assert_eq!(o.mss, Some(1360));
        assert!(!clamp_mss(&mut b[..30], &p, 1000), "truncated: untouched");
    }

    #[test]
    fn the_mptcp_option_is_found_without_parsing_the_segment() {
        let plain = packet();
        let p = peek(&plain).unwrap();
        assert!(mptcp_option(&plain, &p).is_none());
        // timestamps (NOP, NOP, kind 8) then a DSS (kind 30)
        let (s, d) = (
            "100.64.0.2".parse().unwrap(),
            "198.51.100.2".parse().unwrap(),
        );
        let r = tcp::Repr {
            src_port: 40000,
            dst_port: 5201,
            seq: 1,
            ack: 2,
            flags: tcp::flags::ACK,
            window: 100,
            urgent: 0,
            options: tcp::Options {
                timestamps: Some((1, 2)),
                mptcp: Some(&[0x20, 0x01, 0, 0, 0, 1]),
                ..Default::default()
            },
            payload: &[],
        };
        let mut t = vec![0u8; r.buffer_len()];
        r.emit(IpAddr::V4(s), IpAddr::V4(d), &mut t);
        let ip = crate::frames::ipv4_packet(s, d, ip_proto::TCP, &t);
        let p = peek(&ip).unwrap();
        assert_eq!(mptcp_option(&ip, &p), Some(&[0x20, 0x01, 0, 0, 0, 1][..]));
        // an option whose length runs past the header: not found, no panic
        let mut bad = ip.clone();
        let opt = 20 + 20;
        bad[opt] = 5;
        bad[opt + 1] = 200;
        assert!(mptcp_option(&bad, &p).is_none());
    }

    #[test]
    fn peek_refuses_fragments_and_short_packets() {
        let mut b = packet();
        b[6] |= 0x20; // more fragments
        assert!(peek(&b).is_none());
        assert!(peek(&packet()[..30]).is_none());
        assert!(peek(&[]).is_none());
    }
}
