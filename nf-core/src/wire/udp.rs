//! UDP (RFC 768).

use super::{be16, checksum, ip_proto, put16, tcp::pseudo_proto, Error, Result};
use core::net::IpAddr;

pub const HEADER_LEN: usize = 8;

/// A view of a UDP datagram.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    #[inline]
    pub fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }
    /// Validates the length field against the buffer.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let l = usize::from(be16(b, 4));
        if l < HEADER_LEN || l > b.len() {
            return Err(Error::BadLength);
        }
        Ok(Packet { buffer })
    }
    #[inline]
    pub fn src_port(&self) -> u16 {
        be16(self.buffer.as_ref(), 0)
    }
    #[inline]
    pub fn dst_port(&self) -> u16 {
        be16(self.buffer.as_ref(), 2)
    }
    #[inline]
    pub fn len(&self) -> u16 {
        be16(self.buffer.as_ref(), 4)
    }
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() as usize == HEADER_LEN
    }
    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), 6)
    }
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.len())]
    }
    /// A zero checksum means "none" over IPv4 (RFC 768) but is invalid over
    /// IPv6 (RFC 8200 §8.1).
    #[inline]
    pub fn verify_checksum(&self, src: IpAddr, dst: IpAddr) -> bool {
        if self.checksum() == 0 {
            return src.is_ipv4();
        }
        let b = &self.buffer.as_ref()[..usize::from(self.len())];
        checksum::combine(&[
            pseudo_proto(src, dst, ip_proto::UDP, b.len()),
            checksum::sum(b),
        ]) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    #[inline]
    pub fn fill_checksum(&mut self, src: IpAddr, dst: IpAddr) {
        let l = usize::from(self.len());
        let b = &mut self.buffer.as_mut()[..l];
        put16(b, 6, 0);
        let mut c =
            !checksum::combine(&[pseudo_proto(src, dst, ip_proto::UDP, l), checksum::sum(b)]);
        if c == 0 {
            c = 0xffff;
        }
        put16(b, 6, c);
    }
}

/// A validated UDP datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Repr<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    pub payload: &'a [u8],
}

impl<'a> Repr<'a> {
    #[inline]
    pub fn parse(p: &Packet<&'a [u8]>, addrs: Option<(IpAddr, IpAddr)>) -> Result<Repr<'a>> {
        if let Some((s, d)) = addrs {
            if !p.verify_checksum(s, d) {
                return Err(Error::BadChecksum);
            }
        }
        let b: &'a [u8] = p.buffer;
        Ok(Repr {
            src_port: p.src_port(),
            dst_port: p.dst_port(),
            payload: &b[HEADER_LEN..usize::from(p.len())],
        })
    }
    #[inline]
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload.len()
    }
    #[inline]
    pub fn emit(&self, src: IpAddr, dst: IpAddr, b: &mut [u8]) {
        put16(b, 0, self.src_port);
        put16(b, 2, self.dst_port);
        put16(b, 4, self.buffer_len() as u16);
        b[HEADER_LEN..self.buffer_len()].copy_from_slice(self.payload);
        Packet::new_unchecked(&mut b[..self.buffer_len()]).fill_checksum(src, dst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv6Addr;
    use proptest::prelude::*;

    #[test]
    fn zero_checksum_v6_invalid() {
        let mut b = [0u8; 8];
        put16(&mut b, 4, 8);
        let p = Packet::new_checked(&b[..]).unwrap();
        let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
        assert!(!p.verify_checksum(v6, v6));
        assert!(p.verify_checksum([1, 2, 3, 4].into(), [5, 6, 7, 8].into()));
        assert_eq!(Packet::new_checked(&b[..7]).unwrap_err(), Error::Truncated);
        put16(&mut b, 4, 9);
        assert_eq!(Packet::new_checked(&b[..]).unwrap_err(), Error::BadLength);
    }

    proptest! {
        #[test]
        fn round_trip(sp in any::<u16>(), dp in any::<u16>(), payload in proptest::collection::vec(any::<u8>(), 0..100), s in any::<u32>(), d in any::<u32>()) {
            let (s, d) = (IpAddr::from(s.to_be_bytes()), IpAddr::from(d.to_be_bytes()));
            let r = Repr { src_port: sp, dst_port: dp, payload: &payload };
            let mut b = vec![0u8; r.buffer_len()];
            r.emit(s, d, &mut b);
            prop_assert_eq!(Repr::parse(&Packet::new_checked(&b[..]).unwrap(), Some((s, d))).unwrap(), r);
        }
        #[test]
        fn garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Ok(p) = Packet::new_checked(&data[..]) { let _ = Repr::parse(&p, None); }
        }
    }
}
