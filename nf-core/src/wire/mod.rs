//! Zero-copy packet views and validated representations.
//!
//! Every protocol has a `Packet<T: AsRef<[u8]>>` view whose `new_checked`
//! validates lengths once, after which the field accessors cannot go out of
//! bounds, and (where the data path builds packets) a `Repr` with `parse` and
//! `emit`. Parsers are total: any input gives `Ok` or an [`Error`] naming the
//! reason, never a panic.

pub mod arp;
pub mod checksum;
pub mod ethernet;
pub mod icmpv4;
pub mod icmpv6;
pub mod ipv4;
pub mod ipv6;
pub mod tcp;
pub mod udp;

pub use ethernet::{EtherType, EthernetAddress};

/// Why a packet was refused. Each variant is a counter label on /metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Error {
    /// Shorter than its fixed header.
    Truncated,
    /// A length field points beyond the buffer or below the header.
    BadLength,
    /// Version field is not what the ethertype promised.
    BadVersion,
    /// Header checksum does not verify.
    BadChecksum,
    /// An option or extension header is malformed.
    BadOption,
    /// Field values that the protocol forbids (e.g. ARP hardware type).
    Malformed,
    /// Too many IPv6 extension headers.
    TooManyExtHeaders,
}

impl Error {
    /// Every variant, in counter order.
    pub const ALL: [Error; 7] = [
        Error::Truncated,
        Error::BadLength,
        Error::BadVersion,
        Error::BadChecksum,
        Error::BadOption,
        Error::Malformed,
        Error::TooManyExtHeaders,
    ];

    /// A stable label for metrics.
    #[inline]
    pub fn as_str(self) -> &'static str {
        match self {
            Error::Truncated => "truncated",
            Error::BadLength => "bad_length",
            Error::BadVersion => "bad_version",
            Error::BadChecksum => "bad_checksum",
            Error::BadOption => "bad_option",
            Error::Malformed => "malformed",
            Error::TooManyExtHeaders => "too_many_ext_headers",
        }
    }

    /// Index into a counter array.
    #[inline]
    pub fn index(self) -> usize {
        self as usize
    }
}

impl core::fmt::Display for Error {
    #[inline]
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Result of a parse.
pub type Result<T> = core::result::Result<T, Error>;

/// IP protocol numbers used by hagw.
pub mod ip_proto {
    pub const HOPOPTS: u8 = 0;
    pub const ICMP: u8 = 1;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const IPV6_ROUTE: u8 = 43;
    pub const IPV6_FRAG: u8 = 44;
    pub const ICMPV6: u8 = 58;
    pub const IPV6_NONXT: u8 = 59;
    pub const IPV6_OPTS: u8 = 60;
}

#[inline]
pub(crate) fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}
#[inline]
pub(crate) fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
#[inline]
pub(crate) fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}
#[inline]
pub(crate) fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}
