//! NAT of routed traffic (DESIGN.md §1: everything not converted — UDP,
//! ICMP queries, plain TCP — is routed, with NAT when the policy says so).
//!
//! IPv4 NAPT (RFC 3022) of what the subscribers send through the access
//! ports, by the same `nat source` as the sessions and from the same port
//! allocator ([`Nat`]), so a binding and a session never share a port:
//!
//! - `subscriber-fixed`: a subscriber's cellular IPv4 address becomes its
//!   fixed-line address (the thread's scenario 1: an RFC 6598 source never
//!   reaches the Internet). That address also carries the fixed line's own
//!   traffic, which hagw does not translate, so a binding here is
//!   address-and-port dependent (RFC 4787 §4.1 and §5): only the remote
//!   the subscriber talked to gets through it, and a reply of the fixed
//!   line's own flows is never diverted to the cellular access. Traffic
//!   from the fixed address itself is routed as it is; a private source
//!   (RFC 1918, RFC 6598) of no known subscriber is dropped and counted.
//! - `pool`: every subscriber source gets its pool address and a port of
//!   its block, with endpoint-independent mapping and filtering (RFC 4787
//!   REQ-1, REQ-8; RFC 6888 REQ-1): the pool is hagw's own.
//! - `none`: nothing is translated.
//!
//! A subscriber's packet to another binding's outside address and port
//! is hairpinned (RFC 4787 REQ-9): translated on the way out, then back in
//! to that binding's host.
//!
//! Bindings live until they are idle for their protocol's timeout
//! (`[nat]` `*_timeout_s`, at least what the RFCs allow): UDP 300 s
//! (RFC 4787 REQ-5), ICMP queries 60 s (RFC 5508 REQ-1), TCP 7,440 s once
//! established and 240 s before, after a RST or once both ends sent their
//! FIN (RFC 5382 REQ-5). Each timeout class has a FIFO of deadlines: an
//! entry whose binding was used since is queued again, so expiry costs a
//! few operations per binding and never a sweep (a binding used again
//! may outlive its timeout by up to one more timeout when entries queued
//! before it are due later). `max_bindings` caps the table and
//! `max_bindings_per_subscriber` each subscriber's share of it: beyond
//! them new flows are dropped and counted (`table_full`,
//! `subscriber_limit`), and one subscriber's flood of new flows cannot
//! starve the others.
//!
//! Fragments (RFC 4787 REQ-14): only the first carries the ports. It is
//! translated as a whole datagram would be (the transport checksum covers
//! the datagram, and changes by what the NAT changed) and its (protocol,
//! source, destination, IP identification) noted for
//! [`FRAGMENT_TIMEOUT`]; the later fragments of that datagram get the
//! same address. With several workers, a first fragment handed to the
//! worker that owns its port is noted as such, and its later fragments
//! (which carry no port, and which RSS gives the same queue) follow it
//! there. A later fragment that arrives before its first one is dropped
//! and counted (`fragment`): hagw does not hold fragments back.
//! IPv6 is never translated.

use super::nat::{Nat, NatError};
use super::policy::Policy;
use super::rewrite::{self, be16, End};
use crate::config::NatSource;
use crate::stats::{ConvStats, NatDrop, NatProto};
use hashbrown::HashMap;
use nf_core::sim::Time;
use nf_core::wire::icmpv4::kind;
use nf_core::wire::ip_proto;
use nf_core::wire::tcp::flags;
use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr};

/// How long the first fragment of a datagram vouches for the rest (RFC
/// 791's reassembly timer is 15 s).
const FRAGMENT_TIMEOUT: Time = 15_000_000_000;
/// Datagrams in flight in fragments noted at most, per worker.
const FRAGMENTS_MAX: usize = 8192;

/// What became of a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Routed {
    /// Not the NAT's: route it as it is.
    Pass,
    /// Translated in place: route it to its (new) destination.
    Translated,
    /// Dropped and counted.
    Dropped,
    /// A reply to a port another worker binds (DESIGN.md §4).
    Handoff(u16),
}

/// One side of a binding: (protocol, address, port or ICMP identifier,
/// and the remote's address and port where the mapping depends on it).
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
struct Key {
    proto: u8,
    addr: Ipv4Addr,
    port: u16,
    remote: (Ipv4Addr, u16),
}

/// A binding's timeout class, in the order of [`Policy::nat_timeouts`].
/// What the later fragments of a datagram get.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FragTo {
    /// Their address translated, as the first fragment's was.
    Addr(Ipv4Addr),
    /// Handed to the worker the first fragment went to.
    Worker(u16),
}

/// A fragmented datagram as it arrives (`out`: from the inside).
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
struct FragKey {
    proto: u8,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    id: u16,
    out: bool,
}

impl FragKey {
    fn of(d: &[u8], out: bool) -> Option<FragKey> {
        Some(FragKey {
            proto: *d.get(9)?,
            src: v4(d, 12)?,
            dst: v4(d, 16)?,
            id: be16(d, 4)?,
            out,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    Udp,
    Icmp,
    TcpEstablished,
    TcpTransitory,
}

impl Class {
    const ALL: [Class; 4] = [
        Class::Udp,
        Class::Icmp,
        Class::TcpEstablished,
        Class::TcpTransitory,
    ];
}

#[derive(Clone, Copy, Debug)]
struct Binding {
    outside: Key,
    /// The NAT key of the subscriber (its pool block).
    sub: IpAddr,
    last: Time,
    class: Class,
    /// Bumped when the class changes: the entry queued for the old class
    /// is then stale.
    gen: u32,
    /// TCP: SYN seen from the remote (the handshake went through), FIN
    /// seen from the inside (1) and from the remote (2).
    syn_back: bool,
    fins: u8,
}

impl Binding {
    /// Used at `now` by a packet with `tcp_flags` from the inside (or the
    /// remote): a TCP segment's flags move the binding between the
    /// established and transitory timeouts (RFC 5382 REQ-5); the class it
    /// moved to, if it did.
    fn touch(&mut self, now: Time, tcp_flags: u16, inside: bool) -> Option<Class> {
        self.last = now;
        if self.class == Class::Udp || self.class == Class::Icmp {
            return None;
        }
        if !inside && tcp_flags & flags::SYN != 0 {
            self.syn_back = true;
        }
        if tcp_flags & flags::FIN != 0 {
            self.fins |= if inside { 1 } else { 2 };
        }
        let class = if tcp_flags & flags::RST != 0 || self.fins == 3 || !self.syn_back {
            Class::TcpTransitory
        } else {
            Class::TcpEstablished
        };
        if class == self.class {
            return None;
        }
        self.class = class;
        self.gen = self.gen.wrapping_add(1);
        Some(class)
    }
}

fn proto_of(p: u8) -> Option<NatProto> {
    match p {
        ip_proto::UDP => Some(NatProto::Udp),
        ip_proto::TCP => Some(NatProto::Tcp),
        ip_proto::ICMP => Some(NatProto::Icmp),
        _ => None,
    }
}

/// RFC 1918 and RFC 6598 addresses: never seen on the Internet.
fn private(a: Ipv4Addr) -> bool {
    let o = a.octets();
    a.is_private() || (o[0] == 100 && (o[1] & 0xc0) == 64)
}

fn v4(d: &[u8], at: usize) -> Option<Ipv4Addr> {
    let b: [u8; 4] = d.get(at..at + 4)?.try_into().ok()?;
    Some(Ipv4Addr::from(b))
}

/// The transport view of an IPv4 packet (or of the start of one, as an
/// ICMP error quotes it) the NAT needs: its header length, protocol,
/// addresses and ports (an ICMP query's identifier for both).
#[derive(Clone, Copy, Debug)]
struct Flow {
    hl: usize,
    proto: u8,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sport: u16,
    dport: u16,
    /// The first fragment of a datagram (more follow).
    first_fragment: bool,
}

impl Flow {
    /// A TCP segment's flags (0 for other protocols).
    fn tcp_flags(&self, d: &[u8]) -> u16 {
        match self.proto {
            ip_proto::TCP => be16(d, self.hl + 12).map_or(0, |w| w & 0x01ff),
            _ => 0,
        }
    }

    /// `None` unless `d` starts an IPv4 packet, unfragmented or a first
    /// fragment, whose ports are in `d`.
    fn parse(d: &[u8]) -> Option<Flow> {
        let b0 = *d.first()?;
        let hl = usize::from(b0 & 0x0f) * 4;
        if b0 >> 4 != 4 || hl < 20 || d.len() < hl + 4 {
            return None;
        }
        let frag = be16(d, 6)?;
        if frag & 0x1fff != 0 {
            return None;
        }
        let proto = d[9];
        let (sport, dport) = match proto {
            ip_proto::UDP | ip_proto::TCP => (be16(d, hl)?, be16(d, hl + 2)?),
            ip_proto::ICMP => {
                let id = be16(d, hl + 4)?;
                (id, id)
            }
            _ => return None,
        };
        Some(Flow {
            hl,
            proto,
            src: v4(d, 12)?,
            dst: v4(d, 16)?,
            sport,
            dport,
            first_fragment: frag & 0x2000 != 0,
        })
    }
}

/// `end`'s address and port (an ICMP query's identifier) of the IPv4
/// packet `d` described by `f` become `new`, checksums updated
/// incrementally ([`rewrite::translate`], shared with the sessions' NAT).
fn set_end(d: &mut [u8], f: &Flow, end: End, new: (Ipv4Addr, u16)) {
    let old = match end {
        End::Src => (f.src, f.sport),
        End::Dst => (f.dst, f.dport),
    };
    let (old, new) = ((IpAddr::V4(old.0), old.1), (IpAddr::V4(new.0), new.1));
    rewrite::translate(d, f.hl, end, old, new);
}

/// The bindings of one worker.
#[derive(Default)]
pub struct Table {
    by_inside: HashMap<Key, Binding>,
    by_outside: HashMap<Key, Key>,
    /// Per [`Class`]: (deadline when queued, inside key, generation).
    queues: [VecDeque<(Time, Key, u32)>; 4],
    /// Datagrams whose first fragment was translated (or handed over):
    /// what their later fragments get, until when; and those deadlines in
    /// order.
    frags: HashMap<FragKey, (FragTo, Time)>,
    frag_fifo: VecDeque<(Time, FragKey)>,
    /// Live bindings per subscriber (its NAT key).
    per_subscriber: HashMap<IpAddr, usize>,
}

/// What the NAT needs of the converter around it.
pub struct Ctx<'a> {
    pub policy: &'a Policy,
    pub nat: &'a mut Nat,
    pub stats: &'a ConvStats,
    /// This worker, and whether it is the only one.
    pub me: u16,
    pub single: bool,
}

impl Ctx<'_> {
    fn drop(&self, why: NatDrop) -> Routed {
        self.stats.nat_dropped.inc(why as usize);
        Routed::Dropped
    }

    /// The NAT source of traffic from `src` (the subscriber's NAT key and
    /// the fixed address `subscriber-fixed` uses), `Ok(None)` when it is
    /// routed as it is.
    fn source(&self, src: Ipv4Addr) -> Result<Option<(IpAddr, Option<IpAddr>)>, NatDrop> {
        let a = IpAddr::V4(src);
        let sub = self.policy.subscriber_of(a);
        match self.policy.nat {
            NatSource::None => Ok(None),
            NatSource::SubscriberFixed => match sub {
                Some(s) if s.fixed == a => Ok(None),
                Some(s) if s.fixed.is_ipv4() => Ok(Some((s.fixed, Some(s.fixed)))),
                _ if private(src) => Err(NatDrop::NoSource),
                _ => Ok(None),
            },
            NatSource::Pool => {
                let listed = self.policy.subscriber_prefixes.is_empty()
                    || self
                        .policy
                        .subscriber_prefixes
                        .iter()
                        .any(|p| p.contains(a));
                match sub {
                    Some(s) => Ok(Some((s.fixed, None))),
                    None if listed => Ok(Some((a, None))),
                    None => Ok(None),
                }
            }
        }
    }

    /// Is `a` an address the NAT translates to?
    fn nat_addr(&self, a: Ipv4Addr) -> bool {
        let a = IpAddr::V4(a);
        match self.policy.nat {
            NatSource::None => false,
            NatSource::Pool => self.nat.is_pool_addr(a),
            NatSource::SubscriberFixed => {
                self.policy.subscriber_of(a).is_some_and(|s| s.fixed == a)
            }
        }
    }
}

impl Table {
    /// Live bindings.
    pub fn len(&self) -> usize {
        self.by_inside.len()
    }

    /// No binding and no fragmented datagram in flight.
    pub fn is_empty(&self) -> bool {
        self.by_inside.is_empty() && self.frags.is_empty()
    }

    /// Notes the first fragment `before` (as it arrived) translated to
    /// `to`, for the fragments that follow it.
    fn first_fragment(&mut self, now: Time, before: Option<FragKey>, to: FragTo) {
        let Some(k) = before else {
            return;
        };
        if self.frags.len() < FRAGMENTS_MAX || self.frags.contains_key(&k) {
            let until = now + FRAGMENT_TIMEOUT;
            self.frags.insert(k, (to, until));
            self.frag_fifo.push_back((until, k));
        }
    }

    /// A later fragment (`out`: from the inside) of a datagram whose first
    /// fragment was translated: the same address; `None` for any other.
    fn later_fragment(
        &mut self,
        now: Time,
        cx: &mut Ctx,
        d: &mut [u8],
        out: bool,
    ) -> Option<Routed> {
        let k = FragKey::of(d, out)?;
        let &(to, until) = self.frags.get(&k)?;
        if until <= now {
            return None;
        }
        match to {
            FragTo::Addr(a) => {
                rewrite::set_address(d, if out { End::Src } else { End::Dst }, IpAddr::V4(a));
                cx.stats.nat_packets.inc(usize::from(!out));
                Some(Routed::Translated)
            }
            FragTo::Worker(w) => Some(Routed::Handoff(w)),
        }
    }

    /// The remote part of a key of flow `f`'s protocol: with
    /// `subscriber-fixed` the binding is the remote's alone (see the
    /// module's doc), with a pool it is anyone's. An ICMP query's remote
    /// is its address: the identifier is the binding's own, translated on
    /// the way out.
    fn remote(cx: &Ctx, f: &Flow, addr: Ipv4Addr, port: u16) -> (Ipv4Addr, u16) {
        match cx.policy.nat {
            NatSource::SubscriberFixed if f.proto == ip_proto::ICMP => (addr, 0),
            NatSource::SubscriberFixed => (addr, port),
            _ => (Ipv4Addr::UNSPECIFIED, 0),
        }
    }

    /// An IPv4 packet from an access port, not addressed to the gateway
    /// and not a session's: its source translated when the policy says so.
    pub fn outbound(&mut self, now: Time, cx: &mut Ctx, d: &mut [u8]) -> Routed {
        let Some(src) = v4(d, 12) else {
            return Routed::Pass;
        };
        let (sub, fixed) = match cx.source(src) {
            Ok(Some(s)) => s,
            Ok(None) => return Routed::Pass,
            Err(why) => return cx.drop(why),
        };
        let Some(f) = Flow::parse(d) else {
            // a later fragment, another protocol, or too short for its ports
            let later = be16(d, 6).is_some_and(|x| x & 0x1fff != 0);
            if later {
                return match self.later_fragment(now, cx, d, true) {
                    Some(r) => r,
                    None => cx.drop(NatDrop::Fragment),
                };
            }
            return cx.drop(NatDrop::Protocol);
        };
        if f.proto == ip_proto::ICMP {
            match d.get(f.hl).copied() {
                Some(kind::ECHO_REQUEST) => {}
                Some(kind::DEST_UNREACHABLE | kind::TIME_EXCEEDED | kind::PARAMETER_PROBLEM) => {
                    return self.error(now, cx, d, &f, true);
                }
                // RFC 5508 REQ-9: other ICMP from the inside has no binding
                _ => return cx.drop(NatDrop::Protocol),
            }
        }
        let key = Key {
            proto: f.proto,
            addr: f.src,
            port: f.sport,
            remote: Self::remote(cx, &f, f.dst, f.dport),
        };
        let tcp_flags = f.tcp_flags(d);
        let timeouts = cx.policy.nat_timeouts;
        if !self.by_inside.contains_key(&key) {
            // RFC 5382: a TCP binding is made by the inside's SYN
            if f.proto == ip_proto::TCP
                && tcp_flags & (flags::SYN | flags::ACK | flags::RST) != flags::SYN
            {
                return cx.drop(NatDrop::NoBinding);
            }
            if self.by_inside.len() >= cx.policy.max_bindings {
                return cx.drop(NatDrop::TableFull);
            }
            let held = self.per_subscriber.get(&sub).copied().unwrap_or(0);
            if held >= cx.policy.max_bindings_per_subscriber {
                return cx.drop(NatDrop::SubscriberLimit);
            }
            let (addr, port) = match cx.nat.bind_routed(sub, fixed, f.sport) {
                Ok((IpAddr::V4(a), p)) => (a, p),
                Ok(_) | Err(NatError::NoSource) => return cx.drop(NatDrop::NoSource),
                Err(NatError::Exhausted) => return cx.drop(NatDrop::PortsExhausted),
            };
            let outside = Key {
                proto: f.proto,
                addr,
                port,
                remote: key.remote,
            };
            let class = match f.proto {
                ip_proto::UDP => Class::Udp,
                ip_proto::ICMP => Class::Icmp,
                _ => Class::TcpTransitory,
            };
            self.by_inside.insert(
                key,
                Binding {
                    outside,
                    sub,
                    last: now,
                    class,
                    gen: 0,
                    syn_back: false,
                    fins: 0,
                },
            );
            self.by_outside.insert(outside, key);
            *self.per_subscriber.entry(sub).or_insert(0) += 1;
            self.queues[class as usize].push_back((now + timeouts[class as usize], key, 0));
            let p = proto_of(f.proto).map_or(0, |p| p as usize);
            cx.stats.nat_bindings_created.inc(p);
            cx.stats.nat_bindings.0[p].set(cx.stats.nat_bindings.get(p) + 1);
            cx.stats.nat_ports_in_use.set(cx.nat.in_use() as u64);
        }
        let Some(b) = self.by_inside.get(&key) else {
            return Routed::Pass;
        };
        let outside = (b.outside.addr, b.outside.port);
        self.touch(&timeouts, key, now, tcp_flags, true);
        let frag = f.first_fragment.then(|| FragKey::of(d, true)).flatten();
        set_end(d, &f, End::Src, outside);
        self.first_fragment(now, frag, FragTo::Addr(outside.0));
        cx.stats.nat_packets.inc(0);
        // RFC 4787 REQ-9, RFC 5382 REQ-8 (hairpinning): to another
        // binding's outside address and port, it goes back in to that
        // binding's host, from this one's outside address (UDP and TCP,
        // unfragmented, on the worker that holds both)
        if f.proto != ip_proto::ICMP && !f.first_fragment && cx.nat_addr(f.dst) {
            let back = Key {
                proto: f.proto,
                addr: f.dst,
                port: f.dport,
                remote: Self::remote(cx, &f, outside.0, outside.1),
            };
            if let (Some(&inside), Some(g)) = (self.by_outside.get(&back), Flow::parse(d)) {
                set_end(d, &g, End::Dst, (inside.addr, inside.port));
                self.touch(&timeouts, inside, now, tcp_flags, false);
                cx.stats.nat_packets.inc(1);
            }
        }
        Routed::Translated
    }

    /// An IPv4 packet from the Internet: its destination translated back
    /// when it is a binding's.
    pub fn inbound(&mut self, now: Time, cx: &mut Ctx, d: &mut [u8]) -> Routed {
        if self.by_outside.is_empty() && self.frags.is_empty() && cx.single {
            // nothing bound: nothing to look up (pool addresses without a
            // binding are not routed anywhere either way)
            return match v4(d, 16) {
                Some(a) if cx.policy.nat == NatSource::Pool && cx.nat_addr(a) => {
                    cx.drop(NatDrop::NoBinding)
                }
                _ => Routed::Pass,
            };
        }
        let Some(f) = Flow::parse(d) else {
            if be16(d, 6).is_some_and(|x| x & 0x1fff != 0) {
                if let Some(r) = self.later_fragment(now, cx, d, false) {
                    return r;
                }
                // not ours, or its first fragment has not come through:
                // a pool address's fragments go nowhere else
                if let Some(a) = v4(d, 16) {
                    if cx.policy.nat == NatSource::Pool && cx.nat_addr(a) {
                        return cx.drop(NatDrop::Fragment);
                    }
                }
            }
            return Routed::Pass;
        };
        if f.proto == ip_proto::ICMP {
            match d.get(f.hl).copied() {
                Some(kind::ECHO_REPLY) => {}
                Some(kind::DEST_UNREACHABLE | kind::TIME_EXCEEDED | kind::PARAMETER_PROBLEM) => {
                    return self.error(now, cx, d, &f, false);
                }
                _ => return Routed::Pass,
            }
        }
        let outside = Key {
            proto: f.proto,
            addr: f.dst,
            port: f.dport,
            remote: Self::remote(cx, &f, f.src, f.sport),
        };
        let Some(&key) = self.by_outside.get(&outside) else {
            let r = self.miss(cx, f.dst, f.dport);
            if let (Routed::Handoff(w), true) = (r, f.first_fragment) {
                self.first_fragment(now, FragKey::of(d, false), FragTo::Worker(w));
            }
            return r;
        };
        if !self.by_inside.contains_key(&key) {
            return Routed::Pass;
        }
        let tcp_flags = f.tcp_flags(d);
        self.touch(&cx.policy.nat_timeouts, key, now, tcp_flags, false);
        let frag = f.first_fragment.then(|| FragKey::of(d, false)).flatten();
        set_end(d, &f, End::Dst, (key.addr, key.port));
        self.first_fragment(now, frag, FragTo::Addr(key.addr));
        cx.stats.nat_packets.inc(1);
        Routed::Translated
    }

    /// A packet to `dst:port` of no binding here: another worker's, one
    /// to a pool address nobody bound (dropped), or not the NAT's.
    fn miss(&self, cx: &mut Ctx, dst: Ipv4Addr, port: u16) -> Routed {
        if !cx.nat_addr(dst) {
            return Routed::Pass;
        }
        let owner = cx
            .nat
            .port_owner(cx.nat.is_pool_addr(IpAddr::V4(dst)), port);
        if !cx.single && owner != cx.me {
            return Routed::Handoff(owner);
        }
        if cx.policy.nat == NatSource::Pool {
            return cx.drop(NatDrop::NoBinding);
        }
        Routed::Pass
    }

    /// An ICMP error about a packet a binding carried (RFC 5508 §4.2):
    /// from the Internet (`out` false) about what the binding sent, toward
    /// the inside host that sent it; from the inside about what the NAT
    /// delivered to it, toward the remote from the binding's outside
    /// address. The quoted packet travelled the other way.
    fn error(&mut self, now: Time, cx: &mut Ctx, d: &mut [u8], f: &Flow, out: bool) -> Routed {
        let Some(q) = d.get(f.hl + 8..).and_then(Flow::parse) else {
            return if out {
                cx.drop(NatDrop::NoBinding)
            } else {
                Routed::Pass
            };
        };
        let found = if out {
            let inside = Key {
                proto: q.proto,
                addr: q.dst,
                port: q.dport,
                remote: Self::remote(cx, &q, q.src, q.sport),
            };
            self.by_inside.get(&inside).map(|b| (inside, b.outside))
        } else {
            let outside = Key {
                proto: q.proto,
                addr: q.src,
                port: q.sport,
                remote: Self::remote(cx, &q, q.dst, q.dport),
            };
            self.by_outside
                .get(&outside)
                .map(|&inside| (inside, outside))
        };
        let Some((inside, outside)) = found else {
            return if out {
                cx.drop(NatDrop::NoBinding)
            } else {
                self.miss(cx, q.src, q.sport)
            };
        };
        if let Some(b) = self.by_inside.get_mut(&inside) {
            b.last = now;
        }
        let (end, to) = if out {
            (End::Src, outside)
        } else {
            (End::Dst, inside)
        };
        // the quoted packet travelled the other way
        let quoted = if out { End::Dst } else { End::Src };
        let a = IpAddr::V4(to.addr);
        if !rewrite::icmp_error(d, (end, a), (quoted, a, to.port)) {
            return cx.drop(NatDrop::Protocol);
        }
        cx.stats.nat_packets.inc(usize::from(!out));
        Routed::Translated
    }

    /// `key`'s binding used at `now` by a packet with `tcp_flags`: queued
    /// again for the timeout of the class it moved to, if it moved.
    fn touch(&mut self, timeouts: &[Time; 4], key: Key, now: Time, tcp_flags: u16, inside: bool) {
        if let Some(b) = self.by_inside.get_mut(&key) {
            if let Some(class) = b.touch(now, tcp_flags, inside) {
                self.queues[class as usize].push_back((now + timeouts[class as usize], key, b.gen));
            }
        }
    }

    /// Removes the bindings idle past their timeout: the fronts of the
    /// deadline queues, an entry of a binding used since queued again.
    pub fn expire(&mut self, now: Time, cx: &mut Ctx) {
        while let Some(&(until, k)) = self.frag_fifo.front() {
            if until > now {
                break;
            }
            self.frag_fifo.pop_front();
            if self.frags.get(&k).is_some_and(|e| e.1 == until) {
                self.frags.remove(&k);
            }
        }
        for class in Class::ALL {
            let timeout = cx.policy.nat_timeouts[class as usize];
            let q = &mut self.queues[class as usize];
            while let Some(&(due, key, gen)) = q.front() {
                if due > now {
                    break;
                }
                q.pop_front();
                let Some(b) = self.by_inside.get(&key) else {
                    continue;
                };
                if b.gen != gen || b.class != class {
                    continue;
                }
                let until = b.last + timeout;
                if until > now {
                    q.push_back((until, key, gen));
                    continue;
                }
                let b = *b;
                self.by_inside.remove(&key);
                self.by_outside.remove(&b.outside);
                if let hashbrown::hash_map::Entry::Occupied(mut e) =
                    self.per_subscriber.entry(b.sub)
                {
                    *e.get_mut() -= 1;
                    if *e.get() == 0 {
                        e.remove();
                    }
                }
                cx.nat
                    .release(b.sub, IpAddr::V4(b.outside.addr), b.outside.port);
                let p = proto_of(key.proto).map_or(0, |p| p as usize);
                cx.stats.nat_bindings_expired.inc(p);
                cx.stats.nat_bindings.0[p].set(cx.stats.nat_bindings.get(p).saturating_sub(1));
            }
        }
        cx.stats.nat_ports_in_use.set(cx.nat.in_use() as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::shard::Shard;
    use crate::stats::WorkerStats;
    use nf_core::wire::checksum;
    use proptest::prelude::*;

    /// Where a transport header keeps its checksum, and whether it covers
    /// the addresses (the pseudo-header): what the tests compute afresh.
    fn checksum_at(proto: u8) -> (usize, bool) {
        match proto {
            ip_proto::TCP => (16, true),
            ip_proto::UDP => (6, true),
            _ => (2, false),
        }
    }

    const SEC: Time = 1_000_000_000;
    // the defaults: the RFCs' minimums (UDP: the recommended 5 minutes)
    const UDP_TIMEOUT: Time = 300 * SEC;
    const TCP_ESTABLISHED_TIMEOUT: Time = 7440 * SEC;
    const TCP_TRANSITORY_TIMEOUT: Time = 240 * SEC;
    const CEL: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 2);
    const FIX: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
    const SRV: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
    const OTHER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);

    fn policy(nat: &str) -> Policy {
        let toml = format!(
            "[[port]]\nname = \"a\"\ndevice = \"net_null0\"\nrole = \"access-fixed\"\naddresses = [\"192.0.2.1/24\"]\n\
             [nat]\n{nat}\n[[subscriber]]\nfixed = \"192.0.2.2\"\ncellular = [\"100.64.0.2\"]\n"
        );
        let cfg = crate::config::parse("t.toml", &toml).unwrap();
        Policy::from_config(&cfg)
    }

    struct World {
        policy: Policy,
        nat: Nat,
        stats: WorkerStats,
        table: Table,
        /// This worker of two (None: the only one).
        of_two: Option<u16>,
    }

    impl World {
        fn new(nat: &str) -> World {
            let policy = policy(nat);
            World {
                nat: Nat::new(&policy, Shard::default()),
                policy,
                stats: WorkerStats::new(0, 0, 1),
                table: Table::default(),
                of_two: None,
            }
        }
        /// Worker `me` of two.
        fn of_two(nat: &str, me: u16) -> World {
            let mut w = World::new(nat);
            w.nat = Nat::new(&w.policy, Shard::new(usize::from(me), 2));
            w.of_two = Some(me);
            w
        }
        fn parts(&mut self) -> (&mut Table, Ctx<'_>) {
            let cx = Ctx {
                policy: &self.policy,
                nat: &mut self.nat,
                stats: &self.stats.conv,
                me: self.of_two.unwrap_or(0),
                single: self.of_two.is_none(),
            };
            (&mut self.table, cx)
        }
        fn run(&mut self, now: Time, out: bool, d: &mut [u8]) -> Routed {
            let (table, mut cx) = self.parts();
            if out {
                table.outbound(now, &mut cx, d)
            } else {
                table.inbound(now, &mut cx, d)
            }
        }
        fn expire(&mut self, now: Time) {
            let (table, mut cx) = self.parts();
            table.expire(now, &mut cx);
        }
        fn dropped(&self, why: NatDrop) -> u64 {
            self.stats.conv.nat_dropped.get(why as usize)
        }
    }

    /// An IPv4 packet of `proto` with transport bytes `l4` (checksum
    /// field zero, filled here).
    fn packet(proto: u8, src: Ipv4Addr, dst: Ipv4Addr, l4: &[u8]) -> Vec<u8> {
        let mut d = vec![0u8; 20];
        d[0] = 0x45;
        d[2..4].copy_from_slice(&((20 + l4.len()) as u16).to_be_bytes());
        d[6] = 0x40; // DF
        d[8] = 64;
        d[9] = proto;
        d[12..16].copy_from_slice(&src.octets());
        d[16..20].copy_from_slice(&dst.octets());
        let hc = checksum::checksum(&d);
        d[10..12].copy_from_slice(&hc.to_be_bytes());
        d.extend_from_slice(l4);
        let (at, pseudo) = checksum_at(proto);
        let acc = if pseudo {
            checksum::pseudo_v4(src, dst, proto, l4.len() as u32)
        } else {
            0
        };
        let ck = !checksum::fold(acc + checksum::sum(&d[20..]));
        d[20 + at..22 + at].copy_from_slice(&ck.to_be_bytes());
        d
    }

    fn udp(src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16), payload: &[u8]) -> Vec<u8> {
        let mut l4 = Vec::new();
        l4.extend_from_slice(&src.1.to_be_bytes());
        l4.extend_from_slice(&dst.1.to_be_bytes());
        l4.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        l4.extend_from_slice(&[0, 0]);
        l4.extend_from_slice(payload);
        packet(ip_proto::UDP, src.0, dst.0, &l4)
    }

    fn tcp(src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16), bits: u16) -> Vec<u8> {
        let mut l4 = vec![0u8; 20];
        l4[0..2].copy_from_slice(&src.1.to_be_bytes());
        l4[2..4].copy_from_slice(&dst.1.to_be_bytes());
        l4[12..14].copy_from_slice(&((5 << 12) | bits).to_be_bytes());
        packet(ip_proto::TCP, src.0, dst.0, &l4)
    }

    fn echo(kind: u8, src: Ipv4Addr, dst: Ipv4Addr, id: u16) -> Vec<u8> {
        let mut l4 = vec![kind, 0, 0, 0];
        l4.extend_from_slice(&id.to_be_bytes());
        l4.extend_from_slice(&[0, 1, b'p', b'i', b'n', b'g']);
        packet(ip_proto::ICMP, src, dst, &l4)
    }

    /// An ICMP error from `from` to `to` quoting `orig` (its first 28
    /// bytes, as RFC 792 asks at least).
    fn error(kind: u8, from: Ipv4Addr, to: Ipv4Addr, orig: &[u8]) -> Vec<u8> {
        let mut l4 = vec![kind, if kind == 3 { 3 } else { 0 }, 0, 0, 0, 0, 0, 0];
        l4.extend_from_slice(&orig[..orig.len().min(28)]);
        packet(ip_proto::ICMP, from, to, &l4)
    }

    /// Every checksum of `d` holds (and of its quote, as far as it goes).
    fn checksums_hold(d: &[u8]) {
        assert_eq!(checksum::checksum(&d[..20]), 0, "IPv4 header checksum");
        let f = Flow::parse(d).expect("a packet the NAT reads");
        let (src, dst) = (f.src, f.dst);
        let l4 = &d[f.hl..];
        let (at, pseudo) = checksum_at(f.proto);
        if f.proto == ip_proto::UDP && be16(l4, at) == Some(0) {
            return;
        }
        let acc = if pseudo {
            checksum::pseudo_v4(src, dst, f.proto, l4.len() as u32)
        } else {
            0
        };
        assert_eq!(
            checksum::fold(acc + checksum::sum(l4)),
            0xffff,
            "transport checksum"
        );
    }

    fn src_of(d: &[u8]) -> (Ipv4Addr, u16) {
        let f = Flow::parse(d).unwrap();
        (f.src, f.sport)
    }
    fn dst_of(d: &[u8]) -> (Ipv4Addr, u16) {
        let f = Flow::parse(d).unwrap();
        (f.dst, f.dport)
    }

    #[test]
    fn cellular_udp_leaves_from_the_fixed_address_and_replies_come_back() {
        let mut w = World::new("source = \"subscriber-fixed\"");
        let mut up = udp((CEL, 40000), (SRV, 53), b"query");
        assert_eq!(w.run(0, true, &mut up), Routed::Translated);
        assert_eq!(src_of(&up), (FIX, 40000), "the client's port kept");
        assert_eq!(dst_of(&up), (SRV, 53));
        checksums_hold(&up);
        let mut down = udp((SRV, 53), (FIX, 40000), b"answer");
        assert_eq!(w.run(1, false, &mut down), Routed::Translated);
        assert_eq!(dst_of(&down), (CEL, 40000));
        checksums_hold(&down);
        // subscriber-fixed: only the remote it talked to gets through;
        // the fixed line's own traffic to that port is not diverted
        let mut stranger = udp((OTHER, 53), (FIX, 40000), b"x");
        assert_eq!(w.run(2, false, &mut stranger), Routed::Pass);
        assert_eq!(dst_of(&stranger), (FIX, 40000));
        // the fixed address's own traffic is routed as it is
        let mut fixed = udp((FIX, 5000), (SRV, 53), b"q");
        let before = fixed.clone();
        assert_eq!(w.run(3, true, &mut fixed), Routed::Pass);
        assert_eq!(fixed, before);
        let st = &w.stats.conv;
        assert_eq!(st.nat_bindings.get(NatProto::Udp as usize), 1);
        assert_eq!(st.nat_packets.get(0), 1);
        assert_eq!(st.nat_packets.get(1), 1);
    }

    #[test]
    fn a_private_source_of_no_subscriber_never_reaches_the_internet() {
        let mut w = World::new("source = \"subscriber-fixed\"");
        let mut up = udp((Ipv4Addr::new(100, 64, 9, 9), 1000), (SRV, 53), b"q");
        assert_eq!(w.run(0, true, &mut up), Routed::Dropped);
        assert_eq!(w.dropped(NatDrop::NoSource), 1);
        // a public one is routed as it is
        let mut up = udp((Ipv4Addr::new(203, 0, 113, 50), 1000), (SRV, 53), b"q");
        assert_eq!(w.run(0, true, &mut up), Routed::Pass);
    }

    #[test]
    fn pool_mapping_and_filtering_are_endpoint_independent() {
        let mut w =
            World::new("source = \"pool\"\npool = \"203.0.113.0/30\"\nports_per_subscriber = 64");
        let mut a = udp((CEL, 4000), (SRV, 3478), b"stun");
        let mut b = udp((CEL, 4000), (OTHER, 3478), b"stun");
        let mut c = udp((FIX, 4000), (SRV, 3478), b"stun");
        assert_eq!(w.run(0, true, &mut a), Routed::Translated);
        assert_eq!(w.run(0, true, &mut b), Routed::Translated);
        assert_eq!(w.run(0, true, &mut c), Routed::Translated);
        let (pa, pb, pc) = (src_of(&a), src_of(&b), src_of(&c));
        assert!(w.nat.is_pool_addr(IpAddr::V4(pa.0)), "{pa:?}");
        assert_eq!(pa, pb, "RFC 4787 REQ-1: one mapping for every remote");
        assert_eq!(pa.0, pc.0, "one pool address per subscriber");
        assert_ne!(pa.1, pc.1, "each inside port its own outside port");
        checksums_hold(&a);
        // anyone may answer on the mapping (REQ-8, endpoint-independent)
        let mut r = udp((Ipv4Addr::new(192, 0, 2, 77), 9), pa, b"hi");
        assert_eq!(w.run(1, false, &mut r), Routed::Translated);
        assert_eq!(dst_of(&r), (CEL, 4000));
        checksums_hold(&r);
        // a pool port nobody bound: dropped, never routed
        let mut r = udp((SRV, 9), (pa.0, pa.1.wrapping_add(7)), b"hi");
        assert_eq!(w.run(1, false, &mut r), Routed::Dropped);
        assert_eq!(w.dropped(NatDrop::NoBinding), 1);
    }

    #[test]
    fn a_subscriber_reaches_another_through_its_binding_hairpinned() {
        let mut w = World::new("source = \"pool\"\npool = \"203.0.113.0/30\"");
        let other = Ipv4Addr::new(100, 64, 7, 7);
        // the other subscriber's binding, learnt by a rendezvous server
        let mut b = udp((other, 5000), (SRV, 3478), b"stun");
        w.run(0, true, &mut b);
        let b_out = src_of(&b);
        // our subscriber sends to it: in again, to the other's host, from
        // our outside address
        let mut a = udp((CEL, 6000), b_out, b"hello");
        assert_eq!(w.run(1, true, &mut a), Routed::Translated);
        assert_eq!(dst_of(&a), (other, 5000));
        let a_out = src_of(&a);
        assert!(w.nat.is_pool_addr(IpAddr::V4(a_out.0)), "{a_out:?}");
        checksums_hold(&a);
        // and the answer the same way back
        let mut r = udp((other, 5000), a_out, b"hi");
        assert_eq!(w.run(2, true, &mut r), Routed::Translated);
        assert_eq!(src_of(&r), b_out);
        assert_eq!(dst_of(&r), (CEL, 6000));
        checksums_hold(&r);
    }

    #[test]
    fn echo_queries_are_mapped_by_identifier() {
        let mut w = World::new("source = \"subscriber-fixed\"");
        let mut q = echo(kind::ECHO_REQUEST, CEL, SRV, 0x1234);
        assert_eq!(w.run(0, true, &mut q), Routed::Translated);
        assert_eq!(src_of(&q).0, FIX);
        checksums_hold(&q);
        let id = src_of(&q).1;
        let mut r = echo(kind::ECHO_REPLY, SRV, FIX, id);
        assert_eq!(w.run(1, false, &mut r), Routed::Translated);
        assert_eq!(dst_of(&r), (CEL, 0x1234));
        checksums_hold(&r);
        // an echo reply from the inside (answering the Internet) has no
        // binding: RFC 5508 REQ-9
        let mut r = echo(kind::ECHO_REPLY, CEL, SRV, 7);
        assert_eq!(w.run(2, true, &mut r), Routed::Dropped);
        assert_eq!(w.dropped(NatDrop::Protocol), 1);
    }

    #[test]
    fn icmp_errors_about_a_binding_are_translated_both_ways() {
        let mut w = World::new("source = \"pool\"\npool = \"203.0.113.0/30\"");
        let mut up = udp((CEL, 5000), (SRV, 7777), b"data");
        w.run(0, true, &mut up);
        let outside = src_of(&up);
        // the server's port unreachable, quoting what it got
        let mut err = error(kind::DEST_UNREACHABLE, SRV, outside.0, &up);
        assert_eq!(w.run(1, false, &mut err), Routed::Translated);
        assert_eq!(dst_of(&err).0, CEL, "toward the inside host");
        assert_eq!(src_of(&err[28..]), (CEL, 5000), "the quote as it sent it");
        checksums_hold(&err);
        assert_eq!(checksum::checksum(&err[28..48]), 0, "the quoted header");
        // the inside host's own error about a reply it got
        let mut down = udp((SRV, 7777), outside, b"late");
        w.run(2, false, &mut down);
        let mut err = error(kind::DEST_UNREACHABLE, CEL, SRV, &down);
        assert_eq!(w.run(3, true, &mut err), Routed::Translated);
        assert_eq!(src_of(&err).0, outside.0, "from the outside address");
        assert_eq!(dst_of(&err[28..]), outside, "quoting what the remote sent");
        checksums_hold(&err);
        // about nobody's binding: dropped
        let stray = udp((SRV, 1), (CEL, 2), b"");
        let mut err = error(kind::DEST_UNREACHABLE, CEL, SRV, &stray);
        assert_eq!(w.run(4, true, &mut err), Routed::Dropped);
    }

    #[test]
    fn tcp_bindings_start_with_a_syn_and_age_by_state() {
        let mut w = World::new("source = \"subscriber-fixed\"");
        // no binding from a segment that is not a SYN
        let mut ack = tcp((CEL, 6000), (SRV, 80), flags::ACK);
        assert_eq!(w.run(0, true, &mut ack), Routed::Dropped);
        assert_eq!(w.dropped(NatDrop::NoBinding), 1);
        let mut syn = tcp((CEL, 6000), (SRV, 80), flags::SYN);
        assert_eq!(w.run(0, true, &mut syn), Routed::Translated);
        checksums_hold(&syn);
        let mut sa = tcp((SRV, 80), src_of(&syn), flags::SYN | flags::ACK);
        assert_eq!(w.run(SEC, false, &mut sa), Routed::Translated);
        checksums_hold(&sa);
        // established: alive long past the transitory timeout
        w.expire(SEC + TCP_TRANSITORY_TIMEOUT + 1);
        assert_eq!(w.table.len(), 1);
        // both FINs: transitory again, gone 240 s after the last packet
        let t = 2 * SEC + TCP_TRANSITORY_TIMEOUT;
        let mut fin = tcp((CEL, 6000), (SRV, 80), flags::FIN | flags::ACK);
        w.run(t, true, &mut fin);
        let mut fin = tcp((SRV, 80), src_of(&syn), flags::FIN | flags::ACK);
        w.run(t, false, &mut fin);
        w.expire(t + TCP_TRANSITORY_TIMEOUT - 1);
        assert_eq!(w.table.len(), 1);
        w.expire(t + TCP_ESTABLISHED_TIMEOUT);
        assert_eq!(w.table.len(), 0);
        assert_eq!(w.nat.in_use(), 0, "the port is given back");
        assert_eq!(
            w.stats
                .conv
                .nat_bindings_expired
                .get(NatProto::Tcp as usize),
            1
        );
    }

    #[test]
    fn idle_bindings_expire_and_used_ones_stay() {
        let mut w = World::new("source = \"subscriber-fixed\"");
        let mut a = udp((CEL, 1), (SRV, 53), b"");
        let mut b = udp((CEL, 2), (SRV, 53), b"");
        w.run(0, true, &mut a);
        w.run(0, true, &mut b);
        // a is used again at 200 s: its deadline moves
        let mut a2 = udp((CEL, 1), (SRV, 53), b"");
        w.run(200 * SEC, true, &mut a2);
        w.expire(UDP_TIMEOUT);
        assert_eq!(w.table.len(), 1);
        let mut back = udp((SRV, 53), src_of(&a2), b"");
        assert_eq!(w.run(UDP_TIMEOUT, false, &mut back), Routed::Translated);
        w.expire(UDP_TIMEOUT + 200 * SEC + UDP_TIMEOUT);
        assert_eq!(w.table.len(), 0);
        assert_eq!(w.stats.conv.nat_bindings.get(NatProto::Udp as usize), 0);
        assert_eq!(
            w.stats
                .conv
                .nat_bindings_expired
                .get(NatProto::Udp as usize),
            2
        );
    }

    #[test]
    fn default_timeouts_are_the_rfcs_and_configured_ones_apply() {
        let w = World::new("source = \"pool\"\npool = \"203.0.113.0/30\"");
        assert_eq!(
            w.policy.nat_timeouts,
            [
                UDP_TIMEOUT,
                60 * SEC,
                TCP_ESTABLISHED_TIMEOUT,
                TCP_TRANSITORY_TIMEOUT
            ]
        );
        let mut w =
            World::new("source = \"subscriber-fixed\"\nudp_timeout_s = 130\nicmp_timeout_s = 90");
        let mut u = udp((CEL, 1), (SRV, 53), b"");
        let mut e = echo(kind::ECHO_REQUEST, CEL, SRV, 9);
        w.run(0, true, &mut u);
        w.run(0, true, &mut e);
        w.expire(90 * SEC - 1);
        assert_eq!(w.table.len(), 2);
        w.expire(90 * SEC);
        assert_eq!(w.table.len(), 1, "the echo binding after 90 s");
        w.expire(130 * SEC);
        assert!(w.table.is_empty(), "the UDP one after 130 s");
        // refused below the RFCs' minimums, with the key named
        let toml = "[nat]\nudp_timeout_s = 30\ntcp_transitory_timeout_s = 60\n";
        let err = crate::config::parse("t.toml", toml)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("udp_timeout_s") && err.contains("RFC 4787"),
            "{err}"
        );
        assert!(
            err.contains("tcp_transitory_timeout_s") && err.contains("RFC 5382"),
            "{err}"
        );
    }

    #[test]
    fn the_table_cap_refuses_new_flows_and_keeps_old_ones() {
        let mut w = World::new("source = \"subscriber-fixed\"\nmax_bindings = 2");
        for port in 1..=3 {
            let mut u = udp((CEL, port), (SRV, 53), b"");
            let want = if port <= 2 {
                Routed::Translated
            } else {
                Routed::Dropped
            };
            assert_eq!(w.run(0, true, &mut u), want, "flow {port}");
        }
        assert_eq!(w.dropped(NatDrop::TableFull), 1);
        let mut u = udp((CEL, 1), (SRV, 53), b"again");
        assert_eq!(w.run(1, true, &mut u), Routed::Translated);
    }

    #[test]
    fn one_subscriber_cannot_take_the_others_share() {
        let mut w = World::new(
            "source = \"pool\"\npool = \"203.0.113.0/30\"\nmax_bindings_per_subscriber = 3",
        );
        let hostile = Ipv4Addr::new(100, 64, 9, 9);
        for port in 1..=10 {
            let mut u = udp((hostile, port), (SRV, 53), b"");
            w.run(0, true, &mut u);
        }
        assert_eq!(w.dropped(NatDrop::SubscriberLimit), 7);
        // another subscriber still gets its bindings
        let mut u = udp((CEL, 1), (SRV, 53), b"");
        assert_eq!(w.run(0, true, &mut u), Routed::Translated);
        // once the hostile one's expire, it may bind again
        w.expire(UDP_TIMEOUT);
        let mut u = udp((hostile, 11), (SRV, 53), b"");
        assert_eq!(w.run(UDP_TIMEOUT, true, &mut u), Routed::Translated);
    }

    #[test]
    fn other_protocols_from_translated_sources_are_dropped() {
        let mut w = World::new("source = \"subscriber-fixed\"");
        let mut gre = packet(47, CEL, SRV, &[0; 8]);
        assert_eq!(w.run(0, true, &mut gre), Routed::Dropped);
        let mut short = udp((CEL, 1), (SRV, 53), b"");
        short.truncate(22);
        assert_eq!(w.run(0, true, &mut short), Routed::Dropped);
        assert_eq!(w.dropped(NatDrop::Protocol), 2);
        assert!(w.table.is_empty());
    }

    /// `datagram` (IP id `id`) split after 16 bytes of its transport part:
    /// the first fragment (MF) and the last (offset 2, in 8-byte units).
    fn fragments(datagram: &[u8], id: u16) -> (Vec<u8>, Vec<u8>) {
        let part = |body: &[u8], frag: u16| {
            let mut d = datagram[..20].to_vec();
            d[2..4].copy_from_slice(&((20 + body.len()) as u16).to_be_bytes());
            d[4..6].copy_from_slice(&id.to_be_bytes());
            d[6..8].copy_from_slice(&frag.to_be_bytes());
            d[10..12].copy_from_slice(&[0, 0]);
            let hc = checksum::checksum(&d);
            d[10..12].copy_from_slice(&hc.to_be_bytes());
            d.extend_from_slice(body);
            d
        };
        (part(&datagram[20..36], 0x2000), part(&datagram[36..], 2))
    }

    /// The transport checksum of a datagram put back together from its
    /// two fragments holds.
    fn reassembled_checksum_holds(first: &[u8], last: &[u8]) {
        assert_eq!(checksum::checksum(&first[..20]), 0);
        assert_eq!(checksum::checksum(&last[..20]), 0);
        assert_eq!(first[12..20], last[12..20], "both fragments' addresses");
        let mut whole = first.to_vec();
        whole.extend_from_slice(&last[20..]);
        let (src, dst) = (v4(&whole, 12).unwrap(), v4(&whole, 16).unwrap());
        let l4 = &whole[20..];
        let acc = checksum::pseudo_v4(src, dst, whole[9], l4.len() as u32);
        assert_eq!(checksum::fold(acc + checksum::sum(l4)), 0xffff);
    }

    #[test]
    fn fragments_follow_their_first_one_both_ways() {
        let mut w = World::new("source = \"subscriber-fixed\"");
        let up = udp((CEL, 7000), (SRV, 53), b"a datagram in two pieces");
        let (mut a, mut b) = fragments(&up, 0x4242);
        assert_eq!(w.run(0, true, &mut a), Routed::Translated);
        assert_eq!(w.run(1, true, &mut b), Routed::Translated);
        assert_eq!(src_of(&a), (FIX, 7000));
        reassembled_checksum_holds(&a, &b);
        // the answer, fragmented too
        let down = udp((SRV, 53), (FIX, 7000), b"an answer in two pieces!");
        let (mut a, mut b) = fragments(&down, 0x0101);
        assert_eq!(w.run(2, false, &mut a), Routed::Translated);
        assert_eq!(w.run(3, false, &mut b), Routed::Translated);
        assert_eq!(dst_of(&a), (CEL, 7000));
        reassembled_checksum_holds(&a, &b);
        // a later fragment before (or without) its first: dropped from a
        // translated source, routed as it is toward the fixed address
        let (_, mut orphan) = fragments(&up, 0x9999);
        assert_eq!(w.run(4, true, &mut orphan), Routed::Dropped);
        assert_eq!(w.dropped(NatDrop::Fragment), 1);
        let (_, mut orphan) = fragments(&down, 0x9999);
        assert_eq!(w.run(4, false, &mut orphan), Routed::Pass);
        // the first fragment vouches for the rest only so long
        let (mut a, mut b) = fragments(&up, 0x7777);
        w.run(5, true, &mut a);
        w.expire(5 + FRAGMENT_TIMEOUT);
        assert_eq!(w.run(5 + FRAGMENT_TIMEOUT, true, &mut b), Routed::Dropped);
        assert_eq!(w.dropped(NatDrop::Fragment), 2);
    }

    #[test]
    fn with_two_workers_replies_and_their_fragments_go_to_the_bindings_owner() {
        // worker 0 binds: its ports are even
        let mut w0 = World::of_two("source = \"subscriber-fixed\"", 0);
        let mut up = udp((CEL, 7001), (SRV, 53), b"q");
        assert_eq!(w0.run(0, true, &mut up), Routed::Translated);
        let outside = src_of(&up);
        assert_eq!(outside.1 % 2, 0, "a port worker 0 owns: {outside:?}");
        // the reply reached worker 1's queue, in two fragments
        let mut w1 = World::of_two("source = \"subscriber-fixed\"", 1);
        let down = udp((SRV, 53), outside, b"an answer in two pieces!");
        let (mut a, mut b) = fragments(&down, 0x0303);
        assert_eq!(w1.run(1, false, &mut a), Routed::Handoff(0));
        assert_eq!(
            w1.run(1, false, &mut b),
            Routed::Handoff(0),
            "the rest follows"
        );
        // worker 0 translates both
        assert_eq!(w0.run(1, false, &mut a), Routed::Translated);
        assert_eq!(w0.run(1, false, &mut b), Routed::Translated);
        assert_eq!(dst_of(&a), (CEL, 7001));
        reassembled_checksum_holds(&a, &b);
        // an echo whose identifier worker 0 cannot keep: its reply, with
        // the identifier worker 0 gave it, still finds the binding
        let mut q = echo(kind::ECHO_REQUEST, CEL, SRV, 0x0101);
        assert_eq!(w0.run(2, true, &mut q), Routed::Translated);
        let id = src_of(&q).1;
        assert_ne!(id, 0x0101, "an odd identifier is worker 1's");
        let mut r = echo(kind::ECHO_REPLY, SRV, FIX, id);
        assert_eq!(w1.run(2, false, &mut r), Routed::Handoff(0));
        assert_eq!(w0.run(2, false, &mut r), Routed::Translated);
        assert_eq!(dst_of(&r), (CEL, 0x0101));
        // the fixed line's own traffic to a port worker 1 owns stays there
        let mut own = udp((SRV, 53), (FIX, 4001), b"");
        assert_eq!(w1.run(2, false, &mut own), Routed::Pass);
    }

    proptest! {
        /// Incremental updates (RFC 1624) agree with checksums computed
        /// afresh, for any payload and ports, a UDP checksum of 0 aside.
        #[test]
        fn translated_packets_keep_valid_checksums(
            payload in proptest::collection::vec(any::<u8>(), 0..64),
            sport in 1u16.., dport in 1u16.., tcp_seg in any::<bool>(),
        ) {
            let mut w = World::new("source = \"pool\"\npool = \"203.0.113.0/24\"");
            let mut up = if tcp_seg {
                tcp((CEL, sport), (SRV, dport), flags::SYN)
            } else {
                udp((CEL, sport), (SRV, dport), &payload)
            };
            prop_assert_eq!(w.run(0, true, &mut up), Routed::Translated);
            checksums_hold(&up);
            let mut down = if tcp_seg {
                tcp((SRV, dport), src_of(&up), flags::SYN | flags::ACK)
            } else {
                udp((SRV, dport), src_of(&up), &payload)
            };
            prop_assert_eq!(w.run(1, false, &mut down), Routed::Translated);
            prop_assert_eq!(dst_of(&down), (CEL, sport));
            checksums_hold(&down);
        }

        /// Nothing the Internet sends panics the NAT or is translated
        /// without a binding.
        #[test]
        fn arbitrary_packets_are_never_translated_without_a_binding(
            bytes in proptest::collection::vec(any::<u8>(), 0..80),
        ) {
            let mut w = World::new("source = \"subscriber-fixed\"");
            let mut d = bytes.clone();
            prop_assert_ne!(w.run(0, false, &mut d), Routed::Translated);
            let mut d = bytes;
            let _ = w.run(0, true, &mut d);
        }
    }
}
