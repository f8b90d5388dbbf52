//! An MPTCP echo endpoint on the gateway's own addresses, built on
//! nf-mptcp: the interop harness that proves the engine against the Linux
//! kernel's MPTCP (`hagw mptcp-peer`). It accepts MP_CAPABLE connections,
//! attaches MP_JOIN subflows by token (from any access, any address), and
//! echoes every byte at the data level. A test endpoint: payload is copied
//! at its boundary like `tcppeer`.

use nf_core::chunk::{Bytes, Chunk};
use nf_core::sim::Time;
use nf_mptcp::conn::{Config, Event, MpConnection, Secrets};
use nf_mptcp::options::MptcpOption;
use nf_mptcp::scheduler::{MinRtt, PathRole};
use nf_tcp::Seq;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

struct Conn {
    mp: MpConnection<Bytes>,
    /// subflow index → (local address, remote address)
    addrs: Vec<(IpAddr, IpAddr)>,
    pending: VecDeque<Bytes>,
    peer_closed: bool,
    closed_called: bool,
}

/// The active side: connect, join a second subflow from another local
/// address, send a pattern and verify its echo.
struct ClientApp {
    remote: std::net::SocketAddr,
    join_from: Option<IpAddr>,
    joined: bool,
    total: u64,
    sent: u64,
    received: u64,
    mismatch: Option<u64>,
    closed: bool,
}

/// The endpoint.
pub struct MptcpPeer {
    client: Option<ClientApp>,
    /// Engine settings for every connection (subflow congestion control).
    cfg: Config,
    port: u16,
    conns: Vec<Conn>,
    /// (remote address, remote port, local port) → (connection, subflow)
    flows: HashMap<(IpAddr, u16, u16), (usize, usize)>,
    rng: u64,
    /// RSTs owed for refused SYNs (sent at the next poll).
    resets: Vec<(IpAddr, IpAddr, nf_tcp::Segment<Bytes>)>,
    pub echoed_bytes: u64,
    pub parse_errors: u64,
    pub joins_unknown_token: u64,
    pub plain_tcp_syns: u64,
}

fn role_of(a: IpAddr) -> PathRole {
    match a {
        IpAddr::V4(v) if v.octets()[0] == 100 && (v.octets()[1] & 0xc0) == 64 => PathRole::Cellular,
        IpAddr::V6(_) => PathRole::Cellular,
        _ => PathRole::Fixed,
    }
}

impl MptcpPeer {
    /// `checksum`: ask for DSS checksums (RFC 8684 §3.1, the A flag).
    pub fn new(port: u16, seed: u64, cc: nf_tcp::cc::CcKind, checksum: bool) -> Self {
        let mut cfg = Config::default();
        cfg.tcp.cc = cc;
        cfg.checksum = checksum;
        MptcpPeer {
            client: None,
            cfg,
            resets: Vec::new(),
            port,
            conns: Vec::new(),
            flows: HashMap::new(),
            rng: seed,
            echoed_bytes: 0,
            parse_errors: 0,
            joins_unknown_token: 0,
            plain_tcp_syns: 0,
        }
    }

    /// An active endpoint: connects from `local` to `remote`, joins a second
    /// subflow from `join_from`, sends `bytes` and verifies the echo.
    pub fn client(
        remote: std::net::SocketAddr,
        local: IpAddr,
        join_from: Option<IpAddr>,
        bytes: u64,
        seed: u64,
        cc: nf_tcp::cc::CcKind,
        checksum: bool,
    ) -> Self {
        let mut p = Self::new(0, seed, cc, checksum);
        let secrets = Secrets {
            key: p.rand64(),
            seed: p.rand64(),
        };
        let lport = 40000 + (p.rand64() % 20000) as u16;
        let iss = Seq(p.rand64() as u32);
        let mp = MpConnection::client(
            p.cfg,
            secrets,
            lport,
            remote.port(),
            iss,
            role_of(local),
            Box::new(MinRtt),
        );
        p.conns.push(Conn {
            mp,
            addrs: vec![(local, remote.ip())],
            pending: VecDeque::new(),
            peer_closed: false,
            closed_called: false,
        });
        p.flows.insert((remote.ip(), remote.port(), lport), (0, 0));
        p.client = Some(ClientApp {
            remote,
            join_from,
            joined: false,
            total: bytes,
            sent: 0,
            received: 0,
            mismatch: None,
            closed: false,
        });
        p
    }

    /// For the active side: `Some(Ok(bytes))` once the echo came back whole.
    pub fn outcome(&self) -> Option<Result<u64, String>> {
        let c = self.client.as_ref()?;
        if let Some(at) = c.mismatch {
            return Some(Err(format!("echoed byte {at} differs")));
        }
        let conn = self.conns.first()?;
        if conn.mp.is_closed() && c.received < c.total {
            return Some(Err(format!(
                "connection closed after {} of {} bytes",
                c.received, c.total
            )));
        }
        (c.received == c.total && c.closed).then_some(Ok(c.received))
    }

    fn rand64(&mut self) -> u64 {
        let mut r = nf_core::sim::Rng::new(self.rng);
        self.rng = r.next_u64();
        r.next_u64()
    }

    /// Hands one IP packet (from the IP header on) to the endpoint.
    pub fn on_packet(&mut self, now: Time, ip: &[u8]) {
        let Some((src, dst, seg)) = crate::localpeer::parse_tcp_packet(ip) else {
            return self.parse_errors += 1;
        };
        let key = (src, seg.hdr.src_port, seg.hdr.dst_port);
        if let Some(&(c, sf)) = self.flows.get(&key) {
            if let Some(conn) = self.conns.get_mut(c) {
                conn.mp.handle_segment(now, sf, seg);
            }
            return;
        }
        if !seg.hdr.syn() || seg.hdr.ack_flag() || seg.hdr.dst_port != self.port {
            return;
        }
        let opt = seg
            .hdr
            .opts
            .mptcp
            .and_then(|o| MptcpOption::parse(o.as_slice(), true, false).ok());
        match opt {
            Some(MptcpOption::Capable { .. }) => {
                let secrets = Secrets {
                    key: self.rand64(),
                    seed: self.rand64(),
                };
                let iss = Seq(self.rand64() as u32);
                if let Some(mp) = MpConnection::server(
                    self.cfg,
                    secrets,
                    &seg,
                    iss,
                    role_of(src),
                    Box::new(MinRtt),
                ) {
                    self.conns.push(Conn {
                        mp,
                        addrs: vec![(dst, src)],
                        pending: VecDeque::new(),
                        peer_closed: false,
                        closed_called: false,
                    });
                    self.flows.insert(key, (self.conns.len() - 1, 0));
                }
            }
            Some(MptcpOption::JoinSyn { token, .. }) => {
                let iss = Seq(self.rand64() as u32);
                let Some(ci) = self
                    .conns
                    .iter()
                    .position(|c| c.mp.local_token() == token && !c.mp.is_closed())
                else {
                    // RFC 8684 §3.2: an unknown token is refused with a RST
                    self.joins_unknown_token += 1;
                    let h = &seg.hdr;
                    let rst = nf_tcp::Header {
                        src_port: h.dst_port,
                        dst_port: h.src_port,
                        seq: Seq(0),
                        ack: h.seq + 1,
                        flags: nf_core::wire::tcp::flags::RST | nf_core::wire::tcp::flags::ACK,
                        ..Default::default()
                    };
                    if self.resets.len() < 64 {
                        self.resets.push((
                            dst,
                            src,
                            nf_tcp::Segment {
                                hdr: rst,
                                payload: nf_tcp::Gather::default(),
                            },
                        ));
                    }
                    return;
                };
                let conn = &mut self.conns[ci];
                if let Some(sf) = conn.mp.accept_join(&seg, iss, role_of(src)) {
                    conn.addrs.push((dst, src));
                    self.flows.insert(key, (ci, sf));
                }
            }
            _ => self.plain_tcp_syns += 1,
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

    /// Runs the echo and emits every packet due now.
    pub fn poll(&mut self, now: Time, out: &mut impl FnMut(Vec<u8>)) {
        for (l, r, seg) in std::mem::take(&mut self.resets) {
            Self::emit(l, r, &seg, out);
        }
        if self.client.is_some() {
            self.poll_client(now, out);
            return;
        }
        for c in &mut self.conns {
            while let Some(e) = c.mp.poll_event() {
                if e == Event::PeerClosed {
                    c.peer_closed = true;
                }
            }
            self.echoed_bytes += crate::localpeer::echo(&mut c.mp, &mut c.pending);
            if c.peer_closed && c.pending.is_empty() && c.mp.readable() == 0 && !c.closed_called {
                c.closed_called = true;
                c.mp.close();
            }
            while let Some((sf, s)) = c.mp.poll_transmit(now) {
                if let Some(&(l, r)) = c.addrs.get(sf) {
                    Self::emit(l, r, &s, out);
                }
            }
        }
    }

    fn poll_client(&mut self, now: Time, out: &mut impl FnMut(Vec<u8>)) {
        let join_port = 40000 + (self.rand64() % 20000) as u16;
        let join_iss = Seq(self.rand64() as u32);
        let (Some(app), Some(conn)) = (self.client.as_mut(), self.conns.first_mut()) else {
            return;
        };
        while let Some(e) = conn.mp.poll_event() {
            if e == Event::Closed {
                app.closed = true;
            }
        }
        if conn.mp.can_join() && !app.joined {
            app.joined = true;
            if let Some(l2) = app.join_from {
                if let Some(sf) = conn.mp.join(
                    join_port,
                    app.remote.port(),
                    join_iss,
                    role_of(l2),
                    false,
                    1,
                ) {
                    conn.addrs.push((l2, app.remote.ip()));
                    self.flows
                        .insert((app.remote.ip(), app.remote.port(), join_port), (0, sf));
                }
            }
        }
        while let Some(d) = conn.mp.recv() {
            for (k, &b) in d.as_slice().iter().enumerate() {
                if b != crate::tcppeer::pattern(app.received + k as u64) && app.mismatch.is_none() {
                    app.mismatch = Some(app.received + k as u64);
                }
            }
            app.received += d.len() as u64;
        }
        if conn.mp.is_established() {
            while app.sent < app.total {
                let n = (app.total - app.sent)
                    .min(64 * 1024)
                    .min(conn.mp.send_capacity() as u64);
                if n == 0 {
                    break;
                }
                let v: Vec<u8> = (0..n)
                    .map(|k| crate::tcppeer::pattern(app.sent + k))
                    .collect();
                app.sent += conn.mp.send(Bytes::new(v)) as u64;
            }
            if app.sent == app.total && app.received == app.total && !conn.closed_called {
                conn.closed_called = true;
                conn.mp.close();
            }
            if conn.closed_called && conn.mp.data_closed() {
                app.closed = true;
            }
        }
        while let Some((sf, s)) = conn.mp.poll_transmit(now) {
            if let Some(&(l, r)) = conn.addrs.get(sf) {
                Self::emit(l, r, &s, out);
            }
        }
    }

    pub fn next_timeout(&self) -> Option<Time> {
        self.conns.iter().filter_map(|c| c.mp.next_timeout()).min()
    }

    pub fn on_timeout(&mut self, now: Time) {
        for c in &mut self.conns {
            if c.mp.next_timeout().is_some_and(|t| t <= now) {
                c.mp.on_timeout(now);
            }
        }
    }

    /// Per connection: data-level state and per-subflow bytes (for logs).
    pub fn describe(&self) -> String {
        let mut s = format!(
            "mptcp-peer: echoed {} bytes, unknown-token joins {}, plain TCP SYNs {}\n",
            self.echoed_bytes, self.joins_unknown_token, self.plain_tcp_syns
        );
        for c in &self.conns {
            s.push_str(&format!(
                "  conn checksums {} fallback {} {} {:?}\n",
                c.mp.checksums(),
                c.mp.is_fallback(),
                c.mp.describe(),
                c.mp.stats()
            ));
            for (i, sf) in c.mp.subflows().iter().enumerate() {
                let (l, r) = c
                    .addrs
                    .get(i)
                    .copied()
                    .unwrap_or((IpAddr::from([0, 0, 0, 0]), IpAddr::from([0, 0, 0, 0])));
                s.push_str(&format!(
                    "    subflow {i} {l}->{r} {:?} usable {} cc {} bytes_acked {} bytes_received {}\n",
                    sf.tcp.state(),
                    sf.usable(),
                    sf.tcp.cc_name(),
                    sf.tcp.stats().bytes_acked,
                    sf.tcp.stats().bytes_received
                ));
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nf_core::wire::{ip_proto, ipv4, tcp};
    use nf_tcp::RawOpt;

    fn syn_with(opt: MptcpOption) -> Vec<u8> {
        let mut raw = [0u8; 40];
        let n = opt.emit(&mut raw);
        let mut h = nf_tcp::Header {
            src_port: 40001,
            dst_port: 7000,
            seq: Seq(5),
            flags: tcp::flags::SYN,
            window: 1000,
            ..Default::default()
        };
        h.opts.mptcp = RawOpt::new(&raw[..n]);
        let seg = nf_tcp::Segment::<Bytes> {
            hdr: h,
            payload: nf_tcp::Gather::default(),
        };
        let (src, dst) = (IpAddr::from([100, 64, 0, 2]), IpAddr::from([192, 0, 2, 1]));
        let t = nf_tcp::wirefmt::emit(&seg, src, dst);
        crate::frames::ipv4_packet(
            [100, 64, 0, 2].into(),
            [192, 0, 2, 1].into(),
            ip_proto::TCP,
            &t,
        )
    }

    #[test]
    fn join_with_an_unknown_token_gets_a_rst_and_is_counted() {
        let mut p = MptcpPeer::new(7000, 1, nf_tcp::cc::CcKind::Cubic, false);
        p.on_packet(
            0,
            &syn_with(MptcpOption::JoinSyn {
                backup: false,
                addr_id: 1,
                token: 0xdead_beef,
                nonce: 9,
            }),
        );
        assert_eq!(p.joins_unknown_token, 1);
        let mut out = vec![];
        p.poll(1, &mut |pkt| out.push(pkt));
        assert_eq!(out.len(), 1);
        let ip = ipv4::Packet::new_checked(&out[0][..]).unwrap();
        let t = tcp::Packet::new_checked(ip.payload()).unwrap();
        assert_eq!(t.flags() & tcp::flags::RST, tcp::flags::RST);
        assert_eq!((t.dst_port(), t.ack_number()), (40001, 6));
    }
}
