//! NewReno (RFC 5681, RFC 6582) with appropriate byte counting (RFC 3465).

use super::{initial_window, CongestionControl};
use nf_core::sim::Time;

pub struct NewReno {
    mss: usize,
    cwnd: usize,
    ssthresh: usize,
    acked_in_ca: usize,
}

impl NewReno {
    pub fn new(mss: usize) -> Self {
        NewReno {
            mss,
            cwnd: initial_window(mss),
            ssthresh: usize::MAX,
            acked_in_ca: 0,
        }
    }
}

impl CongestionControl for NewReno {
    fn window(&self) -> usize {
        self.cwnd
    }
    fn ssthresh(&self) -> usize {
        self.ssthresh
    }
    fn on_ack(&mut self, _now: Time, acked: usize, _srtt: Option<Time>, _min: Option<Time>) {
        if self.cwnd < self.ssthresh {
            // Slow start, ABC with L = 2 (RFC 3465 §2.2)
            self.cwnd += acked.min(2 * self.mss);
        } else {
            // Congestion avoidance: one MSS per cwnd of data acked
            self.acked_in_ca += acked;
            if self.acked_in_ca >= self.cwnd {
                self.acked_in_ca -= self.cwnd;
                self.cwnd += self.mss;
            }
        }
    }
    fn on_congestion(&mut self, _now: Time, flight: usize) {
        // RFC 5681 eqn 4: ssthresh = max(FlightSize / 2, 2*SMSS)
        self.ssthresh = (flight / 2).max(2 * self.mss);
        self.cwnd = self.ssthresh;
        self.acked_in_ca = 0;
    }
    fn on_rto(&mut self, _now: Time, flight: usize) {
        self.ssthresh = (flight / 2).max(2 * self.mss);
        self.cwnd = self.mss;
        self.acked_in_ca = 0;
    }
    fn exit_slow_start(&mut self) {
        if self.cwnd < self.ssthresh {
            self.ssthresh = self.cwnd;
        }
    }
    fn name(&self) -> &'static str {
        "newreno"
    }
}
