//! Longest-prefix-match routing tables for IPv4 and IPv6.
//!
//! One hash map per prefix length that is in use, probed from the longest
//! length down: a lookup costs one hash probe per distinct prefix length
//! present (a handful in practice), independent of the number of routes.

use core::hash::Hash;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use hashbrown::HashMap;

/// An address usable as an LPM key.
pub trait LpmKey: Copy + Eq + Hash {
    const BITS: u8;
    fn masked(self, len: u8) -> Self;
}

impl LpmKey for u32 {
    const BITS: u8 = 32;
    #[inline]
    fn masked(self, len: u8) -> u32 {
        if len == 0 {
            0
        } else {
            self & (u32::MAX << (32 - u32::from(len.min(32))))
        }
    }
}

impl LpmKey for u128 {
    const BITS: u8 = 128;
    #[inline]
    fn masked(self, len: u8) -> u128 {
        if len == 0 {
            0
        } else {
            self & (u128::MAX << (128 - u32::from(len.min(128))))
        }
    }
}

/// A longest-prefix-match table.
#[derive(Clone, Debug)]
pub struct Lpm<K: LpmKey, V> {
    /// (prefix length, routes of that length), longest first.
    levels: Vec<(u8, HashMap<K, V>)>,
}

impl<K: LpmKey, V> Default for Lpm<K, V> {
    #[inline]
    fn default() -> Self {
        Lpm { levels: Vec::new() }
    }
}

impl<K: LpmKey, V> Lpm<K, V> {
    #[inline]
    pub fn new() -> Self {
        Self::default()
    }
    /// Inserts or replaces a route; returns the previous value. Lengths
    /// beyond the key width are clamped.
    #[inline]
    pub fn insert(&mut self, prefix: K, len: u8, v: V) -> Option<V> {
        let len = len.min(K::BITS);
        let key = prefix.masked(len);
        let pos = match self.levels.iter().position(|(l, _)| *l <= len) {
            Some(i) if self.levels[i].0 == len => i,
            Some(i) => {
                self.levels.insert(i, (len, HashMap::new()));
                i
            }
            None => {
                self.levels.push((len, HashMap::new()));
                self.levels.len() - 1
            }
        };
        self.levels[pos].1.insert(key, v)
    }
    /// Removes a route.
    #[inline]
    pub fn remove(&mut self, prefix: K, len: u8) -> Option<V> {
        let len = len.min(K::BITS);
        let i = self.levels.iter().position(|(l, _)| *l == len)?;
        let v = self.levels[i].1.remove(&prefix.masked(len));
        if self.levels[i].1.is_empty() {
            self.levels.remove(i);
        }
        v
    }
    /// The value of the longest prefix containing `addr`, with its length.
    #[inline]
    pub fn lookup(&self, addr: K) -> Option<(u8, &V)> {
        for (len, map) in &self.levels {
            if let Some(v) = map.get(&addr.masked(*len)) {
                return Some((*len, v));
            }
        }
        None
    }
    #[inline]
    pub fn len(&self) -> usize {
        self.levels.iter().map(|(_, m)| m.len()).sum()
    }
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.levels.is_empty()
    }
}

/// Where a route sends a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NextHop {
    /// Egress port index (hagw's port list, not the DPDK port id).
    pub port: u16,
    /// Gateway; `None` for a connected route (the destination is on-link).
    pub gateway: Option<IpAddr>,
}

/// The IPv4 and IPv6 routing tables of one worker.
#[derive(Clone, Debug, Default)]
pub struct RoutingTable {
    pub v4: Lpm<u32, NextHop>,
    pub v6: Lpm<u128, NextHop>,
}

impl RoutingTable {
    #[inline]
    pub fn add_v4(&mut self, prefix: Ipv4Addr, len: u8, nh: NextHop) {
        self.v4.insert(u32::from(prefix), len, nh);
    }
    #[inline]
    pub fn add_v6(&mut self, prefix: Ipv6Addr, len: u8, nh: NextHop) {
        self.v6.insert(u128::from(prefix), len, nh);
    }
    #[inline]
    pub fn lookup_v4(&self, a: Ipv4Addr) -> Option<NextHop> {
        self.v4.lookup(u32::from(a)).map(|(_, v)| *v)
    }
    #[inline]
    pub fn lookup_v6(&self, a: Ipv6Addr) -> Option<NextHop> {
        self.v6.lookup(u128::from(a)).map(|(_, v)| *v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn longest_wins() {
        let mut t: Lpm<u32, u8> = Lpm::new();
        t.insert(u32::from(Ipv4Addr::new(0, 0, 0, 0)), 0, 0);
        t.insert(u32::from(Ipv4Addr::new(10, 0, 0, 0)), 8, 8);
        t.insert(u32::from(Ipv4Addr::new(10, 1, 0, 0)), 16, 16);
        t.insert(u32::from(Ipv4Addr::new(10, 1, 2, 3)), 32, 32);
        let l = |t: &Lpm<u32, u8>, a: Ipv4Addr| t.lookup(u32::from(a)).map(|(_, v)| *v);
        assert_eq!(l(&t, Ipv4Addr::new(10, 1, 2, 3)), Some(32));
        assert_eq!(l(&t, Ipv4Addr::new(10, 1, 2, 4)), Some(16));
        assert_eq!(l(&t, Ipv4Addr::new(10, 9, 2, 4)), Some(8));
        assert_eq!(l(&t, Ipv4Addr::new(11, 9, 2, 4)), Some(0));
        assert_eq!(
            t.remove(u32::from(Ipv4Addr::new(10, 1, 9, 9)), 16),
            Some(16)
        );
        assert_eq!(l(&t, Ipv4Addr::new(10, 1, 2, 4)), Some(8));
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn v6() {
        let mut t = RoutingTable::default();
        let nh = |p| NextHop {
            port: p,
            gateway: None,
        };
        t.add_v6("2001:db8:c::".parse().unwrap(), 64, nh(1));
        t.add_v6("::".parse().unwrap(), 0, nh(2));
        assert_eq!(t.lookup_v6("2001:db8:c::2".parse().unwrap()), Some(nh(1)));
        assert_eq!(t.lookup_v6("2001:db8:d::2".parse().unwrap()), Some(nh(2)));
        assert_eq!(t.lookup_v4(Ipv4Addr::LOCALHOST), None);
    }

    proptest! {
        /// The table agrees with a linear scan over the same routes.
        #[test]
        fn matches_linear_scan(routes in proptest::collection::vec((any::<u32>(), 0u8..=32), 0..40), probes in proptest::collection::vec(any::<u32>(), 1..40)) {
            let mut t: Lpm<u32, (u32, u8)> = Lpm::new();
            for (p, l) in &routes { t.insert(*p, *l, (p.masked(*l), *l)); }
            for a in probes {
                let best = routes.iter().filter(|(p, l)| a.masked(*l) == p.masked(*l)).map(|(_, l)| *l).max();
                prop_assert_eq!(t.lookup(a).map(|(l, _)| l), best);
            }
        }
    }
}
