//! Token buckets, e.g. for ICMP error generation (RFC 1812 §4.3.2.8,
//! RFC 4443 §2.4(f)).

/// A token bucket refilled at `rate` tokens per second up to `burst`.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    rate_per_s: u64,
    burst: u64,
    /// Tokens scaled by 1e9 so that refill works in integer nanoseconds.
    tokens_nano: u64,
    last_ns: u64,
}

const NANO: u64 = 1_000_000_000;

impl TokenBucket {
    pub fn new(rate_per_s: u64, burst: u64) -> Self {
        TokenBucket {
            rate_per_s,
            burst,
            tokens_nano: burst.saturating_mul(NANO),
            last_ns: 0,
        }
    }
    /// Takes one token if available at time `now_ns`.
    pub fn allow(&mut self, now_ns: u64) -> bool {
        let elapsed = now_ns.saturating_sub(self.last_ns);
        self.last_ns = self.last_ns.max(now_ns);
        let cap = self.burst.saturating_mul(NANO);
        self.tokens_nano = self
            .tokens_nano
            .saturating_add(elapsed.saturating_mul(self.rate_per_s))
            .min(cap);
        if self.tokens_nano >= NANO {
            self.tokens_nano -= NANO;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn burst_then_rate() {
        let mut b = TokenBucket::new(10, 3);
        let t0 = 5 * NANO;
        assert!((0..3).all(|_| b.allow(t0)));
        assert!(!b.allow(t0));
        assert!(!b.allow(t0 + NANO / 20));
        assert!(b.allow(t0 + NANO / 10));
        assert!(!b.allow(t0 + NANO / 10));
        // a long pause refills only up to the burst
        assert_eq!((0..10).filter(|_| b.allow(t0 + 100 * NANO)).count(), 3);
    }
}
