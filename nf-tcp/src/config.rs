//! Engine configuration.

use crate::cc::CcKind;
use nf_core::sim::Time;

const MS: Time = 1_000_000;

#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// MSS we announce and the largest payload we send (before the peer's
    /// MSS and option space are applied).
    pub mss: u16,
    /// Send buffer budget in bytes (what `send` accepts ahead of snd_una).
    pub send_buffer: usize,
    /// Receive buffer budget in bytes: the window we advertise and the
    /// bound on in-order + out-of-order data held.
    pub recv_buffer: usize,
    /// Out-of-order segments held at most (bounds per-chunk overhead).
    pub max_ooo_segments: usize,
    pub window_scale: bool,
    pub sack: bool,
    pub timestamps: bool,
    pub cc: CcKind,
    pub rto_initial: Time,
    pub rto_min: Time,
    pub rto_max: Time,
    /// SYN / SYN-ACK retransmissions before giving up.
    pub syn_retries: u32,
    /// Data retransmission timeouts in a row before the connection is aborted.
    pub max_retransmits: u32,
    /// Tail loss probes (RFC 8985 §7): when nothing is acknowledged for
    /// about two round trips, probe instead of waiting for the RTO; the
    /// same timeout finds lost retransmissions in recovery.
    pub tail_loss_probe: bool,
    /// Floor of the probe timeout (Linux uses 10 ms): a LAN's tiny SRTT
    /// would otherwise probe on scheduling jitter.
    pub pto_min: Time,
    /// Delayed-ACK timer (RFC 9293 §3.8.6.3: < 500 ms).
    pub delayed_ack: Time,
    /// Segments acknowledged immediately after the handshake (quick-ack).
    pub quickack_segments: u32,
    /// Idle time before keepalive probes; `None` disables keepalive.
    pub keepalive: Option<Time>,
    pub keepalive_interval: Time,
    pub keepalive_probes: u32,
    /// TIME_WAIT duration. A proxy holds many short connections toward the
    /// same servers: a short TIME_WAIT plus RFC 6191 reuse keeps its port
    /// space free (2*MSL = 60 s in Linux is far too long for a proxy).
    pub time_wait: Time,
    /// Challenge ACKs per second (RFC 5961 §7).
    pub challenge_ack_limit: u32,
    /// Option bytes reserved in every data segment for the owner (MPTCP DSS).
    pub reserved_option_space: usize,
    /// Bytes taken off the MSS we announce (not off what we send): room
    /// for options the peer may add to a segment it sized without them
    /// (MPTCP: see nf-mptcp's `Config::checksum`).
    pub mss_announce_margin: u16,
    /// Accept data in SYNs with a valid TFO cookie (RFC 7413, passive side).
    pub fast_open: bool,
    /// Never let one segment carry bytes of two queued chunks (MPTCP
    /// subflows: each chunk is one DSS mapping).
    pub segment_within_chunk: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            mss: 1460,
            send_buffer: 4 << 20,
            recv_buffer: 4 << 20,
            max_ooo_segments: 4096,
            window_scale: true,
            sack: true,
            timestamps: true,
            cc: CcKind::Cubic,
            rto_initial: 1000 * MS,
            rto_min: 200 * MS,
            rto_max: 60_000 * MS,
            syn_retries: 6,
            max_retransmits: 15,
            tail_loss_probe: true,
            pto_min: 10 * MS,
            delayed_ack: 40 * MS,
            quickack_segments: 16,
            keepalive: None,
            keepalive_interval: 75_000 * MS,
            keepalive_probes: 9,
            time_wait: 2_000 * MS,
            challenge_ack_limit: 1000,
            reserved_option_space: 0,
            mss_announce_margin: 0,
            fast_open: true,
            segment_within_chunk: false,
        }
    }
}
