//! The MPTCP conversion point (DESIGN.md §1, §3): implicit interception of
//! MP_CAPABLE SYNs from the access ports, a split connection per session
//! (MPTCP toward the client, TCP toward the server), NAT so that the server
//! sees one stable address, and withdrawal (NAT only) when the server
//! itself speaks MPTCP.
//!
//! Setup (implicit mode) costs the client no extra round trip: the client's
//! SYN goes to the server first, as hagw's own SYN with the client's ISN
//! and options (`nf_tcp::Connection::connect_as`); the server's answer
//! decides. A SYN/ACK without MP_CAPABLE → hagw terminates and answers the
//! client with its own MP_CAPABLE SYN/ACK; with MP_CAPABLE and `withdraw =
//! "if-server-capable"` → the SYN/ACK is passed through (NATed) and the
//! connection is only translated from then on; RST or no answer → a RST to
//! the client.
//!
//! The converter is sans-IO like the engines: the pipeline hands it IP
//! packets and sends what it queues; timers run from `poll`.

pub mod cookie;
pub mod emit;
pub mod keys;
pub mod nat;
pub mod policy;
pub mod rewrite;
pub mod routed;
pub mod rss;
pub mod session;
pub mod shard;

use crate::stats::{JoinRefuse, Refuse, SessionInfo, Side, WorkerStats};
use hashbrown::HashMap;
use keys::KeyGen;
use nat::{Nat, NatError};
use nf_core::chunk::{Bytes, Chunk};
use nf_core::sim::Time;
use nf_core::wire::tcp::flags;
use nf_core::{PacketBuf, RxChecksum};
use nf_mptcp::conn::{Config as MpConfig, MpConnection, Secrets};
use nf_mptcp::options::MptcpOption;
use nf_tcp::{Connection, Gather, Header, Incoming, Segment, Seq};
use policy::Policy;
use rewrite::Peek;
use session::{Emit, LossSeen, Outgoing, Path, Phase, Session};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::IpAddr;
use std::sync::Arc;

/// What the pipeline does with a packet after the converter saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Not ours: route (or deliver) it as usual.
    Pass,
    /// Taken (handed to an engine, or dropped and counted).
    Consumed,
    /// NATed in place (a withdrawn connection): route it to its new
    /// destination.
    Forward,
    /// Another worker's (DESIGN.md §4): hand the packet to that worker.
    Handoff(u16),
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
struct FlowKey {
    src: IpAddr,
    sport: u16,
    dst: IpAddr,
    dport: u16,
}

impl FlowKey {
    /// Packets from `src` to `dst`.
    fn new(src: (IpAddr, u16), dst: (IpAddr, u16)) -> FlowKey {
        FlowKey {
            src: src.0,
            sport: src.1,
            dst: dst.0,
            dport: dst.1,
        }
    }

    fn tuple(&self) -> shard::Tuple {
        (self.src, self.sport, self.dst, self.dport)
    }

    fn of(p: &Peek) -> FlowKey {
        FlowKey {
            src: p.src,
            sport: p.sport,
            dst: p.dst,
            dport: p.dport,
        }
    }
}

/// What a packet's 4-tuple belongs to.
#[derive(Clone, Copy, Debug)]
enum Flow {
    /// A terminated subflow from the client.
    Client { sid: usize, sf: usize },
    /// The server side of a terminated session.
    Server { sid: usize },
    /// A withdrawn subflow, client → server (source NAT).
    PtUp { sid: usize, i: usize },
    /// A withdrawn subflow, server → client (destination NAT back).
    PtDown { sid: usize, i: usize },
    /// A client 4-tuple of a converted session that ended: its late
    /// packets are still dropped until then (like TIME-WAIT, RFC 9293
    /// §3.6.1). Kept in the flow table itself, so that ending a session
    /// turns its entries over in place (one lookup, not a removal and an
    /// insertion into a table of their own).
    Tomb { until: Time },
}

/// How long the client tuples of an ended converted session still absorb
/// late packets.
const TOMBSTONE_NS: Time = 30_000_000_000;
/// How long a finished withdrawn connection keeps its NAT binding (late
/// retransmissions, the last ACK).
const PT_LINGER_NS: Time = 10_000_000_000;
/// Half-open sessions (the client has not completed its handshake) at
/// most, as a share of the table: beyond it new MP_CAPABLE SYNs are refused
/// (RST), so a SYN flood cannot fill the table with sessions that never
/// carry data.
const HALF_OPEN_SHARE: usize = 4;
/// How long a handed-over subflow's entry lives without a packet when
/// sessions have no idle timeout.
const REDIRECT_IDLE_NS: Time = 3_600_000_000_000;
/// Session slots the idle sweep looks at per `poll`: a sweep over a
/// million sessions is spread over many polls (a few microseconds each)
/// instead of stalling the worker for milliseconds while its RX rings
/// fill. A sweep starts once a second.
pub const SWEEP_BATCH: usize = 256;
/// Session slots a `GET /sessions` listing looks at per `poll` (it only
/// compares creation times: cheaper per slot than the idle sweep).
const LIST_BATCH: usize = 1024;
/// `GET /sessions` entries built per `poll` (each formats a session's
/// subflows and engine state: some microseconds).
const LIST_BUILD_BATCH: usize = 32;

/// The session slots a walk over the table (idle sweep, address change,
/// `GET /sessions` listing) looks at in this poll, from `from`, at most
/// `n`; and where it goes on at the next poll (None: the walk is over).
fn slots(from: usize, n: usize, len: usize) -> (std::ops::Range<usize>, Option<usize>) {
    let to = from.saturating_add(n).min(len);
    (from.min(to)..to, (to < len).then_some(to))
}

/// A `GET /sessions` listing in progress: the `depth` oldest sessions
/// seen so far (by creation, then id), in a max-heap that never holds
/// more, and the live sessions counted; once the table is scanned, the
/// entries built so far from them, oldest first.
struct Listing {
    at: usize,
    depth: usize,
    total: usize,
    oldest: BinaryHeap<(Time, u64, usize)>,
    picked: Option<Vec<(Time, u64, usize)>>,
    built: Vec<SessionInfo>,
}
/// Half-open sessions per client address: one hostile subscriber cannot
/// spend the budget of the others.
const HALF_OPEN_PER_SOURCE: u32 = 64;

/// The conversion point of one worker. `C` is the payload handle of the
/// worker's packet buffers: payload is held and spliced as references to
/// the buffers it arrived in (DESIGN.md §3).
pub struct Converter<C: Chunk = Bytes> {
    policy: Policy,
    nat: Nat,
    keys: KeyGen,
    cookies: cookie::Cookies,
    tcp_cfg: nf_tcp::Config,
    mp_cfg: MpConfig,
    sessions: Vec<Option<Session<C>>>,
    free: Vec<usize>,
    flows: HashMap<FlowKey, Flow>,
    tokens: HashMap<u32, usize>,
    timers: BinaryHeap<Reverse<(Time, usize)>>,
    dirty: Vec<usize>,
    out: Vec<Outgoing<C>>,
    stats: Arc<WorkerStats>,
    next_id: u64,
    active: usize,
    half_open: usize,
    half_open_by_src: HashMap<IpAddr, u32>,
    /// Live sessions per subscriber (NAT key).
    by_subscriber: HashMap<IpAddr, usize>,
    /// Tombstones ([`Flow::Tomb`]) in the flow table.
    tombstones: usize,
    /// The tombstones in the order they were laid, expired from the
    /// front as their time comes (no sweep over the whole map); an entry
    /// whose key was reused or laid again is stale and skipped.
    tomb_fifo: std::collections::VecDeque<(Time, FlowKey)>,
    /// Half-open sessions, oldest first, as (slot, session id); entries of
    /// sessions that completed or ended are skipped lazily.
    half_open_fifo: std::collections::VecDeque<(usize, u64)>,
    /// When the next idle sweep starts (a sweep in progress: when it
    /// started, so that `poll` goes on with it).
    next_idle_scan: Time,
    /// The idle sweep's next slot (0: no sweep in progress) and the
    /// splice-queue bytes counted so far in this sweep.
    sweep_at: usize,
    sweep_held: usize,
    listing: Option<Listing>,
    /// The smallest MTU of the ports on each side (MSS clamping).
    mtu: [u16; 3],
    /// Advertised addresses (ids 1.., in `policy.advertise` order) whose
    /// port is down: withdrawn with REMOVE_ADDR, not announced.
    addr_down: Vec<bool>,
    /// A change of advertised addresses being told to the sessions,
    /// `SWEEP_BATCH` of them per poll: (next slot, the address ids that
    /// changed). A million REMOVE_ADDRs in one poll would stall the worker
    /// and overflow its TX queue at the moment a port fails.
    addr_walk: Option<(usize, Vec<u8>)>,
    /// This worker among the others (one by default).
    shard: shard::Shard,
    directory: Arc<shard::Directory>,
    /// Access subflows that arrive on this worker's queue but belong to
    /// another worker, as found in the directory: (owner, last packet).
    redirect: HashMap<FlowKey, (u16, Time)>,
    /// When each redirect is looked at again (its last packet plus the
    /// quiet time it may have): one removal or re-queue per expiry, no
    /// sweep over the map.
    redirect_fifo: std::collections::VecDeque<(Time, FlowKey)>,
    /// NAT bindings of routed traffic (UDP, ICMP queries, plain TCP).
    routed: routed::Table,
}

/// A cookie SYN's timestamp options: the client's TSval, window scale and
/// SACK-permitted (None: the client sent no timestamps).
type TsOptions = Option<(u32, Option<u8>, bool)>;

fn side_index(s: Side) -> usize {
    s as usize
}

impl<C: Chunk> Converter<C> {
    pub fn new(policy: Policy, mut keys: KeyGen, stats: Arc<WorkerStats>) -> Self {
        let cookies = cookie::Cookies::new((keys.next_u64(), keys.next_u64()));
        let buf = policy.session_buffer.max(64 * 1024);
        let tcp_cfg = nf_tcp::Config {
            send_buffer: buf,
            recv_buffer: buf,
            syn_retries: 3,
            ..nf_tcp::Config::default()
        };
        let mut mp_cfg = MpConfig::default();
        mp_cfg.tcp.cc = policy.cc;
        mp_cfg.checksum = policy.checksums;
        // a client that never completes its handshake holds its session
        // for 1 + 2 + 4 + 8 s at most
        mp_cfg.tcp.syn_retries = 3;
        mp_cfg.tcp.send_buffer = buf;
        mp_cfg.tcp.recv_buffer = buf;
        mp_cfg.recv_buffer = buf;
        mp_cfg.send_buffer = buf;
        Converter {
            nat: Nat::new(&policy, shard::Shard::default()),
            keys,
            cookies,
            tcp_cfg,
            mp_cfg,
            sessions: Vec::new(),
            free: Vec::new(),
            flows: HashMap::new(),
            tokens: HashMap::new(),
            timers: BinaryHeap::new(),
            dirty: Vec::new(),
            out: Vec::new(),
            stats,
            next_id: 1,
            active: 0,
            half_open: 0,
            half_open_by_src: HashMap::new(),
            by_subscriber: HashMap::new(),
            half_open_fifo: std::collections::VecDeque::new(),
            tombstones: 0,
            tomb_fifo: std::collections::VecDeque::new(),
            next_idle_scan: 0,
            sweep_at: 0,
            sweep_held: 0,
            listing: None,
            mtu: [1500; 3],
            addr_down: vec![false; policy.advertise.len()],
            addr_walk: None,
            shard: shard::Shard::default(),
            directory: Arc::default(),
            redirect: HashMap::new(),
            redirect_fifo: std::collections::VecDeque::new(),
            routed: routed::Table::default(),
            policy,
        }
    }

    /// Makes this the converter of worker `shard.index` of `shard.count`
    /// (before any traffic): its tokens and NAT ports are drawn so that
    /// packets name it (DESIGN.md §4), the session caps are split evenly,
    /// and tokens it cannot choose are listed in `directory`, shared by the
    /// workers.
    pub fn set_shard(
        &mut self,
        shard: shard::Shard,
        directory: Arc<shard::Directory>,
        rss: Option<rss::Rss>,
    ) {
        let n = usize::from(shard.count);
        self.shard = shard;
        self.directory = directory;
        self.nat = Nat::new(&self.policy, shard).with_rss(rss);
        self.policy.max_sessions = self.policy.max_sessions.div_ceil(n).max(1);
        self.policy.max_bindings = self.policy.max_bindings.div_ceil(n).max(1);
    }

    /// The worker an ICMPv4 error (arrived from `side`) about a session
    /// belongs to, when it is not this one ([`Converter::quote_owner`]).
    pub fn icmp_owner(&self, ip: &[u8], side: Option<Side>) -> Option<u16> {
        self.quote_owner(&icmp_quote(ip)?.key, side)
    }

    /// The worker an ICMPv6 error (arrived from `side`) quoting `quoted`
    /// (from its IPv6 header on) belongs to, when it is not this one.
    pub fn icmp6_owner(&self, quoted: &[u8], side: Option<Side>) -> Option<u16> {
        self.quote_owner(&quote_v6(quoted)?.0, side)
    }

    /// The worker whose flow `key` (the quoted packet's, turned around: as
    /// a packet of that flow arrives) is, when another. An ICMP error is
    /// spread by its own addresses (RSS hashes no ports of it), not by the
    /// flow it is about. From an access it is about a subflow, found in
    /// the directory (a joined subflow lives on its session's worker, not
    /// on the one its tuple hashes to); from the internet about a server
    /// side, found by its NAT port (without a lock: a flood of made-up
    /// errors from the internet never reaches the shared directory).
    fn quote_owner(&self, key: &FlowKey, side: Option<Side>) -> Option<u16> {
        if self.shard.is_single() || self.flows.contains_key(key) {
            return None;
        }
        let by_nat = || {
            self.nat
                .reply_owner((key.src, key.sport), (key.dst, key.dport))
        };
        let o = match side {
            Some(Side::Internet) | None => by_nat(),
            Some(Side::Fixed | Side::Cellular) => self
                .directory
                .flow_owner(key.tuple())
                .unwrap_or_else(by_nat),
        };
        (o != self.shard.index).then_some(o)
    }

    /// A packet of no flow of this worker's that belongs to another: a
    /// server's reply to another worker's NAT port, a packet of a subflow
    /// already handed over, or an MP_JOIN SYN naming another worker's
    /// token.
    fn elsewhere(
        &mut self,
        now: Time,
        side: Option<Side>,
        key: &FlowKey,
        p: &Peek,
        ip: &[u8],
    ) -> Option<u16> {
        match side? {
            Side::Internet => {
                let o = self.nat.reply_owner((p.src, p.sport), (p.dst, p.dport));
                (o != self.shard.index).then_some(o)
            }
            Side::Fixed | Side::Cellular => {
                if let Some(e) = self.redirect.get_mut(key) {
                    e.1 = now;
                    return Some(e.0);
                }
                // an MPTCP packet of a subflow set up on another worker
                // (a stray, or a SYN retransmitted onto another queue)
                let opt = rewrite::mptcp_option(ip, p)?;
                if let Some(o) = self.directory.flow_owner(key.tuple()) {
                    if o == self.shard.index {
                        return None;
                    }
                    self.redirect.insert(*key, (o, now));
                    self.redirect_fifo
                        .push_back((now.saturating_add(self.redirect_quiet()), *key));
                    return Some(o);
                }
                if !p.is_bare_syn() {
                    return None;
                }
                let Ok(MptcpOption::JoinSyn { token, .. }) = MptcpOption::parse(opt, true, false)
                else {
                    return None;
                };
                if self.tokens.contains_key(&token) {
                    return None;
                }
                let o = self
                    .directory
                    .get(token)
                    .unwrap_or_else(|| self.shard.token_owner(token));
                // no state here: the owner lists the subflow in the
                // directory if it accepts it, and the later packets are
                // found there (a flood of JOIN SYNs with made-up tokens
                // leaves nothing behind on this worker)
                (o != self.shard.index).then_some(o)
            }
        }
    }

    /// Subflows of other workers' sessions this worker forwards to them.
    pub fn redirects(&self) -> usize {
        self.redirect.len()
    }

    /// How long a handed-over subflow's entry lives without a packet: as
    /// long as a session may be quiet.
    fn redirect_quiet(&self) -> Time {
        match self.policy.idle_timeout {
            0 => REDIRECT_IDLE_NS,
            idle => idle,
        }
    }

    /// Redirects due for a look: gone when quiet for too long, else looked
    /// at again when they would be (an entry queued behind a later one is
    /// looked at late: it lives at most twice the quiet time).
    fn expire_redirects(&mut self, now: Time) {
        let quiet = self.redirect_quiet();
        while let Some(&(at, k)) = self.redirect_fifo.front() {
            if at > now {
                break;
            }
            self.redirect_fifo.pop_front();
            match self.redirect.get(&k) {
                Some(&(_, last)) if now.saturating_sub(last) > quiet => {
                    self.redirect.remove(&k);
                }
                Some(&(_, last)) => self
                    .redirect_fifo
                    .push_back((last.saturating_add(quiet).max(now + 1), k)),
                None => {}
            }
        }
    }

    /// An MPTCP key of this worker's: its token names the worker (a few
    /// SHA-256 per session with several workers, RFC 8684 §3.2 token).
    fn draw_key(&mut self) -> u64 {
        let mut k = self.keys.next_u64();
        if self.shard.is_single() {
            return k;
        }
        for _ in 0..64 * u32::from(self.shard.count) {
            if self.shard.token_owner(nf_mptcp::crypto::token(k)) == self.shard.index {
                break;
            }
            k = self.keys.next_u64();
        }
        k
    }

    /// A client subflow (terminated or withdrawn), also listed as this
    /// worker's in the shared directory (several workers only).
    fn add_client_flow(&mut self, k: FlowKey, flow: Flow) {
        self.set_flow(k, flow);
        if !self.shard.is_single() {
            self.directory.add_flow(k.tuple(), self.shard.index);
        }
    }

    /// Removes a client subflow's entry; `tomb`: leaves a tombstone in its
    /// place instead.
    fn remove_client_flow(&mut self, k: &FlowKey, tomb: Option<Time>) {
        match tomb {
            Some(until) => {
                self.set_flow(*k, Flow::Tomb { until });
                self.tombstones += 1;
                self.tomb_fifo.push_back((until, *k));
            }
            None => self.remove_flow(k),
        }
        if !self.shard.is_single() {
            self.directory.remove_flow(k.tuple(), self.shard.index);
        }
    }

    /// Sets a flow's entry; a tombstone it replaces is no longer counted.
    fn set_flow(&mut self, k: FlowKey, flow: Flow) {
        if let Some(Flow::Tomb { .. }) = self.flows.insert(k, flow) {
            self.tombstones = self.tombstones.saturating_sub(1);
        }
    }

    /// Removes a flow's entry (a tombstone is no longer counted).
    fn remove_flow(&mut self, k: &FlowKey) {
        if let Some(Flow::Tomb { .. }) = self.flows.remove(k) {
            self.tombstones = self.tombstones.saturating_sub(1);
        }
    }

    /// Registers a session's token; one whose residue does not name this
    /// worker (the server's, a cookie's) goes to the shared directory.
    fn add_token(&mut self, token: u32, sid: usize) {
        self.tokens.insert(token, sid);
        if self.shard.token_owner(token) != self.shard.index {
            self.directory.insert(token, self.shard.index);
        }
    }

    /// Forgets session `sid`'s token (if still its) and its directory entry.
    fn remove_token(&mut self, token: u32, sid: usize) {
        if self.tokens.get(&token) != Some(&sid) {
            return;
        }
        self.tokens.remove(&token);
        if self.shard.token_owner(token) != self.shard.index {
            self.directory.remove(token, self.shard.index);
        }
    }

    /// The smallest MTU on the fixed access, the cellular access and the
    /// internet side: segments hagw builds fit them, and the MSS of SYNs it
    /// passes through is clamped to them.
    pub fn set_mtus(&mut self, fixed: u16, cellular: u16, internet: u16) {
        self.mtu = [fixed, cellular, internet];
        // the widest a subflow may use; each is lowered to its own access
        // and address family when it is made (`subflow_mss`)
        self.mp_cfg.tcp.mss = fixed.max(cellular).saturating_sub(40).max(536);
    }

    /// A port went down (or came back) with these addresses: advertised
    /// ones among them are withdrawn from every converted session with
    /// REMOVE_ADDR (RFC 8684 §3.4.2), or announced again.
    pub fn port_state(&mut self, addrs: &[IpAddr], up: bool) {
        let mut changed = Vec::new();
        for (k, a) in self.policy.advertise.iter().enumerate() {
            if addrs.contains(a) && self.addr_down.get(k) == Some(&up) {
                if let Some(d) = self.addr_down.get_mut(k) {
                    *d = !up;
                }
                changed.push(k as u8 + 1);
            }
        }
        if changed.is_empty() {
            return;
        }
        // (re)start the walk over every session with what changed so far:
        // each is told the addresses' state as it is when its turn comes
        let mut ids = self.addr_walk.take().map_or_else(Vec::new, |w| w.1);
        for id in changed {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        self.addr_walk = Some((0, ids));
    }

    /// The next `SWEEP_BATCH` sessions of an address change: ADD_ADDR of
    /// the addresses that are up again, REMOVE_ADDR of those that went
    /// down (RFC 8684 §3.4).
    fn addr_walk_step(&mut self) {
        let Some((from, ids)) = self.addr_walk.take() else {
            return;
        };
        let (batch, next) = slots(from, SWEEP_BATCH, self.sessions.len());
        for sid in batch {
            let Some(m) = self
                .sessions
                .get_mut(sid)
                .and_then(Option::as_mut)
                .filter(|s| s.announced)
                .and_then(|s| s.mp.as_mut())
            else {
                continue;
            };
            for &id in &ids {
                let Some(k) = usize::from(id).checked_sub(1) else {
                    continue;
                };
                match (self.addr_down.get(k), self.policy.advertise.get(k)) {
                    (Some(true), _) => m.withdraw(id),
                    (Some(false), Some(a)) => m.announce(id, *a, None),
                    _ => {}
                }
            }
            self.touch(sid);
        }
        self.addr_walk = next.map(|at| (at, ids));
    }

    /// The largest MSS for a side and address family.
    fn mss_for(&self, side: Side, v4: bool) -> u16 {
        Self::mss_in(&self.mtu, side, v4)
    }

    /// The largest MSS for a side's MTU (of `mtu`) and an address family:
    /// the MTU less the IP and TCP headers (RFC 9293 §3.7.1; 60 bytes with
    /// IPv6, RFC 8200). A subflow of a converted connection gets its own
    /// (`MpConnection::limit_subflow_mss`): over a cellular access at 1280
    /// bytes, an IPv6 subflow sends 1220-byte segments and an IPv4 one
    /// 1240, while the fixed access keeps 1460.
    fn mss_in(mtu: &[u16; 3], side: Side, v4: bool) -> u16 {
        let hdr = if v4 { 40 } else { 60 };
        mtu[side_index(side)].saturating_sub(hdr).max(536)
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Live sessions.
    pub fn active(&self) -> usize {
        self.active
    }

    /// The packets to send, in order; the caller drains it.
    pub fn outgoing(&mut self) -> &mut Vec<Outgoing<C>> {
        &mut self.out
    }

    /// Is `a` a NAT address the converter answers for (the pool)?
    pub fn owns_addr(&self, a: IpAddr) -> bool {
        self.nat.is_pool_addr(a)
    }

    fn session(&mut self, sid: usize) -> Option<&mut Session<C>> {
        self.sessions.get_mut(sid).and_then(Option::as_mut)
    }

    fn touch(&mut self, sid: usize) {
        if let Some(s) = self.sessions.get_mut(sid).and_then(Option::as_mut) {
            if !s.dirty {
                s.dirty = true;
                self.dirty.push(sid);
            }
        }
    }

    /// One IP packet carrying TCP that arrived on a port of `side` (`None`:
    /// a port that is neither access nor internet), its IP header `l2`
    /// bytes into `buf` (no link padding behind it). `local`: addressed to
    /// the gateway. The payload of a session's segment is taken as a handle
    /// to `buf` ([`PacketBuf::share`]), not copied.
    pub fn input<B: PacketBuf<Chunk = C>>(
        &mut self,
        now: Time,
        side: Option<Side>,
        local: bool,
        buf: &mut B,
        l2: usize,
        l4: RxChecksum,
    ) -> Verdict {
        let Some(ip) = buf.data_mut().get_mut(l2..) else {
            return Verdict::Pass;
        };
        let Some(p) = rewrite::peek(ip) else {
            return Verdict::Pass;
        };
        let key = FlowKey::of(&p);
        let flow = self.flows.get(&key).copied();
        match flow {
            Some(Flow::PtUp { sid, i }) => self.pt_forward(now, sid, i, true, &p, ip),
            Some(Flow::PtDown { sid, i }) => self.pt_forward(now, sid, i, false, &p, ip),
            Some(Flow::Client { sid, sf }) => {
                if p.is_bare_syn() {
                    if let Some(syn) = self.reopens(sid, sf, ip, &p) {
                        return self.new_syn(now, side.unwrap_or(Side::Fixed), local, ip, &p, syn);
                    }
                }
                let len = ip.len();
                let Some(seg) = self.parse(buf, l2, &p, l4) else {
                    return Verdict::Consumed;
                };
                let side = self
                    .sessions
                    .get(sid)
                    .and_then(Option::as_ref)
                    .and_then(|s| s.paths.get(sf))
                    .map_or(Side::Fixed, |p| p.side);
                self.count_rx(side, len);
                if let Some(s) = self.session(sid) {
                    s.last = now;
                    if let Some(m) = s.mp.as_mut() {
                        m.handle_segment(now, sf, seg);
                    }
                    // before the server answered, client retransmissions
                    // of the SYN are absorbed: hagw's SYN is on its way
                }
                self.touch(sid);
                Verdict::Consumed
            }
            Some(Flow::Server { sid }) => {
                self.count_rx(Side::Internet, ip.len());
                let Some(seg) = self.parse(buf, l2, &p, l4) else {
                    return Verdict::Consumed;
                };
                if let Some(key) = self.server_offers_mptcp(sid, &seg) {
                    drop(seg);
                    self.withdraw(sid, key);
                    let Some(ip) = buf.data_mut().get_mut(l2..) else {
                        return Verdict::Consumed;
                    };
                    return self.pt_forward(now, sid, 0, false, &p, ip);
                }
                self.server_segment(now, sid, seg);
                Verdict::Consumed
            }
            None | Some(Flow::Tomb { .. }) => {
                if !self.shard.is_single() {
                    if let Some(w) = self.elsewhere(now, side, &key, &p, ip) {
                        return Verdict::Handoff(w);
                    }
                }
                let access = matches!(side, Some(Side::Fixed | Side::Cellular));
                let syn = p.is_bare_syn();
                if !syn && flow.is_some() {
                    // a late packet of a converted connection: it must not
                    // reach the server (nor leak a cellular source)
                    self.stats.conv.segments_after_close.inc();
                    return Verdict::Consumed;
                }
                if access && !syn && !local && self.policy.matches(p.src, p.dst, p.dport) {
                    return match Self::parse_quiet(ip, &p) {
                        Some(seg) => self.no_session(now, side.unwrap_or(Side::Fixed), &p, seg),
                        None => Verdict::Pass,
                    };
                }
                if !access || !syn {
                    return Verdict::Pass;
                }
                match Self::parse_quiet(ip, &p) {
                    Some(seg) => self.new_syn(now, side.unwrap_or(Side::Fixed), local, ip, &p, seg),
                    None => Verdict::Pass,
                }
            }
        }
    }

    /// Is routed traffic NATed ([`routed`]): a `nat source` other than
    /// `none`?
    pub fn nats_routed(&self) -> bool {
        self.policy.nat != crate::config::NatSource::None
    }

    /// NAT of a routed IPv4 packet (from its IP header on) that no session
    /// took, which arrived on a port of `side`; `local`: addressed to the
    /// gateway (never translated).
    pub fn routed(
        &mut self,
        now: Time,
        side: Option<Side>,
        local: bool,
        ip: &mut [u8],
    ) -> routed::Routed {
        let (table, mut cx) = self.routed_parts();
        match side {
            _ if local => routed::Routed::Pass,
            Some(Side::Fixed | Side::Cellular) => table.outbound(now, &mut cx, ip),
            Some(Side::Internet) => table.inbound(now, &mut cx, ip),
            None => routed::Routed::Pass,
        }
    }

    /// The NAT of routed traffic and what it needs of the converter.
    fn routed_parts(&mut self) -> (&mut routed::Table, routed::Ctx<'_>) {
        let cx = routed::Ctx {
            policy: &self.policy,
            nat: &mut self.nat,
            stats: &self.stats.conv,
            me: self.shard.index,
            single: self.shard.is_single(),
        };
        (&mut self.routed, cx)
    }

    /// An ICMPv4 error (from the IP header on) that may concern a session:
    /// "destination unreachable" about the SYN hagw sent for a session
    /// still waiting for its server ends that session, and the client gets
    /// the same answer: returned are the client's side, its SYN as an IP
    /// packet (to quote) and the ICMP code. "Fragmentation needed" about a
    /// segment hagw sent, toward the server or to the client on a subflow,
    /// lowers that connection's MSS (RFC 1191 §6.3; `path_mtu`). Errors
    /// about other session packets are absorbed (`Some(None)`): they
    /// concern hagw's connections, not the client's or the server's. `None`:
    /// not about a session.
    #[allow(clippy::type_complexity)]
    pub fn icmp_input(&mut self, ip: &[u8]) -> Option<Option<(Side, Vec<u8>, u8)>> {
        let q = icmp_quote(ip)?;
        let flow = self.flows.get(&q.key).copied()?;
        let frag = q.kind == 3 && q.code == 4;
        let sid = match flow {
            Flow::Server { .. } | Flow::Client { .. } if frag => {
                self.path_mtu(flow, &q);
                return Some(None);
            }
            Flow::Server { sid } => sid,
            // about hagw's subflow to the client: hagw's, absorbed
            Flow::Client { .. } => return Some(None),
            // withdrawn connections' errors are the ends' own: routed
            _ => return None,
        };
        let (kind, code) = (q.kind, q.code);
        let s = self.sessions.get_mut(sid).and_then(Option::as_mut)?;
        if kind != 3 || s.phase != Phase::Connecting {
            return Some(None);
        }
        let syn = s.syn.take()?;
        let path = *s.paths.first()?;
        s.phase = Phase::Done;
        let seg = Segment {
            hdr: syn.hdr,
            payload: Gather::default(),
        };
        let mut quoted = Vec::new();
        crate::localpeer::emit_tcp_packet(path.client.0, path.gw.0, &seg, &mut |p| quoted = p);
        self.stats
            .conv
            .refused
            .inc(Refuse::ServerUnreachable as usize);
        self.touch(sid);
        Some(Some((path.side, quoted, code)))
    }

    /// An ICMP error (from the IP header on: ICMPv4, or ICMPv6 right after
    /// the IPv6 header; arrived from `side`) about a packet of a withdrawn
    /// subflow, which hagw only translates: NATed
    /// in place toward the end that sent the quoted packet (RFC 5508
    /// §4.2), so that its stack finds its connection in the quote (path
    /// MTU discovery, traceroute). From the internet, about what the
    /// client sent: to the client, quoting the client's address and port.
    /// From an access, about what the server sent: to the server from the
    /// NAT address (the server sees no access address, not even a
    /// router's), quoting the NAT address and port. True when translated:
    /// route it by its new addresses.
    pub fn icmp_nat(&mut self, ip: &mut [u8], side: Side) -> bool {
        use rewrite::End;
        let key = match ip.first().map(|b| b >> 4) {
            Some(4) => icmp_quote(ip).map(|q| q.key),
            Some(6) => ip.get(48..).and_then(quote_v6).map(|(key, _)| key),
            _ => None,
        };
        let (up, sid, i) = match key.and_then(|k| self.flows.get(&k)) {
            // the quote is hagw's packet to the server (from the NAT
            // address): its key is the server's replies' flow
            Some(&Flow::PtDown { sid, i }) if side == Side::Internet => (true, sid, i),
            Some(&Flow::PtUp { sid, i }) if side != Side::Internet => (false, sid, i),
            _ => return false,
        };
        let Some(s) = self.sessions.get(sid).and_then(Option::as_ref) else {
            return false;
        };
        let Some(&(client, nport)) = s.pt.get(i) else {
            return false;
        };
        let done = if up {
            rewrite::icmp_error(ip, (End::Dst, client.0), (End::Src, client.0, client.1))
        } else {
            rewrite::icmp_error(ip, (End::Src, s.nat.0), (End::Dst, s.nat.0, nport))
        };
        if done {
            self.stats.conv.icmp_translated.inc();
        }
        done
    }

    /// An ICMPv6 Packet Too Big (RFC 4443 §3.2) quoting `quoted` (the
    /// invoking packet from its IPv6 header on): when it is about a TCP
    /// segment of a connection hagw terminates (a subflow over IPv6, or an
    /// IPv6 server's side), that connection's MSS drops to the reported
    /// MTU, floored at 1280 (RFC 8201 §4: IPv6's minimum link MTU), less
    /// 60 bytes of headers, if the quoted segment is in flight. True when
    /// it was about such a connection (taken or not: hagw's own, never
    /// forwarded).
    pub fn packet_too_big(&mut self, mtu: u32, quoted: &[u8]) -> bool {
        let Some((key, seq)) = quote_v6(quoted) else {
            return false;
        };
        let Some(flow) = self.flows.get(&key).copied() else {
            return false;
        };
        if !matches!(flow, Flow::Server { .. } | Flow::Client { .. }) {
            return false;
        }
        let mss = u16::try_from(mtu.max(1280).saturating_sub(60)).unwrap_or(u16::MAX);
        self.lower_mss(flow, seq, mss);
        true
    }

    /// "Fragmentation needed and DF set" (RFC 792, RFC 1191 §4) about a
    /// segment of `flow`: the connection that sent it takes the next hop's
    /// MTU, floored at 552 bytes (RFC 5927 §7.2: an error may be forged;
    /// Linux's `min_pmtu`), less 40 bytes of headers, if the quoted
    /// sequence number is in flight. An error without the MTU (0: a router
    /// older than RFC 1191) is ignored.
    fn path_mtu(&mut self, flow: Flow, q: &Quote) {
        if q.mtu < 68 {
            return;
        }
        self.lower_mss(flow, q.seq, q.mtu.max(552) - 40);
    }

    /// `flow`'s connection takes `mss` if the segment at `seq` is in flight
    /// (`nf_tcp::Connection::path_mtu_lowered`); counted, and the session
    /// driven to resend.
    fn lower_mss(&mut self, flow: Flow, seq: u32, mss: u16) {
        let seq = Seq(seq);
        let (sid, taken) = match flow {
            Flow::Server { sid } => {
                let Some(s) = self.session(sid) else { return };
                (sid, s.srv.path_mtu_lowered(seq, mss))
            }
            Flow::Client { sid, sf } => {
                let Some(m) = self.session(sid).and_then(|s| s.mp.as_mut()) else {
                    return;
                };
                (sid, m.subflow_path_mtu(sf, seq, mss))
            }
            _ => return,
        };
        if taken {
            self.stats.conv.path_mtu_lowered.inc();
            // resend what the path dropped, in smaller segments
            self.touch(sid);
        }
    }

    /// A SYN on the tuple of subflow `sf` of session `sid` that opens a
    /// new connection (`nf_tcp::Connection::accepts_new_syn`: the subflow
    /// sits in TIME-WAIT, the client closed second and reuses its port):
    /// the subflow is ended, its entry dropped, and the SYN returned (parsed)
    /// to be taken as new. Else (`None`) it is the subflow's: a
    /// retransmitted SYN of an old incarnation gets the TIME-WAIT's ACK.
    fn reopens(&mut self, sid: usize, sf: usize, ip: &[u8], p: &Peek) -> Option<Incoming<C>> {
        let syn = Self::parse_quiet(ip, p)?;
        let m = self.session(sid).and_then(|s| s.mp.as_mut())?;
        if !m
            .subflows()
            .get(sf)
            .is_some_and(|s| s.tcp.accepts_new_syn(&syn.hdr))
        {
            return None;
        }
        m.forget_subflow(sf);
        self.stats.conv.subflows_reopened.inc();
        self.remove_client_flow(&FlowKey::of(p), None);
        self.touch(sid);
        Some(syn)
    }

    /// The TCP segment of a packet not (yet) known to be a session's
    /// (a SYN, or a segment answered with a RST): nothing counted, the
    /// caller routes it as it is when it does not parse. The payload (a
    /// SYN's, if any) is copied.
    fn parse_quiet(ip: &[u8], p: &Peek) -> Option<Incoming<C>> {
        nf_tcp::wirefmt::parse(ip.get(p.l4..)?, Some((p.src, p.dst)), C::copied).ok()
    }

    /// A session's segment: its payload becomes a handle to `buf` (a copy,
    /// counted, only where the buffer cannot be shared). `l4`: the NIC's
    /// verdict on its checksum; software sums it only when there is none
    /// (RFC 9293 §3.1: a segment with a bad checksum is dropped).
    fn parse<B: PacketBuf<Chunk = C>>(
        &mut self,
        buf: &B,
        l2: usize,
        p: &Peek,
        l4: RxChecksum,
    ) -> Option<Incoming<C>> {
        let st = &self.stats.conv;
        let addrs = match l4 {
            RxChecksum::Good => None,
            RxChecksum::Unknown => Some((p.src, p.dst)),
            RxChecksum::Bad => {
                st.segments_malformed.inc();
                return None;
            }
        };
        let at = l2 + p.l4;
        let tcp = buf.data().get(at..)?;
        let base = tcp.as_ptr() as usize;
        // the payload's place in the buffer
        let r =
            nf_tcp::wirefmt::parse(tcp, addrs, |s: &[u8]| (s.as_ptr() as usize - base, s.len()));
        match r {
            Ok(seg) => {
                let (off, len) = seg.payload;
                let (start, end) = (at + off, at + off + len);
                let payload = if len == 0 {
                    C::empty()
                } else if let Some(c) = buf.share(start, end) {
                    c
                } else {
                    st.payload_bytes_copied.add(len as u64);
                    C::copied(buf.data().get(start..end)?)
                };
                Some(Incoming {
                    hdr: seg.hdr,
                    payload,
                })
            }
            Err(_) => {
                st.segments_malformed.inc();
                None
            }
        }
    }

    fn count_rx(&self, side: Side, bytes: usize) {
        let st = &self.stats.conv;
        st.rx_packets.inc(side_index(side));
        st.rx_bytes.0[side_index(side)].add(bytes as u64);
    }

    /// A SYN from the access (`seg`, parsed from `ip`) that matches no flow
    /// or reopens one: MP_CAPABLE → a new session, MP_JOIN → a subflow of a
    /// known one, else not ours.
    fn new_syn(
        &mut self,
        now: Time,
        side: Side,
        local: bool,
        ip: &mut [u8],
        p: &Peek,
        seg: Incoming<C>,
    ) -> Verdict {
        let opt = seg
            .hdr
            .opts
            .mptcp
            .map(|o| MptcpOption::parse(o.as_slice(), true, false));
        match opt {
            Some(Ok(MptcpOption::JoinSyn { token, .. })) => self.join(now, side, token, ip, p, seg),
            Some(Ok(MptcpOption::Capable {
                version: 1,
                sender_key: None,
                flags,
                ..
            })) if !local && self.policy.matches(p.src, p.dst, p.dport) => {
                self.count_rx(side, ip.len());
                self.open(now, side, p, seg, flags.checksum());
                Verdict::Consumed
            }
            Some(Err(_)) if self.policy.matches(p.src, p.dst, p.dport) => {
                // a malformed MPTCP option in a SYN we would convert:
                // RFC 8684 §3.7 lets it fall back; we route it as plain TCP
                self.stats.conv.segments_malformed.inc();
                Verdict::Pass
            }
            _ => Verdict::Pass,
        }
    }

    /// A segment from the access, in the conversion policy, of no session
    /// and no recent one. Plain TCP is routed (a client that did not ask
    /// for MPTCP is not converted). The third ACK of a SYN cookie opens its
    /// session. Any other segment with an MPTCP option belongs to a
    /// connection hagw converted and forgot (it restarted, or the session
    /// ended long ago): routing it would put the subscriber's access address
    /// in front of the server, past the NAT. It is answered with a RST (RFC
    /// 9293 §3.10.7.1, a segment of no connection; the client's stale
    /// subflow ends) and counted; a RST is dropped.
    fn no_session(&mut self, now: Time, side: Side, p: &Peek, seg: Incoming<C>) -> Verdict {
        if seg.hdr.opts.mptcp.is_none() {
            return Verdict::Pass;
        }
        let h = seg.hdr;
        let len = nf_core::chunk::Chunk::len(&seg.payload);
        if h.flags & (flags::ACK | flags::RST) == flags::ACK {
            if let Some(v) = self.cookie_ack(now, side, p, seg) {
                return v;
            }
        }
        self.stats.conv.segments_no_session.inc();
        if h.rst() {
            return Verdict::Consumed;
        }
        self.reset_to(side, p.dst, p.src, &h, len);
        Verdict::Consumed
    }

    /// RST answering an MP_JOIN SYN we refuse (RFC 8684 §3.2), counted by
    /// reason.
    fn refuse_join(&mut self, side: Side, p: &Peek, hdr: &Header, why: JoinRefuse) -> Verdict {
        self.stats.conv.joins_refused.inc(why as usize);
        self.reset_to(side, p.dst, p.src, hdr, 0);
        Verdict::Consumed
    }

    /// RST|ACK answering a SYN we refuse (RFC 9293 §3.10.7.1).
    fn refuse_syn(&mut self, side: Side, p: &Peek, hdr: &Header, why: Refuse) {
        self.stats.conv.refused.inc(why as usize);
        self.reset_to(side, p.dst, p.src, hdr, 0);
    }

    /// A RST from `src` answering segment `h` (with `payload` bytes) that
    /// belongs to no connection, built as RFC 9293 §3.10.7.1 says: from
    /// its ACK when it has one, else RST|ACK acknowledging what it took.
    fn reset_to(&mut self, side: Side, src: IpAddr, dst: IpAddr, h: &Header, payload: usize) {
        let h = if h.ack_flag() {
            Header {
                src_port: h.dst_port,
                dst_port: h.src_port,
                seq: h.ack,
                flags: flags::RST,
                ..Default::default()
            }
        } else {
            Header {
                src_port: h.dst_port,
                dst_port: h.src_port,
                seq: Seq(0),
                ack: h.seq + (payload + usize::from(h.syn()) + usize::from(h.fin())),
                flags: flags::RST | flags::ACK,
                ..Default::default()
            }
        };
        self.out.push(Outgoing {
            src,
            dst,
            seg: Segment {
                hdr: h,
                payload: Gather::default(),
            },
            side,
        });
    }

    /// Resets the oldest half-open session to make room (a SYN flood's
    /// sessions never complete; a real client completes within its RTT, so
    /// under a flood it keeps working as long as a half-open session lives
    /// longer than that: budget / flood rate). False when none is left.
    fn evict_half_open(&mut self, now: Time) -> bool {
        while let Some((sid, id)) = self.half_open_fifo.pop_front() {
            let live = self
                .sessions
                .get(sid)
                .and_then(Option::as_ref)
                .is_some_and(|s| s.id == id && s.half_open);
            if !live {
                continue;
            }
            if let Some(s) = self.session(sid) {
                s.abort();
            }
            self.drive_queued(now, sid);
            if let Some(s) = self.session(sid) {
                s.phase = Phase::Done;
            }
            self.remove(sid);
            self.stats.conv.sessions_evicted.inc();
            return true;
        }
        false
    }

    /// Half-open sessions hagw keeps at most before it answers with cookies.
    fn half_open_budget(&self) -> usize {
        (self.policy.max_sessions / HALF_OPEN_SHARE).max(16)
    }

    /// An MP_CAPABLE SYN (`checksum`: the client asks for DSS checksums).
    fn open(&mut self, now: Time, side: Side, p: &Peek, syn: Incoming<C>, checksum: bool) {
        let per_src = self.half_open_by_src.get(&p.src).copied().unwrap_or(0);
        if per_src >= HALF_OPEN_PER_SOURCE {
            // RFC 4987 §3.2 spirit: hagw holds no state for more
            // (a real client retries its SYN)
            return self.refuse_syn(side, p, &syn.hdr, Refuse::HalfOpenLimit);
        }
        if self.half_open >= self.half_open_budget() {
            // RFC 4987 §3.6: a SYN flood spent the half-open budget; the
            // client gets a cookie SYN/ACK and hagw keeps nothing
            return self.send_cookie(now, side, p, &syn.hdr, checksum);
        }
        if self.active >= self.policy.max_sessions && !self.evict_half_open(now) {
            return self.refuse_syn(side, p, &syn.hdr, Refuse::TableFull);
        }
        let hdr = syn.hdr;
        if let Err(why) = self.create_session(now, side, p, syn, None, None) {
            self.refuse_syn(side, p, &hdr, why);
        }
    }

    /// A session for the client's SYN `syn`: NAT binding and the SYN
    /// toward the server (`srv_syn` when it differs from the client's).
    /// `mp`: the client's side, already established by a cookie; else the
    /// session is half-open until the server answers.
    fn create_session(
        &mut self,
        now: Time,
        side: Side,
        p: &Peek,
        syn: Incoming<C>,
        srv_syn: Option<Header>,
        mp: Option<MpConnection<C>>,
    ) -> Result<usize, Refuse> {
        let subscriber = self.policy.subscriber_of(p.src).map(|s| s.fixed);
        let sub = subscriber.unwrap_or(p.src);
        if self.by_subscriber.get(&sub).copied().unwrap_or(0)
            >= self.policy.max_sessions_per_subscriber
        {
            return Err(Refuse::SubscriberLimit);
        }
        let fixed_source = match self.policy.nat {
            crate::config::NatSource::SubscriberFixed => {
                subscriber.or((side == Side::Fixed).then_some(p.src))
            }
            crate::config::NatSource::None => Some(p.src),
            crate::config::NatSource::Pool => None,
        };
        let nat = match self.nat.bind(sub, fixed_source, p.sport, (p.dst, p.dport)) {
            Ok(n) => n,
            Err(NatError::NoSource) => return Err(Refuse::NoNatSource),
            Err(NatError::Exhausted) => return Err(Refuse::NatPortsExhausted),
        };
        let cfg = nf_tcp::Config {
            mss: self.mss_for(Side::Internet, p.dst.is_ipv4()),
            ..self.tcp_cfg
        };
        let srv = Connection::connect_as(cfg, now, nat.1, srv_syn.as_ref().unwrap_or(&syn.hdr));
        let path = Path {
            client: (p.src, p.sport),
            gw: (p.dst, p.dport),
            side,
            live: false,
            loss: LossSeen::default(),
        };
        let id = self.next_id;
        self.next_id += 1;
        let mut s = Session::new(id, sub, (p.dst, p.dport), nat, now, syn, srv, path);
        let token = mp.as_ref().map(MpConnection::local_token);
        if let Some(m) = mp {
            s.syn = None;
            s.half_open = false;
            s.mp = Some(m);
            if let Some(p) = s.paths.first_mut() {
                p.live = true;
            }
            self.stats.conv.subflows.inc(side_index(side));
        }
        let sid = match self.free.pop() {
            Some(i) => {
                self.sessions[i] = Some(s);
                i
            }
            None => {
                self.sessions.push(Some(s));
                self.sessions.len() - 1
            }
        };
        // (over the tuple's tombstone, if any)
        self.add_client_flow(FlowKey::of(p), Flow::Client { sid, sf: 0 });
        self.set_flow(FlowKey::new((p.dst, p.dport), nat), Flow::Server { sid });
        self.active += 1;
        *self.by_subscriber.entry(sub).or_insert(0) += 1;
        match token {
            Some(t) => self.add_token(t, sid),
            None => {
                self.half_open += 1;
                self.half_open_fifo.push_back((sid, id));
                if self.half_open_fifo.len() > 2 * self.half_open_budget() {
                    // drop the entries of sessions no longer half-open
                    let sessions = &self.sessions;
                    self.half_open_fifo.retain(|&(sid, id)| {
                        sessions
                            .get(sid)
                            .and_then(Option::as_ref)
                            .is_some_and(|s| s.id == id && s.half_open)
                    });
                }
                *self.half_open_by_src.entry(p.src).or_insert(0) += 1;
            }
        }
        let st = &self.stats.conv;
        st.sessions_created.inc();
        st.sessions_active.set(self.active as u64);
        st.nat_ports_in_use.set(self.nat.in_use() as u64);
        self.touch(sid);
        Ok(sid)
    }

    /// The SYN hagw remembers for a cookie: the client's ISN, the MSS the
    /// cookie carries, MP_CAPABLE (checksums if the client asked) and, when
    /// the client uses timestamps, its window scale and SACK-permitted as
    /// the low bits of hagw's TSval echo them (`ts_options`); without
    /// timestamps neither (RFC 4987 §3.6).
    fn cookie_syn(h: &Header, seq: Seq, mss: u16, checksum: bool, ts: TsOptions) -> Header {
        let mut opts = nf_tcp::Opts {
            mss: Some(mss),
            ..Default::default()
        };
        if let Some((tsval, wscale, sack)) = ts {
            opts.ts = Some((tsval, 0));
            opts.wscale = wscale;
            opts.sack_perm = sack;
        }
        let o = MptcpOption::Capable {
            version: 1,
            flags: nf_mptcp::options::CapFlags::ours(checksum),
            sender_key: None,
            receiver_key: None,
            data_len: None,
            checksum: None,
        };
        let mut raw = [0u8; 40];
        let n = o.emit(&mut raw);
        opts.mptcp = nf_tcp::RawOpt::new(&raw[..n]);
        Header {
            src_port: h.src_port,
            dst_port: h.dst_port,
            seq,
            flags: flags::SYN,
            window: h.window,
            opts,
            ..Default::default()
        }
    }

    /// Answers an MP_CAPABLE SYN with a cookie SYN/ACK, keeping no state.
    fn send_cookie(&mut self, now: Time, side: Side, p: &Peek, syn: &Header, checksum: bool) {
        let t = cookie::Tuple {
            client: (p.src, p.sport),
            server: (p.dst, p.dport),
        };
        let (isn, mss) = self
            .cookies
            .make(now, &t, syn.seq, syn.opts.mss.unwrap_or(536), checksum);
        let secrets = Secrets {
            key: self.cookies.key(&t, isn),
            seed: 0,
        };
        let ts = syn
            .opts
            .ts
            .map(|(v, _)| (v, syn.opts.wscale, syn.opts.sack_perm));
        let hdr = Self::cookie_syn(syn, syn.seq, mss, checksum, ts);
        let syn = Incoming {
            hdr,
            payload: C::empty(),
        };
        let role = policy::path_role(side == Side::Fixed);
        let sched = self.policy.new_scheduler();
        let Some(mut mp) = MpConnection::server(self.mp_cfg, secrets, &syn, isn, role, sched)
        else {
            return;
        };
        mp.limit_subflow_mss(0, self.mss_for(side, p.src.is_ipv4()));
        if let Some((_, wscale, sack)) = ts {
            // the client's window scale and SACK-permitted ride in the low
            // bits of our TSval; its TSecr brings them back
            let bits = u32::from(wscale.map_or(15, |w| w.min(14))) | u32::from(sack) << 4;
            mp.set_ts_clock(now, ((now / 1_000_000) as u32 & !0x1f) | bits);
        }
        if let Some((_, seg)) = mp.poll_transmit(now) {
            self.stats.conv.syn_cookies_sent.inc();
            self.out.push(Outgoing {
                src: p.dst,
                dst: p.src,
                seg,
                side,
            });
        }
    }

    /// The third ACK of a cookie SYN/ACK (MP_CAPABLE with both keys, ours
    /// derived from the cookie): the client is real; the session starts
    /// with its MPTCP side established and the SYN goes to the server. None
    /// when it is not a cookie's ACK.
    fn cookie_ack(&mut self, now: Time, side: Side, p: &Peek, seg: Incoming<C>) -> Option<Verdict> {
        let h = seg.hdr;
        let Some(Ok(MptcpOption::Capable {
            sender_key: Some(_),
            receiver_key: Some(ours),
            ..
        })) = h
            .opts
            .mptcp
            .map(|o| MptcpOption::parse(o.as_slice(), false, true))
        else {
            return None;
        };
        let t = cookie::Tuple {
            client: (p.src, p.sport),
            server: (p.dst, p.dport),
        };
        let isn = Seq(h.ack.0.wrapping_sub(1));
        let client_isn = Seq(h.seq.0.wrapping_sub(1));
        let valid = self
            .cookies
            .check(now, &t, client_isn, isn)
            .filter(|_| ours == self.cookies.key(&t, isn));
        let Some(ck) = valid else {
            self.stats.conv.syn_cookies_invalid.inc();
            return None;
        };
        let secrets = Secrets {
            key: ours,
            seed: self.keys.next_u64(),
        };
        // the options the cookie SYN/ACK took from the client's SYN, from
        // the low bits of our TSval that the client echoes
        let ts = h.opts.ts.filter(|&(_, ecr)| ecr != 0).map(|(v, ecr)| {
            let w = (ecr & 0xf) as u8;
            (v, (w != 15).then_some(w), ecr & 0x10 != 0)
        });
        let syn = Incoming {
            hdr: Self::cookie_syn(&h, client_isn, ck.mss, ck.checksum, ts),
            payload: C::empty(),
        };
        let role = policy::path_role(side == Side::Fixed);
        let sched = self.policy.new_scheduler();
        let mut mp = MpConnection::server(self.mp_cfg, secrets, &syn, isn, role, sched)?;
        mp.limit_subflow_mss(0, self.mss_for(side, p.src.is_ipv4()));
        if let Some((_, ecr)) = h.opts.ts.filter(|_| ts.is_some()) {
            // our clock goes on from the TSval the client echoes
            mp.set_ts_clock(now, ecr);
        }
        // the SYN/ACK went out statelessly before; now the ACK
        let _ = mp.poll_transmit(now);
        let len = nf_core::chunk::Chunk::len(&seg.payload);
        mp.handle_segment(now, 0, seg);
        if !mp.is_established() {
            self.stats.conv.syn_cookies_invalid.inc();
            self.stats.conv.segments_no_session.inc();
            self.reset_to(side, p.dst, p.src, &h, len);
            return Some(Verdict::Consumed);
        }
        if self.active >= self.policy.max_sessions && !self.evict_half_open(now) {
            self.stats.conv.refused.inc(Refuse::TableFull as usize);
            self.reset_to(side, p.dst, p.src, &h, len);
            return Some(Verdict::Consumed);
        }
        // toward the server hagw offers its own options (nothing of the
        // client's SYN to mirror: it is terminated in any case)
        let mut srv_syn = syn.hdr;
        srv_syn.opts.mptcp = None;
        srv_syn.opts.wscale = Some(7);
        srv_syn.opts.sack_perm = true;
        srv_syn.opts.ts = Some(((now / 1_000_000) as u32, 0));
        srv_syn.opts.mss = None;
        match self.create_session(now, side, p, syn, Some(srv_syn), Some(mp)) {
            Ok(_) => self.stats.conv.syn_cookies_accepted.inc(),
            Err(why) => {
                self.stats.conv.refused.inc(why as usize);
                self.reset_to(side, p.dst, p.src, &h, len);
            }
        }
        Some(Verdict::Consumed)
    }

    /// The server's key when its SYN/ACK carries MP_CAPABLE, the session
    /// waits for it and policy lets hagw withdraw.
    fn server_offers_mptcp(&self, sid: usize, seg: &Incoming<C>) -> Option<u64> {
        let s = self.sessions.get(sid).and_then(Option::as_ref)?;
        if !self.policy.withdraw
            || s.phase != Phase::Connecting
            || s.mp.is_some()
            || !(seg.hdr.syn() && seg.hdr.ack_flag())
            || seg.hdr.ack != s.srv.iss() + 1
        {
            return None;
        }
        match MptcpOption::parse(seg.hdr.opts.mptcp?.as_slice(), true, true).ok()? {
            MptcpOption::Capable {
                sender_key: Some(key),
                ..
            } => Some(key),
            _ => None,
        }
    }

    /// The server's segment for session `sid`.
    fn server_segment(&mut self, now: Time, sid: usize, seg: Incoming<C>) {
        let Some(s) = self.session(sid) else { return };
        s.last = now;
        if s.phase == Phase::Connecting && seg.hdr.syn() && seg.hdr.ack_flag() {
            return self.terminate(now, sid, seg);
        }
        s.srv.handle_segment(now, seg);
        self.touch(sid);
    }

    /// The server does not speak MPTCP: hagw terminates the client's
    /// MPTCP connection and answers it with its own MP_CAPABLE SYN/ACK.
    fn terminate(&mut self, now: Time, sid: usize, seg: Incoming<C>) {
        let secrets = Secrets {
            key: self.draw_key(),
            seed: self.keys.next_u64(),
        };
        let iss = Seq(self.keys.next_u64() as u32);
        let (mp_cfg, mtu) = (self.mp_cfg, self.mtu);
        let sched = self.policy.new_scheduler();
        let Some(s) = self.session(sid) else { return };
        s.srv.handle_segment(now, seg);
        if s.srv.state() != nf_tcp::State::Established {
            // not acceptable (wrong ACK): the engine answered it
            return self.touch(sid);
        }
        if s.mp.is_some() {
            // a cookie's session: the client's side is up already
            s.phase = Phase::Converted;
            return self.touch(sid);
        }
        let Some(syn) = s.syn.take() else { return };
        let role = policy::path_role(s.paths.first().is_none_or(|p| p.side == Side::Fixed));
        match MpConnection::server(mp_cfg, secrets, &syn, iss, role, sched) {
            Some(mut mp) => {
                if let Some(p) = s.paths.first() {
                    mp.limit_subflow_mss(0, Self::mss_in(&mtu, p.side, p.client.0.is_ipv4()));
                }
                let token = mp.local_token();
                s.mp = Some(mp);
                s.phase = Phase::Converted;
                if let Some(p) = s.paths.first_mut() {
                    p.live = true;
                    let side = p.side;
                    self.stats.conv.subflows.inc(side_index(side));
                }
                self.add_token(token, sid);
            }
            None => {
                // the SYN was checked on arrival; nothing to convert
                s.srv.abort();
                s.phase = Phase::Done;
            }
        }
        self.touch(sid);
    }

    /// The server speaks MPTCP and policy lets it: its SYN/ACK goes to
    /// the client (NATed back) and the connection is only translated from
    /// now on; hagw's server-side engine is dropped.
    fn withdraw(&mut self, sid: usize, server_key: u64) {
        let Some(s) = self.session(sid) else { return };
        s.phase = Phase::Passthrough;
        s.syn = None;
        let token = nf_mptcp::crypto::token(server_key);
        s.server_token = Some(token);
        let (server, nat) = (s.server, s.nat);
        let Some(client) = s.paths.first().map(|p| p.client) else {
            return;
        };
        s.pt.push((client, nat.1));
        self.set_flow(FlowKey::new(client, server), Flow::PtUp { sid, i: 0 });
        self.set_flow(FlowKey::new(server, nat), Flow::PtDown { sid, i: 0 });
        self.add_token(token, sid);
        self.clear_half_open(sid);
        self.stats.conv.sessions_withdrawn.inc();
    }

    /// NAT of a withdrawn subflow's packet, in place.
    fn pt_forward(
        &mut self,
        now: Time,
        sid: usize,
        i: usize,
        up: bool,
        p: &Peek,
        ip: &mut [u8],
    ) -> Verdict {
        let Some(s) = self.sessions.get_mut(sid).and_then(Option::as_mut) else {
            return Verdict::Pass;
        };
        let Some(&(client, nport)) = s.pt.get(i) else {
            return Verdict::Pass;
        };
        s.last = now;
        if p.flags & flags::RST != 0 {
            s.pt_rst = true;
        }
        if p.flags & flags::SYN != 0 {
            // segments answering this SYN cross both the access and the
            // internet link: clamp the MSS it announces to the narrower
            let access = s.paths.first().map_or(Side::Fixed, |p| p.side);
            let mtu = self.mtu[side_index(access)].min(self.mtu[side_index(Side::Internet)]);
            let limit = mtu.saturating_sub(if p.src.is_ipv4() { 40 } else { 60 });
            rewrite::clamp_mss(ip, p, limit);
        }
        if p.flags & flags::FIN != 0 {
            if up {
                s.pt_fin.0 = true;
            } else {
                s.pt_fin.1 = true;
            }
        }
        let ok = if up {
            rewrite::rewrite(ip, p, true, s.nat.0, nport)
        } else {
            rewrite::rewrite(ip, p, false, client.0, client.1)
        };
        let st = &self.stats.conv;
        let side = if up { Side::Fixed } else { Side::Internet };
        st.rx_packets.inc(side_index(side));
        st.rx_bytes.0[side_index(side)].add(ip.len() as u64);
        if ok {
            Verdict::Forward
        } else {
            st.segments_malformed.inc();
            Verdict::Consumed
        }
    }

    /// An MP_JOIN SYN (RFC 8684 §3.2): attach it to the session that owns
    /// the token, from any access and address family.
    fn join(
        &mut self,
        now: Time,
        side: Side,
        token: u32,
        ip: &mut [u8],
        p: &Peek,
        seg: Incoming<C>,
    ) -> Verdict {
        let Some(&sid) = self.tokens.get(&token) else {
            return self.refuse_join(side, p, &seg.hdr, JoinRefuse::UnknownToken);
        };
        let iss = Seq(self.keys.next_u64() as u32);
        let mss = self.mss_for(side, p.src.is_ipv4());
        let phase = self
            .sessions
            .get(sid)
            .and_then(Option::as_ref)
            .map(|s| s.phase);
        match phase {
            Some(Phase::Converted) => {
                let role = policy::path_role(side == Side::Fixed);
                let Some(s) = self.session(sid) else {
                    return Verdict::Consumed;
                };
                let Some(m) = s.mp.as_mut() else {
                    return Verdict::Consumed;
                };
                if !m.is_established() {
                    return self.refuse_join(side, p, &seg.hdr, JoinRefuse::NotEstablished);
                }
                let hdr = seg.hdr;
                match m.accept_join(&seg, iss, role) {
                    Some(sf) => {
                        m.limit_subflow_mss(sf, mss);
                        // every subflow has its path: index `sf` is the next
                        s.paths.push(Path {
                            client: (p.src, p.sport),
                            gw: (p.dst, p.dport),
                            side,
                            live: true,
                            loss: LossSeen::default(),
                        });
                        s.last = now;
                        self.add_client_flow(FlowKey::of(p), Flow::Client { sid, sf });
                        let st = &self.stats.conv;
                        st.joins_accepted.inc();
                        st.subflows.inc(side_index(side));
                        self.count_rx(side, ip.len());
                        self.touch(sid);
                    }
                    None => {
                        self.refuse_join(side, p, &hdr, JoinRefuse::SubflowLimit);
                    }
                }
                Verdict::Consumed
            }
            Some(Phase::Passthrough) => {
                // a subflow of a withdrawn connection: NAT it like the first
                let Some(s) = self.sessions.get_mut(sid).and_then(Option::as_mut) else {
                    return Verdict::Consumed;
                };
                if p.dst != s.server.0 || p.dst.is_ipv4() != s.nat.0.is_ipv4() {
                    return self.refuse_join(side, p, &seg.hdr, JoinRefuse::UnknownToken);
                }
                let (sub, nat_addr, server) = (s.sub, s.nat.0, (p.dst, p.dport));
                let fixed = Some(nat_addr);
                let nat = match self.nat.bind(sub, fixed, p.sport, server) {
                    Ok(n) => n,
                    Err(_) => {
                        return self.refuse_join(side, p, &seg.hdr, JoinRefuse::SubflowLimit);
                    }
                };
                let Some(s) = self.sessions.get_mut(sid).and_then(Option::as_mut) else {
                    return Verdict::Consumed;
                };
                s.pt.push(((p.src, p.sport), nat.1));
                let i = s.pt.len() - 1;
                self.add_client_flow(FlowKey::of(p), Flow::PtUp { sid, i });
                self.set_flow(FlowKey::new(server, nat), Flow::PtDown { sid, i });
                self.stats.conv.joins_accepted.inc();
                self.stats
                    .conv
                    .nat_ports_in_use
                    .set(self.nat.in_use() as u64);
                let p2 = *p;
                self.pt_forward(now, sid, i, true, &p2, ip)
            }
            _ => self.refuse_join(side, p, &seg.hdr, JoinRefuse::NotEstablished),
        }
    }

    /// When `poll` next has timer work: a session's timer or the idle
    /// scan (a dirty session is driven by the next `poll` in any case).
    pub fn next_timeout(&self) -> Time {
        self.timers
            .peek()
            .map_or(self.next_idle_scan, |Reverse((t, _))| {
                (*t).min(self.next_idle_scan)
            })
    }

    /// Runs what is due: sessions touched by input, expired timers, idle
    /// timeouts, and the list for `/sessions` when it was asked for. What
    /// the sessions' engines send goes to `out` as they give it; what the
    /// converter answers itself waits in [`Converter::outgoing`].
    pub fn poll(&mut self, now: Time, out: &mut impl Emit<C>) {
        while let Some(&Reverse((t, sid))) = self.timers.peek() {
            if t > now {
                break;
            }
            self.timers.pop();
            let due = self
                .sessions
                .get(sid)
                .and_then(Option::as_ref)
                .is_some_and(|s| s.sched_at == Some(t));
            if due {
                if let Some(s) = self.session(sid) {
                    s.sched_at = None;
                    s.on_timeout(now);
                }
                self.touch(sid);
            }
        }
        self.expire_tombstones(now);
        self.expire_redirects(now);
        if !self.routed.is_empty() {
            let (table, mut cx) = self.routed_parts();
            table.expire(now, &mut cx);
        }
        self.addr_walk_step();
        if now >= self.next_idle_scan {
            self.idle_sweep(now);
        }
        let mut dirty = std::mem::take(&mut self.dirty);
        for &sid in &dirty {
            self.drive(now, sid, out);
        }
        dirty.clear();
        if self.dirty.is_empty() {
            self.dirty = dirty;
        }
        // `GET /sessions` asked for a fresh list (a relaxed load per loop;
        // the list is built only when someone looks)
        if self.listing.is_some()
            || self
                .stats
                .sessions_wanted
                .load(std::sync::atomic::Ordering::Relaxed)
        {
            self.publish(now);
        }
    }

    /// A session's engines, what they send queued in [`Converter::outgoing`]
    /// (sessions ended outside the poll's walk over the touched ones).
    fn drive_queued(&mut self, now: Time, sid: usize) {
        let mut out = std::mem::take(&mut self.out);
        self.drive(now, sid, &mut out);
        // what the converter queued meanwhile (a reset to the client) after
        out.append(&mut self.out);
        self.out = out;
    }

    /// A session's engines, what they send to `out`.
    fn drive(&mut self, now: Time, sid: usize, out: &mut impl Emit<C>) {
        let withdraw = self.policy.withdraw;
        let st = &self.stats.conv;
        let Some(s) = self.sessions.get_mut(sid).and_then(Option::as_mut) else {
            return;
        };
        s.dirty = false;
        if s.phase == Phase::Passthrough {
            return;
        }
        // what goes out is counted where it is built (Pipeline::send_segment)
        let failed = s.drive(now, withdraw, st, out);
        if let Some(e) = failed {
            // the server refused or never answered: the same to the client
            if let Some(syn) = s.syn.take() {
                let side = s.paths.first().map_or(Side::Fixed, |p| p.side);
                let why = if e == nf_tcp::Event::Reset {
                    Refuse::ServerReset
                } else {
                    Refuse::ServerTimeout
                };
                s.phase = Phase::Done;
                let (src, dst) = (syn_dst(&s.paths), syn_src(&s.paths));
                self.stats.conv.refused.inc(why as usize);
                self.reset_to(side, src, dst, &syn.hdr, 0);
            }
        }
        let Some(s) = self.sessions.get_mut(sid).and_then(Option::as_mut) else {
            return;
        };
        if s.phase == Phase::Done || s.finished() {
            return self.remove(sid);
        }
        let established = s.mp.as_ref().is_some_and(|m| m.is_established());
        if established && s.half_open {
            self.clear_half_open(sid);
        }
        let Some(s) = self.sessions.get_mut(sid).and_then(Option::as_mut) else {
            return;
        };
        if let Some(m) = s.mp.as_mut() {
            if m.is_established() && !s.announced {
                s.announced = true;
                // RFC 8684 §3.4.1: announce the gateway's other addresses
                for (k, a) in self.policy.advertise.iter().enumerate() {
                    if self.addr_down.get(k) != Some(&true) {
                        m.announce(k as u8 + 1, *a, None);
                    }
                }
            }
        }
        if let Some(t) = s.next_timeout() {
            if s.sched_at.is_none_or(|at| t < at) {
                s.sched_at = Some(t);
                self.timers.push(Reverse((t, sid)));
            }
        }
    }

    /// Tombstones whose time has come, oldest first (each `poll`: a few
    /// at a time, as many as were laid).
    fn expire_tombstones(&mut self, now: Time) {
        while let Some(&(until, k)) = self.tomb_fifo.front() {
            if until > now {
                break;
            }
            self.tomb_fifo.pop_front();
            // one lookup: the entry may have been reused or laid again
            if let hashbrown::hash_map::Entry::Occupied(e) = self.flows.entry(k) {
                if matches!(*e.get(), Flow::Tomb { until } if until <= now) {
                    e.remove();
                    self.tombstones = self.tombstones.saturating_sub(1);
                }
            }
        }
        if self.tomb_fifo.is_empty() && self.tomb_fifo.capacity() > 4096 {
            self.tomb_fifo.shrink_to(4096);
        }
    }

    /// Tombstones held (client tuples of ended sessions absorbing late
    /// packets).
    pub fn tombstones(&self) -> usize {
        self.tombstones
    }

    /// The next `SWEEP_BATCH` slots of the idle sweep: idle sessions are
    /// reset; finished withdrawn ones drop their NAT bindings after a
    /// linger. The end of a sweep publishes the splice-queue occupancy and
    /// schedules the next one a second later.
    fn idle_sweep(&mut self, now: Time) {
        let idle = self.policy.idle_timeout;
        let (batch, next) = slots(self.sweep_at, SWEEP_BATCH, self.sessions.len());
        let mut expired = Vec::new();
        for sid in batch {
            let Some(s) = self.sessions.get(sid).and_then(Option::as_ref) else {
                continue;
            };
            self.sweep_held += s.buffered();
            let quiet = now.saturating_sub(s.last);
            let pt_over = s.phase == Phase::Passthrough
                && ((s.pt_fin.0 && s.pt_fin.1) || s.pt_rst)
                && quiet > PT_LINGER_NS;
            if pt_over || (idle > 0 && quiet > idle) {
                expired.push((sid, pt_over));
            }
        }
        self.sweep_at = next.unwrap_or(0);
        if next.is_none() {
            self.stats
                .conv
                .splice_queue_bytes
                .set(std::mem::take(&mut self.sweep_held) as u64);
            self.next_idle_scan = now + 1_000_000_000;
        }
        for (sid, normal) in expired {
            if !normal {
                self.stats.conv.sessions_timed_out.inc();
            }
            let pass = self
                .sessions
                .get(sid)
                .and_then(Option::as_ref)
                .is_some_and(|s| s.phase == Phase::Passthrough);
            if pass {
                self.remove(sid);
            } else if let Some(s) = self.session(sid) {
                s.abort();
                s.last = now;
                self.drive_queued(now, sid);
                if let Some(s) = self.session(sid) {
                    s.phase = Phase::Done;
                }
                self.remove(sid);
            }
        }
    }

    fn release_src(&mut self, a: IpAddr) {
        if let Some(n) = self.half_open_by_src.get_mut(&a) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.half_open_by_src.remove(&a);
            }
        }
    }

    /// The client completed its handshake (or the connection was
    /// withdrawn): the session no longer counts as half-open.
    fn clear_half_open(&mut self, sid: usize) {
        let Some(s) = self.sessions.get_mut(sid).and_then(Option::as_mut) else {
            return;
        };
        if !s.half_open {
            return;
        }
        s.half_open = false;
        let src = s.paths.first().map(|p| p.client.0);
        self.half_open = self.half_open.saturating_sub(1);
        if let Some(a) = src {
            self.release_src(a);
        }
    }

    fn remove(&mut self, sid: usize) {
        self.clear_half_open(sid);
        let Some(s) = self.sessions.get_mut(sid).and_then(Option::take) else {
            return;
        };
        let until = s.last.saturating_add(TOMBSTONE_NS);
        for p in &s.paths {
            let k = FlowKey::new(p.client, p.gw);
            if !matches!(self.flows.get(&k), Some(Flow::Client { sid: o, .. }) if *o == sid) {
                // a new connection took the tuple (`reopens`)
                continue;
            }
            let tomb = (s.phase != Phase::Passthrough
                && self.tombstones < self.policy.max_sessions * 4)
                .then_some(until);
            self.remove_client_flow(&k, tomb);
        }
        for &(c, port) in &s.pt {
            self.remove_client_flow(&FlowKey::new(c, s.server), None);
            self.remove_flow(&FlowKey::new(s.server, (s.nat.0, port)));
        }
        self.remove_flow(&FlowKey::new(s.server, s.nat));
        for t in
            s.mp.as_ref()
                .map(|m| m.local_token())
                .into_iter()
                .chain(s.server_token)
        {
            self.remove_token(t, sid);
        }
        if let Some(n) = self.by_subscriber.get_mut(&s.sub) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.by_subscriber.remove(&s.sub);
            }
        }
        self.nat.release(s.sub, s.nat.0, s.nat.1);
        for &(_, port) in s.pt.iter().skip(1) {
            self.nat.release(s.sub, s.nat.0, port);
        }
        let st = &self.stats.conv;
        for p in &s.paths {
            if p.live {
                st.subflows.0[side_index(p.side)]
                    .set(st.subflows.get(side_index(p.side)).saturating_sub(1));
            }
        }
        self.free.push(sid);
        self.active = self.active.saturating_sub(1);
        st.sessions_closed.inc();
        st.sessions_active.set(self.active as u64);
        st.nat_ports_in_use.set(self.nat.in_use() as u64);
    }

    /// Publishes the oldest live sessions for `GET /sessions`: the table
    /// is looked at `LIST_BATCH` slots per poll, entries are built only
    /// for the `depth` oldest, `LIST_BUILD_BATCH` per poll, and the list
    /// goes out at the first poll after that which finds the management
    /// thread not holding it.
    fn publish(&mut self, now: Time) {
        use std::sync::atomic::Ordering::Relaxed;
        let st = &self.stats;
        let l = self.listing.get_or_insert_with(|| {
            let depth = st.sessions_depth.load(Relaxed);
            Listing {
                at: 0,
                depth,
                total: 0,
                oldest: BinaryHeap::with_capacity(depth.min(self.active).saturating_add(1)),
                picked: None,
                built: Vec::new(),
            }
        });
        if let Some(picked) = l.picked.as_mut() {
            // a session that ended (or whose slot was reused) since is
            // left out
            let worker = st.worker;
            let n = picked.len().min(LIST_BUILD_BATCH);
            for (_, id, sid) in picked.drain(..n) {
                let Some(s) = self
                    .sessions
                    .get(sid)
                    .and_then(Option::as_ref)
                    .filter(|s| s.id == id)
                else {
                    continue;
                };
                l.built.push(SessionInfo {
                    id: s.id,
                    worker,
                    subscriber: s.sub.to_string(),
                    state: s.phase.as_str(),
                    server: std::net::SocketAddr::from(s.server).to_string(),
                    nat: std::net::SocketAddr::from(s.nat).to_string(),
                    age_ms: now.saturating_sub(s.created) / 1_000_000,
                    bytes_up: s.bytes_up,
                    bytes_down: s.bytes_down,
                    subflows: s.subflow_info(now),
                    engine: s.engine_info(),
                });
            }
            if !picked.is_empty() {
                return;
            }
            let Ok(mut list) = st.sessions.try_lock() else {
                return;
            };
            let Some(l) = self.listing.take() else {
                return;
            };
            st.sessions_wanted.store(false, Relaxed);
            st.sessions_total.store(l.total, Relaxed);
            *list = l.built;
            return;
        }
        let (batch, next) = slots(l.at, LIST_BATCH, self.sessions.len());
        for sid in batch {
            let Some(s) = self.sessions.get(sid).and_then(Option::as_ref) else {
                continue;
            };
            l.total += 1;
            let k = (s.created, s.id, sid);
            if l.oldest.len() < l.depth {
                l.oldest.push(k);
            } else if l.oldest.peek().is_some_and(|top| k < *top) {
                l.oldest.pop();
                l.oldest.push(k);
            }
        }
        if let Some(at) = next {
            l.at = at;
            return;
        }
        if st.sessions_depth.load(Relaxed) != l.depth {
            // asked again for a deeper (or shallower) page meanwhile
            self.listing = None;
            return;
        }
        let mut picked = std::mem::take(&mut l.oldest).into_vec();
        picked.sort_unstable();
        l.built.reserve(picked.len());
        l.picked = Some(picked);
    }
}

/// What an ICMPv4 error about TCP says ([`icmp_quote`]).
struct Quote {
    kind: u8,
    code: u8,
    /// The quoted packet's reply tuple: the key of the flow that sent it
    /// (nat → server: the server side; gateway → client: a subflow).
    key: FlowKey,
    /// The next hop's MTU of a "fragmentation needed" (RFC 1191 §4: the
    /// low 16 bits of the ICMP header's second word; 0 from older routers).
    mtu: u16,
    /// The quoted segment's sequence number (RFC 792: the first 64 bits
    /// of the quoted datagram's data are the ports and the sequence number).
    seq: u32,
}

/// An ICMPv4 error about TCP (RFC 792: destination unreachable, source
/// quench, time exceeded, parameter problem).
fn icmp_quote(ip: &[u8]) -> Option<Quote> {
    let hl = usize::from(ip.first()? & 0x0f) * 4;
    let (kind, code) = (*ip.get(hl)?, *ip.get(hl + 1)?);
    if !matches!(kind, 3 | 4 | 11 | 12) {
        return None;
    }
    let mtu = u16::from_be_bytes([*ip.get(hl + 6)?, *ip.get(hl + 7)?]);
    let (key, seq) = quoted_segment(ip.get(hl + 8..)?).filter(|(k, _)| k.src.is_ipv4())?;
    Some(Quote {
        kind,
        code,
        key,
        mtu,
        seq,
    })
}

/// The TCP segment an ICMPv6 error quotes (from its IPv6 header on; a
/// quote with extension headers is not looked into): the key of the flow
/// that sent it and its sequence number.
fn quote_v6(q: &[u8]) -> Option<(FlowKey, u32)> {
    quoted_segment(q).filter(|(k, _)| k.src.is_ipv6())
}

/// The TCP segment an ICMP error quotes, from its IP header on (the quote
/// holds at least the first 8 bytes of TCP: RFC 792, RFC 4443 §3): the key
/// of the flow that sent it, turned around (as that flow's packets
/// arrive), and its sequence number.
fn quoted_segment(q: &[u8]) -> Option<(FlowKey, u32)> {
    let (src, dst, l4) = rewrite::addresses(q, 8)?;
    let t = q.get(l4..l4 + 8)?;
    let (sport, dport) = (
        u16::from_be_bytes([t[0], t[1]]),
        u16::from_be_bytes([t[2], t[3]]),
    );
    Some((
        FlowKey::new((dst, dport), (src, sport)),
        u32::from_be_bytes([t[4], t[5], t[6], t[7]]),
    ))
}

fn syn_src(paths: &[Path]) -> IpAddr {
    paths
        .first()
        .map_or(IpAddr::from([0, 0, 0, 0]), |p| p.client.0)
}
fn syn_dst(paths: &[Path]) -> IpAddr {
    paths.first().map_or(IpAddr::from([0, 0, 0, 0]), |p| p.gw.0)
}

#[cfg(test)]
mod tests;
