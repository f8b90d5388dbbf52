//! ARP for IPv4 over Ethernet (RFC 826).

use super::{be16, put16, Error, EthernetAddress, Result};
use core::net::Ipv4Addr;

/// Length of an Ethernet/IPv4 ARP packet.
pub const PACKET_LEN: usize = 28;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    Request,
    Reply,
}

/// A view of an ARP packet.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    #[inline]
    pub fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        if buffer.as_ref().len() < PACKET_LEN {
            return Err(Error::Truncated);
        }
        Ok(Packet { buffer })
    }
    #[inline]
    pub fn hardware_type(&self) -> u16 {
        be16(self.buffer.as_ref(), 0)
    }
    #[inline]
    pub fn protocol_type(&self) -> u16 {
        be16(self.buffer.as_ref(), 2)
    }
    #[inline]
    pub fn hardware_len(&self) -> u8 {
        self.buffer.as_ref()[4]
    }
    #[inline]
    pub fn protocol_len(&self) -> u8 {
        self.buffer.as_ref()[5]
    }
    #[inline]
    pub fn operation(&self) -> u16 {
        be16(self.buffer.as_ref(), 6)
    }
    #[inline]
    pub fn sender_hw(&self) -> EthernetAddress {
        EthernetAddress::from_bytes(&self.buffer.as_ref()[8..14])
    }
    #[inline]
    pub fn sender_ip(&self) -> Ipv4Addr {
        let b = self.buffer.as_ref();
        Ipv4Addr::new(b[14], b[15], b[16], b[17])
    }
    #[inline]
    pub fn target_hw(&self) -> EthernetAddress {
        EthernetAddress::from_bytes(&self.buffer.as_ref()[18..24])
    }
    #[inline]
    pub fn target_ip(&self) -> Ipv4Addr {
        let b = self.buffer.as_ref();
        Ipv4Addr::new(b[24], b[25], b[26], b[27])
    }
}

/// A validated Ethernet/IPv4 ARP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Repr {
    pub operation: Operation,
    pub sender_hw: EthernetAddress,
    pub sender_ip: Ipv4Addr,
    pub target_hw: EthernetAddress,
    pub target_ip: Ipv4Addr,
}

impl Repr {
    #[inline]
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Repr> {
        if p.hardware_type() != 1
            || p.protocol_type() != 0x0800
            || p.hardware_len() != 6
            || p.protocol_len() != 4
        {
            return Err(Error::Malformed);
        }
        let operation = match p.operation() {
            1 => Operation::Request,
            2 => Operation::Reply,
            _ => return Err(Error::Malformed),
        };
        Ok(Repr {
            operation,
            sender_hw: p.sender_hw(),
            sender_ip: p.sender_ip(),
            target_hw: p.target_hw(),
            target_ip: p.target_ip(),
        })
    }
    /// Writes the 28-byte packet into `b`.
    #[inline]
    pub fn emit(&self, b: &mut [u8]) {
        put16(b, 0, 1);
        put16(b, 2, 0x0800);
        b[4] = 6;
        b[5] = 4;
        put16(
            b,
            6,
            match self.operation {
                Operation::Request => 1,
                Operation::Reply => 2,
            },
        );
        b[8..14].copy_from_slice(&self.sender_hw.0);
        b[14..18].copy_from_slice(&self.sender_ip.octets());
        b[18..24].copy_from_slice(&self.target_hw.0);
        b[24..28].copy_from_slice(&self.target_ip.octets());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trip(req in any::<bool>(), sh in any::<[u8;6]>(), si in any::<u32>(), th in any::<[u8;6]>(), ti in any::<u32>()) {
            let r = Repr {
                operation: if req { Operation::Request } else { Operation::Reply },
                sender_hw: EthernetAddress(sh), sender_ip: Ipv4Addr::from(si),
                target_hw: EthernetAddress(th), target_ip: Ipv4Addr::from(ti),
            };
            let mut b = [0u8; PACKET_LEN];
            r.emit(&mut b);
            prop_assert_eq!(Repr::parse(&Packet::new_checked(&b[..]).unwrap()).unwrap(), r);
        }
        #[test]
        fn garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Ok(p) = Packet::new_checked(&data[..]) { let _ = Repr::parse(&p); }
        }
    }

    #[test]
    fn rejects_bad_htype_and_short() {
        let mut b = [0u8; PACKET_LEN];
        assert_eq!(Packet::new_checked(&b[..27]).unwrap_err(), Error::Truncated);
        b[1] = 6; // htype 6
        assert_eq!(
            Repr::parse(&Packet::new_checked(&b[..]).unwrap()).unwrap_err(),
            Error::Malformed
        );
    }
}
