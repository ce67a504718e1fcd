//! ALU rules: scalars through the domain's arithmetic, the pointer arithmetic the kernel
//! allows (pointer ± scalar, the difference of two pointers into one region), scalar ids for
//! copies and packet ids for moved packet pointers.

use super::{Analysis, R};
use crate::domain::{Off, PtrKind, Scalar, State, Value};
use crate::error::VerifyErrorKind as K;
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
                    let id = if x.id != 0 {
                        x.id
                    } else {
                        self.next_id += 1;
                        self.next_id
                    };
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
                    let id = self.scalar_id(x);
                    // The copy is the source exactly, so it has the source's delta too.
                    Self::set(st, r, Value::Scalar(Scalar { id, ..x }));
                    Value::Scalar(Scalar {
                        id,
                        delta: x.delta,
                        ..y
                    })
                }
                _ => v,
            }
        } else {
            let d = self.read(pc, st, dst)?;
            let v = self.check_alu(pc, width, aop, dst, d, sreg, s)?;
            let v = link_const(width, aop, d, s, v);
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
                Value::Ptr(..) | Value::MapHandle(_) | Value::MapHandleOrNull(_),
                Value::Ptr(..) | Value::MapHandle(_) | Value::MapHandleOrNull(_),
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
    // The cap moves with the constant too (see `Scalar::cap`).
    let cap = d.cap_after(aop, k);
    if cap < r.cap {
        r.cap = cap;
        r.sync();
    }
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

/// Pointer kinds that arithmetic with a scalar keeps.
fn arith_ok(k: PtrKind) -> bool {
    !matches!(
        k,
        PtrKind::PacketEnd | PtrKind::MapValue { nullable: true, .. }
    )
}

pub(super) fn pointer_arith(op: &str, reg: Reg, v: Value) -> K {
    K::PointerArith {
        op: op.to_string(),
        reg,
        what: v.describe(),
    }
}
