//! JMP and JMP32: conditional branches, `ja`/`ja32`. (`exit` is a `ret`, lowered by the driver;
//! calls live in `call.rs`.)

use super::alu::Arith;
use super::{CopyKind, Emitter, asm, direct, wide};
use crate::abi::{ctx, host, x};
use crate::analysis::guards::Guard;
use crate::analysis::plan::Action;
use bpfx_bytecode::{AluOp, Cond, Imm64, Op, Operand, Pc, Reg, Width};
use dynasmrt::DynamicLabel;

/// Which forward jumps take the 2-byte rel8 form. dynasm fixes a jump's size when it emits
/// it, before the target is placed, so the choice rests on an upper bound of the code in
/// between ([`Emitter::reaches_forward`]); a wrong bound fails assembling, and the program is
/// assembled again with [`Reach::Never`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reach {
    /// Where the bound says the target is within reach.
    Estimate,
    /// None (the retry).
    Never,
    /// Every forward jump in the main body, bound or not (tests of the retry).
    #[cfg(test)]
    Always,
}

/// The most slots [`Emitter::reaches_forward`] looks across.
const REACH_SLOTS: u32 = 32;

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
        let t = pc.jump(off);
        // A jump to the next instruction is a no-op.
        if t.0 == pc.0 + 1 {
            return;
        }
        let label = self.jump_label(Some(pc), t);
        if self.reaches_back(label, 2) || self.reaches_forward(pc, t) {
            asm!(self; jmp BYTE =>label);
        } else {
            asm!(self; jmp =>label);
        }
    }

    /// `may_goto`: the kernel's rewrite, on the run's counter in the context
    /// ([`crate::abi::RunCtx::may_goto`]): taken when it is 0, else decremented (also for
    /// `may_goto +0`, whose only effect is on the counter).
    pub(super) fn lower_may_goto(&mut self, pc: Pc, off: i16) {
        let label = self.jump_label(Some(pc), pc.jump(i32::from(off)));
        asm!(self
            ; cmp QWORD [r12 + ctx::MAY_GOTO], 0
            ; je =>label
            ; sub QWORD [r12 + ctx::MAY_GOTO], 1
        );
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
        let target = pc.jump(i32::from(off));
        if target.0 == pc.0 + 1 {
            // Both ways lead to the next instruction.
            return;
        }
        self.emit_branch(pc, width, cond, lhs, rhs, target, false);
    }

    /// Compares and jumps from `pc` to `target` when the condition holds, or, with `invert`,
    /// when it fails (a fused `jcc +1; ja target`, see [`crate::analysis::plan`]).
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
        // A jump within reach (a loop's back edge, a skip over a few instructions): the
        // 2-byte rel8 form.
        if self.reaches_back(t, 2) || self.reaches_forward(pc, target) {
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

    /// Whether a jump from `pc` forward to `target`, in the code being lowered, surely reaches
    /// it with a rel8 displacement: the instructions in between are all of kinds whose code
    /// has a known upper bound ([`Self::bound_len`]), and the bounds add up to at most 127
    /// bytes. Only where the code in between is the instructions in between, in order: in the
    /// main copy ([`super::CopyKind::Main`]); never across a loop's check and alignment, a
    /// merged guard or a budget charge.
    fn reaches_forward(&self, pc: Pc, target: Pc) -> bool {
        if target <= pc || self.kind != CopyKind::Main {
            return false;
        }
        match self.reach {
            Reach::Never => return false,
            #[cfg(test)]
            Reach::Always => return true,
            Reach::Estimate => {}
        }
        if self.opts.budget
            || self.opts.blinding
            || target.0 - pc.0 > REACH_SLOTS
            || self.plan.is_loop_head(target)
            || self.guards.loops.index_at(target).is_some()
        {
            return false;
        }
        let mut len = 0;
        let mut q = Pc(pc.0 + 1);
        while q < target {
            let Some(op) = self.prog.get(q) else {
                return false;
            };
            if self.plan.is_loop_head(q) || self.guards.loops.index_at(q).is_some() {
                return false;
            }
            if self.guards.groups.is_lead(q) {
                return false;
            }
            match self.bound_len(q, op) {
                Some(n) => len += n,
                None => return false,
            }
            if len > 127 {
                return false;
            }
            q = Pc(q.0 + op.slots());
        }
        true
    }

    /// An upper bound on the hot code of `op` at `pc` as planned, for the kinds whose
    /// lowerings are short and fixed; `None` for the rest (division, guarded accesses, atomics,
    /// calls, legacy packet loads, traps). Generous: the longest form of each kind, with the
    /// rel32 jumps.
    fn bound_len(&self, pc: Pc, op: &Op) -> Option<usize> {
        // Largest forms: `mov r64, imm64` (10 bytes), a shift by a register (four moves and
        // the shift, 12), `cmp r64, imm32` and `jcc rel32` (13), a conditional move of an
        // immediate (`mov r11, imm32`, `cmp`, `cmov`: 18), a load or store with a SIB byte,
        // a 32-bit displacement and an immediate (12).
        const ALU: usize = 16;
        const MEM: usize = 16;
        const BRANCH: usize = 16;
        const SELECT: usize = 24;
        const LEA: usize = 8;
        match self.plan.action(pc) {
            Action::Skip => return Some(0),
            Action::Lea(_) => return Some(LEA),
            Action::BranchNot(_) => return Some(BRANCH),
            Action::Select { .. } => return Some(SELECT),
            Action::Access(_) | Action::Emit => {}
        }
        let unguarded = self.guards.of(pc, self.kind) != Guard::Inline;
        match *op {
            Op::Alu {
                op: AluOp::Div | AluOp::Sdiv | AluOp::Mod | AluOp::Smod,
                ..
            } => None,
            Op::Alu { .. } | Op::Neg { .. } | Op::Movsx { .. } | Op::Endian { .. } => Some(ALU),
            Op::LoadImm64 {
                value: Imm64::Value(_),
                ..
            } => Some(ALU),
            Op::Load { .. } | Op::Store { .. } => unguarded.then_some(MEM),
            Op::Ja { .. } | Op::Branch { .. } => Some(BRANCH),
            Op::MayGoto { .. } => None,
            Op::Exit => Some(1),
            Op::Call(_) | Op::LoadImm64 { .. } | Op::Atomic { .. } | Op::LoadPacket { .. } => None,
        }
    }

    /// Sets the flags for `cond` on `lhs` and `rhs` at `width` (clobbers r11 only when a
    /// blinded immediate needs it).
    pub(super) fn emit_compare(&mut self, width: Width, cond: Cond, lhs: Reg, rhs: Operand) {
        let l = host(lhs);
        match (cond, rhs) {
            (Cond::Set, Operand::Reg(r)) => direct::rr(&mut self.ops, width, 0x85, host(r), l),
            // `test` has no imm8 form; at 64 bits the imm32 is sign-extended, as eBPF's is.
            (Cond::Set, Operand::Imm(i)) if self.blinds(i64::from(i)) => {
                self.emit_blinded_sext(x::R11, i);
                wide!(self, width; test R(l), R(x::R11));
            }
            (Cond::Set, Operand::Imm(i)) => direct::ri32(&mut self.ops, width, 0xf7, 0, l, i),
            // `test r, r` sets every flag a compare with 0 would, in fewer bytes.
            (_, Operand::Imm(0)) => direct::rr(&mut self.ops, width, 0x85, l, l),
            (_, Operand::Reg(r)) => self.emit_arith_rr(width, Arith::Cmp, l, host(r)),
            (_, Operand::Imm(i)) => self.emit_arith_ri(width, Arith::Cmp, l, i),
        }
    }
}

impl Cc {
    /// The x86 condition for `cond`, or with `invert`, for its negation ([`Cond::negate`]; the
    /// negation of `jset`, a zero `test`, is `e`, which no eBPF condition names).
    pub(super) fn of(cond: Cond, invert: bool) -> Cc {
        let cond = match (invert, cond.negate()) {
            (false, _) => cond,
            (true, Some(negated)) => negated,
            (true, None) => return Cc::E,
        };
        match cond {
            Cond::Eq => Cc::E,
            Cond::Ne | Cond::Set => Cc::Ne,
            Cond::Gt => Cc::A,
            Cond::Ge => Cc::Ae,
            Cond::Lt => Cc::B,
            Cond::Le => Cc::Be,
            Cond::Sgt => Cc::G,
            Cond::Sge => Cc::Ge,
            Cond::Slt => Cc::L,
            Cond::Sle => Cc::Le,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{assemble_reaching, assemble_with};
    use super::Reach;
    use crate::JitOptions;
    use bpfx_bytecode::Program;

    fn program(text: &str) -> Program {
        Program::decode(bpfx_bytecode::assemble(text).expect("assembles")).expect("decodes")
    }

    /// `jeq r1, 0` over `skipped` 64-bit constants (10 bytes of code each), then `exit`.
    fn skip_over(skipped: usize) -> Program {
        let body = "lddw r0, 0x1122334455667788\n".repeat(skipped);
        program(&format!(
            "mov r0, 1\njeq r1, 0, +{}\n{body}exit",
            2 * skipped
        ))
    }

    fn code(prog: &Program, reach: Reach) -> Vec<u8> {
        let opts = JitOptions::default();
        assemble_reaching(prog, &opts, None, &Default::default(), 0, reach)
            .expect("assembles")
            .code
    }

    /// A rel8 jump that does not reach fails assembling, and the program is assembled again
    /// with rel32 jumps: the same code as never trying.
    #[test]
    fn a_forward_jump_out_of_reach_retries_with_rel32() {
        let far = skip_over(20);
        let opts = JitOptions::default();
        assert!(assemble_with(&far, &opts, None, &Default::default(), 0, Reach::Always).is_err());
        assert_eq!(code(&far, Reach::Always), code(&far, Reach::Never));
        // The estimate does not try: the same code, assembled once.
        assert_eq!(code(&far, Reach::Estimate), code(&far, Reach::Never));
    }

    /// An inverted branch jumps on the x86 complement of the condition's code, for every
    /// condition, `jset` included.
    #[test]
    fn inverting_a_condition_takes_the_complementary_code() {
        use super::Cc;
        let complement = |cc: Cc| match cc {
            Cc::E => Cc::Ne,
            Cc::Ne => Cc::E,
            Cc::A => Cc::Be,
            Cc::Be => Cc::A,
            Cc::Ae => Cc::B,
            Cc::B => Cc::Ae,
            Cc::G => Cc::Le,
            Cc::Le => Cc::G,
            Cc::Ge => Cc::L,
            Cc::L => Cc::Ge,
        };
        for cond in bpfx_bytecode::Cond::ALL {
            assert_eq!(
                Cc::of(cond, true),
                complement(Cc::of(cond, false)),
                "{cond:?}"
            );
        }
    }

    /// Over a few short instructions the estimate takes rel8: 4 bytes shorter than rel32.
    #[test]
    fn a_forward_jump_within_reach_is_short() {
        let near = skip_over(3);
        let (short, long) = (code(&near, Reach::Estimate), code(&near, Reach::Never));
        assert_eq!(short.len() + 4, long.len());
        assert_eq!(code(&near, Reach::Always), short);
    }
}
