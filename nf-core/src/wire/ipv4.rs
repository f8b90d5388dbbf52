//! IPv4 headers (RFC 791), with the incremental TTL update of RFC 1624.

use super::{be16, checksum, put16, Error, Result};
use core::net::Ipv4Addr;

/// Minimum header length.
pub const HEADER_LEN: usize = 20;

/// A view of an IPv4 packet.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    #[inline]
    pub fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Validates version, IHL and total length against the buffer (RFC 791
    /// §3.1; RFC 1812 §5.2.2). Bytes after `total_len` (Ethernet padding) are
    /// allowed and ignored by [`Packet::payload`]. The checksum is checked
    /// separately by [`Packet::verify_checksum`].
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if b[0] >> 4 != 4 {
            return Err(Error::BadVersion);
        }
        let ihl = usize::from(b[0] & 0x0f) * 4;
        if ihl < HEADER_LEN {
            return Err(Error::BadLength);
        }
        let total = usize::from(be16(b, 2));
        if total < ihl || total > b.len() {
            return Err(Error::BadLength);
        }
        Ok(Packet { buffer })
    }

    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[0] & 0x0f) * 4
    }
    #[inline]
    pub fn dscp_ecn(&self) -> u8 {
        self.buffer.as_ref()[1]
    }
    #[inline]
    pub fn total_len(&self) -> u16 {
        be16(self.buffer.as_ref(), 2)
    }
    #[inline]
    pub fn ident(&self) -> u16 {
        be16(self.buffer.as_ref(), 4)
    }
    #[inline]
    pub fn dont_frag(&self) -> bool {
        self.buffer.as_ref()[6] & 0x40 != 0
    }
    #[inline]
    pub fn more_frags(&self) -> bool {
        self.buffer.as_ref()[6] & 0x20 != 0
    }
    /// Fragment offset in bytes.
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        (be16(self.buffer.as_ref(), 6) & 0x1fff) * 8
    }
    #[inline]
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[8]
    }
    #[inline]
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[9]
    }
    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), 10)
    }
    #[inline]
    pub fn src_addr(&self) -> Ipv4Addr {
        let b = self.buffer.as_ref();
        Ipv4Addr::new(b[12], b[13], b[14], b[15])
    }
    #[inline]
    pub fn dst_addr(&self) -> Ipv4Addr {
        let b = self.buffer.as_ref();
        Ipv4Addr::new(b[16], b[17], b[18], b[19])
    }
    /// True when the header checksum verifies.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        let b = self.buffer.as_ref();
        let h = self.header_len();
        if h == HEADER_LEN {
            // The common option-less header: five 32-bit words, no loop.
            let w = |i: usize| u64::from(super::be32(b, i));
            let acc = w(0) + w(4) + w(8) + w(12) + w(16);
            let acc = (acc & 0xffff_ffff) + (acc >> 32);
            return checksum::fold(((acc & 0xffff_ffff) + (acc >> 32)) as u32) == 0xffff;
        }
        checksum::fold(checksum::sum(&b[..h])) == 0xffff
    }
    /// The payload, up to `total_len`.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        &b[self.header_len()..usize::from(self.total_len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    #[inline]
    pub fn set_ttl(&mut self, v: u8) {
        self.buffer.as_mut()[8] = v
    }
    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        put16(self.buffer.as_mut(), 10, v)
    }
    #[inline]
    pub fn set_src_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[12..16].copy_from_slice(&a.octets())
    }
    #[inline]
    pub fn set_dst_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[16..20].copy_from_slice(&a.octets())
    }
    /// Recomputes the header checksum from scratch.
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let h = self.header_len();
        let c = checksum::checksum(&self.buffer.as_ref()[..h]);
        self.set_checksum(c);
    }
    /// Decrements the TTL and patches the checksum incrementally (RFC 1624:
    /// the TTL shares a 16-bit word with the protocol field).
    #[inline]
    pub fn decrement_ttl(&mut self) {
        let b = self.buffer.as_mut();
        let old = be16(b, 8);
        b[8] = b[8].wrapping_sub(1);
        let new = be16(b, 8);
        let c = checksum::update16(be16(b, 10), old, new);
        put16(b, 10, c);
    }
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (h, t) = (self.header_len(), usize::from(self.total_len()));
        &mut self.buffer.as_mut()[h..t]
    }
}

/// A validated IPv4 header (options are not emitted; parse tolerates them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Repr {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub protocol: u8,
    pub payload_len: usize,
    pub ttl: u8,
    pub dscp_ecn: u8,
    pub ident: u16,
    pub dont_frag: bool,
}

impl Repr {
    /// Parses and verifies the checksum.
    #[inline]
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Repr> {
        if !p.verify_checksum() {
            return Err(Error::BadChecksum);
        }
        Ok(Repr {
            src: p.src_addr(),
            dst: p.dst_addr(),
            protocol: p.protocol(),
            payload_len: usize::from(p.total_len()) - p.header_len(),
            ttl: p.ttl(),
            dscp_ecn: p.dscp_ecn(),
            ident: p.ident(),
            dont_frag: p.dont_frag(),
        })
    }
    #[inline]
    pub fn header_len(&self) -> usize {
        HEADER_LEN
    }
    /// Emits a 20-byte header with a correct checksum into `b`.
    #[inline]
    pub fn emit(&self, b: &mut [u8]) {
        b[0] = 0x45;
        b[1] = self.dscp_ecn;
        put16(b, 2, (HEADER_LEN + self.payload_len) as u16);
        put16(b, 4, self.ident);
        put16(b, 6, if self.dont_frag { 0x4000 } else { 0 });
        b[8] = self.ttl;
        b[9] = self.protocol;
        put16(b, 10, 0);
        b[12..16].copy_from_slice(&self.src.octets());
        b[16..20].copy_from_slice(&self.dst.octets());
        let c = checksum::checksum(&b[..HEADER_LEN]);
        put16(b, 10, c);
    }
}

/// An IPv4 prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cidr {
    pub addr: Ipv4Addr,
    pub len: u8,
}

impl Cidr {
    /// `None` when `len > 32`.
    #[inline]
    pub fn new(addr: Ipv4Addr, len: u8) -> Option<Cidr> {
        (len <= 32).then_some(Cidr { addr, len })
    }
    #[inline]
    pub fn mask(&self) -> u32 {
        if self.len == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.len))
        }
    }
    #[inline]
    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & self.mask())
    }
    #[inline]
    pub fn contains(&self, a: Ipv4Addr) -> bool {
        u32::from(a) & self.mask() == u32::from(self.addr) & self.mask()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Repr {
        Repr {
            src: Ipv4Addr::new(192, 0, 2, 2),
            dst: Ipv4Addr::new(198, 51, 100, 2),
            protocol: 6,
            payload_len: 8,
            ttl: 64,
            dscp_ecn: 0,
            ident: 0x1234,
            dont_frag: true,
        }
    }

    #[test]
    fn ttl_decrement_keeps_checksum_valid() {
        let mut b = vec![0u8; 28];
        sample().emit(&mut b);
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        for _ in 0..64 {
            p.decrement_ttl();
            assert!(p.verify_checksum());
        }
        assert_eq!(p.ttl(), 0);
    }

    #[test]
    fn errors() {
        let mut b = vec![0u8; 28];
        sample().emit(&mut b);
        assert_eq!(Packet::new_checked(&b[..19]).unwrap_err(), Error::Truncated);
        assert_eq!(Packet::new_checked(&b[..27]).unwrap_err(), Error::BadLength);
        let mut v6 = b.clone();
        v6[0] = 0x65;
        assert_eq!(Packet::new_checked(&v6[..]).unwrap_err(), Error::BadVersion);
        let mut ihl = b.clone();
        ihl[0] = 0x44;
        assert_eq!(Packet::new_checked(&ihl[..]).unwrap_err(), Error::BadLength);
        let mut bad = b.clone();
        bad[15] ^= 1;
        let p = Packet::new_checked(&bad[..]).unwrap();
        assert_eq!(Repr::parse(&p).unwrap_err(), Error::BadChecksum);
    }

    #[test]
    fn cidr() {
        let c = Cidr::new(Ipv4Addr::new(10, 1, 2, 3), 8).unwrap();
        assert!(c.contains(Ipv4Addr::new(10, 200, 0, 1)));
        assert!(!c.contains(Ipv4Addr::new(11, 0, 0, 1)));
        assert_eq!(c.network(), Ipv4Addr::new(10, 0, 0, 0));
        assert!(Cidr::new(Ipv4Addr::UNSPECIFIED, 0)
            .unwrap()
            .contains(Ipv4Addr::BROADCAST));
        assert!(Cidr::new(Ipv4Addr::UNSPECIFIED, 33).is_none());
    }

    proptest! {
        #[test]
        fn round_trip(src in any::<u32>(), dst in any::<u32>(), proto in any::<u8>(), len in 0usize..1480, ttl in any::<u8>(), tos in any::<u8>(), id in any::<u16>(), df in any::<bool>()) {
            let r = Repr { src: src.into(), dst: dst.into(), protocol: proto, payload_len: len, ttl, dscp_ecn: tos, ident: id, dont_frag: df };
            let mut b = vec![0u8; HEADER_LEN + len];
            r.emit(&mut b);
            let p = Packet::new_checked(&b[..]).unwrap();
            prop_assert_eq!(Repr::parse(&p).unwrap(), r);
            prop_assert_eq!(p.payload().len(), len);
        }
        #[test]
        fn fast_checksum_agrees_with_generic(mut d in proptest::collection::vec(any::<u8>(), 20..=20), fix in any::<bool>()) {
            d[0] = 0x45;
            if fix {
                Packet::new_unchecked(&mut d[..]).fill_checksum();
            }
            let generic = checksum::fold(checksum::sum(&d[..20])) == 0xffff;
            prop_assert_eq!(Packet::new_unchecked(&d[..]).verify_checksum(), generic);
            prop_assert!(!fix || generic);
        }
        #[test]
        fn garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(p) = Packet::new_checked(&data[..]) {
                let _ = Repr::parse(&p);
                let _ = p.payload();
            }
        }
    }
}
