//! One conversion session: the client's MPTCP connection (one TCP engine
//! per subflow plus the data level), the server's TCP connection, and the
//! splice between them (DESIGN.md §3).

use crate::stats::{ConvStats, Side, SubflowInfo};
use nf_core::chunk::Chunk;
use nf_core::sim::Time;
use nf_mptcp::conn::{Event as MpEvent, MpConnection};
use nf_tcp::{Connection, Event as TcpEvent, Incoming, Segment, State};
use std::net::IpAddr;

/// Where a session is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// The client's SYN went to the server; its answer decides.
    Connecting,
    /// Terminated: MPTCP on the access side, TCP toward the server.
    Converted,
    /// Withdrawn: the server speaks MPTCP; hagw only NATs the subflows.
    Passthrough,
    /// Over; removed at the next sweep.
    Done,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Connecting => "connecting",
            Phase::Converted => "converted",
            Phase::Passthrough => "withdrawn",
            Phase::Done => "done",
        }
    }
}

/// A subflow's addresses on the access side.
#[derive(Clone, Copy, Debug)]
pub struct Path {
    /// The client's address and port.
    pub client: (IpAddr, u16),
    /// The address and port the client connected to (the server's, or a
    /// gateway address it learned from ADD_ADDR).
    pub gw: (IpAddr, u16),
    pub side: Side,
    /// Counted in the live-subflow gauge.
    pub live: bool,
    /// Its TCP loss recovery, as far as counted.
    pub loss: LossSeen,
}

/// A TCP connection's loss-recovery counters (retransmissions, timeouts,
/// fast recoveries, loss probes) already added to the worker's totals by
/// access role.
#[derive(Clone, Copy, Debug, Default)]
pub struct LossSeen([u64; 4]);

impl LossSeen {
    /// Adds what `s` counted since the last call to `side`'s totals.
    pub fn account(&mut self, s: &nf_tcp::Stats, side: Side, st: &ConvStats) {
        let now = [s.retransmits, s.rtos, s.fast_recoveries, s.loss_probes];
        let sets = [
            &st.tcp_retransmits,
            &st.tcp_timeouts,
            &st.tcp_fast_recoveries,
            &st.tcp_loss_probes,
        ];
        for ((seen, now), set) in self.0.iter_mut().zip(now).zip(sets) {
            if now > *seen {
                if let Some(c) = set.0.get(side as usize) {
                    c.add(now - *seen);
                }
                *seen = now;
            }
        }
    }
}

/// A packet a session wants sent.
pub struct Outgoing<C> {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub seg: Segment<C>,
    pub side: Side,
}

/// Where a session's packets go as the engines give them: straight into
/// packet buffers (the worker's pipeline, so that a segment of some 300
/// bytes is not moved into a queue and out again), or a queue. The
/// segment is lent where the engine returned it, its addresses beside it:
/// an [`Outgoing`] built around it, or a segment passed by value, each
/// cost a copy of it per packet (together ~1 k instructions per
/// conversion, of ~84 k).
pub trait Emit<C> {
    /// `seg` from `src` to `dst`, toward `side`.
    fn emit(&mut self, src: IpAddr, dst: IpAddr, side: Side, seg: &Segment<C>);
}

/// The queue (sessions driven outside a poll): the segment is cloned (its
/// payload by reference).
impl<C: Chunk> Emit<C> for Vec<Outgoing<C>> {
    fn emit(&mut self, src: IpAddr, dst: IpAddr, side: Side, seg: &Segment<C>) {
        self.push(Outgoing {
            src,
            dst,
            seg: seg.clone(),
            side,
        });
    }
}

pub struct Session<C: Chunk> {
    pub id: u64,
    /// The NAT block key: the subscriber's fixed address, else the client's.
    pub sub: IpAddr,
    pub server: (IpAddr, u16),
    /// What the server sees.
    pub nat: (IpAddr, u16),
    pub phase: Phase,
    pub created: Time,
    pub last: Time,
    /// The client's SYN, kept until the server answers.
    pub syn: Option<Incoming<C>>,
    pub srv: Connection<C>,
    pub mp: Option<MpConnection<C>>,
    pub paths: Vec<Path>,
    /// Withdrawn subflows: (client address, client port, NAT port).
    pub pt: Vec<((IpAddr, u16), u16)>,
    /// The server's token in a withdrawn connection (MP_JOINs name it).
    pub server_token: Option<u32>,
    /// Passthrough: FIN seen (up, down), RST seen.
    pub pt_fin: (bool, bool),
    pub pt_rst: bool,
    /// Splice queues: at most one chunk waiting per direction.
    up: Option<C>,
    down: Option<C>,
    pub bytes_up: u64,
    pub bytes_down: u64,
    peer_fin_mp: bool,
    peer_fin_srv: bool,
    srv_fin_sent: bool,
    mp_fin_sent: bool,
    pub fallback_counted: bool,
    pub bad_hmac_seen: u64,
    /// The server side's TCP loss recovery, as far as counted.
    srv_loss: LossSeen,
    /// When the sweep next has to look at this session.
    pub sched_at: Option<Time>,
    pub dirty: bool,
    pub announced: bool,
    /// Why the session ended, if not normally.
    pub aborted: bool,
    /// Counted as half-open: the client has not completed its handshake.
    pub half_open: bool,
}

impl<C: Chunk> Session<C> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: u64,
        sub: IpAddr,
        server: (IpAddr, u16),
        nat: (IpAddr, u16),
        now: Time,
        syn: Incoming<C>,
        srv: Connection<C>,
        path: Path,
    ) -> Self {
        Session {
            id,
            sub,
            server,
            nat,
            phase: Phase::Connecting,
            created: now,
            last: now,
            syn: Some(syn),
            srv,
            mp: None,
            paths: vec![path],
            pt: Vec::new(),
            server_token: None,
            pt_fin: (false, false),
            pt_rst: false,
            up: None,
            down: None,
            bytes_up: 0,
            bytes_down: 0,
            peer_fin_mp: false,
            peer_fin_srv: false,
            srv_fin_sent: false,
            mp_fin_sent: false,
            fallback_counted: false,
            bad_hmac_seen: 0,
            srv_loss: LossSeen::default(),
            sched_at: None,
            dirty: false,
            announced: false,
            aborted: false,
            half_open: true,
        }
    }

    /// Bytes held in the splice queues and the engines' buffers.
    pub fn buffered(&self) -> usize {
        let q = self.up.as_ref().map_or(0, Chunk::len) + self.down.as_ref().map_or(0, Chunk::len);
        let mp = self.mp.as_ref().map_or(0, |m| m.readable() + m.unacked());
        q + mp + self.srv.buffered() + self.srv.unacked()
    }

    pub fn next_timeout(&self) -> Option<Time> {
        let a = self.srv.next_timeout();
        let b = self.mp.as_ref().and_then(|m| m.next_timeout());
        match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn on_timeout(&mut self, now: Time) {
        if self.srv.next_timeout().is_some_and(|t| t <= now) {
            self.srv.on_timeout(now);
        }
        if let Some(m) = self.mp.as_mut() {
            if m.next_timeout().is_some_and(|t| t <= now) {
                m.on_timeout(now);
            }
        }
    }

    /// Resets both sides (idle timeout, table flush).
    pub fn abort(&mut self) {
        self.aborted = true;
        self.srv.abort();
        if let Some(m) = self.mp.as_mut() {
            m.abort();
        }
    }

    /// Events, splice, close propagation and transmission. Returns true
    /// when the server side failed before the session was converted
    /// (reset or timed out): the caller refuses the client.
    pub fn drive(
        &mut self,
        now: Time,
        withdraw_syn: bool,
        st: &ConvStats,
        out: &mut impl Emit<C>,
    ) -> Option<TcpEvent> {
        let mut failed = None;
        while let Some(e) = self.srv.poll_event() {
            match e {
                TcpEvent::PeerClosed => self.peer_fin_srv = true,
                TcpEvent::Reset | TcpEvent::TimedOut => {
                    if self.phase == Phase::Connecting && self.mp.is_none() {
                        failed = Some(e);
                    } else if let Some(m) = self.mp.as_mut() {
                        // RFC 8684 §3.5: the server's reset ends the
                        // whole connection: MP_FASTCLOSE toward the client
                        self.aborted = true;
                        m.abort();
                    }
                }
                _ => {}
            }
        }
        if let Some(m) = self.mp.as_mut() {
            while let Some(e) = m.poll_event() {
                match e {
                    MpEvent::PeerClosed => self.peer_fin_mp = true,
                    MpEvent::SubflowDown(i) => {
                        if let Some(p) = self.paths.get_mut(i) {
                            if p.live {
                                p.live = false;
                                st.subflows.0[p.side as usize]
                                    .set(st.subflows.get(p.side as usize).saturating_sub(1));
                            }
                        }
                    }
                    MpEvent::Closed if !m.data_closed() => {
                        // the client reset or fast-closed: reset the server
                        self.aborted = true;
                        self.srv.abort();
                    }
                    _ => {}
                }
            }
            if m.is_fallback() && !self.fallback_counted {
                self.fallback_counted = true;
                st.sessions_fallback.inc();
            }
            let bad = m.stats().joins_bad_hmac;
            if bad > self.bad_hmac_seen {
                if let Some(c) = st
                    .joins_refused
                    .0
                    .get(crate::stats::JoinRefuse::BadHmac as usize)
                {
                    c.add(bad - self.bad_hmac_seen);
                }
                self.bad_hmac_seen = bad;
            }
            // splice, client → server (flow control: read only what the
            // server side can take, so the data-level window closes)
            loop {
                if let Some(c) = self.up.take() {
                    let n = self.srv.send(c.clone());
                    self.bytes_up += n as u64;
                    if n < c.len() {
                        self.up = Some(c.slice(n, c.len()));
                        break;
                    }
                }
                if self.srv.send_capacity() == 0 {
                    break;
                }
                match m.recv() {
                    Some(c) => self.up = Some(c),
                    None => break,
                }
            }
            // server → client
            loop {
                if let Some(c) = self.down.take() {
                    let n = m.send(c.clone());
                    self.bytes_down += n as u64;
                    if n < c.len() {
                        self.down = Some(c.slice(n, c.len()));
                        break;
                    }
                }
                if m.send_capacity() == 0 {
                    break;
                }
                match self.srv.recv() {
                    Some(c) => self.down = Some(c),
                    None => break,
                }
            }
            // half-close both ways: DATA_FIN → FIN, FIN → DATA_FIN
            if self.peer_fin_mp && self.up.is_none() && m.readable() == 0 && !self.srv_fin_sent {
                self.srv_fin_sent = true;
                self.srv.close();
            }
            if self.peer_fin_srv
                && self.down.is_none()
                && self.srv.readable() == 0
                && !self.mp_fin_sent
            {
                self.mp_fin_sent = true;
                m.close();
            }
            let done = m.data_closed();
            if self.client_gone() && !done && self.srv.state() != State::Closed {
                // no subflow left and the data level did not finish: the
                // client is gone, reset the server side
                self.aborted = true;
                self.srv.abort();
            }
            let Some(m) = self.mp.as_mut() else {
                return failed;
            };
            // (read where the engine left it: no copy of the segment)
            loop {
                let next = m.poll_segment(now);
                let Some(seg) = next.as_ref() else { break };
                if let Some(p) = self.paths.get(m.tx_subflow()) {
                    out.emit(p.gw.0, p.client.0, p.side, seg);
                }
            }
        }
        // loss recovery by access role, for the NOC (retransmissions on the
        // cellular access against the fixed one)
        if let Some(m) = self.mp.as_ref() {
            for (s, p) in m.subflows().iter().zip(self.paths.iter_mut()) {
                p.loss.account(s.tcp.stats(), p.side, st);
            }
        }
        loop {
            let mut next = self.srv.poll_transmit(now);
            let Some(seg) = next.as_mut() else { break };
            if withdraw_syn && seg.hdr.syn() {
                // offer MPTCP to the server with the client's own key, so
                // that a capable server's answer suits the client
                if let Some(s) = &self.syn {
                    seg.hdr.opts.mptcp = s.hdr.opts.mptcp;
                }
            }
            out.emit(self.nat.0, self.server.0, Side::Internet, seg);
        }
        self.srv_loss.account(self.srv.stats(), Side::Internet, st);
        failed
    }

    /// Both sides are closed (TIME_WAITs included).
    pub fn finished(&self) -> bool {
        self.srv.state() == State::Closed && (self.mp.is_none() || self.client_gone())
    }

    /// Every subflow of a converted session is closed (reset, timed out
    /// or done): nothing can carry the client's data any more.
    pub fn client_gone(&self) -> bool {
        self.mp
            .as_ref()
            .is_some_and(|m| m.subflows().iter().all(|s| s.tcp.state() == State::Closed))
    }

    /// The engines' state in one line.
    pub fn engine_info(&self) -> String {
        format!(
            "server {:?} unacked {} buffered {} | client {}",
            self.srv.state(),
            self.srv.unacked(),
            self.srv.buffered(),
            self.mp.as_ref().map_or_else(
                || "-".to_string(),
                |m| format!("{} {:?}", m.describe(), m.stats())
            )
        )
    }

    pub fn subflow_info(&self, now: Time) -> Vec<SubflowInfo> {
        match (&self.mp, self.phase) {
            (_, Phase::Passthrough) => self
                .pt
                .iter()
                .map(|(c, _)| SubflowInfo::idle(*c, self.server, Side::Internet, "withdrawn"))
                .collect(),
            (Some(m), _) => m
                .subflows()
                .iter()
                .zip(&self.paths)
                .map(|(s, p)| SubflowInfo {
                    client: format!("{}", std::net::SocketAddr::from(p.client)),
                    gateway: format!("{}", std::net::SocketAddr::from(p.gw)),
                    role: p.side.as_str(),
                    rtt_us: s.tcp.srtt().map(|t| t / 1000),
                    bytes_out: s.tcp.stats().bytes_acked,
                    bytes_in: s.tcp.stats().bytes_received,
                    state: format!("{:?}", s.tcp.state()),
                    unacked: s.tcp.unacked(),
                    stalled: s.stalled(),
                    rto_in_row: s.tcp.rto_in_row(),
                    retransmits: s.tcp.stats().retransmits,
                    rtos: s.tcp.stats().rtos,
                    fast_recoveries: s.tcp.stats().fast_recoveries,
                    loss_probes: s.tcp.stats().loss_probes,
                    cwnd: s.tcp.cwnd(),
                    peer_window: s.tcp.peer_window(),
                    timer_in_ms: s
                        .tcp
                        .next_timeout()
                        .map(|t| t.saturating_sub(now) / 1_000_000),
                })
                .collect(),
            (None, _) => self
                .paths
                .iter()
                .map(|p| SubflowInfo::idle(p.client, p.gw, p.side, "SynReceived"))
                .collect(),
        }
    }
}
