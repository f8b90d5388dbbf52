//! The passive side: SYN handling with a capped half-open table, SYN cookies
//! when it is full (RFC 4987 §3.6), TCP Fast Open cookies (RFC 7413), and
//! RFC 6528 initial sequence numbers.

use crate::config::Config;
use crate::conn::Connection;
use crate::segment::{Gather, Header, Incoming, RawOpt, Segment};
use crate::seq::Seq;
use nf_core::chunk::Chunk;
use nf_core::sim::Time;
use nf_core::wire::tcp::flags;
use sha2::{Digest, Sha256};
use std::net::IpAddr;

/// The addresses and ports of a connection, from the listener's view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FourTuple {
    pub local: IpAddr,
    pub lport: u16,
    pub remote: IpAddr,
    pub rport: u16,
}

impl FourTuple {
    fn bytes(&self, out: &mut Sha256) {
        let a = |h: &mut Sha256, ip: IpAddr| match ip {
            IpAddr::V4(v) => h.update(v.octets()),
            IpAddr::V6(v) => h.update(v.octets()),
        };
        a(out, self.local);
        out.update(self.lport.to_be_bytes());
        a(out, self.remote);
        out.update(self.rport.to_be_bytes());
    }
}

/// What to do with a SYN.
pub enum SynAction<C: Chunk> {
    /// Keep this SYN-RECEIVED connection (it emits the SYN-ACK).
    Accept(Box<Connection<C>>),
    /// Table full: send this stateless SYN-ACK carrying a cookie.
    Cookie(Segment<C>),
    /// Not a valid SYN (e.g. with ACK or RST set): drop.
    Drop,
}

/// Listener counters.
#[derive(Clone, Debug, Default)]
pub struct ListenerStats {
    pub syns: u64,
    pub accepted: u64,
    pub cookies_sent: u64,
    pub cookies_valid: u64,
    pub cookies_invalid: u64,
    pub tfo_requests: u64,
    pub tfo_accepted: u64,
    pub tfo_invalid: u64,
    pub dropped: u64,
}

/// MSS values a cookie can encode (3 bits).
const COOKIE_MSS: [u16; 8] = [536, 1200, 1300, 1360, 1400, 1440, 1460, 8960];
/// Cookie counter period: cookies older than two periods are refused.
const COOKIE_PERIOD: Time = 64_000_000_000;

/// The passive side of a port.
pub struct Listener {
    pub cfg: Config,
    /// Half-open connections allowed before SYN cookies take over.
    pub max_half_open: usize,
    secret: [u8; 32],
    stats: ListenerStats,
}

impl Listener {
    /// `secret` must come from a CSPRNG and stay private.
    pub fn new(cfg: Config, max_half_open: usize, secret: [u8; 32]) -> Self {
        Listener {
            cfg,
            max_half_open,
            secret,
            stats: ListenerStats::default(),
        }
    }

    pub fn stats(&self) -> &ListenerStats {
        &self.stats
    }

    fn keyed(&self, label: &[u8], t: &FourTuple, extra: &[u8]) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.secret);
        h.update(label);
        t.bytes(&mut h);
        h.update(extra);
        h.finalize().into()
    }

    /// RFC 6528: ISN = M + F(localip, localport, remoteip, remoteport, secretkey),
    /// M a 4 µs clock.
    pub fn isn(&self, now: Time, t: &FourTuple) -> Seq {
        let f = self.keyed(b"isn", t, &[]);
        Seq(((now / 4_000) as u32).wrapping_add(u32::from_be_bytes([f[0], f[1], f[2], f[3]])))
    }

    /// RFC 7413 §4.1.2: the cookie is a MAC of the client's address.
    pub fn tfo_cookie(&self, client: IpAddr) -> [u8; 8] {
        let t = FourTuple {
            local: client,
            lport: 0,
            remote: client,
            rport: 0,
        };
        let f = self.keyed(b"tfo", &t, &[]);
        let mut c = [0u8; 8];
        c.copy_from_slice(&f[..8]);
        c
    }

    fn cookie_hash(&self, t: &FourTuple, count: u32, client_isn: Seq) -> u32 {
        let mut extra = [0u8; 8];
        extra[..4].copy_from_slice(&count.to_be_bytes());
        extra[4..].copy_from_slice(&client_isn.0.to_be_bytes());
        let f = self.keyed(b"syncookie", t, &extra);
        u32::from_be_bytes([f[0], f[1], f[2], f[3]])
    }

    /// Cookie = count(8 bits) << 24 | (hash + data) mod 2^24, where data packs
    /// the MSS index (3 bits), window scale (4 bits, 15 = none) and SACK (1).
    fn make_cookie(&self, now: Time, t: &FourTuple, syn: &Header) -> Seq {
        let count = (now / COOKIE_PERIOD) as u32;
        let peer_mss = syn.opts.mss.unwrap_or(536);
        let mi = COOKIE_MSS.iter().rposition(|m| *m <= peer_mss).unwrap_or(0) as u32;
        let ws = syn.opts.wscale.map_or(15, |w| u32::from(w.min(14)));
        let data = mi | (ws << 3) | (u32::from(syn.opts.sack_perm) << 7);
        let h = self.cookie_hash(t, count, syn.seq);
        Seq(((count & 0xff) << 24) | (h.wrapping_add(data) & 0x00ff_ffff))
    }

    /// Decodes a cookie echoed in `ack - 1`: (mss, wscale, sack).
    fn check_cookie(
        &self,
        now: Time,
        t: &FourTuple,
        ack: &Header,
    ) -> Option<(usize, Option<u8>, bool)> {
        let cookie = (ack.ack + usize::MAX).0;
        let client_isn = ack.seq + usize::MAX;
        let cur = (now / COOKIE_PERIOD) as u32;
        let c8 = cookie >> 24;
        // accept the current and the previous period
        let count = [cur, cur.wrapping_sub(1)]
            .into_iter()
            .find(|c| c & 0xff == c8)?;
        let h = self.cookie_hash(t, count, client_isn);
        let data = (cookie & 0x00ff_ffff).wrapping_sub(h) & 0x00ff_ffff;
        if data > 0xff {
            return None;
        }
        let mss = usize::from(COOKIE_MSS[(data & 7) as usize]);
        let ws = (data >> 3) & 0xf;
        Some((mss, (ws != 15).then_some(ws as u8), data & 0x80 != 0))
    }

    /// Handles a SYN for this port. `half_open` is how many SYN-RECEIVED
    /// connections the owner holds now.
    pub fn on_syn<C: Chunk>(
        &mut self,
        now: Time,
        t: &FourTuple,
        syn: &Incoming<C>,
        half_open: usize,
    ) -> SynAction<C> {
        let h = &syn.hdr;
        if !h.syn() || h.ack_flag() || h.rst() {
            self.stats.dropped += 1;
            return SynAction::Drop;
        }
        self.stats.syns += 1;
        let iss = self.isn(now, t);
        if half_open >= self.max_half_open {
            // Stateless SYN-ACK (no timestamps, no TFO: nothing is stored).
            let cookie = self.make_cookie(now, t, h);
            let mut r = Header {
                src_port: h.dst_port,
                dst_port: h.src_port,
                seq: cookie,
                ack: h.seq + 1,
                flags: flags::SYN | flags::ACK,
                window: 65535,
                ..Default::default()
            };
            r.opts.mss = Some(self.cfg.mss);
            if h.opts.wscale.is_some() && self.cfg.window_scale {
                r.opts.wscale = Some(0);
            }
            r.opts.sack_perm = h.opts.sack_perm && self.cfg.sack;
            self.stats.cookies_sent += 1;
            return SynAction::Cookie(Segment {
                hdr: r,
                payload: Gather::default(),
            });
        }
        let mut cfg = self.cfg;
        if h.opts.wscale.is_none() {
            cfg.window_scale = false;
        }
        let mut c = Connection::accept(cfg, h, iss);
        if self.cfg.fast_open {
            if let Some(cookie) = h.opts.tfo {
                let good = self.tfo_cookie(t.remote);
                if cookie.as_slice().is_empty() {
                    self.stats.tfo_requests += 1;
                    c.set_tfo_cookie(RawOpt::new(&good).unwrap_or_default());
                } else if cookie.as_slice() == good {
                    self.stats.tfo_accepted += 1;
                    if !syn.payload.is_empty() {
                        c.accept_syn_data(syn.payload.clone());
                    }
                } else {
                    self.stats.tfo_invalid += 1;
                    c.set_tfo_cookie(RawOpt::new(&good).unwrap_or_default());
                }
            }
        }
        self.stats.accepted += 1;
        SynAction::Accept(Box::new(c))
    }

    /// An ACK for a tuple with no connection: completes a SYN-cookie
    /// handshake when the cookie checks out.
    pub fn on_ack<C: Chunk>(
        &mut self,
        now: Time,
        t: &FourTuple,
        seg: &Incoming<C>,
    ) -> Option<Connection<C>> {
        let h = &seg.hdr;
        if !h.ack_flag() || h.syn() || h.rst() {
            return None;
        }
        match self.check_cookie(now, t, h) {
            Some((mss, ws, sack)) => {
                self.stats.cookies_valid += 1;
                let mut c = Connection::from_cookie(self.cfg, h, h.ack + usize::MAX, mss, ws, sack);
                if !seg.payload.is_empty() {
                    c.handle_segment(now, seg.clone());
                }
                Some(c)
            }
            None => {
                self.stats.cookies_invalid += 1;
                None
            }
        }
    }
}
