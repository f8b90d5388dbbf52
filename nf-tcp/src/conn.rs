//! One TCP connection: the RFC 9293 state machine with window scaling,
//! SACK, timestamps/PAWS, RFC 6298 RTO, SACK-based loss recovery
//! (RFC 6675-style) and NewReno partial ACKs (RFC 6582), congestion control
//! behind a trait, delayed ACKs with quick-ack, zero-window probing,
//! keepalive and RFC 5961 protections. Sans-IO: time comes in as `now`,
//! segments come in through `handle_segment` and go out through
//! `poll_transmit`.

use crate::cc::{self, CongestionControl};
use crate::config::Config;
use crate::recvq::{Insert, RecvQueue};
use crate::rtt::RttEstimator;
use crate::segment::{Gather, Header, Incoming, Opts, RawOpt, Segment};
use crate::sendq::{Scoreboard, SendQueue};
use crate::seq::Seq;
use nf_core::chunk::Chunk;
use nf_core::sim::Time;
use nf_core::wire::tcp::{flags, SackBlock, MAX_SACK_BLOCKS};

/// RFC 9293 §3.3.2 states (LISTEN lives in [`crate::Listener`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    SynSent,
    SynReceived,
    Established,
    FinWait1,
    FinWait2,
    CloseWait,
    Closing,
    LastAck,
    TimeWait,
    Closed,
}

/// Events not yet polled, one bit each: a connection's events happen at
/// most once (Connected, PeerClosed, the end) or merge (Readable), and
/// come out in the order of a connection's life. No queue to allocate.
#[derive(Clone, Copy, Debug, Default)]
struct Events(u8);

impl Events {
    const ORDER: [Event; 6] = [
        Event::Connected,
        Event::Readable,
        Event::PeerClosed,
        Event::Closed,
        Event::Reset,
        Event::TimedOut,
    ];
    #[inline]
    fn push(&mut self, e: Event) {
        self.0 |= 1 << e as u8;
    }
    #[inline]
    fn pop(&mut self) -> Option<Event> {
        if self.0 == 0 {
            return None;
        }
        let e = Self::ORDER.get(self.0.trailing_zeros() as usize).copied();
        self.0 &= self.0 - 1;
        e
    }
}

/// What happened, for the owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    Connected,
    /// In-order data can be read with `recv`.
    Readable,
    /// The peer sent FIN: no more data will arrive.
    PeerClosed,
    /// The connection ended normally.
    Closed,
    /// The peer reset it.
    Reset,
    /// Retransmissions or keepalives ran out.
    TimedOut,
}

/// Counters of one connection, by reason.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub segs_in: u64,
    pub segs_out: u64,
    pub bytes_acked: u64,
    pub bytes_received: u64,
    pub retransmits: u64,
    pub rtos: u64,
    pub fast_recoveries: u64,
    /// Probe timeouts (RFC 8985 §7): tail loss probes sent, recoveries
    /// started and lost retransmissions resent without waiting for the RTO.
    pub loss_probes: u64,
    pub dup_acks: u64,
    pub challenge_acks: u64,
    pub drop_out_of_window: u64,
    pub drop_paws: u64,
    pub drop_ack_unsent: u64,
    pub drop_old_ack: u64,
    pub drop_rst_out_of_window: u64,
    /// RSTs in TIME-WAIT, ignored (RFC 1337 §3).
    pub drop_rst_in_time_wait: u64,
    pub drop_syn_in_window: u64,
    pub drop_no_ack_flag: u64,
    pub drop_recv_no_room: u64,
    pub sack_blocks_invalid: u64,
    pub zero_window_probes: u64,
    pub keepalive_probes: u64,
    /// ICMP "fragmentation needed" / "packet too big" taken: the MSS
    /// lowered to the path's (RFC 1191, RFC 8201).
    pub path_mtu_lowered: u64,
}

/// HyStart++ (RFC 9406 §4.2) delay-increase detection, fed with per-ACK
/// RTT samples from timestamps.
#[derive(Clone, Copy, Debug)]
struct HyStart {
    round_end: Option<Seq>,
    cur_min: Time,
    last_min: Time,
    samples: u32,
}

impl Default for HyStart {
    fn default() -> Self {
        HyStart {
            round_end: None,
            cur_min: Time::MAX,
            last_min: Time::MAX,
            samples: 0,
        }
    }
}

/// RFC 9406 §4.3 constants.
const HS_MIN_RTT_THRESH: Time = 4 * MS;
const HS_MAX_RTT_THRESH: Time = 16 * MS;
const HS_N_RTT_SAMPLE: u32 = 8;

#[derive(Clone, Copy, Debug)]
struct Recovery {
    /// snd_nxt when recovery began: recovery ends when it is acked.
    point: Seq,
    /// Unsacked data below this is deemed lost.
    lost_until: Seq,
    /// Next byte to retransmit.
    rxt_nxt: Seq,
}

/// A TCP connection over payload chunks `C`.
pub struct Connection<C: Chunk> {
    cfg: Config,
    state: State,
    lport: u16,
    rport: u16,
    // send sequence space (RFC 9293 §3.3.1)
    iss: Seq,
    snd_una: Seq,
    snd_nxt: Seq,
    snd_wnd: usize,
    max_snd_wnd: usize,
    snd_wl1: Seq,
    snd_wl2: Seq,
    snd_shift: u8,
    sendq: SendQueue<C>,
    fin_queued: bool,
    fin_seq: Option<Seq>,
    // receive sequence space
    irs: Seq,
    rcv_nxt: Seq,
    rcv_shift: u8,
    rcv_adv: Seq,
    recvq: RecvQueue<C>,
    fin_at: Option<u64>,
    // negotiated
    peer_mss: usize,
    sack_ok: bool,
    ws_ok: bool,
    ts_ok: bool,
    ts_recent: u32,
    last_ack_sent: Seq,
    ts_offset: u32,
    // RTT and retransmission
    rtt: RttEstimator,
    timed: Option<(Seq, Time)>,
    rto_at: Option<Time>,
    /// RFC 8985 §7.2 probe timeout; `tlp_out`: one fired and nothing was
    /// acknowledged since (no second probe before the RTO)
    pto_at: Option<Time>,
    tlp_out: bool,
    /// a tail loss probe is owed (RFC 8985 §7.3)
    tlp_due: bool,
    backoff: u32,
    rto_in_row: u32,
    syn_tries: u32,
    // congestion control and recovery
    cc: cc::Controller,
    hystart: HyStart,
    dupacks: u32,
    recovery: Option<Recovery>,
    sb: Scoreboard,
    // ACK generation
    ack_now: bool,
    delack_at: Option<Time>,
    unacked_segs: u32,
    quickack: u32,
    // other timers
    persist_at: Option<Time>,
    persist_backoff: u32,
    probe_due: bool,
    keepalive_at: Option<Time>,
    ka_probes: u32,
    ka_due: bool,
    timewait_at: Option<Time>,
    challenge: (Time, u32),
    // control segments owed
    syn_pending: bool,
    rst_pending: Option<(Seq, Option<Seq>)>,
    tfo_cookie: Option<RawOpt>,
    /// An owner's cap on the advertised window (MPTCP: the data-level free
    /// space, RFC 8684 §3.3.4).
    window_limit: Option<usize>,
    events: Events,
    stats: Stats,
    scratch: Vec<(u64, u64)>,
}

const MS: Time = 1_000_000;
/// RFC 8985 §7.2 WCDelAckT: the longest a peer may delay an ACK.
const WC_DEL_ACK: Time = 200 * MS;

fn opt_mss(o: &Opts) -> usize {
    o.mss.map_or(536, usize::from) // RFC 9293 §3.7.1 default
}

impl<C: Chunk> Connection<C> {
    fn blank(cfg: Config, lport: u16, rport: u16, iss: Seq, state: State) -> Self {
        let rcv_shift = if cfg.window_scale {
            let mut s = 0u8;
            while s < 14 && (cfg.recv_buffer >> s) > 65535 {
                s += 1;
            }
            s
        } else {
            0
        };
        let mut sendq = SendQueue::new(iss + 1, cfg.send_buffer);
        if cfg.segment_within_chunk {
            sendq.set_max_parts(1);
        }
        Connection {
            cfg,
            state,
            lport,
            rport,
            iss,
            snd_una: iss,
            snd_nxt: iss,
            snd_wnd: 0,
            max_snd_wnd: 0,
            snd_wl1: Seq(0),
            snd_wl2: Seq(0),
            snd_shift: 0,
            sendq,
            fin_queued: false,
            fin_seq: None,
            irs: Seq(0),
            rcv_nxt: Seq(0),
            rcv_shift,
            rcv_adv: Seq(0),
            recvq: RecvQueue::new(cfg.recv_buffer, cfg.max_ooo_segments),
            fin_at: None,
            peer_mss: 536,
            sack_ok: false,
            ws_ok: false,
            ts_ok: false,
            ts_recent: 0,
            last_ack_sent: Seq(0),
            ts_offset: iss.0.rotate_left(13),
            rtt: RttEstimator::new(cfg.rto_initial, cfg.rto_min, cfg.rto_max),
            timed: None,
            rto_at: None,
            pto_at: None,
            tlp_out: false,
            tlp_due: false,
            backoff: 1,
            rto_in_row: 0,
            syn_tries: 0,
            cc: cc::new(cfg.cc, usize::from(cfg.mss)),
            hystart: HyStart::default(),
            dupacks: 0,
            recovery: None,
            sb: Scoreboard::default(),
            ack_now: false,
            delack_at: None,
            unacked_segs: 0,
            quickack: cfg.quickack_segments,
            persist_at: None,
            persist_backoff: 1,
            probe_due: false,
            keepalive_at: None,
            ka_probes: 0,
            ka_due: false,
            timewait_at: None,
            challenge: (0, 0),
            syn_pending: true,
            rst_pending: None,
            tfo_cookie: None,
            window_limit: None,
            events: Events::default(),
            stats: Stats::default(),
            scratch: Vec::with_capacity(MAX_SACK_BLOCKS),
        }
    }

    /// Active open (RFC 9293 §3.10.1): the SYN goes out on the next
    /// `poll_transmit`. `iss` should come from an RFC 6528 generator.
    pub fn connect(cfg: Config, lport: u16, rport: u16, iss: Seq) -> Self {
        Self::blank(cfg, lport, rport, iss, State::SynSent)
    }

    /// Active open standing in for a SYN another host sent: a conversion
    /// point forwards the client's SYN toward the server as its own. The
    /// SYN keeps the client's ISS, MSS, window scale, SACK-permitted and
    /// timestamp clock, so the server's answer is valid for either end
    /// (hagw terminates the connection, or steps out and only NATs it).
    /// RFC 9293 §3.10.1, RFC 7323 §2.2 and §4.3.
    /// `lport` is the source port the SYN leaves with (after NAT).
    pub fn connect_as(mut cfg: Config, now: Time, lport: u16, syn: &Header) -> Self {
        cfg.window_scale = cfg.window_scale && syn.opts.wscale.is_some();
        cfg.sack = cfg.sack && syn.opts.sack_perm;
        cfg.timestamps = cfg.timestamps && syn.opts.ts.is_some();
        if let Some(m) = syn.opts.mss {
            // never more than the configured limit (the egress MTU)
            cfg.mss = m.max(64).min(cfg.mss);
        }
        let mut c = Self::blank(cfg, lport, syn.dst_port, syn.seq, State::SynSent);
        if let Some(s) = syn.opts.wscale {
            c.rcv_shift = s.min(14);
        }
        if let Some((v, _)) = syn.opts.ts {
            c.ts_offset = v.wrapping_sub((now / MS) as u32);
        }
        c
    }

    /// Passive open from a SYN the listener accepted: SYN-RECEIVED, the
    /// SYN-ACK goes out on the next `poll_transmit`.
    pub fn accept(cfg: Config, syn: &Header, iss: Seq) -> Self {
        let mut c = Self::blank(cfg, syn.dst_port, syn.src_port, iss, State::SynReceived);
        c.irs = syn.seq;
        c.rcv_nxt = syn.seq + 1;
        c.rcv_adv = c.rcv_nxt;
        c.negotiate(&syn.opts, true);
        c.snd_wnd = usize::from(syn.window); // SYN windows are never scaled
        c.max_snd_wnd = c.snd_wnd;
        c.snd_wl1 = syn.seq;
        c
    }

    /// Sets the timestamp clock (RFC 7323 §4.3) so that the TSval sent at
    /// `now` is `tsval` (a SYN cookie's SYN-ACK carries information in its
    /// low bits; the connection rebuilt from the ACK continues from there).
    pub fn set_ts_clock(&mut self, now: Time, tsval: u32) {
        self.ts_offset = tsval.wrapping_sub((now / MS) as u32);
    }

    /// An already established connection rebuilt from a SYN cookie
    /// (RFC 4987 §3.6): options come from the cookie, timestamps are off.
    pub(crate) fn from_cookie(
        cfg: Config,
        ack: &Header,
        iss: Seq,
        mss: usize,
        wscale: Option<u8>,
        sack: bool,
    ) -> Self {
        let mut c = Self::blank(cfg, ack.dst_port, ack.src_port, iss, State::Established);
        c.irs = ack.seq + usize::MAX; // seq - 1
        c.rcv_nxt = ack.seq;
        // the cookie SYN-ACK announced 65535 with window scale 0
        c.rcv_shift = 0;
        c.rcv_adv = c.rcv_nxt + cfg.recv_buffer.min(65535);
        c.peer_mss = mss;
        c.sack_ok = sack && cfg.sack;
        c.ts_ok = false;
        if let (Some(s), true) = (wscale, cfg.window_scale) {
            c.snd_shift = s.min(14);
        }
        c.snd_una = iss + 1;
        c.snd_nxt = iss + 1;
        c.sendq.rebase(iss + 1);
        c.snd_wnd = usize::from(ack.window) << c.snd_shift;
        c.max_snd_wnd = c.snd_wnd;
        c.snd_wl1 = ack.seq;
        c.snd_wl2 = ack.ack;
        c.syn_pending = false;
        c.events.push(Event::Connected);
        c
    }

    fn negotiate(&mut self, o: &Opts, passive: bool) {
        self.peer_mss = opt_mss(o);
        self.sack_ok = self.cfg.sack && o.sack_perm;
        self.ts_ok = self.cfg.timestamps && o.ts.is_some();
        if let Some((v, _)) = o.ts {
            self.ts_recent = v;
        }
        // RFC 7323 §2.2: scaling only when both sides sent the option.
        self.ws_ok = o.wscale.is_some() && self.cfg.window_scale;
        match (o.wscale, self.cfg.window_scale) {
            (Some(s), true) => self.snd_shift = s.min(14),
            _ => {
                self.snd_shift = 0;
                if passive || o.wscale.is_none() {
                    self.rcv_shift = 0;
                }
            }
        }
    }

    // ---- owner API ----

    pub fn state(&self) -> State {
        self.state
    }
    pub fn stats(&self) -> &Stats {
        &self.stats
    }
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop()
    }
    pub fn local_port(&self) -> u16 {
        self.lport
    }
    pub fn remote_port(&self) -> u16 {
        self.rport
    }
    /// The retransmission timeout as it stands (RFC 6298 §2, with the
    /// backoff of timeouts in a row).
    pub fn rto(&self) -> Time {
        (self.rtt.rto().saturating_mul(u64::from(self.backoff))).min(self.rtt.rto_max())
    }
    pub fn srtt(&self) -> Option<Time> {
        self.rtt.srtt()
    }
    pub fn cwnd(&self) -> usize {
        self.cc.window()
    }
    pub fn cc_name(&self) -> &'static str {
        self.cc.name()
    }
    /// Bytes the send buffer still accepts.
    pub fn send_capacity(&self) -> usize {
        if matches!(
            self.state,
            State::SynSent | State::SynReceived | State::Established | State::CloseWait
        ) && !self.fin_queued
        {
            self.sendq.free()
        } else {
            0
        }
    }
    /// Retransmission timeouts in a row without progress.
    pub fn rto_in_row(&self) -> u32 {
        self.rto_in_row
    }
    /// Feeds a coupled congestion controller (RFC 6356 LIA): alpha × 1000
    /// and the total window of the MPTCP connection.
    pub fn set_cc_coupling(&mut self, alpha_milli: u64, total: usize) {
        self.cc.set_coupling(alpha_milli, total);
    }
    /// Lowers the MSS this end announces and sends with to `mss` (never
    /// raises it): the path this connection was given turned out narrower
    /// than the configuration's (an egress MTU, an IPv6 header). For a
    /// connection that has sent no data yet (its congestion window, sized
    /// in segments, starts again from the new MSS); the SYN or SYN-ACK it
    /// has yet to send announces it.
    pub fn limit_mss(&mut self, mss: u16) {
        let mss = mss.max(64);
        if mss < self.cfg.mss {
            self.cfg.mss = mss;
            self.cc = cc::new(self.cfg.cc, usize::from(mss));
        }
    }
    /// The MSS this end is configured with (its announced one, before any
    /// margin; segments also stay within the peer's).
    pub fn mss(&self) -> u16 {
        self.cfg.mss
    }

    /// An ICMP "fragmentation needed" (RFC 1191 §6.3) or "packet too big"
    /// (RFC 8201 §5.2) quoting the segment at `seq`: the path takes
    /// segments of at most `mss` bytes (the caller derived it from the
    /// reported MTU and floored it). Believed only for a segment in flight
    /// (RFC 5927 §7.2: an error quoting anything else is forged or stale)
    /// and when below the MSS in use. The MSS drops to it and what is in
    /// flight, dropped on the way for its size, is sent again at once in
    /// segments of the new size, with no congestion response (RFC 1191
    /// §6.5: the loss was not congestion). Returns whether it was taken.
    pub fn path_mtu_lowered(&mut self, seq: Seq, mss: u16) -> bool {
        let mss = mss.max(64);
        if seq.lt(self.snd_una) || !seq.lt(self.snd_nxt) || usize::from(mss) >= self.effective_mss()
        {
            return false;
        }
        self.cfg.mss = mss;
        self.stats.path_mtu_lowered += 1;
        if self.sends_data() {
            // as after a timeout, but with the window kept
            self.resend_in_flight();
        }
        true
    }

    /// Everything unacknowledged is deemed lost and resent from snd_una
    /// (SACKed data skipped); recovery ends once all of it is acked.
    fn resend_in_flight(&mut self) {
        self.recovery = Some(Recovery {
            point: self.snd_nxt,
            lost_until: self.snd_nxt,
            rxt_nxt: self.snd_una,
        });
    }
    /// Caps the window this end advertises (`None`: the receive buffer).
    pub fn set_window_limit(&mut self, limit: Option<usize>) {
        self.window_limit = limit;
    }
    /// The peer's last advertised window, scaled.
    pub fn peer_window(&self) -> usize {
        self.snd_wnd
    }
    /// The peer's window scale shift (RFC 7323).
    pub fn peer_window_shift(&self) -> u8 {
        self.snd_shift
    }
    /// The sequence number the next byte given to `send` will get.
    pub fn queued_end(&self) -> Seq {
        self.sendq.end()
    }
    /// Bytes written and not yet acknowledged.
    pub fn unacked(&self) -> usize {
        self.sendq.len()
    }
    /// Bytes received in order and not yet read.
    pub fn readable(&self) -> usize {
        self.recvq.ready_bytes()
    }
    /// Memory held for this connection in payload bytes (send + receive).
    pub fn buffered(&self) -> usize {
        self.sendq.len() + self.recvq.held()
    }
    pub fn iss(&self) -> Seq {
        self.iss
    }
    pub fn irs(&self) -> Seq {
        self.irs
    }
    pub fn snd_una(&self) -> Seq {
        self.snd_una
    }
    /// The next sequence number to send (what lies before it went out).
    pub fn snd_nxt(&self) -> Seq {
        self.snd_nxt
    }
    pub fn rcv_nxt(&self) -> Seq {
        self.rcv_nxt
    }

    /// Whether SYN `syn` from the peer's address and port may open a new
    /// connection on this one's tuple: this one is closed, or in TIME-WAIT
    /// and the SYN is no old duplicate (RFC 9293 §3.10.7.4, RFC 6191 §2):
    /// its timestamp is newer than the last one seen when both used
    /// timestamps, else its sequence number lies above what was received.
    /// A peer that closed second holds no TIME-WAIT and may reuse its port
    /// at once.
    pub fn accepts_new_syn(&self, syn: &Header) -> bool {
        match self.state {
            State::Closed => true,
            State::TimeWait => match (self.ts_ok, syn.opts.ts) {
                (true, Some((tsval, _))) => (tsval.wrapping_sub(self.ts_recent) as i32) > 0,
                _ => syn.seq.gt(self.rcv_nxt),
            },
            _ => false,
        }
    }

    /// Queues payload; returns how many bytes were taken (the rest does not
    /// fit the send buffer now).
    pub fn send(&mut self, c: C) -> usize {
        if self.send_capacity() == 0 {
            return 0;
        }
        self.sendq.push(c)
    }

    /// Like `send`, but no segment carries both bytes queued before and
    /// `c` (MPTCP: `c` starts a DSS mapping of its own).
    pub fn send_apart(&mut self, c: C) -> usize {
        if self.send_capacity() == 0 {
            return 0;
        }
        self.sendq.barrier();
        self.sendq.push(c)
    }

    /// The next chunk of in-order received data.
    pub fn recv(&mut self) -> Option<C> {
        let free = |c: &Self| {
            c.window_limit
                .map_or(c.recvq.window(), |l| l.min(c.recvq.window()))
        };
        let before = free(self);
        let c = self.recvq.pop()?;
        // RFC 9293 §3.8.6.2.2: announce the opened window once it grew by
        // min(buffer/2, MSS) from what the peer last saw (and only then: an
        // update that changes nothing would look like a duplicate ACK).
        let adv_left = self.rcv_adv.max(self.rcv_nxt) - self.rcv_nxt;
        let now_wnd = free(self);
        if now_wnd > before
            && now_wnd.saturating_sub(adv_left)
                >= (self.recvq.cap() / 2).min(usize::from(self.cfg.mss))
        {
            self.ack_now = true;
        }
        Some(c)
    }

    /// Orderly close: FIN after the queued data (RFC 9293 §3.10.4).
    pub fn close(&mut self) {
        match self.state {
            State::SynSent => self.enter_closed(Event::Closed),
            State::SynReceived | State::Established => {
                self.fin_queued = true;
                self.state = State::FinWait1;
            }
            State::CloseWait => {
                self.fin_queued = true;
                self.state = State::LastAck;
            }
            _ => {}
        }
    }

    /// Abort: RST now, everything dropped (RFC 9293 §3.10.5).
    pub fn abort(&mut self) {
        if !matches!(self.state, State::Closed | State::SynSent | State::TimeWait) {
            self.rst_pending = Some((self.snd_nxt, Some(self.rcv_nxt)));
        }
        self.enter_closed(Event::Closed);
    }

    /// Drops the connection without a segment (no RST): for a connection
    /// whose peer already has everything and whose path or peer is gone,
    /// where a RST could only surface as an error at the peer.
    pub fn forget(&mut self) {
        self.enter_closed(Event::Closed);
    }

    /// Refuses the connection in answer to `hdr` (e.g. an MP_JOIN with a bad
    /// HMAC, RFC 8684 §3.2): a RST built as RFC 9293 §3.10.7.1 says, and the
    /// connection is closed.
    pub fn reject(&mut self, hdr: &Header) {
        self.rst_pending = Some(if hdr.ack_flag() {
            (hdr.ack, None)
        } else {
            (
                Seq(0),
                Some(hdr.seq + (usize::from(hdr.syn()) + usize::from(hdr.fin()))),
            )
        });
        self.enter_closed(Event::Reset);
    }

    /// Ask for an ACK now (the MPTCP owner uses it to carry a DATA_ACK).
    pub fn force_ack(&mut self) {
        if !matches!(self.state, State::Closed | State::SynSent) {
            self.ack_now = true;
        }
    }

    /// TFO (RFC 7413 §4.2): data that came in a SYN with a valid cookie is
    /// delivered at once; the SYN-ACK acknowledges it.
    pub(crate) fn accept_syn_data(&mut self, data: C) {
        if let Insert::InOrder(n) = self.recvq.insert(self.recvq.next(), data) {
            self.rcv_nxt = self.rcv_nxt + n;
            self.stats.bytes_received += n as u64;
            self.events.push(Event::Readable);
        }
    }

    /// Sets the TFO cookie the SYN-ACK carries.
    pub(crate) fn set_tfo_cookie(&mut self, c: RawOpt) {
        self.tfo_cookie = Some(c);
    }

    fn enter_closed(&mut self, ev: Event) {
        if self.state != State::Closed {
            self.state = State::Closed;
            self.events.push(ev);
        }
        self.rto_at = None;
        self.pto_at = None;
        self.delack_at = None;
        self.persist_at = None;
        self.keepalive_at = None;
        self.timewait_at = None;
    }

    fn effective_mss(&self) -> usize {
        self.peer_mss.min(usize::from(self.cfg.mss)).max(64)
    }

    /// Our timestamp clock at `now` (RFC 7323 §4.3).
    pub fn tsval(&self, now: Time) -> u32 {
        ((now / MS) as u32).wrapping_add(self.ts_offset)
    }

    fn arm_rto(&mut self, now: Time) {
        self.rto_at = Some(now + self.rto());
    }

    /// RFC 8985 §7.2: PTO = 2·SRTT (floored at `pto_min`); a lone segment
    /// in flight may wait for the peer's delayed ACK, so it gets 1.5·SRTT
    /// plus the worst-case delayed-ACK time. Not armed when the RTO would
    /// fire first, before an RTT sample, while a probe is unanswered, or
    /// after a timeout until an ACK moves (the RTO's backoff rules then).
    fn arm_pto(&mut self, now: Time) {
        self.pto_at = None;
        if !self.cfg.tail_loss_probe
            || self.tlp_out
            || self.rto_in_row > 0
            || self.snd_una == self.snd_nxt
        {
            return;
        }
        let Some(srtt) = self.rtt.srtt() else { return };
        let mut pto = (2 * srtt).max(self.cfg.pto_min);
        if self.flight() <= self.effective_mss() {
            pto = pto.max(srtt + srtt / 2 + WC_DEL_ACK);
        }
        let at = now + pto;
        if self.rto_at.is_none_or(|r| at < r) {
            self.pto_at = Some(at);
        }
    }

    /// The probe timeout fired: nothing was acknowledged for a PTO.
    fn on_pto(&mut self, now: Time) {
        if self.snd_una == self.snd_nxt || !self.sends_data() {
            return;
        }
        match self.recovery {
            // still resending what was deemed lost (cwnd-limited): the
            // RTO stays the backstop
            Some(r) if r.rxt_nxt.lt(r.lost_until) => return,
            // Every segment deemed lost was resent and neither they nor
            // anything after them were acknowledged for a PTO: the first
            // hole's retransmission is lost as well. It goes again, once
            // (RFC 8985 §6 finds lost retransmissions by send time; hagw
            // keeps no per-segment times, the PTO bounds it).
            Some(_) => self.tlp_due = true,
            // Data above the hole was delivered, the hole was not, for a
            // PTO: it is lost (RACK's rule, RFC 8985 §6.2, with the PTO as
            // the reordering bound) even short of three duplicate ACKs.
            None if self.sack_ok && self.sb.bytes() > 0 => self.enter_recovery(now),
            None => self.tlp_due = true,
        }
        self.tlp_out = true;
        self.stats.loss_probes += 1;
        self.timed = None;
    }

    /// RFC 8985 §7.3: the probe is one new segment when there is unsent
    /// data the peer's window takes (whatever cwnd says), else the last
    /// segment sent, again; in recovery, the first hole again.
    fn tlp_segment(&mut self, now: Time) -> Option<Segment<C>> {
        if self.recovery.is_some() {
            return self.resend_at(now, self.snd_una, usize::MAX);
        }
        let mss = self.effective_mss();
        let data_end = self.sendq.end();
        let mut h = self.header(now, self.snd_nxt, flags::ACK);
        let room = mss
            .saturating_sub(h.opts.len() + self.cfg.reserved_option_space)
            .max(1);
        let unsent = data_end.max(self.snd_nxt) - self.snd_nxt;
        let wnd_edge = self.snd_una + self.snd_wnd;
        if unsent > 0 && self.fin_seq.is_none() && wnd_edge.gt(self.snd_nxt) {
            let payload = self
                .sendq
                .gather(self.snd_nxt, room.min(unsent).min(wnd_edge - self.snd_nxt));
            let n = payload.len();
            if n > 0 {
                if n == unsent {
                    h.flags |= flags::PSH;
                }
                self.snd_nxt = self.snd_nxt + n;
                return Some(self.emit(h, payload));
            }
        }
        // else the last thing sent, again: the FIN, or a segment's worth
        // of the last data
        let s = match self.fin_seq.filter(|f| f.ge(self.snd_una)) {
            Some(f) => f,
            None => {
                let len = room.min(self.snd_nxt - self.snd_una);
                self.snd_una + (self.snd_nxt - self.snd_una - len)
            }
        };
        self.resend_at(now, s, usize::MAX)
    }

    /// One retransmission from `s`, at most `limit` bytes: the FIN when `s`
    /// is the FIN, else data up to the next SACKed block, one segment at
    /// most (RFC 6675 §5 NextSeg). None when there is nothing there.
    fn resend_at(&mut self, now: Time, s: Seq, limit: usize) -> Option<Segment<C>> {
        // the FIN itself may be what was lost
        if self.fin_seq == Some(s) {
            self.stats.retransmits += 1;
            let h = self.header(now, s, flags::FIN | flags::ACK);
            return Some(self.emit(h, Gather::default()));
        }
        let mss = self.effective_mss();
        let mut lim = limit.min(mss);
        if let Some(n) = self.sb.next_start_after(s) {
            lim = lim.min(n - s);
        }
        let mut h = self.header(now, s, flags::ACK);
        let room = mss.saturating_sub(h.opts.len() + self.cfg.reserved_option_space);
        let lim = lim.min(room.max(1)).min(self.sendq.end().max(s) - s);
        if lim == 0 {
            return None;
        }
        let payload = self.sendq.gather(s, lim);
        self.stats.retransmits += 1;
        h.flags |= flags::PSH;
        Some(self.emit(h, payload))
    }

    /// RFC 6675 §5: loss detected, recovery starts at snd_una.
    fn enter_recovery(&mut self, now: Time) {
        self.cc.on_congestion(now, self.flight());
        let lost_until = match self.sb.highest() {
            Some(hs) if self.sack_ok => hs,
            _ => (self.snd_una + self.effective_mss()).min(self.snd_nxt),
        };
        self.recovery = Some(Recovery {
            point: self.snd_nxt,
            lost_until,
            rxt_nxt: self.snd_una,
        });
        self.stats.fast_recoveries += 1;
        self.timed = None;
    }

    fn arm_keepalive(&mut self, now: Time) {
        if let Some(idle) = self.cfg.keepalive {
            self.keepalive_at = Some(now + idle);
            self.ka_probes = 0;
        }
    }

    fn flight(&self) -> usize {
        self.snd_nxt - self.snd_una
    }

    /// RFC 6675 §4 "pipe": bytes believed in flight.
    fn pipe(&self) -> usize {
        let una = self.snd_una;
        match self.recovery {
            Some(r) => {
                let rx = r.rxt_nxt.max(una).min(self.snd_nxt);
                let hi = r.lost_until.max(rx).min(self.snd_nxt);
                let resent = (rx - una).saturating_sub(self.sb.bytes_in(una, rx));
                let above = (self.snd_nxt - hi).saturating_sub(self.sb.bytes_in(hi, self.snd_nxt));
                resent + above
            }
            None => self.flight().saturating_sub(self.sb.bytes()),
        }
    }

    fn challenge_ack(&mut self, now: Time) {
        // RFC 5961 §7: rate limit
        if now.saturating_sub(self.challenge.0) >= 1_000 * MS {
            self.challenge = (now, 0);
        }
        if self.challenge.1 < self.cfg.challenge_ack_limit {
            self.challenge.1 += 1;
            self.stats.challenge_acks += 1;
            self.ack_now = true;
        }
    }

    // ---- input ----

    /// Processes one incoming segment (RFC 9293 §3.10.7).
    pub fn handle_segment(&mut self, now: Time, seg: Incoming<C>) {
        self.stats.segs_in += 1;
        let h = &seg.hdr;
        match self.state {
            State::Closed => return,
            State::SynSent => return self.handle_syn_sent(now, h),
            _ => {}
        }
        let len = seg.payload.len();
        let seg_len = seg.seq_len();

        // RFC 7323 §5.3 PAWS
        if self.ts_ok && !h.rst() {
            if let Some((tsval, _)) = h.opts.ts {
                if (tsval.wrapping_sub(self.ts_recent) as i32) < 0
                    && self.state != State::SynReceived
                {
                    self.stats.drop_paws += 1;
                    self.ack_now = true;
                    return;
                }
            }
        }

        // RFC 9293 §3.10.7.4 first: sequence number acceptability
        let wnd = self.rcv_adv.max(self.rcv_nxt) - self.rcv_nxt;
        let acceptable = match (seg_len, wnd) {
            (0, 0) => h.seq == self.rcv_nxt,
            // a bare ACK at the right edge is accepted (as Linux does): a
            // peer that filled our window sends exactly that
            (0, _) => h.seq.in_range(self.rcv_nxt, self.rcv_nxt + wnd + 1),
            (_, 0) => false,
            (_, _) => {
                h.seq.in_range(self.rcv_nxt, self.rcv_nxt + wnd)
                    || (h.seq + (seg_len - 1)).in_range(self.rcv_nxt, self.rcv_nxt + wnd)
            }
        };
        // a zero window still takes ACKs/RST at rcv_nxt
        let acceptable = acceptable || (wnd == 0 && h.seq == self.rcv_nxt);
        if !acceptable {
            if h.rst() {
                self.stats.drop_rst_out_of_window += 1;
                return;
            }
            // a retransmitted FIN in TIME-WAIT restarts the timer
            if self.state == State::TimeWait && h.fin() {
                self.timewait_at = Some(now + self.cfg.time_wait);
            }
            self.stats.drop_out_of_window += 1;
            // An old duplicate (all of it below rcv_nxt) still carries a
            // valid ACK: a peer retransmitting what we already have may be
            // acknowledging what we sent, and dropping that ACK too would
            // deadlock two retransmitting ends (Linux accepts such segments
            // down to rcv_wup for the same reason).
            if h.ack_flag()
                && seg_len > 0
                && (h.seq + seg_len).le(self.rcv_nxt)
                && self.state != State::SynReceived
            {
                self.process_ack(now, h, 0);
            }
            self.ack_now = true;
            return;
        }

        // second: RST (RFC 5961 §3.2)
        if h.rst() {
            if self.state == State::TimeWait {
                // RFC 1337 §3 (F1): both FINs are through, the connection
                // is over; a peer whose socket is gone answers our repeated
                // ACK of its FIN with a RST, which is no reset of ours
                self.stats.drop_rst_in_time_wait += 1;
                return;
            }
            if h.seq == self.rcv_nxt {
                self.enter_closed(Event::Reset);
            } else {
                self.challenge_ack(now);
            }
            return;
        }

        // fourth: SYN (RFC 5961 §4)
        if h.syn() {
            if self.state == State::SynReceived && h.seq == self.irs {
                self.syn_pending = true; // retransmitted SYN: answer again
            } else {
                self.stats.drop_syn_in_window += 1;
                self.challenge_ack(now);
            }
            return;
        }

        // fifth: ACK
        if !h.ack_flag() {
            self.stats.drop_no_ack_flag += 1;
            return;
        }
        if self.state == State::SynReceived {
            if h.ack.gt(self.snd_una) && h.ack.le(self.snd_nxt) {
                self.state = State::Established;
                self.snd_wnd = usize::from(h.window) << self.snd_shift;
                self.max_snd_wnd = self.max_snd_wnd.max(self.snd_wnd);
                self.snd_wl1 = h.seq;
                self.snd_wl2 = h.ack;
                self.events.push(Event::Connected);
                self.arm_keepalive(now);
            } else {
                self.rst_pending = Some((h.ack, None));
                return;
            }
        }
        if !self.process_ack(now, h, len) {
            return;
        }
        if self.cfg.keepalive.is_some() {
            self.arm_keepalive(now);
        }

        // RFC 7323 §4.3: record the timestamp to echo
        if let Some((tsval, _)) = h.opts.ts {
            if self.ts_ok && h.seq.le(self.last_ack_sent) && self.last_ack_sent.le(h.seq + seg_len)
            {
                self.ts_recent = tsval;
            }
        }

        // seventh: segment text
        if len > 0
            && matches!(
                self.state,
                State::Established | State::FinWait1 | State::FinWait2
            )
        {
            self.receive_data(now, h.seq, seg.payload);
        }
        // eighth: FIN
        if h.fin()
            && matches!(
                self.state,
                State::Established | State::FinWait1 | State::FinWait2 | State::SynReceived
            )
        {
            let fin_off = (h.seq + len).0.wrapping_sub(self.rcv_nxt.0) as i32 as i64
                + self.recvq.next() as i64;
            if fin_off >= self.recvq.next() as i64 {
                self.fin_at = Some(fin_off as u64);
            }
            self.ack_now = true;
        }
        self.maybe_accept_fin(now);
    }

    fn handle_syn_sent(&mut self, now: Time, h: &Header) {
        // RFC 9293 §3.10.7.3
        if h.ack_flag() && (h.ack.le(self.iss) || h.ack.gt(self.snd_nxt)) {
            if !h.rst() {
                self.rst_pending = Some((h.ack, None));
            }
            self.stats.drop_ack_unsent += 1;
            return;
        }
        if h.rst() {
            if h.ack_flag() {
                self.enter_closed(Event::Reset);
            }
            return;
        }
        if !h.syn() {
            return;
        }
        self.irs = h.seq;
        self.rcv_nxt = h.seq + 1;
        self.rcv_adv = self.rcv_nxt;
        self.last_ack_sent = self.rcv_nxt;
        self.negotiate(&h.opts, false);
        if let Some(c) = h.opts.tfo {
            if !c.as_slice().is_empty() {
                self.tfo_cookie = Some(c);
            }
        }
        if h.ack_flag() {
            self.snd_una = h.ack;
            self.sendq.rebase(h.ack);
            self.snd_wnd = usize::from(h.window) << self.snd_shift;
            self.max_snd_wnd = self.snd_wnd;
            self.snd_wl1 = h.seq;
            self.snd_wl2 = h.ack;
            if self.syn_tries <= 1 {
                if let Some((_, t)) = self.timed.take() {
                    self.rtt.sample(now.saturating_sub(t));
                }
            }
            self.timed = None;
            self.backoff = 1;
            self.rto_at = None;
            self.state = State::Established;
            self.events.push(Event::Connected);
            self.ack_now = true;
            self.arm_keepalive(now);
        } else {
            // simultaneous open (RFC 9293 §3.5, figure 8)
            self.state = State::SynReceived;
            self.syn_pending = true;
            self.snd_wnd = usize::from(h.window);
            self.snd_wl1 = h.seq;
        }
    }

    /// ACK processing; false when the segment must be dropped.
    fn process_ack(&mut self, now: Time, h: &Header, len: usize) -> bool {
        let ack = h.ack;
        // RFC 5961 §5.2 / RFC 9293: ACK of data we never sent
        if ack.gt(self.snd_nxt) {
            self.stats.drop_ack_unsent += 1;
            self.ack_now = true;
            return false;
        }
        if ack.lt(self.snd_una + 0usize.wrapping_sub(self.max_snd_wnd.max(65535))) {
            self.stats.drop_old_ack += 1;
            self.challenge_ack(now);
            return false;
        }
        // SACK blocks (RFC 2018 §3, ignoring D-SACK and blocks outside the
        // window, RFC 6675 §4)
        let mut new_sack = false;
        if self.sack_ok {
            for b in h.opts.sack_blocks() {
                let (l, r) = (Seq(b.left), Seq(b.right));
                if l.lt(r) && l.ge(ack) && l.ge(self.snd_una) && r.le(self.snd_nxt) {
                    let before = self.sb.bytes();
                    self.sb.add(l, r);
                    new_sack |= self.sb.bytes() != before;
                } else if !(l.lt(ack) && r.le(ack)) {
                    self.stats.sack_blocks_invalid += 1;
                }
            }
        }
        let window = usize::from(h.window) << self.snd_shift;
        if ack.gt(self.snd_una) {
            let mut acked = ack - self.snd_una;
            // our SYN occupies one sequence number
            if self.snd_una == self.iss {
                acked -= 1;
            }
            let fin_acked = self.fin_seq.is_some_and(|f| ack.gt(f));
            if fin_acked {
                acked = acked.saturating_sub(1);
            }
            let flight_before = self.snd_nxt - self.snd_una;
            self.sendq.ack_to(ack.min(self.sendq.end()));
            self.snd_una = ack;
            self.sb.trim(ack);
            self.stats.bytes_acked += acked as u64;
            // Karn: only segments sent once give samples
            if let Some((s, t)) = self.timed {
                if ack.ge(s) {
                    self.rtt.sample(now.saturating_sub(t));
                    self.timed = None;
                }
            }
            self.backoff = 1;
            self.rto_in_row = 0;
            self.dupacks = 0;
            self.tlp_out = false;
            match self.recovery {
                Some(r) if ack.ge(r.point) => {
                    self.recovery = None;
                    self.cc.on_recovery_exit(now);
                }
                Some(mut r) => {
                    // partial ACK (RFC 6582 §3.2): the next hole is lost too
                    r.lost_until = r
                        .lost_until
                        .max(ack + self.effective_mss())
                        .min(self.snd_nxt);
                    r.rxt_nxt = r.rxt_nxt.max(ack);
                    self.recovery = Some(r);
                }
                None => {
                    self.hystart_sample(now, h, ack);
                    // RFC 7661: grow the window only while it is used (an
                    // application-limited sender would inflate it forever)
                    if 2 * flight_before >= self.cc.window() {
                        self.cc
                            .on_ack(now, acked, self.rtt.srtt(), self.rtt.min_rtt());
                    }
                }
            }
            if self.snd_una == self.snd_nxt {
                self.rto_at = None;
                self.pto_at = None;
            } else {
                self.arm_rto(now);
                self.arm_pto(now);
            }
            if let Some(f) = self.fin_seq {
                if ack.gt(f) {
                    match self.state {
                        State::FinWait1 => self.state = State::FinWait2,
                        State::Closing => self.enter_time_wait(now),
                        State::LastAck => self.enter_closed(Event::Closed),
                        _ => {}
                    }
                }
            }
        } else if ack == self.snd_una
            && len == 0
            && !h.fin()
            && window == self.snd_wnd
            && self.snd_nxt.gt(self.snd_una)
        {
            self.dupacks += 1;
            self.stats.dup_acks += 1;
        }
        // window update (RFC 9293 §3.10.7.4)
        if self.snd_wl1.lt(h.seq) || (self.snd_wl1 == h.seq && self.snd_wl2.le(ack)) {
            self.snd_wnd = window;
            self.max_snd_wnd = self.max_snd_wnd.max(window);
            self.snd_wl1 = h.seq;
            self.snd_wl2 = ack;
            if window > 0 {
                self.persist_at = None;
                self.persist_backoff = 1;
            }
        }
        // loss detection: 3 duplicate ACKs, or DupThresh segments SACKed
        // above snd_una (RFC 6675 IsLost)
        let mss = self.effective_mss();
        if let Some(mut r) = self.recovery {
            if let Some(hs) = self.sb.highest() {
                r.lost_until = r.lost_until.max(hs);
            }
            self.recovery = Some(r);
        } else if self.snd_nxt.gt(self.snd_una)
            && (self.dupacks >= 3
                || (self.sack_ok && new_sack && self.sb.bytes() >= 3 * mss)
                // RFC 8985 §7.4: the probe got through (SACKed) and the
                // data before it did not: that data is lost
                || (self.tlp_out && self.sack_ok && new_sack && self.sb.bytes() > 0))
        {
            self.enter_recovery(now);
        }
        true
    }

    fn hystart_sample(&mut self, now: Time, h: &Header, ack: Seq) {
        if self.cc.window() >= self.cc.ssthresh() {
            return;
        }
        if let (true, Some((_, tsecr))) = (self.ts_ok, h.opts.ts) {
            let ms = self.tsval(now).wrapping_sub(tsecr);
            if ms < 60_000 {
                let hs = &mut self.hystart;
                hs.cur_min = hs.cur_min.min(Time::from(ms) * MS);
                hs.samples += 1;
                if hs.samples >= HS_N_RTT_SAMPLE && hs.last_min != Time::MAX {
                    let thresh = (hs.last_min / 8).clamp(HS_MIN_RTT_THRESH, HS_MAX_RTT_THRESH);
                    if hs.cur_min >= hs.last_min + thresh {
                        self.cc.exit_slow_start();
                    }
                }
            }
        }
        let hs = &mut self.hystart;
        if hs.round_end.is_none_or(|r| ack.ge(r)) {
            if hs.samples >= HS_N_RTT_SAMPLE {
                hs.last_min = hs.cur_min;
            }
            hs.cur_min = Time::MAX;
            hs.samples = 0;
            hs.round_end = Some(self.snd_nxt);
        }
    }

    fn receive_data(&mut self, now: Time, seq: Seq, payload: C) {
        // place relative to rcv_nxt; trim to the advertised window
        let rel = seq.0.wrapping_sub(self.rcv_nxt.0) as i32 as i64;
        let at = self.recvq.next() as i64 + rel;
        let (at, payload) = if at < self.recvq.next() as i64 {
            let skip = (self.recvq.next() as i64 - at) as usize;
            if skip >= payload.len() {
                self.ack_now = true;
                return;
            }
            (self.recvq.next(), payload.slice(skip, payload.len()))
        } else {
            (at as u64, payload)
        };
        let wnd_end = self.recvq.next() + (self.rcv_adv.max(self.rcv_nxt) - self.rcv_nxt) as u64;
        let payload = if at + payload.len() as u64 > wnd_end {
            payload.slice(0, wnd_end.saturating_sub(at) as usize)
        } else {
            payload
        };
        if payload.is_empty() {
            self.ack_now = true;
            return;
        }
        let had_ooo = self.recvq.has_ooo();
        match self.recvq.insert(at, payload) {
            Insert::InOrder(n) => {
                self.rcv_nxt = self.rcv_nxt + n;
                self.stats.bytes_received += n as u64;
                self.events.push(Event::Readable);
                self.unacked_segs += 1;
                // RFC 9293 §3.8.6.3 / RFC 5681 §4.2: ack every second full
                // segment, at once while quick-acking or when a hole filled
                if self.quickack > 0 || self.unacked_segs >= 2 || had_ooo {
                    self.quickack = self.quickack.saturating_sub(1);
                    self.ack_now = true;
                } else if self.delack_at.is_none() {
                    self.delack_at = Some(now + self.cfg.delayed_ack);
                }
            }
            Insert::OutOfOrder | Insert::Duplicate => self.ack_now = true,
            Insert::NoRoom => {
                self.stats.drop_recv_no_room += 1;
                self.ack_now = true;
            }
        }
    }

    fn maybe_accept_fin(&mut self, now: Time) {
        let Some(f) = self.fin_at else { return };
        if f != self.recvq.next() {
            return;
        }
        self.fin_at = None;
        self.rcv_nxt = self.rcv_nxt + 1;
        self.ack_now = true;
        self.events.push(Event::PeerClosed);
        match self.state {
            State::Established | State::SynReceived => self.state = State::CloseWait,
            State::FinWait1 => {
                if self.fin_seq.is_some_and(|f| self.snd_una.gt(f)) {
                    self.enter_time_wait(now);
                } else {
                    self.state = State::Closing;
                }
            }
            State::FinWait2 => self.enter_time_wait(now),
            _ => {}
        }
    }

    fn enter_time_wait(&mut self, now: Time) {
        self.state = State::TimeWait;
        self.rto_at = None;
        self.persist_at = None;
        self.keepalive_at = None;
        self.timewait_at = Some(now + self.cfg.time_wait);
    }

    // ---- timers ----

    pub fn next_timeout(&self) -> Option<Time> {
        // (asked for every subflow after every input and poll: branch-free
        // minimum, no iterator over the timers)
        let t = |x: Option<Time>| x.unwrap_or(Time::MAX);
        let m = t(self.rto_at)
            .min(t(self.pto_at))
            .min(t(self.delack_at))
            .min(t(self.persist_at))
            .min(t(self.keepalive_at))
            .min(t(self.timewait_at));
        (m != Time::MAX).then_some(m)
    }

    pub fn on_timeout(&mut self, now: Time) {
        if self.delack_at.is_some_and(|t| t <= now) {
            self.delack_at = None;
            self.ack_now = true;
        }
        if self.timewait_at.is_some_and(|t| t <= now) {
            self.timewait_at = None;
            self.enter_closed(Event::Closed);
            return;
        }
        if self.persist_at.is_some_and(|t| t <= now) {
            self.persist_at = None;
            self.probe_due = true;
        }
        if self.keepalive_at.is_some_and(|t| t <= now) {
            self.ka_probes += 1;
            if self.ka_probes > self.cfg.keepalive_probes {
                self.rst_pending = Some((self.snd_nxt, Some(self.rcv_nxt)));
                self.enter_closed(Event::TimedOut);
                return;
            }
            self.ka_due = true;
            self.keepalive_at = Some(now + self.cfg.keepalive_interval);
        }
        if self.rto_at.is_some_and(|t| t <= now) {
            self.rto_at = None;
            self.on_rto(now);
        } else if self.pto_at.is_some_and(|t| t <= now) {
            self.pto_at = None;
            self.on_pto(now);
        }
    }

    fn on_rto(&mut self, now: Time) {
        self.stats.rtos += 1;
        self.pto_at = None;
        self.tlp_out = false;
        self.tlp_due = false;
        self.backoff = (self.backoff * 2).min(1 << 12);
        self.timed = None;
        match self.state {
            State::SynSent | State::SynReceived => {
                if self.syn_tries > self.cfg.syn_retries {
                    self.enter_closed(Event::TimedOut);
                    return;
                }
                self.syn_pending = true;
                return;
            }
            State::Closed | State::TimeWait => return,
            _ => {}
        }
        if self.snd_una == self.snd_nxt {
            return;
        }
        self.rto_in_row += 1;
        if self.rto_in_row > self.cfg.max_retransmits {
            self.rst_pending = Some((self.snd_nxt, Some(self.rcv_nxt)));
            self.enter_closed(Event::TimedOut);
            return;
        }
        // RFC 5681 §3.1 / RFC 6298 §5.5: collapse the window, resend from
        // snd_una (SACKed data is skipped; after a second timeout the SACK
        // information is discarded in case the receiver reneged, RFC 2018 §8).
        self.cc.on_rto(now, self.pipe());
        if self.rto_in_row > 1 {
            self.sb.clear();
        }
        self.resend_in_flight();
        self.dupacks = 0;
        self.arm_rto(now);
    }

    // ---- output ----

    fn header(&mut self, now: Time, seq: Seq, fl: u16) -> Header {
        let mut opts = Opts::default();
        if self.ts_ok {
            opts.ts = Some((self.tsval(now), self.ts_recent));
        }
        let mut h = Header {
            src_port: self.lport,
            dst_port: self.rport,
            seq,
            ack: Seq(0),
            flags: fl,
            window: 0,
            opts,
        };
        if fl & flags::ACK != 0 {
            h.ack = self.rcv_nxt;
            // SACK blocks for the out-of-order data we hold (RFC 2018 §4)
            if self.sack_ok && self.recvq.has_ooo() {
                let max = if self.ts_ok { 3 } else { 4 };
                let mut ext = std::mem::take(&mut self.scratch);
                self.recvq.sack_extents(max, &mut ext);
                let base = self.recvq.next();
                for (i, (s, e)) in ext.iter().enumerate() {
                    h.opts.sack[i] = SackBlock {
                        left: (self.rcv_nxt + (s - base) as usize).0,
                        right: (self.rcv_nxt + (e - base) as usize).0,
                    };
                }
                h.opts.sack_n = ext.len() as u8;
                self.scratch = ext;
            }
            // the right edge never moves left (RFC 9293 §3.8.6.2.2)
            let free = self
                .window_limit
                .map_or(self.recvq.window(), |l| l.min(self.recvq.window()));
            let edge = (self.rcv_nxt + free).max(self.rcv_adv);
            let wnd = ((edge - self.rcv_nxt) >> self.rcv_shift).min(65535);
            self.rcv_adv = self.rcv_nxt + (wnd << self.rcv_shift);
            h.window = wnd as u16;
            self.last_ack_sent = self.rcv_nxt;
            self.ack_now = false;
            self.delack_at = None;
            self.unacked_segs = 0;
        }
        h
    }

    fn emit(&mut self, hdr: Header, payload: Gather<C>) -> Segment<C> {
        self.stats.segs_out += 1;
        Segment { hdr, payload }
    }

    fn syn_segment(&mut self, now: Time) -> Segment<C> {
        let passive = self.state == State::SynReceived;
        self.syn_tries += 1;
        let fl = if passive {
            flags::SYN | flags::ACK
        } else {
            flags::SYN
        };
        let mut h = self.header(now, self.iss, fl);
        h.opts.mss = Some(
            self.cfg
                .mss
                .saturating_sub(self.cfg.mss_announce_margin)
                .max(64),
        );
        if self.cfg.window_scale && (!passive || self.ws_ok) {
            h.opts.wscale = Some(self.rcv_shift);
        }
        h.opts.sack_perm = self.cfg.sack && (!passive || self.sack_ok);
        if self.cfg.timestamps && (!passive || self.ts_ok) {
            h.opts.ts = Some((self.tsval(now), if passive { self.ts_recent } else { 0 }));
        }
        if passive {
            h.opts.tfo = self.tfo_cookie.take();
            // SYN-ACK windows are not scaled (RFC 7323 §2.2)
            h.window = self.recvq.window().min(65535) as u16;
            self.rcv_adv = self.rcv_nxt + usize::from(h.window);
        } else {
            h.window = self.recvq.window().min(65535) as u16;
        }
        self.snd_nxt = self.snd_nxt.max(self.iss + 1);
        if self.syn_tries == 1 {
            self.timed = Some((self.iss + 1, now));
        }
        self.arm_rto(now);
        self.emit(h, Gather::default())
    }

    /// A pure ACK now, whatever else is waiting (the MPTCP owner needs one
    /// for an option that cannot ride on data); None before the peer's
    /// SYN is known or after the connection closed.
    pub fn pure_ack(&mut self, now: Time) -> Option<Segment<C>> {
        if matches!(self.state, State::Closed | State::SynSent) {
            return None;
        }
        let h = self.header(now, self.snd_nxt, flags::ACK);
        Some(self.emit(h, Gather::default()))
    }

    /// The next segment to send, if any.
    pub fn poll_transmit(&mut self, now: Time) -> Option<Segment<C>> {
        if let Some((seq, ack)) = self.rst_pending.take() {
            let mut h = Header {
                src_port: self.lport,
                dst_port: self.rport,
                seq,
                flags: flags::RST,
                ..Default::default()
            };
            if let Some(a) = ack {
                h.flags |= flags::ACK;
                h.ack = a;
            }
            return Some(self.emit(h, Gather::default()));
        }
        match self.state {
            State::Closed => return None,
            State::SynSent | State::SynReceived if self.syn_pending => {
                self.syn_pending = false;
                return Some(self.syn_segment(now));
            }
            State::SynSent => return None,
            _ => {}
        }
        if self.state != State::SynReceived {
            if let Some(s) = self.data_segment(now) {
                return Some(s);
            }
            if let Some(s) = self.fin_segment(now) {
                return Some(s);
            }
        }
        if self.ka_due {
            self.ka_due = false;
            if self.snd_una == self.snd_nxt && self.state == State::Established {
                self.stats.keepalive_probes += 1;
                let h = self.header(now, self.snd_una + usize::MAX, flags::ACK);
                return Some(self.emit(h, Gather::default()));
            }
        }
        if self.ack_now {
            return self.pure_ack(now);
        }
        None
    }

    /// States in which data (or its retransmission) may go out.
    fn sends_data(&self) -> bool {
        matches!(
            self.state,
            State::Established
                | State::CloseWait
                | State::FinWait1
                | State::Closing
                | State::LastAck
        )
    }

    fn data_segment(&mut self, now: Time) -> Option<Segment<C>> {
        if !self.sends_data() {
            return None;
        }
        if self.tlp_due {
            self.tlp_due = false;
            return self.tlp_segment(now);
        }
        let data_end = self.sendq.end();
        if self.recovery.is_none() && (data_end.le(self.snd_nxt) || self.fin_seq.is_some()) {
            // nothing new to send and nothing to resend (step 2 below
            // would say so after working out the windows): the common
            // case of a poll after every input
            return self.window_probe(now);
        }
        let mss = self.effective_mss();
        let cwnd = self.cc.window();
        let pipe = self.pipe();
        // 1. retransmissions in recovery
        if let Some(mut r) = self.recovery {
            let mut s = r.rxt_nxt.max(self.snd_una);
            while let Some(e) = self.sb.sacked_end(s) {
                s = e;
            }
            if s.lt(r.lost_until) && (pipe < cwnd || s == self.snd_una && r.rxt_nxt == self.snd_una)
            {
                if let Some(seg) = self.resend_at(now, s, r.lost_until - s) {
                    r.rxt_nxt = s + seg.seq_len();
                    self.recovery = Some(r);
                    if !seg.hdr.fin() {
                        if self.rto_at.is_none() {
                            self.arm_rto(now);
                        }
                        if r.rxt_nxt.ge(r.lost_until) {
                            // the last one deemed lost: a PTO from now
                            // tells whether a retransmission was lost too
                            self.arm_pto(now);
                        }
                    }
                    return Some(seg);
                }
            }
            r.rxt_nxt = r.rxt_nxt.max(s);
            self.recovery = Some(r);
        }
        // 2. new data within cwnd and the peer's window
        let unsent = data_end.max(self.snd_nxt) - self.snd_nxt;
        let fin_sent = self.fin_seq.is_some();
        if unsent == 0 || fin_sent {
            return self.window_probe(now);
        }
        let wnd_edge = self.snd_una + self.snd_wnd;
        let by_wnd = if wnd_edge.gt(self.snd_nxt) {
            wnd_edge - self.snd_nxt
        } else {
            0
        };
        let by_cwnd = cwnd.saturating_sub(pipe);
        let usable = by_wnd.min(by_cwnd);
        if by_wnd == 0
            && self.snd_una == self.snd_nxt
            && self.persist_at.is_none()
            && !self.probe_due
        {
            // RFC 9293 §3.8.6.1: zero window, nothing in flight: persist
            self.persist_at = Some(
                now + (self.rtt.rto() * u64::from(self.persist_backoff)).min(self.rtt.rto_max()),
            );
        }
        if usable == 0 {
            return self.window_probe(now);
        }
        let mut h = self.header(now, self.snd_nxt, flags::ACK);
        let room = mss
            .saturating_sub(h.opts.len() + self.cfg.reserved_option_space)
            .max(1);
        let len = room.min(usable).min(unsent);
        // sender SWS avoidance (RFC 9293 §3.8.6.2.1): no runt while data is
        // in flight and more is waiting for window
        if len < room && len < unsent && self.snd_nxt != self.snd_una {
            return None;
        }
        let payload = self.sendq.gather(self.snd_nxt, len);
        let n = payload.len();
        if n == 0 {
            return None;
        }
        if n == unsent {
            h.flags |= flags::PSH;
        }
        self.snd_nxt = self.snd_nxt + n;
        if self.timed.is_none() && self.recovery.is_none() {
            self.timed = Some((self.snd_nxt, now));
        }
        if self.rto_at.is_none() {
            self.arm_rto(now);
        }
        self.arm_pto(now);
        Some(self.emit(h, payload))
    }

    fn window_probe(&mut self, now: Time) -> Option<Segment<C>> {
        if !self.probe_due {
            return None;
        }
        self.probe_due = false;
        if self.snd_wnd > 0 || self.sendq.end().le(self.snd_nxt) {
            return None;
        }
        // one byte beyond the window (RFC 9293 §3.8.6.1)
        self.stats.zero_window_probes += 1;
        let h = self.header(now, self.snd_nxt, flags::ACK);
        let payload = self.sendq.gather(self.snd_nxt, 1);
        self.snd_nxt = self.snd_nxt + payload.len();
        self.persist_backoff = (self.persist_backoff * 2).min(64);
        if self.rto_at.is_none() {
            self.arm_rto(now);
        }
        Some(self.emit(h, payload))
    }

    fn fin_segment(&mut self, now: Time) -> Option<Segment<C>> {
        if !self.fin_queued || self.fin_seq.is_some() || self.snd_nxt != self.sendq.end() {
            return None;
        }
        if !matches!(
            self.state,
            State::FinWait1 | State::LastAck | State::Closing
        ) {
            return None;
        }
        let h = self.header(now, self.snd_nxt, flags::FIN | flags::ACK);
        self.fin_seq = Some(self.snd_nxt);
        self.snd_nxt = self.snd_nxt + 1;
        if self.rto_at.is_none() {
            self.arm_rto(now);
        }
        Some(self.emit(h, Gather::default()))
    }
}

#[cfg(test)]
mod tests {
    use super::{Event, Events};

    #[test]
    fn events_come_out_once_each_in_the_order_of_a_connections_life() {
        for (i, e) in Events::ORDER.iter().enumerate() {
            assert_eq!(*e as usize, i, "ORDER follows the enum");
        }
        let mut q = Events::default();
        for e in [
            Event::PeerClosed,
            Event::Readable,
            Event::Connected,
            Event::Readable,
            Event::Reset,
        ] {
            q.push(e);
        }
        let got: Vec<Event> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(
            got,
            [
                Event::Connected,
                Event::Readable,
                Event::PeerClosed,
                Event::Reset
            ]
        );
        q.push(Event::Readable);
        assert_eq!(q.pop(), Some(Event::Readable));
        assert_eq!(q.pop(), None);
    }
}
