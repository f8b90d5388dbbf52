//! IPv6 headers (RFC 8200) and a bounded, total walk of extension headers.

use super::{be16, ip_proto, put16, Error, Result};
use core::net::Ipv6Addr;

/// Fixed header length.
pub const HEADER_LEN: usize = 40;
/// At most this many extension headers are walked before the packet is
/// refused (RFC 8200 §4.1 recommends order, RFC 7045 allows limits).
pub const MAX_EXT_HEADERS: usize = 8;

/// A view of an IPv6 packet.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    #[inline]
    pub fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }
    /// Validates version and payload length against the buffer.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if b[0] >> 4 != 6 {
            return Err(Error::BadVersion);
        }
        // Jumbograms (payload length 0 + hop-by-hop option) are not supported.
        if HEADER_LEN + usize::from(be16(b, 4)) > b.len() {
            return Err(Error::BadLength);
        }
        Ok(Packet { buffer })
    }
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }
    #[inline]
    pub fn traffic_class(&self) -> u8 {
        let b = self.buffer.as_ref();
        (b[0] << 4) | (b[1] >> 4)
    }
    #[inline]
    pub fn flow_label(&self) -> u32 {
        let b = self.buffer.as_ref();
        (u32::from(b[1] & 0x0f) << 16) | (u32::from(b[2]) << 8) | u32::from(b[3])
    }
    #[inline]
    pub fn payload_len(&self) -> u16 {
        be16(self.buffer.as_ref(), 4)
    }
    #[inline]
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[6]
    }
    #[inline]
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[7]
    }
    #[inline]
    pub fn src_addr(&self) -> Ipv6Addr {
        addr_at(self.buffer.as_ref(), 8)
    }
    #[inline]
    pub fn dst_addr(&self) -> Ipv6Addr {
        addr_at(self.buffer.as_ref(), 24)
    }
    /// The payload (extension headers included), up to `payload_len`.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..HEADER_LEN + usize::from(self.payload_len())]
    }
    /// Walks the extension headers (RFC 8200 §4) and returns the upper-layer
    /// protocol with its offset from the start of the IPv6 header.
    #[inline]
    pub fn upper_layer(&self) -> Result<UpperLayer> {
        walk_ext_headers(self.next_header(), self.payload()).map(|mut u| {
            u.offset += HEADER_LEN;
            u
        })
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    #[inline]
    pub fn set_hop_limit(&mut self, v: u8) {
        self.buffer.as_mut()[7] = v
    }
    #[inline]
    pub fn set_src_addr(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[8..24].copy_from_slice(&a.octets())
    }
    #[inline]
    pub fn set_dst_addr(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[24..40].copy_from_slice(&a.octets())
    }
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let l = usize::from(self.payload_len());
        &mut self.buffer.as_mut()[HEADER_LEN..HEADER_LEN + l]
    }
}

#[inline]
fn addr_at(b: &[u8], at: usize) -> Ipv6Addr {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[at..at + 16]);
    Ipv6Addr::from(a)
}

/// The result of an extension-header walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UpperLayer {
    /// Upper-layer protocol number (or `IPV6_NONXT`).
    pub protocol: u8,
    /// Offset of the upper-layer header.
    pub offset: usize,
    /// True when a fragment header with a non-zero offset was seen: the
    /// upper-layer header is not in this packet.
    pub non_first_fragment: bool,
}

/// Walks extension headers starting at `payload` with first header `nh`.
/// Every length is checked against the buffer; more than
/// [`MAX_EXT_HEADERS`] headers is an error.
#[inline]
pub fn walk_ext_headers(mut nh: u8, payload: &[u8]) -> Result<UpperLayer> {
    let mut off = 0usize;
    let mut non_first_fragment = false;
    for _ in 0..=MAX_EXT_HEADERS {
        match nh {
            ip_proto::HOPOPTS | ip_proto::IPV6_ROUTE | ip_proto::IPV6_OPTS => {
                // RFC 8200 §4.3-4.6: Next Header, Hdr Ext Len in 8-octet units
                // not counting the first 8.
                let h = payload.get(off..off + 2).ok_or(Error::Truncated)?;
                let len = (usize::from(h[1]) + 1) * 8;
                if off + len > payload.len() {
                    return Err(Error::BadOption);
                }
                nh = h[0];
                off += len;
            }
            ip_proto::IPV6_FRAG => {
                // RFC 8200 §4.5: fixed 8 bytes.
                let h = payload.get(off..off + 8).ok_or(Error::Truncated)?;
                if be16(h, 2) & 0xfff8 != 0 {
                    non_first_fragment = true;
                }
                nh = h[0];
                off += 8;
            }
            _ => {
                return Ok(UpperLayer {
                    protocol: nh,
                    offset: off,
                    non_first_fragment,
                })
            }
        }
    }
    Err(Error::TooManyExtHeaders)
}

/// A validated IPv6 header (no extension headers emitted).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Repr {
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    pub next_header: u8,
    pub payload_len: usize,
    pub hop_limit: u8,
    pub traffic_class: u8,
    pub flow_label: u32,
}

impl Repr {
    #[inline]
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Repr> {
        Ok(Repr {
            src: p.src_addr(),
            dst: p.dst_addr(),
            next_header: p.next_header(),
            payload_len: usize::from(p.payload_len()),
            hop_limit: p.hop_limit(),
            traffic_class: p.traffic_class(),
            flow_label: p.flow_label(),
        })
    }
    #[inline]
    pub fn header_len(&self) -> usize {
        HEADER_LEN
    }
    #[inline]
    pub fn emit(&self, b: &mut [u8]) {
        b[0] = 0x60 | (self.traffic_class >> 4);
        b[1] = (self.traffic_class << 4) | ((self.flow_label >> 16) as u8 & 0x0f);
        b[2] = (self.flow_label >> 8) as u8;
        b[3] = self.flow_label as u8;
        put16(b, 4, self.payload_len as u16);
        b[6] = self.next_header;
        b[7] = self.hop_limit;
        b[8..24].copy_from_slice(&self.src.octets());
        b[24..40].copy_from_slice(&self.dst.octets());
    }
}

/// The solicited-node multicast address of `a` (RFC 4291 §2.7.1).
#[inline]
pub fn solicited_node(a: Ipv6Addr) -> Ipv6Addr {
    let o = a.octets();
    Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(o[13]),
        u16::from_be_bytes([o[14], o[15]]),
    )
}

/// An IPv6 prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cidr {
    pub addr: Ipv6Addr,
    pub len: u8,
}

impl Cidr {
    #[inline]
    pub fn new(addr: Ipv6Addr, len: u8) -> Option<Cidr> {
        (len <= 128).then_some(Cidr { addr, len })
    }
    #[inline]
    pub fn mask(&self) -> u128 {
        if self.len == 0 {
            0
        } else {
            u128::MAX << (128 - u32::from(self.len))
        }
    }
    #[inline]
    pub fn contains(&self, a: Ipv6Addr) -> bool {
        u128::from(a) & self.mask() == u128::from(self.addr) & self.mask()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ext_header_walk() {
        // hop-by-hop (8) -> fragment (8, offset 0) -> dest opts (16) -> TCP
        let mut p = vec![0u8; 32];
        p[0] = ip_proto::IPV6_FRAG;
        p[1] = 0;
        p[8] = ip_proto::IPV6_OPTS;
        p[16] = ip_proto::TCP;
        p[17] = 1;
        let u = walk_ext_headers(ip_proto::HOPOPTS, &p).unwrap();
        assert_eq!(
            u,
            UpperLayer {
                protocol: 6,
                offset: 32,
                non_first_fragment: false
            }
        );
        // overrun
        assert_eq!(
            walk_ext_headers(ip_proto::HOPOPTS, &p[..20]).unwrap_err(),
            Error::BadOption
        );
        // endless chain of dest options
        let chain = [ip_proto::IPV6_OPTS, 0, 0, 0, 0, 0, 0, 0].repeat(20);
        assert_eq!(
            walk_ext_headers(ip_proto::IPV6_OPTS, &chain).unwrap_err(),
            Error::TooManyExtHeaders
        );
    }

    #[test]
    fn solicited() {
        let a: Ipv6Addr = "2001:db8:c::1".parse().unwrap();
        assert_eq!(
            solicited_node(a),
            "ff02::1:ff00:1".parse::<Ipv6Addr>().unwrap()
        );
    }

    proptest! {
        #[test]
        fn round_trip(src in any::<u128>(), dst in any::<u128>(), nh in any::<u8>(), len in 0usize..1400, hl in any::<u8>(), tc in any::<u8>(), fl in 0u32..(1<<20)) {
            let r = Repr { src: src.into(), dst: dst.into(), next_header: nh, payload_len: len, hop_limit: hl, traffic_class: tc, flow_label: fl };
            let mut b = vec![0u8; HEADER_LEN + len];
            r.emit(&mut b);
            prop_assert_eq!(Repr::parse(&Packet::new_checked(&b[..]).unwrap()).unwrap(), r);
        }
        #[test]
        fn garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(p) = Packet::new_checked(&data[..]) {
                let _ = Repr::parse(&p);
                let _ = p.upper_layer();
            }
            let _ = walk_ext_headers(data.first().copied().unwrap_or(0), &data);
        }
    }
}
