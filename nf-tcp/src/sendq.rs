//! The send queue (payload from snd_una on, as shared chunks) and the SACK
//! scoreboard (RFC 6675).

use crate::segment::Gather;
use crate::seq::Seq;
use nf_core::chunk::Chunk;
use std::collections::VecDeque;

/// Bytes written by the owner and not yet acknowledged.
#[derive(Debug)]
pub struct SendQueue<C> {
    chunks: VecDeque<C>,
    /// Sequence number of the first byte (snd_una once established).
    base: Seq,
    len: usize,
    cap: usize,
    /// (chunk index, offset of that chunk from base): speeds up gathers that
    /// continue where the last one stopped.
    cursor: (usize, usize),
    /// Chunks one segment may gather (1 keeps every segment inside one
    /// chunk).
    max_parts: usize,
    /// Sequence numbers no segment spans (a segment may start there):
    /// MPTCP marks where a DSS mapping starts that does not continue the
    /// one before, so that a segment never carries two mappings.
    barriers: VecDeque<Seq>,
}

impl<C: Chunk> SendQueue<C> {
    pub fn new(base: Seq, cap: usize) -> Self {
        SendQueue {
            chunks: VecDeque::new(),
            base,
            len: 0,
            cap,
            cursor: (0, 0),
            max_parts: 4,
            barriers: VecDeque::new(),
        }
    }
    /// No segment spans the current end of the queue: the next byte pushed
    /// starts a segment.
    pub fn barrier(&mut self) {
        let end = self.end();
        if self.len > 0 && self.barriers.back() != Some(&end) {
            self.barriers.push_back(end);
        }
    }
    /// Limits how many chunks one segment gathers (1..=4).
    pub fn set_max_parts(&mut self, n: usize) {
        self.max_parts = n.clamp(1, 4);
    }
    pub fn rebase(&mut self, base: Seq) {
        self.base = base;
    }
    pub fn base(&self) -> Seq {
        self.base
    }
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn end(&self) -> Seq {
        self.base + self.len
    }
    pub fn free(&self) -> usize {
        self.cap.saturating_sub(self.len)
    }
    /// Queues as much of `c` as the budget allows; returns the bytes taken.
    pub fn push(&mut self, c: C) -> usize {
        let n = c.len().min(self.free());
        if n == 0 {
            return 0;
        }
        self.chunks
            .push_back(if n == c.len() { c } else { c.slice(0, n) });
        self.len += n;
        n
    }
    /// Drops acknowledged bytes up to `to`.
    pub fn ack_to(&mut self, to: Seq) {
        let mut n = (to - self.base).min(self.len);
        self.base = self.base + n;
        self.len -= n;
        let mut popped = 0;
        while n > 0 {
            let Some(front) = self.chunks.front_mut() else {
                break;
            };
            if front.len() <= n {
                n -= front.len();
                self.chunks.pop_front();
                popped += 1;
            } else {
                *front = front.slice(n, front.len());
                n = 0;
            }
        }
        self.cursor = (0, 0);
        let _ = popped;
        while self.barriers.front().is_some_and(|b| b.le(self.base)) {
            self.barriers.pop_front();
        }
    }
    /// Up to `max` bytes starting at `from`, as at most four shared slices.
    pub fn gather(&mut self, from: Seq, max: usize) -> Gather<C> {
        let mut g = Gather::default();
        if from.lt(self.base) {
            return g;
        }
        let mut off = from - self.base;
        if off >= self.len || max == 0 {
            return g;
        }
        let (mut i, mut start) = if off >= self.cursor.1 {
            self.cursor
        } else {
            (0, 0)
        };
        while let Some(c) = self.chunks.get(i) {
            if off < start + c.len() {
                break;
            }
            start += c.len();
            i += 1;
        }
        self.cursor = (i, start);
        // stop at the first barrier after `from` (they are in order)
        let k = self.barriers.partition_point(|b| b.le(from));
        let max = match self.barriers.get(k) {
            Some(&b) => max.min(b - from),
            None => max,
        };
        let mut left = max;
        let mut parts = 0;
        while left > 0 && !g.is_full() && parts < self.max_parts {
            parts += 1;
            let Some(c) = self.chunks.get(i) else { break };
            let a = off - start;
            let b = (a + left).min(c.len());
            g.push(c.slice(a, b));
            left -= b - a;
            off += b - a;
            start += c.len();
            i += 1;
        }
        g
    }
}

/// SACKed ranges above snd_una, sorted and merged.
#[derive(Debug, Default, Clone)]
pub struct Scoreboard {
    ranges: Vec<(Seq, Seq)>,
}

/// Ranges kept at most; the oldest information is dropped beyond this.
const MAX_RANGES: usize = 64;

impl Scoreboard {
    pub fn clear(&mut self) {
        self.ranges.clear();
    }
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }
    /// Records [l, r).
    pub fn add(&mut self, l: Seq, r: Seq) {
        if !l.lt(r) {
            return;
        }
        let (mut l, mut r) = (l, r);
        let mut out: Vec<(Seq, Seq)> = Vec::with_capacity(self.ranges.len() + 1);
        let mut placed = false;
        for &(a, b) in &self.ranges {
            if b.lt(l) {
                out.push((a, b));
            } else if r.lt(a) {
                if !placed {
                    out.push((l, r));
                    placed = true;
                }
                out.push((a, b));
            } else {
                l = l.min(a);
                r = r.max(b);
            }
        }
        if !placed {
            out.push((l, r));
        }
        if out.len() > MAX_RANGES {
            out.remove(0);
        }
        self.ranges = out;
    }
    /// Forgets everything below `una`.
    pub fn trim(&mut self, una: Seq) {
        self.ranges.retain(|(_, b)| b.gt(una));
        if let Some(first) = self.ranges.first_mut() {
            first.0 = first.0.max(una);
        }
    }
    pub fn highest(&self) -> Option<Seq> {
        self.ranges.last().map(|r| r.1)
    }
    /// Bytes SACKed in total.
    pub fn bytes(&self) -> usize {
        self.ranges.iter().map(|(a, b)| *b - *a).sum()
    }
    /// Bytes SACKed in [from, to).
    pub fn bytes_in(&self, from: Seq, to: Seq) -> usize {
        self.ranges
            .iter()
            .map(|&(a, b)| {
                let (a, b) = (a.max(from), b.min(to));
                if a.lt(b) {
                    b - a
                } else {
                    0
                }
            })
            .sum()
    }
    /// If `s` is SACKed, the end of its range.
    pub fn sacked_end(&self, s: Seq) -> Option<Seq> {
        self.ranges
            .iter()
            .find(|(a, b)| s.in_range(*a, *b))
            .map(|r| r.1)
    }
    /// The start of the first SACKed range above `s`.
    pub fn next_start_after(&self, s: Seq) -> Option<Seq> {
        self.ranges.iter().find(|(a, _)| a.gt(s)).map(|r| r.0)
    }
    pub fn ranges(&self) -> &[(Seq, Seq)] {
        &self.ranges
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nf_core::chunk::Bytes;

    #[test]
    fn gather_spans_chunks_without_copy() {
        let mut q: SendQueue<Bytes> = SendQueue::new(Seq(1000), 1 << 20);
        let a = Bytes::new(vec![1; 1000]);
        let b = Bytes::new(vec![2; 1000]);
        q.push(a.clone());
        q.push(b.clone());
        let g = q.gather(Seq(1500), 1000);
        assert_eq!(g.len(), 1000);
        let parts: Vec<_> = g.parts().collect();
        assert_eq!(parts.len(), 2);
        assert!(parts[0].shares_storage(&a) && parts[1].shares_storage(&b));
        assert_eq!(
            &g.to_vec()[..],
            &[&[1u8; 500][..], &[2u8; 500][..]].concat()[..]
        );
        q.ack_to(Seq(1700));
        assert_eq!(q.len(), 1300);
        assert_eq!(q.gather(Seq(1700), 10).to_vec(), vec![1; 10]);
        assert_eq!(q.gather(Seq(2000), 10).to_vec(), vec![2; 10]);
        assert!(q.gather(Seq(3000), 10).is_empty());
    }

    #[test]
    fn no_segment_spans_a_barrier() {
        let mut q: SendQueue<Bytes> = SendQueue::new(Seq(0), 1 << 20);
        q.push(Bytes::new(vec![1; 300]));
        q.push(Bytes::new(vec![2; 300]));
        q.barrier();
        q.barrier(); // one barrier per position
        q.push(Bytes::new(vec![3; 300]));
        // chunks without a barrier between them share a segment
        assert_eq!(q.gather(Seq(100), 1000).len(), 500);
        // the barrier cuts the segment; one may start there
        assert_eq!(q.gather(Seq(600), 1000).to_vec(), vec![3; 300]);
        assert_eq!(q.gather(Seq(0), 1000).len(), 600);
        // acknowledged past it, the barrier is gone
        q.ack_to(Seq(700));
        q.push(Bytes::new(vec![4; 300]));
        assert_eq!(q.gather(Seq(700), 1000).len(), 500);
    }

    #[test]
    fn budget() {
        let mut q: SendQueue<Bytes> = SendQueue::new(Seq(0), 100);
        assert_eq!(q.push(Bytes::new(vec![0; 70])), 70);
        assert_eq!(q.push(Bytes::new(vec![0; 70])), 30);
        assert_eq!(q.push(Bytes::new(vec![0; 70])), 0);
    }

    #[test]
    fn scoreboard_merges() {
        let mut s = Scoreboard::default();
        s.add(Seq(30), Seq(40));
        s.add(Seq(10), Seq(20));
        s.add(Seq(20), Seq(25));
        s.add(Seq(50), Seq(60));
        assert_eq!(
            s.ranges(),
            &[(Seq(10), Seq(25)), (Seq(30), Seq(40)), (Seq(50), Seq(60))]
        );
        s.add(Seq(24), Seq(55));
        assert_eq!(s.ranges(), &[(Seq(10), Seq(60))]);
        s.trim(Seq(15));
        assert_eq!(s.bytes(), 45);
        assert_eq!(s.sacked_end(Seq(20)), Some(Seq(60)));
        assert_eq!(s.bytes_in(Seq(0), Seq(30)), 15);
    }
}
