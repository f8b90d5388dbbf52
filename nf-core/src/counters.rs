//! Per-core counters: written by one worker, read by the management thread.
//!
//! Each counter has exactly one writer (its worker), so an increment is a
//! relaxed load and store (no locked read-modify-write on the hot path); the
//! reader sees a value that is at most a few increments old.

use core::sync::atomic::{AtomicU64, Ordering};

/// A single-writer counter.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub const fn new() -> Self {
        Counter(AtomicU64::new(0))
    }
    /// Adds one. Only the owning worker may call this.
    #[inline]
    pub fn inc(&self) {
        self.add(1)
    }
    /// Adds `n`. Only the owning worker may call this.
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.store(
            self.0.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        )
    }
    /// Sets a gauge-like value. Only the owning worker may call this.
    #[inline]
    pub fn set(&self, v: u64) {
        self.0.store(v, Ordering::Relaxed)
    }
    /// Reads the value (any thread).
    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A fixed array of counters indexed by a reason enum.
#[derive(Debug)]
pub struct CounterSet<const N: usize>(pub [Counter; N]);

impl<const N: usize> Default for CounterSet<N> {
    fn default() -> Self {
        CounterSet(core::array::from_fn(|_| Counter::new()))
    }
}

impl<const N: usize> CounterSet<N> {
    #[inline]
    pub fn inc(&self, i: usize) {
        self.add(i, 1)
    }
    /// Adds `n` to counter `i`. Only the owning worker may call this.
    #[inline]
    pub fn add(&self, i: usize, n: u64) {
        if let Some(c) = self.0.get(i) {
            c.add(n)
        }
    }
    pub fn get(&self, i: usize) -> u64 {
        self.0.get(i).map_or(0, Counter::get)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn counts() {
        let c = Counter::new();
        c.inc();
        c.add(41);
        assert_eq!(c.get(), 42);
        let s: CounterSet<3> = CounterSet::default();
        s.inc(2);
        s.inc(2);
        s.inc(7); // out of range is ignored, never a panic
        assert_eq!(s.get(2), 2);
        assert_eq!(s.get(7), 0);
    }
}
