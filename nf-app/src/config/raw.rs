//! The file format, as serde structs. Every key is documented in
//! `configs/example.toml`; unknown keys are refused.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub role: Role,
    #[serde(default)]
    pub eal: EalSection,
    #[serde(default, rename = "port")]
    pub ports: Vec<PortSection>,
    #[serde(default, rename = "route")]
    pub routes: Vec<RouteSection>,
    #[serde(default)]
    pub workers: WorkersSection,
    #[serde(default)]
    pub management: ManagementSection,
    #[serde(default)]
    pub limits: LimitsSection,
    #[serde(default, rename = "subscriber")]
    pub subscribers: Vec<SubscriberSection>,
    #[serde(default)]
    pub nat: NatSection,
    #[serde(default)]
    pub conversion: ConversionSection,
}

/// DESIGN.md §1: `network` (MPTCP from access → TCP to servers) or `cpe`.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, Default, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    #[default]
    Network,
    Cpe,
}

#[derive(Clone, Debug, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct EalSection {
    /// Extra EAL arguments (memory, file prefix, `--no-pci`, log level…).
    /// `-l`, `--main-lcore`, `--vdev` and `-a` are derived from the config.
    #[serde(default)]
    pub args: Vec<String>,
    /// The lcore of the main thread (management, signals).
    #[serde(default)]
    pub main_lcore: u32,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum PortRole {
    AccessFixed,
    AccessCellular,
    Internet,
    Lan,
    UplinkFixed,
    UplinkCellular,
}

impl PortRole {
    pub fn as_str(self) -> &'static str {
        match self {
            PortRole::AccessFixed => "access-fixed",
            PortRole::AccessCellular => "access-cellular",
            PortRole::Internet => "internet",
            PortRole::Lan => "lan",
            PortRole::UplinkFixed => "uplink-fixed",
            PortRole::UplinkCellular => "uplink-cellular",
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PortSection {
    /// A short name used in routes, logs and metrics.
    pub name: String,
    /// A DPDK vdev string (`net_af_packet0,iface=fix1`) or a PCI address.
    pub device: String,
    pub role: PortRole,
    /// `addr/len`, IPv4 or IPv6.
    #[serde(default)]
    pub addresses: Vec<String>,
    #[serde(default = "default_mtu")]
    pub mtu: u16,
    /// RX/TX queue pairs; defaults to the number of workers.
    #[serde(default)]
    pub queues: Option<u16>,
    #[serde(default = "default_desc")]
    pub rx_desc: u16,
    #[serde(default = "default_desc")]
    pub tx_desc: u16,
    /// 802.1Q VLAN id carried on this port (untagged when absent).
    #[serde(default)]
    pub vlan: Option<u16>,
}

fn default_mtu() -> u16 {
    1500
}
fn default_desc() -> u16 {
    1024
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSection {
    /// `addr/len`; `0.0.0.0/0` or `::/0` for a default route.
    pub prefix: String,
    /// Gateway address; absent for an on-link route.
    #[serde(default)]
    pub via: Option<String>,
    /// Egress port name; derived from the connected prefix of `via` when absent.
    #[serde(default)]
    pub port: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WorkersSection {
    /// One worker per listed lcore; worker i polls queue i of every port.
    #[serde(default = "default_lcores")]
    pub lcores: Vec<u32>,
    /// The CPU each worker lcore runs on, in `lcores` order (EAL
    /// `--lcores L@C`); default: lcore i runs on CPU i. For labs with fewer
    /// CPUs than workers; a production box gives every worker its own CPU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<Vec<u32>>,
    /// RX burst size.
    #[serde(default = "default_burst")]
    pub burst: u16,
}

fn default_lcores() -> Vec<u32> {
    vec![1]
}
fn default_burst() -> u16 {
    32
}

impl Default for WorkersSection {
    fn default() -> Self {
        WorkersSection {
            lcores: default_lcores(),
            cpus: None,
            burst: default_burst(),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ManagementSection {
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// HTTP listen address for /metrics, /healthz, /config.
    #[serde(default = "default_listen")]
    pub listen: String,
}

fn default_true() -> bool {
    true
}
fn default_listen() -> String {
    "127.0.0.1:9180".to_string()
}

impl Default for ManagementSection {
    fn default() -> Self {
        ManagementSection {
            enabled: true,
            listen: default_listen(),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    /// Mbufs in the packet pool (2^n - 1 is optimal for DPDK rings).
    #[serde(default = "d_mbufs")]
    pub mbufs: u32,
    #[serde(default = "d_cache")]
    pub mbuf_cache: u32,
    /// Neighbour (ARP + ND) entries per worker and family.
    #[serde(default = "d_neigh")]
    pub neighbours: usize,
    /// Packets waiting for neighbour resolution, per worker and family.
    #[serde(default = "d_pending")]
    pub neighbour_pending: usize,
    /// ICMP errors generated per second per worker (token bucket rate).
    #[serde(default = "d_icmp_rate")]
    pub icmp_errors_per_s: u64,
    #[serde(default = "d_icmp_burst")]
    pub icmp_errors_burst: u64,
    /// tx_burst attempts before unsent packets are dropped and counted.
    #[serde(default = "d_retries")]
    pub tx_retries: u32,
}

fn d_mbufs() -> u32 {
    16383
}
fn d_cache() -> u32 {
    256
}
fn d_neigh() -> usize {
    4096
}
fn d_pending() -> usize {
    1024
}
fn d_icmp_rate() -> u64 {
    100
}
fn d_icmp_burst() -> u64 {
    50
}
fn d_retries() -> u32 {
    4
}

impl Default for LimitsSection {
    fn default() -> Self {
        LimitsSection {
            mbufs: d_mbufs(),
            mbuf_cache: d_cache(),
            neighbours: d_neigh(),
            neighbour_pending: d_pending(),
            icmp_errors_per_s: d_icmp_rate(),
            icmp_errors_burst: d_icmp_burst(),
            tx_retries: d_retries(),
        }
    }
}

/// A subscriber's accesses (used by `nat source = "subscriber-fixed"`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriberSection {
    /// The fixed-line address the server sees.
    pub fixed: String,
    /// The cellular addresses of the same subscriber (IPv4 or IPv6).
    #[serde(default)]
    pub cellular: Vec<String>,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, Default, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum NatSource {
    #[default]
    None,
    SubscriberFixed,
    Pool,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NatSection {
    #[serde(default)]
    pub source: NatSource,
    /// The pool prefix for `source = "pool"`.
    #[serde(default)]
    pub pool: Option<String>,
    /// Ports per subscriber block in the pool.
    #[serde(default = "d_block")]
    pub ports_per_subscriber: u16,
    /// Idle timeouts of the bindings of routed traffic (seconds), at least
    /// what RFC 4787 REQ-5 (UDP), RFC 5508 REQ-1 (ICMP queries) and RFC
    /// 5382 REQ-5 (TCP) allow.
    #[serde(default = "d_udp_timeout")]
    pub udp_timeout_s: u64,
    #[serde(default = "d_icmp_timeout")]
    pub icmp_timeout_s: u64,
    #[serde(default = "d_tcp_established_timeout")]
    pub tcp_established_timeout_s: u64,
    #[serde(default = "d_tcp_transitory_timeout")]
    pub tcp_transitory_timeout_s: u64,
    /// Bindings of routed traffic at most (all workers together).
    #[serde(default = "d_bindings")]
    pub max_bindings: usize,
    /// Bindings of routed traffic one subscriber may hold (on each worker):
    /// one subscriber's flood of new flows cannot fill the table.
    #[serde(default = "d_bindings_per_sub")]
    pub max_bindings_per_subscriber: usize,
}

fn d_block() -> u16 {
    2048
}
/// RFC 4787 REQ-5: at least 2 minutes, 5 recommended.
pub const MIN_UDP_TIMEOUT_S: u64 = 120;
fn d_udp_timeout() -> u64 {
    300
}
/// RFC 5508 REQ-1: at least 60 seconds.
pub const MIN_ICMP_TIMEOUT_S: u64 = 60;
fn d_icmp_timeout() -> u64 {
    60
}
/// RFC 5382 REQ-5: at least 2 hours 4 minutes once established...
pub const MIN_TCP_ESTABLISHED_TIMEOUT_S: u64 = 7440;
fn d_tcp_established_timeout() -> u64 {
    7440
}
/// ...and 4 minutes in the transitory states.
pub const MIN_TCP_TRANSITORY_TIMEOUT_S: u64 = 240;
fn d_tcp_transitory_timeout() -> u64 {
    240
}
fn d_bindings() -> usize {
    1 << 20
}
fn d_bindings_per_sub() -> usize {
    4096
}

impl Default for NatSection {
    fn default() -> Self {
        NatSection {
            source: NatSource::None,
            pool: None,
            ports_per_subscriber: d_block(),
            udp_timeout_s: d_udp_timeout(),
            icmp_timeout_s: d_icmp_timeout(),
            tcp_established_timeout_s: d_tcp_established_timeout(),
            tcp_transitory_timeout_s: d_tcp_transitory_timeout(),
            max_bindings: d_bindings(),
            max_bindings_per_subscriber: d_bindings_per_sub(),
        }
    }
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Interception {
    Implicit,
    Explicit,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, Default, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Withdraw {
    #[default]
    Never,
    IfServerCapable,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, Default, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Scheduler {
    #[default]
    FixedFirst,
    MinRtt,
    ActiveStandby,
    Weighted,
    Redundant,
}

/// Congestion control of the MPTCP subflows (`nf_tcp::cc`).
#[derive(Clone, Copy, Debug, Deserialize, Serialize, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SubflowCc {
    #[default]
    Cubic,
    Newreno,
    /// RFC 6356 coupled.
    Lia,
}

impl SubflowCc {
    pub fn kind(self) -> nf_tcp::cc::CcKind {
        match self {
            SubflowCc::Cubic => nf_tcp::cc::CcKind::Cubic,
            SubflowCc::Newreno => nf_tcp::cc::CcKind::NewReno,
            SubflowCc::Lia => nf_tcp::cc::CcKind::Lia,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConversionSection {
    /// MPTCP → TCP conversion (issue 5); off: everything is routed.
    #[serde(default)]
    pub enabled: bool,
    #[serde(default = "d_interception")]
    pub interception: Vec<Interception>,
    #[serde(default)]
    pub withdraw: Withdraw,
    #[serde(default)]
    pub scheduler: Scheduler,
    /// `weighted`: the share of downstream bytes per access (fixed,
    /// cellular), e.g. [3, 1] for 75 % / 25 %.
    #[serde(default = "d_weights")]
    pub weights: [u32; 2],
    /// Subflow congestion control: cubic (default), newreno, lia.
    #[serde(default)]
    pub congestion_control: SubflowCc,
    /// Ask converted clients for DSS checksums (RFC 8684 §3.1, the A
    /// flag): payload changed by a middlebox on the access is caught
    /// (MP_FAIL, RFC 8684 §3.7) at the cost of summing every byte. A
    /// client asking for them gets them in any case.
    #[serde(default)]
    pub dss_checksums: bool,
    /// Gateway addresses announced with ADD_ADDR.
    #[serde(default)]
    pub advertise: Vec<String>,
    /// Which subscribers are converted (empty: all).
    #[serde(default)]
    pub subscriber_prefixes: Vec<String>,
    /// Which destinations are converted (empty: all).
    #[serde(default)]
    pub destination_prefixes: Vec<String>,
    #[serde(default)]
    pub destination_ports: Vec<u16>,
    /// RFC 8803 converter address:port for explicit mode.
    #[serde(default)]
    pub explicit_listen: Option<String>,
    #[serde(default = "d_sessions")]
    pub max_sessions: usize,
    /// Sessions one subscriber may hold (its fixed and cellular addresses
    /// together): one subscriber cannot fill the table for the others.
    #[serde(default = "d_sessions_per_sub")]
    pub max_sessions_per_subscriber: usize,
    #[serde(default = "d_session_buf")]
    pub session_buffer_bytes: usize,
    /// A session with no packet for this long is reset on both sides.
    #[serde(default = "d_idle")]
    pub idle_timeout_s: u64,
}

fn d_sessions_per_sub() -> usize {
    4096
}

fn d_weights() -> [u32; 2] {
    [1, 1]
}

fn d_idle() -> u64 {
    300
}

fn d_interception() -> Vec<Interception> {
    vec![Interception::Implicit]
}
fn d_sessions() -> usize {
    65536
}
fn d_session_buf() -> usize {
    1 << 20
}

impl Default for ConversionSection {
    fn default() -> Self {
        ConversionSection {
            enabled: false,
            interception: d_interception(),
            withdraw: Withdraw::Never,
            scheduler: Scheduler::FixedFirst,
            weights: d_weights(),
            congestion_control: SubflowCc::Cubic,
            dss_checksums: false,
            advertise: Vec::new(),
            subscriber_prefixes: Vec::new(),
            destination_prefixes: Vec::new(),
            destination_ports: Vec::new(),
            explicit_listen: None,
            max_sessions: d_sessions(),
            max_sessions_per_subscriber: d_sessions_per_sub(),
            session_buffer_bytes: d_session_buf(),
            idle_timeout_s: d_idle(),
        }
    }
}
