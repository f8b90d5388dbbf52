//! The MPTCP simulator harness: a client with a fixed and a cellular path
//! to a server, exchanging real wire bytes.
#![allow(dead_code)]

use nf_core::chunk::{Bytes, Chunk};
use nf_core::sim::{LinkConfig, LinkId, Node, Sim, SimPacket, Time, MS};
use nf_mptcp::conn::{Config, Event, MpConnection, Secrets};
use nf_mptcp::scheduler::{PathRole, Scheduler};
use nf_tcp::{Incoming, Seq};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

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

pub fn pattern(salt: u8, i: u64) -> u8 {
    (i.wrapping_mul(2654435761) >> 13) as u8 ^ salt ^ (i >> 20) as u8
}

pub const SRV: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 2));
pub const CLI: [IpAddr; 2] = [
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)),
    IpAddr::V4(Ipv4Addr::new(100, 64, 0, 2)),
];

pub struct App {
    pub salt: u8,
    pub peer_salt: u8,
    pub to_send: u64,
    pub sent: u64,
    pub received: u64,
    pub corrupt: u64,
    pub peer_closed: bool,
    pub closed_called: bool,
    /// (time of the last in-order delivery, longest gap between two)
    pub last_rx: Time,
    pub max_gap: (Time, Time),
    /// Application-limited sending at this rate (bits/s) from `start`.
    pub pace_bps: Option<u64>,
    pub start: Option<Time>,
    pub now: Time,
}

impl App {
    /// The next time a paced sender has more to send.
    pub fn next_pace(&self) -> Option<Time> {
        match (self.pace_bps, self.start) {
            (Some(_), Some(start)) if self.sent < self.to_send => {
                Some(start + ((self.now - start) / (10 * MS) + 1) * 10 * MS)
            }
            _ => None,
        }
    }
    pub fn pump(&mut self, now: Time, c: &mut MpConnection<Bytes>) {
        while let Some(e) = c.poll_event() {
            if e == Event::PeerClosed {
                self.peer_closed = true;
            }
        }
        while let Some(d) = c.recv() {
            if self.received > 0 && now - self.last_rx > self.max_gap.1 {
                self.max_gap = (self.last_rx, now - self.last_rx);
            }
            self.last_rx = now;
            for &b in d.as_slice() {
                if b != pattern(self.peer_salt, self.received) {
                    self.corrupt += 1;
                }
                self.received += 1;
            }
        }
        self.now = now;
        if c.is_established() {
            let start = *self.start.get_or_insert(now);
            let allowed = match self.pace_bps {
                // writes of 10 ms worth of data, as an application would
                Some(bps) => ((now - start) / (10 * MS) + 1) * (bps / 800),
                None => u64::MAX,
            };
            let limit = self.to_send.min(allowed);
            while self.sent < limit {
                let n = (limit - self.sent)
                    .min(64 * 1024)
                    .min(c.send_capacity() as u64);
                if n == 0 {
                    break;
                }
                let v: Vec<u8> = (0..n).map(|i| pattern(self.salt, self.sent + i)).collect();
                self.sent += c.send(Bytes::new(v)) as u64;
            }
            if self.sent == self.to_send && !self.closed_called {
                self.closed_called = true;
                c.close();
            }
        }
    }
}

pub struct Client {
    pub conn: MpConnection<Bytes>,
    pub out: [LinkId; 2],
    pub app: App,
    pub joined: bool,
    /// The largest segment sent: (payload bytes, bytes on the wire).
    pub largest: (usize, usize),
}

impl Node<Pkt> for Client {
    fn receive(&mut self, now: Time, _l: LinkId, p: Pkt) {
        let seg: Incoming<Bytes> =
            nf_tcp::wirefmt::parse(&p.bytes, Some((p.src, p.dst)), |s: &[u8]| Bytes::from(s))
                .expect("wire");
        let i = usize::from(seg.hdr.dst_port - 40000);
        self.conn.handle_segment(now, i, seg);
        if self.conn.can_join() && !self.joined {
            self.joined = true;
            self.conn
                .join(40001, 80, Seq(777_000), PathRole::Cellular, false, 1);
        }
        self.app.pump(now, &mut self.conn);
    }
    fn transmit(&mut self, now: Time, out: &mut dyn FnMut(LinkId, Pkt)) {
        self.app.pump(now, &mut self.conn);
        while let Some((i, s)) = self.conn.poll_transmit(now) {
            let p = Pkt {
                bytes: nf_tcp::wirefmt::emit(&s, CLI[i], SRV),
                src: CLI[i],
                dst: SRV,
            };
            if s.payload.len() > self.largest.0 {
                self.largest = (s.payload.len(), p.wire_len());
            }
            out(self.out[i], p);
        }
    }
    fn next_timeout(&self) -> Option<Time> {
        [self.conn.next_timeout(), self.app.next_pace()]
            .into_iter()
            .flatten()
            .min()
    }
    fn on_timeout(&mut self, now: Time) {
        self.conn.on_timeout(now);
        self.app.pump(now, &mut self.conn);
    }
}

pub struct Server {
    pub conn: Option<MpConnection<Bytes>>,
    /// client port → (subflow index, return link, client address)
    pub flows: HashMap<u16, (usize, LinkId, IpAddr)>,
    pub back: HashMap<LinkId, LinkId>,
    pub app: App,
    pub sched: fn() -> Box<dyn Scheduler>,
    pub cfg: Config,
}

impl Node<Pkt> for Server {
    fn receive(&mut self, now: Time, l: LinkId, p: Pkt) {
        let seg: Incoming<Bytes> =
            nf_tcp::wirefmt::parse(&p.bytes, Some((p.src, p.dst)), |s: &[u8]| Bytes::from(s))
                .expect("wire");
        let port = seg.hdr.src_port;
        let role = if p.src == CLI[0] {
            PathRole::Fixed
        } else {
            PathRole::Cellular
        };
        if let Some(&(i, _, _)) = self.flows.get(&port) {
            if let Some(c) = self.conn.as_mut() {
                c.handle_segment(now, i, seg);
            }
        } else if seg.hdr.syn() && !seg.hdr.ack_flag() {
            let back = self.back[&l];
            match self.conn.as_mut() {
                None => {
                    if let Some(c) = MpConnection::server(
                        self.cfg,
                        Secrets {
                            key: 0x5e5e_5e5e_1234_5678,
                            seed: 9,
                        },
                        &seg,
                        Seq(9_000_000),
                        role,
                        (self.sched)(),
                    ) {
                        self.conn = Some(c);
                        self.flows.insert(port, (0, back, p.src));
                    }
                }
                Some(c) => {
                    if let Some(i) = c.accept_join(&seg, Seq(8_000_000), role) {
                        self.flows.insert(port, (i, back, p.src));
                    }
                }
            }
        }
        if let Some(c) = self.conn.as_mut() {
            self.app.pump(now, c);
        }
    }
    fn transmit(&mut self, now: Time, out: &mut dyn FnMut(LinkId, Pkt)) {
        let Some(c) = self.conn.as_mut() else { return };
        self.app.pump(now, c);
        while let Some((i, s)) = c.poll_transmit(now) {
            if let Some((_, link, dst)) = self.flows.values().find(|f| f.0 == i).copied() {
                out(
                    link,
                    Pkt {
                        bytes: nf_tcp::wirefmt::emit(&s, SRV, dst),
                        src: SRV,
                        dst,
                    },
                );
            }
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

pub struct Setup {
    pub sim: Sim<Pkt>,
    pub client: Client,
    pub server: Server,
    pub up: [LinkId; 2],
    pub down: [LinkId; 2],
}

pub fn setup(seed: u64, bytes: u64, sched: fn() -> Box<dyn Scheduler>) -> Setup {
    setup_with(seed, bytes, sched, Config::default())
}

/// `setup` with one engine configuration for both ends.
pub fn setup_with(seed: u64, bytes: u64, sched: fn() -> Box<dyn Scheduler>, cfg: Config) -> Setup {
    let mut sim = Sim::new(seed);
    let link = |to, delay, rate| {
        let mut l = LinkConfig::new(to, delay, rate);
        l.queue_bytes = 256 * 1024;
        l
    };
    // node 0 = client, node 1 = server
    let up0 = sim.add_link(link(1, 10 * MS, 50_000_000));
    let down0 = sim.add_link(link(0, 10 * MS, 50_000_000));
    let up1 = sim.add_link(link(1, 40 * MS, 20_000_000));
    let down1 = sim.add_link(link(0, 40 * MS, 20_000_000));
    let app = |salt, peer_salt| App {
        salt,
        peer_salt,
        to_send: bytes,
        sent: 0,
        received: 0,
        corrupt: 0,
        peer_closed: false,
        closed_called: false,
        last_rx: 0,
        max_gap: (0, 0),
        pace_bps: None,
        start: None,
        now: 0,
    };
    let conn = MpConnection::client(
        cfg,
        Secrets {
            key: 0x0c11_e47c_0ffe_e000,
            seed: 3,
        },
        40000,
        80,
        Seq(1_000_000),
        PathRole::Fixed,
        sched(),
    );
    Setup {
        sim,
        client: Client {
            conn,
            out: [up0, up1],
            app: app(0x11, 0x22),
            joined: false,
            largest: (0, 0),
        },
        server: Server {
            conn: None,
            flows: HashMap::new(),
            back: HashMap::from([(up0, down0), (up1, down1)]),
            app: app(0x22, 0x11),
            sched,
            cfg,
        },
        up: [up0, up1],
        down: [down0, down1],
    }
}

impl Setup {
    pub fn run(&mut self, deadline: Time) {
        let Setup {
            sim,
            client,
            server,
            ..
        } = self;
        sim.run(
            &mut [client as &mut dyn Node<Pkt>, server],
            deadline,
            |_, n| {
                let _ = n;
                false
            },
        );
    }
    pub fn done(&self, bytes: u64) -> bool {
        self.client.app.received == bytes
            && self.server.app.received == bytes
            && self.client.app.corrupt == 0
            && self.server.app.corrupt == 0
    }
    pub fn describe(&self) -> String {
        let c = &self.client.conn;
        let mut s = format!(
            "client sent {} recv {} corrupt {}; server sent {} recv {} corrupt {}\nclient {:?}\n",
            self.client.app.sent,
            self.client.app.received,
            self.client.app.corrupt,
            self.server.app.sent,
            self.server.app.received,
            self.server.app.corrupt,
            c.stats()
        );
        s.push_str(&format!("client: {}\n", c.describe()));
        if let Some(sc) = &self.server.conn {
            s.push_str(&format!("server: {}\n", sc.describe()));
        }
        for (i, sf) in c.subflows().iter().enumerate() {
            s.push_str(&format!(
                "  client subflow {i}: {:?} usable {} acked {} maps {:?} unacked {} readable {}\n",
                sf.tcp.state(),
                sf.usable(),
                sf.bytes_sent(),
                sf.map_counts(),
                sf.tcp.unacked(),
                sf.tcp.readable()
            ));
        }
        if let Some(sc) = &self.server.conn {
            s.push_str(&format!("server {:?}\n", sc.stats()));
            for (i, sf) in sc.subflows().iter().enumerate() {
                s.push_str(&format!("  server subflow {i}: {:?} usable {} acked {} maps {:?} unacked {} readable {}\n", sf.tcp.state(), sf.usable(), sf.bytes_sent(), sf.map_counts(), sf.tcp.unacked(), sf.tcp.readable()));
            }
        }
        s
    }
}
