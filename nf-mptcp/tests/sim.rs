//! MPTCP in the simulator: two paths (fixed 50 Mbit/s / 10 ms, cellular
//! 20 Mbit/s / 40 ms), MP_CAPABLE on the fixed path, MP_JOIN on the
//! cellular one, 20 MB each way with integrity; a path failing mid-transfer.

use nf_core::chunk::{Bytes, Chunk};
use nf_core::sim::{LinkConfig, LinkId, Node, Sim, SimPacket, Time, MS, SEC};
use nf_mptcp::conn::{Config, Event, MpConnection, Secrets};
use nf_mptcp::scheduler::{FixedFirst, MinRtt, PathRole, Scheduler};
use nf_tcp::{Incoming, Seq};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

#[derive(Clone)]
struct Pkt {
    bytes: Vec<u8>,
    src: IpAddr,
    dst: IpAddr,
}
impl SimPacket for Pkt {
    fn wire_len(&self) -> usize {
        self.bytes.len() + 20
    }
}

fn pattern(salt: u8, i: u64) -> u8 {
    (i.wrapping_mul(2654435761) >> 13) as u8 ^ salt ^ (i >> 20) as u8
}

const SRV: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 2));
const CLI: [IpAddr; 2] = [
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)),
    IpAddr::V4(Ipv4Addr::new(100, 64, 0, 2)),
];

struct App {
    salt: u8,
    peer_salt: u8,
    to_send: u64,
    sent: u64,
    received: u64,
    corrupt: u64,
    peer_closed: bool,
    closed_called: bool,
    /// (time of the last in-order delivery, longest gap between two)
    last_rx: Time,
    max_gap: (Time, Time),
}

impl App {
    fn pump(&mut self, now: Time, c: &mut MpConnection<Bytes>) {
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
        if c.is_established() {
            while self.sent < self.to_send {
                let n = (self.to_send - self.sent)
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

struct Client {
    conn: MpConnection<Bytes>,
    out: [LinkId; 2],
    app: App,
    joined: bool,
}

impl Node<Pkt> for Client {
    fn receive(&mut self, now: Time, _l: LinkId, p: Pkt) {
        let seg: Incoming<Bytes> =
            nf_tcp::wirefmt::parse(&p.bytes, Some((p.src, p.dst)), |s: &[u8]| Bytes::from(s))
                .expect("wire");
        let i = usize::from(seg.hdr.dst_port - 40000);
        self.conn.handle_segment(now, i, seg);
        if self.conn.is_established() && !self.joined {
            self.joined = true;
            self.conn
                .join(40001, 80, Seq(777_000), PathRole::Cellular, false, 1);
        }
        self.app.pump(now, &mut self.conn);
    }
    fn transmit(&mut self, now: Time, out: &mut dyn FnMut(LinkId, Pkt)) {
        self.app.pump(now, &mut self.conn);
        while let Some((i, s)) = self.conn.poll_transmit(now) {
            out(
                self.out[i],
                Pkt {
                    bytes: nf_tcp::wirefmt::emit(&s, CLI[i], SRV),
                    src: CLI[i],
                    dst: SRV,
                },
            );
        }
    }
    fn next_timeout(&self) -> Option<Time> {
        self.conn.next_timeout()
    }
    fn on_timeout(&mut self, now: Time) {
        self.conn.on_timeout(now);
    }
}

struct Server {
    conn: Option<MpConnection<Bytes>>,
    /// client port → (subflow index, return link, client address)
    flows: HashMap<u16, (usize, LinkId, IpAddr)>,
    back: HashMap<LinkId, LinkId>,
    app: App,
    sched: fn() -> Box<dyn Scheduler>,
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
                        Config::default(),
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

struct Setup {
    sim: Sim<Pkt>,
    client: Client,
    server: Server,
    up: [LinkId; 2],
    down: [LinkId; 2],
}

fn setup(seed: u64, bytes: u64, sched: fn() -> Box<dyn Scheduler>) -> Setup {
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
    };
    let conn = MpConnection::client(
        Config::default(),
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
        },
        server: Server {
            conn: None,
            flows: HashMap::new(),
            back: HashMap::from([(up0, down0), (up1, down1)]),
            app: app(0x22, 0x11),
            sched,
        },
        up: [up0, up1],
        down: [down0, down1],
    }
}

impl Setup {
    fn run(&mut self, deadline: Time) {
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
    fn done(&self, bytes: u64) -> bool {
        self.client.app.received == bytes
            && self.server.app.received == bytes
            && self.client.app.corrupt == 0
            && self.server.app.corrupt == 0
    }
    fn describe(&self) -> String {
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

const MB20: u64 = 20 << 20;

#[test]
fn twenty_mb_each_way_over_two_paths_min_rtt() {
    let mut s = setup(1, MB20, || Box::new(MinRtt));
    s.run(120 * SEC);
    assert!(s.done(MB20), "{}", s.describe());
    let c = &s.client.conn;
    assert_eq!(c.subflows().len(), 2, "the cellular subflow joined");
    assert!(
        c.subflows().iter().all(|sf| sf.bytes_sent() > 1_000_000),
        "both subflows carried data\n{}",
        s.describe()
    );
    assert_eq!(
        c.stats().joins_bad_hmac + s.server.conn.as_ref().unwrap().stats().joins_bad_hmac,
        0
    );
    assert!(s.server.conn.as_ref().unwrap().stats().joins_accepted == 1);
    assert_eq!(c.stats().unmapped_bytes, 0);
    assert!(
        c.is_closed() || c.subflows().iter().all(|sf| !sf.usable()),
        "{}",
        s.describe()
    );
}

#[test]
fn fixed_path_failure_mid_transfer_completes_on_cellular() {
    let mut s = setup(2, MB20, || Box::new(FixedFirst));
    let (u, d) = (s.up[0], s.down[0]);
    s.sim.link(u).down = vec![(2 * SEC, 1000 * SEC)];
    s.sim.link(d).down = vec![(2 * SEC, 1000 * SEC)];
    s.run(600 * SEC);
    assert!(s.done(MB20), "{}", s.describe());
    let c = &s.client.conn;
    assert!(c.subflows()[1].bytes_sent() > 1_000_000, "{}", s.describe());
    // the longest pause in delivery, each way: detection (two RTOs) plus
    // the reinjection's trip over the cellular path
    for (who, app) in [("client", &s.client.app), ("server", &s.server.app)] {
        let (at, gap) = app.max_gap;
        println!(
            "{who}: longest delivery gap {:.3} s starting at {:.3} s",
            gap as f64 / 1e9,
            at as f64 / 1e9
        );
        assert!(gap <= 2 * SEC, "{who} stalled {gap} ns");
    }
}
