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

/// A DIR-16-8-8 multibit trie for IPv4 (the rte_lpm idea, smaller): one
/// 65,536-entry first level indexed by the top 16 bits, 256-entry second and
/// third levels for longer prefixes. A lookup is one to three array reads,
/// no hashing. Built in one pass from a route list; route changes rebuild it.
#[derive(Clone, Debug)]
pub struct Dir4<V> {
    l1: Vec<u32>,
    l2: Vec<[u32; 256]>,
    l3: Vec<[u32; 256]>,
    values: Vec<V>,
}

const EXT: u32 = 1 << 31;
const IDX_MASK: u32 = 0x00ff_ffff;

#[inline]
fn leaf(depth: u8, vidx: u32) -> u32 {
    (u32::from(depth) << 24) | (vidx + 1)
}

impl<V: Clone> Dir4<V> {
    /// Builds the trie from `(prefix, len, value)` routes (at most 2^24).
    pub fn build<'a>(routes: impl IntoIterator<Item = (u32, u8, &'a V)>) -> Self
    where
        V: 'a,
    {
        let mut rs: Vec<(u32, u8, &V)> = routes
            .into_iter()
            .map(|(p, l, v)| (p.masked(l.min(32)), l.min(32), v))
            .collect();
        // Shorter prefixes first: a longer one always overwrites.
        rs.sort_by_key(|r| r.1);
        let mut d = Dir4 {
            l1: vec![0; 1 << 16],
            l2: Vec::new(),
            l3: Vec::new(),
            values: Vec::with_capacity(rs.len()),
        };
        for (p, len, v) in rs {
            let vi = d.values.len() as u32;
            d.values.push(v.clone());
            let e = leaf(len, vi);
            let i1 = (p >> 16) as usize;
            if len <= 16 {
                let n = 1usize << (16 - len);
                for x in &mut d.l1[i1..i1 + n] {
                    *x = e;
                }
                continue;
            }
            let t2 = d.sub2(i1);
            let i2 = ((p >> 8) & 0xff) as usize;
            if len <= 24 {
                let n = 1usize << (24 - len);
                for x in &mut d.l2[t2][i2..i2 + n] {
                    *x = e;
                }
                continue;
            }
            let t3 = d.sub3(t2, i2);
            let i3 = (p & 0xff) as usize;
            let n = 1usize << (32 - len);
            for x in &mut d.l3[t3][i3..i3 + n] {
                *x = e;
            }
        }
        d
    }

    fn sub2(&mut self, i1: usize) -> usize {
        let e = self.l1[i1];
        if e & EXT != 0 {
            return (e & !EXT) as usize;
        }
        self.l2.push([e; 256]);
        let t = self.l2.len() - 1;
        self.l1[i1] = EXT | t as u32;
        t
    }

    fn sub3(&mut self, t2: usize, i2: usize) -> usize {
        let e = self.l2[t2][i2];
        if e & EXT != 0 {
            return (e & !EXT) as usize;
        }
        self.l3.push([e; 256]);
        let t = self.l3.len() - 1;
        self.l2[t2][i2] = EXT | t as u32;
        t
    }

    /// The value of the longest matching prefix, with its length.
    #[inline(always)]
    pub fn lookup(&self, a: u32) -> Option<(u8, &V)> {
        let mut e = *self.l1.get((a >> 16) as usize)?;
        if e & EXT != 0 {
            e = *self
                .l2
                .get((e & !EXT) as usize)?
                .get(((a >> 8) & 0xff) as usize)?;
            if e & EXT != 0 {
                e = *self.l3.get((e & !EXT) as usize)?.get((a & 0xff) as usize)?;
            }
        }
        let vi = e & IDX_MASK;
        if vi == 0 {
            return None;
        }
        Some(((e >> 24) as u8 & 0x3f, self.values.get(vi as usize - 1)?))
    }
}

impl<K: LpmKey, V> Lpm<K, V> {
    /// Every route as `(prefix, len, value)`.
    pub fn iter(&self) -> impl Iterator<Item = (K, u8, &V)> {
        self.levels
            .iter()
            .flat_map(|(l, m)| m.iter().map(move |(k, v)| (*k, *l, v)))
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
    /// The IPv4 trie built by [`RoutingTable::freeze`]; dropped on change.
    v4_dir: Option<Dir4<NextHop>>,
}

impl RoutingTable {
    #[inline]
    pub fn add_v4(&mut self, prefix: Ipv4Addr, len: u8, nh: NextHop) {
        self.v4.insert(u32::from(prefix), len, nh);
        self.v4_dir = None;
    }
    /// Builds the IPv4 trie for fast lookups (call after the last change).
    pub fn freeze(&mut self) {
        self.v4_dir = Some(Dir4::build(self.v4.iter()));
    }
    #[inline]
    pub fn add_v6(&mut self, prefix: Ipv6Addr, len: u8, nh: NextHop) {
        self.v6.insert(u128::from(prefix), len, nh);
    }
    #[inline(always)]
    pub fn lookup_v4(&self, a: Ipv4Addr) -> Option<&NextHop> {
        match &self.v4_dir {
            Some(d) => d.lookup(u32::from(a)).map(|(_, v)| v),
            None => self.v4.lookup(u32::from(a)).map(|(_, v)| v),
        }
    }
    #[inline]
    pub fn lookup_v6(&self, a: Ipv6Addr) -> Option<&NextHop> {
        self.v6.lookup(u128::from(a)).map(|(_, v)| v)
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
        assert_eq!(t.lookup_v6("2001:db8:c::2".parse().unwrap()), Some(&nh(1)));
        assert_eq!(t.lookup_v6("2001:db8:d::2".parse().unwrap()), Some(&nh(2)));
        assert_eq!(t.lookup_v4(Ipv4Addr::LOCALHOST), None);
    }

    #[test]
    fn dir4_levels() {
        let routes = [
            (0u32, 0u8, 1u32),
            (0x0a00_0000, 8, 2),
            (0x0a01_0000, 16, 3),
            (0x0a01_0200, 24, 4),
            (0x0a01_0280, 25, 5),
            (0x0a01_0203, 32, 6),
        ];
        let d = Dir4::build(routes.iter().map(|(p, l, v)| (*p, *l, v)));
        let l = |a: u32| d.lookup(a).map(|(len, v)| (len, *v));
        assert_eq!(l(0x0a01_0203), Some((32, 6)));
        assert_eq!(l(0x0a01_0281), Some((25, 5)));
        assert_eq!(l(0x0a01_0204), Some((24, 4)));
        assert_eq!(l(0x0a01_0304), Some((16, 3)));
        assert_eq!(l(0x0a02_0304), Some((8, 2)));
        assert_eq!(l(0x0b02_0304), Some((0, 1)));
        let empty: Dir4<u32> = Dir4::build(std::iter::empty());
        assert_eq!(empty.lookup(1), None);
    }

    proptest! {
        /// The trie agrees with a linear scan over the same routes.
        #[test]
        fn dir4_matches_linear_scan(routes in proptest::collection::vec((any::<u32>(), 0u8..=32), 0..40), probes in proptest::collection::vec(any::<u32>(), 1..40)) {
            let mut t: Lpm<u32, u8> = Lpm::new();
            for (p, l) in &routes { t.insert(*p, *l, *l); }
            let d = Dir4::build(t.iter());
            for a in probes.iter().copied().chain(routes.iter().map(|r| r.0)) {
                let best = routes.iter().filter(|(p, l)| a.masked(*l) == p.masked(*l)).map(|(_, l)| *l).max();
                prop_assert_eq!(d.lookup(a).map(|(l, v)| (l, *v)), best.map(|b| (b, b)));
            }
        }

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
