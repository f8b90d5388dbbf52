//! The IPv4 forwarding fast path: the common case (untagged, option-less
//! IPv4 unicast to our MAC, valid checksum, TTL > 1, routed, next hop
//! resolved, fits the MTU) rewritten in place. Anything else goes to the
//! full pipeline (`ipv4_input` and friends), which applies the same rules
//! and does the counting, ICMP and neighbour resolution; the fast path only
//! skips work, it never decides differently. One exception: where the NIC
//! verifies header checksums, the fast path takes its verdict instead of
//! summing the header (RFC 1812 §5.2.2 asks that the checksum be verified,
//! not by whom; l3fwd and VPP leave it to the NIC), while the full pipeline
//! always sums.
//!
//! A burst is run in two loops: what the input port contributes (its MAC,
//! whether TCP must pass the conversion point) is read once, and the
//! forwarding decision for a destination (route, egress port, next hop's
//! MAC) is remembered for the following packets, across bursts (bulk
//! traffic arrives in runs to one destination). Routes and ports do not
//! change once the pipeline is built; only the slow path changes the
//! neighbour entry a decision depends on (it learns neighbours, sends
//! probes), so the memory is dropped whenever a packet takes it, and it
//! ends when the entry expires (checked once per burst: within a burst the
//! clock does not move). Keeping it across bursts saves the route and
//! neighbour lookups at each burst's start (some 13 ns per burst on the
//! bench's profile); interleaved A/B runs of `hagw bench forward` gave
//! between 0 and 1.9 ns per packet at 64 bytes, within this machine's
//! noise.
//!
//! Every packet's headers are prefetched when its burst starts, all at
//! once, with the address taken from the mbuf pointer (`Mbuf::prefetch_burst`).
//! This loop used to fetch each packet's headers four packets ahead, as
//! l3fwd does. Interleaved rounds of `hagw bench forward` at 64 bytes,
//! each round's median ns per packet: 28.5-30.2 before, 27.7-29.1 after
//! (six rounds of three runs); 27.7-29.9 against 27.5-28.6 (four rounds of
//! five). Prefetching all at once with the address read from the mbuf's
//! header was no better than before. A burst is at most 32 packets, 32
//! cache lines.
//!
//! The first loop takes the packets that follow the remembered decision,
//! rewrites them where they lie in the burst and stops at the first that
//! does not; they join the egress queue with one copy of their pointers.
//! The second takes the rest one by one, looking the decision up (or
//! handing the packet to the full pipeline). In steady bulk traffic a
//! whole burst goes through the first; before, every packet was pushed to
//! the egress queue on its own (a length load, two bound tests and a
//! store through memory per packet). Interleaved invocations of `hagw
//! bench forward --runs 3` at 64 bytes, ratio pipeline/raw (run-by-run
//! medians): 0.645-0.662 against 0.607-0.616 with `--huge`, 0.708-0.717
//! against 0.685-0.734 with 4 KB pages.
//!
//! Measured on the `hagw bench forward` harness and not kept: a VPP-style
//! staged burst (classify all, route all, resolve all, rewrite all: 48.0
//! against 44.4 ns per packet, before the burst loop); classifying two
//! packets before forwarding either (30.7 against 29.2 ns); collecting a
//! run of packets to one port and queuing it at once (no difference);
//! folding every header test into one bitwise OR and one branch (33.6
//! against 31.2 ns: the predicted branches are cheaper); an inner loop
//! over a run of packets to the remembered destination that holds the
//! egress queue (29.3 against 28.9 ns); each header test on a 16- or
//! 32-bit load of its own against a 32-bit constant, where the 64-bit
//! words need a 64-bit mask in a register per test (15 instructions fewer
//! per packet, no faster: 27.5-29.6 against 27.3-28.4 ns). Again with the
//! memo loop (2026-11-28, `--huge`, three interleaved rounds of three
//! runs): every test's failure as bits ORed into one word, one branch,
//! ratio 0.600-0.613 against 0.626-0.680. Ablations of earlier rounds:
//! without any header test (only the destination read) 0.733-0.754 against
//! 0.633-0.634, without the rewrite's stores 0.658-0.662, without the
//! prefetch 0.639-0.646, with the NIC's checksum verdict instead of the sum
//! no better: the tests' branches are the cost, not the sum.

use super::{BufPool, Pipeline};
use crate::stats::Event;
use nf_core::wire::checksum;
use nf_core::{PacketBuf, RxChecksum};
use std::net::{IpAddr, Ipv4Addr};

/// What the fast path needs of the input port, read once per burst.
#[derive(Clone, Copy)]
pub(super) struct Ingress {
    /// The port's MAC as the first 6 bytes of a frame read little-endian.
    mac: u64,
    /// TCP and ICMP go past the conversion point first.
    pub(super) tcp_slow: bool,
    /// And UDP, when routed traffic is NATed ([`crate::convert::routed`]).
    pub(super) udp_slow: bool,
    /// The NIC flags each frame's IPv4 header checksum.
    pub(super) nic_checksum: bool,
}

/// The forwarding decision for one destination: egress port, its MTU, the
/// Ethernet addresses to write (next hop's, then ours: bytes 0-7 and 8-11
/// of the frame, little-endian).
#[derive(Clone, Copy)]
pub(super) struct Adjacency {
    /// Valid while the clock is before this: the next hop's entry expires.
    until: u64,
    dst: u32,
    port: u16,
    mtu: u16,
    l2: (u64, u32),
}

impl Adjacency {
    /// No decision yet: 0.0.0.0 is never a forwarding destination
    /// (`adjacency` refuses it), and should a packet to it come, an MTU of
    /// 0 fits nothing, so it goes to the full pipeline.
    pub(super) const NONE: Adjacency = Adjacency {
        until: 0,
        dst: 0,
        port: 0,
        mtu: 0,
        l2: (0, 0),
    };
}

impl Adjacency {
    /// A frame of `len` bytes (its 14-byte Ethernet header included) fits
    /// the egress port's MTU.
    #[inline(always)]
    fn fits(&self, len: usize) -> bool {
        len.saturating_sub(14) <= usize::from(self.mtu)
    }
}

/// Eight bytes of `h` from `at`, little-endian (one load).
#[inline(always)]
fn le64(h: &[u8; 34], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&h[at..at + 8]);
    u64::from_le_bytes(w)
}

/// Stage 1: the destination address of a fast-path candidate.
/// Destination-specific tests (martian, ours, broadcast) are left to
/// [`Pipeline::adjacency`], which runs once per destination and burst.
///
/// The 34 bytes of Ethernet and IPv4 header are read as four 64-bit words
/// and a 16-bit one; the tests and the header checksum work on those words
/// (`checksum::sum` over the header reads it again: ~1 ns more per packet).
/// With `NIC` (the port verifies checksums) the NIC's verdict `nic` stands
/// in for the sum: good skips it, bad leaves the frame to the full
/// pipeline, unknown sums as without.
#[inline(always)]
fn classify_v4<const CONV: bool, const NIC: bool>(
    ing: &Ingress,
    d: &[u8],
    nic: RxChecksum,
) -> Option<u32> {
    let h = d.first_chunk::<34>()?;
    // bytes 0-7, 8-15, 16-23, 24-31, 32-33, little-endian
    let (w0, w1, w2, w3) = (le64(h, 0), le64(h, 8), le64(h, 16), le64(h, 24));
    let w4 = u64::from(u16::from_le_bytes([h[32], h[33]]));
    // our MAC; Ethertype 0x0800 (bytes 12-13) and version 4, IHL 5 (14)
    let mut slow = (w0 ^ ing.mac) << 16 != 0;
    slow |= (w1 >> 32) & 0xff_ffff != 0x45_0008;
    // no padding (total length, bytes 16-17); no fragment: MF and offset
    // clear (bytes 20-21, DF aside); TTL > 1 (22)
    slow |= 14 + usize::from((w2 as u16).swap_bytes()) != d.len();
    slow |= (w2 >> 32) & 0xff3f != 0;
    let (ttl, proto) = ((w2 >> 48) as u8, (w2 >> 56) as u8);
    slow |= ttl <= 1;
    // TCP (and ICMP errors about it) go past the conversion point first,
    // and UDP past its NAT
    if CONV {
        slow |= (proto == 6) | (proto == 1) | (ing.udp_slow & (proto == 17));
    }
    // martian sources (byte 26, the source's first): the slow path counts them
    let s8 = (w3 >> 16) as u8;
    slow |= (s8.wrapping_sub(1) >= 223) | (s8 == 127);
    // RFC 1071 §2(B): the header's 16-bit words (bytes 14-33) summed in
    // any byte order (a valid header sums to 0xffff either way): the 32-bit
    // halves of bytes 16-31 and the 16-bit words at each end, no carry out
    // of 64 bits, then folded to 16 bits
    if !NIC || nic == RxChecksum::Unknown {
        let acc =
            (w2 & 0xffff_ffff) + (w2 >> 32) + (w3 & 0xffff_ffff) + (w3 >> 32) + (w1 >> 48) + w4;
        slow |= checksum::fold64_rotate(acc) != 0xffff;
    } else {
        slow |= nic == RxChecksum::Bad;
    }
    if slow {
        return None;
    }
    // bytes 30-33
    Some((((w3 >> 48) | (w4 << 16)) as u32).swap_bytes())
}

impl<B: PacketBuf, A: BufPool<B>> Pipeline<B, A> {
    /// The fast path's view of input port `port`; `None` sends every packet
    /// of it to the full pipeline (a VLAN port, an unknown port).
    #[inline(always)]
    pub(super) fn ingress(&self, port: u16) -> Option<Ingress> {
        let pc = self.ports.get(usize::from(port))?;
        if pc.vlan.is_some() {
            return None;
        }
        let mut mac = [0u8; 8];
        mac[..6].copy_from_slice(&pc.mac.0);
        Some(Ingress {
            mac: u64::from_le_bytes(mac),
            tcp_slow: self.conv.is_some(),
            udp_slow: self.nat_udp,
            nic_checksum: pc.rx_ip_checksum,
        })
    }

    /// The forwarding decision for `dst`, or `None` when a packet to it
    /// needs the full pipeline (martian, multicast, broadcast or ours; no
    /// route; a VLAN egress; next hop unresolved or expired). Once per
    /// destination and burst: kept out of the per-packet loop.
    #[inline(never)]
    fn adjacency(&mut self, now_ns: u64, dst: u32) -> Option<Adjacency> {
        let d8 = dst >> 24;
        if d8 == 0 || d8 == 127 || d8 >= 224 {
            return None;
        }
        let (w, bit) = super::special_v4_bit(dst);
        if self.special_v4[w & 3] & bit != 0 {
            let a = Ipv4Addr::from(dst);
            if self.local_v4.contains(&a) || self.ports.iter().any(|p| p.is_v4_broadcast(a)) {
                return None;
            }
        }
        let nh = *self.routes.lookup_v4(Ipv4Addr::from(dst))?;
        let op = self.ports.get(usize::from(nh.port))?;
        if op.vlan.is_some() {
            return None;
        }
        let (mtu, src_mac) = (op.mtu, op.mac);
        let next = match nh.gateway {
            Some(IpAddr::V4(g)) => g,
            _ => Ipv4Addr::from(dst),
        };
        let (m, until) = self.arp.get_until(now_ns, (nh.port, next))?;
        let (m, s) = (m.0, src_mac.0);
        Some(Adjacency {
            until,
            dst,
            port: nh.port,
            mtu,
            l2: (
                u64::from_le_bytes([m[0], m[1], m[2], m[3], m[4], m[5], s[0], s[1]]),
                u32::from_le_bytes([s[2], s[3], s[4], s[5]]),
            ),
        })
    }

    /// Forgets the remembered decision once its neighbour entry has
    /// expired (the clock is read once per burst: checked then).
    #[inline(always)]
    pub(super) fn expire_memo(&mut self, now_ns: u64) {
        if now_ns >= self.fast_memo.until {
            self.fast_memo = Adjacency::NONE;
        }
    }

    /// Forwards `buf` if it is the common case (rewritten in place and
    /// queued); otherwise gives it back untouched. The remembered decision
    /// (`fast_memo`) is used, or replaced for a new destination.
    #[inline(always)]
    pub(super) fn fast_forward_v4<const CONV: bool, const NIC: bool>(
        &mut self,
        ing: &Ingress,
        now_ns: u64,
        mut buf: B,
    ) -> Result<(), B> {
        let Some(dst) = destination_v4::<B, CONV, NIC>(ing, &buf) else {
            return Err(buf);
        };
        if dst != self.fast_memo.dst {
            match self.adjacency(now_ns, dst) {
                Some(a) => self.fast_memo = a,
                None => return Err(buf),
            }
        }
        let memo = self.fast_memo;
        if !memo.fits(buf.len()) {
            return Err(buf);
        }
        rewrite(&memo, buf.data_mut());
        self.enqueue(memo.port, buf);
        Ok(())
    }

    /// Runs a received burst through the pipeline, in order, draining `bufs`.
    pub fn process_burst(&mut self, now_ns: u64, port: u16, bufs: &mut Vec<B>) {
        match self.ingress(port) {
            // the loop is built four times: a plain router's has no TCP
            // test, a port whose NIC does not verify checksums no flag test
            Some(ing) => match (ing.tcp_slow, ing.nic_checksum) {
                (true, false) => self.burst_v4::<true, false>(&ing, now_ns, port, bufs),
                (false, false) => self.burst_v4::<false, false>(&ing, now_ns, port, bufs),
                (true, true) => self.burst_v4::<true, true>(&ing, now_ns, port, bufs),
                (false, true) => self.burst_v4::<false, true>(&ing, now_ns, port, bufs),
            },
            None => {
                for buf in bufs.drain(..) {
                    self.process_slow(now_ns, port, buf);
                }
            }
        }
    }

    #[inline(never)]
    fn burst_v4<const CONV: bool, const NIC: bool>(
        &mut self,
        ing: &Ingress,
        now_ns: u64,
        port: u16,
        bufs: &mut Vec<B>,
    ) {
        self.expire_memo(now_ns);
        let mut routed = 0u64;
        // every packet's headers at once, before the first is looked at
        B::prefetch_burst(bufs);
        // the packets up to the first that does not follow the remembered
        // decision, rewritten where they lie, queued with one copy
        let memo = self.fast_memo;
        let n = rewrite_run::<B, CONV, NIC>(ing, &memo, bufs);
        if n > 0 {
            routed += n as u64;
            match self.tx.get_mut(usize::from(memo.port)) {
                Some(q) if q.len() + n <= self.tx_cap => q.extend(bufs.drain(..n)),
                _ => {
                    for buf in bufs.drain(..n) {
                        self.enqueue(memo.port, buf);
                    }
                }
            }
        }
        // the rest one by one, the decision looked up or replaced as needed
        for buf in bufs.drain(..) {
            // (the full pipeline drops the remembered decision)
            match self.fast_forward_v4::<CONV, NIC>(ing, now_ns, buf) {
                Ok(()) => routed += 1,
                Err(buf) => self.process_slow(now_ns, port, buf),
            }
        }
        self.stats.events_add(Event::RoutedV4, routed);
    }
}

/// Rewrites the leading packets of `bufs` that take the fast path to
/// `memo`'s destination, in place, and stops at the first that does not
/// (another destination, or one for the full pipeline); how many.
#[inline(always)]
fn rewrite_run<B: PacketBuf, const CONV: bool, const NIC: bool>(
    ing: &Ingress,
    memo: &Adjacency,
    bufs: &mut [B],
) -> usize {
    let mut n = 0;
    for buf in bufs.iter_mut() {
        match destination_v4::<B, CONV, NIC>(ing, buf) {
            Some(dst) if dst == memo.dst && memo.fits(buf.len()) => rewrite(memo, buf.data_mut()),
            _ => break,
        }
        n += 1;
    }
    n
}

/// The destination of a fast-path candidate: [`classify_v4`] on a
/// single-segment frame (the full pipeline takes chained ones).
#[inline(always)]
fn destination_v4<B: PacketBuf, const CONV: bool, const NIC: bool>(
    ing: &Ingress,
    buf: &B,
) -> Option<u32> {
    if buf.segments() != 1 {
        return None;
    }
    classify_v4::<CONV, NIC>(ing, buf.data(), buf.rx_ip_checksum())
}

/// Writes the forwarding decision into a frame that passed the fast path's
/// checks (34 bytes at least): the Ethernet addresses, then TTL - 1 with
/// the header checksum updated (RFC 1812 §5.3.1, RFC 1624), both as one
/// 32-bit word: TTL (byte 22), protocol, checksum (24-25).
#[inline(always)]
fn rewrite(adj: &Adjacency, d: &mut [u8]) {
    let Some(h) = d.first_chunk_mut::<26>() else {
        return;
    };
    h[..8].copy_from_slice(&adj.l2.0.to_le_bytes());
    h[8..12].copy_from_slice(&adj.l2.1.to_le_bytes());
    let w = u32::from_le_bytes([h[22], h[23], h[24], h[25]]);
    h[22..26].copy_from_slice(&checksum::ttl_decremented_word(w).to_le_bytes());
}
