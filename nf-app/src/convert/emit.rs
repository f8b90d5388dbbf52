//! Builds the IP packets the conversion point sends, straight into packet
//! buffers from the pool.

use nf_core::chunk::Chunk;
use nf_core::wire::{checksum, ip_proto, ipv4, ipv6};
use nf_core::PacketBuf;
use nf_tcp::Segment;
use std::net::IpAddr;

/// Writes `seg` from `src` to `dst` as an IPv4/IPv6 packet into `buf`
/// (which starts empty): the headers into `buf`, the payload chained
/// behind them by reference ([`PacketBuf::chain`]), or copied behind them
/// when `chain` is false (ports that cannot send chains: one copy is
/// cheaper than chaining and linearizing). Returns the payload bytes
/// copied (0 where every chunk was chained by reference); `None` when it
/// does not fit, no segment could be had, or the families differ.
/// `offload`: the egress port's NIC computes the TCP checksum (its link
/// header, still to come, is that many bytes); the payload is then not
/// summed here.
pub fn tcp_packet<B: PacketBuf>(
    buf: &mut B,
    src: IpAddr,
    dst: IpAddr,
    seg: &Segment<B::Chunk>,
    chain: bool,
    offload: Option<usize>,
) -> Option<usize> {
    let r = nf_tcp::wirefmt::repr(seg, &[]);
    let len = seg.payload.len();
    // the payload's sum, unless the NIC computes the checksum
    let sum = offload
        .is_none()
        .then(|| checksum::sum_parts(seg.payload.parts().map(Chunk::as_slice)));
    let hl = r.header_len();
    let tl = hl + len;
    let l3 = match (src, dst) {
        (IpAddr::V4(_), IpAddr::V4(_)) => ipv4::HEADER_LEN,
        (IpAddr::V6(_), IpAddr::V6(_)) => ipv6::HEADER_LEN,
        _ => return None,
    };
    let out = buf.append(l3 + hl)?;
    let (ip, tcp) = out.split_at_mut(l3);
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => ipv4::Repr {
            src: s,
            dst: d,
            protocol: ip_proto::TCP,
            payload_len: tl,
            ttl: 64,
            dscp_ecn: 0,
            ident: 0,
            dont_frag: true,
        }
        .emit(&mut ip[..ipv4::HEADER_LEN]),
        (IpAddr::V6(s), IpAddr::V6(d)) => ipv6::Repr {
            src: s,
            dst: d,
            next_header: ip_proto::TCP,
            payload_len: tl,
            hop_limit: 64,
            traffic_class: 0,
            flow_label: 0,
        }
        .emit(&mut ip[..ipv6::HEADER_LEN]),
        _ => return None,
    }
    match sum {
        Some(s) => r.emit_header(src, dst, len, s, tcp),
        None => r.emit_header_for_offload(src, dst, len, tcp),
    }
    if let Some(l2) = offload {
        buf.offload_tcp_checksum(l2, l3, src.is_ipv6());
    }
    if !chain {
        let out = buf.append(len)?;
        let mut at = 0;
        for c in seg.payload.parts() {
            let s = c.as_slice();
            out.get_mut(at..at + s.len())?.copy_from_slice(s);
            at += s.len();
        }
        return Some(len);
    }
    let mut copied = 0;
    for c in seg.payload.parts() {
        copied += buf.chain(c)?;
    }
    Some(copied)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nf_core::chunk::Bytes;
    use nf_core::wire::{checksum, tcp};
    use nf_core::VecBuf;
    use nf_tcp::{Gather, Header, Seq};
    use std::net::Ipv4Addr;

    fn segment() -> Segment<Bytes> {
        Segment {
            hdr: Header {
                src_port: 5201,
                dst_port: 40000,
                seq: Seq(7),
                ack: Seq(9),
                flags: tcp::flags::ACK | tcp::flags::PSH,
                window: 1000,
                ..Default::default()
            },
            payload: Gather::one(Bytes::from(&b"an odd-length payload"[..])),
        }
    }

    #[test]
    fn with_checksum_offload_the_field_holds_the_pseudo_header_sum_for_the_nic() {
        let (src, dst) = (
            IpAddr::V4(Ipv4Addr::new(198, 51, 100, 2)),
            IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)),
        );
        let seg = segment();
        // software: a valid checksum, nothing left to the NIC
        let mut sw = VecBuf::new();
        tcp_packet(&mut sw, src, dst, &seg, true, None).expect("built");
        assert_eq!(sw.tx_tcp_checksum(), None);
        let wire = sw.frame();
        let ok = |ip: &[u8]| {
            tcp::Packet::new_checked(&ip[20..]).is_ok_and(|p| p.verify_checksum(src, dst))
        };
        assert!(ok(&wire));
        // offload: the pseudo-header's sum (RTE_MBUF_F_TX_TCP_CKSUM's
        // contract), the TCP header's offset behind a 14-byte link header
        let mut hw = VecBuf::new();
        tcp_packet(&mut hw, src, dst, &seg, true, Some(14)).expect("built");
        assert_eq!(hw.tx_tcp_checksum(), Some(14 + 20));
        let tcp_len = wire.len() - 20;
        let field = u16::from_be_bytes([hw.data()[36], hw.data()[37]]);
        let pseudo = checksum::pseudo_v4(
            Ipv4Addr::new(198, 51, 100, 2),
            Ipv4Addr::new(192, 0, 2, 2),
            6,
            tcp_len as u32,
        );
        assert_eq!(field, checksum::fold(pseudo));
        // the NIC's sum over it gives what software writes
        assert!(hw.prepend(14).is_some());
        let wire_hw = hw.frame();
        assert!(ok(&wire_hw[14..]));
        assert_eq!(&wire_hw[14..], &wire[..]);
    }
}
