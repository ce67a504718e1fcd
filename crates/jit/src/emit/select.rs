//! The lowering of an if-converted branch ([`crate::analysis::ifconv`]): a compare and a
//! conditional move instead of a branch over a `mov`.

use super::branch::Cc;
use super::{Emitter, asm};
use crate::abi::{host, x};
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
}
