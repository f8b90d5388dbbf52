//! MPTCP cryptography (RFC 8684 §3.1, §3.2, §3.3.1, §3.4.1).

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::net::IpAddr;

type HmacSha256 = Hmac<Sha256>;

/// RFC 8684 §3.1: the token is the most significant 32 bits of the
/// SHA-256 hash of the key; the initial data sequence number is the least
/// significant 64 bits.
pub fn token_and_idsn(key: u64) -> (u32, u64) {
    let h = Sha256::digest(key.to_be_bytes());
    let token = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
    let mut l = [0u8; 8];
    l.copy_from_slice(&h[24..32]);
    (token, u64::from_be_bytes(l))
}

pub fn token(key: u64) -> u32 {
    token_and_idsn(key).0
}

pub fn idsn(key: u64) -> u64 {
    token_and_idsn(key).1
}

/// HMAC-SHA256 with the key `key1 || key2` (both big-endian).
pub fn hmac(key1: u64, key2: u64, msg: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&key1.to_be_bytes());
    k[8..].copy_from_slice(&key2.to_be_bytes());
    let mut m = match HmacSha256::new_from_slice(&k) {
        Ok(m) => m,
        Err(_) => return [0; 32], // HMAC accepts any key length
    };
    m.update(msg);
    m.finalize().into_bytes().into()
}

/// RFC 8684 §3.2: the HMAC an MP_JOIN endpoint sends, keyed with its own
/// key first and over its own nonce first: HMAC(Key=(Key-A+Key-B),
/// Msg=(R-A+R-B)) for the initiator A.
pub fn join_hmac(own_key: u64, peer_key: u64, own_nonce: u32, peer_nonce: u32) -> [u8; 32] {
    let mut msg = [0u8; 8];
    msg[..4].copy_from_slice(&own_nonce.to_be_bytes());
    msg[4..].copy_from_slice(&peer_nonce.to_be_bytes());
    hmac(own_key, peer_key, &msg)
}

/// The SYN/ACK carries the leftmost 64 bits.
pub fn join_hmac64(own_key: u64, peer_key: u64, own_nonce: u32, peer_nonce: u32) -> u64 {
    let h = join_hmac(own_key, peer_key, own_nonce, peer_nonce);
    let mut b = [0u8; 8];
    b.copy_from_slice(&h[..8]);
    u64::from_be_bytes(b)
}

/// The third ACK carries the leftmost 160 bits.
pub fn join_hmac160(own_key: u64, peer_key: u64, own_nonce: u32, peer_nonce: u32) -> [u8; 20] {
    let h = join_hmac(own_key, peer_key, own_nonce, peer_nonce);
    let mut b = [0u8; 20];
    b.copy_from_slice(&h[..20]);
    b
}

/// RFC 8684 §3.4.1: ADD_ADDR's truncated HMAC is the rightmost 64 bits of
/// HMAC(Key=(sender key + receiver key), Msg=(Address ID + IP Address +
/// Port)), the port being 0 when the option carries none.
pub fn add_addr_hmac(
    sender_key: u64,
    receiver_key: u64,
    id: u8,
    addr: IpAddr,
    port: Option<u16>,
) -> u64 {
    let mut msg = [0u8; 19];
    msg[0] = id;
    let n = match addr {
        IpAddr::V4(a) => {
            msg[1..5].copy_from_slice(&a.octets());
            5
        }
        IpAddr::V6(a) => {
            msg[1..17].copy_from_slice(&a.octets());
            17
        }
    };
    let p = port.unwrap_or(0);
    msg[n] = (p >> 8) as u8;
    msg[n + 1] = p as u8;
    let h = hmac(sender_key, receiver_key, &msg[..n + 2]);
    let mut b = [0u8; 8];
    b.copy_from_slice(&h[24..32]);
    u64::from_be_bytes(b)
}

/// RFC 8684 §3.3.1: the DSS checksum, over a pseudo-header (64-bit DSN,
/// 32-bit relative subflow sequence number, 16-bit data-level length, 16
/// zero bits) and the payload.
pub fn dss_checksum(dsn: u64, ssn: u32, len: u16, payload: &[u8]) -> u16 {
    let mut s = DssSum::default();
    s.add(payload);
    s.finish(dsn, ssn, len)
}

/// The DSS checksum of a mapping whose data arrives in pieces (a mapping
/// may span several segments, RFC 8684 §3.3.1): each piece is summed as it
/// comes ([`nf_core::wire::checksum::Pieces`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct DssSum {
    data: nf_core::wire::checksum::Pieces,
}

impl DssSum {
    pub fn add(&mut self, data: &[u8]) {
        self.data.add(data);
    }

    /// The checksum: the pseudo-header (64-bit DSN, 32-bit relative subflow
    /// sequence number, 16-bit data-level length, 16 zero bits) and the data.
    pub fn finish(&self, dsn: u64, ssn: u32, len: u16) -> u16 {
        use nf_core::wire::checksum;
        let mut ph = [0u8; 16];
        ph[..8].copy_from_slice(&dsn.to_be_bytes());
        ph[8..12].copy_from_slice(&ssn.to_be_bytes());
        ph[12..14].copy_from_slice(&len.to_be_bytes());
        !checksum::combine(&[checksum::sum(&ph), self.data.sum()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The key is key1||key2 big-endian and the SYN/ACK truncation is the
    /// leftmost 64 bits (RFC 8684 §3.2).
    #[test]
    fn hmac_matches_rfc_construction() {
        // HMAC keyed with key1||key2 over nonce1||nonce2, recomputed by hand
        let h = hmac(
            0x0102_0304_0506_0708,
            0x0807_0605_0403_0201,
            &[0, 0, 0, 1, 0, 0, 0, 2],
        );
        let mut m =
            HmacSha256::new_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8, 8, 7, 6, 5, 4, 3, 2, 1]).unwrap();
        m.update(&[0, 0, 0, 1, 0, 0, 0, 2]);
        assert_eq!(&h[..], &m.finalize().into_bytes()[..]);
        assert_eq!(
            join_hmac64(0x0102_0304_0506_0708, 0x0807_0605_0403_0201, 1, 2).to_be_bytes(),
            h[..8]
        );
    }

    /// The checksum in one pass, as RFC 8684 §3.3.1 describes it.
    fn reference(dsn: u64, ssn: u32, len: u16, payload: &[u8]) -> u16 {
        use nf_core::wire::checksum;
        let mut ph = [0u8; 16];
        ph[..8].copy_from_slice(&dsn.to_be_bytes());
        ph[8..12].copy_from_slice(&ssn.to_be_bytes());
        ph[12..14].copy_from_slice(&len.to_be_bytes());
        !checksum::combine(&[checksum::sum(&ph), checksum::sum(payload)])
    }

    proptest::proptest! {
        /// Summing a mapping's data in pieces of any sizes (odd ones
        /// included) gives the checksum of the whole.
        #[test]
        fn pieces_sum_like_the_whole(
            data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600),
            cuts in proptest::collection::vec(0usize..600, 0..6),
            dsn in proptest::prelude::any::<u64>(),
        ) {
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(data.len())).collect();
            cuts.sort_unstable();
            let mut s = DssSum::default();
            let mut at = 0;
            for c in cuts.into_iter().chain([data.len()]) {
                s.add(&data[at..c]);
                at = c;
            }
            let len = data.len() as u16;
            proptest::prop_assert_eq!(s.finish(dsn, 7, len), reference(dsn, 7, len, &data));
        }
    }

    #[test]
    fn dss_checksum_verifies_to_zero() {
        let payload = b"hello mptcp";
        let c = dss_checksum(0x1122_3344_5566_7788, 1, payload.len() as u16, payload);
        // summing everything including the checksum gives 0xffff
        let mut ph = [0u8; 16];
        ph[..8].copy_from_slice(&0x1122_3344_5566_7788u64.to_be_bytes());
        ph[8..12].copy_from_slice(&1u32.to_be_bytes());
        ph[12..14].copy_from_slice(&(payload.len() as u16).to_be_bytes());
        ph[14..16].copy_from_slice(&c.to_be_bytes());
        use nf_core::wire::checksum;
        assert_eq!(
            checksum::combine(&[checksum::sum(&ph), checksum::sum(payload)]),
            0xffff
        );
    }
}
