//! The per-worker packet pipeline: parse → classify → (answer | route) →
//! neighbour resolve → per-port TX queues. Run to completion, one packet at a
//! time, no locks; the only allocations are on the miss paths (a new
//! neighbour entry, an mbuf for an ARP/ND probe or an ICMP error).
//!
//! The pipeline is generic over the packet buffer, so the same code runs on
//! DPDK mbufs in production and on `VecBuf` in tests and benches.

mod arp;
mod fastpath;
mod fragment;
mod ipv4;
mod ipv6;
#[cfg(test)]
mod tests;

use crate::config::{Config, PortRole};
use crate::convert::session::Emit;
use crate::convert::{Converter, Verdict};
use crate::stats::{Drop, Event, Layer, Side, WorkerStats};
use nf_core::neighbour::{NeighbourConfig, NeighbourTable, Resolve};
use nf_core::ratelimit::TokenBucket;
use nf_core::route::{NextHop, RoutingTable};
use nf_core::wire::{ethernet, EtherType, EthernetAddress};
use nf_core::PacketBuf;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

/// Allocates empty packet buffers (an mbuf pool in production).
pub trait BufPool<B> {
    fn alloc(&mut self) -> Option<B>;
}

/// What the pipeline knows about a port.
#[derive(Clone, Debug)]
pub struct PortCtx {
    pub name: String,
    pub role: PortRole,
    pub mac: EthernetAddress,
    pub vlan: Option<u16>,
    pub mtu: u16,
    pub v4: Vec<nf_core::wire::ipv4::Cidr>,
    pub v6: Vec<nf_core::wire::ipv6::Cidr>,
    /// fe80::/64 address derived from the MAC (RFC 4291 App. A).
    pub link_local: Ipv6Addr,
    /// The NIC verifies received IPv4 header checksums and flags each
    /// frame ([`nf_core::RxChecksum`]); set by [`Pipeline::set_rx_ip_checksum`].
    pub rx_ip_checksum: bool,
    /// The same for TCP checksums; set by [`Pipeline::set_rx_tcp_checksum`].
    pub rx_tcp_checksum: bool,
    /// The NIC computes the TCP checksum of packets hagw builds and sends
    /// here; set by [`Pipeline::set_tx_tcp_checksum`].
    pub tx_tcp_checksum: bool,
}

impl PortCtx {
    pub fn new(cfg: &crate::config::PortConfig, mac: EthernetAddress) -> Self {
        PortCtx {
            name: cfg.name.clone(),
            role: cfg.role,
            mac,
            vlan: cfg.vlan,
            mtu: cfg.mtu,
            v4: cfg.v4.clone(),
            v6: cfg.v6.clone(),
            link_local: link_local_from_mac(mac),
            rx_ip_checksum: false,
            rx_tcp_checksum: false,
            tx_tcp_checksum: false,
        }
    }
    /// The link header's length on this port: Ethernet, tagged where the
    /// port has a VLAN.
    pub fn l2_len(&self) -> usize {
        ethernet::HEADER_LEN
            + if self.vlan.is_some() {
                ethernet::VLAN_TAG_LEN
            } else {
                0
            }
    }
    /// Our IPv4 address on this port that shares a prefix with `peer`, else
    /// the first one.
    pub fn v4_for(&self, peer: Ipv4Addr) -> Option<Ipv4Addr> {
        self.v4
            .iter()
            .find(|c| c.contains(peer))
            .or(self.v4.first())
            .map(|c| c.addr)
    }
    /// Our IPv6 source for `peer`: link-local for link-local peers, else a
    /// global address sharing its prefix, else the first global.
    pub fn v6_for(&self, peer: Ipv6Addr) -> Ipv6Addr {
        if is_link_local(peer) {
            return self.link_local;
        }
        self.v6
            .iter()
            .find(|c| c.contains(peer))
            .or(self.v6.first())
            .map_or(self.link_local, |c| c.addr)
    }
    pub fn has_v4(&self, a: Ipv4Addr) -> bool {
        self.v4.iter().any(|c| c.addr == a)
    }
    pub fn has_v6(&self, a: Ipv6Addr) -> bool {
        a == self.link_local || self.v6.iter().any(|c| c.addr == a)
    }
    /// The subnet broadcast address of any connected IPv4 prefix.
    pub fn is_v4_broadcast(&self, a: Ipv4Addr) -> bool {
        self.v4
            .iter()
            .any(|c| c.len < 31 && c.contains(a) && u32::from(a) | c.mask() == u32::MAX)
    }
}

/// The word and bit of `a` in [`Pipeline`]'s special-address filter.
#[inline(always)]
pub(crate) fn special_v4_bit(a: u32) -> (usize, u64) {
    let h = a.wrapping_mul(0x9e37_79b1) >> 24;
    ((h >> 6) as usize, 1u64 << (h & 63))
}

pub fn is_link_local(a: Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}

/// Modified EUI-64 interface identifier in fe80::/64.
pub fn link_local_from_mac(m: EthernetAddress) -> Ipv6Addr {
    let m = m.0;
    Ipv6Addr::from([
        0xfe,
        0x80,
        0,
        0,
        0,
        0,
        0,
        0,
        m[0] ^ 0x02,
        m[1],
        m[2],
        0xff,
        0xfe,
        m[3],
        m[4],
        m[5],
    ])
}

/// Settings of a pipeline.
#[derive(Clone, Copy, Debug)]
pub struct PipelineLimits {
    pub neighbours: usize,
    pub neighbour_pending: usize,
    pub icmp_errors_per_s: u64,
    pub icmp_errors_burst: u64,
    /// Packets a per-port TX queue holds between drains.
    pub tx_queue: usize,
}

impl PipelineLimits {
    pub fn from_config(cfg: &Config) -> Self {
        PipelineLimits {
            neighbours: cfg.limits.neighbours,
            neighbour_pending: cfg.limits.neighbour_pending,
            icmp_errors_per_s: cfg.limits.icmp_errors_per_s,
            icmp_errors_burst: cfg.limits.icmp_errors_burst,
            // a conversion point emits more than it receives in a burst
            // (ACKs on both sides, a window's worth after an ACK)
            tx_queue: if cfg.raw.conversion.enabled {
                2048
            } else {
                4 * cfg.burst.max(32)
            },
        }
    }
}

/// Builds the routing table: connected prefixes of every port, then the
/// configured routes.
pub fn routing_table(cfg: &Config) -> RoutingTable {
    let mut t = RoutingTable::default();
    for (i, p) in cfg.ports.iter().enumerate() {
        let nh = NextHop {
            port: i as u16,
            gateway: None,
        };
        for c in &p.v4 {
            t.add_v4(c.network(), c.len, nh);
        }
        for c in &p.v6 {
            t.add_v6(Ipv6Addr::from(u128::from(c.addr) & c.mask()), c.len, nh);
        }
    }
    for r in &cfg.routes {
        let nh = NextHop {
            port: r.port as u16,
            gateway: r.gateway,
        };
        match r.prefix {
            IpAddr::V4(a) => t.add_v4(a, r.len, nh),
            IpAddr::V6(a) => t.add_v6(a, r.len, nh),
        }
    }
    t.freeze();
    t
}

/// One worker's pipeline.
pub struct Pipeline<B: PacketBuf, A: BufPool<B>> {
    pub(crate) ports: Vec<PortCtx>,
    pub(crate) routes: RoutingTable,
    pub(crate) arp: NeighbourTable<(u16, Ipv4Addr), B>,
    pub(crate) nd: NeighbourTable<(u16, Ipv6Addr), B>,
    pub(crate) icmp_bucket: TokenBucket,
    pub(crate) pool: A,
    tx: Vec<Vec<B>>,
    tx_cap: usize,
    pub(crate) stats: Arc<WorkerStats>,
    /// Every address of every port, flat, for the "is it for us" test.
    pub(crate) local_v4: Vec<Ipv4Addr>,
    /// A 256-bit filter over `local_v4` and every connected prefix's
    /// broadcast address: a clear bit proves an IPv4 destination is
    /// neither, so the fast path skips the exact tests.
    pub(crate) special_v4: [u64; 4],
    pub(crate) local_v6: Vec<Ipv6Addr>,
    next_timer_ns: u64,
    // scratch lists for timer processing (reused, no allocation in steady state)
    probes4: Vec<(u16, Ipv4Addr, Option<EthernetAddress>)>,
    probes6: Vec<(u16, Ipv6Addr, Option<EthernetAddress>)>,
    lost: Vec<(u16, B)>,
    /// TCP packets for our own addresses, for a local endpoint (the
    /// `hagw tcp-peer` interop harness); 0 = none accepted.
    local_tcp: std::collections::VecDeque<B>,
    local_tcp_cap: usize,
    /// The conversion point, when `[conversion] enabled`.
    pub(crate) conv: Option<Box<Converter<B::Chunk>>>,
    /// The converter NATs routed traffic: UDP goes past it too (read per
    /// burst by the fast path, kept here rather than behind `conv`).
    pub(super) nat_udp: bool,
    /// Every port sends chained buffers: the converter's packets carry
    /// their payload by reference (else it is copied behind the headers).
    tx_chains: bool,
    /// Packets of another worker's sessions: (worker, input port, packet
    /// from its link header on), for the caller to hand over.
    handoff: Vec<(u16, u16, B)>,
    /// The fast path's last forwarding decision, kept across packets and
    /// bursts until its neighbour entry expires or a packet takes the full
    /// pipeline (`process_slow` drops it: the only place that does).
    fast_memo: fastpath::Adjacency,
}

/// How often neighbour timers run.
const TIMER_INTERVAL_NS: u64 = 10_000_000;

/// The conversion sessions' packets, built and routed as the engines give
/// them.
struct Sender<'a, B: PacketBuf, A: BufPool<B>> {
    pipe: &'a mut Pipeline<B, A>,
    now_ns: u64,
}

impl<B: PacketBuf, A: BufPool<B>> Emit<B::Chunk> for Sender<'_, B, A> {
    fn emit(&mut self, src: IpAddr, dst: IpAddr, side: Side, seg: &nf_tcp::Segment<B::Chunk>) {
        self.pipe.send_segment(self.now_ns, src, dst, side, seg);
    }
}

impl<B: PacketBuf, A: BufPool<B>> Pipeline<B, A> {
    pub fn new(
        ports: Vec<PortCtx>,
        routes: RoutingTable,
        limits: PipelineLimits,
        pool: A,
        stats: Arc<WorkerStats>,
    ) -> Self {
        let ncfg = NeighbourConfig {
            max_entries: limits.neighbours,
            max_pending_total: limits.neighbour_pending,
            ..NeighbourConfig::default()
        };
        let n = ports.len();
        let local_v4 = ports
            .iter()
            .flat_map(|p| p.v4.iter().map(|c| c.addr))
            .collect();
        let local_v6 = ports
            .iter()
            .flat_map(|p| p.v6.iter().map(|c| c.addr).chain([p.link_local]))
            .collect();
        let mut special_v4 = [0u64; 4];
        for a in ports.iter().flat_map(|p| {
            p.v4.iter()
                .flat_map(|c| [u32::from(c.addr), u32::from(c.addr) | !c.mask()])
        }) {
            let (w, bit) = special_v4_bit(a);
            special_v4[w] |= bit;
        }
        Pipeline {
            local_v4,
            special_v4,
            local_v6,
            ports,
            routes,
            arp: NeighbourTable::new(ncfg),
            nd: NeighbourTable::new(ncfg),
            icmp_bucket: TokenBucket::new(limits.icmp_errors_per_s, limits.icmp_errors_burst),
            pool,
            tx: (0..n)
                .map(|_| Vec::with_capacity(limits.tx_queue))
                .collect(),
            tx_cap: limits.tx_queue,
            stats,
            next_timer_ns: 0,
            probes4: Vec::with_capacity(64),
            probes6: Vec::with_capacity(64),
            lost: Vec::with_capacity(64),
            local_tcp: std::collections::VecDeque::new(),
            local_tcp_cap: 0,
            conv: None,
            nat_udp: false,
            tx_chains: true,
            handoff: Vec::new(),
            fast_memo: fastpath::Adjacency::NONE,
        }
    }

    /// Packets that belong to other workers' sessions (DESIGN.md §4):
    /// (worker, input port, packet); the caller drains it after each burst
    /// and the owner runs them through its own pipeline.
    pub fn handoffs(&mut self) -> &mut Vec<(u16, u16, B)> {
        &mut self.handoff
    }

    /// Queues a packet (from its link header on, received on `port`) for
    /// worker `w`, which owns its session.
    pub(crate) fn hand_off(&mut self, w: u16, port: u16, buf: B) {
        self.stats.conv.handoffs.inc();
        self.handoff.push((w, port, buf));
    }

    /// Whether every port can send chained buffers (PMDs without
    /// `RTE_ETH_TX_OFFLOAD_MULTI_SEGS` cannot): when not, the converter's
    /// packets get their payload copied behind the headers instead.
    pub fn set_tx_chains(&mut self, on: bool) {
        self.tx_chains = on;
    }

    /// Whether input port `port` has the NIC verify IPv4 header checksums
    /// (`RTE_ETH_RX_OFFLOAD_IPV4_CKSUM`): the fast path then takes a frame
    /// flagged good without summing its header again, and leaves one
    /// flagged bad to the full pipeline.
    pub fn set_rx_ip_checksum(&mut self, port: u16, on: bool) {
        if let Some(p) = self.ports.get_mut(usize::from(port)) {
            p.rx_ip_checksum = on;
        }
    }

    /// Whether input port `port` has the NIC verify TCP checksums
    /// (`RTE_ETH_RX_OFFLOAD_TCP_CKSUM`): the conversion point then takes a
    /// session's segment flagged good without summing it, drops one
    /// flagged bad as it drops one whose sum is wrong, and verifies the
    /// others itself.
    pub fn set_rx_tcp_checksum(&mut self, port: u16, on: bool) {
        if let Some(p) = self.ports.get_mut(usize::from(port)) {
            p.rx_tcp_checksum = on;
        }
    }

    /// Whether output port `port`'s NIC computes TCP checksums
    /// (`RTE_ETH_TX_OFFLOAD_TCP_CKSUM`): the segments the conversion point
    /// builds for it then leave their payload unsummed.
    pub fn set_tx_tcp_checksum(&mut self, port: u16, on: bool) {
        if let Some(p) = self.ports.get_mut(usize::from(port)) {
            p.tx_tcp_checksum = on;
        }
    }

    /// Turns the conversion point on: TCP from the access ports and toward
    /// NAT addresses goes through `conv` first.
    pub fn enable_conversion(&mut self, mut conv: Converter<B::Chunk>) {
        let mtu = |r: PortRole| {
            self.ports
                .iter()
                .filter(|p| p.role == r)
                .map(|p| p.mtu)
                .min()
                .unwrap_or(1500)
        };
        conv.set_mtus(
            mtu(PortRole::AccessFixed),
            mtu(PortRole::AccessCellular),
            mtu(PortRole::Internet),
        );
        self.nat_udp = conv.nats_routed();
        self.conv = Some(Box::new(conv));
    }

    /// Tells the conversion point that `port`'s link went down or up: its
    /// advertised addresses are withdrawn (REMOVE_ADDR) or announced again.
    pub fn set_port_up(&mut self, port: u16, up: bool) {
        let Some(pc) = self.ports.get(usize::from(port)) else {
            return;
        };
        let addrs: Vec<IpAddr> = pc
            .v4
            .iter()
            .map(|c| IpAddr::V4(c.addr))
            .chain(pc.v6.iter().map(|c| IpAddr::V6(c.addr)))
            .collect();
        if let Some(c) = self.conv.as_mut() {
            c.port_state(&addrs, up);
        }
    }

    pub fn converter(&self) -> Option<&Converter<B::Chunk>> {
        self.conv.as_deref()
    }

    /// Runs the conversion point's timers and touched sessions, sending
    /// what they give as they give it, then what the converter queued.
    pub fn poll_conversion(&mut self, now_ns: u64) {
        // out of the pipeline while it runs, so that the sessions' segments
        // are built into packets and routed as the engines give them
        let Some(mut c) = self.conv.take() else {
            return;
        };
        // what the input queued (answers to the packets) goes first, then
        // the sessions' segments, then what the poll queued (sessions its
        // sweeps ended)
        self.send_queued(now_ns, &mut c);
        c.poll(now_ns, &mut Sender { pipe: self, now_ns });
        self.send_queued(now_ns, &mut c);
        self.conv = Some(c);
    }

    /// The side of the conversion point input port `port` is on (`None`:
    /// a port of none, such as a LAN).
    pub(crate) fn port_side(&self, port: u16) -> Option<Side> {
        match self.ports.get(usize::from(port)).map(|p| p.role) {
            Some(PortRole::AccessFixed) => Some(Side::Fixed),
            Some(PortRole::AccessCellular) => Some(Side::Cellular),
            Some(PortRole::Internet) => Some(Side::Internet),
            _ => None,
        }
    }

    /// Offers a TCP packet (`l2` bytes of link header in front) to the
    /// conversion point.
    pub(crate) fn convert_input(
        &mut self,
        now_ns: u64,
        port: u16,
        buf: &mut B,
        l2: usize,
        local: bool,
    ) -> Verdict {
        let side = self.port_side(port);
        let pc = self.ports.get(usize::from(port));
        // the NIC's verdict counts only where the port was asked for it
        let l4 = if pc.is_some_and(|p| p.rx_tcp_checksum) {
            buf.rx_l4_checksum()
        } else {
            nf_core::RxChecksum::Unknown
        };
        let Some(c) = self.conv.as_mut() else {
            return Verdict::Pass;
        };
        // the touched sessions run once per burst, from poll_conversion
        c.input(now_ns, side, local, buf, l2, l4)
    }

    /// Builds and routes the packets `c` queued, emptying its queue (the
    /// allocation is kept).
    fn send_queued(&mut self, now_ns: u64, c: &mut Converter<B::Chunk>) {
        let q = c.outgoing();
        // read in place (a segment is some 300 bytes: not moved again)
        for o in q.iter() {
            self.send_segment(now_ns, o.src, o.dst, o.side, &o.seg);
        }
        q.clear();
    }

    /// Builds one conversion packet into a buffer from the pool and routes it.
    fn send_segment(
        &mut self,
        now_ns: u64,
        src: IpAddr,
        dst: IpAddr,
        side: Side,
        seg: &nf_tcp::Segment<B::Chunk>,
    ) {
        // routed first: whether the egress NIC sums the segment decides how
        // it is built
        let Some(nh) = self.next_hop(0, dst) else {
            return self.stats.dropped(Drop::NoRoute);
        };
        let offload = self
            .ports
            .get(usize::from(nh.port))
            .filter(|p| p.tx_tcp_checksum)
            .map(PortCtx::l2_len);
        let Some(mut buf) = self.pool.alloc() else {
            return self.stats.dropped(Drop::NoMbuf);
        };
        let Some(copied) =
            crate::convert::emit::tcp_packet(&mut buf, src, dst, seg, self.tx_chains, offload)
        else {
            return self.stats.dropped(Drop::NoMbuf);
        };
        let st = &self.stats.conv;
        st.tx_packets.inc(side as usize);
        st.tx_bytes.0[side as usize].add(buf.pkt_len() as u64);
        st.payload_bytes_copied.add(copied as u64);
        self.output(now_ns, nh.port, nh.gateway.unwrap_or(dst), buf, 0);
    }

    /// Queues TCP packets addressed to the gateway for [`Pipeline::take_local_tcp`]
    /// (at most `cap` waiting) instead of dropping them.
    pub fn enable_local_tcp(&mut self, cap: usize) {
        self.local_tcp_cap = cap;
        self.local_tcp.reserve(cap);
    }

    /// The next local TCP packet (the buffer starts at its IP header).
    pub fn take_local_tcp(&mut self) -> Option<B> {
        self.local_tcp.pop_front()
    }

    pub(crate) fn deliver_local_tcp(&mut self, buf: B) {
        if self.local_tcp.len() < self.local_tcp_cap {
            self.local_tcp.push_back(buf);
        } else {
            self.stats.dropped(Drop::LocalUnhandled);
        }
    }

    /// Routes and sends an IP packet built locally (buffer starts at the IP
    /// header).
    pub fn send_ip(&mut self, now_ns: u64, buf: B) {
        let dst = match buf.data().first().map(|b| b >> 4) {
            Some(4) if buf.len() >= 20 => {
                IpAddr::V4(nf_core::wire::ipv4::Packet::new_unchecked(buf.data()).dst_addr())
            }
            Some(6) if buf.len() >= 40 => {
                IpAddr::V6(nf_core::wire::ipv6::Packet::new_unchecked(buf.data()).dst_addr())
            }
            _ => return self.stats.dropped(Drop::Martian),
        };
        self.route_local(now_ns, 0, dst, buf);
    }

    pub fn ports(&self) -> &[PortCtx] {
        &self.ports
    }
    pub fn stats(&self) -> &WorkerStats {
        &self.stats
    }

    /// The packets queued for `port`; the driver transmits from the front
    /// and leaves what the NIC did not take.
    pub fn tx_queue(&mut self, port: usize) -> Option<&mut Vec<B>> {
        self.tx.get_mut(port)
    }

    /// Handles one received frame: the IPv4 fast path, else the full pipeline.
    pub fn process(&mut self, now_ns: u64, port: u16, buf: B) {
        let buf = match self.ingress(port) {
            Some(ing) => {
                self.expire_memo(now_ns);
                let fwd = match (ing.tcp_slow, ing.nic_checksum) {
                    (true, false) => self.fast_forward_v4::<true, false>(&ing, now_ns, buf),
                    (false, false) => self.fast_forward_v4::<false, false>(&ing, now_ns, buf),
                    (true, true) => self.fast_forward_v4::<true, true>(&ing, now_ns, buf),
                    (false, true) => self.fast_forward_v4::<false, true>(&ing, now_ns, buf),
                };
                match fwd {
                    Ok(()) => return self.stats.event(Event::RoutedV4),
                    Err(buf) => buf,
                }
            }
            None => buf,
        };
        self.process_slow(now_ns, port, buf);
    }

    /// The full pipeline for one frame.
    #[inline(never)]
    fn process_slow(&mut self, now_ns: u64, port: u16, buf: B) {
        // it may learn a neighbour: the fast path decides afresh
        self.fast_memo = fastpath::Adjacency::NONE;
        let Some(pc) = self.ports.get(usize::from(port)) else {
            return;
        };
        // scattered receive (a frame over the mbuf's size): the pipeline
        // reads headers and payload from the first segment only
        if buf.segments() != 1 {
            return self.stats.dropped(Drop::MultiSegment);
        }
        // The zero-copy view is read field by field: no Repr is built on the
        // fast path.
        let (vlan, dst, ethertype, l2) = match ethernet::Frame::new_checked(buf.data()) {
            Ok(f) => (f.vlan_id(), f.dst_addr(), f.ethertype(), f.header_len()),
            Err(e) => return self.stats.parse_error(Layer::Ethernet, e),
        };
        if vlan != pc.vlan {
            return self.stats.dropped(Drop::VlanMismatch);
        }
        if dst.is_unicast() && dst != pc.mac {
            return self.stats.dropped(Drop::NotForUs);
        }
        match ethertype {
            EtherType::Ipv4 => self.ipv4_input(now_ns, port, buf, l2),
            EtherType::Ipv6 => self.ipv6_input(now_ns, port, buf, l2),
            EtherType::Arp => self.arp_input(now_ns, port, buf, l2),
            // Q-in-Q is not supported on hagw ports.
            EtherType::Vlan => self
                .stats
                .parse_error(Layer::Ethernet, nf_core::wire::Error::Malformed),
            EtherType::Unknown(_) => self.stats.dropped(Drop::UnknownEthertype),
        }
    }

    /// Runs neighbour timers (probes, give-ups) at most every 10 ms.
    pub fn poll_timers(&mut self, now_ns: u64) {
        if now_ns < self.next_timer_ns {
            return;
        }
        self.next_timer_ns = now_ns + TIMER_INTERVAL_NS;
        let (probes4, lost) = (&mut self.probes4, &mut self.lost);
        self.arp.poll(
            now_ns,
            |(p, ip), mac| probes4.push((p, ip, mac)),
            |(p, _), b| lost.push((p, b)),
        );
        let (probes6, lost) = (&mut self.probes6, &mut self.lost);
        self.nd.poll(
            now_ns,
            |(p, ip), mac| probes6.push((p, ip, mac)),
            |(p, _), b| lost.push((p, b)),
        );
        while let Some((port, ip, mac)) = self.probes4.pop() {
            self.send_arp_request(port, ip, mac);
        }
        while let Some((port, ip, mac)) = self.probes6.pop() {
            self.send_neighbor_solicit(port, ip, mac);
        }
        while let Some((port, buf)) = self.lost.pop() {
            self.stats.dropped(Drop::NeighbourUnresolved);
            self.unreachable_after_resolution(now_ns, port, buf);
        }
        self.stats.arp_entries.set(self.arp.len() as u64);
        self.stats.nd_entries.set(self.nd.len() as u64);
        self.stats
            .neighbour_pending
            .set((self.arp.pending() + self.nd.pending()) as u64);
    }

    /// Queues a finished frame for `port`.
    #[inline]
    pub(crate) fn enqueue(&mut self, port: u16, buf: B) {
        match self.tx.get_mut(usize::from(port)) {
            Some(q) if q.len() < self.tx_cap => q.push(buf),
            _ => self.stats.dropped(Drop::TxQueueFull),
        }
    }

    /// Prepends the Ethernet header of `port` (destination filled later).
    #[inline]
    pub(crate) fn prepend_l2(
        &self,
        port: u16,
        buf: &mut B,
        ethertype: EtherType,
        dst: EthernetAddress,
    ) -> bool {
        let Some(pc) = self.ports.get(usize::from(port)) else {
            return false;
        };
        let eth = ethernet::Repr {
            src: pc.mac,
            dst,
            vlan: pc.vlan,
            ethertype,
        };
        match buf.prepend(eth.header_len()) {
            Some(h) => {
                eth.emit(h);
                true
            }
            None => {
                self.stats.dropped(Drop::NoHeadroom);
                false
            }
        }
    }

    /// Resolves `next` on `port` and sends (or queues) the IP packet in
    /// `buf`. `l2` is the length of the link header still in front of the IP
    /// header (0 for locally built packets): when it already has the egress
    /// port's size it is rewritten in place, so forwarding moves no bytes.
    pub(crate) fn output(&mut self, now_ns: u64, port: u16, next: IpAddr, mut buf: B, l2: usize) {
        let Some(pc) = self.ports.get(usize::from(port)) else {
            return;
        };
        let ethertype = if next.is_ipv4() {
            EtherType::Ipv4
        } else {
            EtherType::Ipv6
        };
        let known = match next {
            IpAddr::V4(a) => self.arp.get(now_ns, (port, a)),
            IpAddr::V6(a) => self.nd.get(now_ns, (port, a)),
        };
        let eth = ethernet::Repr {
            src: pc.mac,
            dst: known.unwrap_or_default(),
            vlan: pc.vlan,
            ethertype,
        };
        let need = eth.header_len();
        if l2 == need {
            if let Some(h) = buf.data_mut().get_mut(..need) {
                eth.emit(h);
            }
        } else {
            let h = if buf.adj(l2) { buf.prepend(need) } else { None };
            match h {
                Some(h) => eth.emit(h),
                None => return self.stats.dropped(Drop::NoHeadroom),
            }
        }
        if known.is_some() {
            return self.enqueue(port, buf);
        }
        let r = match next {
            IpAddr::V4(a) => self.arp.resolve(now_ns, (port, a), buf),
            IpAddr::V6(a) => self.nd.resolve(now_ns, (port, a), buf),
        };
        match r {
            Resolve::Hit(mac, mut buf) => {
                set_dst_mac(&mut buf, mac);
                self.enqueue(port, buf);
            }
            Resolve::Queued { probe } => {
                if probe {
                    match next {
                        IpAddr::V4(a) => self.send_arp_request(port, a, None),
                        IpAddr::V6(a) => self.send_neighbor_solicit(port, a, None),
                    }
                }
            }
            Resolve::Dropped(_, nf_core::neighbour::DropReason::TableFull) => {
                self.stats.dropped(Drop::NeighbourTableFull)
            }
            Resolve::Dropped(_, nf_core::neighbour::DropReason::PendingFull) => {
                self.stats.dropped(Drop::NeighbourPendingFull)
            }
        }
    }

    /// Where a packet hagw builds for `dst` leaves: the route's next hop;
    /// link-local IPv6 destinations through `in_port`.
    fn next_hop(&self, in_port: u16, dst: IpAddr) -> Option<NextHop> {
        match dst {
            IpAddr::V6(a) if is_link_local(a) => Some(NextHop {
                port: in_port,
                gateway: None,
            }),
            IpAddr::V4(a) => self.routes.lookup_v4(a).copied(),
            IpAddr::V6(a) => self.routes.lookup_v6(a).copied(),
        }
    }

    /// Routes a locally generated IP packet (echo reply, ICMP error) to
    /// `dst`; link-local IPv6 destinations leave through `in_port`.
    pub(crate) fn route_local(&mut self, now_ns: u64, in_port: u16, dst: IpAddr, buf: B) {
        match self.next_hop(in_port, dst) {
            Some(nh) => self.output(now_ns, nh.port, nh.gateway.unwrap_or(dst), buf, 0),
            None => self.stats.dropped(Drop::NoRoute),
        }
    }

    /// A packet whose next hop never answered: ICMP host/address unreachable
    /// to its source (RFC 1812 §5.2.7.1, RFC 4443 §3.1 code 3).
    fn unreachable_after_resolution(&mut self, now_ns: u64, port: u16, buf: B) {
        let l2 = self
            .ports
            .get(usize::from(port))
            .map_or(ethernet::HEADER_LEN, PortCtx::l2_len);
        let Some(ip) = buf.data().get(l2..) else {
            return;
        };
        match ip.first().map(|b| b >> 4) {
            Some(4) => self.icmp4_error(
                now_ns,
                port,
                ip,
                nf_core::wire::icmpv4::kind::DEST_UNREACHABLE,
                nf_core::wire::icmpv4::unreach::HOST,
                0,
            ),
            Some(6) => self.icmp6_error(
                now_ns,
                port,
                ip,
                nf_core::wire::icmpv6::kind::DEST_UNREACHABLE,
                nf_core::wire::icmpv6::unreach::ADDRESS,
                0,
            ),
            _ => {}
        }
    }
}

#[inline]
pub(crate) fn set_dst_mac<B: PacketBuf>(buf: &mut B, mac: EthernetAddress) {
    if let Some(d) = buf.data_mut().get_mut(0..6) {
        d.copy_from_slice(&mac.0);
    }
}
