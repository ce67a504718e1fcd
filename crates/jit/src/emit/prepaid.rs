//! Prepaid loops: under the budget charge ([`crate::JitOptions::budget`]), a versioned loop
//! ([`crate::analysis::loops`]) whose every iteration is the same one block and that nothing
//! can leave early is charged for all its iterations at once, in its entry check, instead of
//! once per iteration in its fast copy.
//!
//! Such a loop runs exactly the `N` iterations its check computes (its only branch is the
//! trip test, its last instruction or the one before a fused `ja`), each of the block's `n`
//! instructions. So the exact per-block charge takes `N * n` units over the loop, and traps in
//! it exactly when fewer are left on entry. The check compares the budget with `N * n`: with
//! enough, it takes them all and the fast copy charges nothing (the unit a fused branch gives
//! back when it falls out stays, as in every copy); with too few, it falls into the guarded
//! main copy, which charges block by block and traps at the interpreter's pc. The budget left
//! after the loop is the same either way.
//!
//! "Nothing can leave early": in the fast copy no instruction has a guard of its own, none is
//! a call, an atomic, a legacy packet load, a `may_goto`, a 64-bit load of anything but a
//! constant, or an instruction writing r10 (compiled as a trap). A fault inside would give
//! back only the rest of its block, not the iterations it did not run.

use super::{CopyKind, Emitter, asm};
use crate::abi::ctx;
use crate::analysis::guards::Guard;
use bpfx_bytecode::{Imm64, Op, Pc, Reg};
use dynasmrt::DynamicLabel;

impl Emitter<'_> {
    /// The length of the block that is every iteration of versioned loop `i`, when the loop
    /// is prepaid (see the module doc); `None` when it charges per iteration as other code.
    pub(super) fn prepaid(&self, i: usize) -> Option<u32> {
        if !self.opts.budget {
            return None;
        }
        let l = self.guards.loops.loops.get(i)?;
        if l.entry != l.head {
            // A rotated loop's first iteration runs only part of the block.
            return None;
        }
        let n = self.blocks.starting_at(l.head)?;
        let mut count = 0;
        let mut pc = l.head;
        while pc <= l.end {
            let op = self.prog.get(pc)?;
            if pc != l.head && self.blocks.starting_at(pc).is_some() {
                return None;
            }
            if op.written_reg() == Some(Reg::R10) {
                return None;
            }
            let stays = match *op {
                Op::Alu { .. }
                | Op::Neg { .. }
                | Op::Movsx { .. }
                | Op::Endian { .. }
                | Op::Ja { .. }
                | Op::Branch { .. }
                | Op::LoadImm64 {
                    value: Imm64::Value(_),
                    ..
                } => true,
                Op::Load { .. } | Op::Store { .. } => {
                    self.guards.of(pc, CopyKind::Fast(i)) != Guard::Inline
                }
                _ => false,
            };
            if !stays {
                return None;
            }
            count += 1;
            pc = Pc(pc.0 + op.slots());
        }
        (count == n).then_some(n)
    }

    /// The end of loop `i`'s check, when the loop is prepaid and r11 holds `N - 1` (the last
    /// iteration's index): takes `N * n` units of budget, or falls to `fail` (the guarded
    /// copy, charged per block) when fewer are left. Clobbers r10 and flags.
    pub(super) fn emit_prepay(&mut self, i: usize, fail: DynamicLabel) {
        let Some(n) = self.prepaid(i) else { return };
        // N - 1 <= MAX_TRIPS (2^31) and n <= 65: the product cannot overflow.
        asm!(self
            ; imul r10, r11, n as i32
            ; add r10, n as i32
            ; cmp QWORD [BYTE r12 + ctx::BUDGET], r10
            ; jb =>fail
            ; sub QWORD [BYTE r12 + ctx::BUDGET], r10
        );
    }

    /// How many versioned loops are prepaid ([`crate::CompileStats::prepaid_loops`]).
    pub(super) fn prepaid_loops(&self) -> u32 {
        (0..self.guards.loops.loops.len())
            .filter(|&i| self.prepaid(i).is_some())
            .count() as u32
    }
}
