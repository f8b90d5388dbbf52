//! An MPTCP v1 connection (RFC 8684) over nf-tcp subflows: the MP_CAPABLE
//! handshake (§3.1), MP_JOIN with HMAC verification (§3.2), DSS mappings
//! and data-level reassembly across subflows (§3.3), DATA_ACK and
//! DATA_FIN, scheduling over the subflows, and reinjection of data that a
//! failed subflow had in flight. Sans-IO like nf-tcp: the owner routes each
//! incoming segment to its subflow and sends what `poll_transmit` returns.

use crate::crypto;
use crate::dsn::widen;
use crate::options::{CapFlags, Mapping, MptcpOption};
use crate::scheduler::{PathRole, PathView, Pick, Scheduler};
use nf_core::chunk::Chunk;
use nf_core::sim::Time;
use nf_tcp::recvq::{Insert, RecvQueue};
use nf_tcp::sendq::SendQueue;
use nf_tcp::{
    Connection as Tcp, Event as TcpEvent, Header, Incoming, RawOpt, Segment, Seq, State as TcpState,
};
use std::collections::VecDeque;
use std::net::IpAddr;

/// Which end of the connection we are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Client,
    Server,
}

/// Connection settings.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// Subflow settings (room is kept for a DSS with 64-bit DATA_ACK, DSN
    /// and checksum; a segment never spans two mappings: each mapping that
    /// does not continue the one before starts a segment, `send_apart`).
    pub tcp: nf_tcp::Config,
    /// Data-level receive buffer.
    pub recv_buffer: usize,
    /// Data-level send buffer.
    pub send_buffer: usize,
    /// Largest mapping handed to one subflow at a time.
    pub max_mapping: usize,
    pub max_subflows: usize,
    /// Ask for DSS checksums (the A flag of MP_CAPABLE, RFC 8684 §3.1).
    /// Either end asking makes them used on the whole connection.
    ///
    /// With checksums, the MSS each subflow announces is [`DSS_MAX`] bytes
    /// under `tcp.mss`. A checksum failure on the only subflow makes both
    /// ends fall back (§3.7), and Linux (6.18) then sends its infinite
    /// mapping, a DSS of up to 28 bytes, on a segment sized for a
    /// fallen-back connection without MPTCP options: at a full MSS the
    /// packet exceeds the path MTU, IP refuses it (DF) and Linux resends
    /// it for ever (IpFragFails, its own ICMP "fragmentation needed"
    /// ignored as out of window): the connection stalls. With the margin
    /// the segment fits and the fallback completes; segments otherwise are
    /// 28 bytes (2 %) shorter on such connections.
    pub checksum: bool,
}

/// The largest DSS option: 64-bit DATA_ACK, 64-bit DSN, subflow sequence
/// number, data-level length and checksum (RFC 8684 §3.3).
pub const DSS_MAX: u16 = 28;

/// A subflow's TCP settings: with DSS checksums, the MSS it announces
/// leaves room for a DSS (see [`Config::checksum`]).
fn subflow_tcp(mut tcp: nf_tcp::Config, checksums: bool) -> nf_tcp::Config {
    if checksums {
        tcp.mss_announce_margin = DSS_MAX;
    }
    tcp
}

impl Default for Config {
    fn default() -> Self {
        Config {
            tcp: nf_tcp::Config {
                segment_within_chunk: false,
                reserved_option_space: 28,
                fast_open: false,
                ..nf_tcp::Config::default()
            },
            recv_buffer: 8 << 20,
            send_buffer: 8 << 20,
            max_mapping: 16 * 1024,
            max_subflows: 8,
            checksum: false,
        }
    }
}

/// Events for the owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// The MPTCP connection is established (keys exchanged).
    Established,
    /// Data can be read with `recv`.
    Readable,
    /// A subflow became usable.
    SubflowUp(usize),
    /// A subflow failed or closed.
    SubflowDown(usize),
    /// The peer sent DATA_FIN.
    PeerClosed,
    /// The peer announced an address (ADD_ADDR, HMAC verified).
    AddrAdvertised {
        id: u8,
        addr: IpAddr,
        port: Option<u16>,
    },
    /// The peer withdrew an address (REMOVE_ADDR).
    AddrRemoved { id: u8 },
    /// Everything closed.
    Closed,
}

/// Counters by reason.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub joins_accepted: u64,
    pub joins_bad_hmac: u64,
    pub data_acks_invalid: u64,
    pub mappings_invalid: u64,
    pub unmapped_bytes: u64,
    pub reinjected_bytes: u64,
    /// Data-level retransmission timeouts (RFC 8684 §3.3.6).
    pub data_rtos: u64,
    /// Connections that fell back to plain TCP (RFC 8684 §3.7).
    pub fallbacks: u64,
    /// MP_FASTCLOSE received with our key (RFC 8684 §3.5).
    pub fastcloses_rx: u64,
    /// MP_FASTCLOSE with a key that is not ours: ignored.
    pub fastcloses_bad_key: u64,
    /// ADD_ADDR whose HMAC did not verify (RFC 8684 §3.4.1): ignored.
    pub add_addr_bad_hmac: u64,
    pub add_addr_rx: u64,
    pub add_addr_tx: u64,
    pub remove_addr_rx: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub options_malformed: u64,
    /// MP_TCPRST received on a subflow reset (RFC 8684 §3.6).
    pub tcprst_rx: u64,
    /// The reason code of the last MP_TCPRST received.
    pub tcprst_last_reason: Option<u8>,
    /// DSS checksums that did not verify (RFC 8684 §3.3.1).
    pub csum_failures: u64,
    /// DSS mappings without the negotiated checksum: the subflow is reset.
    pub csum_missing: u64,
    /// MP_FAIL sent (on an ACK, or on the RST of the failed subflow, §3.7).
    pub mp_fail_tx: u64,
    pub mp_fail_rx: u64,
    /// Infinite mappings sent and received (fallback after MP_FAIL, §3.7).
    pub infinite_tx: u64,
    pub infinite_rx: u64,
    /// Third ACKs of MP_JOIN sent again because the fourth ACK was late
    /// (RFC 8684 §3.2).
    pub join_ack_rtx: u64,
    /// Joined subflows reset because the fourth ACK never came.
    pub joins_unanswered: u64,
}

/// MP_TCPRST reason codes (RFC 8684 §3.6).
pub mod rst_reason {
    pub const UNSPECIFIED: u8 = 0x00;
    /// An MPTCP-specific error, e.g. an MP_JOIN HMAC that does not verify.
    pub const MPTCP_ERROR: u8 = 0x01;
    pub const LACK_OF_RESOURCES: u8 = 0x02;
    pub const ADMINISTRATIVELY_PROHIBITED: u8 = 0x03;
}

#[derive(Clone, Copy, Debug)]
struct TxMap {
    ssn: Seq,
    dsn: u64,
    len: usize,
    /// Carried as MP_CAPABLE-with-data (the client's first data, §3.1).
    mpc: bool,
}

#[derive(Clone, Copy, Debug)]
struct RxMap {
    ssn: Seq,
    dsn: u64,
    len: usize,
    /// The DSS checksum, when negotiated, and the data-level length it
    /// covers as sent (a DATA_FIN counts one, RFC 8684 §3.3.1).
    csum: Option<(u16, u16)>,
}

/// Where a fallen-back subflow's byte stream meets the data stream (RFC
/// 8684 §3.7): subflow byte `ssn` carries data byte `dsn` (an offset from
/// IDSN + 1), and every byte after follows in order.
#[derive(Clone, Copy, Debug)]
struct FbBase {
    sub: usize,
    ssn: Seq,
    dsn: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Initial,
    Join { local_nonce: u32, remote_nonce: u32 },
}

/// One subflow.
pub struct Subflow<C: Chunk> {
    pub tcp: Tcp<C>,
    pub role: PathRole,
    pub backup: bool,
    pub addr_id: u8,
    kind: Kind,
    usable: bool,
    failed: bool,
    /// Two RTOs in a row: not scheduled, its data reinjected elsewhere,
    /// until it makes progress again.
    stalled: bool,
    /// Why this end resets the subflow (MP_TCPRST on its RST, §3.6).
    rst_reason: u8,
    tx: VecDeque<TxMap>,
    rx: VecDeque<RxMap>,
    rx_next: Seq,
    rx_started: bool,
    /// Checksummed data of the mapping being received, held until the
    /// whole mapping is in and its checksum verifies: (subflow sequence
    /// number, data offset, bytes); the first entry starts the mapping.
    held: Vec<(Seq, u64, C)>,
    held_sum: crate::crypto::DssSum,
    /// MP_FAIL for the RST of this subflow (a checksum failed, §3.7).
    rst_fail: Option<u64>,
    /// The peer's FIN arrived (a fallen-back connection's end of data).
    fin_rx: bool,
    /// When the third ACK of our MP_JOIN goes out again, and how many
    /// times it has (RFC 8684 §3.2: it is repeated until the responder's
    /// fourth ACK shows it arrived).
    join_ack_at: Option<Time>,
    join_ack_tries: u32,
}

impl<C: Chunk> Subflow<C> {
    /// The held data of a mapping, taken out; the running sum restarts.
    fn take_held(&mut self) -> Vec<(Seq, u64, C)> {
        self.held_sum = Default::default();
        std::mem::take(&mut self.held)
    }

    pub fn usable(&self) -> bool {
        self.usable && !self.failed
    }
    pub fn stalled(&self) -> bool {
        self.stalled
    }
    pub fn bytes_sent(&self) -> u64 {
        self.tcp.stats().bytes_acked
    }
    /// (mappings held for send, their bytes, mappings held for receive)
    pub fn map_counts(&self) -> (usize, usize, usize) {
        (
            self.tx.len(),
            self.tx.iter().map(|m| m.len).sum(),
            self.rx.len(),
        )
    }
}

/// The random material of one connection: the key (RFC 8684 §3.1, from a
/// CSPRNG) and a seed for the MP_JOIN nonces.
#[derive(Clone, Copy, Debug)]
pub struct Secrets {
    pub key: u64,
    pub seed: u64,
}

/// An MPTCP connection.
pub struct MpConnection<C: Chunk> {
    cfg: Config,
    role: Role,
    local_key: u64,
    remote_key: Option<u64>,
    local_idsn: u64,
    /// RFC 8684 §3.1: the token of `local_key`, hashed once.
    local_token: u32,
    remote_idsn: u64,
    subflows: Vec<Subflow<C>>,
    sched: Box<dyn Scheduler>,
    /// Scratch space for the scheduler's view of the paths and its choice,
    /// kept between calls so that scheduling a chunk allocates nothing.
    path_buf: Vec<PathView>,
    target_buf: Vec<usize>,
    established: bool,
    /// RFC 8684 §3.7: the peer (or a middlebox stripping options) did not
    /// do MPTCP: the first subflow carries the data as plain TCP.
    fallback: bool,
    /// DSS checksums are in use (either end set the A flag, §3.1).
    csum: bool,
    /// After fallback: how our subflow bytes map to our data, and how the
    /// peer's do (set when its infinite mapping or unmapped data arrives).
    tx_fb: Option<FbBase>,
    rx_fb: Option<FbBase>,
    /// Our infinite mapping rides on our segments until the subflow
    /// acknowledges past this point.
    infinite_until: Option<Seq>,
    /// Our MP_FAIL after a checksum failed on the only subflow, until the
    /// peer's infinite mapping arrives (§3.7).
    fail_tx: Option<FailTx>,
    /// The echo of the peer's MP_FAIL, owed on our next segment (Linux
    /// resets the subflow when it does not come).
    fail_echo: Option<u64>,
    /// The next ACK carries MP_FASTCLOSE, then the subflow resets.
    fastclose_pending: bool,
    /// Our announcements: (id, addr, port, done (echoed or given up), next
    /// retransmission, transmissions).
    announced: Vec<(u8, IpAddr, Option<u16>, bool, Time, u8)>,
    /// Echoes we owe the peer for its ADD_ADDRs.
    echoes: VecDeque<(u8, IpAddr, Option<u16>)>,
    /// REMOVE_ADDR ids to send.
    removals: Vec<u8>,
    /// MP_PRIO to send: (subflow, backup).
    prio: Vec<(usize, bool)>,
    /// The client keeps sending MP_CAPABLE until the server's first DSS.
    peer_has_keys: bool,
    // data-level send
    dq: SendQueue<C>,
    snd_una: u64,
    snd_nxt: u64,
    reinject: VecDeque<(u64, usize)>,
    /// The data-level right edge the peer last announced: DATA_ACK plus the
    /// window of the same segment (RFC 8684 §3.3.4).
    peer_edge: Option<u64>,
    /// Data-level retransmission timer: data subflow-acked but never
    /// DATA_ACKed (a receiver that dropped it at the data level) is resent.
    drto_at: Option<Time>,
    drto_backoff: u32,
    now: Time,
    fin_queued: bool,
    fin_dsn: Option<u64>,
    fin_acked: bool,
    /// When the DATA_FIN goes out again if still not DATA_ACKed.
    fin_rtx_at: Option<Time>,
    fin_backoff: u32,
    /// The DATA_FIN is due and no segment has carried it yet: it rides on
    /// pure ACKs, and the subflow's data segments (with their own mapping)
    /// can take up the ACK forced for it.
    fin_unsent: bool,
    // data-level receive
    rq: RecvQueue<C>,
    rcv_fin: Option<u64>,
    peer_closed: bool,
    events: VecDeque<Event>,
    stats: Stats,
    rng: u64,
    next_poll: usize,
    /// The subflow of the segment [`MpConnection::poll_segment`] gave last.
    tx_subflow: usize,
    closed: bool,
}

/// ADD_ADDR transmissions before giving up on an echo.
const ADD_ADDR_TRIES: u8 = 5;

/// Out-of-order chunks the data level holds at most.
const RQ_SEGMENTS: usize = 65536;

/// The DSS checksum of a segment's payload (RFC 8684 §3.3.1).
fn payload_checksum<C: Chunk>(p: &nf_tcp::segment::Gather<C>, dsn: u64, ssn: u32, len: u16) -> u16 {
    let mut sum = crypto::DssSum::default();
    for c in p.parts() {
        sum.add(c.as_slice());
    }
    sum.finish(dsn, ssn, len)
}

/// Our MP_FAIL (RFC 8684 §3.7), sent on a pure ACK of its own at once,
/// then every `FAIL_EVERY` segments of the subflow, `FAIL_MAX` times at
/// most, while the subflow is alone: a subflow that sends data has no pure
/// ACK to carry it on (its segments carry their mappings), and the peer
/// must hear of the failure before a join makes falling back impossible.
#[derive(Clone, Copy, Debug)]
struct FailTx {
    /// The failed mapping's data sequence number, as on the wire.
    dsn: u64,
    /// The subflow it failed on.
    sub: usize,
    sent: u32,
    /// Segments of the subflow until the next one.
    due: u32,
}

const FAIL_EVERY: u32 = 4;
const FAIL_MAX: u32 = 8;

fn raw(o: &MptcpOption) -> Option<RawOpt> {
    let mut b = [0u8; 40];
    let n = o.emit(&mut b);
    RawOpt::new(&b[..n])
}

impl<C: Chunk> MpConnection<C> {
    fn new(
        cfg: Config,
        role: Role,
        local_key: u64,
        seed: u64,
        sched: Box<dyn Scheduler>,
        first: Subflow<C>,
    ) -> Self {
        let (local_token, local_idsn) = crypto::token_and_idsn(local_key);
        // Data sequence numbers are kept as offsets from IDSN + 1 (our own
        // and the peer's); the wire value is the offset plus IDSN + 1,
        // modulo 2^64, so no arithmetic here can overflow.
        let mut dq = SendQueue::new(Seq(0), cfg.send_buffer);
        dq.set_max_parts(1);
        // room for the usual pair (fixed and cellular) from the start: a
        // subflow is over a kilobyte, growing the vector moves them all
        let mut subflows = Vec::with_capacity(cfg.max_subflows.clamp(1, 2));
        subflows.push(first);
        MpConnection {
            cfg,
            role,
            local_key,
            remote_key: None,
            local_idsn,
            local_token,
            remote_idsn: 0,
            subflows,
            sched,
            path_buf: Vec::new(),
            target_buf: Vec::new(),
            established: false,
            fallback: false,
            csum: cfg.checksum,
            tx_fb: None,
            rx_fb: None,
            infinite_until: None,
            fail_tx: None,
            fail_echo: None,
            fastclose_pending: false,
            announced: Vec::new(),
            echoes: VecDeque::new(),
            removals: Vec::new(),
            prio: Vec::new(),
            peer_has_keys: false,
            dq,
            snd_una: 0,
            snd_nxt: 0,
            reinject: VecDeque::new(),
            peer_edge: None,
            drto_at: None,
            drto_backoff: 1,
            now: 0,
            fin_queued: false,
            fin_dsn: None,
            fin_acked: false,
            fin_rtx_at: None,
            fin_backoff: 1,
            fin_unsent: false,
            rq: RecvQueue::new(2 * cfg.recv_buffer, RQ_SEGMENTS),
            rcv_fin: None,
            peer_closed: false,
            events: VecDeque::new(),
            stats: Stats::default(),
            rng: seed ^ local_key,
            next_poll: 0,
            tx_subflow: 0,
            closed: false,
        }
    }

    fn subflow(tcp: Tcp<C>, role: PathRole, backup: bool, addr_id: u8, kind: Kind) -> Subflow<C> {
        Subflow {
            tcp,
            role,
            backup,
            addr_id,
            kind,
            usable: false,
            failed: false,
            stalled: false,
            rst_reason: rst_reason::UNSPECIFIED,
            tx: VecDeque::new(),
            rx: VecDeque::new(),
            rx_next: Seq(0),
            rx_started: false,
            held: Vec::new(),
            held_sum: crate::crypto::DssSum::default(),
            rst_fail: None,
            fin_rx: false,
            join_ack_at: None,
            join_ack_tries: 0,
        }
    }

    fn rand32(&mut self) -> u32 {
        let mut r = nf_core::sim::Rng::new(self.rng);
        self.rng = r.next_u64();
        self.rng as u32
    }

    /// Active open on the first subflow. `key` must come from a CSPRNG
    /// (RFC 8684 §3.1); `seed` feeds the MP_JOIN nonces.
    pub fn client(
        cfg: Config,
        secrets: Secrets,
        lport: u16,
        rport: u16,
        iss: Seq,
        role: PathRole,
        sched: Box<dyn Scheduler>,
    ) -> Self {
        let tcp = Tcp::connect(subflow_tcp(cfg.tcp, cfg.checksum), lport, rport, iss);
        Self::new(
            cfg,
            Role::Client,
            secrets.key,
            secrets.seed,
            sched,
            Self::subflow(tcp, role, false, 0, Kind::Initial),
        )
    }

    /// Passive open from a SYN carrying MP_CAPABLE v1; `None` when the SYN
    /// asks for another version or carries no MP_CAPABLE (plain TCP).
    pub fn server(
        cfg: Config,
        secrets: Secrets,
        syn: &Incoming<C>,
        iss: Seq,
        role: PathRole,
        sched: Box<dyn Scheduler>,
    ) -> Option<Self> {
        let o = syn
            .hdr
            .opts
            .mptcp
            .and_then(|o| MptcpOption::parse(o.as_slice(), true, false).ok())?;
        let peer_csum = match o {
            MptcpOption::Capable {
                version: 1,
                sender_key: None,
                flags,
                ..
            } => flags.checksum(),
            _ => return None,
        };
        let tcp = Tcp::accept(
            subflow_tcp(cfg.tcp, cfg.checksum || peer_csum),
            &syn.hdr,
            iss,
        );
        let mut c = Self::new(
            cfg,
            Role::Server,
            secrets.key,
            secrets.seed,
            sched,
            Self::subflow(tcp, role, false, 0, Kind::Initial),
        );
        // RFC 8684 §3.1: checksums when either end asks for them
        c.csum |= peer_csum;
        Some(c)
    }

    pub fn local_token(&self) -> u32 {
        self.local_token
    }
    pub fn is_established(&self) -> bool {
        self.established
    }
    pub fn is_fallback(&self) -> bool {
        self.fallback
    }
    /// The initial subflow's timestamp clock: its TSval at `now` is `tsval`
    /// (SYN cookies, `nf_tcp::Connection::set_ts_clock`).
    pub fn set_ts_clock(&mut self, now: Time, tsval: u32) {
        if let Some(s) = self.subflows.first_mut() {
            s.tcp.set_ts_clock(now, tsval);
        }
    }

    /// Whether DSS checksums are in use on this connection.
    pub fn checksums(&self) -> bool {
        self.csum
    }
    pub fn stats(&self) -> &Stats {
        &self.stats
    }
    pub fn subflows(&self) -> &[Subflow<C>] {
        &self.subflows
    }
    /// Lowers subflow `i`'s MSS ([`nf_tcp::Connection::limit_mss`]): each
    /// subflow runs over its own access, address family and MTU. Call it
    /// when the subflow is made (`server`, `accept_join`), before it sends.
    pub fn limit_subflow_mss(&mut self, i: usize, mss: u16) {
        if let Some(s) = self.subflows.get_mut(i) {
            s.tcp.limit_mss(mss);
        }
    }
    /// An ICMP error saying subflow `i`'s path takes at most `mss`-byte
    /// segments, quoting its segment at `seq`
    /// ([`nf_tcp::Connection::path_mtu_lowered`]); whether it was taken.
    pub fn subflow_path_mtu(&mut self, i: usize, seq: nf_tcp::Seq, mss: u16) -> bool {
        self.subflows
            .get_mut(i)
            .is_some_and(|s| s.tcp.path_mtu_lowered(seq, mss))
    }
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Data-level state, for logs and failure messages.
    pub fn describe(&self) -> String {
        format!(
            "established {} drto_at {:?} now {} snd_una {} snd_nxt {} queued {} reinject {} fin_queued {} fin_dsn {:?} fin_acked {} | rcv_next {} rcv_fin {:?} peer_closed {} closed {}",
            self.established,
            self.drto_at,
            self.now,
            self.snd_una,
            self.snd_nxt,
            self.dq.len(),
            self.reinject.len(),
            self.fin_queued,
            self.fin_dsn,
            self.fin_acked,
            self.rq.next(),
            self.rcv_fin,
            self.peer_closed,
            self.closed
        )
    }

    /// Whether a subflow may be added now: the connection is fully
    /// established (RFC 8684 §3.1), i.e. for the client the server has shown
    /// it holds our key with its first DSS (until then the third ACK's
    /// MP_CAPABLE may still be lost, and a listener without our key cannot
    /// take an MP_JOIN for the connection). Linux's path manager likewise
    /// opens subflows only once the connection is fully established.
    pub fn can_join(&self) -> bool {
        self.established && !self.fallback && (self.role == Role::Server || self.peer_has_keys)
    }

    /// Adds a subflow with MP_JOIN (client side, once [`Self::can_join`]).
    pub fn join(
        &mut self,
        lport: u16,
        rport: u16,
        iss: Seq,
        role: PathRole,
        backup: bool,
        addr_id: u8,
    ) -> Option<usize> {
        if !self.can_join() || self.subflows.len() >= self.cfg.max_subflows {
            return None;
        }
        let nonce = self.rand32();
        let tcp = Tcp::connect(subflow_tcp(self.cfg.tcp, self.csum), lport, rport, iss);
        self.subflows.push(Self::subflow(
            tcp,
            role,
            backup,
            addr_id,
            Kind::Join {
                local_nonce: nonce,
                remote_nonce: 0,
            },
        ));
        Some(self.subflows.len() - 1)
    }

    /// Accepts an MP_JOIN SYN whose token is ours (server side). `None`
    /// when it is not a valid MP_JOIN SYN or the subflow limit is reached.
    pub fn accept_join(&mut self, syn: &Incoming<C>, iss: Seq, role: PathRole) -> Option<usize> {
        let o = syn
            .hdr
            .opts
            .mptcp
            .and_then(|o| MptcpOption::parse(o.as_slice(), true, false).ok())?;
        let MptcpOption::JoinSyn {
            backup,
            addr_id,
            token,
            nonce,
        } = o
        else {
            return None;
        };
        if token != self.local_token()
            || !self.established
            || self.subflows.len() >= self.cfg.max_subflows
        {
            return None;
        }
        let local_nonce = self.rand32();
        let tcp = Tcp::accept(subflow_tcp(self.cfg.tcp, self.csum), &syn.hdr, iss);
        self.subflows.push(Self::subflow(
            tcp,
            role,
            backup,
            addr_id,
            Kind::Join {
                local_nonce,
                remote_nonce: nonce,
            },
        ));
        Some(self.subflows.len() - 1)
    }

    /// Queues data; returns the bytes taken.
    pub fn send(&mut self, c: C) -> usize {
        if self.fin_queued {
            return 0;
        }
        self.dq.push(c)
    }

    pub fn send_capacity(&self) -> usize {
        if self.fin_queued {
            0
        } else {
            self.dq.free()
        }
    }

    /// Both DATA_FINs are through: our DATA_FIN was acknowledged and the
    /// peer's received (RFC 8684 §3.3.3).
    pub fn data_closed(&self) -> bool {
        self.fin_acked && self.peer_closed
    }

    /// In-order data waiting to be read.
    pub fn readable(&self) -> usize {
        self.rq.ready_bytes()
    }

    /// Data written and not yet DATA_ACKed.
    pub fn unacked(&self) -> usize {
        self.dq.len()
    }

    pub fn recv(&mut self) -> Option<C> {
        let c = self.rq.pop();
        if c.is_some() {
            // room again: read on from the subflows
            for i in 0..self.subflows.len() {
                self.pull(i);
            }
        }
        c
    }

    /// DATA_FIN after the queued data (RFC 8684 §3.3.3).
    pub fn close(&mut self) {
        self.fin_queued = true;
    }

    /// Announces one of our addresses with ADD_ADDR (RFC 8684 §3.4.1),
    /// repeated until the peer echoes it.
    pub fn announce(&mut self, id: u8, addr: IpAddr, port: Option<u16>) {
        self.announced.retain(|a| a.0 != id);
        self.announced.push((id, addr, port, false, 0, 0));
    }

    /// Withdraws an announced address (REMOVE_ADDR, RFC 8684 §3.4.2).
    pub fn withdraw(&mut self, id: u8) {
        self.announced.retain(|a| a.0 != id);
        if !self.removals.contains(&id) {
            self.removals.push(id);
        }
    }

    /// Asks the peer to treat a subflow as backup or not (MP_PRIO, §3.3.8).
    pub fn set_backup(&mut self, subflow: usize, backup: bool) {
        if let Some(s) = self.subflows.get_mut(subflow) {
            s.backup = backup;
            self.prio.push((subflow, backup));
        }
    }

    /// Ends subflow `i` without a segment: a new connection of the peer
    /// took its tuple while it sat in TIME-WAIT (RFC 6191 §2).
    pub fn forget_subflow(&mut self, i: usize) {
        if let Some(s) = self.subflows.get_mut(i) {
            s.tcp.forget();
        }
    }

    /// MP_FASTCLOSE (RFC 8684 §3.5): the peer's key on an ACK of one
    /// subflow, RST on the others; everything is dropped.
    pub fn abort(&mut self) {
        if self.closed {
            return;
        }
        let carrier = self.carrier();
        match (carrier, self.remote_key, self.fallback) {
            (Some(c), Some(_), false) => {
                self.fastclose_pending = true;
                self.subflows[c].tcp.force_ack();
                for (i, s) in self.subflows.iter_mut().enumerate() {
                    if i != c {
                        s.tcp.abort();
                    }
                }
            }
            _ => {
                for s in &mut self.subflows {
                    s.tcp.abort();
                }
            }
        }
        self.closed = true;
        self.events.push_back(Event::Closed);
    }

    fn data_ack(&self) -> u64 {
        self.remote_idsn
            .wrapping_add(1)
            .wrapping_add(self.rq.next())
            .wrapping_add(u64::from(self.peer_closed))
    }

    // ---- input ----

    /// Handles a segment that arrived on subflow `i`.
    pub fn handle_segment(&mut self, now: Time, i: usize, seg: Incoming<C>) {
        if i >= self.subflows.len() {
            return;
        }
        self.now = now;
        let h = &seg.hdr;
        let bodies = h.opts.mptcp.as_ref();
        let opt = self.parse_option(h, bodies.map(RawOpt::as_slice));
        // a second MPTCP option (Linux's MP_FAIL beside a DSS), handled
        // after the first
        let next = self.parse_option(h, bodies.and_then(RawOpt::next));
        if opt.is_none()
            && self.role == Role::Client
            && self.subflows[i].kind == Kind::Initial
            && h.syn()
            && h.ack_flag()
            && !self.established
        {
            // the SYN/ACK came back without MP_CAPABLE: plain TCP (§3.7)
            self.fallback = true;
            self.stats.fallbacks += 1;
            self.tx_fb = Some(FbBase {
                sub: i,
                ssn: self.subflows[i].tcp.iss() + 1,
                dsn: 0,
            });
            self.rx_fb = Some(FbBase {
                sub: i,
                ssn: h.seq + 1,
                dsn: 0,
            });
        }
        for o in opt.into_iter().chain(next) {
            if (self.fallback && self.rx_fb.is_some()) || self.subflows[i].failed {
                // options on a fallen-back connection are ignored
                self.subflows[i].tcp.handle_segment(now, seg);
                self.after_tcp(i);
                return;
            }
            if !self.handle_option(i, h, &o, seg.payload.len()) {
                // bad HMAC (RFC 8684 §3.2), a missing checksum (§3.3.1), an
                // MP_FAIL fallback cannot answer (§3.7): reset this
                // subflow, saying why; what it carried goes elsewhere
                let up = self.subflows[i].usable();
                self.subflows[i].rst_reason = rst_reason::MPTCP_ERROR;
                self.subflows[i].tcp.reject(h);
                if up {
                    self.subflow_down(i);
                } else {
                    self.subflows[i].failed = true;
                    self.subflows[i].usable = false;
                }
                return;
            }
        }
        self.subflows[i].tcp.handle_segment(now, seg);
        self.after_tcp(i);
    }

    /// An MPTCP option body of a segment with header `h`; a malformed one
    /// is counted and ignored.
    fn parse_option(&mut self, h: &Header, body: Option<&[u8]>) -> Option<MptcpOption> {
        match MptcpOption::parse(body?, h.syn(), h.ack_flag()) {
            Ok(o) => Some(o),
            Err(_) => {
                self.stats.options_malformed += 1;
                None
            }
        }
    }

    /// False when the subflow must be reset.
    fn handle_option(&mut self, i: usize, h: &Header, o: &MptcpOption, payload: usize) -> bool {
        match *o {
            MptcpOption::Capable {
                sender_key,
                receiver_key,
                data_len,
                flags,
                checksum,
                ..
            } => {
                if self.subflows[i].kind != Kind::Initial {
                    return true;
                }
                match (self.role, sender_key, receiver_key) {
                    // SYN/ACK from the server
                    (Role::Client, Some(k), None) if h.syn() => {
                        self.set_remote_key(k);
                        // RFC 8684 §3.1: checksums when either end asks
                        self.csum |= flags.checksum();
                    }
                    // third ACK or first data from the client
                    (Role::Server, Some(k), Some(r)) if r == self.local_key => {
                        self.set_remote_key(k);
                        if let (Some(len), true) = (data_len, payload > 0) {
                            if self.csum && checksum.is_none() {
                                return self.checksum_missing();
                            }
                            // MP_CAPABLE with data (RFC 8684 §3.1): the
                            // mapping starts at the first data byte (SSN 1,
                            // DSN IDSN + 1), whichever segment carries it
                            // (Linux repeats it on every segment it covers)
                            let ssn = self.subflows[i].tcp.irs() + 1;
                            self.add_rx_map(
                                i,
                                ssn,
                                0,
                                usize::from(len),
                                checksum.map(|c| (c, len)),
                            );
                        }
                    }
                    _ => {}
                }
                true
            }
            MptcpOption::AddAddr {
                echo: true,
                addr_id,
                ..
            } => {
                for a in &mut self.announced {
                    if a.0 == addr_id {
                        a.3 = true;
                    }
                }
                true
            }
            MptcpOption::AddAddr {
                echo: false,
                addr_id,
                addr,
                port,
                hmac,
            } => {
                let Some(rk) = self.remote_key else {
                    return true;
                };
                if hmac
                    != Some(crypto::add_addr_hmac(
                        rk,
                        self.local_key,
                        addr_id,
                        addr,
                        port,
                    ))
                {
                    self.stats.add_addr_bad_hmac += 1;
                    return true;
                }
                self.stats.add_addr_rx += 1;
                self.events.push_back(Event::AddrAdvertised {
                    id: addr_id,
                    addr,
                    port,
                });
                self.echoes.push_back((addr_id, addr, port));
                true
            }
            MptcpOption::RemoveAddr { .. } => {
                for id in o.removed_ids() {
                    self.stats.remove_addr_rx += 1;
                    self.events.push_back(Event::AddrRemoved { id: *id });
                }
                true
            }
            MptcpOption::Prio { backup } => {
                // the subflow this arrived on changes priority (RFC 8684 §3.3.8)
                self.subflows[i].backup = backup;
                true
            }
            MptcpOption::FastClose { receiver_key } => {
                if receiver_key != self.local_key {
                    self.stats.fastcloses_bad_key += 1;
                    return true;
                }
                // RFC 8684 §3.5: reset every subflow, the connection is gone
                self.stats.fastcloses_rx += 1;
                for s in &mut self.subflows {
                    s.tcp.abort();
                    s.failed = true;
                    s.usable = false;
                }
                if !self.closed {
                    self.closed = true;
                    self.events.push_back(Event::Closed);
                }
                true
            }
            MptcpOption::JoinSynAck { hmac, nonce, .. } => {
                let (Some(rk), Kind::Join { local_nonce, .. }) =
                    (self.remote_key, self.subflows[i].kind)
                else {
                    return false;
                };
                if crypto::join_hmac64(rk, self.local_key, nonce, local_nonce) != hmac {
                    self.stats.joins_bad_hmac += 1;
                    return false;
                }
                self.subflows[i].kind = Kind::Join {
                    local_nonce,
                    remote_nonce: nonce,
                };
                true
            }
            MptcpOption::JoinAck { hmac } => {
                let (
                    Some(rk),
                    Kind::Join {
                        local_nonce,
                        remote_nonce,
                    },
                ) = (self.remote_key, self.subflows[i].kind)
                else {
                    return false;
                };
                if crypto::join_hmac160(rk, self.local_key, remote_nonce, local_nonce) != hmac {
                    self.stats.joins_bad_hmac += 1;
                    return false;
                }
                if !self.subflows[i].usable {
                    self.stats.joins_accepted += 1;
                    self.subflows[i].usable = true;
                    self.events.push_back(Event::SubflowUp(i));
                }
                // tell the client its join is complete (RFC 8684 §3.2: the
                // fourth ACK; again when the third comes again, the
                // fourth was lost)
                self.subflows[i].tcp.force_ack();
                true
            }
            MptcpOption::Dss {
                data_fin,
                data_ack,
                ack64,
                mapping,
            } => {
                if !self.peer_has_keys && self.fin_dsn.is_some() && !self.fin_acked {
                    // RFC 8684 §3.1: the client's pure ACKs carried
                    // MP_CAPABLE until now; the DATA_FIN they kept off
                    // goes out at once
                    self.fin_rtx_at = Some(self.now);
                }
                self.peer_has_keys = true;
                if self.role == Role::Client
                    && self.established
                    && !self.subflows[i].usable
                    && !self.subflows[i].failed
                {
                    // the server answered on a joined subflow: it is up
                    self.subflows[i].usable = true;
                    self.events.push_back(Event::SubflowUp(i));
                }
                if let Some(a) = data_ack {
                    let local_base = self.local_idsn.wrapping_add(1);
                    let a = if ack64 {
                        a
                    } else {
                        widen(local_base.wrapping_add(self.snd_una), a as u32)
                    };
                    let a = a.wrapping_sub(local_base);
                    self.on_data_ack(a);
                    if !h.syn() && a <= self.snd_nxt + 1 {
                        let wnd = usize::from(h.window) << self.subflows[i].tcp.peer_window_shift();
                        self.peer_edge = Some(a.max(self.snd_una) + wnd as u64);
                    }
                }
                if let Some(m) = mapping {
                    let remote_base = self.remote_idsn.wrapping_add(1);
                    let dsn = if m.dsn64 {
                        m.dsn
                    } else {
                        widen(self.data_ack(), m.dsn as u32)
                    };
                    let off = dsn.wrapping_sub(remote_base);
                    // a mapping far from where the data level stands is
                    // invalid (RFC 8684 §3.3.1): ignore it rather than let it
                    // pin memory
                    let rel = off.wrapping_sub(self.rq.next()) as i64;
                    if rel < -(1i64 << 32) || rel > 4 * self.cfg.recv_buffer as i64 {
                        self.stats.mappings_invalid += 1;
                        return true;
                    }
                    if m.len == 0 && !data_fin {
                        // RFC 8684 §3.7: an infinite mapping
                        self.infinite_mapping_rx(i, h.seq, m.ssn, off);
                        return true;
                    }
                    if self.csum && m.checksum.is_none() {
                        // RFC 8684 §3.3.1: the negotiated checksum is missing
                        return self.checksum_missing();
                    }
                    let data_len = usize::from(m.len).saturating_sub(usize::from(
                        data_fin && m.len > 0 && payload < usize::from(m.len),
                    ));
                    if data_fin {
                        self.rcv_fin = Some(off.wrapping_add(data_len as u64));
                    }
                    if data_len > 0 {
                        // the subflow sequence number is relative to its ISN
                        let irs = self.subflows[i].tcp.irs();
                        self.add_rx_map(
                            i,
                            irs + m.ssn as usize,
                            off,
                            data_len,
                            m.checksum.map(|c| (c, m.len)),
                        );
                    }
                }
                self.check_fin();
                true
            }
            MptcpOption::Fail { dsn } => {
                self.stats.mp_fail_rx += 1;
                // on a RST, the subflow goes down and what it carried and
                // the peer did not DATA_ACK is reinjected elsewhere
                h.rst() || self.mp_fail_rx(i, dsn)
            }
            MptcpOption::TcpRst { reason, .. } if h.rst() => {
                self.stats.tcprst_rx += 1;
                self.stats.tcprst_last_reason = Some(reason);
                true
            }
            _ => true,
        }
    }

    fn set_remote_key(&mut self, k: u64) {
        if self.remote_key.is_none() {
            self.remote_key = Some(k);
            self.remote_idsn = crypto::idsn(k);
        }
    }

    /// RFC 8684 §3.3.1: a mapping without the negotiated checksum is not
    /// valid; the subflow is reset (the caller does it on `false`).
    fn checksum_missing(&mut self) -> bool {
        self.stats.csum_missing += 1;
        false
    }

    /// Whether subflow `i` is the only one left.
    fn alone(&self, i: usize) -> bool {
        self.subflows
            .iter()
            .enumerate()
            .all(|(k, s)| k == i || s.failed)
    }

    /// The peer sent MP_FAIL on an ACK (RFC 8684 §3.7): the data from `dsn`
    /// failed its checksum on the only subflow. We echo the MP_FAIL and
    /// answer with an infinite mapping from where the peer stands (the
    /// failed data, or past it when the peer already took it as TCP carried
    /// it, as Linux does), then fall back to TCP. It needs everything we
    /// sent from there to be linear on this subflow; false when it is not
    /// (the subflow is then reset).
    fn mp_fail_rx(&mut self, i: usize, dsn: u64) -> bool {
        if self.fail_tx.is_some_and(|f| f.dsn == dsn) || self.tx_fb.is_some() {
            return true; // the echo of ours, or already answered
        }
        let off = dsn.wrapping_sub(self.local_idsn.wrapping_add(1));
        let from = off.max(self.snd_una);
        if !self.alone(i) || off > self.snd_nxt {
            return false;
        }
        let s = &self.subflows[i];
        let start =
            s.tx.iter()
                .find(|m| m.dsn <= from && from < m.dsn + m.len as u64)
                .map(|m| m.ssn + (from - m.dsn) as usize)
                .or_else(|| (from == self.snd_nxt).then(|| s.tcp.queued_end()));
        let Some(start) = start else {
            return false;
        };
        // every mapping from there on is linear in both spaces, and nothing
        // since was handed to another subflow
        let linear =
            s.tx.iter()
                .filter(|m| m.dsn + m.len as u64 > from)
                .all(|m| {
                    if m.dsn >= from {
                        (m.ssn - start) as u64 == m.dsn - from
                    } else {
                        (start - m.ssn) as u64 == from - m.dsn
                    }
                })
                && (s.tcp.queued_end() - start) as u64 == self.snd_nxt - from;
        if !linear {
            return false;
        }
        self.fail_echo = Some(dsn);
        self.start_tx_fallback(i, start, from);
        true
    }

    /// From here our subflow `i` carries the data stream as plain TCP:
    /// subflow byte `ssn` is data byte `dsn`. The infinite mapping says so
    /// on our segments until the subflow acknowledges what is queued now.
    fn start_tx_fallback(&mut self, i: usize, ssn: Seq, dsn: u64) {
        self.tx_fb = Some(FbBase { sub: i, ssn, dsn });
        self.infinite_until = Some(self.subflows[i].tcp.queued_end());
        self.stats.infinite_tx += 1;
        if !self.fallback {
            self.fallback = true;
            self.stats.fallbacks += 1;
        }
        self.reinject.clear();
        self.drto_at = None;
        self.subflows[i].tcp.force_ack();
    }

    /// The peer's subflow `i` now carries its data stream as plain TCP
    /// (RFC 8684 §3.7), from subflow byte `ssn` = data byte `dsn`.
    fn start_rx_fallback(&mut self, i: usize, ssn: Seq, dsn: u64) {
        self.rx_fb = Some(FbBase { sub: i, ssn, dsn });
        self.fail_tx = None;
        if !self.fallback {
            self.fallback = true;
            self.stats.fallbacks += 1;
        }
        if self.tx_fb.is_none() {
            // our direction follows from the first byte the subflow has
            // not sent: what went out keeps its mappings, and bytes queued
            // behind it (mapped, never sent) go as the infinite mapping
            // says, with the data sequence their mapping gave them; the
            // mapping would otherwise start past them, and the peer would
            // take them for bytes without a mapping while TCP acknowledges
            // them (lost to the stream)
            let s = &self.subflows[i];
            let next = s.tcp.snd_nxt();
            let (ssn, dsn) = match s
                .tx
                .iter()
                .find(|m| next.ge(m.ssn) && next.lt(m.ssn + m.len))
            {
                Some(m) => (next, m.dsn + (next - m.ssn) as u64),
                None => (s.tcp.queued_end(), self.snd_nxt),
            };
            self.start_tx_fallback(i, ssn, dsn);
        }
        let held = self.subflows[i].take_held();
        // a mapping being verified: before the fallback point by its own
        // mapping (checksums no longer apply), after it as plain TCP
        for (at, dsn, c) in held {
            let before = if at.lt(ssn) {
                (ssn - at).min(c.len())
            } else {
                0
            };
            if before > 0 {
                self.rx_insert(dsn, c.slice(0, before));
            }
            if before < c.len() {
                self.fb_deliver(at + before, c.slice(before, c.len()));
            }
        }
    }

    /// An infinite mapping arrived (RFC 8684 §3.7): the subflow sequence
    /// number it names (relative; 0: this segment) carries data byte `dsn`
    /// and everything after follows.
    fn infinite_mapping_rx(&mut self, i: usize, seq: Seq, ssn_rel: u32, dsn: u64) {
        if self.rx_fb.is_some() {
            return;
        }
        self.stats.infinite_rx += 1;
        // where the data level stands, or at most a window ahead
        let next = self.rq.next();
        let sane = match next.checked_sub(dsn) {
            Some(back) => back <= 1 << 32,
            None => dsn - next <= 4 * self.cfg.recv_buffer as u64,
        };
        if !self.alone(i) || !sane {
            // only a connection down to one subflow may fall back
            self.stats.mappings_invalid += 1;
            return;
        }
        // Linux names the subflow sequence number of the segment that
        // starts the fallback (its next data); the retroactive form names
        // the start of the failed data
        let base = if ssn_rel != 0 {
            self.subflows[i].tcp.irs() + ssn_rel as usize
        } else {
            seq
        };
        self.start_rx_fallback(i, base, dsn);
    }

    /// Data of the fallen-back stream at subflow sequence number `at`.
    fn fb_deliver(&mut self, at: Seq, c: C) {
        let Some(fb) = self.rx_fb else { return };
        let (at, c) = if at.lt(fb.ssn) {
            let skip = fb.ssn - at;
            if skip >= c.len() {
                return;
            }
            (fb.ssn, c.slice(skip, c.len()))
        } else {
            (at, c)
        };
        self.rx_insert(fb.dsn.wrapping_add((at - fb.ssn) as u64), c);
    }

    fn rx_insert(&mut self, at: u64, c: C) {
        match self.rq.insert(at, c) {
            Insert::InOrder(k) => {
                self.stats.bytes_received += k as u64;
                self.events.push_back(Event::Readable);
            }
            Insert::OutOfOrder | Insert::Duplicate => {}
            Insert::NoRoom => self.stats.mappings_invalid += 1,
        }
    }

    /// A mapping's checksum did not verify (RFC 8684 §3.7). On the only
    /// subflow the data is taken as TCP carried it (the fallback that
    /// follows makes it the stream in any case; Linux does the same) and
    /// MP_FAIL tells the sender, whose infinite mapping ends MPTCP on the
    /// subflow. With other subflows this one is reset with MP_FAIL on its
    /// RST, and the peer resends elsewhere what we did not DATA_ACK.
    fn checksum_failed(&mut self, i: usize, m: RxMap) {
        self.stats.csum_failures += 1;
        let wire = self.remote_idsn.wrapping_add(1).wrapping_add(m.dsn);
        let alone = self.alone(i);
        let s = &mut self.subflows[i];
        let held = s.take_held();
        if alone {
            for (_, at, c) in held {
                self.rx_insert(at, c);
            }
            if self.fail_tx.is_none() {
                self.stats.mp_fail_tx += 1;
                self.fail_tx = Some(FailTx {
                    dsn: wire,
                    sub: i,
                    sent: 0,
                    due: 0,
                });
            }
            self.subflows[i].tcp.force_ack();
        } else {
            self.stats.mp_fail_tx += 1;
            s.rst_fail = Some(wire);
            s.rx.clear();
            s.tcp.abort();
            self.subflow_down(i);
        }
    }

    fn add_rx_map(&mut self, i: usize, ssn: Seq, dsn: u64, len: usize, csum: Option<(u16, u16)>) {
        let s = &mut self.subflows[i];
        if s.rx_started && (ssn + len).le(s.rx_next) {
            return; // already consumed (a retransmission's mapping)
        }
        // the common case: the next segment continues the last mapping
        // (never merged when each mapping has its own checksum)
        if let Some(last) = s.rx.back_mut() {
            if csum.is_none()
                && last.csum.is_none()
                && last.ssn + last.len == ssn
                && last.dsn.wrapping_add(last.len as u64) == dsn
            {
                last.len += len;
                return;
            }
        }
        if s.rx.iter().any(|m| {
            ssn.ge(m.ssn)
                && (ssn + len).le(m.ssn + m.len)
                && m.dsn.wrapping_add((ssn - m.ssn) as u64) == dsn
        }) {
            return; // covered by a known mapping
        }
        if s.rx.len() >= 4096 {
            self.stats.mappings_invalid += 1;
            return;
        }
        s.rx.push_back(RxMap {
            ssn,
            dsn,
            len,
            csum,
        });
    }

    fn on_data_ack(&mut self, a: u64) {
        let fin_extra = u64::from(self.fin_dsn.is_some());
        if a <= self.snd_una || a > self.snd_nxt + fin_extra {
            if a > self.snd_nxt + fin_extra {
                self.stats.data_acks_invalid += 1;
            }
            return;
        }
        let data_end = self.snd_nxt.min(a);
        self.drto_backoff = 1;
        self.drto_at = (data_end < self.snd_nxt).then(|| self.now + self.data_rto());
        self.dq.ack_to(Seq(data_end as u32));
        self.stats.bytes_sent += data_end - self.snd_una;
        self.snd_una = data_end;
        if self.fin_dsn.is_some_and(|f| a > f) {
            self.fin_acked = true;
            self.fin_rtx_at = None;
        }
        for i in 0..self.subflows.len() {
            self.prune_tx(i);
        }
        self.check_fin();
    }

    /// Forgets the mappings of subflow `i` that are acknowledged at both
    /// levels. A mapping DATA_ACKed through another subflow stays while its
    /// own subflow may still retransmit those bytes: every retransmission
    /// must carry the mapping that covers it (RFC 8684 §3.3.1; Linux resets
    /// a subflow whose data arrives unmapped, MP_TCPRST "middlebox").
    fn prune_tx(&mut self, i: usize) {
        let una = self.snd_una;
        let Some(s) = self.subflows.get_mut(i) else {
            return;
        };
        let sub_una = s.tcp.snd_una();
        while s
            .tx
            .front()
            .is_some_and(|m| m.dsn + m.len as u64 <= una && (m.ssn + m.len).le(sub_una))
        {
            s.tx.pop_front();
        }
    }

    fn after_tcp(&mut self, i: usize) {
        if self.subflows[i].stalled && self.subflows[i].tcp.rto_in_row() == 0 {
            self.subflows[i].stalled = false;
        }
        while let Some(e) = self.subflows[i].tcp.poll_event() {
            match e {
                TcpEvent::Connected => {
                    let s = &mut self.subflows[i];
                    if self.role == Role::Client && matches!(s.kind, Kind::Join { .. }) {
                        // RFC 8684 §3.2: our third ACK carries the HMAC
                        // and has no sequence space, so TCP would never
                        // resend it; a timer does, until the fourth ACK
                        s.join_ack_at = Some(self.now + s.tcp.rto());
                    }
                    if self.subflows[i].kind == Kind::Initial
                        && (self.remote_key.is_some() || self.fallback)
                        && !self.established
                    {
                        self.established = true;
                        self.subflows[i].usable = true;
                        self.events.push_back(Event::Established);
                        self.events.push_back(Event::SubflowUp(i));
                    }
                }
                TcpEvent::Closed if self.fallback && self.fin_queued => {
                    // a fallen-back connection ends with the subflow's FIN
                    self.fin_acked |= self.subflows[i].tcp.unacked() == 0;
                    self.subflow_down(i);
                }
                TcpEvent::Reset | TcpEvent::TimedOut | TcpEvent::Closed => self.subflow_down(i),
                TcpEvent::PeerClosed => self.subflows[i].fin_rx = true,
                TcpEvent::Readable => {}
            }
        }
        if self.fallback
            && self.fin_queued
            && matches!(
                self.subflows[i].tcp.state(),
                TcpState::FinWait2 | TcpState::TimeWait
            )
        {
            self.fin_acked = true;
        }
        if let (Some(fb), Some(until)) = (self.tx_fb, self.infinite_until) {
            if fb.sub == i && self.subflows[i].tcp.snd_una().gt(until) {
                self.infinite_until = None;
            }
        }
        self.prune_tx(i);
        // the server learns the key from the third ACK, after TCP's own
        // Connected event
        if self.role == Role::Server
            && !self.established
            && self.remote_key.is_some()
            && self.subflows[i].kind == Kind::Initial
            && self.subflows[i].tcp.state() == TcpState::Established
        {
            self.established = true;
            self.subflows[i].usable = true;
            self.events.push_back(Event::Established);
            self.events.push_back(Event::SubflowUp(i));
        }
        self.pull(i);
    }

    fn subflow_down(&mut self, i: usize) {
        let s = &mut self.subflows[i];
        if s.failed {
            return;
        }
        s.failed = true;
        s.usable = false;
        self.events.push_back(Event::SubflowDown(i));
        self.reinject_from(i, true);
        if self.subflows.iter().all(|s| s.failed) && !self.closed {
            self.closed = true;
            self.events.push_back(Event::Closed);
        }
    }

    /// Queues for reinjection on other subflows what subflow `i` carries
    /// and the peer has not DATA_ACKed (a failed subflow forgets its
    /// mappings; a stalled one keeps them for its own retransmissions).
    fn reinject_from(&mut self, i: usize, forget: bool) {
        let s = &mut self.subflows[i];
        let una = self.snd_una;
        let maps: Vec<TxMap> = if forget {
            s.tx.drain(..).collect()
        } else {
            s.tx.iter().copied().collect()
        };
        for m in maps {
            let end = m.dsn + m.len as u64;
            if end > una {
                let start = m.dsn.max(una);
                self.reinject.push_back((start, (end - start) as usize));
                self.stats.reinjected_bytes += end - start;
            }
        }
    }

    /// Moves in-order subflow data to the data level through the mappings.
    fn pull(&mut self, i: usize) {
        loop {
            let s = &mut self.subflows[i];
            if !s.rx_started {
                if matches!(s.tcp.state(), TcpState::SynSent | TcpState::Closed) {
                    return; // the peer's ISN is not known yet
                }
                s.rx_next = s.tcp.irs() + 1;
                s.rx_started = true;
            }
            // The sender respects the data-level window we advertise (RFC
            // 8684 §3.3.4), so everything it sent fits: read on. Only a
            // peer ignoring the window is cut off (memory stays bounded).
            if self.rq.held() >= 2 * self.cfg.recv_buffer {
                return;
            }
            let Some(c) = s.tcp.recv() else {
                self.fb_peer_fin(i);
                return;
            };
            let mut off = 0usize;
            while off < c.len() {
                let pos = self.subflows[i].rx_next;
                if self.rx_fb.is_some_and(|f| f.sub == i && pos.ge(f.ssn)) {
                    // the subflow byte stream is the data stream
                    self.subflows[i].rx_next = pos + (c.len() - off);
                    self.fb_deliver(pos, c.slice(off, c.len()));
                    break;
                }
                let found = self.subflows[i]
                    .rx
                    .iter()
                    .find(|m| pos.ge(m.ssn) && pos.lt(m.ssn + m.len))
                    .copied();
                let Some(m) = found else {
                    if self.rx_fb.is_none() && self.may_fall_back(i, pos) {
                        // RFC 8684 §3.7: data without a mapping: the peer
                        // (or a middlebox stripping its options) does TCP
                        self.start_rx_fallback(i, pos, self.rq.next());
                        continue;
                    }
                    // bytes without a mapping: dropped; the sender's
                    // data-level retransmission brings them again
                    self.stats.unmapped_bytes += (c.len() - off) as u64;
                    let s = &mut self.subflows[i];
                    s.rx_next = s.rx_next + (c.len() - off);
                    break;
                };
                let s = &mut self.subflows[i];
                let n = (c.len() - off).min((m.ssn + m.len) - pos);
                let at = m.dsn.wrapping_add((pos - m.ssn) as u64);
                let part = c.slice(off, off + n);
                off += n;
                s.rx_next = pos + n;
                let done = s.rx_next;
                s.rx.retain(|m| (m.ssn + m.len).gt(done));
                // after a fallback the stream is what TCP carried
                let Some((ck, wire_len)) = m.csum.filter(|_| self.rx_fb.is_none()) else {
                    self.rx_insert(at, part);
                    continue;
                };
                // RFC 8684 §3.3.1: checksummed data is delivered once its
                // whole mapping is in and verifies
                // (a mapping entered past its start cannot be verified)
                let whole = s.held.first().map_or(pos, |h| h.0) == m.ssn;
                s.held_sum.add(part.as_slice());
                s.held.push((pos, at, part));
                if whole && done != m.ssn + m.len {
                    continue;
                }
                let dsn = self.remote_idsn.wrapping_add(1).wrapping_add(m.dsn);
                let ssn = (m.ssn - s.tcp.irs()) as u32;
                if !whole || s.held_sum.finish(dsn, ssn, wire_len) != ck {
                    self.checksum_failed(i, m);
                    if self.subflows[i].failed {
                        return;
                    }
                    continue;
                }
                let mut held = s.take_held();
                for (_, at, part) in held.drain(..) {
                    self.rx_insert(at, part);
                }
                // the next mapping reuses the allocation
                self.subflows[i].held = held;
            }
            self.check_fin();
        }
    }

    /// Whether unmapped data at `pos` of subflow `i` means the peer fell
    /// back to TCP (RFC 8684 §3.7): our direction already fell back (its
    /// answer to our MP_FAIL or infinite mapping), we sent MP_FAIL, or this
    /// is the first data of the only subflow.
    fn may_fall_back(&self, i: usize, pos: Seq) -> bool {
        let s = &self.subflows[i];
        self.alone(i)
            && (self.fallback
                // we sent MP_FAIL: unmapped data is the peer's fallback
                || self.fail_tx.is_some()
                || (self.subflows.len() == 1
                    && s.kind == Kind::Initial
                    && pos == s.tcp.irs() + 1
                    && self.rq.next() == 0
                    && self.rq.held() == 0))
    }

    /// The end of a fallen-back stream: the subflow's FIN, once its data
    /// is read.
    fn fb_peer_fin(&mut self, i: usize) {
        let s = &self.subflows[i];
        if self.rx_fb.is_some_and(|f| f.sub == i)
            && s.fin_rx
            && s.tcp.readable() == 0
            && !self.peer_closed
        {
            self.peer_closed = true;
            self.events.push_back(Event::PeerClosed);
        }
    }

    fn check_fin(&mut self) {
        if let Some(f) = self.rcv_fin {
            if !self.peer_closed && f == self.rq.next() {
                self.peer_closed = true;
                self.events.push_back(Event::PeerClosed);
                for s in &mut self.subflows {
                    if s.usable() {
                        s.tcp.force_ack();
                    }
                }
            }
        }
        // both DATA_FINs done: close the subflows
        if self.fin_acked && self.peer_closed {
            for s in &mut self.subflows {
                if matches!(s.tcp.state(), TcpState::Established | TcpState::CloseWait) {
                    s.tcp.close();
                }
            }
        }
    }

    // ---- output ----

    /// The scheduler's view of the paths, into `out` (cleared first).
    fn paths_into(&self, out: &mut Vec<PathView>) {
        out.clear();
        out.extend(self.subflows.iter().enumerate().map(|(id, s)| PathView {
            id,
            role: s.role,
            srtt: s.tcp.srtt(),
            cwnd: s.tcp.cwnd(),
            in_flight: s.tcp.unacked(),
            backup: s.backup,
            usable: s.usable() && !s.stalled && s.tcp.send_capacity() > 0,
        }));
    }

    /// The data-level RTO: generous (the subflows recover their own
    /// losses), scaled by the slowest subflow's RTT, with backoff.
    fn data_rto(&self) -> Time {
        let srtt = self
            .subflows
            .iter()
            .filter(|s| s.usable())
            .filter_map(|s| s.tcp.srtt())
            .max()
            .unwrap_or(100_000_000);
        ((4 * srtt).max(500_000_000) * u64::from(self.drto_backoff)).min(60_000_000_000)
    }

    /// The data-level window the peer offers: the largest window it
    /// advertises on a usable subflow.
    fn peer_window(&self) -> usize {
        self.subflows
            .iter()
            .filter(|s| s.usable())
            .map(|s| s.tcp.peer_window())
            .max()
            .unwrap_or(0)
    }

    /// RFC 6356: tell coupled subflow controllers alpha and the total window.
    fn couple(&mut self) {
        if self.cfg.tcp.cc != nf_tcp::cc::CcKind::Lia {
            return;
        }
        let paths = self
            .subflows
            .iter()
            .filter(|s| s.usable())
            .map(|s| (s.tcp.cwnd(), s.tcp.srtt().unwrap_or(100_000_000)));
        let alpha = nf_tcp::cc::alpha_milli(paths.clone());
        let total = paths.map(|p| p.0).sum();
        for s in &mut self.subflows {
            s.tcp.set_cc_coupling(alpha, total);
        }
    }

    /// Advertise the data-level free space on every subflow.
    fn set_windows(&mut self) {
        let free = self.cfg.recv_buffer.saturating_sub(self.rq.held());
        for s in &mut self.subflows {
            s.tcp.set_window_limit(Some(free));
        }
    }

    /// Hands data-level bytes to subflows as the scheduler decides.
    fn pump(&mut self) {
        if self.fallback {
            // plain TCP: everything goes on the fallen-back subflow, no
            // mappings; what it acknowledges is acknowledged at the data
            // level (RFC 8684 §3.7)
            let Some(fb) = self.tx_fb else { return };
            let s = &mut self.subflows[fb.sub];
            let sub_una = s.tcp.snd_una();
            let end = self.snd_una + self.dq.len() as u64;
            if sub_una.gt(fb.ssn) {
                // (a FIN takes a sequence number and no data)
                let acked = (fb.dsn + (sub_una - fb.ssn) as u64).min(end);
                if acked > self.snd_una {
                    self.dq.ack_to(Seq(acked as u32));
                    self.stats.bytes_sent += acked - self.snd_una;
                    self.snd_una = acked;
                }
            }
            while self.snd_nxt < end && s.tcp.send_capacity() > 0 {
                let g = self
                    .dq
                    .gather(Seq(self.snd_nxt as u32), (end - self.snd_nxt) as usize);
                let Some(chunk) = g.parts().next().cloned() else {
                    break;
                };
                let took = s.tcp.send(chunk);
                if took == 0 {
                    break;
                }
                self.snd_nxt += took as u64;
            }
            if self.fin_queued
                && self.snd_nxt == end
                && matches!(s.tcp.state(), TcpState::Established | TcpState::CloseWait)
            {
                s.tcp.close();
            }
            return;
        }
        loop {
            let (dsn, len) = match self.reinject.front().copied() {
                Some((d, l)) if d + l as u64 <= self.snd_una => {
                    self.reinject.pop_front();
                    continue;
                }
                Some((d, l)) => {
                    let d = d.max(self.snd_una);
                    (
                        d,
                        (l - (d - self.reinject.front().map_or(d, |r| r.0)) as usize)
                            .min(self.cfg.max_mapping),
                    )
                }
                None => {
                    let end = self.snd_una + self.dq.len() as u64;
                    // RFC 8684 §3.3.4: the window is relative to DATA_ACK
                    let edge = self
                        .peer_edge
                        .unwrap_or(self.snd_una + self.peer_window() as u64);
                    let end = end.min(edge);
                    if self.snd_nxt >= end {
                        return;
                    }
                    (
                        self.snd_nxt,
                        ((end - self.snd_nxt) as usize).min(self.cfg.max_mapping),
                    )
                }
            };
            let mut paths = std::mem::take(&mut self.path_buf);
            self.paths_into(&mut paths);
            let mut targets = std::mem::take(&mut self.target_buf);
            targets.clear();
            match self.sched.pick(&paths, len) {
                Pick::One(i) => targets.push(i),
                Pick::AllReady => {
                    targets.extend(paths.iter().filter(|p| p.ready()).map(|p| p.id));
                }
                Pick::Wait => {}
            }
            let room = targets
                .iter()
                .filter_map(|&i| paths.get(i).map(|p| p.room().max(1)))
                .min()
                .unwrap_or(0);
            self.path_buf = paths;
            if targets.is_empty() {
                self.target_buf = targets;
                return;
            }
            let len = len.min(room.max(1460));
            let g = self.dq.gather(Seq(dsn as u32), len);
            let Some(chunk) = g.parts().next().cloned() else {
                self.target_buf = targets;
                return;
            };
            let n = chunk.len();
            let mut took_any = 0;
            for &i in &targets {
                let Some(s) = self.subflows.get_mut(i) else {
                    continue;
                };
                let ssn = s.tcp.queued_end();
                let mpc = self.role == Role::Client
                    && !self.peer_has_keys
                    && s.kind == Kind::Initial
                    && dsn == 0;
                // data that continues the subflow's last mapping in both
                // sequence spaces extends it, and segments may carry bytes
                // of both writes (full-size segments from chunks of any
                // size); anything else starts a mapping and a segment
                let extends = !mpc
                    && s.tx.back().is_some_and(|m| {
                        !m.mpc && m.ssn + m.len == ssn && m.dsn + m.len as u64 == dsn
                    });
                let took = if extends {
                    s.tcp.send(chunk.clone())
                } else {
                    s.tcp.send_apart(chunk.clone())
                };
                if took > 0 {
                    match s.tx.back_mut() {
                        Some(m) if extends => m.len += took,
                        _ => s.tx.push_back(TxMap {
                            ssn,
                            dsn,
                            len: took,
                            mpc,
                        }),
                    }
                    took_any = took_any.max(took);
                }
            }
            self.target_buf = targets;
            if took_any == 0 {
                return;
            }
            let _ = n;
            match self.reinject.front_mut() {
                Some(r) if r.0 <= dsn && dsn < r.0 + r.1 as u64 => {
                    let end = r.0 + r.1 as u64;
                    let new_start = dsn + took_any as u64;
                    if new_start >= end {
                        self.reinject.pop_front();
                    } else {
                        *r = (new_start, (end - new_start) as usize);
                    }
                }
                _ => self.snd_nxt = self.snd_nxt.max(dsn + took_any as u64),
            }
            if self.drto_at.is_none() {
                self.drto_at = Some(self.now + self.data_rto());
            }
        }
    }

    /// The next segment to send and the subflow it goes out on.
    pub fn poll_transmit(&mut self, now: Time) -> Option<(usize, Segment<C>)> {
        let seg = self.poll_segment(now)?;
        Some((self.tx_subflow, seg))
    }

    /// The subflow the last segment of [`MpConnection::poll_segment`] goes
    /// out on.
    pub fn tx_subflow(&self) -> usize {
        self.tx_subflow
    }

    /// As [`MpConnection::poll_transmit`], with the subflow told by
    /// [`MpConnection::tx_subflow`]: the segment is built where the caller
    /// takes it, where the pair cost two copies of it (~1 k instructions
    /// per conversion).
    pub fn poll_segment(&mut self, now: Time) -> Option<Segment<C>> {
        self.now = now;
        self.set_windows();
        self.couple();
        if self.data_closed() && !self.fallback {
            // RFC 8684 §3.3.3: once both DATA_FINs are through, a subflow
            // stuck on a dead path (or whose peer vanished during the
            // close) has nothing left to deliver; drop it rather than
            // retransmit into the void until it gives up. Silently: a RST
            // on the peer's last subflow would surface there as
            // ECONNRESET before its application read the end of the data.
            for s in &mut self.subflows {
                if (s.stalled || s.tcp.rto_in_row() >= 2) && s.tcp.state() != TcpState::Closed {
                    s.tcp.forget();
                }
            }
        }
        if self.established {
            self.pump();
            // DATA_FIN once every byte has been handed to a subflow
            if !self.fallback
                && self.fin_queued
                && self.fin_dsn.is_none()
                && self.snd_nxt == self.snd_una + self.dq.len() as u64
                && self.reinject.is_empty()
            {
                self.fin_dsn = Some(self.snd_nxt);
                self.fin_rtx_at = Some(now);
            }
            // DATA_FIN (re)transmission on a pure ACK of a usable subflow
            if self.fin_rtx_at.is_some_and(|t| t <= now) && !self.fin_acked {
                if let Some(s) = self.carrier().and_then(|c| self.subflows.get_mut(c)) {
                    s.tcp.force_ack();
                    self.fin_unsent = true;
                    let rto = s
                        .tcp
                        .srtt()
                        .map_or(200 * 1_000_000, |r| (2 * r).max(200 * 1_000_000));
                    self.fin_rtx_at = Some(now + rto * u64::from(self.fin_backoff));
                    self.fin_backoff = (self.fin_backoff * 2).min(64);
                }
            }
        }
        if self.established && !self.fallback && self.control_due(now) {
            if let Some(s) = self.carrier().and_then(|c| self.subflows.get_mut(c)) {
                s.tcp.force_ack();
            }
        }
        if let (Some(dsn), Some(fb)) = (self.fail_echo, self.tx_fb) {
            // the MP_FAIL echo (RFC 8684 §3.7; Linux resets the subflow
            // without it) on a pure ACK of its own: data segments carry the
            // infinite mapping
            if let Some(mut seg) = self
                .subflows
                .get_mut(fb.sub)
                .and_then(|s| s.tcp.pure_ack(now))
            {
                self.fail_echo = None;
                seg.hdr.opts.sack_n = 0;
                seg.hdr.opts.mptcp = raw(&MptcpOption::Fail { dsn });
                self.tx_subflow = fb.sub;
                return Some(seg);
            }
        }
        if let Some(f) = self.fail_tx {
            // RFC 8684 §3.7: once another subflow is up the peer cannot
            // fall back any more; the connection goes on with MPTCP
            if f.due == 0 && f.sent < FAIL_MAX && self.alone(f.sub) {
                if let Some(mut seg) = self
                    .subflows
                    .get_mut(f.sub)
                    .and_then(|s| s.tcp.pure_ack(now))
                {
                    self.fail_tx = Some(FailTx {
                        sent: f.sent + 1,
                        due: FAIL_EVERY,
                        ..f
                    });
                    seg.hdr.opts.sack_n = 0;
                    seg.hdr.opts.mptcp = raw(&MptcpOption::Fail { dsn: f.dsn });
                    self.tx_subflow = f.sub;
                    return Some(seg);
                }
            }
        }
        let n = self.subflows.len();
        for k in 0..n {
            let i = (self.next_poll + k) % n;
            // (decorated where it lies: the Option is what is returned)
            let mut out = self.subflows[i].tcp.poll_transmit(now);
            if let Some(seg) = out.as_mut() {
                self.decorate(i, seg);
                self.next_poll = (i + 1) % n;
                if let Some(f) = self.fail_tx.as_mut().filter(|f| f.sub == i) {
                    f.due = f.due.saturating_sub(1);
                }
                self.tx_subflow = i;
                return out;
            }
        }
        if std::mem::take(&mut self.fin_unsent) {
            // RFC 8684 §3.3.3: the DATA_FIN goes out now, not on its
            // retransmission timer: its forced ACK left with the data
            if let Some(c) = self.carrier() {
                if let Some(mut seg) = self.subflows[c].tcp.pure_ack(now) {
                    self.decorate(c, &mut seg);
                    self.tx_subflow = c;
                    return Some(seg);
                }
            }
        }
        None
    }

    /// The subflow that carries connection-level signals (DATA_FIN,
    /// ADD_ADDR, MP_FASTCLOSE): a usable one that is not stalled, else any
    /// usable one; a stalled path may be dead (RFC 8684 §3.3.3: a DATA_FIN
    /// may be retransmitted on any subflow).
    fn carrier(&self) -> Option<usize> {
        self.subflows
            .iter()
            .position(|s| s.usable() && !s.stalled)
            .or_else(|| self.subflows.iter().position(|s| s.usable()))
    }

    /// Whether an ADD_ADDR, echo, REMOVE_ADDR or MP_PRIO is waiting.
    fn control_due(&self, now: Time) -> bool {
        !self.echoes.is_empty()
            || !self.removals.is_empty()
            || !self.prio.is_empty()
            || self.announced.iter().any(|a| !a.3 && a.4 <= now)
    }

    /// The control option a pure ACK of subflow `i` should carry, if any.
    fn control_option(&mut self, i: usize) -> Option<MptcpOption> {
        let now = self.now;
        if let Some((id, addr, port)) = self.echoes.pop_front() {
            return Some(MptcpOption::AddAddr {
                echo: true,
                addr_id: id,
                addr,
                port,
                hmac: None,
            });
        }
        if !self.removals.is_empty() {
            let n = self.removals.len().min(32);
            let mut ids = [0u8; 32];
            ids[..n].copy_from_slice(&self.removals[..n]);
            self.removals.drain(..n);
            return Some(MptcpOption::RemoveAddr {
                count: n as u8,
                ids,
            });
        }
        if let Some(p) = self.prio.iter().position(|(s, _)| *s == i) {
            let (_, backup) = self.prio.remove(p);
            return Some(MptcpOption::Prio { backup });
        }
        let rk = self.remote_key?;
        let lk = self.local_key;
        let srtt = self.subflows[i].tcp.srtt().unwrap_or(100_000_000);
        let a = self.announced.iter_mut().find(|a| !a.3 && a.4 <= now)?;
        // resend until echoed (RFC 8684 §3.4.1), a bounded number of times
        a.5 += 1;
        a.3 = a.5 >= ADD_ADDR_TRIES;
        a.4 = now + (2 * srtt).max(200_000_000) * u64::from(a.5);
        self.stats.add_addr_tx += 1;
        Some(MptcpOption::AddAddr {
            echo: false,
            addr_id: a.0,
            addr: a.1,
            port: a.2,
            hmac: Some(crypto::add_addr_hmac(lk, rk, a.0, a.1, a.2)),
        })
    }

    fn decorate(&mut self, i: usize, seg: &mut Segment<C>) {
        if self.fallback {
            // RFC 8684 §3.7: the infinite mapping on our segments until the
            // peer has it, then no options
            if let (Some(fb), Some(_)) = (self.tx_fb, self.infinite_until) {
                if fb.sub == i && !seg.hdr.syn() && !seg.hdr.rst() {
                    let o = MptcpOption::Dss {
                        data_fin: false,
                        data_ack: Some(self.data_ack()),
                        ack64: true,
                        mapping: Some(Mapping {
                            dsn: self.local_idsn.wrapping_add(1).wrapping_add(fb.dsn),
                            dsn64: true,
                            ssn: (fb.ssn - self.subflows[i].tcp.iss()) as u32,
                            len: 0,
                            checksum: self.csum.then_some(0),
                        }),
                    };
                    seg.hdr.opts.sack_n = 0;
                    if o.len() <= seg.hdr.option_space_left() {
                        seg.hdr.opts.mptcp = raw(&o);
                    }
                }
            }
            return;
        }
        if seg.hdr.rst() && !self.fastclose_pending {
            // RFC 8684 §3.6: a subflow RST says why in MP_TCPRST; §3.7: the
            // RST of a subflow whose checksum failed carries MP_FAIL
            seg.hdr.opts.sack_n = 0;
            let s = &self.subflows[i];
            seg.hdr.opts.mptcp = raw(&match s.rst_fail {
                Some(dsn) => MptcpOption::Fail { dsn },
                None => MptcpOption::TcpRst {
                    flags: 0,
                    reason: s.rst_reason,
                },
            });
            return;
        }
        if self.established
            && seg.payload.is_empty()
            && !seg.hdr.syn()
            && !seg.hdr.rst()
            && !self.fastclose_pending
            && self.subflows[i].usable()
        {
            if let Some(o) = self.control_option(i) {
                seg.hdr.opts.sack_n = 0;
                if o.len() <= seg.hdr.option_space_left() {
                    seg.hdr.opts.mptcp = raw(&o);
                    return;
                }
            }
        }
        let h = seg.hdr;
        if self.fastclose_pending && !h.syn() && !h.rst() {
            if let Some(rk) = self.remote_key {
                self.fastclose_pending = false;
                seg.hdr.opts.mptcp = raw(&MptcpOption::FastClose { receiver_key: rk });
                seg.hdr.opts.sack_n = 0;
                // then this subflow resets too
                self.subflows[i].tcp.abort();
                return;
            }
        }
        let s = &self.subflows[i];
        let opt = match (h.syn(), h.ack_flag(), s.kind) {
            (true, false, Kind::Initial) => Some(MptcpOption::Capable {
                version: 1,
                flags: self.cap_flags(),
                sender_key: None,
                receiver_key: None,
                data_len: None,
                checksum: None,
            }),
            (true, true, Kind::Initial) => Some(MptcpOption::Capable {
                version: 1,
                flags: self.cap_flags(),
                sender_key: Some(self.local_key),
                receiver_key: None,
                data_len: None,
                checksum: None,
            }),
            (true, false, Kind::Join { local_nonce, .. }) => {
                self.remote_key.map(|rk| MptcpOption::JoinSyn {
                    backup: s.backup,
                    addr_id: s.addr_id,
                    token: crypto::token(rk),
                    nonce: local_nonce,
                })
            }
            (
                true,
                true,
                Kind::Join {
                    local_nonce,
                    remote_nonce,
                },
            ) => self.remote_key.map(|rk| MptcpOption::JoinSynAck {
                backup: s.backup,
                addr_id: s.addr_id,
                hmac: crypto::join_hmac64(self.local_key, rk, local_nonce, remote_nonce),
                nonce: local_nonce,
            }),
            (
                false,
                _,
                Kind::Join {
                    local_nonce,
                    remote_nonce,
                },
            ) if self.role == Role::Client && !s.usable => {
                // the third ACK of MP_JOIN (repeated until the server answers)
                self.remote_key.map(|rk| MptcpOption::JoinAck {
                    hmac: crypto::join_hmac160(self.local_key, rk, local_nonce, remote_nonce),
                })
            }
            (false, _, kind) => {
                let mpc_needed =
                    self.role == Role::Client && kind == Kind::Initial && !self.peer_has_keys;
                let map = (!seg.payload.is_empty())
                    .then(|| {
                        s.tx.iter()
                            .find(|m| h.seq.ge(m.ssn) && h.seq.lt(m.ssn + m.len))
                            .copied()
                    })
                    .flatten();
                match (mpc_needed, map, self.remote_key) {
                    (true, Some(m), Some(rk)) if m.mpc && h.seq == m.ssn => {
                        let len = seg.payload.len() as u16;
                        Some(MptcpOption::Capable {
                            version: 1,
                            flags: self.cap_flags(),
                            sender_key: Some(self.local_key),
                            receiver_key: Some(rk),
                            // the mapping covers exactly this segment, like the DSS
                            // mappings that follow (Linux checks they agree)
                            data_len: Some(len),
                            checksum: self.csum.then(|| {
                                payload_checksum(
                                    &seg.payload,
                                    self.local_idsn.wrapping_add(1),
                                    (h.seq - s.tcp.iss()) as u32,
                                    len,
                                )
                            }),
                        })
                    }
                    (true, None, Some(rk)) => Some(MptcpOption::Capable {
                        version: 1,
                        flags: self.cap_flags(),
                        sender_key: Some(self.local_key),
                        receiver_key: Some(rk),
                        data_len: None,
                        checksum: None,
                    }),
                    _ => {
                        let iss = s.tcp.iss();
                        let mapping = map.map(|m| {
                            let dsn = self
                                .local_idsn
                                .wrapping_add(1)
                                .wrapping_add(m.dsn + (h.seq - m.ssn) as u64);
                            // RFC 8684 §3.3.1: relative to the subflow's ISN (the first data
                            // byte has SSN 1, as Linux expects)
                            let ssn = (h.seq - iss) as u32;
                            let len = seg.payload.len() as u16;
                            Mapping {
                                dsn,
                                dsn64: true,
                                ssn,
                                len,
                                checksum: self
                                    .csum
                                    .then(|| payload_checksum(&seg.payload, dsn, ssn, len)),
                            }
                        });
                        // DATA_FIN rides on pure ACKs until acknowledged
                        let fin = match (mapping, self.fin_dsn, self.fin_acked) {
                            (None, Some(f), false) if s.usable() => {
                                let dsn = self.local_idsn.wrapping_add(1).wrapping_add(f);
                                Some(Mapping {
                                    dsn,
                                    dsn64: true,
                                    ssn: 0,
                                    len: 1,
                                    checksum: self
                                        .csum
                                        .then(|| crypto::dss_checksum(dsn, 0, 1, &[])),
                                })
                            }
                            _ => None,
                        };
                        Some(MptcpOption::Dss {
                            data_fin: fin.is_some(),
                            data_ack: self.established.then(|| self.data_ack()),
                            ack64: true,
                            mapping: mapping.or(fin),
                        })
                    }
                }
            }
        };
        if let Some(o) = opt {
            // The mapping must go out with its data: drop SACK blocks (the
            // peer learns them again from the next ACK) until it fits.
            let need = o.len();
            let mut room = seg.hdr.option_space_left();
            while need > room && seg.hdr.opts.sack_n > 0 {
                seg.hdr.opts.sack_n -= 1;
                room = seg.hdr.option_space_left();
            }
            if need <= room {
                seg.hdr.opts.mptcp = raw(&o);
                if matches!(o, MptcpOption::Dss { data_fin: true, .. }) {
                    self.fin_unsent = false;
                }
            } else {
                self.stats.options_malformed += 1;
            }
        }
    }

    /// The fourth ACK of our MP_JOIN is late: send the third again, with
    /// the backoff of TCP's RTO; after `JOIN_ACK_TRIES` the responder is
    /// taken not to want the subflow, which is reset (RFC 8684 §3.2).
    fn join_ack_timeout(&mut self, i: usize) {
        const JOIN_ACK_TRIES: u32 = 6;
        let now = self.now;
        let s = &mut self.subflows[i];
        if s.usable || s.failed || s.tcp.state() != TcpState::Established {
            s.join_ack_at = None;
            return;
        }
        if s.join_ack_tries >= JOIN_ACK_TRIES {
            s.join_ack_at = None;
            s.failed = true;
            s.rst_reason = rst_reason::MPTCP_ERROR;
            s.tcp.abort();
            self.stats.joins_unanswered += 1;
            return;
        }
        s.join_ack_tries += 1;
        s.tcp.force_ack();
        self.stats.join_ack_rtx += 1;
        let backoff = 1u64 << s.join_ack_tries.min(3);
        s.join_ack_at = Some(now + s.tcp.rto().saturating_mul(backoff));
    }

    /// Our MP_CAPABLE flags: HMAC-SHA256, and checksums when in use.
    fn cap_flags(&self) -> CapFlags {
        CapFlags::ours(self.csum)
    }

    pub fn next_timeout(&self) -> Option<Time> {
        // (asked after every input and poll: a plain loop, no iterator
        // chain over the timers)
        let mut t = Time::MAX;
        for s in &self.subflows {
            if let Some(x) = s.tcp.next_timeout() {
                t = t.min(x);
            }
            if !self.closed && !s.usable && !s.failed {
                if let Some(x) = s.join_ack_at {
                    t = t.min(x);
                }
            }
        }
        if !self.closed {
            if let Some(x) = self.fin_rtx_at.filter(|_| !self.fin_acked) {
                t = t.min(x);
            }
            if let Some(x) = self.drto_at.filter(|_| self.snd_nxt > self.snd_una) {
                t = t.min(x);
            }
            if self.established {
                for a in self.announced.iter().filter(|a| !a.3) {
                    t = t.min(a.4);
                }
            }
        }
        (t != Time::MAX).then_some(t)
    }

    pub fn on_timeout(&mut self, now: Time) {
        self.now = now;
        if self.drto_at.is_some_and(|t| t <= now) {
            if self.snd_nxt > self.snd_una && !self.closed && !self.fallback {
                // resend the head of the unacknowledged data on the best
                // subflow (RFC 8684 §3.3.6)
                let len = ((self.snd_nxt - self.snd_una) as usize).min(64 * 1024);
                if !self.reinject.iter().any(|r| r.0 == self.snd_una) {
                    self.reinject.push_front((self.snd_una, len));
                    self.stats.reinjected_bytes += len as u64;
                }
                self.stats.data_rtos += 1;
                self.drto_backoff = (self.drto_backoff * 2).min(64);
                self.drto_at = Some(now + self.data_rto());
            } else {
                self.drto_at = None;
            }
        }
        for i in 0..self.subflows.len() {
            if self.subflows[i].join_ack_at.is_some_and(|t| t <= now) {
                self.join_ack_timeout(i);
            }
            if self.subflows[i]
                .tcp
                .next_timeout()
                .is_some_and(|t| t <= now)
            {
                self.subflows[i].tcp.on_timeout(now);
                self.after_tcp(i);
                // a second RTO in a row: stop using the subflow and resend
                // its data elsewhere at once (the "stall" of a failed path
                // lasts about two RTOs, not until TCP gives up)
                let s = &mut self.subflows[i];
                if !s.failed
                    && !s.stalled
                    && s.tcp.rto_in_row() >= 2
                    && self
                        .subflows
                        .iter()
                        .filter(|o| o.usable() && !o.stalled)
                        .count()
                        > 1
                {
                    self.subflows[i].stalled = true;
                    self.reinject_from(i, false);
                }
            }
        }
    }
}
