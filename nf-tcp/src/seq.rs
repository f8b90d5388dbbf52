//! TCP sequence numbers: modulo-2^32 arithmetic (RFC 9293 §3.4).

use core::ops::{Add, Sub};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Seq(pub u32);

impl Seq {
    #[inline]
    pub fn lt(self, o: Seq) -> bool {
        (self.0.wrapping_sub(o.0) as i32) < 0
    }
    #[inline]
    pub fn le(self, o: Seq) -> bool {
        (self.0.wrapping_sub(o.0) as i32) <= 0
    }
    #[inline]
    pub fn gt(self, o: Seq) -> bool {
        o.lt(self)
    }
    #[inline]
    pub fn ge(self, o: Seq) -> bool {
        o.le(self)
    }
    #[inline]
    pub fn max(self, o: Seq) -> Seq {
        if self.ge(o) {
            self
        } else {
            o
        }
    }
    #[inline]
    pub fn min(self, o: Seq) -> Seq {
        if self.le(o) {
            self
        } else {
            o
        }
    }
    /// `lo <= self < hi`
    #[inline]
    pub fn in_range(self, lo: Seq, hi: Seq) -> bool {
        lo.le(self) && self.lt(hi)
    }
}

impl Add<usize> for Seq {
    type Output = Seq;
    #[inline]
    fn add(self, n: usize) -> Seq {
        Seq(self.0.wrapping_add(n as u32))
    }
}

impl Sub<Seq> for Seq {
    type Output = usize;
    /// Distance `self - o`; callers ensure `o <= self`.
    #[inline]
    fn sub(self, o: Seq) -> usize {
        self.0.wrapping_sub(o.0) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn wraps() {
        let a = Seq(u32::MAX - 5);
        let b = a + 10;
        assert_eq!(b, Seq(4));
        assert!(a.lt(b) && b.gt(a));
        assert_eq!(b - a, 10);
        assert!(Seq(4).in_range(a, b + 1));
        assert_eq!(a.max(b), b);
    }
}
