//! Segments as the engine sees them: an owned header with decoded options,
//! and payload as shared chunks (no copies).

use crate::seq::Seq;
use nf_core::chunk::Chunk;
use nf_core::wire::tcp::{self as wire, flags, SackBlock, MAX_SACK_BLOCKS};

/// Raw option bytes kept by value (an MPTCP option, a TFO cookie), and
/// the body of a second option of the same kind behind them where a
/// segment carries two (Linux's MP_FAIL beside a DSS): both fit, as the
/// option space holds 40 bytes with their kinds and lengths.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawOpt {
    len: u8,
    next: u8,
    bytes: [u8; 38],
}

impl Default for RawOpt {
    fn default() -> Self {
        RawOpt {
            len: 0,
            next: 0,
            bytes: [0; 38],
        }
    }
}

impl RawOpt {
    /// `None` when longer than 38 bytes (cannot fit the option space).
    pub fn new(b: &[u8]) -> Option<RawOpt> {
        RawOpt::pair(b, None)
    }
    /// The body `b` and a second one behind it; `None` when they do not
    /// fit together.
    pub fn pair(b: &[u8], next: Option<&[u8]>) -> Option<RawOpt> {
        let n = next.map_or(0, <[u8]>::len);
        if b.len() + n > 38 {
            return None;
        }
        let mut r = RawOpt {
            len: b.len() as u8,
            next: n as u8,
            bytes: [0; 38],
        };
        r.bytes[..b.len()].copy_from_slice(b);
        if let Some(x) = next {
            r.bytes[b.len()..b.len() + n].copy_from_slice(x);
        }
        Some(r)
    }
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
    /// The second option's body, if the segment had one.
    pub fn next(&self) -> Option<&[u8]> {
        let (a, n) = (usize::from(self.len), usize::from(self.next));
        (n > 0).then(|| &self.bytes[a..a + n])
    }
}

/// The decoded options of a segment, owned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Opts {
    pub mss: Option<u16>,
    pub wscale: Option<u8>,
    pub sack_perm: bool,
    pub sack: [SackBlock; MAX_SACK_BLOCKS],
    pub sack_n: u8,
    pub ts: Option<(u32, u32)>,
    /// TFO cookie (`Some(empty)` = cookie request).
    pub tfo: Option<RawOpt>,
    /// MPTCP option body (after kind and length), for the MPTCP owner,
    /// with a second one's ([`RawOpt::next`]) where the segment had two.
    pub mptcp: Option<RawOpt>,
}

impl Opts {
    pub fn from_wire(o: &wire::Options) -> Opts {
        Opts {
            mss: o.mss,
            wscale: o.window_scale,
            sack_perm: o.sack_permitted,
            sack: o.sack_blocks,
            sack_n: o.sack_count,
            ts: o.timestamps,
            tfo: o.fast_open.and_then(RawOpt::new),
            mptcp: o.mptcp.and_then(|m| RawOpt::pair(m, o.mptcp_next)),
        }
    }
    /// The wire form, borrowing the raw options.
    pub fn to_wire(&self) -> wire::Options<'_> {
        wire::Options {
            mss: self.mss,
            window_scale: self.wscale,
            sack_permitted: self.sack_perm,
            sack_blocks: self.sack,
            sack_count: self.sack_n,
            timestamps: self.ts,
            mptcp: self.mptcp.as_ref().map(RawOpt::as_slice),
            mptcp_next: self.mptcp.as_ref().and_then(RawOpt::next),
            fast_open: self.tfo.as_ref().map(RawOpt::as_slice),
        }
    }
    pub fn sack_blocks(&self) -> &[SackBlock] {
        &self.sack[..usize::from(self.sack_n).min(MAX_SACK_BLOCKS)]
    }
    /// Bytes the options take on the wire (padded): what
    /// [`wire::Options::buffer_len`] says of [`Opts::to_wire`], counted
    /// here without building the wire form (asked several times for each
    /// segment sent).
    pub fn len(&self) -> usize {
        // an MPTCP option, and the second one behind it
        let mptcp = self.mptcp.as_ref().map_or(0, |r| {
            2 + usize::from(r.len)
                + if r.next > 0 {
                    2 + usize::from(r.next)
                } else {
                    0
                }
        });
        let n = self.mss.map_or(0, |_| 4)
            + self.wscale.map_or(0, |_| 4)
            + if self.sack_perm { 2 } else { 0 }
            + self.ts.map_or(0, |_| if self.sack_perm { 10 } else { 12 })
            + if self.sack_n > 0 {
                4 + 8 * usize::from(self.sack_n)
            } else {
                0
            }
            + mptcp
            + self.tfo.as_ref().map_or(0, |r| 2 + usize::from(r.len));
        n.div_ceil(4) * 4
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A segment header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Header {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: Seq,
    pub ack: Seq,
    pub flags: u16,
    pub window: u16,
    pub opts: Opts,
}

impl Header {
    pub fn has(&self, f: u16) -> bool {
        self.flags & f != 0
    }
    pub fn syn(&self) -> bool {
        self.has(flags::SYN)
    }
    pub fn fin(&self) -> bool {
        self.has(flags::FIN)
    }
    pub fn rst(&self) -> bool {
        self.has(flags::RST)
    }
    pub fn ack_flag(&self) -> bool {
        self.has(flags::ACK)
    }
    /// Option bytes still free (40 minus what is used).
    pub fn option_space_left(&self) -> usize {
        40usize.saturating_sub(self.opts.len())
    }
    /// From a parsed wire segment.
    pub fn from_wire(r: &wire::Repr) -> Header {
        Header {
            src_port: r.src_port,
            dst_port: r.dst_port,
            seq: Seq(r.seq),
            ack: Seq(r.ack),
            flags: r.flags,
            window: r.window,
            opts: Opts::from_wire(&r.options),
        }
    }
}

/// Up to four payload pieces gathered into one segment without copying.
#[derive(Clone, Debug)]
pub struct Gather<C> {
    parts: [Option<C>; 4],
    n: usize,
    len: usize,
}

impl<C: Chunk> Default for Gather<C> {
    fn default() -> Self {
        Gather {
            parts: [None, None, None, None],
            n: 0,
            len: 0,
        }
    }
}

impl<C: Chunk> Gather<C> {
    pub fn one(c: C) -> Self {
        let mut g = Self::default();
        g.push(c);
        g
    }
    /// False when full.
    pub fn push(&mut self, c: C) -> bool {
        if self.n == 4 {
            return false;
        }
        self.len += c.len();
        self.parts[self.n] = Some(c);
        self.n += 1;
        true
    }
    pub fn is_full(&self) -> bool {
        self.n == 4
    }
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn parts(&self) -> impl Iterator<Item = &C> {
        self.parts.iter().take(self.n).flatten()
    }
    /// Copies the payload out (for emitting into a test buffer or a packet).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.len);
        for p in self.parts() {
            v.extend_from_slice(p.as_slice());
        }
        v
    }
}

/// An outgoing segment.
#[derive(Clone, Debug)]
pub struct Segment<C> {
    pub hdr: Header,
    pub payload: Gather<C>,
}

impl<C: Chunk> Segment<C> {
    /// Sequence space the segment occupies (SYN and FIN count one each).
    pub fn seq_len(&self) -> usize {
        self.payload.len() + usize::from(self.hdr.syn()) + usize::from(self.hdr.fin())
    }
}

/// An incoming segment: header plus payload handle.
#[derive(Clone, Debug)]
pub struct Incoming<C> {
    pub hdr: Header,
    pub payload: C,
}

impl<C: Chunk> Incoming<C> {
    pub fn seq_len(&self) -> usize {
        self.payload.len() + usize::from(self.hdr.syn()) + usize::from(self.hdr.fin())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn raw_opt() -> impl Strategy<Value = Option<RawOpt>> {
        prop::option::of(
            (
                prop::collection::vec(any::<u8>(), 0..=20),
                prop::collection::vec(any::<u8>(), 0..=18),
            )
                .prop_filter_map("fits", |(a, b)| {
                    RawOpt::pair(&a, (!b.is_empty()).then_some(&b[..]))
                }),
        )
    }

    proptest! {
        // the counted length is the wire form's, whatever the options
        #[test]
        fn len_is_the_wire_forms_buffer_len(
            mss in prop::option::of(any::<u16>()),
            wscale in prop::option::of(any::<u8>()),
            sack_perm in any::<bool>(),
            sack_n in 0u8..=4,
            ts in prop::option::of((any::<u32>(), any::<u32>())),
            tfo in raw_opt(),
            mptcp in raw_opt(),
        ) {
            let o = Opts { mss, wscale, sack_perm, sack_n, ts, tfo, mptcp, ..Default::default() };
            prop_assert_eq!(o.len(), o.to_wire().buffer_len());
        }
    }
}
