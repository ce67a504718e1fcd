//! The transfer function: one instruction applied to a state, dispatched by class to the
//! rules of `alu.rs`, `mem.rs`, `call.rs` and `branch.rs`.

use super::{Analysis, Flow, R};
use crate::config::{ContextKind, MapRef};
use crate::domain::{Off, PtrKind, State, Value};
use crate::error::VerifyErrorKind as K;
use bpfx_bytecode::semantics;
use bpfx_bytecode::{CallTarget, Imm64, Op, Operand, Pc, Reg};

use super::alu::pointer_arith;
use super::ctx::CtxId;

impl Analysis<'_> {
    /// Applies `op`, at `pc` in context `ctx`, to `st`; says where the state goes next.
    pub(super) fn step(&mut self, ctx: CtxId, pc: Pc, op: &Op, mut st: State) -> R<Flow> {
        let next = Pc(pc.0 + op.slots());
        if !self.reads_len && reads_len(op, &st) {
            self.reads_len = true;
        }
        // Checked where the analysis goes only, as the kernel checks the paths it explores:
        // dead code may write r10 (the engines trap if one ever runs).
        if op.written_reg() == Some(Reg::R10) {
            return Err(self.err(pc, K::WritesFramePointer));
        }
        if self.strict
            && let Some(lock) = st.refs.lock()
        {
            self.check_while_locked(pc, op, lock)?;
        }
        if self.strict && !self.async_roots.is_empty() {
            self.check_key_unwritten(ctx, pc, op, &st)?;
        }
        match *op {
            Op::Alu {
                width,
                op: aop,
                dst,
                src,
            } => self.check_alu_insn(pc, &mut st, width, aop, dst, src)?,
            Op::Neg { width, dst } => self.check_neg(pc, &mut st, width, dst)?,
            Op::Movsx {
                width,
                from,
                dst,
                src,
            } => self.check_movsx(pc, &mut st, width, from, dst, src)?,
            Op::Endian { order, bits, dst } => {
                self.check_endian(pc, &mut st, order, bits, dst)?;
            }
            Op::Load {
                size,
                signed,
                dst,
                base,
                off,
            } => self.check_load(pc, &mut st, size, signed, dst, base, off)?,
            Op::Store {
                size,
                base,
                off,
                src,
            } => self.check_store(pc, &mut st, size, base, off, src)?,
            Op::Atomic {
                width,
                op: aop,
                fetch,
                base,
                off,
                src,
            } => self.check_atomic(pc, &mut st, width, aop, fetch, base, off, src)?,
            Op::LoadImm64 { dst, value } => {
                let v = match value {
                    Imm64::Value(v) => Value::konst(v),
                    Imm64::MapFd(fd) => self.check_map(pc, MapRef::Fd(fd), None)?,
                    Imm64::MapIdx(i) => self.check_map(pc, MapRef::Idx(i), None)?,
                    Imm64::MapValue { fd, off } => self.check_map(pc, MapRef::Fd(fd), Some(off))?,
                    Imm64::MapIdxValue { idx, off } => {
                        self.check_map(pc, MapRef::Idx(idx), Some(off))?
                    }
                    Imm64::BtfId(_) => self.degrade(pc, K::BtfVariable)?,
                    Imm64::Func { off } => Value::konst(u64::from(pc.jump(off).0)),
                };
                Self::set(&mut st, dst, v);
            }
            Op::LoadPacket { index, .. } => {
                if let ContextKind::Fields(layout) = &self.cfg.context
                    && !layout.packet_loads
                {
                    return Err(self.err(pc, K::PacketLoadNotAllowed));
                }
                if let Some(r) = index {
                    let v = self.read(pc, &st, r)?;
                    if v.is_pointer_like() {
                        self.degrade(pc, pointer_arith("ldind", r, v))?;
                    }
                }
                Self::set(&mut st, Reg::R0, Value::UNKNOWN_SCALAR);
            }
            Op::Ja { off, .. } => return Ok(Flow::Next(pc.jump(off), st)),
            // The counter is not in the state: both outcomes are possible on every visit
            // (the kernel explores both too), and neither edge changes a register.
            Op::MayGoto { off } => {
                let t = pc.jump(i32::from(off));
                return Ok(Flow::Fork([(next, st.clone()), (t, st)]));
            }
            Op::Branch {
                width,
                cond,
                lhs,
                rhs,
                off,
            } => {
                let t = pc.jump(i32::from(off));
                return self.check_branch(pc, st, width, cond, lhs, rhs, next, t);
            }
            Op::Call(CallTarget::Helper(id)) => {
                if crate::is_poisoned_helper(id) && self.cfg.helpers.get(id).is_none() {
                    return Err(self.err(pc, K::UnknownHelper(id)));
                }
                if let Some(kind) = self.callback_kind(id) {
                    return self.check_callback_call(ctx, pc, st, id, kind);
                }
                if !self.call_helper(pc, &mut st, id)? {
                    return Ok(Flow::Stop);
                }
            }
            Op::Call(CallTarget::Register(r)) => {
                if !self.check_callx(pc, &mut st, r)? {
                    return Ok(Flow::Stop);
                }
            }
            Op::Call(CallTarget::Local { off }) => {
                let entry = pc.jump(off);
                return self.check_local_call(ctx, pc, st, entry);
            }
            Op::Call(CallTarget::Kfunc(_)) => {
                return Err(self.err(pc, K::Kfunc));
            }
            Op::Exit => return self.check_exit(ctx, pc, st),
        }
        Ok(Flow::Next(next, st))
    }

    /// `lddw` of a map handle, or of a pointer into a map's value (`value_off`).
    fn check_map(&self, pc: Pc, map: MapRef, value_off: Option<u32>) -> R<Value> {
        if self.strict && self.cfg.maps.get(map).is_none() {
            return Err(self.err(pc, K::UnknownMap(map)));
        }
        Ok(match value_off {
            None => Value::MapHandle(map),
            Some(off) => Value::Ptr(
                PtrKind::MapValue {
                    map,
                    nullable: false,
                    id: 0,
                    record: None,
                },
                Off::known(0).add_const(i64::from(off)),
            ),
        })
    }

    /// A register operand, or an immediate as the 64-bit value the instruction uses.
    pub(super) fn operand(&self, pc: Pc, st: &State, src: Operand) -> R<(Value, Option<Reg>)> {
        Ok(match src {
            Operand::Imm(i) => (Value::konst(semantics::imm_value(i)), None),
            Operand::Reg(r) => (self.read(pc, st, r)?, Some(r)),
        })
    }
}

/// Whether `op` reads, in `st`, an entry value standing for the input length
/// ([`crate::scalar::LEN_ID`]): one of its operands, or an argument register of a helper call.
/// Any other copy of such a value was made by an instruction reading it (a `mov`, a spill),
/// or is the caller's register in a Checked-mode callee's frame, read there by an instruction.
fn reads_len(op: &Op, st: &State) -> bool {
    let regs = &st.cur().regs;
    let is_len =
        |r: Reg| matches!(regs[r.index()], Value::Scalar(x) if x.id == crate::scalar::LEN_ID);
    let args = matches!(op, Op::Call(CallTarget::Helper(_)))
        && [Reg::R1, Reg::R2, Reg::R3, Reg::R4, Reg::R5]
            .into_iter()
            .any(is_len);
    args || op.reads().iter().any(is_len)
}
