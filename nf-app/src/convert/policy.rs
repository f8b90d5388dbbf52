//! Which connections are converted, and how (DESIGN.md §1): the validated
//! `[conversion]`, `[nat]` and `[[subscriber]]` sections in typed form.

use crate::config::Config;
use crate::config::{NatSource, Scheduler, Withdraw};
use hashbrown::HashMap;
use nf_mptcp::scheduler::{self as sched, PathRole};
use std::net::{IpAddr, Ipv4Addr};

/// An address prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prefix {
    pub addr: IpAddr,
    pub len: u8,
}

impl Prefix {
    pub fn parse(s: &str) -> Option<Prefix> {
        let (a, l) = s.split_once('/').unwrap_or((s, ""));
        let addr: IpAddr = a.trim().parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = if l.is_empty() {
            max
        } else {
            l.trim().parse().ok()?
        };
        (len <= max).then_some(Prefix { addr, len })
    }
    pub fn contains(&self, a: IpAddr) -> bool {
        match (self.addr, a) {
            (IpAddr::V4(p), IpAddr::V4(a)) => {
                let m = u32::MAX.checked_shl(32 - u32::from(self.len)).unwrap_or(0);
                u32::from(p) & m == u32::from(a) & m
            }
            (IpAddr::V6(p), IpAddr::V6(a)) => {
                let m = u128::MAX
                    .checked_shl(128 - u32::from(self.len))
                    .unwrap_or(0);
                u128::from(p) & m == u128::from(a) & m
            }
            _ => false,
        }
    }
}

/// A subscriber from the static table: the fixed-line address the server
/// sees, and the cellular addresses that belong to it.
#[derive(Clone, Debug)]
pub struct Subscriber {
    pub fixed: IpAddr,
    pub cellular: Vec<IpAddr>,
}

/// The conversion policy of a worker.
#[derive(Clone, Debug)]
pub struct Policy {
    pub enabled: bool,
    pub withdraw: bool,
    pub scheduler: Scheduler,
    /// `weighted`: fixed and cellular shares.
    pub weights: [u32; 2],
    pub cc: nf_tcp::cc::CcKind,
    /// Ask clients for DSS checksums.
    pub checksums: bool,
    pub advertise: Vec<IpAddr>,
    pub subscriber_prefixes: Vec<Prefix>,
    pub destination_prefixes: Vec<Prefix>,
    pub destination_ports: Vec<u16>,
    pub max_sessions: usize,
    pub max_sessions_per_subscriber: usize,
    pub session_buffer: usize,
    pub nat: NatSource,
    pub pool: Option<(Ipv4Addr, u8)>,
    pub ports_per_subscriber: u16,
    pub subscribers: Vec<Subscriber>,
    /// Each address of the subscribers (fixed and cellular) → its entry
    /// in `subscribers` (the first that lists it): looked up per packet by
    /// the NAT of routed traffic.
    by_addr: HashMap<IpAddr, usize>,
    /// Idle time after which a session is reset (ns).
    pub idle_timeout: u64,
    /// Idle timeouts of the NAT bindings of routed traffic (ns): UDP, ICMP
    /// queries, established TCP, transitory TCP ([`super::routed`]).
    pub nat_timeouts: [u64; 4],
    /// NAT bindings of routed traffic at most (this worker's share).
    pub max_bindings: usize,
    /// Of which one subscriber may hold at most.
    pub max_bindings_per_subscriber: usize,
}

impl Policy {
    pub fn from_config(cfg: &Config) -> Policy {
        let subscribers: Vec<Subscriber> = cfg
            .raw
            .subscribers
            .iter()
            .filter_map(|s| {
                Some(Subscriber {
                    fixed: s.fixed.parse().ok()?,
                    cellular: s.cellular.iter().filter_map(|a| a.parse().ok()).collect(),
                })
            })
            .collect();
        let mut by_addr = HashMap::new();
        for (i, s) in subscribers.iter().enumerate() {
            for a in std::iter::once(&s.fixed).chain(&s.cellular) {
                by_addr.entry(*a).or_insert(i);
            }
        }
        let c = &cfg.raw.conversion;
        let prefixes = |v: &[String]| v.iter().filter_map(|s| Prefix::parse(s)).collect();
        let pool = cfg
            .raw
            .nat
            .pool
            .as_deref()
            .and_then(Prefix::parse)
            .and_then(|p| match p.addr {
                IpAddr::V4(a) => Some((a, p.len)),
                IpAddr::V6(_) => None,
            });
        Policy {
            enabled: c.enabled,
            withdraw: c.withdraw == Withdraw::IfServerCapable,
            scheduler: c.scheduler,
            weights: c.weights,
            cc: c.congestion_control.kind(),
            checksums: c.dss_checksums,
            advertise: c.advertise.iter().filter_map(|a| a.parse().ok()).collect(),
            subscriber_prefixes: prefixes(&c.subscriber_prefixes),
            destination_prefixes: prefixes(&c.destination_prefixes),
            destination_ports: c.destination_ports.clone(),
            max_sessions: c.max_sessions,
            max_sessions_per_subscriber: c.max_sessions_per_subscriber,
            session_buffer: c.session_buffer_bytes,
            nat: cfg.raw.nat.source,
            pool,
            ports_per_subscriber: cfg.raw.nat.ports_per_subscriber,
            subscribers,
            by_addr,
            idle_timeout: c.idle_timeout_s.saturating_mul(1_000_000_000),
            nat_timeouts: {
                let n = &cfg.raw.nat;
                [
                    n.udp_timeout_s,
                    n.icmp_timeout_s,
                    n.tcp_established_timeout_s,
                    n.tcp_transitory_timeout_s,
                ]
                .map(|s| s.saturating_mul(1_000_000_000))
            },
            max_bindings: cfg.raw.nat.max_bindings,
            max_bindings_per_subscriber: cfg.raw.nat.max_bindings_per_subscriber,
        }
    }

    /// The subscriber `a` belongs to (its fixed or one of its cellular
    /// addresses).
    pub fn subscriber_of(&self, a: IpAddr) -> Option<&Subscriber> {
        self.by_addr.get(&a).and_then(|&i| self.subscribers.get(i))
    }

    /// Does a SYN from `src` to `dst:dport` get converted?
    pub fn matches(&self, src: IpAddr, dst: IpAddr, dport: u16) -> bool {
        let sub_ok = self.subscriber_prefixes.is_empty()
            || self.subscriber_prefixes.iter().any(|p| p.contains(src))
            || self.subscriber_of(src).is_some();
        let dst_ok = self.destination_prefixes.is_empty()
            || self.destination_prefixes.iter().any(|p| p.contains(dst));
        let port_ok = self.destination_ports.is_empty() || self.destination_ports.contains(&dport);
        self.enabled && sub_ok && dst_ok && port_ok
    }

    /// The downstream scheduler of a new session.
    pub fn new_scheduler(&self) -> Box<dyn sched::Scheduler> {
        match self.scheduler {
            Scheduler::FixedFirst => Box::new(sched::FixedFirst),
            Scheduler::MinRtt => Box::new(sched::MinRtt),
            Scheduler::ActiveStandby => Box::new(sched::ActiveStandby),
            // ATSSS load balancing: the configured split between the accesses
            Scheduler::Weighted => {
                Box::new(sched::Weighted::new(self.weights[0], self.weights[1], 1))
            }
            Scheduler::Redundant => Box::new(sched::Redundant),
        }
    }
}

/// The scheduler's view of an access port role.
pub fn path_role(fixed: bool) -> PathRole {
    if fixed {
        PathRole::Fixed
    } else {
        PathRole::Cellular
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn prefixes_match_by_family_and_length() {
        let p = Prefix::parse("100.64.0.0/10").unwrap();
        assert!(p.contains("100.127.1.1".parse().unwrap()));
        assert!(!p.contains("100.128.0.1".parse().unwrap()));
        assert!(!p.contains("::1".parse().unwrap()));
        let h = Prefix::parse("2001:db8:c::2").unwrap();
        assert_eq!(h.len, 128);
        assert!(h.contains("2001:db8:c::2".parse().unwrap()));
        let all = Prefix::parse("0.0.0.0/0").unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        assert!(Prefix::parse("10.0.0.0/33").is_none());
    }
}
