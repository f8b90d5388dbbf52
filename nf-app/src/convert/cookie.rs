//! SYN cookies for MP_CAPABLE SYNs (RFC 4987 §3.6): when the half-open
//! budget is spent (a SYN flood), hagw answers the client itself with a
//! SYN/ACK whose sequence number is a cookie and keeps no state; the
//! client's third ACK proves it is real and creates the session.
//!
//! The cookie (our ISN) packs a 64-second time slot, the client's MSS as
//! an index and whether it asked for DSS checksums, under a 23-bit MAC of
//! all that, the 4-tuple and the client's ISN (HMAC-SHA256 with a secret
//! from the CSPRNG). hagw's MPTCP key (RFC 8684 §3.1) is derived from the
//! same secret, the 4-tuple and the cookie: the third ACK echoes it in
//! MP_CAPABLE, so it is checked too. When the client uses timestamps, its
//! window scale and SACK-permitted ride in the low five bits of the
//! SYN/ACK's TSval, which the ACK echoes (as Linux does); without
//! timestamps the cookie SYN/ACK offers neither.

use nf_core::sim::Time;
use nf_mptcp::crypto;
use nf_tcp::Seq;
use std::net::IpAddr;

/// The MSS values a cookie can carry (the largest not above the client's).
const MSS: [u16; 4] = [536, 1220, 1440, 1460];
/// Seconds per time slot; a cookie is valid in its slot and the next.
const SLOT_S: u64 = 64;

/// The connection a cookie is for, as the client sent it.
#[derive(Clone, Copy, Debug)]
pub struct Tuple {
    pub client: (IpAddr, u16),
    pub server: (IpAddr, u16),
}

impl Tuple {
    fn bytes(&self, out: &mut Vec<u8>) {
        for (a, p) in [self.client, self.server] {
            match a {
                IpAddr::V4(v) => out.extend_from_slice(&v.octets()),
                IpAddr::V6(v) => out.extend_from_slice(&v.octets()),
            }
            out.extend_from_slice(&p.to_be_bytes());
        }
    }
}

/// What a valid cookie gives back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cookie {
    pub mss: u16,
    /// The client asked for DSS checksums (the A flag of its SYN).
    pub checksum: bool,
}

pub struct Cookies {
    secret: (u64, u64),
}

impl Cookies {
    /// `secret`: 128 bits from the CSPRNG.
    pub fn new(secret: (u64, u64)) -> Self {
        Cookies { secret }
    }

    fn mac(&self, t: &Tuple, client_isn: Seq, low9: u32) -> u32 {
        let mut m = Vec::with_capacity(48);
        m.extend_from_slice(b"cookie");
        t.bytes(&mut m);
        m.extend_from_slice(&client_isn.0.to_be_bytes());
        m.extend_from_slice(&low9.to_be_bytes());
        let h = crypto::hmac(self.secret.0, self.secret.1, &m);
        u32::from_be_bytes([h[0], h[1], h[2], h[3]]) >> 9
    }

    /// The ISN of a cookie SYN/ACK for a SYN with `client_isn`, the
    /// client's MSS and checksum wish, at `now`; and the MSS it stands for.
    pub fn make(
        &self,
        now: Time,
        t: &Tuple,
        client_isn: Seq,
        mss: u16,
        checksum: bool,
    ) -> (Seq, u16) {
        let idx = MSS.iter().rposition(|&m| m <= mss).unwrap_or(0);
        let slot = ((now / 1_000_000_000 / SLOT_S) & 0x3f) as u32;
        let low9 = (slot << 3) | ((idx as u32) << 1) | u32::from(checksum);
        let isn = (self.mac(t, client_isn, low9) << 9) | low9;
        (Seq(isn), MSS[idx])
    }

    /// The cookie the ACK `ack - 1` carries, if valid now for this tuple
    /// and the client's ISN (`seq - 1` of the ACK).
    pub fn check(&self, now: Time, t: &Tuple, client_isn: Seq, cookie: Seq) -> Option<Cookie> {
        let low9 = cookie.0 & 0x1ff;
        let slot = u64::from(low9 >> 3);
        let cur = (now / 1_000_000_000 / SLOT_S) & 0x3f;
        // this slot or the one before (64 to 128 s)
        if slot != cur && slot != (cur + 63) & 0x3f {
            return None;
        }
        if cookie.0 >> 9 != self.mac(t, client_isn, low9) {
            return None;
        }
        Some(Cookie {
            mss: MSS[((low9 >> 1) & 3) as usize],
            checksum: low9 & 1 == 1,
        })
    }

    /// hagw's MPTCP key for the connection of `cookie` (never 0).
    pub fn key(&self, t: &Tuple, cookie: Seq) -> u64 {
        let mut m = Vec::with_capacity(48);
        m.extend_from_slice(b"key");
        t.bytes(&mut m);
        m.extend_from_slice(&cookie.0.to_be_bytes());
        let h = crypto::hmac(self.secret.0, self.secret.1, &m);
        let mut k = [0u8; 8];
        k.copy_from_slice(&h[..8]);
        u64::from_be_bytes(k).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;

    fn tuple(port: u16) -> Tuple {
        Tuple {
            client: ("192.0.2.2".parse().unwrap(), port),
            server: ("198.51.100.2".parse().unwrap(), 5201),
        }
    }

    #[test]
    fn a_cookie_checks_for_its_connection_only_and_only_for_a_while() {
        let c = Cookies::new((1, 2));
        let t = tuple(40000);
        let (isn, mss) = c.make(1000 * SEC, &t, Seq(77), 1400, true);
        assert_eq!(mss, 1220);
        let ok = Some(Cookie {
            mss: 1220,
            checksum: true,
        });
        assert_eq!(c.check(1000 * SEC, &t, Seq(77), isn), ok);
        assert_eq!(c.check(1050 * SEC, &t, Seq(77), isn), ok, "next slot");
        assert_eq!(c.check(1200 * SEC, &t, Seq(77), isn), None, "expired");
        assert_eq!(c.check(1000 * SEC, &tuple(40001), Seq(77), isn), None);
        assert_eq!(c.check(1000 * SEC, &t, Seq(78), isn), None, "client ISN");
        assert_eq!(c.check(1000 * SEC, &t, Seq(77), isn + 1), None);
        assert_eq!(
            Cookies::new((1, 3)).check(1000 * SEC, &t, Seq(77), isn),
            None
        );
        assert_ne!(c.key(&t, isn), c.key(&tuple(40001), isn));
    }

    #[test]
    fn guessed_cookies_fail() {
        // a forged cookie passes about once in 2^23 per time slot it can
        // name: none of 200,000 guesses around the real one does
        let c = Cookies::new((9, 9));
        let t = tuple(40000);
        let (real, _) = c.make(0, &t, Seq(5), 1460, false);
        let passed = (0..200_000u32)
            .map(|k| Seq(real.0.wrapping_add(k.wrapping_mul(2_654_435_761) | 1)))
            .filter(|&g| c.check(0, &t, Seq(5), g).is_some())
            .count();
        assert_eq!(passed, 0);
    }
}
