//! What the DPDK loop of `hagw tcp-peer` / `hagw mptcp-peer` drives: an
//! endpoint on the gateway's own addresses that consumes and produces IP
//! packets.

use nf_core::chunk::{Bytes, Chunk};
use nf_core::sim::Time;
use nf_core::wire::{ip_proto, ipv4, ipv6};
use nf_tcp::{Incoming, Segment};
use std::collections::VecDeque;
use std::net::IpAddr;

/// Parses an IPv4/IPv6 packet carrying TCP into (source, destination,
/// segment); the payload is copied into `Bytes` (a test endpoint).
pub fn parse_tcp_packet(ip: &[u8]) -> Option<(IpAddr, IpAddr, Incoming<Bytes>)> {
    let (src, dst, tcp) = match ip.first().map(|b| b >> 4) {
        Some(4) => {
            let p = ipv4::Packet::new_checked(ip)
                .ok()
                .filter(|p| p.protocol() == ip_proto::TCP)?;
            (
                IpAddr::V4(p.src_addr()),
                IpAddr::V4(p.dst_addr()),
                &ip[p.header_len()..usize::from(p.total_len())],
            )
        }
        Some(6) => {
            let p = ipv6::Packet::new_checked(ip)
                .ok()
                .filter(|p| p.next_header() == ip_proto::TCP)?;
            (
                IpAddr::V6(p.src_addr()),
                IpAddr::V6(p.dst_addr()),
                &ip[ipv6::HEADER_LEN..ipv6::HEADER_LEN + usize::from(p.payload_len())],
            )
        }
        _ => return None,
    };
    let seg = nf_tcp::wirefmt::parse(tcp, Some((src, dst)), |s: &[u8]| Bytes::from(s)).ok()?;
    Some((src, dst, seg))
}

/// Wraps a segment from `local` to `remote` into an IP packet.
pub fn emit_tcp_packet(
    local: IpAddr,
    remote: IpAddr,
    seg: &Segment<Bytes>,
    out: &mut impl FnMut(Vec<u8>),
) {
    let tcp = nf_tcp::wirefmt::emit(seg, local, remote);
    let pkt = match (local, remote) {
        (IpAddr::V4(s), IpAddr::V4(d)) => crate::frames::ipv4_packet(s, d, ip_proto::TCP, &tcp),
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let r = ipv6::Repr {
                src: s,
                dst: d,
                next_header: ip_proto::TCP,
                payload_len: tcp.len(),
                hop_limit: 64,
                traffic_class: 0,
                flow_label: 0,
            };
            let mut b = vec![0u8; ipv6::HEADER_LEN + tcp.len()];
            r.emit(&mut b[..ipv6::HEADER_LEN]);
            b[ipv6::HEADER_LEN..].copy_from_slice(&tcp);
            b
        }
        _ => return,
    };
    out(pkt);
}

pub trait LocalPeer {
    fn on_packet(&mut self, now: Time, ip: &[u8]);
    fn poll(&mut self, now: Time, out: &mut dyn FnMut(Vec<u8>));
    fn next_timeout(&self) -> Option<Time>;
    fn on_timeout(&mut self, now: Time);
    /// For an active endpoint: the final result once known.
    fn outcome(&self) -> Option<Result<u64, String>>;
    fn describe(&self) -> String;
}

impl LocalPeer for crate::tcppeer::TcpPeer {
    fn on_packet(&mut self, now: Time, ip: &[u8]) {
        crate::tcppeer::TcpPeer::on_packet(self, now, ip)
    }
    fn poll(&mut self, now: Time, out: &mut dyn FnMut(Vec<u8>)) {
        crate::tcppeer::TcpPeer::poll(self, now, &mut |p| out(p))
    }
    fn next_timeout(&self) -> Option<Time> {
        crate::tcppeer::TcpPeer::next_timeout(self)
    }
    fn on_timeout(&mut self, now: Time) {
        crate::tcppeer::TcpPeer::on_timeout(self, now)
    }
    fn outcome(&self) -> Option<Result<u64, String>> {
        crate::tcppeer::TcpPeer::outcome(self)
    }
    fn describe(&self) -> String {
        let mut s = crate::tcppeer::TcpPeer::describe(self);
        s.push_str(&format!("tcp-peer: echoed {} bytes\n", self.echoed_bytes));
        s
    }
}

impl LocalPeer for crate::mptcppeer::MptcpPeer {
    fn on_packet(&mut self, now: Time, ip: &[u8]) {
        crate::mptcppeer::MptcpPeer::on_packet(self, now, ip)
    }
    fn poll(&mut self, now: Time, out: &mut dyn FnMut(Vec<u8>)) {
        crate::mptcppeer::MptcpPeer::poll(self, now, &mut |p| out(p))
    }
    fn next_timeout(&self) -> Option<Time> {
        crate::mptcppeer::MptcpPeer::next_timeout(self)
    }
    fn on_timeout(&mut self, now: Time) {
        crate::mptcppeer::MptcpPeer::on_timeout(self, now)
    }
    fn outcome(&self) -> Option<Result<u64, String>> {
        crate::mptcppeer::MptcpPeer::outcome(self)
    }
    fn describe(&self) -> String {
        crate::mptcppeer::MptcpPeer::describe(self)
    }
}

/// A byte stream the echo endpoints read from and write back to (a TCP
/// connection, or an MPTCP connection at the data level).
pub trait Stream {
    fn send(&mut self, data: Bytes) -> usize;
    fn recv(&mut self) -> Option<Bytes>;
    fn send_capacity(&self) -> usize;
}

impl Stream for nf_tcp::Connection<Bytes> {
    fn send(&mut self, data: Bytes) -> usize {
        nf_tcp::Connection::send(self, data)
    }
    fn recv(&mut self) -> Option<Bytes> {
        nf_tcp::Connection::recv(self)
    }
    fn send_capacity(&self) -> usize {
        nf_tcp::Connection::send_capacity(self)
    }
}

impl Stream for nf_mptcp::conn::MpConnection<Bytes> {
    fn send(&mut self, data: Bytes) -> usize {
        nf_mptcp::conn::MpConnection::send(self, data)
    }
    fn recv(&mut self) -> Option<Bytes> {
        nf_mptcp::conn::MpConnection::recv(self)
    }
    fn send_capacity(&self) -> usize {
        nf_mptcp::conn::MpConnection::send_capacity(self)
    }
}

/// Echo with flow control: sends what is `pending`, then reads only what
/// can be sent back. Returns the bytes echoed.
pub fn echo(conn: &mut impl Stream, pending: &mut VecDeque<Bytes>) -> u64 {
    let mut echoed = 0;
    loop {
        while let Some(front) = pending.pop_front() {
            let took = conn.send(front.clone());
            echoed += took as u64;
            if took < front.len() {
                pending.push_front(front.slice(took, front.len()));
                break;
            }
        }
        if !pending.is_empty() || conn.send_capacity() == 0 {
            return echoed;
        }
        match conn.recv() {
            Some(d) => pending.push_back(d),
            None => return echoed,
        }
    }
}
