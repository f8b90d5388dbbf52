//! Semantic validation: every error carries the key path it is about.

use super::raw::*;
use super::Seg;
use nf_core::wire::{ipv4, ipv6};
use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

type Errs = Vec<(Vec<Seg>, String)>;

/// How a port's device is given to DPDK.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Device {
    /// A virtual device: `name` is the part before the first comma.
    Vdev { name: String, spec: String },
    /// A PCI address (`0000:01:00.0`).
    Pci(String),
}

impl Device {
    /// The name DPDK knows the port by.
    pub fn dpdk_name(&self) -> &str {
        match self {
            Device::Vdev { name, .. } => name,
            Device::Pci(a) => a,
        }
    }
    /// A `net_af_xdp` vdev (its UMEM and TX ring want care: `src/run.rs`
    /// `bring_up`, `src/worker.rs` `TxKick`).
    pub fn is_af_xdp(&self) -> bool {
        self.dpdk_name().starts_with("net_af_xdp")
    }
    /// The Linux interface a `net_af_packet`/`net_af_xdp` vdev binds to.
    pub fn kernel_iface(&self) -> Option<&str> {
        match self {
            Device::Vdev { spec, name }
                if name.starts_with("net_af_packet") || self.is_af_xdp() =>
            {
                spec.split(',').find_map(|kv| kv.strip_prefix("iface="))
            }
            _ => None,
        }
    }
}

/// A validated port.
#[derive(Clone, Debug)]
pub struct PortConfig {
    pub name: String,
    pub device: Device,
    pub role: PortRole,
    pub v4: Vec<ipv4::Cidr>,
    pub v6: Vec<ipv6::Cidr>,
    pub mtu: u16,
    pub queues: u16,
    pub rx_desc: u16,
    pub tx_desc: u16,
    pub vlan: Option<u16>,
}

/// A validated route.
#[derive(Clone, Debug)]
pub struct RouteConfig {
    pub prefix: IpAddr,
    pub len: u8,
    pub gateway: Option<IpAddr>,
    /// Index into `Config::ports`.
    pub port: usize,
}

/// NAT source kind (re-exported for the runtime).
pub type NatSourceKind = NatSource;

/// The validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// The file as parsed, with defaults filled (served by GET /config).
    pub raw: RawConfig,
    pub ports: Vec<PortConfig>,
    pub routes: Vec<RouteConfig>,
    pub worker_lcores: Vec<u32>,
    pub burst: usize,
    pub management: Option<SocketAddr>,
    pub limits: LimitsSection,
}

impl Config {
    /// The full EAL argument list: the configured args, the lcore set and
    /// one `--vdev` / `-a` per port.
    pub fn eal_args(&self) -> Vec<String> {
        let mut a = self.raw.eal.args.clone();
        let mut lcores = vec![self.raw.eal.main_lcore];
        lcores.extend(&self.worker_lcores);
        match &self.raw.workers.cpus {
            Some(cpus) => {
                // lcore@cpu: the main lcore on its own CPU number
                let main = self.raw.eal.main_lcore;
                let pairs = std::iter::once((main, main))
                    .chain(self.worker_lcores.iter().copied().zip(cpus.iter().copied()));
                a.push("--lcores".into());
                a.push(
                    pairs
                        .map(|(l, c)| format!("{l}@{c}"))
                        .collect::<Vec<_>>()
                        .join(","),
                );
            }
            None => {
                a.push("-l".into());
                a.push(
                    lcores
                        .iter()
                        .map(u32::to_string)
                        .collect::<Vec<_>>()
                        .join(","),
                );
            }
        }
        a.push("--main-lcore".into());
        a.push(self.raw.eal.main_lcore.to_string());
        for p in &self.ports {
            match &p.device {
                Device::Vdev { spec, .. } => {
                    a.push("--vdev".into());
                    a.push(spec.clone());
                }
                Device::Pci(addr) => {
                    a.push("-a".into());
                    a.push(addr.clone());
                }
            }
        }
        a
    }

    /// The port index by name.
    pub fn port_index(&self, name: &str) -> Option<usize> {
        self.ports.iter().position(|p| p.name == name)
    }
}

/// Parses `addr/len`.
pub fn parse_cidr(s: &str) -> Result<(IpAddr, u8), String> {
    let (a, l) = s
        .split_once('/')
        .ok_or_else(|| format!("`{s}` is not addr/len"))?;
    let addr: IpAddr = a
        .trim()
        .parse()
        .map_err(|_| format!("`{a}` is not an IP address"))?;
    let len: u8 = l
        .trim()
        .parse()
        .map_err(|_| format!("`{l}` is not a prefix length"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if len > max {
        return Err(format!("prefix length {len} is longer than {max}"));
    }
    Ok((addr, len))
}

fn is_pci(s: &str) -> bool {
    // [dddd:]bb:dd.f
    let parts: Vec<&str> = s.split(':').collect();
    let hex = |p: &str| !p.is_empty() && p.chars().all(|c| c.is_ascii_hexdigit());
    match parts.as_slice() {
        [d, b, df] | [d, b, df, ..] if parts.len() == 3 => {
            hex(d) && hex(b) && df.split_once('.').is_some_and(|(x, f)| hex(x) && hex(f))
        }
        [b, df] => hex(b) && df.split_once('.').is_some_and(|(x, f)| hex(x) && hex(f)),
        _ => false,
    }
}

const DERIVED_EAL: [&str; 9] = [
    "-l",
    "--lcores",
    "-c",
    "--main-lcore",
    "--vdev",
    "-a",
    "--allow",
    "-b",
    "--block",
];

pub fn validate(raw: RawConfig) -> Result<Config, Errs> {
    let mut errs: Errs = Vec::new();
    use Seg::{Index as I, Key as K};

    // [eal]
    for (i, a) in raw.eal.args.iter().enumerate() {
        let flag = a.split('=').next().unwrap_or("");
        if DERIVED_EAL.contains(&flag) {
            errs.push((
                vec![K("eal"), K("args"), I(i)],
                format!("`{a}` is derived from the config (workers.lcores, eal.main_lcore, port.device); remove it"),
            ));
        }
        if a == "--in-memory" && raw.eal.args.iter().any(|x| x == "--no-huge") {
            errs.push((
                vec![K("eal"), K("args"), I(i)],
                "DPDK refuses --in-memory together with --no-huge; use --file-prefix NAME with --no-huge".into(),
            ));
        }
    }

    // [workers]
    let lcores = &raw.workers.lcores;
    if lcores.is_empty() {
        errs.push((
            vec![K("workers"), K("lcores")],
            "at least one worker lcore is needed".into(),
        ));
    }
    let mut seen = HashSet::new();
    for (i, l) in lcores.iter().enumerate() {
        if !seen.insert(*l) {
            errs.push((
                vec![K("workers"), K("lcores"), I(i)],
                format!("lcore {l} is listed twice"),
            ));
        }
        if *l == raw.eal.main_lcore {
            errs.push((
                vec![K("workers"), K("lcores"), I(i)],
                format!("lcore {l} is the main lcore (eal.main_lcore); workers need their own"),
            ));
        }
        if *l >= 1024 {
            errs.push((
                vec![K("workers"), K("lcores"), I(i)],
                format!("lcore {l} is beyond RTE_MAX_LCORE"),
            ));
        }
    }
    if let Some(cpus) = &raw.workers.cpus {
        if cpus.len() != lcores.len() {
            errs.push((
                vec![K("workers"), K("cpus")],
                format!(
                    "{} CPUs for {} worker lcores: give one CPU per lcore, in order",
                    cpus.len(),
                    lcores.len()
                ),
            ));
        }
        for (i, c) in cpus.iter().enumerate() {
            if *c >= 1024 {
                errs.push((
                    vec![K("workers"), K("cpus"), I(i)],
                    format!("CPU {c} is beyond RTE_MAX_LCORE"),
                ));
            }
        }
    }
    if !(1..=64).contains(&raw.workers.burst) {
        errs.push((
            vec![K("workers"), K("burst")],
            format!("burst {} must be 1..=64", raw.workers.burst),
        ));
    }
    let nworkers = lcores.len().max(1) as u16;

    // [[port]]
    let mut ports = Vec::new();
    let mut names = HashSet::new();
    let mut devnames = HashSet::new();
    if raw.ports.is_empty() {
        errs.push((vec![K("port")], "no [[port]] is configured".into()));
    }
    for (pi, p) in raw.ports.iter().enumerate() {
        let at = |k: &'static str| vec![K("port"), I(pi), K(k)];
        if p.name.is_empty()
            || !p
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            errs.push((
                at("name"),
                format!("`{}` must be non-empty [A-Za-z0-9_-]", p.name),
            ));
        }
        if !names.insert(p.name.clone()) {
            errs.push((at("name"), format!("port name `{}` is used twice", p.name)));
        }
        let device = if is_pci(&p.device) {
            Device::Pci(p.device.clone())
        } else if p.device.starts_with("net_") {
            let name = p.device.split(',').next().unwrap_or("").to_string();
            Device::Vdev {
                name,
                spec: p.device.clone(),
            }
        } else {
            errs.push((
                at("device"),
                format!("`{}` is neither a PCI address (0000:01:00.0) nor a DPDK vdev (net_af_packet0,iface=eth1)", p.device),
            ));
            Device::Vdev {
                name: String::new(),
                spec: String::new(),
            }
        };
        if !device.dpdk_name().is_empty() && !devnames.insert(device.dpdk_name().to_string()) {
            errs.push((
                at("device"),
                format!("device `{}` is used by two ports", device.dpdk_name()),
            ));
        }
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        for (ai, a) in p.addresses.iter().enumerate() {
            match parse_cidr(a) {
                Ok((IpAddr::V4(ip), len)) => {
                    if ip.is_unspecified()
                        || ip.is_multicast()
                        || ip.is_broadcast()
                        || ip.is_loopback()
                    {
                        errs.push((
                            vec![K("port"), I(pi), K("addresses"), I(ai)],
                            format!("{ip} cannot be an interface address"),
                        ));
                    }
                    v4.extend(ipv4::Cidr::new(ip, len))
                }
                Ok((IpAddr::V6(ip), len)) => {
                    if ip.is_unspecified() || ip.is_multicast() || ip.is_loopback() {
                        errs.push((
                            vec![K("port"), I(pi), K("addresses"), I(ai)],
                            format!("{ip} cannot be an interface address"),
                        ));
                    }
                    v6.extend(ipv6::Cidr::new(ip, len))
                }
                Err(e) => errs.push((vec![K("port"), I(pi), K("addresses"), I(ai)], e)),
            }
        }
        let min_mtu = if v6.is_empty() { 68 } else { 1280 };
        if p.mtu < min_mtu || p.mtu > 9600 {
            errs.push((
                at("mtu"),
                format!(
                    "mtu {} must be {min_mtu}..=9600{}",
                    p.mtu,
                    if v6.is_empty() {
                        ""
                    } else {
                        " (IPv6 needs 1280)"
                    }
                ),
            ));
        }
        let queues = p.queues.unwrap_or(nworkers);
        if queues != nworkers {
            errs.push((at("queues"), format!("{queues} queues but {nworkers} workers: each worker polls its own queue of every port")));
        }
        for (k, d) in [("rx_desc", p.rx_desc), ("tx_desc", p.tx_desc)] {
            if !d.is_power_of_two() || !(64..=16384).contains(&d) {
                errs.push((at(k), format!("{d} must be a power of two in 64..=16384")));
            }
        }
        if let Some(v) = p.vlan {
            if v == 0 || v >= 4095 {
                errs.push((at("vlan"), format!("VLAN id {v} must be 1..=4094")));
            }
        }
        ports.push(PortConfig {
            name: p.name.clone(),
            device,
            role: p.role,
            v4,
            v6,
            mtu: p.mtu,
            queues,
            rx_desc: p.rx_desc,
            tx_desc: p.tx_desc,
            vlan: p.vlan,
        });
    }
    // The same address on two ports makes replies ambiguous.
    let mut addrs = HashSet::new();
    for (pi, p) in ports.iter().enumerate() {
        for a in
            p.v4.iter()
                .map(|c| IpAddr::V4(c.addr))
                .chain(p.v6.iter().map(|c| IpAddr::V6(c.addr)))
        {
            if !addrs.insert(a) {
                errs.push((
                    vec![K("port"), I(pi), K("addresses")],
                    format!("{a} is configured on two ports"),
                ));
            }
        }
    }

    // [[route]]
    let connected = |gw: IpAddr| -> Option<usize> {
        ports.iter().position(|p| match gw {
            IpAddr::V4(a) => p.v4.iter().any(|c| c.contains(a)),
            IpAddr::V6(a) => p.v6.iter().any(|c| c.contains(a)) || is_link_local(a),
        })
    };
    let mut routes = Vec::new();
    for (ri, r) in raw.routes.iter().enumerate() {
        let at = |k: &'static str| vec![K("route"), I(ri), K(k)];
        let prefix = match parse_cidr(&r.prefix) {
            Ok(p) => p,
            Err(e) => {
                errs.push((at("prefix"), e));
                continue;
            }
        };
        let gateway = match r.via.as_deref().map(str::parse::<IpAddr>) {
            None => None,
            Some(Ok(g)) => {
                if g.is_ipv4() != prefix.0.is_ipv4() {
                    errs.push((
                        at("via"),
                        format!("gateway {g} is not of the prefix's address family"),
                    ));
                }
                Some(g)
            }
            Some(Err(_)) => {
                errs.push((
                    at("via"),
                    format!("`{}` is not an IP address", r.via.as_deref().unwrap_or("")),
                ));
                continue;
            }
        };
        let port = match (&r.port, gateway) {
            (Some(name), _) => match ports.iter().position(|p| &p.name == name) {
                Some(i) => i,
                None => {
                    errs.push((at("port"), format!("no port is named `{name}`")));
                    continue;
                }
            },
            (None, Some(g)) => match connected(g) {
                Some(i) => i,
                None => {
                    errs.push((at("via"), format!("gateway {g} is not on any port's connected prefix; add `port = \"NAME\"`")));
                    continue;
                }
            },
            (None, None) => {
                errs.push((
                    at("prefix"),
                    "an on-link route needs `port` (or give a gateway with `via`)".into(),
                ));
                continue;
            }
        };
        routes.push(RouteConfig {
            prefix: prefix.0,
            len: prefix.1,
            gateway,
            port,
        });
    }

    // [management]
    let management = if raw.management.enabled {
        match raw.management.listen.parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                errs.push((
                    vec![K("management"), K("listen")],
                    format!("`{}` is not address:port", raw.management.listen),
                ));
                None
            }
        }
    } else {
        None
    };

    // [limits]
    let l = &raw.limits;
    if l.mbufs < 1024 {
        errs.push((
            vec![K("limits"), K("mbufs")],
            format!("{} mbufs is too few (≥ 1024)", l.mbufs),
        ));
    }
    if l.mbuf_cache > 512 || l.mbuf_cache > l.mbufs / 4 {
        errs.push((
            vec![K("limits"), K("mbuf_cache")],
            format!(
                "{} must be ≤ 512 (RTE_MEMPOOL_CACHE_MAX_SIZE)",
                l.mbuf_cache
            ),
        ));
    }
    if l.neighbours == 0 {
        errs.push((
            vec![K("limits"), K("neighbours")],
            "must be at least 1".into(),
        ));
    }
    if l.icmp_errors_burst == 0 && l.icmp_errors_per_s > 0 {
        errs.push((
            vec![K("limits"), K("icmp_errors_burst")],
            "must be ≥ 1 when icmp_errors_per_s > 0".into(),
        ));
    }
    if l.tx_retries == 0 {
        errs.push((
            vec![K("limits"), K("tx_retries")],
            "must be at least 1".into(),
        ));
    }

    // [[subscriber]], [nat], [conversion]: validated now, used by the
    // conversion point.
    for (si, s) in raw.subscribers.iter().enumerate() {
        if s.fixed.parse::<Ipv4Addr>().is_err() && s.fixed.parse::<Ipv6Addr>().is_err() {
            errs.push((
                vec![K("subscriber"), I(si), K("fixed")],
                format!("`{}` is not an IP address", s.fixed),
            ));
        }
        for (ci, c) in s.cellular.iter().enumerate() {
            if c.parse::<IpAddr>().is_err() {
                errs.push((
                    vec![K("subscriber"), I(si), K("cellular"), I(ci)],
                    format!("`{c}` is not an IP address"),
                ));
            }
        }
    }
    match (raw.nat.source, &raw.nat.pool) {
        (NatSource::Pool, None) => errs.push((
            vec![K("nat"), K("source")],
            "source = \"pool\" needs `pool = \"addr/len\"`".into(),
        )),
        (_, Some(p)) => {
            if let Err(e) = parse_cidr(p) {
                errs.push((vec![K("nat"), K("pool")], e));
            }
        }
        _ => {}
    }
    let n = &raw.nat;
    for (k, v, min, rfc) in [
        (
            "udp_timeout_s",
            n.udp_timeout_s,
            MIN_UDP_TIMEOUT_S,
            "RFC 4787 REQ-5",
        ),
        (
            "icmp_timeout_s",
            n.icmp_timeout_s,
            MIN_ICMP_TIMEOUT_S,
            "RFC 5508 REQ-1",
        ),
        (
            "tcp_established_timeout_s",
            n.tcp_established_timeout_s,
            MIN_TCP_ESTABLISHED_TIMEOUT_S,
            "RFC 5382 REQ-5",
        ),
        (
            "tcp_transitory_timeout_s",
            n.tcp_transitory_timeout_s,
            MIN_TCP_TRANSITORY_TIMEOUT_S,
            "RFC 5382 REQ-5",
        ),
    ] {
        if v < min {
            errs.push((
                vec![K("nat"), K(k)],
                format!("{v} s is shorter than {rfc} allows (at least {min} s)"),
            ));
        } else if v > 86_400 * 7 {
            errs.push((vec![K("nat"), K(k)], format!("{v} s is more than a week")));
        }
    }
    for (k, v) in [
        ("max_bindings", n.max_bindings),
        ("max_bindings_per_subscriber", n.max_bindings_per_subscriber),
    ] {
        if v == 0 {
            errs.push((vec![K("nat"), K(k)], "must be at least 1".into()));
        }
    }
    if raw.nat.ports_per_subscriber == 0 || !raw.nat.ports_per_subscriber.is_power_of_two() {
        errs.push((
            vec![K("nat"), K("ports_per_subscriber")],
            "must be a power of two".into(),
        ));
    }
    let c = &raw.conversion;
    for (k, list) in [("advertise", &c.advertise)] {
        for (i, a) in list.iter().enumerate() {
            if a.parse::<IpAddr>().is_err() {
                errs.push((
                    vec![K("conversion"), K(k), I(i)],
                    format!("`{a}` is not an IP address"),
                ));
            }
        }
    }
    for (k, list) in [
        ("subscriber_prefixes", &c.subscriber_prefixes),
        ("destination_prefixes", &c.destination_prefixes),
    ] {
        for (i, a) in list.iter().enumerate() {
            if let Err(e) = parse_cidr(a) {
                errs.push((vec![K("conversion"), K(k), I(i)], e));
            }
        }
    }
    if let Some(e) = &c.explicit_listen {
        if e.parse::<SocketAddr>().is_err() {
            errs.push((
                vec![K("conversion"), K("explicit_listen")],
                format!("`{e}` is not address:port"),
            ));
        }
    }
    if c.weights.iter().all(|w| *w == 0) {
        errs.push((
            vec![K("conversion"), K("weights")],
            "at least one weight must be above 0".into(),
        ));
    }
    if c.enabled && c.interception.contains(&Interception::Explicit) {
        errs.push((
            vec![K("conversion"), K("interception")],
            "\"explicit\" (RFC 8803 converter) is not built yet: use [\"implicit\"]".into(),
        ));
    }
    if c.interception.is_empty() {
        errs.push((
            vec![K("conversion"), K("interception")],
            "list at least one of \"implicit\", \"explicit\"".into(),
        ));
    }

    if !errs.is_empty() {
        return Err(errs);
    }
    Ok(Config {
        worker_lcores: raw.workers.lcores.clone(),
        burst: usize::from(raw.workers.burst),
        management,
        limits: raw.limits.clone(),
        ports,
        routes,
        raw,
    })
}

fn is_link_local(a: Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}

#[cfg(test)]
mod tests {
    const PORT: &str = "[[port]]\nname = \"a\"\ndevice = \"net_null0\"\nrole = \"access-fixed\"\naddresses = [\"192.0.2.1/24\"]\n";

    #[test]
    fn worker_cpus_map_lcores_or_are_refused_with_their_key() {
        let ok = format!("[workers]\nlcores = [1, 2]\ncpus = [0, 1]\n{PORT}");
        let cfg = crate::config::parse("w.toml", &ok).expect("valid");
        let args = cfg.eal_args();
        let at = args.iter().position(|a| a == "--lcores").expect("--lcores");
        assert_eq!(args[at + 1], "0@0,1@0,2@1");
        assert!(!args.iter().any(|a| a == "-l"));
        // without cpus: the plain lcore list
        let plain = crate::config::parse("w.toml", &format!("[workers]\nlcores = [1, 2]\n{PORT}"))
            .expect("valid");
        let args = plain.eal_args();
        let at = args.iter().position(|a| a == "-l").expect("-l");
        assert_eq!(args[at + 1], "0,1,2");
        let bad = format!("[workers]\nlcores = [1, 2]\ncpus = [0]\n{PORT}");
        let err = crate::config::parse("w.toml", &bad)
            .expect_err("refused")
            .to_string();
        assert!(
            err.contains("w.toml") && err.contains("workers.cpus"),
            "{err}"
        );
        assert!(err.contains("1 CPUs for 2 worker lcores"), "{err}");
    }

    #[test]
    fn af_xdp_ports_are_told_apart_and_name_their_interface() {
        let dev = |d: &str| {
            let text = PORT.replace("net_null0", d);
            let cfg = crate::config::parse("d.toml", &text).expect("valid");
            let dev = cfg.ports[0].device.clone();
            (dev.is_af_xdp(), dev.kernel_iface().map(str::to_string))
        };
        assert_eq!(dev("net_af_xdp0,iface=fix1"), (true, Some("fix1".into())));
        assert_eq!(
            dev("net_af_packet1,iface=cel1"),
            (false, Some("cel1".into()))
        );
        assert_eq!(dev("net_null0"), (false, None));
        assert_eq!(dev("0000:01:00.0"), (false, None));
    }
}
