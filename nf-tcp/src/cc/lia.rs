//! LIA, the linked-increases coupled congestion control of MPTCP (RFC 6356).
//!
//! Each subflow runs this controller; the MPTCP connection feeds it `alpha`
//! and the total window of all subflows (`set_coupling`). In congestion
//! avoidance a subflow grows by min(alpha * acked * MSS / cwnd_total,
//! acked * MSS / cwnd_i) (RFC 6356 §3), so the connection takes no more
//! than one TCP flow would on a shared bottleneck; loss halves the subflow
//! as Reno does.

use super::{initial_window, CongestionControl};
use nf_core::sim::Time;

pub struct Lia {
    mss: usize,
    cwnd: usize,
    ssthresh: usize,
    /// alpha scaled by 1000 (RFC 6356 eqn 2), from the connection.
    alpha_milli: u64,
    total: usize,
    acc: u64,
}

impl Lia {
    pub fn new(mss: usize) -> Self {
        Lia {
            mss,
            cwnd: initial_window(mss),
            ssthresh: usize::MAX,
            alpha_milli: 1000,
            total: 0,
            acc: 0,
        }
    }
}

/// RFC 6356 eqn 2: alpha = cwnd_total * max_i(cwnd_i / rtt_i^2) /
/// (sum_i(cwnd_i / rtt_i))^2, scaled by 1000. `paths` yields (cwnd bytes,
/// rtt ns); it is walked once, without allocating.
pub fn alpha_milli(paths: impl IntoIterator<Item = (usize, Time)>) -> u64 {
    let (mut total, mut best, mut sum) = (0.0f64, 0.0f64, 0.0f64);
    for (cwnd, rtt) in paths {
        let w = cwnd as f64;
        total += w;
        if rtt > 0 {
            let r = rtt as f64;
            best = best.max(w / (r * r));
            sum += w / r;
        }
    }
    if sum <= 0.0 {
        return 1000;
    }
    ((total * best / (sum * sum)) * 1000.0).round() as u64
}

impl CongestionControl for Lia {
    fn window(&self) -> usize {
        self.cwnd
    }
    fn ssthresh(&self) -> usize {
        self.ssthresh
    }
    fn on_ack(&mut self, _now: Time, acked: usize, _srtt: Option<Time>, _min: Option<Time>) {
        if self.cwnd < self.ssthresh {
            self.cwnd += acked.min(2 * self.mss);
            return;
        }
        let total = self.total.max(self.cwnd) as u64;
        let mss = self.mss as u64;
        // bytes of increase, in milli-bytes to keep the fractions
        let coupled = self.alpha_milli * acked as u64 * mss / total;
        let uncoupled = 1000 * acked as u64 * mss / self.cwnd as u64;
        self.acc += coupled.min(uncoupled);
        let whole = self.acc / 1000;
        self.cwnd += whole as usize;
        self.acc -= whole * 1000;
    }
    fn on_congestion(&mut self, _now: Time, flight: usize) {
        self.ssthresh = (flight / 2).max(2 * self.mss);
        self.cwnd = self.ssthresh;
    }
    fn on_rto(&mut self, _now: Time, flight: usize) {
        self.ssthresh = (flight / 2).max(2 * self.mss);
        self.cwnd = self.mss;
    }
    fn exit_slow_start(&mut self) {
        if self.cwnd < self.ssthresh {
            self.ssthresh = self.cwnd;
        }
    }
    fn set_coupling(&mut self, alpha_milli: u64, total: usize) {
        self.alpha_milli = alpha_milli;
        self.total = total;
    }
    fn name(&self) -> &'static str {
        "lia"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    const MS: Time = 1_000_000;

    #[test]
    fn alpha_for_equal_paths_is_one_over_n() {
        // two identical paths: alpha = 2w * (w/r^2) / (2w/r)^2 = 1/2
        assert_eq!(alpha_milli([(10_000, 20 * MS), (10_000, 20 * MS)]), 500);
        // one path: alpha = 1 (plain Reno)
        assert_eq!(alpha_milli([(10_000, 20 * MS)]), 1000);
    }

    #[test]
    fn coupled_growth_never_exceeds_reno_on_the_subflow() {
        let mss = 1000;
        let (mut l, mut r) = (Lia::new(mss), super::super::NewReno::new(mss));
        for c in [&mut l as &mut dyn CongestionControl, &mut r] {
            c.on_congestion(0, 40 * mss);
        }
        l.set_coupling(500, 2 * l.window());
        for _ in 0..10_000 {
            l.on_ack(0, mss, None, None);
            r.on_ack(0, mss, None, None);
        }
        assert!(
            l.window() < r.window(),
            "LIA {} vs Reno {}",
            l.window(),
            r.window()
        );
        assert!(l.window() > 20 * mss, "it still grows");
    }
}
