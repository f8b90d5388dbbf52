//! A TCP endpoint on the gateway's own address, built on nf-tcp: the
//! interop harness that proves the engine against the Linux kernel's TCP
//! (`hagw tcp-peer`). Passive mode echoes every byte back; active mode
//! connects, sends a deterministic stream and verifies the echo.
//!
//! This is a test endpoint, not the data path: payload is copied between
//! packet buffers and `Bytes` at its boundary.

use nf_core::chunk::{Bytes, Chunk};
use nf_core::sim::Time;
use nf_tcp::{Config, Connection, Event, FourTuple, Listener, State, SynAction};
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};

/// The byte at offset `i` of the active side's stream.
pub fn pattern(i: u64) -> u8 {
    (i.wrapping_mul(2654435761) >> 13) as u8 ^ (i >> 20) as u8
}

/// What the peer does.
#[derive(Clone, Copy, Debug)]
pub enum Mode {
    /// Accept on `port` and echo.
    Echo { port: u16 },
    /// Connect to `remote`, send `bytes`, verify the echo.
    Client { remote: SocketAddr, bytes: u64 },
}

struct EchoConn {
    local: IpAddr,
    conn: Connection<Bytes>,
    pending: VecDeque<Bytes>,
    peer_closed: bool,
}

struct ClientState {
    conn: Connection<Bytes>,
    remote: SocketAddr,
    total: u64,
    sent: u64,
    received: u64,
    mismatch: Option<u64>,
    closed: bool,
    failed: Option<String>,
}

/// The endpoint.
pub struct TcpPeer {
    local: IpAddr,
    listener: Listener,
    port: Option<u16>,
    conns: HashMap<(IpAddr, u16), EchoConn>,
    client: Option<ClientState>,
    pub echoed_bytes: u64,
    pub parse_errors: u64,
}

impl TcpPeer {
    pub fn new(mode: Mode, local: IpAddr, cfg: Config, secret: [u8; 32], now: Time) -> Self {
        let listener = Listener::new(cfg, 1024, secret);
        let mut p = TcpPeer {
            local,
            listener,
            port: None,
            conns: HashMap::new(),
            client: None,
            echoed_bytes: 0,
            parse_errors: 0,
        };
        match mode {
            Mode::Echo { port } => p.port = Some(port),
            Mode::Client { remote, bytes } => {
                let lport = 40000 + (now % 20000) as u16;
                let t = FourTuple {
                    local,
                    lport,
                    remote: remote.ip(),
                    rport: remote.port(),
                };
                let iss = p.listener.isn(now, &t);
                p.client = Some(ClientState {
                    conn: Connection::connect(cfg, lport, remote.port(), iss),
                    remote,
                    total: bytes,
                    sent: 0,
                    received: 0,
                    mismatch: None,
                    closed: false,
                    failed: None,
                });
            }
        }
        p
    }

    /// For the active side: `Some(Ok(bytes))` once the whole echo arrived
    /// and matched, `Some(Err(..))` on failure.
    pub fn outcome(&self) -> Option<Result<u64, String>> {
        let c = self.client.as_ref()?;
        if let Some(f) = &c.failed {
            return Some(Err(f.clone()));
        }
        if let Some(at) = c.mismatch {
            return Some(Err(format!("echoed byte {at} differs")));
        }
        (c.received == c.total && c.closed).then_some(Ok(c.received))
    }

    /// Hands one IP packet (IPv4 or IPv6, from the IP header on) to the peer.
    pub fn on_packet(&mut self, now: Time, ip: &[u8]) {
        let Some((src, dst, seg)) = crate::localpeer::parse_tcp_packet(ip) else {
            return self.parse_errors += 1;
        };
        if let Some(c) = self.client.as_mut() {
            if src == c.remote.ip()
                && seg.hdr.src_port == c.remote.port()
                && seg.hdr.dst_port == c.conn.local_port()
            {
                c.conn.handle_segment(now, seg);
                return;
            }
        }
        let Some(port) = self.port else { return };
        if seg.hdr.dst_port != port {
            return;
        }
        let key = (src, seg.hdr.src_port);
        if let Some(e) = self.conns.get_mut(&key) {
            if e.conn.state() != State::Closed {
                e.conn.handle_segment(now, seg);
                return;
            }
            self.conns.remove(&key);
        }
        let t = FourTuple {
            local: dst,
            lport: port,
            remote: src,
            rport: seg.hdr.src_port,
        };
        let half_open = self
            .conns
            .values()
            .filter(|e| e.conn.state() == State::SynReceived)
            .count();
        if seg.hdr.syn() {
            if let SynAction::Accept(c) = self.listener.on_syn(now, &t, &seg, half_open) {
                self.conns.insert(
                    key,
                    EchoConn {
                        local: dst,
                        conn: *c,
                        pending: VecDeque::new(),
                        peer_closed: false,
                    },
                );
            }
        } else if let Some(c) = self.listener.on_ack(now, &t, &seg) {
            self.conns.insert(
                key,
                EchoConn {
                    local: dst,
                    conn: c,
                    pending: VecDeque::new(),
                    peer_closed: false,
                },
            );
        }
    }

    fn emit(
        local: IpAddr,
        remote: IpAddr,
        seg: &nf_tcp::Segment<Bytes>,
        out: &mut impl FnMut(Vec<u8>),
    ) {
        crate::localpeer::emit_tcp_packet(local, remote, seg, out)
    }

    /// Runs the application logic and emits every packet due now.
    pub fn poll(&mut self, now: Time, out: &mut impl FnMut(Vec<u8>)) {
        for ((remote, _), e) in self.conns.iter_mut() {
            while let Some(ev) = e.conn.poll_event() {
                if ev == Event::PeerClosed {
                    e.peer_closed = true;
                }
            }
            self.echoed_bytes += crate::localpeer::echo(&mut e.conn, &mut e.pending);
            if e.peer_closed
                && e.pending.is_empty()
                && e.conn.readable() == 0
                && e.conn.state() == State::CloseWait
            {
                e.conn.close();
            }
            while let Some(s) = e.conn.poll_transmit(now) {
                Self::emit(e.local, *remote, &s, out);
            }
        }
        self.conns.retain(|_, e| e.conn.state() != State::Closed);
        if let Some(c) = self.client.as_mut() {
            while let Some(ev) = c.conn.poll_event() {
                match ev {
                    Event::Reset => c.failed = Some("connection reset by the peer".into()),
                    Event::TimedOut => c.failed = Some("connection timed out".into()),
                    Event::Closed => c.closed = true,
                    _ => {}
                }
            }
            while let Some(d) = c.conn.recv() {
                for (i, &b) in d.as_slice().iter().enumerate() {
                    if b != pattern(c.received + i as u64) && c.mismatch.is_none() {
                        c.mismatch = Some(c.received + i as u64);
                    }
                }
                c.received += d.len() as u64;
            }
            if matches!(c.conn.state(), State::Established | State::CloseWait) {
                while c.sent < c.total {
                    let n = (c.total - c.sent)
                        .min(64 * 1024)
                        .min(c.conn.send_capacity() as u64);
                    if n == 0 {
                        break;
                    }
                    let v: Vec<u8> = (0..n).map(|i| pattern(c.sent + i)).collect();
                    c.sent += c.conn.send(Bytes::new(v)) as u64;
                }
                if c.received == c.total && c.sent == c.total {
                    c.conn.close();
                }
            }
            if matches!(c.conn.state(), State::TimeWait | State::Closed) && c.received == c.total {
                c.closed = true;
            }
            while let Some(s) = c.conn.poll_transmit(now) {
                Self::emit(self.local, c.remote.ip(), &s, out);
            }
        }
    }

    pub fn next_timeout(&self) -> Option<Time> {
        self.conns
            .values()
            .filter_map(|e| e.conn.next_timeout())
            .chain(self.client.as_ref().and_then(|c| c.conn.next_timeout()))
            .min()
    }

    pub fn on_timeout(&mut self, now: Time) {
        for e in self.conns.values_mut() {
            if e.conn.next_timeout().is_some_and(|t| t <= now) {
                e.conn.on_timeout(now);
            }
        }
        if let Some(c) = self.client.as_mut() {
            if c.conn.next_timeout().is_some_and(|t| t <= now) {
                c.conn.on_timeout(now);
            }
        }
    }

    /// One line per connection: state and counters (for logs).
    pub fn describe(&self) -> String {
        self.describe_conns()
    }

    fn describe_conns(&self) -> String {
        let mut out = String::new();
        for ((ip, port), e) in &self.conns {
            out.push_str(&format!(
                "{ip}:{port} {:?} cwnd {} unacked {} readable {} pending {} {:?}\n",
                e.conn.state(),
                e.conn.cwnd(),
                e.conn.unacked(),
                e.conn.readable(),
                e.pending.iter().map(|p| p.len()).sum::<usize>(),
                e.conn.stats()
            ));
        }
        if let Some(c) = &self.client {
            out.push_str(&format!(
                "client {:?} sent {} received {} {:?}\n",
                c.conn.state(),
                c.sent,
                c.received,
                c.conn.stats()
            ));
        }
        out
    }

    pub fn connections(&self) -> usize {
        self.conns.len()
    }
}
