//! NAT toward the server (DESIGN.md §1 `nat source`): which address and
//! port the server sees for a session.
//!
//! - `subscriber-fixed`: the subscriber's fixed-line address, keeping the
//!   client's port when it is free, so a cellular (RFC 6598) source never
//!   reaches the Internet;
//! - `pool`: NAPT from a pool, each subscriber owning a block of
//!   `ports_per_subscriber` ports on one pool address (RFC 6888 REQ-1:
//!   one external address per subscriber; port blocks keep logging small);
//! - `none`: the client's own address.
//!
//! With several workers each binds only ports it owns (DESIGN.md §4,
//! [`super::shard`]): ports whose server replies the ports' RSS delivers to
//! its own queue when hagw programmed the internet ports' RSS ([`Rss`]),
//! else ports of its residue (`port % workers`, replies handed over in
//! software); with a pool, whole blocks of its residue besides, so a
//! subscriber with sessions on two workers holds a block on each.

use super::policy::Policy;
use super::rss::Rss;
use super::shard::Shard;
use crate::config::NatSource;
use hashbrown::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};

/// First port handed out (below are the well-known and registered ranges
/// a server may treat specially).
const FIRST_PORT: u16 = 1024;

/// Why no NAT binding could be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NatError {
    /// The subscriber has no usable address of the server's family.
    NoSource,
    /// The subscriber's block (or the pool) has no free port.
    Exhausted,
}

#[derive(Clone, Copy, Debug)]
struct Block {
    addr: Ipv4Addr,
    base: u16,
    next: u16,
    used: u32,
}

/// The NAT state of one worker.
pub struct Nat {
    kind: NatSource,
    pool: Option<(u32, u32)>,
    block: u16,
    blocks_per_addr: u32,
    blocks: HashMap<IpAddr, Block>,
    free_blocks: Vec<(Ipv4Addr, u16)>,
    used: HashSet<(IpAddr, u16)>,
    shard: Shard,
    rss: Option<Rss>,
}

impl Nat {
    pub fn new(p: &Policy, shard: Shard) -> Nat {
        let block = p.ports_per_subscriber.max(1);
        let blocks_per_addr = u32::from(u16::MAX - FIRST_PORT + 1) / u32::from(block);
        let pool = p.pool.map(|(a, len)| {
            let n = 1u32.checked_shl(32 - u32::from(len)).unwrap_or(1);
            (u32::from(a) & !(n.wrapping_sub(1)), n)
        });
        let mut free_blocks = Vec::new();
        if let (NatSource::Pool, Some((base, n))) = (p.nat, pool) {
            // hand out blocks address by address, lowest first
            for b in (0..blocks_per_addr)
                .rev()
                .filter(|&b| shard.owner_of(b) == shard.index)
            {
                for a in (0..n).rev() {
                    free_blocks.push((Ipv4Addr::from(base + a), FIRST_PORT + (b as u16) * block));
                }
            }
        }
        Nat {
            kind: p.nat,
            pool,
            block,
            blocks_per_addr,
            blocks: HashMap::new(),
            free_blocks,
            used: HashSet::new(),
            shard,
            rss: None,
        }
    }

    /// Ports are chosen for the queue RSS delivers the server's replies to.
    pub fn with_rss(mut self, rss: Option<Rss>) -> Nat {
        self.rss = rss;
        self
    }

    /// The worker that receives a reply from `server` to `nat`: the RSS
    /// queue it hashes to, else the owner of the NAT port.
    pub fn reply_owner(&self, server: (IpAddr, u16), nat: (IpAddr, u16)) -> u16 {
        match &self.rss {
            Some(r) if !self.shard.is_single() => r.queue(server.0, nat.0, server.1, nat.1),
            _ => self.port_owner(self.is_pool_addr(nat.0), nat.1),
        }
    }

    /// The worker whose binding a server's reply to `port` is (on a pool
    /// address: by block, else by port).
    pub fn port_owner(&self, pool_addr: bool, port: u16) -> u16 {
        if pool_addr && port >= FIRST_PORT {
            self.shard
                .owner_of(u32::from(port - FIRST_PORT) / u32::from(self.block))
        } else {
            self.shard.owner_of(u32::from(port))
        }
    }

    /// Ports bound now.
    pub fn in_use(&self) -> usize {
        self.used.len()
    }

    /// Pool blocks per address (for the pool's capacity in metrics).
    pub fn blocks_per_addr(&self) -> u32 {
        self.blocks_per_addr
    }

    /// Is `a` one of our NAT addresses (the pool)?
    pub fn is_pool_addr(&self, a: IpAddr) -> bool {
        match (self.pool, a) {
            (Some((base, n)), IpAddr::V4(a)) => u32::from(a).wrapping_sub(base) < n,
            _ => false,
        }
    }

    /// Binds an address and port for a connection of subscriber `sub`
    /// (its fixed address or its key source) whose client used `src:sport`
    /// toward a server of `server`'s family. `fixed_source` is what
    /// `subscriber-fixed` uses.
    pub fn bind(
        &mut self,
        sub: IpAddr,
        fixed_source: Option<IpAddr>,
        sport: u16,
        server: (IpAddr, u16),
    ) -> Result<(IpAddr, u16), NatError> {
        self.bind_for(sub, fixed_source, sport, server.0.is_ipv4(), Some(server))
    }

    /// [`Nat::bind`] for routed IPv4 traffic (UDP, ICMP queries, plain
    /// TCP: [`super::routed`]), whose replies may come from any remote
    /// (RFC 4787 REQ-1, endpoint-independent mapping): the port is one
    /// whose replies [`Nat::port_owner`] names this worker for, whatever
    /// RSS makes of the remote's address.
    pub fn bind_routed(
        &mut self,
        sub: IpAddr,
        fixed_source: Option<IpAddr>,
        sport: u16,
    ) -> Result<(IpAddr, u16), NatError> {
        self.bind_for(sub, fixed_source, sport, true, None)
    }

    /// Does this worker receive the replies from `server` (`None`: from
    /// any remote, by port ownership alone) to `nat`?
    fn mine(&self, server: Option<(IpAddr, u16)>, nat: (IpAddr, u16)) -> bool {
        let owner = match server {
            Some(s) => self.reply_owner(s, nat),
            None => self.port_owner(self.is_pool_addr(nat.0), nat.1),
        };
        owner == self.shard.index
    }

    fn bind_for(
        &mut self,
        sub: IpAddr,
        fixed_source: Option<IpAddr>,
        sport: u16,
        v4: bool,
        server: Option<(IpAddr, u16)>,
    ) -> Result<(IpAddr, u16), NatError> {
        match self.kind {
            NatSource::SubscriberFixed | NatSource::None => {
                let a = fixed_source.ok_or(NatError::NoSource)?;
                if a.is_ipv4() != v4 {
                    return Err(NatError::NoSource);
                }
                let port = self
                    .free_port_on(a, sport, server)
                    .ok_or(NatError::Exhausted)?;
                self.used.insert((a, port));
                Ok((a, port))
            }
            NatSource::Pool => {
                if !v4 {
                    return Err(NatError::NoSource);
                }
                let blk = match self.blocks.get(&sub) {
                    Some(b) => *b,
                    None => {
                        let (addr, base) = self.free_blocks.pop().ok_or(NatError::Exhausted)?;
                        let b = Block {
                            addr,
                            base,
                            next: 0,
                            used: 0,
                        };
                        self.blocks.insert(sub, b);
                        b
                    }
                };
                let a = IpAddr::V4(blk.addr);
                for k in 0..self.block {
                    let off = (blk.next + k) % self.block;
                    let port = blk.base + off;
                    if self.mine(server, (a, port)) && !self.used.contains(&(a, port)) {
                        self.used.insert((a, port));
                        if let Some(b) = self.blocks.get_mut(&sub) {
                            b.next = (off + 1) % self.block;
                            b.used += 1;
                        }
                        return Ok((a, port));
                    }
                }
                Err(NatError::Exhausted)
            }
        }
    }

    /// A free port of this worker's on `a` toward `server`, `want` when
    /// it is one.
    fn free_port_on(&self, a: IpAddr, want: u16, server: Option<(IpAddr, u16)>) -> Option<u16> {
        let mine = |p: u16| self.mine(server, (a, p));
        if want >= FIRST_PORT && mine(want) && !self.used.contains(&(a, want)) {
            return Some(want);
        }
        let span = u32::from(u16::MAX - FIRST_PORT) + 1;
        let start = u32::from(want) % span;
        (0..span)
            .map(|k| FIRST_PORT + ((start + k) % span) as u16)
            .find(|&p| mine(p) && !self.used.contains(&(a, p)))
    }

    /// Gives a binding back; a pool block whose last port is released goes
    /// back to the free list.
    pub fn release(&mut self, sub: IpAddr, a: IpAddr, port: u16) {
        if !self.used.remove(&(a, port)) {
            return;
        }
        if self.kind == NatSource::Pool {
            if let Some(b) = self.blocks.get_mut(&sub) {
                b.used = b.used.saturating_sub(1);
                if b.used == 0 {
                    let (addr, base) = (b.addr, b.base);
                    self.blocks.remove(&sub);
                    self.free_blocks.push((addr, base));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(extra: &str) -> Policy {
        let toml = format!(
            "[[port]]\nname = \"a\"\ndevice = \"net_null0\"\nrole = \"access-fixed\"\naddresses = [\"192.0.2.1/24\"]\n{extra}"
        );
        let cfg = crate::config::parse("t.toml", &toml).unwrap();
        Policy::from_config(&cfg)
    }

    #[test]
    fn subscriber_fixed_keeps_the_client_port_when_free() {
        let mut n = Nat::new(
            &policy("[nat]\nsource = \"subscriber-fixed\"\n"),
            Shard::default(),
        );
        let fixed: IpAddr = "192.0.2.2".parse().unwrap();
        let srv: IpAddr = "198.51.100.2".parse().unwrap();
        assert_eq!(
            n.bind(fixed, Some(fixed), 40000, (srv, 5201)),
            Ok((fixed, 40000))
        );
        // the same port again (from the cellular address): another port
        let (_, p) = n.bind(fixed, Some(fixed), 40000, (srv, 5201)).unwrap();
        assert_ne!(p, 40000);
        assert_eq!(n.in_use(), 2);
        n.release(fixed, fixed, 40000);
        assert_eq!(n.in_use(), 1);
        // an IPv4 source cannot reach an IPv6 server
        assert_eq!(
            n.bind(
                fixed,
                Some(fixed),
                1,
                ("2001:db8::1".parse().unwrap(), 5201)
            ),
            Err(NatError::NoSource)
        );
    }

    #[test]
    fn pool_gives_each_subscriber_its_own_block_until_exhausted() {
        let mut n = Nat::new(
            &policy(
                "[nat]\nsource = \"pool\"\npool = \"203.0.113.0/31\"\nports_per_subscriber = 32768\n",
            ),
            Shard::default(),
        );
        let srv: IpAddr = "198.51.100.2".parse().unwrap();
        let s1: IpAddr = "192.0.2.2".parse().unwrap();
        let s2: IpAddr = "192.0.2.3".parse().unwrap();
        let (a1, p1) = n.bind(s1, None, 5, (srv, 5201)).unwrap();
        let (a2, p2) = n.bind(s2, None, 5, (srv, 5201)).unwrap();
        assert!(n.is_pool_addr(a1) && n.is_pool_addr(a2));
        assert_ne!((a1, p1 / 32768), (a2, p2 / 32768));
        // 2 addresses x 1 block of 32768 ports above 1024: 2 blocks only
        assert_eq!(n.blocks_per_addr(), 1);
        let s3: IpAddr = "192.0.2.4".parse().unwrap();
        assert_eq!(n.bind(s3, None, 5, (srv, 5201)), Err(NatError::Exhausted));
        n.release(s1, a1, p1);
        assert!(
            n.bind(s3, None, 5, (srv, 5201)).is_ok(),
            "a freed block is reused"
        );
    }

    #[test]
    fn with_rss_known_ports_are_picked_for_the_queue_of_the_reply() {
        let srv: IpAddr = "198.51.100.2".parse().unwrap();
        let fixed: IpAddr = "192.0.2.2".parse().unwrap();
        let rss = Rss {
            key: crate::convert::rss::KEY.to_vec(),
            reta: (0..128).map(|i| i % 4).collect(),
        };
        for w in 0..4 {
            let shard = Shard::new(w, 4);
            for conf in [
                "[nat]\nsource = \"subscriber-fixed\"\n",
                "[nat]\nsource = \"pool\"\npool = \"203.0.113.0/28\"\nports_per_subscriber = 512\n",
            ] {
                let mut n = Nat::new(&policy(conf), shard).with_rss(Some(rss.clone()));
                for k in 0..40u16 {
                    let sub = IpAddr::from([192, 0, 2, (k % 8) as u8]);
                    let server = (srv, 5201 + k % 3);
                    let (a, p) = n.bind(sub, Some(fixed), 40000 + k, server).unwrap();
                    assert_eq!(
                        rss.queue(server.0, a, server.1, p),
                        w as u16,
                        "{conf} {a}:{p}"
                    );
                }
            }
        }
    }

    #[test]
    fn each_worker_binds_only_ports_it_owns() {
        let srv: IpAddr = "198.51.100.2".parse().unwrap();
        let fixed: IpAddr = "192.0.2.2".parse().unwrap();
        for w in 0..2 {
            let shard = Shard::new(w, 2);
            let mut n = Nat::new(&policy("[nat]\nsource = \"subscriber-fixed\"\n"), shard);
            // 40000 is worker 0's: kept there, moved elsewhere on worker 1
            let (_, p) = n.bind(fixed, Some(fixed), 40000, (srv, 5201)).unwrap();
            assert_eq!(p == 40000, w == 0);
            for k in 0..50 {
                let (_, p) = n.bind(fixed, Some(fixed), 40001 + k, (srv, 5201)).unwrap();
                assert_eq!(n.port_owner(false, p), w as u16, "port {p}");
            }
            let mut n = Nat::new(
                &policy("[nat]\nsource = \"pool\"\npool = \"203.0.113.0/28\"\nports_per_subscriber = 512\n"),
                shard,
            );
            for s in 0..40u8 {
                let sub = IpAddr::from([192, 0, 2, s]);
                let (a, p) = n.bind(sub, None, 5, (srv, 5201)).unwrap();
                assert!(n.is_pool_addr(a));
                assert_eq!(n.port_owner(true, p), w as u16, "block of port {p}");
            }
        }
    }
}
