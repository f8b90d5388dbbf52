//! Builds the IP packets the conversion point sends, straight into packet
//! buffers from the pool.

use nf_core::chunk::{Bytes, Chunk};
use nf_core::wire::{ip_proto, ipv4, ipv6};
use nf_core::PacketBuf;
use nf_tcp::Segment;
use std::net::IpAddr;

/// Writes `seg` from `src` to `dst` as an IPv4/IPv6 packet into `buf`
/// (which starts empty). False when it does not fit or the families differ.
pub fn tcp_packet<B: PacketBuf>(
    buf: &mut B,
    src: IpAddr,
    dst: IpAddr,
    seg: &Segment<Bytes>,
) -> bool {
    let joined;
    let mut parts = seg.payload.parts();
    let payload: &[u8] = match (parts.next(), parts.next()) {
        (None, _) => &[],
        (Some(one), None) => one.as_slice(),
        _ => {
            joined = seg.payload.to_vec();
            &joined
        }
    };
    let r = nf_tcp::wirefmt::repr(seg, payload);
    let tl = r.buffer_len();
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let Some(out) = buf.append(ipv4::HEADER_LEN + tl) else {
                return false;
            };
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
            r.emit(src, dst, &mut out[ipv4::HEADER_LEN..]);
            true
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let Some(out) = buf.append(ipv6::HEADER_LEN + tl) else {
                return false;
            };
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
            r.emit(src, dst, &mut out[ipv6::HEADER_LEN..]);
            true
        }
        _ => false,
    }
}
