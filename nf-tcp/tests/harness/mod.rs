//! Shared test harness: TCP endpoints as simulator nodes, exchanging real
//! wire bytes (nf-core's codec) over simulated links.
#![allow(dead_code)]

use nf_core::chunk::{Bytes, Chunk};
use nf_core::sim::{LinkConfig, LinkId, Node, Sim, SimPacket, Time, MS, SEC};
use nf_tcp::{
    Config, Connection, Event, FourTuple, Incoming, Listener, Segment, Seq, State, SynAction,
};
use std::net::{IpAddr, Ipv4Addr};

pub const A_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
pub const B_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 2));

#[derive(Clone)]
pub struct Pkt {
    pub bytes: Vec<u8>,
    pub src: IpAddr,
    pub dst: IpAddr,
}

impl SimPacket for Pkt {
    fn wire_len(&self) -> usize {
        self.bytes.len() + 20
    }
}

/// The byte at `i` of the deterministic test stream `salt`.
pub fn pattern(salt: u8, i: u64) -> u8 {
    (i.wrapping_mul(2654435761) >> 13) as u8 ^ salt ^ (i >> 20) as u8
}

pub fn seg_to_pkt(seg: &Segment<Bytes>, src: IpAddr, dst: IpAddr) -> Pkt {
    Pkt {
        bytes: nf_tcp::wirefmt::emit(seg, src, dst),
        src,
        dst,
    }
}

pub fn pkt_to_seg(p: &Pkt) -> Incoming<Bytes> {
    nf_tcp::wirefmt::parse(&p.bytes, Some((p.src, p.dst)), |s: &[u8]| Bytes::from(s))
        .expect("valid wire segment")
}

/// One endpoint: sends `to_send` bytes of its pattern, checks what it
/// receives against the peer's pattern, closes when done.
pub struct Host {
    pub ip: IpAddr,
    pub peer_ip: IpAddr,
    pub out: LinkId,
    pub conn: Option<Connection<Bytes>>,
    pub listener: Option<Listener>,
    pub cfg: Config,
    pub salt: u8,
    pub peer_salt: u8,
    pub to_send: u64,
    pub sent: u64,
    pub received: u64,
    pub corrupt: u64,
    pub peer_closed: bool,
    pub events: Vec<Event>,
    pub chunk: usize,
    pub close_when_sent: bool,
    pub closed_called: bool,
    /// Optional hook run on every outgoing segment (MPTCP-style options).
    pub tx_hook: Option<fn(&mut Segment<Bytes>)>,
    pub rx_seen: Vec<Incoming<Bytes>>,
    pub keep_rx: bool,
    pub connected_at: Option<Time>,
    pub done_at: Option<Time>,
    pub read_paused: bool,
}

impl Host {
    pub fn new(
        ip: IpAddr,
        peer_ip: IpAddr,
        out: LinkId,
        cfg: Config,
        salt: u8,
        peer_salt: u8,
        to_send: u64,
    ) -> Self {
        Host {
            ip,
            peer_ip,
            out,
            conn: None,
            listener: None,
            cfg,
            salt,
            peer_salt,
            to_send,
            sent: 0,
            received: 0,
            corrupt: 0,
            peer_closed: false,
            events: vec![],
            chunk: 64 * 1024,
            close_when_sent: true,
            closed_called: false,
            tx_hook: None,
            rx_seen: vec![],
            keep_rx: false,
            connected_at: None,
            done_at: None,
            read_paused: false,
        }
    }

    pub fn client(mut self, iss: u32) -> Self {
        self.conn = Some(Connection::connect(self.cfg, 40000, 80, Seq(iss)));
        self
    }

    pub fn server(mut self, max_half_open: usize) -> Self {
        self.listener = Some(Listener::new(self.cfg, max_half_open, [7; 32]));
        self
    }

    pub fn state(&self) -> Option<State> {
        self.conn.as_ref().map(|c| c.state())
    }

    fn pump_app(&mut self, now: Time) {
        let Some(c) = self.conn.as_mut() else { return };
        while let Some(e) = c.poll_event() {
            if e == Event::Connected && self.connected_at.is_none() {
                self.connected_at = Some(now);
            }
            if e == Event::PeerClosed {
                self.peer_closed = true;
            }
            self.events.push(e);
        }
        if !self.read_paused {
            while let Some(d) = c.recv() {
                for &b in d.as_slice() {
                    if b != pattern(self.peer_salt, self.received) {
                        self.corrupt += 1;
                    }
                    self.received += 1;
                }
            }
        }
        if matches!(c.state(), State::Established | State::CloseWait) {
            while self.sent < self.to_send {
                let n = (self.to_send - self.sent)
                    .min(self.chunk as u64)
                    .min(c.send_capacity() as u64) as usize;
                if n == 0 {
                    break;
                }
                let v: Vec<u8> = (0..n as u64)
                    .map(|i| pattern(self.salt, self.sent + i))
                    .collect();
                let took = c.send(Bytes::new(v));
                self.sent += took as u64;
                if took < n {
                    break;
                }
            }
            if self.sent == self.to_send
                && self.close_when_sent
                && !self.closed_called
                && c.unacked() == 0
            {
                self.closed_called = true;
                c.close();
            }
        }
        if self.done_at.is_none() && self.sent == self.to_send && self.peer_closed {
            self.done_at = Some(now);
        }
    }
}

impl Node<Pkt> for Host {
    fn receive(&mut self, now: Time, _link: LinkId, p: Pkt) {
        let seg = pkt_to_seg(&p);
        if self.keep_rx {
            self.rx_seen.push(seg.clone());
        }
        match (&mut self.conn, &mut self.listener) {
            (Some(c), _) if c.state() != State::Closed => c.handle_segment(now, seg),
            (_, Some(l)) => {
                let t = FourTuple {
                    local: self.ip,
                    lport: seg.hdr.dst_port,
                    remote: self.peer_ip,
                    rport: seg.hdr.src_port,
                };
                if seg.hdr.syn() && !seg.hdr.ack_flag() {
                    match l.on_syn(now, &t, &seg, 0) {
                        SynAction::Accept(c) => self.conn = Some(*c),
                        SynAction::Cookie(_) | SynAction::Drop => {}
                    }
                }
            }
            _ => {}
        }
        self.pump_app(now);
    }
    fn transmit(&mut self, now: Time, out: &mut dyn FnMut(LinkId, Pkt)) {
        self.pump_app(now);
        let Some(c) = self.conn.as_mut() else { return };
        while let Some(mut s) = c.poll_transmit(now) {
            if let Some(h) = self.tx_hook {
                h(&mut s);
            }
            out(self.out, seg_to_pkt(&s, self.ip, self.peer_ip));
        }
    }
    fn next_timeout(&self) -> Option<Time> {
        self.conn.as_ref().and_then(|c| c.next_timeout())
    }
    fn on_timeout(&mut self, now: Time) {
        if let Some(c) = self.conn.as_mut() {
            c.on_timeout(now);
        }
    }
}

/// Two hosts joined by a link each way.
pub struct Pair {
    pub sim: Sim<Pkt>,
    pub a: Host,
    pub b: Host,
    pub ab: LinkId,
    pub ba: LinkId,
}

pub fn pair(
    seed: u64,
    link: impl Fn(usize) -> LinkConfig,
    cfg: Config,
    a_bytes: u64,
    b_bytes: u64,
) -> Pair {
    let mut sim = Sim::new(seed);
    let ab = sim.add_link(link(1));
    let ba = sim.add_link(link(0));
    let a = Host::new(A_IP, B_IP, ab, cfg, 0x11, 0x22, a_bytes).client(0xfff0_0000);
    let b = Host::new(B_IP, A_IP, ba, cfg, 0x22, 0x11, b_bytes).server(1024);
    Pair { sim, a, b, ab, ba }
}

impl Pair {
    /// Both ends' state and counters, for failure messages.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        for (n, h) in [("a", &self.a), ("b", &self.b)] {
            out.push_str(&format!(
                "{n}: sent {} received {} corrupt {} events {}\n",
                h.sent,
                h.received,
                h.corrupt,
                h.events.len()
            ));
            if let Some(c) = &h.conn {
                out.push_str(&format!(
                    "   {:?} unacked {} readable {} cwnd {} next_timeout {:?} now {}\n   {:?}\n",
                    c.state(),
                    c.unacked(),
                    c.readable(),
                    c.cwnd(),
                    c.next_timeout(),
                    self.sim.now,
                    c.stats()
                ));
            }
        }
        out
    }

    /// Runs until both sides have sent and received everything and seen
    /// the peer's FIN; returns true on success.
    pub fn run_transfer(&mut self, deadline: Time) -> bool {
        let (ta, tb) = (self.a.to_send, self.b.to_send);
        let Pair { sim, a, b, .. } = self;
        sim.run(&mut [a as &mut dyn Node<Pkt>, b], deadline, |_, _| false);
        self.a.received == tb
            && self.b.received == ta
            && self.a.corrupt == 0
            && self.b.corrupt == 0
            && self.a.peer_closed
            && self.b.peer_closed
    }
}

pub fn link(delay: Time, rate_bps: u64) -> impl Fn(usize) -> LinkConfig {
    move |to| {
        let mut l = LinkConfig::new(to, delay, rate_bps);
        l.queue_bytes = 512 * 1024;
        l
    }
}

pub const SECS: Time = SEC;
pub const MSEC: Time = MS;
