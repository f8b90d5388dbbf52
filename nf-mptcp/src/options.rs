//! RFC 8684 §3 options: one validated representation per subtype, with
//! `parse` (from the option body after kind and length) and `emit`.

use nf_core::wire::Error;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub mod subtype {
    pub const MP_CAPABLE: u8 = 0x0;
    pub const MP_JOIN: u8 = 0x1;
    pub const DSS: u8 = 0x2;
    pub const ADD_ADDR: u8 = 0x3;
    pub const REMOVE_ADDR: u8 = 0x4;
    pub const MP_PRIO: u8 = 0x5;
    pub const MP_FAIL: u8 = 0x6;
    pub const MP_FASTCLOSE: u8 = 0x7;
    pub const MP_TCPRST: u8 = 0x8;
}

/// MP_CAPABLE flags (RFC 8684 §3.1): A checksum required, B extensibility,
/// C do not attempt to connect to the source address, H HMAC-SHA256.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct CapFlags(pub u8);

impl CapFlags {
    pub const A: u8 = 0x80;
    pub const B: u8 = 0x40;
    pub const C: u8 = 0x20;
    pub const H: u8 = 0x01;
    /// What this implementation sends: HMAC-SHA256 (H), and checksums
    /// required (A) when asked for.
    pub fn ours(checksum: bool) -> CapFlags {
        CapFlags(Self::H | if checksum { Self::A } else { 0 })
    }
    pub fn checksum(self) -> bool {
        self.0 & Self::A != 0
    }
    pub fn hmac_sha256(self) -> bool {
        self.0 & Self::H != 0
    }
}

/// A DSS mapping (RFC 8684 §3.3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// Data sequence number (a 4-byte DSN is widened by the receiver).
    pub dsn: u64,
    pub dsn64: bool,
    /// Subflow sequence number, relative to the subflow's ISN.
    pub ssn: u32,
    pub len: u16,
    pub checksum: Option<u16>,
}

/// Every MPTCP option.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MptcpOption {
    /// SYN (no key), SYN/ACK (sender key), ACK (both keys), ACK with data
    /// (both keys and data-level length, optional checksum).
    Capable {
        version: u8,
        flags: CapFlags,
        sender_key: Option<u64>,
        receiver_key: Option<u64>,
        data_len: Option<u16>,
        checksum: Option<u16>,
    },
    JoinSyn {
        backup: bool,
        addr_id: u8,
        token: u32,
        nonce: u32,
    },
    JoinSynAck {
        backup: bool,
        addr_id: u8,
        hmac: u64,
        nonce: u32,
    },
    JoinAck {
        hmac: [u8; 20],
    },
    Dss {
        data_fin: bool,
        data_ack: Option<u64>,
        ack64: bool,
        mapping: Option<Mapping>,
    },
    AddAddr {
        echo: bool,
        addr_id: u8,
        addr: IpAddr,
        port: Option<u16>,
        hmac: Option<u64>,
    },
    RemoveAddr {
        count: u8,
        ids: [u8; 32],
    },
    Prio {
        backup: bool,
    },
    Fail {
        dsn: u64,
    },
    FastClose {
        receiver_key: u64,
    },
    TcpRst {
        flags: u8,
        reason: u8,
    },
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}
fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn be64(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(x)
}

/// MP_TCPRST reason codes (RFC 8684 §3.6).
pub mod rst_reason {
    pub const UNSPECIFIED: u8 = 0;
    pub const MPTCP_ERROR: u8 = 1;
    pub const LACK_OF_RESOURCES: u8 = 2;
    pub const ADMIN_PROHIBITED: u8 = 3;
    pub const TOO_MUCH_OUTSTANDING: u8 = 4;
    pub const UNACCEPTABLE_PERFORMANCE: u8 = 5;
    pub const MIDDLEBOX_INTERFERENCE: u8 = 6;
}

impl MptcpOption {
    /// Parses an option body `b` (everything after kind and length; the
    /// option length is `b.len() + 2`). `syn` and `ack` are the segment's
    /// flags: MP_CAPABLE and MP_JOIN forms depend on them.
    pub fn parse(b: &[u8], syn: bool, ack: bool) -> Result<MptcpOption, Error> {
        let first = *b.first().ok_or(Error::Truncated)?;
        let sub = first >> 4;
        let len = b.len() + 2;
        match sub {
            subtype::MP_CAPABLE => {
                let version = first & 0x0f;
                let flags = CapFlags(*b.get(1).ok_or(Error::Truncated)?);
                let opt = |sk, rk, dl, ck| MptcpOption::Capable {
                    version,
                    flags,
                    sender_key: sk,
                    receiver_key: rk,
                    data_len: dl,
                    checksum: ck,
                };
                match len {
                    // SYN: 4 (v1 carries no key in the SYN)
                    4 => Ok(opt(None, None, None, None)),
                    // SYN/ACK (or a v0 SYN): sender key
                    12 => Ok(opt(Some(be64(b, 2)), None, None, None)),
                    20 => Ok(opt(Some(be64(b, 2)), Some(be64(b, 10)), None, None)),
                    22 => Ok(opt(
                        Some(be64(b, 2)),
                        Some(be64(b, 10)),
                        Some(be16(b, 18)),
                        None,
                    )),
                    24 => Ok(opt(
                        Some(be64(b, 2)),
                        Some(be64(b, 10)),
                        Some(be16(b, 18)),
                        Some(be16(b, 20)),
                    )),
                    _ => Err(Error::BadLength),
                }
            }
            subtype::MP_JOIN => {
                let backup = first & 0x01 != 0;
                match (len, syn, ack) {
                    (12, true, false) => Ok(MptcpOption::JoinSyn {
                        backup,
                        addr_id: b[1],
                        token: be32(b, 2),
                        nonce: be32(b, 6),
                    }),
                    (16, true, true) => Ok(MptcpOption::JoinSynAck {
                        backup,
                        addr_id: b[1],
                        hmac: be64(b, 2),
                        nonce: be32(b, 10),
                    }),
                    (24, false, true) => {
                        let mut h = [0u8; 20];
                        h.copy_from_slice(&b[2..22]);
                        Ok(MptcpOption::JoinAck { hmac: h })
                    }
                    _ => Err(Error::BadLength),
                }
            }
            subtype::DSS => {
                let f = *b.get(1).ok_or(Error::Truncated)?;
                let (fin, m8, m, a8, a) = (
                    f & 0x10 != 0,
                    f & 0x08 != 0,
                    f & 0x04 != 0,
                    f & 0x02 != 0,
                    f & 0x01 != 0,
                );
                let mut at = 2;
                let ack_len = match (a, a8) {
                    (false, _) => 0,
                    (true, false) => 4,
                    (true, true) => 8,
                };
                let map_len = match (m, m8) {
                    (false, _) => 0,
                    (true, false) => 4 + 6,
                    (true, true) => 8 + 6,
                };
                let need = 4 + ack_len + map_len;
                // the checksum (2 bytes) is present when negotiated; the
                // length tells
                if len != need && !(m && len == need + 2) {
                    return Err(Error::BadLength);
                }
                let data_ack = if a {
                    let v = if a8 {
                        be64(b, at)
                    } else {
                        u64::from(be32(b, at))
                    };
                    at += if a8 { 8 } else { 4 };
                    Some(v)
                } else {
                    None
                };
                let mapping = if m {
                    let dsn = if m8 {
                        be64(b, at)
                    } else {
                        u64::from(be32(b, at))
                    };
                    at += if m8 { 8 } else { 4 };
                    let ssn = be32(b, at);
                    let dl = be16(b, at + 4);
                    at += 6;
                    let checksum = (len == need + 2).then(|| be16(b, at));
                    Some(Mapping {
                        dsn,
                        dsn64: m8,
                        ssn,
                        len: dl,
                        checksum,
                    })
                } else {
                    None
                };
                if fin && mapping.is_none() {
                    // DATA_FIN needs a mapping (RFC 8684 §3.3.3)
                    return Err(Error::Malformed);
                }
                Ok(MptcpOption::Dss {
                    data_fin: fin,
                    data_ack,
                    // the "a" flag means nothing without "A"
                    ack64: a && a8,
                    mapping,
                })
            }
            subtype::ADD_ADDR => {
                let echo = first & 0x01 != 0;
                let addr_id = *b.get(1).ok_or(Error::Truncated)?;
                let (v6, port, hmac) = match (len, echo) {
                    (8, true) => (false, false, false),
                    (10, true) => (false, true, false),
                    (16, false) => (false, false, true),
                    (18, false) => (false, true, true),
                    (20, true) => (true, false, false),
                    (22, true) => (true, true, false),
                    (28, false) => (true, false, true),
                    (30, false) => (true, true, true),
                    _ => return Err(Error::BadLength),
                };
                let mut at = 2;
                let addr = if v6 {
                    let mut a = [0u8; 16];
                    a.copy_from_slice(&b[at..at + 16]);
                    at += 16;
                    IpAddr::V6(Ipv6Addr::from(a))
                } else {
                    at += 4;
                    IpAddr::V4(Ipv4Addr::new(b[2], b[3], b[4], b[5]))
                };
                let port = port.then(|| {
                    let p = be16(b, at);
                    at += 2;
                    p
                });
                let hmac = hmac.then(|| be64(b, at));
                Ok(MptcpOption::AddAddr {
                    echo,
                    addr_id,
                    addr,
                    port,
                    hmac,
                })
            }
            subtype::REMOVE_ADDR => {
                if len < 4 || len - 3 > 32 {
                    return Err(Error::BadLength);
                }
                let mut ids = [0u8; 32];
                let n = len - 3;
                ids[..n].copy_from_slice(&b[1..1 + n]);
                Ok(MptcpOption::RemoveAddr {
                    count: n as u8,
                    ids,
                })
            }
            subtype::MP_PRIO => match len {
                3 => Ok(MptcpOption::Prio {
                    backup: first & 0x01 != 0,
                }),
                _ => Err(Error::BadLength),
            },
            subtype::MP_FAIL => match len {
                12 => Ok(MptcpOption::Fail { dsn: be64(b, 2) }),
                _ => Err(Error::BadLength),
            },
            subtype::MP_FASTCLOSE => match len {
                12 => Ok(MptcpOption::FastClose {
                    receiver_key: be64(b, 2),
                }),
                _ => Err(Error::BadLength),
            },
            subtype::MP_TCPRST => match len {
                4 => Ok(MptcpOption::TcpRst {
                    flags: first & 0x0f,
                    reason: b[1],
                }),
                _ => Err(Error::BadLength),
            },
            _ => Err(Error::Malformed),
        }
    }

    /// Option length including kind and length bytes.
    pub fn len(&self) -> usize {
        match self {
            MptcpOption::Capable {
                sender_key,
                receiver_key,
                data_len,
                checksum,
                ..
            } => match (sender_key, receiver_key, data_len, checksum) {
                (None, _, _, _) => 4,
                (Some(_), None, _, _) => 12,
                (Some(_), Some(_), None, _) => 20,
                (Some(_), Some(_), Some(_), None) => 22,
                (Some(_), Some(_), Some(_), Some(_)) => 24,
            },
            MptcpOption::JoinSyn { .. } => 12,
            MptcpOption::JoinSynAck { .. } => 16,
            MptcpOption::JoinAck { .. } => 24,
            MptcpOption::Dss {
                data_ack,
                ack64,
                mapping,
                ..
            } => {
                let a = match (data_ack, ack64) {
                    (None, _) => 0,
                    (Some(_), true) => 8,
                    (Some(_), false) => 4,
                };
                let m = mapping.map_or(0, |m| {
                    (if m.dsn64 { 8 } else { 4 }) + 6 + (if m.checksum.is_some() { 2 } else { 0 })
                });
                4 + a + m
            }
            MptcpOption::AddAddr {
                addr, port, hmac, ..
            } => {
                4 + (if addr.is_ipv4() { 4 } else { 16 })
                    + port.map_or(0, |_| 2)
                    + hmac.map_or(0, |_| 8)
            }
            MptcpOption::RemoveAddr { count, .. } => 3 + usize::from(*count),
            MptcpOption::Prio { .. } => 3,
            MptcpOption::Fail { .. } | MptcpOption::FastClose { .. } => 12,
            MptcpOption::TcpRst { .. } => 4,
        }
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// Writes the option body (without kind and length) into `b`, which must
    /// hold `len() - 2` bytes. Returns the body length.
    pub fn emit(&self, b: &mut [u8]) -> usize {
        let n = self.len() - 2;
        let b = &mut b[..n];
        b.fill(0);
        match *self {
            MptcpOption::Capable {
                version,
                flags,
                sender_key,
                receiver_key,
                data_len,
                checksum,
            } => {
                b[0] = (subtype::MP_CAPABLE << 4) | (version & 0x0f);
                b[1] = flags.0;
                if let Some(k) = sender_key {
                    b[2..10].copy_from_slice(&k.to_be_bytes());
                }
                if let Some(k) = receiver_key {
                    b[10..18].copy_from_slice(&k.to_be_bytes());
                }
                if let Some(l) = data_len {
                    b[18..20].copy_from_slice(&l.to_be_bytes());
                }
                if let Some(c) = checksum {
                    b[20..22].copy_from_slice(&c.to_be_bytes());
                }
            }
            MptcpOption::JoinSyn {
                backup,
                addr_id,
                token,
                nonce,
            } => {
                b[0] = (subtype::MP_JOIN << 4) | u8::from(backup);
                b[1] = addr_id;
                b[2..6].copy_from_slice(&token.to_be_bytes());
                b[6..10].copy_from_slice(&nonce.to_be_bytes());
            }
            MptcpOption::JoinSynAck {
                backup,
                addr_id,
                hmac,
                nonce,
            } => {
                b[0] = (subtype::MP_JOIN << 4) | u8::from(backup);
                b[1] = addr_id;
                b[2..10].copy_from_slice(&hmac.to_be_bytes());
                b[10..14].copy_from_slice(&nonce.to_be_bytes());
            }
            MptcpOption::JoinAck { hmac } => {
                b[0] = subtype::MP_JOIN << 4;
                b[2..22].copy_from_slice(&hmac);
            }
            MptcpOption::Dss {
                data_fin,
                data_ack,
                ack64,
                mapping,
            } => {
                b[0] = subtype::DSS << 4;
                let mut f = 0u8;
                let mut at = 2;
                if let Some(a) = data_ack {
                    f |= 0x01;
                    if ack64 {
                        f |= 0x02;
                        b[at..at + 8].copy_from_slice(&a.to_be_bytes());
                        at += 8;
                    } else {
                        b[at..at + 4].copy_from_slice(&(a as u32).to_be_bytes());
                        at += 4;
                    }
                }
                if let Some(m) = mapping {
                    f |= 0x04;
                    if m.dsn64 {
                        f |= 0x08;
                        b[at..at + 8].copy_from_slice(&m.dsn.to_be_bytes());
                        at += 8;
                    } else {
                        b[at..at + 4].copy_from_slice(&(m.dsn as u32).to_be_bytes());
                        at += 4;
                    }
                    b[at..at + 4].copy_from_slice(&m.ssn.to_be_bytes());
                    b[at + 4..at + 6].copy_from_slice(&m.len.to_be_bytes());
                    at += 6;
                    if let Some(c) = m.checksum {
                        b[at..at + 2].copy_from_slice(&c.to_be_bytes());
                    }
                }
                if data_fin {
                    f |= 0x10;
                }
                b[1] = f;
            }
            MptcpOption::AddAddr {
                echo,
                addr_id,
                addr,
                port,
                hmac,
            } => {
                b[0] = (subtype::ADD_ADDR << 4) | u8::from(echo);
                b[1] = addr_id;
                let mut at = 2;
                match addr {
                    IpAddr::V4(a) => {
                        b[2..6].copy_from_slice(&a.octets());
                        at += 4;
                    }
                    IpAddr::V6(a) => {
                        b[2..18].copy_from_slice(&a.octets());
                        at += 16;
                    }
                }
                if let Some(p) = port {
                    b[at..at + 2].copy_from_slice(&p.to_be_bytes());
                    at += 2;
                }
                if let Some(h) = hmac {
                    b[at..at + 8].copy_from_slice(&h.to_be_bytes());
                }
            }
            MptcpOption::RemoveAddr { count, ids } => {
                b[0] = subtype::REMOVE_ADDR << 4;
                let c = usize::from(count).min(32);
                b[1..1 + c].copy_from_slice(&ids[..c]);
            }
            MptcpOption::Prio { backup } => b[0] = (subtype::MP_PRIO << 4) | u8::from(backup),
            MptcpOption::Fail { dsn } => {
                b[0] = subtype::MP_FAIL << 4;
                b[2..10].copy_from_slice(&dsn.to_be_bytes());
            }
            MptcpOption::FastClose { receiver_key } => {
                b[0] = subtype::MP_FASTCLOSE << 4;
                b[2..10].copy_from_slice(&receiver_key.to_be_bytes());
            }
            MptcpOption::TcpRst { flags, reason } => {
                b[0] = (subtype::MP_TCPRST << 4) | (flags & 0x0f);
                b[1] = reason;
            }
        }
        n
    }

    /// The ADD_ADDR / REMOVE_ADDR list as a slice.
    pub fn removed_ids(&self) -> &[u8] {
        match self {
            MptcpOption::RemoveAddr { count, ids } => &ids[..usize::from(*count).min(32)],
            _ => &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rt(o: MptcpOption, syn: bool, ack: bool) {
        let mut b = [0u8; 40];
        let n = o.emit(&mut b);
        assert_eq!(n + 2, o.len());
        assert_eq!(MptcpOption::parse(&b[..n], syn, ack), Ok(o));
    }

    #[test]
    fn linux_syn_mp_capable_v1() {
        // kind 30 len 4 subtype 0 version 1, flags A|H = 0x81 (as Linux sends
        // with checksums requested) — here Linux's default: 0x01 (H only)
        assert_eq!(
            MptcpOption::parse(&[0x01, 0x01], true, false),
            Ok(MptcpOption::Capable {
                version: 1,
                flags: CapFlags(1),
                sender_key: None,
                receiver_key: None,
                data_len: None,
                checksum: None
            })
        );
    }

    #[test]
    fn every_option_round_trips() {
        let k = 0x0123_4567_89ab_cdef;
        rt(
            MptcpOption::Capable {
                version: 1,
                flags: CapFlags(0x81),
                sender_key: Some(k),
                receiver_key: None,
                data_len: None,
                checksum: None,
            },
            true,
            true,
        );
        rt(
            MptcpOption::Capable {
                version: 1,
                flags: CapFlags(0x01),
                sender_key: Some(k),
                receiver_key: Some(!k),
                data_len: None,
                checksum: None,
            },
            false,
            true,
        );
        rt(
            MptcpOption::Capable {
                version: 1,
                flags: CapFlags(0x01),
                sender_key: Some(k),
                receiver_key: Some(!k),
                data_len: Some(100),
                checksum: None,
            },
            false,
            true,
        );
        rt(
            MptcpOption::Capable {
                version: 1,
                flags: CapFlags(0x81),
                sender_key: Some(k),
                receiver_key: Some(!k),
                data_len: Some(100),
                checksum: Some(0xbeef),
            },
            false,
            true,
        );
        rt(
            MptcpOption::JoinSyn {
                backup: true,
                addr_id: 3,
                token: 0xdead_beef,
                nonce: 42,
            },
            true,
            false,
        );
        rt(
            MptcpOption::JoinSynAck {
                backup: false,
                addr_id: 0,
                hmac: k,
                nonce: 7,
            },
            true,
            true,
        );
        rt(MptcpOption::JoinAck { hmac: [9; 20] }, false, true);
        rt(
            MptcpOption::Dss {
                data_fin: false,
                data_ack: Some(5),
                ack64: false,
                mapping: None,
            },
            false,
            true,
        );
        rt(
            MptcpOption::Dss {
                data_fin: true,
                data_ack: Some(k),
                ack64: true,
                mapping: Some(Mapping {
                    dsn: k,
                    dsn64: true,
                    ssn: 1,
                    len: 1400,
                    checksum: Some(3),
                }),
            },
            false,
            true,
        );
        rt(
            MptcpOption::AddAddr {
                echo: false,
                addr_id: 2,
                addr: "2001:db8:c::1".parse().unwrap(),
                port: None,
                hmac: Some(k),
            },
            false,
            true,
        );
        rt(
            MptcpOption::AddAddr {
                echo: true,
                addr_id: 2,
                addr: "192.0.2.1".parse().unwrap(),
                port: Some(5201),
                hmac: None,
            },
            false,
            true,
        );
        let mut ids = [0u8; 32];
        ids[..3].copy_from_slice(&[1, 2, 3]);
        rt(MptcpOption::RemoveAddr { count: 3, ids }, false, true);
        rt(MptcpOption::Prio { backup: true }, false, true);
        rt(MptcpOption::Fail { dsn: k }, false, true);
        rt(MptcpOption::FastClose { receiver_key: k }, false, true);
        rt(
            MptcpOption::TcpRst {
                flags: 0x1,
                reason: rst_reason::MIDDLEBOX_INTERFERENCE,
            },
            false,
            true,
        );
    }

    #[test]
    fn wrong_lengths_and_subtypes() {
        assert_eq!(MptcpOption::parse(&[], false, true), Err(Error::Truncated));
        assert_eq!(
            MptcpOption::parse(&[0x01, 0x01, 0], true, false),
            Err(Error::BadLength)
        );
        assert_eq!(
            MptcpOption::parse(&[0x10; 10], false, true),
            Err(Error::BadLength),
            "JOIN SYN form without SYN"
        );
        assert_eq!(
            MptcpOption::parse(&[0x20, 0x01, 0, 0, 0, 0], false, true),
            Ok(MptcpOption::Dss {
                data_fin: false,
                data_ack: Some(0),
                ack64: false,
                mapping: None
            })
        );
        assert_eq!(
            MptcpOption::parse(&[0x20, 0x01, 0, 0, 0], false, true),
            Err(Error::BadLength)
        );
        assert_eq!(
            MptcpOption::parse(&[0x20, 0x10], false, true),
            Err(Error::Malformed),
            "DATA_FIN without mapping"
        );
        assert_eq!(
            MptcpOption::parse(&[0x90, 0], false, true),
            Err(Error::Malformed),
            "unknown subtype"
        );
        assert_eq!(
            MptcpOption::parse(&[0x30, 1, 1, 2, 3], false, true),
            Err(Error::BadLength)
        );
    }

    fn arb() -> impl Strategy<Value = (MptcpOption, bool, bool)> {
        let ip = prop_oneof![
            any::<u32>().prop_map(|a| IpAddr::V4(a.into())),
            any::<u128>().prop_map(|a| IpAddr::V6(a.into()))
        ];
        prop_oneof![
            (
                0u8..16,
                any::<u8>(),
                proptest::option::of(any::<u64>()),
                any::<u64>(),
                0u8..4
            )
                .prop_map(|(v, f, sk, rk, form)| {
                    let o = match (sk, form) {
                        (None, _) => MptcpOption::Capable {
                            version: v,
                            flags: CapFlags(f),
                            sender_key: None,
                            receiver_key: None,
                            data_len: None,
                            checksum: None,
                        },
                        (Some(s), 0) => MptcpOption::Capable {
                            version: v,
                            flags: CapFlags(f),
                            sender_key: Some(s),
                            receiver_key: None,
                            data_len: None,
                            checksum: None,
                        },
                        (Some(s), 1) => MptcpOption::Capable {
                            version: v,
                            flags: CapFlags(f),
                            sender_key: Some(s),
                            receiver_key: Some(rk),
                            data_len: None,
                            checksum: None,
                        },
                        (Some(s), 2) => MptcpOption::Capable {
                            version: v,
                            flags: CapFlags(f),
                            sender_key: Some(s),
                            receiver_key: Some(rk),
                            data_len: Some(rk as u16),
                            checksum: None,
                        },
                        (Some(s), _) => MptcpOption::Capable {
                            version: v,
                            flags: CapFlags(f),
                            sender_key: Some(s),
                            receiver_key: Some(rk),
                            data_len: Some(rk as u16),
                            checksum: Some((rk >> 16) as u16),
                        },
                    };
                    (o, true, true)
                }),
            (any::<bool>(), any::<u8>(), any::<u32>(), any::<u32>()).prop_map(|(b, a, t, n)| (
                MptcpOption::JoinSyn {
                    backup: b,
                    addr_id: a,
                    token: t,
                    nonce: n
                },
                true,
                false
            )),
            (any::<bool>(), any::<u8>(), any::<u64>(), any::<u32>()).prop_map(|(b, a, h, n)| (
                MptcpOption::JoinSynAck {
                    backup: b,
                    addr_id: a,
                    hmac: h,
                    nonce: n
                },
                true,
                true
            )),
            any::<[u8; 20]>().prop_map(|h| (MptcpOption::JoinAck { hmac: h }, false, true)),
            (
                any::<bool>(),
                proptest::option::of(any::<u64>()),
                any::<bool>(),
                proptest::option::of((
                    any::<u64>(),
                    any::<bool>(),
                    any::<u32>(),
                    any::<u16>(),
                    proptest::option::of(any::<u16>())
                ))
            )
                .prop_map(|(fin, a, a8, m)| {
                    let mapping = m.map(|(d, d8, s, l, c)| Mapping {
                        dsn: if d8 { d } else { d & 0xffff_ffff },
                        dsn64: d8,
                        ssn: s,
                        len: l,
                        checksum: c,
                    });
                    let data_ack = a.map(|x| if a8 { x } else { x & 0xffff_ffff });
                    (
                        MptcpOption::Dss {
                            data_fin: fin && mapping.is_some(),
                            data_ack,
                            ack64: a8 && data_ack.is_some(),
                            mapping,
                        },
                        false,
                        true,
                    )
                }),
            (
                any::<bool>(),
                any::<u8>(),
                ip,
                proptest::option::of(any::<u16>()),
                any::<u64>()
            )
                .prop_map(|(e, id, addr, port, h)| (
                    MptcpOption::AddAddr {
                        echo: e,
                        addr_id: id,
                        addr,
                        port,
                        hmac: (!e).then_some(h)
                    },
                    false,
                    true
                )),
            proptest::collection::vec(any::<u8>(), 1..=32).prop_map(|v| {
                let mut ids = [0u8; 32];
                ids[..v.len()].copy_from_slice(&v);
                (
                    MptcpOption::RemoveAddr {
                        count: v.len() as u8,
                        ids,
                    },
                    false,
                    true,
                )
            }),
            any::<bool>().prop_map(|b| (MptcpOption::Prio { backup: b }, false, true)),
            any::<u64>().prop_map(|d| (MptcpOption::Fail { dsn: d }, false, true)),
            any::<u64>().prop_map(|k| (MptcpOption::FastClose { receiver_key: k }, false, true)),
            (0u8..16, any::<u8>()).prop_map(|(f, r)| (
                MptcpOption::TcpRst {
                    flags: f,
                    reason: r
                },
                false,
                true
            )),
        ]
    }

    proptest! {
        #[test]
        fn parse_emit_round_trip((o, syn, ack) in arb()) {
            prop_assume!(o.len() <= 40);
            let mut b = [0u8; 40];
            let n = o.emit(&mut b);
            prop_assert_eq!(n + 2, o.len());
            let parsed = MptcpOption::parse(&b[..n], syn, ack);
            // ack64 without a data ack is not representable on the wire
            let expect = match o {
                MptcpOption::Dss { data_fin, data_ack: None, mapping, .. } => MptcpOption::Dss { data_fin, data_ack: None, ack64: false, mapping },
                x => x,
            };
            prop_assert_eq!(parsed, Ok(expect));
        }
        #[test]
        fn garbage_never_panics(b in proptest::collection::vec(any::<u8>(), 0..40), syn in any::<bool>(), ack in any::<bool>()) {
            if let Ok(o) = MptcpOption::parse(&b, syn, ack) {
                let mut out = [0u8; 40];
                let n = o.emit(&mut out);
                prop_assert_eq!(MptcpOption::parse(&out[..n], syn, ack), Ok(o));
            }
        }
    }
}
