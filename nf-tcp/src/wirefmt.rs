//! Conversion between engine segments and wire bytes (nf-core's TCP codec).

use crate::segment::{Header, Incoming, Segment};
use nf_core::chunk::Chunk;
use nf_core::wire::tcp as wire;
use nf_core::wire::Error;
use std::net::IpAddr;

/// The wire representation of a segment's header with `payload`.
pub fn repr<'a, C: Chunk>(seg: &'a Segment<C>, payload: &'a [u8]) -> wire::Repr<'a> {
    let h = &seg.hdr;
    wire::Repr {
        src_port: h.src_port,
        dst_port: h.dst_port,
        seq: h.seq.0,
        ack: h.ack.0,
        flags: h.flags,
        window: h.window,
        urgent: 0,
        options: h.opts.to_wire(),
        payload,
    }
}

/// Serialises a segment (header, options, payload) with its checksum.
pub fn emit<C: Chunk>(seg: &Segment<C>, src: IpAddr, dst: IpAddr) -> Vec<u8> {
    let payload = seg.payload.to_vec();
    let r = repr(seg, &payload);
    let mut b = vec![0u8; r.buffer_len()];
    r.emit(src, dst, &mut b);
    b
}

/// Parses wire bytes into an engine segment; the payload becomes what `mk`
/// makes of it (a chunk sharing the packet buffer in production, or the
/// payload's place in the buffer).
pub fn parse<C>(
    bytes: &[u8],
    addrs: Option<(IpAddr, IpAddr)>,
    mk: impl FnOnce(&[u8]) -> C,
) -> Result<Incoming<C>, Error> {
    let p = wire::Packet::new_checked(bytes)?;
    let r = wire::Repr::parse(&p, addrs)?;
    Ok(Incoming {
        hdr: Header::from_wire(&r),
        payload: mk(r.payload),
    })
}
