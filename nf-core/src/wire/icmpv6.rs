//! ICMPv6 (RFC 4443) and Neighbor Discovery NS/NA (RFC 4861 §4.3, §4.4).

use super::{be16, checksum, ip_proto, put16, Error, EthernetAddress, Result};
use core::net::Ipv6Addr;

pub const HEADER_LEN: usize = 8;

pub mod kind {
    pub const DEST_UNREACHABLE: u8 = 1;
    pub const PACKET_TOO_BIG: u8 = 2;
    pub const TIME_EXCEEDED: u8 = 3;
    pub const PARAM_PROBLEM: u8 = 4;
    pub const ECHO_REQUEST: u8 = 128;
    pub const ECHO_REPLY: u8 = 129;
    pub const ROUTER_SOLICIT: u8 = 133;
    pub const ROUTER_ADVERT: u8 = 134;
    pub const NEIGHBOR_SOLICIT: u8 = 135;
    pub const NEIGHBOR_ADVERT: u8 = 136;
}

/// Destination unreachable codes (RFC 4443 §3.1).
pub mod unreach {
    pub const NO_ROUTE: u8 = 0;
    pub const ADMIN_PROHIBITED: u8 = 1;
    pub const ADDRESS: u8 = 3;
    pub const PORT: u8 = 4;
}

/// ND option types (RFC 4861 §4.6).
const OPT_SOURCE_LLADDR: u8 = 1;
const OPT_TARGET_LLADDR: u8 = 2;

/// A view of an ICMPv6 message.
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
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(Packet { buffer })
    }
    #[inline]
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[0]
    }
    #[inline]
    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[1]
    }
    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), 2)
    }
    /// RFC 4443 §2.3: checksum over the pseudo-header and the message.
    #[inline]
    pub fn verify_checksum(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        let b = self.buffer.as_ref();
        let ph = checksum::pseudo_v6(src, dst, ip_proto::ICMPV6, b.len() as u32);
        checksum::combine(&[ph, checksum::sum(b)]) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    #[inline]
    pub fn fill_checksum(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        let b = self.buffer.as_mut();
        put16(b, 2, 0);
        let ph = checksum::pseudo_v6(src, dst, ip_proto::ICMPV6, b.len() as u32);
        let c = !checksum::combine(&[ph, checksum::sum(b)]);
        put16(b, 2, c);
    }
    /// Echo request → reply in place; addresses are swapped by the caller and
    /// the pseudo-header sum is unchanged by a swap, so only the type word
    /// changes (RFC 1624).
    #[inline]
    pub fn echo_request_to_reply(&mut self) {
        let b = self.buffer.as_mut();
        let old = be16(b, 0);
        b[0] = kind::ECHO_REPLY;
        let c = checksum::update16(be16(b, 2), old, be16(b, 0));
        put16(b, 2, c);
    }
}

/// A validated ICMPv6 message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Repr<'a> {
    EchoRequest {
        ident: u16,
        seq: u16,
        data: &'a [u8],
    },
    EchoReply {
        ident: u16,
        seq: u16,
        data: &'a [u8],
    },
    DestUnreachable {
        code: u8,
        data: &'a [u8],
    },
    PacketTooBig {
        mtu: u32,
        data: &'a [u8],
    },
    TimeExceeded {
        code: u8,
        data: &'a [u8],
    },
    ParamProblem {
        code: u8,
        pointer: u32,
        data: &'a [u8],
    },
    NeighborSolicit {
        target: Ipv6Addr,
        source_lladdr: Option<EthernetAddress>,
    },
    NeighborAdvert {
        flags: NaFlags,
        target: Ipv6Addr,
        target_lladdr: Option<EthernetAddress>,
    },
    Other {
        msg_type: u8,
        code: u8,
    },
}

/// NA flags (RFC 4861 §4.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct NaFlags {
    pub router: bool,
    pub solicited: bool,
    pub override_: bool,
}

impl NaFlags {
    #[inline]
    fn to_byte(self) -> u8 {
        (u8::from(self.router) << 7)
            | (u8::from(self.solicited) << 6)
            | (u8::from(self.override_) << 5)
    }
    #[inline]
    fn from_byte(b: u8) -> Self {
        NaFlags {
            router: b & 0x80 != 0,
            solicited: b & 0x40 != 0,
            override_: b & 0x20 != 0,
        }
    }
}

#[inline]
fn be32(b: &[u8], at: usize) -> u32 {
    super::be32(b, at)
}

/// Walks ND options and returns the link-layer address of type `want`.
/// RFC 4861 §4.6: a zero-length option is invalid and the packet is dropped.
#[inline]
fn nd_lladdr(mut opts: &[u8], want: u8) -> Result<Option<EthernetAddress>> {
    let mut found = None;
    while !opts.is_empty() {
        if opts.len() < 2 {
            return Err(Error::BadOption);
        }
        let len = usize::from(opts[1]) * 8;
        if len == 0 || len > opts.len() {
            return Err(Error::BadOption);
        }
        if opts[0] == want && len >= 8 {
            found = Some(EthernetAddress::from_bytes(&opts[2..8]));
        }
        opts = &opts[len..];
    }
    Ok(found)
}

#[inline]
fn addr16(b: &[u8]) -> Ipv6Addr {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[..16]);
    Ipv6Addr::from(a)
}

impl<'a> Repr<'a> {
    /// Parses and verifies the checksum against the IPv6 addresses. ND
    /// messages must carry hop limit 255 (RFC 4861 §7.1.1), checked by the
    /// caller who has the IP header.
    #[inline]
    pub fn parse(p: &Packet<&'a [u8]>, src: Ipv6Addr, dst: Ipv6Addr) -> Result<Repr<'a>> {
        if !p.verify_checksum(src, dst) {
            return Err(Error::BadChecksum);
        }
        let b: &'a [u8] = p.buffer;
        let data = &b[HEADER_LEN..];
        let code = p.msg_code();
        Ok(match p.msg_type() {
            kind::ECHO_REQUEST => Repr::EchoRequest {
                ident: be16(b, 4),
                seq: be16(b, 6),
                data,
            },
            kind::ECHO_REPLY => Repr::EchoReply {
                ident: be16(b, 4),
                seq: be16(b, 6),
                data,
            },
            kind::DEST_UNREACHABLE => Repr::DestUnreachable { code, data },
            kind::PACKET_TOO_BIG => Repr::PacketTooBig {
                mtu: be32(b, 4),
                data,
            },
            kind::TIME_EXCEEDED => Repr::TimeExceeded { code, data },
            kind::PARAM_PROBLEM => Repr::ParamProblem {
                code,
                pointer: be32(b, 4),
                data,
            },
            kind::NEIGHBOR_SOLICIT => {
                if b.len() < 24 || code != 0 {
                    return Err(Error::Malformed);
                }
                Repr::NeighborSolicit {
                    target: addr16(&b[8..24]),
                    source_lladdr: nd_lladdr(&b[24..], OPT_SOURCE_LLADDR)?,
                }
            }
            kind::NEIGHBOR_ADVERT => {
                if b.len() < 24 || code != 0 {
                    return Err(Error::Malformed);
                }
                Repr::NeighborAdvert {
                    flags: NaFlags::from_byte(b[4]),
                    target: addr16(&b[8..24]),
                    target_lladdr: nd_lladdr(&b[24..], OPT_TARGET_LLADDR)?,
                }
            }
            msg_type => Repr::Other { msg_type, code },
        })
    }

    #[inline]
    pub fn buffer_len(&self) -> usize {
        match self {
            Repr::EchoRequest { data, .. }
            | Repr::EchoReply { data, .. }
            | Repr::DestUnreachable { data, .. }
            | Repr::PacketTooBig { data, .. }
            | Repr::TimeExceeded { data, .. }
            | Repr::ParamProblem { data, .. } => HEADER_LEN + data.len(),
            Repr::NeighborSolicit {
                source_lladdr: l, ..
            }
            | Repr::NeighborAdvert {
                target_lladdr: l, ..
            } => 24 + if l.is_some() { 8 } else { 0 },
            Repr::Other { .. } => HEADER_LEN,
        }
    }

    /// Emits into `b[..buffer_len()]` and fills the checksum.
    #[inline]
    pub fn emit(&self, src: Ipv6Addr, dst: Ipv6Addr, b: &mut [u8]) {
        let len = self.buffer_len();
        let b = &mut b[..len];
        b.fill(0);
        let body = |t: u8, c: u8, w: [u8; 4], data: &[u8], b: &mut [u8]| {
            b[0] = t;
            b[1] = c;
            b[4..8].copy_from_slice(&w);
            b[HEADER_LEN..HEADER_LEN + data.len()].copy_from_slice(data);
        };
        let echo = |i: u16, s: u16| {
            let (i, s) = (i.to_be_bytes(), s.to_be_bytes());
            [i[0], i[1], s[0], s[1]]
        };
        match *self {
            Repr::EchoRequest { ident, seq, data } => {
                body(kind::ECHO_REQUEST, 0, echo(ident, seq), data, b)
            }
            Repr::EchoReply { ident, seq, data } => {
                body(kind::ECHO_REPLY, 0, echo(ident, seq), data, b)
            }
            Repr::DestUnreachable { code, data } => {
                body(kind::DEST_UNREACHABLE, code, [0; 4], data, b)
            }
            Repr::PacketTooBig { mtu, data } => {
                body(kind::PACKET_TOO_BIG, 0, mtu.to_be_bytes(), data, b)
            }
            Repr::TimeExceeded { code, data } => body(kind::TIME_EXCEEDED, code, [0; 4], data, b),
            Repr::ParamProblem {
                code,
                pointer,
                data,
            } => body(kind::PARAM_PROBLEM, code, pointer.to_be_bytes(), data, b),
            Repr::NeighborSolicit {
                target,
                source_lladdr,
            } => {
                b[0] = kind::NEIGHBOR_SOLICIT;
                b[8..24].copy_from_slice(&target.octets());
                if let Some(l) = source_lladdr {
                    b[24] = OPT_SOURCE_LLADDR;
                    b[25] = 1;
                    b[26..32].copy_from_slice(&l.0);
                }
            }
            Repr::NeighborAdvert {
                flags,
                target,
                target_lladdr,
            } => {
                b[0] = kind::NEIGHBOR_ADVERT;
                b[4] = flags.to_byte();
                b[8..24].copy_from_slice(&target.octets());
                if let Some(l) = target_lladdr {
                    b[24] = OPT_TARGET_LLADDR;
                    b[25] = 1;
                    b[26..32].copy_from_slice(&l.0);
                }
            }
            Repr::Other { msg_type, code } => {
                b[0] = msg_type;
                b[1] = code;
            }
        }
        Packet::new_unchecked(b).fill_checksum(src, dst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    #[test]
    fn ns_na_round_trip() {
        let (s, d) = (a("2001:db8:c::2"), a("ff02::1:ff00:1"));
        let ns = Repr::NeighborSolicit {
            target: a("2001:db8:c::1"),
            source_lladdr: Some(EthernetAddress([2, 1, 2, 3, 4, 5])),
        };
        let mut b = vec![0u8; ns.buffer_len()];
        ns.emit(s, d, &mut b);
        assert_eq!(
            Repr::parse(&Packet::new_checked(&b[..]).unwrap(), s, d).unwrap(),
            ns
        );
        // wrong pseudo header → checksum error
        assert_eq!(
            Repr::parse(&Packet::new_checked(&b[..]).unwrap(), a("2001:db8:c::3"), d).unwrap_err(),
            Error::BadChecksum
        );
        let na = Repr::NeighborAdvert {
            flags: NaFlags {
                router: true,
                solicited: true,
                override_: true,
            },
            target: a("2001:db8:c::1"),
            target_lladdr: Some(EthernetAddress([2, 9, 9, 9, 9, 9])),
        };
        let mut b = vec![0u8; na.buffer_len()];
        na.emit(d, s, &mut b);
        assert_eq!(
            Repr::parse(&Packet::new_checked(&b[..]).unwrap(), d, s).unwrap(),
            na
        );
    }

    #[test]
    fn zero_length_nd_option_rejected() {
        let (s, d) = (a("fe80::1"), a("fe80::2"));
        let ns = Repr::NeighborSolicit {
            target: a("fe80::2"),
            source_lladdr: Some(EthernetAddress([2; 6])),
        };
        let mut b = vec![0u8; ns.buffer_len()];
        ns.emit(s, d, &mut b);
        b[25] = 0;
        Packet::new_unchecked(&mut b[..]).fill_checksum(s, d);
        assert_eq!(
            Repr::parse(&Packet::new_checked(&b[..]).unwrap(), s, d).unwrap_err(),
            Error::BadOption
        );
    }

    proptest! {
        #[test]
        fn round_trip(kind in 0u8..6, x in any::<u32>(), code in any::<u8>(), data in proptest::collection::vec(any::<u8>(), 0..64), s in any::<u128>(), d in any::<u128>()) {
            let (s, d) = (Ipv6Addr::from(s), Ipv6Addr::from(d));
            let r = match kind {
                0 => Repr::EchoRequest { ident: x as u16, seq: (x >> 16) as u16, data: &data },
                1 => Repr::EchoReply { ident: x as u16, seq: (x >> 16) as u16, data: &data },
                2 => Repr::DestUnreachable { code, data: &data },
                3 => Repr::PacketTooBig { mtu: x, data: &data },
                4 => Repr::TimeExceeded { code, data: &data },
                _ => Repr::ParamProblem { code, pointer: x, data: &data },
            };
            let mut b = vec![0u8; r.buffer_len()];
            r.emit(s, d, &mut b);
            prop_assert_eq!(Repr::parse(&Packet::new_checked(&b[..]).unwrap(), s, d).unwrap(), r);
        }
        #[test]
        fn garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(p) = Packet::new_checked(&data[..]) { let _ = Repr::parse(&p, Ipv6Addr::UNSPECIFIED, Ipv6Addr::UNSPECIFIED); }
        }
    }
}
