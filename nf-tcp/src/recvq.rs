//! Receive side: in-order data for the owner and a bounded out-of-order
//! queue (by bytes and by segment count), with SACK block generation
//! (RFC 2018 §4).

use nf_core::chunk::Chunk;
use std::collections::VecDeque;

/// Out-of-order entries a queue keeps room for once it has emptied: a
/// queue that held more gives the memory back (rare, after heavy loss),
/// one that held fewer keeps its buffer (reordering between MPTCP
/// subflows fills and empties it all the time: no allocation each time).
const OOO_KEEP: usize = 64;

/// Offsets here are absolute byte counts since the first data byte
/// (u64: no wraparound).
#[derive(Debug)]
pub struct RecvQueue<C> {
    ready: VecDeque<C>,
    ready_bytes: usize,
    /// (start offset, chunk), sorted by offset, non-overlapping.
    ooo: VecDeque<(u64, C)>,
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
            ooo: VecDeque::new(),
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
            while self.ooo.front().is_some_and(|(o, _)| *o <= self.next) {
                let Some((o, seg)) = self.ooo.pop_front() else {
                    break;
                };
                self.ooo_bytes -= seg.len();
                let e = o + seg.len() as u64;
                if e > self.next {
                    let seg = seg.slice((self.next - o) as usize, seg.len());
                    advanced += self.push_ready(seg);
                }
            }
            if self.ooo.is_empty() && self.ooo.capacity() > OOO_KEEP {
                self.ooo.shrink_to(OOO_KEEP);
            }
            return Insert::InOrder(advanced);
        }
        // out of order: trim against neighbours so entries never overlap
        let mut at = at;
        let mut c = c;
        let after = self.ooo.partition_point(|(o, _)| *o <= at);
        if let Some((po, pc)) = after.checked_sub(1).and_then(|i| self.ooo.get(i)) {
            let (po, pe) = (*po, *po + pc.len() as u64);
            if pe >= end {
                self.note_recent(po);
                return Insert::Duplicate;
            }
            if pe > at {
                c = c.slice((pe - at) as usize, c.len());
                at = pe;
            }
        }
        // successors entirely covered (entries i..k) are replaced; a partial
        // overlap trims us (the entries after it start beyond our end)
        let i = self.ooo.partition_point(|(o, _)| *o < at);
        let (mut k, mut freed) = (i, 0);
        while let Some((o, len)) = self.ooo.get(k).map(|(o, s)| (*o, s.len())) {
            if o >= end {
                break;
            }
            if o + len as u64 <= end {
                freed += len;
                k += 1;
            } else {
                c = c.slice(0, (o - at) as usize);
                break;
            }
        }
        if c.is_empty() {
            // everything it carried is already queued
            self.note_recent(at);
            return Insert::Duplicate;
        }
        // room is judged before anything is replaced: a segment refused
        // for room leaves what was queued (and SACKed) in place
        if self.ooo.len() - (k - i) >= self.max_segments || self.held() - freed + c.len() > self.cap
        {
            return Insert::NoRoom;
        }
        self.ooo.drain(i..k);
        self.ooo_bytes = self.ooo_bytes - freed + c.len();
        // mostly at the back: later data keeps arriving behind a hole
        self.ooo.insert(i, (at, c));
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
        // the extent around the entry holding `at` (or the last one before
        // it), and the index just past it
        let extent_of = |ooo: &VecDeque<(u64, C)>, at: u64| -> Option<((u64, u64), usize)> {
            let i = ooo.partition_point(|(o, _)| *o <= at).checked_sub(1)?;
            let (o, c) = ooo.get(i)?;
            let (mut s, mut e) = (*o, *o + c.len() as u64);
            // extend right
            let mut j = i + 1;
            while let Some((o2, c2)) = ooo.get(j).filter(|(o2, _)| *o2 == e) {
                e = o2 + c2.len() as u64;
                j += 1;
            }
            // extend left
            for (o2, c2) in ooo.range(..i).rev() {
                if o2 + c2.len() as u64 != s {
                    break;
                }
                s = *o2;
            }
            Some(((s, e), j))
        };
        for &r in &self.recent {
            if out.len() >= max {
                break;
            }
            if let Some((x, _)) = extent_of(&self.ooo, r) {
                if !out.contains(&x) {
                    out.push(x);
                }
            }
        }
        let mut o = self.ooo.front().map(|(k, _)| *k);
        while let Some(at) = o {
            if out.len() >= max {
                break;
            }
            let Some((x, next)) = extent_of(&self.ooo, at) else {
                break;
            };
            if !out.contains(&x) {
                out.push(x);
            }
            o = self.ooo.get(next).map(|(k, _)| *k);
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

    /// The bytes of the stream: each offset has its own value, so any
    /// overlap of retransmitted pieces agrees.
    fn piece(at: u64, n: usize) -> Bytes {
        Bytes::new((at..at + n as u64).map(|o| (o * 7 % 251) as u8).collect())
    }

    proptest::proptest! {
        /// Against a model (the set of byte offsets received): in-order
        /// data comes out whole and right, the out-of-order entries stay
        /// sorted and disjoint and hold exactly the received bytes past
        /// `next`, and the SACK extents are the model's runs.
        #[test]
        fn matches_a_byte_set_model(
            pieces in proptest::collection::vec((0u64..3000, 1usize..300), 1..60),
            tight in proptest::bool::ANY,
        ) {
            use std::collections::BTreeSet;
            // tight: little room, so that segments are refused (and then
            // change nothing)
            let (cap, segs) = if tight { (700, 4) } else { (1 << 20, 1 << 10) };
            let mut q: RecvQueue<Bytes> = RecvQueue::new(cap, segs);
            let mut model = BTreeSet::new();
            let mut out = Vec::new();
            for (at, n) in pieces {
                let before = q.held();
                let r = q.insert(at, piece(at, n));
                if r == Insert::NoRoom {
                    proptest::prop_assert_eq!(q.held(), before);
                } else {
                    model.extend(at..at + n as u64);
                }
                let next = (0..).find(|o| !model.contains(o)).unwrap_or(0);
                proptest::prop_assert_eq!(q.next(), next, "{:?}", r);
                while let Some(c) = q.pop() {
                    out.extend_from_slice(c.as_slice());
                }
                let want = piece(0, next as usize);
                proptest::prop_assert_eq!(out.as_slice(), want.as_slice());
                let mut prev_end = q.next();
                let mut held = 0;
                for (o, c) in &q.ooo {
                    proptest::prop_assert!(*o >= prev_end && !c.is_empty());
                    let want = piece(*o, c.len());
                    proptest::prop_assert_eq!(c.as_slice(), want.as_slice());
                    prev_end = o + c.len() as u64;
                    held += c.len();
                }
                proptest::prop_assert_eq!(held, model.range(next..).count());
                proptest::prop_assert_eq!(q.held(), held);
                // the runs of the model past `next`
                let mut runs: Vec<(u64, u64)> = Vec::new();
                for &o in model.range(next..) {
                    match runs.last_mut() {
                        Some(r) if r.1 == o => r.1 += 1,
                        _ => runs.push((o, o + 1)),
                    }
                }
                let mut ext = Vec::new();
                q.sack_extents(usize::MAX, &mut ext);
                ext.sort_unstable();
                proptest::prop_assert_eq!(ext, runs);
            }
        }
    }

    #[test]
    fn a_segment_refused_for_room_leaves_the_queued_data_in_place() {
        // 100..150 and 150..200 are queued (and SACKed); 90..230 covers
        // both but does not fit: refused, and the two stay
        let mut q: RecvQueue<Bytes> = RecvQueue::new(120, 100);
        assert_eq!(q.insert(100, piece(100, 50)), Insert::OutOfOrder);
        assert_eq!(q.insert(150, piece(150, 50)), Insert::OutOfOrder);
        assert_eq!(q.insert(90, piece(90, 140)), Insert::NoRoom);
        assert_eq!(q.held(), 100);
        let mut ext = vec![];
        q.sack_extents(4, &mut ext);
        assert_eq!(ext, vec![(100, 200)]);
        // one that fits replaces them
        assert_eq!(q.insert(95, piece(95, 110)), Insert::OutOfOrder);
        assert_eq!(q.held(), 110);
        assert_eq!(q.ooo_segments(), 1);
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
