//! RTO computation (RFC 6298) with Karn's rule applied by the caller (only
//! samples from segments that were never retransmitted are fed here).

use nf_core::sim::Time;

#[derive(Clone, Debug)]
pub struct RttEstimator {
    srtt: Option<Time>,
    rttvar: Time,
    min_rtt: Time,
    latest: Time,
    rto_min: Time,
    rto_max: Time,
    initial: Time,
}

impl RttEstimator {
    pub fn new(initial: Time, rto_min: Time, rto_max: Time) -> Self {
        RttEstimator {
            srtt: None,
            rttvar: 0,
            min_rtt: Time::MAX,
            latest: 0,
            rto_min,
            rto_max,
            initial,
        }
    }

    /// RFC 6298 §2.2 / §2.3.
    pub fn sample(&mut self, r: Time) {
        self.latest = r;
        self.min_rtt = self.min_rtt.min(r);
        match self.srtt {
            None => {
                self.srtt = Some(r);
                self.rttvar = r / 2;
            }
            Some(s) => {
                // RTTVAR <- 3/4 RTTVAR + 1/4 |SRTT - R'|; SRTT <- 7/8 SRTT + 1/8 R'
                self.rttvar = (3 * self.rttvar + s.abs_diff(r)) / 4;
                self.srtt = Some((7 * s + r) / 8);
            }
        }
    }

    /// The RTO before backoff: SRTT + max(G, 4 RTTVAR), clamped (RFC 6298 §2.4:
    /// the 1 s minimum is configurable, as every deployed stack does).
    pub fn rto(&self) -> Time {
        match self.srtt {
            None => self.initial,
            Some(s) => (s + (4 * self.rttvar).max(1_000_000)).clamp(self.rto_min, self.rto_max),
        }
    }

    pub fn srtt(&self) -> Option<Time> {
        self.srtt
    }
    pub fn min_rtt(&self) -> Option<Time> {
        (self.min_rtt != Time::MAX).then_some(self.min_rtt)
    }
    pub fn latest(&self) -> Time {
        self.latest
    }
    pub fn rto_max(&self) -> Time {
        self.rto_max
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    const MS: Time = 1_000_000;
    #[test]
    fn rfc6298() {
        let mut r = RttEstimator::new(1000 * MS, 200 * MS, 60_000 * MS);
        assert_eq!(r.rto(), 1000 * MS);
        r.sample(100 * MS);
        assert_eq!(r.srtt(), Some(100 * MS));
        assert_eq!(r.rto(), 300 * MS); // 100 + 4*50
        r.sample(100 * MS);
        assert_eq!(r.rto(), 250 * MS); // rttvar 37.5
        for _ in 0..50 {
            r.sample(10 * MS);
        }
        assert_eq!(r.rto(), 200 * MS, "clamped to rto_min");
    }
}
