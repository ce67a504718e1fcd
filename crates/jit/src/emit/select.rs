//! The lowering of an if-converted branch ([`crate::analysis::ifconv`]): a compare and a
//! conditional move instead of a branch over a `mov`.

use super::branch::Cc;
use super::{Emitter, asm};
use crate::abi::{ctx, host, x};
use bpfx_bytecode::{Cond, Operand, Reg, Width};

impl Emitter<'_> {
    /// `dst = src` unless `cond` holds: the branch over the move at `pc`, without a branch.
    pub(super) fn emit_select(
        &mut self,
        width: Width,
        cond: Cond,
        lhs: Reg,
        rhs: Operand,
        dst: Reg,
        src: Operand,
    ) {
        let d = host(dst);
        // An immediate goes to r11 first: loading it may change the flags.
        let s = match src {
            Operand::Reg(r) => host(r),
            Operand::Imm(i) => {
                self.emit_mov_imm(Width::W64, x::R11, i);
                x::R11
            }
        };
        self.emit_compare(width, cond, lhs, rhs);
        // The move happens when the branch is not taken.
        match Cc::of(cond, true) {
            Cc::E => asm!(self; cmove Rq(d), Rq(s)),
            Cc::Ne => asm!(self; cmovne Rq(d), Rq(s)),
            Cc::A => asm!(self; cmova Rq(d), Rq(s)),
            Cc::Ae => asm!(self; cmovae Rq(d), Rq(s)),
            Cc::B => asm!(self; cmovb Rq(d), Rq(s)),
            Cc::Be => asm!(self; cmovbe Rq(d), Rq(s)),
            Cc::G => asm!(self; cmovg Rq(d), Rq(s)),
            Cc::Ge => asm!(self; cmovge Rq(d), Rq(s)),
            Cc::L => asm!(self; cmovl Rq(d), Rq(s)),
            Cc::Le => asm!(self; cmovle Rq(d), Rq(s)),
        }
    }

    /// With the budget charge, after [`Self::emit_select`] (the flags still those of its
    /// compare): gives back the `n` units the block's charge paid for the move (and the `ja`
    /// after it) when `cond` holds, the branch the interpreter takes over them. Clobbers r10.
    pub(super) fn emit_select_refund(&mut self, cond: Cond, n: i32) {
        match (Cc::of(cond, false), n) {
            (_, 0) => {}
            // Carry set exactly when the condition holds, or exactly when it does not.
            (Cc::B, 1) => asm!(self; adc QWORD [BYTE r12 + ctx::BUDGET], 0),
            (Cc::Ae, 1) => asm!(self; sbb QWORD [BYTE r12 + ctx::BUDGET], -1),
            (cc, n) => {
                match cc {
                    Cc::E => asm!(self; sete r10b),
                    Cc::Ne => asm!(self; setne r10b),
                    Cc::A => asm!(self; seta r10b),
                    Cc::Ae => asm!(self; setae r10b),
                    Cc::B => asm!(self; setb r10b),
                    Cc::Be => asm!(self; setbe r10b),
                    Cc::G => asm!(self; setg r10b),
                    Cc::Ge => asm!(self; setge r10b),
                    Cc::L => asm!(self; setl r10b),
                    Cc::Le => asm!(self; setle r10b),
                }
                asm!(self; movzx r10d, r10b);
                if n > 1 {
                    asm!(self; imul r10d, r10d, n);
                }
                asm!(self; add [BYTE r12 + ctx::BUDGET], r10);
            }
        }
    }
}
