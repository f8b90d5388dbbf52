//! CUBIC (RFC 9438).

use super::{initial_window, CongestionControl};
use nf_core::sim::Time;

/// RFC 9438 §4.6: multiplicative decrease factor.
const BETA: f64 = 0.7;
/// RFC 9438 §5: C = 0.4 (segments / s^3).
const C: f64 = 0.4;

pub struct Cubic {
    mss: usize,
    cwnd: usize,
    ssthresh: usize,
    /// W_max in segments (window before the last reduction).
    w_max: f64,
    /// Start of the current congestion-avoidance epoch.
    epoch: Option<Time>,
    k: f64,
    /// Reno-friendly estimate in segments (§4.3).
    w_est: f64,
    cwnd_frac: f64,
}

impl Cubic {
    pub fn new(mss: usize) -> Self {
        Cubic {
            mss,
            cwnd: initial_window(mss),
            ssthresh: usize::MAX,
            w_max: 0.0,
            epoch: None,
            k: 0.0,
            w_est: 0.0,
            cwnd_frac: 0.0,
        }
    }

    fn segs(&self) -> f64 {
        self.cwnd as f64 / self.mss as f64
    }

    fn reduce(&mut self, _flight: usize) {
        let cwnd_segs = self.segs();
        // §4.7 fast convergence
        self.w_max = if cwnd_segs < self.w_max {
            cwnd_segs * (1.0 + BETA) / 2.0
        } else {
            cwnd_segs
        };
        let new = ((cwnd_segs * BETA) as usize).max(2) * self.mss;
        self.ssthresh = new;
        self.epoch = None;
    }

    /// W_cubic(t) in segments (eqn 1).
    pub fn w_cubic(&self, t: f64) -> f64 {
        C * (t - self.k).powi(3) + self.w_max
    }
}

impl CongestionControl for Cubic {
    fn window(&self) -> usize {
        self.cwnd
    }
    fn ssthresh(&self) -> usize {
        self.ssthresh
    }
    fn on_ack(&mut self, now: Time, acked: usize, srtt: Option<Time>, _min: Option<Time>) {
        if self.cwnd < self.ssthresh {
            self.cwnd += acked.min(2 * self.mss);
            return;
        }
        let segs = self.segs();
        let epoch = *self.epoch.get_or_insert_with(|| {
            // §4.2: a new epoch starts at the first ACK in congestion avoidance
            self.k = if self.w_max > segs {
                ((self.w_max - segs) / C).cbrt()
            } else {
                0.0
            };
            if self.w_max < segs {
                self.w_max = segs;
            }
            self.w_est = segs;
            now
        });
        let rtt = srtt.unwrap_or(100_000_000) as f64 / 1e9;
        let t = now.saturating_sub(epoch) as f64 / 1e9;
        // §4.2: target = W_cubic(t + RTT), clamped to [cwnd, 1.5 cwnd]
        let target = self.w_cubic(t + rtt).clamp(segs, 1.5 * segs);
        // §4.3 Reno-friendly region: alpha = 3 (1 - beta) / (1 + beta)
        let alpha = 3.0 * (1.0 - BETA) / (1.0 + BETA);
        let acked_segs = acked as f64 / self.mss as f64;
        self.w_est += alpha * acked_segs / segs;
        if self.w_est > target {
            // Reno-friendly region: cwnd = W_est (§4.3)
            self.cwnd = self.cwnd.max((self.w_est * self.mss as f64) as usize);
            return;
        }
        // concave/convex region: (target - cwnd) / cwnd per acked segment (§4.4, §4.5)
        let inc_segs = (target - segs) / segs * acked_segs;
        self.cwnd_frac += inc_segs.max(0.0) * self.mss as f64;
        if self.cwnd_frac >= 1.0 {
            let add = self.cwnd_frac as usize;
            self.cwnd += add;
            self.cwnd_frac -= add as f64;
        }
    }
    fn on_congestion(&mut self, _now: Time, flight: usize) {
        self.reduce(flight);
        self.cwnd = self.ssthresh;
    }
    fn on_rto(&mut self, _now: Time, flight: usize) {
        self.reduce(flight);
        self.cwnd = self.mss;
    }
    fn exit_slow_start(&mut self) {
        if self.cwnd < self.ssthresh {
            self.ssthresh = self.cwnd;
            self.epoch = None;
        }
    }
    fn name(&self) -> &'static str {
        "cubic"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn reduces_by_beta_and_recovers_to_wmax_at_k() {
        let mss = 1000;
        let mut c = Cubic::new(mss);
        c.cwnd = 100 * mss;
        c.ssthresh = 50 * mss;
        c.on_congestion(0, 100 * mss);
        assert_eq!(c.window(), 70 * mss);
        // K = cbrt(W_max (1 - beta) / C) = cbrt(100 * 0.3 / 0.4)
        let mut now = 0;
        c.on_ack(now, mss, Some(100_000_000), None);
        let k = (100.0f64 * 0.3 / 0.4).cbrt();
        assert!((c.k - k).abs() < 1e-9);
        // After K seconds of ACKs the window is back near W_max (with a
        // 100 ms RTT, where the Reno-friendly estimate stays below it).
        while now < (k * 1e9) as u64 {
            now += 100_000_000;
            for _ in 0..(c.window() / mss) {
                c.on_ack(now, mss, Some(100_000_000), None);
            }
        }
        let w = c.window() as f64 / mss as f64;
        assert!((95.0..=110.0).contains(&w), "window {w} segments at t = K");
    }
}
