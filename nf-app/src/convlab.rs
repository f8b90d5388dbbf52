//! A virtual-time lab for the conversion point: MPTCP clients (nf-mptcp
//! engines with a fixed and a cellular address) and TCP servers (nf-tcp
//! engines, or an MPTCP server for the withdraw case) exchanging real
//! Ethernet frames with a [`Pipeline`] on `VecBuf`, the LAB.md addresses.
//! Used by the conversion unit tests and `hagw bench convert`. The
//! pipeline's own time is measured apart from the generators' time.

use crate::convert::{keys::KeyGen, policy::Policy, Converter};
use crate::pipeline::Pipeline;
use crate::stats::WorkerStats;
use crate::testkit::{mac, Pool, CLI_MAC, LAB3, SRV_MAC};
use nf_core::chunk::{Bytes, Chunk};
use nf_core::sim::{Rng, Time};
use nf_core::wire::{arp, ethernet, EtherType, EthernetAddress};
use nf_core::{PacketBuf, VecBuf};
use nf_mptcp::conn::{Config as MpConfig, Event as MpEvent, MpConnection, Secrets};
use nf_mptcp::scheduler::{MinRtt, PathRole};
use nf_tcp::{Connection, Event as TcpEvent, Header, Seq, State};
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const FIXED: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
pub const CELL: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 2);
pub const SERVER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);

/// Implicit conversion with the server seeing the fixed address of the
/// lab's one subscriber ([`FIXED`], cellular [`CELL`]): the `extra`
/// config of [`ConvLab::new`] most tests start from.
pub const CONVERSION: &str = r#"
[conversion]
enabled = true
[nat]
source = "subscriber-fixed"
[[subscriber]]
fixed = "192.0.2.2"
cellular = ["100.64.0.2"]
"#;

/// What a client does once connected.
#[derive(Clone, Copy, Debug)]
pub struct Workload {
    /// Bytes the client sends (then DATA_FIN).
    pub up: u64,
    /// Keep the connection open (and silent) once the echo is back.
    pub hold: bool,
    /// Never read what arrives (a receiver whose window stays shut).
    pub deaf: bool,
    /// Join a second subflow from the cellular address.
    pub join: bool,
    /// DATA_FIN as soon as everything is sent, before the echo is back
    /// (a client that shuts down its sending side, `shutdown(SHUT_WR)`).
    pub shut: bool,
}

impl Workload {
    pub fn echo(up: u64, join: bool) -> Workload {
        Workload {
            up,
            join,
            hold: false,
            deaf: false,
            shut: false,
        }
    }
    /// Sends `up` bytes and half-closes at once, then reads the echo to
    /// its end: the server's data and FIN arrive together.
    pub fn echo_shut(up: u64, join: bool) -> Workload {
        Workload {
            shut: true,
            ..Workload::echo(up, join)
        }
    }
    /// Sends `up` bytes, reads the echo, then holds the connection open.
    pub fn held(up: u64, join: bool) -> Workload {
        Workload {
            hold: true,
            ..Workload::echo(up, join)
        }
    }
}

/// One MPTCP client.
pub struct LabClient {
    pub mp: MpConnection<Bytes>,
    /// Per subflow: (local address, local port, pipeline port).
    paths: Vec<(Ipv4Addr, u16, u16)>,
    pub server_port: u16,
    work: Workload,
    pub sent: u64,
    pub received: u64,
    /// The echo differed from what was sent.
    pub corrupt: bool,
    joined: bool,
    closing: bool,
    /// The SYN was answered with a RST.
    pub refused: bool,
    pub closed: bool,
}

impl LabClient {
    /// Moves the first subflow (before it sent anything) to `addr` on
    /// pipeline `port` (1: the cellular access).
    pub fn move_first_path(&mut self, addr: Ipv4Addr, port: u16) {
        if let Some(p) = self.paths.first_mut() {
            p.0 = addr;
            p.2 = port;
        }
    }

    /// Each subflow's local address and port.
    pub fn endpoints(&self) -> Vec<(Ipv4Addr, u16)> {
        self.paths.iter().map(|&(a, p, _)| (a, p)).collect()
    }

    /// Done: everything echoed and the connection closed (or refused).
    pub fn finished(&self) -> bool {
        self.refused || (self.closed && self.received == self.work.up)
    }
}

enum SrvConn {
    Tcp(Box<Connection<Bytes>>),
    Mp(Box<MpConnection<Bytes>>),
}

/// The server side on 198.51.100.2: echo on every port, RST on closed
/// ports, an MPTCP echo on `mptcp_ports`.
pub struct LabServer {
    conns: Vec<(SrvConn, VecDeque<Bytes>, bool, IpAddr)>,
    /// (peer, peer port, our port) → (connection, subflow)
    flows: HashMap<(IpAddr, u16, u16), (usize, usize)>,
    pub closed_ports: Vec<u16>,
    /// Ports answered with ICMP port unreachable (a filtering host).
    pub unreachable_ports: Vec<u16>,
    pub mptcp_ports: Vec<u16>,
    /// Ports whose (TCP) server answers once the request is complete: it
    /// reads to the peer's FIN, then sends the echo and its own FIN in one
    /// go, as a request-response server does.
    pub reply_at_end_ports: Vec<u16>,
    /// Every source address a SYN came from.
    pub sources: Vec<IpAddr>,
    pub mptcp_syns: u64,
    rng: Rng,
}

/// The lab.
pub struct ConvLab {
    /// Worker 0's pipeline.
    pub pipe: Pipeline<VecBuf, Pool>,
    /// The other workers' (`ConvLab::with_workers`): frames reach a
    /// worker by a hash of their 4-tuple, as RSS spreads them over queues,
    /// and packets handed over go to their owner (DESIGN.md §4).
    pub extra: Vec<Pipeline<VecBuf, Pool>>,
    pub now: Time,
    pub clients: Vec<LabClient>,
    pub server: LabServer,
    rng: Rng,
    /// Wall time spent inside the pipeline (hagw's share of the work).
    pub pipeline_time: Duration,
    /// Frames the pipeline received.
    pub frames_in: u64,
    /// Frames the pipeline sent.
    pub frames_out: u64,
    /// Of those, the frames whose TCP checksum hagw left to the "NIC"
    /// (the wire, [`VecBuf::frame`], completed it).
    pub frames_nic_summed: u64,
    /// Loss on the accesses: every Nth frame toward the clients is
    /// dropped (0: none).
    pub drop_to_clients: u64,
    to_clients: u64,
    /// A narrower link on the accesses (0: none): an IP packet toward a
    /// client longer than this is dropped by the access's router, which
    /// answers it with "fragmentation needed" (RFC 792, RFC 1191 §4)
    /// quoting its IP header and first 8 bytes, from 192.0.2.254 (fixed)
    /// or 100.64.0.254 (cellular), as a tunnel or a bearer narrower than
    /// the access port does.
    pub access_mtu: usize,
    /// The same on the internet side (0: none): an IP packet toward the
    /// server longer than this is dropped by a router there, which answers
    /// from 198.51.100.254.
    pub internet_mtu: usize,
    /// Those answers, from either side.
    pub frag_needed_sent: u64,
    /// The ICMPv4 packets hagw sent (the port, the IP packet), the first
    /// 256.
    pub icmp_seen: Vec<(usize, Vec<u8>)>,
    /// ICMP errors the pipeline sent toward the client.
    pub icmp_to_clients: u64,
    /// When a step moves no packet, jump to the next timer of anyone
    /// (clients, servers, hagw) instead of stepping through idle time: a
    /// benchmark then times hagw on packets and due timers, not on polling
    /// an idle lab. Tests keep the fixed step.
    pub skip_idle: bool,
    /// With several workers: every `stray`-th frame goes to the next
    /// worker instead of its hashed one (a NIC queue or an af_packet fanout
    /// ring rolling over); 0 = never.
    pub stray: u64,
    /// What the lab's "NIC" says of every frame's TCP checksum
    /// (`RxChecksum::Unknown`: nothing, hagw sums it where it must).
    pub nic_l4: nf_core::RxChecksum,
    /// Flip a bit of the TCP checksum of every frame that carries TCP
    /// payload (a corruption only a checksum can tell).
    pub corrupt_tcp_checksums: bool,
    /// With several workers: the RSS (Toeplitz) the lab's "NIC" spreads
    /// frames with; hagw knows it only in `with_rss` labs.
    nic: crate::convert::rss::Rss,
    /// Handed-over packets that came in on the internet port.
    pub handed_from_internet: u64,
    next_port: u16,
    /// Frames the clients and the server sent during a step, fed to the
    /// pipeline together at the step's end, as a worker takes what its
    /// ports received in one poll (rx bursts) and then runs its engines.
    rx: Vec<(u16, VecBuf)>,
    /// Frames fed to the workers so far (the NIC's count for `stray`).
    fed: u64,
}

/// The queue `r` puts a frame (Ethernet, IPv4/IPv6, TCP) on.
fn rss_queue(r: &crate::convert::rss::Rss, f: &[u8]) -> usize {
    let tuple = f
        .get(14..)
        .and_then(crate::convert::rewrite::peek)
        .map(|p| r.queue(p.src, p.dst, p.sport, p.dport));
    usize::from(tuple.unwrap_or(0))
}

/// Flips a bit of the TCP checksum of an untagged Ethernet frame carrying
/// IPv4 and TCP with payload; other frames are left alone.
fn corrupt_tcp_checksum(f: &mut [u8]) {
    use nf_core::wire::{ipv4, tcp};
    let Some(ip) = f.get_mut(14..) else { return };
    let Ok(p) = ipv4::Packet::new_checked(&*ip) else {
        return;
    };
    let (hl, total) = (p.header_len(), usize::from(p.total_len()));
    let data = p.protocol() == nf_core::wire::ip_proto::TCP
        && ip
            .get(hl..total)
            .and_then(|t| tcp::Packet::new_checked(t).ok())
            .is_some_and(|t| total > hl + t.header_len());
    if let Some(b) = ip.get_mut(hl + 17).filter(|_| data) {
        *b ^= 0x01;
    }
}

fn eth_wrap(src: EthernetAddress, dst: EthernetAddress, ip: &[u8]) -> VecBuf {
    let e = ethernet::Repr {
        src,
        dst,
        vlan: None,
        ethertype: EtherType::Ipv4,
    };
    let mut b = VecBuf::new();
    if let Some(h) = b.append(e.header_len() + ip.len()) {
        e.emit(h);
        h[e.header_len()..].copy_from_slice(ip);
    }
    b
}

fn packet(src: IpAddr, dst: IpAddr, seg: &nf_tcp::Segment<Bytes>) -> Vec<u8> {
    let mut v = Vec::new();
    crate::localpeer::emit_tcp_packet(src, dst, seg, &mut |p| v = p);
    v
}

impl ConvLab {
    /// A lab whose hagw config is LAB3 plus `extra` (the `[conversion]`,
    /// `[nat]`, `[[subscriber]]` sections).
    pub fn new(extra: &str, seed: u64) -> ConvLab {
        Self::with_workers(extra, seed, 1)
    }

    /// A lab whose hagw runs `workers` workers, each with its own pipeline
    /// and converter.
    pub fn with_workers(extra: &str, seed: u64, workers: usize) -> ConvLab {
        Self::build(extra, seed, workers, false)
    }

    /// Several workers behind a "NIC" whose RSS (Toeplitz, hagw's key, a
    /// 128-entry table over the workers) hagw knows: it picks NAT ports so
    /// that servers' replies arrive on the owner's queue.
    pub fn with_rss(extra: &str, seed: u64, workers: usize) -> ConvLab {
        Self::build(extra, seed, workers, true)
    }

    /// `told`: hagw knows the NIC's RSS (its own key); else the NIC hashes
    /// with another key.
    fn build(extra: &str, seed: u64, workers: usize, told: bool) -> ConvLab {
        let n = workers.max(1) as u16;
        let mut key = crate::convert::rss::KEY.to_vec();
        if !told {
            key.reverse();
        }
        let nic = crate::convert::rss::Rss {
            key,
            reta: (0..128u16).map(|i| i % n).collect(),
        };
        let rss = told.then(|| nic.clone());
        let directory = Arc::new(crate::convert::shard::Directory::default());
        let mut pipes: Vec<Pipeline<VecBuf, Pool>> = (0..workers.max(1))
            .map(|w| Self::worker(extra, seed, w, workers.max(1), &directory, rss.clone()))
            .collect();
        let pipe = pipes.remove(0);
        ConvLab {
            pipe,
            extra: pipes,
            now: 1_000_000,
            clients: Vec::new(),
            server: LabServer {
                conns: Vec::new(),
                flows: HashMap::new(),
                closed_ports: Vec::new(),
                unreachable_ports: Vec::new(),
                mptcp_ports: Vec::new(),
                reply_at_end_ports: Vec::new(),
                sources: Vec::new(),
                mptcp_syns: 0,
                rng: Rng::new(seed ^ 0x5e),
            },
            rng: Rng::new(seed),
            pipeline_time: Duration::ZERO,
            frames_in: 0,
            frames_out: 0,
            frames_nic_summed: 0,
            drop_to_clients: 0,
            access_mtu: 0,
            internet_mtu: 0,
            frag_needed_sent: 0,
            icmp_seen: Vec::new(),
            to_clients: 0,
            icmp_to_clients: 0,
            skip_idle: false,
            stray: 0,
            nic_l4: nf_core::RxChecksum::Unknown,
            corrupt_tcp_checksums: false,
            nic,
            handed_from_internet: 0,
            next_port: 40000,
            rx: Vec::new(),
            fed: 0,
        }
    }

    fn worker(
        extra: &str,
        seed: u64,
        w: usize,
        n: usize,
        directory: &Arc<crate::convert::shard::Directory>,
        rss: Option<crate::convert::rss::Rss>,
    ) -> Pipeline<VecBuf, Pool> {
        let text = format!("{LAB3}\n{extra}");
        let (mut pipe, cfg) = crate::testkit::worker_pipeline_from(&text, Pool::new(usize::MAX), w);
        let stats = Arc::clone(&pipe.stats);
        let mut secret = [0u8; 32];
        secret[..8].copy_from_slice(&seed.to_le_bytes());
        secret[8] = w as u8;
        let mut conv = Converter::new(Policy::from_config(&cfg), KeyGen::new(secret), stats);
        if n > 1 {
            conv.set_shard(
                crate::convert::shard::Shard::new(w, n),
                Arc::clone(directory),
                rss,
            );
        }
        pipe.enable_conversion(conv);
        // neighbours: the client on both accesses, the server
        let gw = [
            Ipv4Addr::new(192, 0, 2, 1),
            Ipv4Addr::new(100, 64, 0, 1),
            Ipv4Addr::new(198, 51, 100, 1),
        ];
        for (port, ip, m) in [
            (0u16, FIXED, CLI_MAC),
            (1, CELL, CLI_MAC),
            (2, SERVER, SRV_MAC),
        ] {
            let r = arp::Repr {
                operation: arp::Operation::Reply,
                sender_hw: m,
                sender_ip: ip,
                target_hw: mac(port as u8 + 1),
                target_ip: gw[usize::from(port)],
            };
            let mut body = [0u8; arp::PACKET_LEN];
            r.emit(&mut body);
            let e = ethernet::Repr {
                src: m,
                dst: mac(port as u8 + 1),
                vlan: None,
                ethertype: EtherType::Arp,
            };
            let mut b = VecBuf::new();
            if let Some(h) = b.append(e.header_len() + body.len()) {
                e.emit(h);
                h[e.header_len()..].copy_from_slice(&body);
            }
            pipe.process(0, port, b);
        }
        pipe
    }

    fn pipes(&mut self) -> impl Iterator<Item = &mut Pipeline<VecBuf, Pool>> {
        std::iter::once(&mut self.pipe).chain(self.extra.iter_mut())
    }

    /// Every worker's statistics.
    pub fn worker_stats(&self) -> Vec<&WorkerStats> {
        std::iter::once(&self.pipe)
            .chain(&self.extra)
            .map(|p| p.stats())
            .collect()
    }

    /// A frame into the worker the NIC's RSS puts it on, then whatever the
    /// workers hand over to each other, to their owners.
    fn feed(&mut self, port: u16, frame: VecBuf) {
        let t = Instant::now();
        self.process(port, frame);
        self.pipeline_time += t.elapsed();
    }

    /// [`ConvLab::feed`] without the timing (the caller times a batch).
    fn process(&mut self, port: u16, mut frame: VecBuf) {
        frame.set_rx_l4_checksum(self.nic_l4);
        if self.corrupt_tcp_checksums {
            corrupt_tcp_checksum(frame.data_mut());
        }
        let n = self.extra.len() + 1;
        let mut w = if n == 1 {
            0
        } else {
            rss_queue(&self.nic, frame.data()) % n
        };
        if self.stray > 0 && self.fed % self.stray == self.stray - 1 {
            w = (w + 1) % n;
        }
        self.fed += 1;
        let now = self.now;
        match w {
            0 => self.pipe.process(now, port, frame),
            _ => {
                if let Some(p) = self.extra.get_mut(w - 1) {
                    p.process(now, port, frame);
                }
            }
        }
        self.hand_over();
    }

    /// Moves handed-over packets to their owners (as the workers' rings
    /// do) until none is left.
    fn hand_over(&mut self) {
        if self.extra.is_empty() {
            return;
        }
        let now = self.now;
        for _ in 0..8 {
            let moving: Vec<(u16, u16, VecBuf)> =
                self.pipes().flat_map(|p| p.handoffs().drain(..)).collect();
            if moving.is_empty() {
                return;
            }
            for (w, port, b) in moving {
                if port == 2 {
                    self.handed_from_internet += 1;
                }
                if let Some(p) = self.pipes().nth(usize::from(w)) {
                    p.process(now, port, b);
                }
            }
        }
    }

    pub fn stats(&self) -> &WorkerStats {
        self.pipe.stats()
    }

    /// Every port of every worker as on a NIC that verifies received TCP
    /// checksums (`rx`: the flags [`ConvLab::nic_l4`] sets then count) and
    /// computes those of what hagw sends (`tx`: the lab's wire completes
    /// them, `VecBuf::frame`).
    pub fn tcp_checksum_offload(&mut self, rx: bool, tx: bool) {
        for p in self.pipes() {
            for port in 0..p.ports().len() as u16 {
                p.set_rx_tcp_checksum(port, rx);
                p.set_tx_tcp_checksum(port, tx);
            }
        }
    }

    /// Opens a client connection to the server's `port` from the fixed
    /// address; returns its index.
    pub fn connect(&mut self, port: u16, work: Workload) -> usize {
        let lport = self.next_port;
        self.next_port = self.next_port.wrapping_add(1).max(40000);
        self.connect_from(lport, port, work)
    }

    /// A new connection from client `ci`'s address and port, as a client
    /// that closed second (no TIME-WAIT of its own) may open at once: its
    /// timestamps go on from the old connection's clock, as Linux keeps
    /// one clock per address pair.
    pub fn reconnect(&mut self, ci: usize, work: Workload) -> usize {
        let old = &self.clients[ci];
        let (lport, port) = (old.paths[0].1, old.server_port);
        let ts = old.mp.subflows()[0].tcp.tsval(self.now);
        let c = self.connect_from(lport, port, work);
        self.clients[c]
            .mp
            .set_ts_clock(self.now, ts.wrapping_add(1));
        c
    }

    fn connect_from(&mut self, lport: u16, port: u16, work: Workload) -> usize {
        let secrets = Secrets {
            key: self.rng.next_u64(),
            seed: self.rng.next_u64(),
        };
        let mp = MpConnection::client(
            MpConfig::default(),
            secrets,
            lport,
            port,
            Seq(self.rng.next_u64() as u32),
            PathRole::Fixed,
            Box::new(MinRtt),
        );
        self.clients.push(LabClient {
            mp,
            paths: vec![(FIXED, lport, 0)],
            server_port: port,
            work,
            sent: 0,
            received: 0,
            corrupt: false,
            joined: false,
            closing: false,
            refused: false,
            closed: false,
        });
        self.clients.len() - 1
    }

    /// Sends `seg` into the pipeline on `port` now, timing the pipeline.
    pub fn inject(&mut self, port: u16, src: IpAddr, dst: IpAddr, seg: &nf_tcp::Segment<Bytes>) {
        let frame = Self::frame(port, src, dst, seg);
        self.feed(port, frame);
        self.frames_in += 1;
    }

    /// Queues `seg` for the pipeline's next batch (the step's end).
    fn send(&mut self, port: u16, src: IpAddr, dst: IpAddr, seg: &nf_tcp::Segment<Bytes>) {
        let frame = Self::frame(port, src, dst, seg);
        self.rx.push((port, frame));
        self.frames_in += 1;
    }

    /// `seg` as the Ethernet frame that reaches hagw's `port`.
    fn frame(port: u16, src: IpAddr, dst: IpAddr, seg: &nf_tcp::Segment<Bytes>) -> VecBuf {
        let (sm, dm) = if port == 2 {
            (SRV_MAC, mac(3))
        } else {
            (CLI_MAC, mac(port as u8 + 1))
        };
        eth_wrap(sm, dm, &packet(src, dst, seg))
    }

    fn run_clients(&mut self) {
        let now = self.now;
        let mut out = Vec::new();
        for (ci, c) in self.clients.iter_mut().enumerate() {
            if c.refused || (c.closed && c.mp.is_closed()) {
                continue;
            }
            while let Some(e) = c.mp.poll_event() {
                if e == MpEvent::Closed {
                    c.closed = true;
                }
            }
            if c.mp.is_established() {
                if c.work.join && !c.joined && c.mp.can_join() {
                    c.joined = true;
                    let lport = c.paths[0].1.wrapping_add(20000);
                    if let Some(sf) = c.mp.join(
                        lport,
                        c.server_port,
                        Seq((ci as u32).wrapping_mul(7919)),
                        PathRole::Cellular,
                        false,
                        1,
                    ) {
                        debug_assert_eq!(sf, c.paths.len());
                        c.paths.push((CELL, lport, 1));
                    }
                }
                while c.sent < c.work.up {
                    let n = (c.work.up - c.sent)
                        .min(16 * 1024)
                        .min(c.mp.send_capacity() as u64);
                    if n == 0 {
                        break;
                    }
                    let v: Vec<u8> = (c.sent..c.sent + n).map(|i| i as u8).collect();
                    c.sent += c.mp.send(Bytes::new(v)) as u64;
                }
                while let Some(d) = (!c.work.deaf).then(|| c.mp.recv()).flatten() {
                    let start = c.received;
                    if d.as_slice()
                        .iter()
                        .enumerate()
                        .any(|(k, &b)| b != (start + k as u64) as u8)
                    {
                        c.corrupt = true;
                    }
                    c.received += d.len() as u64;
                }
                if c.sent == c.work.up
                    && (c.received == c.work.up || c.work.shut)
                    && !c.closing
                    && !c.work.hold
                {
                    c.closing = true;
                    c.mp.close();
                }
                if c.closing && c.mp.data_closed() {
                    c.closed = true;
                }
            }
            while let Some((sf, seg)) = c.mp.poll_transmit(now) {
                if let Some(&(a, _, port)) = c.paths.get(sf) {
                    out.push((port, IpAddr::V4(a), seg));
                }
            }
        }
        for (port, src, seg) in out {
            self.send(port, src, IpAddr::V4(SERVER), &seg);
        }
    }

    fn run_server(&mut self) {
        let now = self.now;
        let mut out = Vec::new();
        let at_end = &self.server.reply_at_end_ports;
        for (conn, pending, closed, peer) in self.server.conns.iter_mut() {
            match conn {
                SrvConn::Tcp(c) => {
                    let mut peer_fin = false;
                    while let Some(e) = c.poll_event() {
                        peer_fin |= e == TcpEvent::PeerClosed;
                    }
                    let eof = peer_fin || c.state() == State::CloseWait;
                    if eof || !at_end.contains(&c.local_port()) {
                        crate::localpeer::echo(c.as_mut(), pending);
                    }
                    if eof && pending.is_empty() && c.readable() == 0 && !*closed {
                        *closed = true;
                        c.close();
                    }
                    while let Some(s) = c.poll_transmit(now) {
                        out.push((*peer, s));
                    }
                }
                SrvConn::Mp(m) => {
                    let mut peer_fin = false;
                    while let Some(e) = m.poll_event() {
                        peer_fin |= e == MpEvent::PeerClosed;
                    }
                    crate::localpeer::echo(m.as_mut(), pending);
                    if peer_fin && pending.is_empty() && m.readable() == 0 && !*closed {
                        *closed = true;
                        m.close();
                    }
                    while let Some((_, s)) = m.poll_transmit(now) {
                        // subflow peers: the harness's subflows all come
                        // from addresses the NAT maps to one address
                        out.push((*peer, s));
                    }
                }
            }
        }
        for (peer, seg) in out {
            self.send(2, IpAddr::V4(SERVER), peer, &seg);
        }
    }

    fn server_input(&mut self, src: IpAddr, seg: nf_tcp::Incoming<Bytes>) {
        let key = (src, seg.hdr.src_port, seg.hdr.dst_port);
        let now = self.now;
        if let Some(&(ci, sf)) = self.server.flows.get(&key) {
            match self.server.conns.get_mut(ci).map(|c| &mut c.0) {
                Some(SrvConn::Tcp(c)) => c.handle_segment(now, seg),
                Some(SrvConn::Mp(m)) => m.handle_segment(now, sf, seg),
                None => {}
            }
            return;
        }
        let h = seg.hdr;
        if !h.syn() || h.ack_flag() {
            return;
        }
        self.server.sources.push(src);
        if h.opts.mptcp.is_some() {
            self.server.mptcp_syns += 1;
        }
        if self.server.unreachable_ports.contains(&h.dst_port) {
            self.icmp_unreachable(src, &seg);
            return;
        }
        if self.server.closed_ports.contains(&h.dst_port) {
            let rst = Header {
                src_port: h.dst_port,
                dst_port: h.src_port,
                seq: Seq(0),
                ack: h.seq + 1,
                flags: nf_core::wire::tcp::flags::RST | nf_core::wire::tcp::flags::ACK,
                ..Default::default()
            };
            let s = nf_tcp::Segment {
                hdr: rst,
                payload: nf_tcp::Gather::default(),
            };
            self.send(2, IpAddr::V4(SERVER), src, &s);
            return;
        }
        let iss = Seq(self.server.rng.next_u64() as u32);
        let join = h
            .opts
            .mptcp
            .and_then(|o| nf_mptcp::options::MptcpOption::parse(o.as_slice(), true, false).ok());
        if let Some(nf_mptcp::options::MptcpOption::JoinSyn { token, .. }) = join {
            // RFC 8684 §3.2: a subflow of one of our MPTCP connections
            for (ci, (c, _, _, _)) in self.server.conns.iter_mut().enumerate() {
                if let SrvConn::Mp(m) = c {
                    if m.local_token() == token {
                        if let Some(sf) = m.accept_join(&seg, iss, PathRole::Other) {
                            self.server.flows.insert(key, (ci, sf));
                        }
                        return;
                    }
                }
            }
            return;
        }
        let conn = if self.server.mptcp_ports.contains(&h.dst_port) {
            let secrets = Secrets {
                key: self.server.rng.next_u64(),
                seed: self.server.rng.next_u64(),
            };
            match MpConnection::server(
                MpConfig::default(),
                secrets,
                &seg,
                iss,
                PathRole::Other,
                Box::new(MinRtt),
            ) {
                Some(m) => SrvConn::Mp(Box::new(m)),
                None => SrvConn::Tcp(Box::new(Connection::accept(
                    nf_tcp::Config::default(),
                    &h,
                    iss,
                ))),
            }
        } else {
            SrvConn::Tcp(Box::new(Connection::accept(
                nf_tcp::Config::default(),
                &h,
                iss,
            )))
        };
        self.server.conns.push((conn, VecDeque::new(), false, src));
        self.server
            .flows
            .insert(key, (self.server.conns.len() - 1, 0));
    }

    /// ICMP port unreachable (RFC 792) from the server, quoting the SYN.
    fn icmp_unreachable(&mut self, src: IpAddr, syn: &nf_tcp::Incoming<Bytes>) {
        let seg = nf_tcp::Segment {
            hdr: syn.hdr,
            payload: nf_tcp::Gather::default(),
        };
        let quoted = packet(src, IpAddr::V4(SERVER), &seg);
        let IpAddr::V4(dst) = src else { return };
        let msg = nf_core::wire::icmpv4::Repr::DestUnreachable {
            code: 3,
            next_hop_mtu: 0,
            data: &quoted[..quoted.len().min(28)],
        };
        let mut icmp = vec![0u8; msg.buffer_len()];
        msg.emit(&mut icmp);
        let ip = crate::frames::ipv4_packet(SERVER, dst, nf_core::wire::ip_proto::ICMP, &icmp);
        let frame = eth_wrap(SRV_MAC, mac(3), &ip);
        self.rx.push((2, frame));
    }

    fn client_input(&mut self, dst: IpAddr, seg: nf_tcp::Incoming<Bytes>) {
        let now = self.now;
        let (dport, sport) = (seg.hdr.dst_port, seg.hdr.src_port);
        // the newest connection on a tuple (`reconnect`) takes its segments
        for c in self.clients.iter_mut().rev() {
            if c.server_port != sport {
                continue;
            }
            let Some(sf) = c
                .paths
                .iter()
                .position(|&(a, p, _)| IpAddr::V4(a) == dst && p == dport)
            else {
                continue;
            };
            if seg.hdr.rst() && !c.mp.is_established() {
                c.refused = true;
            }
            c.mp.handle_segment(now, sf, seg);
            return;
        }
    }

    /// Hands what the pipeline sent to the clients and the server; returns
    /// how many frames.
    fn deliver(&mut self) -> usize {
        let mut n = 0;
        for port in 0..3usize {
            let frames: Vec<VecBuf> = self
                .pipes()
                .flat_map(|p| p.tx_queue(port).into_iter().flat_map(|q| q.drain(..)))
                .collect();
            n += frames.len();
            self.frames_out += frames.len() as u64;
            for f in frames {
                // the wire: headers and chained payload in one frame
                self.frames_nic_summed += u64::from(f.tx_tcp_checksum().is_some());
                let frame = f.frame();
                let Some(ip) = frame.get(14..) else {
                    continue;
                };
                if ip.len() > 20 && ip[9] == nf_core::wire::ip_proto::ICMP {
                    if self.icmp_seen.len() < 256 {
                        self.icmp_seen.push((port, ip.to_vec()));
                    }
                    if port != 2 {
                        self.icmp_to_clients += 1;
                        continue;
                    }
                }
                let mtu = if port == 2 {
                    self.internet_mtu
                } else {
                    self.access_mtu
                };
                if mtu > 0 && ip.len() > mtu {
                    self.frag_needed(port as u16, ip, mtu);
                    continue;
                }
                if port != 2 && self.drop_to_clients > 0 {
                    self.to_clients += 1;
                    if self.to_clients.is_multiple_of(self.drop_to_clients) {
                        continue;
                    }
                }
                let Some((src, dst, seg)) = crate::localpeer::parse_tcp_packet(ip) else {
                    continue;
                };
                if port == 2 {
                    self.server_input(src, seg);
                } else {
                    self.client_input(dst, seg);
                }
                // back to the pool, as the NIC frees a sent mbuf: its chained
                // payload let go here (the PMD's work at TX completion, a
                // mempool put there; freeing the harness's payload vectors
                // here), so that hagw's next allocation only takes it
                if self.pipe.pool.free.len() < 4096 {
                    let mut f = f;
                    f.reset();
                    self.pipe.pool.free.push(f);
                }
            }
        }
        n
    }

    /// The router's "fragmentation needed" about `ip`, which it dropped on
    /// `port`'s side for a link of `mtu` bytes, queued for hagw's next
    /// batch.
    fn frag_needed(&mut self, port: u16, ip: &[u8], mtu: usize) {
        use nf_core::wire::{icmpv4, ip_proto};
        let (Some(&v), Some(src)) = (ip.first(), ip.get(12..16)) else {
            return;
        };
        let quote = &ip[..(usize::from(v & 0x0f) * 4 + 8).min(ip.len())];
        let m = icmpv4::Repr::DestUnreachable {
            code: 4,
            next_hop_mtu: u16::try_from(mtu).unwrap_or(u16::MAX),
            data: quote,
        };
        let mut icmp = vec![0u8; m.buffer_len()];
        m.emit(&mut icmp);
        let (router, from, to_mac) = match port {
            0 => (Ipv4Addr::new(192, 0, 2, 254), CLI_MAC, mac(1)),
            1 => (Ipv4Addr::new(100, 64, 0, 254), CLI_MAC, mac(2)),
            _ => (Ipv4Addr::new(198, 51, 100, 254), SRV_MAC, mac(3)),
        };
        let to = Ipv4Addr::new(src[0], src[1], src[2], src[3]);
        let pkt = crate::frames::ipv4_packet(router, to, ip_proto::ICMP, &icmp);
        self.rx.push((port, eth_wrap(from, to_mac, &pkt)));
        self.frames_in += 1;
        self.frag_needed_sent += 1;
    }

    /// The earliest timer of the clients, the servers and hagw.
    fn next_deadline(&self) -> Option<Time> {
        let clients = self.clients.iter().filter_map(|c| c.mp.next_timeout());
        let servers = self.server.conns.iter().filter_map(|(c, ..)| match c {
            SrvConn::Tcp(c) => c.next_timeout(),
            SrvConn::Mp(m) => m.next_timeout(),
        });
        let hagw = std::iter::once(&self.pipe)
            .chain(&self.extra)
            .filter_map(|p| p.converter().map(Converter::next_timeout));
        clients.chain(servers).chain(hagw).min()
    }

    fn timers(&mut self) {
        let now = self.now;
        for c in &mut self.clients {
            if c.mp.next_timeout().is_some_and(|t| t <= now) {
                c.mp.on_timeout(now);
            }
        }
        for (c, _, _, _) in self.server.conns.iter_mut() {
            match c {
                SrvConn::Tcp(c) => {
                    if c.next_timeout().is_some_and(|t| t <= now) {
                        c.on_timeout(now)
                    }
                }
                SrvConn::Mp(m) => {
                    if m.next_timeout().is_some_and(|t| t <= now) {
                        m.on_timeout(now)
                    }
                }
            }
        }
    }

    /// One round: engines transmit, the pipeline forwards and converts,
    /// everyone receives; virtual time moves by `dt`.
    pub fn step(&mut self, dt: Time) {
        let frames = self.frames_in;
        self.timers();
        self.run_clients();
        self.run_server();
        // one timed batch: what arrived, then the engines (a worker's poll)
        let t = Instant::now();
        let mut rx = std::mem::take(&mut self.rx);
        for (port, frame) in rx.drain(..) {
            self.process(port, frame);
        }
        self.rx = rx;
        let now = self.now;
        for p in self.pipes() {
            p.poll_conversion(now);
        }
        self.hand_over();
        self.pipeline_time += t.elapsed();
        let delivered = self.deliver();
        if self.skip_idle && delivered == 0 && self.frames_in == frames {
            if let Some(at) = self.next_deadline() {
                if at > self.now + dt {
                    self.now = at;
                    return;
                }
            }
        }
        self.now += dt;
    }

    /// Steps until `done` holds or `limit` of virtual time passed; true
    /// when `done` held.
    pub fn run_until(&mut self, limit: Time, mut done: impl FnMut(&ConvLab) -> bool) -> bool {
        let end = self.now + limit;
        while self.now < end {
            if done(self) {
                return true;
            }
            self.step(100_000);
        }
        done(self)
    }

    /// Removes finished clients and server connections (long benches).
    pub fn reap(&mut self) {
        self.clients
            .retain(|c| !(c.refused || (c.finished() && c.mp.is_closed())));
        if self.server.conns.iter().all(|(c, _, _, _)| match c {
            SrvConn::Tcp(c) => c.state() == State::Closed,
            SrvConn::Mp(m) => m.is_closed(),
        }) {
            self.server.conns.clear();
            self.server.flows.clear();
        }
    }

    /// Live conversion sessions in the pipeline.
    pub fn sessions(&self) -> usize {
        std::iter::once(&self.pipe)
            .chain(&self.extra)
            .map(|p| p.converter().map_or(0, Converter::active))
            .sum()
    }

    /// Chunk helper for tests: total payload a client moved.
    pub fn bytes(&self) -> u64 {
        self.clients.iter().map(|c| c.received + c.sent).sum()
    }
}
