//! Data sequence numbers (RFC 8684 §3.3): 64-bit, sent as 32 or 64 bits.

/// Infers the 64-bit value of a 32-bit DSN or DATA_ACK: the candidate with
/// those low 32 bits closest to `expected` (RFC 8684 §3.3.1 lets the
/// receiver keep the upper bits from its own state).
pub fn widen(expected: u64, low: u32) -> u64 {
    let base = expected & !0xffff_ffff;
    let cands = [
        base.wrapping_sub(1 << 32) | u64::from(low),
        base | u64::from(low),
        base.wrapping_add(1 << 32) | u64::from(low),
    ];
    let dist = |c: u64| c.wrapping_sub(expected).min(expected.wrapping_sub(c));
    let mut best = cands[1];
    for c in cands {
        if dist(c) < dist(best) {
            best = c;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn across_the_32_bit_boundary() {
        assert_eq!(widen(0x1_ffff_fff0, 0x0000_0010), 0x2_0000_0010);
        assert_eq!(widen(0x2_0000_0010, 0xffff_fff0), 0x1_ffff_fff0);
        assert_eq!(widen(5, 7), 7);
        assert_eq!(widen(0, 0xffff_ffff), u64::MAX, "wraps below zero");
    }

    proptest! {
        #[test]
        fn recovers_any_value_within_2_pow_31(expected in any::<u64>(), delta in -(1i64 << 30)..(1i64 << 30)) {
            let actual = expected.wrapping_add(delta as u64);
            prop_assert_eq!(widen(expected, actual as u32), actual);
        }
    }
}
