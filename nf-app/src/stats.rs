//! Per-worker counters, written by the worker, read when /metrics is scraped.

use nf_core::counters::{Counter, CounterSet};
use nf_core::wire::Error as WireError;

macro_rules! labelled_enum {
    ($(#[$m:meta])* $name:ident { $($v:ident => $s:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum $name { $($v),* }
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$v),*];
            pub const COUNT: usize = [$($s),*].len();
            pub fn as_str(self) -> &'static str { match self { $($name::$v => $s),* } }
        }
    };
}

labelled_enum!(
    /// The protocol layer a parse error was found in.
    Layer {
        Ethernet => "ethernet",
        Arp => "arp",
        Ipv4 => "ipv4",
        Ipv6 => "ipv6",
        Icmpv4 => "icmpv4",
        Icmpv6 => "icmpv6",
        Tcp => "tcp",
        Udp => "udp",
    }
);

labelled_enum!(
    /// Why a packet was dropped (besides parse errors).
    Drop {
        NotForUs => "l2_not_for_us",
        VlanMismatch => "vlan_mismatch",
        UnknownEthertype => "unknown_ethertype",
        Martian => "martian_address",
        MulticastNotForwarded => "multicast_not_forwarded",
        LocalUnhandled => "local_unhandled",
        NdInvalid => "nd_invalid",
        TtlExceeded => "ttl_exceeded",
        NoRoute => "no_route",
        TooBig => "too_big",
        NeighbourUnresolved => "neighbour_unresolved",
        NeighbourPendingFull => "neighbour_pending_full",
        NeighbourTableFull => "neighbour_table_full",
        NoHeadroom => "no_headroom",
        NoMbuf => "no_mbuf",
        TxQueueFull => "tx_queue_full",
        TxFailed => "tx_failed",
        MultiSegment => "multi_segment",
        HandoffFull => "handoff_ring_full",
    }
);

labelled_enum!(
    /// Control-plane and forwarding events.
    Event {
        ArpRequestRx => "arp_request_rx",
        ArpReplyRx => "arp_reply_rx",
        ArpRequestTx => "arp_request_tx",
        ArpReplyTx => "arp_reply_tx",
        NdSolicitRx => "nd_solicit_rx",
        NdAdvertRx => "nd_advert_rx",
        NdSolicitTx => "nd_solicit_tx",
        NdAdvertTx => "nd_advert_tx",
        EchoReplyV4 => "icmpv4_echo_reply_tx",
        EchoReplyV6 => "icmpv6_echo_reply_tx",
        IcmpErrorV4 => "icmpv4_error_tx",
        IcmpErrorV6 => "icmpv6_error_tx",
        IcmpRateLimited => "icmp_error_rate_limited",
        RoutedV4 => "routed_ipv4",
        RoutedV6 => "routed_ipv6",
        FragmentedV4 => "ipv4_fragmented",
        FragmentsTxV4 => "ipv4_fragments_tx",
    }
);

labelled_enum!(
    /// Why a new conversion session was refused (the client gets a RST).
    Refuse {
        TableFull => "table_full",
        ServerReset => "server_reset",
        ServerTimeout => "server_timeout",
        ServerUnreachable => "server_unreachable",
        HalfOpenLimit => "half_open_limit",
        SubscriberLimit => "subscriber_limit",
        NoNatSource => "no_nat_source",
        NatPortsExhausted => "nat_ports_exhausted",
    }
);

labelled_enum!(
    /// The protocol of a NAT binding of routed traffic.
    NatProto {
        Udp => "udp",
        Tcp => "tcp",
        Icmp => "icmp",
    }
);

labelled_enum!(
    /// Why routed traffic that the NAT policy covers was dropped.
    NatDrop {
        NoSource => "no_source",
        PortsExhausted => "ports_exhausted",
        Fragment => "fragment",
        Protocol => "protocol",
        NoBinding => "no_binding",
        TableFull => "table_full",
        SubscriberLimit => "subscriber_limit",
    }
);

labelled_enum!(
    /// Why an MP_JOIN was refused.
    JoinRefuse {
        UnknownToken => "unknown_token",
        BadHmac => "bad_hmac",
        NotEstablished => "not_established",
        SubflowLimit => "subflow_limit",
    }
);

labelled_enum!(
    /// The side of a conversion a packet belongs to.
    Side {
        Fixed => "access-fixed",
        Cellular => "access-cellular",
        Internet => "internet",
    }
);

/// Conversion-point counters of one worker (issue 5 observability).
#[derive(Debug, Default)]
pub struct ConvStats {
    pub sessions_active: Counter,
    pub sessions_created: Counter,
    /// Stepped out: the server spoke MPTCP, the connection is only NATed.
    pub sessions_withdrawn: Counter,
    /// The client's connection fell back to plain TCP (RFC 8684 §3.7).
    pub sessions_fallback: Counter,
    pub sessions_closed: Counter,
    pub sessions_timed_out: Counter,
    /// Half-open sessions reset to make room for new ones (SYN floods).
    pub sessions_evicted: Counter,
    pub refused: CounterSet<{ Refuse::COUNT }>,
    pub joins_accepted: Counter,
    pub joins_refused: CounterSet<{ JoinRefuse::COUNT }>,
    /// Live subflows by access role (gauge).
    pub subflows: CounterSet<{ Side::COUNT }>,
    pub rx_packets: CounterSet<{ Side::COUNT }>,
    pub rx_bytes: CounterSet<{ Side::COUNT }>,
    pub tx_packets: CounterSet<{ Side::COUNT }>,
    pub tx_bytes: CounterSet<{ Side::COUNT }>,
    /// TCP loss recovery toward each side (hagw's subflows to the client,
    /// its connection to the server): segments resent, retransmission
    /// timeouts, fast recoveries (RFC 6675) and loss probes (RFC 8985).
    pub tcp_retransmits: CounterSet<{ Side::COUNT }>,
    pub tcp_timeouts: CounterSet<{ Side::COUNT }>,
    pub tcp_fast_recoveries: CounterSet<{ Side::COUNT }>,
    pub tcp_loss_probes: CounterSet<{ Side::COUNT }>,
    /// Payload bytes copied between packet buffers and the engines.
    pub payload_bytes_copied: Counter,
    /// Bytes held in splice queues and engine buffers (gauge).
    pub splice_queue_bytes: Counter,
    /// References to received packet buffers held as payload (gauge; set
    /// by the worker once a second).
    pub payload_buffers_held: Counter,
    /// Packets handed to the worker that owns their session.
    pub handoffs: Counter,
    /// NAT ports in use (gauge).
    pub nat_ports_in_use: Counter,
    /// TCP segments of a session that did not parse (bad checksum, options).
    pub segments_malformed: Counter,
    /// Late client packets of ended sessions, dropped.
    pub segments_after_close: Counter,
    /// Client SYNs that opened a new connection on the tuple of a subflow
    /// in TIME-WAIT (RFC 6191: the client closed second and reused its port).
    pub subflows_reopened: Counter,
    /// MPTCP subflow segments from the access that belong to no session
    /// (hagw restarted, or the session ended long ago): answered with a
    /// RST, never routed.
    pub segments_no_session: Counter,
    /// SYN cookies (RFC 4987 §3.6): SYN/ACKs sent once the half-open
    /// budget is spent, third ACKs that proved a cookie, and ACKs that
    /// looked like one and did not.
    pub syn_cookies_sent: Counter,
    pub syn_cookies_accepted: Counter,
    pub syn_cookies_invalid: Counter,
    /// ICMP "fragmentation needed" or ICMPv6 "packet too big" about a
    /// segment hagw sent on a converted connection (either side) that
    /// lowered that connection's MSS (RFC 1191, RFC 8201); errors quoting
    /// data not in flight are ignored.
    pub path_mtu_lowered: Counter,
    /// ICMP errors about a withdrawn connection's packet, NATed toward the
    /// end that sent it (RFC 5508 §4.2).
    pub icmp_translated: Counter,
    /// NAT of routed traffic (UDP, ICMP queries, plain TCP; DESIGN.md §1):
    /// live bindings (gauge), bindings made and expired, by protocol;
    /// packets translated toward the Internet (0) and back (1); packets
    /// dropped, by reason.
    pub nat_bindings: CounterSet<{ NatProto::COUNT }>,
    pub nat_bindings_created: CounterSet<{ NatProto::COUNT }>,
    pub nat_bindings_expired: CounterSet<{ NatProto::COUNT }>,
    pub nat_packets: CounterSet<2>,
    pub nat_dropped: CounterSet<{ NatDrop::COUNT }>,
}

/// One live session, as `GET /sessions` lists it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SessionInfo {
    pub id: u64,
    /// The worker that owns it (DESIGN.md §4).
    pub worker: usize,
    pub subscriber: String,
    pub state: &'static str,
    pub server: String,
    /// The server-side tuple: NAT address:port → server.
    pub nat: String,
    pub age_ms: u64,
    pub bytes_up: u64,
    pub bytes_down: u64,
    pub subflows: Vec<SubflowInfo>,
    /// The data level and the server side, for troubleshooting.
    pub engine: String,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct SubflowInfo {
    pub client: String,
    pub gateway: String,
    pub role: &'static str,
    pub rtt_us: Option<u64>,
    pub bytes_out: u64,
    pub bytes_in: u64,
    pub state: String,
    /// Bytes sent and not yet acknowledged on this subflow.
    pub unacked: usize,
    /// Two RTOs in a row: not scheduled, its data resent elsewhere.
    pub stalled: bool,
    pub rto_in_row: u32,
    /// Segments resent, retransmission timeouts, fast recoveries (RFC 6675)
    /// and probe timeouts (RFC 8985) on this subflow so far: how it copes
    /// with its access's loss.
    pub retransmits: u64,
    pub rtos: u64,
    pub fast_recoveries: u64,
    pub loss_probes: u64,
    pub cwnd: usize,
    /// The window the client last advertised on this subflow.
    pub peer_window: usize,
    /// Milliseconds until the subflow's next timer, if one is armed.
    pub timer_in_ms: Option<u64>,
}

impl SubflowInfo {
    /// A subflow with no engine behind it (withdrawn to the server, or its
    /// session not converted yet).
    pub fn idle(
        client: (std::net::IpAddr, u16),
        gateway: (std::net::IpAddr, u16),
        role: Side,
        state: &str,
    ) -> SubflowInfo {
        SubflowInfo {
            client: std::net::SocketAddr::from(client).to_string(),
            gateway: std::net::SocketAddr::from(gateway).to_string(),
            role: role.as_str(),
            rtt_us: None,
            bytes_out: 0,
            bytes_in: 0,
            state: state.into(),
            unacked: 0,
            stalled: false,
            rto_in_row: 0,
            retransmits: 0,
            rtos: 0,
            fast_recoveries: 0,
            loss_probes: 0,
            cwnd: 0,
            peer_window: 0,
            timer_in_ms: None,
        }
    }
}

const N_ERR: usize = WireError::ALL.len();

/// Per-port counters of one worker.
#[derive(Debug, Default)]
pub struct PortCounters {
    pub rx_packets: Counter,
    pub rx_bytes: Counter,
    pub tx_packets: Counter,
    pub tx_bytes: Counter,
}

/// Everything one worker counts.
#[derive(Debug)]
pub struct WorkerStats {
    pub worker: usize,
    pub lcore: u32,
    pub iterations: Counter,
    pub busy_iterations: Counter,
    pub cycles_total: Counter,
    pub cycles_busy: Counter,
    pub ports: Vec<PortCounters>,
    pub parse_errors: Vec<CounterSet<N_ERR>>,
    pub drops: CounterSet<{ Drop::COUNT }>,
    pub events: CounterSet<{ Event::COUNT }>,
    pub arp_entries: Counter,
    pub nd_entries: Counter,
    pub neighbour_pending: Counter,
    pub conv: ConvStats,
    /// The worker's live sessions, published when `GET /sessions` asks
    /// (the worker only ever `try_lock`s it, so it never waits on a scrape).
    pub sessions: std::sync::Mutex<Vec<SessionInfo>>,
    /// Set by `GET /sessions`; the worker publishes and clears it.
    pub sessions_wanted: std::sync::atomic::AtomicBool,
    /// How many of its oldest sessions a worker lists (the offset plus
    /// the limit of the page asked for): a page of 100 costs 100 entries,
    /// not one per session in the table.
    pub sessions_depth: std::sync::atomic::AtomicUsize,
    /// The worker's live sessions when it last published.
    pub sessions_total: std::sync::atomic::AtomicUsize,
}

impl WorkerStats {
    pub fn new(worker: usize, lcore: u32, nports: usize) -> Self {
        WorkerStats {
            worker,
            lcore,
            iterations: Counter::new(),
            busy_iterations: Counter::new(),
            cycles_total: Counter::new(),
            cycles_busy: Counter::new(),
            ports: (0..nports).map(|_| PortCounters::default()).collect(),
            parse_errors: (0..Layer::COUNT).map(|_| CounterSet::default()).collect(),
            drops: CounterSet::default(),
            events: CounterSet::default(),
            arp_entries: Counter::new(),
            nd_entries: Counter::new(),
            neighbour_pending: Counter::new(),
            conv: ConvStats::default(),
            sessions: std::sync::Mutex::new(Vec::new()),
            sessions_wanted: std::sync::atomic::AtomicBool::new(false),
            sessions_depth: std::sync::atomic::AtomicUsize::new(0),
            sessions_total: std::sync::atomic::AtomicUsize::new(0),
        }
    }
    /// Asks the worker to publish its `depth` oldest sessions.
    pub fn want_sessions(&self, depth: usize) {
        use std::sync::atomic::Ordering::Relaxed;
        self.sessions_depth.store(depth, Relaxed);
        self.sessions_wanted.store(true, Relaxed);
    }
    #[inline]
    pub fn parse_error(&self, layer: Layer, e: WireError) {
        if let Some(s) = self.parse_errors.get(layer as usize) {
            s.inc(e.index())
        }
    }
    #[inline]
    pub fn dropped(&self, d: Drop) {
        self.drops.inc(d as usize)
    }
    #[inline]
    pub fn event(&self, e: Event) {
        self.events.inc(e as usize)
    }
    /// Counts `n` events `e` at once (a burst's worth).
    #[inline]
    pub fn events_add(&self, e: Event, n: u64) {
        self.events.add(e as usize, n)
    }
    pub fn drops_of(&self, d: Drop) -> u64 {
        self.drops.get(d as usize)
    }
    pub fn events_of(&self, e: Event) -> u64 {
        self.events.get(e as usize)
    }
    pub fn parse_errors_of(&self, layer: Layer, e: WireError) -> u64 {
        self.parse_errors
            .get(layer as usize)
            .map_or(0, |s| s.get(e.index()))
    }
}
