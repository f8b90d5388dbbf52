//! Receive-side scaling in software (the Toeplitz hash of Microsoft's RSS
//! specification, as NICs and DPDK's `rte_thash` compute it): with the key
//! and redirection table hagw programs into its ports, hagw can tell which
//! queue — which worker — a packet will arrive on before it exists, and
//! picks NAT ports so that a server's replies arrive on the worker that owns
//! the session (DESIGN.md §4).

use std::net::IpAddr;

/// The key hagw programs into every port (the RSS specification's sample
/// key, 40 bytes: what most NICs use by default).
pub const KEY: [u8; 40] = [
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0,
    0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c,
    0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
];

/// The Toeplitz hash of `input` under `key` (which must be at least 4 bytes
/// longer than `input`; missing key bits count as 0).
pub fn toeplitz(key: &[u8], input: &[u8]) -> u32 {
    let bit = |i: usize| -> u32 {
        key.get(i / 8)
            .map_or(0, |b| u32::from((b >> (7 - i % 8)) & 1))
    };
    // the 32-bit window of the key starting at the current input bit
    let mut window: u32 = key.iter().take(4).fold(0, |w, &b| (w << 8) | u32::from(b));
    let mut h = 0u32;
    for (i, byte) in input.iter().enumerate() {
        for b in 0..8 {
            if byte & (0x80 >> b) != 0 {
                h ^= window;
            }
            window = (window << 1) | bit(32 + i * 8 + b);
        }
    }
    h
}

/// A port's RSS setup as hagw programmed it: the hash key and the
/// redirection table (entry → RX queue; queue i is worker i's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rss {
    pub key: Vec<u8>,
    pub reta: Vec<u16>,
}

impl Rss {
    /// The queue a TCP packet from `src:sport` to `dst:dport` is received
    /// on (RSS over addresses and ports, IPv4 and IPv6).
    pub fn queue(&self, src: IpAddr, dst: IpAddr, sport: u16, dport: u16) -> u16 {
        let mut input = [0u8; 36];
        let n = match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                input[..4].copy_from_slice(&s.octets());
                input[4..8].copy_from_slice(&d.octets());
                8
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                input[..16].copy_from_slice(&s.octets());
                input[16..32].copy_from_slice(&d.octets());
                32
            }
            _ => return 0,
        };
        input[n..n + 2].copy_from_slice(&sport.to_be_bytes());
        input[n + 2..n + 4].copy_from_slice(&dport.to_be_bytes());
        let h = toeplitz(&self.key, &input[..n + 4]);
        match self.reta.len() {
            0 => 0,
            l => self.reta.get(h as usize % l).copied().unwrap_or(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verification_suite_of_the_rss_specification() {
        // Microsoft "Verifying the RSS Hash Calculation", IPv4 with TCP
        // ports: (source, destination) as received
        // source, port, destination, port, hash of the addresses, with ports
        type Case = ([u8; 4], u16, [u8; 4], u16, u32, u32);
        let cases: [Case; 3] = [
            (
                [66, 9, 149, 187],
                2794,
                [161, 142, 100, 80],
                1766,
                0x323e_8fc2,
                0x51cc_c178,
            ),
            (
                [199, 92, 111, 2],
                14230,
                [65, 69, 140, 83],
                4739,
                0xd718_262a,
                0xc626_b0ea,
            ),
            (
                [24, 19, 198, 95],
                12898,
                [12, 22, 207, 184],
                38024,
                0xd2d0_a5de,
                0x5c2b_394a,
            ),
        ];
        for (s, sp, d, dp, ip_only, with_ports) in cases {
            let mut input = Vec::new();
            input.extend_from_slice(&s);
            input.extend_from_slice(&d);
            assert_eq!(toeplitz(&KEY, &input), ip_only, "{s:?} -> {d:?}");
            input.extend_from_slice(&sp.to_be_bytes());
            input.extend_from_slice(&dp.to_be_bytes());
            assert_eq!(
                toeplitz(&KEY, &input),
                with_ports,
                "{s:?}:{sp} -> {d:?}:{dp}"
            );
        }
        let rss = Rss {
            key: KEY.to_vec(),
            reta: (0..128).map(|i| i % 4).collect(),
        };
        let q = rss.queue(
            [66, 9, 149, 187].into(),
            [161, 142, 100, 80].into(),
            2794,
            1766,
        );
        assert_eq!(q, ((0x51cc_c178u32 % 128) % 4) as u16);
    }
}
