//! Sessions spread over workers (DESIGN.md §4): each worker owns its
//! sessions and nothing is shared on the data path. What a packet belongs
//! to is told by what hagw chose itself:
//!
//! - the MPTCP token of a session's key: hagw draws keys until
//!   `token % workers == owner`, so an MP_JOIN SYN names its worker;
//! - the NAT port the server sees: each worker binds only ports (or, with a
//!   pool, port blocks) of its own residue, so the server's replies name
//!   their worker too.
//!
//! A packet that lands on another worker's queue is handed to its owner
//! (and so is every later packet of that subflow). Tokens hagw did not
//! choose (the server's, in a withdrawn connection; a SYN cookie's, derived
//! from the cookie) are listed in a [`Directory`] shared by the
//! workers, consulted only for MP_JOIN SYNs. So are the client 4-tuples of
//! every subflow, for the MPTCP packets of a subflow that the NIC (or
//! `net_af_packet`'s fanout rolling over a full ring) delivers to another
//! worker than its SYN's: looked up only for such strays and for SYNs,
//! never for a packet of a flow the worker knows.

use hashbrown::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// A client subflow's 4-tuple: (client address, port, gateway-side
/// address, port).
pub type Tuple = (IpAddr, u16, IpAddr, u16);

/// Locks the flow directory is split over (by port), so that workers
/// setting up sessions at once seldom meet.
const FLOW_SHARDS: usize = 16;

/// Which worker this is, of how many.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u16,
    pub count: u16,
}

impl Default for Shard {
    fn default() -> Self {
        Shard { index: 0, count: 1 }
    }
}

impl Shard {
    pub fn new(index: usize, count: usize) -> Shard {
        let count = count.clamp(1, usize::from(u16::MAX)) as u16;
        Shard {
            index: (index as u16).min(count - 1),
            count,
        }
    }

    /// The worker a token of a key hagw drew belongs to.
    pub fn token_owner(&self, token: u32) -> u16 {
        self.owner_of(token)
    }

    /// The worker that owns `n` of a round-robin partition.
    pub fn owner_of(&self, n: u32) -> u16 {
        (n % u32::from(self.count)) as u16
    }

    pub fn is_single(&self) -> bool {
        self.count == 1
    }
}

/// Tokens whose residue does not name their worker, shared by all workers.
/// Locked on session setup and teardown of such sessions and on MP_JOIN
/// SYNs whose token is not the receiving worker's: never per data packet.
pub struct Directory {
    map: Mutex<HashMap<u32, u16>>,
    flows: [Mutex<HashMap<Tuple, u16>>; FLOW_SHARDS],
}

impl Default for Directory {
    fn default() -> Self {
        Directory {
            map: Mutex::default(),
            flows: std::array::from_fn(|_| Mutex::default()),
        }
    }
}

impl Directory {
    fn flow_shard(&self, t: &Tuple) -> Option<&Mutex<HashMap<Tuple, u16>>> {
        self.flows.get(usize::from(t.1 ^ t.3) % FLOW_SHARDS)
    }

    /// A subflow's owner, set up on it.
    pub fn add_flow(&self, t: Tuple, owner: u16) {
        if let Some(Ok(mut m)) = self.flow_shard(&t).map(Mutex::lock) {
            m.insert(t, owner);
        }
    }

    pub fn remove_flow(&self, t: Tuple, owner: u16) {
        if let Some(Ok(mut m)) = self.flow_shard(&t).map(Mutex::lock) {
            if m.get(&t) == Some(&owner) {
                m.remove(&t);
            }
        }
    }

    pub fn flow_owner(&self, t: Tuple) -> Option<u16> {
        let m = self.flow_shard(&t)?.lock().ok()?;
        m.get(&t).copied()
    }

    pub fn insert(&self, token: u32, owner: u16) {
        if let Ok(mut m) = self.map.lock() {
            m.insert(token, owner);
        }
    }

    pub fn remove(&self, token: u32, owner: u16) {
        if let Ok(mut m) = self.map.lock() {
            if m.get(&token) == Some(&owner) {
                m.remove(&token);
            }
        }
    }

    pub fn get(&self, token: u32) -> Option<u16> {
        self.map.lock().ok()?.get(&token).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_ports_split_by_residue() {
        let s = Shard::new(1, 3);
        assert_eq!(s.token_owner(7), 1);
        assert_eq!(s.owner_of(9), 0);
        assert!(!s.is_single());
        assert_eq!(Shard::new(5, 2), Shard { index: 1, count: 2 });
        let d = Directory::default();
        d.insert(42, 1);
        assert_eq!(d.get(42), Some(1));
        d.remove(42, 0);
        assert_eq!(d.get(42), Some(1), "only the owner removes its entry");
        d.remove(42, 1);
        assert_eq!(d.get(42), None);
        let t: Tuple = ([192, 0, 2, 2].into(), 40000, [198, 51, 100, 2].into(), 5201);
        d.add_flow(t, 1);
        assert_eq!(d.flow_owner(t), Some(1));
        d.remove_flow(t, 0);
        assert_eq!(d.flow_owner(t), Some(1));
        d.remove_flow(t, 1);
        assert_eq!(d.flow_owner(t), None);
    }
}
