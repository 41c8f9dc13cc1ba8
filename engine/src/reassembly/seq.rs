//! TCP sequence numbers with wrapping (modulo 2^32) arithmetic, as a type.
//!
//! Modelled on smoltcp's `SeqNumber`: the arithmetic a reassembler needs is
//! expressed once here so that no caller compares raw `u32`s by accident.
//!
//! * `seq + n` and `seq - n` (with `n: usize`) wrap modulo 2^32.
//! * `a - b` (two sequence numbers) is the *signed* wrapping distance from `b`
//!   to `a` as an `i32`: positive when `a` is ahead of `b`.
//! * `a < b` compares by that distance (RFC 793 style "modular" comparison).
//!   This order is only meaningful for numbers less than 2^31 apart; exactly
//!   2^31 apart, each compares less than the other. Callers keep all numbers
//!   they compare within one window (≤ 1 GiB) of each other.

use std::cmp::Ordering;
use std::fmt;
use std::ops::{Add, AddAssign, Sub};

/// A TCP sequence number; all arithmetic wraps modulo 2^32.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SeqNumber(pub u32);

impl SeqNumber {
    /// The later of the two (by wrapping comparison).
    pub fn max(self, other: SeqNumber) -> SeqNumber {
        if self > other {
            self
        } else {
            other
        }
    }

    /// The earlier of the two (by wrapping comparison).
    pub fn min(self, other: SeqNumber) -> SeqNumber {
        if self < other {
            self
        } else {
            other
        }
    }

    /// Bytes from `earlier` forward to `self`, or `None` if `self` is before `earlier`.
    pub fn distance_from(self, earlier: SeqNumber) -> Option<usize> {
        let d = self - earlier;
        if d >= 0 {
            Some(d as usize)
        } else {
            None
        }
    }
}

impl fmt::Display for SeqNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Add<usize> for SeqNumber {
    type Output = SeqNumber;

    /// Wraps modulo 2^32 (a `usize` wider than 32 bits is reduced modulo 2^32 too).
    fn add(self, rhs: usize) -> SeqNumber {
        SeqNumber(self.0.wrapping_add(rhs as u32))
    }
}

impl AddAssign<usize> for SeqNumber {
    fn add_assign(&mut self, rhs: usize) {
        *self = *self + rhs;
    }
}

impl Sub<usize> for SeqNumber {
    type Output = SeqNumber;

    /// Wraps modulo 2^32.
    fn sub(self, rhs: usize) -> SeqNumber {
        SeqNumber(self.0.wrapping_sub(rhs as u32))
    }
}

impl Sub for SeqNumber {
    type Output = i32;

    /// Signed wrapping distance from `rhs` to `self`: positive when `self` is ahead.
    fn sub(self, rhs: SeqNumber) -> i32 {
        self.0.wrapping_sub(rhs.0) as i32
    }
}

impl PartialOrd for SeqNumber {
    fn partial_cmp(&self, other: &SeqNumber) -> Option<Ordering> {
        Some((*self - *other).cmp(&0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_wraps() {
        let s = SeqNumber(u32::MAX - 1);
        assert_eq!(s + 3, SeqNumber(1));
        assert_eq!(SeqNumber(1) - 3usize, SeqNumber(u32::MAX - 1));
        assert_eq!(SeqNumber(1) - s, 3);
        assert_eq!(s - SeqNumber(1), -3);
        let mut t = s;
        t += 2;
        assert_eq!(t, SeqNumber(0));
    }

    #[test]
    fn comparison_is_modular() {
        let a = SeqNumber(u32::MAX - 10);
        let b = SeqNumber(5);
        assert!(a < b);
        assert!(b > a);
        assert!(a <= a);
        assert_eq!(a.max(b), b);
        assert_eq!(a.min(b), a);
        assert_eq!(b.distance_from(a), Some(16));
        assert_eq!(a.distance_from(b), None);
        assert_eq!(a.distance_from(a), Some(0));
    }
}
