//! What the DPDK loop of `hagw tcp-peer` / `hagw mptcp-peer` drives: an
//! endpoint on the gateway's own addresses that consumes and produces IP
//! packets.

use nf_core::sim::Time;

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
