//! Sets of registers, as one bit per register.

use crate::op::Reg;
use std::fmt;
use std::ops::{BitAnd, BitAndAssign, BitOr, BitOrAssign, Not, Sub, SubAssign};

/// A set of registers: bit `n` stands for `rn`. `Copy`, and every operation is a bit operation.
///
/// ```
/// use bpfx_bytecode::{Reg, RegSet};
/// let args = RegSet::CALLER_SAVED - RegSet::of(Reg::R0);
/// assert_eq!(args, RegSet::ARGS);
/// assert!(args.contains(Reg::R5) && !args.contains(Reg::R6));
/// assert_eq!(args.iter().collect::<Vec<_>>(), [Reg::R1, Reg::R2, Reg::R3, Reg::R4, Reg::R5]);
/// assert_eq!(args.to_string(), "{r1, r2, r3, r4, r5}");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RegSet(u16);

/// Bits of the valid registers r0..=r10.
const VALID: u16 = (1 << Reg::COUNT) - 1;

impl RegSet {
    /// No register.
    pub const EMPTY: RegSet = RegSet(0);
    /// Every register, r0 to r10.
    pub const ALL: RegSet = RegSet(VALID);
    /// The registers a call does not preserve, r0 to r5: the callee returns its result in r0
    /// and may leave anything in r1–r5 (the BPF ABI, the kernel's
    /// `Documentation/bpf/standardization/abi.rst`, "Registers and calling convention"). The
    /// one statement of that convention: every other set of it derives from this constant.
    pub const CALLER_SAVED: RegSet = RegSet::range(Reg::R0, Reg::R5);
    /// The argument registers r1 to r5: the caller-saved registers but the result register.
    pub const ARGS: RegSet = RegSet(RegSet::CALLER_SAVED.0 & !RegSet::of(Reg::R0).0);
    /// The registers a call preserves for its caller, r6 to r9 (r10 is the read-only frame
    /// pointer, never written).
    pub const CALLEE_SAVED: RegSet =
        RegSet(VALID & !RegSet::CALLER_SAVED.0 & !RegSet::of(Reg::R10).0);

    /// The set of one register.
    pub const fn of(r: Reg) -> RegSet {
        RegSet(1 << r.index())
    }

    /// The registers `lo` to `hi`, both included (empty when `lo > hi`).
    pub const fn range(lo: Reg, hi: Reg) -> RegSet {
        if lo.index() > hi.index() {
            return RegSet::EMPTY;
        }
        RegSet(((1u32 << (hi.index() + 1)) - (1u32 << lo.index())) as u16)
    }

    /// The set whose bit `n` is `rn`; bits above r10 are dropped.
    pub const fn from_bits(bits: u16) -> RegSet {
        RegSet(bits & VALID)
    }

    /// The bits: bit `n` is `rn`.
    pub const fn bits(self) -> u16 {
        self.0
    }

    /// Whether `r` is in the set.
    pub const fn contains(self, r: Reg) -> bool {
        self.0 & (1 << r.index()) != 0
    }

    /// The set with `r` added.
    pub const fn with(self, r: Reg) -> RegSet {
        RegSet(self.0 | (1 << r.index()))
    }

    /// The set without `r`.
    pub const fn without(self, r: Reg) -> RegSet {
        RegSet(self.0 & !(1 << r.index()))
    }

    /// Registers in either set.
    pub const fn union(self, other: RegSet) -> RegSet {
        RegSet(self.0 | other.0)
    }

    /// Registers in both sets.
    pub const fn intersection(self, other: RegSet) -> RegSet {
        RegSet(self.0 & other.0)
    }

    /// Registers of `self` not in `other`.
    pub const fn difference(self, other: RegSet) -> RegSet {
        RegSet(self.0 & !other.0)
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Number of registers in the set.
    pub const fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// The registers, in increasing order.
    pub fn iter(self) -> Regs {
        Regs(self.0)
    }
}

impl From<Reg> for RegSet {
    fn from(r: Reg) -> RegSet {
        RegSet::of(r)
    }
}

impl FromIterator<Reg> for RegSet {
    fn from_iter<I: IntoIterator<Item = Reg>>(iter: I) -> RegSet {
        iter.into_iter().fold(RegSet::EMPTY, RegSet::with)
    }
}

impl IntoIterator for RegSet {
    type Item = Reg;
    type IntoIter = Regs;

    fn into_iter(self) -> Regs {
        Regs(self.0)
    }
}

/// The registers of a [`RegSet`], in increasing order.
#[derive(Clone, Copy, Debug)]
pub struct Regs(u16);

impl Iterator for Regs {
    type Item = Reg;

    fn next(&mut self) -> Option<Reg> {
        if self.0 == 0 {
            return None;
        }
        let n = self.0.trailing_zeros();
        self.0 &= self.0 - 1;
        Reg::new(n as u8)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.0.count_ones() as usize;
        (n, Some(n))
    }
}

impl ExactSizeIterator for Regs {}

/// `a | b`, `a & b`, `a - b` and their assigning forms, as the named set operations.
macro_rules! set_ops {
    ($($op:ident::$f:ident, $assign:ident::$g:ident => $method:ident;)*) => {$(
        impl $op for RegSet {
            type Output = RegSet;
            fn $f(self, rhs: RegSet) -> RegSet {
                self.$method(rhs)
            }
        }

        impl $assign for RegSet {
            fn $g(&mut self, rhs: RegSet) {
                *self = self.$method(rhs);
            }
        }
    )*};
}

set_ops! {
    BitOr::bitor, BitOrAssign::bitor_assign => union;
    BitAnd::bitand, BitAndAssign::bitand_assign => intersection;
    Sub::sub, SubAssign::sub_assign => difference;
}

impl Not for RegSet {
    type Output = RegSet;
    /// The registers r0..=r10 not in the set.
    fn not(self) -> RegSet {
        RegSet::ALL.difference(self)
    }
}

impl fmt::Display for RegSet {
    /// `{r1, r2}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{")?;
        for (i, r) in self.iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{r}")?;
        }
        write!(f, "}}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calling_convention_sets_partition_the_writable_registers() {
        assert_eq!(
            RegSet::CALLER_SAVED.iter().collect::<Vec<_>>(),
            [Reg::R0, Reg::R1, Reg::R2, Reg::R3, Reg::R4, Reg::R5]
        );
        assert_eq!(
            RegSet::CALLEE_SAVED.iter().collect::<Vec<_>>(),
            [Reg::R6, Reg::R7, Reg::R8, Reg::R9]
        );
        assert_eq!(RegSet::ARGS, RegSet::range(Reg::R1, Reg::R5));
        assert_eq!(
            RegSet::CALLER_SAVED | RegSet::CALLEE_SAVED | RegSet::of(Reg::R10),
            RegSet::ALL
        );
        assert!((RegSet::CALLER_SAVED & RegSet::CALLEE_SAVED).is_empty());
    }

    #[test]
    fn operations_are_the_set_operations() {
        let a: RegSet = [Reg::R0, Reg::R3, Reg::R10].into_iter().collect();
        let b = RegSet::of(Reg::R3).with(Reg::R4);
        assert_eq!((a | b).len(), 4);
        assert_eq!(a & b, RegSet::of(Reg::R3));
        assert_eq!(a - b, RegSet::of(Reg::R0).with(Reg::R10));
        assert_eq!(!a, RegSet::ALL - a);
        assert_eq!((!a).len(), 8);
        assert_eq!(a.without(Reg::R3).without(Reg::R3), a - b);
        assert_eq!(RegSet::range(Reg::R5, Reg::R1), RegSet::EMPTY);
        assert_eq!(RegSet::range(Reg::R0, Reg::R10), RegSet::ALL);
        assert_eq!(RegSet::from_bits(u16::MAX), RegSet::ALL);
        assert_eq!(RegSet::from_bits(a.bits()), a);
        assert_eq!(a.into_iter().len(), 3);
        let mut c = a;
        c |= b;
        assert_eq!(c, a | b);
        c -= a;
        assert_eq!(c, RegSet::of(Reg::R4));
        c &= b;
        assert_eq!(c, RegSet::of(Reg::R4));
        assert_eq!(RegSet::EMPTY.to_string(), "{}");
        for r in Reg::ALL {
            assert!(RegSet::of(r).contains(r));
            assert_eq!(RegSet::of(r).len(), 1);
            assert!(!(RegSet::ALL - RegSet::of(r)).contains(r));
        }
    }
}
