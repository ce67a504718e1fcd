//! What the verifier knows about a number: a tristate number (known bits) and signed and
//! unsigned bounds at 64 and 32 bits, the kernel's scalar domain.
//!
//! A [`Scalar`] stands for the set of 64-bit values `x` such that `x` matches the [`Tnum`]
//! (every bit the mask leaves clear equals that bit of `value`), `umin <= x <= umax`,
//! `smin <= x as i64 <= smax`, and the same for the low 32 bits against the 32-bit bounds. The
//! five views constrain each other; [`Scalar::sync`] makes each as tight as the others allow
//! (the kernel's `reg_bounds_sync`). Every transfer function here over-approximates: for every
//! concrete input in the abstract inputs, the concrete result is in the abstract result. The
//! tests at the bottom check exactly that on random members of random abstract values, against
//! the ISA's own arithmetic (`bpfx_bytecode::semantics`, which the interpreter executes with).
//!
//! # Invariants
//! - A `Scalar` returned by a transfer function is synced; an empty one (bounds that cross, or
//!   contradictory known bits) only ever comes out of a branch refinement, where it means the
//!   edge cannot be taken ([`Scalar::is_empty`]).

use bpfx_bytecode::semantics;
use bpfx_bytecode::{AluOp, ByteOrder, Cond, Size, Width};
use std::fmt;

/// A tristate number: bit `i` is unknown when `mask` bit `i` is set, else it equals bit `i` of
/// `value` (whose unknown bits are kept clear).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Tnum {
    pub(crate) value: u64,
    pub(crate) mask: u64,
}

impl Tnum {
    pub(crate) const UNKNOWN: Tnum = Tnum {
        value: 0,
        mask: u64::MAX,
    };

    pub(crate) const fn konst(v: u64) -> Tnum {
        Tnum { value: v, mask: 0 }
    }

    /// The smallest tnum holding every value of `[min, max]`.
    pub(crate) fn range(min: u64, max: u64) -> Tnum {
        let chi = min ^ max;
        let bits = 64 - chi.leading_zeros();
        if bits > 63 {
            return Tnum::UNKNOWN;
        }
        let delta = (1u64 << bits) - 1;
        Tnum {
            value: min & !delta,
            mask: delta,
        }
    }

    pub(crate) fn is_const(self) -> bool {
        self.mask == 0
    }

    fn lshift(self, s: u32) -> Tnum {
        Tnum {
            value: self.value << s,
            mask: self.mask << s,
        }
    }

    fn rshift(self, s: u32) -> Tnum {
        Tnum {
            value: self.value >> s,
            mask: self.mask >> s,
        }
    }

    fn arshift(self, s: u32, bits: u32) -> Tnum {
        if bits == 32 {
            Tnum {
                value: u64::from(((self.value as u32 as i32) >> s) as u32),
                mask: u64::from(((self.mask as u32 as i32) >> s) as u32),
            }
        } else {
            Tnum {
                value: ((self.value as i64) >> s) as u64,
                mask: ((self.mask as i64) >> s) as u64,
            }
        }
    }

    fn add(self, b: Tnum) -> Tnum {
        let sm = self.mask.wrapping_add(b.mask);
        let sv = self.value.wrapping_add(b.value);
        let sigma = sm.wrapping_add(sv);
        let chi = sigma ^ sv;
        let mu = chi | self.mask | b.mask;
        Tnum {
            value: sv & !mu,
            mask: mu,
        }
    }

    fn sub(self, b: Tnum) -> Tnum {
        let dv = self.value.wrapping_sub(b.value);
        let alpha = dv.wrapping_add(self.mask);
        let beta = dv.wrapping_sub(b.mask);
        let chi = alpha ^ beta;
        let mu = chi | self.mask | b.mask;
        Tnum {
            value: dv & !mu,
            mask: mu,
        }
    }

    fn and(self, b: Tnum) -> Tnum {
        let alpha = self.value | self.mask;
        let beta = b.value | b.mask;
        let v = self.value & b.value;
        Tnum {
            value: v,
            mask: alpha & beta & !v,
        }
    }

    fn or(self, b: Tnum) -> Tnum {
        let v = self.value | b.value;
        let mu = self.mask | b.mask;
        Tnum {
            value: v,
            mask: mu & !v,
        }
    }

    fn xor(self, b: Tnum) -> Tnum {
        let v = self.value ^ b.value;
        let mu = self.mask | b.mask;
        Tnum {
            value: v & !mu,
            mask: mu,
        }
    }

    fn mul(self, b: Tnum) -> Tnum {
        let acc_v = self.value.wrapping_mul(b.value);
        let mut acc_m = Tnum::konst(0);
        let (mut a, mut b) = (self, b);
        while a.value != 0 || a.mask != 0 {
            if a.value & 1 != 0 {
                acc_m = acc_m.add(Tnum {
                    value: 0,
                    mask: b.mask,
                });
            } else if a.mask & 1 != 0 {
                acc_m = acc_m.add(Tnum {
                    value: 0,
                    mask: b.value | b.mask,
                });
            }
            a = a.rshift(1);
            b = b.lshift(1);
        }
        Tnum::konst(acc_v).add(acc_m)
    }

    /// Both at once; meaningless (and detected by [`Tnum::disjoint`]) when they contradict.
    pub(crate) fn intersect(self, b: Tnum) -> Tnum {
        let v = self.value | b.value;
        let mu = self.mask & b.mask;
        Tnum {
            value: v & !mu,
            mask: mu,
        }
    }

    /// Whether no value matches both.
    fn disjoint(self, b: Tnum) -> bool {
        (self.value ^ b.value) & !self.mask & !b.mask != 0
    }

    /// Keeps the low `bytes` bytes (the rest known zero).
    fn cast(self, bytes: u32) -> Tnum {
        if bytes >= 8 {
            return self;
        }
        let m = (1u64 << (8 * bytes)) - 1;
        Tnum {
            value: self.value & m,
            mask: self.mask & m,
        }
    }

    fn subreg(self) -> Tnum {
        self.cast(4)
    }

    fn clear_subreg(self) -> Tnum {
        self.rshift(32).lshift(32)
    }

    /// Whether every value of `b` is a value of `self`.
    pub(crate) fn contains(self, b: Tnum) -> bool {
        if b.mask & !self.mask != 0 {
            return false;
        }
        self.value == b.value & !self.mask
    }

    pub(crate) fn matches(self, x: u64) -> bool {
        x & !self.mask == self.value
    }

    /// The smallest tnum holding both.
    fn union(self, b: Tnum) -> Tnum {
        let mu = self.mask | b.mask | (self.value ^ b.value);
        Tnum {
            value: self.value & !mu,
            mask: mu,
        }
    }

    /// Sign-extends the low `bits` bits.
    fn sext(self, bits: u32) -> Tnum {
        let sh = 64 - bits;
        Tnum {
            value: (((self.value << sh) as i64) >> sh) as u64,
            mask: (((self.mask << sh) as i64) >> sh) as u64,
        }
    }

    fn swap_bytes(self, bits: u32) -> Tnum {
        let t = self.cast(bits / 8);
        let sh = 64 - bits;
        Tnum {
            value: t.value.swap_bytes() >> sh,
            mask: t.mask.swap_bytes() >> sh,
        }
    }
}

/// The scalar id of the entry values that stand for the run's input length: r2 (and, with
/// no input memory, r1) taken as the constants of a run on exactly `mem_size` bytes. No copy
/// id is ever this large (`Analysis::next_id` counts up from 1).
pub(crate) const LEN_ID: u32 = u32::MAX;

/// The scalar id of the input length `L` as a symbol (`Checked` mode, plain memory): r2 at
/// entry, any length from `mem_size` up, and every copy of it, each `L + delta` (the linked
/// scalars' deltas). A comparison with one of them bounds the other side relative to `L`
/// ([`LenRel`]). No copy id is ever this large.
pub(crate) const SYM_LEN_ID: u32 = u32::MAX - 1;

/// The largest input length any engine takes (a Rust slice's length).
pub(crate) const LEN_MAX: u64 = isize::MAX as u64;

/// The largest magnitude of a [`LenRel::c`] (and of the deltas and offsets it is computed
/// from): beyond it, a relation is dropped rather than tracked.
pub(crate) const REL_MAX: i64 = 1 << 31;

/// An upper bound of a value relative to the run's input length `L` (bpfx's own: the kernel
/// bounds packets by comparing pointers with `data_end` instead). With `base: None`, the value
/// `v` satisfies `v + c <= L` (as integers, `v` unsigned); with `base: Some((id, d))`,
/// `v + ref + c <= L`, where `ref` is the value a register linked by scalar id `id` with delta
/// `d` holds (`off + rec <= L`, carried by `rec` with `off` as its `ref`), and `ref < 2^63`.
/// `lmin` is a lower bound of `L` on every run (`mem_size`: engines refuse shorter inputs),
/// the same in every relation of one analysis: a join with a value bounded by a constant
/// (`umax`) takes `c = lmin - umax` for that side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct LenRel {
    pub(crate) c: i64,
    pub(crate) base: Option<(u32, i64)>,
    pub(crate) lmin: u64,
}

impl LenRel {
    /// The relation, `c` clamped to `REL_MAX` (weaker, so still true); `None` when `c` is too
    /// negative to track.
    pub(crate) fn new(c: i128, base: Option<(u32, i64)>, lmin: u64) -> Option<LenRel> {
        if c < -i128::from(REL_MAX) {
            return None;
        }
        Some(LenRel {
            c: c.min(i128::from(REL_MAX)) as i64,
            base,
            lmin,
        })
    }

    /// The stronger of two relations that both hold (of one kind: the larger `c`), or either.
    pub(crate) fn stronger(a: Option<LenRel>, b: Option<LenRel>) -> Option<LenRel> {
        match (a, b) {
            (Some(x), Some(y)) if x.base == y.base => Some(if y.c > x.c { y } else { x }),
            (Some(x), _) => Some(x),
            (None, y) => y,
        }
    }
}

/// A set of 64-bit values; see the module documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Scalar {
    pub(crate) var: Tnum,
    pub(crate) umin: u64,
    pub(crate) umax: u64,
    pub(crate) smin: i64,
    pub(crate) smax: i64,
    pub(crate) u32min: u32,
    pub(crate) u32max: u32,
    pub(crate) s32min: i32,
    pub(crate) s32max: i32,
    /// Registers (and spills) with the same non-zero id are linked: each holds one common
    /// value plus its own [`Scalar::delta`] (copies made by one `mov`, moved by constants
    /// since: the kernel's scalar ids with `BPF_ADD_CONST`), so a comparison that refines
    /// one refines them all (`State::set_id`).
    pub(crate) id: u32,
    /// With a non-zero [`Scalar::id`]: this value minus `delta` (64-bit, wrapping) is the
    /// value every register with that id holds minus its own delta. Always 0 without an id,
    /// and at most `i32::MAX` in magnitude (as the kernel's).
    pub(crate) delta: i64,
    /// An upper bound (unsigned) learnt from a comparison with a constant, the input length
    /// included (`u64::MAX`: none), moved by the constants added since; `umax <= cap` once
    /// synced. Unlike `umax`, a loop head's widening keeps it while it does not move
    /// ([`Scalar::widen`]): the program's own check `off + 2 <= len` at the bottom of a loop
    /// bounds `off` at the head, where `umax` alone would be widened away.
    pub(crate) cap: u64,
    /// An upper bound relative to the input length ([`LenRel`]), set by comparisons with the
    /// length and kept by copies, spills, the addition of constants and joins; any other
    /// write drops it.
    pub(crate) len: Option<LenRel>,
}

/// Bounds at one width (64 bits, or 32 bits held zero- and sign-extended).
#[derive(Clone, Copy, Debug)]
struct Iv {
    umin: u64,
    umax: u64,
    smin: i64,
    smax: i64,
}

impl Iv {
    fn full(bits: u32) -> Iv {
        Iv {
            umin: 0,
            umax: umask(bits),
            smin: smin_of(bits),
            smax: smax_of(bits),
        }
    }
}

fn umask(bits: u32) -> u64 {
    if bits == 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

fn smin_of(bits: u32) -> i64 {
    if bits == 64 {
        i64::MIN
    } else {
        i64::from(i32::MIN)
    }
}

fn smax_of(bits: u32) -> i64 {
    if bits == 64 {
        i64::MAX
    } else {
        i64::from(i32::MAX)
    }
}

fn wbits(w: Width) -> u32 {
    match w {
        Width::W64 => 64,
        Width::W32 => 32,
    }
}

impl Scalar {
    /// The id of the group the length relation is relative to (`len`'s `base`), 0 when
    /// there is none (ids are never 0). Not inlined: inlined, the optimiser may test the
    /// base's id before the `Option` tags that say it exists, which is harmless but makes
    /// memcheck (the C API tests run under valgrind) report a jump on uninitialised bytes.
    #[inline(never)]
    pub(crate) fn len_base_id(&self) -> u32 {
        match self.len {
            Some(LenRel {
                base: Some((b, _)), ..
            }) => b,
            _ => 0,
        }
    }

    pub(crate) const UNKNOWN: Scalar = Scalar {
        var: Tnum::UNKNOWN,
        umin: 0,
        umax: u64::MAX,
        smin: i64::MIN,
        smax: i64::MAX,
        u32min: 0,
        u32max: u32::MAX,
        s32min: i32::MIN,
        s32max: i32::MAX,
        id: 0,
        delta: 0,
        cap: u64::MAX,
        len: None,
    };

    pub(crate) const fn known(v: u64) -> Scalar {
        Scalar {
            var: Tnum::konst(v),
            umin: v,
            umax: v,
            smin: v as i64,
            smax: v as i64,
            u32min: v as u32,
            u32max: v as u32,
            s32min: v as u32 as i32,
            s32max: v as u32 as i32,
            id: 0,
            delta: 0,
            cap: u64::MAX,
            len: None,
        }
    }

    /// `[0, max]`.
    pub(crate) fn below(max: u64) -> Scalar {
        let mut s = Scalar::UNKNOWN;
        s.umax = max;
        s.sync();
        s
    }

    /// The constant, when there is exactly one value.
    pub(crate) fn konst(self) -> Option<u64> {
        self.var.is_const().then_some(self.var.value)
    }

    pub(crate) fn without_id(self) -> Scalar {
        Scalar {
            id: 0,
            delta: 0,
            ..self
        }
    }

    /// This value linked to the value of id `id` plus `delta` (see [`Scalar::delta`]); without
    /// a link when the delta is out of range.
    pub(crate) fn linked(self, id: u32, delta: Option<i64>) -> Scalar {
        match delta {
            Some(d) if id != 0 && d.unsigned_abs() <= i32::MAX as u64 => Scalar {
                id,
                delta: d,
                ..self
            },
            _ => self.without_id(),
        }
    }

    /// The value of the register linked to this one with delta `delta` (see
    /// [`Scalar::delta`]): this one moved by `delta - self.delta`, with that delta.
    pub(crate) fn moved_to(&self, delta: i64) -> Scalar {
        let by = delta.wrapping_sub(self.delta);
        let mut s = self.alu(Width::W64, AluOp::Add, &Scalar::known(by as u64));
        s.cap = self.cap_after(AluOp::Add, by as u64);
        s.sync();
        // (A copy of the length is `L + delta`: relations moved onto it say nothing more.)
        let s = if self.id == SYM_LEN_ID {
            s
        } else {
            s.with_len(self.len_after_add(i128::from(by)))
        };
        Scalar {
            id: self.id,
            delta,
            ..s
        }
    }

    /// This value with the relation `r` to the input length (none: unchanged), and the upper
    /// bound it implies (`v <= LEN_MAX - c`, `ref` being non-negative).
    pub(crate) fn with_len(mut self, r: Option<LenRel>) -> Scalar {
        let Some(r) = r else { return self };
        self.len = Some(r);
        let top = i128::from(LEN_MAX) - i128::from(r.c);
        // (Not below `umin`: the relation holds of every value, so that would be a path no
        // run takes, which a refinement, not this, decides.)
        if top < i128::from(self.umax) && top >= i128::from(self.umin) {
            self.umax = top as u64;
            self.sync();
        }
        self
    }

    /// The relation of `self + k` (integers) to the input length: `c` moves by `-k` when the
    /// sum neither wraps nor goes below 0, so the result is the sum exactly.
    pub(crate) fn len_after_add(&self, k: i128) -> Option<LenRel> {
        let r = self.len?;
        let lo = i128::from(self.umin) + k;
        let hi = i128::from(self.umax) + k;
        if lo < 0 || hi > i128::from(u64::MAX) || k.abs() > i128::from(REL_MAX) {
            return None;
        }
        LenRel::new(i128::from(r.c) - k, r.base, r.lmin)
    }

    /// The relation `v + c <= L` that `v <= umax` gives when `L >= lmin`.
    pub(crate) fn implied_len(&self, lmin: u64) -> Option<LenRel> {
        LenRel::new(i128::from(lmin) - i128::from(self.umax), None, lmin)
    }

    /// This value's relation to the input length, or the one its `umax` implies.
    fn len_or_implied(&self, lmin: u64) -> Option<LenRel> {
        self.len.or_else(|| self.implied_len(lmin))
    }

    /// Whether every value of `self` satisfies `r` too.
    fn satisfies(&self, r: LenRel) -> bool {
        match self.len {
            Some(x) if x.base == r.base => x.c >= r.c,
            _ => r.base.is_none() && self.implied_len(r.lmin).is_some_and(|x| x.c >= r.c),
        }
    }

    /// The relation both of two values satisfy (the weaker: the smaller `c`); none when they
    /// have different kinds.
    fn join_len(&self, b: &Scalar) -> Option<LenRel> {
        let lmin = self.len.or(b.len)?.lmin;
        match (self.len_or_implied(lmin), b.len_or_implied(lmin)) {
            (Some(x), Some(y)) if x.base == y.base => Some(if x.c < y.c { x } else { y }),
            _ => None,
        }
    }

    /// The cap of `self op k` (64-bit `add` or `sub` of the constant `k`): the interval
    /// `[umin, cap]` through the operation, when it does not wrap; `u64::MAX` (none) otherwise.
    pub(crate) fn cap_after(&self, op: AluOp, k: u64) -> u64 {
        if self.cap == u64::MAX || !matches!(op, AluOp::Add | AluOp::Sub) {
            return u64::MAX;
        }
        let mut t = Scalar::UNKNOWN;
        t.umin = self.umin;
        t.umax = self.cap;
        t.sync();
        if t.is_empty() {
            return u64::MAX;
        }
        t.alu(Width::W64, op, &Scalar::known(k)).umax
    }

    /// The bound a widening keeps for a value of `side`: its cap, or its `umax` without one.
    fn cap_or_umax(&self) -> u64 {
        if self.cap == u64::MAX {
            self.umax
        } else {
            self.cap
        }
    }

    /// The values in both, ids and deltas from `self`; `None` when there is none.
    pub(crate) fn meet(&self, b: &Scalar) -> Option<Scalar> {
        if self.var.disjoint(b.var) {
            return None;
        }
        let mut m = Scalar {
            var: self.var.intersect(b.var),
            umin: self.umin.max(b.umin),
            umax: self.umax.min(b.umax),
            smin: self.smin.max(b.smin),
            smax: self.smax.min(b.smax),
            u32min: self.u32min.max(b.u32min),
            u32max: self.u32max.min(b.u32max),
            s32min: self.s32min.max(b.s32min),
            s32max: self.s32max.min(b.s32max),
            cap: self.cap.min(b.cap),
            len: LenRel::stronger(self.len, b.len),
            ..*self
        };
        if m.is_empty() {
            return None;
        }
        m.sync();
        (!m.is_empty()).then_some(m)
    }

    /// Whether `x` is one of the values.
    #[cfg(test)]
    pub(crate) fn contains_value(&self, x: u64) -> bool {
        self.var.matches(x)
            && self.umin <= x
            && x <= self.umax
            && self.smin <= x as i64
            && x as i64 <= self.smax
            && self.u32min <= x as u32
            && x as u32 <= self.u32max
            && self.s32min <= x as u32 as i32
            && x as u32 as i32 <= self.s32max
    }

    /// Whether no value satisfies every view.
    pub(crate) fn is_empty(&self) -> bool {
        self.umin > self.umax
            || self.smin > self.smax
            || self.u32min > self.u32max
            || self.s32min > self.s32max
            || !self.var.matches(self.var.value)
    }

    /// Whether every value of `b` is a value of `self` (ids aside), its relation to the input
    /// length included.
    pub(crate) fn contains(&self, b: &Scalar) -> bool {
        self.contains_ranges(b) && self.len.is_none_or(|r| b.satisfies(r))
    }

    /// [`Scalar::contains`] but for the relations to the input length.
    pub(crate) fn contains_ranges(&self, b: &Scalar) -> bool {
        self.var.contains(b.var)
            && self.umin <= b.umin
            && b.umax <= self.umax
            && self.smin <= b.smin
            && b.smax <= self.smax
            && self.u32min <= b.u32min
            && b.u32max <= self.u32max
            && self.s32min <= b.s32min
            && b.s32max <= self.s32max
    }

    /// Every value of either.
    pub(crate) fn join(&self, b: &Scalar) -> Scalar {
        Scalar {
            var: self.var.union(b.var),
            umin: self.umin.min(b.umin),
            umax: self.umax.max(b.umax),
            smin: self.smin.min(b.smin),
            smax: self.smax.max(b.smax),
            u32min: self.u32min.min(b.u32min),
            u32max: self.u32max.max(b.u32max),
            s32min: self.s32min.min(b.s32min),
            s32max: self.s32max.max(b.s32max),
            id: if (self.id, self.delta) == (b.id, b.delta) {
                self.id
            } else {
                0
            },
            delta: if (self.id, self.delta) == (b.id, b.delta) {
                self.delta
            } else {
                0
            },
            // With a cap on either side: the larger bound of the two (a side without a cap
            // bounded by its `umax`), so that a loop's entry value (`off = 0`) joined with the
            // capped value of its back edge keeps the cap.
            cap: if self.cap == u64::MAX && b.cap == u64::MAX {
                u64::MAX
            } else {
                self.cap_or_umax().max(b.cap_or_umax())
            },
            len: self.join_len(b),
        }
    }

    /// The join, with every bound that moved since `old` pushed to its extreme and the known
    /// bits dropped if any changed, so that an ascending chain of widenings is short (each view
    /// moves at most once).
    pub(crate) fn widen(old: &Scalar, new: &Scalar) -> Scalar {
        let j = old.join(new);
        let mut w = Scalar::UNKNOWN;
        // Known bits that change are all given up at once rather than one per round.
        if j.var == old.var {
            w.var = j.var;
        }
        w.id = j.id;
        w.delta = j.delta;
        // A cap is kept when it did not move (or appeared: each value's cap moves at most
        // twice, from none to one and from one to none), and bounds what was widened: the
        // unsigned maximum, and the signed bounds when the unsigned range is non-negative.
        if old.cap == u64::MAX || old.cap == j.cap {
            w.cap = j.cap;
        }
        // A relation to the input length likewise: kept when it did not move, or appeared
        // (the entry's `off = 0` joined with a back edge's `off <= L - 2`); one that moves is
        // dropped, and a stable head (`Value::widen_hard`) keeps only one that did not move.
        if old.len.is_none() || old.len == j.len {
            w.len = j.len;
        }
        if j.umin == old.umin {
            w.umin = j.umin;
        }
        if j.umax == old.umax {
            w.umax = j.umax;
        }
        if j.smin == old.smin {
            w.smin = j.smin;
        }
        if j.smax == old.smax {
            w.smax = j.smax;
        }
        if j.u32min == old.u32min {
            w.u32min = j.u32min;
        }
        if j.u32max == old.u32max {
            w.u32max = j.u32max;
        }
        if j.s32min == old.s32min {
            w.s32min = j.s32min;
        }
        if j.s32max == old.s32max {
            w.s32max = j.s32max;
        }
        if let Some(r) = w.len {
            let top = i128::from(LEN_MAX) - i128::from(r.c);
            if top < i128::from(w.umax) && top >= i128::from(w.umin) {
                w.umax = top as u64;
            }
        }
        if w.cap != u64::MAX {
            w.umax = w.umax.min(w.cap);
            if w.umax <= i64::MAX as u64 {
                w.smin = w.smin.max(w.umin as i64);
                w.smax = w.smax.min(w.umax as i64);
            }
        }
        // No sync: it could tighten a widened bound again from the tnum and undo the widening.
        w
    }

    /// Tightens each view from the others (the kernel's `reg_bounds_sync`), twice, since one
    /// pass can leave room for the next. A pass is a function of the scalar alone, so when the
    /// first changes nothing the second would not either, and it is skipped.
    pub(crate) fn sync(&mut self) {
        // Two shapes the passes provably leave as they are, which most calls see (the
        // constant side of a comparison or an operation, a value nothing is known of): a
        // constant in every view, whose passes change nothing and which ends as
        // `Scalar::known` (so without a cap); and the unknown scalar without a cap.
        if self.is_synced_const() {
            self.cap = u64::MAX;
            return;
        }
        if self.ranges_unknown() && self.cap == u64::MAX {
            return;
        }
        self.sync_passes();
    }

    /// [`Scalar::sync`] without its shortcuts.
    fn sync_passes(&mut self) {
        for round in 0..2 {
            let before = *self;
            self.update_bounds();
            self.deduce32();
            self.deduce64();
            self.deduce_mixed();
            self.bound_offset();
            self.update_bounds();
            if round == 0 && *self == before {
                break;
            }
        }
        // (Not when empty: a constant tnum must not paper over crossed bounds.)
        if let Some(k) = self.konst()
            && !self.is_empty()
        {
            let (id, delta, len) = (self.id, self.delta, self.len);
            *self = Scalar {
                id,
                delta,
                len,
                ..Scalar::known(k)
            };
        }
    }

    /// Whether every view is the one constant of the tnum, and the cap does not exclude it:
    /// what [`Scalar::sync`] leaves unchanged but for the cap.
    fn is_synced_const(&self) -> bool {
        let k = self.var.value;
        self.var.mask == 0
            && self.umin == k
            && self.umax == k
            && self.smin == k as i64
            && self.smax == k as i64
            && self.u32min == k as u32
            && self.u32max == k as u32
            && self.s32min == k as u32 as i32
            && self.s32max == k as u32 as i32
            && self.cap >= k
    }

    /// Whether every view (the tnum and the bounds, not the cap) is [`Scalar::UNKNOWN`]'s.
    fn ranges_unknown(&self) -> bool {
        self.var == Tnum::UNKNOWN
            && self.umin == 0
            && self.umax == u64::MAX
            && self.smin == i64::MIN
            && self.smax == i64::MAX
            && self.u32min == 0
            && self.u32max == u32::MAX
            && self.s32min == i32::MIN
            && self.s32max == i32::MAX
    }

    fn update_bounds(&mut self) {
        self.umax = self.umax.min(self.cap);
        let v32 = self.var.subreg();
        let (v, m) = (v32.value as u32, v32.mask as u32);
        self.s32min = self.s32min.max((v | (m & i32::MIN as u32)) as i32);
        self.s32max = self.s32max.min((v | (m & i32::MAX as u32)) as i32);
        self.u32min = self.u32min.max(v);
        self.u32max = self.u32max.min(v | m);
        let (v, m) = (self.var.value, self.var.mask);
        self.smin = self.smin.max((v | (m & i64::MIN as u64)) as i64);
        self.smax = self.smax.min((v | (m & i64::MAX as u64)) as i64);
        self.umin = self.umin.max(v);
        self.umax = self.umax.min(v | m);
    }

    fn deduce32(&mut self) {
        if self.umin >> 32 == self.umax >> 32 {
            self.u32min = self.u32min.max(self.umin as u32);
            self.u32max = self.u32max.min(self.umax as u32);
            if (self.umin as u32 as i32) <= (self.umax as u32 as i32) {
                self.s32min = self.s32min.max(self.umin as u32 as i32);
                self.s32max = self.s32max.min(self.umax as u32 as i32);
            }
        }
        if self.smin >> 32 == self.smax >> 32 {
            self.u32min = self.u32min.max(self.smin as u32);
            self.u32max = self.u32max.min(self.smax as u32);
            if (self.smin as u32 as i32) <= (self.smax as u32 as i32) {
                self.s32min = self.s32min.max(self.smin as u32 as i32);
                self.s32max = self.s32max.min(self.smax as u32 as i32);
            }
        }
        if (self.u32min as i32) <= (self.u32max as i32) {
            self.s32min = self.s32min.max(self.u32min as i32);
            self.s32max = self.s32max.min(self.u32max as i32);
        }
        if (self.s32min as u32) <= (self.s32max as u32) {
            self.u32min = self.u32min.max(self.s32min as u32);
            self.u32max = self.u32max.min(self.s32max as u32);
        }
    }

    fn deduce64(&mut self) {
        if (self.umin as i64) <= (self.umax as i64) {
            self.smin = self.smin.max(self.umin as i64);
            self.smax = self.smax.min(self.umax as i64);
        }
        if (self.smin as u64) <= (self.smax as u64) {
            self.umin = self.umin.max(self.smin as u64);
            self.umax = self.umax.min(self.smax as u64);
        }
    }

    fn deduce_mixed(&mut self) {
        const HI: u64 = !0xffff_ffff;
        let nu = (self.umin & HI) | u64::from(self.u32min);
        let xu = (self.umax & HI) | u64::from(self.u32max);
        self.umin = self.umin.max(nu);
        self.umax = self.umax.min(xu);
        let ns = ((self.smin as u64 & HI) | u64::from(self.u32min)) as i64;
        let xs = ((self.smax as u64 & HI) | u64::from(self.u32max)) as i64;
        self.smin = self.smin.max(ns);
        self.smax = self.smax.min(xs);
        if (self.s32min as u32) <= (self.s32max as u32) {
            let (lo, hi) = (u64::from(self.s32min as u32), u64::from(self.s32max as u32));
            self.umin = self.umin.max((self.umin & HI) | lo);
            self.umax = self.umax.min((self.umax & HI) | hi);
            self.smin = self.smin.max(((self.smin as u64 & HI) | lo) as i64);
            self.smax = self.smax.min(((self.smax as u64 & HI) | hi) as i64);
        }
    }

    fn bound_offset(&mut self) {
        if self.umin > self.umax || self.u32min > self.u32max {
            return;
        }
        let v64 = self.var.intersect(Tnum::range(self.umin, self.umax));
        let v32 = v64
            .subreg()
            .intersect(Tnum::range(u64::from(self.u32min), u64::from(self.u32max)));
        self.var = v64.clear_subreg().or(v32);
    }

    /// The view at `bits` (64, or 32 for the low half).
    fn iv(&self, bits: u32) -> (Iv, Tnum) {
        if bits == 64 {
            (
                Iv {
                    umin: self.umin,
                    umax: self.umax,
                    smin: self.smin,
                    smax: self.smax,
                },
                self.var,
            )
        } else {
            (
                Iv {
                    umin: u64::from(self.u32min),
                    umax: u64::from(self.u32max),
                    smin: i64::from(self.s32min),
                    smax: i64::from(self.s32max),
                },
                self.var.subreg(),
            )
        }
    }

    /// A scalar from the result of an operation at `bits`; a 32-bit result is zero-extended.
    fn from_iv(bits: u32, iv: Iv, t: Tnum) -> Scalar {
        let mut s = Scalar::UNKNOWN;
        if bits == 64 {
            s.var = t;
            s.umin = iv.umin;
            s.umax = iv.umax;
            s.smin = iv.smin;
            s.smax = iv.smax;
        } else {
            s.var = t.subreg();
            s.u32min = iv.umin as u32;
            s.u32max = iv.umax as u32;
            s.s32min = iv.smin as i32;
            s.s32max = iv.smax as i32;
            // Zero extension: the 64-bit value is the unsigned 32-bit one.
            s.umax = u64::from(u32::MAX);
            s.smin = 0;
            s.smax = i64::from(u32::MAX);
            if iv.umin <= iv.umax {
                s.umin = iv.umin;
                s.umax = iv.umax;
                s.smin = iv.umin as i64;
                s.smax = iv.umax as i64;
            }
        }
        s.sync();
        s
    }

    /// `self op b` at `width` (32-bit results zero-extended), for every operation but `mov`.
    pub(crate) fn alu(&self, width: Width, op: AluOp, b: &Scalar) -> Scalar {
        if let (Some(x), Some(y)) = (self.konst(), b.konst()) {
            return Scalar::known(semantics::alu(width, op, x, y));
        }
        let bits = wbits(width);
        let (a, ta) = self.iv(bits);
        let (bv, tb) = b.iv(bits);
        let full = Iv::full(bits);
        let top = umask(bits);
        let (iv, t) = match op {
            AluOp::Mov => (bv, tb),
            AluOp::Add => {
                let mut r = full;
                if let (Some(lo), Some(hi)) =
                    (a.umin.checked_add(bv.umin), a.umax.checked_add(bv.umax))
                    && hi <= top
                {
                    r.umin = lo;
                    r.umax = hi;
                }
                if let (Some(lo), Some(hi)) =
                    (a.smin.checked_add(bv.smin), a.smax.checked_add(bv.smax))
                    && lo >= smin_of(bits)
                    && hi <= smax_of(bits)
                {
                    r.smin = lo;
                    r.smax = hi;
                }
                (r, ta.add(tb))
            }
            AluOp::Sub => {
                let mut r = full;
                if a.umin >= bv.umax {
                    r.umin = a.umin - bv.umax;
                    r.umax = a.umax - bv.umin;
                }
                if let (Some(lo), Some(hi)) =
                    (a.smin.checked_sub(bv.smax), a.smax.checked_sub(bv.smin))
                    && lo >= smin_of(bits)
                    && hi <= smax_of(bits)
                {
                    r.smin = lo;
                    r.smax = hi;
                }
                (r, ta.sub(tb))
            }
            AluOp::Mul => {
                let mut r = full;
                if let Some(hi) = a.umax.checked_mul(bv.umax)
                    && hi <= top
                {
                    r.umin = a.umin * bv.umin;
                    r.umax = hi;
                }
                (r, ta.mul(tb))
            }
            AluOp::Div => {
                let mut r = full;
                // Division by zero gives 0, which every lower bound below admits.
                r.umin = if bv.umin == 0 { 0 } else { a.umin / bv.umax };
                r.umax = a.umax / bv.umin.max(1);
                (r, Tnum::UNKNOWN)
            }
            AluOp::Mod => {
                if a.umax < bv.umin {
                    // The dividend is always smaller than the divisor: unchanged.
                    (a, ta)
                } else {
                    let mut r = full;
                    // Modulo zero leaves the dividend, bounded by its own maximum.
                    r.umax = if bv.umin > 0 {
                        a.umax.min(bv.umax - 1)
                    } else {
                        a.umax
                    };
                    (r, Tnum::UNKNOWN)
                }
            }
            AluOp::Sdiv | AluOp::Smod => (full, Tnum::UNKNOWN),
            AluOp::And => {
                let t = ta.and(tb);
                let mut r = full;
                r.umin = t.value;
                r.umax = (t.value | t.mask).min(a.umax).min(bv.umax);
                (r, t)
            }
            AluOp::Or => {
                let t = ta.or(tb);
                let mut r = full;
                r.umin = t.value.max(a.umin).max(bv.umin);
                r.umax = t.value | t.mask;
                (r, t)
            }
            AluOp::Xor => (full, ta.xor(tb)),
            AluOp::Lsh | AluOp::Rsh | AluOp::Arsh => {
                match b.konst() {
                    Some(s) => shift_const(op, bits, a, ta, (s & u64::from(bits - 1)) as u32),
                    None => {
                        let mut r = full;
                        match op {
                            // A right shift never makes a number bigger.
                            AluOp::Rsh => r.umax = a.umax,
                            AluOp::Arsh => {
                                r.smin = a.smin.min(0);
                                r.smax = a.smax.max(0);
                            }
                            _ => {}
                        }
                        (r, Tnum::UNKNOWN)
                    }
                }
            }
        };
        Scalar::from_iv(bits, iv, t.cast(bits / 8))
    }

    /// `-self` at `width`.
    pub(crate) fn neg(&self, width: Width) -> Scalar {
        Scalar::known(0).alu(width, AluOp::Sub, self)
    }

    /// The low `bytes` bytes, zero-extended (a `mov32`, `le16`, an unsigned load's value).
    pub(crate) fn truncate(&self, bytes: u32) -> Scalar {
        if bytes >= 8 {
            return self.without_id();
        }
        let top = umask(8 * bytes);
        if self.umax <= top {
            return self.without_id();
        }
        let mut s = Scalar::UNKNOWN;
        s.var = self.var.cast(bytes);
        if bytes == 4 {
            s.u32min = self.u32min;
            s.u32max = self.u32max;
            s.s32min = self.s32min;
            s.s32max = self.s32max;
            s.umin = u64::from(self.u32min);
        }
        s.umax = top;
        s.sync();
        s
    }

    /// `movsx` from `from`, at `width`.
    pub(crate) fn movsx(&self, width: Width, from: Size) -> Scalar {
        if let Some(k) = self.konst() {
            return Scalar::known(semantics::movsx(width, from, k));
        }
        let bits = from.bytes() * 8;
        let (lo, hi) = (-(1i64 << (bits - 1)), (1i64 << (bits - 1)) - 1);
        let mut s = if bits < 64 && self.smin >= lo && self.smax <= hi {
            // Already a sign-extended `bits`-bit number: unchanged.
            self.without_id()
        } else {
            let mut s = Scalar::UNKNOWN;
            s.var = self.var.cast(bits / 8).sext(bits);
            s.smin = lo;
            s.smax = hi;
            s.sync();
            s
        };
        if width == Width::W32 {
            s = s.truncate(4);
        }
        s
    }

    /// The value of a load of `bytes` bytes whose content is unknown.
    pub(crate) fn load(bytes: u32, signed: bool) -> Scalar {
        // A function of the access size and signedness alone, asked at every load: made once.
        static LOADS: std::sync::OnceLock<[[Scalar; 2]; 4]> = std::sync::OnceLock::new();
        let table = LOADS.get_or_init(|| {
            [1, 2, 4, 8].map(|b| [Scalar::make_load(b, false), Scalar::make_load(b, true)])
        });
        match bytes {
            1 | 2 | 4 | 8 => table[bytes.trailing_zeros() as usize][usize::from(signed)],
            _ => Scalar::make_load(bytes, signed),
        }
    }

    /// [`Scalar::load`], computed.
    fn make_load(bytes: u32, signed: bool) -> Scalar {
        let s = Scalar::below(umask(8 * bytes));
        if signed && bytes < 8 {
            let sz = match bytes {
                1 => Size::B,
                2 => Size::H,
                _ => Size::W,
            };
            return s.movsx(Width::W64, sz);
        }
        s
    }

    /// A byte-order operation on the low `bits` bits, zero-extended.
    pub(crate) fn endian(&self, order: ByteOrder, bits: u32) -> Scalar {
        if let Some(k) = self.konst() {
            return Scalar::known(semantics::endian(order, bits, k));
        }
        match order {
            ByteOrder::Le => self.truncate(bits / 8),
            ByteOrder::Be | ByteOrder::Swap => {
                let mut s = Scalar::UNKNOWN;
                s.var = self.var.swap_bytes(bits);
                s.sync();
                s
            }
        }
    }
}

fn shift_const(op: AluOp, bits: u32, a: Iv, ta: Tnum, s: u32) -> (Iv, Tnum) {
    let mut r = Iv::full(bits);
    match op {
        AluOp::Lsh => {
            let t = ta.lshift(s);
            if s == 0 || a.umax >> (bits - s) == 0 {
                r.umin = a.umin << s;
                r.umax = a.umax << s;
            }
            (r, t)
        }
        AluOp::Rsh => {
            r.umin = a.umin >> s;
            r.umax = a.umax >> s;
            (r, ta.rshift(s))
        }
        _ => {
            r.smin = a.smin >> s;
            r.smax = a.smax >> s;
            (r, ta.arshift(s, bits))
        }
    }
}

/// Narrows `a` and `b` to the values for which `a cond b` is `holds` at `width`. Returns false
/// when no pair of values can do so: that edge of the branch is dead.
pub(crate) fn refine(
    a: &mut Scalar,
    b: &mut Scalar,
    width: Width,
    cond: Cond,
    holds: bool,
) -> bool {
    let bits = wbits(width);
    let ok = match (cond, holds) {
        (Cond::Set, true) => {
            // Some bit of b is set in a: if b is one known bit, a has it.
            if let Some(k) = b.konst()
                && k & k.wrapping_sub(1) == 0
                && k != 0
                && (bits == 64 || k <= u64::from(u32::MAX))
            {
                a.var = a.var.or(Tnum::konst(k));
            }
            if a.konst() == Some(0) || b.konst() == Some(0) {
                return false;
            }
            true
        }
        (Cond::Set, false) => {
            // a & b == 0: the known-one bits of b are zero in a, and vice versa.
            let clear = |x: &mut Scalar, y: &Scalar| {
                let m = if bits == 32 {
                    !(y.var.value & 0xffff_ffff)
                } else {
                    !y.var.value
                };
                x.var = x.var.and(Tnum::konst(m));
            };
            let (a0, b0) = (*a, *b);
            clear(a, &b0);
            clear(b, &a0);
            true
        }
        (c, true) => refine_holds(a, b, bits, c),
        // `jset` is handled above: every other condition has a negation (and narrowing
        // nothing would be the sound answer for one that had none).
        (c, false) => c.negate().is_none_or(|n| refine_holds(a, b, bits, n)),
    };
    if !ok || a.is_empty() || b.is_empty() {
        return false;
    }
    a.sync();
    b.sync();
    !a.is_empty() && !b.is_empty()
}

/// Narrows for `a cond b` holding. `jset` is refined by [`refine`]: here it narrows nothing.
fn refine_holds(a: &mut Scalar, b: &mut Scalar, bits: u32, cond: Cond) -> bool {
    match cond {
        Cond::Eq => {
            if bits == 64 {
                if a.var.disjoint(b.var) {
                    return false;
                }
                let m = Scalar {
                    var: a.var.intersect(b.var),
                    umin: a.umin.max(b.umin),
                    umax: a.umax.min(b.umax),
                    smin: a.smin.max(b.smin),
                    smax: a.smax.min(b.smax),
                    u32min: a.u32min.max(b.u32min),
                    u32max: a.u32max.min(b.u32max),
                    s32min: a.s32min.max(b.s32min),
                    s32max: a.s32max.min(b.s32max),
                    id: 0,
                    delta: 0,
                    cap: a.cap.min(b.cap),
                    len: None,
                };
                *a = Scalar {
                    id: a.id,
                    delta: a.delta,
                    len: a.len,
                    ..m
                };
                *b = Scalar {
                    id: b.id,
                    delta: b.delta,
                    len: b.len,
                    ..m
                };
            } else {
                let (ta, tb) = (a.var.subreg(), b.var.subreg());
                if ta.disjoint(tb) {
                    return false;
                }
                let t = ta.intersect(tb);
                let (lo, hi) = (a.u32min.max(b.u32min), a.u32max.min(b.u32max));
                let (slo, shi) = (a.s32min.max(b.s32min), a.s32max.min(b.s32max));
                for x in [&mut *a, &mut *b] {
                    x.var = x.var.clear_subreg().or(t);
                    x.u32min = lo;
                    x.u32max = hi;
                    x.s32min = slo;
                    x.s32max = shi;
                }
            }
            true
        }
        Cond::Ne => {
            // Only a constant side can trim an end of the other's ranges.
            let (ka, kb) = (a.konst(), b.konst());
            for (x, y) in [(&mut *a, kb), (&mut *b, ka)] {
                let Some(k) = y else { continue };
                if bits == 64 {
                    if x.konst() == Some(k) {
                        return false;
                    }
                    if x.umin == k {
                        x.umin = k.saturating_add(1);
                    }
                    if x.umax == k {
                        x.umax = k.saturating_sub(1);
                    }
                    if x.smin == k as i64 {
                        x.smin = (k as i64).saturating_add(1);
                    }
                    if x.smax == k as i64 {
                        x.smax = (k as i64).saturating_sub(1);
                    }
                } else {
                    let k = k as u32;
                    if x.var.subreg().is_const() && x.var.value as u32 == k {
                        return false;
                    }
                    if x.u32min == k {
                        x.u32min = k.saturating_add(1);
                    }
                    if x.u32max == k {
                        x.u32max = k.saturating_sub(1);
                    }
                    if x.s32min == k as i32 {
                        x.s32min = (k as i32).saturating_add(1);
                    }
                    if x.s32max == k as i32 {
                        x.s32max = (k as i32).saturating_sub(1);
                    }
                }
            }
            true
        }
        Cond::Gt | Cond::Ge | Cond::Sgt | Cond::Sge => refine_holds(b, a, bits, cond.swap()),
        Cond::Lt | Cond::Le => {
            let strict = u64::from(cond == Cond::Lt);
            if bits == 64 {
                if b.umax < strict || a.umin > u64::MAX - strict {
                    return false;
                }
                a.umax = a.umax.min(b.umax - strict);
                b.umin = b.umin.max(a.umin + strict);
                // A comparison with a constant (the input length is one: `LEN_ID`) caps the
                // other side for the widenings to come.
                if b.konst().is_some() {
                    a.cap = a.cap.min(b.umax - strict);
                }
            } else {
                let s = strict as u32;
                if b.u32max < s || a.u32min > u32::MAX - s {
                    return false;
                }
                a.u32max = a.u32max.min(b.u32max - s);
                b.u32min = b.u32min.max(a.u32min + s);
            }
            true
        }
        Cond::Slt | Cond::Sle => {
            let strict = i64::from(cond == Cond::Slt);
            if bits == 64 {
                if b.smax < i64::MIN + strict || a.smin > i64::MAX - strict {
                    return false;
                }
                a.smax = a.smax.min(b.smax - strict);
                b.smin = b.smin.max(a.smin + strict);
            } else {
                let s = strict as i32;
                if b.s32max < i32::MIN + s || a.s32min > i32::MAX - s {
                    return false;
                }
                a.s32max = a.s32max.min(b.s32max - s);
                b.s32min = b.s32min.max(a.s32min + s);
            }
            true
        }
        Cond::Set => true,
    }
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(k) = self.konst() {
            return write!(f, "{k:#x}");
        }
        write!(f, "scalar(")?;
        let mut parts: Vec<String> = Vec::new();
        if self.umin != 0 || self.umax != u64::MAX {
            parts.push(format!("u{}..={}", self.umin, self.umax));
        }
        if (self.smin != i64::MIN || self.smax != i64::MAX)
            && (self.smin as u64, self.smax as u64) != (self.umin, self.umax)
        {
            parts.push(format!("s{}..={}", self.smin, self.smax));
        }
        if self.var.mask != u64::MAX && self.var != Tnum::range(self.umin, self.umax) {
            parts.push(format!("var={:#x}/{:#x}", self.var.value, self.var.mask));
        }
        if self.id != 0 {
            parts.push(format!("id={}", self.id));
        }
        if self.delta != 0 {
            parts.push(format!("delta={}", self.delta));
        }
        if self.cap != u64::MAX {
            parts.push(format!("cap={}", self.cap));
        }
        match self.len {
            Some(LenRel { c, base: None, .. }) => parts.push(format!("len-{c}")),
            Some(LenRel {
                c,
                base: Some((id, d)),
                ..
            }) => parts.push(format!("len-{c}-id{id}{d:+}")),
            None => {}
        }
        write!(f, "{})", parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tests' one generator (`bpfx-rng`), with value shapes for the scalar domain.
    struct Rng(bpfx_rng::Rng);
    impl Rng {
        fn new(seed: u64) -> Rng {
            Rng(bpfx_rng::Rng::new(seed))
        }
        fn next(&mut self) -> u64 {
            self.0.next_u64()
        }
        /// A value biased towards edges.
        fn val(&mut self) -> u64 {
            match self.next() % 8 {
                0 => self.next() % 16,
                1 => (self.next() % 16).wrapping_neg(),
                2 => 0x7fff_fff0 + self.next() % 32,
                3 => 0xffff_fff0 + self.next() % 32,
                4 => (1 << 63) - 8 + self.next() % 16,
                5 => self.next() & 0xffff_ffff,
                _ => self.next(),
            }
        }
        /// An abstract value together with some of its members.
        fn abs(&mut self) -> (Scalar, Vec<u64>) {
            let mut members: Vec<u64> = Vec::new();
            let base = self.val();
            let kind = self.next() % 5;
            for _ in 0..6 {
                let x = match kind {
                    0 => base,
                    1 => base.wrapping_add(self.next() % 8),
                    2 => base ^ (self.next() & 0xff),
                    3 => self.next() & 0xff,
                    _ => self.val(),
                };
                members.push(x);
            }
            // The tightest scalar holding them: join of constants, then a sync.
            let mut s = Scalar::known(members[0]);
            for &m in &members[1..] {
                s = s.join(&Scalar::known(m));
            }
            if self.next().is_multiple_of(4) {
                s = Scalar::UNKNOWN;
            }
            s.sync();
            (s, members)
        }
    }

    fn holds(s: &Scalar, x: u64, what: &str) {
        assert!(s.contains_value(x), "{what}: {x:#x} is not in {s:?}");
    }

    #[test]
    fn sync_keeps_members() {
        let mut r = Rng::new(0x1234_5678_9abc_def1);
        for _ in 0..5000 {
            let (s, ms) = r.abs();
            for m in ms {
                holds(&s, m, "sync");
            }
        }
    }

    #[test]
    fn sync_shortcuts_agree_with_the_passes() {
        let rel = LenRel::new(5, Some((3, -2)), 64);
        let mut r = Rng::new(0x0bad_cafe_f00d_d00d);
        let mut cases = vec![Scalar::UNKNOWN, Scalar::known(0), Scalar::known(u64::MAX)];
        for _ in 0..2000 {
            let k = r.val();
            cases.push(Scalar::known(k));
            cases.push(Scalar::known(k as u32 as u64));
        }
        for base in cases {
            for cap in [u64::MAX, base.umax, base.umax.wrapping_sub(1), 0, 1 << 40] {
                for (id, delta, len) in [(0, 0, None), (7, -3, rel)] {
                    let s = Scalar {
                        cap,
                        id,
                        delta,
                        len,
                        ..base
                    };
                    let (mut fast, mut slow) = (s, s);
                    fast.sync();
                    slow.sync_passes();
                    assert_eq!(fast, slow, "sync of {s:?}");
                }
            }
        }
    }

    #[test]
    fn alu_over_approximates() {
        let mut r = Rng::new(0x9e37_79b9_7f4a_7c15);
        for _ in 0..4000 {
            let (a, am) = r.abs();
            let (b, bm) = r.abs();
            for w in [Width::W64, Width::W32] {
                for op in AluOp::ALL {
                    if op == AluOp::Mov {
                        continue;
                    }
                    let res = a.alu(w, op, &b);
                    for &x in &am {
                        for &y in &bm {
                            let c = semantics::alu(w, op, x, y);
                            assert!(
                                res.contains_value(c),
                                "{op:?} {w:?}: {x:#x} op {y:#x} = {c:#x} not in {res:?}\n a={a:?}\n b={b:?}"
                            );
                        }
                    }
                }
                let n = a.neg(w);
                for &x in &am {
                    holds(&n, semantics::neg(w, x), "neg");
                }
                for from in [Size::B, Size::H, Size::W] {
                    if w == Width::W32 && from == Size::W {
                        continue;
                    }
                    let s = a.movsx(w, from);
                    for &x in &am {
                        holds(&s, semantics::movsx(w, from, x), "movsx");
                    }
                }
            }
            for order in [ByteOrder::Le, ByteOrder::Be, ByteOrder::Swap] {
                for bits in [16, 32, 64] {
                    let e = a.endian(order, bits);
                    for &x in &am {
                        holds(&e, semantics::endian(order, bits, x), "endian");
                    }
                }
            }
            for bytes in [1, 2, 4, 8] {
                let t = a.truncate(bytes);
                for &x in &am {
                    let m = if bytes == 8 {
                        u64::MAX
                    } else {
                        (1 << (8 * bytes)) - 1
                    };
                    holds(&t, x & m, "truncate");
                }
            }
        }
    }

    #[test]
    fn refinement_keeps_every_pair_on_its_edge() {
        let mut r = Rng::new(0x0bad_cafe_f00d_d00d);
        let conds = [
            Cond::Eq,
            Cond::Ne,
            Cond::Gt,
            Cond::Ge,
            Cond::Lt,
            Cond::Le,
            Cond::Sgt,
            Cond::Sge,
            Cond::Slt,
            Cond::Sle,
            Cond::Set,
        ];
        for i in 0..6000u32 {
            let (a, am) = r.abs();
            let (b, mut bm) = if i.is_multiple_of(3) {
                let k = r.val();
                (Scalar::known(k), vec![k])
            } else {
                r.abs()
            };
            if i.is_multiple_of(5) {
                // Make equal pairs likely.
                bm.push(am[0]);
            }
            let b = bm.iter().fold(b, |s, &m| s.join(&Scalar::known(m)));
            for w in [Width::W64, Width::W32] {
                for c in conds {
                    for edge in [true, false] {
                        let (mut ra, mut rb) = (a, b);
                        let live = refine(&mut ra, &mut rb, w, c, edge);
                        for &x in &am {
                            for &y in &bm {
                                if c.eval(x, y, w) == edge {
                                    assert!(
                                        live,
                                        "{c:?} {w:?} {edge}: {x:#x},{y:#x} but dead\n a={a:?}\n b={b:?}"
                                    );
                                    holds(&ra, x, "refined lhs");
                                    holds(&rb, y, "refined rhs");
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn refinement_narrows_what_it_should() {
        let mut a = Scalar::UNKNOWN;
        let mut k = Scalar::known(10);
        assert!(refine(&mut a, &mut k, Width::W64, Cond::Lt, true));
        assert_eq!((a.umin, a.umax), (0, 9));
        let mut a = Scalar::UNKNOWN;
        let mut k = Scalar::known(10);
        assert!(refine(&mut a, &mut k, Width::W32, Cond::Gt, false));
        assert_eq!((a.u32min, a.u32max), (0, 10));
        let mut c = Scalar::known(3);
        let mut k = Scalar::known(3);
        assert!(!refine(&mut c, &mut k, Width::W64, Cond::Ne, true));
        // Two constants: exactly one edge lives.
        for (x, y) in [(10u64, 10u64), (9, 10), (u64::MAX, 0), (0, u64::MAX)] {
            for c in [
                Cond::Lt,
                Cond::Le,
                Cond::Slt,
                Cond::Sle,
                Cond::Eq,
                Cond::Set,
            ] {
                for w in [Width::W64, Width::W32] {
                    let live = |edge| {
                        let (mut a, mut b) = (Scalar::known(x), Scalar::known(y));
                        refine(&mut a, &mut b, w, c, edge)
                    };
                    assert_eq!(live(true), c.eval(x, y, w), "{x} {c:?} {y} {w:?}");
                    assert_eq!(live(false), !c.eval(x, y, w), "{x} {c:?} {y} {w:?}");
                }
            }
        }
        let mut m = Scalar::UNKNOWN.alu(Width::W64, AluOp::And, &Scalar::known(0xff));
        assert_eq!((m.umin, m.umax), (0, 0xff));
        let mut k = Scalar::known(0x100);
        assert!(!refine(&mut m, &mut k, Width::W64, Cond::Ge, true));
    }

    #[test]
    fn links_move_and_meet_soundly() {
        let mut r = Rng::new(0x5eed_1120_2400);
        for _ in 0..3000 {
            let (a, am) = r.abs();
            let from = (r.next() % 64) as i64 - 32;
            let to = (r.next() % 64) as i64 - 32;
            let a = a.linked(7, Some(from));
            let m = a.moved_to(to);
            assert_eq!((m.id, m.delta), (7, to));
            for &x in &am {
                holds(&m, x.wrapping_add(to.wrapping_sub(from) as u64), "moved");
            }
            // The meet keeps every value of both.
            let (b, _) = r.abs();
            let both: Vec<u64> = am
                .iter()
                .copied()
                .filter(|x| b.contains_value(*x))
                .collect();
            match a.meet(&b) {
                Some(m) => {
                    assert_eq!((m.id, m.delta), (a.id, a.delta));
                    for &x in &both {
                        holds(&m, x, "meet");
                    }
                }
                None => assert!(both.is_empty(), "{a:?} {b:?} share {both:?}"),
            }
        }
        // A join keeps a link only with the same id and delta on both sides.
        let x = Scalar::below(10).linked(3, Some(2));
        assert_eq!(x.join(&x).delta, 2);
        let y = Scalar::below(10).linked(3, Some(1));
        assert_eq!((x.join(&y).id, x.join(&y).delta), (0, 0));
        let w = Scalar::widen(&x, &Scalar::below(20).linked(3, Some(2)));
        assert_eq!((w.id, w.delta), (3, 2));
        // Out-of-range deltas do not link.
        assert_eq!(Scalar::below(1).linked(3, Some(1 << 31)).id, 0);
        assert_eq!(Scalar::below(1).linked(3, None).id, 0);
    }

    #[test]
    fn caps_bound_what_joins_widenings_and_moves_keep() {
        let mut r = Rng::new(0xca95_0001_d00d_0002);
        let capped = |r: &mut Rng| {
            let (mut s, m) = r.abs();
            if r.next().is_multiple_of(2) {
                let top = m.iter().copied().max().unwrap_or(0);
                s.cap = top.saturating_add(r.next() % 4);
                s.sync();
            }
            (s, m)
        };
        for _ in 0..3000 {
            let (a, am) = capped(&mut r);
            let (b, bm) = capped(&mut r);
            let j = a.join(&b);
            let w = Scalar::widen(&a, &b);
            for x in am.iter().chain(&bm) {
                holds(&j, *x, "join");
                holds(&w, *x, "widen");
                assert!(*x <= j.cap && *x <= w.cap);
            }
            let k = r.val();
            for op in [AluOp::Add, AluOp::Sub] {
                let cap = a.cap_after(op, k);
                for &x in &am {
                    assert!(
                        semantics::alu(Width::W64, op, x, k) <= cap,
                        "{op:?} {x:#x} {k:#x} {a:?}"
                    );
                }
            }
            let m = a.linked(5, Some(0)).moved_to(3);
            for &x in &am {
                holds(&m, x.wrapping_add(3), "moved");
                assert!(x.wrapping_add(3) <= m.cap);
            }
        }
        // A comparison with a constant caps the other side, and a widening keeps the cap
        // while it stays: the loop counter `0` joined with `[2, 14]` widens to `[0, 14]`.
        let mut v = Scalar::UNKNOWN;
        v.umin = 4;
        v.sync();
        let mut k = Scalar::known(16);
        assert!(refine(&mut v, &mut k, Width::W64, Cond::Le, true));
        assert_eq!(v.cap, 16);
        // `v - 2` (no wrap: v >= 4) is capped at 14; `v - 8` may wrap, so it has no cap.
        assert_eq!(v.cap_after(AluOp::Sub, 8), u64::MAX);
        let mut back = v.alu(Width::W64, AluOp::Sub, &Scalar::known(2));
        back.cap = v.cap_after(AluOp::Sub, 2);
        back.sync();
        let w = Scalar::widen(&Scalar::known(0), &back);
        assert_eq!((w.umin, w.umax, w.smin, w.smax, w.cap), (0, 14, 0, 14, 14));
        assert_eq!(Scalar::widen(&w, &back), w);
    }

    #[test]
    fn relations_to_the_length_hold_through_moves_joins_and_widenings() {
        let mut r = Rng::new(0x1e4_5e1f_0000_0001);
        let holds_len =
            |x: u64, rel: LenRel, l: u64| i128::from(x) + i128::from(rel.c) <= i128::from(l);
        for _ in 0..4000 {
            // A run's length `l` of at least `lmin`, and values related to it.
            let lmin = 16 + r.next() % 64;
            let l = lmin + r.next() % 512;
            let related = |r: &mut Rng| {
                let (s, ms) = r.abs();
                let c = (r.next() % 64) as i64 - 32;
                let ms: Vec<u64> = ms
                    .into_iter()
                    .filter(|&m| i128::from(m) + i128::from(c) <= i128::from(l))
                    .collect();
                let s = if r.next().is_multiple_of(3) {
                    s
                } else {
                    s.with_len(LenRel::new(i128::from(c), None, lmin))
                };
                (s, ms)
            };
            let (a, am) = related(&mut r);
            let (b, bm) = related(&mut r);
            for &x in &am {
                holds(&a, x, "with_len");
            }
            let k = (r.next() % 64) as i128 - 32;
            if let Some(rel) = a.len_after_add(k) {
                for &x in &am {
                    let y = i128::from(x) + k;
                    assert!(
                        (0..=i128::from(u64::MAX)).contains(&y)
                            && y + i128::from(rel.c) <= i128::from(l),
                        "{x} + {k} against {rel:?}, {a:?}"
                    );
                }
            }
            for m in [a.join(&b), Scalar::widen(&a, &b.join(&a))] {
                if let Some(rel) = m.len {
                    for &x in am.iter().chain(&bm) {
                        holds(&m, x, "merge");
                        assert!(holds_len(x, rel, l), "{x} {rel:?} {a:?} {b:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn join_and_widen_are_upper_bounds() {
        let mut r = Rng::new(42);
        for _ in 0..3000 {
            let (a, am) = r.abs();
            let (b, bm) = r.abs();
            let j = a.join(&b);
            let w = Scalar::widen(&a, &b);
            assert!(j.contains(&a) && j.contains(&b));
            assert!(w.contains(&j), "{w:?} {j:?}");
            // A value merged with itself is itself, widening included (tnums stay in normal
            // form, `value & mask == 0`): merges skip the stack chunks two states share.
            for x in [a, b, j, w] {
                assert_eq!(x.var.value & x.var.mask, 0, "{x:?}");
                assert_eq!(x.join(&x), x);
                assert_eq!(Scalar::widen(&x, &x), x);
            }
            for x in am.iter().chain(&bm) {
                holds(&j, *x, "join");
                holds(&w, *x, "widen");
            }
        }
    }
}
