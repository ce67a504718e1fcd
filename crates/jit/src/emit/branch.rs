//! JMP and JMP32: conditional branches, `ja`/`ja32`. (`exit` is a `ret`, lowered by the driver;
//! calls live in `call.rs`.)

use super::alu::Arith;
use super::{Emitter, asm, wide};
use crate::abi::{host, x};
use bpfx_bytecode::{Cond, Operand, Pc, Reg, Width};
use bpfx_exec::TrapKind;
use dynasmrt::DynamicLabel;

/// x86 condition codes the branches and conditional moves use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Cc {
    E,
    Ne,
    A,
    Ae,
    B,
    Be,
    G,
    Ge,
    L,
    Le,
}

impl Emitter<'_> {
    pub(super) fn lower_ja(&mut self, pc: Pc, off: i32) {
        match self.target(pc, off) {
            // A jump to the next instruction is a no-op.
            Some(t) if t.0 == pc.0 + 1 => {}
            Some(t) => {
                let label = self.jump_label(Some(pc), t);
                if self.reaches_back(label, 2) {
                    asm!(self; jmp BYTE =>label);
                } else {
                    asm!(self; jmp =>label);
                }
            }
            None => self.emit_trap_now(pc, TrapKind::FellOffEnd),
        }
    }

    pub(super) fn lower_branch(
        &mut self,
        pc: Pc,
        width: Width,
        cond: Cond,
        lhs: Reg,
        rhs: Operand,
        off: i16,
    ) {
        let Some(target) = self.target(pc, i32::from(off)) else {
            self.emit_trap_now(pc, TrapKind::FellOffEnd);
            return;
        };
        if target.0 == pc.0 + 1 {
            // Both ways lead to the next instruction.
            return;
        }
        self.emit_branch(pc, width, cond, lhs, rhs, target, false);
    }

    /// Compares and jumps from `pc` to `target` when the condition holds, or, with `invert`,
    /// when it fails (a fused `jcc +1; ja target`, see [`super::plan`]).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn emit_branch(
        &mut self,
        pc: Pc,
        width: Width,
        cond: Cond,
        lhs: Reg,
        rhs: Operand,
        target: Pc,
        invert: bool,
    ) {
        self.emit_compare(width, cond, lhs, rhs);
        let t = self.jump_label(Some(pc), target);
        let cc = Cc::of(cond, invert);
        // A jump back within reach (a loop's back edge): the 2-byte rel8 form.
        if self.reaches_back(t, 2) {
            match cc {
                Cc::E => asm!(self; je BYTE =>t),
                Cc::Ne => asm!(self; jne BYTE =>t),
                Cc::A => asm!(self; ja BYTE =>t),
                Cc::Ae => asm!(self; jae BYTE =>t),
                Cc::B => asm!(self; jb BYTE =>t),
                Cc::Be => asm!(self; jbe BYTE =>t),
                Cc::G => asm!(self; jg BYTE =>t),
                Cc::Ge => asm!(self; jge BYTE =>t),
                Cc::L => asm!(self; jl BYTE =>t),
                Cc::Le => asm!(self; jle BYTE =>t),
            }
            return;
        }
        match cc {
            Cc::E => asm!(self; je =>t),
            Cc::Ne => asm!(self; jne =>t),
            Cc::A => asm!(self; ja =>t),
            Cc::Ae => asm!(self; jae =>t),
            Cc::B => asm!(self; jb =>t),
            Cc::Be => asm!(self; jbe =>t),
            Cc::G => asm!(self; jg =>t),
            Cc::Ge => asm!(self; jge =>t),
            Cc::L => asm!(self; jl =>t),
            Cc::Le => asm!(self; jle =>t),
        }
    }

    /// Whether `label` is already placed (a jump back) and a jump of `len` bytes emitted here
    /// reaches it with a rel8 displacement. Forward jumps keep rel32: their distance is not
    /// known yet.
    fn reaches_back(&self, label: DynamicLabel, len: usize) -> bool {
        self.ops
            .labels()
            .resolve_dynamic(label)
            .is_ok_and(|at| self.offset() + len - at.0 <= 128)
    }

    /// Sets the flags for `cond` on `lhs` and `rhs` at `width` (clobbers r11 only when a
    /// blinded immediate needs it).
    pub(super) fn emit_compare(&mut self, width: Width, cond: Cond, lhs: Reg, rhs: Operand) {
        let l = host(lhs);
        match (cond, rhs) {
            (Cond::Set, Operand::Reg(r)) => wide!(self, width; test R(l), R(host(r))),
            // `test` has no imm8 form; at 64 bits the imm32 is sign-extended, as eBPF's is.
            (Cond::Set, Operand::Imm(i)) if self.blinds(i64::from(i)) => {
                self.emit_blinded_sext(x::R11, i);
                wide!(self, width; test R(l), R(x::R11));
            }
            (Cond::Set, Operand::Imm(i)) => wide!(self, width; test R(l), DWORD i),
            // `test r, r` sets every flag a compare with 0 would, in fewer bytes.
            (_, Operand::Imm(0)) => wide!(self, width; test R(l), R(l)),
            (_, Operand::Reg(r)) => self.emit_arith_rr(width, Arith::Cmp, l, host(r)),
            (_, Operand::Imm(i)) => self.emit_arith_ri(width, Arith::Cmp, l, i),
        }
    }
}

impl Cc {
    /// The x86 condition for `cond`, or with `invert`, for its negation.
    pub(super) fn of(cond: Cond, invert: bool) -> Cc {
        match (cond, invert) {
            (Cond::Eq, false) | (Cond::Ne | Cond::Set, true) => Cc::E,
            (Cond::Ne | Cond::Set, false) | (Cond::Eq, true) => Cc::Ne,
            (Cond::Gt, false) | (Cond::Le, true) => Cc::A,
            (Cond::Ge, false) | (Cond::Lt, true) => Cc::Ae,
            (Cond::Lt, false) | (Cond::Ge, true) => Cc::B,
            (Cond::Le, false) | (Cond::Gt, true) => Cc::Be,
            (Cond::Sgt, false) | (Cond::Sle, true) => Cc::G,
            (Cond::Sge, false) | (Cond::Slt, true) => Cc::Ge,
            (Cond::Slt, false) | (Cond::Sge, true) => Cc::L,
            (Cond::Sle, false) | (Cond::Sgt, true) => Cc::Le,
        }
    }
}

impl Emitter<'_> {
    /// The absolute target of a relative jump at `pc`. The decoder guarantees it is an
    /// instruction start inside the program; `None` is kept as a trap, never a panic.
    pub(super) fn target(&self, pc: Pc, off: i32) -> Option<Pc> {
        pc.offset(off).filter(|t| t.index() < self.slots)
    }
}
