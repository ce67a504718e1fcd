//! The instruction budget ([`crate::JitOptions::budget`]): a charge per basic block
//! ([`crate::analysis::blocks`]), the per-instruction slow path a failed charge runs, and the
//! refunds of faulting sites.

use super::{CopyKind, Emitter, Exit, asm};
use crate::JitError;
use crate::abi::ctx;
use bpfx_bytecode::Pc;
use bpfx_exec::TrapKind;
use dynasmrt::DynamicLabel;

impl Emitter<'_> {
    /// At the start of a basic block, in code compiled with [`crate::JitOptions::budget`]: charges
    /// the whole block at once. The `sub` borrows exactly when fewer instructions are left than
    /// the block has; then the block's slow path ([`Self::emit_slow_block`]) runs instead,
    /// charging one instruction at a time, so the trap comes at the exact instruction.
    pub(super) fn charge_block(&mut self, pc: Pc) {
        if !self.opts.budget {
            return;
        }
        if let Some(n) = self.blocks.starting_at(pc) {
            let slow = self.new_label();
            self.slow_blocks.push((pc, slow));
            asm!(self
                ; sub QWORD [BYTE r12 + ctx::BUDGET], n as i32
                ; jb =>slow
            );
        }
    }

    /// Charges one unit of budget for the instruction at `pc` (slow paths only): the `sub`
    /// borrows exactly when the budget was already 0, and the trap leaves before the
    /// instruction does anything.
    pub(super) fn charge_one(&mut self, pc: Pc) {
        let cold = self.cold_trap(pc, TrapKind::BudgetExhausted);
        asm!(self
            ; sub QWORD [BYTE r12 + ctx::BUDGET], 1
            ; jb =>cold
        );
    }

    /// The slow path of the block starting at `start`, entered when its charge found too
    /// little budget: gives the charge back, then runs a copy of the block with a charge per
    /// instruction. It is entered with fewer units left than the block has instructions, so
    /// it never reaches the block's end: it traps at the first instruction the budget does not
    /// cover, or earlier (a fault, a halt), or leaves through a fused branch before the `ja`
    /// its block holds ([`crate::analysis::blocks`]), to the branch's target, a block start
    /// (and so never inside a merged run). That is what lets every copy charge per block (the
    /// main code, a versioned loop's fast copy, a merged guard's fallback): no slow path
    /// continues into code whose guards it did not pass. Its end would continue in the main
    /// code, as a block's end does (every jump target is a block start).
    pub(super) fn emit_slow_block(
        &mut self,
        start: Pc,
        entry: DynamicLabel,
    ) -> Result<(), JitError> {
        let n = self.blocks.starting_at(start).unwrap_or(0);
        let mut last = start;
        for _ in 1..n {
            last = self
                .prog
                .get(last)
                .map_or(last, |op| Pc(last.0 + op.slots()));
        }
        asm!(self; =>entry);
        self.emit_copy(CopyKind::Slow, start, last, Exit::Next)
    }

    /// Budget a fault at `pc` gives back: the instructions after it in its block, which the
    /// block's charge paid for but will not run (0 outside budget code and in slow paths).
    pub(crate) fn refund(&self, pc: Pc) -> u32 {
        if self.opts.budget && self.kind != CopyKind::Slow {
            self.blocks.rest(pc)
        } else {
            0
        }
    }
}
