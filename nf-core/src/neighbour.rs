//! Neighbour tables for ARP (RFC 826) and IPv6 Neighbor Discovery
//! (RFC 4861 §7.2), with a bounded queue of packets waiting for resolution.
//!
//! The table is sans-IO: it says when to send a probe and hands back the
//! packets that resolution released or gave up on; the worker does the I/O.

use crate::wire::EthernetAddress;
use core::hash::Hash;
use hashbrown::HashMap;
use std::collections::VecDeque;

/// Limits and timers of a neighbour table.
#[derive(Clone, Copy, Debug)]
pub struct NeighbourConfig {
    /// Maximum entries (resolved and incomplete).
    pub max_entries: usize,
    /// Packets held per incomplete entry (RFC 4861 §7.2.2 suggests 1; more
    /// keeps the first packets of a flow).
    pub max_pending_per_entry: usize,
    /// Packets held across all entries.
    pub max_pending_total: usize,
    /// How long a learned entry is used before it is probed again.
    pub reachable_ns: u64,
    /// Interval between probes of an incomplete entry.
    pub retrans_ns: u64,
    /// Probes before giving up (RFC 4861 MAX_MULTICAST_SOLICIT = 3).
    pub max_probes: u8,
}

impl Default for NeighbourConfig {
    #[inline]
    fn default() -> Self {
        NeighbourConfig {
            max_entries: 4096,
            max_pending_per_entry: 4,
            max_pending_total: 1024,
            reachable_ns: 60_000_000_000,
            retrans_ns: 1_000_000_000,
            max_probes: 3,
        }
    }
}

#[derive(Debug)]
enum State {
    Incomplete {
        probes: u8,
        next_probe_ns: u64,
    },
    Reachable {
        mac: EthernetAddress,
        expires_ns: u64,
    },
}

#[derive(Debug)]
struct Entry<P> {
    state: State,
    pending: VecDeque<P>,
}

/// What [`NeighbourTable::resolve`] did with a packet.
#[derive(Debug)]
pub enum Resolve<P> {
    /// The neighbour is known: send `P` to this MAC. `refresh` asks the
    /// caller to send a unicast probe because the entry is about to expire.
    Hit(EthernetAddress, P),
    /// The packet waits; send a probe (broadcast/multicast) if `probe`.
    Queued { probe: bool },
    /// The packet could not be queued (pending queue or table full).
    Dropped(P, DropReason),
}

/// Why a packet was not queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    TableFull,
    PendingFull,
}

/// A neighbour table keyed by IP address (`Ipv4Addr` or `Ipv6Addr`).
#[derive(Debug)]
pub struct NeighbourTable<K, P> {
    cfg: NeighbourConfig,
    entries: HashMap<K, Entry<P>>,
    pending_total: usize,
    /// Entries used after expiry, to be re-probed by unicast at the next poll.
    refresh_due: Vec<K>,
    /// The last hit: a gateway usually sends everything to one next hop per
    /// port, so most lookups end here without hashing.
    last: Option<(K, EthernetAddress, u64)>,
}

impl<K: Copy + Eq + Hash, P> NeighbourTable<K, P> {
    #[inline]
    pub fn new(cfg: NeighbourConfig) -> Self {
        NeighbourTable {
            cfg,
            entries: HashMap::with_capacity(cfg.max_entries.min(65536)),
            pending_total: 0,
            refresh_due: Vec::with_capacity(64),
            last: None,
        }
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    #[inline]
    pub fn pending(&self) -> usize {
        self.pending_total
    }

    /// The MAC of a reachable neighbour.
    #[inline]
    pub fn get(&mut self, now_ns: u64, ip: K) -> Option<EthernetAddress> {
        self.get_until(now_ns, ip).map(|(mac, _)| mac)
    }

    /// The MAC of a reachable neighbour and the time its entry expires
    /// (until then, only a [`learn`](Self::learn) can change it).
    #[inline]
    pub fn get_until(&mut self, now_ns: u64, ip: K) -> Option<(EthernetAddress, u64)> {
        if let Some((k, mac, exp)) = self.last {
            if k == ip && exp > now_ns {
                return Some((mac, exp));
            }
        }
        match self.entries.get(&ip)?.state {
            State::Reachable { mac, expires_ns } if expires_ns > now_ns => {
                self.last = Some((ip, mac, expires_ns));
                Some((mac, expires_ns))
            }
            _ => None,
        }
    }

    /// Finds the MAC for `ip`, or queues `pkt` until it is known.
    #[inline]
    pub fn resolve(&mut self, now_ns: u64, ip: K, pkt: P) -> Resolve<P> {
        let cfg = self.cfg;
        if let Some(e) = self.entries.get_mut(&ip) {
            return match e.state {
                State::Reachable { mac, expires_ns } if expires_ns > now_ns => {
                    Resolve::Hit(mac, pkt)
                }
                State::Reachable { mac, .. } => {
                    // Expired: keep forwarding with the old MAC while we
                    // re-probe (RFC 4861 STALE → DELAY/PROBE), so a flow does
                    // not stall on a refresh.
                    e.state = State::Reachable {
                        mac,
                        expires_ns: now_ns + cfg.retrans_ns * u64::from(cfg.max_probes),
                    };
                    self.refresh_due.push(ip);
                    Resolve::Hit(mac, pkt)
                }
                State::Incomplete { .. } => {
                    if e.pending.len() >= cfg.max_pending_per_entry
                        || self.pending_total >= cfg.max_pending_total
                    {
                        Resolve::Dropped(pkt, DropReason::PendingFull)
                    } else {
                        e.pending.push_back(pkt);
                        self.pending_total += 1;
                        Resolve::Queued { probe: false }
                    }
                }
            };
        }
        if self.entries.len() >= cfg.max_entries {
            return Resolve::Dropped(pkt, DropReason::TableFull);
        }
        if self.pending_total >= cfg.max_pending_total {
            return Resolve::Dropped(pkt, DropReason::PendingFull);
        }
        let mut pending = VecDeque::with_capacity(cfg.max_pending_per_entry);
        pending.push_back(pkt);
        self.pending_total += 1;
        self.entries.insert(
            ip,
            Entry {
                state: State::Incomplete {
                    probes: 1,
                    next_probe_ns: now_ns + cfg.retrans_ns,
                },
                pending,
            },
        );
        Resolve::Queued { probe: true }
    }

    /// Records `ip → mac` (from an ARP packet or NA/NS) and hands the packets
    /// that waited for it to `release`. `create` says whether an unknown
    /// neighbour gets an entry (true when the packet was addressed to us,
    /// RFC 826 "merge" rule / RFC 4861 §7.2.3).
    #[inline]
    pub fn learn(
        &mut self,
        now_ns: u64,
        ip: K,
        mac: EthernetAddress,
        create: bool,
        mut release: impl FnMut(EthernetAddress, P),
    ) {
        let expires_ns = now_ns + self.cfg.reachable_ns;
        let full = self.entries.len() >= self.cfg.max_entries;
        self.last = None;
        match self.entries.get_mut(&ip) {
            Some(e) => {
                e.state = State::Reachable { mac, expires_ns };
                while let Some(p) = e.pending.pop_front() {
                    self.pending_total -= 1;
                    release(mac, p);
                }
            }
            None if create && !full => {
                self.entries.insert(
                    ip,
                    Entry {
                        state: State::Reachable { mac, expires_ns },
                        pending: VecDeque::new(),
                    },
                );
            }
            None => {}
        }
    }

    /// Advances timers: calls `probe(ip, unicast_mac)` for entries that need a
    /// (re-)probe, and `give_up(ip, pkt)` for every packet of an entry whose
    /// probes ran out (the caller answers with ICMP host unreachable).
    /// Expired reachable entries that nobody used are removed.
    #[inline]
    pub fn poll(
        &mut self,
        now_ns: u64,
        mut probe: impl FnMut(K, Option<EthernetAddress>),
        mut give_up: impl FnMut(K, P),
    ) {
        let cfg = self.cfg;
        self.last = None;
        for ip in self.refresh_due.drain(..) {
            if let Some(Entry {
                state: State::Reachable { mac, .. },
                ..
            }) = self.entries.get(&ip)
            {
                probe(ip, Some(*mac));
            }
        }
        let pending_total = &mut self.pending_total;
        self.entries.retain(|ip, e| match &mut e.state {
            State::Incomplete {
                probes,
                next_probe_ns,
            } if *next_probe_ns <= now_ns => {
                if *probes >= cfg.max_probes {
                    while let Some(p) = e.pending.pop_front() {
                        *pending_total -= 1;
                        give_up(*ip, p);
                    }
                    false
                } else {
                    *probes += 1;
                    *next_probe_ns = now_ns + cfg.retrans_ns;
                    probe(*ip, None);
                    true
                }
            }
            State::Reachable { expires_ns, .. } => *expires_ns > now_ns,
            _ => true,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;

    const S: u64 = 1_000_000_000;

    fn table(max_entries: usize) -> NeighbourTable<Ipv4Addr, u32> {
        NeighbourTable::new(NeighbourConfig {
            max_entries,
            max_pending_per_entry: 2,
            max_pending_total: 3,
            ..Default::default()
        })
    }

    #[test]
    fn queue_then_release() {
        let mut t = table(8);
        let ip = Ipv4Addr::new(10, 0, 0, 1);
        assert!(matches!(
            t.resolve(0, ip, 1),
            Resolve::Queued { probe: true }
        ));
        assert!(matches!(
            t.resolve(0, ip, 2),
            Resolve::Queued { probe: false }
        ));
        assert!(matches!(
            t.resolve(0, ip, 3),
            Resolve::Dropped(3, DropReason::PendingFull)
        ));
        let mac = EthernetAddress([2, 0, 0, 0, 0, 1]);
        let mut out = vec![];
        t.learn(S / 2, ip, mac, false, |m, p| out.push((m, p)));
        assert_eq!(out, vec![(mac, 1), (mac, 2)]);
        assert_eq!(t.pending(), 0);
        assert!(matches!(t.resolve(S, ip, 4), Resolve::Hit(m, 4) if m == mac));
    }

    #[test]
    fn probes_then_gives_up() {
        let mut t = table(8);
        let ip = Ipv4Addr::new(10, 0, 0, 2);
        let _ = t.resolve(0, ip, 7);
        let (mut probes, mut lost) = (0, vec![]);
        for s in 1..=5 {
            t.poll(s * S, |_, _| probes += 1, |_, p| lost.push(p));
        }
        assert_eq!(probes, 2); // 1 at resolve + 2 retries = max_probes 3
        assert_eq!(lost, vec![7]);
        assert!(t.is_empty());
        assert_eq!(t.pending(), 0);
    }

    #[test]
    fn table_cap_and_create_rule() {
        let mut t = table(1);
        let mac = EthernetAddress([2; 6]);
        t.learn(0, Ipv4Addr::new(1, 1, 1, 1), mac, false, |_, _| {});
        assert!(t.is_empty(), "unsolicited info is not cached");
        t.learn(0, Ipv4Addr::new(1, 1, 1, 1), mac, true, |_, _| {});
        assert_eq!(t.get(0, Ipv4Addr::new(1, 1, 1, 1)), Some(mac));
        assert!(matches!(
            t.resolve(0, Ipv4Addr::new(2, 2, 2, 2), 1),
            Resolve::Dropped(1, DropReason::TableFull)
        ));
    }

    #[test]
    fn expiry_keeps_forwarding_and_reprobes() {
        let mut t = table(4);
        let ip = Ipv4Addr::new(10, 0, 0, 3);
        let mac = EthernetAddress([2, 3, 3, 3, 3, 3]);
        t.learn(0, ip, mac, true, |_, _| {});
        let late = 61 * S;
        assert!(matches!(t.resolve(late, ip, 1), Resolve::Hit(m, 1) if m == mac));
        let mut unicast = None;
        t.poll(late, |_, m| unicast = m, |_, _| {});
        assert_eq!(unicast, Some(mac));
        // nobody answers: the entry is dropped after the probe window
        t.poll(late + 10 * S, |_, _| {}, |_, _| {});
        assert!(t.is_empty());
    }
}
