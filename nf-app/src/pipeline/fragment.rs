//! IPv4 fragmentation of forwarded packets (RFC 791 §3.2, RFC 1812
//! §5.2.6): a packet bigger than the egress MTU whose DF bit is clear is
//! sent as fragments instead of being dropped (with DF set it gets
//! "fragmentation needed", RFC 1191, in `ipv4.rs`). An exception path:
//! each fragment is a fresh buffer with its share of the payload copied
//! behind a copy of the header, counted by `ipv4_fragmented` (datagrams)
//! and `ipv4_fragments_tx`.

use super::{BufPool, Pipeline};
use crate::stats::{Drop, Event};
use nf_core::wire::ipv4;
use nf_core::PacketBuf;
use std::net::IpAddr;

/// The header the second and later fragments carry (RFC 791 §3.1): the
/// fixed 20 bytes and only the options whose "copied" flag is set, padded
/// to a multiple of 4 with end-of-options; its length.
fn later_header(h: &[u8], out: &mut [u8; 60]) -> usize {
    let fixed = h.len().min(20);
    out[..fixed].copy_from_slice(&h[..fixed]);
    let mut n = fixed;
    let mut i = 20;
    while i < h.len() {
        let t = h[i];
        let len = match t {
            0 => break,
            1 => 1,
            _ => match h.get(i + 1) {
                Some(&l) if l >= 2 && i + usize::from(l) <= h.len() => usize::from(l),
                _ => break,
            },
        };
        if t & 0x80 != 0 {
            out[n..n + len].copy_from_slice(&h[i..i + len]);
            n += len;
        }
        i += len;
    }
    while !n.is_multiple_of(4) {
        out[n] = 0;
        n += 1;
    }
    n
}

impl<B: PacketBuf, A: BufPool<B>> Pipeline<B, A> {
    /// Sends the IPv4 packet at `l2` in `buf` (DF clear, TTL already
    /// decremented) through `port` toward `next` in fragments of at most
    /// `mtu` bytes. A fragment of a fragment keeps its offset and, on its
    /// last piece, its MF flag.
    pub(super) fn fragment_v4(
        &mut self,
        now_ns: u64,
        port: u16,
        next: IpAddr,
        buf: B,
        l2: usize,
        mtu: usize,
    ) {
        let Some(d) = buf.data().get(l2..) else {
            return;
        };
        let p = ipv4::Packet::new_unchecked(d);
        let (hl, total) = (p.header_len(), usize::from(p.total_len()));
        // the packet's own offset, in bytes
        let (base, more) = (usize::from(p.frag_offset()), p.more_frags());
        let Some(payload) = d.get(hl..total) else {
            return;
        };
        let mut later = [0u8; 60];
        let later_len = later_header(&d[..hl], &mut later);
        // every fragment but the last carries a multiple of 8 bytes
        if mtu < later_len.max(hl) + 8 {
            return self.stats.dropped(Drop::TooBig);
        }
        self.stats.event(Event::FragmentedV4);
        let mut off = 0;
        while off < payload.len() {
            let head = if off == 0 {
                &d[..hl]
            } else {
                &later[..later_len]
            };
            let room = (mtu - head.len()) & !7;
            let n = room.min(payload.len() - off);
            let last = off + n == payload.len();
            let Some(mut f) = self.pool.alloc() else {
                return self.stats.dropped(Drop::NoMbuf);
            };
            let Some(out) = f.append(head.len() + n) else {
                return self.stats.dropped(Drop::NoMbuf);
            };
            out[..head.len()].copy_from_slice(head);
            out[head.len()..].copy_from_slice(&payload[off..off + n]);
            out[0] = 0x40 | (head.len() / 4) as u8;
            out[2..4].copy_from_slice(&((head.len() + n) as u16).to_be_bytes());
            // RFC 791: DF clear (it was), MF on all but the last piece (and
            // on that one too when the packet was itself not the last)
            let mf = if !last || more { 0x2000 } else { 0 };
            let word = mf | (((base + off) / 8) as u16 & 0x1fff);
            out[6..8].copy_from_slice(&word.to_be_bytes());
            ipv4::Packet::new_unchecked(&mut out[..]).fill_checksum();
            self.stats.event(Event::FragmentsTxV4);
            self.output(now_ns, port, next, f, 0);
            off += n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::later_header;

    #[test]
    fn later_fragments_carry_only_the_copied_options() {
        let mut h = vec![0x48u8; 20];
        h[0] = 0x48; // IHL 8: 12 bytes of options
                     // NOP, record route (7, not copied, 7 bytes), LSRR-like copied
                     // option (0x83, 3 bytes), end of options
        h.extend_from_slice(&[1, 7, 7, 4, 0, 0, 0, 0, 0x83, 3, 9, 0]);
        let mut out = [0u8; 60];
        let n = later_header(&h, &mut out);
        assert_eq!(n, 24);
        assert_eq!(&out[20..24], &[0x83, 3, 9, 0]);
        // no options: the fixed header
        let mut out = [0u8; 60];
        assert_eq!(later_header(&h[..20], &mut out), 20);
        // a malformed option length ends the walk
        let mut bad = h[..20].to_vec();
        bad.extend_from_slice(&[0x83, 40, 0, 0]);
        assert_eq!(later_header(&bad, &mut out), 20);
    }
}
