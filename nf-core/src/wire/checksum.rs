//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).

use core::net::{Ipv4Addr, Ipv6Addr};

/// Ones'-complement sum of `data` (not yet complemented), folded to 16
/// bits, as a network-order value.
///
/// RFC 1071 §2(B): the sum is byte-order independent, so the words are
/// added in the machine's own order (no byte swap per word; eight
/// independent lanes the compiler turns into vector adds) and only the
/// folded result is swapped. Twice as fast as big-endian words on a
/// 1,500-byte payload, the same on a header.
#[inline]
pub fn sum(data: &[u8]) -> u32 {
    let mut lanes = [0u64; 8];
    let mut blocks = data.chunks_exact(32);
    for b in &mut blocks {
        for (i, l) in lanes.iter_mut().enumerate() {
            *l += u64::from(u32::from_ne_bytes([
                b[4 * i],
                b[4 * i + 1],
                b[4 * i + 2],
                b[4 * i + 3],
            ]));
        }
    }
    // 2^26 blocks at most before a lane could overflow: far beyond a frame
    let mut acc: u64 = lanes.iter().sum();
    let mut words = blocks.remainder().chunks_exact(4);
    for w in &mut words {
        acc += u64::from(u32::from_ne_bytes([w[0], w[1], w[2], w[3]]));
    }
    let rest = words.remainder();
    if rest.len() >= 2 {
        acc += u64::from(u16::from_ne_bytes([rest[0], rest[1]]));
    }
    if rest.len() % 2 == 1 {
        // the odd last byte is the high byte of a zero-padded word
        acc += u64::from(u16::from_ne_bytes([rest[rest.len() - 1], 0]));
    }
    u32::from(fold(fold64(acc)).to_be())
}

/// Folds a 64-bit partial sum to 32 bits: the halves added with the
/// end-around carry, once (no loop: two halves sum to at most
/// 2^33 - 2, so with the carry added back the result fits). 0 stays 0 and
/// any other sum gives a value in 1..=0xffff_ffff, as folding until it
/// fits does.
#[inline]
fn fold64(acc: u64) -> u32 {
    let (s, carry) = (acc as u32).overflowing_add((acc >> 32) as u32);
    s + u32::from(carry)
}

/// Folds a 32-bit partial sum to 16 bits (as [`fold64`], one step).
#[inline]
pub fn fold(acc: u32) -> u16 {
    let (s, carry) = (acc as u16).overflowing_add((acc >> 16) as u16);
    s + u16::from(carry)
}

/// Combines partial sums.
#[inline]
pub fn combine(parts: &[u32]) -> u16 {
    let acc: u64 = parts.iter().map(|&p| u64::from(p)).sum();
    fold(fold64(acc))
}

/// The sum of data that comes in pieces, as [`sum`] of one buffer holding
/// them all: a piece that starts at an odd offset is summed byte-swapped
/// (RFC 1071 §2(B), byte-order independence). Payload chained as separate
/// segments, or a DSS mapping spread over several segments, is summed where
/// it lies.
#[derive(Clone, Copy, Debug, Default)]
pub struct Pieces {
    /// The sum so far, folded to 16 bits.
    acc: u16,
    odd: bool,
}

impl Pieces {
    #[inline]
    pub fn add(&mut self, data: &[u8]) {
        let s = fold(sum(data));
        let s = if self.odd { s.swap_bytes() } else { s };
        self.acc = fold(u32::from(self.acc) + u32::from(s));
        self.odd ^= data.len() % 2 == 1;
    }

    /// The sum so far (as [`sum`] returns it).
    #[inline]
    pub fn sum(&self) -> u32 {
        u32::from(self.acc)
    }
}

/// The sum of the concatenation of `parts` ([`Pieces`]).
#[inline]
pub fn sum_parts<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> u32 {
    let mut p = Pieces::default();
    for part in parts {
        p.add(part);
    }
    p.sum()
}

/// The checksum of `data`: `!fold(sum(data))`.
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    !fold(sum(data))
}

/// Pseudo-header sum for IPv4 upper layers (RFC 793 §3.1, RFC 768).
#[inline]
pub fn pseudo_v4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, len: u32) -> u32 {
    let acc = u64::from(sum(&src.octets()))
        + u64::from(sum(&dst.octets()))
        + u64::from(proto)
        + u64::from(len);
    fold64(acc)
}

/// Pseudo-header sum for IPv6 upper layers (RFC 8200 §8.1).
#[inline]
pub fn pseudo_v6(src: Ipv6Addr, dst: Ipv6Addr, proto: u8, len: u32) -> u32 {
    let acc = u64::from(sum(&src.octets()))
        + u64::from(sum(&dst.octets()))
        + u64::from(len)
        + u64::from(proto);
    fold64(acc)
}

/// RFC 1624 eqn. 3: the new checksum after a 16-bit field changed from `old`
/// to `new`, without touching the rest of the data. HC' = ~(~HC + ~m + m').
#[inline]
pub fn update16(hc: u16, old: u16, new: u16) -> u16 {
    let acc = u32::from(!hc) + u32::from(!old) + u32::from(new);
    !fold(acc)
}

/// Folds a 64-bit ones' complement sum to 16 bits by adding each value to
/// itself rotated by half its width: the upper half then holds the halves'
/// sum with the end-around carry (two rotate-adds instead of four
/// mask-shift-adds).
#[inline(always)]
pub fn fold64_rotate(acc: u64) -> u16 {
    let s = (acc.wrapping_add(acc.rotate_right(32)) >> 32) as u32;
    (s.wrapping_add(s.rotate_right(16)) >> 16) as u16
}

/// A router's TTL decrement (RFC 1812 §5.3.1) on IPv4 header bytes 8-11
/// (TTL, protocol, checksum) read as one little-endian word: the TTL (the
/// low byte) less 1 and the checksum updated by RFC 1624 eqn. 3. The TTL
/// is the high byte of its big-endian 16-bit word, so m' = m - 0x0100 and
/// HC' = ~(~HC + ~m + m') = ~(~HC + 0xfeff) = HC + 0x0100 in ones'
/// complement, except that eqn. 3 never yields 0xffff (-0). Read swapped
/// (RFC 1071 §2(B): ones' complement sums commute with swapping bytes)
/// that is the checksum half plus 1, with the end-around carry, and a
/// result of 0xffff made 0. So the word gains 0xffff (TTL less 1, checksum
/// plus 1), and 0x1_0000 more when the checksum half reached 0xffff or
/// carried out of the word (0xfffe and 0xffff become 0 and 1). Valid for a
/// TTL of at least 1 (the low half does not borrow).
#[inline(always)]
pub fn ttl_decremented_word(w: u32) -> u32 {
    let x = u64::from(w) + 0xffff;
    let wrap = (x + 0x1_0000) >> 32;
    (x + (wrap << 16)) as u32
}

/// RFC 1624 over a 32-bit field (e.g. an IPv4 address in a pseudo-header).
#[inline]
pub fn update32(hc: u16, old: u32, new: u32) -> u16 {
    let hc = update16(hc, (old >> 16) as u16, (new >> 16) as u16);
    update16(hc, old as u16, new as u16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ttl_decrement_word_is_the_general_update_for_every_checksum() {
        for hc in 0..=u16::MAX {
            let w = u32::from_le_bytes([64, 17, (hc >> 8) as u8, hc as u8]);
            let hc2 = update16(hc, 0x4011, 0x3f11);
            assert_eq!(
                ttl_decremented_word(w),
                u32::from_le_bytes([63, 17, (hc2 >> 8) as u8, hc2 as u8]),
                "checksum {hc:#06x}"
            );
        }
    }

    /// Folding until the sum fits, as RFC 1071 §4.1 does.
    fn fold_loop(mut acc: u64) -> u16 {
        while acc > 0xffff {
            acc = (acc & 0xffff) + (acc >> 16);
        }
        acc as u16
    }

    #[test]
    fn one_step_folds_match_folding_until_it_fits_at_the_edges() {
        for acc in [
            0u64,
            1,
            0xffff,
            0x1_0000,
            0x1_fffe,
            0xffff_ffff,
            0x1_0000_0000,
            0x1_ffff_fffe,
            0xffff_ffff_0000_0000,
            0xffff_ffff_ffff_fffe,
            u64::MAX,
        ] {
            assert_eq!(fold(fold64(acc)), fold_loop(acc), "{acc:#x}");
        }
    }

    proptest! {
        #[test]
        fn one_step_folds_match_folding_until_it_fits(acc in any::<u64>()) {
            prop_assert_eq!(fold(fold64(acc)), fold_loop(acc));
            prop_assert_eq!(fold(acc as u32), fold_loop(u64::from(acc as u32)));
        }
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3 example bytes: sum 0xddf2.
        let d = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum(&d)), 0xddf2);
        assert_eq!(checksum(&d), !0xddf2);
    }

    #[test]
    fn odd_length() {
        assert_eq!(fold(sum(&[0xab])), 0xab00);
        assert_eq!(fold(sum(&[0x01, 0x02, 0xab])), 0xac02);
    }

    /// RFC 1071's definition: big-endian 16-bit words, end-around carry.
    fn reference(data: &[u8]) -> u16 {
        let mut acc: u32 = 0;
        for w in data.chunks(2) {
            acc += u32::from(u16::from_be_bytes([w[0], w.get(1).copied().unwrap_or(0)]));
            acc = (acc & 0xffff) + (acc >> 16);
        }
        acc as u16
    }

    proptest! {
        #[test]
        fn sum_matches_the_definition(data in proptest::collection::vec(any::<u8>(), 0..2100), skip in 0usize..8) {
            // every length and alignment: lanes, words and the odd tail
            let d = &data[skip.min(data.len())..];
            prop_assert_eq!(fold(sum(d)), reference(d));
        }

        #[test]
        fn parts_sum_as_one_buffer(data in proptest::collection::vec(any::<u8>(), 0..300), cuts in proptest::collection::vec(0usize..300, 0..5)) {
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(data.len())).collect();
            cuts.sort_unstable();
            let mut parts = Vec::new();
            let mut at = 0;
            for c in cuts.into_iter().chain([data.len()]) {
                parts.push(&data[at..c]);
                at = c;
            }
            prop_assert_eq!(fold(sum_parts(parts.iter().copied())), fold(sum(&data)));
        }

        #[test]
        fn rotate_fold_is_the_fold(acc in any::<u64>()) {
            prop_assert_eq!(fold64_rotate(acc), fold(fold64(acc)));
        }

        #[test]
        fn ttl_decrement_word_is_the_general_update(ttl in 1u8.., proto in any::<u8>(), hc in any::<u16>()) {
            let w = u32::from_le_bytes([ttl, proto, (hc >> 8) as u8, hc as u8]);
            let old = u16::from_be_bytes([ttl, proto]);
            let hc2 = update16(hc, old, old - 0x0100);
            prop_assert_eq!(
                ttl_decremented_word(w),
                u32::from_le_bytes([ttl - 1, proto, (hc2 >> 8) as u8, hc2 as u8])
            );
        }

        #[test]
        fn incremental_matches_full(mut data in proptest::collection::vec(any::<u8>(), 2..200), at in 0usize..100, new in any::<u16>()) {
            let at = (at % (data.len() / 2)) * 2;
            let before = checksum(&data);
            let old = u16::from_be_bytes([data[at], data[at+1]]);
            data[at..at+2].copy_from_slice(&new.to_be_bytes());
            let full = checksum(&data);
            let inc = update16(before, old, new);
            // 0x0000 and 0xffff are the same value in ones' complement.
            prop_assert!(inc == full || (inc == 0xffff && full == 0) || (inc == 0 && full == 0xffff));
        }
    }
}
