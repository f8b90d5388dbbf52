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
pub fn tcp_packet<B: PacketBuf>(
    buf: &mut B,
    src: IpAddr,
    dst: IpAddr,
    seg: &Segment<B::Chunk>,
    chain: bool,
) -> Option<usize> {
    let r = nf_tcp::wirefmt::repr(seg, &[]);
    let len = seg.payload.len();
    let sum = checksum::sum_parts(seg.payload.parts().map(Chunk::as_slice));
    let hl = r.header_len();
    let tl = hl + len;
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let out = buf.append(ipv4::HEADER_LEN + hl)?;
            ipv4::Repr {
                src: s,
                dst: d,
                protocol: ip_proto::TCP,
                payload_len: tl,
                ttl: 64,
                dscp_ecn: 0,
                ident: 0,
                dont_frag: true,
            }
            .emit(&mut out[..ipv4::HEADER_LEN]);
            r.emit_header(src, dst, len, sum, &mut out[ipv4::HEADER_LEN..]);
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let out = buf.append(ipv6::HEADER_LEN + hl)?;
            ipv6::Repr {
                src: s,
                dst: d,
                next_header: ip_proto::TCP,
                payload_len: tl,
                hop_limit: 64,
                traffic_class: 0,
                flow_label: 0,
            }
            .emit(&mut out[..ipv6::HEADER_LEN]);
            r.emit_header(src, dst, len, sum, &mut out[ipv6::HEADER_LEN..]);
        }
        _ => return None,
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
