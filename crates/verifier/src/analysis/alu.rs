//! ALU rules: scalars through the domain's arithmetic, the pointer arithmetic the kernel
//! allows (pointer ± scalar, the difference of two pointers into one region), scalar ids for
//! copies and packet ids for moved packet pointers.

use super::{Analysis, R};
use crate::domain::{InRel, Off, PtrKind, Scalar, State, Value};
use crate::error::VerifyErrorKind as K;
use crate::scalar::{LenRel, REL_MAX, SYM_LEN_ID};
use bpfx_bytecode::{AluOp, ByteOrder, Operand, Pc, Reg, Size, Width};

impl Analysis<'_> {
    /// `dst op= src` (and `mov`).
    pub(super) fn check_alu_insn(
        &mut self,
        pc: Pc,
        st: &mut State,
        width: Width,
        aop: AluOp,
        dst: Reg,
        src: Operand,
    ) -> R<()> {
        let (s, sreg) = self.operand(pc, st, src)?;
        let v = if aop == AluOp::Mov {
            let v = self.check_mov(pc, width, s, sreg.unwrap_or(dst))?;
            match (v, sreg, s) {
                // A copy of an unknown scalar: both registers get one id, so that a
                // comparison of either narrows both.
                (Value::Scalar(x), Some(r), _) if width == Width::W64 && x.konst().is_none() => {
                    let (id, x) = self.copy_id(pc, st, x);
                    let x = Scalar { id, ..x };
                    Self::set(st, r, Value::Scalar(x));
                    Value::Scalar(x)
                }
                // `w1 = w2` of a value that fits in 32 bits copies it whole: the two
                // registers share an id as a 64-bit copy would (the kernel's rule for
                // `BPF_MOV32` of a 32-bit scalar). The source is read at 64 bits here.
                (Value::Scalar(y), Some(r), Value::Scalar(x))
                    if width == Width::W32
                        && y.konst().is_none()
                        && x.umax <= u64::from(u32::MAX) =>
                {
                    let (id, x) = self.copy_id(pc, st, x);
                    // The copy is the source exactly, so it has the source's delta too.
                    Self::set(st, r, Value::Scalar(Scalar { id, ..x }));
                    Value::Scalar(Scalar {
                        id,
                        delta: x.delta,
                        len: x.len,
                        ..y
                    })
                }
                _ => v,
            }
        } else {
            let d = self.read(pc, st, dst)?;
            let v = self.check_alu(pc, width, aop, dst, d, sreg, s)?;
            let v = link_const(width, aop, d, s, v);
            let v = self.len_rel(pc, st, (width, aop), (d, s, sreg), v);
            let v = self.ctx_taint([d, s], v);
            self.packet_id(d, s, v)
        };
        let v = if aop == AluOp::Mov {
            self.ctx_taint([s, s], v)
        } else {
            v
        };
        Self::set(st, dst, v);
        Ok(())
    }

    /// The id of scalar `x`, read from a register, for a copy made at `pc`: its own, or a new
    /// one when it has none, and `x` as the state now holds it. In `Checked` mode the new id is
    /// the one of `pc` (as for [`Analysis::len_rel`]'s): the states of different visits (loop
    /// iterations, a callee entered again from one call site) then agree on it, and their
    /// join keeps the link (a callee's argument stays linked to the caller's copy, so what
    /// the callee learns of it reaches the caller's register). The previous visit's holders
    /// and the relations naming it are forgotten first ([`forget_id`]), `x`'s own included.
    fn copy_id(&mut self, pc: Pc, st: &mut State, x: Scalar) -> (u32, Scalar) {
        if x.id != 0 {
            return (x.id, x);
        }
        if self.strict || self.next_id >= PC_ID_BASE {
            return (self.scalar_id(x), x);
        }
        let id = PC_ID_BASE.saturating_add(pc.0);
        forget_id(st, id);
        (id, without_tag(x, id))
    }

    /// The id of scalar `x` for a copy: its own, or a fresh one when it has none.
    pub(super) fn scalar_id(&mut self, x: Scalar) -> u32 {
        if x.id != 0 {
            x.id
        } else {
            self.next_id += 1;
            self.next_id
        }
    }

    pub(super) fn check_neg(&self, pc: Pc, st: &mut State, width: Width, dst: Reg) -> R<()> {
        let d = self.read(pc, st, dst)?;
        let v = match d {
            Value::Scalar(s) => Value::Scalar(s.neg(width)),
            _ => self.pointer_op(pc, "neg", dst, d)?,
        };
        let v = self.ctx_taint([d, d], v);
        Self::set(st, dst, v);
        Ok(())
    }

    pub(super) fn check_movsx(
        &self,
        pc: Pc,
        st: &mut State,
        width: Width,
        from: Size,
        dst: Reg,
        src: Reg,
    ) -> R<()> {
        let s = self.read(pc, st, src)?;
        let v = match s {
            Value::Scalar(x) => Value::Scalar(x.movsx(width, from)),
            _ => self.pointer_op(pc, "movsx", src, s)?,
        };
        let v = self.ctx_taint([s, s], v);
        Self::set(st, dst, v);
        Ok(())
    }

    pub(super) fn check_endian(
        &self,
        pc: Pc,
        st: &mut State,
        order: ByteOrder,
        bits: u32,
        dst: Reg,
    ) -> R<()> {
        let d = self.read(pc, st, dst)?;
        let v = match d {
            Value::Scalar(x) => Value::Scalar(x.endian(order, bits)),
            _ => self.pointer_op(pc, "byte swap", dst, d)?,
        };
        let v = self.ctx_taint([d, d], v);
        Self::set(st, dst, v);
        Ok(())
    }

    fn check_mov(&self, pc: Pc, width: Width, s: Value, sreg: Reg) -> R<Value> {
        match (width, s) {
            (Width::W64, _) => Ok(s),
            (Width::W32, Value::Scalar(x)) => Ok(Value::Scalar(x.truncate(4))),
            (Width::W32, _) => self.degrade(pc, pointer_arith("mov32", sreg, s)),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn check_alu(
        &self,
        pc: Pc,
        width: Width,
        op: AluOp,
        dst: Reg,
        d: Value,
        sreg: Option<Reg>,
        s: Value,
    ) -> R<Value> {
        let name = |op: AluOp| match width {
            Width::W64 => op.mnemonic().to_string(),
            Width::W32 => format!("{}32", op.mnemonic()),
        };
        // The register to blame: the pointer operand, the destination first.
        let blame = match sreg {
            Some(r) if !d.is_pointer_like() => (r, s),
            _ => (dst, d),
        };
        let bad = || -> R<Value> {
            self.degrade(
                pc,
                K::PointerArith {
                    op: name(op),
                    reg: blame.0,
                    what: blame.1.describe(),
                },
            )
        };
        match (d, s) {
            (Value::Scalar(a), Value::Scalar(b)) => Ok(Value::Scalar(a.alu(width, op, &b))),
            (
                Value::Ptr(..) | Value::MapHandle(_) | Value::MapHandleOrNull(..),
                Value::Ptr(..) | Value::MapHandle(_) | Value::MapHandleOrNull(..),
            ) if op != AluOp::Sub => match sreg {
                Some(src) => self.degrade(
                    pc,
                    K::TwoPointers {
                        op: name(op),
                        dst,
                        src,
                    },
                ),
                None => Err(self.internal(pc, "a pointer operand is not a register")),
            },
            _ if width == Width::W32 => bad(),
            (Value::Ptr(k, o), Value::Scalar(c)) if arith_ok(k) && op == AluOp::Add => {
                Ok(Value::Ptr(k, o.add_scalar(&c, false)))
            }
            (Value::Scalar(c), Value::Ptr(k, o)) if arith_ok(k) && op == AluOp::Add => {
                Ok(Value::Ptr(k, o.add_scalar(&c, false)))
            }
            (Value::Ptr(k, o), Value::Scalar(c)) if arith_ok(k) && op == AluOp::Sub => {
                Ok(Value::Ptr(k, o.add_scalar(&c, true)))
            }
            (
                Value::Ptr(PtrKind::Packet { .. } | PtrKind::PacketEnd | PtrKind::PacketMeta, _),
                Value::Ptr(PtrKind::Packet { .. } | PtrKind::PacketEnd | PtrKind::PacketMeta, _),
            ) if op == AluOp::Sub => Ok(Value::UNKNOWN_SCALAR),
            // Two map value pointers may point into different values: their difference says
            // nothing about offsets.
            (Value::Ptr(ka, oa), Value::Ptr(kb, ob))
                if op == AluOp::Sub && ka == kb && arith_ok(ka) =>
            {
                Ok(Value::Scalar(match (ka, oa, ob) {
                    (PtrKind::MapValue { .. }, _, _) => Scalar::UNKNOWN,
                    (_, Off::Range(a, b), Off::Range(c, d)) => {
                        let mut s = Scalar::UNKNOWN;
                        s.smin = a - d;
                        s.smax = b - c;
                        s.sync();
                        s
                    }
                    _ => Scalar::UNKNOWN,
                }))
            }
            _ => bad(),
        }
    }

    /// The packet id of `v`, the result of an ALU operation on `d` and `s`: pointer ± scalar
    /// keeps the id when the scalar is one number (the offset range moves as a whole, so `V` is
    /// unchanged), and otherwise makes a fresh one: a new `V`, the offset minus its new lower
    /// bound. An unknown offset relates to nothing.
    fn packet_id(&mut self, d: Value, s: Value, v: Value) -> Value {
        let Value::Ptr(PtrKind::Packet { id }, o) = v else {
            return v;
        };
        let c = match (d, s) {
            (Value::Scalar(c), _) | (_, Value::Scalar(c)) => c,
            _ => return v,
        };
        let id = match o {
            Off::Unknown => 0,
            Off::Range(..) if c.smin == c.smax => id,
            Off::Range(..) => {
                self.next_id += 1;
                self.next_id
            }
        };
        Value::Ptr(PtrKind::Packet { id }, o)
    }

    /// The relation to the input length of `v`, the result of `d op= s` (see
    /// [`LenRel`], [`InRel`]): an input pointer's is always computed here (`check_alu` copies
    /// the operand's kind, relation included), a scalar's for the sums and differences whose
    /// bound follows from the operands'. `L + d - y` (`len - off`, with `y <= L + d`) bounds
    /// `L` by itself plus `y`: `y` gets a scalar id if it had none (in `st`), so the relation
    /// can name it.
    fn len_rel(
        &mut self,
        pc: Pc,
        st: &mut State,
        (width, aop): (Width, AluOp),
        (d, s, sreg): (Value, Value, Option<Reg>),
        v: Value,
    ) -> Value {
        let lmin = self.len_min();
        match v {
            Value::Ptr(PtrKind::Input { .. }, o) => {
                let rel = match (lmin, d, s) {
                    (Some(lmin), Value::Ptr(PtrKind::Input { rel }, po), Value::Scalar(mut y)) => {
                        // `mem + off` with `off` bounded relative to the length: `off` gets an
                        // id (one per pc, as below) so that the pointer is linked to it, and
                        // what a later check learns of `off` bounds the pointer too.
                        if let (Some(reg), 0, Some(_), AluOp::Add) = (sreg, y.id, y.len, aop)
                            && y.konst().is_none()
                            && self.next_id < PC_ID_BASE
                        {
                            y.id = PC_ID_BASE.saturating_add(pc.0);
                            forget_id(st, y.id);
                            y = without_tag(y, y.id);
                            Self::set(st, reg, Value::Scalar(y));
                        }
                        // A copy of the length, `L + d`, is `y - d <= L` itself.
                        if y.len.is_none()
                            && let Some(d) = len_exact(&y, lmin)
                        {
                            y.len = LenRel::new(-i128::from(d), None, lmin);
                        }
                        ptr_rel(rel, po, &y, aop == AluOp::Sub, lmin)
                    }
                    (Some(lmin), Value::Scalar(y), Value::Ptr(PtrKind::Input { rel }, po))
                        if aop == AluOp::Add =>
                    {
                        ptr_rel(rel, po, &y, false, lmin)
                    }
                    _ => None,
                };
                Value::Ptr(PtrKind::Input { rel }, o)
            }
            Value::Scalar(r) if width == Width::W64 => {
                let (Some(lmin), Value::Scalar(x), Value::Scalar(mut y)) = (lmin, d, s) else {
                    return v;
                };
                let new = match aop {
                    AluOp::Add if y.konst().is_none() => {
                        LenRel::stronger(sum_rel(&x, &y), sum_rel(&y, &x))
                    }
                    AluOp::Sub => {
                        let Some(reg) = sreg else { return v };
                        let Some(dl) = len_exact(&x, lmin) else {
                            return v;
                        };
                        // `y <= L + dl`: the difference does not wrap. (A constant `y` in a
                        // register too: its tag joins with the tags of later visits, where
                        // the register is no constant any more.)
                        let under = y.len.is_some_and(|r| r.base.is_none() && r.c >= -dl)
                            || i128::from(y.umax) <= i128::from(lmin) + i128::from(dl);
                        if !under || y.umax > i64::MAX as u64 {
                            return v;
                        }
                        if y.id == 0 {
                            // One id per pc, so that the states of different visits (loop
                            // iterations) agree and join without losing the relation; the
                            // previous visit's holders and relations are forgotten first.
                            if self.next_id >= PC_ID_BASE {
                                return v;
                            }
                            y.id = PC_ID_BASE.saturating_add(pc.0);
                            forget_id(st, y.id);
                            y = without_tag(y, y.id);
                            Self::set(st, reg, Value::Scalar(y));
                        }
                        LenRel::new(-i128::from(dl), Some((y.id, y.delta)), lmin)
                    }
                    _ => None,
                };
                Value::Scalar(r.with_len(LenRel::stronger(new, r.len)))
            }
            _ => v,
        }
    }

    fn pointer_op(&self, pc: Pc, op: &'static str, r: Reg, v: Value) -> R<Value> {
        self.degrade(pc, pointer_arith(op, r, v))
    }
}

/// The result `v` of `d op= s`: for a 64-bit `add` or `sub` of a constant to a scalar linked
/// to others (an id from a copy), the same id with the delta moved by the constant, so a
/// later comparison of either refines both (the kernel's `BPF_ADD_CONST`: `r3 = r7; r3 += 2;
/// if r3 <= r2` bounds r7 too). Otherwise `v` unchanged (a fresh result has no id).
fn link_const(width: Width, aop: AluOp, d: Value, s: Value, v: Value) -> Value {
    let (Value::Scalar(d), Value::Scalar(s), Value::Scalar(mut r)) = (d, s, v) else {
        return v;
    };
    let Some(k) = s.konst() else { return v };
    if width != Width::W64 {
        return v;
    }
    // The cap moves with the constant too (see `Scalar::cap`), and so does a relation to
    // the input length.
    let cap = d.cap_after(aop, k);
    if cap < r.cap {
        r.cap = cap;
        r.sync();
    }
    let ks = i128::from(k as i64);
    let len = match aop {
        AluOp::Add => d.len_after_add(ks),
        AluOp::Sub => d.len_after_add(-ks),
        _ => None,
    };
    let r = r.with_len(len);
    if d.id == 0 {
        return Value::Scalar(r);
    }
    let delta = match aop {
        AluOp::Add => d.delta.checked_add(k as i64),
        AluOp::Sub => d.delta.checked_sub(k as i64),
        _ => return v,
    };
    Value::Scalar(r.linked(d.id, delta))
}

/// The first of the scalar ids given per pc ([`Analysis::len_rel`]); fresh ids
/// (`Analysis::next_id`) stay below it.
const PC_ID_BASE: u32 = 1 << 31;

/// Forgets scalar id `id` everywhere in `st`: the registers and spills holding it lose their
/// link, and the relations naming it (tags, input pointers' links) are dropped.
fn forget_id(st: &mut State, id: u32) {
    let clear = |v: &Value| -> Option<Value> {
        match *v {
            // Most scalars name neither: tested before building a copy to compare.
            Value::Scalar(x) if x.id != id && x.len_base_id() != id => None,
            Value::Scalar(x) => {
                let mut y = if x.id == id { x.without_id() } else { x };
                if y.len_base_id() == id {
                    y.len = None;
                }
                (y != x).then_some(Value::Scalar(y))
            }
            Value::Ptr(PtrKind::Input { rel: Some(r) }, o) if r.link.is_some_and(|l| l.0 == id) => {
                Some(Value::Ptr(
                    PtrKind::Input {
                        rel: Some(InRel { link: None, ..r }),
                    },
                    o,
                ))
            }
            _ => None,
        }
    };
    st.rewrite_values(clear);
}

/// `x` without a relation naming id `id` (a tag relative to the group of a previous visit's
/// `id`, which [`forget_id`] dropped from the state `x` was read from): once `x` holds `id`
/// itself, such a tag would read as relative to `x`'s own group.
fn without_tag(x: Scalar, id: u32) -> Scalar {
    if x.len_base_id() == id {
        Scalar { len: None, ..x }
    } else {
        x
    }
}

/// `d` when `x` is the input length plus `d` exactly (a copy of r2 at entry with delta `d`,
/// which cannot have wrapped: see `branch.rs`' `below`).
fn len_exact(x: &Scalar, lmin: u64) -> Option<i64> {
    let d = x.delta;
    (x.id == SYM_LEN_ID && (i128::from(lmin) + i128::from(d) >= 0 || x.umax <= i64::MAX as u64))
        .then_some(d)
}

/// The relation of `x + y` (integers: `x` is below 2^63 when it has a relation) from `x`'s:
/// `x + ref + c <= L` with `y` a member of `ref`'s group gives `x + y <= L - c + dy - dref`;
/// with `y` at most a small `umax`, `x + y + (c - umax) <= L`.
fn sum_rel(x: &Scalar, y: &Scalar) -> Option<LenRel> {
    let r = x.len?;
    if let Some((g, dref)) = r.base
        && y.id == g
        && y.umax <= i64::MAX as u64
    {
        let c = i128::from(r.c) - (i128::from(y.delta) - i128::from(dref));
        return LenRel::new(c, None, r.lmin);
    }
    if y.umax <= REL_MAX as u64 {
        return LenRel::new(i128::from(r.c) - i128::from(y.umax), r.base, r.lmin);
    }
    None
}

/// The relation to the input length of an input pointer at offset `o` (relation `rel`) plus
/// (or minus: `sub`) the scalar `y` (see [`InRel`]), from the pointer's own relation (or the
/// one its offset range implies) moved by `y`'s signed bounds, from `y`'s relation plus the
/// pointer's highest offset, and from `y`'s relation to a value the pointer is linked to; each
/// holds, so together they do.
fn ptr_rel(rel: Option<InRel>, o: Off, y: &Scalar, sub: bool, lmin: u64) -> Option<InRel> {
    let (ylo, yhi) = (i128::from(y.smin), i128::from(y.smax));
    let mut cands: Vec<InRel> = Vec::new();
    let own = rel.or_else(|| match o {
        Off::Range(lo, hi) => InRel::new(
            i128::from(lo),
            i128::from(lmin) - i128::from(hi),
            None,
            lmin,
        ),
        Off::Unknown => None,
    });
    if let Some(p) = own {
        // A constant moves the link along (`o = ref + d` becomes `ref + d + k`).
        let link = |k: i128| {
            let (g, d) = p.link?;
            let d = i128::from(d) + k;
            (d.abs() <= i128::from(REL_MAX)).then_some((g, d as i64))
        };
        let k = y.konst().map(|k| i128::from(k as i64));
        let (lo, c, l) = if sub {
            (
                i128::from(p.lo) - yhi,
                i128::from(p.c) + ylo,
                k.and_then(|k| link(-k)),
            )
        } else {
            (
                i128::from(p.lo) + ylo,
                i128::from(p.c) - yhi,
                k.and_then(link),
            )
        };
        cands.extend(InRel::new(lo, c, l, lmin));
    }
    if !sub && let Some(r) = y.len {
        // `y` is an integer in `[umin, L - ...]`, below 2^63.
        let ylo = i128::from(y.umin);
        match (r.base, o) {
            (None, Off::Range(lo, hi)) => {
                let link = (lo == hi && y.id != 0 && y.umax <= i64::MAX as u64)
                    .then(|| i128::from(y.delta) + i128::from(lo))
                    .filter(|d| d.abs() <= i128::from(REL_MAX))
                    .map(|d| (y.id, d as i64));
                let c = i128::from(r.c) - i128::from(hi);
                cands.extend(InRel::new(i128::from(lo) + ylo, c, link, lmin));
            }
            (Some((g, dref)), _) => {
                if let Some(p) = rel
                    && let Some((pg, dp)) = p.link
                    && pg == g
                {
                    let c = i128::from(r.c) - (i128::from(dp) - i128::from(dref));
                    cands.extend(InRel::new(i128::from(p.lo) + ylo, c, None, lmin));
                }
            }
            _ => {}
        }
    }
    cands.into_iter().reduce(|a, b| InRel {
        lo: a.lo.max(b.lo),
        c: a.c.max(b.c),
        link: a.link.or(b.link),
        lmin,
    })
}

/// Pointer kinds that arithmetic with a scalar keeps.
fn arith_ok(k: PtrKind) -> bool {
    !matches!(
        k,
        PtrKind::PacketEnd | PtrKind::MapValue { nullable: true, .. } | PtrKind::Sock { .. }
    )
}

pub(super) fn pointer_arith(op: &str, reg: Reg, v: Value) -> K {
    K::PointerArith {
        op: op.to_string(),
        reg,
        what: v.describe(),
    }
}
