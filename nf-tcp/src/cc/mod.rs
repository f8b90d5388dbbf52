//! Congestion control behind a trait: CUBIC (RFC 9438, the default) and
//! NewReno (RFC 5681 / RFC 6582).

mod cubic;
mod lia;
mod newreno;

pub use cubic::Cubic;
pub use lia::{alpha_milli, Lia};
pub use newreno::NewReno;

use nf_core::sim::Time;

/// Which algorithm a connection uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CcKind {
    #[default]
    Cubic,
    NewReno,
    /// RFC 6356 coupled (MPTCP subflows; the connection sets the coupling).
    Lia,
}

impl CcKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CcKind::Cubic => "cubic",
            CcKind::NewReno => "newreno",
            CcKind::Lia => "lia",
        }
    }
}

impl std::str::FromStr for CcKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        [CcKind::Cubic, CcKind::NewReno, CcKind::Lia]
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown congestion control `{s}` (cubic, newreno, lia)"))
    }
}

/// A congestion controller, in bytes.
pub trait CongestionControl: Send {
    /// The congestion window.
    fn window(&self) -> usize;
    fn ssthresh(&self) -> usize;
    /// New data was cumulatively acknowledged outside recovery.
    fn on_ack(&mut self, now: Time, acked: usize, srtt: Option<Time>, min_rtt: Option<Time>);
    /// Loss detected by duplicate ACKs / SACK: enter recovery (RFC 5681 §3.2
    /// step 2, RFC 9438 §4.6).
    fn on_congestion(&mut self, now: Time, flight: usize);
    /// Retransmission timeout (RFC 5681 §3.1 eqn 4, RFC 9438 §4.8).
    fn on_rto(&mut self, now: Time, flight: usize);
    /// The last RTO was spurious or recovery ended: nothing to undo by default.
    fn on_recovery_exit(&mut self, _now: Time) {}
    /// HyStart++ (RFC 9406) saw the delay rise: leave slow start now.
    fn exit_slow_start(&mut self);
    /// Coupled controllers (LIA): alpha × 1000 and the connection's total
    /// window. Others ignore it.
    fn set_coupling(&mut self, _alpha_milli: u64, _total: usize) {}
    fn name(&self) -> &'static str;
}

/// The controller a connection holds: one of the algorithms, inline (no
/// allocation per connection, calls dispatched by a match the compiler
/// can inline).
pub enum Controller {
    Cubic(Cubic),
    NewReno(NewReno),
    Lia(Lia),
}

/// Forwards a call to whichever algorithm `self` holds.
macro_rules! each {
    ($self:ident, $c:ident => $e:expr) => {
        match $self {
            Controller::Cubic($c) => $e,
            Controller::NewReno($c) => $e,
            Controller::Lia($c) => $e,
        }
    };
}

impl CongestionControl for Controller {
    #[inline]
    fn window(&self) -> usize {
        each!(self, c => c.window())
    }
    #[inline]
    fn ssthresh(&self) -> usize {
        each!(self, c => c.ssthresh())
    }
    #[inline]
    fn on_ack(&mut self, now: Time, acked: usize, srtt: Option<Time>, min_rtt: Option<Time>) {
        each!(self, c => c.on_ack(now, acked, srtt, min_rtt))
    }
    fn on_congestion(&mut self, now: Time, flight: usize) {
        each!(self, c => c.on_congestion(now, flight))
    }
    fn on_rto(&mut self, now: Time, flight: usize) {
        each!(self, c => c.on_rto(now, flight))
    }
    fn on_recovery_exit(&mut self, now: Time) {
        each!(self, c => c.on_recovery_exit(now))
    }
    fn exit_slow_start(&mut self) {
        each!(self, c => c.exit_slow_start())
    }
    fn set_coupling(&mut self, alpha_milli: u64, total: usize) {
        each!(self, c => c.set_coupling(alpha_milli, total))
    }
    fn name(&self) -> &'static str {
        each!(self, c => c.name())
    }
}

/// Builds the controller for `kind` with the initial window of RFC 6928.
pub fn new(kind: CcKind, mss: usize) -> Controller {
    match kind {
        CcKind::Cubic => Controller::Cubic(Cubic::new(mss)),
        CcKind::NewReno => Controller::NewReno(NewReno::new(mss)),
        CcKind::Lia => Controller::Lia(Lia::new(mss)),
    }
}

/// RFC 6928: IW = min(10*MSS, max(2*MSS, 14600)).
pub fn initial_window(mss: usize) -> usize {
    (10 * mss).min((2 * mss).max(14600))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_and_unknown_names_are_refused() {
        for k in [CcKind::Cubic, CcKind::NewReno, CcKind::Lia] {
            assert_eq!(k.as_str().parse::<CcKind>(), Ok(k));
            assert_eq!(new(k, 1460).name(), k.as_str());
        }
        let e = "bbr".parse::<CcKind>().unwrap_err();
        assert!(e.contains("`bbr`") && e.contains("lia"), "{e}");
    }
}
