//! Receive side: in-order data for the owner and a bounded out-of-order
//! queue (by bytes and by segment count), with SACK block generation
//! (RFC 2018 §4).

use nf_core::chunk::Chunk;
use std::collections::{BTreeMap, VecDeque};

/// Offsets here are absolute byte counts since the first data byte
/// (u64: no wraparound).
#[derive(Debug)]
pub struct RecvQueue<C> {
    ready: VecDeque<C>,
    ready_bytes: usize,
    /// start offset → chunk; non-overlapping.
    ooo: BTreeMap<u64, C>,
    ooo_bytes: usize,
    /// Next expected offset (rcv_nxt).
    next: u64,
    cap: usize,
    max_segments: usize,
    /// Offsets of the most recently received out-of-order segments.
    recent: VecDeque<u64>,
}

/// What an insert did.
#[derive(Debug, PartialEq, Eq)]
pub enum Insert {
    /// Advanced `next` by this many bytes.
    InOrder(usize),
    /// Queued out of order.
    OutOfOrder,
    /// Entirely old data (a retransmission we already have).
    Duplicate,
    /// No room (buffer or segment count): dropped.
    NoRoom,
}

impl<C: Chunk> RecvQueue<C> {
    pub fn new(cap: usize, max_segments: usize) -> Self {
        RecvQueue {
            ready: VecDeque::new(),
            ready_bytes: 0,
            ooo: BTreeMap::new(),
            ooo_bytes: 0,
            next: 0,
            cap,
            max_segments,
            recent: VecDeque::new(),
        }
    }
    pub fn next(&self) -> u64 {
        self.next
    }
    /// Bytes held (ready + out of order).
    pub fn held(&self) -> usize {
        self.ready_bytes + self.ooo_bytes
    }
    pub fn ready_bytes(&self) -> usize {
        self.ready_bytes
    }
    /// Out-of-order chunks held.
    pub fn ooo_segments(&self) -> usize {
        self.ooo.len()
    }
    pub fn has_ooo(&self) -> bool {
        !self.ooo.is_empty()
    }
    /// Free buffer space: what the advertised window may cover.
    pub fn window(&self) -> usize {
        self.cap.saturating_sub(self.ready_bytes + self.ooo_bytes)
    }
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// Inserts `c` at offset `at`; the caller has trimmed it to the window.
    pub fn insert(&mut self, at: u64, c: C) -> Insert {
        let end = at + c.len() as u64;
        if end <= self.next || c.is_empty() {
            return Insert::Duplicate;
        }
        // trim what we already have in order
        let (at, c) = if at < self.next {
            (self.next, c.slice((self.next - at) as usize, c.len()))
        } else {
            (at, c)
        };
        if at == self.next {
            let n = self.push_ready(c);
            let mut advanced = n;
            // pull now-contiguous out-of-order data
            while let Some((&o, _)) = self.ooo.iter().next() {
                if o > self.next {
                    break;
                }
                let Some(seg) = self.ooo.remove(&o) else {
                    break;
                };
                self.ooo_bytes -= seg.len();
                let e = o + seg.len() as u64;
                if e > self.next {
                    let seg = seg.slice((self.next - o) as usize, seg.len());
                    advanced += self.push_ready(seg);
                }
            }
            return Insert::InOrder(advanced);
        }
        // out of order: trim against neighbours so entries never overlap
        let mut at = at;
        let mut c = c;
        if let Some((&po, pc)) = self.ooo.range(..=at).next_back() {
            let pe = po + pc.len() as u64;
            if pe >= end {
                self.note_recent(po);
                return Insert::Duplicate;
            }
            if pe > at {
                c = c.slice((pe - at) as usize, c.len());
                at = pe;
            }
        }
        // successors entirely covered are replaced; a partial overlap trims us
        let covered: Vec<u64> = self.ooo.range(at..end).map(|(o, _)| *o).collect();
        let mut end = end;
        for o in covered {
            let Some(len) = self.ooo.get(&o).map(Chunk::len) else {
                continue;
            };
            let oe = o + len as u64;
            if oe <= end {
                self.ooo.remove(&o);
                self.ooo_bytes -= len;
            } else {
                c = c.slice(0, (o - at) as usize);
                end = o;
            }
        }
        if c.is_empty() {
            // everything it carried is already queued
            self.note_recent(at);
            return Insert::Duplicate;
        }
        if self.ooo.len() >= self.max_segments || self.held() + c.len() > self.cap {
            return Insert::NoRoom;
        }
        let _ = end;
        self.ooo_bytes += c.len();
        self.ooo.insert(at, c);
        self.note_recent(at);
        Insert::OutOfOrder
    }

    fn push_ready(&mut self, c: C) -> usize {
        let n = c.len();
        self.next += n as u64;
        self.ready_bytes += n;
        self.ready.push_back(c);
        n
    }

    fn note_recent(&mut self, at: u64) {
        self.recent.retain(|o| *o != at);
        self.recent.push_front(at);
        self.recent.truncate(4);
    }

    /// The next in-order chunk for the owner.
    pub fn pop(&mut self) -> Option<C> {
        let c = self.ready.pop_front()?;
        self.ready_bytes -= c.len();
        Some(c)
    }

    /// Contiguous out-of-order extents [start, end), the one holding the most
    /// recently received data first (RFC 2018 §4), at most `max`.
    pub fn sack_extents(&mut self, max: usize, out: &mut Vec<(u64, u64)>) {
        out.clear();
        self.recent.retain(|o| *o >= self.next);
        let extent_of = |ooo: &BTreeMap<u64, C>, at: u64| -> Option<(u64, u64)> {
            let (&o, c) = ooo.range(..=at).next_back()?;
            let mut s = o;
            let mut e = o + c.len() as u64;
            // extend right
            for (&o2, c2) in ooo.range(e..) {
                if o2 != e {
                    break;
                }
                e = o2 + c2.len() as u64;
            }
            // extend left
            for (&o2, c2) in ooo.range(..s).rev() {
                if o2 + c2.len() as u64 != s {
                    break;
                }
                s = o2;
            }
            Some((s, e))
        };
        for &r in &self.recent {
            if out.len() >= max {
                break;
            }
            if let Some(x) = extent_of(&self.ooo, r) {
                if !out.contains(&x) {
                    out.push(x);
                }
            }
        }
        let mut o = self.ooo.keys().next().copied();
        while let Some(at) = o {
            if out.len() >= max {
                break;
            }
            let Some(x) = extent_of(&self.ooo, at) else {
                break;
            };
            if !out.contains(&x) {
                out.push(x);
            }
            o = self.ooo.range(x.1..).next().map(|(k, _)| *k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nf_core::chunk::Bytes;

    fn b(v: u8, n: usize) -> Bytes {
        Bytes::new(vec![v; n])
    }

    #[test]
    fn reassembles_and_trims_overlaps() {
        let mut q: RecvQueue<Bytes> = RecvQueue::new(10_000, 100);
        assert_eq!(q.insert(100, b(2, 100)), Insert::OutOfOrder);
        assert_eq!(q.insert(150, b(3, 100)), Insert::OutOfOrder); // overlaps 150..200
        assert_eq!(q.insert(300, b(5, 50)), Insert::OutOfOrder);
        let mut ext = vec![];
        q.sack_extents(3, &mut ext);
        assert_eq!(ext, vec![(300, 350), (100, 250)]);
        assert_eq!(q.insert(0, b(1, 120)), Insert::InOrder(250));
        assert_eq!(q.next(), 250);
        let mut all = vec![];
        while let Some(c) = q.pop() {
            all.extend_from_slice(c.as_slice());
        }
        assert_eq!(all.len(), 250);
        assert_eq!(&all[..100], &[1; 100][..]);
        assert_eq!(&all[100..120], &[1; 20][..]);
        assert_eq!(&all[120..200], &[2; 80][..]);
        assert_eq!(&all[200..], &[3; 50][..]);
        assert_eq!(q.insert(0, b(1, 10)), Insert::Duplicate);
    }

    #[test]
    fn adjacent_segments_never_leave_empty_entries() {
        let mut q: RecvQueue<Bytes> = RecvQueue::new(10_000, 100);
        assert_eq!(q.insert(100, b(1, 50)), Insert::OutOfOrder); // 100..150
        assert_eq!(q.insert(150, b(2, 100)), Insert::OutOfOrder); // 150..250
                                                                  // 120..200: trimmed to 150.. by the predecessor, then fully covered
        assert_eq!(q.insert(120, b(3, 80)), Insert::Duplicate);
        let mut ext = vec![];
        q.sack_extents(4, &mut ext);
        assert_eq!(ext, vec![(100, 250)]);
        assert_eq!(q.held(), 150);
    }

    #[test]
    fn bounded() {
        let mut q: RecvQueue<Bytes> = RecvQueue::new(1000, 2);
        assert_eq!(q.insert(10, b(0, 1)), Insert::OutOfOrder);
        assert_eq!(q.insert(20, b(0, 1)), Insert::OutOfOrder);
        assert_eq!(q.insert(30, b(0, 1)), Insert::NoRoom);
        let mut q: RecvQueue<Bytes> = RecvQueue::new(100, 10);
        assert_eq!(q.insert(10, b(0, 101)), Insert::NoRoom);
        assert_eq!(q.insert(10, b(0, 95)), Insert::OutOfOrder);
    }
}
