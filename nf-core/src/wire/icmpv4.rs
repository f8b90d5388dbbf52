//! ICMPv4 (RFC 792): echo, destination unreachable, time exceeded.

use super::{be16, checksum, put16, Error, Result};

/// Fixed header length (type, code, checksum, 4 bytes of rest-of-header).
pub const HEADER_LEN: usize = 8;

pub mod kind {
    pub const ECHO_REPLY: u8 = 0;
    pub const DEST_UNREACHABLE: u8 = 3;
    pub const ECHO_REQUEST: u8 = 8;
    pub const TIME_EXCEEDED: u8 = 11;
    pub const PARAMETER_PROBLEM: u8 = 12;
}

/// Destination unreachable codes (RFC 792, RFC 1812 §5.2.7.1).
pub mod unreach {
    pub const NET: u8 = 0;
    pub const HOST: u8 = 1;
    pub const PROTOCOL: u8 = 2;
    pub const PORT: u8 = 3;
    pub const FRAG_NEEDED: u8 = 4;
    pub const ADMIN_PROHIBITED: u8 = 13;
}

/// A view of an ICMPv4 message.
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
    #[inline]
    pub fn echo_ident(&self) -> u16 {
        be16(self.buffer.as_ref(), 4)
    }
    #[inline]
    pub fn echo_seq(&self) -> u16 {
        be16(self.buffer.as_ref(), 6)
    }
    /// For "fragmentation needed": the next-hop MTU (RFC 1191 §4).
    #[inline]
    pub fn next_hop_mtu(&self) -> u16 {
        be16(self.buffer.as_ref(), 6)
    }
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        checksum::fold(checksum::sum(self.buffer.as_ref())) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    #[inline]
    pub fn set_msg_type(&mut self, t: u8) {
        self.buffer.as_mut()[0] = t
    }
    #[inline]
    pub fn set_msg_code(&mut self, c: u8) {
        self.buffer.as_mut()[1] = c
    }
    #[inline]
    pub fn set_checksum(&mut self, c: u16) {
        put16(self.buffer.as_mut(), 2, c)
    }
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(self.buffer.as_ref());
        self.set_checksum(c);
    }
    /// Turns an echo request into a reply in place: only the type changes, so
    /// the checksum is patched incrementally (RFC 1624).
    #[inline]
    pub fn echo_request_to_reply(&mut self) {
        let b = self.buffer.as_mut();
        let old = be16(b, 0);
        b[0] = kind::ECHO_REPLY;
        let c = checksum::update16(be16(b, 2), old, be16(b, 0));
        put16(b, 2, c);
    }
}

/// A validated ICMPv4 message. `data` borrows the echo payload or the
/// invoking packet of an error.
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
        next_hop_mtu: u16,
        data: &'a [u8],
    },
    TimeExceeded {
        code: u8,
        data: &'a [u8],
    },
    Other {
        msg_type: u8,
        code: u8,
    },
}

impl<'a> Repr<'a> {
    /// Parses and verifies the checksum.
    #[inline]
    pub fn parse(p: &Packet<&'a [u8]>) -> Result<Repr<'a>> {
        if !p.verify_checksum() {
            return Err(Error::BadChecksum);
        }
        let buf: &'a [u8] = p.buffer;
        let data = &buf[HEADER_LEN..];
        Ok(match (p.msg_type(), p.msg_code()) {
            (kind::ECHO_REQUEST, 0) => Repr::EchoRequest {
                ident: p.echo_ident(),
                seq: p.echo_seq(),
                data,
            },
            (kind::ECHO_REPLY, 0) => Repr::EchoReply {
                ident: p.echo_ident(),
                seq: p.echo_seq(),
                data,
            },
            (kind::DEST_UNREACHABLE, code) => Repr::DestUnreachable {
                code,
                next_hop_mtu: p.next_hop_mtu(),
                data,
            },
            (kind::TIME_EXCEEDED, code) => Repr::TimeExceeded { code, data },
            (msg_type, code) => Repr::Other { msg_type, code },
        })
    }

    /// Length of the emitted message.
    #[inline]
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN
            + match self {
                Repr::EchoRequest { data, .. }
                | Repr::EchoReply { data, .. }
                | Repr::DestUnreachable { data, .. }
                | Repr::TimeExceeded { data, .. } => data.len(),
                Repr::Other { .. } => 0,
            }
    }

    /// Emits into `b[..buffer_len()]` with the checksum filled.
    #[inline]
    pub fn emit(&self, b: &mut [u8]) {
        let (t, c, w1, w2, data): (u8, u8, u16, u16, &[u8]) = match *self {
            Repr::EchoRequest { ident, seq, data } => (kind::ECHO_REQUEST, 0, ident, seq, data),
            Repr::EchoReply { ident, seq, data } => (kind::ECHO_REPLY, 0, ident, seq, data),
            Repr::DestUnreachable {
                code,
                next_hop_mtu,
                data,
            } => (kind::DEST_UNREACHABLE, code, 0, next_hop_mtu, data),
            Repr::TimeExceeded { code, data } => (kind::TIME_EXCEEDED, code, 0, 0, data),
            Repr::Other { msg_type, code } => (msg_type, code, 0, 0, &[]),
        };
        b[0] = t;
        b[1] = c;
        put16(b, 2, 0);
        put16(b, 4, w1);
        put16(b, 6, w2);
        b[HEADER_LEN..HEADER_LEN + data.len()].copy_from_slice(data);
        let ck = checksum::checksum(&b[..HEADER_LEN + data.len()]);
        put16(b, 2, ck);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn echo_to_reply_in_place() {
        let r = Repr::EchoRequest {
            ident: 7,
            seq: 9,
            data: b"hello",
        };
        let mut b = vec![0u8; r.buffer_len()];
        r.emit(&mut b);
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        p.echo_request_to_reply();
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(
            Repr::parse(&p).unwrap(),
            Repr::EchoReply {
                ident: 7,
                seq: 9,
                data: b"hello"
            }
        );
    }

    #[test]
    fn bad_checksum() {
        let mut b = vec![0u8; 8];
        Repr::EchoRequest {
            ident: 1,
            seq: 1,
            data: &[],
        }
        .emit(&mut b);
        b[5] ^= 0xff;
        assert_eq!(
            Repr::parse(&Packet::new_checked(&b[..]).unwrap()).unwrap_err(),
            Error::BadChecksum
        );
        assert_eq!(Packet::new_checked(&b[..7]).unwrap_err(), Error::Truncated);
    }

    proptest! {
        #[test]
        fn round_trip(kind in 0u8..4, a in any::<u16>(), b2 in any::<u16>(), code in any::<u8>(), data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let r = match kind {
                0 => Repr::EchoRequest { ident: a, seq: b2, data: &data },
                1 => Repr::EchoReply { ident: a, seq: b2, data: &data },
                2 => Repr::DestUnreachable { code, next_hop_mtu: b2, data: &data },
                _ => Repr::TimeExceeded { code, data: &data },
            };
            let mut b = vec![0u8; r.buffer_len()];
            r.emit(&mut b);
            let p = Packet::new_checked(&b[..]).unwrap();
            prop_assert_eq!(Repr::parse(&p).unwrap(), r);
        }
        #[test]
        fn garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(p) = Packet::new_checked(&data[..]) { let _ = Repr::parse(&p); }
        }
    }
}
