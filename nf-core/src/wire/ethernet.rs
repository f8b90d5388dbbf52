//! Ethernet II frames with an optional 802.1Q tag (IEEE 802.1Q §9.6).

use super::{be16, put16, Error, Result};

/// A MAC address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct EthernetAddress(pub [u8; 6]);

impl EthernetAddress {
    pub const BROADCAST: EthernetAddress = EthernetAddress([0xff; 6]);

    #[inline]
    pub fn from_bytes(b: &[u8]) -> Self {
        let mut a = [0; 6];
        a.copy_from_slice(&b[..6]);
        EthernetAddress(a)
    }
    #[inline]
    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }
    #[inline]
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 != 0
    }
    #[inline]
    pub fn is_unicast(&self) -> bool {
        !self.is_multicast()
    }
    /// The IPv6 multicast MAC for an IPv6 multicast address (RFC 2464 §7).
    #[inline]
    pub fn ipv6_multicast(addr: &core::net::Ipv6Addr) -> Self {
        let o = addr.octets();
        EthernetAddress([0x33, 0x33, o[12], o[13], o[14], o[15]])
    }
}

impl core::fmt::Display for EthernetAddress {
    #[inline]
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let a = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            a[0], a[1], a[2], a[3], a[4], a[5]
        )
    }
}

/// Ethertypes hagw understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EtherType {
    Ipv4,
    Arp,
    Ipv6,
    Vlan,
    Unknown(u16),
}

impl From<u16> for EtherType {
    #[inline]
    fn from(v: u16) -> Self {
        match v {
            0x0800 => EtherType::Ipv4,
            0x0806 => EtherType::Arp,
            0x86dd => EtherType::Ipv6,
            0x8100 => EtherType::Vlan,
            x => EtherType::Unknown(x),
        }
    }
}

impl From<EtherType> for u16 {
    #[inline]
    fn from(v: EtherType) -> u16 {
        match v {
            EtherType::Ipv4 => 0x0800,
            EtherType::Arp => 0x0806,
            EtherType::Ipv6 => 0x86dd,
            EtherType::Vlan => 0x8100,
            EtherType::Unknown(x) => x,
        }
    }
}

/// Length of an untagged Ethernet header.
pub const HEADER_LEN: usize = 14;
/// Length of an 802.1Q tag.
pub const VLAN_TAG_LEN: usize = 4;

/// A view of an Ethernet frame.
#[derive(Debug, Clone)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    #[inline]
    pub fn new_unchecked(buffer: T) -> Self {
        Frame { buffer }
    }
    /// Validates that the header (and the 802.1Q tag, if present) fits.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let f = Frame { buffer };
        let b = f.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if be16(b, 12) == 0x8100 && b.len() < HEADER_LEN + VLAN_TAG_LEN {
            return Err(Error::Truncated);
        }
        Ok(f)
    }
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }
    #[inline]
    pub fn dst_addr(&self) -> EthernetAddress {
        EthernetAddress::from_bytes(&self.buffer.as_ref()[0..6])
    }
    #[inline]
    pub fn src_addr(&self) -> EthernetAddress {
        EthernetAddress::from_bytes(&self.buffer.as_ref()[6..12])
    }
    /// The 802.1Q VLAN id, if the frame is tagged.
    #[inline]
    pub fn vlan_id(&self) -> Option<u16> {
        let b = self.buffer.as_ref();
        if be16(b, 12) == 0x8100 {
            Some(be16(b, 14) & 0x0fff)
        } else {
            None
        }
    }
    /// The ethertype of the payload (after the tag, if any).
    #[inline]
    pub fn ethertype(&self) -> EtherType {
        let b = self.buffer.as_ref();
        EtherType::from(be16(b, self.header_len() - 2))
    }
    /// 14, or 18 with a tag.
    #[inline]
    pub fn header_len(&self) -> usize {
        if be16(self.buffer.as_ref(), 12) == 0x8100 {
            HEADER_LEN + VLAN_TAG_LEN
        } else {
            HEADER_LEN
        }
    }
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    #[inline]
    pub fn set_dst_addr(&mut self, a: EthernetAddress) {
        self.buffer.as_mut()[0..6].copy_from_slice(&a.0)
    }
    #[inline]
    pub fn set_src_addr(&mut self, a: EthernetAddress) {
        self.buffer.as_mut()[6..12].copy_from_slice(&a.0)
    }
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let h = self.header_len();
        &mut self.buffer.as_mut()[h..]
    }
}

/// A validated Ethernet header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Repr {
    pub src: EthernetAddress,
    pub dst: EthernetAddress,
    pub vlan: Option<u16>,
    pub ethertype: EtherType,
}

impl Repr {
    #[inline]
    pub fn parse<T: AsRef<[u8]>>(f: &Frame<T>) -> Result<Repr> {
        let ethertype = f.ethertype();
        if ethertype == EtherType::Vlan {
            // Q-in-Q is not supported on hagw ports.
            return Err(Error::Malformed);
        }
        Ok(Repr {
            src: f.src_addr(),
            dst: f.dst_addr(),
            vlan: f.vlan_id(),
            ethertype,
        })
    }
    #[inline]
    pub fn header_len(&self) -> usize {
        if self.vlan.is_some() {
            HEADER_LEN + VLAN_TAG_LEN
        } else {
            HEADER_LEN
        }
    }
    /// Writes the header into the first `header_len()` bytes of `b`.
    #[inline]
    pub fn emit(&self, b: &mut [u8]) {
        b[0..6].copy_from_slice(&self.dst.0);
        b[6..12].copy_from_slice(&self.src.0);
        match self.vlan {
            Some(v) => {
                put16(b, 12, 0x8100);
                put16(b, 14, v & 0x0fff);
                put16(b, 16, self.ethertype.into());
            }
            None => put16(b, 12, self.ethertype.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn tagged_and_untagged() {
        let r = Repr {
            src: EthernetAddress([2, 0, 0, 0, 0, 1]),
            dst: EthernetAddress::BROADCAST,
            vlan: Some(100),
            ethertype: EtherType::Arp,
        };
        let mut b = [0u8; 18];
        r.emit(&mut b);
        let f = Frame::new_checked(&b[..]).unwrap();
        assert_eq!(f.header_len(), 18);
        assert_eq!(Repr::parse(&f).unwrap(), r);
        assert_eq!(Frame::new_checked(&b[..15]).unwrap_err(), Error::Truncated);
        assert_eq!(Frame::new_checked(&b[..13]).unwrap_err(), Error::Truncated);
    }

    proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Ok(f) = Frame::new_checked(&data[..]) {
                let _ = Repr::parse(&f);
                let _ = f.payload();
            }
        }
        #[test]
        fn round_trip(src in any::<[u8;6]>(), dst in any::<[u8;6]>(), vlan in proptest::option::of(0u16..4096), et in 0x0600u16..0xffff) {
            prop_assume!(et != 0x8100);
            let r = Repr { src: EthernetAddress(src), dst: EthernetAddress(dst), vlan, ethertype: EtherType::from(et) };
            let mut b = vec![0u8; r.header_len()];
            r.emit(&mut b);
            prop_assert_eq!(Repr::parse(&Frame::new_checked(&b[..]).unwrap()).unwrap(), r);
        }
    }
}
